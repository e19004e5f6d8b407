/*
 * bench_sender.c -- B3 sender throughput and B4 time to wire, against an
 * in-process segops-sink on 127.0.0.1 over plain HTTP.
 *
 * B3: one producer thread keeps the lanes full (on SEGOPS_EFULL it sleeps
 * 50 us, so it takes little CPU); after a warm-up, over --secs seconds, we
 * count events delivered (segops_stats), the sender thread's CPU time
 * (/proc/self/task/TID/schedstat of "segops-sender") and the whole
 * process's CPU time (which includes the sink).  Rows: io_uring and poll,
 * batch_size 20 and 500 (with the queue kept full the sender always sends
 * requests of up to 500: a batch starts once batch_size events are queued
 * and takes everything queued).
 *
 * B4: the time from the segops_track() call that brings the queue to
 * batch_size to the arrival of that event at the sink (its on_event
 * callback, after the request was read and parsed), over many batches; a
 * random 0-2 ms idle gap precedes each batch, so the sender is found in
 * every phase of its idle back-off (20 us doubling to idle_poll_us).  The
 * idle sender's own CPU use is measured over one quiet second.
 *
 *   bench_sender [--secs 3] [--trials 1000]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include "bench_common.h"
#include "segops.h"
#include "sink.h"

static int64_t proc_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static segops_client *client(uint16_t port, uint32_t batch, int io, uint32_t cap,
                             uint32_t idle_us)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)port);
    segops_options o;
    memset(&o, 0, sizeof(o));
    o.api_url = url;
    o.api_key = "sk_bench";
    o.batch_size = batch;
    o.io_mode = io;
    o.queue_capacity = cap;
    o.max_producers = 1;
    o.shared_lanes = 1;
    o.idle_poll_us = idle_us;
    o.logger = segops_log_discard;
    segops_client *c;
    int rc = segops_client_new(&o, &c);
    if (rc) {
        fprintf(stderr, "bench_sender: %s\n", segops_strerror(rc));
        exit(1);
    }
    return c;
}

/* ------------------------------------------------------------------ B3 */

static _Atomic int stop_feed;

static void *feeder(void *arg)
{
    segops_client *c = arg;
    pthread_setname_np(pthread_self(), "bench-feeder");
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95)};
    segops_event ev = {"user-123", "order_placed", NULL, props, 2};
    while (!atomic_load_explicit(&stop_feed, memory_order_relaxed)) {
        int rc = segops_track(c, &ev);
        if (rc == SEGOPS_EFULL)
            sleep_ns(50000);
        else if (rc != 0)
            break;
    }
    return NULL;
}

static void throughput(uint16_t port, int io, uint32_t batch, double secs)
{
    segops_client *c = client(port, batch, io, 65536, 0);
    int stid = find_task("segops-sender");
    atomic_store(&stop_feed, 0);
    pthread_t th;
    pthread_create(&th, NULL, feeder, c);
    sleep_ns(500000000); /* warm-up: connection, caches */
    segops_counters a, b;
    segops_stats(c, &a);
    int64_t s0 = task_cpu_ns(stid), p0 = proc_cpu_ns(), t0 = mono_ns();
    sleep_ns((int64_t)(secs * 1e9));
    segops_stats(c, &b);
    int64_t s1 = task_cpu_ns(stid), p1 = proc_cpu_ns(), t1 = mono_ns();
    atomic_store(&stop_feed, 1);
    pthread_join(th, NULL);
    segops_shutdown(c, 30000, NULL);
    double ev = (double)(b.delivered - a.delivered), dt = (double)(t1 - t0) / 1e9;
    double req = (double)(b.requests - a.requests);
    printf("| plain | %-8s | %5u | %10.0f | %7.0f | %11.1f | %15.0f | %16.0f | %6.1f |\n",
           b.io_mode == SEGOPS_IO_URING ? "io_uring" : "poll", batch, ev / dt,
           req > 0 ? ev / req : 0, (double)(s1 - s0) / 1e7 / dt,
           ev > 0 ? (double)(s1 - s0) / ev : 0, ev > 0 ? (double)(p1 - p0) / ev : 0,
           (double)(b.bytes_sent - a.bytes_sent) / dt / 1e6);
    fflush(stdout);
}

/* ------------------------------------------------------------------ B4 */

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

