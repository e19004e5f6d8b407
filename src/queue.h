/* SPDX-License-Identifier: MIT */
/*
 * queue.h -- internal: slots and per-thread lanes, the only code producers
 * run besides validation.
 *
 * Shape.  A lane is a pair of ConcurrencyKit SPSC rings of slot pointers
 * plus the slots themselves:
 *
 *     holder --filled--> sender        (events, in publication order)
 *     holder <--free---- sender        (empty slots coming back)
 *
 * The "holder" is the single thread allowed to act as the rings' producer
 * side of `filled` and consumer side of `free`.  Owned lanes (the first
 * nowned) are held by one thread from its first track until it exits (a
 * pthread key destructor gives the lane back; see "Thread exit" below).  Shared lanes (the last
 * nshared) serve threads that found no owned lane free: such a thread holds
 * a shared lane only for one call, taken with a compare-and-swap on
 * `active` and never waited for -- if every shared lane is busy the event
 * is dropped and counted (SEGOPS_ENOLANE).  So no producer ever waits for
 * another producer: ck's SPSC operations are wait-free and the only shared
 * write on the path is a try-lock that never spins.
 *
 * Warm slots.  Empty slots come back on two rings: `hot`, a small one the
 * sender fills first, and `free` for the rest; the holder takes from `hot`
 * first.  With light traffic the same few dozen slots cycle, so track()
 * writes to memory that is still in cache and TLB instead of to the slot
 * the lane used `capacity` events ago.  Under load `hot` runs dry and the
 * lane uses its whole capacity; full still means both rings are empty.
 * A warm slot is warm in the cache of the core that ran the sender: it
 * read the slot last.  When the holder runs on another core, each of its
 * lines has to move over, and the holder must own it before its stores
 * complete; so a refill asks for every slot it takes, for writing, at once
 * (sg_lane_publish): the transfers overlap, and a slot the holder took
 * before a pause is its own when the next burst writes it.
 *
 * Slot ownership.  Each lane has capacity+1 slots.  The holder always owns
 * `cur` and the slots in its `stash` (taken from the rings SG_STASH at a
 * time, so that most calls read none of the sender's cache lines), and
 * encodes every event into `cur`; only after
 * the event validated does it take a replacement from `free` (none there:
 * the lane is full, SEGOPS_EFULL) and publish `cur` on `filled`.  A slot is
 * therefore owned by exactly one party at any time: the holder (cur), the
 * filled ring, the sender (while rendering it), or the hot/free rings.  The
 * rings' release/acquire ordering hands the slot's bytes over; under TSan
 * the same handoff is annotated explicitly (TSan cannot see ck's fences).
 *
 * Memory ordering of the handoffs, for any CPU (x86 is TSO and needs less):
 *   - holder -> sender (an event): the holder writes the slot, then its
 *     push (sg_filled_push: ck's enqueue without the full check) issues a
 *     store fence before storing the ring's tail; the
 *     sender loads the tail, then ck issues a load fence before reading the
 *     entry, and reads the slot through that pointer.  Stores before the
 *     tail store are visible to loads after the tail load.
 *   - sender -> holder (a slot back): the sender's loads of the slot, then
 *     a release fence (sg_lane_recycle), then ck's tail store; the holder
 *     loads the tail and writes the slot only through the pointer it read,
 *     a store that depends on that load.  No write can land before the
 *     sender's reads are done.
 *   - ring indices (ck 0.7.1, aarch64): the consumer's dequeue loads the
 *     entry, then issues only `dmb ishst` before storing its head, which
 *     does not order that load before the store.  Still safe on `filled`,
 *     which the sender consumes with ck's dequeue: the holder does not read
 *     the head at all, the slot count orders it instead (sg_filled_push).
 *     The holder consumes `free` and `hot` with sg_ring_take, which issues
 *     a release fence (`dmb ish`) between its entry loads and its head
 *     store, so the sender's enqueue cannot overwrite an entry not yet read.
 *   - counters: `enq` is stored with release before the publication;
 *     readers (stats, flush snapshots) load it with acquire, so a reader
 *     never sees an event resolved that `enq` does not count.
 *   - lane ownership: `owned` is taken with an acquiring CAS and given back
 *     with a releasing store, so a new holder sees the old holder's
 *     producer state (stash, cur).
 *
 * Shutdown handshake (Dekker).  A producer's first act in a call is to
 * store the queue it calls into its thread's `in_call` (static TLS, its own
 * cache line), before it reads any of the queue's memory; it then sets
 * lane->active = 1 and reads q->closing.  The closer sets closing = 1,
 * makes every thread pass a full fence (barrier.h: membarrier(), or CPU
 * migration where membarrier is refused; where neither is available at
 * creation both sides use seq_cst accesses instead), then waits until no
 * registered thread's `in_call` is this queue, no lane is active, and
 * nobody is in the claim path.  Either the producer sees closing and
 * refuses the event, or the closer sees the producer inside its call and
 * waits for it to leave -- an accepted event can never be published after
 * the sender's final drain, and the second close, just before the queue is
 * freed, waits for every call that had begun, including one still reading
 * the queue's generation or claiming a lane.  A thread is registered (on
 * the thread list the closer scans) during its first call to any client
 * until its thread-exit destructor runs; calls made while it is not listed
 * (that first call, calls from later exit destructors) are counted in the
 * process-wide sg_unlisted_calls from their first instruction instead.
 * The closer repeats its checks until one pass finds no call in progress:
 * a call that starts after that pass started after shutdown returned.
 *
 * Thread exit.  One process-wide pthread key, created when the library is
 * loaded (so its index is low and pthread_setspecific never allocates,
 * see queue.c), holds a pointer to the thread's own `sg_thread_lanes`
 * (static TLS).  Its destructor gives back every owned lane the thread
 * holds -- under the registry lock, and only for queues still in the
 * registry, so a thread exiting while its client shuts down never touches
 * freed memory -- then clears the thread's bindings and marks it exiting:
 * a track from a later thread-exit destructor takes a shared lane, never
 * the lane just given back (another thread may hold it by then).
 */
