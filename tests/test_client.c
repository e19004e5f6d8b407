/* SPDX-License-Identifier: MIT */
/*
 * Integration tests: the client against segops-sink over real loopback
 * sockets, real threads.  ctest runs this file twice, with SEGOPS_IO=uring
 * and SEGOPS_IO=poll, so every behaviour is checked under both drivers.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "client.h" /* the queue, for the lane-commit test */
#include "lane_pages.h"
#include "queue.h" /* SG_TSAN */
#include "timefmt.h"
#include <sched.h>
#include <stdint.h>

static struct harness H;

static int track_n(segops_client *c, int thread, int from, int n)
{
    int ok = 0;
    for (int i = from; i < from + n; i++) {
        segops_prop p[] = {SEGOPS_I64("thread", thread), SEGOPS_I64("seq", i),
                           SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95)};
        segops_event ev = {
            .user_id = "user-123", .event_type = "order_placed", .payload = p, .payload_len = 4};
        if (segops_track(c, &ev) == 0)
            ok++;
    }
    return ok;
}

static void stats(segops_counters *s)
{
    cr_assert_eq(segops_stats(H.c, s), 0);
}

static void teardown(void)
{
    h_stop(&H);
}

TestSuite(client, .fini = teardown, .timeout = 60);

/* The client struct holds cache-line-aligned groups (the queue's): its
 * memory must be aligned as its type says, whatever the heap looks like
 * when it is made.  calloc() gave 16-byte alignment, so most clients
 * straddled the lines their layout keeps apart. */
Test(client, client_memory_is_aligned_as_its_type)
{
    segops_options o = h_opts();
    o.api_url = "http://127.0.0.1:9"; /* never contacted: nothing is tracked */
    o.api_key = "sk_test";
    void *spacer[16];
    for (int i = 0; i < 16; i++) {
        spacer[i] = malloc(16 * (size_t)(i + 1)); /* moves the heap's next chunk */
        cr_assert(spacer[i] != NULL);
        segops_client *c;
        int rc = segops_client_new(&o, &c);
        cr_assert_eq(rc, 0, "%s", segops_strerror(rc));
        cr_expect_eq((uintptr_t)c % _Alignof(struct segops_client), 0,
                     "client %d at %p: not %zu-byte aligned", i, (void *)c,
                     _Alignof(struct segops_client));
        cr_expect_eq((uintptr_t)&c->q.closing % 64, 0, "the queue's shared line");
        cr_assert_eq(segops_shutdown(c, 5000, NULL), 0);
    }
    for (int i = 0; i < 16; i++)
        free(spacer[i]);
}

Test(client, delivers_a_batch_once_batch_size_events_are_queued)
{
    h_start_sink(&H, NULL, 1000);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 19), 19);
    h_sleep_ms(300);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.queued, 0, "19 < batch size 20: nothing may be sent yet");
    cr_assert_eq(track_n(H.c, 0, 19, 1), 1);
    cr_expect_eq(h_wait_queued(&H, 20, 30000), 20);
    h_counts(&H, &k);
    cr_expect_eq(k.batch_requests, 1);
    h_expect_invariant(H.c);
}

/* The sender samples the lanes' depth once per turn; producers can fill
 * them between two turns (the demo's burst saw pending=114428 with
 * queue_high_water=0).  A snapshot raises the mark to its own depth. */
Test(client, high_water_is_never_below_the_depth_of_the_same_snapshot)
{
    h_start_sink(&H, NULL, 1000);
    segops_options o = h_opts();
    o.idle_poll_us = 1000000; /* an idle sender then sleeps ~0.2-1 s a turn */
    cr_assert_eq(h_client(&H, &o), 0);
    h_sleep_ms(400);
    cr_assert_eq(track_n(H.c, 0, 0, 19), 19); /* < batch_size: nothing is due */
    segops_counters s = SEGOPS_COUNTERS_INIT;
    cr_assert_eq(segops_stats(H.c, &s), 0);
    cr_expect_eq(s.queue_depth, 19);
    cr_expect_geq(s.queue_high_water, s.queue_depth);
    segops_counters t = SEGOPS_COUNTERS_INIT;
    cr_assert_eq(segops_stats(H.c, &t), 0);
    cr_expect_geq(t.queue_high_water, s.queue_high_water, "the mark never goes down");
}

/* The idle sender's longest sleep: 5 ms, chosen from bench/bench_idle.c
 * (README, "Idle cost"): ~180 wake-ups/s and ~0.6 % of a core idle instead
 * of ~950/s and ~2.3 % at 1 ms. */
Test(client, an_idle_sender_sleeps_at_most_5_ms_by_default)
{
    h_start_sink(&H, NULL, 10);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    cr_expect_eq(H.c->cfg.idle_poll_us, 5000);
    h_stop(&H);
    h_start_sink(&H, NULL, 10);
    o = h_opts();
    o.idle_poll_us = 250;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_expect_eq(H.c->cfg.idle_poll_us, 250);
}

Test(client, delivers_on_the_flush_interval)
{
    h_start_sink(&H, NULL, 1000);
    segops_options o = h_opts();
    o.flush_interval_ms = 400;
    cr_assert_eq(h_client(&H, &o), 0);
    int64_t t0 = h_now_ms();
    cr_assert_eq(track_n(H.c, 0, 0, 5), 5);
    /* 5 < batch_size and no flush: only the interval can send them; not
     * before it (a lower bound holds on a busy machine, an upper one not) */
    cr_expect_eq(h_wait_queued(&H, 5, 30000), 5);
    int64_t dt = h_now_ms() - t0;
    cr_expect(dt >= 350, "sent after %lld ms, before the 400 ms interval", (long long)dt);
}

