/* SPDX-License-Identifier: MIT */
/*
 * queue.c -- lane allocation, claiming and release (see queue.h for the
 * ownership and publication invariants).
 *
 * The registry.  Every live queue is on one list under the registry lock
 * (`reg_word`, below).  A
 * thread's exit destructor releases its owned lanes under that lock and
 * only for queues on the list; sg_queue_destroy() takes the queue off the
 * list under the same lock before freeing it.  So a lane is released
 * either before its queue leaves the list or not at all -- never into
 * freed memory.  The lock is taken on thread exit, at creation and at
 * destruction, and tried (never waited for: thread_list_add) on a
 * thread's first call: never on the hot path.
 */
#include "queue.h"

#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "barrier.h"
#include "segops.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* the per-call fields share the lane's first line (queue.h) */
_Static_assert(offsetof(struct sg_lane, stash) <= SG_CACHELINE - 3 * sizeof(void *),
               "a call's lane fields and the first stash entries fit one line");
/* the sender's reads at a take stay off the holder's lines */
_Static_assert(offsetof(struct sg_lane, filled_rbuf) >= offsetof(struct sg_lane, deq),
               "sg_lane_take() reads only the sender's part of the lane");

__thread struct sg_tls_lane sg_tls_lane __attribute__((tls_model("initial-exec")));

static _Atomic uint64_t queue_gen = 1;

static uint32_t pow2_at_least(uint32_t v)
{
    uint32_t p = 4; /* ck's minimum ring size */
    while (p < v)
        p <<= 1;
    return p;
}

/* The registry lock.  A word of our own, not a pthread mutex: a producer's
 * first call only tries it (thread_list_add) and its unlock is a store, so
 * neither side of a producer's use is a system call -- a contended mutex's
 * unlock is a futex wake when another thread sleeps on it.  Everyone else
 * (thread exit, a client's creation and shutdown, fork) takes it with
 * reg_lock(): pauses, then yields the CPU, then sleeps, so that a
 * preempted holder runs even when the waiter is a real-time thread on its
 * CPU.  Holds are short: list edits and scans of the live threads. */
static _Atomic int reg_word;

