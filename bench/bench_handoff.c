/* SPDX-License-Identifier: MIT */
/*
 * bench_handoff.c -- B7, the handoff experiment: how should N producer
 * threads hand a 256-byte event to one consumer thread, on ConcurrencyKit
 * rings, when producers may outnumber cores?  Standalone (no libsegops).
 *
 * Designs:
 *   mpsc-inplace  one ck MPSC ring of 256-byte entries; a producer reserves
 *                 a ticket, writes the event in place, commits (commits are
 *                 published in ticket order).
 *   pool+mpsc     a pool of 256-byte slots; producers take a free slot index
 *                 from an SPMC ring (the consumer refills it), write it, and
 *                 publish the index on one ck MPSC ring.
 *   spsc-lanes    one lane per producer thread: its own slots, a free and a
 *                 filled SPSC ring of slot pointers (libsegops' design); the
 *                 consumer round-robins over the lanes.
 *   spsc-cached   spsc-lanes on a minimal SPSC ring whose sides cache the
 *                 other side's index (re-read only when the ring looks full
 *                 or empty), as Quill does; ck's SPSC ring reads the other
 *                 side's index on every operation.
 *   spsc+fence    spsc-lanes plus a seq_cst store to a per-lane flag before
 *                 each publication and a release store after it: the cost of
 *                 libsegops' shutdown handshake (queue.h) in isolation.
 *
 * Modes: pressured = 20 calls then a 2 us spin (latency of each call, fenced
 * rdtsc bracket included); saturate = no pause (throughput: events the
 * consumer received per second; a call that finds the ring full fails and
 * is counted, never retried).  Every run lasts --ms (default 1000) and is
 * then stopped: a design whose producers stall waiting for a descheduled
 * predecessor cannot hang the suite, it reports what it achieved.
 *
 *   bench_handoff [--producers 1,2,4,8] [--ms 1000] [--design NAME,...]
 */
#include <pthread.h>
#include <stdatomic.h>

#include <ck_ring.h>

#include "bench_common.h"

#define EV_SIZE 256
#define RING 4096       /* entries per ring (power of two) */
#define LANE_SLOTS 4095 /* per-lane slots (ring capacity) */
#define POOL_SLOTS 8191 /* pool+mpsc: shared slots */
#define MAXP 16

struct ev {
    unsigned char b[EV_SIZE];
};
CK_RING_PROTOTYPE(ev, ev)

enum { D_MPSC, D_POOL, D_SPSC, D_SPSC_CACHED, D_SPSC_FENCE, ND };
static const char *dname[ND] = {"mpsc-inplace", "pool+mpsc", "spsc-lanes", "spsc-cached",
                                "spsc+fence"};

/* SPSC ring of pointers with cached indices: each side owns one cache line
 * (its index + its cached copy of the other's) and touches the other's line
 * only when its cached view says full/empty. */
struct cring {
    _Alignas(64) _Atomic uint32_t tail; /* pusher */
    uint32_t head_cache;
    _Alignas(64) _Atomic uint32_t head; /* popper */
    uint32_t tail_cache;
    _Alignas(64) void **buf;
    uint32_t mask;
};

static inline int cr_push(struct cring *r, void *v)
{
    uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (t - r->head_cache > r->mask) {
        r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        if (t - r->head_cache > r->mask)
            return 0;
    }
    r->buf[t & r->mask] = v;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return 1;
}

static inline int cr_pop(struct cring *r, void **v)
{
    uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (h == r->tail_cache) {
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (h == r->tail_cache)
            return 0;
    }
    *v = r->buf[h & r->mask];
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return 1;
}

static void cr_init(struct cring *r, void **buf, uint32_t size)
{
    atomic_store(&r->tail, 0);
    atomic_store(&r->head, 0);
    r->head_cache = r->tail_cache = 0;
    r->buf = buf;
    r->mask = size - 1;
}