Test(client, splits_a_thousand_events_into_two_requests_of_500)
{
    h_start_sink(&H, NULL, 1000);
    segops_options o = h_opts();
    o.batch_size = 1000;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 999), 999);
    h_sleep_ms(200);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.queued, 0);
    cr_assert_eq(track_n(H.c, 0, 999, 1), 1);
    cr_expect_eq(h_wait_queued(&H, 1000, 30000), 1000);
    h_counts(&H, &k);
    cr_expect_eq(k.batch_requests, 2);
    pthread_mutex_lock(&H.mu);
    cr_expect_eq(H.nkeys, 2);
    cr_expect_eq(H.keys[0].events, 500);
    cr_expect_eq(H.keys[1].events, 500);
    pthread_mutex_unlock(&H.mu);
}

Test(client, flush_waits_for_the_request_in_flight)
{
    struct sink_opts so = {0};
    so.delay_ms = 300;
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 10), 10);
    cr_expect_eq(segops_flush(H.c, 5000), 0);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.queued, 10, "flush returned before delivery");
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.delivered, 10);
    cr_expect_eq(s.pending, 0);
}

Test(client, flush_times_out_on_a_slow_server)
{
    struct sink_opts so = {0};
    so.delay_ms = 1500;
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 3), 3);
    cr_expect_eq(segops_flush(H.c, 200), SEGOPS_ETIMEDOUT);
    cr_expect_eq(segops_flush(H.c, 5000), 0);
}

Test(client, shutdown_delivers_ten_thousand_pending_events)
{
    h_start_sink(&H, NULL, 10000);
    segops_options o = h_opts();
    o.queue_capacity = 16384;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 10000), 10000);
    uint64_t lost = 99;
    cr_expect_eq(segops_shutdown(H.c, 10000, &lost), 0);
    H.c = NULL;
    cr_expect_eq(lost, 0);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.queued, 10000);
    cr_expect_eq(H.tagged, 10000);
    cr_expect_eq(H.dup_tagged, 0);
}

Test(client, retries_503_three_times_then_delivers)
{
    struct sink_opts so = {0};
    so.fail_status = 503;
    so.fail_first = 3;
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 5), 5);
    cr_expect_eq(segops_flush(H.c, 10000), 0);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.delivered, 5);
    cr_expect_eq(s.retries, 3);
    cr_expect_eq(s.requests, 4);
    cr_expect_eq(s.failed, 0);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.repeated_keys, 3, "the Idempotency-Key must stay the same across retries");
    cr_expect_eq(H.last.attempts, 4);
    h_expect_invariant(H.c);
}

Test(client, fails_after_max_retries_with_exact_counters)
{
    struct sink_opts so = {0};
    so.fail_status = 500;
    so.fail_every = 1;
    so.fail_detail = "database on fire";
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 7), 7);
    int64_t t0 = h_now_ms();
    cr_expect_eq(segops_flush(H.c, 10000), SEGOPS_ERETRIES);
    int64_t dt = h_now_ms() - t0;
    /* back-off 0 + 500 + 1000 ms (+ <= 10% jitter) */
    cr_expect(dt >= 1400, "retried too fast: %lld ms", (long long)dt);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.failed, 7);
    cr_expect_eq(s.delivered, 0);
    cr_expect_eq(s.retries, 3);
    cr_expect_eq(s.requests, 4);
    cr_expect_eq(s.batches, 1);
    cr_expect_eq(s.pending, 0);
    cr_expect_eq(H.last.result, SEGOPS_ERETRIES);
    cr_expect_eq(H.last.status, 500);
    cr_expect_str_eq(H.last_detail, "database on fire");
    cr_expect(strstr(H.log, "database on fire") != NULL, "log: %s", H.log);
    cr_expect(strstr(H.log, "sk_test") == NULL, "the API key leaked into a log line");
    h_expect_invariant(H.c);
}

Test(client, honours_retry_after_on_429)
{
    struct sink_opts so = {0};
    so.fail_status = 429;
    so.fail_first = 1;
    so.retry_after = "1";
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 2), 2);
    int64_t t0 = h_now_ms();
    cr_expect_eq(segops_flush(H.c, 10000), 0);
    int64_t dt = h_now_ms() - t0;
    cr_expect(dt >= 950, "Retry-After: 1 gave %lld ms", (long long)dt);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.retries, 1);
    cr_expect_eq(s.delivered, 2);
}

/* Back-off 0 ms, then 500 ms: the first retry follows the failure at once,
 * the second only after 500 ms.  Compared with each other, from the
 * sink's own clock, so that a busy machine (which delays both) cannot make
 * the test fail: the second gap has a 500 ms floor, the first has none. */
Test(client, first_retry_is_immediate_without_retry_after)
{
    struct sink_opts so = {0};
    so.fail_status = 502;
    so.fail_first = 2;
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 2), 2);
    cr_expect_eq(segops_flush(H.c, 10000), 0);
    struct sink_req_rec r[8];
    size_t n = sink_requests(H.sink, r, 8);
    cr_assert_eq(n, 3, "%zu requests", n);
    int64_t first = r[1].t_ns - r[0].t_ns, second = r[2].t_ns - r[1].t_ns;
    cr_expect_geq(second, 500000000, "second retry after %lld ns", (long long)second);
    cr_expect_lt(first, second, "the first retry waited %lld ns, the second %lld ns",
                 (long long)first, (long long)second);
}

Test(client, unauthorized_is_not_retried_and_logs_the_detail_not_the_key)
{
    h_start_sink(&H, NULL, 1000);
    segops_options o = h_opts();
    o.api_key = "sk_wrong_secret_123";
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 3), 3);
    cr_expect_eq(segops_flush(H.c, 5000), SEGOPS_EREJECTED);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.requests, 1);
    cr_expect_eq(s.retries, 0);
    cr_expect_eq(s.failed, 3);
    cr_expect_eq(H.last.status, 401);
    cr_expect(strstr(H.log, "401") != NULL, "log: %s", H.log);
    cr_expect(strstr(H.log, "Invalid API key") != NULL, "log: %s", H.log);
    cr_expect(strstr(H.log, "sk_wrong_secret_123") == NULL, "key leaked: %s", H.log);
    h_expect_invariant(H.c);
}