#ifndef SG_QUEUE_H
#define SG_QUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <assert.h>
#include <ck_ring.h>

#if defined(__SANITIZE_THREAD__)
#define SG_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SG_TSAN 1
#endif
#endif
#ifdef SG_TSAN
#include <sanitizer/tsan_interface.h>
#define SG_TSAN_RELEASE(p) __tsan_release(p)
#define SG_TSAN_ACQUIRE(p) __tsan_acquire(p)
#else
#define SG_TSAN_RELEASE(p) ((void)(p))
#define SG_TSAN_ACQUIRE(p) ((void)(p))
#endif

#define SG_CACHELINE 64
#define SG_HOT_RING 32 /* entries of a lane's hot ring (31 usable) */

struct sg_queue;

#define SG_STASH 16 /* free slots a holder takes from its rings at once */

struct sg_lane {
    /* ---- producer cache lines: written by the holder, read by the sender
     * only for stats, flush snapshots and at shutdown ---- */
    /* first line (offsets 0-39): everything a call that needs no refill
     * reads or writes in the lane, besides the stash entry it pops */
    _Atomic uint32_t active;    /* holder inside a call; shared lanes: lock */
    uint32_t nstash;            /* holder-private: free slots in stash */
    void *cur;                  /* the holder's slot (see above) */
    _Atomic uint64_t enq;       /* events accepted (counted just before
                                   their publication); holder stores */
    uint32_t ftail;             /* holder-private: filled's p_tail, as the
                                   holder last stored it (sg_filled_push) */
    uint32_t fmask;             /* filled's mask (read-only after init) */
    struct ck_ring_buffer *filled_buf; /* read-only after init */
    void *stash[SG_STASH];      /* holder-private free slots (offsets 40-167) */
    /* rarely touched on a call */
    _Atomic uint32_t owned;     /* owned lanes: a live thread holds it */
    _Atomic uint32_t touched;   /* slot pages committed; written only by
                                   whoever holds `owned` (a claimer, or the
                                   sender committing ahead, see
                                   sg_queue_prefault) */
    _Atomic uint64_t rejected;  /* validation failures on this lane */
    _Atomic uint64_t dropped;   /* SEGOPS_EFULL on this lane */
    struct sg_queue *q;
    /* read-only after init */
    struct ck_ring_buffer *free_buf;
    struct ck_ring_buffer *hot_buf;
    char *slots;                /* this lane's nslots slots in the slab */
    uint32_t nslots;            /* capacity + 1 (lanes may differ: see
                                   sg_queue_init_tiers) */
    /* ---- sender ---- */
    _Alignas(SG_CACHELINE) _Atomic uint64_t deq; /* events taken */
    /* filled_buf again, for sg_lane_take(): read from the first line, it
     * pulled the holder's busiest line to the sender's core at every
     * take (read-only after init) */
    struct ck_ring_buffer *filled_rbuf;
    /* each ring on its own lines: ck separates c_head from p_tail, and
     * the alignment keeps one ring's tail off the next ring's head */
    _Alignas(SG_CACHELINE) struct ck_ring filled;
    _Alignas(SG_CACHELINE) struct ck_ring free;
    _Alignas(SG_CACHELINE) struct ck_ring hot;
    _Alignas(SG_CACHELINE) char end[1];
};

