/* SPDX-License-Identifier: MIT */
/*
 * barrier.h -- internal: the closer's half of the shutdown handshake, a
 * "heavy" barrier that makes every running thread of the process pass a
 * full memory fence, so producers can use plain stores on their hot path.
 *
 * The methods, strongest and cheapest first:
 *
 *   MEMBARRIER  membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED): the kernel
 *               interrupts every CPU running a thread of this process and
 *               makes it execute a full fence.  Needs the registration made
 *               at client creation.
 *   MIGRATE     (any CPU) run the calling thread on every CPU it may use, in
 *               turn (sched_setaffinity): to run there, the scheduler must
 *               switch out whatever thread ran there, a full fence, and
 *               once on that CPU we see its stores anyway.  Costs a few
 *               scheduling round trips per CPU; the caller's affinity is
 *               restored after.
 *
 * membarrier() can fail after a successful registration -- a seccomp
 * filter installed after the client was created answers EPERM -- and then
 * MIGRATE is used.  (The mprotect() TLB-shootdown trick some libraries use
 * is not: it relies on the kernel interrupting every CPU, which kernels
 * using broadcast TLB invalidation, such as arm64 and AMD's INVLPGB, do
 * not.)  When neither works (sched_setaffinity() denied as well) no method
 * is left, and the caller must not free what a producer may still touch;
 * see sg_queue_close().  Every call is off the hot path (shutdown,
 * fork-free teardown): system calls and a page mapping are fine here.
 */
#ifndef SG_BARRIER_H
#define SG_BARRIER_H

enum sg_barrier_method {
    SG_BARRIER_NONE = 0,
    SG_BARRIER_MEMBARRIER = 1 << 0,
    SG_BARRIER_MIGRATE = 1 << 1,
    SG_BARRIER_ALL = 3,
};

/* Registers the process for the expedited membarrier.  Returns 1 when the
 * fast path may rely on sg_barrier_heavy(), 0 when it must fence itself. */
int sg_barrier_register(void);

/* Makes every thread of the process pass a full fence, with the first
 * method in `allowed` that works.  Returns the method used, or
 * SG_BARRIER_NONE when none worked (`*first_errno` is then the errno of
 * membarrier(), as it is whenever membarrier was allowed and failed). */
int sg_barrier_heavy(int allowed, int *first_errno);

/* "membarrier", "cpu migration" or "none". */
const char *sg_barrier_name(int method);

#endif
