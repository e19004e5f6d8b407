/* SPDX-License-Identifier: MIT */
/*
 * sender.c -- the sender thread's policy: batching, retries, deadlines,
 * accounting, flush and shutdown.  The transport is conn.c's; this file
 * decides what to send and what each outcome means.
 *
 * One loop turn, `now` read once at its start:
 *   control   flush requests (a snapshot of every lane's count), shutdown,
 *             the lane commit-ahead, clock recalibration
 *   timers    the pool's (resolver answers, connection deadlines) and the
 *             batches' (BACKOFF -> READY at retry_at)
 *   abandon   once the shutdown deadline passes: every batch and every
 *             queued event fails as EABANDONED and the loop ends
 *   build     while events are due (batch_size queued, the interval tick,
 *             a flush, shutdown) and the pool has room for a request: up to
 *             500 events into a free batch -> READY
 *   dispatch  READY batches to the pool, oldest first, unless a Retry-After
 *             pause holds every new request
 *   wait      the driver sleeps until the earliest timer or a completion,
 *             at most the idle poll interval (producers never signal: that
 *             would be a system call on their path); the pool turns
 *             completions into outcomes, and outcomes move batches
 *   report    DONE batches' log lines and delivery callbacks run here,
 *             after the batch has left every list (deferred callbacks)
 *   flushes   a flush completes once every lane was taken up to its
 *             snapshot and every batch built until then is resolved
 *
 * Timers: T_TICK (next_tick, the flush interval), T_RETRY (retry_at of
 * each BACKOFF batch), T_PAUSE (pause_until), T_STOP (the shutdown
 * deadline), and the pool's connection timers.  Each turn waits for the
 * earliest.
 *
 * Batch states are listed in batch.h.  Outcomes (from the pool):
 *   2xx                         DONE, delivered (skipped as the server says)
 *   408 on a reused connection, or EOF/reset before any answer byte on one:
 *                               READY again at once, no retry spent (once
 *                               per try): the server closed it while idle
 *   a TLS certificate failure (not trusted, wrong name, dates: SG_ETLSCERT)
 *                               DONE, failed (ETLS), not retried
 *   408, 429, 5xx, transport errors
 *                               retry: BACKOFF for 0 ms, 500 ms, 1 s, ...
 *                               (Retry-After on 429/503 sets a floor and
 *                               pauses every new request; a 429 without it
 *                               waits at least 500 ms), or DONE failed once
 *                               max_retries are spent
 *   other statuses              DONE, failed (EREJECTED)
 *
 * Invariants: an event is counted pending from its acceptance until its
 * batch is DONE; a batch is in exactly one state and on at most one list;
 * every arena is allocated with the client and reused, so the steady state
 * allocates nothing, whatever the number of requests in flight.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "client.h"
#include "event.h"

#define SG_CAL_NS 100000000    /* clock recalibration period */
#define SG_IDLE_MIN_NS 20000   /* first idle sleep; doubles to idle_poll_us */
#define SG_REAP_NS 1000000000  /* longest wait for cancelled operations */
#define SG_PATIENCE_MIN_NS 50000000 /* see patience() */

static void add(_Atomic uint64_t *ctr, uint64_t v)
{
    atomic_fetch_add_explicit(ctr, v, memory_order_relaxed);
}

static int stopping(struct segops_client *c)
{
    return atomic_load_explicit(&c->stop_pub, memory_order_acquire);
}

static void make_key(struct segops_client *c, struct sg_batch *b)
{
    sg_batch_key(b->key, c->key_seed, ++c->keys_made);
}

/* ------------------------------------------------------------ batches */

static void ready_push(struct segops_client *c, struct sg_batch *b, int front)
{
    b->state = SG_B_READY;
    if (front) {
        b->next = c->ready;
        c->ready = b;
        if (c->ready_tail == &c->ready)
            c->ready_tail = &b->next;
    } else {
        b->next = NULL;
        *c->ready_tail = b;
        c->ready_tail = &b->next;
    }
}

static struct sg_batch *ready_pop(struct segops_client *c)
{
    struct sg_batch *b = c->ready;
    if (b) {
        c->ready = b->next;
        if (!c->ready)
            c->ready_tail = &c->ready;
        b->next = NULL;
    }
    return b;
}

static int nready(const struct segops_client *c)
{
    int n = 0;
    for (const struct sg_batch *b = c->ready; b; b = b->next)
        n++;
    return n;
}

static struct sg_batch *free_batch(struct segops_client *c)
{
    for (int i = 0; i < c->nbatches; i++)
        if (c->batchv[i].state == SG_B_FREE && c->batchv[i].pins == 0)
            return &c->batchv[i];
    return NULL;
}

/* Counts events of batch b: `delivered`, `skipped` and `failed` of them
 * (failure code `result` when failed > 0).  Counted as they resolve, so
 * the counters add up at every moment, also while a split batch goes on. */
