/* SPDX-License-Identifier: MIT */
/*
 * test_edges.c -- edges an adversarial review of the answers, split and
 * shutdown work found (each failed before its fix), and the ones it tried
 * that held: split reports, a 413 cut short, the API key cut by the detail
 * limit, a thread's first call during shutdown, bare CR and control bytes
 * in dropped lines, 413 on 1-3 events, shutdown mid-split, an early 413
 * while a large body is being sent, answers that over-cover.  Both I/O
 * drivers.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"
#include "http.h"
#include "queue.h"
#include "capture.h"
#include "scripted.h"
#include "segops.h"

static struct scr *S;
static uint16_t PORT;
static segops_client *C;
static _Atomic int MODE; /* set by the test, read by server threads */

static atomic_int N503;

static size_t accepted(const struct scr_req *rq, char *out, size_t cap)
{
    char body[64];
    snprintf(body, sizeof(body), "{\"queued\":%u,\"skipped\":0}", rq->events);
    return answer(out, cap, "202 Accepted", "", body);
}

enum { M_SPLIT_400_503 = 1, M_413_CUT, M_KEY_AT_CUT, M_413_SMALL, M_413_HANG, M_413_BIG, M_OVERCOVER };
static uint8_t SEEN[1024];
static atomic_int BADBODY;

static size_t script(void *u, const struct scr_req *rq, char *out, size_t cap, int *how)
{
    (void)u;
    switch (atomic_load(&MODE)) {
    case M_SPLIT_400_503:
        /* 4 events: 413; the left half (seq 0, 1): 400; the right half:
         * 503 once, then 202 */
        if (!rq->body)
            return 0; /* read the body */
        if (rq->events == 4)
            return answer(out, cap, "413 Payload Too Large", "", "{\"detail\":\"too big\"}");
        if (strstr(rq->body, "\"seq\":0"))
            return answer(out, cap, "400 Bad Request", "",
                          "{\"detail\":\"the left half is invalid\"}");
        if (atomic_fetch_add(&N503, 1) == 0)
            return answer(out, cap, "503 Service Unavailable", "",
                          "{\"detail\":\"busy, try later\"}");
        return accepted(rq, out, cap);
    case M_413_CUT:
        /* a 413 whose body is cut short by the server closing early (the
         * status line and head are whole) */
        if (rq->body_len > 600) {
            *how = SCR_EARLY;
            return (size_t)snprintf(out, cap,
                                    "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 200\r\n"
                                    "\r\n<html>413");
        }
        if (!rq->body)
            return 0;
        return accepted(rq, out, cap);
    case M_413_SMALL:
        /* 413 for anything with more than one event */
        if (!rq->body)
            return 0;
        if (rq->events > 1)
            return answer(out, cap, "413 Payload Too Large", "", "{\"detail\":\"x\"}");
        return accepted(rq, out, cap);
    case M_413_HANG:
        if (!rq->body)
            return 0;
        if (rq->events > 2)
            return answer(out, cap, "413 Payload Too Large", "", "{\"detail\":\"x\"}");
        usleep(1500000); /* halves hang past the shutdown deadline */
        return accepted(rq, out, cap);
    case M_413_BIG:
        /* nginx-like: bodies over 400 KB refused early (the send is still
         * in flight: the arena is pinned while the halves are rebuilt) */
        if (rq->body_len > 400000) {
            *how = SCR_EARLY;
            return answer(out, cap, "413 Request Entity Too Large", "Connection: close\r\n",
                          "<html>413</html>");
        }
        if (!rq->body)
            return 0;
        if (strncmp(rq->body, "{\"events\":[{", 12) != 0 ||
            strcmp(rq->body + rq->body_len - 3, "}]}") != 0)
            atomic_fetch_add(&BADBODY, 1);
        for (const char *q = rq->body; (q = strstr(q, "\"seq\":")) != NULL; q += 6) {
            int k = atoi(q + 6);
            if (k >= 0 && k < (int)sizeof(SEEN)) {
                pthread_mutex_lock(&mu);
                SEEN[k]++;
                pthread_mutex_unlock(&mu);
            }
        }
        return accepted(rq, out, cap);
    case M_OVERCOVER:
        /* 4 events sent; the server says it queued 2 and skipped 5 */
        return answer(out, cap, "202 Accepted", "", "{\"queued\":2,\"skipped\":5}");
    case M_KEY_AT_CUT: {
        /* the server echoes the key at the end of a long detail */
        char body[512], pad[239];
        memset(pad, 'x', sizeof(pad) - 1);
        pad[sizeof(pad) - 1] = 0;
        snprintf(body, sizeof(body), "{\"detail\":\"%s sk_test_secret_key\"}", pad);
        return answer(out, cap, "401 Unauthorized", "", body);
    }
    }
    return accepted(rq, out, cap);
}