Test(client, resends_on_an_idle_connection_the_server_closed_without_a_retry)
{
    struct sink_opts so = {0};
    so.idle_close_ms = 100;
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 1), 1);
    cr_expect_eq(segops_flush(H.c, 5000), 0);
    h_sleep_ms(400); /* the sink closes the idle keep-alive connection */
    cr_assert_eq(track_n(H.c, 0, 1, 1), 1);
    cr_expect_eq(segops_flush(H.c, 5000), 0);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.delivered, 2);
    cr_expect_eq(s.retries, 0);
    cr_expect_eq(s.reconnects, 1);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.connections, 2);
}

Test(client, keeps_one_connection_across_batches)
{
    h_start_sink(&H, NULL, 1000);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(track_n(H.c, 0, i * 10, 10), 10);
        cr_assert_eq(segops_flush(H.c, 5000), 0);
    }
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.connections, 1);
    cr_expect_eq(k.batch_requests, 5);
}

Test(client, full_queue_drops_and_counts_without_blocking)
{
    struct sink_opts so = {0};
    so.delay_ms = 2000;
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    o.queue_capacity = 64;
    o.batch_size = 10;
    cr_assert_eq(h_client(&H, &o), 0);
    int full = 0, ok = 0;
    int64_t t0 = h_now_ms();
    for (int i = 0; i < 500; i++) {
        segops_prop p[] = {SEGOPS_I64("thread", 0), SEGOPS_I64("seq", i)};
        int rc = segops_track(
            H.c,
            &(segops_event){.user_id = "u", .event_type = "e", .payload = p, .payload_len = 2});
        if (rc == SEGOPS_EFULL)
            full++;
        else if (rc == 0)
            ok++;
    }
    /* never blocked: the calls returned EFULL instead of waiting for room
     * (how long they took is the bench suite's business) */
    (void)t0;
    cr_expect_gt(full, 0);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.dropped_full, (uint64_t)full);
    cr_expect_eq(s.accepted, (uint64_t)ok);
    cr_expect_eq(segops_flush(H.c, 20000), 0);
    stats(&s);
    cr_expect_eq(s.delivered, (uint64_t)ok);
    h_expect_invariant(H.c);
}

Test(client, eight_threads_deliver_every_event_exactly_once, .timeout = 120)
{
#ifdef SG_TSAN
    enum { T = 8, N = 10000 }; /* TSan runs ~10x slower */
#else
    enum { T = 8, N = 100000 };
#endif
    h_start_sink(&H, NULL, N);
    segops_options o = h_opts();
    o.flush_interval_ms = 100;
    o.queue_capacity = 8192;
    o.max_producers = T;
    cr_assert_eq(h_client(&H, &o), 0);
    h_exactly_once(&H, T, N, 60000);
}

Test(client, shutdown_deadline_cuts_a_hanging_server_short)
{
    struct sink_opts so = {0};
    so.delay_ms = 10000;
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 10), 10);
    int64_t t0 = h_now_ms();
    uint64_t lost = 0;
    cr_expect_eq(segops_shutdown(H.c, 500, &lost), SEGOPS_ETIMEDOUT);
    H.c = NULL;
    int64_t dt = h_now_ms() - t0;
    /* the server answers after 10 s: waiting for it would take that long;
     * the bound is loose so that a busy machine cannot break it */
    cr_expect(dt >= 450 && dt < 5000, "shutdown(500) took %lld ms", (long long)dt);
    cr_expect_eq(lost, 10);
}

static void *shutdown_thread(void *arg)
{
    struct harness *h = arg;
    uint64_t lost = 1;
    int rc = segops_shutdown(h->c, 10000, &lost);
    return rc == 0 && lost == 0 ? arg : NULL;
}

Test(client, refuses_events_once_shutdown_began_and_delivers_the_rest)
{
    struct sink_opts so = {0};
    so.delay_ms = 800; /* keeps shutdown busy while this thread tracks */
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    o.queue_capacity = 256; /* bounds the work shutdown has to do */
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 3), 3);
    pthread_t t;
    pthread_create(&t, NULL, shutdown_thread, &H);
    int rc = 0, i = 3, accepted = 3;
    for (int64_t t0 = h_now_ms(); h_now_ms() - t0 < 300 && rc != SEGOPS_ESHUTDOWN; i++) {
        segops_prop p[] = {SEGOPS_I64("thread", 0), SEGOPS_I64("seq", i)};
        rc = segops_track(
            H.c,
            &(segops_event){.user_id = "u", .event_type = "e", .payload = p, .payload_len = 2});
        accepted += rc == 0;
        sched_yield();
    }
    cr_expect_eq(rc, SEGOPS_ESHUTDOWN);
    void *ok;
    pthread_join(t, &ok);
    H.c = NULL;
    cr_expect(ok != NULL, "shutdown lost events");
    /* everything accepted before the refusal arrived, exactly once */
    cr_expect_eq(H.tagged, (uint64_t)accepted);
    cr_expect_eq(H.dup_tagged, 0);
}

Test(client, identify_sends_context_identified_with_traits)
{
    h_start_sink(&H, NULL, 0);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    segops_prop traits[] = {SEGOPS_STR("plan", "pro"), SEGOPS_BOOL("beta", 1)};
    segops_context ctx = {.user_id = "user-9", .traits = traits, .traits_len = 2};
    cr_assert_eq(segops_identify(H.c, &ctx), 0);
    cr_assert_eq(segops_flush(H.c, 5000), 0);
    cr_expect(strstr(H.last_event, "\"event_type\":\"context_identified\"") != NULL, "%s",
              H.last_event);
    cr_expect(strstr(H.last_event, "\"payload\":{\"plan\":\"pro\",\"beta\":true}") != NULL,
              "%s", H.last_event);
}

