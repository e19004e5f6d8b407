/* SPDX-License-Identifier: MIT */
/*
 * test_abi.c -- the sized structs (segops.h, "ABI"): a binary built against
 * an older header works with a newer library.
 *
 * This program is compiled against today's <segops.h> and linked with a
 * library one layout AHEAD: src/client.c and src/metrics.c built with
 * SEGOPS_ABI_NEXT, which appends a field to segops_options and to
 * segops_counters (tests/CMakeLists.txt).  So, exactly as a 0.2.0 binary
 * meets a later 0.2.x library, our structs are shorter than the library's.
 * Each is placed right before a PROT_NONE page: a library that read
 * options or wrote counters past `size` would crash the test.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "segops.h"

#ifdef SEGOPS_ABI_NEXT
#error "test_abi.c must see the released layout, not the next one"
#endif

/* n bytes ending exactly at a PROT_NONE page. */
static void *before_guard(size_t n)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    cr_assert_eq(mprotect(m + pg, (size_t)pg, PROT_NONE), 0);
    cr_assert_eq(n % 8, 0); /* keeps the struct aligned */
    return m + pg - n;
}

static segops_options *guarded_options(void)
{
    segops_options *o = before_guard(sizeof(*o));
    segops_options_init(o);
    o->api_url = "http://127.0.0.1:9"; /* nothing is sent in these tests */
    o->api_key = "sk_test";
    o->logger = segops_log_discard;
    o->max_retries = SEGOPS_RETRIES_NONE;
    return o;
}

Test(abi, initialisers_record_the_callers_size)
{
    segops_options a = SEGOPS_OPTIONS_INIT, b;
    segops_options_init(&b);
    cr_expect_eq(a.size, sizeof(segops_options));
    cr_expect_eq(b.size, sizeof(segops_options));
    cr_expect_null(a.api_url);
    cr_expect_eq(a.batch_size, 0);
    segops_counters s = SEGOPS_COUNTERS_INIT, t;
    segops_counters_init(&t);
    cr_expect_eq(s.size, sizeof(segops_counters));
    cr_expect_eq(t.size, sizeof(segops_counters));
}

/* Options of the older layout: read up to `size`, the newer field takes its
 * default; counters: written up to `size`, `size` itself kept. */
Test(abi, older_layout_is_read_and_written_only_up_to_its_size)
{
    segops_options *o = guarded_options();
    segops_client *c;
    cr_assert_eq(segops_client_new(o, &c), 0);
    cr_assert_eq(segops_track(c, &(segops_event){.user_id = "u", .event_type = "e"}), 0);
    cr_assert_eq(segops_track(c, &(segops_event){.user_id = "", .event_type = "e"}),
                 SEGOPS_EUSERID);

    segops_counters *s = before_guard(sizeof(*s));
    memset(s, 0xAB, sizeof(*s));
    s->size = sizeof(*s);
    cr_assert_eq(segops_stats(c, s), 0);
    cr_expect_eq(s->size, sizeof(*s));
    cr_expect_eq(s->accepted, 1);
    cr_expect_eq(s->rejected_invalid, 1);
    cr_expect_eq(s->dropped_full, 0);

    char text[SEGOPS_PROMETHEUS_MAX];
    cr_expect_eq(segops_stats_prometheus(c, text, sizeof(text), NULL), 0);

    segops_counters *fin = before_guard(sizeof(*fin));
    memset(fin, 0xCD, sizeof(*fin));
    fin->size = sizeof(*fin);
    /* nothing listens on port 9: the event fails, and the lifetime report
     * says so */
    int rc = segops_shutdown_stats(c, 2000, fin);
    cr_expect(rc == SEGOPS_ECONNECT || rc == SEGOPS_ETIMEDOUT, "%s", segops_strerror(rc));
    cr_expect_eq(fin->size, sizeof(*fin));
    cr_expect_eq(fin->accepted, 1);
    cr_expect_eq(fin->failed, 1);
    cr_expect_eq(fin->pending, 0);
    cr_expect_eq(fin->rejected_invalid, 1);
}

/* Size 0 (not initialised), a size smaller than the first sized layout,
 * and a size larger than the library knows (a binary built against a
 * newer header) are refused with SEGOPS_ESIZE, and nothing is done. */
Test(abi, size_zero_small_or_unknown_larger_is_refused)
{
    segops_options o = SEGOPS_OPTIONS_INIT;
    o.api_url = "http://127.0.0.1:9";
    o.api_key = "sk_test";
    o.logger = segops_log_discard;
    segops_client *c = (segops_client *)1;
    /* offsetof(dns_refresh_ms): short of the first sized layout (0.2.0,
     * which ends with dns_refresh_ms), whatever fields came after it */
    size_t bad[] = {0, 8, offsetof(segops_options, dns_refresh_ms), sizeof(o) + 64,
                    (size_t)1 << 40, SIZE_MAX};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.size = bad[i];
        cr_expect_eq(segops_client_new(&o, &c), SEGOPS_ESIZE, "size %zu", bad[i]);
        cr_expect_null(c);
    }
    o.size = sizeof(o);
    o.max_retries = SEGOPS_RETRIES_NONE;
    cr_assert_eq(segops_client_new(&o, &c), 0);

    segops_counters s = SEGOPS_COUNTERS_INIT;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s.size = bad[i];
        cr_expect_eq(segops_stats(c, &s), SEGOPS_ESIZE, "size %zu", bad[i]);
        /* refused: the client stays open */
        cr_expect_eq(segops_shutdown_stats(c, 1000, &s), SEGOPS_ESIZE, "size %zu", bad[i]);
    }
    cr_expect_eq(segops_track(c, &(segops_event){.user_id = "u", .event_type = "still_open"}),
                 0);
    cr_expect_eq(segops_stats(c, NULL), SEGOPS_EINVAL);
    cr_expect_eq(segops_shutdown_stats(c, 1000, NULL), SEGOPS_EINVAL);
    cr_expect_eq(segops_shutdown_stats(NULL, 1000, &s), SEGOPS_EINVAL);
    cr_expect_str_eq(segops_strerror(SEGOPS_ESIZE) + 0 * 0, segops_strerror(SEGOPS_ESIZE));
    cr_expect(strncmp(segops_strerror(SEGOPS_ESIZE), "SEGOPS_ESIZE: ", 14) == 0);
    uint64_t lost = 0;
    segops_shutdown(c, 1000, &lost);
    cr_expect_eq(lost, 1);
}
