/* SPDX-License-Identifier: MIT */
/*
 * conn.c -- the connection pool (see conn.h): one state machine per
 * connection, advanced by driver completions and by its deadline.
 *
 *   FREE       open for a batch: RESOLVE when the addresses are missing,
 *              stale (a connect failed) or older than dns_refresh_ms, else
 *              CONNECT
 *   RESOLVE    the resolver answered: CONNECT (a failed lookup keeps an
 *              older list when there is one); no address: fail; deadline:
 *              fail.  With addresses already known, the wait is at most
 *              SG_RESOLVE_GRACE_NS (half the connect timeout at most), then
 *              CONNECT with those
 *   CONNECT    Happy Eyeballs (RFC 8305): one TCP attempt per address, the
 *              next started 250 ms after the last or at once when one
 *              fails; the first to connect wins and the others are
 *              cancelled.  Winner: PROXY_CONNECT (https through a proxy),
 *              HANDSHAKE (https) or up.  All failed: fail, and the
 *              addresses are stale.  Deadline: fail
 *   PROXY_CONNECT  "CONNECT host:port" written to the proxy, its answer
 *              read (sg_http_resp_init_connect): 2xx: HANDSHAKE with the
 *              server inside the tunnel (SNI and certificate name are the
 *              server's); another status: fail with SG_EPROXY; EOF, error,
 *              bytes after a 2xx head, or deadline: fail
 *   HANDSHAKE  the engine offers SENDAPP: up; alert, EOF, error or
 *              deadline: fail
 *   up         REQUEST with the batch it was opened for
 *   IDLE       send: REQUEST (after a peek for EOF or unsolicited bytes if
 *              idle a while: then closed, and another is used); idle
 *              SG_IDLE_CLOSE_NS while another connection is up: closed
 *   REQUEST    answer complete: IDLE, or closed when the server said
 *              close, sent bytes beyond the answer, or answered before the
 *              request was written; error, EOF or deadline: fail
 *   CLOSING    cancellations sent; when every operation has completed: FREE
 *
 * With a proxy, RESOLVE and CONNECT reach the proxy, not the server (the
 * pool's `peer`); http:// requests then go to it in absolute form (built
 * by batch.c), so only https:// adds a state.
 *
 * "fail" reports the outcome of the batch carried, then closes.  The
 * connect deadline (connect_timeout_ms) covers RESOLVE, CONNECT and
 * HANDSHAKE together (through a proxy: RESOLVE and CONNECT, then again
 * PROXY_CONNECT and HANDSHAKE); the request deadline (request_timeout_ms) covers
 * writing the request and reading the answer.
 *
 * Invariants: an operation's buffer belongs to the kernel while it is busy,
 * so a slot leaves CLOSING only when none of its operations is busy; a
 * connection holds at most one send and one receive at a time; the TLS
 * engine's record buffers are handed to the driver only as BearSSL offers
 * them (SENDREC / RECVREC) and acknowledged when the operation completes.
 */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "segops.h"

static const char *const state_names[SG_C_NSTATES] = {
    "FREE", "RESOLVE", "CONNECT", "PROXY_CONNECT", "HANDSHAKE", "IDLE", "REQUEST", "CLOSING",
};

const char *sg_conn_state_name(int st)
{
    return st >= 0 && st < SG_C_NSTATES ? state_names[st] : "?";
}

static void add(_Atomic uint64_t *ctr, int64_t v)
{
    atomic_fetch_add_explicit(ctr, (uint64_t)v, memory_order_relaxed);
}

static int is_open(int st)
{
    return st != SG_C_FREE && st != SG_C_CLOSING;
}

static int is_up(int st)
{
    return st == SG_C_IDLE || st == SG_C_REQUEST;
}

/* The one place a connection changes state: keeps the pool's counts. */
static void set_state(struct sg_pool *p, struct sg_conn *k, int st)
{
    int was = k->state;
    if (was == st)
        return;
    p->open += is_open(st) - is_open(was);
    if (is_up(st) && !is_up(was)) {
        /* growth of the pool is not a reconnect; replacing one is */
        if (++p->established > p->peak)
            p->peak = p->established;
        else
            add(&p->st->reconnects, 1);
    } else if (!is_up(st) && is_up(was)) {
        p->established--;
    }
    atomic_store_explicit(&p->st->open, (uint64_t)p->open, memory_order_relaxed);
    k->state = st;
    if (p->trace) {
        char line[96];
        snprintf(line, sizeof(line), "connection %d: %s -> %s", k->id, state_names[was],
                 state_names[st]);
        p->trace(p->user, line);
    }
}

static int ops_busy(const struct sg_conn *k)
{
    int n = k->sop.busy + k->rop.busy;
    for (int i = 0; i < SG_MAX_ADDRS; i++)
        n += k->att[i].op.busy;
    return n;
}