Test(client, occurred_at_is_the_time_of_the_track_call)
{
    h_start_sink(&H, NULL, 0);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    int64_t before = h_now_ms();
    cr_assert_eq(segops_track(H.c, &(segops_event){.user_id = "u", .event_type = "clicked"}), 0);
    int64_t after = h_now_ms();
    h_sleep_ms(400); /* sent well after the call */
    cr_assert_eq(segops_flush(H.c, 5000), 0);
    const char *p = strstr(H.last_event, "\"occurred_at\":\"");
    cr_assert_not_null(p, "%s", H.last_event);
    int64_t ms;
    cr_assert_eq(sg_rfc3339_parse(p + 15, SG_RFC3339_MS_LEN, &ms), 0, "%s", H.last_event);
    cr_expect(p[15 + SG_RFC3339_MS_LEN - 1] == 'Z');
    cr_expect(ms >= before - 2 && ms <= after + 2, "occurred_at %lld not in [%lld, %lld]",
              (long long)ms, (long long)before, (long long)after);
}

Test(client, validation_errors_are_counted_and_nothing_is_sent)
{
    h_start_sink(&H, NULL, 0);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    cr_expect_eq(segops_track(H.c, &(segops_event){.user_id = "", .event_type = "e"}),
                 SEGOPS_EUSERID);
    cr_expect_eq(segops_track(H.c, &(segops_event){.user_id = "u", .event_type = "Bad"}),
                 SEGOPS_EEVENTTYPE);
    cr_expect_eq(segops_track(H.c, NULL), SEGOPS_EINVAL);
    cr_expect_eq(segops_track(NULL, &(segops_event){.user_id = "u", .event_type = "e"}),
                 SEGOPS_EINVAL);
    cr_assert_eq(segops_flush(H.c, 2000), 0);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.rejected_invalid, 2);
    cr_expect_eq(s.accepted, 0);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.requests, 0);
}

Test(client, server_answer_variants_all_deliver)
{
    struct sink_opts variants[4];
    memset(variants, 0, sizeof(variants));
    variants[0].chunked = 1;
    variants[1].byte_by_byte = 1;
    variants[2].conn_close = 1;
    variants[3].close_after_answer = 1;
    for (int v = 0; v < 4; v++) {
        h_start_sink(&H, &variants[v], 1000);
        segops_options o = h_opts();
        cr_assert_eq(h_client(&H, &o), 0);
        for (int r = 0; r < 3; r++) {
            cr_assert_eq(track_n(H.c, 0, r * 5, 5), 5);
            cr_expect_eq(segops_flush(H.c, 5000), 0, "variant %d round %d", v, r);
        }
        segops_counters s = SEGOPS_COUNTERS_INIT;
        stats(&s);
        cr_expect_eq(s.delivered, 15, "variant %d", v);
        cr_expect_eq(s.failed, 0, "variant %d", v);
        cr_expect_eq(H.dup_tagged, 0, "variant %d", v);
        h_stop(&H);
    }
}

Test(client, creation_refuses_bad_options)
{
    segops_client *c = (segops_client *)1;
    segops_options o = SEGOPS_OPTIONS_INIT;
    o.api_url = "http://127.0.0.1:1";
    o.api_key = "sk_a\r\nX-Evil: 1";
    cr_expect_eq(segops_client_new(&o, &c), SEGOPS_EAPIKEY);
    cr_expect_null(c);
    o.api_key = "sk_ok";
    o.api_url = "http://127.0.0.1:1/\r\nX: y";
    cr_expect_eq(segops_client_new(&o, &c), SEGOPS_EURL);
    o.api_url = "ftp://example.com";
    cr_expect_eq(segops_client_new(&o, &c), SEGOPS_EURL);
    o.api_url = "http://127.0.0.1:1";
    o.slot_size = 100;
    cr_expect_eq(segops_client_new(&o, &c), SEGOPS_EOPTION);
    o.slot_size = 0;
    o.max_batch_bytes = 1000;
    cr_expect_eq(segops_client_new(&o, &c), SEGOPS_EOPTION);
    cr_expect_eq(segops_client_new(NULL, &c), SEGOPS_EINVAL);
    cr_expect_eq(segops_client_new(&o, NULL), SEGOPS_EINVAL);
}

Test(client, environment_fills_url_and_key)
{
    h_start_sink(&H, NULL, 0);
    setenv("SEGOPS_API_URL", H.url, 1);
    setenv("SEGOPS_API_KEY", "sk_test", 1);
    segops_options o = SEGOPS_OPTIONS_INIT;
    segops_client *c;
    cr_assert_eq(segops_client_new(&o, &c), 0);
    cr_assert_eq(segops_track(c, &(segops_event){.user_id = "u", .event_type = "e"}), 0);
    cr_expect_eq(segops_flush(c, 5000), 0);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(c, &s);
    cr_expect_eq(s.delivered, 1);
    cr_expect_eq(segops_shutdown(c, 5000, NULL), 0);
    unsetenv("SEGOPS_API_URL");
    unsetenv("SEGOPS_API_KEY");
}

Test(client, reports_the_io_driver_in_use)
{
    h_start_sink(&H, NULL, 0);
    cr_assert_eq(h_client(&H, NULL), 0);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    const char *io = getenv("SEGOPS_IO");
    if (io && strcmp(io, "poll") == 0)
        cr_expect_eq(s.io_mode, SEGOPS_IO_POLL);
    else if (io && strcmp(io, "uring") == 0)
        cr_expect_eq(s.io_mode, SEGOPS_IO_URING);
}

/* Starts the sink, points a client at http://host:<the sink's port>path,
 * tracks n events, flushes; *k gets what the sink counted. */
