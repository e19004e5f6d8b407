/* SPDX-License-Identifier: MIT */
/*
 * harness.h -- integration-test harness: an in-process segops-sink on a
 * real loopback socket, a client pointed at it, and capture of what both
 * sides saw (events per (thread, seq), events per Idempotency-Key, every
 * log line, every delivery report).
 */
#ifndef SEGOPS_TEST_HARNESS_H
#define SEGOPS_TEST_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "segops.h"
#include "sink.h"

#define H_MAX_THREADS 16
#define H_MAX_KEYS 4096
#define H_LOG_MAX 65536

struct h_key {
    char key[64];
    uint32_t events;
};

struct harness {
    struct sink *sink;
    uint16_t port;
    char url[64];
    segops_client *c;

    pthread_mutex_t mu;
    /* events seen at the sink that carry "thread" and "seq" payload fields */
    uint8_t *seen;          /* [thread * per + seq] counts */
    uint32_t per;
    uint64_t tagged, untagged, dup_tagged;
    struct h_key keys[H_MAX_KEYS];
    uint32_t nkeys;
    char last_event[2048];
    int64_t last_event_unix_ms; /* receive time at the sink */

    char log[H_LOG_MAX];    /* every log line, '\n'-separated */
    size_t log_len;
    uint32_t log_lines;
    segops_delivery last;   /* strings not kept */
    char last_detail[256];
    uint32_t deliveries;
    /* sums over every delivery report: events delivered (events - skipped
     * of batches with result 0), skipped, and of failed batches */
    uint64_t rep_delivered, rep_skipped, rep_failed;
};

/* Every log line of the client also goes to stderr, with a monotonic time
 * stamp, when $H_ECHO_LOG is set (with SEGOPS_TRACE=1: the connections'
 * states, for debugging a failing test). */

/* Client options, all zero but flush_interval_ms = 60000: only what a
 * test asks for (a flush, a full batch) is sent. */
segops_options h_opts(void);
/* Starts the sink (so may be NULL) with event capture for threads x per. */
void h_start_sink(struct harness *h, const struct sink_opts *so, uint32_t per);
/* Creates the client against the sink; o may be NULL; the harness fills
 * url, key "sk_test" (unless set), logger and delivery callback. */
int h_client(struct harness *h, segops_options *o);
void h_stop(struct harness *h);
void h_counts(struct harness *h, struct sink_counts *k);
/* Waits up to ms for the sink to have queued n events; returns the count. */
uint64_t h_wait_queued(struct harness *h, uint64_t n, int ms);
int64_t h_now_ms(void);
void h_sleep_ms(int ms);
/* The exactly-once run: `threads` producer threads each track `per` events
 * tagged (thread, seq) on h->c (retrying on SEGOPS_EFULL: the test wants
 * every event), then flush (flush_ms); checks that every event was
 * accepted, delivered and seen at the sink exactly once, nothing failed or
 * is pending, and the invariant.  The sink must have been started with
 * per >= `per`. */
void h_exactly_once(struct harness *h, int threads, int per, uint32_t flush_ms);
/* The same, each event tracked as `mode` says: segops_track(), a handle
 * made by segops_prepare() shared by every thread, or one
 * SEGOPS_TRACK_PREPARED() call site (its first use raced by every thread:
 * they start together). */
enum h_track { H_TRACK_PLAIN, H_TRACK_PREPARED, H_TRACK_MACRO };
void h_exactly_once_as(struct harness *h, int threads, int per, uint32_t flush_ms, int mode);
/* Checks accepted = delivered + skipped + failed + pending. */
void h_expect_invariant(segops_client *c);

#endif
