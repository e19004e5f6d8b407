/* SPDX-License-Identifier: MIT */
/*
 * lane_churn.c -- stress of lane hand-over between short-lived threads:
 * what queue_stress does not do.  Holders change all the time.  Threads
 * that live for a few events each (more of them alive than owned lanes)
 * claim an owned lane on their first call -- listing themselves under the
 * registry lock, which a first call only tries (queue.c) -- give it back
 * at exit (the key destructor), and the next thread claims it with the
 * previous holder's ftail, stash and cur; the rest take turns on the
 * shared lanes through their `active` try-lock.  Lanes are tiny (capacity
 * 3 or 7: ring size == slot count, the tightest lap) and the consumer
 * holds up to `hold` taken slots per lane before it recycles them -- in
 * order, or shuffled -- so the sender's `filled` ring runs at its bound
 * (sg_filled_push()'s slot-count argument, queue.h) and the recycling
 * order varies.  Every slot is verified when taken and again right before
 * it is recycled (a holder that overwrote a slot or a ring entry the
 * consumer still had shows up), each (thread, seq) exactly once, in order
 * per (lane, thread).  A watchdog (alarm) ends a hung run.  Runs in every
 * build, TSan included (ctest; the Debug build has queue.h's asserts on).
 *
 * Usage: lane_churn [capacity] [threads] [shuffle 0/1] [hold]
 * Exit status 0 only when nothing was lost, duplicated, reordered or torn
 * and at least one owned lane changed hands.
 */
#include <pthread.h>
#include <unistd.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"
#include "segops.h"

enum { SLOT = 128, PER_MAX = 64, CONC = 5 };

static uint32_t nthreads_total = 1200;
static uint32_t capacity = 3;
static int shuffle;
static uint32_t hold_max = 3;
static struct sg_queue q;
static _Atomic uint64_t accepted, fails;
static _Atomic int producers_done;
static uint8_t *seen;   /* [tid * PER_MAX + seq] */
static int64_t *last;   /* [lane * nthreads_total + tid] */
static uint32_t *count; /* events each tid offers */

#define FAIL(...)                                                  \
    do {                                                           \
        if (atomic_fetch_add(&fails, 1) < 10) {                    \
            fprintf(stderr, "FAIL: " __VA_ARGS__);                 \
            fputc('\n', stderr);                                   \
        }                                                          \
    } while (0)

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void fill(void *slot, uint32_t tid, uint32_t seq)
{
    uint64_t *w = slot;
    w[0] = ((uint64_t)tid << 32) | seq;
    for (int i = 1; i < SLOT / 8; i++)
        w[i] = mix(w[0] * 131 + (uint64_t)i);
}

static int check(const void *slot, uint32_t *tid, uint32_t *seq)
{
    const uint64_t *w = slot;
    *tid = (uint32_t)(w[0] >> 32);
    *seq = (uint32_t)w[0];
    if (*tid >= nthreads_total || *seq >= PER_MAX)
        return 0;
    for (int i = 1; i < SLOT / 8; i++)
        if (w[i] != mix(w[0] * 131 + (uint64_t)i))
            return 0;
    return 1;
}

static int put(uint32_t tid, uint32_t seq)
{
    sg_call_enter(&q);
    struct sg_lane *l = sg_lane_enter(&q);
    if (!l) {
        sg_call_leave();
        return SEGOPS_ENOLANE;
    }
    if (atomic_load_explicit(&q.closing, memory_order_seq_cst)) {
        sg_lane_leave(l);
        sg_call_leave();
        return SEGOPS_ESHUTDOWN;
    }
    fill(l->cur, tid, seq);
#ifdef MUTATE /* sanity check of the harness: a stale ftail now and then */
    if (seq == 7 && tid % 50 == 0)
        l->ftail--;
#endif
    int rc = sg_lane_publish(l) == 0 ? 0 : SEGOPS_EFULL;
    sg_lane_leave(l);
    sg_call_leave();
    return rc;
}

static void *producer(void *arg)
{
    uint32_t tid = (uint32_t)(uintptr_t)arg;
    for (uint32_t s = 0; s < count[tid];) {
        int rc = put(tid, s);
        if (rc == 0) {
            s++;
            atomic_fetch_add(&accepted, 1);
        } else {
            sched_yield();
        }
    }
    return NULL; /* thread exit: the key destructor gives the owned lane back */
}

struct held {
    void *s[64];
    uint32_t n;
};

static void recycle_all(struct sg_lane *l, struct held *h, uint64_t *rng)
{
    if (shuffle)
        for (uint32_t i = h->n; i > 1; i--) {
            *rng = mix(*rng);
            uint32_t j = (uint32_t)(*rng % i);
            void *t = h->s[i - 1];
            h->s[i - 1] = h->s[j];
            h->s[j] = t;
        }
    for (uint32_t i = 0; i < h->n; i++) {
        uint32_t tid, seq;
        if (!check(h->s[i], &tid, &seq))
            FAIL("slot changed while the consumer held it (lane %ld)", (long)(l - q.lanes));
        sg_lane_recycle(l, h->s[i]);
    }
    h->n = 0;
}

