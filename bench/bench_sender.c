/* SPDX-License-Identifier: MIT */
/*
 * bench_sender.c -- B3 sender throughput and B4 time to wire, against an
 * in-process segops-sink on 127.0.0.1 over plain HTTP, and (B3 only) over
 * https through nginx.
 *
 * B3: one producer thread keeps the lanes full (on SEGOPS_EFULL it sleeps
 * 50 us, so it takes little CPU) with the same event (user id, event type
 * order_placed, a string and a double property) either plain
 * (segops_track) or prepared (segops_track_prepared: the sender copies the
 * handle's JSON fragments and formats only the values) -- both kinds in
 * every configuration, in the same run; after a warm-up, over --secs seconds, we
 * count events delivered (segops_stats), the sender thread's CPU time
 * (/proc/self/task/TID/schedstat of "segops-sender") and the whole
 * process's CPU time (which includes the sink).  Rows: io_uring and poll,
 * batch_size 20 and 500 (with the queue kept full the sender always sends
 * requests of up to 500: a batch starts once batch_size events are queued
 * and takes everything queued).
 *
 * TLS rows: the same four runs against https://localhost:<port>, where
 * nginx (one worker, a throwaway CA made by openssl; see tls_front.h)
 * terminates TLS and proxies plain HTTP/1.1 keep-alive to the same sink.
 * nginx runs in its own processes on the same 2 cores, so "process
 * ns/event" leaves it out; a note below the table gives, for every row,
 * the nginx worker's CPU per event, the client's TLS handshakes (one per
 * connection: resumed or full) and an end-of-run check that every accepted
 * event was delivered (client counters after a flush, and the sink's own
 * count).  Without nginx or openssl the TLS rows say "skipped".
 *
 * B4: the time from the segops_track() call that brings the queue to
 * batch_size to the arrival of that event at the sink (its on_event
 * callback, after the request was read and parsed), over many batches; a
 * random 0-2 ms idle gap precedes each batch, so the sender is found in
 * every phase of its idle back-off (20 us doubling to idle_poll_us).  The
 * idle sender's own CPU use is measured over one quiet second.  Plain HTTP
 * only.
 *
 * B3f: the sender's own work per event without the network: a producer
 * thread keeps a lane of 65,536 slots of 512 bytes (as in B3's client)
 * fed, this thread drains it with sg_batch_fill() into 1 MiB batch bodies
 * (taking slots, rendering, giving them back), timed on this thread's CPU
 * clock over --secs.  Slots come from another core, as in the client.
 *
 * B3r: the rendering alone (sg_event_render of one slot, in a loop on
 * this thread, no I/O): the part of the sender's per-event CPU that
 * prepared events change.
 *
 *   bench_sender [--secs 3] [--trials 1000] [--b3-only]
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include "batch.h"
#include "bench_client.h"
#include "bench_common.h"
#include "clock.h"
#include "event.h"
#include "segops.h"
#include "sink.h"
#include "tls_front.h"

static int64_t proc_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* utime and stime of a thread, in clock ticks (/proc/self/task/TID/stat
 * fields 14 and 15), or -1: the split of its CPU between user code (the
 * library's rendering, HTTP, bookkeeping) and the kernel (loopback TCP,
 * whose receive side is charged to the sending thread too). */
static int task_ticks(int tid, long long *utime, long long *stime)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* comm may hold spaces */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", utime,
                     stime) != 2)
        return -1;
    return 0;
}

/* ca_file: NULL for http; the test CA for https through nginx */
static segops_client *client(const char *url, const char *ca_file, uint32_t batch, int io,
                             uint32_t cap, uint32_t idle_us)
{
    segops_options o;
    bench_client_opts(&o, url);
    o.ca_file = ca_file;
    o.batch_size = batch;
    o.io_mode = io;
    o.queue_capacity = cap;
    o.max_producers = 1;
    o.shared_lanes = 1;
    o.idle_poll_us = idle_us;
    return bench_client_new(&o, "bench_sender");
}

/* ------------------------------------------------------------------ B3 */