struct sg_queue {
    uint32_t nowned, nshared, nlanes;
    uint32_t capacity;          /* events per lane: shared lanes and the
                                   first nbig owned lanes */
    uint32_t nbig;              /* owned lanes [0, nbig) hold `capacity` */
    uint32_t capacity_rest;     /* events per owned lane from nbig on */
    uint32_t slot_size;
    uint64_t gen;               /* unique per queue in the process */
    int asym;                   /* membarrier() serves the shutdown
                                   handshake: producers need no fence
                                   (== sg_mode.asym) */
    int barrier_allowed;        /* barrier.h methods close may use (all;
                                   tests narrow it) */
    int barrier_used;           /* last sg_queue_close(): barrier.h method */
    int barrier_errno;          /* membarrier()'s errno when it failed */
    int unproven;               /* a close found no working barrier */
    struct sg_lane *lanes;      /* nlanes, cache-line aligned */
    char *slab;                 /* all slots (mmap) */
    size_t slab_size;
    struct ck_ring_buffer *bufs;
    int registered;             /* in the live-queue registry (queue.c) */
    struct sg_queue *reg_next;  /* registry list, under its lock */
    _Alignas(SG_CACHELINE) _Atomic uint32_t closing;
    _Atomic uint32_t epoch;     /* bumped when an owned lane is released */
    _Atomic uint32_t lanes_in_use;
    _Atomic uint32_t claims;    /* owned-lane claims so far (sender: time
                                   to commit the next lane) */
    _Atomic uint32_t scan;      /* owned lanes [0, scan) may have held an
                                   event: 1 + the highest index ever
                                   claimed, raised (release) by the claimer
                                   before its first publication, never
                                   lowered.  Owned lanes past it are empty,
                                   so the sender skips them (sg_queue_span):
                                   an idle, never-claimed lane costs no
                                   sender cache-line reads per turn */
    _Alignas(SG_CACHELINE) _Atomic uint64_t dropped_no_lane;
};

/* Reserves every lane's slots (mmap; committed lane by lane, see
 * sg_queue_prefault) and builds the rings.  Every lane holds `capacity`
 * events.  Returns 0 or SEGOPS_ENOMEM / SEGOPS_EOPTION. */
int sg_queue_init(struct sg_queue *q, uint32_t nowned, uint32_t nshared,
                  uint32_t capacity, uint32_t slot_size);
/* The same with two lane sizes: the shared lanes and owned lanes
 * [0, nbig) hold `capacity` events, owned lanes from nbig on hold
 * `capacity_rest`.  Threads claim the lowest free owned lane, so the first
 * nbig concurrent producer threads get the large lanes (the client's
 * default geometry: README "Options"). */