/* CLOSING -> FREE once nothing is outstanding. */
static void maybe_free(struct sg_pool *p, struct sg_conn *k)
{
    if (k->state != SG_C_CLOSING || ops_busy(k))
        return;
    for (int i = 0; i < SG_MAX_ADDRS; i++) {
        if (k->att[i].fd >= 0)
            close(k->att[i].fd);
        k->att[i].fd = -1;
    }
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    if (k->pinned) {
        k->pinned->pins--;
        k->pinned = NULL;
    }
    set_state(p, k, SG_C_FREE);
}

static void close_conn(struct sg_pool *p, struct sg_conn *k)
{
    if (!is_open(k->state))
        return;
    if (k->counted) {
        k->counted = 0;
        add(&p->st->in_flight, -1);
    }
    if (k->b && k->sop.busy && !p->tls) {
        /* the kernel may still read the batch's arena: the policy must not
         * reuse it before the send completes (TLS sends read the engine's
         * own buffer, which stays with the slot) */
        k->pinned = k->b;
        k->b->pins++;
    }
    k->b = NULL;
    for (int i = 0; i < SG_MAX_ADDRS; i++) {
        struct sg_attempt *a = &k->att[i];
        if (a->op.busy)
            p->io->ops->cancel(p->io, &a->op);
    }
    if (k->sop.busy)
        p->io->ops->cancel(p->io, &k->sop);
    if (k->rop.busy)
        p->io->ops->cancel(p->io, &k->rop);
    set_state(p, k, SG_C_CLOSING);
    maybe_free(p, k);
}

static void why(struct sg_pool *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why(struct sg_pool *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof(p->why), fmt, ap);
    va_end(ap);
}

static const char *errstr(int rc)
{
    switch (rc) {
    case SG_EEOF: return "connection closed by the server before answering";
    case SG_EPROTO: return "malformed or oversized HTTP answer";
    case SG_ERESOLVE: return "host name did not resolve";
    case -ETIMEDOUT: return "timed out";
    default: return rc < 0 && rc > -4096 ? strerror(-rc) : "error";
    }
}

/* Reports the failure of the request the connection carries (p->why says
 * what happened), then closes it. */
static void fail(struct sg_pool *p, struct sg_conn *k, int rc, int64_t now)
{
    struct sg_batch *b = k->b;
    struct sg_outcome o = {
        .rc = rc,
        .before_request = k->state != SG_C_REQUEST,
        .reused = k->requests > 0,
        .got = k->got,
        /* a status line arrived: the policy must know a 2xx from the rest
         * (a 2xx is never sent again, however broken the answer) */
        .resp = k->state == SG_C_REQUEST && k->resp.status >= 200 ? &k->resp : NULL,
        .started = k->state == SG_C_REQUEST ? k->started : 0,
        .why = p->why,
        .proxy_status = rc == SG_EPROXY ? k->proxy_status : 0,
    };
    if (p->trace) {
        char line[320];
        snprintf(line, sizeof(line), "connection %d: %s failed: %s", k->id,
                 state_names[k->state], p->why);
        p->trace(p->user, line);
    }
    close_conn(p, k);
    if (b)
        p->outcome(p->user, b, &o, now);
}

/* A TLS failure: the reason in words (sg_tls_describe); a certificate
 * problem is SG_ETLSCERT, which the policy does not retry. */
static void fail_tls(struct sg_pool *p, struct sg_conn *k, int rc, int64_t now)
{
    if (rc == SG_ETLS) {
        char text[sizeof(p->why) - 8];
        sg_tls_describe(&k->tls, text, sizeof(text));
        why(p, "TLS: %s", text);
        if (sg_tls_permanent(k->tls.last_err))
            rc = SG_ETLSCERT;
    } else {
        why(p, "TLS handshake: %s", errstr(rc));
    }
    fail(p, k, rc, now);
}

/* ------------------------------------------------------------ request */

static void submit(struct sg_pool *p, struct sg_conn *k, struct sg_op *op, int kind,
                   void *buf, size_t len)
{
    op->kind = kind;
    op->fd = k->fd;
    op->buf = buf;
    op->len = len;
    op->owner = k;
    p->io->ops->submit(p->io, op);
}

static void tls_step(struct sg_pool *p, struct sg_conn *k, int64_t now);

/* The answer is complete: the request's outcome goes to the policy. */
static void answered(struct sg_pool *p, struct sg_conn *k, int64_t now)
{
    struct sg_batch *b = k->b;
    if (k->counted) {
        k->counted = 0;
        add(&p->st->in_flight, -1);
    }
    k->requests++;
    struct sg_outcome o = {.rc = 0, .reused = k->requests > 1, .got = k->got,
                           .resp = &k->resp, .started = k->started};
    if (k->resp.conn_close || !k->written || k->sop.busy || k->rop.busy) {
        close_conn(p, k); /* an answer before the request was written */
    } else {
        k->b = NULL;
        set_state(p, k, SG_C_IDLE);
        k->idle_since = now;
        k->deadline = now + SG_IDLE_CLOSE_NS;
    }
    if (b)
        p->outcome(p->user, b, &o, now);
}

