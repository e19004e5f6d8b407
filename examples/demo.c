/* SPDX-License-Identifier: MIT */
/*
 * demo.c -- the README's main job: starts the local SegOps sink in-process
 * (no account, no network), tracks events from several producer threads,
 * flushes, shuts down, and prints what each thread tracked, what was
 * delivered and the client's counters next to the sink's.
 *
 *   segops-demo [--events N] [--threads T] [--rate R] [--burst] [--queue N]
 *               [--url URL] [--key KEY]
 *
 * By default the producers are paced (R events/s per thread, in 1 ms ticks,
 * and a thread waits while the lanes are half full), so no event is dropped;
 * the demo fails if one is.  --burst tracks as fast as the threads can, to
 * show overload: segops_track() then returns SEGOPS_EFULL once a thread's
 * lane is full, and the demo explains what that means and how to size
 * queue_capacity.  With --url the events go to that server instead of the
 * embedded sink.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "segops.h"
#include "sink.h"

#define MAX_THREADS 64

static const char usage[] =
    "usage: segops-demo [--events N] [--threads T] [--rate R] [--burst] [--queue N]\n"
    "                   [--url URL] [--key KEY]\n"
    "  --events N   events in total, split evenly over the threads (default 100000)\n"
    "  --threads T  producer threads, 1..64 (default 4)\n"
    "  --rate R     events per second per thread when paced (default 50000)\n"
    "  --burst      no pacing: track as fast as possible, to show overload (SEGOPS_EFULL)\n"
    "  --queue N    queue_capacity: events each thread's lane holds (default 8192)\n"
    "  --url URL    send to this server instead of the embedded sink\n"
    "  --key KEY    API key (default sk_demo)\n";

struct worker {
    segops_client *c;
    int id;
    long events;   /* to track */
    long rate;     /* per second; 0: burst */
    uint32_t half; /* pause while the lanes hold more than this */
    long accepted, dropped_full, other_errors, waits;
    double secs;
};

static double since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void tick_add(struct timespec *t, long ns)
{
    t->tv_nsec += ns;
    while (t->tv_nsec >= 1000000000L) {
        t->tv_nsec -= 1000000000L;
        t->tv_sec++;
    }
}

static void *produce(void *arg)
{
    struct worker *w = arg;
    char user[32];
    struct timespec t0, next;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    next = t0;
    /* paced: `chunk` events per 1 ms tick, never more than a quarter of a
     * lane, so that a lane found at most half full cannot fill */
    long chunk = w->rate ? w->rate / 1000 : w->events;
    if (chunk < 1)
        chunk = 1;
    if (w->rate && chunk > (long)w->half / 2)
        chunk = (long)w->half / 2 > 0 ? (long)w->half / 2 : 1;
    long tick_ns = w->rate ? (long)(1e9 * (double)chunk / (double)w->rate) : 0;
    for (long i = 0; i < w->events;) {
        if (w->rate) {
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
            tick_add(&next, tick_ns);
            /* back-pressure: the sum over every lane bounds this thread's */
            segops_counters s = SEGOPS_COUNTERS_INIT;
            for (int waited = 0; waited < 5000 && segops_stats(w->c, &s) == 0 &&
                                 s.queue_depth > w->half;
                 waited++) { /* at most 5 s: a dead server must not hang the demo */
                w->waits++;
                struct timespec ms = {0, 1000000};
                nanosleep(&ms, NULL);
                clock_gettime(CLOCK_MONOTONIC, &next);
            }
        }
        for (long k = 0; k < chunk && i < w->events; k++, i++) {
            snprintf(user, sizeof(user), "user-%d-%ld", w->id, i % 50);
            segops_prop props[] = {
                SEGOPS_STR("order_id", "ord-456"),
                SEGOPS_F64("total", 89.95),
                SEGOPS_I64("thread", w->id),
                SEGOPS_I64("seq", i),
            };
            segops_event ev = {
                .user_id = user, .event_type = "order_placed", .payload = props, .payload_len = 4};
            int rc = segops_track(w->c, &ev);
            if (rc == 0)
                w->accepted++;
            else if (rc == SEGOPS_EFULL)
                w->dropped_full++;
            else
                w->other_errors++;
        }
    }
    w->secs = since(&t0);
    return NULL;
}

