/*
 * bench_track.c -- B1: latency of segops_track() per call, measured with a
 * fenced rdtsc bracket around each call (the bracket's own cost, ~25-30 ns
 * here, is included, as in the reference figures), recorded in a
 * log-linear histogram; p50 / p99 / p99.9 / p99.99 / max per producer
 * count and mode.  The sender drains to an in-process segops-sink on
 * loopback during the run, as in production.
 *
 *   bench_track [--threads 1,2,4,8] [--calls N] [--mode burst|pressured|saturate|all]
 *               [--lanes N]
 *
 * Modes: burst = 20 calls then a 200 us pause (the sender keeps up);
 * pressured = 20 calls then 2 us; saturate = no pause (lanes fill: the
 * count of SEGOPS_EFULL is reported).  --lanes below --threads puts the
 * extra threads on the shared lanes (SEGOPS_ENOLANE counted).
 * Figures, not assertions: this program never fails for being slow.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <time.h>
#include <x86intrin.h>

#include "segops.h"
#include "sink.h"

#define BUCKETS (64 * 16)

static double ns_per_tick;

static inline uint64_t tsc_begin(void)
{
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
}

static inline uint64_t tsc_end(void)
{
    unsigned aux;
    uint64_t t = __rdtscp(&aux);
    _mm_lfence();
    return t;
}

/* log-linear: 16 sub-buckets per power of two */
static unsigned bucket(uint64_t v)
{
    if (v < 16)
        return (unsigned)v;
    unsigned lg = 63u - (unsigned)__builtin_clzll(v);
    unsigned sub = (unsigned)(v >> (lg - 4)) & 15u;
    return (lg - 3) * 16 + sub;
}

static uint64_t bucket_low(unsigned b)
{
    if (b < 16)
        return b;
    unsigned lg = b / 16 + 3, sub = b % 16;
    return ((uint64_t)16 + sub) << (lg - 4);
}

struct hist {
    uint64_t n[BUCKETS];
    uint64_t count, max;
};

static void hist_add(struct hist *h, uint64_t v)
{
    h->n[bucket(v)]++;
    h->count++;
    if (v > h->max)
        h->max = v;
}

static double pct(const struct hist *h, double p)
{
    uint64_t want = (uint64_t)(p * (double)h->count), acc = 0;
    for (unsigned b = 0; b < BUCKETS; b++) {
        acc += h->n[b];
        if (acc > want)
            return (double)bucket_low(b) * ns_per_tick;
    }
    return (double)h->max * ns_per_tick;
}

static void spin_ns(uint64_t ns)
{
    uint64_t end = __rdtsc() + (uint64_t)((double)ns / ns_per_tick);
    while (__rdtsc() < end)
        _mm_pause();
}

struct worker {
    segops_client *c;
    int id;
    long calls;
    uint64_t pause_ns;
    struct hist h;
    uint64_t ok, full, nolane;
    double secs;
};

static atomic_int go;

static void *run(void *arg)
{
    struct worker *w = arg;
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95)};
    segops_event ev = {"user-123", "order_placed", NULL, props, 2};
    while (!atomic_load(&go))
        ;
    /* warm-up: claim the lane, touch the code path */
    for (int i = 0; i < 2000; i++)
        segops_track(w->c, &ev);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < w->calls; i++) {
        uint64_t a = tsc_begin();
        int rc = segops_track(w->c, &ev);
        uint64_t b = tsc_end();
        hist_add(&w->h, b - a);
        w->ok += rc == 0;
        w->full += rc == SEGOPS_EFULL;
        w->nolane += rc == SEGOPS_ENOLANE;
        if (w->pause_ns && i % 20 == 19)
            spin_ns(w->pause_ns);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    w->secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return NULL;
}

static void calibrate(void)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    uint64_t t0 = __rdtsc();
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 200000000L);
    uint64_t t1 = __rdtsc();
    ns_per_tick = (double)((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec)) /
                  (double)(t1 - t0);
}

static void machine(void)
{
    char model[256] = "?", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "model name", 10)) {
            char *p = strchr(line, ':');
            snprintf(model, sizeof(model), "%.200s", p ? p + 2 : line);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    if (f)
        fclose(f);
    struct utsname u;
    uname(&u);
    printf("# machine: %s, %ld cores, Linux %s, compiler %s, TSC %.3f GHz\n", model,
           sysconf(_SC_NPROCESSORS_ONLN), u.release,
#ifdef __clang__
           "clang " __clang_version__,
#else
           "gcc " __VERSION__,
#endif
           1.0 / ns_per_tick);
}