int sg_queue_init_tiers(struct sg_queue *q, uint32_t nowned, uint32_t nshared,
                        uint32_t capacity, uint32_t nbig, uint32_t capacity_rest,
                        uint32_t slot_size);
void sg_queue_destroy(struct sg_queue *q);
/* Takes the queue off the live-queue registry (destroy does it first):
 * thread-exit destructors stop giving its lanes back. */
void sg_queue_unregister(struct sg_queue *q);

/* ---- producer side ---- */

/* The calling thread's cached lane binding.  initial-exec: no allocation on
 * a thread's first access, even when the library is dlopen()ed. */
struct sg_tls_lane {
    /* the queue this thread is inside a call of, or NULL: written only by
     * the thread, read by closers (see "Shutdown handshake") */
    _Atomic(const struct sg_queue *) in_call;
    uint8_t listed;             /* on the thread list: closers see in_call */
    uint8_t counted;            /* this call is counted in sg_unlisted_calls */
    const struct sg_queue *q;
    uint64_t gen;
    struct sg_lane *lane;
};
extern __thread struct sg_tls_lane sg_tls_lane
    __attribute__((tls_model("initial-exec")));

struct sg_lane *sg_lane_enter_slow(struct sg_queue *q);

/* Owned lanes a thread holds, one per client, in static TLS: the value of
 * the process-wide key (see "Thread exit"). */
#define SG_HELD_MAX 8 /* clients a thread can hold owned lanes of at once;
                         beyond, it uses their shared lanes */
struct sg_thread_lanes {
    /* the thread list (queue.c), under its lock: a closer scans `fast` */
    struct sg_thread_lanes *next, *prev;
    struct sg_tls_lane *fast;   /* this thread's sg_tls_lane */
    int listed;                 /* on the thread list */
    uint32_t n;
    int registered;             /* the key's value is set for this thread */
    int exiting;                /* the key's destructor ran: shared lanes only */
    uint32_t deaths_seen;       /* registry deaths when it last looked */
    struct {
        uint64_t gen;
        struct sg_lane *lane;
    } held[SG_HELD_MAX];
};

/* fork(): the registry lock is taken before fork and released (parent) or
 * re-made (child) after, like the client's own locks. */
void sg_queue_atfork_prepare(void);
void sg_queue_atfork_parent(void);
void sg_queue_atfork_child(void);

/* Process-wide modes, fixed once by the first sg_queue_init() under the
 * registry lock, read by every call: together on one line of their own
 * (two globals on two lines cost a call one line more, B8l).
 *   asym       the handshake mode: 1 when membarrier() is registered
 *              (producers use plain stores), else 0; -1 before the first
 *              queue.  A call reads it before anything of the queue.
 *   prefetchw  x86: the CPU has PREFETCHW (CPUID PRFCHW or 3DNow!); 0
 *              where unknown, and elsewhere (sg_prefetch_w). */
struct sg_modes {
    int asym;
    int prefetchw;
};
extern struct sg_modes sg_mode;

/* Calls made by threads not on the thread list (a thread's first call,
 * before it is listed; calls from thread-exit destructors after the
 * library's): counted from their first instruction to their last, so a
 * closer waits for them too.  Process-wide: such calls are rare. */
extern _Atomic uint32_t sg_unlisted_calls;

/* Starts a call into q: the first store of every producer call, made
 * before any load of q's memory, so the closer can wait for a call that is
 * still checking its binding (see "Shutdown handshake").  A thread not
 * listed yet is counted instead (a seq_cst RMW: Dekker with the closer). */
static inline void sg_call_enter(const struct sg_queue *q)
{
    if (__builtin_expect(!sg_tls_lane.listed, 0)) {
        atomic_fetch_add_explicit(&sg_unlisted_calls, 1, memory_order_seq_cst);
        sg_tls_lane.counted = 1;
    }
    if (__builtin_expect(sg_mode.asym, 1)) {
        atomic_store_explicit(&sg_tls_lane.in_call, q, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst);
    } else {
        atomic_store_explicit(&sg_tls_lane.in_call, q, memory_order_seq_cst);
    }
}

