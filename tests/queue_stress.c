/* SPDX-License-Identifier: MIT */
/*
 * queue_stress.c -- stand-alone stress driver for the lanes (src/queue.h),
 * the heavy barrier (src/barrier.h) and the producer's clock (src/clock.h),
 * with no test framework, so that it cross-compiles for any CPU and runs
 * under qemu-user (scripts/cross-aarch64.sh) as well as natively (ctest).
 *
 * What it checks is what a weakly ordered CPU could break:
 *   lanes      many producers against one consumer over owned lanes: every
 *              slot's whole contents derive from (thread, seq), each
 *              thread's events arrive in order and exactly once;
 *   shared     more threads than owned lanes, over the shared lanes: per
 *              (lane, thread) order, exactly once, contents intact;
 *   recycle    tiny lanes with big slots: every slot is rewritten by its
 *              producer right after the consumer recycles it; the consumer
 *              verifies every word before it recycles (a holder write that
 *              overtook the consumer's reads shows up as a bad word);
 *   close      producers hammering while the closer runs sg_queue_close():
 *              everything accepted is in the rings when it returns, nothing
 *              is published after -- with membarrier(), with the migration
 *              barrier alone, and in seq_cst mode (no membarrier);
 *   barrier    sg_barrier_heavy(SG_BARRIER_MIGRATE) visits every CPU and
 *              restores the affinity;
 *   clock      the raw stamp never goes backwards, and converts to a wall
 *              time (a plausibility check, not a timing one).
 *
 * No check depends on timing: every wait is for progress (a count reached),
 * never for a duration.  A watchdog (alarm) ends a hung run with a non-zero
 * exit.  Exit status is 0 only when every test passed.
 *
 * Options: --scale N divides the event counts (qemu runs ~10x slower);
 * --allow-no-migrate turns a migration barrier that cannot run (qemu-user
 * emulates sched_setaffinity/getcpu, and a container may refuse them) into
 * a reported skip instead of a failure.  Natively both stay at defaults.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "barrier.h"
#include "clock.h"
#include "queue.h"
#include "segops.h"

/* ---- reporting ---- */

static const char *cur_test;
static atomic_int failures;      /* in the current test */
static atomic_int abort_run;     /* a thread saw a failure: everyone stops */
static int scale = 1;
static int allow_no_migrate;

#define FAIL(...)                                                             \
    do {                                                                      \
        if (atomic_fetch_add(&failures, 1) < 10) {                            \
            fprintf(stderr, "FAIL %s (%s:%d): ", cur_test, __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
        }                                                                     \
        atomic_store(&abort_run, 1);                                          \
    } while (0)
#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond))                                                          \
            FAIL(__VA_ARGS__);                                                \
    } while (0)

/* ---- slot contents ---- */

/* Every 8-byte word of a slot derives from (thread, seq): the header first,
 * then a body word per position.  A slot read too early (before the
 * producer's stores are visible), a stale slot, or one rewritten while the
 * consumer reads it cannot match. */
struct rec {
    uint32_t thread;
    uint32_t words;  /* body words that follow */
    uint64_t seq;
};

static uint64_t mix(uint64_t x)
{
    /* splitmix64's finaliser */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t body_word(uint32_t thread, uint64_t seq, uint32_t i)
{
    return mix(((uint64_t)thread << 48) ^ (seq << 12) ^ i);
}

static void fill(void *slot, uint32_t slot_size, uint32_t thread, uint64_t seq)
{
    struct rec r = {thread, (uint32_t)((slot_size - sizeof(r)) / 8), seq};
    memcpy(slot, &r, sizeof(r));
    uint64_t *w = (uint64_t *)((char *)slot + sizeof(r));
    for (uint32_t i = 0; i < r.words; i++)
        w[i] = body_word(thread, seq, i);
}

/* Returns 1 when the slot is whole; *r gets its header. */
static int verify(const void *slot, uint32_t slot_size, uint32_t nthreads, struct rec *r)
{
    memcpy(r, slot, sizeof(*r));
    if (r->thread >= nthreads || r->words != (slot_size - sizeof(*r)) / 8)
        return 0;
    const uint64_t *w = (const uint64_t *)((const char *)slot + sizeof(*r));
    for (uint32_t i = 0; i < r->words; i++)
        if (w[i] != body_word(r->thread, r->seq, i))
            return 0;
    return 1;
}

/* What segops_track() does around the encoder: enter the call and a lane,
 * check closing, encode into cur, publish, leave. */
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
    fill(l->cur, q->slot_size, thread, seq);
    int rc = sg_lane_publish(l) == 0 ? 0 : SEGOPS_EFULL;
    sg_lane_leave(l);
    sg_call_leave();
    return rc;
}