struct lane {
    _Alignas(64) _Atomic unsigned active;
    struct ck_ring filled, freer;
    struct ck_ring_buffer *fbuf, *rbuf;
    struct ev *slots;
    struct cring cfilled, cfree;
    void **cfbuf, **crbuf;
};

static struct {
    int design, nprod, pressured;
    _Alignas(64) _Atomic int stop;
    _Alignas(64) _Atomic int producers_done;
    /* mpsc-inplace */
    struct ck_ring ring;
    struct ev *ring_buf;
    /* pool+mpsc */
    struct ck_ring pool_free, pool_filled;
    struct ck_ring_buffer *pool_free_buf, *pool_filled_buf;
    struct ev *pool;
    /* lanes */
    struct lane lanes[MAXP];
    _Alignas(64) uint64_t consumed;
    uint64_t checksum;
} G;

struct prod {
    int id;
    struct hist h;
    uint64_t ok, full;
};

/* Fills an event: the stamp and the producer id in a realistic 256 bytes. */
static inline void fill(struct ev *e, const struct ev *tmpl, uint64_t stamp)
{
    memcpy(e, tmpl, sizeof(*e));
    memcpy(e->b, &stamp, sizeof(stamp));
}

static inline int produce(struct prod *p, const struct ev *tmpl)
{
    uint64_t stamp = __rdtsc();
    switch (G.design) {
    case D_MPSC: {
        unsigned ticket;
        struct ev *slot = ck_ring_enqueue_reserve_mpsc_ev(&G.ring, G.ring_buf, &ticket);
        if (!slot)
            return 1;
        fill(slot, tmpl, stamp);
        ck_ring_enqueue_commit_mpsc(&G.ring, ticket);
        return 0;
    }
    case D_POOL: {
        void *idx;
        if (!ck_ring_trydequeue_spmc(&G.pool_free, G.pool_free_buf, &idx))
            return 1;
        fill(&G.pool[(uintptr_t)idx - 1], tmpl, stamp);
        /* cannot fail: the filled ring holds every slot */
        ck_ring_enqueue_mpsc(&G.pool_filled, G.pool_filled_buf, idx);
        return 0;
    }
    case D_SPSC_CACHED: {
        struct lane *l = &G.lanes[p->id];
        void *slot;
        if (!cr_pop(&l->cfree, &slot))
            return 1;
        fill(slot, tmpl, stamp);
        cr_push(&l->cfilled, slot);
        return 0;
    }
    default: {
        struct lane *l = &G.lanes[p->id];
        if (G.design == D_SPSC_FENCE)
            atomic_store_explicit(&l->active, 1, memory_order_seq_cst);
        void *slot;
        int rc = 1;
        if (ck_ring_dequeue_spsc(&l->freer, l->rbuf, &slot)) {
            fill(slot, tmpl, stamp);
            ck_ring_enqueue_spsc(&l->filled, l->fbuf, slot);
            rc = 0;
        }
        if (G.design == D_SPSC_FENCE)
            atomic_store_explicit(&l->active, 0, memory_order_release);
        return rc;
    }
    }
}

static void *producer(void *arg)
{
    struct prod *p = arg;
    struct ev tmpl;
    for (int i = 0; i < EV_SIZE; i++)
        tmpl.b[i] = (unsigned char)('a' + (i + p->id) % 26);
    long i = 0;
    while (!atomic_load_explicit(&G.stop, memory_order_relaxed)) {
        uint64_t a = tsc_begin();
        int rc = produce(p, &tmpl);
        uint64_t b = tsc_end();
        hist_add(&p->h, b - a);
        p->ok += rc == 0;
        p->full += rc != 0;
        if (G.pressured && ++i % 20 == 0)
            spin_ns(2000);
    }
    return NULL;
}

static inline void consume(const struct ev *e)
{
    uint64_t v;
    memcpy(&v, e->b + EV_SIZE - 8, 8);
    G.checksum += v ^ e->b[0];
    G.consumed++;
}

