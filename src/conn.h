/* SPDX-License-Identifier: MIT */
/*
 * conn.h -- internal: the transport.  A pool of HTTP/1.1 keep-alive
 * connections to the server, each a small state machine carrying one
 * request at a time, all driven by the sender's completion driver (io.h).
 *
 * The pool knows nothing of batching, retries or accounting: it is handed
 * a request (struct sg_batch's bytes), and reports one outcome per request
 * through the `outcome` callback -- an answer, or the transport error that
 * ended it and whether the server can have seen it.  The policy (sender.c)
 * decides what the outcome means.  The callback MUST NOT call back into
 * the pool: it records a decision, which the sender acts on in its loop.
 *
 * Time: every entry point takes `now` (CLOCK_MONOTONIC ns), read once per
 * loop turn by the caller.  Every state has a deadline; sg_pool_tick()
 * expires them and sg_pool_next_deadline() says when the next one falls.
 */
#ifndef SG_CONN_H
#define SG_CONN_H

#include <stdatomic.h>
#include <stdint.h>

#include "http.h"
#include "io.h"
#include "proxy.h"
#include "resolve.h"
#include "tls.h"
#include "url.h"

struct sg_batch;

#define SG_CONN_RBUF 16384          /* plain HTTP receive buffer */
#define SG_TUNNEL_RBUF 2048         /* https:// through a proxy: receive
                                       buffer of the answer to CONNECT */
#define SG_TUNNEL_REQ_MAX 2048      /* the CONNECT request */
#define SG_EYEBALLS_NS 250000000    /* RFC 8305 connection attempt delay */
#define SG_IDLE_CLOSE_NS 10000000000LL /* idle extras close after this */
#define SG_RESOLVE_GRACE_NS 1000000000 /* longest wait for a new lookup when
                                          addresses are known (and at most
                                          half the connect timeout) */
#define SG_CONN_SPARE 4             /* slots beyond max_connections, for
                                       connections still closing */

/* Internal error codes of the transport, beside -errno (see sg_err_text). */
#define SG_EEOF (-100000)      /* peer closed before answering */
#define SG_EPROTO (-100001)    /* malformed or oversized answer */
#define SG_ERESOLVE (-100002)  /* host name did not resolve */
/* SG_ETLS (-100003) and SG_ETLSCERT (-100005) are in tls.h */
#define SG_EPROXY (-100004)    /* the proxy refused CONNECT (status in
                                  sg_outcome.proxy_status) */

/* Connection states; sg_conn_state_name() names them. */
enum sg_conn_state {
    SG_C_FREE,      /* slot unused */
    SG_C_RESOLVE,   /* waiting for the resolver's addresses */
    SG_C_CONNECT,   /* TCP attempts in flight (Happy Eyeballs) */
    SG_C_PROXY_CONNECT, /* https:// through a proxy: CONNECT written, its
                           answer read */
    SG_C_HANDSHAKE, /* TLS handshake */
    SG_C_IDLE,      /* open, no request */
    SG_C_REQUEST,   /* request being written and its answer read */
    SG_C_CLOSING,   /* operations cancelled, waiting for their completions */
    SG_C_NSTATES
};

/* One TCP connect attempt of a connection. */
struct sg_attempt {
    int fd;                     /* -1 when none */
    struct sg_op op;
    struct sockaddr_storage sa; /* copied: the pool's list may change */
    socklen_t salen;
};

struct sg_conn {
    int id;
    int state;                  /* enum sg_conn_state */
    int64_t deadline;           /* timer of the state: connect (RESOLVE,
                                   CONNECT, HANDSHAKE), connect again from
                                   PROXY_CONNECT's start (PROXY_CONNECT and
                                   the HANDSHAKE after it), request
                                   (REQUEST), idle close (IDLE) */
    int64_t next_attempt;       /* CONNECT: Happy Eyeballs timer */
    int64_t idle_since;
    int fd;
    struct sg_addrs addrs;      /* CONNECT: the list being tried */
    int next_addr;              /* next address to try */
    int last_err;               /* last connect error (-errno) */
    struct sg_attempt att[SG_MAX_ADDRS];
    struct sg_op sop, rop;      /* send, recv on fd */
    struct sg_batch *b;         /* the request carried, or opened for */
    struct sg_batch *pinned;    /* CLOSING: the batch whose arena a busy
                                   send still reads (plain HTTP) */
    int64_t started;            /* REQUEST: when it began */
    int64_t fallback_at;        /* RESOLVE: connect with the known addresses
                                   if the resolver has not answered by then
                                   (0: wait for it) */
    size_t off;                 /* request bytes written (plain) or handed
                                   to the TLS engine */
    int written;                /* the whole request reached the socket */
    int send_err;               /* writing failed (-errno): the answer may
                                   still arrive (a server that answers 413
                                   or 401 early and closes); reading goes
                                   on until it does or the read fails */
    int flushed;                /* TLS: the engine was told to flush */
    int counted;                /* REQUEST: counted in requests_in_flight */
    uint64_t requests;          /* requests carried (reuse detection) */
    size_t got;                 /* answer bytes received */
    struct sg_http_resp resp;
    char *rbuf;                 /* SG_CONN_RBUF, plain HTTP; SG_TUNNEL_RBUF,
                                   https:// through a proxy */
    int proxy_status;           /* PROXY_CONNECT: status of the refusal */
    struct sg_tls tls;
};

