/* SPDX-License-Identifier: MIT */
/*
 * client.h -- internal: the client object shared by the producer API
 * (client.c) and the sender thread (sender.c).
 *
 * Ownership: producers touch only `q` (their lanes), `ck.use_tsc` and the
 * read-only config.  The sender thread owns `io`, the pool of connections,
 * the batches and their arenas.  Flush and shutdown talk to the sender through
 * `mu`/`cv` (never on the hot path).  Counters the sender writes are atomics
 * read by segops_stats() from any thread.
 */
#ifndef SG_CLIENT_H
#define SG_CLIENT_H

#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "batch.h"
#include "clock.h"
#include "conn.h"
#include "http.h"
#include "io.h"
#include "proxy.h"
#include "queue.h"
#include "resolve.h"
#include "tls.h"
#include "segops.h"
#include "url.h"

/* A pending flush, as the sender tracks it (see sender.c). */
struct sg_flush {
    uint64_t gen;               /* flush_req generation it completes */
    int phase;                  /* 0 none, 1 taking the lanes, 2 waiting */
    uint64_t mark;              /* WAIT: batches up to this seq must resolve */
    uint64_t *snap;             /* per-lane `enq` when the flush was seen */
};

struct sg_config {
    uint32_t batch_size, flush_interval_ms, queue_capacity, slot_size;
    uint32_t max_batch_bytes, request_timeout_ms, connect_timeout_ms;
    uint32_t max_backoff_ms, idle_poll_us, max_connections, dns_refresh_ms;
    int max_retries, io_mode, pin_sender, sender_cpu;
    int trace;                  /* $SEGOPS_TRACE: log connection states */
    segops_log_fn logger;
    void *logger_user;
    segops_delivery_fn on_delivery;
    void *delivery_user;
};

struct segops_client {
    struct sg_queue q;          /* producers' part; first for locality */
    struct sg_clock ck;
    struct sg_config cfg;
    struct sg_url url;
    struct sg_proxy proxy;      /* chosen at creation; proxy.on: in use */
    char api_key[512];
    size_t api_key_len;

    /* sender thread: everything here is the sender's alone once it runs */
    pthread_t thread;
    int thread_started;
    struct sg_io io;
    int tls_on;                 /* https:// */
    struct sg_tls_ctx tls;      /* anchors, shared session */
    struct sg_resolver *resolver; /* NULL for an IP literal host */
    struct sg_pool pool;        /* the connections (conn.c) */
    struct sg_batch *batchv;    /* nbatches, each with its arena */
    char detail_buf[SG_HTTP_BODY_KEEP + 1]; /* sender thread: an answer's detail
                                             before it is cleaned and cut */
    int nbatches;
    char *arenas;               /* one mapping for every arena */
    size_t arenas_size;
    struct sg_batch *ready, **ready_tail; /* READY, oldest first */
    struct sg_batch *done;      /* DONE, reports not yet run */
    uint64_t batch_seq;         /* batches built */
    uint64_t quota;             /* events due now whatever batch_size says */
    uint64_t due;               /* events due since batch_size was reached */
    uint64_t avg_event;         /* rendered bytes per event (running mean) */
    int64_t srtt_ns;            /* smoothed time from a request's start to
                                   its 2xx answer */
    uint32_t rr;                /* round-robin lane cursor */
    int64_t next_tick;          /* T_TICK: the flush interval */
    int64_t next_cal;           /* clock recalibration */
    int64_t pause_until;        /* T_PAUSE: Retry-After holds new requests */
    int64_t now;                /* time of the current wait's completions */
    int now_fresh;
    int turn_work;              /* something happened this turn */
    _Atomic uint64_t flush_seen; /* flush_req_pub whose snapshot is taken
                                    (sender writes; tests read) */
    struct sg_flush fl[2];      /* the flush in progress, the next one */
    uint32_t claims_seen;
    int io_stuck;               /* operations outlived close_down(): keep
                                   every buffer they may still touch */
    uint64_t key_seed[2];       /* Idempotency-Keys (sg_batch_key) */
    uint64_t jitter_state;      /* back-off jitter (sender only) */
    uint64_t keys_made;         /* Idempotency-Keys made (batches built and
                                   groups abandoned unsent) */

    /* flush / shutdown handshake, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started;                /* sender reported its start (start_rc) */
    int start_rc;
    uint64_t flush_req;         /* generations: requested / completed */
    uint64_t flush_done;
    int flush_waiters;          /* threads inside segops_flush() */
    _Atomic uint64_t flush_req_pub; /* flush_req, readable without mu */
    int stop;                   /* shutdown asked */
    int64_t stop_deadline_ns;   /* CLOCK_MONOTONIC */
    _Atomic int stop_pub;
    int last_error;             /* last batch failure */
    uint64_t failures;          /* batch failures so far */
    uint64_t failures_reported; /* failures some flush has returned (or
                                   that happened while one waited) */
    uint64_t undelivered;       /* failed while shutting down */

    /* registry of live clients, for the fork() child handler */
    struct segops_client *reg_next, *reg_prev;
    int forked;                 /* this is a child's copy: see segops.h */

    /* sender-written counters */
    _Atomic uint64_t delivered, skipped, failed, retries, batches, high_water;
    struct sg_net_stats net;    /* the pool's counters */
};

void *sg_sender_main(void *arg);

/* Lays out the batches and their arenas (client creation).  0 or
 * SEGOPS_ENOMEM. */
int sg_sender_alloc(struct segops_client *c);
void sg_sender_free(struct segops_client *c);

/* Delay in ms before the next retry when r retries were already made:
 * 0, 500, 1000, then doubling, capped at cap_ms, plus up to 10% jitter
 * drawn from rnd.  Exposed for tests. */
int64_t sg_backoff_ms(int r, uint32_t cap_ms, uint64_t rnd);

/* Formats and emits a log line (sender thread; bounded, no allocation). */
void sg_log(struct segops_client *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
