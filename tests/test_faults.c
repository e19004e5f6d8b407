/* SPDX-License-Identifier: MIT */
/*
 * The fault matrix: client -> chaos proxy (tools/chaos.c) -> segops-sink,
 * real loopback sockets, real threads.  ctest runs this file twice, with
 * SEGOPS_IO=uring and SEGOPS_IO=poll.
 *
 * Every cell ends with reconcile(): an exact account between what the
 * client counted (segops_stats and one delivery report per batch, with its
 * Idempotency-Key) and what the sink received (events per key, events per
 * (thread, seq)):
 *   - accepted = delivered + skipped + failed + pending;
 *   - the reports add up to delivered / failed / batches;
 *   - every key the sink saw belongs to a batch the client resolved, and
 *     the sink holds each batch a whole number of times (0 only if failed);
 *   - distinct events at the sink = delivered + the events of failed
 *     batches that nevertheless reached it (the answer was lost);
 *   - every duplicate at the sink is a repeated copy of a batch under its
 *     own Idempotency-Key.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chaos.h"
#include "harness.h"

#define MAX_REPORTS 8192
#define LOG_CAP 65536

struct report {
    char key[40];
    uint32_t events, skipped, attempts;
    int result, status;
};

static struct {
    pthread_mutex_t mu; /* initialised by rig() before any client exists */
    struct report r[MAX_REPORTS];
    uint32_t n, overflow;
    char log[LOG_CAP];
    size_t log_len;
    uint32_t warn_lines, error_lines;
} R;

static struct harness H;
static struct chaos *CH;
static char CURL[64];

static void on_log(void *user, int level, const char *line)
{
    (void)user;
    pthread_mutex_lock(&R.mu);
    size_t n = strlen(line);
    if (R.log_len + n + 2 < LOG_CAP) {
        memcpy(R.log + R.log_len, line, n);
        R.log_len += n;
        R.log[R.log_len++] = '\n';
        R.log[R.log_len] = 0;
    }
    R.warn_lines += level == SEGOPS_LOG_WARN;
    R.error_lines += level == SEGOPS_LOG_ERROR;
    pthread_mutex_unlock(&R.mu);
}

static void on_delivery(void *user, const segops_delivery *d)
{
    (void)user;
    pthread_mutex_lock(&R.mu);
    if (R.n < MAX_REPORTS) {
        struct report *r = &R.r[R.n++];
        snprintf(r->key, sizeof(r->key), "%s", d->idempotency_key ? d->idempotency_key : "");
        r->events = d->events;
        r->skipped = d->skipped;
        r->attempts = d->attempts;
        r->result = d->result;
        r->status = d->status;
    } else {
        R.overflow++;
    }
    pthread_mutex_unlock(&R.mu);
}

static void reset_reports(void)
{
    static int inited;
    if (!inited) {
        pthread_mutex_init(&R.mu, NULL);
        inited = 1;
    }
    pthread_mutex_lock(&R.mu);
    R.n = R.overflow = 0;
    R.log_len = 0;
    R.log[0] = 0;
    R.warn_lines = R.error_lines = 0;
    pthread_mutex_unlock(&R.mu);
}

/* sink, then the proxy in front of it; co may be NULL (plain forwarding) */
static void rig(const struct sink_opts *so, const struct chaos_opts *co, uint32_t per)
{
    reset_reports();
    h_start_sink(&H, so, per);
    struct chaos_opts c;
    if (co)
        c = *co;
    else
        memset(&c, 0, sizeof(c));
    c.upstream_port = H.port;
    uint16_t port = 0;
    CH = chaos_start(&c, &port);
    cr_assert_not_null(CH, "chaos_start failed");
    snprintf(CURL, sizeof(CURL), "http://127.0.0.1:%u", (unsigned)port);
}

static int client(segops_options *o)
{
    if (!o->api_url)
        o->api_url = CURL;
    if (!o->api_key)
        o->api_key = "sk_test";
    o->logger = on_log;
    o->on_delivery = on_delivery;
    return segops_client_new(o, &H.c);
}

static void unrig(void)
{
    if (H.c)
        segops_shutdown(H.c, 5000, NULL);
    H.c = NULL;
    if (CH)
        chaos_stop(CH);
    CH = NULL;
    h_stop(&H);
}

static void teardown(void)
{
    unrig();
}

static int track_n(segops_client *c, int thread, int from, int n)
{
    int ok = 0;
    for (int i = from; i < from + n; i++) {
        segops_prop p[] = {SEGOPS_I64("thread", thread), SEGOPS_I64("seq", i),
                           SEGOPS_STR("order_id", "ord-456")};
        segops_event ev = {
            .user_id = "user-123", .event_type = "order_placed", .payload = p, .payload_len = 3};
        if (segops_track(c, &ev) == 0)
            ok++;
    }
    return ok;
}

/* A plain proxy, a client, and a first batch of n events delivered: the
 * client now holds a kept-alive connection. */
static void rig_kept_alive(int n)
{
    rig(NULL, NULL, 1000);
    segops_options o = h_opts();
    cr_assert_eq(client(&o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, n), n);
    cr_expect_eq(segops_flush(H.c, 5000), 0);
}