static void time_to_wire(uint16_t port, uint32_t batch, uint32_t idle_us, int trials)
{
    segops_client *c = client(port, batch, SEGOPS_IO_AUTO, 8192, idle_us);
    int stid = find_task("segops-sender");
    struct hist *h = calloc(1, sizeof(*h));
    int64_t seq = 0, lost = 0;
    unsigned rnd = 12345;
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95),
                           SEGOPS_I64("seq", 0)};
    segops_event ev = {"user-123", "order_placed", NULL, props, 3};
    for (int t = -20; t < trials; t++) { /* 20 warm-up trials */
        segops_counters s;
        for (;;) { /* start from an empty queue */
            segops_stats(c, &s);
            if (s.pending == 0)
                break;
            sleep_ns(20000);
        }
        rnd = rnd * 1103515245u + 12345u;
        sleep_ns((int64_t)((rnd >> 8) % 2000000));
        for (uint32_t i = 0; i + 1 < batch; i++) {
            props[2].i64 = seq++;
            segops_track(c, &ev);
        }
        props[2].i64 = seq++;
        atomic_store_explicit(&wire_target, props[2].i64, memory_order_release);
        uint64_t t0 = __rdtsc();
        segops_track(c, &ev);
        int64_t give_up = mono_ns() + 2000000000;
        while (atomic_load_explicit(&wire_target, memory_order_acquire) >= 0 &&
               mono_ns() < give_up)
            sleep_ns(10000);
        if (atomic_load(&wire_target) >= 0) {
            atomic_store(&wire_target, -1);
            lost++;
            continue;
        }
        if (t >= 0)
            hist_add(h, atomic_load(&wire_t1) - t0);
    }
    /* the idle sender's own CPU use */
    int64_t s0 = task_cpu_ns(stid), t0 = mono_ns();
    sleep_ns(1000000000);
    double idle_pct = (double)(task_cpu_ns(stid) - s0) / (double)(mono_ns() - t0) * 100;
    segops_shutdown(c, 30000, NULL);
    printf("| %5u | %7u | %6d | %8.0f | %8.0f | %8.0f | %8.0f | %4" PRId64 " | %5.2f |\n", batch,
           idle_us, trials, hist_pct(h, 0.5) / 1e3, hist_pct(h, 0.99) / 1e3,
           hist_pct(h, 0.999) / 1e3, hist_max_ns(h) / 1e3, lost, idle_pct);
    fflush(stdout);
    free(h);
}

int main(int argc, char **argv)
{
    double secs = 3;
    int trials = 1000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--secs") && i + 1 < argc)
            secs = atof(argv[++i]);
        else if (!strcmp(argv[i], "--trials") && i + 1 < argc)
            trials = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--secs 3] [--trials 1000]\n", argv[0]);
            return 2;
        }
    }
    bench_calibrate();
    bench_machine(stdout);
    struct sink_opts so;
    memset(&so, 0, sizeof(so));
    so.api_key = "sk_bench";
    uint16_t port;
    struct sink *sink = sink_start(&so, &port);
    if (!sink)
        return 1;

    printf("# B3 sender throughput: in-process sink on 127.0.0.1, one keep-alive connection,"
           " %.1f s per row\n# sender CPU = segops-sender thread only; process CPU includes the"
           " sink's threads and the feeder\n\n", secs);
    printf("| proto | io       | batch |   events/s | ev/req | sender %%CPU | sender ns/event |"
           " process ns/event | MB/s |\n");
    printf("|-------|----------|-------|------------|--------|------------|----------------|"
           "-----------------|------|\n");
    int ios[2] = {SEGOPS_IO_AUTO, SEGOPS_IO_POLL};
    uint32_t batches[2] = {20, 500};
    for (int i = 0; i < 2; i++)
        for (int b = 0; b < 2; b++)
            throughput(port, ios[i], batches[b], secs);
    printf("| TLS   | -        |     - | TLS: pending (issue 3) | | | | | |\n");
    sink_stop(sink);

    so.on_event = on_event;
    sink = sink_start(&so, &port);
    if (!sink)
        return 1;
    printf("\n# B4 time to wire: track() that reaches batch_size -> that event at the sink's"
           " on_event (us);\n# random 0-2 ms idle gap before each batch; last column: idle"
           " sender CPU %% of one core\n\n");
    printf("| batch | idle_us | trials |  p50 us |  p99 us | p99.9 us |   max us | lost |"
           " idle %%CPU |\n");
    printf("|-------|---------|--------|---------|---------|----------|----------|------|"
           "-----------|\n");
    time_to_wire(port, 20, 1000, trials);
    time_to_wire(port, 500, 1000, trials / 3);
    time_to_wire(port, 20, 100, trials);
    sink_stop(sink);
    return 0;
}
