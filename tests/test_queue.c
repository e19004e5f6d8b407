/* SPDX-License-Identifier: MIT */
/* Tests for src/queue.c: lanes, slot ownership, the shutdown handshake,
 * and many more producer threads than cores.  Also run under TSan. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lane_pages.h"
#include "barrier.h"
#include "queue.h"
#include "segops.h"

struct rec {
    uint32_t thread;
    uint32_t pad;
    uint64_t seq;
};

/* What segops_track() does around the encoder. */
static int put(struct sg_queue *q, uint32_t thread, uint64_t seq)
{
    sg_call_enter(q);
    struct sg_lane *l = sg_lane_enter(q);
    if (!l) {
        int closing = atomic_load_explicit(&q->closing, memory_order_relaxed) != 0;
        sg_call_leave();
        return closing ? SEGOPS_ESHUTDOWN : SEGOPS_ENOLANE;
    }
    if (atomic_load_explicit(&q->closing, memory_order_seq_cst)) {
        sg_lane_leave(l);
        sg_call_leave();
        return SEGOPS_ESHUTDOWN;
    }
    struct rec r = {thread, 0, seq};
    memcpy(l->cur, &r, sizeof(r));
    int rc = sg_lane_publish(l) == 0 ? 0 : SEGOPS_EFULL;
    sg_lane_leave(l);
    sg_call_leave();
    return rc;
}

/* Per-thread order holds within a lane; a thread on shared lanes may have
 * its events spread over several, so then only exactly-once is checked. */
static uint8_t *seen_map; /* [thread * seen_per + seq], shared-lane tests */
static uint64_t seen_per;

static uint64_t drain(struct sg_queue *q, uint64_t *next_seq, uint32_t nthreads)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < q->nlanes; i++) {
        void *s;
        while ((s = sg_lane_take(&q->lanes[i])) != NULL) {
            struct rec r;
            memcpy(&r, s, sizeof(r));
            cr_assert_lt(r.thread, nthreads);
            if (seen_map) {
                cr_assert_lt(r.seq, seen_per);
                cr_assert_eq(seen_map[r.thread * seen_per + r.seq]++, 0, "duplicate");
                sg_lane_recycle(&q->lanes[i], s);
                n++;
                continue;
            }
            /* per-thread order is preserved by its lane */
            cr_assert_eq(r.seq, next_seq[r.thread], "thread %u got %llu want %llu", r.thread,
                         (unsigned long long)r.seq, (unsigned long long)next_seq[r.thread]);
            next_seq[r.thread]++;
            sg_lane_recycle(&q->lanes[i], s);
            n++;
        }
    }
    return n;
}

Test(queue, lane_holds_capacity_then_reports_full)
{
    struct sg_queue q;
    cr_assert_eq(sg_queue_init(&q, 2, 1, 100, 64), 0);
    for (uint64_t i = 0; i < 100; i++)
        cr_assert_eq(put(&q, 0, i), 0);
    cr_expect_eq(put(&q, 0, 100), SEGOPS_EFULL);
    cr_expect_eq(sg_queue_depth(&q), 100);
    uint64_t next = 0;
    cr_expect_eq(drain(&q, &next, 1), 100);
    /* slots came back: the lane takes events again */
    cr_expect_eq(put(&q, 0, 100), 0);
    cr_expect_eq(drain(&q, &next, 1), 1);
    sg_queue_destroy(&q);
}

Test(queue, rejects_bad_geometry)
{
    struct sg_queue q;
    cr_expect_eq(sg_queue_init(&q, 0, 0, 10, 64), SEGOPS_EOPTION);
    cr_expect_eq(sg_queue_init(&q, 1, 0, 0, 64), SEGOPS_EOPTION);
    cr_expect_eq(sg_queue_init(&q, 1, 0, 10, 60), SEGOPS_EOPTION);
}

struct prod {
    struct sg_queue *q;
    uint32_t id;
    uint64_t n;
    uint64_t ok, full, nolane;
    struct sg_lane *lane_seen;
};

static void *producer(void *arg)
{
    struct prod *p = arg;
    for (uint64_t i = 0; i < p->n;) {
        int rc = put(p->q, p->id, p->ok);
        if (rc == 0) {
            p->ok++;
            i++;
        } else if (rc == SEGOPS_EFULL) {
            p->full++;
            sched_yield();
        } else {
            p->nolane++;
            i++;
        }
    }
    p->lane_seen = sg_tls_lane.q == p->q ? sg_tls_lane.lane : NULL;
    return NULL;
}

