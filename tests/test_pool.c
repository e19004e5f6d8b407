/* SPDX-License-Identifier: MIT */
/*
 * Several requests in flight: the client against segops-sink over real
 * loopback sockets, with the sink's hold gate and request log to see what
 * is in flight at once and in which order requests arrived.  ctest runs
 * this file once per I/O driver.  (Flush under continuous traffic and the
 * hang cases are in test_deadlines.c.)
 *
 * Nothing here depends on how fast the machine is: tests wait for
 * conditions (bounded polling), and the only time checks are lower bounds
 * taken from the sink's own clock, which a slow machine can only make
 * larger.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h" /* flush_req: to know every flusher is waiting */
#include "harness.h"

static struct harness H;

static void teardown(void)
{
    if (H.sink)
        sink_hold(H.sink, 0);
    h_stop(&H);
}

TestSuite(pool, .fini = teardown, .timeout = 90);

static int track_user(segops_client *c, const char *user, int from, int n)
{
    int ok = 0;
    for (int i = from; i < from + n; i++) {
        segops_prop p[] = {SEGOPS_I64("thread", 0), SEGOPS_I64("seq", i)};
        segops_event ev = {
            .user_id = user, .event_type = "order_placed", .payload = p, .payload_len = 2};
        ok += segops_track(c, &ev) == 0;
    }
    return ok;
}

/* Polls until f() is true, up to 30 s. */
#define WAIT_FOR(cond)                                                                     \
    do {                                                                                   \
        int64_t t0_ = h_now_ms();                                                          \
        while (!(cond) && h_now_ms() - t0_ < 30000)                                        \
            h_sleep_ms(2);                                                                 \
    } while (0)

static struct sink_counts counts(void)
{
    struct sink_counts k;
    h_counts(&H, &k);
    return k;
}

static segops_counters stats(void)
{
    segops_counters s = SEGOPS_COUNTERS_INIT;
    cr_assert_eq(segops_stats(H.c, &s), 0);
    return s;
}

static size_t reqlog(struct sink_req_rec *r, size_t cap)
{
    return sink_requests(H.sink, r, cap);
}

Test(pool, keeps_max_connections_requests_in_flight_and_no_more)
{
    h_start_sink(&H, NULL, 1000);
    sink_hold(H.sink, 1);
    segops_options o = h_opts();
    o.max_connections = 4;
    cr_assert_eq(h_client(&H, &o), 0);
    /* a batch at a time (a queue that is already long goes out as one
     * batch): each is held at the sink, and the next needs a connection */
    for (uint64_t b = 0; b < 4; b++) {
        cr_assert_eq(track_user(H.c, "user-1", (int)b * 20, 20), 20);
        WAIT_FOR(counts().in_progress == b + 1);
        cr_assert_eq(counts().in_progress, b + 1, "%llu requests held at the sink at once",
                     (unsigned long long)b + 1);
    }
    /* two more batches' worth: no fifth connection, no fifth request */
    cr_assert_eq(track_user(H.c, "user-1", 80, 40), 40);
    segops_counters s = stats();
    cr_expect_eq(s.requests_in_flight, 4);
    cr_expect_eq(s.connections_open, 4);
    cr_expect_eq(counts().connections, 4);
    sink_hold(H.sink, 0);
    cr_assert_eq(segops_flush(H.c, 20000), 0);
    struct sink_counts k = counts();
    cr_expect_eq(k.queued, 120);
    cr_expect_eq(k.max_in_progress, 4, "never more than max_connections in flight");
    cr_expect_eq(k.repeated_keys, 0);
    s = stats();
    cr_expect_eq(s.delivered, 120);
    cr_expect_eq(s.requests_in_flight, 0);
    cr_expect_eq(s.retries, 0);
    cr_expect_eq(s.reconnects, 0, "growing the pool is not reconnecting");
    h_expect_invariant(H.c);
}

