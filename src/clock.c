/* SPDX-License-Identifier: MIT */
/*
 * clock.c -- TSC calibration against CLOCK_REALTIME.
 *
 * Invariant: producers only read `use_tsc` (fixed before the sender starts)
 * and the TSC itself.  Everything else here belongs to the sender thread,
 * so no synchronisation is needed.  Precision target is the millisecond of
 * RFC 3339 "occurred_at"; an event converted t seconds after the latest
 * anchor is off by at most t times the rate error, and the rate is measured
 * over the client's whole lifetime, so the error shrinks as it runs.
 */
#include "clock.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static int tsc_invariant(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid(0x80000000u, &a, &b, &c, &d) == 0 || a < 0x80000007u)
        return 0;
    __get_cpuid(0x80000007u, &a, &b, &c, &d);
    return (d >> 8) & 1u; /* invariant TSC: constant rate, runs in C-states */
}
#elif defined(__aarch64__)
static int tsc_invariant(void) { return 1; } /* the generic timer is */
#else
static int tsc_invariant(void) { return 0; }
#endif

/* One (tsc, wall) pair, bracketed so the wall read sits between two counter
 * reads; the tightest of a few tries wins. */
static void sample(uint64_t *tsc, int64_t *ns)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint64_t t0 = sg_rdtsc();
        int64_t w = sg_realtime_ns();
        uint64_t t1 = sg_rdtsc();
        if (t1 - t0 < best) {
            best = t1 - t0;
            *tsc = t0 + (t1 - t0) / 2;
            *ns = w;
        }
    }
}

void sg_clock_init(struct sg_clock *c)
{
    memset(c, 0, sizeof(*c));
    const char *e = getenv("SEGOPS_CLOCK");
    c->use_tsc = tsc_invariant() && !(e && strcmp(e, "realtime") == 0);
    if (!c->use_tsc)
        return;
    sample(&c->base_tsc, &c->base_ns);
    int64_t m0 = sg_mono_ns();
    while (sg_mono_ns() - m0 < 2000000) {
    }
    sample(&c->a_tsc, &c->a_ns);
    if (c->a_tsc <= c->base_tsc || c->a_ns <= c->base_ns) {
        c->use_tsc = 0; /* counter not moving or clock stepped: give up */
        return;
    }
    c->ns_per_tick = (double)(c->a_ns - c->base_ns) / (double)(c->a_tsc - c->base_tsc);
}

void sg_clock_recalibrate(struct sg_clock *c)
{
    if (!c->use_tsc)
        return;
    uint64_t t = 0;
    int64_t w = 0;
    sample(&t, &w);
    if (t > c->base_tsc && w > c->base_ns && w - c->base_ns > 50000000)
        c->ns_per_tick = (double)(w - c->base_ns) / (double)(t - c->base_tsc);
    c->a_tsc = t;
    c->a_ns = w;
}

int64_t sg_clock_to_unix_ms(const struct sg_clock *c, uint64_t stamp)
{
    int64_t ns;
    if (!c->use_tsc)
        ns = (int64_t)stamp;
    else
        ns = c->a_ns + (int64_t)((double)(int64_t)(stamp - c->a_tsc) * c->ns_per_tick);
    /* floor division: pre-1970 instants stay correct */
    return ns >= 0 ? ns / 1000000 : -((-ns + 999999) / 1000000);
}
