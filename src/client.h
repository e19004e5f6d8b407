/*
 * client.h -- internal: the client object shared by the producer API
 * (client.c) and the sender thread (sender.c).
 *
 * Ownership: producers touch only `q` (their lanes), `ck.use_tsc` and the
 * read-only config.  The sender thread owns `io`, the arena, the receive
 * buffer and the connection.  Flush and shutdown talk to the sender through
 * `mu`/`cv` (never on the hot path).  Counters the sender writes are atomics
 * read by segops_stats() from any thread.
 */
#ifndef SG_CLIENT_H
#define SG_CLIENT_H

#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "clock.h"
#include "http.h"
#include "io.h"
#include "queue.h"
#include "tls.h"
#include "segops.h"
#include "url.h"

#define SG_MAX_EVENTS_PER_REQUEST 500
#define SG_HEAD_MAX 4096 /* request head room before the body */
#define SG_RBUF_SIZE 65536
#define SG_MAX_ADDRS 8

struct sg_config {
    uint32_t batch_size, flush_interval_ms, queue_capacity, slot_size;
    uint32_t max_batch_bytes, request_timeout_ms, connect_timeout_ms;
    uint32_t max_backoff_ms, idle_poll_us;
    int max_retries, io_mode, pin_sender, sender_cpu;
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
    char api_key[512];
    size_t api_key_len;

    /* sender thread */
    pthread_t thread;
    int thread_started;
    struct sg_io io;
    int tls_on;                 /* https:// */
    struct sg_tls tls;
    char *arena;                /* SG_HEAD_MAX + max_batch_bytes + 4 */
    size_t arena_size;
    char *rbuf;                 /* SG_RBUF_SIZE */
    struct sg_http_resp resp;
    struct sockaddr_storage addrs[SG_MAX_ADDRS];
    socklen_t addr_lens[SG_MAX_ADDRS];
    int naddrs;
    int connected;
    uint64_t conns_opened;
    uint64_t key_seed;          /* Idempotency-Keys: mix(seed, batch seq) */
    uint64_t jitter_state;      /* back-off jitter (sender only) */
    uint64_t batch_seq;
    uint64_t *flush_snap;       /* per-lane enq snapshot of a pending flush */

    /* flush / shutdown handshake, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started;                /* sender reported its start (start_rc) */
    int start_rc;
    uint64_t flush_req;         /* generations: requested / completed */
    uint64_t flush_done;
    _Atomic uint64_t flush_req_pub; /* flush_req, readable without mu */
    int stop;                   /* shutdown asked */
    int64_t stop_deadline_ns;   /* CLOCK_MONOTONIC */
    _Atomic int stop_pub;
    int last_error;             /* last batch failure */
    uint64_t failures;          /* batch failures so far */
    uint64_t failures_seen;     /* as of the last flush return */
    uint64_t undelivered;       /* failed while shutting down */

    /* registry of live clients, for the fork() child handler */
    struct segops_client *reg_next, *reg_prev;
    int forked;                 /* this is a child's copy: see segops.h */

    /* sender-written counters */
    _Atomic uint64_t delivered, skipped, failed, retries, batches, requests;
    _Atomic uint64_t bytes_sent, reconnects, high_water;
    _Atomic uint64_t tls_handshakes, tls_resumed;
};

void *sg_sender_main(void *arg);

/* Delay in ms before the next retry when r retries were already made:
 * 0, 500, 1000, then doubling, capped at cap_ms, plus up to 10% jitter
 * drawn from rnd.  Exposed for tests. */
int64_t sg_backoff_ms(int r, uint32_t cap_ms, uint64_t rnd);

/* Formats and emits a log line (sender thread; bounded, no allocation). */
void sg_log(struct segops_client *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