static void deliver_via(const char *host, const char *path, int n, struct sink_counts *k)
{
    h_start_sink(&H, NULL, 0);
    char url[80];
    snprintf(url, sizeof(url), "http://%s:%u%s", host, (unsigned)H.port, path);
    segops_options o = h_opts();
    o.api_url = url;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, n), n);
    cr_expect_eq(segops_flush(H.c, 5000), 0);
    h_counts(&H, k);
}

Test(client, resolves_host_names_on_the_sender)
{
    struct sink_counts k;
    deliver_via("localhost", "/", 3, &k);
    cr_expect_eq(k.queued, 3);
}

Test(client, keeps_the_base_url_path_prefix)
{
    struct sink_counts k;
    deliver_via("127.0.0.1", "/segops/", 2, &k);
    cr_expect_eq(k.batch_requests, 1);
    cr_expect_eq(k.queued, 2);
}

Test(client, connection_refused_fails_after_retries_as_econnect)
{
    /* a port with nothing listening: start a sink, note its port, stop it */
    h_start_sink(&H, NULL, 0);
    char url[64];
    snprintf(url, sizeof(url), "%s", H.url);
    sink_stop(H.sink);
    H.sink = NULL;
    segops_options o = h_opts();
    o.api_url = url;
    o.max_retries = 1;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 4), 4);
    cr_expect_eq(segops_flush(H.c, 5000), SEGOPS_ECONNECT);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.failed, 4);
    cr_expect_eq(s.retries, 1);
    cr_expect_eq(s.requests, 0);
    cr_expect_eq(H.last.result, SEGOPS_ECONNECT);
    cr_expect_eq(H.last.attempts, 2, "tries count even when the connection never opened");
    cr_expect(strstr(H.log, "after 2 attempts") != NULL, "log: %s", H.log);
    h_expect_invariant(H.c);
}

Test(client, request_timeout_retries_under_the_same_idempotency_key)
{
    struct sink_opts so = {0};
    so.delay_ms = 400;
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    o.request_timeout_ms = 150;
    o.max_retries = 1;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 2), 2);
    cr_expect_eq(segops_flush(H.c, 5000), SEGOPS_ERETRIES);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.requests, 2);
    cr_expect_eq(s.failed, 2);
    h_sleep_ms(600); /* the sink finishes both (slow) requests anyway */
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.requests, 2);
    cr_expect_eq(k.repeated_keys, 1, "a retry must reuse the batch's Idempotency-Key");
}

Test(client, counts_events_the_server_skipped)
{
    struct sink_opts so = {0};
    so.skip_user_id = "user-banned";
    h_start_sink(&H, &so, 0);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(segops_track(H.c, &(segops_event){.user_id = i % 3 ? "user-ok" : "user-banned",
                                                       .event_type = "page_viewed"}),
                     0);
    cr_expect_eq(segops_flush(H.c, 5000), 0);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.skipped, 4);
    cr_expect_eq(s.delivered, 6);
    cr_expect_eq(s.failed, 0);
    cr_expect_eq(H.last.skipped, 4);
    h_expect_invariant(H.c);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.skipped, 4);
    cr_expect_eq(k.queued, 6);
}


/* Loss is visible at the end (issue 13): 20 events failed with 401 early
 * in the run, later ones were delivered; shutdown must not say "OK, 0
 * undelivered" -- its report covers the client's whole lifetime. */
Test(client, shutdown_reports_failures_of_the_whole_lifetime)
{
    struct sink_opts so = {0};
    so.fail_status = 401;
    so.fail_first = 1;
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 20), 20);
    cr_expect_eq(segops_flush(H.c, 5000), SEGOPS_EREJECTED);
    cr_assert_eq(track_n(H.c, 0, 20, 5), 5);
    cr_expect_eq(segops_flush(H.c, 5000), 0); /* this flush's events arrived */
    uint64_t lost = 12345;
    int rc = segops_shutdown(H.c, 5000, &lost);
    H.c = NULL;
    cr_expect_eq(lost, 20);
    cr_expect_eq(rc, SEGOPS_EREJECTED, "%s", segops_strerror(rc));
}

/* The companion: the final counters over the lifetime, pending 0; and
 * events the server skipped count as undelivered too. */
Test(client, shutdown_stats_gives_the_final_lifetime_counters)
{
    struct sink_opts so = {0};
    so.skip_user_id = "user-banned";
    h_start_sink(&H, &so, 0);
    segops_options o = h_opts();
    o.queue_capacity = 4;
    o.max_producers = 1;
    cr_assert_eq(h_client(&H, &o), 0);
    int full = 0;
    for (int i = 0; i < 6; i++) {
        int r = segops_track(H.c, &(segops_event){.user_id = i % 2 ? "user-ok" : "user-banned",
                                                  .event_type = "page_viewed"});
        full += r == SEGOPS_EFULL;
    }
    cr_expect_eq(segops_track(H.c, &(segops_event){.user_id = "u", .event_type = "Bad"}),
                 SEGOPS_EEVENTTYPE);
    segops_counters fin = SEGOPS_COUNTERS_INIT;
    int rc = segops_shutdown_stats(H.c, 5000, &fin);
    H.c = NULL;
    cr_expect_eq(fin.accepted, (uint64_t)(6 - full));
    cr_expect_eq(fin.dropped_full, (uint64_t)full);
    cr_expect_eq(fin.rejected_invalid, 1);
    cr_expect_eq(fin.pending, 0);
    cr_expect_eq(fin.failed, 0);
    cr_expect_eq(fin.delivered + fin.skipped, fin.accepted);
    cr_expect_gt(fin.skipped, 0);
    /* only skips: SEGOPS_EREJECTED (the server refused them), not OK */
    cr_expect_eq(rc, SEGOPS_EREJECTED, "%s", segops_strerror(rc));
}

