/* SPDX-License-Identifier: MIT */
/*
 * clock.h -- internal: event timestamps without a system call.
 *
 * Producers take a raw stamp (sg_clock_stamp): the TSC where it is
 * invariant, else CLOCK_REALTIME through the vDSO.  Only the sender turns
 * stamps into UTC milliseconds, with a calibration it refreshes itself, so
 * the hot path does no arithmetic and touches no shared state beyond the
 * read-only `use_tsc` flag.
 */
#ifndef SG_CLOCK_H
#define SG_CLOCK_H

#include <stdint.h>
#include <time.h>

struct sg_clock {
    int use_tsc;          /* set once at creation, read by producers */
    /* sender-owned calibration: wall = a_ns + (tsc - a_tsc) * ns_per_tick.
     * On its own line: sg_clock_recalibrate() rewrites it every ~100 ms,
     * and sharing use_tsc's line made each producer miss on it then. */
    _Alignas(64) uint64_t base_tsc; /* first sample: the long baseline */
    int64_t base_ns;
    uint64_t a_tsc;       /* latest anchor */
    int64_t a_ns;
    double ns_per_tick;
};

static inline uint64_t sg_rdtsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    return 0;
#endif
}

static inline int64_t sg_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t sg_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The producer's stamp: raw counter or realtime ns, per use_tsc. */
static inline uint64_t sg_clock_stamp(const struct sg_clock *c)
{
    return c->use_tsc ? sg_rdtsc() : (uint64_t)sg_realtime_ns();
}

/* Decides whether the TSC can be used (invariant TSC reported by the CPU
 * and SEGOPS_CLOCK not set to "realtime") and takes a first calibration of
 * about 2 ms.  Called once at client creation. */
void sg_clock_init(struct sg_clock *c);

/* Re-anchors to the wall clock and refines the rate over the whole
 * baseline.  Sender thread only; call every ~100 ms. */
void sg_clock_recalibrate(struct sg_clock *c);

/* Converts a stamp to Unix milliseconds (UTC).  Sender thread only. */
int64_t sg_clock_to_unix_ms(const struct sg_clock *c, uint64_t stamp);

#endif