/* Feeds answer bytes to the parser: -1 malformed (p->why says how), 1
 * the answer is complete, 0 more to come.  *used gets the bytes that
 * belong to the answer. */
static int parse(struct sg_pool *p, struct sg_conn *k, const void *buf, size_t n, size_t *used)
{
    k->got += n;
    ssize_t u = sg_http_resp_feed(&k->resp, buf, n);
    if (u < 0) {
        why(p, "malformed or oversized HTTP answer (parser error %d)", (int)u);
        return -1;
    }
    *used = (size_t)u;
    if (!k->resp.done)
        return 0;
    if ((size_t)u < n)
        k->resp.conn_close = 1; /* unsolicited bytes: start afresh */
    return 1;
}

/* The server closed the connection while we read the answer. */
static void eof(struct sg_pool *p, struct sg_conn *k, int64_t now)
{
    if (k->got == 0) {
        why(p, "%s", errstr(SG_EEOF));
        fail(p, k, SG_EEOF, now);
    } else if (sg_http_resp_eof(&k->resp) != 0) {
        why(p, "the answer was cut short by the server closing the connection");
        fail(p, k, SG_EPROTO, now);
    } else {
        k->resp.conn_close = 1;
        answered(p, k, now);
    }
}

static void wrote(struct sg_pool *p, struct sg_conn *k)
{
    if (!k->written) {
        k->written = 1;
        add(&p->st->bytes_sent, (int64_t)k->b->req_len);
    }
}

static void start_request(struct sg_pool *p, struct sg_conn *k, int64_t now)
{
    k->off = 0;
    k->written = 0;
    k->send_err = 0;
    k->flushed = 0;
    k->got = 0;
    sg_http_resp_init(&k->resp);
    k->deadline = now + p->request_ns;
    k->started = now;
    set_state(p, k, SG_C_REQUEST);
    k->counted = 1;
    add(&p->st->in_flight, 1);
    add(&p->st->requests, 1);
    if (p->tls) {
        tls_step(p, k, now);
    } else {
        submit(p, k, &k->sop, SG_OP_SEND, (void *)k->b->req, k->b->req_len);
        submit(p, k, &k->rop, SG_OP_RECV, k->rbuf, SG_CONN_RBUF);
    }
}

/* The connection is up (TCP, and TLS for https). */
static void up(struct sg_pool *p, struct sg_conn *k, int64_t now)
{
    if (k->b) {
        start_request(p, k, now);
    } else {
        set_state(p, k, SG_C_IDLE);
        k->idle_since = now;
        k->deadline = now + SG_IDLE_CLOSE_NS;
    }
}

/* Moves the TLS engine's bytes: records out and in, the request in, the
 * answer out.  Runs after every event on a TLS connection. */
static void tls_step(struct sg_pool *p, struct sg_conn *k, int64_t now)
{
    br_ssl_engine_context *e = sg_tls_engine(&k->tls);
    for (;;) {
        unsigned st = br_ssl_engine_current_state(e);
        if (st & BR_SSL_CLOSED) {
            int rc = sg_tls_closed(&k->tls);
            if (rc == 0 && k->state == SG_C_REQUEST) {
                eof(p, k, now); /* close_notify ends a close-delimited answer */
                return;
            }
            fail_tls(p, k, rc == 0 ? -ECONNRESET : rc, now);
            return;
        }
        if ((st & BR_SSL_SENDREC) && !k->sop.busy && !k->send_err) {
            size_t len;
            unsigned char *buf = br_ssl_engine_sendrec_buf(e, &len);
            submit(p, k, &k->sop, SG_OP_SEND, buf, len);
        }
        if (st & BR_SSL_RECVAPP) {
            size_t len, used = 0;
            unsigned char *buf = br_ssl_engine_recvapp_buf(e, &len);
            if (k->state != SG_C_REQUEST) {
                /* application data nobody asked for */
                k->tls.last_err = BR_ERR_IO;
                fail_tls(p, k, SG_ETLS, now);
                return;
            }
            int r = parse(p, k, buf, len, &used);
            if (r < 0) {
                fail(p, k, SG_EPROTO, now);
                return;
            }
            br_ssl_engine_recvapp_ack(e, used);
            if (r > 0) {
                answered(p, k, now);
                return;
            }
            continue;
        }
        if (k->state == SG_C_HANDSHAKE && (st & BR_SSL_SENDAPP)) {
            sg_tls_handshake_done(&k->tls, p->tls);
            add(&p->st->tls_handshakes, 1);
            add(&p->st->tls_resumed, k->tls.resumed);
            up(p, k, now); /* REQUEST runs its own step */
            return;
        }
        if (k->state == SG_C_REQUEST && (st & BR_SSL_SENDAPP) && k->off < k->b->req_len) {
            size_t room;
            unsigned char *out = br_ssl_engine_sendapp_buf(e, &room);
            size_t n = k->b->req_len - k->off;
            if (n > room)
                n = room;
            memcpy(out, k->b->req + k->off, n);
            br_ssl_engine_sendapp_ack(e, n);
            k->off += n;
            if (k->off == k->b->req_len) {
                br_ssl_engine_flush(e, 0);
                k->flushed = 1;
            }
            continue;
        }
        if (k->state == SG_C_REQUEST && k->flushed && !(st & BR_SSL_SENDREC) && !k->sop.busy)
            wrote(p, k);
        if ((st & BR_SSL_RECVREC) && !k->rop.busy &&
            (k->state == SG_C_HANDSHAKE || k->state == SG_C_REQUEST)) {
            size_t len;
            unsigned char *buf = br_ssl_engine_recvrec_buf(e, &len);
            submit(p, k, &k->rop, SG_OP_RECV, buf, len);
        }
        return;
    }
}

