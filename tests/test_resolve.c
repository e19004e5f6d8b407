/* SPDX-License-Identifier: MIT */
/*
 * Address order for Happy Eyeballs (src/resolve.c), and the resolver
 * thread against this machine's own resolver (numeric names and
 * localhost only: no network).
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <string.h>
#include <time.h>

#include "resolve.h"

static void put(struct sg_addrs *a, const char *ip)
{
    memset(&a->a[a->n], 0, sizeof(a->a[0]));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a->a[a->n];
        s->sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &s->sin6_addr);
        a->len[a->n] = sizeof(*s);
    } else {
        struct sockaddr_in *s = (struct sockaddr_in *)&a->a[a->n];
        s->sin_family = AF_INET;
        inet_pton(AF_INET, ip, &s->sin_addr);
        a->len[a->n] = sizeof(*s);
    }
    a->n++;
}

static const char *name(const struct sg_addrs *a, int i, char *buf, size_t cap)
{
    const void *p = a->a[i].ss_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)&a->a[i])->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)&a->a[i])->sin_addr;
    return inet_ntop(a->a[i].ss_family, p, buf, (socklen_t)cap);
}

static void expect_order(const struct sg_addrs *a, const char *const *want, int n)
{
    cr_assert_eq(a->n, n);
    for (int i = 0; i < n; i++) {
        char buf[64];
        cr_expect_str_eq(name(a, i, buf, sizeof(buf)), want[i], "position %d", i);
    }
}

Test(resolve, interleaves_families_starting_with_the_first)
{
    struct sg_addrs a = {0};
    put(&a, "2001:db8::1");
    put(&a, "2001:db8::2");
    put(&a, "2001:db8::3");
    put(&a, "192.0.2.1");
    put(&a, "192.0.2.2");
    sg_addrs_interleave(&a);
    const char *want[] = {"2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2", "2001:db8::3"};
    expect_order(&a, want, 5);
}

Test(resolve, interleave_starts_with_ipv4_when_the_resolver_put_it_first)
{
    struct sg_addrs a = {0};
    put(&a, "192.0.2.1");
    put(&a, "192.0.2.2");
    put(&a, "2001:db8::1");
    sg_addrs_interleave(&a);
    const char *want[] = {"192.0.2.1", "2001:db8::1", "192.0.2.2"};
    expect_order(&a, want, 3);
}

Test(resolve, one_family_keeps_its_order)
{
    struct sg_addrs a = {0};
    put(&a, "192.0.2.3");
    put(&a, "192.0.2.1");
    put(&a, "192.0.2.2");
    sg_addrs_interleave(&a);
    const char *want[] = {"192.0.2.3", "192.0.2.1", "192.0.2.2"};
    expect_order(&a, want, 3);
}

Test(resolve, prefer_moves_one_address_first_and_keeps_the_rest)
{
    struct sg_addrs a = {0};
    put(&a, "::1");
    put(&a, "127.0.0.1");
    put(&a, "::2");
    put(&a, "127.0.0.2");
    sg_addrs_prefer(&a, 2);
    const char *want[] = {"::2", "::1", "127.0.0.1", "127.0.0.2"};
    expect_order(&a, want, 4);
    sg_addrs_prefer(&a, 0);
    expect_order(&a, want, 4);
}

/* Polls the resolver for up to 10 s (the machine may be busy). */
static int take(struct sg_resolver *r, struct sg_addrs *a, int *err)
{
    for (int i = 0; i < 10000; i++) {
        if (sg_resolver_take(r, a, err))
            return 1;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return 0;
}

Test(resolve, the_thread_answers_each_request_and_only_once)
{
    struct sg_resolver *r;
    cr_assert_eq(sg_resolver_new(&r, "localhost", 8080), 0);
    struct sg_addrs a;
    int err = -1;
    cr_expect_eq(sg_resolver_take(r, &a, &err), 0, "nothing before a request");
    sg_resolver_ask(r);
    cr_assert(take(r, &a, &err), "no answer from the resolver thread");
    cr_expect_eq(err, 0, "%s", gai_strerror(err));
    cr_assert(a.n >= 1);
    int port = a.a[0].ss_family == AF_INET
                   ? ntohs(((struct sockaddr_in *)&a.a[0])->sin_port)
                   : ntohs(((struct sockaddr_in6 *)&a.a[0])->sin6_port);
    cr_expect_eq(port, 8080);
    cr_expect_eq(sg_resolver_take(r, &a, &err), 0, "one answer per request");
    sg_resolver_ask(r);
    cr_expect(take(r, &a, &err), "a second request is answered too");
    sg_resolver_free(r);
}

Test(resolve, a_name_that_does_not_exist_reports_the_lookup_error)
{
    struct sg_resolver *r;
    cr_assert_eq(sg_resolver_new(&r, "no-such-host.invalid", 80), 0);
    sg_resolver_ask(r);
    struct sg_addrs a;
    int err = 0;
    cr_assert(take(r, &a, &err));
    cr_expect_eq(a.n, 0);
    cr_expect_neq(err, 0);
    sg_resolver_free(r);
}