/* ---- producers and the consumer ---- */

enum { MAXT = 16 };

struct prod {
    struct sg_queue *q;
    uint32_t id;
    uint64_t n;                  /* events to offer (0: until `stop`) */
    _Atomic uint64_t ok;         /* accepted; also the next seq */
    _Atomic uint64_t refused;    /* SEGOPS_ESHUTDOWN */
    uint64_t full, nolane;
    atomic_int *stop;
    int retry;                   /* offer the same seq again after EFULL or
                                    ENOLANE, until n are accepted */
    /* optional: every producer waits here after its first call (so the
     * owned lanes are claimed before anyone goes on) and before it exits
     * (so no owned lane is given back while others still produce): which
     * threads hold owned lanes is then fixed, whatever the scheduling */
    pthread_barrier_t *gate;
    struct sg_lane *lane;        /* the owned lane it ended with, or NULL */
};

static void *producer(void *arg)
{
    struct prod *p = arg;
    for (uint64_t i = 0, calls = 0; (p->n == 0 || i < p->n) && !atomic_load(&abort_run);
         calls++) {
        if (calls == 1 && p->gate)
            pthread_barrier_wait(p->gate);
        if (p->stop && atomic_load_explicit(p->stop, memory_order_relaxed))
            break;
        uint64_t seq = atomic_load_explicit(&p->ok, memory_order_relaxed);
        int rc = put(p->q, p->id, seq);
        if (rc == 0) {
            atomic_store_explicit(&p->ok, seq + 1, memory_order_release);
            i++;
        } else if (rc == SEGOPS_EFULL || (rc == SEGOPS_ENOLANE && p->retry)) {
            if (rc == SEGOPS_EFULL)
                p->full++;
            else
                p->nolane++;
            if (!p->retry)
                i++;
            sched_yield();
        } else if (rc == SEGOPS_ESHUTDOWN) {
            atomic_fetch_add_explicit(&p->refused, 1, memory_order_release);
            i++;
            sched_yield();
        } else {
            p->nolane++;
            i++;
        }
    }
    struct sg_lane *l = sg_tls_lane.q == p->q ? sg_tls_lane.lane : NULL;
    p->lane = l && l < &p->q->lanes[p->q->nowned] ? l : NULL;
    if (p->gate)
        pthread_barrier_wait(p->gate);
    return NULL;
}

/* The consumer's view: per thread, the next seq expected (owned lanes) or
 * a seen-map (shared lanes), and per (lane, thread) the last seq. */
struct cons {
    struct sg_queue *q;
    uint32_t nthreads;
    int strict_order;            /* owned lanes: seq == next[thread] */
    uint64_t per;                /* seen-map width */
    uint8_t *seen;               /* [thread * per + seq] */
    int64_t *last;               /* [lane * nthreads + thread], -1 = none */
    uint64_t next[MAXT];
    uint64_t got;
};

/* Takes what each lane holds, checks it, recycles it (as the sender does
 * after rendering: every read of the slot before sg_lane_recycle).  At
 * most a lane's worth per lane per pass, as the sender takes at most a
 * batch: a producer refilling its lane as fast as this drains it (every
 * slot comes straight back) would otherwise keep the pass on its lane
 * while the others sit full -- the close test then never saw every
 * producer go on. */