/* ------------------------------------------------------------- connect */

static void start_attempt(struct sg_pool *p, struct sg_conn *k, int64_t now);

static void start_handshake(struct sg_pool *p, struct sg_conn *k, int64_t now)
{
    set_state(p, k, SG_C_HANDSHAKE);
    int rc = sg_tls_start(&k->tls, p->tls);
    if (rc) {
        fail_tls(p, k, rc, now);
        return;
    }
    tls_step(p, k, now);
}

/* TCP to the proxy is up: ask it for a tunnel to the server.  The
 * request is the pool's (read-only, the same for every connection); the
 * answer is read into the connection's small buffer. */
static void start_tunnel(struct sg_pool *p, struct sg_conn *k, int64_t now)
{
    set_state(p, k, SG_C_PROXY_CONNECT);
    k->deadline = now + p->connect_ns;
    k->off = 0;
    k->got = 0;
    k->proxy_status = 0;
    sg_http_resp_init_connect(&k->resp);
    submit(p, k, &k->sop, SG_OP_SEND, p->tunnel_req, p->tunnel_req_len);
    submit(p, k, &k->rop, SG_OP_RECV, k->rbuf, SG_TUNNEL_RBUF);
}

/* A completion in PROXY_CONNECT. */
static void tunnel_io(struct sg_pool *p, struct sg_conn *k, struct sg_op *op, int64_t now)
{
    const char *px = p->proxy->display;
    ssize_t res = op->res;
    if (op == &k->sop) {
        if (res <= 0) {
            int rc = res < 0 ? (int)res : -EPIPE;
            why(p, "proxy %s: writing CONNECT: %s", px, errstr(rc));
            fail(p, k, rc, now);
            return;
        }
        k->off += (size_t)res;
        if (k->off < p->tunnel_req_len)
            submit(p, k, &k->sop, SG_OP_SEND, p->tunnel_req + k->off,
                   p->tunnel_req_len - k->off);
        return;
    }
    if (res <= 0) {
        int rc = res < 0 ? (int)res : SG_EEOF;
        why(p, "proxy %s: %s without answering CONNECT to %s", px,
            res < 0 ? errstr(rc) : "connection closed", p->url->host);
        fail(p, k, rc, now);
        return;
    }
    k->got += (size_t)res;
    ssize_t u = sg_http_resp_feed(&k->resp, k->rbuf, (size_t)res);
    if (u < 0) {
        why(p, "proxy %s: malformed answer to CONNECT (parser error %d)", px, (int)u);
        fail(p, k, SG_EPROTO, now);
        return;
    }
    if (!k->resp.done) {
        submit(p, k, &k->rop, SG_OP_RECV, k->rbuf, SG_TUNNEL_RBUF);
        return;
    }
    int st = k->resp.status;
    if (st < 200 || st > 299) {
        k->proxy_status = st;
        if (st == 407 || st == 401)
            /* 401 to CONNECT can only be the proxy's (tinyproxy answers
             * wrong credentials so); 407 is the standard answer */
            why(p, "proxy authentication failed (%d) at %s: %s", st, px,
                p->proxy->auth[0] ? "check the user name and password in the proxy URL"
                                  : "the proxy wants credentials: put user:password@ in "
                                    "the proxy URL");
        else
            why(p, "proxy %s refused CONNECT to %s port %u: HTTP %d", px, p->url->host,
                (unsigned)p->url->port, st);
        fail(p, k, SG_EPROXY, now);
        return;
    }
    /* TLS starts with the client's hello: a proxy that sends anything
     * after its 2xx head (or answers before reading CONNECT) is broken */
    if ((size_t)u < (size_t)res || k->sop.busy) {
        why(p, "proxy %s: bytes after its answer to CONNECT", px);
        fail(p, k, SG_EPROTO, now);
        return;
    }
    if (p->trace) {
        char line[700];
        snprintf(line, sizeof(line), "connection %d: tunnel to %s port %u through proxy %s (HTTP %d)",
                 k->id, p->url->host, (unsigned)p->url->port, px, st);
        p->trace(p->user, line);
    }
    k->got = 0;
    start_handshake(p, k, now); /* within the tunnel's deadline */
}