/* The feeder's event, prepared (bench_feeder's event, the same bytes on
 * the wire). */
static segops_prepared *feed_prep;

static void *feeder_prepared(void *arg)
{
    segops_client *c = arg;
    pthread_setname_np(pthread_self(), "bench-feeder");
    segops_value v[] = {SEGOPS_VSTR("ord-456"), SEGOPS_VF64(89.95)};
    while (!atomic_load_explicit(&bench_stop_feed, memory_order_relaxed)) {
        int rc = segops_track_prepared(c, feed_prep, "user-123", SEGOPS_NTS, v, 2,
                                       SEGOPS_TIME_NONE);
        if (rc == SEGOPS_EFULL)
            sleep_ns(50000);
        else if (rc != 0)
            break;
    }
    return NULL;
}


/* Where B3 sends: plain to the sink, or https to nginx in front of it. */
struct target {
    const char *proto;       /* "plain" or "TLS" */
    const char *url;
    const char *ca_file;     /* NULL for plain */
    struct sink *sink;       /* for its own count of queued events */
    struct tls_front *front; /* nginx, for its CPU time; NULL for plain */
};

/* One B3 row; `note` gets the end-of-run line printed below the table. */
static void throughput(const struct target *t, int io, uint32_t batch, int prepared, double secs,
                       char *note, size_t note_cap)
{
    struct sink_counts k0, k1;
    sink_get_counts(t->sink, &k0);
    segops_client *c = client(t->url, t->ca_file, batch, io, 65536, 0);
    int stid = find_task("segops-sender");
    atomic_store(&bench_stop_feed, 0);
    pthread_t th;
    pthread_create(&th, NULL, prepared ? feeder_prepared : bench_feeder, c);
    sleep_ns(500000000); /* warm-up: connection (and handshake), caches */
    segops_counters a = SEGOPS_COUNTERS_INIT, b = SEGOPS_COUNTERS_INIT, e = SEGOPS_COUNTERS_INIT;
    segops_stats(c, &a);
    long long u0 = 0, k0t = 0, u1 = 0, k1t = 0;
    int ticks = task_ticks(stid, &u0, &k0t) == 0;
    int64_t s0 = task_cpu_ns(stid), p0 = proc_cpu_ns(), n0 = tls_front_cpu_ns(t->front);
    int64_t t0 = mono_ns();
    sleep_ns((int64_t)(secs * 1e9));
    segops_stats(c, &b);
    int64_t s1 = task_cpu_ns(stid), p1 = proc_cpu_ns(), n1 = tls_front_cpu_ns(t->front);
    ticks = ticks && task_ticks(stid, &u1, &k1t) == 0 && (u1 - u0) + (k1t - k0t) > 0;
    /* the user share of the sender's CPU, from tick counts */
    double user_share = ticks ? (double)(u1 - u0) / (double)((u1 - u0) + (k1t - k0t)) : -1;
    int64_t t1 = mono_ns();
    atomic_store(&bench_stop_feed, 1);
    pthread_join(th, NULL);
    /* everything accepted must reach the sink: flush, then check counters
     * while the client still exists (shutdown frees it) */
    int frc = segops_flush(c, 30000);
    segops_stats(c, &e);
    uint64_t undelivered = 0;
    int src = segops_shutdown(c, 30000, &undelivered);
    sink_get_counts(t->sink, &k1);
    double ev = (double)(b.delivered - a.delivered), dt = (double)(t1 - t0) / 1e9;
    double req = (double)(b.requests - a.requests);
    const char *ion = b.io_mode == SEGOPS_IO_URING ? "io_uring" : "poll";
    double sender_ns = ev > 0 ? (double)(s1 - s0) / ev : 0;
    printf("| %-5s | %-8s | %5u | %-8s | %10.0f | %7.0f | %11.1f | %15.0f | %13.0f | %16.0f | %6.1f |\n",
           t->proto, ion, batch, prepared ? "prepared" : "plain", ev / dt, req > 0 ? ev / req : 0,
           (double)(s1 - s0) / 1e7 / dt, sender_ns, user_share >= 0 ? sender_ns * user_share : -1,
           ev > 0 ? (double)(p1 - p0) / ev : 0, (double)(b.bytes_sent - a.bytes_sent) / dt / 1e6);
    fflush(stdout);

    int ok = frc == 0 && src == 0 && undelivered == 0 && e.failed == 0 && e.skipped == 0 &&
             e.pending == 0 && e.delivered == e.accepted &&
             k1.queued - k0.queued == e.delivered;
    int n = snprintf(note, note_cap,
                     "# %s %s batch %u %s: %s accepted %" PRIu64 ", delivered %" PRIu64
                     " (sink queued %" PRIu64 "), failed %" PRIu64 ", retries %" PRIu64
                     ", reconnects %" PRIu64,
                     t->proto, ion, batch, prepared ? "prepared" : "plain", ok ? "ok," : "MISMATCH:", e.accepted, e.delivered,
                     k1.queued - k0.queued, e.failed, e.retries, e.reconnects);
    if (n < 0 || (size_t)n >= note_cap || !t->front)
        return;
    char nginx[96] = "nginx worker CPU unknown";
    if (n0 >= 0 && n1 >= 0 && ev > 0)
        snprintf(nginx, sizeof(nginx), "nginx worker %.0f ns/event (%.1f %%CPU)",
                 (double)(n1 - n0) / ev, (double)(n1 - n0) / 1e7 / dt);
    snprintf(note + n, note_cap - (size_t)n,
             "; TLS handshakes %" PRIu64 " (%" PRIu64 " resumed); %s", e.tls_handshakes,
             e.tls_resumed, nginx);
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

static void time_to_wire(const char *url, uint32_t batch, uint32_t idle_us, int trials)
{
    segops_client *c = client(url, NULL, batch, SEGOPS_IO_AUTO, 8192, idle_us);
    int stid = find_task("segops-sender");
    struct hist *h = calloc(1, sizeof(*h));
    int64_t seq = 0, lost = 0;
    unsigned rnd = 12345;
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95),
                           SEGOPS_I64("seq", 0)};
    segops_event ev = {
        .user_id = "user-123", .event_type = "order_placed", .payload = props, .payload_len = 3};
    for (int t = -20; t < trials; t++) { /* 20 warm-up trials */
        segops_counters s = SEGOPS_COUNTERS_INIT;
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

/* ----------------------------------------------------------------- B3f */

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The producer of B3f: tracks the feeder's event into lane 0 (the
 * producer's side of produce(), without the handshake: no closer here)
 * until told to stop, yielding while the lane is full. */
struct fill_arg {
    struct sg_queue *q;
    int prepared;
    _Atomic int stop;
};

static void *fill_producer(void *arg)
{
    struct fill_arg *a = arg;
    struct sg_lane *l = &a->q->lanes[0];
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95)};
    struct sg_event_in in = {"user-123", SEGOPS_NTS, "order_placed", SEGOPS_NTS, NULL, 0, props, 2};
    segops_value v[] = {SEGOPS_VSTR("ord-456"), SEGOPS_VF64(89.95)};
    struct sg_prepared_in pin = {feed_prep, "user-123", SEGOPS_NTS, v, NULL, 2, 0};
    while (!atomic_load_explicit(&a->stop, memory_order_relaxed)) {
        uint64_t stamp = (uint64_t)mono_ns();
        int rc = a->prepared ? sg_event_encode_prepared(l->cur, a->q->slot_size, &pin, stamp)
                             : sg_event_encode(l->cur, a->q->slot_size, &in, stamp);
        if (rc != 0)
            break;
        while (sg_lane_publish(l) != 0 && !atomic_load_explicit(&a->stop, memory_order_relaxed))
            sched_yield();
    }
    return NULL;
}