static void count(struct segops_client *c, struct sg_batch *b, uint32_t delivered,
                  uint32_t skipped, uint32_t failed, int result)
{
    b->skipped += skipped;
    b->failed += failed;
    add(&c->skipped, skipped);
    add(&c->delivered, delivered);
    if (failed) {
        add(&c->failed, failed);
        b->range_result = result;
        /* the report names this failure, not a later half's answer */
        b->fail_status = b->status;
        memcpy(b->fail_detail, b->detail, sizeof(b->detail));
        pthread_mutex_lock(&c->mu);
        c->last_error = result;
        c->failures++;
        if (c->stop)
            c->undelivered += failed;
        pthread_mutex_unlock(&c->mu);
    }
}

/* Resolves what is left of a batch -- events [lo, n): the range being sent
 * and any split halves still to send -- delivered (result 0, `skipped` of
 * them skipped) or failed.  Counted now, reported at the end of the turn. */
static void done(struct segops_client *c, struct sg_batch *b, int result, uint32_t skipped)
{
    uint32_t n = b->n - b->lo;
    if (result == 0) {
        if (skipped > n)
            skipped = n;
        count(c, b, n - skipped, skipped, 0, 0);
    } else {
        count(c, b, 0, 0, n, result);
    }
    b->nstk = 0;
    b->lo = b->n;
    /* the batch's result: 0 only if no event failed */
    b->result = b->failed ? b->range_result : 0;
    add(&c->batches, 1);
    b->state = SG_B_DONE;
    b->next = c->done;
    c->done = b;
    c->turn_work = 1;
}

/* The range [lo, hi) being sent resolved: `skipped` skipped, `failed`
 * failed (code `result`), the rest delivered.  The next split half goes
 * out, or the batch is done. */
static void range_done(struct segops_client *c, struct sg_batch *b, uint32_t skipped,
                       uint32_t failed, int result)
{
    uint32_t n = b->hi - b->lo;
    if (failed > n)
        failed = n;
    if (skipped > n - failed)
        skipped = n - failed;
    if (b->nstk == 0) {
        /* the last range: done() counts [lo, n) == this range */
        count(c, b, 0, 0, failed, result);
        b->lo += failed; /* n - failed left: delivered or skipped */
        done(c, b, 0, skipped);
        return;
    }
    count(c, b, n - skipped - failed, skipped, failed, result);
    b->nstk--;
    b->lo = b->stk_lo[b->nstk];
    b->hi = b->stk_hi[b->nstk];
    b->rebuild = 1;
    b->retries = 0;
    b->stale_used = 0;
    ready_push(c, b, 1);
}

/* Runs the reports of DONE batches, then frees them. */
static void report(struct segops_client *c)
{
    while (c->done) {
        struct sg_batch *b = c->done;
        c->done = b->next;
        b->next = NULL;
        if (b->result != 0) { /* the failure's own answer, not a later half's */
            b->status = b->fail_status;
            memcpy(b->detail, b->fail_detail, sizeof(b->detail));
        }
        /* "3 of 20 events" when only part of the batch failed */
        char of[32] = "";
        if (b->failed < b->n)
            snprintf(of, sizeof(of), " of %u", b->n);
        if (b->result == SEGOPS_EABANDONED)
            sg_log(c, SEGOPS_LOG_ERROR,
                   "batch %s: %u%s events abandoned: shutdown deadline passed", b->key,
                   b->failed, of);
        else if (b->result == SEGOPS_EREJECTED)
            sg_log(c, SEGOPS_LOG_ERROR, "batch %s: %u%s events rejected: HTTP %d%s%s", b->key,
                   b->failed, of, b->status, b->detail[0] ? ": " : "", b->detail);
        else if (b->result == SEGOPS_EREDIRECT || b->result == SEGOPS_EANSWER)
            sg_log(c, SEGOPS_LOG_ERROR, "batch %s: %u%s events failed: %s", b->key, b->failed,
                   of, b->detail);
        else if (b->result != 0 && b->status)
            sg_log(c, SEGOPS_LOG_ERROR,
                   "batch %s: %u%s events failed after %d attempts: HTTP %d%s%s", b->key,
                   b->failed, of, b->attempts, b->status, b->detail[0] ? ": " : "", b->detail);
        else if (b->result != 0)
            sg_log(c, SEGOPS_LOG_ERROR, "batch %s: %u%s events failed after %d attempts: %s",
                   b->key, b->failed, of, b->attempts, b->detail);
        if (c->cfg.on_delivery) {
            segops_delivery d = {b->result, b->status, b->n, b->skipped,
                                 (uint32_t)b->attempts, b->key, b->detail, b->failed};
            c->cfg.on_delivery(c->cfg.delivery_user, &d);
        }
        b->state = SG_B_FREE;
    }
}

/* ----------------------------------------------------------- outcomes */

/* Back-off before retry r+1, r retries having been made: 0 ms, 500 ms, 1 s, then
 * doubling, capped; up to 10% jitter on non-zero delays so that many
 * clients recovering together do not retry in lockstep. */
int64_t sg_backoff_ms(int r, uint32_t cap_ms, uint64_t rnd)
{
    int64_t d;
    if (r <= 0)
        return 0;
    d = 500;
    for (int i = 1; i < r && d < cap_ms; i++)
        d *= 2;
    if (d > (int64_t)cap_ms)
        d = cap_ms;
    return d + (int64_t)(rnd % (uint64_t)(d / 10 + 1));
}