Test(pool, a_batch_waiting_to_retry_holds_no_other_batch_back)
{
    struct sink_opts so = {0};
    so.fail_user_id = "poison";
    so.fail_status = 503;
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    o.max_retries = 30; /* the poisoned batch retries for minutes */
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_user(H.c, "poison", 0, 20), 20);
    /* wait until it failed twice: it now waits 500 ms, then 1 s, 2 s, ... */
    WAIT_FOR(counts().failed_requests >= 2);
    cr_assert(counts().failed_requests >= 2);
    /* batch_size at a time: on a slow machine a batch may start while
     * events are still being tracked, and a remainder under batch_size
     * would wait for the (disabled) interval */
    cr_assert_eq(track_user(H.c, "user-1", 0, 20), 20);
    cr_expect_eq(h_wait_queued(&H, 20, 30000), 20,
                 "a later batch was held behind the one in back-off");
    cr_assert_eq(track_user(H.c, "user-2", 0, 20), 20);
    cr_expect_eq(h_wait_queued(&H, 40, 30000), 40,
                 "a later batch was held behind the one in back-off");
    segops_counters s = stats();
    cr_expect_eq(s.delivered, 40);
    cr_expect_eq(s.failed, 0, "the poisoned batch is still retrying");
    cr_expect_eq(s.pending, 20);
    /* every try of the poisoned batch carried one Idempotency-Key */
    struct sink_req_rec r[64];
    size_t n = reqlog(r, 64);
    char key[64] = "";
    int tries = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].status != 503)
            continue;
        if (!tries++)
            snprintf(key, sizeof(key), "%s", r[i].key);
        cr_expect_str_eq(r[i].key, key);
    }
    cr_expect(tries >= 2);
    uint64_t lost = 0;
    cr_expect_eq(segops_shutdown(H.c, 200, &lost), SEGOPS_ETIMEDOUT);
    H.c = NULL;
    cr_expect_eq(lost, 20);
}

Test(pool, retry_after_holds_every_new_request_until_it_passes)
{
    struct sink_opts so = {0};
    so.fail_status = 429;
    so.fail_first = 1;
    so.retry_after = "1";
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    o.max_connections = 4;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_user(H.c, "user-1", 0, 20), 20);
    WAIT_FOR(stats().retries == 1);
    cr_assert_eq(stats().retries, 1);
    /* the client has the 429: new batches, on any connection, must wait */
    for (int b = 1; b < 4; b++)
        cr_assert_eq(track_user(H.c, "user-1", b * 20, 20), 20);
    cr_assert_eq(segops_flush(H.c, 20000), 0);
    struct sink_req_rec r[16];
    size_t n = reqlog(r, 16);
    cr_assert(n >= 3, "the retry and at least one new batch: %zu requests", n);
    cr_assert_eq(r[0].status, 429);
    for (size_t i = 1; i < n; i++) {
        cr_expect_eq(r[i].status, 202);
        cr_expect(r[i].t_ns >= r[0].t_ns + 1000000000LL,
                  "request %zu came %lld ms after the 429 that asked for 1 s", i,
                  (long long)((r[i].t_ns - r[0].t_ns) / 1000000));
    }
    cr_expect_eq(counts().queued, 80);
}

Test(pool, a_429_without_retry_after_waits_at_least_500_ms)
{
    struct sink_opts so = {0};
    so.fail_status = 429;
    so.fail_first = 1;
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_user(H.c, "user-1", 0, 20), 20);
    cr_assert_eq(segops_flush(H.c, 20000), 0);
    struct sink_req_rec r[4];
    cr_assert_eq(reqlog(r, 4), 2);
    cr_expect_eq(r[0].status, 429);
    cr_expect_str_eq(r[1].key, r[0].key);
    cr_expect(r[1].t_ns - r[0].t_ns >= 500000000LL, "retried after %lld ms",
              (long long)((r[1].t_ns - r[0].t_ns) / 1000000));
}

Test(pool, an_unsolicited_408_on_an_idle_connection_costs_no_retry)
{
    struct sink_opts so = {0};
    so.idle_408_ms = 100;
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_user(H.c, "user-1", 0, 20), 20);
    cr_assert_eq(segops_flush(H.c, 20000), 0);
    WAIT_FOR(counts().idle_408s == 1);
    cr_assert_eq(counts().idle_408s, 1);
    cr_assert_eq(track_user(H.c, "user-1", 20, 20), 20);
    cr_assert_eq(segops_flush(H.c, 20000), 0);
    segops_counters s = stats();
    cr_expect_eq(s.delivered, 40);
    cr_expect_eq(s.retries, 0, "the 408 was taken for the answer to a request");
    cr_expect_eq(s.failed, 0);
    cr_expect_eq(counts().repeated_keys, 0);
    cr_expect_eq(counts().queued, 40);
}