static void stats(segops_counters *s)
{
    cr_assert_eq(segops_stats(H.c, s), 0);
}

static void sink_counts(struct sink_counts *k)
{
    h_counts(&H, k);
}

static void chaos_counts(struct chaos_counts *k)
{
    chaos_get_counts(CH, k);
}

/* events the sink recorded under key (H.mu held) */
static uint32_t sink_events_of(const char *key)
{
    for (uint32_t i = 0; i < H.nkeys; i++)
        if (strcmp(H.keys[i].key, key) == 0)
            return H.keys[i].events;
    return 0;
}

struct recon {
    uint64_t distinct;     /* distinct tagged events at the sink */
    uint64_t extra;        /* repeated copies at the sink */
    uint64_t failed_seen;  /* events of failed batches the sink got */
    uint64_t rep_delivered, rep_failed, rep_skipped;
    uint32_t batches;
};

/* The exact account; s: the client's counters (taken by the caller, since
 * the client may already be shut down).  Cells are threads x per. */
static struct recon reconcile(const segops_counters *s, uint32_t threads, uint32_t per)
{
    struct recon rc;
    memset(&rc, 0, sizeof(rc));
    cr_expect_eq(s->accepted, s->delivered + s->skipped + s->failed + s->pending,
                 "accepted %llu != delivered %llu + skipped %llu + failed %llu + pending %llu",
                 (unsigned long long)s->accepted, (unsigned long long)s->delivered,
                 (unsigned long long)s->skipped, (unsigned long long)s->failed,
                 (unsigned long long)s->pending);
    cr_expect_leq(s->pending, s->accepted);

    pthread_mutex_lock(&R.mu);
    pthread_mutex_lock(&H.mu);
    cr_expect_eq(R.overflow, 0);
    uint64_t sink_total = 0;
    uint32_t keys_seen = 0;
    for (uint32_t i = 0; i < R.n; i++) {
        const struct report *r = &R.r[i];
        uint32_t at = sink_events_of(r->key);
        uint32_t q = r->events - r->skipped; /* events the sink records per copy */
        if (r->result == 0) {
            rc.rep_delivered += q;
            rc.rep_skipped += r->skipped;
            cr_expect(q == 0 || (at >= q && at % q == 0),
                      "delivered batch %s (%u events) seen %u times-events at the sink",
                      r->key, q, at);
        } else {
            rc.rep_failed += r->events;
            cr_expect(at % r->events == 0, "failed batch %s (%u events): %u at the sink",
                      r->key, r->events, at);
        }
        if (at) {
            keys_seen++;
            rc.distinct += q;
            rc.extra += at - q;
            if (r->result != 0)
                rc.failed_seen += q;
        }
        sink_total += at;
    }
    rc.batches = R.n;
    cr_expect_eq(rc.rep_delivered, s->delivered, "reports %llu, counter %llu",
                 (unsigned long long)rc.rep_delivered, (unsigned long long)s->delivered);
    cr_expect_eq(rc.rep_failed, s->failed, "reports %llu, counter %llu",
                 (unsigned long long)rc.rep_failed, (unsigned long long)s->failed);
    cr_expect_eq(rc.rep_skipped, s->skipped);
    cr_expect_eq((uint64_t)R.n, s->batches);
    cr_expect_eq(H.nkeys, keys_seen, "the sink saw a key no batch report names");
    cr_expect_eq(H.tagged, sink_total);
    cr_expect_eq(H.untagged, 0);
    cr_expect_eq(H.dup_tagged, rc.extra,
                 "duplicates %llu at the sink, repeated batch copies %llu",
                 (unsigned long long)H.dup_tagged, (unsigned long long)rc.extra);
    uint64_t cells = 0;
    if (H.seen)
        for (uint32_t t = 0; t < threads; t++)
            for (uint32_t i = 0; i < per; i++)
                cells += H.seen[(size_t)t * H.per + i] != 0;
    cr_expect_eq(cells, rc.distinct, "distinct (thread, seq) %llu, from reports %llu",
                 (unsigned long long)cells, (unsigned long long)rc.distinct);
    cr_expect_eq(rc.distinct, s->delivered + rc.failed_seen);
    pthread_mutex_unlock(&H.mu);
    pthread_mutex_unlock(&R.mu);

    struct sink_counts k;
    sink_counts(&k);
    cr_expect_eq(k.queued, sink_total);
    if (rc.extra)
        cr_expect_geq(k.repeated_keys, 1, "duplicates without a repeated Idempotency-Key");
    return rc;
}

static struct recon reconcile_now(uint32_t threads, uint32_t per)
{
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.pending, 0);
    return reconcile(&s, threads, per);
}

/* What a cell expects of the counters at its end, named like the values it
 * checks: .s.retries = EQ(1) for segops_stats' retries, .k.* the sink's
 * counts, .cc.* the proxy's, .r.* reconcile_now(1, 1000)'s.  A field left
 * out is not checked; EQ(n) must be exactly n, AT_LEAST(n) at least n;
 * EQ_WHY adds what a mismatch means to the failure message. */