/* A thread's first track must not take the lane's page faults: the sender
 * commits the next owned lane as soon as one is claimed. */
Test(client, sender_commits_the_next_lane_after_a_claim)
{
    h_start_sink(&H, NULL, 1000);
    segops_options o = h_opts();
    o.max_producers = 4;
    o.queue_capacity = 1024;
    cr_assert_eq(h_client(&H, &o), 0);
    struct sg_queue *q = &H.c->q;
    cr_expect_eq(lane_resident(q, 0), 1.0);
    h_sleep_ms(100);
    cr_expect_eq(lane_resident(q, 1), 0.0, "nothing claimed yet: no lane ahead needed");
    cr_assert_eq(track_n(H.c, 0, 0, 1), 1); /* this thread claims lane 0 */
    double r = 0;
    for (int i = 0; i < 250 && (r = lane_resident(q, 1)) < 1.0; i++)
        h_sleep_ms(20);
    cr_expect_eq(r, 1.0, "lane 1 committed by the sender");
    cr_expect_eq(lane_resident(q, 2), 0.0, "one lane ahead only");
    cr_expect_eq(segops_flush(H.c, 5000), 0);
    h_expect_invariant(H.c);
}

/* Idempotency-Keys on the wire: 32 hex digits whose halves differ, one
 * per batch, and none shared between two clients (each draws its own 128
 * random bits). */
Test(client, every_batch_of_every_client_has_its_own_idempotency_key)
{
    enum { B = 40 };
    h_start_sink(&H, NULL, 1000);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    segops_options o2 = h_opts();
    o2.api_url = H.url;
    o2.api_key = "sk_test";
    o2.logger = segops_log_discard;
    segops_client *c2;
    cr_assert_eq(segops_client_new(&o2, &c2), 0);
    for (int b = 0; b < B; b++) {
        cr_assert_eq(track_n(H.c, 0, b, 1), 1);
        cr_assert_eq(segops_flush(H.c, 10000), 0);
        cr_assert_eq(track_n(c2, 1, b, 1), 1);
        cr_assert_eq(segops_flush(c2, 10000), 0);
    }
    cr_assert_eq(segops_shutdown(c2, 5000, NULL), 0);
    pthread_mutex_lock(&H.mu);
    cr_expect_eq(H.nkeys, 2 * B, "%u distinct keys for %d batches", H.nkeys, 2 * B);
    for (uint32_t i = 0; i < H.nkeys; i++) {
        const char *k = H.keys[i].key;
        cr_expect_eq(strlen(k), 32, "%s", k);
        cr_expect_eq(strspn(k, "0123456789abcdef"), 32, "%s", k);
        cr_expect_neq(memcmp(k, k + 16, 16), 0, "halves equal: %s", k);
        cr_expect_eq(H.keys[i].events, 1, "key %s carried %u events", k, H.keys[i].events);
    }
    pthread_mutex_unlock(&H.mu);
}

/* A refused api_url: SEGOPS_EURL, and one log line through the options'
 * logger, on the creating thread, naming the reason -- never the key or a
 * password in the URL. */
Test(client, a_refused_url_is_logged_with_its_reason)
{
    static const struct {
        const char *url, *why;
    } t[] = {
        {"https://0x7f.0.0.1:8080", "ambiguous IPv4 address"},
        {"https://127.1", "ambiguous IPv4 address"},
        {"http://h:99999", "port must be a number from 1 to 65535"},
        {"https://user:hunter2@api.example", "user info"},
        {"https://api.example/?key=sk_secret_123", "query"},
        {"https://h\r\nX-Evil: 1", "control character"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        memset(&H, 0, sizeof(H));
        pthread_mutex_init(&H.mu, NULL);
        segops_options o = h_opts();
        o.api_url = t[i].url;
        o.api_key = "sk_secret_123";
        cr_assert_eq(h_client(&H, &o), SEGOPS_EURL, "%s", t[i].url);
        cr_assert_null(H.c);
        cr_expect_eq(H.log_lines, 1, "%s: %u lines: %s", t[i].url, H.log_lines, H.log);
        cr_expect(strstr(H.log, "api_url refused") && strstr(H.log, t[i].why),
                  "%s: log lacks \"%s\": %s", t[i].url, t[i].why, H.log);
        cr_expect(!strstr(H.log, "sk_secret") && !strstr(H.log, "hunter2"),
                  "secret logged: %s", H.log);
        cr_expect(!strchr(H.log, '\r'), "control character logged raw: %s", H.log);
        pthread_mutex_destroy(&H.mu);
    }
}

struct held_thread {
    segops_client *c;
    pthread_barrier_t *all_in;   /* every thread tracked */
    pthread_barrier_t *may_exit; /* the test looked: threads may exit */
    int id, ok;
};

static void *track_and_hold(void *arg)
{
    struct held_thread *t = arg;
    t->ok = track_n(t->c, t->id, 0, 1);
    pthread_barrier_wait(t->all_in);
    pthread_barrier_wait(t->may_exit); /* exiting gives the lane back */
    return NULL;
}

/* The default geometry (issue 14): 256 owned lanes and 2 shared, the
 * shared lanes and the first 16 owned lanes holding 8192 events, the
 * others 1024.  40 threads alive at once each get an owned lane of their
 * own (none is refused with ENOLANE, as 24 of them were with 16 lanes),
 * and the sender sees every lane a thread claimed (all events delivered). */
Test(client, default_lanes_serve_40_live_threads_each_with_its_own_lane, .timeout = 120)
{
    enum { T = 40 };
    h_start_sink(&H, NULL, T);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    const struct sg_queue *q = &H.c->q;
    cr_expect_eq(q->nowned, 256);
    cr_expect_eq(q->nshared, 2);
    for (uint32_t i = 0; i < q->nlanes; i++)
        cr_expect_eq(q->lanes[i].nslots, i < 16 || i >= 256 ? 8193u : 1025u, "lane %u", i);

    struct held_thread t[T];
    pthread_t th[T];
    pthread_barrier_t all_in, may_exit;
    pthread_barrier_init(&all_in, NULL, T + 1);
    pthread_barrier_init(&may_exit, NULL, T + 1);
    for (int i = 0; i < T; i++) {
        t[i] = (struct held_thread){H.c, &all_in, &may_exit, i, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, track_and_hold, &t[i]), 0);
    }
    pthread_barrier_wait(&all_in); /* all T tracked; none can exit yet */
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.lanes_in_use, T, "every live thread holds an owned lane: %u", s.lanes_in_use);
    /* lanes 0..T-1, or one past: the sender may hold the lane it commits
     * ahead for an instant, and a claimer then takes the next one */
    uint32_t scan = atomic_load(&H.c->q.scan);
    cr_expect(scan >= T && scan <= T + 1, "the sender's span covers their lanes: %u", scan);
    pthread_barrier_wait(&may_exit);
    cr_expect_eq(s.dropped_no_lane, 0);
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(t[i].ok, 1, "thread %d's event", i);
    }
    pthread_barrier_destroy(&all_in);
    pthread_barrier_destroy(&may_exit);
    cr_expect_eq(segops_flush(H.c, 30000), 0);
    stats(&s);
    cr_expect_eq(s.delivered, T);
    h_expect_invariant(H.c);
}