static void setup(void)
{
    capture_reset();
    atomic_store(&N503, 0);
    S = scr_start(script, NULL, &PORT);
    cr_assert_not_null(S);
}

static void teardown(void)
{
    if (C) {
        segops_shutdown(C, 2000, NULL);
        C = NULL;
    }
    scr_stop(S);
    S = NULL;
}

static void client(uint32_t batch)
{
    static char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)PORT);
    segops_options o = h_opts();
    o.api_url = url;
    o.api_key = "sk_test_secret_key";
    o.logger = on_log;
    o.on_delivery = on_delivery;
    o.flush_interval_ms = 60000;
    if (batch)
        o.batch_size = batch;
    cr_assert_eq(segops_client_new(&o, &C), 0);
}

static void track(int n, int first)
{
    for (int i = 0; i < n; i++) {
        segops_prop p[] = {SEGOPS_I64("seq", first + i), SEGOPS_STR("note", "x")};
        segops_event ev = {.user_id = "user-1", .event_type = "page_viewed", .payload = p,
                           .payload_len = 2};
        cr_assert_eq(segops_track(C, &ev), 0);
    }
}

TestSuite(edges, .init = setup, .fini = teardown, .timeout = 60);

/* SPEC: a 4xx failure is "reported through the logger and the delivery
 * callback with the status and the server's detail".  Here 2 of 4 events
 * fail with 400 (after a 413 split); the other half goes through a 503
 * and is then delivered.  The report must name the 400 and its detail. */
Test(edges, split_batch_report_names_the_failure_not_a_later_retry)
{
    MODE = M_SPLIT_400_503;
    client(4);
    track(4, 0);
    cr_expect_eq(segops_flush(C, 20000), SEGOPS_EREJECTED);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    cr_assert_eq(segops_stats(C, &s), 0);
    cr_expect_eq(s.delivered, 2);
    cr_expect_eq(s.failed, 2);
    cr_expect_eq(s.pending, 0);
    cr_expect_eq(LAST.result, SEGOPS_EREJECTED);
    cr_expect_eq(LAST.failed, 2);
    cr_expect_eq(LAST.status, 400, "the report says HTTP %d (detail \"%s\")", LAST.status,
                 LAST_DETAIL);
    cr_expect(strstr(LAST_DETAIL, "left half is invalid") != NULL, "detail: %s", LAST_DETAIL);
    cr_expect(strstr(LOG, "HTTP 400") != NULL, "log: %s", LOG);
}

/* SPEC: "413: the batch is split in halves".  A 413 whose head arrived whole
 * but whose body the server cut short (it answered early and closed): the
 * status is known, the policy retries the same oversized payload instead,
 * and the batch fails as ERETRIES after max_retries + 1 tries. */
Test(edges, a_413_with_a_cut_body_is_split_not_retried)
{
    MODE = M_413_CUT;
    client(8);
    track(8, 0); /* ~100 bytes each: 800+ bytes whole, halves under 600 */
    int rc = segops_flush(C, 20000);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    cr_assert_eq(segops_stats(C, &s), 0);
    cr_expect_eq(rc, 0, "flush: %s; log: %s", segops_strerror(rc), LOG);
    cr_expect_eq(s.delivered, 8, "delivered %llu failed %llu retries %llu",
                 (unsigned long long)s.delivered, (unsigned long long)s.failed,
                 (unsigned long long)s.retries);
    cr_expect_eq(s.retries, 0);
}

/* SPEC, Security: "The API key never appears in a log line".  The detail is
 * cut to 255 bytes (sg_answer_parse into raw[256]) before the key is
 * redacted (sg_text_clean), so a key straddling the cut is not recognised
 * and all but its last bytes reach the log and the callback. */
Test(edges, a_key_cut_by_the_detail_limit_is_still_redacted)
{
    MODE = M_KEY_AT_CUT;
    client(0);
    track(1, 0);
    cr_expect_eq(segops_flush(C, 10000), SEGOPS_EREJECTED);
    cr_expect(strstr(LOG, "sk_test_secret_k") == NULL, "key prefix logged: %s", LOG);
    cr_expect(strstr(LAST_DETAIL, "sk_test_secret_k") == NULL, "detail: %s", LAST_DETAIL);
}