enum { W_OFF, W_EQ, W_GEQ };
struct wv {
    int op;
    uint64_t v;
    const char *why;
};
#define EQ(x) ((struct wv){W_EQ, (x), ""})
#define EQ_WHY(x, why) ((struct wv){W_EQ, (x), why})
#define AT_LEAST(x) ((struct wv){W_GEQ, (x), ""})
#define NOT_CHECKED ((struct wv){W_OFF, 0, ""})

/* each list once: X(source, field) */
#define STATS_FIELDS(X) X(s, delivered) X(s, failed) X(s, batches) X(s, retries) X(s, requests) \
    X(s, reconnects)
#define SINK_FIELDS(X) X(k, requests) X(k, queued) X(k, failed_requests) X(k, repeated_keys) \
    X(k, auth_failures)
#define CHAOS_FIELDS(X) X(cc, connections) X(cc, refused) X(cc, resets) X(cc, cuts) X(cc, tiny) \
    X(cc, injected)
#define RECON_FIELDS(X) X(r, extra) X(r, failed_seen)

#define WANT_FIELD(src, f) struct wv f;
struct want {
    const char *ctx; /* the variant, named in every message; may be NULL */
    struct { STATS_FIELDS(WANT_FIELD) } s;
    struct { SINK_FIELDS(WANT_FIELD) } k;
    struct { CHAOS_FIELDS(WANT_FIELD) } cc;
    struct { RECON_FIELDS(WANT_FIELD) } r;
};

static void check(const char *at, const char *field, uint64_t got, struct wv w)
{
    if (w.op == W_EQ)
        cr_expect_eq(got, w.v, "%s: %s is %llu, expected %llu%s%s", at, field,
                     (unsigned long long)got, (unsigned long long)w.v, *w.why ? ": " : "",
                     w.why);
    else if (w.op == W_GEQ)
        cr_expect_geq(got, w.v, "%s: %s is %llu, expected at least %llu", at, field,
                      (unsigned long long)got, (unsigned long long)w.v);
}

#define CHECK(src, f) check(at, #src "." #f, src.f, w->src.f);

/* The end of a single-producer cell: the client's counters, the sink's,
 * the proxy's, then reconcile_now(1, 1000) (returned); each against w. */
static struct recon expect_counts_at(int line, const struct want *w)
{
    char at[128];
    snprintf(at, sizeof(at), "line %d%s%s", line, w->ctx ? ", " : "", w->ctx ? w->ctx : "");
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    STATS_FIELDS(CHECK)
    struct sink_counts k;
    sink_counts(&k);
    SINK_FIELDS(CHECK)
    struct chaos_counts cc;
    chaos_counts(&cc);
    CHAOS_FIELDS(CHECK)
    struct recon r = reconcile_now(1, 1000);
    RECON_FIELDS(CHECK)
    return r;
}

/* expect_counts(.s.delivered = EQ(9), .k.repeated_keys = EQ(1), ...) */
#define expect_counts(...) expect_counts_at(__LINE__, &(struct want){__VA_ARGS__})

TestSuite(faults, .fini = teardown, .timeout = 60);

/* ------------------------------------------------------------ 5xx */

Test(faults, alternating_500s_within_the_retry_budget_deliver_with_exact_retries)
{
    struct sink_opts so = {0};
    so.fail_status = 500;
    so.fail_every = 2; /* requests 2, 4, 6, ...: batches 2..10 need one retry */
    rig(&so, NULL, 1000);
    segops_options o = h_opts();
    cr_assert_eq(client(&o), 0);
    for (int b = 0; b < 10; b++) {
        cr_assert_eq(track_n(H.c, 0, b * 7, 7), 7);
        cr_expect_eq(segops_flush(H.c, 5000), 0, "batch %d", b);
    }
    expect_counts(.s.delivered = EQ(70), .s.failed = EQ(0), .s.batches = EQ(10),
                  .s.retries = EQ(9), .s.requests = EQ(19),
                  .k.failed_requests = EQ(9), .k.repeated_keys = EQ(9),
                  .r.extra = EQ(0));
}

Test(faults, burst_of_503_beyond_the_budget_fails_one_batch_exactly)
{
    struct sink_opts so = {0};
    so.fail_status = 503;
    so.fail_first = 4; /* batch 1: 1 + 3 retries, all 503 */
    rig(&so, NULL, 1000);
    segops_options o = h_opts();
    cr_assert_eq(client(&o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 6), 6);
    cr_expect_eq(segops_flush(H.c, 10000), SEGOPS_ERETRIES);
    cr_assert_eq(track_n(H.c, 0, 6, 4), 4);
    cr_expect_eq(segops_flush(H.c, 10000), 0);
    pthread_mutex_lock(&R.mu);
    cr_expect_eq(R.n, 2);
    cr_expect_eq(R.r[0].result, SEGOPS_ERETRIES);
    cr_expect_eq(R.r[0].status, 503);
    cr_expect_eq(R.r[0].attempts, 4);
    cr_expect_eq(R.r[1].result, 0);
    pthread_mutex_unlock(&R.mu);
    expect_counts(.s.failed = EQ(6), .s.delivered = EQ(4), .s.retries = EQ(3),
                  .s.requests = EQ(5), .s.batches = EQ(2),
                  .r.failed_seen = EQ(0));
}

