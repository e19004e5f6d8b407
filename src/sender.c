/*
 * sender.c -- the sender thread: batching, HTTP requests, retries,
 * deadlines.
 *
 * States of the loop (one iteration each):
 *
 *   control   read flush/shutdown requests; on a new flush, snapshot every
 *             lane's published count: the flush completes once the sender
 *             has taken every lane up to its snapshot and the batches
 *             holding those events are resolved.
 *   decide    `quota` = events to send now: set to the whole queue depth
 *             when depth >= batch_size, when the flush interval ticks, while
 *             a flush is pending and during shutdown.
 *   send      take up to min(500, quota) events, render them into the arena
 *             and deliver the batch (blocking, with retries), then loop.
 *   idle      nothing to send: sleep, doubling from 20 us up to
 *             idle_poll_us.  Producers never signal the sender: waking it
 *             would be a system call on the hot path.
 *
 * Invariants: the arena holds exactly one batch; a batch is resolved
 * (delivered, skipped, failed) before the next is built, so events are
 * counted pending from acceptance until their batch resolves and never lost
 * in between.  Slots are recycled as soon as they are rendered.  Nothing is
 * allocated here except by getaddrinfo() on (re)connection.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "event.h"

#define SG_EEOF (-100000)      /* peer closed before answering */
#define SG_EPROTO (-100001)    /* malformed or oversized answer */
#define SG_ERESOLVE (-100002)  /* host name did not resolve */

static const char body_open[] = "{\"events\":[";

struct batch {
    char *body;
    size_t len;
    size_t cap;
    uint32_t n;
    char key[33];
};

static void add(_Atomic uint64_t *ctr, uint64_t v)
{
    atomic_fetch_add_explicit(ctr, v, memory_order_relaxed);
}

/* ------------------------------------------------------------- batches */

static void batch_reset(struct segops_client *c, struct batch *b)
{
    b->body = c->arena + SG_HEAD_MAX;
    b->cap = c->cfg.max_batch_bytes;
    memcpy(b->body, body_open, sizeof(body_open) - 1);
    b->len = sizeof(body_open) - 1;
    b->n = 0;
}

/* Takes events from the lanes, round-robin, into the batch until it holds
 * `want` events, cannot fit a worst-case event, or the lanes are empty. */