/* Ends the call: every access to the queue's memory is done (release). */
static inline void sg_call_leave(void)
{
    atomic_store_explicit(&sg_tls_lane.in_call, NULL, memory_order_release);
    if (__builtin_expect(sg_tls_lane.counted, 0)) {
        sg_tls_lane.counted = 0;
        atomic_fetch_sub_explicit(&sg_unlisted_calls, 1, memory_order_release);
    }
}

/* The producer's half of the shutdown handshake: active = 1, ordered
 * before the caller's load of q->closing.  With membarrier() (q->asym) a
 * compiler barrier is enough here -- the closer's membarrier() makes every
 * running thread pass a full fence -- so the hot path has no locked
 * instruction (which would also wait for the sender's reads of our lines).
 * Without it, a sequentially consistent store. */
static inline void sg_lane_mark_active(const struct sg_queue *q, struct sg_lane *l)
{
    if (__builtin_expect(q->asym, 1)) {
        atomic_store_explicit(&l->active, 1, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst);
    } else {
        atomic_store_explicit(&l->active, 1, memory_order_seq_cst);
    }
}

/* Returns a lane the caller now holds with active = 1, or NULL when no lane
 * is free (the caller counts the drop).  The caller MUST then read
 * q->closing before publishing, and MUST call sg_lane_leave(). */
static inline struct sg_lane *sg_lane_enter(struct sg_queue *q)
{
    struct sg_tls_lane *t = &sg_tls_lane;
    if (__builtin_expect(t->q == q && t->gen == q->gen && t->lane != NULL, 1)) {
        sg_lane_mark_active(q, t->lane);
        return t->lane;
    }
    return sg_lane_enter_slow(q);
}

static inline void sg_lane_leave(struct sg_lane *l)
{
    atomic_store_explicit(&l->active, 0, memory_order_release);
}

/* A prefetch for writing: the line comes in owned, and other cores' copies
 * are invalidated now, not at the first store.  On x86 only PREFETCHW does
 * that; GCC and clang emit it for __builtin_prefetch(p, 1, ...) only where
 * the target has it (-mprfchw, most -march=), and PREFETCHT0 otherwise --
 * a read prefetch, after which the store still waits for the other core
 * to give the line up.  aarch64: PRFM PSTL1KEEP. */
static inline void sg_prefetch_w(const void *p)
{
#if (defined(__x86_64__) || defined(__i386__)) && !defined(__PRFCHW__)
    if (__builtin_expect(sg_mode.prefetchw, 1)) {
        __asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
        return;
    }
#endif
    __builtin_prefetch(p, 1, 3);
}

/* Warms a slot's first two lines for writing (see sg_lane_publish). */
static inline void sg_prefetch_slot(const void *slot)
{
    sg_prefetch_w(slot);
    sg_prefetch_w((const char *)slot + SG_CACHELINE);
}

/* The ring operations below touch ck's ring entries and indices only
 * through these two, so that TSan (which cannot see ck's fences) is told
 * to ignore exactly these accesses, as it ignores ck's own (tests/
 * tsan.supp), and still sees every access to the holder's own fields. */
static inline void *sg_ring_entry(const struct ck_ring_buffer *buf, unsigned int i)
{
    return buf[i].value;
}

static inline void sg_ring_put(struct ck_ring *r, struct ck_ring_buffer *buf, unsigned int t,
                               unsigned int mask, void *v)
{
    buf[t & mask].value = v;
    ck_pr_fence_store();
    ck_pr_store_uint(&r->p_tail, t + 1);
}

/* Takes up to max entries from an SPSC ring the caller consumes (the
 * holder: `hot` and `free`) into out[], oldest first; returns how many.
 * ck's dequeue one entry at a time, with one load of the producer's tail
 * and one store of the head for the lot: a refill reads the sender's
 * lines once, not once per slot.  Orders as ck's dequeue does (tail load,
 * load fence, entries), then a release fence before the head store, so
 * the entry loads are done before the producer may reuse their places
 * (stronger than ck's store fence; see "ring indices" above). */