/* ------------------------------------------------------------ 429 */

/* The first fail_first answers are 429 with Retry-After: retry_after (kept
 * by the sink: static storage); 5 events are flushed, which must deliver.
 * Returns how long the flush took, in ms. */
static int64_t flush_through_429(int fail_first, const char *retry_after)
{
    struct sink_opts so = {0};
    so.fail_status = 429;
    so.fail_first = fail_first;
    so.retry_after = retry_after;
    rig(&so, NULL, 1000);
    segops_options o = h_opts();
    cr_assert_eq(client(&o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 5), 5);
    int64_t t0 = h_now_ms();
    cr_expect_eq(segops_flush(H.c, 10000), 0);
    return h_now_ms() - t0;
}

Test(faults, retry_after_seconds_on_429_is_honoured)
{
    int64_t dt = flush_through_429(2, "1");
    cr_expect(dt >= 1900, "two Retry-After: 1 took %lld ms", (long long)dt);
    expect_counts(.s.retries = EQ(2), .s.delivered = EQ(5));
}

Test(faults, retry_after_http_date_on_429_is_honoured)
{
    static char date[64];
    time_t when = time(NULL) + 2;
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int64_t dt = flush_through_429(1, date);
    /* one-second resolution: the wait is 1..2 s; 0 would mean ignored */
    cr_expect(dt >= 900, "Retry-After: %s gave %lld ms", date, (long long)dt);
    expect_counts(.s.retries = EQ(1), .s.delivered = EQ(5));
}

/* --------------------------------------------------------- resets */

Test(faults, reset_before_processing_is_retried_without_duplicate)
{
    struct chaos_opts co = {0};
    co.fault = CHAOS_RESET_BEFORE;
    co.fault_first = 1; /* on a fresh connection: a real failure */
    rig(NULL, &co, 1000);
    segops_options o = h_opts();
    cr_assert_eq(client(&o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 8), 8);
    cr_expect_eq(segops_flush(H.c, 5000), 0);
    expect_counts(.s.delivered = EQ(8), .s.retries = EQ(1), .s.requests = EQ(2),
                  .k.requests = EQ_WHY(1, "the reset request must not reach the sink"),
                  .k.repeated_keys = EQ(0),
                  .cc.resets = EQ(1),
                  .r.extra = EQ(0));
}

Test(faults, reset_before_processing_on_a_kept_alive_connection)
{
    /* A reset on a reused connection before any answer byte looks exactly
     * like a stale keep-alive connection: the first one is resent at once
     * without spending a retry; a second one in a row costs a retry. */
    rig_kept_alive(3);
    chaos_fault_next(CH, CHAOS_RESET_BEFORE, 2);
    cr_assert_eq(track_n(H.c, 0, 3, 3), 3);
    cr_expect_eq(segops_flush(H.c, 5000), 0);
    expect_counts(.s.delivered = EQ(6), .s.retries = EQ(1), .s.requests = EQ(4),
                  .k.requests = EQ(2), .k.repeated_keys = EQ(0));
}

Test(faults, reset_after_processing_resends_under_the_same_key)
{
    struct chaos_opts co = {0};
    co.fault = CHAOS_RESET_AFTER;
    co.fault_first = 1;
    rig(NULL, &co, 1000);
    segops_options o = h_opts();
    cr_assert_eq(client(&o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 9), 9);
    cr_expect_eq(segops_flush(H.c, 5000), 0);
    expect_counts(.s.delivered = EQ(9), .s.retries = EQ(1),
                  .k.requests = EQ(2),
                  .k.repeated_keys = EQ_WHY(1, "the resend must carry the same Idempotency-Key"),
                  .k.queued = EQ_WHY(18, "without dedupe the sink records the batch twice"),
                  .r.extra = EQ(9));
    pthread_mutex_lock(&H.mu);
    cr_expect_eq(H.nkeys, 1);
    cr_expect_eq(H.dup_tagged, 9);
    pthread_mutex_unlock(&H.mu);
}

Test(faults, reset_after_processing_with_dedupe_is_exactly_once)
{
    struct sink_opts so = {0};
    so.dedupe = 1;
    struct chaos_opts co = {0};
    co.fault = CHAOS_RESET_AFTER;
    co.fault_first = 1;
    rig(&so, &co, 1000);
    segops_options o = h_opts();
    cr_assert_eq(client(&o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 9), 9);
    cr_expect_eq(segops_flush(H.c, 5000), 0);
    expect_counts(.s.delivered = EQ(9), .s.retries = EQ(1),
                  .k.requests = EQ(2), .k.repeated_keys = EQ(1), .k.queued = EQ(9),
                  .r.extra = EQ(0));
}

Test(faults, reset_after_processing_every_time_fails_but_the_sink_has_the_events)
{
    /* The answer is always lost: the client must count the batch failed
     * (it cannot know), the sink holds 4 copies under one key. */
    struct chaos_opts co = {0};
    co.mode = CHAOS_RESET_AFTER;
    rig(NULL, &co, 1000);
    segops_options o = h_opts();
    cr_assert_eq(client(&o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 5), 5);
    cr_expect_eq(segops_flush(H.c, 10000), SEGOPS_ERETRIES);
    expect_counts(.s.failed = EQ(5), .s.delivered = EQ(0), .s.retries = EQ(3),
                  .k.queued = EQ(20), .k.repeated_keys = EQ(3),
                  .r.failed_seen = EQ(5), .r.extra = EQ(15));
}

