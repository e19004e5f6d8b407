/* SPDX-License-Identifier: MIT */
/*
 * bench_track.c -- B1: per-call latency of segops_track() next to two
 * baselines run in the same program and the same run:
 *   mutex   the existing C SDKs' design (baseline_mutex.c)
 *   spdlog  spdlog's async logger to a null sink (baseline_spdlog.cpp;
 *           only when spdlog was found at build time)
 * All three hand over the same four values: user_id, event_type, a string
 * and a double property; each takes its own timestamp.
 *
 * Each call is timed with a fenced rdtsc bracket (its own cost included,
 * printed first), into a log-linear histogram; p50/p99/p99.9/p99.99/max per
 * implementation, mode and producer count.  libsegops' sender delivers to
 * an in-process segops-sink on 127.0.0.1 during the run, as in production.
 *
 *   bench_track [--threads 1,2,4,8] [--mode burst|pressured|saturate|all]
 *               [--impl segops,mutex,spdlog] [--calls N] [--budget-ms MS]
 *               [--capacity N] [--slot BYTES] [--lanes N] [--dat FILE]
 *
 * Modes: burst = 20 calls, then a 200 us sleep (clock_nanosleep: the CPU
 * is given back, as a server thread between requests would);
 * pressured = 20 calls, then a 2 us spin; saturate = no pause (libsegops:
 * lanes fill and SEGOPS_EFULL is counted; mutex: drops past its bound;
 * spdlog: blocks, its policy).  Every run stops at its time budget.
 * Figures, not assertions: this program never fails for being slow.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "baseline.h"
#include "bench_client.h"
#include "bench_common.h"
#include "event.h" /* internal: the encoding step alone, for the breakdown */
#include "segops.h"
#include "sink.h"

enum { I_SEGOPS, I_MUTEX, I_SPDLOG, NIMPL };
static const char *impl_name[NIMPL] = {"libsegops", "mutex+malloc", "spdlog-async"};
enum { M_BURST, M_PRESSURED, M_SATURATE, NMODE };
static const char *mode_name[NMODE] = {"burst", "pressured", "saturate"};

#define MAXTH 64

static const char USER[] = "user-123", TYPE[] = "order_placed", K1[] = "order_id",
                  V1[] = "ord-456", K2[] = "total";
static const double V2 = 89.95;

struct result {
    int valid;
    double p50, p99, p999, p9999, max, mcalls, maccepted;
    uint64_t calls, full;
};
static struct result results[NIMPL][NMODE][MAXTH + 1];

struct worker {
    int impl, mode;
    void *ctx;
    long calls;
    uint64_t budget; /* tsc ticks from the start of measuring */
    pthread_barrier_t *bar;
    struct hist h;
    uint64_t ok, full, other;
    double secs;
};

static inline int do_track(int impl, void *ctx, const segops_event *ev)
{
    switch (impl) {
    case I_SEGOPS: {
        int rc = segops_track((segops_client *)ctx, ev);
        return rc == 0 ? 0 : rc == SEGOPS_EFULL ? 1 : 2;
    }
    case I_MUTEX:
        return bl_mutex_track((struct bl_mutex *)ctx, USER, TYPE, K1, V1, K2, V2);
#ifdef BENCH_HAVE_SPDLOG
    case I_SPDLOG:
        return bl_spdlog_track(ctx, USER, TYPE, K1, V1, K2, V2);
#endif
    default:
        return 2;
    }
}

static inline void pause_after(int mode, long i)
{
    if (i % 20 != 19)
        return;
    if (mode == M_BURST)
        sleep_ns(200000);
    else if (mode == M_PRESSURED)
        spin_ns(2000);
}

static void *run(void *arg)
{
    struct worker *w = arg;
    segops_prop props[] = {SEGOPS_STR(K1, V1), SEGOPS_F64(K2, V2)};
    segops_event ev = {.user_id = USER, .event_type = TYPE, .payload = props, .payload_len = 2};
    /* warm-up: claims the lane, faults the path in, fills caches */
    for (long i = 0; i < 2000; i++) {
        do_track(w->impl, w->ctx, &ev);
        pause_after(w->mode == M_SATURATE ? M_PRESSURED : w->mode, i);
    }
    pthread_barrier_wait(w->bar);
    int64_t t0 = mono_ns();
    uint64_t deadline = __rdtsc() + w->budget;
    long i;
    for (i = 0; i < w->calls; i++) {
        uint64_t a = tsc_begin();
        int rc = do_track(w->impl, w->ctx, &ev);
        uint64_t b = tsc_end();
        hist_add(&w->h, b - a);
        w->ok += rc == 0;
        w->full += rc == 1;
        w->other += rc == 2;
        pause_after(w->mode, i);
        if ((i & 255) == 255 && b > deadline)
            break;
    }
    w->secs = (double)(mono_ns() - t0) / 1e9;
    return NULL;
}