/* A try failed transiently: schedule the next one, or fail the batch.
 * ra_ms: the server's Retry-After, or -1. */
static void retry(struct segops_client *c, struct sg_batch *b, int rc, int64_t ra_ms,
                  int64_t now)
{
    if (ra_ms > (int64_t)c->cfg.max_backoff_ms)
        ra_ms = c->cfg.max_backoff_ms;
    /* the server asked the client to slow down: no new request on any
     * connection until then, whatever becomes of this batch */
    if (ra_ms >= 0 && now + ra_ms * 1000000 > c->pause_until)
        c->pause_until = now + ra_ms * 1000000;
    if (b->retries >= c->cfg.max_retries) {
        range_done(c, b, 0, b->hi - b->lo, rc);
        return;
    }
    /* jitter from its own stream: the key seed must stay fixed so that
     * keys stay distinct */
    c->jitter_state += 0x9e3779b97f4a7c15ull;
    int64_t delay = sg_backoff_ms(b->retries, c->cfg.max_backoff_ms, sg_perm64(c->jitter_state));
    if (ra_ms >= 0) {
        if (delay < ra_ms)
            delay = ra_ms;
    } else if (b->status == 429 && delay < 500) {
        delay = 500;
    }
    b->retries++;
    b->stale_used = 0;
    add(&c->retries, 1);
    if (delay == 0) {
        ready_push(c, b, 1);
    } else {
        b->state = SG_B_BACKOFF;
        b->retry_at = now + delay * 1000000;
    }
}

/* The pool's report on one request of batch b. */
/* b->detail from a non-2xx answer: the server's "detail" (a string, or a
 * list/object as compact JSON), else the whole JSON body compacted, else
 * the first 200 bytes of a non-JSON body; made safe for a log line, the
 * API key redacted. */
static void answer_detail(struct segops_client *c, struct sg_batch *b,
                          const struct sg_http_resp *r)
{
    /* The text is cleaned whole and cut while it is written out: a key cut
     * in two by a limit first would not be recognised.  (detail_buf: the
     * sender thread's own, made with the client.) */
    char *raw = c->detail_buf;
    size_t n, cap = sizeof(b->detail);
    if (sg_answer_parse(r->body, r->body_len, NULL, NULL, raw, sizeof(c->detail_buf)) == 0) {
        n = raw[0] ? strlen(raw)
                   : sg_json_compact(r->body, r->body_len, raw, sizeof(c->detail_buf));
        if (n == 2 && raw[0] == '{')
            n = 0; /* {} says nothing */
    } else {
        n = r->body_len; /* not JSON: its first 200 bytes say what it is */
        memcpy(raw, r->body, n);
        cap = 201;
    }
    sg_text_clean(raw, n, b->detail, cap, c->api_key, c->api_key_len);
}

/* A 2xx: never sent again (the server has the events).  What the answer
 * says decides how the events count (SPEC, "The sender"). */
static void answer_2xx(struct segops_client *c, struct sg_batch *b, const struct sg_outcome *o,
                       int64_t now)
{
    const struct sg_http_resp *r = o->resp;
    uint32_t n = b->hi - b->lo;
    if (!b->failed) { /* else the report keeps the failed half's answer */
        b->status = r->status;
        b->detail[0] = 0;
    }
    if (o->rc != 0) {
        /* the head or body could not be read whole: the status line said
         * the server took them */
        sg_log(c, SEGOPS_LOG_WARN,
               "batch %s: HTTP %d answer could not be read (%s); %u events counted delivered, "
               "not sent again; connection dropped",
               b->key, r->status, o->why ? o->why : "", n);
        range_done(c, b, 0, 0, 0);
        return;
    }
    /* from the request's start: connecting is not a round trip */
    int64_t rtt = now - o->started;
    c->srtt_ns = c->srtt_ns ? (c->srtt_ns * 7 + rtt) / 8 : rtt;
    int64_t queued = -1, skipped = -1;
    int json = sg_answer_parse(r->body, r->body_len, &queued, &skipped, NULL, 0) == 0;
    if (r->body_total > r->body_len) {
        /* longer than we keep: cannot judge it, and it is a 2xx */
        sg_log(c, SEGOPS_LOG_WARN,
               "batch %s: HTTP %d answer body of %llu bytes not read; %u events counted delivered",
               b->key, r->status, (unsigned long long)r->body_total, n);
        range_done(c, b, 0, 0, 0);
        return;
    }
    if (!json || queued < 0) {
        /* provably not the SegOps API: a captive portal, a wrong api_url
         * (the body cleaned whole, cut while written: see answer_detail) */
        char clean[160];
        sg_text_clean(r->body, r->body_len, clean, sizeof(clean), c->api_key, c->api_key_len);
        snprintf(b->detail, sizeof(b->detail),
                 "HTTP %d answer is not the SegOps API's (%s): check api_url; body: %s",
                 r->status, json ? "no \"queued\"" : "not JSON", clean);
        range_done(c, b, 0, n, SEGOPS_EANSWER);
        return;
    }
    uint64_t sk = skipped > 0 ? (uint64_t)skipped : 0;
    uint64_t covered = (uint64_t)queued + sk;
    uint32_t failed = covered < n ? n - (uint32_t)covered : 0;
    /* queued first: an answer claiming more than was sent never turns a
     * queued event into a skipped one */
    uint32_t q32 = (uint64_t)queued < n ? (uint32_t)queued : n;
    uint32_t skip = sk < (uint64_t)(n - q32) ? (uint32_t)sk : n - q32;
    if (failed) {
        snprintf(b->detail, sizeof(b->detail),
                 "the server queued %lld and skipped %llu of %u events: %u counted failed",
                 (long long)queued, (unsigned long long)sk, n, failed);
        sg_log(c, SEGOPS_LOG_WARN, "batch %s: %s", b->key, b->detail);
    } else if (covered > n) {
        sg_log(c, SEGOPS_LOG_WARN,
               "batch %s: the server queued %lld and skipped %llu of %u events sent", b->key,
               (long long)queued, (unsigned long long)sk, n);
    }
    range_done(c, b, skip, failed, SEGOPS_EANSWER);
}