static inline uint32_t sg_ring_take(struct ck_ring *r, const struct ck_ring_buffer *buf,
                                    void **out, uint32_t max)
{
    unsigned int c = r->c_head; /* written only by the caller */
    unsigned int n = ck_pr_load_uint(&r->p_tail) - c;
    if (n == 0)
        return 0;
    if (n > max)
        n = max;
    ck_pr_fence_load();
    for (unsigned int i = 0; i < n; i++)
        out[i] = sg_ring_entry(buf, (c + i) & r->mask);
    ck_pr_fence_release();
    ck_pr_store_uint(&r->c_head, c + n);
    return n;
}

/* Appends a slot to the lane's `filled` ring: ck's SPSC enqueue without
 * its full check, which loads the consumer's head -- a line the sender
 * writes on every take, so on a busy lane that load was a transfer from
 * the sender's core on nearly every call.  The check is not needed:
 *
 * Invariant: `filled` never holds more than `capacity` (= nslots - 1)
 * entries, fewer than its ring size (a power of two >= nslots): every
 * entry is a distinct slot, and the holder owns `cur` besides.
 *
 * Nor can the entry written here still be unread by the sender: the
 * holder has published ftail slots and owns cur, so it has taken at least
 * ftail - capacity slots back from the sender, each recycled after the
 * sender's take of one of the positions [0, ftail); the latest of those is
 * >= ftail - nslots, and the sender takes positions in order, so its load
 * of this entry's previous lap (position ftail - ring <= ftail - nslots)
 * came before a release fence (sg_lane_recycle) that the holder's
 * acquire of a slot (ck's dequeue: load fence) has seen.
 *
 * Stores as ck's enqueue does (entry, store fence, tail), so ck's dequeue
 * on the sender's side is unchanged.  ftail is the holder's copy of
 * p_tail: nobody else writes p_tail (shared lanes: the holder has the
 * lock). */
static inline void sg_filled_push(struct sg_lane *l, void *slot)
{
    uint32_t t = l->ftail;
    /* the invariant, checked where assertions are on (the Debug builds:
     * CI's ASan stage, the aarch64 stress run): one load of the sender's
     * line that release builds do not pay */
    assert(((t + 1) & l->fmask) != (ck_pr_load_uint(&l->filled.c_head) & l->fmask));
    sg_ring_put(&l->filled, l->filled_buf, t, l->fmask, slot);
    l->ftail = t + 1;
}

/* Publishes the holder's slot if a free replacement exists.  Returns 0, or
 * -1 when the lane is full (cur stays with the holder, unpublished). */
static inline int sg_lane_publish(struct sg_lane *l)
{
    if (__builtin_expect(l->nstash == 0, 0)) {
        /* refill: one pass over the sender's lines for SG_STASH events,
         * warm slots first */
        uint32_t n = sg_ring_take(&l->hot, l->hot_buf, l->stash, SG_STASH);
        if (n < SG_STASH)
            n += sg_ring_take(&l->free, l->free_buf, l->stash + n, SG_STASH - n);
        for (uint32_t i = 0; i < n; i++)
            SG_TSAN_ACQUIRE(l->stash[i]);
        l->nstash = n;
        if (n == 0)
            return -1;
        /* every slot taken, for writing, in the order they will be used
         * (the stash pops from its end): a slot usually last sat in the
         * sender's cache (it rendered it) or cold in the slab.  Asked for
         * one call ahead only, each transfer from the sender's core took
         * longer than a call here (2 vCPUs whose cache-line round trip is
         * 300-400 ns at times: every call paid one, p50 120-330 ns instead
         * of 70).  Asked for together they overlap, and the slots of the
         * next burst are the holder's before it starts. */
        for (uint32_t i = n; i-- > 0;)
            sg_prefetch_slot(l->stash[i]);
    }
    /* And each slot again one call before it becomes `cur`, in case its
     * lines left the cache since the refill (a long pause, a migration):
     * the first store to it would otherwise wait for the line; asking a
     * call ahead overlaps that transfer with the caller's own work. */
    void *next = l->stash[--l->nstash];
    if (l->nstash)
        sg_prefetch_slot(l->stash[l->nstash - 1]);
    /* Count first, publish second: the sender can never resolve an event
     * that `enq` does not yet include, so delivered <= accepted in every
     * snapshot.  Single writer: a plain increment. */
    atomic_store_explicit(&l->enq,
        atomic_load_explicit(&l->enq, memory_order_relaxed) + 1,
        memory_order_release);
    SG_TSAN_RELEASE(l->cur);
    sg_filled_push(l, l->cur);
    l->cur = next;
    return 0;
}

