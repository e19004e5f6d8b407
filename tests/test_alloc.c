/* SPDX-License-Identifier: MIT */
/*
 * Steady state allocates nothing: malloc and friends are interposed in this
 * test program and counted.  After a warm-up (first connection, host
 * resolution), 100,000 tracked events and 50 flushed batches must not
 * allocate a byte -- neither on the producer thread nor on the sender.  The
 * sink runs in a forked child process so its allocations do not count.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "segops.h"
#include "sink.h"

#include "alloc_count.h"

Test(alloc, steady_state_track_and_send_allocate_nothing, .timeout = 60)
{
    uint16_t port;
    pid_t child = sink_child(&port);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)port);
    segops_client *c = counted_client(url, NULL);
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95),
                           SEGOPS_JSON("items", "[{\"sku\":\"a\",\"qty\":2}]")};
    segops_event ev = {
        .user_id = "user-123", .event_type = "order_placed", .payload = props, .payload_len = 3};
    segops_counters s = SEGOPS_COUNTERS_INIT;
    unsigned long long n = steady_state_allocs(c, &ev, 50, 2000, &s);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    cr_expect_eq(s.delivered, 100100);
    cr_expect_eq(n, 0, "%llu allocations in steady state", n);
}

/* The same with a round trip: the sink answers after 20 ms, so batches
 * overlap on several connections.  Opening connections, keeping requests
 * in flight and resolving them out of order allocate nothing either. */
Test(alloc, many_requests_in_flight_allocate_nothing, .timeout = 120)
{
    uint16_t port;
    pid_t child = sink_child_delay(&port, 20);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)port);
    segops_client *c = counted_client(url, NULL);
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95)};
    segops_event ev = {
        .user_id = "user-123", .event_type = "order_placed", .payload = props, .payload_len = 2};
    for (int i = 0; i < 100; i++)
        cr_assert_eq(segops_track(c, &ev), 0);
    cr_assert_eq(segops_flush(c, 10000), 0);
    unsigned long long before = atomic_load(&allocs);
    uint64_t most = 0;
    int bad = 0;
    for (int burst = 0; burst < 100; burst++) {
        for (int i = 0; i < 100; i++)
            bad += segops_track(c, &ev) != 0;
        segops_counters s = SEGOPS_COUNTERS_INIT;
        segops_stats(c, &s);
        if (s.requests_in_flight > most)
            most = s.requests_in_flight;
        usleep(1000);
    }
    bad += segops_flush(c, 30000) != 0;
    unsigned long long n = atomic_load(&allocs) - before;
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(c, &s);
    cr_expect_eq(segops_shutdown(c, 5000, NULL), 0);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    cr_expect_eq(bad, 0);
    cr_expect_eq(s.delivered, 10100);
    cr_expect(most >= 2, "at most %llu request in flight: the test saw no overlap",
              (unsigned long long)most);
    cr_expect_eq(n, 0, "%llu allocations with requests in flight", n);
}

/* A thread's first track claims its lane and binds it to the thread
 * (pthread_setspecific).  glibc allocates there for a key past the 32nd;
 * the library makes its key when it is loaded, so a process that made 40
 * keys of its own before creating the client still allocates nothing. */
static _Atomic unsigned long long first_track_allocs;
static segops_client *first_client;

static void *first_track(void *arg)
{
    const segops_event *ev = arg;
    unsigned long long before = atomic_load(&allocs);
    int rc = segops_track(first_client, ev);
    first_track_allocs = atomic_load(&allocs) - before;
    return (void *)(intptr_t)rc;
}