/* ns of this thread's CPU per event drained by sg_batch_fill() while a
 * producer thread keeps lane 0 fed (slots cross cores, as in the client),
 * over `secs` seconds; the body is reset once it is sealed-size. */
static double fill_ns(int prepared, double secs)
{
    struct sg_queue q;
    if (sg_queue_init(&q, 1, 0, 65536, 512) != 0)
        return -1;
    struct sg_clock ck;
    memset(&ck, 0, sizeof(ck));
    struct sg_batch *b = calloc(1, sizeof(*b));
    size_t cap = 1 << 20;
    b->arena = malloc(SG_HEAD_MAX + cap + 8);
    struct fill_arg a = {&q, prepared, 0};
    pthread_t th;
    pthread_create(&th, NULL, fill_producer, &a);
    uint32_t rr = 0;
    uint64_t done = 0;
    sleep_ns(100000000); /* the lane fills */
    int64_t t0 = thread_cpu_ns(), end = mono_ns() + (int64_t)(secs * 1e9);
    while (mono_ns() < end) {
        sg_batch_reset(b, cap);
        sg_batch_fill(b, &q, &ck, SG_MAX_EVENTS_PER_REQUEST, &rr);
        done += b->n;
        if (b->n == 0)
            sched_yield();
    }
    double ns = (double)(thread_cpu_ns() - t0) / (double)(done ? done : 1);
    atomic_store(&a.stop, 1);
    pthread_join(th, NULL);
    free(b->arena);
    free(b);
    sg_queue_destroy(&q);
    return ns;
}