static uint16_t sink_port;
static uint32_t opt_capacity = 8192, opt_slot = 0, opt_lanes = 0;

static void *impl_new(int impl, int threads)
{
    switch (impl) {
    case I_SEGOPS: {
        char url[64];
        bench_sink_url(url, sizeof(url), sink_port);
        segops_options o;
        bench_client_opts(&o, url);
        /* --lanes below --threads: the extra threads use shared lanes */
        o.max_producers = opt_lanes ? opt_lanes : (uint32_t)threads;
        o.queue_capacity = opt_capacity;
        o.slot_size = opt_slot;
        return bench_client_new(&o, "bench_track: client");
    }
    case I_MUTEX:
        return bl_mutex_new(8192 * (size_t)threads);
#ifdef BENCH_HAVE_SPDLOG
    case I_SPDLOG:
        return bl_spdlog_new(8192 * (size_t)threads);
#endif
    }
    return NULL;
}

static void impl_free(int impl, void *ctx)
{
    switch (impl) {
    case I_SEGOPS:
        segops_flush(ctx, 30000);
        segops_shutdown(ctx, 30000, NULL);
        break;
    case I_MUTEX:
        bl_mutex_free(ctx);
        break;
#ifdef BENCH_HAVE_SPDLOG
    case I_SPDLOG:
        bl_spdlog_free(ctx);
        break;
#endif
    }
}

static void one(int impl, int mode, int threads, long calls, long budget_ms)
{
    void *ctx = impl_new(impl, threads);
    struct worker *w = calloc((size_t)threads, sizeof(*w));
    pthread_t th[MAXTH];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++) {
        w[i].impl = impl;
        w[i].mode = mode;
        w[i].ctx = ctx;
        w[i].calls = calls;
        w[i].bar = &bar;
        w[i].budget = ns_to_ticks((uint64_t)budget_ms * 1000000u);
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    struct hist *all = calloc(1, sizeof(*all));
    uint64_t ok = 0, full = 0;
    double secs = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        hist_merge(all, &w[i].h);
        ok += w[i].ok;
        full += w[i].full;
        if (w[i].secs > secs)
            secs = w[i].secs;
    }
    impl_free(impl, ctx);
    pthread_barrier_destroy(&bar);
    struct result *r = &results[impl][mode][threads];
    r->valid = 1;
    r->p50 = hist_pct(all, 0.50);
    r->p99 = hist_pct(all, 0.99);
    r->p999 = hist_pct(all, 0.999);
    r->p9999 = hist_pct(all, 0.9999);
    r->max = hist_max_ns(all);
    r->calls = all->count;
    r->full = full;
    r->mcalls = (double)all->count / secs / 1e6;
    r->maccepted = (double)ok / secs / 1e6;
    printf("| %-12s | %-9s | %2d | %6.0f | %6.0f | %7.0f | %8.0f | %9.0f | %8.2f | %8.2f | %9" PRIu64
           " | %8" PRIu64 " |\n",
           impl_name[impl], mode_name[mode], threads, r->p50, r->p99, r->p999, r->p9999, r->max,
           r->mcalls, r->maccepted, r->calls, full);
    fflush(stdout);
    free(all);
    free(w);
}

/* The bracket alone: what every figure above includes. */
static void bracket_cost(void)
{
    struct hist *h = calloc(1, sizeof(*h));
    for (int i = 0; i < 200000; i++) {
        uint64_t a = tsc_begin();
        uint64_t b = tsc_end();
        hist_add(h, b - a);
    }
    printf("# empty fenced rdtsc bracket: p50 %.0f ns, p99 %.0f ns, p99.9 %.0f ns\n",
           hist_pct(h, 0.5), hist_pct(h, 0.99), hist_pct(h, 0.999));
    free(h);
}