static uint64_t drain(struct cons *c)
{
    uint64_t n = 0;
    struct sg_queue *q = c->q;
    for (uint32_t li = 0; li < q->nlanes; li++) {
        struct sg_lane *l = &q->lanes[li];
        void *s;
        for (uint32_t k = 0; k < l->nslots && (s = sg_lane_take(l)) != NULL; k++) {
            struct rec r;
            if (!verify(s, q->slot_size, c->nthreads, &r)) {
                FAIL("lane %u: slot contents torn or stale (thread %u seq %llu)", li, r.thread,
                     (unsigned long long)r.seq);
            } else {
                int64_t *last = &c->last[(size_t)li * c->nthreads + r.thread];
                if ((int64_t)r.seq <= *last)
                    FAIL("lane %u thread %u: seq %llu after %lld", li, r.thread,
                         (unsigned long long)r.seq, (long long)*last);
                *last = (int64_t)r.seq;
                if (c->strict_order) {
                    if (r.seq != c->next[r.thread])
                        FAIL("thread %u: got seq %llu, want %llu", r.thread,
                             (unsigned long long)r.seq, (unsigned long long)c->next[r.thread]);
                    c->next[r.thread] = r.seq + 1;
                }
                if (c->seen) {
                    if (r.seq >= c->per)
                        FAIL("thread %u: seq %llu out of range", r.thread,
                             (unsigned long long)r.seq);
                    else if (c->seen[r.thread * c->per + r.seq]++)
                        FAIL("thread %u: seq %llu twice", r.thread, (unsigned long long)r.seq);
                }
            }
            sg_lane_recycle(l, s);
            n++;
        }
    }
    c->got += n;
    return n;
}

struct cons_run {
    struct cons *c;
    uint64_t want;               /* stop after this many (0: until stop) */
    atomic_int *stop;
};

static void *consumer(void *arg)
{
    struct cons_run *cr = arg;
    for (;;) {
        int last = cr->stop && atomic_load(cr->stop);
        uint64_t n = drain(cr->c);
        if (cr->want && cr->c->got >= cr->want)
            return NULL;
        if ((last || atomic_load(&abort_run)) && n == 0)
            return NULL;
        if (!n)
            sched_yield();
    }
}

static void cons_init(struct cons *c, struct sg_queue *q, uint32_t nthreads, uint64_t per,
                      int strict)
{
    memset(c, 0, sizeof(*c));
    c->q = q;
    c->nthreads = nthreads;
    c->strict_order = strict;
    c->per = per;
    c->seen = calloc((size_t)nthreads * per, 1);
    c->last = malloc(sizeof(int64_t) * q->nlanes * nthreads);
    if (!c->seen || !c->last) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < (size_t)q->nlanes * nthreads; i++)
        c->last[i] = -1;
}

static void cons_free(struct cons *c)
{
    free(c->seen);
    free(c->last);
}

/* Every accepted event of every producer seen exactly once. */
static void check_all_seen(struct cons *c, struct prod *p, uint32_t n)
{
    uint64_t ok = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t k = atomic_load(&p[i].ok);
        ok += k;
        for (uint64_t s = 0; s < k && s < c->per; s++)
            if (!c->seen[i * c->per + s]) {
                FAIL("thread %u: accepted seq %llu never arrived", i, (unsigned long long)s);
                break;
            }
    }
    CHECK(c->got == ok, "consumer took %llu, producers had %llu accepted",
          (unsigned long long)c->got, (unsigned long long)ok);
}

/* ---- tests ---- */

/* N producers, each on its own owned lane, one consumer; the lanes are
 * small enough that every slot is recycled many times. */