static void connected(struct sg_pool *p, struct sg_conn *k, int64_t now)
{
    if (!p->tls)
        up(p, k, now);
    else if (p->proxy)
        start_tunnel(p, k, now);
    else
        start_handshake(p, k, now);
}

static void connect_failed(struct sg_pool *p, struct sg_conn *k, int64_t now)
{
    p->stale = 1; /* resolve again: the address may have moved */
    why(p, "cannot connect to %s%s port %u (%d address%s tried): %s", p->peer_what, p->peer,
        (unsigned)p->peer_port, k->addrs.n, k->addrs.n == 1 ? "" : "es",
        errstr(k->last_err));
    fail(p, k, k->last_err, now);
}

static int attempts_busy(const struct sg_conn *k)
{
    for (int i = 0; i < SG_MAX_ADDRS; i++)
        if (k->att[i].op.busy)
            return 1;
    return 0;
}

/* Starts a connect to the next address; fails the connection when none is
 * left and none is pending. */
static void start_attempt(struct sg_pool *p, struct sg_conn *k, int64_t now)
{
    while (k->next_addr < k->addrs.n) {
        int i = k->next_addr++;
        struct sg_attempt *a = &k->att[i];
        a->sa = k->addrs.a[i];
        a->salen = k->addrs.len[i];
        int fd = sg_io_socket(a->sa.ss_family, p->io->ops->nonblock);
        if (fd < 0) {
            k->last_err = fd;
            continue;
        }
        a->fd = fd;
        a->op.kind = SG_OP_CONNECT;
        a->op.fd = fd;
        a->op.sa = (const struct sockaddr *)&a->sa;
        a->op.salen = a->salen;
        a->op.owner = k;
        p->io->ops->submit(p->io, &a->op);
        k->next_attempt = now + SG_EYEBALLS_NS;
        return;
    }
    if (!attempts_busy(k))
        connect_failed(p, k, now);
}

static void start_connect(struct sg_pool *p, struct sg_conn *k, int64_t now)
{
    k->addrs = p->addrs;
    k->next_addr = 0;
    k->last_err = -EHOSTUNREACH;
    set_state(p, k, SG_C_CONNECT);
    start_attempt(p, k, now);
}

static void on_attempt(struct sg_pool *p, struct sg_conn *k, struct sg_attempt *a, int64_t now)
{
    if (k->state != SG_C_CONNECT || a->op.res != 0) {
        /* failed, cancelled, or lost the race */
        if (a->fd >= 0)
            close(a->fd);
        a->fd = -1;
        if (k->state == SG_C_CLOSING) {
            maybe_free(p, k);
        } else if (k->state == SG_C_CONNECT) {
            k->last_err = (int)a->op.res;
            start_attempt(p, k, now); /* the next address at once */
        }
        return;
    }
    k->fd = a->fd;
    a->fd = -1;
    for (int i = 0; i < SG_MAX_ADDRS; i++)
        if (k->att[i].op.busy)
            p->io->ops->cancel(p->io, &k->att[i].op);
    /* try the winner first next time */
    for (int i = 0; i < p->addrs.n; i++) {
        if (p->addrs.len[i] == a->salen && memcmp(&p->addrs.a[i], &a->sa, a->salen) == 0) {
            sg_addrs_prefer(&p->addrs, i);
            break;
        }
    }
    connected(p, k, now);
}

static int needs_resolve(const struct sg_pool *p, int64_t now)
{
    return p->resolver &&
           (p->addrs.n == 0 || p->stale || now - p->resolved_at >= p->refresh_ns);
}

static void open_conn(struct sg_pool *p, struct sg_conn *k, struct sg_batch *b, int64_t now)
{
    k->b = b;
    k->deadline = now + p->connect_ns;
    k->requests = 0;
    k->got = 0;
    k->fd = -1;
    if (needs_resolve(p, now)) {
        /* with addresses known, a slow resolver costs at most a grace
         * period: a DNS server that hangs must not fail sends to a server
         * that works */
        int64_t grace = p->connect_ns / 2 < SG_RESOLVE_GRACE_NS ? p->connect_ns / 2
                                                                 : SG_RESOLVE_GRACE_NS;
        k->fallback_at = p->addrs.n > 0 ? now + grace : 0;
        set_state(p, k, SG_C_RESOLVE);
        if (!p->resolving) {
            p->resolving = 1;
            sg_resolver_ask(p->resolver);
        }
        return;
    }
    start_connect(p, k, now);
}