/* ------------------------------------------------------ prepared events */

Test(client, prepared_events_deliver_exactly_once_from_eight_threads, .timeout = 120)
{
#ifdef SG_TSAN
    enum { T = 8, N = 5000 };
#else
    enum { T = 8, N = 50000 };
#endif
    h_start_sink(&H, NULL, N);
    segops_options o = h_opts();
    o.flush_interval_ms = 100;
    o.max_producers = T;
    cr_assert_eq(h_client(&H, &o), 0);
    h_exactly_once_as(&H, T, N, 60000, H_TRACK_PREPARED);
    cr_expect_eq(H.untagged, 0);
}

/* One SEGOPS_TRACK_PREPARED() line run by eight threads that start
 * together: its first use is raced, one handle is installed, the others
 * are freed (ASan's leak check sees a loser not freed), and every event
 * reaches the sink once. */
Test(client, track_prepared_macro_delivers_exactly_once_first_use_raced, .timeout = 120)
{
#ifdef SG_TSAN
    enum { T = 8, N = 5000 };
#else
    enum { T = 8, N = 50000 };
#endif
    h_start_sink(&H, NULL, N);
    segops_options o = h_opts();
    o.flush_interval_ms = 100;
    o.max_producers = T;
    cr_assert_eq(h_client(&H, &o), 0);
    h_exactly_once_as(&H, T, N, 60000, H_TRACK_MACRO);
    cr_expect_eq(H.untagged, 0);
}

/* Many first uses at once: rounds of fresh call sites, each raced by
 * every thread from a barrier.  Each site ends up with one handle, every
 * event of every round is delivered (ASan: a thread that used a loser's
 * freed handle is a use after free at the sender), and freeing the
 * winners after shutdown leaves nothing behind (ASan: losers freed). */
enum { RACE_T = 8, RACE_ROUNDS = 64 };
static segops_prepared *race_sites[RACE_ROUNDS];
static pthread_barrier_t race_start;

static void *race_thread(void *arg)
{
    intptr_t id = (intptr_t)arg;
    intptr_t ok = 0;
    for (int r = 0; r < RACE_ROUNDS; r++) {
        pthread_barrier_wait(&race_start);
        segops_prop props[] = {SEGOPS_I64("thread", id), SEGOPS_I64("seq", r),
                               SEGOPS_STR("round", "x")};
        ok += segops_track_site(H.c, &race_sites[r], "site_raced", "user-1", SEGOPS_NTS, props,
                                3, SEGOPS_TIME_NONE) == 0;
    }
    return (void *)ok;
}

Test(client, first_use_of_a_site_raced_by_many_threads_installs_one_handle, .timeout = 120)
{
    h_start_sink(&H, NULL, RACE_ROUNDS);
    segops_options o = h_opts();
    o.max_producers = RACE_T;
    cr_assert_eq(h_client(&H, &o), 0);
    pthread_barrier_init(&race_start, NULL, RACE_T);
    pthread_t th[RACE_T];
    for (intptr_t i = 0; i < RACE_T; i++)
        pthread_create(&th[i], NULL, race_thread, (void *)i);
    for (int i = 0; i < RACE_T; i++) {
        void *ok;
        pthread_join(th[i], &ok);
        cr_expect_eq((intptr_t)ok, RACE_ROUNDS);
    }
    pthread_barrier_destroy(&race_start);
    cr_expect_eq(segops_flush(H.c, 30000), 0);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.delivered, RACE_T * RACE_ROUNDS);
    pthread_mutex_lock(&H.mu);
    cr_expect_eq(H.tagged, RACE_T * RACE_ROUNDS);
    cr_expect_eq(H.dup_tagged, 0);
    pthread_mutex_unlock(&H.mu);
    h_stop(&H); /* shuts the client down: no slot points to a handle now */
    for (int r = 0; r < RACE_ROUNDS; r++) {
        cr_expect_neq(race_sites[r], NULL);
        segops_prepared_free(race_sites[r]);
        race_sites[r] = NULL;
    }
}

/* The same validation as segops_track(), with the same codes: event type
 * and keys at preparation (nothing allocated, nothing counted: no client
 * yet), values per call (counted as rejected, nothing sent); the macro
 * refuses what segops_track() refuses, and counts it. */