/* 413: halves, down to one event (SPEC).  Not a retry. */
static void split(struct segops_client *c, struct sg_batch *b)
{
    uint32_t n = b->hi - b->lo;
    if (n <= 1 || b->nstk >= (int)(sizeof(b->stk_lo) / sizeof(b->stk_lo[0]))) {
        char d[sizeof(b->detail)];
        snprintf(d, sizeof(d), "%u event%s too large for the server%s%.200s", n,
                 n == 1 ? " is" : "s are", b->detail[0] ? ": " : "", b->detail);
        memcpy(b->detail, d, sizeof(d));
        range_done(c, b, 0, n, SEGOPS_EREJECTED);
        return;
    }
    uint32_t mid = b->lo + n / 2;
    b->stk_lo[b->nstk] = mid;
    b->stk_hi[b->nstk] = b->hi;
    b->nstk++;
    b->hi = mid;
    b->rebuild = 1;
    b->retries = 0;
    b->stale_used = 0;
    ready_push(c, b, 1);
}

/* The pool's report on one request of batch b. */
static void on_outcome(void *user, struct sg_batch *b, const struct sg_outcome *o, int64_t now)
{
    struct segops_client *c = user;
    c->turn_work = 1;
    b->attempts = b->retries + 1;
    const struct sg_http_resp *r = o->resp;
    if (r && r->status >= 200 && r->status < 300) {
        answer_2xx(c, b, o, now);
        return;
    }
    /* A 3xx/4xx status decides even when the rest of the answer is broken
     * (a 413 whose body was cut short must split, not be re-sent whole);
     * 408/429/5xx with a broken answer are retried as transport errors. */
    int decided = r && ((r->status >= 300 && r->status < 500 && r->status != 408 &&
                         r->status != 429));
    if (o->rc == 0 || decided) {
        b->status = r->status;
        answer_detail(c, b, r);
        if (r->status == 413) {
            split(c, b);
            return;
        }
        if (r->status >= 300 && r->status < 400) {
            /* never followed: the API key must not travel to another host */
            char loc[SG_HTTP_LOCATION_MAX + 1];
            sg_text_clean(r->location, strlen(r->location), loc, sizeof(loc), c->api_key,
                          c->api_key_len);
            snprintf(b->detail, sizeof(b->detail),
                     "HTTP %d redirect to %.180s: not followed; set api_url to the new address",
                     r->status, loc[0] ? loc : "(no Location)");
            range_done(c, b, 0, b->hi - b->lo, SEGOPS_EREDIRECT);
            return;
        }
        if (r->status == 407 && c->proxy.on) {
            /* http:// through the proxy: its answer, not the server's */
            snprintf(b->detail, sizeof(b->detail),
                     "proxy authentication failed (407) at %.100s: %s", c->proxy.display,
                     c->proxy.auth[0] ? "check the user name and password in the proxy URL"
                                      : "the proxy wants credentials: put user:password@ "
                                        "in the proxy URL");
            range_done(c, b, 0, b->hi - b->lo, SEGOPS_EPROXY);
            return;
        }
        if (r->status == 408 && o->reused && !b->stale_used) {
            /* the server timed the idle connection out just as we sent */
            b->stale_used = 1;
            ready_push(c, b, 1);
            return;
        }
        if (r->status != 408 && r->status != 429 && r->status < 500) {
            range_done(c, b, 0, b->hi - b->lo, SEGOPS_EREJECTED);
            return;
        }
        int64_t ra = -1;
        if ((r->status == 429 || r->status == 503) && r->retry_after[0] &&
            sg_retry_after_parse(r->retry_after, strlen(r->retry_after),
                                 sg_realtime_ns() / 1000000000, &ra) != 0)
            ra = -1;
        retry(c, b, SEGOPS_ERETRIES, ra, now);
        return;
    }
    b->status = r ? r->status : 0;
    snprintf(b->detail, sizeof(b->detail), "%s", o->why ? o->why : "");
    if (o->rc == SG_ETLSCERT) {
        /* the certificate is not trusted, not for this host or out of
         * date: a configuration problem no retry cures */
        range_done(c, b, 0, b->hi - b->lo, SEGOPS_ETLS);
        return;
    }
    if (o->rc == SG_EPROXY) {
        /* the proxy refused the tunnel: 407 and other 4xx are its policy
         * (not retried); 408, 429 and 5xx (it could not reach the server)
         * are transient, like a failed connect */
        int st = o->proxy_status;
        if (st == 408 || st == 429 || st >= 500)
            retry(c, b, SEGOPS_EPROXY, -1, now);
        else
            range_done(c, b, 0, b->hi - b->lo, SEGOPS_EPROXY);
        return;
    }
    if (o->reused && o->got == 0 && !b->stale_used &&
        (o->rc == SG_EEOF || o->rc == -ECONNRESET || o->rc == -EPIPE)) {
        /* a kept-alive connection the server closed while idle: the request
         * never reached a live server; send it again at once, on another */
        b->stale_used = 1;
        ready_push(c, b, 1);
        return;
    }
    int rc = o->rc == SG_ETLS      ? SEGOPS_ETLS
             : o->before_request   ? SEGOPS_ECONNECT
             : o->rc == SG_EPROTO  ? SEGOPS_EPROTOCOL
                                   : SEGOPS_ERETRIES;
    retry(c, b, rc, -1, now);
}