/* ------------------------------------------------- shutdown handshake */

/* include/segops.h, "Threads": segops_shutdown() "waits for every call
 * already inside the library (whatever step the call is at, a thread's
 * first call included) before it frees anything".  produce() stores
 * in_call first (sg_call_enter), then reads c->ck and only then, inside
 * sg_lane_enter_slow() -> thread_list_add(), puts a new thread on the list
 * the closer scans.  A thread paused between those steps is not waited
 * for.  The listed-thread case is the control: there shutdown waits. */
struct inside {
    segops_client *c;
    int warm;            /* make one real call first (gets listed) */
    atomic_int entered;  /* the call began */
    atomic_int release;  /* let it go on */
    atomic_int shut_ret; /* shutdown returned while the call was inside */
};

static void *producer_inside(void *arg)
{
    struct inside *a = arg;
    if (a->warm) {
        segops_event ev = {.user_id = "u", .event_type = "warm_up"};
        segops_track(a->c, &ev);
    }
    /* produce()'s first step, as in client.c */
    sg_call_enter(&a->c->q);
    atomic_store(&a->entered, 1);
    for (int i = 0; i < 300 && !atomic_load(&a->release); i++)
        usleep(1000);
    /* (produce() would now read c->ck and q->gen: freed memory if shutdown
     * already returned -- not done here, the test only observes) */
    sg_call_leave();
    return NULL;
}

static void *shutter(void *arg)
{
    struct inside *a = arg;
    segops_shutdown(a->c, 100, NULL);
    atomic_store(&a->shut_ret, atomic_load(&a->release) ? 0 : 1);
    return NULL;
}

static void run_inside(int warm, int *returned_while_inside)
{
    struct inside a = {0};
    segops_options o = h_opts();
    o.api_url = "http://127.0.0.1:9"; /* never reached: nothing is sent */
    o.api_key = "sk_test_secret_key";
    cr_assert_eq(segops_client_new(&o, &a.c), 0);
    a.warm = warm;
    pthread_t p, s;
    pthread_create(&p, NULL, producer_inside, &a);
    while (!atomic_load(&a.entered))
        usleep(100);
    pthread_create(&s, NULL, shutter, &a);
    /* shutdown(100 ms) with nothing to send returns quickly unless it
     * waits for the call */
    usleep(200000);
    *returned_while_inside = atomic_load(&a.shut_ret);
    atomic_store(&a.release, 1);
    pthread_join(p, NULL);
    pthread_join(s, NULL);
}

Test(edges, shutdown_waits_for_a_listed_threads_call)
{
    int ret;
    run_inside(1, &ret);
    cr_expect_eq(ret, 0, "control case: shutdown returned while a listed call was inside");
}

Test(edges, shutdown_waits_for_a_threads_first_call)
{
    int ret;
    run_inside(0, &ret);
    cr_expect_eq(ret, 0, "shutdown freed the client while a thread's first call was inside "
                         "(in_call stored, not yet on the thread list)");
}

/* ------------------------------------------------------- http parser */

static int parse_whole(const char *m, struct sg_http_resp *r)
{
    sg_http_resp_init(r);
    ssize_t n = sg_http_resp_feed(r, m, strlen(m));
    return n < 0 ? (int)n : 0;
}

/* http.c's contract: a line holding a control byte or a CR not followed by
 * LF is bad (RFC 9112 2.2: a bare CR is invalid or must become SP).  A line
 * starting with SP/HTAB right after the status line, or a bare CR
 * followed by a blank at a line start, is dropped whole without checking
 * `bad`: such a line passes silently. */
Test(edges, bare_cr_then_blank_at_a_line_start_is_refused)
{
    struct sg_http_resp r;
    int rc = parse_whole("HTTP/1.1 200 OK\r\nA: b\r\n\r X-Smuggle: 1\r\nContent-Length: 0\r\n\r\n",
                         &r);
    cr_expect_lt(rc, 0, "a bare CR at a line start was accepted (rc %d, done %d)", rc, r.done);
}

Test(edges, control_bytes_in_a_dropped_fold_line_are_refused)
{
    struct sg_http_resp r;
    int rc = parse_whole("HTTP/1.1 200 OK\r\n \x01\x7f\r\nContent-Length: 0\r\n\r\n", &r);
    cr_expect_lt(rc, 0, "control bytes accepted in a folded line after the status line");
}

