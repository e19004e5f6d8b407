/* SPDX-License-Identifier: MIT */
/*
 * bench_common.h -- helpers shared by the bench programs: a fenced TSC
 * bracket, a log-linear histogram, the machine line, CPU time of a thread
 * found by name, an in-process sink and a client of it.  Header-only
 * (static inline) so that every program stays one translation unit plus
 * this file.
 *
 * Timing rule used everywhere: lfence; rdtsc; lfence  <call>  rdtscp; lfence.
 * The bracket's own cost (~25-30 ns on the 2 vCPU reference guest) is part
 * of every figure, as in the published reference numbers.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

static double bench_ns_per_tick = 1.0;

/* Strict number parsing for the benches' options: the whole argument must
 * be a number in range, else the program says which argument and exits 2
 * (atoi() read "notanumber" as 0). */
static inline long bench_num_in(const char *v, long min, long max)
{
    char *end = NULL;
    long x = v && *v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || x < min || x > max) {
        fprintf(stderr, "bench: \"%s\" is not a whole number in %ld..%ld\n", v ? v : "(missing)",
                min, max);
        exit(2);
    }
    return x;
}
#define bench_num(v) bench_num_in((v), 0, LONG_MAX)

static inline double bench_real(const char *v)
{
    char *end = NULL;
    double x = v && *v ? strtod(v, &end) : 0;
    if (!v || !*v || *end || !(x >= 0) || x > 1e9) {
        fprintf(stderr, "bench: \"%s\" is not a number of seconds\n", v ? v : "(missing)");
        exit(2);
    }
    return x;
}

/* One item of a comma-separated list ("1,4,8"): the number up to the next
 * comma, strictly. */
static inline long bench_list_item(const char *s)
{
    char buf[32];
    size_t n = strcspn(s, ",");
    if (n == 0 || n >= sizeof(buf)) {
        fprintf(stderr, "bench: bad list item in \"%s\"\n", s);
        exit(2);
    }
    memcpy(buf, s, n);
    buf[n] = 0;
    return bench_num(buf);
}

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

static inline int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) != 0) {
    }
}

/* TSC rate against CLOCK_MONOTONIC over ~200 ms. */
static inline void bench_calibrate(void)
{
    int64_t a = mono_ns(), b;
    uint64_t t0 = __rdtsc();
    do
        b = mono_ns();
    while (b - a < 200000000);
    uint64_t t1 = __rdtsc();
    bench_ns_per_tick = (double)(b - a) / (double)(t1 - t0);
}

static inline uint64_t ns_to_ticks(uint64_t ns)
{
    return (uint64_t)((double)ns / bench_ns_per_tick);
}

/* Busy pause without a system call (used for pauses of a few us). */
static inline void spin_ns(uint64_t ns)
{
    uint64_t end = __rdtsc() + ns_to_ticks(ns);
    while (__rdtsc() < end)
        _mm_pause();
}

/* ---- log-linear histogram of tick counts: 32 sub-buckets per power of
 * two, so every reported percentile is within ~3% of the true value ---- */

#define HIST_SUB 32u
#define HIST_SHIFT 5u
#define HIST_BUCKETS (64u * HIST_SUB)

struct hist {
    uint64_t n[HIST_BUCKETS];
    uint64_t count, max, sum;
};

static inline unsigned hist_bucket(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned lg = 63u - (unsigned)__builtin_clzll(v);
    unsigned sub = (unsigned)(v >> (lg - HIST_SHIFT)) & (HIST_SUB - 1);
    return (lg - HIST_SHIFT + 1) * HIST_SUB + sub;
}

/* middle of bucket b, in ticks */
static inline double hist_mid(unsigned b)
{
    if (b < HIST_SUB)
        return b;
    unsigned lg = b / HIST_SUB + HIST_SHIFT - 1, sub = b % HIST_SUB;
    uint64_t lo = ((uint64_t)HIST_SUB + sub) << (lg - HIST_SHIFT);
    uint64_t w = (uint64_t)1 << (lg - HIST_SHIFT);
    return (double)lo + (double)(w - 1) / 2.0;
}

static inline void hist_add(struct hist *h, uint64_t v)
{
    h->n[hist_bucket(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

static inline void hist_merge(struct hist *to, const struct hist *from)
{
    for (unsigned b = 0; b < HIST_BUCKETS; b++)
        to->n[b] += from->n[b];
    to->count += from->count;
    to->sum += from->sum;
    if (from->max > to->max)
        to->max = from->max;
}

/* percentile p (0..1) in ns */
static inline double hist_pct(const struct hist *h, double p)
{
    if (h->count == 0)
        return 0;
    uint64_t want = (uint64_t)(p * (double)h->count), acc = 0;
    for (unsigned b = 0; b < HIST_BUCKETS; b++) {
        acc += h->n[b];
        if (acc > want) {
            double v = hist_mid(b);
            if (v > (double)h->max)
                v = (double)h->max;
            return v * bench_ns_per_tick;
        }
    }
    return (double)h->max * bench_ns_per_tick;
}

static inline double hist_max_ns(const struct hist *h)
{
    return (double)h->max * bench_ns_per_tick;
}

/* ---- machine line ---- */

static inline void bench_machine(FILE *out)
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
    fprintf(out, "# machine: %s, %ld cores, Linux %s, compiler %s, TSC %.3f GHz\n", model,
            sysconf(_SC_NPROCESSORS_ONLN), u.release,
#ifdef __clang__
            "clang " __clang_version__,
#else
            "gcc " __VERSION__,
#endif
            1.0 / bench_ns_per_tick);
}

/* ---- CPU time of threads ---- */

/* ns on CPU of task tid of this process (schedstat first field), or -1. */
static inline int64_t task_cpu_ns(int tid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    unsigned long long ns = 0;
    int ok = fscanf(f, "%llu", &ns) == 1;
    fclose(f);
    return ok ? (int64_t)ns : -1;
}

/* First thread of this process whose comm is `name`, or -1. */
static inline int find_task(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    struct dirent *e;
    int found = -1;
    while (found < 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[64] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof(comm), f)) {
            comm[strcspn(comm, "\n")] = 0;
            if (!strcmp(comm, name))
                found = atoi(e->d_name);
        }
        fclose(f);
    }
    closedir(d);
    return found;
}

/* Resident set size in bytes, from /proc/self/statm. */
static inline long rss_bytes(void)
{
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
        res = -1;
    fclose(f);
    return res < 0 ? -1 : res * sysconf(_SC_PAGESIZE);
}

#endif