static void one(int threads, const char *mode, uint64_t pause_ns, long calls, int lanes,
                uint16_t port)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)port);
    segops_options o;
    memset(&o, 0, sizeof(o));
    o.api_url = url;
    o.api_key = "sk_bench";
    o.max_producers = (uint32_t)(lanes ? lanes : threads);
    o.queue_capacity = 8192;
    o.logger = segops_log_discard;
    segops_client *c;
    int rc = segops_client_new(&o, &c);
    if (rc) {
        fprintf(stderr, "client: %s\n", segops_strerror(rc));
        exit(1);
    }
    struct worker *w = calloc((size_t)threads, sizeof(*w));
    pthread_t th[64];
    atomic_store(&go, 0);
    for (int i = 0; i < threads; i++) {
        w[i].c = c;
        w[i].id = i;
        w[i].calls = calls;
        w[i].pause_ns = pause_ns;
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    atomic_store(&go, 1);
    struct hist all;
    memset(&all, 0, sizeof(all));
    uint64_t ok = 0, full = 0, nolane = 0;
    double secs = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        for (unsigned b = 0; b < BUCKETS; b++)
            all.n[b] += w[i].h.n[b];
        all.count += w[i].h.count;
        if (w[i].h.max > all.max)
            all.max = w[i].h.max;
        ok += w[i].ok;
        full += w[i].full;
        nolane += w[i].nolane;
        if (w[i].secs > secs)
            secs = w[i].secs;
    }
    segops_flush(c, 30000);
    segops_counters s;
    segops_stats(c, &s);
    segops_shutdown(c, 30000, NULL);
    printf("| %-9s | %2d | %5d | %6.0f | %6.0f | %7.0f | %8.0f | %9.0f | %10.2f | %8" PRIu64
           " | %8" PRIu64 " |\n",
           mode, threads, lanes ? lanes : threads, pct(&all, 0.50), pct(&all, 0.99),
           pct(&all, 0.999), pct(&all, 0.9999), (double)all.max * ns_per_tick,
           (double)(ok + full + nolane) / secs / 1e6, full, nolane);
    fflush(stdout);
    free(w);
}

int main(int argc, char **argv)
{
    const char *threads_arg = "1,2,4,8", *mode = "all";
    long calls = 200000;
    int lanes = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads_arg = argv[++i];
        else if (!strcmp(argv[i], "--calls") && i + 1 < argc)
            calls = atol(argv[++i]);
        else if (!strcmp(argv[i], "--mode") && i + 1 < argc)
            mode = argv[++i];
        else if (!strcmp(argv[i], "--lanes") && i + 1 < argc)
            lanes = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--threads 1,2,4,8] [--calls N] "
                            "[--mode burst|pressured|saturate|all] [--lanes N]\n", argv[0]);
            return 2;
        }
    }
    calibrate();
    machine();
    struct sink_opts so;
    memset(&so, 0, sizeof(so));
    so.api_key = "sk_bench";
    uint16_t port;
    struct sink *sink = sink_start(&so, &port);
    if (!sink) {
        perror("sink");
        return 1;
    }
    printf("# segops_track latency in ns (fenced rdtsc bracket included), %ld calls per thread\n",
           calls);
    printf("| mode      | th | lanes |    p50 |    p99 |   p99.9 |  p99.99 |       max |"
           " Mcalls/s   |    EFULL |  ENOLANE |\n");
    printf("|-----------|----|-------|--------|--------|---------|----------|-----------|"
           "------------|----------|----------|\n");
    struct {
        const char *name;
        uint64_t pause;
    } modes[] = {{"burst", 200000}, {"pressured", 2000}, {"saturate", 0}};
    for (unsigned m = 0; m < 3; m++) {
        if (strcmp(mode, "all") && strcmp(mode, modes[m].name))
            continue;
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", threads_arg);
        for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
            int n = atoi(t);
            if (n < 1 || n > 64)
                continue;
            one(n, modes[m].name, modes[m].pause, calls, lanes, port);
        }
    }
    sink_stop(sink);
    return 0;
}