/* Single-writer counter bump (holder only). */
static inline void sg_count(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* ---- sender side ---- */

/* Takes the oldest published slot of the lane, or NULL. */
static inline void *sg_lane_take(struct sg_lane *l)
{
    void *s;
    if (!ck_ring_dequeue_spsc(&l->filled, l->filled_rbuf, &s))
        return NULL;
    SG_TSAN_ACQUIRE(s);
    atomic_store_explicit(&l->deq,
        atomic_load_explicit(&l->deq, memory_order_relaxed) + 1,
        memory_order_relaxed);
    return s;
}

/* Returns a slot the sender has finished with to its lane: to `hot` while
 * it has room, else to `free`. */
static inline void sg_lane_recycle(struct sg_lane *l, void *slot)
{
    /* The sender's reads of the slot (rendering) must complete before the
     * holder can see the slot free and write it.  ck's SPSC enqueue fences
     * only stores before its tail store; on a weakly ordered CPU (aarch64)
     * a load may still be pending then.  A release fence orders every
     * earlier load and store before the tail store (x86: a compiler
     * barrier only).  Under TSan the annotation below models the same
     * release (TSan refuses stand-alone fences). */
#ifndef SG_TSAN
    atomic_thread_fence(memory_order_release);
#endif
    SG_TSAN_RELEASE(slot);
    if (!ck_ring_enqueue_spsc(&l->hot, l->hot_buf, slot))
        ck_ring_enqueue_spsc(&l->free, l->free_buf, slot);
}

/* The lanes the sender looks at: the owned lanes [0, owned) that may have
 * held an event (owned = q->scan, read once by the caller with acquire)
 * and every shared lane.  k in [0, owned + nshared) names one of them.
 * A claimer raises `scan` before its first publication; a sender that read
 * an older value finds the lane on a later turn, and after the shutdown
 * handshake (sg_queue_close happens before the sender sees the stop) it
 * reads the final value. */
static inline uint32_t sg_queue_scan_owned(struct sg_queue *q)
{
    return atomic_load_explicit(&q->scan, memory_order_acquire);
}

static inline struct sg_lane *sg_queue_span_lane(struct sg_queue *q, uint32_t owned, uint32_t k)
{
    return k < owned ? &q->lanes[k] : &q->lanes[q->nowned + (k - owned)];
}

/* Events published and not yet taken, over the lanes in the sender's span
 * (from the filled rings' indices: the sender never reads the holders'
 * counter lines on its hot loop). */
uint64_t sg_queue_depth(struct sg_queue *q);

/* Sender side: keeps one committed owned lane ahead of the claims, so a
 * thread's first track finds its lane's pages already committed instead of
 * taking ~1,000 page faults (milliseconds) in that call.  Commits the
 * lowest uncommitted owned lane when no committed one is free; holds it
 * through `owned` meanwhile (a thread that finds it busy takes the next
 * lane; the release bumps `epoch` so threads that found none rescan).
 * Returns 1 if it committed a lane.  Lane 0 is committed at creation. */
int sg_queue_prefault(struct sg_queue *q);

/* Closer side of the shutdown handshake: sets closing, then waits until no
 * producer is inside a call.  After it returns no event can be published.
 * Returns the heavy barrier used (barrier.h; SG_BARRIER_NONE in seq_cst
 * mode).  When the queue relies on a heavy barrier and none worked,
 * q->unproven is set: the handshake cannot be shown to hold, and the caller
 * must keep everything a producer may touch (the queue and the client)
 * mapped rather than free it. */
int sg_queue_close(struct sg_queue *q);

#endif
