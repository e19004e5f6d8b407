/* SPDX-License-Identifier: MIT */
/*
 * resolve.c -- the resolver thread and Happy Eyeballs address order.
 *
 * Shared state (struct sg_resolver) lives on the heap and is owned by two
 * references: the client's and the thread's.  The last one to let go frees
 * it, so a client shut down while getaddrinfo() hangs can return at once
 * and leave the thread to clean up after the lookup returns.
 *
 * Mailbox, under mu:
 *   asked    generation of the latest request (sender bumps it)
 *   started  generation the thread is working on
 *   done     generation of the latest finished lookup, with its result
 *   taken    generation the sender has taken
 *   busy     the thread is inside getaddrinfo()
 *   quit     the client let go: the thread exits at its next look
 * The thread sleeps on cv until asked > started or quit.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolve.h"
#include "segops.h"

struct sg_resolver {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int refs;
    int quit, busy;
    uint64_t asked, started, done, taken;
    int gai_err;
    struct sg_addrs result;
    char host[256];
    char port[8];
};

static void release(struct sg_resolver *r)
{
    pthread_mutex_lock(&r->mu);
    int last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (last) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
    }
}

static void lookup(struct sg_resolver *r, struct sg_addrs *out, int *err)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    /* no AI_ADDRCONFIG: it hides loopback-only families, and an address
     * of a family the host cannot reach fails its connect at once, which
     * Happy Eyeballs turns into trying the next */
    hints.ai_flags = AI_NUMERICSERV;
    out->n = 0;
    *err = getaddrinfo(r->host, r->port, &hints, &res);
    if (*err != 0)
        return;
    for (struct addrinfo *a = res; a && out->n < SG_MAX_ADDRS; a = a->ai_next) {
        if (a->ai_addrlen > sizeof(out->a[0]) ||
            (a->ai_family != AF_INET && a->ai_family != AF_INET6))
            continue;
        memcpy(&out->a[out->n], a->ai_addr, a->ai_addrlen);
        out->len[out->n] = a->ai_addrlen;
        out->n++;
    }
    freeaddrinfo(res);
    if (out->n == 0)
        *err = EAI_NONAME;
    else
        sg_addrs_interleave(out);
}

static void *resolver_main(void *arg)
{
    struct sg_resolver *r = arg;
    pthread_setname_np(pthread_self(), "segops-resolve");
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->quit && r->asked == r->started)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->quit)
            break;
        uint64_t gen = r->asked;
        r->started = gen;
        r->busy = 1;
        pthread_mutex_unlock(&r->mu);
        struct sg_addrs res;
        int err;
        lookup(r, &res, &err);
        pthread_mutex_lock(&r->mu);
        r->busy = 0;
        r->result = res;
        r->gai_err = err;
        r->done = gen;
    }
    pthread_mutex_unlock(&r->mu);
    release(r);
    return NULL;
}

int sg_resolver_new(struct sg_resolver **out, const char *host, uint16_t port)
{
    *out = NULL;
    struct sg_resolver *r = calloc(1, sizeof(*r));
    if (!r)
        return SEGOPS_ENOMEM;
    snprintf(r->host, sizeof(r->host), "%s", host);
    snprintf(r->port, sizeof(r->port), "%u", (unsigned)port);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->refs = 2;
    if (pthread_create(&r->thread, NULL, resolver_main, r) != 0) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return SEGOPS_ETHREAD;
    }
    *out = r;
    return 0;
}

void sg_resolver_ask(struct sg_resolver *r)
{
    pthread_mutex_lock(&r->mu);
    if (!r->busy && r->asked == r->started) {
        r->asked++;
        pthread_cond_signal(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
}

int sg_resolver_take(struct sg_resolver *r, struct sg_addrs *out, int *gai_err)
{
    int got = 0;
    pthread_mutex_lock(&r->mu);
    if (r->done != r->taken) {
        r->taken = r->done;
        *out = r->result;
        *gai_err = r->gai_err;
        got = 1;
    }
    pthread_mutex_unlock(&r->mu);
    return got;
}

void sg_resolver_free(struct sg_resolver *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->quit = 1;
    int busy = r->busy;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (busy) {
        /* inside getaddrinfo(): do not wait for the network */
        pthread_detach(r->thread);
        release(r);
    } else {
        /* idle: it sees quit at once; join it and free */
        pthread_join(r->thread, NULL);
        release(r);
    }
}

void sg_resolver_forget(struct sg_resolver *r)
{
    free(r); /* the child has no resolver thread and no lock holder */
}

void sg_addrs_interleave(struct sg_addrs *a)
{
    if (a->n < 3 && (a->n < 2 || a->a[0].ss_family != a->a[1].ss_family))
        return;
    struct sg_addrs out;
    int first = a->a[0].ss_family;
    int used[SG_MAX_ADDRS] = {0};
    out.n = 0;
    int want = first;
    while (out.n < a->n) {
        int pick = -1;
        for (int i = 0; i < a->n; i++) {
            if (!used[i] && a->a[i].ss_family == want) {
                pick = i;
                break;
            }
        }
        if (pick < 0) /* this family is exhausted: the rest in order */
            for (int i = 0; i < a->n && pick < 0; i++)
                if (!used[i])
                    pick = i;
        used[pick] = 1;
        out.a[out.n] = a->a[pick];
        out.len[out.n] = a->len[pick];
        out.n++;
        want = want == AF_INET6 ? AF_INET : AF_INET6;
    }
    *a = out;
}

void sg_addrs_prefer(struct sg_addrs *a, int i)
{
    if (i <= 0 || i >= a->n)
        return;
    struct sockaddr_storage s = a->a[i];
    socklen_t l = a->len[i];
    memmove(&a->a[1], &a->a[0], (size_t)i * sizeof(a->a[0]));
    memmove(&a->len[1], &a->len[0], (size_t)i * sizeof(a->len[0]));
    a->a[0] = s;
    a->len[0] = l;
}