/* Each flusher gets the failure of a batch that failed while it waited. */
struct flusher {
    segops_client *c;
    int rc;
};

static void *flush_thread(void *arg)
{
    struct flusher *f = arg;
    f->rc = segops_flush(f->c, 20000);
    return NULL;
}

Test(pool, concurrent_flushes_each_report_the_failure)
{
    struct sink_opts so = {0};
    so.fail_status = 401;
    so.fail_first = 1;
    h_start_sink(&H, &so, 1000);
    sink_hold(H.sink, 1);
    segops_options o = h_opts();
    o.batch_size = 100;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_user(H.c, "user-1", 0, 20), 20);
    struct flusher f[3] = {{H.c, 1}, {H.c, 1}, {H.c, 1}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, flush_thread, &f[i]), 0);
    WAIT_FOR(counts().in_progress == 1);
    cr_assert_eq(counts().in_progress, 1);
    /* every flusher has called segops_flush() before the batch resolves */
    struct segops_client *cl = H.c;
    uint64_t asked = 0;
    for (int i = 0; i < 15000 && asked < 3; i++) {
        pthread_mutex_lock(&cl->mu);
        asked = cl->flush_req;
        pthread_mutex_unlock(&cl->mu);
        h_sleep_ms(2);
    }
    cr_assert_eq(asked, 3);
    sink_hold(H.sink, 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(f[i].rc, SEGOPS_EREJECTED, "flusher %d got %s", i,
                     segops_strerror(f[i].rc));
    }
    /* reported: a later flush has nothing new to say */
    cr_expect_eq(segops_flush(H.c, 5000), 0);
}

/* One event per batch: slots of 128 bytes, and a request body that holds
 * one worst-case event and no second. */
static void one_event_per_batch(segops_options *o)
{
    o->slot_size = 128;
    o->max_batch_bytes = 1000;
    o->batch_size = 1;
}

/* A flush waits for the batches holding its events, not for a batch built
 * in the same turn from events tracked after the call.  The flush is
 * called during a Retry-After pause, so that its event and a later one are
 * built together when the pause ends; the later one fails every time. */
Test(pool, a_flush_is_not_held_by_a_batch_of_later_events)
{
    struct sink_opts so = {0};
    so.fail_status = 429;
    so.fail_first = 1;
    so.retry_after = "1";
    so.fail_user_id = "poison";
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    one_event_per_batch(&o);
    o.max_connections = 4;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_user(H.c, "user-1", 0, 1), 1);
    WAIT_FOR(stats().retries == 1);
    cr_assert_eq(stats().retries, 1, "the 429 came back: every new request is held");
    cr_assert_eq(track_user(H.c, "user-1", 1, 1), 1);
    struct flusher f = {H.c, 1};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, flush_thread, &f), 0);
    struct segops_client *cl = H.c;
    for (int i = 0; i < 15000 && atomic_load(&cl->flush_seen) == 0; i++)
        h_sleep_ms(2);
    cr_assert_eq(atomic_load(&cl->flush_seen), 1, "the sender took the flush's snapshot");
    cr_assert_eq(track_user(H.c, "poison", 0, 1), 1);
    pthread_join(t, NULL);
    cr_expect_eq(f.rc, 0, "the flush reported %s: it waited for an event tracked after it",
                 segops_strerror(f.rc));
    segops_counters s = stats();
    cr_expect_eq(s.delivered, 2);
}

/* Retry-After holds new requests even when the batch that got it is not
 * retried (its last try, or no retries at all). */
Test(pool, retry_after_on_a_batch_that_is_not_retried_still_holds_new_requests)
{
    struct sink_opts so = {0};
    so.fail_status = 503;
    so.fail_first = 1;
    so.retry_after = "1";
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    o.max_retries = SEGOPS_RETRIES_NONE;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_user(H.c, "user-1", 0, 20), 20);
    WAIT_FOR(stats().failed == 20);
    cr_assert_eq(stats().failed, 20);
    cr_assert_eq(track_user(H.c, "user-1", 20, 20), 20);
    /* the first batch's failure, not yet reported by a flush */
    cr_assert_eq(segops_flush(H.c, 20000), SEGOPS_ERETRIES);
    cr_expect_eq(stats().delivered, 20);
    struct sink_req_rec r[4];
    cr_assert_eq(reqlog(r, 4), 2);
    cr_expect_eq(r[0].status, 503);
    cr_expect(r[1].t_ns - r[0].t_ns >= 1000000000LL, "the next request came after %lld ms",
              (long long)((r[1].t_ns - r[0].t_ns) / 1000000));
}

