/* SPDX-License-Identifier: MIT */
/*
 * metrics.c -- segops_stats_prometheus(): a segops_stats() snapshot as
 * Prometheus text exposition format 0.0.4.
 *
 * Invariants: every metric is written as "# HELP", "# TYPE", then exactly
 * one sample; counter names end in "_total"; every segops_counters field
 * appears once (the table below is the single list of names, documented in
 * segops.h and docs/api.md).  Formatting is bounded: the text is measured
 * as it is written, nothing is allocated, and a buffer that is too small
 * is reported, never overrun.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "segops.h"

/* Appends to buf while it fits; always advances *n by the full length, so
 * that the caller learns the size it needs. */
struct sg_out {
    char *buf;
    size_t cap, n;
};

static void out(struct sg_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out(struct sg_out *o, const char *fmt, ...)
{
    char tmp[320];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    size_t m = (size_t)k < sizeof(tmp) ? (size_t)k : sizeof(tmp) - 1;
    if (o->n + m < o->cap)
        memcpy(o->buf + o->n, tmp, m);
    o->n += m;
}

static void metric(struct sg_out *o, const char *name, const char *type, const char *help,
                   const char *labels, uint64_t v)
{
    out(o, "# HELP %s %s\n# TYPE %s %s\n%s%s %" PRIu64 "\n", name, help, name, type, name,
        labels, v);
}

SEGOPS_API int segops_stats_prometheus(segops_client *c, char *buf, size_t cap, size_t *len)
{
    if (len)
        *len = 0;
    if (!c || (!buf && cap))
        return SEGOPS_EINVAL;
    segops_counters s = SEGOPS_COUNTERS_INIT;
    int rc = segops_stats(c, &s);
    if (rc)
        return rc;

    struct sg_out o = {buf, cap, 0};
    static const char C[] = "counter", G[] = "gauge";
    metric(&o, "segops_events_accepted_total", C,
           "Events accepted by segops_track() and segops_identify().", "", s.accepted);
    metric(&o, "segops_events_rejected_invalid_total", C,
           "Events refused by validation, nothing queued.", "", s.rejected_invalid);
    metric(&o, "segops_events_dropped_full_total", C,
           "Events dropped because the producer's lane was full (SEGOPS_EFULL).", "",
           s.dropped_full);
    metric(&o, "segops_events_dropped_no_lane_total", C,
           "Events dropped because no lane was free for the thread (SEGOPS_ENOLANE).", "",
           s.dropped_no_lane);
    metric(&o, "segops_events_delivered_total", C, "Events queued by the server.", "",
           s.delivered);
    metric(&o, "segops_events_skipped_total", C,
           "Events the server skipped for failing its validation.", "", s.skipped);
    metric(&o, "segops_events_failed_total", C, "Events in batches that failed.", "",
           s.failed);
    metric(&o, "segops_events_pending", G, "Events accepted and not yet resolved.", "",
           s.pending);
    metric(&o, "segops_retries_total", C, "Requests re-sent after a transient error.", "",
           s.retries);
    metric(&o, "segops_batches_total", C, "Batches resolved, delivered or failed.", "",
           s.batches);
    metric(&o, "segops_requests_total", C, "HTTP requests written.", "", s.requests);
    metric(&o, "segops_sent_bytes_total", C, "Request bytes written.", "", s.bytes_sent);
    metric(&o, "segops_reconnects_total", C,
           "Connections opened to replace one that closed (pool growth not counted).", "",
           s.reconnects);
    metric(&o, "segops_requests_in_flight", G, "Requests written whose answer has not arrived.",
           "", s.requests_in_flight);
    metric(&o, "segops_connections_open", G, "Connections to the server, open or opening.", "",
           s.connections_open);
    metric(&o, "segops_tls_handshakes_total", C, "TLS handshakes done, full or resumed.", "",
           s.tls_handshakes);
    metric(&o, "segops_tls_resumed_total", C, "TLS handshakes that resumed a session.", "",
           s.tls_resumed);
    metric(&o, "segops_queue_depth", G, "Events in the lanes now.", "", s.queue_depth);
    metric(&o, "segops_queue_high_water", G, "Largest queue depth seen.", "",
           s.queue_high_water);
    metric(&o, "segops_lanes_in_use", G, "Lanes owned by live producer threads.", "",
           s.lanes_in_use);
    metric(&o, "segops_io_driver", G, "I/O driver of the sender thread.",
           s.io_mode == SEGOPS_IO_URING ? "{driver=\"io_uring\"}"
           : s.io_mode == SEGOPS_IO_POLL ? "{driver=\"poll\"}"
                                         : "{driver=\"none\"}",
           1);
    metric(&o, "segops_build_info", G, "Version of libsegops.",
           "{version=\"" SEGOPS_VERSION_STRING "\"}", 1);

    if (len)
        *len = o.n;
    if (o.n >= cap) {
        if (cap)
            buf[0] = 0;
        return SEGOPS_ETOOBIG;
    }
    buf[o.n] = 0;
    return 0;
}