Test(client, prepared_validation_errors_are_counted_and_nothing_is_sent)
{
    h_start_sink(&H, NULL, 0);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    segops_prepared *p = (segops_prepared *)&H;
    segops_prop_spec k[] = {SEGOPS_KEY_STR("order_id"), SEGOPS_KEY_F64("total")};
    cr_expect_eq(segops_prepare("order_placed", SEGOPS_NTS, k, 2, NULL), SEGOPS_EINVAL);
    cr_expect_eq(segops_prepare("order_placed", SEGOPS_NTS, NULL, 2, &p), SEGOPS_EINVAL);
    cr_expect_eq(p, NULL);
    cr_expect_eq(segops_prepare("Bad", SEGOPS_NTS, k, 2, &p), SEGOPS_EEVENTTYPE);
    cr_expect_eq(segops_prepare(NULL, 0, k, 2, &p), SEGOPS_EEVENTTYPE);
    segops_prop_spec bad[] = {SEGOPS_KEY_STR("")};
    cr_expect_eq(segops_prepare("e", SEGOPS_NTS, bad, 1, &p), SEGOPS_EPROP);
    segops_prop_spec badt[] = {SEGOPS_KEY("k", 42)};
    cr_expect_eq(segops_prepare("e", SEGOPS_NTS, badt, 1, &p), SEGOPS_EPROP);
    cr_assert_eq(segops_prepare("order_placed", 12, k, 2, &p), 0);

    segops_value v[] = {SEGOPS_VSTR("ord-1"), SEGOPS_VF64(NAN)};
    cr_expect_eq(segops_track_prepared(H.c, p, "u", 0, v, 2, 0), SEGOPS_ENUMBER);
    v[1].f64 = 1.0;
    cr_expect_eq(segops_track_prepared(H.c, p, "", 0, v, 2, 0), SEGOPS_EUSERID);
    cr_expect_eq(segops_track_prepared(H.c, p, "u", 0, v, 1, 0), SEGOPS_EPROP);
    segops_value w[] = {SEGOPS_VI64(1), SEGOPS_VF64(1)};
    cr_expect_eq(segops_track_prepared(H.c, p, "u", 0, w, 2, 0), SEGOPS_EPROP);
    cr_expect_eq(segops_track_prepared(H.c, NULL, "u", 0, v, 2, 0), SEGOPS_EINVAL);
    cr_expect_eq(segops_track_prepared(NULL, p, "u", 0, v, 2, 0), SEGOPS_EINVAL);
    cr_expect_eq(SEGOPS_TRACK_PREPARED(H.c, "Bad", "u", SEGOPS_STR("k", "v")),
                 SEGOPS_EEVENTTYPE);
    cr_expect_eq(SEGOPS_TRACK_PREPARED(H.c, "e", "u", SEGOPS_STR("", "v")), SEGOPS_EPROP);
    cr_expect_eq(SEGOPS_TRACK_PREPARED(H.c, "e", "", SEGOPS_STR("k", "v")), SEGOPS_EUSERID);
    cr_assert_eq(segops_flush(H.c, 2000), 0);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.rejected_invalid, 7);
    cr_expect_eq(s.accepted, 0);
    struct sink_counts kc;
    h_counts(&H, &kc);
    cr_expect_eq(kc.requests, 0);
    h_stop(&H);
    segops_prepared_free(p);
}

/* What the sink receives from a prepared event is the plain event's JSON. */
Test(client, prepared_event_arrives_as_the_plain_one)
{
    h_start_sink(&H, NULL, 0);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-\"456\""), SEGOPS_F64("total", 89.95),
                           SEGOPS_BOOL("gift", 1), SEGOPS_NULL("coupon"),
                           SEGOPS_JSON("items", "[{\"sku\":\"a\"}]")};
    segops_event ev = {.user_id = "user-123", .event_type = "order_placed", .payload = props,
                       .payload_len = 5, .occurred_at_ms = 1777127520123};
    cr_assert_eq(segops_track(H.c, &ev), 0);
    cr_assert_eq(segops_flush(H.c, 5000), 0);
    pthread_mutex_lock(&H.mu);
    char plain[sizeof(H.last_event)];
    memcpy(plain, H.last_event, sizeof(plain));
    pthread_mutex_unlock(&H.mu);
    segops_prop_spec k[] = {SEGOPS_KEY_STR("order_id"), SEGOPS_KEY_F64("total"),
                            SEGOPS_KEY_BOOL("gift"), SEGOPS_KEY_NULL("coupon"),
                            SEGOPS_KEY_JSON("items")};
    segops_prepared *p;
    cr_assert_eq(segops_prepare("order_placed", SEGOPS_NTS, k, 5, &p), 0);
    segops_value v[] = {SEGOPS_VSTR("ord-\"456\""), SEGOPS_VF64(89.95), SEGOPS_VBOOL(1),
                        SEGOPS_VNULL(), SEGOPS_VJSON("[{\"sku\":\"a\"}]")};
    cr_assert_eq(segops_track_prepared(H.c, p, "user-123", SEGOPS_NTS, v, 5, 1777127520123), 0);
    cr_assert_eq(segops_flush(H.c, 5000), 0);
    pthread_mutex_lock(&H.mu);
    cr_expect_str_eq(H.last_event, plain);
    pthread_mutex_unlock(&H.mu);
    /* the macro without properties: an empty payload object */
    cr_assert_eq(SEGOPS_TRACK_PREPARED(H.c, "app_opened", "user-9"), 0);
    cr_assert_eq(segops_flush(H.c, 5000), 0);
    pthread_mutex_lock(&H.mu);
    cr_expect(strstr(H.last_event, "{\"user_id\":\"user-9\",\"event_type\":\"app_opened\"") &&
                  strstr(H.last_event, "\"payload\":{}}"),
              "%s", H.last_event);
    pthread_mutex_unlock(&H.mu);
    h_stop(&H);
    segops_prepared_free(p);
}