static void run_lanes(uint32_t nprod, uint32_t capacity, uint32_t slot_size, uint64_t per)
{
    struct sg_queue q;
    CHECK(sg_queue_init(&q, nprod, 0, capacity, slot_size) == 0, "sg_queue_init");
    struct prod p[MAXT];
    struct cons c;
    cons_init(&c, &q, nprod, per, 1);
    struct cons_run cr = {&c, (uint64_t)nprod * per, NULL};
    pthread_barrier_t gate;
    pthread_barrier_init(&gate, NULL, nprod);
    pthread_t th[MAXT], ct;
    pthread_create(&ct, NULL, consumer, &cr);
    for (uint32_t i = 0; i < nprod; i++) {
        p[i] = (struct prod){.q = &q, .id = i, .n = per, .retry = 1, .gate = &gate};
        pthread_create(&th[i], NULL, producer, &p[i]);
    }
    for (uint32_t i = 0; i < nprod; i++)
        pthread_join(th[i], NULL);
    pthread_join(ct, NULL);
    if (!atomic_load(&abort_run)) {
        check_all_seen(&c, p, nprod);
        for (uint32_t i = 0; i < nprod; i++) {
            CHECK(atomic_load(&p[i].ok) == per, "thread %u: %llu accepted", i,
                  (unsigned long long)atomic_load(&p[i].ok));
            CHECK(p[i].nolane == 0, "thread %u: no lane %llu times", i,
                  (unsigned long long)p[i].nolane);
            CHECK(p[i].lane != NULL, "thread %u: no owned lane", i);
            for (uint32_t j = 0; j < i; j++)
                CHECK(p[i].lane != p[j].lane, "threads %u and %u shared a lane", i, j);
        }
        /* every owned lane was given back when its thread exited */
        CHECK(atomic_load(&q.lanes_in_use) == 0, "lanes_in_use %u",
              atomic_load(&q.lanes_in_use));
    }
    pthread_barrier_destroy(&gate);
    cons_free(&c);
    sg_queue_destroy(&q);
}

static void test_lanes(void)
{
    run_lanes(8, 256, 128, 400000 / scale);
}

/* Producers rewrite recycled slots under constant pressure: 3 slots per
 * lane (capacity 2), each 1 KiB, so a slot the consumer recycles is the
 * holder's next-but-one `cur`; the consumer reads all 1 KiB of it before
 * recycling.  (Recycling before reading fails this test at once.) */
static void test_recycle(void)
{
    run_lanes(4, 2, 1024, 160000 / scale);
}

/* More threads than owned lanes: two hold the owned lanes, six share two
 * lanes a call at a time, retrying when both are busy (ENOLANE) or full.
 * Every event arrives once, in order per (lane, thread). */