static void on_complete(void *user, struct sg_op *op)
{
    struct segops_client *c = user;
    if (!c->now_fresh) {
        c->now = sg_mono_ns();
        c->now_fresh = 1;
    }
    c->turn_work = 1;
    sg_pool_complete(&c->pool, op, c->now);
}

static void trace(void *user, const char *line)
{
    sg_log(user, SEGOPS_LOG_INFO, "%s", line);
}

/* ------------------------------------------------------------- phases */

static int lanes_taken(const struct segops_client *c, const uint64_t *snap)
{
    for (uint32_t i = 0; i < c->q.nlanes; i++)
        if (atomic_load_explicit(&c->q.lanes[i].deq, memory_order_relaxed) < snap[i])
            return 0;
    return 1;
}

/* A flush still taking its lanes is done taking once every lane was taken
 * up to its snapshot: the batches holding those events are those built so
 * far.  Runs right after each batch is built (and when a flush arrives),
 * so that a batch built later, holding only newer events, never holds the
 * flush. */
static void flush_marks(struct segops_client *c)
{
    for (int i = 0; i < 2; i++) {
        struct sg_flush *f = &c->fl[i];
        if (f->phase == 1 && lanes_taken(c, f->snap)) {
            f->mark = c->batch_seq;
            f->phase = 2;
        }
    }
}

static void control(struct segops_client *c, int64_t now)
{
    if (now >= c->next_cal) {
        sg_clock_recalibrate(&c->ck);
        c->next_cal = now + SG_CAL_NS;
    }
    uint64_t fr = atomic_load_explicit(&c->flush_req_pub, memory_order_acquire);
    if (fr != atomic_load_explicit(&c->flush_seen, memory_order_relaxed)) {
        /* the flush in progress keeps its snapshot; newer requests share
         * the next one, taken now: it covers every event accepted before
         * any of their calls */
        struct sg_flush *f = c->fl[0].phase ? &c->fl[1] : &c->fl[0];
        pthread_mutex_lock(&c->mu);
        f->gen = c->flush_req;
        pthread_mutex_unlock(&c->mu);
        for (uint32_t i = 0; i < c->q.nlanes; i++)
            f->snap[i] = atomic_load_explicit(&c->q.lanes[i].enq, memory_order_acquire);
        f->phase = 1;
        atomic_store_explicit(&c->flush_seen, fr, memory_order_release);
        flush_marks(c);
    }
    /* A thread claimed a lane since we last looked: commit the next one
     * now, off the producers' path (only then: the scan reads the
     * holders' lines). */
    uint32_t claims = atomic_load_explicit(&c->q.claims, memory_order_relaxed);
    if (claims != c->claims_seen && !stopping(c)) {
        c->claims_seen = claims;
        sg_queue_prefault(&c->q);
    }
}

static void timers(struct segops_client *c, int64_t now)
{
    sg_pool_tick(&c->pool, now);
    for (int i = 0; i < c->nbatches; i++) {
        struct sg_batch *b = &c->batchv[i];
        if (b->state == SG_B_BACKOFF && now >= b->retry_at) {
            ready_push(c, b, 0);
            c->turn_work = 1;
        }
    }
}

static int taking(const struct segops_client *c)
{
    return c->fl[0].phase == 1 || c->fl[1].phase == 1;
}

/* Events in a full batch: 500, or fewer when max_batch_bytes holds fewer
 * events of the size seen so far. */
static uint64_t full_batch(const struct segops_client *c)
{
    uint64_t full = c->avg_event ? ((uint64_t)c->cfg.max_batch_bytes - 64) / c->avg_event
                                 : SG_MAX_EVENTS_PER_REQUEST;
    if (full > SG_MAX_EVENTS_PER_REQUEST)
        full = SG_MAX_EVENTS_PER_REQUEST;
    return full ? full : 1;
}