static void batch_fill(struct segops_client *c, struct batch *b, uint32_t want,
                       uint32_t *rr)
{
    struct sg_queue *q = &c->q;
    const size_t worst = SG_EVENT_RENDER_MAX(c->cfg.slot_size) + 1; /* + ',' */
    int took;
    do {
        took = 0;
        for (uint32_t k = 0; k < q->nlanes && b->n < want; k++) {
            struct sg_lane *l = &q->lanes[(*rr + k) % q->nlanes];
            for (int j = 0; j < 64 && b->n < want; j++) {
                if (b->len + worst + 2 > b->cap)
                    return;
                void *slot = sg_lane_take(l);
                if (!slot)
                    break;
                if (b->n)
                    b->body[b->len++] = ',';
                b->len += sg_event_render(slot, b->body + b->len, &c->ck);
                b->n++;
                took = 1;
                sg_lane_recycle(l, slot);
            }
        }
        *rr = (*rr + 1) % q->nlanes;
    } while (took && b->n < want);
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static void make_key(struct segops_client *c, struct batch *b)
{
    uint64_t seq = ++c->batch_seq;
    snprintf(b->key, sizeof(b->key), "%016" PRIx64 "%016" PRIx64,
             mix64(c->key_seed ^ seq), mix64(seq + c->key_seed));
}

/* Writes the request head right before the body so head + body are one
 * contiguous buffer; returns its start. */
static char *build_request(struct segops_client *c, struct batch *b, size_t *total)
{
    char head[SG_HEAD_MAX];
    int n = snprintf(head, sizeof(head),
                     "POST %s/api/ingestion/track/batch/ HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Authorization: ApiKey %.*s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "User-Agent: segops-c/" SEGOPS_VERSION_STRING "\r\n"
                     "Idempotency-Key: %s\r\n"
                     "\r\n",
                     c->url.prefix, c->url.hostport, (int)c->api_key_len, c->api_key,
                     b->len, b->key);
    /* bounded by creation-time checks on prefix, host and key lengths */
    char *start = b->body - n;
    memcpy(start, head, (size_t)n);
    *total = (size_t)n + b->len;
    return start;
}

/* ---------------------------------------------------------- connection */

static int stopping(struct segops_client *c)
{
    return atomic_load_explicit(&c->stop_pub, memory_order_acquire);
}

static int past_stop_deadline(struct segops_client *c, int64_t now)
{
    return stopping(c) && now >= c->stop_deadline_ns;
}

/* Waits on the socket are cut into slices of at most this long, so that a
 * shutdown that begins while a request is in flight (a hanging server)
 * still ends the request at the shutdown deadline, not at the request's. */
#define SG_WAIT_SLICE_NS 50000000

/* A request's deadline, brought forward to the shutdown deadline once
 * shutdown has begun. */
static int64_t capped_deadline(struct segops_client *c, int64_t deadline)
{
    return stopping(c) && c->stop_deadline_ns < deadline ? c->stop_deadline_ns : deadline;
}

/* The deadline of the next wait: capped_deadline(), but no more than one
 * slice away. */
static int64_t wait_deadline(struct segops_client *c, int64_t deadline, int *last)
{
    int64_t now = sg_mono_ns(), d = capped_deadline(c, deadline);
    *last = d - now <= SG_WAIT_SLICE_NS;
    return *last ? d : now + SG_WAIT_SLICE_NS;
}

static void conn_close(struct segops_client *c)
{
    if (c->connected)
        c->io.ops->close(&c->io);
    c->connected = 0;
}

static int resolve(struct segops_client *c)
{
    struct addrinfo hints, *res = NULL;
    char port[8];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%u", (unsigned)c->url.port);
    if (getaddrinfo(c->url.host, port, &hints, &res) != 0 || !res)
        return SG_ERESOLVE;
    c->naddrs = 0;
    for (struct addrinfo *a = res; a && c->naddrs < SG_MAX_ADDRS; a = a->ai_next) {
        if (a->ai_addrlen > sizeof(c->addrs[0]))
            continue;
        memcpy(&c->addrs[c->naddrs], a->ai_addr, a->ai_addrlen);
        c->addr_lens[c->naddrs] = a->ai_addrlen;
        c->naddrs++;
    }
    freeaddrinfo(res);
    return c->naddrs ? 0 : SG_ERESOLVE;
}

static int conn_open(struct segops_client *c, int64_t deadline)
{
    if (c->connected)
        return 0;
    if (c->naddrs == 0) {
        int rc = resolve(c);
        if (rc)
            return rc;
    }
    int rc = -ECONNREFUSED;
    for (int i = 0; i < c->naddrs; i++) {
        rc = c->io.ops->connect(&c->io, (struct sockaddr *)&c->addrs[i], c->addr_lens[i],
                                deadline);
        if (rc == 0 && c->tls_on) {
            rc = sg_tls_handshake(&c->tls, &c->io, deadline);
            if (rc != 0) {
                c->io.ops->close(&c->io);
                return rc; /* the address answered: no point trying others */
            }
            add(&c->tls_handshakes, 1);
            add(&c->tls_resumed, (uint64_t)c->tls.resumed);
        }
        if (rc == 0) {
            c->connected = 1;
            if (c->conns_opened++ > 0)
                add(&c->reconnects, 1);
            return 0;
        }
        if (rc == -ETIMEDOUT)
            break;
    }
    c->naddrs = 0; /* resolve again next time: the address may have moved */
    return rc;
}

static int send_all(struct segops_client *c, const char *p, size_t len, int64_t deadline)
{
    if (c->tls_on) {
        /* not sliced: a TLS write cannot be resumed after a timeout (the
         * engine already holds part of the data), so the whole write gets
         * the request's deadline, capped by shutdown's when it has begun */
        return sg_tls_send(&c->tls, &c->io, p, len, capped_deadline(c, deadline));
    }
    while (len) {
        int last;
        ssize_t n = c->io.ops->send(&c->io, p, len, wait_deadline(c, deadline, &last));
        if (n == -ETIMEDOUT && !last)
            continue; /* a slice ended: look at the deadlines again */
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -EPIPE;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads one response into c->resp.  *got counts the bytes received. */
static int read_response(struct segops_client *c, int64_t deadline, size_t *got)
{
    sg_http_resp_init(&c->resp);
    *got = 0;
    for (;;) {
        int last;
        int64_t d = wait_deadline(c, deadline, &last);
        ssize_t n = c->tls_on ? sg_tls_recv(&c->tls, &c->io, c->rbuf, SG_RBUF_SIZE, d)
                              : c->io.ops->recv(&c->io, c->rbuf, SG_RBUF_SIZE, d);
        if (n == -ETIMEDOUT && !last)
            continue; /* a slice ended: look at the deadlines again */
        if (n < 0)
            return (int)n;
        if (n == 0) {
            if (*got == 0)
                return SG_EEOF;
            if (sg_http_resp_eof(&c->resp) != 0)
                return SG_EPROTO;
            c->resp.conn_close = 1;
            return 0;
        }
        *got += (size_t)n;
        ssize_t k = sg_http_resp_feed(&c->resp, c->rbuf, (size_t)n);
        if (k < 0)
            return SG_EPROTO;
        if (c->resp.done) {
            if ((size_t)k < (size_t)n)
                c->resp.conn_close = 1; /* unsolicited bytes: start afresh */
            return 0;
        }
    }
}

static const char *err_text(struct segops_client *c, int rc, char *buf, size_t cap)
{
    switch (rc) {
    case SG_ETLS:
        snprintf(buf, cap, "TLS: %s (BearSSL error %d)", sg_tls_reason(c->tls.last_err),
                 c->tls.last_err);
        return buf;
    case SG_EEOF:
        return "connection closed by the server before answering";
    case SG_EPROTO:
        return "malformed or oversized HTTP answer";
    case SG_ERESOLVE:
        return "host name did not resolve";
    case -ETIMEDOUT:
        return "timed out";
    default:
        snprintf(buf, cap, "%s", strerror(-rc));
        return buf;
    }
}

/* ------------------------------------------------------------ delivery */

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

/* Sleeps up to ms, in slices, returning early (-1) if the shutdown
 * deadline passes. */
static int backoff_sleep(struct segops_client *c, int64_t ms)
{
    int64_t end = sg_mono_ns() + ms * 1000000;
    for (;;) {
        int64_t now = sg_mono_ns();
        if (past_stop_deadline(c, now))
            return -1;
        if (now >= end)
            return 0;
        int64_t slice = end - now;
        if (slice > 20000000)
            slice = 20000000;
        c->io.ops->sleep(&c->io, slice);
    }
}

static void resolve_batch(struct segops_client *c, struct batch *b, int result, int status,
                          uint32_t skipped, uint32_t attempts, const char *detail)
{
    uint32_t n = b->n;
    if (result == 0) {
        if (skipped > n)
            skipped = n;
        add(&c->skipped, skipped);
        add(&c->delivered, n - skipped);
    } else {
        add(&c->failed, n);
        pthread_mutex_lock(&c->mu);
        c->last_error = result;
        c->failures++;
        if (c->stop)
            c->undelivered += n;
        pthread_mutex_unlock(&c->mu);
    }
    add(&c->batches, 1);
    if (c->cfg.on_delivery) {
        segops_delivery d = {result, status, n, result == 0 ? skipped : 0, attempts,
                             b->key, detail ? detail : ""};
        c->cfg.on_delivery(c->cfg.delivery_user, &d);
    }
}

static int deliver(struct segops_client *c, struct batch *b)
{
    size_t total;
    char detail[256] = "";
    char ebuf[160];
    memcpy(b->body + b->len, "]}", 2);
    b->len += 2;
    make_key(c, b);
    const char *req = build_request(c, b, &total);

    int retries = 0, attempts = 0, stale_used = 0, status = 0, last_rc = 0;
    for (;;) {
        int64_t now = sg_mono_ns();
        if (past_stop_deadline(c, now)) {
            sg_log(c, SEGOPS_LOG_ERROR,
                   "batch %s: %u events abandoned: shutdown deadline passed", b->key, b->n);
            resolve_batch(c, b, SEGOPS_EABANDONED, status, 0, attempts,
                          "shutdown deadline passed");
            return SEGOPS_EABANDONED;
        }
        int64_t deadline = now + (int64_t)c->cfg.request_timeout_ms * 1000000;
        int64_t cdeadline = now + (int64_t)c->cfg.connect_timeout_ms * 1000000;
        if (stopping(c) && c->stop_deadline_ns < deadline)
            deadline = c->stop_deadline_ns;
        if (cdeadline > deadline)
            cdeadline = deadline;

        /* tries of this batch: 1 + retries (a stale-connection resend is
         * part of the same try), whether or not the connection opened */
        attempts = retries + 1;
        int reused = c->connected;
        size_t got = 0;
        int connect_failed = 0;
        int rc = conn_open(c, cdeadline);
        if (rc != 0) {
            connect_failed = 1;
        } else {
            add(&c->requests, 1);
            rc = send_all(c, req, total, deadline);
            if (rc == 0) {
                add(&c->bytes_sent, total);
                rc = read_response(c, deadline, &got);
            }
        }

        int retryable;
        status = 0;
        if (rc == 0) {
            status = c->resp.status;
            if (c->resp.conn_close)
                conn_close(c);
            int64_t queued = -1, skipped = -1;
            detail[0] = 0;
            sg_answer_parse(c->resp.body, c->resp.body_len, &queued, &skipped, detail,
                            sizeof(detail));
            if (status >= 200 && status < 300) {
                resolve_batch(c, b, 0, status, skipped > 0 ? (uint32_t)skipped : 0,
                              attempts, detail);
                return 0;
            }
            retryable = status == 408 || status == 429 || status >= 500;
            last_rc = retryable ? SEGOPS_ERETRIES : SEGOPS_EREJECTED;
        } else {
            conn_close(c);
            /* A kept-alive connection the server closed while idle: the
             * request never reached a live server, so send it again on a
             * fresh connection at once, without spending a retry. */
            if (reused && got == 0 && !stale_used &&
                (rc == SG_EEOF || rc == -ECONNRESET || rc == -EPIPE)) {
                stale_used = 1;
                continue;
            }
            retryable = 1;
            last_rc = rc == SG_ETLS       ? SEGOPS_ETLS
                      : connect_failed    ? SEGOPS_ECONNECT
                      : rc == SG_EPROTO   ? SEGOPS_EPROTOCOL
                                          : SEGOPS_ERETRIES;
        }

        if (!retryable) {
            sg_log(c, SEGOPS_LOG_ERROR, "batch %s: %u events rejected: HTTP %d%s%s", b->key,
                   b->n, status, detail[0] ? ": " : "", detail);
            resolve_batch(c, b, SEGOPS_EREJECTED, status, 0, attempts, detail);
            return SEGOPS_EREJECTED;
        }
        if (retries >= c->cfg.max_retries) {
            if (rc == 0)
                sg_log(c, SEGOPS_LOG_ERROR,
                       "batch %s: %u events failed after %d attempts: HTTP %d%s%s", b->key,
                       b->n, attempts, status, detail[0] ? ": " : "", detail);
            else
                sg_log(c, SEGOPS_LOG_ERROR,
                       "batch %s: %u events failed after %d attempts: %s", b->key, b->n,
                       attempts, err_text(c, rc, ebuf, sizeof(ebuf)));
            resolve_batch(c, b, last_rc, status, 0, attempts,
                          rc == 0 ? detail : err_text(c, rc, ebuf, sizeof(ebuf)));
            return last_rc;
        }
        /* jitter from its own stream: the key seed must stay fixed so
         * that keys stay distinct */
        c->jitter_state += 0x9e3779b97f4a7c15ull;
        uint64_t rnd = mix64(c->jitter_state);
        int64_t delay = sg_backoff_ms(retries, c->cfg.max_backoff_ms, rnd);
        if (rc == 0 && (status == 429 || status == 503) && c->resp.retry_after[0]) {
            int64_t ra;
            if (sg_retry_after_parse(c->resp.retry_after, strlen(c->resp.retry_after),
                                     sg_realtime_ns() / 1000000000, &ra) == 0)
                delay = ra < (int64_t)c->cfg.max_backoff_ms ? ra : c->cfg.max_backoff_ms;
        }
        retries++;
        add(&c->retries, 1);
        if (backoff_sleep(c, delay) != 0)
            continue; /* the loop head abandons the batch */
    }
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
    if (c->cfg.io_mode != SEGOPS_IO_POLL) {
        int rc = sg_io_uring_init(&c->io);
        if (rc == 0)
            return 0;
        if (c->cfg.io_mode == SEGOPS_IO_URING)
            return SEGOPS_EIO;
        sg_log(c, SEGOPS_LOG_WARN, "io_uring unavailable (%s); using poll()", strerror(-rc));
    }
    return sg_io_poll_init(&c->io);
}

/* Abandons everything still queued (shutdown deadline passed). */
static void abandon_all(struct segops_client *c, struct batch *b, uint32_t *rr)
{
    for (;;) {
        batch_reset(c, b);
        batch_fill(c, b, SG_MAX_EVENTS_PER_REQUEST, rr);
        if (b->n == 0)
            return;
        make_key(c, b);
        resolve_batch(c, b, SEGOPS_EABANDONED, 0, 0, 0, "shutdown deadline passed");
    }
}

static int flush_reached(struct segops_client *c)
{
    for (uint32_t i = 0; i < c->q.nlanes; i++)
        if (atomic_load_explicit(&c->q.lanes[i].deq, memory_order_relaxed) < c->flush_snap[i])
            return 0;
    return 1;
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

    struct batch b;
    uint32_t rr = 0;
    uint64_t quota = 0, flush_seen = 0, flush_target = 0;
    int flushing = 0, abandoned = 0;
    int64_t now = sg_mono_ns();
    int64_t interval = (int64_t)c->cfg.flush_interval_ms * 1000000;
    int64_t next_tick = now + interval, next_cal = now + 100000000;
    int64_t idle_ns = 0, idle_max = (int64_t)c->cfg.idle_poll_us * 1000;
    uint32_t claims_seen = 0;

    for (;;) {
        now = sg_mono_ns();
        if (now >= next_cal) {
            sg_clock_recalibrate(&c->ck);
            next_cal = now + 100000000;
        }
        int stop = stopping(c);
        uint64_t fr = atomic_load_explicit(&c->flush_req_pub, memory_order_acquire);
        if (fr != flush_seen) {
            pthread_mutex_lock(&c->mu);
            flush_target = c->flush_req;
            pthread_mutex_unlock(&c->mu);
            for (uint32_t i = 0; i < c->q.nlanes; i++)
                c->flush_snap[i] =
                    atomic_load_explicit(&c->q.lanes[i].enq, memory_order_acquire);
            flush_seen = fr;
            flushing = 1;
        }
        if (stop && !abandoned && now >= c->stop_deadline_ns) {
            abandon_all(c, &b, &rr);
            abandoned = 1;
        }

        /* A thread claimed a lane since we last looked: commit the next one
         * now, off the producers' path (only then: the scan reads the
         * holders' lines). */
        uint32_t claims = atomic_load_explicit(&c->q.claims, memory_order_relaxed);
        if (claims != claims_seen && !stop) {
            claims_seen = claims;
            sg_queue_prefault(&c->q);
        }

        uint64_t depth = sg_queue_depth(&c->q);
        if (depth > atomic_load_explicit(&c->high_water, memory_order_relaxed))
            atomic_store_explicit(&c->high_water, depth, memory_order_relaxed);
        if (depth >= c->cfg.batch_size || flushing || stop)
            quota = quota > depth ? quota : depth;
        if (now >= next_tick) {
            quota = quota > depth ? quota : depth;
            next_tick = now + interval;
        }

        if (quota > 0 && depth > 0) {
            batch_reset(c, &b);
            uint32_t want = quota < SG_MAX_EVENTS_PER_REQUEST ? (uint32_t)quota
                                                               : SG_MAX_EVENTS_PER_REQUEST;
            batch_fill(c, &b, want, &rr);
            if (b.n > 0) {
                quota -= b.n < quota ? b.n : quota;
                deliver(c, &b);
                idle_ns = 0;
                continue;
            }
        }
        quota = 0;

        if (flushing && flush_reached(c)) {
            flushing = 0;
            pthread_mutex_lock(&c->mu);
            if (c->flush_done < flush_target)
                c->flush_done = flush_target;
            pthread_cond_broadcast(&c->cv);
            pthread_mutex_unlock(&c->mu);
        }
        if (stop && depth == 0 && !flushing)
            break; /* the queue was closed before stop was published */

        idle_ns = idle_ns ? idle_ns * 2 : 20000;
        if (idle_ns > idle_max)
            idle_ns = idle_max;
        int64_t until_tick = next_tick - now;
        c->io.ops->sleep(&c->io, idle_ns < until_tick ? idle_ns : until_tick);
    }

    conn_close(c);
    c->io.ops->destroy(&c->io);
    pthread_mutex_lock(&c->mu);
    c->flush_done = c->flush_req; /* nobody waits past shutdown */
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}