static void resolved(struct sg_pool *p, const struct sg_addrs *a, int gai_err, int64_t now)
{
    if (a->n > 0) {
        p->addrs = *a;
        p->stale = 0;
    } else if (p->trace) {
        char line[320];
        snprintf(line, sizeof(line), "resolving %s%s failed (%s)%s", p->peer_what, p->peer,
                 gai_strerror(gai_err), p->addrs.n ? ": keeping the previous addresses" : "");
        p->trace(p->user, line);
    }
    p->resolved_at = now;
    for (int i = 0; i < p->nslots; i++) {
        struct sg_conn *k = &p->conns[i];
        if (k->state != SG_C_RESOLVE)
            continue;
        if (p->addrs.n > 0) {
            start_connect(p, k, now);
        } else {
            why(p, "cannot resolve %s%s: %s", p->peer_what, p->peer, gai_strerror(gai_err));
            fail(p, k, SG_ERESOLVE, now);
        }
    }
}

/* ------------------------------------------------------------ events */

void sg_pool_complete(struct sg_pool *p, struct sg_op *op, int64_t now)
{
    struct sg_conn *k = op->owner;
    if (op->kind == SG_OP_CONNECT) {
        on_attempt(p, k, (struct sg_attempt *)((char *)op - offsetof(struct sg_attempt, op)),
                   now);
        return;
    }
    if (k->state == SG_C_CLOSING) {
        maybe_free(p, k);
        return;
    }
    if (k->state == SG_C_PROXY_CONNECT) {
        tunnel_io(p, k, op, now);
        return;
    }
    if (k->state != SG_C_HANDSHAKE && k->state != SG_C_REQUEST)
        return; /* cannot happen: only those states have operations */
    ssize_t res = op->res;
    if (op == &k->sop) {
        if (res <= 0) {
            int rc = res < 0 ? (int)res : -EPIPE;
            if (k->state == SG_C_HANDSHAKE) {
                fail_tls(p, k, rc, now);
            } else if (k->rop.busy && rc != -ECANCELED) {
                /* keep reading: an early answer (413, 401) that arrived
                 * before the reset is the request's answer */
                k->send_err = rc;
            } else {
                why(p, "writing the request: %s", errstr(rc));
                fail(p, k, rc, now);
            }
            return;
        }
        if (p->tls) {
            br_ssl_engine_sendrec_ack(sg_tls_engine(&k->tls), (size_t)res);
            tls_step(p, k, now);
            return;
        }
        k->off += (size_t)res;
        if (k->off < k->b->req_len)
            submit(p, k, &k->sop, SG_OP_SEND, (void *)(k->b->req + k->off),
                   k->b->req_len - k->off);
        else
            wrote(p, k);
        return;
    }
    /* receive */
    if (res <= 0 && k->send_err && k->state == SG_C_REQUEST && k->got == 0) {
        /* no early answer came: the write's failure is what happened */
        why(p, "writing the request: %s", errstr(k->send_err));
        fail(p, k, k->send_err, now);
        return;
    }
    if (res == -ECONNRESET && k->state == SG_C_REQUEST && !p->tls && k->resp.close_delimited) {
        /* The head arrived and the body runs to the close.  A peer that
         * answered before reading the whole request (a proxy's 407, an
         * early 413) resets the connection as it closes with our bytes
         * unread (RFC 9112 9.6): the reset ends that body like a FIN. */
        eof(p, k, now);
        return;
    }
    if (res < 0) {
        if (k->state == SG_C_HANDSHAKE) {
            fail_tls(p, k, (int)res, now);
        } else {
            why(p, "reading the answer: %s", errstr((int)res));
            fail(p, k, (int)res, now);
        }
        return;
    }
    if (res == 0) {
        if (k->state == SG_C_HANDSHAKE)
            fail_tls(p, k, -ECONNRESET, now);
        else
            eof(p, k, now);
        return;
    }
    if (p->tls) {
        br_ssl_engine_recvrec_ack(sg_tls_engine(&k->tls), (size_t)res);
        tls_step(p, k, now);
        return;
    }
    size_t used;
    int r = parse(p, k, k->rbuf, (size_t)res, &used);
    if (r < 0)
        fail(p, k, SG_EPROTO, now);
    else if (r > 0)
        answered(p, k, now);
    else
        submit(p, k, &k->rop, SG_OP_RECV, k->rbuf, SG_CONN_RBUF);
}