/* How long a request may be out before the sender stops counting on it to
 * free its connection soon: four smoothed round trips, at least 50 ms. */
static int64_t patience(const struct segops_client *c)
{
    int64_t p = 4 * c->srtt_ns;
    return p > SG_PATIENCE_MIN_NS ? p : SG_PATIENCE_MIN_NS;
}

/* Whether a request out now (on a connection or opening one) is younger
 * than patience(): `partial` asks about less-than-full batches only. */
static int young_out(const struct segops_client *c, int partial, int64_t now)
{
    int64_t p = patience(c);
    for (int i = 0; i < c->nbatches; i++) {
        const struct sg_batch *b = &c->batchv[i];
        if (b->state == SG_B_SENDING && now - b->sent_at < p && (!partial || b->partial))
            return 1;
    }
    return 0;
}

/* Takes due events into new batches.  When events are due:
 *   forced    a flush, shutdown or the interval tick: everything queued
 *             (c->quota), now;
 *   full      batch_size events were queued (c->due: the whole queue then)
 *             and they make a full batch;
 *   partial   batch_size events were queued and no other less-than-full
 *             request is young: one small request at a time, like Nagle's
 *             algorithm, so a moderate rate goes out in one request per
 *             round trip instead of in many small ones.
 * Where they go: idle connections first (READY batches take them before
 * anything built now), then new connections -- but opening one costs one to
 * three round trips while a young request frees its connection within
 * one, so a connection is opened only for a full batch, or when no
 * request out is young (none at all, or all of them slow or hanging: a
 * stuck request never holds the others back for longer than patience()).
 * Under load the pool grows until full batches keep up. */
static void build(struct segops_client *c, int64_t now)
{
    uint64_t depth = sg_queue_depth(&c->q);
    /* a maximum: segops_stats() raises it too (compare-and-swap on both
     * sides, so neither lowers the other's mark) */
    uint64_t hw = atomic_load_explicit(&c->high_water, memory_order_relaxed);
    while (hw < depth && !atomic_compare_exchange_weak_explicit(&c->high_water, &hw, depth,
                                                                memory_order_relaxed,
                                                                memory_order_relaxed))
        ;
    if (now >= c->next_tick) {
        if (c->quota < depth)
            c->quota = depth;
        c->next_tick = now + (int64_t)c->cfg.flush_interval_ms * 1000000;
    }
    if ((taking(c) || stopping(c)) && c->quota < depth)
        c->quota = depth;
    /* batch_size queued makes the whole queue due */
    if (depth >= c->cfg.batch_size && c->due < depth)
        c->due = depth;
    int nr = nready(c);
    int idle = sg_pool_idle(&c->pool);
    int openable = sg_pool_room(&c->pool) - idle;
    idle -= nr;
    if (idle < 0) {
        openable += idle;
        idle = 0;
    }
    uint64_t full = full_batch(c);
    while (depth > 0 && now >= c->pause_until) {
        int is_full = depth >= full;
        if (c->quota == 0 && (c->due == 0 || (!is_full && young_out(c, 1, now))))
            break;
        if (idle > 0)
            idle--;
        else if (openable > 0 && (is_full || !young_out(c, 0, now)))
            openable--;
        else
            break;
        struct sg_batch *b = free_batch(c);
        if (!b)
            break;
        sg_batch_reset(b, c->cfg.max_batch_bytes);
        sg_batch_fill(b, &c->q, &c->ck,
                      depth < SG_MAX_EVENTS_PER_REQUEST ? (uint32_t)depth
                                                        : SG_MAX_EVENTS_PER_REQUEST,
                      &c->rr);
        if (b->n == 0)
            break;
        c->quota -= b->n < c->quota ? b->n : c->quota;
        c->due -= b->n < c->due ? b->n : c->due;
        depth -= b->n < depth ? b->n : depth;
        make_key(c, b);
        sg_batch_seal_via(b, &c->url, &c->proxy, c->api_key, c->api_key_len);
        b->seq = ++c->batch_seq;
        flush_marks(c);
        b->partial = b->n < full;
        b->retries = 0;
        b->stale_used = 0;
        b->status = 0;
        b->detail[0] = 0;
        ready_push(c, b, 0);
        c->turn_work = 1;
        /* rendered bytes per event, a running mean: what a full batch is */
        uint64_t per = (b->len + b->n - 1) / b->n;
        c->avg_event = c->avg_event ? (c->avg_event * 7 + per) / 8 : per;
    }
    if (depth == 0)
        c->quota = c->due = 0;
}

static void dispatch(struct segops_client *c, int64_t now)
{
    while (c->ready && now >= c->pause_until) {
        struct sg_batch *b = c->ready;
        if (b->rebuild) {
            if (b->pins) /* a closing connection's send still reads it */
                break;
            make_key(c, b); /* a new payload: a new key */
            sg_batch_range_via(b, b->lo, b->hi, &c->url, &c->proxy, c->api_key, c->api_key_len);
            b->rebuild = 0;
        }
        ready_pop(c);
        b->state = SG_B_SENDING;
        b->sent_at = now;
        /* the free resend after a connection died while idle goes on a new
         * one: another kept-alive connection may be just as dead */
        if (sg_pool_send(&c->pool, b, b->stale_used, now) != 0) {
            ready_push(c, b, 1);
            break;
        }
        c->turn_work = 1;
    }
}