static void print_stats(const char *when, segops_client *c)
{
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(c, &s);
    printf("%-9s accepted=%" PRIu64 " delivered=%" PRIu64 " skipped=%" PRIu64 " failed=%" PRIu64
           " pending=%" PRIu64 " queue_depth=%" PRIu64 " queue_high_water=%" PRIu64
           " dropped_full=%" PRIu64 " batches=%" PRIu64 " requests=%" PRIu64 " retries=%" PRIu64
           " bytes_sent=%" PRIu64 " io=%s\n",
           when, s.accepted, s.delivered, s.skipped, s.failed, s.pending, s.queue_depth,
           s.queue_high_water, s.dropped_full, s.batches, s.requests, s.retries, s.bytes_sent,
           s.io_mode == SEGOPS_IO_URING ? "io_uring" : "poll");
}

/* A whole decimal number in [lo, hi], or exits with the usage. */
static long number(const char *opt, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "segops-demo: %s needs a whole number from %ld to %ld, not \"%s\"\n",
                opt, lo, hi, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    long total = 100000, rate = 50000, queue = 8192;
    int threads = 4, burst = 0;
    const char *url = NULL, *key = "sk_demo";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--burst")) {
            burst = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "segops-demo: %s %s\n%s", a,
                    a[0] == '-' ? "needs a value (or is unknown)" : "is not an option", usage);
            return 2;
        }
        if (!strcmp(a, "--events"))
            total = number(a, v, 0, 1000000000L);
        else if (!strcmp(a, "--threads"))
            threads = (int)number(a, v, 1, MAX_THREADS);
        else if (!strcmp(a, "--rate"))
            rate = number(a, v, 1, 100000000L);
        else if (!strcmp(a, "--queue"))
            queue = number(a, v, 1, 1L << 24);
        else if (!strcmp(a, "--url"))
            url = v;
        else if (!strcmp(a, "--key"))
            key = v;
        else {
            fprintf(stderr, "segops-demo: unknown option %s\n%s", a, usage);
            return 2;
        }
        i++;
    }

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
    o.queue_capacity = (uint32_t)queue;
    o.max_producers = (uint32_t)threads;
    segops_client *c;
    int rc = segops_client_new(&o, &c);
    if (rc) {
        fprintf(stderr, "segops_client_new: %s\n", segops_strerror(rc));
        if (sink)
            sink_stop(sink);
        return 1;
    }
    rc = segops_identify(c, &(segops_context){.user_id = "user-0-0",
                                              .traits = (segops_prop[]){SEGOPS_STR("plan", "pro"),
                                                                        SEGOPS_BOOL("beta", 1)},
                                              .traits_len = 2});
    long identified = rc == 0;

    struct worker w[MAX_THREADS];
    for (int i = 0; i < threads; i++)
        w[i] = (struct worker){c, i, total / threads + (i < total % threads), burst ? 0 : rate,
                               (uint32_t)(queue / 2), 0, 0, 0, 0, 0.0};
    if (burst)
        printf("burst: %ld events from %d threads (%ld to %ld each), as fast as each thread "
               "can;\n       each thread's lane holds %ld events (queue_capacity)\n",
               total, threads, w[threads - 1].events, w[0].events, queue);
    else
        printf("paced: %ld events from %d threads (%ld to %ld each) at %ld events/s per "
               "thread in 1 ms ticks;\n       a thread also waits while the lanes are half "
               "full (%ld events), so no event is dropped\n",
               total, threads, w[threads - 1].events, w[0].events, rate, queue / 2);

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t th[MAX_THREADS];
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, produce, &w[i]);
    long accepted = 0, dropped = 0, errors = 0, waits = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        accepted += w[i].accepted;
        dropped += w[i].dropped_full;
        errors += w[i].other_errors;
        waits += w[i].waits;
    }
    double secs = since(&t0);
    for (int i = 0; i < threads; i++)
        printf("thread %-2d tracked %ld: accepted %ld, dropped (SEGOPS_EFULL) %ld in %.3f s "
               "(%.0f events/s)\n",
               i, w[i].events, w[i].accepted, w[i].dropped_full, w[i].secs,
               w[i].secs > 0 ? (double)w[i].events / w[i].secs : 0.0);
    printf("total     tracked %ld: accepted %ld, dropped (SEGOPS_EFULL) %ld, other errors %ld "
           "in %.3f s (%.0f events/s); plus %ld identify\n",
           total, accepted, dropped, errors, secs, secs > 0 ? (double)total / secs : 0.0,
           identified);
    if (!burst && waits)
        printf("          the producers waited %ld ticks for the sender to drain the lanes\n",
               waits);
    print_stats("tracked", c);
    printf("          pending: accepted, not yet answered = queue_depth (in the lanes) + events "
           "in requests\n          being built or sent; queue_high_water: the deepest the "
           "lanes were seen\n");
    rc = segops_flush(c, 10000);
    printf("flush     -> %s\n", segops_strerror(rc));
    print_stats("flushed", c);
    segops_counters s = SEGOPS_COUNTERS_INIT; /* final: the whole run */
    rc = segops_shutdown_stats(c, 10000, &s);
    uint64_t lost = s.accepted - s.delivered;
    printf("shutdown  -> %s; over the whole run: delivered=%" PRIu64 " failed=%" PRIu64
           " skipped=%" PRIu64 " undelivered=%" PRIu64 " dropped_full=%" PRIu64 "\n",
           segops_strerror(rc), s.delivered, s.failed, s.skipped, lost, s.dropped_full);

    long want = accepted + identified;
    int ok = s.accepted == s.delivered + s.skipped + s.failed + s.pending &&
             s.accepted == (uint64_t)want && s.delivered == (uint64_t)want && lost == 0;
    if (sink) {
        struct sink_counts k;
        sink_get_counts(sink, &k);
        printf("sink      requests=%" PRIu64 " events=%" PRIu64 " queued=%" PRIu64
               " skipped=%" PRIu64 " repeated_idempotency_keys=%" PRIu64 "\n",
               k.requests, k.events, k.queued, k.skipped, k.repeated_keys);
        ok = ok && k.queued == (uint64_t)want;
        sink_stop(sink);
    }
    if (!ok) {
        printf("MISMATCH: %ld events were accepted (%ld tracked + %ld identify); see the "
               "counters above\n",
               want, accepted, identified);
        return 1;
    }
    printf("OK: all %ld accepted events (%ld tracked + %ld identify) were delivered exactly "
           "once\n",
           want, accepted, identified);
    if (burst) {
        printf("\nSEGOPS_EFULL: segops_track() found the thread's lane full (queue_capacity = "
               "%ld events);\nit dropped the event, counted it (dropped_full) and returned at "
               "once: it never blocks the caller.\n%s\n",
               queue,
               dropped ? "Here the threads tracked faster than the sender could drain their "
                         "lanes."
                       : "None was dropped this time: each lane held its thread's whole burst.");
        long most = w[0].events;
        long sized = (most + 1023) / 1024 * 1024;
        printf("To drop none, a lane must hold what its thread tracks faster than the sender "
               "drains,\nover the longest burst: at most the whole burst, %ld events per thread "
               "here\n(--queue %ld; each lane then reserves (%ld + 1) x 512-byte slots, %.1f "
               "MiB);\nor pace the producers (the default), or back off and retry on "
               "SEGOPS_EFULL (examples/threads.c).\n",
               most, sized, sized, (double)(sized + 1) * 512 / (1 << 20));
    } else if (dropped || errors) {
        printf("FAILED: the paced run dropped or refused %ld events\n", dropped + errors);
        return 1;
    } else {
        printf("none was dropped: the producers were paced (--burst shows overload)\n");
    }
    return 0;
}