/* A server that closes every connection right after answering, without
 * saying so: each reused connection is dead.  The free resend goes out on
 * a new connection, so no retry is ever spent -- even with none allowed. */
Test(pool, a_resend_after_a_dead_keep_alive_connection_never_spends_a_retry)
{
    struct sink_opts so = {0};
    so.close_after_answer = 1;
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    one_event_per_batch(&o);
    o.max_retries = SEGOPS_RETRIES_NONE;
    o.max_connections = 8;
    cr_assert_eq(h_client(&H, &o), 0);
    for (int i = 0; i < 200; i++) {
        cr_assert_eq(track_user(H.c, "user-1", i, 1), 1);
        if (i % 10 == 9)
            h_sleep_ms(1);
    }
    cr_expect_eq(segops_flush(H.c, 30000), 0);
    segops_counters s = stats();
    cr_expect_eq(s.failed, 0);
    cr_expect_eq(s.delivered, 200);
    cr_expect_eq(counts().queued, 200);
    cr_expect_eq(counts().repeated_keys, 0);
}

/* Batches in back-off do not take every batch: with one connection, two
 * batches retrying for minutes leave room for a new one. */
Test(pool, batches_in_back_off_leave_room_for_new_ones)
{
    struct sink_opts so = {0};
    so.fail_user_id = "poison";
    so.fail_status = 503;
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    one_event_per_batch(&o);
    o.max_connections = 1;
    o.max_retries = 30;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_user(H.c, "poison", 0, 1), 1);
    cr_assert_eq(track_user(H.c, "poison", 1, 1), 1);
    WAIT_FOR(counts().failed_requests >= 4);
    cr_assert(counts().failed_requests >= 4, "both poisoned batches are retrying");
    cr_assert_eq(track_user(H.c, "user-1", 0, 1), 1);
    cr_expect_eq(h_wait_queued(&H, 1, 30000), 1, "the new batch waited for the retries");
    segops_counters s = stats();
    cr_expect_eq(s.failed, 0);
    cr_expect_eq(s.pending, 2);
    uint64_t lost = 0;
    cr_expect_eq(segops_shutdown(H.c, 200, &lost), SEGOPS_ETIMEDOUT);
    H.c = NULL;
    cr_expect_eq(lost, 2);
}

/* One small request at a time: while a less-than-full request is young
 * (out less than four round trips), the next small batch waits for it
 * instead of opening a second connection.  The round trip is learned
 * first (1 s answers: "young" lasts about 4 s), then one request is held
 * and more events come; for 300 ms nothing else may go out. */
Test(pool, a_second_small_batch_waits_for_the_first_instead_of_a_new_connection)
{
    struct sink_opts so = {0};
    so.delay_ms = 1000;
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_user(H.c, "user-1", 0, 20), 20);
    cr_assert_eq(segops_flush(H.c, 20000), 0); /* the round trip is ~1 s */
    sink_hold(H.sink, 1);
    cr_assert_eq(track_user(H.c, "user-1", 20, 20), 20);
    WAIT_FOR(counts().in_progress == 1);
    cr_assert_eq(counts().in_progress, 1);
    cr_assert_eq(track_user(H.c, "user-1", 40, 20), 20);
    int64_t t0 = h_now_ms();
    while (h_now_ms() - t0 < 300) {
        cr_assert_eq(counts().in_progress, 1, "a second small request went out at once");
        h_sleep_ms(5);
    }
    cr_expect_eq(counts().connections, 1);
    sink_hold(H.sink, 0);
    cr_assert_eq(segops_flush(H.c, 20000), 0);
    cr_expect_eq(counts().queued, 60);
    cr_expect_eq(counts().connections, 1, "the waiting batch took the first connection");
}