static int unresolved_upto(const struct segops_client *c, uint64_t mark)
{
    for (int i = 0; i < c->nbatches; i++) {
        const struct sg_batch *b = &c->batchv[i];
        if (b->state != SG_B_FREE && b->seq <= mark)
            return 1;
    }
    return 0;
}


static void flushes(struct segops_client *c)
{
    for (;;) {
        struct sg_flush *f = &c->fl[0];
        if (f->phase != 2 || unresolved_upto(c, f->mark))
            return;
        pthread_mutex_lock(&c->mu);
        if (c->flush_done < f->gen)
            c->flush_done = f->gen;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        /* the next flush moves up */
        uint64_t *snap = f->snap;
        c->fl[0] = c->fl[1];
        c->fl[1].phase = 0;
        c->fl[1].snap = snap;
    }
}

/* Past the shutdown deadline: everything still held fails. */
static void abandon_all(struct segops_client *c, int64_t now)
{
    sg_pool_close_all(&c->pool, now);
    c->ready = NULL;
    c->ready_tail = &c->ready;
    for (int i = 0; i < c->nbatches; i++) {
        struct sg_batch *b = &c->batchv[i];
        if (b->state == SG_B_READY || b->state == SG_B_SENDING || b->state == SG_B_BACKOFF) {
            snprintf(b->detail, sizeof(b->detail), "shutdown deadline passed");
            done(c, b, SEGOPS_EABANDONED, 0);
        }
    }
    report(c);
    /* What never left the lanes: counted and reported in groups of up to
     * 500, never rendered (an arena may still be pinned by a send being
     * cancelled, and rendering only to count costs time past the
     * deadline).  The group lives on this stack only until its report. */
    for (;;) {
        struct sg_batch g;
        memset(&g, 0, sizeof(g));
        for (uint32_t k = 0; k < c->q.nlanes && g.n < SG_MAX_EVENTS_PER_REQUEST; k++) {
            struct sg_lane *l = &c->q.lanes[k];
            void *slot;
            while (g.n < SG_MAX_EVENTS_PER_REQUEST && (slot = sg_lane_take(l)) != NULL) {
                sg_lane_recycle(l, slot);
                g.n++;
            }
        }
        if (g.n == 0)
            break;
        make_key(c, &g);
        snprintf(g.detail, sizeof(g.detail), "shutdown deadline passed");
        done(c, &g, SEGOPS_EABANDONED, 0);
        report(c);
    }
}

static int busy_batches(const struct segops_client *c)
{
    for (int i = 0; i < c->nbatches; i++)
        if (c->batchv[i].state != SG_B_FREE)
            return 1;
    return 0;
}

/* The earliest timer, at most `idle` from now. */
static int64_t next_wake(struct segops_client *c, int64_t now, int64_t idle)
{
    int64_t d = now + idle;
    if (c->next_tick < d)
        d = c->next_tick;
    int64_t p = sg_pool_next_deadline(&c->pool);
    if (p < d)
        d = p;
    for (int i = 0; i < c->nbatches; i++)
        if (c->batchv[i].state == SG_B_BACKOFF && c->batchv[i].retry_at < d)
            d = c->batchv[i].retry_at;
    if (c->ready && c->pause_until > now && c->pause_until < d)
        d = c->pause_until;
    if (stopping(c) && c->stop_deadline_ns < d)
        d = c->stop_deadline_ns;
    return d;
}

/* -------------------------------------------------------------- thread */