/* The server's 202 is cut short: its status line said the server has the
 * events, so they count delivered and are never sent again (SPEC: a 2xx
 * is never re-sent); the connection is dropped. */
Test(faults, cut_2xx_answers_count_delivered_and_are_not_sent_again)
{
    int acts[2] = {CHAOS_CUT_RST, CHAOS_CUT_FIN};
    for (int v = 0; v < 2; v++) {
        struct chaos_opts co = {0};
        co.fault = acts[v];
        co.fault_first = 1;
        rig(NULL, &co, 1000);
        segops_options o = h_opts();
        cr_assert_eq(client(&o), 0);
        cr_assert_eq(track_n(H.c, 0, 0, 4), 4);
        cr_expect_eq(segops_flush(H.c, 5000), 0, "%s", chaos_action_name(acts[v]));
        expect_counts(.ctx = chaos_action_name(acts[v]), .s.delivered = EQ(4),
                      .s.retries = EQ(0),
                      .cc.cuts = EQ(1),
                      .k.repeated_keys = EQ(0),
                      .r.extra = EQ(0));
        cr_expect(strstr(R.log, "counted delivered, not sent again") != NULL, "log: %s", R.log);
        unrig();
    }
}

/* ----------------------------------------------------- keep-alive */

Test(faults, stale_keep_alive_reset_while_idle_is_resent_without_a_retry)
{
    rig_kept_alive(2);
    chaos_kill_connections(CH); /* RST the idle keep-alive connection */
    h_sleep_ms(200);
    cr_assert_eq(track_n(H.c, 0, 2, 2), 2);
    cr_expect_eq(segops_flush(H.c, 5000), 0);
    expect_counts(.s.delivered = EQ(4), .s.retries = EQ(0), .s.reconnects = EQ(1),
                  .cc.connections = EQ(2));
}

Test(faults, stale_keep_alive_closed_by_the_server_through_the_proxy)
{
    struct sink_opts so = {0};
    so.idle_close_ms = 100; /* the proxy mirrors the server's FIN */
    rig(&so, NULL, 1000);
    segops_options o = h_opts();
    cr_assert_eq(client(&o), 0);
    for (int r = 0; r < 3; r++) {
        cr_assert_eq(track_n(H.c, 0, r * 2, 2), 2);
        cr_expect_eq(segops_flush(H.c, 5000), 0);
        h_sleep_ms(300);
    }
    expect_counts(.s.delivered = EQ(6), .s.retries = EQ(0), .s.reconnects = EQ(2));
}

/* ----------------------------------------------------- server down */

Test(faults, server_down_then_back_delivers_everything_once)
{
    int hows[2] = {CHAOS_REFUSE_CLOSE, CHAOS_REFUSE_RST};
    for (int v = 0; v < 2; v++) {
        rig(NULL, NULL, 1000);
        segops_options o = h_opts();
        o.max_retries = 6; /* back-off 0, .5, 1, 2 s: ~1 s down fits well */
        cr_assert_eq(client(&o), 0);
        cr_assert_eq(track_n(H.c, 0, 0, 10), 10);
        cr_expect_eq(segops_flush(H.c, 5000), 0);
        chaos_refuse(CH, 1000, hows[v]);
        h_sleep_ms(100);
        cr_assert_eq(track_n(H.c, 0, 10, 30), 30);
        int64_t t0 = h_now_ms();
        cr_expect_eq(segops_flush(H.c, 15000), 0, "how %d", hows[v]);
        int64_t dt = h_now_ms() - t0;
        cr_expect(dt >= 700, "delivered while the server was down? %lld ms", (long long)dt);
        char how[16];
        snprintf(how, sizeof(how), "how %d", hows[v]);
        expect_counts(.ctx = how, .s.delivered = EQ(40), .s.failed = EQ(0),
                      .s.retries = AT_LEAST(1), .s.reconnects = AT_LEAST(1),
                      .cc.refused = hows[v] == CHAOS_REFUSE_RST ? AT_LEAST(1) : NOT_CHECKED,
                      .r.extra = EQ(0));
        unrig();
    }
}

/* ------------------------------------------- slow server, full queue */