/* What the pool counts; read by segops_stats() from any thread. */
struct sg_net_stats {
    _Atomic uint64_t requests, bytes_sent, reconnects;
    _Atomic uint64_t tls_handshakes, tls_resumed;
    _Atomic uint64_t in_flight, open;
};

/* The outcome of one request. */
struct sg_outcome {
    int rc;              /* 0: an answer arrived (resp); else SG_E* or -errno */
    int before_request;  /* failed resolving, connecting or in the TLS
                            handshake: the server never saw the request */
    int reused;          /* the connection had carried a request before */
    size_t got;          /* answer bytes received */
    const struct sg_http_resp *resp; /* rc == 0 */
    int64_t started;     /* when the request began to be written (0: never) */
    const char *why;     /* rc != 0: what happened, for a log line */
    int proxy_status;    /* rc == SG_EPROXY: the proxy's status (407, ...) */
};

struct sg_pool {
    struct sg_conn *conns;
    int nslots;                 /* max_conns + SG_CONN_SPARE */
    int max_conns;
    int open;                   /* connections not FREE and not CLOSING */
    int peak;                   /* most ever established at once */
    int established;            /* connections up now (IDLE, REQUEST) */
    struct sg_io *io;
    const struct sg_url *url;
    struct sg_tls_ctx *tls;     /* NULL for http:// */
    const struct sg_proxy *proxy; /* NULL: straight to the server */
    const char *peer;           /* the host sockets connect to: the
                                   proxy's, else the server's */
    uint16_t peer_port;
    const char *peer_what;      /* "proxy " or "" (log lines) */
    char *tunnel_req;           /* the CONNECT request (https:// through a
                                   proxy), the same for every connection */
    size_t tunnel_req_len;
    struct sg_resolver *resolver; /* NULL for an IP literal */
    struct sg_addrs addrs;      /* the peer's addresses, best first */
    int64_t resolved_at;
    int stale;                  /* a connect failed: resolve again */
    int resolving;              /* asked the resolver, no answer yet */
    int64_t connect_ns, request_ns, refresh_ns;
    struct sg_net_stats *st;
    void (*outcome)(void *user, struct sg_batch *b, const struct sg_outcome *o,
                    int64_t now);
    void (*trace)(void *user, const char *line); /* NULL: no tracing */
    void *user;
    char why[256];              /* text of the outcome being reported */
};

struct sg_pool_cfg {
    int max_conns;
    uint32_t connect_timeout_ms, request_timeout_ms, dns_refresh_ms;
    const struct sg_url *url;
    struct sg_tls_ctx *tls;
    const struct sg_proxy *proxy; /* NULL: none; else resolver resolves
                                     the proxy's host */
    struct sg_resolver *resolver;
    struct sg_net_stats *st;
    void (*outcome)(void *user, struct sg_batch *b, const struct sg_outcome *o,
                    int64_t now);
    void *user;
};

/* Allocates every connection's buffers and engines.  0 or SEGOPS_ENOMEM. */
int sg_pool_init(struct sg_pool *p, const struct sg_pool_cfg *cfg);
void sg_pool_free(struct sg_pool *p);
/* Binds the pool to the driver (on the sender thread). */
void sg_pool_attach(struct sg_pool *p, struct sg_io *io);

/* Sends batch b's request on an idle connection (the most recently used,
 * checked first with a non-blocking peek) or on a new one opened for it;
 * `fresh`: only on a new one (closing the least recently used idle
 * connection if the pool is full).  Returns 0, or -1 when every connection
 * is busy and no more may open. */
int sg_pool_send(struct sg_pool *p, struct sg_batch *b, int fresh, int64_t now);
/* How many more requests could start now (idle + may open). */
int sg_pool_room(const struct sg_pool *p);
/* Connections up and idle now. */
int sg_pool_idle(const struct sg_pool *p);

/* Driver completion for one of the pool's operations. */
void sg_pool_complete(struct sg_pool *p, struct sg_op *op, int64_t now);
/* Takes resolver results and expires deadlines. */
void sg_pool_tick(struct sg_pool *p, int64_t now);
/* The earliest deadline of any connection, or INT64_MAX. */
int64_t sg_pool_next_deadline(const struct sg_pool *p);

/* Closes every connection; requests in flight are dropped without an
 * outcome (the caller has resolved their batches).  Their operations
 * complete on later waits: see sg_pool_quiet(). */
void sg_pool_close_all(struct sg_pool *p, int64_t now);
/* 1 when no operation of the pool is outstanding. */
int sg_pool_quiet(const struct sg_pool *p);

const char *sg_conn_state_name(int state);

/* 1 when the URL's host is an IP literal: no resolver needed. */
int sg_pool_literal(const struct sg_url *url);
/* The same for a host name (brackets removed). */
int sg_pool_literal_host(const char *host);

#endif