static void *consumer(void *arg)
{
    (void)arg;
    struct ev e;
    for (;;) {
        int got = 0;
        switch (G.design) {
        case D_MPSC:
            while (ck_ring_dequeue_mpsc_ev(&G.ring, G.ring_buf, &e)) {
                consume(&e);
                got = 1;
            }
            break;
        case D_POOL: {
            void *idx;
            while (ck_ring_dequeue_mpsc(&G.pool_filled, G.pool_filled_buf, &idx)) {
                consume(&G.pool[(uintptr_t)idx - 1]);
                ck_ring_enqueue_spmc(&G.pool_free, G.pool_free_buf, idx);
                got = 1;
            }
            break;
        }
        case D_SPSC_CACHED:
            for (int k = 0; k < G.nprod; k++) {
                struct lane *l = &G.lanes[k];
                void *slot;
                for (int j = 0; j < 64 && cr_pop(&l->cfilled, &slot); j++) {
                    consume(slot);
                    cr_push(&l->cfree, slot);
                    got = 1;
                }
            }
            break;
        default:
            for (int k = 0; k < G.nprod; k++) {
                struct lane *l = &G.lanes[k];
                void *slot;
                for (int j = 0; j < 64 && ck_ring_dequeue_spsc(&l->filled, l->fbuf, &slot);
                     j++) {
                    consume(slot);
                    ck_ring_enqueue_spsc(&l->freer, l->rbuf, slot);
                    got = 1;
                }
            }
        }
        if (!got) {
            if (atomic_load_explicit(&G.producers_done, memory_order_acquire))
                break;
            _mm_pause();
        }
    }
    return NULL;
}

static void setup(int design, int nprod)
{
    G.design = design;
    G.nprod = nprod;
    G.consumed = 0;
    atomic_store(&G.stop, 0);
    atomic_store(&G.producers_done, 0);
    if (design == D_MPSC) {
        ck_ring_init(&G.ring, RING);
        memset(G.ring_buf, 0, sizeof(struct ev) * RING);
    } else if (design == D_POOL) {
        ck_ring_init(&G.pool_free, POOL_SLOTS + 1);
        ck_ring_init(&G.pool_filled, POOL_SLOTS + 1);
        for (uintptr_t i = 1; i <= POOL_SLOTS; i++)
            ck_ring_enqueue_spmc(&G.pool_free, G.pool_free_buf, (void *)i);
    } else if (design == D_SPSC_CACHED) {
        for (int k = 0; k < nprod; k++) {
            struct lane *l = &G.lanes[k];
            cr_init(&l->cfilled, l->cfbuf, RING);
            cr_init(&l->cfree, l->crbuf, RING);
            for (int s = 0; s < LANE_SLOTS; s++)
                cr_push(&l->cfree, &l->slots[s]);
        }
    } else {
        for (int k = 0; k < nprod; k++) {
            struct lane *l = &G.lanes[k];
            ck_ring_init(&l->filled, RING);
            ck_ring_init(&l->freer, RING);
            atomic_store(&l->active, 0);
            for (int s = 0; s < LANE_SLOTS; s++)
                ck_ring_enqueue_spsc(&l->freer, l->rbuf, &l->slots[s]);
        }
    }
}

struct row {
    double p50, p99, p999, max, mev;
    uint64_t full;
};

static struct row run(int design, int nprod, int pressured, long ms)
{
    setup(design, nprod);
    G.pressured = pressured;
    struct prod *p = calloc((size_t)nprod, sizeof(*p));
    pthread_t th[MAXP], cth;
    pthread_create(&cth, NULL, consumer, NULL);
    for (int i = 0; i < nprod; i++) {
        p[i].id = i;
        pthread_create(&th[i], NULL, producer, &p[i]);
    }
    int64_t t0 = mono_ns();
    sleep_ns(ms * 1000000);
    uint64_t got = *(volatile uint64_t *)&G.consumed;
    int64_t t1 = mono_ns();
    atomic_store(&G.stop, 1);
    for (int i = 0; i < nprod; i++)
        pthread_join(th[i], NULL);
    atomic_store_explicit(&G.producers_done, 1, memory_order_release);
    pthread_join(cth, NULL);
    struct hist *all = calloc(1, sizeof(*all));
    struct row r = {0};
    for (int i = 0; i < nprod; i++) {
        hist_merge(all, &p[i].h);
        r.full += p[i].full;
    }
    r.p50 = hist_pct(all, 0.5);
    r.p99 = hist_pct(all, 0.99);
    r.p999 = hist_pct(all, 0.999);
    r.max = hist_max_ns(all);
    r.mev = (double)got / ((double)(t1 - t0) / 1e9) / 1e6;
    free(all);
    free(p);
    return r;
}