/* 413 on batches of 1, 2 and 3 events: every event resolved once. */
static void small_413(int n)
{
    MODE = M_413_SMALL;
    client((uint32_t)n);
    track(n, 0);
    int rc = segops_flush(C, 20000);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    cr_assert_eq(segops_stats(C, &s), 0);
    cr_expect_eq(rc, 0, "n=%d: %s", n, segops_strerror(rc));
    cr_expect_eq(s.delivered, (uint64_t)n, "n=%d", n);
    cr_expect_eq(s.failed, 0);
    cr_expect_eq(s.pending, 0);
    struct scr_counts k;
    scr_counts(S, &k);
    cr_expect_eq(k.repeated_keys, 0);
    cr_expect_eq(k.events, (uint64_t)(n == 1 ? 1 : n == 2 ? 2 + 2 : 3 + 1 + 2 + 2),
                 "n=%d: server saw %llu events", n, (unsigned long long)k.events);
}
Test(edges, split_1) { small_413(1); }
Test(edges, split_2) { small_413(2); }
Test(edges, split_3) { small_413(3); }

/* Shutdown while split halves hang: abandoned, counted once. */
Test(edges, shutdown_mid_split_counts_each_event_once)
{
    MODE = M_413_HANG;
    client(8);
    track(8, 0);
    usleep(300000); /* 413s done, halves out */
    segops_counters fin = SEGOPS_COUNTERS_INIT;
    segops_client *c = C;
    C = NULL;
    int rc = segops_shutdown_stats(c, 300, &fin);
    cr_expect_eq(rc, SEGOPS_ETIMEDOUT, "%s", segops_strerror(rc));
    cr_expect_eq(fin.accepted, 8);
    cr_expect_eq(fin.delivered + fin.failed + fin.skipped, 8, "d %llu f %llu",
                 (unsigned long long)fin.delivered, (unsigned long long)fin.failed);
    cr_expect_eq(fin.pending, 0);
}

Test(edges, early_413_on_a_body_still_being_sent_splits_cleanly)
{
    MODE = M_413_BIG;
    pthread_mutex_lock(&mu);
    memset(SEEN, 0, sizeof(SEEN));
    pthread_mutex_unlock(&mu);
    static char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)PORT);
    segops_options o = h_opts();
    o.api_url = url;
    o.api_key = "sk_test_secret_key";
    o.logger = on_log;
    o.on_delivery = on_delivery;
    o.batch_size = 500;
    o.slot_size = 8192;
    o.max_batch_bytes = 4 << 20;
    o.queue_capacity = 1024;
    cr_assert_eq(segops_client_new(&o, &C), 0);
    static char big[6000];
    memset(big, 'b', sizeof(big) - 1);
    for (int i = 0; i < 500; i++) {
        segops_prop p[] = {SEGOPS_I64("seq", i), SEGOPS_STR("note", big)};
        segops_event ev = {.user_id = "user-1", .event_type = "page_viewed", .payload = p,
                           .payload_len = 2};
        cr_assert_eq(segops_track(C, &ev), 0);
    }
    int rc = segops_flush(C, 30000);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    cr_assert_eq(segops_stats(C, &s), 0);
    cr_expect_eq(rc, 0, "%s; log: %s", segops_strerror(rc), LOG);
    cr_expect_eq(s.delivered, 500, "delivered %llu failed %llu", (unsigned long long)s.delivered,
                 (unsigned long long)s.failed);
    cr_expect_eq(atomic_load(&BADBODY), 0, "malformed bodies");
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&mu);
        int seen_i = SEEN[i];
        pthread_mutex_unlock(&mu);
        cr_expect_eq(seen_i, 1, "event %d arrived %d times", i, seen_i);
    }
}

/* SPEC: "queued + skipped is checked against the number of events sent".
 * When they cover more than was sent, the events the server says it
 * queued are still delivered: 2 delivered, at most 2 skipped -- not 4
 * skipped and 0 delivered (sender.c answer_2xx caps skipped at n first). */
Test(edges, over_covering_answer_keeps_the_queued_events_delivered)
{
    MODE = M_OVERCOVER;
    client(4);
    track(4, 0);
    segops_flush(C, 10000);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    cr_assert_eq(segops_stats(C, &s), 0);
    cr_expect_eq(s.delivered, 2, "delivered %llu skipped %llu", (unsigned long long)s.delivered,
                 (unsigned long long)s.skipped);
    cr_expect_eq(s.skipped, 2);
}