struct cons {
    struct sg_queue *q;
    uint32_t nthreads;
    uint64_t want;
    uint64_t got;
    uint64_t next[64];
};

static void *consumer(void *arg)
{
    struct cons *c = arg;
    while (c->got < c->want) {
        uint64_t n = drain(c->q, c->next, c->nthreads);
        c->got += n;
        if (!n)
            sched_yield();
    }
    return NULL;
}

/* 8 producers on a 2-core machine, each with its own lane: every event
 * arrives once, in per-thread order, and no producer ever waits for
 * another (a stalled ticket would show up as this test timing out). */
Test(queue, eight_producers_more_than_cores_lose_nothing, .timeout = 60)
{
    struct sg_queue q;
    cr_assert_eq(sg_queue_init(&q, 8, 0, 1024, 64), 0);
#ifdef SG_TSAN
    enum { N = 8, PER = 20000 }; /* TSan runs ~10x slower */
#else
    enum { N = 8, PER = 200000 };
#endif
    pthread_t th[N], ct;
    struct prod p[N];
    struct cons c = {&q, N, (uint64_t)N * PER, 0, {0}};
    pthread_create(&ct, NULL, consumer, &c);
    for (int i = 0; i < N; i++) {
        p[i] = (struct prod){&q, (uint32_t)i, PER, 0, 0, 0, NULL};
        pthread_create(&th[i], NULL, producer, &p[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    pthread_join(ct, NULL);
    for (int i = 0; i < N; i++) {
        cr_expect_eq(p[i].ok, PER);
        cr_expect_eq(c.next[i], PER);
        cr_expect_eq(p[i].nolane, 0);
        for (int j = 0; j < i; j++)
            cr_expect_neq(p[i].lane_seen, p[j].lane_seen, "two threads shared a lane");
    }
    /* every owned lane was given back when its thread exited */
    cr_expect_eq(atomic_load(&q.lanes_in_use), 0);
    sg_queue_destroy(&q);
}

/* Threads beyond the owned lanes go through the shared lanes; with none
 * configured they get SEGOPS_ENOLANE at once instead of waiting. */
static void *producer_once(void *arg)
{
    struct prod *p = arg;
    for (uint64_t i = 0; i < p->n; i++) {
        int rc = put(p->q, p->id, p->ok);
        if (rc == 0)
            p->ok++;
        else if (rc == SEGOPS_EFULL)
            p->full++;
        else
            p->nolane++;
    }
    return NULL;
}

static atomic_int drain_stop;

static void *drainer(void *arg)
{
    struct cons *c = arg;
    for (;;) {
        int last = atomic_load(&drain_stop);
        uint64_t n = drain(c->q, c->next, c->nthreads);
        c->got += n;
        if (last && n == 0)
            return NULL;
        if (!n)
            sched_yield();
    }
}

Test(queue, threads_beyond_owned_lanes_never_block, .timeout = 60)
{
    struct sg_queue q;
    cr_assert_eq(sg_queue_init(&q, 1, 2, 4096, 64), 0);
    enum { N = 6, PER = 20000 };
    pthread_t th[N], ct;
    struct prod p[N];
    struct cons c = {&q, N, 0, 0, {0}};
    static uint8_t map[N * PER];
    seen_map = map;
    seen_per = PER;
    atomic_store(&drain_stop, 0);
    pthread_create(&ct, NULL, drainer, &c);
    for (int i = 0; i < N; i++) {
        p[i] = (struct prod){&q, (uint32_t)i, PER, 0, 0, 0, NULL};
        pthread_create(&th[i], NULL, producer_once, &p[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    atomic_store(&drain_stop, 1);
    pthread_join(ct, NULL);
    uint64_t ok = 0, other = 0;
    for (int i = 0; i < N; i++) {
        ok += p[i].ok;
        other += p[i].full + p[i].nolane;
    }
    /* every call returned (none waited), and every accepted event arrived */
    cr_expect_eq(ok + other, (uint64_t)N * PER);
    cr_expect_gt(ok, 0);
    cr_expect_eq(c.got, ok);
    sg_queue_destroy(&q);
    seen_map = NULL;

    struct sg_queue q2;
    cr_assert_eq(sg_queue_init(&q2, 1, 0, 64, 64), 0);
    pthread_t t2;
    struct prod a = {&q2, 0, 10, 0, 0, 0, NULL};
    pthread_create(&t2, NULL, producer, &a); /* takes the only lane */
    pthread_join(t2, NULL);                   /* ...and gives it back */
    cr_expect_eq(a.ok, 10);
    /* hold the owned lane in this thread, then another thread has none */
    cr_assert_eq(put(&q2, 1, 0), 0);
    struct prod b = {&q2, 2, 5, 0, 0, 0, NULL};
    pthread_create(&t2, NULL, producer, &b);
    pthread_join(t2, NULL);
    cr_expect_eq(b.nolane, 5);
    cr_expect_eq(b.ok, 0);
    sg_queue_destroy(&q2);
}

static atomic_int stop_flag;

static void *hammer(void *arg)
{
    struct prod *p = arg;
    while (!atomic_load(&stop_flag)) {
        int rc = put(p->q, p->id, p->ok);
        if (rc == 0)
            p->ok++;
        else if (rc == SEGOPS_ESHUTDOWN)
            p->nolane++; /* refused after close */
        else
            sched_yield();
    }
    return NULL;
}

/* After sg_queue_close() returns, no producer can publish: everything
 * accepted is already in the rings. */
static void close_handshake_with(int barriers)
{
    struct sg_queue q;
    cr_assert_eq(sg_queue_init(&q, 4, 0, 1 << 16, 64), 0);
    q.barrier_allowed = barriers;
    enum { N = 4 };
    pthread_t th[N];
    struct prod p[N];
    atomic_store(&stop_flag, 0);
    for (int i = 0; i < N; i++) {
        p[i] = (struct prod){&q, (uint32_t)i, 0, 0, 0, 0, NULL};
        pthread_create(&th[i], NULL, hammer, &p[i]);
    }
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
    sg_queue_close(&q);
    uint64_t next[N] = {0};
    uint64_t taken = drain(&q, next, N);
    nanosleep(&ts, NULL); /* producers keep trying, and are refused */
    uint64_t late = drain(&q, next, N);
    atomic_store(&stop_flag, 1);
    uint64_t ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += p[i].ok;
    }
    cr_expect_eq(late, 0, "an event was published after close");
    cr_expect_eq(taken, ok);
    if (q.asym)
        cr_expect_eq(q.barrier_used, barriers & SG_BARRIER_MEMBARRIER ? SG_BARRIER_MEMBARRIER
                                                                       : SG_BARRIER_MIGRATE);
    sg_queue_destroy(&q);
}

static void close_handshake(void)
{
    close_handshake_with(SG_BARRIER_ALL);
}

Test(queue, close_handshake_leaves_nothing_unpublished, .timeout = 60)
{
    close_handshake(); /* membarrier() where the kernel has it */
}

Test(queue, close_handshake_without_membarrier_leaves_nothing_unpublished, .timeout = 60)
{
    setenv("SEGOPS_MEMBARRIER", "0", 1);
    close_handshake(); /* seq_cst on both sides */
    unsetenv("SEGOPS_MEMBARRIER");
}

Test(queue, reports_which_handshake_it_uses)
{
    struct sg_queue q;
    setenv("SEGOPS_MEMBARRIER", "0", 1);
    cr_assert_eq(sg_queue_init(&q, 1, 0, 8, 64), 0);
    cr_expect_eq(q.asym, 0);
    sg_queue_destroy(&q);
    unsetenv("SEGOPS_MEMBARRIER");
}


/* The first thread's lane is committed at creation; the next one only when
 * the sender commits it ahead, never while another party holds it. */
Test(queue, commits_one_owned_lane_ahead_of_the_claims)
{
    struct sg_queue q;
    cr_assert_eq(sg_queue_init(&q, 3, 1, 1024, 512), 0);
    cr_expect_eq(lane_resident(&q, 0), 1.0, "lane 0 is committed at creation");
    cr_expect_eq(lane_resident(&q, 1), 0.0);
    cr_expect_eq(lane_resident(&q, 2), 0.0);
    cr_expect_eq(sg_queue_prefault(&q), 0, "a committed lane is free: nothing to do");
    cr_expect_eq(lane_resident(&q, 1), 0.0);

    /* this thread claims lane 0: the next thread would find none committed */
    struct sg_lane *l = sg_lane_enter(&q);
    cr_assert(l == &q.lanes[0]);
    sg_lane_leave(l);
    cr_expect_eq(atomic_load(&q.claims), 1);
    uint32_t ep = atomic_load(&q.epoch);
    cr_expect_eq(sg_queue_prefault(&q), 1);
    cr_expect_eq(lane_resident(&q, 1), 1.0, "lane 1 committed ahead");
    cr_expect_eq(atomic_load(&q.lanes[1].owned), 0, "and given back");
    cr_expect_eq(atomic_load(&q.epoch), ep + 1, "threads that found no lane rescan");
    cr_expect_eq(lane_resident(&q, 2), 0.0, "only one lane ahead");
    cr_expect_eq(sg_queue_prefault(&q), 0);
    cr_expect_eq(lane_resident(&q, 2), 0.0);

    /* another thread holds lane 1: lane 2 is next; once held, never touched */
    atomic_store(&q.lanes[1].owned, 1);
    atomic_store(&q.lanes[2].owned, 1);
    cr_expect_eq(sg_queue_prefault(&q), 0, "the lane to commit is held by a thread");
    cr_expect_eq(lane_resident(&q, 2), 0.0);
    atomic_store(&q.lanes[2].owned, 0);
    cr_expect_eq(sg_queue_prefault(&q), 1);
    cr_expect_eq(lane_resident(&q, 2), 1.0);
    cr_expect_eq(sg_queue_prefault(&q), 0, "every owned lane is committed");
    atomic_store(&q.lanes[1].owned, 0);
    sg_queue_destroy(&q);
}

/* Every page a lane's slots touch is committed, also when the lane does not
 * start on a page boundary (slot sizes that are not powers of two): the
 * page holding its last slot too, or the hot path faults there. */
Test(queue, a_lane_is_committed_to_its_last_page_whatever_the_slot_size)
{
    static const uint32_t sizes[][2] = {{264, 100}, {520, 100}, {200, 1000}, {136, 100}};
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        struct sg_queue q;
        cr_assert_eq(sg_queue_init(&q, 4, 1, sizes[k][1], sizes[k][0]), 0);
        /* claim lanes 0.. until the sender commits lanes 1 and 2 ahead */
        atomic_store(&q.lanes[0].owned, 1);
        cr_assert_eq(sg_queue_prefault(&q), 1);
        atomic_store(&q.lanes[1].owned, 1);
        cr_assert_eq(sg_queue_prefault(&q), 1);
        size_t lane_bytes = (size_t)(q.capacity + 1) * q.slot_size;
        for (uint32_t i = 1; i <= 2; i++) {
            uintptr_t lo = (uintptr_t)q.slab + i * lane_bytes;
            uintptr_t hi = lo + lane_bytes - 1;
            lo = lo / pg * pg;
            size_t n = (hi / pg * pg - lo) / pg + 1;
            unsigned char v[4096];
            cr_assert(n <= sizeof(v));
            cr_assert_eq(mincore((void *)lo, n * pg, v), 0);
            for (size_t p = 0; p < n; p++)
                cr_expect(v[p] & 1, "slot size %u, capacity %u: lane %u's page %zu of %zu is "
                                    "not committed", sizes[k][0], sizes[k][1], i, p + 1, n);
        }
        sg_queue_destroy(&q);
    }
}

static void *destroy_queue(void *q)
{
    sg_queue_destroy(q);
    return NULL;
}

enum { NHELD = SG_HELD_MAX + 2 };

/* NHELD queues; this thread holds owned lanes of the first SG_HELD_MAX, and
 * the next one gives it a shared lane; then another thread destroys q[0]
 * (a client shut down elsewhere) */
static struct sg_queue *eight_held_and_one_gone(void)
{
    struct sg_queue *q = calloc(NHELD, sizeof(*q));
    cr_assert(q);
    for (int i = 0; i < NHELD; i++)
        cr_assert_eq(sg_queue_init(&q[i], 2, 1, 16, 128), 0);
    for (int i = 0; i <= SG_HELD_MAX; i++) {
        struct sg_lane *l = sg_lane_enter(&q[i]);
        cr_assert(l);
        int owned = l < &q[i].lanes[q[i].nowned];
        cr_expect_eq(owned, i < SG_HELD_MAX, "client %d: %s lane", i, owned ? "owned" : "shared");
        sg_lane_leave(l);
    }
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, destroy_queue, &q[0]), 0);
    pthread_join(t, NULL);
    return q;
}

static int lane_is_owned(struct sg_queue *q)
{
    struct sg_lane *l = sg_lane_enter(q);
    cr_assert(l);
    int owned = l < &q->lanes[q->nowned];
    sg_lane_leave(l);
    return owned;
}

static void destroy_held(struct sg_queue *q)
{
    for (int i = 1; i < NHELD; i++)
        sg_queue_destroy(&q[i]);
    free(q);
}

/* A thread holds owned lanes of at most SG_HELD_MAX clients; the next one
 * gives it a shared lane.  Once one of its clients is gone (shut down by
 * another thread), its place is free again. */
Test(queue, a_thread_holds_lanes_of_eight_clients_and_reuses_the_place_of_one_gone)
{
    struct sg_queue *q = eight_held_and_one_gone();
    cr_expect(lane_is_owned(&q[NHELD - 1]), "the place of the client gone is free");
    destroy_held(q);
}

/* Finding that place (forget_dead) needs the registry lock, and a producer
 * call never waits for it: with the lock busy (held here, through the fork
 * handler that takes it) the call takes a shared lane and returns -- a call
 * that waited would never return, and the timeout fails the test -- and a
 * later call, the lock free, finds the place. */
Test(queue, a_call_that_finds_the_registry_lock_busy_takes_a_shared_lane, .timeout = 120)
{
    struct sg_queue *q = eight_held_and_one_gone();
    sg_queue_atfork_prepare();
    int owned = lane_is_owned(&q[NHELD - 1]);
    sg_queue_atfork_parent();
    cr_expect(!owned, "an owned lane with the registry lock busy?");
    cr_expect(lane_is_owned(&q[NHELD - 1]), "the place of the client gone is free");
    destroy_held(q);
}

/* The fallback barrier (src/barrier.h) visits every CPU this thread may
 * run on and gives the thread its affinity back. */
Test(queue, cpu_migration_barrier_runs_and_restores_the_affinity)
{
    cpu_set_t before, after;
    CPU_ZERO(&before);
    CPU_ZERO(&after);
    cr_assert_eq(sched_getaffinity(0, sizeof(before), &before), 0);
    int err = -1;
    cr_expect_eq(sg_barrier_heavy(SG_BARRIER_MIGRATE, &err), SG_BARRIER_MIGRATE);
    cr_expect_eq(err, 0, "membarrier was not asked for: no errno");
    cr_assert_eq(sched_getaffinity(0, sizeof(after), &after), 0);
    cr_expect(CPU_EQUAL(&before, &after), "affinity not restored");
    cr_expect_str_eq(sg_barrier_name(SG_BARRIER_MIGRATE), "cpu migration");
}

/* The handshake holds with the fallback barrier alone: the same
 * producers-against-close check, producers on plain stores (membarrier
 * registered), the closer restricted to CPU migration -- what it does when
 * membarrier() is refused at shutdown. */
Test(queue, close_handshake_with_the_migration_barrier_leaves_nothing_unpublished, .timeout = 60)
{
    close_handshake_with(SG_BARRIER_MIGRATE);
}

struct tier_put {
    struct sg_queue *q;
    int ok, full;
};

static void *tier_producer(void *arg)
{
    struct tier_put *p = arg;
    for (uint64_t i = 0; i < 11; i++) {
        int rc = put(p->q, 1, i);
        p->ok += rc == 0;
        p->full += rc == SEGOPS_EFULL;
    }
    return NULL;
}

/* Two lane sizes (the client's default geometry): the shared lanes and the
 * first nbig owned lanes hold `capacity`, the rest `capacity_rest`, each
 * to the event; and the sender's span (depth, batch fill) covers exactly
 * the owned lanes up to the highest ever claimed plus the shared ones, so
 * never-claimed lanes cost it nothing, while every event stays counted. */
Test(queue, tiers_size_the_lanes_and_the_span_covers_every_claimed_lane)
{
    struct sg_queue q;
    cr_assert_eq(sg_queue_init_tiers(&q, 8, 1, 100, 2, 10, 64), 0);
    for (uint32_t i = 0; i < q.nlanes; i++)
        cr_expect_eq(q.lanes[i].nslots, i < 2 || i == 8 ? 101u : 11u, "lane %u", i);
    for (uint32_t i = 1; i < q.nlanes; i++)
        cr_expect(q.lanes[i].slots == q.lanes[i - 1].slots + (size_t)q.lanes[i - 1].nslots * 64,
                  "lane %u follows lane %u in the slab", i, i - 1);
    cr_expect_eq(q.slab_size, (size_t)(3 * 101 + 6 * 11) * 64);
    cr_expect_eq(sg_queue_scan_owned(&q), 0, "no lane claimed: only the shared one is scanned");

    /* this thread claims lane 0, a big one */
    for (uint64_t i = 0; i < 100; i++)
        cr_assert_eq(put(&q, 0, i), 0);
    cr_expect_eq(put(&q, 0, 100), SEGOPS_EFULL);
    cr_expect_eq(sg_queue_scan_owned(&q), 1);

    /* lanes 1..4 held by other (pretend) threads: the next thread claims
     * lane 5, a small one, and the span grows to it */
    for (uint32_t i = 1; i <= 4; i++)
        atomic_store(&q.lanes[i].owned, 1);
    struct tier_put p = {&q, 0, 0};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, tier_producer, &p), 0);
    pthread_join(th, NULL);
    cr_expect_eq(p.ok, 10);
    cr_expect_eq(p.full, 1);
    cr_expect_eq(sg_queue_scan_owned(&q), 6, "span: owned lanes 0..5");
    cr_expect_eq(ck_ring_size(&q.lanes[5].filled), 10);
    cr_expect_eq(sg_queue_depth(&q), 110, "both lanes in the span");
    cr_expect_eq(sg_queue_span_lane(&q, 6, 6), &q.lanes[8], "then the shared lane");
    cr_expect_eq(atomic_load(&q.lanes[5].owned), 0, "given back at thread exit");
    cr_expect_eq(sg_queue_scan_owned(&q), 6, "the span never shrinks");
    for (uint32_t i = 1; i <= 4; i++)
        atomic_store(&q.lanes[i].owned, 0);
    sg_queue_destroy(&q);
}