int main(int argc, char **argv)
{
    const char *prods = "1,2,4,8", *designs = "mpsc-inplace,pool+mpsc,spsc-lanes,spsc-cached,spsc+fence";
    long ms = 1000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--producers") && v)
            prods = v, i++;
        else if (!strcmp(a, "--ms") && v)
            ms = bench_num(v), i++;
        else if (!strcmp(a, "--design") && v)
            designs = v, i++;
        else {
            fprintf(stderr, "usage: %s [--producers 1,2,4,8] [--ms 1000] [--design a,b]\n",
                    argv[0]);
            return 2;
        }
    }
    bench_calibrate();
    bench_machine(stdout);
    G.ring_buf = aligned_alloc(64, sizeof(struct ev) * RING);
    G.pool = aligned_alloc(64, sizeof(struct ev) * POOL_SLOTS);
    G.pool_free_buf = calloc(POOL_SLOTS + 1, sizeof(struct ck_ring_buffer));
    G.pool_filled_buf = calloc(POOL_SLOTS + 1, sizeof(struct ck_ring_buffer));
    memset(G.pool, 0, sizeof(struct ev) * POOL_SLOTS);
    for (int k = 0; k < MAXP; k++) {
        G.lanes[k].slots = aligned_alloc(64, sizeof(struct ev) * LANE_SLOTS);
        memset(G.lanes[k].slots, 0, sizeof(struct ev) * LANE_SLOTS);
        G.lanes[k].fbuf = calloc(RING, sizeof(struct ck_ring_buffer));
        G.lanes[k].rbuf = calloc(RING, sizeof(struct ck_ring_buffer));
        G.lanes[k].cfbuf = calloc(RING, sizeof(void *));
        G.lanes[k].crbuf = calloc(RING, sizeof(void *));
    }
    printf("# handoff of a %d-byte event, N producers + 1 consumer, unpinned, %ld ms per run\n",
           EV_SIZE, ms);
    printf("# latency: pressured mode (20 calls, 2 us spin), ns per call, bracket included;\n"
           "# throughput: saturate mode, events received by the consumer per second\n\n");
    printf("| design       | prod | p50 ns | p99 ns | p99.9 ns |     max ns | sat. Mev/s | sat. max ns | sat. full |\n");
    printf("|--------------|------|--------|--------|----------|------------|------------|-------------|-----------|\n");
    int np[8], nn = 0;
    for (const char *s = prods; s && *s && nn < 8;) {
        int v = (int)bench_list_item(s);
        if (v >= 1 && v <= MAXP)
            np[nn++] = v;
        s = strchr(s, ',');
        if (s)
            s++;
    }
    for (int d = 0; d < ND; d++) {
        if (!strstr(designs, dname[d]))
            continue;
        for (int k = 0; k < nn; k++) {
            struct row lat = run(d, np[k], 1, ms);
            struct row sat = run(d, np[k], 0, ms);
            printf("| %-12s | %4d | %6.0f | %6.0f | %8.0f | %10.0f | %10.3f | %11.0f | %9" PRIu64
                   " |\n",
                   dname[d], np[k], lat.p50, lat.p99, lat.p999, lat.max, sat.mev, sat.max,
                   sat.full);
            fflush(stdout);
        }
    }
    printf("\n# checksum %" PRIu64 "\n", G.checksum);
    return 0;
}
