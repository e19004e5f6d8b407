/* SPDX-License-Identifier: MIT */
/*
 * bench_client.h -- the in-process segops-sink and clients of it, shared by
 * the bench programs built against libsegops and segops-sink (all but
 * bench_handoff).  Header-only, like bench_common.h.
 */
#ifndef BENCH_CLIENT_H
#define BENCH_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segops.h"
#include "sink.h"
#include "bench_common.h"

/* Starts a segops-sink on 127.0.0.1 (ephemeral port, into *port) that
 * takes the key "sk_bench", calls on_event (NULL: none) for every accepted
 * event and answers each request delay_ms after reading it (a round trip;
 * one thread per connection, so concurrent connections' delays overlap).
 * NULL on error, errno set. */
static inline struct sink *bench_sink_start_delay(sink_event_fn on_event, uint32_t delay_ms,
                                                  uint16_t *port)
{
    struct sink_opts so;
    memset(&so, 0, sizeof(so));
    so.api_key = "sk_bench";
    so.on_event = on_event;
    so.delay_ms = delay_ms;
    return sink_start(&so, port);
}

/* bench_sink_start_delay() without a delay. */
static inline struct sink *bench_sink_start(sink_event_fn on_event, uint16_t *port)
{
    return bench_sink_start_delay(on_event, 0, port);
}

/* "http://127.0.0.1:PORT", the URL of a sink started above. */
static inline void bench_sink_url(char *url, size_t n, uint16_t port)
{
    snprintf(url, n, "http://127.0.0.1:%u", (unsigned)port);
}

/* Client options for `url` with the bench key and no log output; every
 * other field zero (its default), for the caller to set. */
static inline void bench_client_opts(segops_options *o, const char *url)
{
    segops_options_init(o);
    o->api_url = url;
    o->api_key = "sk_bench";
    o->logger = segops_log_discard;
}

/* segops_client_new(), or exit(1) with "<who>: <error>" on stderr. */
static inline segops_client *bench_client_new(const segops_options *o, const char *who)
{
    segops_client *c;
    int rc = segops_client_new(o, &c);
    if (rc) {
        fprintf(stderr, "%s: %s\n", who, segops_strerror(rc));
        exit(1);
    }
    return c;
}

/* A producer that keeps its lane full: tracks until bench_stop_feed is set,
 * sleeping 50 us on SEGOPS_EFULL (so it takes little CPU). */
static _Atomic int bench_stop_feed;

static inline void *bench_feeder(void *arg)
{
    segops_client *c = arg;
    pthread_setname_np(pthread_self(), "bench-feeder");
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95)};
    segops_event ev = {
        .user_id = "user-123", .event_type = "order_placed", .payload = props, .payload_len = 2};
    while (!atomic_load_explicit(&bench_stop_feed, memory_order_relaxed)) {
        int rc = segops_track(c, &ev);
        if (rc == SEGOPS_EFULL)
            sleep_ns(50000);
        else if (rc != 0)
            break;
    }
    return NULL;
}

#endif
