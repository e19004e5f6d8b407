/* SPDX-License-Identifier: MIT */
/*
 * batch.h -- internal: one batch of events and its request.
 *
 * A batch owns a preallocated arena: the request head is written right
 * before the JSON body so that head + body are one contiguous buffer,
 * written as it is (plain) or fed to the TLS engine.  The arena is reused
 * from batch to batch: nothing is allocated per batch or per event.
 *
 * States (the policy, sender.c, moves a batch between them):
 *   FREE      arena unused
 *   READY     request built (or due again), waiting for a connection
 *   SENDING   handed to the pool: on a connection, or on one opening for it
 *   BACKOFF   waiting for its retry time (retry_at)
 *   DONE      resolved (delivered, skipped or failed) and counted; its
 *             report runs at the end of the loop turn, then it is FREE
 *
 * Splitting (413).  The body's events stay where they were rendered; the
 * batch sends a range [lo, hi) of them at a time.  A 413 pushes the right
 * half on a small stack and sends the left half; when a range resolves the
 * next one comes off the stack.  Ranges go left to right, so everything
 * before a range's first event is resolved: its request head and the body's
 * opening are written over that text, right before the range, and the
 * range's "]}" over the comma after its last event and the first byte of
 * the next (saved, and put back before the next range is built).  Each
 * range goes with a new Idempotency-Key: it is a different payload.
 */
#ifndef SG_BATCH_H
#define SG_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "proxy.h"
#include "queue.h"
#include "url.h"

#define SG_MAX_EVENTS_PER_REQUEST 500
#define SG_HEAD_MAX 4096 /* request head room before the body */

enum sg_batch_state { SG_B_FREE, SG_B_READY, SG_B_SENDING, SG_B_BACKOFF, SG_B_DONE };

struct sg_batch {
    int state;                  /* enum sg_batch_state */
    int id;
    char *arena;                /* SG_HEAD_MAX + cap + 8 bytes */
    char *body;                 /* arena + SG_HEAD_MAX */
    size_t len, cap;            /* body bytes; body cap (max_batch_bytes) */
    uint32_t n;                 /* events */
    const char *req;            /* head + body */
    size_t req_len;
    char key[33];               /* Idempotency-Key, kept across retries */
    uint64_t seq;               /* build order (flush completion) */
    int partial;                /* built with fewer events than a full batch */
    int pins;                   /* closing connections whose send still reads
                                   the arena: not reused until 0 */
    int retries;                /* retries spent */
    int attempts;               /* tries so far (1 + retries) */
    int stale_used;             /* the free resend of this try was used */
    int64_t retry_at;           /* BACKOFF: when it is READY again */
    int64_t sent_at;            /* SENDING: when it was handed to the pool */
    /* events in the body: ev_off[i] is where event i starts (body
     * offset); ev_off[n] is where "]}" starts */
    uint32_t ev_off[SG_MAX_EVENTS_PER_REQUEST + 1];
    /* the range being sent, and the ranges still to send (413 split) */
    uint32_t lo, hi;
    uint32_t stk_lo[12], stk_hi[12];
    int nstk;
    int rebuild;                /* [lo, hi) changed: build its request
                                   before sending (once pins == 0) */
    size_t saved_at;            /* body offset of the 2 bytes "]}" covers; 0:
                                   none */
    char saved[2];
    /* the outcome, reported when DONE */
    int result, status;
    uint32_t skipped;           /* events the server skipped */
    uint32_t failed;            /* events failed (all of them when result
                                   != 0; with result 0, events a 2xx did not
                                   cover or 413 halves that failed) */
    int range_result;           /* the failure of a range, kept for result */
    int fail_status;            /* ... its HTTP status and detail */
    char fail_detail[256];
    char detail[256];
    struct sg_batch *next;      /* READY queue, DONE list */
};

/* SplitMix64's finaliser: a bijection of 64-bit integers (keys, jitter). */
uint64_t sg_perm64(uint64_t x);

/* Empties b for a new batch of at most cap body bytes. */
void sg_batch_reset(struct sg_batch *b, size_t cap);

/* Takes events from the lanes, round-robin from *rr, rendering each into
 * the body, until b holds `want` events, cannot fit a worst-case event of
 * slot_size, or the lanes are empty.  Slots go back to their lanes as soon
 * as they are rendered. */
void sg_batch_fill(struct sg_batch *b, struct sg_queue *q, const struct sg_clock *ck,
                   uint32_t want, uint32_t *rr);

/* Idempotency-Keys.  A client draws two 64-bit seeds once, at creation
 * (sg_key_seeds); batch number `seq` (1, 2, ...) of that client gets the
 * key hex(P(seed[0] + seq)) || hex(P(seed[1] + seq)), 32 hex digits, where
 * P is a bijection of 64-bit integers (a 64-bit finaliser).  Hence, for
 * one client: two batches never share a half (P is a bijection and seq
 * differs), and the two halves of a key never equal each other as long as
 * seed[0] != seed[1], which sg_key_seeds guarantees.  Across clients, keys
 * differ unless 128 random bits repeat.  The keys are unique, not secret:
 * one key reveals the seeds to whoever inverts P (only the server sees
 * them, over the connection that carries the API key). */
void sg_key_seeds(uint64_t seed[2]);
void sg_batch_key(char key[33], const uint64_t seed[2], uint64_t seq);

/* Closes the JSON body and writes the request head before it (the range
 * is every event). */
void sg_batch_seal(struct sg_batch *b, const struct sg_url *url, const char *api_key,
                   size_t api_key_len);

/* Builds the request for events [lo, hi) of a sealed batch, in place (see
 * "Splitting"): every event before lo must be resolved. */
void sg_batch_range(struct sg_batch *b, uint32_t lo, uint32_t hi, const struct sg_url *url,
                    const char *api_key, size_t api_key_len);

/* The same two, for requests that an HTTP proxy forwards (px non-NULL,
 * px->on, http:// url): the request target in absolute form
 * ("POST http://host:port/api/... HTTP/1.1") and Proxy-Authorization
 * when px has credentials.  For https:// (a CONNECT tunnel: the proxy
 * sees none of it) or px NULL, exactly the functions above. */
void sg_batch_seal_via(struct sg_batch *b, const struct sg_url *url, const struct sg_proxy *px,
                       const char *api_key, size_t api_key_len);
void sg_batch_range_via(struct sg_batch *b, uint32_t lo, uint32_t hi, const struct sg_url *url,
                        const struct sg_proxy *px, const char *api_key, size_t api_key_len);

#endif