static void report_start(struct segops_client *c, int rc)
{
    pthread_mutex_lock(&c->mu);
    c->started = 1;
    c->start_rc = rc;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static int io_setup(struct segops_client *c)
{
    unsigned max_ops = (unsigned)c->pool.nslots * (SG_MAX_ADDRS + 2);
    if (c->cfg.io_mode != SEGOPS_IO_POLL) {
        int rc = sg_io_uring_init(&c->io, max_ops, on_complete, c);
        if (rc == 0)
            return 0;
        if (c->cfg.io_mode == SEGOPS_IO_URING)
            return SEGOPS_EIO;
        sg_log(c, SEGOPS_LOG_WARN, "io_uring unavailable (%s); using poll()", strerror(-rc));
    }
    return sg_io_poll_init(&c->io, max_ops, on_complete, c) == 0 ? 0 : SEGOPS_ENOMEM;
}

/* Closes every connection and waits (briefly) for the kernel to hand
 * back every buffer it was given. */
static void close_down(struct segops_client *c)
{
    int64_t now = sg_mono_ns(), until = now + SG_REAP_NS;
    sg_pool_close_all(&c->pool, now);
    while (!sg_pool_quiet(&c->pool) && now < until) {
        c->now_fresh = 0;
        c->io.ops->wait(&c->io, now + 10000000);
        now = sg_mono_ns();
    }
    if (sg_pool_quiet(&c->pool)) {
        c->io.ops->destroy(&c->io);
    } else {
        /* the kernel still holds buffers: leaving them (and the ring)
         * allocated is safer than freeing what it may still write to */
        c->io_stuck = 1;
        sg_log(c, SEGOPS_LOG_WARN, "connections did not close within 1 s: their buffers "
                                   "are left allocated");
    }
}

void *sg_sender_main(void *arg)
{
    struct segops_client *c = arg;
    pthread_setname_np(pthread_self(), "segops-sender");
    if (c->cfg.pin_sender) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(c->cfg.sender_cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    }
    int rc = io_setup(c);
    report_start(c, rc);
    if (rc != 0)
        return NULL;
    sg_pool_attach(&c->pool, &c->io);
    if (c->proxy.on)
        sg_log(c, SEGOPS_LOG_INFO, "sending to %s through proxy %s (from %s)%s", c->url.hostport,
               c->proxy.display, c->proxy.source, c->proxy.auth[0] ? " with credentials" : "");
    else if (c->proxy.bypass)
        sg_log(c, SEGOPS_LOG_INFO, "not using the proxy of %s for %s: %s exempts it",
               c->proxy.source, c->url.host, c->proxy.bypass);

    int64_t now = sg_mono_ns();
    int64_t idle = 0, idle_max = (int64_t)c->cfg.idle_poll_us * 1000;
    c->next_tick = now + (int64_t)c->cfg.flush_interval_ms * 1000000;
    c->next_cal = now + SG_CAL_NS;

    for (;;) {
        now = sg_mono_ns();
        c->turn_work = 0;
        control(c, now);
        timers(c, now);
        int stop = stopping(c);
        if (stop && now >= c->stop_deadline_ns) {
            abandon_all(c, now);
            flushes(c);
            break;
        }
        build(c, now);
        dispatch(c, now);

        c->now_fresh = 0;
        c->io.ops->wait(&c->io, c->turn_work ? now : next_wake(c, now, idle));
        report(c);
        flushes(c);

        if (stop && !busy_batches(c) && sg_queue_depth(&c->q) == 0)
            break; /* the queue was closed before stop was published */
        if (c->turn_work)
            idle = 0;
        else
            idle = idle ? (idle * 2 < idle_max ? idle * 2 : idle_max) : SG_IDLE_MIN_NS;
    }

    close_down(c);
    pthread_mutex_lock(&c->mu);
    c->flush_done = c->flush_req; /* nobody waits past shutdown */
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ------------------------------------------------------------- set-up */

int sg_sender_alloc(struct segops_client *c)
{
    int nconn = (int)c->cfg.max_connections;
    /* Batches on connections and ready for them need at most two per
     * connection; a third lets as many more wait in back-off while new
     * batches still flow at full speed.  Beyond that (a server failing
     * most batches at once) new events wait in the lanes for a batch to
     * resolve: memory stays bounded. */
    c->nbatches = 3 * nconn;
    size_t arena = SG_HEAD_MAX + (size_t)c->cfg.max_batch_bytes + 8;
    arena = (arena + 4095) & ~(size_t)4095;
    c->arenas_size = arena * (size_t)c->nbatches;
    /* one mapping, committed page by page as batches are written */
    c->arenas = mmap(NULL, c->arenas_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (c->arenas == MAP_FAILED) {
        c->arenas = NULL;
        return SEGOPS_ENOMEM;
    }
    c->batchv = calloc((size_t)c->nbatches, sizeof(*c->batchv));
    c->fl[0].snap = calloc(c->q.nlanes, sizeof(uint64_t));
    c->fl[1].snap = calloc(c->q.nlanes, sizeof(uint64_t));
    if (!c->batchv || !c->fl[0].snap || !c->fl[1].snap)
        return SEGOPS_ENOMEM;
    for (int i = 0; i < c->nbatches; i++) {
        c->batchv[i].id = i;
        c->batchv[i].arena = c->arenas + (size_t)i * arena;
    }
    c->ready_tail = &c->ready;

    struct sg_pool_cfg pc = {
        .max_conns = nconn,
        .connect_timeout_ms = c->cfg.connect_timeout_ms,
        .request_timeout_ms = c->cfg.request_timeout_ms,
        .dns_refresh_ms = c->cfg.dns_refresh_ms,
        .url = &c->url,
        .tls = c->tls_on ? &c->tls : NULL,
        .proxy = c->proxy.on ? &c->proxy : NULL,
        .resolver = c->resolver,
        .st = &c->net,
        .outcome = on_outcome,
        .user = c,
    };
    int rc = sg_pool_init(&c->pool, &pc);
    if (rc)
        return rc;
    if (c->cfg.trace)
        c->pool.trace = trace;
    return 0;
}

void sg_sender_free(struct segops_client *c)
{
    if (c->io_stuck)
        return; /* see close_down() */
    sg_pool_free(&c->pool);
    if (c->arenas)
        munmap(c->arenas, c->arenas_size);
    c->arenas = NULL;
    free(c->batchv);
    free(c->fl[0].snap);
    free(c->fl[1].snap);
    c->batchv = NULL;
    c->fl[0].snap = c->fl[1].snap = NULL;
}