Test(alloc, a_threads_first_track_allocates_nothing_with_40_keys_made_before, .timeout = 60)
{
    pthread_key_t keys[40];
    for (int i = 0; i < 40; i++)
        cr_assert_eq(pthread_key_create(&keys[i], NULL), 0);
    uint16_t port;
    pid_t child = sink_child(&port);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)port);
    first_client = counted_client(url, NULL);
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456")};
    segops_event ev = {
        .user_id = "user-123", .event_type = "order_placed", .payload = props, .payload_len = 1};
    for (int t = 0; t < 3; t++) {
        pthread_t th;
        void *rc;
        cr_assert_eq(pthread_create(&th, NULL, first_track, &ev), 0);
        pthread_join(th, &rc);
        cr_expect_eq((intptr_t)rc, 0);
        cr_expect_eq(first_track_allocs, 0, "thread %d: %llu allocations in its first track", t,
                     (unsigned long long)first_track_allocs);
    }
    cr_expect_eq(segops_shutdown(first_client, 5000, NULL), 0);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    for (int i = 0; i < 40; i++)
        pthread_key_delete(keys[i]);
}

/* Prepared events: after preparation (the one allocation of a handle, and
 * of a SEGOPS_TRACK_PREPARED() site's first call, both in the warm-up),
 * tracking with the handle and later calls of the macro allocate nothing,
 * on the producer thread or on the sender that renders them. */
static int track_macro(segops_client *c, int64_t i)
{
    return SEGOPS_TRACK_PREPARED(c, "order_placed", "user-123", SEGOPS_STR("order_id", "ord-456"),
                                 SEGOPS_F64("total", 89.95), SEGOPS_I64("seq", i),
                                 SEGOPS_JSON("items", "[{\"sku\":\"a\",\"qty\":2}]"));
}

Test(alloc, prepared_and_macro_calls_allocate_nothing, .timeout = 60)
{
    uint16_t port;
    pid_t child = sink_child(&port);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)port);
    segops_client *c = counted_client(url, NULL);
    segops_prop_spec k[] = {SEGOPS_KEY_STR("order_id"), SEGOPS_KEY_F64("total"),
                            SEGOPS_KEY_I64("seq"), SEGOPS_KEY_JSON("items")};
    segops_prepared *p;
    unsigned long long at_prepare = atomic_load(&allocs);
    cr_assert_eq(segops_prepare("order_placed", SEGOPS_NTS, k, 4, &p), 0);
    cr_expect_eq(atomic_load(&allocs) - at_prepare, 1, "a handle is one allocation");
    /* warm-up: lane, connection, the macro's first call */
    at_prepare = atomic_load(&allocs);
    cr_assert_eq(track_macro(c, 0), 0);
    cr_expect_eq(atomic_load(&allocs) - at_prepare, 1, "the site's first call prepares");
    for (int i = 0; i < 100; i++) {
        segops_value v[] = {SEGOPS_VSTR("ord-456"), SEGOPS_VF64(89.95), SEGOPS_VI64(i),
                            SEGOPS_VJSON("[1]")};
        cr_assert_eq(segops_track_prepared(c, p, "user-123", SEGOPS_NTS, v, 4, 0), 0);
    }
    cr_assert_eq(segops_flush(c, 10000), 0);
    unsigned long long before = atomic_load(&allocs);
    int bad = 0;
    for (int b = 0; b < 50; b++) {
        for (int i = 0; i < 1000; i++) {
            segops_value v[] = {SEGOPS_VSTR("ord-456"), SEGOPS_VF64(89.95), SEGOPS_VI64(i),
                                SEGOPS_VJSON("[1]")};
            bad += segops_track_prepared(c, p, "user-123", SEGOPS_NTS, v, 4, 0) != 0;
            bad += track_macro(c, i) != 0;
        }
        bad += segops_flush(c, 10000) != 0;
    }
    unsigned long long n = atomic_load(&allocs) - before;
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(c, &s);
    cr_expect_eq(segops_shutdown(c, 5000, NULL), 0);
    segops_prepared_free(p);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    cr_expect_eq(bad, 0);
    cr_expect_eq(s.delivered, 100101);
    cr_expect_eq(n, 0, "%llu allocations in steady state", n);
}