/* sg_event_encode() of NUL-terminated strings (the 0.1 call shape). */
static int encode_nts(void *slot, size_t size, const char *u, const char *t, const char *at,
                      const segops_prop *p, size_t n, uint64_t stamp)
{
    struct sg_event_in in = {u, SEGOPS_NTS, t, SEGOPS_NTS, at, SEGOPS_TIME_NONE, p, n};
    return sg_event_encode(slot, size, &in, stamp);
}

/* What one call is made of, measured piece by piece on this thread with
 * warm caches and no other thread running: the TSC read every track takes
 * for its timestamp, and the validation + encoding of the event into a
 * slot (sg_event_encode, internal, on one warm slot).  The rest of a call
 * is the lane: a thread-local check, the shutdown flag, one ring push. */
static volatile uint64_t keep;

static void cost_breakdown(void)
{
    enum { N = 200000 };
    uint64_t sink = 0;
    int64_t t0 = mono_ns();
    for (int i = 0; i < N; i++)
        sink += __rdtsc();
    double tsc_ns = (double)(mono_ns() - t0) / N;

    static _Alignas(64) unsigned char slot[512];
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95)};
    struct hist *h = calloc(1, sizeof(*h));
    for (int i = 0; i < N; i++) {
        uint64_t a = tsc_begin();
        sink += (uint64_t)encode_nts(slot, sizeof(slot), "user-123", "order_placed", NULL, props, 2,
                                     (uint64_t)i);
        uint64_t b = tsc_end();
        hist_add(h, b - a);
    }
    t0 = mono_ns();
    for (int i = 0; i < N; i++)
        sink += (uint64_t)encode_nts(slot, sizeof(slot), "user-123", "order_placed", NULL, props, 2,
                                     (uint64_t)i);
    double enc_ns = (double)(mono_ns() - t0) / N;
    printf("# parts of a call (warm, this thread alone): one TSC read %.1f ns (back to back);"
           " validation + encoding (sg_event_encode) p50 %.0f ns bracketed, %.1f ns per call"
           " back to back\n",
           tsc_ns, hist_pct(h, 0.5), enc_ns);
    keep = sink; /* the results are used: nothing above may be elided */
    free(h);
}

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        int v = (int)bench_list_item(s);
        if (v >= 1 && v <= MAXTH)
            out[n++] = v;
        s = strchr(s, ',');
        if (!s)
            break;
        s++;
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *threads_arg = "1,2,4,8", *mode_arg = "all", *impl_arg = "segops,mutex,spdlog";
    const char *dat = NULL;
    long calls = 0, budget_ms = 4000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--threads") && v)
            threads_arg = v, i++;
        else if (!strcmp(a, "--mode") && v)
            mode_arg = v, i++;
        else if (!strcmp(a, "--impl") && v)
            impl_arg = v, i++;
        else if (!strcmp(a, "--calls") && v)
            calls = bench_num(v), i++;
        else if (!strcmp(a, "--budget-ms") && v)
            budget_ms = bench_num(v), i++;
        else if (!strcmp(a, "--capacity") && v)
            opt_capacity = (uint32_t)bench_num(v), i++;
        else if (!strcmp(a, "--slot") && v)
            opt_slot = (uint32_t)bench_num(v), i++;
        else if (!strcmp(a, "--lanes") && v)
            opt_lanes = (uint32_t)bench_num(v), i++;
        else if (!strcmp(a, "--dat") && v)
            dat = v, i++;
        else {
            fprintf(stderr,
                    "usage: %s [--threads 1,2,4,8] [--mode burst|pressured|saturate|all]\n"
                    "          [--impl segops,mutex,spdlog] [--calls N] [--budget-ms MS]\n"
                    "          [--capacity N] [--slot BYTES] [--lanes N] [--dat FILE]\n",
                    argv[0]);
            return 2;
        }
    }
    int th[16];
    int nth = parse_list(threads_arg, th, 16);
    int use[NIMPL] = {strstr(impl_arg, "segops") != NULL, strstr(impl_arg, "mutex") != NULL,
                      strstr(impl_arg, "spdlog") != NULL};