/* ----------------------------------------------------------------- B3r */

/* ns per sg_event_render() of one slot (the feeder's event), best of 5
 * runs of 200,000 renders into a batch-sized buffer (wrapping). */
static double render_ns(const void *slot)
{
    static char body[1 << 20];
    struct sg_clock ck;
    memset(&ck, 0, sizeof(ck)); /* stamps as Unix ns */
    size_t bound = sg_event_render_bound(slot) + 1;
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        size_t off = 0;
        int64_t t0 = mono_ns();
        for (int i = 0; i < 200000; i++) {
            if (off + bound > sizeof(body))
                off = 0;
            off += sg_event_render(slot, body + off, &ck);
            body[off++] = ',';
        }
        double ns = (double)(mono_ns() - t0) / 200000;
        if (ns < best)
            best = ns;
    }
    return best;
}

static void render_rows(double secs)
{
    static _Alignas(8) unsigned char slot[512];
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95)};
    struct sg_event_in in = {"user-123", SEGOPS_NTS, "order_placed", SEGOPS_NTS, NULL, 0, props, 2};
    uint64_t stamp = (uint64_t)mono_ns();
    printf("\n# B3r rendering alone: sg_event_render() of the feeder's event, one thread,"
           " best of 5 x 200,000\n\n| kind     | render ns/event |\n|----------|-----------------|\n");
    if (sg_event_encode(slot, sizeof(slot), &in, stamp) == 0)
        printf("| plain    | %15.1f |\n", render_ns(slot));
    segops_value v[] = {SEGOPS_VSTR("ord-456"), SEGOPS_VF64(89.95)};
    struct sg_prepared_in pin = {feed_prep, "user-123", SEGOPS_NTS, v, NULL, 2, 0};
    if (sg_event_encode_prepared(slot, sizeof(slot), &pin, stamp) == 0)
        printf("| prepared | %15.1f |\n", render_ns(slot));
    printf("\n# B3f the sender's work per event without the network: sg_batch_fill() of a"
           " lane a producer thread keeps fed (65,536 x 512-byte slots), this thread's CPU,"
           " %.1f s each\n\n| kind     | fill ns/event |\n|----------|---------------|\n", secs);
    printf("| plain    | %13.1f |\n", fill_ns(0, secs));
    printf("| prepared | %13.1f |\n", fill_ns(1, secs));
    fflush(stdout);
}