struct prod {
    segops_client *c;
    int id, n, ok, full, other;
    int64_t ms, max_call_us;
    int pace; /* non-zero: sleep 1 ms every `pace` calls (not timed) */
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *producer(void *arg)
{
    struct prod *p = arg;
    int64_t t0 = now_us();
    for (int i = 0; i < p->n; i++) {
        segops_prop props[] = {SEGOPS_I64("thread", p->id), SEGOPS_I64("seq", i)};
        segops_event ev = {
            .user_id = "user-1", .event_type = "page_viewed", .payload = props, .payload_len = 2};
        int64_t a = now_us();
        int rc = segops_track(p->c, &ev);
        int64_t d = now_us() - a;
        if (d > p->max_call_us)
            p->max_call_us = d;
        if (rc == 0)
            p->ok++;
        else if (rc == SEGOPS_EFULL)
            p->full++;
        else
            p->other++;
        if (p->pace && i % p->pace == p->pace - 1) {
            int64_t a2 = now_us();
            h_sleep_ms(1);
            t0 += now_us() - a2;
        }
    }
    p->ms = (now_us() - t0) / 1000;
    return NULL;
}

Test(faults, slow_server_fills_a_small_queue_drops_are_counted_producers_never_block)
{
    enum { T = 4, N = 1000 };
    struct chaos_opts co = {0};
    co.mode = CHAOS_DELAY;
    co.ms = 250;
    rig(NULL, &co, N);
    segops_options o = h_opts();
    o.queue_capacity = 64;
    o.batch_size = 10;
    cr_assert_eq(client(&o), 0);
    pthread_t th[T];
    struct prod p[T];
    for (int i = 0; i < T; i++) {
        p[i] = (struct prod){H.c, i, N, 0, 0, 0, 0, 0, 0};
        pthread_create(&th[i], NULL, producer, &p[i]);
    }
    uint64_t ok = 0, full = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(p[i].other, 0);
        cr_log_info("producer %d: %d calls in %lld ms, slowest %lld us, %d accepted, %d full",
                    i, N, (long long)p[i].ms, (long long)p[i].max_call_us, p[i].ok,
                    p[i].full);
        ok += (uint64_t)p[i].ok;
        full += (uint64_t)p[i].full;
    }
    cr_expect_gt(full, 0, "a 64-event lane should overflow against a 250 ms server");
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.dropped_full, full);
    cr_expect_eq(s.accepted, ok);
    cr_expect_leq(s.queue_high_water, (uint64_t)T * 64);
    cr_expect_eq(segops_flush(H.c, 40000), 0);
    stats(&s);
    cr_expect_eq(s.delivered, ok);
    struct recon r = reconcile_now(T, N);
    cr_expect_eq(r.distinct, ok);
}

/* ---------------------------------------- hanging server, shutdown */

/* The server takes the request and never answers.  request_timeout_ms is
 * the in-flight request's own bound; shutdown must cut at its deadline. */
static void hanging_server_shutdown(uint32_t request_timeout_ms)
{
    struct chaos_opts co = {0};
    co.ms = 30000;
    rig(NULL, &co, 1000);
    segops_options o = h_opts();
    o.request_timeout_ms = request_timeout_ms;
    cr_assert_eq(client(&o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 20), 20);
    cr_expect_eq(segops_flush(H.c, 5000), 0);
    chaos_set_mode(CH, CHAOS_STALL);
    cr_assert_eq(track_n(H.c, 0, 20, 45), 45);
    /* batches go out (one or several, on the pool's connections) and hang */
    segops_counters before = SEGOPS_COUNTERS_INIT;
    stats(&before);
    for (int i = 0; i < 5000 && before.requests_in_flight == 0; i++) {
        h_sleep_ms(2);
        stats(&before);
    }
    cr_expect(before.requests_in_flight >= 1, "a batch is in flight");
    cr_expect(before.requests >= 2);
    uint64_t lost = 0;
    int64_t t0 = h_now_ms();
    int rc = segops_shutdown(H.c, 1000, &lost);
    int64_t dt = h_now_ms() - t0;
    H.c = NULL;
    cr_expect_eq(rc, SEGOPS_ETIMEDOUT);
    cr_expect(dt < 5000, "shutdown(1000) took %lld ms (request_timeout_ms %u)", (long long)dt,
              request_timeout_ms);
    cr_expect(dt >= 900, "shutdown(1000) returned after %lld ms", (long long)dt);
    /* after shutdown the reports are the client's last word */
    segops_counters s = before;
    s.delivered = 0;
    s.failed = 0;
    pthread_mutex_lock(&R.mu);
    for (uint32_t i = 0; i < R.n; i++) {
        if (R.r[i].result == 0)
            s.delivered += R.r[i].events;
        else
            s.failed += R.r[i].events;
        if (R.r[i].result != 0)
            cr_expect_eq(R.r[i].result, SEGOPS_EABANDONED);
    }
    s.batches = R.n;
    pthread_mutex_unlock(&R.mu);
    s.pending = 0;
    cr_expect_eq(s.accepted, 65);
    cr_expect_eq(s.delivered, 20);
    cr_expect_eq(s.failed, 45);
    cr_expect_eq(lost, s.accepted - s.delivered, "undelivered %llu, accepted - delivered %llu",
                 (unsigned long long)lost, (unsigned long long)(s.accepted - s.delivered));
    struct recon r = reconcile(&s, 1, 1000);
    cr_expect(r.failed_seen >= 20 && r.failed_seen <= 45,
              "the hanging request reached the sink: %llu", (unsigned long long)r.failed_seen);
}

Test(faults, hanging_server_shutdown_meets_its_deadline_with_exact_undelivered)
{
    hanging_server_shutdown(300); /* the in-flight attempt ends within 300 ms */
}

/* A shutdown that begins while a request is in flight shortens it: the
 * sender waits in 50 ms slices and re-checks the shutdown deadline, so
 * segops_shutdown(1000) returns on time against a server that accepted the
 * request and hangs, with the default 10 s request timeout.  (Found by this
 * test: the deadline used to be fixed when the attempt started.) */