void sg_pool_tick(struct sg_pool *p, int64_t now)
{
    if (p->resolving) {
        struct sg_addrs a;
        int err = 0;
        if (sg_resolver_take(p->resolver, &a, &err)) {
            p->resolving = 0;
            resolved(p, &a, err, now);
        }
    }
    for (int i = 0; i < p->nslots; i++) {
        struct sg_conn *k = &p->conns[i];
        switch (k->state) {
        case SG_C_RESOLVE:
            if (now >= k->deadline) {
                why(p, "timed out resolving %s%s", p->peer_what, p->peer);
                fail(p, k, -ETIMEDOUT, now);
            } else if (k->fallback_at && now >= k->fallback_at && p->addrs.n > 0) {
                if (p->trace) {
                    char line[320];
                    snprintf(line, sizeof(line),
                             "connection %d: resolving %s%s is slow: using the known addresses",
                             k->id, p->peer_what, p->peer);
                    p->trace(p->user, line);
                }
                start_connect(p, k, now);
            }
            break;
        case SG_C_CONNECT:
            if (now >= k->deadline) {
                p->stale = 1;
                why(p, "timed out connecting to %s%s port %u", p->peer_what, p->peer,
                    (unsigned)p->peer_port);
                fail(p, k, -ETIMEDOUT, now);
            } else if (now >= k->next_attempt && k->next_addr < k->addrs.n) {
                start_attempt(p, k, now);
            }
            break;
        case SG_C_PROXY_CONNECT:
            if (now >= k->deadline) {
                why(p, "timed out waiting for proxy %s to open a tunnel to %s port %u",
                    p->proxy->display, p->url->host, (unsigned)p->url->port);
                fail(p, k, -ETIMEDOUT, now);
            }
            break;
        case SG_C_HANDSHAKE:
            if (now >= k->deadline) {
                why(p, "TLS handshake timed out");
                fail(p, k, -ETIMEDOUT, now);
            }
            break;
        case SG_C_REQUEST:
            if (now >= k->deadline) {
                why(p, "%s", k->written ? "no answer within request_timeout_ms"
                                        : "timed out writing the request");
                fail(p, k, -ETIMEDOUT, now);
            }
            break;
        case SG_C_IDLE:
            if (now >= k->deadline) {
                if (p->established > 1)
                    close_conn(p, k); /* an extra: the pool shrinks back */
                else
                    k->deadline = now + SG_IDLE_CLOSE_NS;
            }
            break;
        default:
            break;
        }
    }
}

int64_t sg_pool_next_deadline(const struct sg_pool *p)
{
    int64_t d = INT64_MAX;
    for (int i = 0; i < p->nslots; i++) {
        const struct sg_conn *k = &p->conns[i];
        if (!is_open(k->state))
            continue;
        if (k->deadline < d)
            d = k->deadline;
        if (k->state == SG_C_RESOLVE && k->fallback_at && k->fallback_at < d)
            d = k->fallback_at;
        if (k->state == SG_C_CONNECT && k->next_addr < k->addrs.n && k->next_attempt < d)
            d = k->next_attempt;
    }
    return d;
}

int sg_pool_send(struct sg_pool *p, struct sg_batch *b, int fresh, int64_t now)
{
    while (!fresh) {
        struct sg_conn *best = NULL;
        for (int i = 0; i < p->nslots; i++) {
            struct sg_conn *k = &p->conns[i];
            if (k->state == SG_C_IDLE && (!best || k->idle_since > best->idle_since))
                best = k;
        }
        if (!best)
            break;
        /* every reuse is checked: a dead connection found here costs a
         * system call, found by sending costs a request and a resend */
        if (sg_io_idle_check(best->fd) != 0) {
            /* closed by the server, or an unsolicited answer (a 408) */
            if (p->trace) {
                char line[96];
                snprintf(line, sizeof(line),
                         "connection %d: closed or answered by the server while idle",
                         best->id);
                p->trace(p->user, line);
            }
            close_conn(p, best);
            continue;
        }
        best->b = b;
        start_request(p, best, now);
        return 0;
    }
    if (fresh && p->open >= p->max_conns) {
        /* make room: the idle connection unused the longest goes */
        struct sg_conn *old = NULL;
        for (int i = 0; i < p->nslots; i++) {
            struct sg_conn *k = &p->conns[i];
            if (k->state == SG_C_IDLE && (!old || k->idle_since < old->idle_since))
                old = k;
        }
        if (old)
            close_conn(p, old);
    }
    if (p->open >= p->max_conns)
        return -1;
    for (int i = 0; i < p->nslots; i++) {
        struct sg_conn *k = &p->conns[i];
        if (k->state == SG_C_FREE) {
            open_conn(p, k, b, now);
            return 0;
        }
    }
    return -1; /* every spare slot is still closing */
}