int main(int argc, char **argv)
{
    double secs = 3;
    int trials = 1000, b3_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--secs") && i + 1 < argc)
            secs = bench_real(argv[++i]);
        else if (!strcmp(argv[i], "--trials") && i + 1 < argc)
            trials = (int)bench_num(argv[++i]);
        else if (!strcmp(argv[i], "--b3-only"))
            b3_only = 1;
        else {
            fprintf(stderr, "usage: %s [--secs 3] [--trials 1000] [--b3-only]\n", argv[0]);
            return 2;
        }
    }
    segops_prop_spec keys[] = {SEGOPS_KEY_STR("order_id"), SEGOPS_KEY_F64("total")};
    if (segops_prepare("order_placed", SEGOPS_NTS, keys, 2, &feed_prep) != 0)
        return 1;
    bench_calibrate();
    bench_machine(stdout);
    if (getenv("BENCH_SENDER_FILL_ONLY")) { /* quick A/B: B3r and B3f only */
        render_rows(secs);
        return 0;
    }
    uint16_t port;
    struct sink *sink = bench_sink_start(NULL, &port);
    if (!sink)
        return 1;

    char url[64];
    bench_sink_url(url, sizeof(url), port);

    printf("# B3 sender throughput: in-process sink on 127.0.0.1, a pool of keep-alive connections (default max_connections),"
           " %.1f s per row\n# sender CPU = segops-sender thread only; process CPU includes the"
           " sink's threads and the feeder\n# TLS: https to nginx (1 worker, TLS terminated,"
           " HTTP/1.1 keep-alive to the same sink); nginx's CPU is not in process CPU,"
           " see the notes\n\n", secs);
    printf("# user ns/event: the sender's CPU per event spent in user mode (its utime share"
           " of ticks); the rest is the kernel's loopback TCP\n\n");
    printf("| proto | io       | batch | kind     |   events/s | ev/req | sender %%CPU | sender ns/event |"
           " user ns/event | process ns/event | MB/s |\n");
    printf("|-------|----------|-------|----------|------------|--------|------------|----------------|"
           "---------------|-----------------|------|\n");
    int ios[2] = {SEGOPS_IO_AUTO, SEGOPS_IO_POLL};
    uint32_t batches[2] = {20, 500};
    char notes[16][320];
    int nnotes = 0;
    struct target plain = {"plain", url, NULL, sink, NULL};
    for (int i = 0; i < 2; i++)
        for (int b = 0; b < 2; b++)
            for (int k = 0; k < 2; k++)
                throughput(&plain, ios[i], batches[b], k, secs, notes[nnotes++],
                           sizeof(notes[0]));
    char why[200];
    struct tls_front *front = b3_only ? NULL : tls_front_start(port, why, sizeof(why));
    if (b3_only) {
        printf("| TLS   | -        |     - | -        | skipped: --b3-only | | | | | | |\n");
    } else if (front) {
        struct target tls = {"TLS", front->url, front->ca, sink, front};
        for (int i = 0; i < 2; i++)
            for (int b = 0; b < 2; b++)
                for (int k = 0; k < 2; k++)
                    throughput(&tls, ios[i], batches[b], k, secs, notes[nnotes++],
                               sizeof(notes[0]));
        tls_front_stop(front);
    } else {
        printf("| TLS   | -        |     - | -        | skipped: %s | | | | | | |\n", why);
    }
    /* a blank line first: in the report a line right under a table would be
     * read as one more row */
    printf("\n");
    for (int i = 0; i < nnotes; i++)
        printf("%s\n", notes[i]);
    fflush(stdout);
    sink_stop(sink);
    render_rows(secs);
    if (b3_only) {
        segops_prepared_free(feed_prep); /* every client is shut down */
        return 0;
    }

    sink = bench_sink_start(on_event, &port);
    if (!sink)
        return 1;
    printf("\n# B4 time to wire: track() that reaches batch_size -> that event at the sink's"
           " on_event (us);\n# random 0-2 ms idle gap before each batch; last column: idle"
           " sender CPU %% of one core\n\n");
    printf("| batch | idle_us | trials |  p50 us |  p99 us | p99.9 us |   max us | lost |"
           " idle %%CPU |\n");
    printf("|-------|---------|--------|---------|---------|----------|----------|------|"
           "-----------|\n");
    bench_sink_url(url, sizeof(url), port);
    time_to_wire(url, 20, 1000, trials);
    time_to_wire(url, 500, 1000, trials / 3);
    time_to_wire(url, 20, 100, trials);
    sink_stop(sink);
    segops_prepared_free(feed_prep);
    return 0;
}
