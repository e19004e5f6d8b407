/* SPDX-License-Identifier: MIT */
/*
 * demo.c -- the README's main job: starts the local SegOps sink in-process
 * (no account, no network), tracks events from several producer threads,
 * flushes, shuts down, and prints what was tracked, what was delivered and
 * the client's counters next to the sink's.
 *
 *   segops-demo [--events N] [--threads T] [--url URL] [--key KEY]
 *
 * With --url the events go to that server instead of the embedded sink.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "segops.h"
#include "sink.h"

struct worker {
    segops_client *c;
    int id;
    long events;
    long accepted;
};

static void *produce(void *arg)
{
    struct worker *w = arg;
    char user[32];
    for (long i = 0; i < w->events; i++) {
        snprintf(user, sizeof(user), "user-%d-%ld", w->id, i % 50);
        segops_prop props[] = {
            SEGOPS_STR("order_id", "ord-456"),
            SEGOPS_F64("total", 89.95),
            SEGOPS_I64("thread", w->id),
            SEGOPS_I64("seq", i),
        };
        segops_event ev = {
            .user_id = user, .event_type = "order_placed", .payload = props, .payload_len = 4};
        if (segops_track(w->c, &ev) == 0)
            w->accepted++;
    }
    return NULL;
}

static void print_stats(const char *when, segops_client *c)
{
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(c, &s);
    printf("%-10s accepted=%" PRIu64 " delivered=%" PRIu64 " skipped=%" PRIu64
           " failed=%" PRIu64 " pending=%" PRIu64 " dropped_full=%" PRIu64
           " batches=%" PRIu64 " requests=%" PRIu64 " retries=%" PRIu64
           " bytes_sent=%" PRIu64 " queue_high_water=%" PRIu64 " io=%s\n",
           when, s.accepted, s.delivered, s.skipped, s.failed, s.pending, s.dropped_full,
           s.batches, s.requests, s.retries, s.bytes_sent, s.queue_high_water,
           s.io_mode == SEGOPS_IO_URING ? "io_uring" : "poll");
}

int main(int argc, char **argv)
{
    long events = 100000;
    int threads = 4;
    const char *url = NULL, *key = "sk_demo";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--events") && i + 1 < argc)
            events = atol(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--url") && i + 1 < argc)
            url = argv[++i];
        else if (!strcmp(argv[i], "--key") && i + 1 < argc)
            key = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--events N] [--threads T] [--url URL] [--key KEY]\n",
                    argv[0]);
            return 2;
        }
    }
    if (threads < 1 || threads > 64 || events < 0)
        return 2;

    struct sink *sink = NULL;
    char urlbuf[64];
    if (!url) {
        struct sink_opts so;
        memset(&so, 0, sizeof(so));
        so.api_key = key;
        uint16_t port;
        sink = sink_start(&so, &port);
        if (!sink) {
            perror("sink_start");
            return 1;
        }
        snprintf(urlbuf, sizeof(urlbuf), "http://127.0.0.1:%u", (unsigned)port);
        url = urlbuf;
        printf("segops-sink (embedded) listening on %s\n", url);
    }

    segops_options o = SEGOPS_OPTIONS_INIT;
    o.api_url = url;
    o.api_key = key;
    o.queue_capacity = 65536;
    o.max_producers = (uint32_t)threads;
    segops_client *c;
    int rc = segops_client_new(&o, &c);
    if (rc) {
        fprintf(stderr, "segops_client_new: %s\n", segops_strerror(rc));
        return 1;
    }
    segops_identify(c, &(segops_context){.user_id = "user-0-0",
                                         .traits = (segops_prop[]){SEGOPS_STR("plan", "pro"),
                                                                   SEGOPS_BOOL("beta", 1)},
                                         .traits_len = 2});

    printf("tracking %ld events from %d threads...\n", events * threads, threads);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t th[64];
    struct worker w[64];
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker){c, i, events, 0};
        pthread_create(&th[i], NULL, produce, &w[i]);
    }
    long accepted = 1;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        accepted += w[i].accepted;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("tracked   %ld accepted in %.3f s (%.0f events/s across threads)\n", accepted, secs,
           (double)accepted / secs);
    print_stats("tracked", c);
    rc = segops_flush(c, 10000);
    printf("flush     -> %s\n", segops_strerror(rc));
    print_stats("flushed", c);
    segops_counters s = SEGOPS_COUNTERS_INIT; /* final: the whole run */
    rc = segops_shutdown_stats(c, 10000, &s);
    uint64_t lost = s.accepted - s.delivered;
    printf("shutdown  -> %s; over the whole run: delivered=%" PRIu64 " failed=%" PRIu64
           " skipped=%" PRIu64 " undelivered=%" PRIu64 " dropped_full=%" PRIu64 "\n",
           segops_strerror(rc), s.delivered, s.failed, s.skipped, lost, s.dropped_full);

    int ok = s.accepted == s.delivered + s.skipped + s.failed + s.pending &&
             s.delivered == (uint64_t)accepted && lost == 0;
    if (sink) {
        struct sink_counts k;
        sink_get_counts(sink, &k);
        printf("sink      requests=%" PRIu64 " events=%" PRIu64 " queued=%" PRIu64
               " skipped=%" PRIu64 " repeated_idempotency_keys=%" PRIu64 "\n",
               k.requests, k.events, k.queued, k.skipped, k.repeated_keys);
        ok = ok && k.queued == (uint64_t)accepted;
        sink_stop(sink);
    }
    printf("%s: every accepted event was delivered exactly once\n", ok ? "OK" : "MISMATCH");
    return ok ? 0 : 1;
}