static int reg_trylock(void)
{
    int zero = 0;
    /* acquire: the previous holder's edits of the lists */
    return atomic_load_explicit(&reg_word, memory_order_relaxed) == 0 &&
           atomic_compare_exchange_strong_explicit(&reg_word, &zero, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

static void reg_lock(void)
{
    for (unsigned spins = 0; !reg_trylock(); spins++) {
        if (spins < 64) {
            ck_pr_stall();
        } else if (spins < 128) {
            sched_yield();
        } else {
            /* A real-time thread's yield never lets a lower-priority
             * holder run on its CPU; a sleep does. */
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
    }
}

static void reg_unlock(void)
{
    atomic_store_explicit(&reg_word, 0, memory_order_release);
}

static struct sg_queue *reg_head; /* live queues, under the registry lock */
static _Atomic uint32_t reg_deaths; /* queues destroyed so far */

/* The thread's owned lanes: the value of thread_key, in static TLS so that
 * nothing is allocated for it. */
static __thread struct sg_thread_lanes sg_thread __attribute__((tls_model("initial-exec")));
static pthread_key_t thread_key;
static int thread_key_ok;
/* Threads that have called into any client and not exited: the closers'
 * view of the producers' `in_call` (see queue.h).  Under the registry lock. */
static struct sg_thread_lanes *threads_head;

_Alignas(SG_CACHELINE) struct sg_modes sg_mode = {-1, 0}; /* queue.h */
_Atomic uint32_t sg_unlisted_calls;

/* Sets the key's value, so that the thread's exit destructor runs, and
 * puts the calling thread on the thread list.  Returns 0, or -1 when the
 * key cannot hold it or the registry lock stayed busy (this call is then
 * counted in sg_unlisted_calls; a later call tries again). */
static void thread_list_remove(struct sg_thread_lanes *t);

#define SG_LIST_TRIES 256 /* tries of the registry lock by a first call:
                             a few us of CPU pauses at most */

static int thread_list_add(struct sg_thread_lanes *t)
{
    if (!thread_key_ok)
        return -1;
    /* The key's value first: its exit destructor then runs whether or not
     * the thread gets listed below (thread_exit copes with either), so a
     * failure here needs no undoing under the lock. */
    if (!t->registered) {
        if (pthread_setspecific(thread_key, t) != 0)
            return -1;
        t->registered = 1;
    }
    /* listed from here: a closer waits for this thread's calls */
    t->fast = &sg_tls_lane;
    /* No system call and no sleep: never reg_lock(), which yields.  The
     * lock is held only briefly (another thread's first call or exit, a
     * client's creation, a closer's scan, a fork()), so try a bounded
     * number of times with a CPU pause between; still busy, the thread is
     * not listed this time -- the call stays counted in sg_unlisted_calls,
     * goes through a shared lane, and the next call tries again. */
    int locked = 0;
    for (int i = 0; i < SG_LIST_TRIES && !locked; i++) {
        locked = reg_trylock();
        if (!locked)
            ck_pr_stall();
    }
    if (!locked)
        return -1;
    t->prev = NULL;
    t->next = threads_head;
    if (threads_head)
        threads_head->prev = t;
    threads_head = t;
    t->listed = 1;
    reg_unlock();
    /* from the next call on, in_call alone tells closers (this call stays
     * counted in sg_unlisted_calls until it leaves) */
    sg_tls_lane.listed = 1;
    return 0;
}

/* Caller holds the registry lock. */
static void thread_list_remove(struct sg_thread_lanes *t)
{
    if (!t->listed)
        return;
    if (t->prev)
        t->prev->next = t->next;
    else
        threads_head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->next = t->prev = NULL;
    t->listed = 0;
}

/* Is a listed thread inside a call into q?  (The closer's scan.) */
static int thread_in_call(const struct sg_queue *q)
{
    int busy = 0;
    reg_lock();
    for (struct sg_thread_lanes *t = threads_head; t && !busy; t = t->next)
        busy = atomic_load_explicit(&t->fast->in_call, memory_order_seq_cst) == q;
    reg_unlock();
    return busy;
}

/* The live queue of generation gen, or NULL.  Caller holds the registry lock. */
static struct sg_queue *live(uint64_t gen)
{
    for (struct sg_queue *q = reg_head; q; q = q->reg_next)
        if (q->gen == gen)
            return q;
    return NULL;
}

static void lane_release(struct sg_queue *q, struct sg_lane *l)
{
    atomic_fetch_sub_explicit(&q->lanes_in_use, 1, memory_order_relaxed);
    /* release: the next owner's CAS acquires the lane's producer state */
    atomic_store_explicit(&l->owned, 0, memory_order_release);
    atomic_fetch_add_explicit(&q->epoch, 1, memory_order_release);
}

/* Thread-exit destructor of thread_key (runs on the exiting thread): gives
 * back the owned lanes of live queues, then leaves the thread able to
 * track only through shared lanes (a later destructor may still call). */
static void thread_exit(void *v)
{
    struct sg_thread_lanes *t = v;
    reg_lock();
    for (uint32_t i = 0; i < t->n; i++) {
        struct sg_queue *q = live(t->held[i].gen);
        if (q)
            lane_release(q, t->held[i].lane);
    }
    /* off the list before the thread's TLS goes away; a later call from
     * this thread is counted in sg_unlisted_calls instead */
    thread_list_remove(t);
    reg_unlock();
    t->n = 0;
    t->exiting = 1;
    memset(&sg_tls_lane, 0, sizeof(sg_tls_lane)); /* listed = 0: counted */
}

/* The key is made when the library is loaded, before the program creates
 * its own: keys past the 32nd make glibc allocate on a thread's first
 * pthread_setspecific(), and ours is set on a thread's first track. */
__attribute__((constructor)) static void thread_key_init(void)
{
    if (!thread_key_ok)
        thread_key_ok = pthread_key_create(&thread_key, thread_exit) == 0;
}

/* PREFETCHW: CPUID 0x80000001 ECX bit 8 (PRFCHW), or EDX bit 31 (3DNow!,
 * whose CPUs had it first).  Run once per process by the first
 * sg_queue_init(), under the registry lock: producers read the flag only
 * through a queue, so the queue's creation orders it before them (a
 * constructor would not: a program linked statically runs its own
 * constructors first, and one could start producers). */
static int prefetchw_detect(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (__get_cpuid(0x80000000u, &a, &b, &c, &d) && a >= 0x80000001u &&
        __get_cpuid(0x80000001u, &a, &b, &c, &d))
        return ((c >> 8) & 1u) || ((d >> 31) & 1u);
#endif
    return 0;
}

/* Unloaded (dlclose): no destructor may point into the unloaded code. */
__attribute__((destructor)) static void thread_key_fini(void)
{
    if (thread_key_ok)
        pthread_key_delete(thread_key);
    thread_key_ok = 0;
}

void sg_queue_atfork_prepare(void)
{
    reg_lock();
}

void sg_queue_atfork_parent(void)
{
    reg_unlock();
}

void sg_queue_atfork_child(void)
{
    atomic_store(&reg_word, 0);
    /* only this thread exists here, and it is not inside a call */
    atomic_store(&sg_unlisted_calls, 0);
    /* the parent's other threads do not exist here: a closer must not wait
     * for a call one of them was in at fork() */
    int self = sg_thread.listed;
    threads_head = NULL;
    sg_thread.listed = 0;
    if (self) {
        sg_thread.prev = sg_thread.next = NULL;
        threads_head = &sg_thread;
        sg_thread.listed = 1;
    }
}

/* Commits a lane's slot memory by writing every page once, so the hot path
 * never takes a page fault.  Done at creation for the shared lanes and the
 * first owned lane, by the sender one owned lane ahead of the claims
 * (sg_queue_prefault), and by a claiming thread whose lane is not committed
 * yet.  Always by the lane's holder, and only ever on a lane that has never
 * held an event, so the zeros overwrite nothing. */
static void lane_touch(struct sg_queue *q, struct sg_lane *l)
{
    if (atomic_load_explicit(&l->touched, memory_order_relaxed))
        return;
    size_t lane_bytes = (size_t)l->nslots * q->slot_size;
    char *base = l->slots;
    /* one byte per 4 KiB step, and the last byte: a lane that does not
     * start on a page boundary ends in a page the steps may miss */
    for (size_t off = 0; off < lane_bytes; off += 4096)
        ((volatile char *)base)[off] = 0;
    ((volatile char *)base)[lane_bytes - 1] = 0;
    atomic_store_explicit(&l->touched, 1, memory_order_relaxed);
}

int sg_queue_init(struct sg_queue *q, uint32_t nowned, uint32_t nshared,
                  uint32_t capacity, uint32_t slot_size)
{
    return sg_queue_init_tiers(q, nowned, nshared, capacity, nowned, capacity, slot_size);
}

/* Lane i's capacity: shared lanes and the first nbig owned lanes hold
 * q->capacity, the other owned lanes q->capacity_rest. */
static uint32_t lane_capacity(const struct sg_queue *q, uint32_t i)
{
    return i < q->nbig || i >= q->nowned ? q->capacity : q->capacity_rest;
}

int sg_queue_init_tiers(struct sg_queue *q, uint32_t nowned, uint32_t nshared,
                        uint32_t capacity, uint32_t nbig, uint32_t capacity_rest,
                        uint32_t slot_size)
{
    memset(q, 0, sizeof(*q));
    if (nowned + nshared == 0 || capacity == 0 || capacity > (1u << 24) ||
        capacity_rest == 0 || capacity_rest > (1u << 24) || slot_size < 64 || (slot_size & 7))
        return SEGOPS_EOPTION;
    q->nowned = nowned;
    q->nshared = nshared;
    q->nlanes = nowned + nshared;
    q->capacity = capacity;
    q->nbig = nbig < nowned ? nbig : nowned;
    q->capacity_rest = capacity_rest;
    q->slot_size = slot_size;
    q->gen = atomic_fetch_add(&queue_gen, 1);

    /* the geometry: slots and ring entries of every lane, back to back */
    size_t nslots = 0, nbufs = 0;
    for (uint32_t i = 0; i < q->nlanes; i++) {
        uint32_t cap = lane_capacity(q, i);
        nslots += (size_t)cap + 1;
        nbufs += 2 * (size_t)pow2_at_least(cap + 1) + SG_HOT_RING;
    }
    q->lanes = aligned_alloc(SG_CACHELINE,
                             ((sizeof(struct sg_lane) * q->nlanes + SG_CACHELINE - 1) /
                              SG_CACHELINE) * SG_CACHELINE);
    /* reserved now, committed lane by lane (see lane_touch) */
    q->slab_size = nslots * slot_size;
    q->slab = mmap(NULL, q->slab_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q->slab == MAP_FAILED)
        q->slab = NULL;
    q->bufs = calloc(nbufs, sizeof(struct ck_ring_buffer));
    if (!q->lanes || !q->slab || !q->bufs) {
        sg_queue_destroy(q);
        return SEGOPS_ENOMEM;
    }
    memset(q->lanes, 0, sizeof(struct sg_lane) * q->nlanes);

    char *slots = q->slab;
    struct ck_ring_buffer *buf = q->bufs;
    for (uint32_t i = 0; i < q->nlanes; i++) {
        struct sg_lane *l = &q->lanes[i];
        uint32_t cap = lane_capacity(q, i), ring = pow2_at_least(cap + 1);
        l->q = q;
        l->slots = slots;
        l->nslots = cap + 1;
        l->filled_buf = buf;
        l->filled_rbuf = buf;
        l->free_buf = l->filled_buf + ring;
        l->hot_buf = l->free_buf + ring;
        ck_ring_init(&l->filled, ring);
        l->ftail = 0; /* ck_ring_init's p_tail */
        l->fmask = ring - 1;
        ck_ring_init(&l->free, ring);
        ck_ring_init(&l->hot, SG_HOT_RING);
        l->cur = slots;
        for (uint32_t k = 1; k <= cap; k++) {
            void *s = slots + (size_t)k * slot_size;
            SG_TSAN_RELEASE(s);
            ck_ring_enqueue_spsc(&l->free, l->free_buf, s);
        }
        slots += (size_t)l->nslots * slot_size;
        buf += 2 * (size_t)ring + SG_HOT_RING;
    }
    for (uint32_t i = q->nowned; i < q->nlanes; i++)
        lane_touch(q, &q->lanes[i]); /* any thread may take a shared lane */
    if (q->nowned)
        lane_touch(q, &q->lanes[0]); /* the first thread's; the sender keeps
                                        one more ahead (sg_queue_prefault) */
    reg_lock();
    if (sg_mode.asym < 0) {
        /* Once per process: producers read the mode before the queue. */
        int asym = 0;
#ifndef SG_TSAN /* TSan does not model membarrier(): keep seq_cst there */
        /* SEGOPS_MEMBARRIER=0 forces the fallback (tests run both) */
        const char *mb = getenv("SEGOPS_MEMBARRIER");
        if (!(mb && mb[0] == '0'))
            asym = sg_barrier_register();
#endif
        sg_mode.prefetchw = prefetchw_detect();
        sg_mode.asym = asym;
    }
    q->asym = sg_mode.asym;
    q->barrier_allowed = SG_BARRIER_ALL;
    if (!thread_key_ok)
        thread_key_init(); /* the constructor did not run (cannot fail twice) */
    q->reg_next = reg_head;
    reg_head = q;
    q->registered = 1;
    reg_unlock();
    return 0;
}

void sg_queue_unregister(struct sg_queue *q)
{
    if (q->registered) {
        /* after this no thread-exit destructor touches the queue */
        reg_lock();
        for (struct sg_queue **pp = &reg_head; *pp; pp = &(*pp)->reg_next) {
            if (*pp == q) {
                *pp = q->reg_next;
                break;
            }
        }
        reg_unlock();
        atomic_fetch_add_explicit(&reg_deaths, 1, memory_order_relaxed);
        q->registered = 0;
    }
}

void sg_queue_destroy(struct sg_queue *q)
{
    sg_queue_unregister(q);
    /* this thread's bindings must not survive the queue (other threads'
     * entries for it are dropped when they next need room) */
    if (sg_tls_lane.q == q) {
        sg_tls_lane.q = NULL;
        sg_tls_lane.gen = 0;
        sg_tls_lane.lane = NULL;
    }
    struct sg_thread_lanes *t = &sg_thread;
    for (uint32_t i = 0; i < t->n;) {
        if (t->held[i].gen == q->gen)
            t->held[i] = t->held[--t->n];
        else
            i++;
    }
    free(q->lanes);
    if (q->slab)
        munmap(q->slab, q->slab_size);
    free(q->bufs);
    memset(q, 0, sizeof(*q));
}

static struct sg_lane *claim_owned(struct sg_queue *q)
{
    for (uint32_t i = 0; i < q->nowned; i++) {
        struct sg_lane *l = &q->lanes[i];
        uint32_t zero = 0;
        if (atomic_load_explicit(&l->owned, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong_explicit(&l->owned, &zero, 1,
                                                    memory_order_acquire,
                                                    memory_order_relaxed))
            return l;
    }
    return NULL;
}

/* Threads without an owned lane remember the release epoch they last tried
 * at, so they rescan the owned lanes only after one was given back. */
static __thread struct {
    uint64_t gen;
    uint32_t epoch;
    uint32_t tried;
} sg_tls_miss __attribute__((tls_model("initial-exec")));

/* Drops the thread's entries for queues no longer live (their clients
 * shut down), making room for new ones.  Looks only when a queue was
 * destroyed since it last looked: a thread holding lanes of 8 live clients
 * and calling a ninth takes no lock per call. */
static void forget_dead(struct sg_thread_lanes *t)
{
    uint32_t deaths = atomic_load_explicit(&reg_deaths, memory_order_relaxed);
    if (deaths == t->deaths_seen)
        return;
    /* a producer call never waits for the lock (see thread_list_add):
     * busy, this call uses a shared lane and a later one looks again */
    if (!reg_trylock())
        return;
    t->deaths_seen = deaths;
    for (uint32_t i = 0; i < t->n;) {
        if (!live(t->held[i].gen))
            t->held[i] = t->held[--t->n];
        else
            i++;
    }
    reg_unlock();
}

static struct sg_lane *enter_slow(struct sg_queue *q);

struct sg_lane *sg_lane_enter_slow(struct sg_queue *q)
{
    struct sg_thread_lanes *t = &sg_thread;
    /* a thread's first call: listed now (this call is counted in
     * sg_unlisted_calls meanwhile, see sg_call_enter) */
    if (!t->listed && !t->exiting)
        (void)thread_list_add(t);
    return enter_slow(q);
}

static struct sg_lane *enter_slow(struct sg_queue *q)
{
    struct sg_thread_lanes *t = &sg_thread;
    struct sg_lane *l = NULL;
    for (uint32_t i = 0; i < t->n && !l; i++)
        if (t->held[i].gen == q->gen)
            l = t->held[i].lane;
    if (!l && t->n == SG_HELD_MAX)
        forget_dead(t);
    /* Only a listed thread claims: nothing would give the lane back at
     * the exit of one that is exiting (its key destructor ran) or whose
     * key could not be set.  A thread unlisted because thread_list_add
     * found the registry lock busy takes a shared lane and records no
     * miss: its next call tries the lock, and the owned lanes, again. */
    if (!l && !t->exiting && t->listed && t->n < SG_HELD_MAX) {
        uint32_t ep = atomic_load_explicit(&q->epoch, memory_order_acquire);
        if (!(sg_tls_miss.tried && sg_tls_miss.gen == q->gen && sg_tls_miss.epoch == ep)) {
            l = claim_owned(q);
            if (l) {
                lane_touch(q, l);
                /* in the sender's span before its first publication */
                uint32_t idx = (uint32_t)(l - q->lanes) + 1;
                uint32_t sc = atomic_load_explicit(&q->scan, memory_order_relaxed);
                while (sc < idx && !atomic_compare_exchange_weak_explicit(
                                       &q->scan, &sc, idx, memory_order_release,
                                       memory_order_relaxed))
                    ;
                t->held[t->n].gen = q->gen;
                t->held[t->n].lane = l;
                t->n++;
                atomic_fetch_add_explicit(&q->lanes_in_use, 1, memory_order_relaxed);
                atomic_fetch_add_explicit(&q->claims, 1, memory_order_relaxed);
            } else {
                sg_tls_miss.gen = q->gen;
                sg_tls_miss.epoch = ep;
                sg_tls_miss.tried = 1;
            }
        }
    }
    if (l) {
        /* one client per thread is cached; others go through the key */
        sg_tls_lane.q = q;
        sg_tls_lane.gen = q->gen;
        sg_tls_lane.lane = l;
        sg_lane_mark_active(q, l);
        return l;
    }
    /* shared lanes: try each once, starting at a per-thread position */
    if (q->nshared == 0)
        return NULL;
    uint32_t start = (uint32_t)(((uintptr_t)&sg_tls_miss >> 6) % q->nshared);
    for (uint32_t k = 0; k < q->nshared; k++) {
        struct sg_lane *s = &q->lanes[q->nowned + (start + k) % q->nshared];
        uint32_t zero = 0;
        if (atomic_load_explicit(&s->active, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong_explicit(&s->active, &zero, 1,
                                                    memory_order_seq_cst,
                                                    memory_order_relaxed))
            return s;
    }
    return NULL;
}

int sg_queue_prefault(struct sg_queue *q)
{
    struct sg_lane *next = NULL;
    for (uint32_t i = 0; i < q->nowned; i++) {
        struct sg_lane *l = &q->lanes[i];
        if (atomic_load_explicit(&l->touched, memory_order_relaxed)) {
            if (atomic_load_explicit(&l->owned, memory_order_relaxed) == 0)
                return 0; /* a committed lane is free: one ahead already */
        } else if (!next) {
            next = l;
        }
    }
    if (!next)
        return 0; /* every owned lane is committed */
    uint32_t zero = 0;
    if (!atomic_compare_exchange_strong_explicit(&next->owned, &zero, 1, memory_order_acquire,
                                                 memory_order_relaxed))
        return 0; /* a thread took it meanwhile and commits it itself */
    /* Held like a claimer holds it: no producer can be writing its slots,
     * and it never held an event, so the zeros overwrite nothing. */
    lane_touch(q, next);
    atomic_store_explicit(&next->owned, 0, memory_order_release);
    atomic_fetch_add_explicit(&q->epoch, 1, memory_order_release);
    return 1;
}

uint64_t sg_queue_depth(struct sg_queue *q)
{
    uint64_t d = 0;
    uint32_t owned = sg_queue_scan_owned(q), n = owned + q->nshared;
    for (uint32_t k = 0; k < n; k++)
        d += ck_ring_size(&sg_queue_span_lane(q, owned, k)->filled);
    return d;
}

int sg_queue_close(struct sg_queue *q)
{
    uint32_t expected = 0;
    /* 1 = shutting down; a forked child's 2 stays */
    atomic_compare_exchange_strong(&q->closing, &expected, 1);
    int used = SG_BARRIER_NONE;
    if (q->asym) {
        /* Producers used plain stores: make every one of them pass a full
         * fence now.  membarrier() can be refused after registration (a
         * seccomp filter installed later); then CPU migration serves. */
        int err = 0;
        used = sg_barrier_heavy(q->barrier_allowed, &err);
        if (err && !q->barrier_errno)
            q->barrier_errno = err;
        if (used == SG_BARRIER_NONE)
            q->unproven = 1;
        q->barrier_used = used;
    }
    /* Every call is covered from its first instruction to its last by
     * in_call (listed threads) or sg_unlisted_calls (the others), and a
     * lane's active covers its publication: repeat until one pass sees
     * none busy.  Producers never block inside a call, so this is short. */
    for (;;) {
        int busy = atomic_load_explicit(&sg_unlisted_calls, memory_order_seq_cst) != 0;
        for (uint32_t i = 0; i < q->nlanes && !busy; i++)
            busy = atomic_load_explicit(&q->lanes[i].active, memory_order_seq_cst) != 0;
        if (!busy)
            busy = thread_in_call(q);
        if (!busy)
            break;
        sched_yield();
    }
    return used;
}
