/* SPDX-License-Identifier: MIT */
/*
 * bench_idle.c -- B9: what an idle client costs, and what sleeping longer
 * costs the first event after an idle spell, for several idle_poll_us.
 *
 *   bench_idle [--secs S] [--trials N] [--settings US,US,...]
 *
 * Per setting: a client of an in-process sink (batch_size 1, so that one
 * event is due at once; every other option at its default) is left idle
 * for 1 s, then for S seconds (default 5) the sender thread's wake-ups
 * (voluntary + involuntary context switches, /proc/self/task/TID/status)
 * and CPU time (schedstat) are counted.  Then N times (default 20): idle
 * 0.3-0.8 s, track one event, and time it from the call to the sink's
 * parser seeing it (rdtsc in the sink's on_event callback).  The sender
 * polls its lanes (producers never signal it: that would be a system call
 * on their path), so the wait is bounded by idle_poll_us.
 *
 * Prints a Markdown table.  Nothing here is a test.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_client.h"
#include "bench_common.h"

static _Atomic int64_t wire_target = -1;
static _Atomic uint64_t wire_t1;

static void on_event(void *user, const char *json, size_t len, const char *key)
{
    (void)user;
    (void)key;
    int64_t want = atomic_load_explicit(&wire_target, memory_order_acquire);
    if (want < 0)
        return;
    const char *p = memmem(json, len, "\"seq\":", 6);
    if (p && strtoll(p + 6, NULL, 10) == want) {
        atomic_store_explicit(&wire_t1, __rdtsc(), memory_order_release);
        atomic_store_explicit(&wire_target, -1, memory_order_release);
    }
}

/* voluntary + involuntary context switches of task tid, or -1 */
static long long task_switches(int tid)
{
    char path[64], line[128];
    snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long long sum = 0, v;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "voluntary_ctxt_switches: %lld", &v) == 1 ||
            sscanf(line, "nonvoluntary_ctxt_switches: %lld", &v) == 1)
            sum += v;
    fclose(f);
    return sum;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void one(const char *url, uint32_t idle_us, double secs, int trials)
{
    segops_options o;
    bench_client_opts(&o, url);
    o.batch_size = 1;
    o.idle_poll_us = idle_us;
    segops_client *c = bench_client_new(&o, "bench_idle");
    int tid = find_task("segops-sender");
    /* warm: one event out, so the connection is open, then idle */
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_I64("seq", 0)};
    segops_event ev = {.user_id = "user-123", .event_type = "order_placed", .payload = props,
                       .payload_len = 2};
    segops_track(c, &ev);
    segops_flush(c, 5000);
    sleep_ns(1000000000);

    long long w0 = task_switches(tid);
    int64_t c0 = task_cpu_ns(tid), t0 = mono_ns();
    sleep_ns((int64_t)(secs * 1e9));
    long long w1 = task_switches(tid);
    int64_t c1 = task_cpu_ns(tid), t1 = mono_ns();
    double wall = (double)(t1 - t0) / 1e9;
    double wakeups = (double)(w1 - w0) / wall;
    double cpu_pct = (double)(c1 - c0) / (double)(t1 - t0) * 100;

    uint64_t *lat = calloc((size_t)trials, sizeof(*lat));
    int n = 0, lost = 0;
    unsigned rnd = 12345;
    for (int t = 0; t < trials; t++) {
        rnd = rnd * 1103515245u + 12345u;
        sleep_ns(300000000 + (int64_t)((rnd >> 8) % 500000000));
        props[1].i64 = t + 1;
        atomic_store_explicit(&wire_target, t + 1, memory_order_release);
        uint64_t s0 = __rdtsc();
        segops_track(c, &ev);
        int64_t give_up = mono_ns() + 5000000000;
        while (atomic_load_explicit(&wire_target, memory_order_acquire) >= 0 &&
               mono_ns() < give_up)
            sleep_ns(20000);
        if (atomic_load(&wire_target) >= 0) {
            atomic_store(&wire_target, -1);
            lost++;
            continue;
        }
        lat[n++] = (uint64_t)((double)(atomic_load(&wire_t1) - s0) * bench_ns_per_tick);
    }
    segops_shutdown(c, 5000, NULL);
    qsort(lat, (size_t)n, sizeof(*lat), cmp_u64);
    double p50 = n ? (double)lat[n / 2] / 1e3 : 0, mx = n ? (double)lat[n - 1] / 1e3 : 0;
    double p90 = n ? (double)lat[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1] / 1e3 : 0;
    printf("| %7u | %8.0f | %6.2f %% | %8.0f | %8.0f | %8.0f | %4d |\n", idle_us, wakeups,
           cpu_pct, p50, p90, mx, lost);
    fflush(stdout);
    free(lat);
}

int main(int argc, char **argv)
{
    double secs = 5;
    int trials = 20;
    char settings[256] = "50,200,1000,5000,20000,100000";
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (!strcmp(argv[i], "--secs") && v) {
            secs = strtod(v, &end);
            if (*end || end == v || secs <= 0 || secs > 3600)
                goto usage;
        } else if (!strcmp(argv[i], "--trials") && v) {
            long t = strtol(v, &end, 10);
            if (*end || end == v || t < 1 || t > 100000)
                goto usage;
            trials = (int)t;
        } else if (!strcmp(argv[i], "--settings") && v) {
            snprintf(settings, sizeof(settings), "%s", v);
        } else {
            goto usage;
        }
    }
    bench_calibrate();
    uint16_t port;
    struct sink *sink = bench_sink_start(on_event, &port);
    if (!sink) {
        perror("sink_start");
        return 1;
    }
    char url[64];
    bench_sink_url(url, sizeof(url), port);
    bench_machine(stdout);
    printf("# bench_idle --secs %g --trials %d --settings %s\n", secs, trials, settings);
    printf("# idle: sender wake-ups/s and CPU over %g s; first event after 0.3-0.8 s idle: "
           "track -> sink, us (batch_size 1)\n",
           secs);
    printf("| idle_poll_us | wake-ups/s | sender CPU | first event p50 | p90 | max | lost |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (char *s = settings, *next; s && *s; s = next) {
        next = strchr(s, ',');
        if (next)
            *next++ = 0;
        char *end;
        unsigned long us = strtoul(s, &end, 10);
        if (*end || end == s || us < 1 || us > 1000000) {
            fprintf(stderr, "bench_idle: bad setting \"%s\" (1..1000000 us)\n", s);
            return 2;
        }
        one(url, (uint32_t)us, secs, trials);
    }
    sink_stop(sink);
    return 0;
usage:
    fprintf(stderr, "usage: bench_idle [--secs S] [--trials N] [--settings US,US,...]\n");
    return 2;
}