Test(faults, hanging_server_shutdown_cuts_the_request_in_flight)
{
    hanging_server_shutdown(10000); /* the default request timeout */
}

/* --------------------------------------------------- answer shapes */

Test(faults, chunked_byte_by_byte_and_tiny_segment_answers_deliver)
{
    struct {
        int chunked, byte_by_byte, tiny;
    } v[4] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 1}};
    for (int i = 0; i < 4; i++) {
        struct sink_opts so = {0};
        so.chunked = v[i].chunked;
        so.byte_by_byte = v[i].byte_by_byte;
        struct chaos_opts co = {0};
        co.mode = v[i].tiny ? CHAOS_TINY : CHAOS_FORWARD;
        rig(&so, &co, 1000);
        segops_options o = h_opts();
        cr_assert_eq(client(&o), 0);
        for (int r = 0; r < 3; r++) {
            cr_assert_eq(track_n(H.c, 0, r * 5, 5), 5);
            cr_expect_eq(segops_flush(H.c, 5000), 0, "variant %d round %d", i, r);
        }
        char variant[16];
        snprintf(variant, sizeof(variant), "variant %d", i);
        expect_counts(.ctx = variant, .s.delivered = EQ(15), .s.retries = EQ(0),
                      .s.reconnects = EQ(0),
                      .cc.tiny = v[i].tiny ? EQ(3) : NOT_CHECKED);
        unrig();
    }
}

/* ---------------------------------------------------- 4xx, no retry */

Test(faults, wrong_key_401_is_not_retried_and_reconciles)
{
    rig(NULL, NULL, 1000);
    segops_options o = h_opts();
    o.api_key = "sk_not_the_right_one";
    o.batch_size = 100; /* only the flushes send: exactly two requests */
    cr_assert_eq(client(&o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 25), 25); /* one flush: one batch of 25 */
    cr_expect_eq(segops_flush(H.c, 5000), SEGOPS_EREJECTED);
    cr_assert_eq(track_n(H.c, 0, 25, 5), 5);
    cr_expect_eq(segops_flush(H.c, 5000), SEGOPS_EREJECTED);
    cr_expect(strstr(R.log, "sk_not_the_right_one") == NULL, "key leaked: %s", R.log);
    expect_counts(.s.failed = EQ(30), .s.retries = EQ(0), .s.requests = EQ(2),
                  .s.reconnects = EQ_WHY(0, "a 401 must not drop the connection"),
                  .k.auth_failures = EQ(2));
}

Test(faults, injected_400_is_not_retried_and_the_connection_is_kept)
{
    rig(NULL, NULL, 1000);
    segops_options o = h_opts();
    cr_assert_eq(client(&o), 0);
    chaos_fault_next(CH, CHAOS_ANSWER_400, 1);
    cr_assert_eq(track_n(H.c, 0, 0, 3), 3);
    cr_expect_eq(segops_flush(H.c, 5000), SEGOPS_EREJECTED);
    cr_assert_eq(track_n(H.c, 0, 3, 3), 3);
    cr_expect_eq(segops_flush(H.c, 5000), 0);
    pthread_mutex_lock(&R.mu);
    cr_expect_eq(R.r[0].status, 400);
    cr_expect_eq(R.r[0].result, SEGOPS_EREJECTED);
    pthread_mutex_unlock(&R.mu);
    cr_expect(strstr(R.log, "Malformed JSON body.") != NULL, "log: %s", R.log);
    expect_counts(.s.failed = EQ(3), .s.delivered = EQ(3), .s.retries = EQ(0),
                  .s.requests = EQ(2),
                  .k.requests = EQ(1));
}

/* ----------------------------------------------- malformed answers */

static const int MALFORMED[4] = {CHAOS_BIG_HEAD, CHAOS_BIG_LENGTH, CHAOS_BIG_CHUNK,
                                 CHAOS_GARBAGE};

Test(faults, malformed_answer_once_drops_the_connection_and_the_retry_delivers)
{
    for (int v = 0; v < 4; v++) {
        /* first on a kept-alive connection: answer bytes arrived, so this
         * is not mistaken for a stale connection */
        rig_kept_alive(2);
        chaos_fault_next(CH, MALFORMED[v], 1);
        cr_assert_eq(track_n(H.c, 0, 2, 6), 6);
        cr_expect_eq(segops_flush(H.c, 5000), 0, "%s", chaos_action_name(MALFORMED[v]));
        expect_counts(.ctx = chaos_action_name(MALFORMED[v]), .s.delivered = EQ(8),
                      .s.retries = EQ(1),
                      .s.reconnects = EQ_WHY(1, "the connection must be dropped"),
                      .cc.injected = EQ(1),
                      .r.extra = EQ(0));
        unrig();
    }
}