/* A refill prefetches its slots for writing (sg_lane_publish): on x86 with
 * PREFETCHW, which the first queue's creation detects.  The kernel's
 * "3dnowprefetch" flag in /proc/cpuinfo is set whenever CPUID's PRFCHW (or
 * 3DNow!) bit is -- and also on every 64-bit AMD CPU, whose CPUID may
 * hide the bit (a VM's CPU model, valgrind) -- so a detected PREFETCHW
 * must have the flag; the flag alone proves nothing.  Every slot still
 * arrives once through many refills from both return rings. */
Test(queue, refills_prefetch_for_writing)
{
    struct sg_queue q;
    cr_assert_eq(sg_queue_init(&q, 1, 0, 100, 64), 0);
#if defined(__x86_64__) || defined(__i386__)
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        static char line[65536]; /* the flags line whole (~1.5 KB today) */
        int kernel = -1;
        while (kernel < 0 && fgets(line, sizeof(line), f))
            if (strncmp(line, "flags", 5) == 0)
                kernel = strstr(line, " 3dnowprefetch") != NULL;
        fclose(f);
        if (kernel == 0)
            cr_expect_eq(sg_mode.prefetchw, 0, "PREFETCHW detected, the kernel says none");
    }
#else
    cr_expect_eq(sg_mode.prefetchw, 0);
#endif
    uint64_t next = 0;
    for (uint64_t round = 0; round < 50; round++) {
        /* 37 events: refills take from `hot` and then `free` */
        for (uint64_t i = 0; i < 37; i++)
            cr_assert_eq(put(&q, 0, round * 37 + i), 0);
        cr_assert_eq(drain(&q, &next, 1), 37);
    }
    cr_expect_eq(next, 50 * 37);
    sg_queue_destroy(&q);
}