#ifndef BENCH_HAVE_SPDLOG
    if (use[I_SPDLOG])
        printf("# spdlog baseline: not built (libspdlog-dev not found at configure time)\n");
    use[I_SPDLOG] = 0;
#endif

    bench_calibrate();
    bench_machine(stdout);
    struct sink *sink = bench_sink_start(NULL, &sink_port);
    if (!sink) {
        perror("bench_track: sink");
        return 1;
    }
#ifdef BENCH_HAVE_SPDLOG
    printf("# baselines: mutex+malloc (C SDK design), %s async to a null sink\n",
           bl_spdlog_version());
#else
    printf("# baselines: mutex+malloc (C SDK design)\n");
#endif
    bracket_cost();
    cost_breakdown();
    printf("# latency in ns per call (bracket included); Mcalls/s and Macc/s are totals over "
           "all threads;\n# 'full' = SEGOPS_EFULL (libsegops) or dropped at the bound (mutex)\n\n");
    printf("| impl         | mode      | th |    p50 |    p99 |   p99.9 |   p99.99 |       max |"
           " Mcalls/s |   Macc/s |     calls |     full |\n");
    printf("|--------------|-----------|----|--------|--------|---------|----------|-----------|"
           "----------|----------|-----------|----------|\n");
    for (int m = 0; m < NMODE; m++) {
        if (strcmp(mode_arg, "all") && strcmp(mode_arg, mode_name[m]))
            continue;
        long n = calls ? calls : m == M_BURST ? 100000 : 200000;
        for (int t = 0; t < nth; t++)
            for (int i = 0; i < NIMPL; i++)
                if (use[i])
                    one(i, m, th[t], n, budget_ms);
    }
    sink_stop(sink);

    printf("\n# ratios libsegops / baseline (lower is better; 0.10 = 10x faster)\n\n");
    printf("| mode      | th | p50 vs mutex | p99.9 vs mutex | p50 vs spdlog | p99.9 vs spdlog |\n");
    printf("|-----------|----|--------------|----------------|---------------|-----------------|\n");
    for (int m = 0; m < NMODE; m++)
        for (int t = 0; t < nth; t++) {
            struct result *s = &results[I_SEGOPS][m][th[t]];
            struct result *a = &results[I_MUTEX][m][th[t]];
            struct result *b = &results[I_SPDLOG][m][th[t]];
            if (!s->valid)
                continue;
            char c1[16] = "-", c2[16] = "-", c3[16] = "-", c4[16] = "-";
            if (a->valid) {
                snprintf(c1, sizeof(c1), "%.3f", s->p50 / a->p50);
                snprintf(c2, sizeof(c2), "%.3f", s->p999 / a->p999);
            }
            if (b->valid) {
                snprintf(c3, sizeof(c3), "%.3f", s->p50 / b->p50);
                snprintf(c4, sizeof(c4), "%.3f", s->p999 / b->p999);
            }
            printf("| %-9s | %2d | %12s | %14s | %13s | %15s |\n", mode_name[m], th[t], c1, c2,
                   c3, c4);
        }
    /* scaling: saturating call rate of N producers relative to 1 */
    if (results[I_SEGOPS][M_SATURATE][1].valid) {
        printf("\n# libsegops saturate scaling (total calls/s relative to 1 producer):");
        for (int t = 0; t < nth; t++)
            if (results[I_SEGOPS][M_SATURATE][th[t]].valid)
                printf(" %dth %.2fx", th[t],
                       results[I_SEGOPS][M_SATURATE][th[t]].mcalls /
                           results[I_SEGOPS][M_SATURATE][1].mcalls);
        printf("\n");
    }
    if (dat) {
        FILE *f = fopen(dat, "w");
        if (!f) {
            perror(dat);
            return 1;
        }
        fprintf(f, "# impl mode threads p50 p99 p99.9 p99.99 max (ns)\n");
        for (int i = 0; i < NIMPL; i++)
            for (int m = 0; m < NMODE; m++)
                for (int t = 0; t < nth; t++) {
                    struct result *r = &results[i][m][th[t]];
                    if (r->valid)
                        fprintf(f, "%s %s %d %.1f %.1f %.1f %.1f %.1f\n", impl_name[i],
                                mode_name[m], th[t], r->p50, r->p99, r->p999, r->p9999, r->max);
                }
        fclose(f);
    }
    return 0;
}
