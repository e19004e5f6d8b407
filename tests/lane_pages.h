/* SPDX-License-Identifier: MIT */
/*
 * lane_pages.h -- test helper: how much of a lane's slot memory is
 * committed (resident), read with mincore().  Header-only, shared by the
 * queue unit tests and the client integration tests.
 */
#ifndef SEGOPS_TEST_LANE_PAGES_H
#define SEGOPS_TEST_LANE_PAGES_H

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "queue.h"

/* Share of the pages wholly inside lane i's slots that are resident (the
 * first and last page of a lane may be shared with its neighbours), or -1
 * if the lane spans no whole page or mincore() fails. */
static inline double lane_resident(const struct sg_queue *q, uint32_t i)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t lane_bytes = (size_t)q->lanes[i].nslots * q->slot_size;
    uintptr_t lo = (uintptr_t)q->lanes[i].slots, hi = lo + lane_bytes;
    lo = (lo + pg - 1) / pg * pg + pg;
    hi = hi / pg * pg - pg;
    if (hi <= lo)
        return -1;
    size_t n = (hi - lo) / pg, in = 0;
    unsigned char *v = malloc(n);
    if (!v || mincore((void *)lo, hi - lo, v) != 0) {
        free(v);
        return -1;
    }
    for (size_t k = 0; k < n; k++)
        in += v[k] & 1;
    free(v);
    return (double)in / (double)n;
}

#endif