Test(faults, malformed_answers_forever_fail_after_retries_as_eprotocol)
{
    for (int v = 0; v < 4; v++) {
        struct chaos_opts co = {0};
        co.mode = MALFORMED[v];
        rig(NULL, &co, 1000);
        segops_options o = h_opts();
        o.max_retries = 2;
        cr_assert_eq(client(&o), 0);
        cr_assert_eq(track_n(H.c, 0, 0, 7), 7);
        cr_expect_eq(segops_flush(H.c, 10000), SEGOPS_EPROTOCOL, "%s",
                     chaos_action_name(MALFORMED[v]));
        pthread_mutex_lock(&R.mu);
        cr_expect_eq(R.n, 1);
        cr_expect_eq(R.r[0].result, SEGOPS_EPROTOCOL);
        pthread_mutex_unlock(&R.mu);
        expect_counts(.ctx = chaos_action_name(MALFORMED[v]), .s.failed = EQ(7),
                      .s.retries = EQ(2), .s.requests = EQ(3),
                      .k.requests = EQ(0));
        unrig();
    }
}

/* ------------------------------------------------- all of it at once */

struct chaos_ctl {
    struct chaos *ch;
    atomic_int stop;
    int faults;
};

static void *chaos_controller(void *arg)
{
    static const int acts[] = {CHAOS_RESET_BEFORE, CHAOS_RESET_AFTER, CHAOS_CUT_RST,
                               CHAOS_CUT_FIN,      CHAOS_TINY,        CHAOS_BIG_HEAD,
                               CHAOS_BIG_LENGTH,   CHAOS_BIG_CHUNK,   CHAOS_GARBAGE,
                               CHAOS_STALL};
    struct chaos_ctl *c = arg;
    /* arm one fault for the next request once two requests have passed
     * since the last arming: about every other request is hit, whatever
     * the machine's speed, and a retry always gets through eventually */
    uint64_t armed_at = 0;
    for (int i = 0; i < 60000 && !atomic_load(&c->stop); i++) {
        struct chaos_counts k;
        chaos_get_counts(c->ch, &k);
        if (k.requests >= armed_at + 2 || c->faults == 0) {
            chaos_fault_next(c->ch, acts[c->faults % 10], 1);
            c->faults++;
            armed_at = k.requests;
            if (c->faults % 50 == 0)
                chaos_kill_connections(c->ch);
        }
        h_sleep_ms(1);
    }
    return NULL;
}

Test(faults, mixed_faults_under_load_reconcile_exactly, .timeout = 60)
{
    enum { T = 4, N = 2000 };
    /* a 20 ms round trip: full batches (~40 events) come faster than one
     * connection can carry them, so the pool keeps several in flight */
    struct sink_opts so = {0};
    so.delay_ms = 20;
    rig(&so, NULL, N);
    chaos_set_ms(CH, 30);
    segops_options o = h_opts();
    o.flush_interval_ms = 50;
    o.max_retries = 8;
    o.queue_capacity = 4096;
    o.max_batch_bytes = 8192; /* ~40 events a request: many requests to hit */
    cr_assert_eq(client(&o), 0);
    struct chaos_ctl ctl = {CH, 0, 0};
    pthread_t cth;
    pthread_create(&cth, NULL, chaos_controller, &ctl);
    pthread_t th[T];
    struct prod p[T];
    for (int i = 0; i < T; i++) {
        p[i] = (struct prod){H.c, i, N, 0, 0, 0, 0, 0, 5}; /* ~0.5 s each */
        pthread_create(&th[i], NULL, producer, &p[i]);
    }
    uint64_t ok = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        ok += (uint64_t)p[i].ok;
    }
    /* keep the faults coming while the backlog drains */
    for (int i = 0; i < 200; i++) {
        segops_counters s = SEGOPS_COUNTERS_INIT;
        stats(&s);
        cr_expect_eq(s.accepted, s.delivered + s.skipped + s.failed + s.pending);
        if (s.pending == 0)
            break;
        h_sleep_ms(10);
    }
    atomic_store(&ctl.stop, 1);
    pthread_join(cth, NULL);
    chaos_fault_next(CH, CHAOS_FORWARD, 0);
    cr_expect_eq(segops_flush(H.c, 30000) == SEGOPS_ETIMEDOUT, 0);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.accepted, ok);
    cr_expect_eq(s.delivered + s.failed, ok);
    struct chaos_counts cc;
    chaos_counts(&cc);
    cr_log_info("mixed: %llu accepted, %llu delivered, %llu failed, %llu retries, "
                "%llu requests, %llu reconnects; proxy: %llu requests, %llu resets, "
                "%llu cuts, %llu injected, %d faults armed",
                (unsigned long long)s.accepted, (unsigned long long)s.delivered,
                (unsigned long long)s.failed, (unsigned long long)s.retries,
                (unsigned long long)s.requests, (unsigned long long)s.reconnects,
                (unsigned long long)cc.requests, (unsigned long long)cc.resets,
                (unsigned long long)cc.cuts, (unsigned long long)cc.injected, ctl.faults);
    cr_expect_gt(cc.resets + cc.cuts + cc.injected, 10);
    /* the matrix runs with several requests in flight at once */
    struct sink_counts k;
    h_counts(&H, &k);
    cr_log_info("mixed: at most %llu requests in flight at the sink",
                (unsigned long long)k.max_in_progress);
    cr_expect_geq(k.max_in_progress, 2, "one request at a time: the pool was not exercised");
    reconcile_now(T, N);
}
