/* SPDX-License-Identifier: MIT */
/*
 * threads.c -- many producer threads tracking at once, with live stats.
 *
 *   ./example-threads [--threads T] [--events N] [--metrics]
 *
 * Each producer thread gets its own lane on its first segops_track(), so
 * producers never wait for each other.  track() never blocks: when a lane
 * is full it returns SEGOPS_EFULL and the event is dropped and counted.
 * What to do then is the caller's choice; here the producer backs off for a
 * moment and tries again, so no event is lost.  The main thread prints the
 * client's counters every 100 ms while the producers run; --metrics prints
 * the final counters in Prometheus text format.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <segops.h>

#include "local_sink.h"

#define MAX_THREADS 64

struct producer {
    pthread_t thread;
    segops_client *client;
    int id;
    long events;
    long accepted, retried_full;
};

static atomic_int producers_running;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *produce(void *arg)
{
    struct producer *p = arg;
    char user[32];
    for (long i = 0; i < p->events; i++) {
        snprintf(user, sizeof(user), "user-%ld", i % 100);
        segops_prop props[] = {
            SEGOPS_STR("page", "/checkout"),
            SEGOPS_I64("producer", p->id),
            SEGOPS_I64("seq", i),
        };
        segops_event ev = {
            .user_id = user, .event_type = "page_viewed", .payload = props, .payload_len = 3};
        int rc;
        while ((rc = segops_track(p->client, &ev)) == SEGOPS_EFULL) {
            p->retried_full++; /* the lane is full: let the sender drain it */
            sleep_ms(1);
        }
        if (rc == 0)
            p->accepted++;
        else
            fprintf(stderr, "producer %d: %s\n", p->id, segops_strerror(rc));
    }
    atomic_fetch_sub(&producers_running, 1);
    return NULL;
}

static void print_stats(const char *when, segops_client *c)
{
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(c, &s);
    printf("%-8s accepted=%-8" PRIu64 " delivered=%-8" PRIu64 " pending=%-6" PRIu64
           " queue_depth=%-6" PRIu64 " high_water=%-6" PRIu64 " lanes=%u batches=%" PRIu64
           " dropped_full=%" PRIu64 "\n",
           when, s.accepted, s.delivered, s.pending, s.queue_depth, s.queue_high_water,
           s.lanes_in_use, s.batches, s.dropped_full);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int threads = 8, metrics = 0;
    long events = 100000;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = (int)strtol(argv[++i], &end, 10);
        else if (!strcmp(argv[i], "--events") && i + 1 < argc)
            events = strtol(argv[++i], &end, 10);
        if (end && (*end || end == argv[i] || argv[i][0] == '-' || argv[i][0] == '+')) {
            fprintf(stderr, "%s: %s needs a whole number, not \"%s\"\n", argv[0], argv[i - 1],
                    argv[i]);
            return 2;
        }
        if (end)
            continue;
        if (!strcmp(argv[i], "--metrics"))
            metrics = 1;
        else {
            fprintf(stderr, "usage: %s [--threads T] [--events N] [--metrics]\n", argv[0]);
            return 2;
        }
    }
    if (threads < 1 || threads > MAX_THREADS || events < 0) {
        fprintf(stderr, "threads: 1..%d, events >= 0\n", MAX_THREADS);
        return 2;
    }

    struct sink *local = example_local_sink();
    segops_options opts = SEGOPS_OPTIONS_INIT;
    opts.max_producers = (uint32_t)threads; /* one lane per producer thread */
    opts.batch_size = 200;
    segops_client *client;
    int rc = segops_client_new(&opts, &client);
    if (rc != 0) {
        fprintf(stderr, "segops_client_new: %s\n", segops_strerror(rc));
        return 1;
    }

    static struct producer p[MAX_THREADS];
    atomic_store(&producers_running, threads);
    for (int i = 0; i < threads; i++) {
        p[i] = (struct producer){.client = client, .id = i, .events = events};
        if (pthread_create(&p[i].thread, NULL, produce, &p[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    while (atomic_load(&producers_running) > 0) {
        print_stats("running", client);
        sleep_ms(100);
    }
    long accepted = 0, retried = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(p[i].thread, NULL);
        accepted += p[i].accepted;
        retried += p[i].retried_full;
    }
    printf("producers done: %ld events accepted, %ld track() calls met a full lane\n",
           accepted, retried);

    rc = segops_flush(client, 10000);
    print_stats("flushed", client);
    printf("flush: %s\n", segops_strerror(rc));

    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(client, &s);
    if (metrics) {
        char text[SEGOPS_PROMETHEUS_MAX];
        if (segops_stats_prometheus(client, text, sizeof(text), NULL) == 0)
            fputs(text, stdout);
    }
    uint64_t undelivered = 0;
    rc = segops_shutdown(client, 10000, &undelivered);
    printf("shutdown: %s (undelivered: %" PRIu64 ")\n", segops_strerror(rc), undelivered);
    example_local_sink_stop(local);
    int ok = rc == 0 && undelivered == 0 && s.delivered == (uint64_t)accepted &&
             accepted == (long)threads * events;
    printf("%s\n", ok ? "OK: every event delivered" : "MISMATCH");
    return ok ? 0 : 1;
}
