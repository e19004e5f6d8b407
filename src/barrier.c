/* SPDX-License-Identifier: MIT */
/*
 * barrier.c -- the heavy barrier of the shutdown handshake (see barrier.h
 * for the methods and why each is sound).
 */
#include "barrier.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int sg_barrier_register(void)
{
    return syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

/* Runs the calling thread once on every CPU it is allowed on.  Returns 0,
 * or -1 when a CPU that may run our threads could not be visited. */
static int migrate_everywhere(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_CONF);
    if (ncpu < 1)
        ncpu = 1;
    size_t setsz = CPU_ALLOC_SIZE(ncpu);
    cpu_set_t *saved = CPU_ALLOC(ncpu);
    cpu_set_t *one = CPU_ALLOC(ncpu);
    int rc = -1;
    if (!saved || !one)
        goto out;
    if (sched_getaffinity(0, setsz, saved) != 0)
        goto out;
    int visited = 0;
    rc = 0;
    for (long cpu = 0; cpu < ncpu && rc == 0; cpu++) {
        CPU_ZERO_S(setsz, one);
        CPU_SET_S((size_t)cpu, setsz, one);
        if (sched_setaffinity(0, setsz, one) != 0) {
            /* EINVAL: offline, or outside our cpuset -- no thread of ours
             * can be running there.  Anything else (EPERM from a filter):
             * the barrier is not complete. */
            if (errno != EINVAL)
                rc = -1;
            continue;
        }
        /* The kernel moves us before the call returns; make sure we did
         * run there (a context switch on that CPU happened). */
        for (int tries = 0; sched_getcpu() != cpu && tries < 1000; tries++)
            sched_yield();
        if (sched_getcpu() != cpu)
            rc = -1;
        else
            visited++;
    }
    if (visited == 0)
        rc = -1;
    if (sched_setaffinity(0, setsz, saved) != 0 && rc == 0)
        rc = -1; /* cannot happen: we could set it before */
out:
    if (saved)
        CPU_FREE(saved);
    if (one)
        CPU_FREE(one);
    return rc;
}

int sg_barrier_heavy(int allowed, int *first_errno)
{
    if (first_errno)
        *first_errno = 0;
    if (allowed & SG_BARRIER_MEMBARRIER) {
        if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
            return SG_BARRIER_MEMBARRIER;
        if (first_errno)
            *first_errno = errno;
    }
    if ((allowed & SG_BARRIER_MIGRATE) && migrate_everywhere() == 0)
        return SG_BARRIER_MIGRATE;
    return SG_BARRIER_NONE;
}

const char *sg_barrier_name(int method)
{
    switch (method) {
    case SG_BARRIER_MEMBARRIER:
        return "membarrier";
    case SG_BARRIER_MIGRATE:
        return "cpu migration";
    default:
        return "none";
    }
}