int sg_pool_room(const struct sg_pool *p)
{
    int idle = 0, free_slots = 0;
    for (int i = 0; i < p->nslots; i++) {
        idle += p->conns[i].state == SG_C_IDLE;
        free_slots += p->conns[i].state == SG_C_FREE;
    }
    int can_open = p->max_conns - p->open;
    if (can_open > free_slots)
        can_open = free_slots;
    return idle + (can_open > 0 ? can_open : 0);
}

int sg_pool_idle(const struct sg_pool *p)
{
    int idle = 0;
    for (int i = 0; i < p->nslots; i++)
        idle += p->conns[i].state == SG_C_IDLE;
    return idle;
}

void sg_pool_close_all(struct sg_pool *p, int64_t now)
{
    (void)now;
    for (int i = 0; i < p->nslots; i++)
        close_conn(p, &p->conns[i]);
}

int sg_pool_quiet(const struct sg_pool *p)
{
    for (int i = 0; i < p->nslots; i++)
        if (p->conns[i].state != SG_C_FREE)
            return 0;
    return 1;
}

/* ------------------------------------------------------------ set-up */

/* An IP literal host needs no resolver: its one address is fixed.  Fills
 * a and returns 1, or returns 0 for a host name. */
static int literal_addr(const char *host, uint16_t port, struct sg_addrs *a)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)&a->a[0];
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->a[0];
    memset(a, 0, sizeof(*a));
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        a->len[0] = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        a->len[0] = sizeof(*v6);
    } else {
        return 0;
    }
    a->n = 1;
    return 1;
}

int sg_pool_literal(const struct sg_url *url)
{
    return sg_pool_literal_host(url->host);
}

int sg_pool_literal_host(const char *host)
{
    struct sg_addrs a;
    return literal_addr(host, 1, &a);
}

int sg_pool_init(struct sg_pool *p, const struct sg_pool_cfg *cfg)
{
    memset(p, 0, sizeof(*p));
    p->max_conns = cfg->max_conns;
    p->nslots = cfg->max_conns + SG_CONN_SPARE;
    p->url = cfg->url;
    p->tls = cfg->tls;
    p->proxy = cfg->proxy && cfg->proxy->on ? cfg->proxy : NULL;
    p->peer = p->proxy ? p->proxy->host : p->url->host;
    p->peer_port = p->proxy ? p->proxy->port : p->url->port;
    p->peer_what = p->proxy ? "proxy " : "";
    p->resolver = cfg->resolver;
    p->connect_ns = (int64_t)cfg->connect_timeout_ms * 1000000;
    p->request_ns = (int64_t)cfg->request_timeout_ms * 1000000;
    p->refresh_ns = (int64_t)cfg->dns_refresh_ms * 1000000;
    p->st = cfg->st;
    p->outcome = cfg->outcome;
    p->user = cfg->user;
    if (!p->resolver)
        literal_addr(p->peer, p->peer_port, &p->addrs);
    p->conns = calloc((size_t)p->nslots, sizeof(*p->conns));
    if (!p->conns)
        return SEGOPS_ENOMEM;
    int tunnel = p->proxy && p->tls;
    if (tunnel) {
        if (!(p->tunnel_req = malloc(SG_TUNNEL_REQ_MAX)))
            goto oom;
        p->tunnel_req_len =
            sg_proxy_connect_request(p->proxy, p->url, p->tunnel_req, SG_TUNNEL_REQ_MAX);
    }
    for (int i = 0; i < p->nslots; i++) {
        struct sg_conn *k = &p->conns[i];
        k->id = i + 1;
        k->fd = -1;
        for (int j = 0; j < SG_MAX_ADDRS; j++)
            k->att[j].fd = -1;
        if (p->tls) {
            if (sg_tls_init(&k->tls, p->tls) != 0)
                goto oom;
            if (tunnel && !(k->rbuf = malloc(SG_TUNNEL_RBUF)))
                goto oom;
        } else if (!(k->rbuf = malloc(SG_CONN_RBUF))) {
            goto oom;
        }
    }
    return 0;
oom:
    sg_pool_free(p);
    return SEGOPS_ENOMEM;
}

void sg_pool_attach(struct sg_pool *p, struct sg_io *io)
{
    p->io = io;
}

void sg_pool_free(struct sg_pool *p)
{
    if (!p->conns)
        return;
    for (int i = 0; i < p->nslots; i++) {
        struct sg_conn *k = &p->conns[i];
        if (k->fd >= 0)
            close(k->fd);
        for (int j = 0; j < SG_MAX_ADDRS; j++)
            if (k->att[j].fd >= 0)
                close(k->att[j].fd);
        free(k->rbuf);
        if (k->tls.iobuf)
            sg_tls_free(&k->tls);
    }
    free(p->conns);
    p->conns = NULL;
    free(p->tunnel_req);
    p->tunnel_req = NULL;
}