static void test_shared(void)
{
    enum { N = 8, OWNED = 2 };
    uint64_t per = 50000 / scale;
    struct sg_queue q;
    CHECK(sg_queue_init(&q, OWNED, 2, 64, 256) == 0, "sg_queue_init");
    struct prod p[N];
    struct cons c;
    cons_init(&c, &q, N, per, 0);
    struct cons_run cr = {&c, (uint64_t)N * per, NULL};
    pthread_barrier_t gate;
    pthread_barrier_init(&gate, NULL, N);
    pthread_t th[N], ct;
    pthread_create(&ct, NULL, consumer, &cr);
    for (uint32_t i = 0; i < N; i++) {
        p[i] = (struct prod){.q = &q, .id = i, .n = per, .retry = 1, .gate = &gate};
        pthread_create(&th[i], NULL, producer, &p[i]);
    }
    for (uint32_t i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    pthread_join(ct, NULL);
    pthread_barrier_destroy(&gate);
    if (!atomic_load(&abort_run)) {
        uint32_t owned = 0;
        for (uint32_t i = 0; i < N; i++) {
            owned += p[i].lane != NULL;
            CHECK(atomic_load(&p[i].ok) == per, "thread %u: %llu accepted", i,
                  (unsigned long long)atomic_load(&p[i].ok));
        }
        CHECK(owned == OWNED, "%u threads held owned lanes, want %u", owned, (unsigned)OWNED);
        check_all_seen(&c, p, N);
    }
    cons_free(&c);
    sg_queue_destroy(&q);
}

/* Producers hammer; the closer (this thread, also the consumer, as the
 * sender is) closes while they run.  Progress-based: close once every
 * producer has published, look again once every producer has been refused. */
static void close_with(int barriers, const char *mode, int report)
{
    enum { N = 4 };
    struct sg_queue q;
    enum { CAP = 1024 };
    CHECK(sg_queue_init(&q, N, 0, CAP, 64) == 0, "sg_queue_init");
    q.barrier_allowed = barriers;
    uint64_t per = 1u << 22; /* seen-map bound: far more than a run accepts */
    struct prod p[N];
    struct cons c;
    cons_init(&c, &q, N, per, 1);
    atomic_int stop = 0;
    pthread_t th[N];
    for (uint32_t i = 0; i < N; i++) {
        p[i] = (struct prod){.q = &q, .id = i, .stop = &stop};
        /* no gate: the lanes' owners stay until the stop anyway */
        pthread_create(&th[i], NULL, producer, &p[i]);
    }
    /* every producer has been through a full lane and on, so the close
     * lands while slots flow both ways, not on lanes sitting full */
    for (;;) {
        drain(&c);
        uint32_t ready = 0;
        for (uint32_t i = 0; i < N; i++)
            ready += atomic_load(&p[i].ok) > CAP + 64;
        if (ready == N || atomic_load(&abort_run))
            break;
        sched_yield();
    }
    int used = sg_queue_close(&q);
    drain(&c);
    uint64_t taken = c.got;
    /* closed: every producer now gets refused; once each has been, anything
     * published after the close would be in the rings */
    for (;;) {
        uint32_t refused = 0;
        for (uint32_t i = 0; i < N; i++)
            refused += atomic_load(&p[i].refused) > 0;
        if (refused == N || atomic_load(&abort_run))
            break;
        sched_yield();
    }
    uint64_t late = drain(&c);
    atomic_store(&stop, 1);
    uint64_t ok = 0;
    for (uint32_t i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += atomic_load(&p[i].ok);
    }
    CHECK(late == 0, "%llu events published after sg_queue_close()", (unsigned long long)late);
    CHECK(taken == ok, "close returned with %llu taken of %llu accepted",
          (unsigned long long)taken, (unsigned long long)ok);
    check_all_seen(&c, p, N);
    if (q.asym) {
        int want = barriers & SG_BARRIER_MEMBARRIER ? SG_BARRIER_MEMBARRIER : SG_BARRIER_MIGRATE;
        CHECK(used == want, "closer used %s, want %s", sg_barrier_name(used),
              sg_barrier_name(want));
        CHECK(!q.unproven, "the close found no working barrier");
    }
    if (report)
        printf("  close (%s): producers %s, closer used %s, %llu accepted\n", mode,
           q.asym ? "on plain stores (membarrier registered)" : "seq_cst",
           sg_barrier_name(used), (unsigned long long)ok);
    cons_free(&c);
    sg_queue_destroy(&q);
}

/* The handshake mode is fixed per process by the first sg_queue_init();
 * between phases, with no queue alive, the driver starts it afresh as a
 * new process would (test-only: the library never resets it). */
static void reset_handshake_mode(const char *membarrier_env)
{
    if (membarrier_env)
        setenv("SEGOPS_MEMBARRIER", membarrier_env, 1);
    else
        unsetenv("SEGOPS_MEMBARRIER");
    sg_mode.asym = -1;
}

static int migrate_works; /* set by test_barrier, which runs first */

static int test_barrier(void)
{
    cpu_set_t before, after;
    CPU_ZERO(&before);
    CPU_ZERO(&after);
    CHECK(sched_getaffinity(0, sizeof(before), &before) == 0, "sched_getaffinity: %s",
          strerror(errno));
    int err = -1;
    int used = sg_barrier_heavy(SG_BARRIER_MIGRATE, &err);
    CHECK(err == 0, "membarrier was not asked for, yet errno %d", err);
    CHECK(sched_getaffinity(0, sizeof(after), &after) == 0, "sched_getaffinity: %s",
          strerror(errno));
    CHECK(CPU_EQUAL(&before, &after), "affinity not restored");
    migrate_works = used == SG_BARRIER_MIGRATE;
    int mb = sg_barrier_register();
    int mb_err = 0;
    int mb_used = mb ? sg_barrier_heavy(SG_BARRIER_MEMBARRIER, &mb_err) : SG_BARRIER_NONE;
    printf("  membarrier: %s; cpu migration: %s\n",
           mb_used == SG_BARRIER_MEMBARRIER ? "works" : "unavailable",
           migrate_works ? "works" : "FAILED");
    if (!migrate_works) {
        if (!allow_no_migrate) {
            FAIL("sg_barrier_heavy(SG_BARRIER_MIGRATE) found no way to visit every CPU");
        } else {
            printf("  SKIP: the migration barrier cannot run here (sched_setaffinity or "
                   "getcpu refused or emulated: qemu-user, a restricted container); its "
                   "close phase is skipped too\n");
            return 1;
        }
    }
    return 0;
}

/* Each mode several times: every round closes at a different point of the
 * producers' calls. */
static int test_close(void)
{
    int skipped = 0;
    int rounds = 20 / scale > 0 ? 20 / scale : 1;
    for (int r = 0; r < rounds && !atomic_load(&abort_run); r++) {
        int report = r == 0;
        reset_handshake_mode(NULL);
        close_with(SG_BARRIER_ALL, "any barrier", report);
        if (migrate_works) {
            reset_handshake_mode(NULL);
            close_with(SG_BARRIER_MIGRATE, "migration barrier only", report);
        } else {
            skipped = 1;
        }
        reset_handshake_mode("0");
        close_with(SG_BARRIER_ALL, "SEGOPS_MEMBARRIER=0", report);
    }
    reset_handshake_mode(NULL);
    printf("  close: %d rounds of each mode\n", rounds);
    return skipped;
}

/* The producer's stamp (TSC on x86, cntvct_el0 on aarch64) never goes
 * backwards on one thread, and converts to a wall time near the realtime
 * clock (within a day: a check of the arithmetic, not of timing). */
static void test_clock(void)
{
    struct sg_clock clk;
    sg_clock_init(&clk);
    uint64_t prev = sg_clock_stamp(&clk);
    for (int i = 0; i < 100000; i++) {
        uint64_t s = sg_clock_stamp(&clk);
        if (s < prev) {
            FAIL("stamp went backwards: %llu after %llu", (unsigned long long)s,
                 (unsigned long long)prev);
            break;
        }
        prev = s;
    }
    sg_clock_recalibrate(&clk);
    int64_t ms = sg_clock_to_unix_ms(&clk, sg_clock_stamp(&clk));
    int64_t now = sg_realtime_ns() / 1000000;
    CHECK(ms > now - 86400000 && ms < now + 86400000, "stamp converts to %lld ms, now %lld",
          (long long)ms, (long long)now);
    printf("  clock: %s\n", clk.use_tsc ? "raw counter (TSC / cntvct_el0)" : "CLOCK_REALTIME");
}

static void watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "queue_stress: watchdog: a test hung\n";
    ssize_t rc = write(2, msg, sizeof(msg) - 1);
    (void)rc;
    _exit(3);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc)
            scale = atoi(argv[++i]);
        else if (strcmp(argv[i], "--allow-no-migrate") == 0)
            allow_no_migrate = 1;
        else {
            fprintf(stderr, "usage: %s [--scale N] [--allow-no-migrate]\n", argv[0]);
            return 2;
        }
    }
    if (scale < 1)
        scale = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, watchdog);
    alarm(900); /* a hang guard only: a slow machine is not a failure */

    static const struct {
        const char *name;
        void (*fn)(void);
        int (*fn_skip)(void);
    } tests[] = {
        {"clock", test_clock, NULL},
        {"barrier", NULL, test_barrier},
        {"lanes", test_lanes, NULL},
        {"recycle", test_recycle, NULL},
        {"shared", test_shared, NULL},
        {"close", NULL, test_close},
    };
    int passed = 0, failed = 0, skipped = 0;
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        cur_test = tests[i].name;
        atomic_store(&failures, 0);
        atomic_store(&abort_run, 0);
        printf("[ RUN  ] %s\n", cur_test);
        int64_t t0 = sg_mono_ns();
        int skip = 0;
        if (tests[i].fn)
            tests[i].fn();
        else
            skip = tests[i].fn_skip();
        double secs = (double)(sg_mono_ns() - t0) / 1e9; /* reported, never checked */
        if (atomic_load(&failures)) {
            failed++;
            printf("[ FAIL ] %s (%.2f s)\n", cur_test, secs);
        } else {
            passed++;
            skipped += skip; /* partly skipped: reported, still passed */
            printf("[  OK  ] %s (%.2f s)%s\n", cur_test, secs,
                   skip ? " (part skipped, see above)" : "");
        }
    }
    if (skipped)
        printf("queue_stress: %d test(s) passed with a part skipped (see above)\n", skipped);
    printf("queue_stress: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