static uint64_t got;

static void *consumer(void *arg)
{
    (void)arg;
    struct held *h = calloc(q.nlanes, sizeof(*h));
    if (!h)
        abort();
    uint64_t rng = 12345;
    for (;;) {
        int done = atomic_load(&producers_done);
        uint64_t took = 0;
        for (uint32_t li = 0; li < q.nlanes; li++) {
            struct sg_lane *l = &q.lanes[li];
            rng = mix(rng);
            uint32_t limit = 1 + (uint32_t)(rng % hold_max);
            void *s;
            while ((s = sg_lane_take(l)) != NULL) {
                took++;
                uint32_t tid, seq;
                if (!check(s, &tid, &seq)) {
                    FAIL("lane %u: slot torn or stale when taken", li);
                } else {
                    if (seen[(size_t)tid * PER_MAX + seq]++)
                        FAIL("tid %u seq %u twice", tid, seq);
                    int64_t *lp = &last[(size_t)li * nthreads_total + tid];
                    if ((int64_t)seq <= *lp)
                        FAIL("lane %u tid %u: seq %u after %lld", li, tid, seq, (long long)*lp);
                    *lp = seq;
                }
                h[li].s[h[li].n++] = s;
                if (h[li].n >= limit)
                    recycle_all(l, &h[li], &rng);
            }
            recycle_all(l, &h[li], &rng); /* empty: give back what we hold */
        }
        got += took;
        if (done && took == 0 && got == atomic_load(&accepted))
            break;
        if (!took)
            sched_yield();
    }
    free(h);
    return NULL;
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    if (pthread_create(t, NULL, fn, arg) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1)
        capacity = (uint32_t)atoi(argv[1]);
    if (argc > 2)
        nthreads_total = (uint32_t)atoi(argv[2]);
    if (argc > 3)
        shuffle = atoi(argv[3]);
    if (argc > 4)
        hold_max = (uint32_t)atoi(argv[4]);
    if (hold_max < 1 || hold_max > 64)
        hold_max = 3;
    alarm(540); /* a hang is a failure (before ctest's 600 s timeout) */
    if (sg_queue_init(&q, 2, 2, capacity, SLOT) != 0) {
        fprintf(stderr, "sg_queue_init failed\n");
        return 2;
    }
    seen = calloc((size_t)nthreads_total * PER_MAX, 1);
    last = malloc(sizeof(int64_t) * q.nlanes * nthreads_total);
    count = malloc(sizeof(uint32_t) * nthreads_total);
    if (!seen || !last || !count) {
        fprintf(stderr, "out of memory\n");
        return 2;
    }
    for (size_t i = 0; i < (size_t)q.nlanes * nthreads_total; i++)
        last[i] = -1;
    uint64_t total = 0;
    for (uint32_t t = 0; t < nthreads_total; t++) {
        count[t] = 1 + (uint32_t)(mix(t) % PER_MAX);
        total += count[t];
    }
    pthread_t cons;
    start(&cons, consumer, NULL);
    pthread_t live[CONC];
    uint32_t next = 0;
    for (int i = 0; i < CONC && next < nthreads_total; i++, next++)
        start(&live[i], producer, (void *)(uintptr_t)next);
    /* keep CONC producers alive: join the oldest, start the next */
    for (uint32_t k = 0; next < nthreads_total; k = (k + 1) % CONC, next++) {
        pthread_join(live[k], NULL);
        start(&live[k], producer, (void *)(uintptr_t)next);
    }
    for (int i = 0; i < CONC && i < (int)nthreads_total; i++)
        pthread_join(live[i], NULL);
    atomic_store(&producers_done, 1);
    pthread_join(cons, NULL);
    for (uint32_t t = 0; t < nthreads_total; t++)
        for (uint32_t s = 0; s < count[t]; s++)
            if (!seen[(size_t)t * PER_MAX + s]) {
                FAIL("tid %u seq %u never arrived", t, s);
                break;
            }
    if (got != total)
        FAIL("consumer took %llu, want %llu", (unsigned long long)got, (unsigned long long)total);
    uint32_t claims = atomic_load(&q.claims);
    /* the owned lanes changed hands: two lanes, many more claims */
    if (claims <= 2 && nthreads_total > 10)
        FAIL("%u owned claims: the owned lanes never changed hands", claims);
    if (sg_queue_depth(&q) != 0)
        FAIL("depth %llu after everything was taken", (unsigned long long)sg_queue_depth(&q));
    printf("lane_churn: cap %u, %u threads, shuffle %d, hold %u: %llu events, %u owned claims, "
           "depth %llu, %llu failures\n",
           capacity, nthreads_total, shuffle, hold_max, (unsigned long long)got, claims,
           (unsigned long long)sg_queue_depth(&q), (unsigned long long)atomic_load(&fails));
    sg_queue_destroy(&q);
    return atomic_load(&fails) != 0;
}
