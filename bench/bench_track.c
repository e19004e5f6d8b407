/* SPDX-License-Identifier: MIT */
/*
 * bench_track.c -- B1: per-call latency of segops_track() and of
 * segops_track_prepared() next to two baselines and a floor, all run in the
 * same program and the same run (the names are those of the tables):
 *   libsegops     segops_track() of the event (a segops_event on the
 *                 caller's stack, as the README shows it)
 *   segops-prep   segops_track_prepared() of the same event: a handle made
 *                 by segops_prepare() (type and both keys) before the run's
 *                 threads start, freed after its client's shutdown (slots
 *                 point at it until the sender rendered them); the values
 *                 on the caller's stack.  The same client options as
 *                 libsegops, one client per run
 *   mutex+malloc  the existing C SDKs' design (baseline_mutex.c)
 *   spdlog-async  spdlog's async logger to a null sink (baseline_spdlog.cpp;
 *                 only when spdlog was found at build time)
 *   floor         the in-run floor baseline (floor_*() below): the least a
 *                 thread can do to hand this event to another thread -- a
 *                 per-thread SPSC ring (cached head and tail, each on its
 *                 own cache line, like Quill's queue) of slots as large as
 *                 libsegops' (slot_size, 512 by default), into which each
 *                 call copies the event's encoded bytes (the same bytes,
 *                 the same length that segops_track() writes:
 *                 sg_event_encode() of this event, made once) and one TSC
 *                 read as its timestamp; no validation, no encoding, no
 *                 shutdown handshake, no counters.  One consumer thread
 *                 drains every ring, reading each slot's bytes, and idles
 *                 as libsegops' sender does (sleeps from 20 us doubling to
 *                 5 ms).  It runs through the same worker loop, bursts and
 *                 bracket as the others, so every row can be read against
 *                 what this machine allowed in the same run.
 * All of them hand over the same four values: user_id, event_type, a string
 * and a double property; each takes its own timestamp.  --impl takes them
 * as segops, prepared, mutex, spdlog, floor (or by the names above).
 *
 * Each call is timed with a fenced rdtsc bracket (its own cost included,
 * printed first), into a log-linear histogram; p50/p99/p99.9/p99.99/max per
 * implementation, mode and producer count.  libsegops' sender delivers to
 * an in-process segops-sink on 127.0.0.1 during the run, as in production.
 *
 *   bench_track [--threads 1,2,4,8] [--mode all|LIST of burst,pressured,saturate]
 *               [--impl floor,segops,prepared,mutex,spdlog] [--calls N] [--budget-ms MS]
 *               [--capacity N] [--slot BYTES] [--lanes N] [--reps N] [--dat FILE]
 *               [--no-parts]
 *   bench_track --rate R [--threads 256] [--events N] [--capacity N]
 *               [--lanes N] [--shared N] [--pin-sender CPU]
 *               [--producer-cpus LIST] [--sender-nice N] [--sender-fifo PRIO]
 *               [--sink-nice N] [--duration-ms MS] [--reps N]
 *
 * Many threads (--rate, rate_main() below): each of --threads threads
 * tracks --events events (1,000 by default) at R events/s (absolute
 * schedule, no catch-up sleep when late; R = 0: as fast as it can; with
 * --duration-ms each calls for that long instead: threads that finish early
 * give their lane back, still full, to the next thread to start), with
 * the client's DEFAULT lane geometry unless --lanes/--capacity/--shared
 * are given; reports accepted, SEGOPS_EFULL, SEGOPS_ENOLANE and delivered
 * (after a flush), the sender's CPU time, and what the client cost:
 * address space reserved and memory committed at creation and after the
 * threads claimed their lanes.  --pin-sender sets pin_sender/sender_cpu;
 * --producer-cpus confines the producer threads to those CPUs;
 * --sender-nice sets the nice value of the thread named "segops-sender"
 * (setpriority on its tid; negative values need CAP_SYS_NICE);
 * --sender-fifo puts it in SCHED_FIFO at that priority (what
 * `chrt -f -p PRIO TID` does; CAP_SYS_NICE too); --sink-nice runs the
 * sink in a child process at that nice value (else in this process, where
 * saturating producers starve its threads as much as the sender).
 *
 * Modes: burst = 20 calls, then a 200 us sleep (clock_nanosleep: the CPU
 * is given back, as a server thread between requests would);
 * pressured = 20 calls, then a 2 us spin; saturate = no pause (libsegops:
 * lanes fill and SEGOPS_EFULL is counted; mutex: drops past its bound;
 * spdlog: blocks, its policy).  Every run stops at its time budget.
 *
 * Output, after the machine, the empty bracket and (on a VM whose TSC
 * advances in steps, as the reference guest's does by ~10 ns) that step:
 *   - the main table: one row per run of an implementation, mode and
 *     thread count.  --reps N makes N sweeps of every mode and thread
 *     count, each its own table; within a sweep the implementations of a
 *     cell run back to back, starting one further along at each sweep;
 *   - libsegops and segops-prep against the floor of the same run, with
 *     issue 14's targets and "met"/"not met" for each: segops-prep p50
 *     within 10 ns of the floor's and p99.9 within 1.5x; libsegops p50
 *     within 30 ns.  With --reps every figure is the median over the reps
 *     and each verdict says in how many reps the pair of that sweep met
 *     it; a last line per mode counts the thread counts met;
 *   - where the time goes (burst mode): p50 and p99 of the first call of
 *     each burst, the one after the 200 us sleep, apart from those of the
 *     other 19 (a second histogram per worker): what a pause costs;
 *   - ratios to the baselines (when one ran) and saturate scaling.
 * Every table after the main one, and --dat, reads the medians over the
 * reps (with one rep: its figures).
 * --no-parts leaves out the empty bracket and the parts of a call (about
 * 1.2 M loop iterations before the first run): for a slow instrument
 * (scripts/lines_per_call.sh runs this program under valgrind's lackey).
 * Figures, not assertions: this program never fails for being slow.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "baseline.h"
#include "bench_client.h"
#include "bench_common.h"
#include "client.h" /* internal: the lanes' geometry, for the cost lines */
#include "event.h" /* internal: the encoding step alone, for the breakdown */
#include "segops.h"
#include "sink.h"

enum { I_SEGOPS, I_PREPARED, I_MUTEX, I_SPDLOG, I_FLOOR, NIMPL };
static const char *impl_name[NIMPL] = {"libsegops", "segops-prep", "mutex+malloc", "spdlog-async",
                                       "floor"};
/* what --impl takes (the names above are accepted too) */
static const char *impl_opt[NIMPL] = {"segops", "prepared", "mutex", "spdlog", "floor"};
enum { M_BURST, M_PRESSURED, M_SATURATE, NMODE };
static const char *mode_name[NMODE] = {"burst", "pressured", "saturate"};

#define MAXTH 64

static const char USER[] = "user-123", TYPE[] = "order_placed", K1[] = "order_id",
                  V1[] = "ord-456", K2[] = "total";
static const double V2 = 89.95;

/* What one run of one cell (impl, mode, threads) measured. */
struct result {
    double p50, p99, p999, p9999, max, mcalls, maccepted;
    double first50, first99, rest50, rest99; /* burst: first call / the other 19 */
    uint64_t calls, full;
};
/* The figures of a result that cell_medians() takes the median of. */
static const size_t result_fig[] = {
    offsetof(struct result, p50),    offsetof(struct result, p99),
    offsetof(struct result, p999),   offsetof(struct result, p9999),
    offsetof(struct result, max),    offsetof(struct result, mcalls),
    offsetof(struct result, maccepted), offsetof(struct result, first50),
    offsetof(struct result, first99), offsetof(struct result, rest50),
    offsetof(struct result, rest99)};

/* A cell's runs, one per --reps (rep[k] of every cell ran in the same
 * sweep k), and the median of each figure over them, which every table
 * after the main one reads: with one rep, that run's own figures. */
struct cell {
    int n;
    struct result *rep; /* opt_reps of them */
    struct result med;
};
static struct cell cells[NIMPL][NMODE][MAXTH + 1];

struct worker {
    int impl, mode;
    void *ctx;
    long calls;
    uint64_t budget; /* tsc ticks from the start of measuring */
    pthread_barrier_t *bar;
    struct hist h;     /* every call but, in burst mode, the first of each burst */
    struct hist first; /* burst mode: the first call of each burst */
    uint64_t ok, full, other;
    double secs;
};

/* ---- the floor baseline (see the top of this file) ---- */

#define FLOOR_RINGS 64 /* one per producer thread: MAXTH */

struct floor_ring {
    /* producer's line: its tail and its cached copy of the head */
    _Alignas(64) _Atomic uint64_t tail;
    uint64_t head_seen;
    unsigned char *slots; /* written before `ready` (release) */
    uint64_t mask;
    /* consumer's line */
    _Alignas(64) _Atomic uint64_t head;
    _Atomic int ready;
};

struct floor {
    unsigned char ev[SG_SLOT_MAX]; /* the encoded event, made once */
    uint32_t len;                  /* its encoded size (sg_slot_hdr.len) */
    uint32_t stride;               /* slot size, as libsegops' */
    uint64_t cap;                  /* slots per ring (power of two) */
    _Atomic uint32_t nrings;
    _Atomic int stop;
    pthread_t consumer;
    /* the consumer's, written for every event: on their own line (next to
     * len and stride, which every call reads, each call after a pause
     * fetched that line back from the consumer's core) */
    _Alignas(64) uint64_t consumed, sum;
    _Alignas(64) struct floor_ring ring[FLOOR_RINGS];
};

static __thread struct floor_ring *floor_mine;
static __thread const struct floor *floor_of;

/* A thread's first call: its ring, committed (like a libsegops lane the
 * sender committed ahead).  Runs in the warm-up, never in the measured
 * loop. */
static struct floor_ring *floor_claim(struct floor *f)
{
    uint32_t i = atomic_fetch_add(&f->nrings, 1);
    if (i >= FLOOR_RINGS)
        return NULL;
    struct floor_ring *r = &f->ring[i];
    size_t bytes = f->cap * f->stride;
    r->slots = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r->slots == MAP_FAILED)
        return NULL;
    for (size_t off = 0; off < bytes; off += 4096)
        r->slots[off] = 0;
    r->mask = f->cap - 1;
    atomic_store_explicit(&r->ready, 1, memory_order_release);
    floor_mine = r;
    floor_of = f;
    return r;
}

/* One call: a full check against the cached head, one TSC read, a copy
 * of the event's bytes, the timestamp into them, one release store. */
static inline int floor_track(struct floor *f)
{
    struct floor_ring *r = floor_mine;
    if (__builtin_expect(floor_of != f, 0) && !(r = floor_claim(f)))
        return 2;
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (__builtin_expect(t - r->head_seen > r->mask, 0)) {
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (t - r->head_seen > r->mask)
            return 1;
    }
    unsigned char *slot = r->slots + (t & r->mask) * f->stride;
    uint64_t stamp = __rdtsc();
    memcpy(slot, f->ev, f->len);
    memcpy(slot + offsetof(struct sg_slot_hdr, stamp), &stamp, sizeof(stamp));
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return 0;
}

/* The consumer: reads every byte of every event (8 at a time), then gives
 * the slots back; idles like libsegops' sender. */
static void *floor_consume(void *arg)
{
    struct floor *f = arg;
    int64_t idle = 0;
    for (;;) {
        int took = 0, stop = atomic_load(&f->stop);
        uint32_t n = atomic_load(&f->nrings);
        for (uint32_t i = 0; i < n && i < FLOOR_RINGS; i++) {
            struct floor_ring *r = &f->ring[i];
            if (!atomic_load_explicit(&r->ready, memory_order_acquire))
                continue;
            uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
            uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
            for (; h != t; h++) {
                const unsigned char *s = r->slots + (h & r->mask) * f->stride;
                uint64_t w;
                for (uint32_t k = 0; k + 8 <= f->len; k += 8) {
                    memcpy(&w, s + k, 8);
                    f->sum += w;
                }
                f->consumed++;
                took = 1;
            }
            atomic_store_explicit(&r->head, h, memory_order_release);
        }
        if (took) {
            idle = 0;
        } else if (stop) {
            break;
        } else {
            idle = idle ? (idle * 2 < 5000000 ? idle * 2 : 5000000) : 20000;
            sleep_ns(idle);
        }
    }
    return NULL;
}

static struct floor *floor_new(uint32_t capacity, uint32_t slot_size)
{
    struct floor *f = aligned_alloc(64, (sizeof(*f) + 63) / 64 * 64); /* the rings' lines */
    if (!f)
        return NULL;
    memset(f, 0, sizeof(*f));
    f->stride = slot_size ? slot_size : 512;
    f->cap = 1;
    while (f->cap < (capacity ? capacity : 8192))
        f->cap <<= 1;
    segops_prop props[] = {SEGOPS_STR(K1, V1), SEGOPS_F64(K2, V2)};
    struct sg_event_in in = {USER, SEGOPS_NTS, TYPE, SEGOPS_NTS, NULL, SEGOPS_TIME_NONE, props, 2};
    if (sg_event_encode(f->ev, f->stride, &in, 0) != 0) {
        free(f);
        return NULL;
    }
    f->len = ((const struct sg_slot_hdr *)f->ev)->len;
    if (pthread_create(&f->consumer, NULL, floor_consume, f) != 0) {
        free(f);
        return NULL;
    }
    return f;
}

static void floor_free(struct floor *f)
{
    atomic_store(&f->stop, 1);
    pthread_join(f->consumer, NULL);
    uint32_t n = atomic_load(&f->nrings);
    for (uint32_t i = 0; i < n && i < FLOOR_RINGS; i++)
        if (f->ring[i].slots && f->ring[i].slots != MAP_FAILED)
            munmap(f->ring[i].slots, f->cap * f->stride);
    free(f);
}

/* segops-prep's context: its client and the handle of the event. */
struct prep_ctx {
    segops_client *c;
    segops_prepared *h;
};

/* One call of `impl`.  segops-prep's client and handle come in as
 * arguments that the worker read once before its loop, as the plain path
 * gets its client: the call then reads nothing the other path does not. */
static inline int do_track(int impl, void *ctx, const segops_event *ev, segops_client *pc,
                           const segops_prepared *ph, const segops_value *vals)
{
    switch (impl) {
    case I_SEGOPS: {
        int rc = segops_track((segops_client *)ctx, ev);
        return rc == 0 ? 0 : rc == SEGOPS_EFULL ? 1 : 2;
    }
    case I_PREPARED: {
        int rc = segops_track_prepared(pc, ph, USER, SEGOPS_NTS, vals, 2, SEGOPS_TIME_NONE);
        return rc == 0 ? 0 : rc == SEGOPS_EFULL ? 1 : 2;
    }
    case I_MUTEX:
        return bl_mutex_track((struct bl_mutex *)ctx, USER, TYPE, K1, V1, K2, V2);
#ifdef BENCH_HAVE_SPDLOG
    case I_SPDLOG:
        return bl_spdlog_track(ctx, USER, TYPE, K1, V1, K2, V2);
#endif
    case I_FLOOR:
        return floor_track((struct floor *)ctx);
    default:
        return 2;
    }
}

static inline void pause_after(int mode, long i)
{
    if (i % 20 != 19)
        return;
    if (mode == M_BURST)
        sleep_ns(200000);
    else if (mode == M_PRESSURED)
        spin_ns(2000);
}

static void *run(void *arg)
{
    struct worker *w = arg;
    segops_prop props[] = {SEGOPS_STR(K1, V1), SEGOPS_F64(K2, V2)};
    segops_event ev = {.user_id = USER, .event_type = TYPE, .payload = props, .payload_len = 2};
    /* segops-prep: the values of K1 and K2, in the order prepared */
    segops_value vals[] = {SEGOPS_VSTR(V1), SEGOPS_VF64(V2)};
    const struct prep_ctx *pctx = w->impl == I_PREPARED ? w->ctx : NULL;
    segops_client *pc = pctx ? pctx->c : NULL;
    const segops_prepared *ph = pctx ? pctx->h : NULL;
    /* warm-up: claims the lane, faults the path in, fills caches */
    for (long i = 0; i < 2000; i++) {
        do_track(w->impl, w->ctx, &ev, pc, ph, vals);
        pause_after(w->mode == M_SATURATE ? M_PRESSURED : w->mode, i);
    }
    pthread_barrier_wait(w->bar);
    int64_t t0 = mono_ns();
    uint64_t deadline = __rdtsc() + w->budget;
    long i;
    for (i = 0; i < w->calls; i++) {
        uint64_t a = tsc_begin();
        int rc = do_track(w->impl, w->ctx, &ev, pc, ph, vals);
        uint64_t b = tsc_end();
        /* burst: the call right after the sleep apart from the other 19
         * (one() merges them for the main table), to show what a pause
         * costs -- whatever it left cold -- against a warm call; one
         * histogram or the other, so a call costs the loop no more */
        hist_add(w->mode == M_BURST && i % 20 == 0 ? &w->first : &w->h, b - a);
        w->ok += rc == 0;
        w->full += rc == 1;
        w->other += rc == 2;
        pause_after(w->mode, i);
        if ((i & 255) == 255 && b > deadline)
            break;
    }
    w->secs = (double)(mono_ns() - t0) / 1e9;
    return NULL;
}

static uint16_t sink_port;
static uint32_t opt_capacity = 8192, opt_slot = 0, opt_lanes = 0;
static long opt_reps = 1; /* latency runs: sweeps; --rate: runs of each row */
static int opt_no_parts;  /* --no-parts: no bracket_cost(), no cost_breakdown() */

/* libsegops' client for one run (segops-prep's too: the same options). */
static segops_client *run_client(int threads)
{
    char url[64];
    bench_sink_url(url, sizeof(url), sink_port);
    segops_options o;
    bench_client_opts(&o, url);
    /* --lanes below --threads: the extra threads use shared lanes */
    o.max_producers = opt_lanes ? opt_lanes : (uint32_t)threads;
    o.queue_capacity = opt_capacity;
    o.slot_size = opt_slot;
    return bench_client_new(&o, "bench_track: client");
}

static void *impl_new(int impl, int threads)
{
    switch (impl) {
    case I_SEGOPS:
        return run_client(threads);
    case I_PREPARED: {
        struct prep_ctx *p = calloc(1, sizeof(*p));
        segops_prop_spec keys[] = {SEGOPS_KEY_STR(K1), SEGOPS_KEY_F64(K2)};
        int rc = p ? segops_prepare(TYPE, SEGOPS_NTS, keys, 2, &p->h) : SEGOPS_ENOMEM;
        if (rc) {
            fprintf(stderr, "bench_track: segops_prepare: %s\n", segops_strerror(rc));
            exit(1);
        }
        p->c = run_client(threads);
        return p;
    }
    case I_MUTEX:
        return bl_mutex_new(8192 * (size_t)threads);
#ifdef BENCH_HAVE_SPDLOG
    case I_SPDLOG:
        return bl_spdlog_new(8192 * (size_t)threads);
#endif
    case I_FLOOR:
        return floor_new(opt_capacity, opt_slot);
    }
    return NULL;
}

static void impl_free(int impl, void *ctx)
{
    switch (impl) {
    case I_SEGOPS:
        segops_flush(ctx, 30000);
        segops_shutdown(ctx, 30000, NULL);
        break;
    case I_PREPARED: {
        struct prep_ctx *p = ctx;
        segops_flush(p->c, 30000);
        segops_shutdown(p->c, 30000, NULL);
        segops_prepared_free(p->h); /* no slot points at it any more */
        free(p);
        break;
    }
    case I_MUTEX:
        bl_mutex_free(ctx);
        break;
#ifdef BENCH_HAVE_SPDLOG
    case I_SPDLOG:
        bl_spdlog_free(ctx);
        break;
#endif
    case I_FLOOR:
        floor_free(ctx);
        break;
    }
}

static void one(int impl, int mode, int threads, long calls, long budget_ms)
{
    void *ctx = impl_new(impl, threads);
    struct worker *w = calloc((size_t)threads, sizeof(*w));
    pthread_t th[MAXTH];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++) {
        w[i].impl = impl;
        w[i].mode = mode;
        w[i].ctx = ctx;
        w[i].calls = calls;
        w[i].bar = &bar;
        w[i].budget = ns_to_ticks((uint64_t)budget_ms * 1000000u);
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    struct hist *all = calloc(1, sizeof(*all)), *first = calloc(1, sizeof(*first));
    struct hist *rest = calloc(1, sizeof(*rest));
    uint64_t ok = 0, full = 0;
    double secs = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        hist_merge(rest, &w[i].h);
        hist_merge(first, &w[i].first);
        ok += w[i].ok;
        full += w[i].full;
        if (w[i].secs > secs)
            secs = w[i].secs;
    }
    impl_free(impl, ctx);
    pthread_barrier_destroy(&bar);
    struct cell *c = &cells[impl][mode][threads];
    if (!c->rep && !(c->rep = calloc((size_t)opt_reps, sizeof(*c->rep)))) {
        perror("bench_track");
        exit(1);
    }
    if (c->n == opt_reps) { /* main() runs each cell once per sweep */
        fprintf(stderr, "bench_track: %s %s %d ran more than --reps times\n", impl_name[impl],
                mode_name[mode], threads);
        exit(1);
    }
    struct result *r = &c->rep[c->n++];
    hist_merge(all, rest);
    hist_merge(all, first);
    r->first50 = hist_pct(first, 0.50);
    r->first99 = hist_pct(first, 0.99);
    r->rest50 = hist_pct(rest, 0.50);
    r->rest99 = hist_pct(rest, 0.99);
    r->p50 = hist_pct(all, 0.50);
    r->p99 = hist_pct(all, 0.99);
    r->p999 = hist_pct(all, 0.999);
    r->p9999 = hist_pct(all, 0.9999);
    r->max = hist_max_ns(all);
    r->calls = all->count;
    r->full = full;
    r->mcalls = (double)all->count / secs / 1e6;
    r->maccepted = (double)ok / secs / 1e6;
    printf("| %-12s | %-9s | %2d | %6.0f | %6.0f | %7.0f | %8.0f | %9.0f | %8.2f | %8.2f | %9" PRIu64
           " | %8" PRIu64 " |\n",
           impl_name[impl], mode_name[mode], threads, r->p50, r->p99, r->p999, r->p9999, r->max,
           r->mcalls, r->maccepted, r->calls, full);
    fflush(stdout);
    free(all);
    free(first);
    free(rest);
    free(w);
}

/* A virtual machine's TSC may advance in steps: on the reference guest
 * back-to-back reads differ by 26 ticks (10.0 ns) and reads further apart
 * by multiples of 26, so every figure is a multiple of ~10 ns and one step
 * is the finest difference a table can show.  Returns the step in ticks:
 * the most common difference of back-to-back reads, if reads 0-6 pauses
 * apart are nearly all within a tick of its multiples; else 1 (on bare
 * metal the differences spread over every value). */
static uint64_t tsc_step(void)
{
    enum { N = 100000, MAXD = 1024 };
    uint32_t *cnt = calloc(MAXD, sizeof(*cnt));
    if (!cnt)
        return 1;
    for (int i = 0; i < N; i++) {
        uint64_t a = __rdtsc(), b = __rdtsc();
        if (b - a < MAXD)
            cnt[b - a]++;
    }
    uint64_t step = 1;
    for (uint64_t d = 2; d < MAXD; d++)
        if (cnt[d] > cnt[step])
            step = d;
    free(cnt);
    if (step < 4) /* within a tick of multiples of 2 or 3: any value */
        return 1;
    int on = 0;
    for (int i = 0; i < N; i++) {
        uint64_t a = __rdtsc();
        for (int k = 0; k < i % 7; k++)
            _mm_pause();
        uint64_t r = (__rdtsc() - a) % step;
        on += r <= 1 || r >= step - 1;
    }
    return on >= N / 10 * 9 ? step : 1;
}

static double tsc_step_ns; /* 0: the TSC is not stepped */

/* The bracket alone: what every figure above includes. */
static void bracket_cost(void)
{
    struct hist *h = calloc(1, sizeof(*h));
    for (int i = 0; i < 200000; i++) {
        uint64_t a = tsc_begin();
        uint64_t b = tsc_end();
        hist_add(h, b - a);
    }
    printf("# empty fenced rdtsc bracket: p50 %.0f ns, p99 %.0f ns, p99.9 %.0f ns\n",
           hist_pct(h, 0.5), hist_pct(h, 0.99), hist_pct(h, 0.999));
    free(h);
    uint64_t step = tsc_step();
    if (step > 1) {
        tsc_step_ns = (double)step * bench_ns_per_tick;
        printf("# the TSC advances in steps of %" PRIu64 " ticks (%.1f ns) here: every figure is "
               "a multiple of about %.0f ns\n",
               step, tsc_step_ns, tsc_step_ns);
    }
}

/* sg_event_encode() of NUL-terminated strings (the 0.1 call shape). */
static int encode_nts(void *slot, size_t size, const char *u, const char *t, const char *at,
                      const segops_prop *p, size_t n, uint64_t stamp)
{
    struct sg_event_in in = {u, SEGOPS_NTS, t, SEGOPS_NTS, at, SEGOPS_TIME_NONE, p, n};
    return sg_event_encode(slot, size, &in, stamp);
}

/* What one call is made of, measured piece by piece on this thread with
 * warm caches and no other thread running: the TSC read every track takes
 * for its timestamp, and the validation + encoding of the event into a
 * slot (sg_event_encode, internal, on one warm slot).  The rest of a call
 * is the lane: a thread-local check, the shutdown flag, one ring push. */
static volatile uint64_t keep;

static void cost_breakdown(void)
{
    enum { N = 200000 };
    uint64_t sink = 0;
    int64_t t0 = mono_ns();
    for (int i = 0; i < N; i++)
        sink += __rdtsc();
    double tsc_ns = (double)(mono_ns() - t0) / N;

    static _Alignas(64) unsigned char slot[512];
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95)};
    struct hist *h = calloc(1, sizeof(*h));
    for (int i = 0; i < N; i++) {
        uint64_t a = tsc_begin();
        sink += (uint64_t)encode_nts(slot, sizeof(slot), "user-123", "order_placed", NULL, props, 2,
                                     (uint64_t)i);
        uint64_t b = tsc_end();
        hist_add(h, b - a);
    }
    t0 = mono_ns();
    for (int i = 0; i < N; i++)
        sink += (uint64_t)encode_nts(slot, sizeof(slot), "user-123", "order_placed", NULL, props, 2,
                                     (uint64_t)i);
    double enc_ns = (double)(mono_ns() - t0) / N;
    printf("# parts of a call (warm, this thread alone): one TSC read %.1f ns (back to back);"
           " validation + encoding (sg_event_encode) p50 %.0f ns bracketed, %.1f ns per call"
           " back to back\n",
           tsc_ns, hist_pct(h, 0.5), enc_ns);
    keep = sink; /* the results are used: nothing above may be elided */
    free(h);
}

/* ---- medians over the reps ---- */

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++) /* a handful of values: insertion sort */
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double x = v[j];
            v[j] = v[j - 1];
            v[j - 1] = x;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void cell_medians(struct cell *c)
{
    double *v = calloc((size_t)c->n, sizeof(*v));
    c->med = c->rep[c->n - 1]; /* calls and full: the last rep's */
    for (size_t f = 0; f < sizeof(result_fig) / sizeof(result_fig[0]); f++) {
        for (int k = 0; k < c->n; k++)
            memcpy(&v[k], (const char *)&c->rep[k] + result_fig[f], sizeof(double));
        double m = median(v, c->n);
        memcpy((char *)&c->med + result_fig[f], &m, sizeof(double));
    }
    free(v);
}

/* ---- against the floor: printed after the main table ---- */

/* Issue 14's targets, against the floor of the same run. */
#define T_PREP_P50_NS 10.0  /* segops-prep p50 at most this over the floor's */
#define T_PREP_P999_X 1.5   /* segops-prep p99.9 at most this times the floor's */
#define T_PLAIN_P50_NS 30.0 /* libsegops p50 at most this over the floor's */

/* The verdicts go by the figures as printed (whole ns; ratios to 0.01):
 * where the TSC advances in steps (26 ticks = 10.0 ns on the reference
 * guest), a difference of one step prints as +10 and has to read as
 * within 10 ns, though it is 10.01. */
static int p50_met(double path, double floor_p50, double target)
{
    return path - floor_p50 < target + 0.5;
}

static int p999_met(double path, double floor_p999, double target)
{
    return floor_p999 > 0 && path / floor_p999 < target + 0.005;
}

/* "met" or "not met", and with several reps in how many of them the
 * rep's own pair (the path and the floor of the same sweep) met it. */
static void verdict(char *out, size_t n, int met_on_medians, int reps_met, int reps)
{
    if (reps > 1)
        snprintf(out, n, "%s (%d/%d)", met_on_medians ? "met" : "not met", reps_met, reps);
    else
        snprintf(out, n, "%s", met_on_medians ? "met" : "not met");
}

/* One row: libsegops (p50 target only) or segops-prep (both targets).
 * Adds 1 to met[0] / met[1] for each target met on the medians. */
static void floor_row(int m, int th, int impl, int *met)
{
    const struct cell *f = &cells[I_FLOOR][m][th], *s = &cells[impl][m][th];
    if (!s->n)
        return;
    int prep = impl == I_PREPARED, reps = s->n < f->n ? s->n : f->n;
    double t50 = prep ? T_PREP_P50_NS : T_PLAIN_P50_NS;
    int ok50 = p50_met(s->med.p50, f->med.p50, t50), n50 = 0, n999 = 0;
    int ok999 = p999_met(s->med.p999, f->med.p999, T_PREP_P999_X);
    for (int k = 0; k < reps; k++) {
        n50 += p50_met(s->rep[k].p50, f->rep[k].p50, t50);
        n999 += p999_met(s->rep[k].p999, f->rep[k].p999, T_PREP_P999_X);
    }
    char v50[40], v999[40] = "-", tgt999[16] = "-";
    verdict(v50, sizeof(v50), ok50, n50, reps);
    if (prep) {
        verdict(v999, sizeof(v999), ok999, n999, reps);
        snprintf(tgt999, sizeof(tgt999), "%.2f", T_PREP_P999_X);
    }
    met[0] += ok50;
    met[1] += prep && ok999;
    printf("| %-9s | %2d | %-11s | %9.0f | %6.0f | %+11.0f | %+6.0f | %-13s | %11.0f | %7.0f |"
           " %13.2f | %6s | %-13s |\n",
           mode_name[m], th, impl_name[impl], f->med.p50, s->med.p50, s->med.p50 - f->med.p50,
           t50, v50, f->med.p999, s->med.p999, s->med.p999 / f->med.p999, tgt999, v999);
}

static void floor_table(const int *th, int nth)
{
    int any = 0;
    for (int m = 0; m < NMODE; m++)
        for (int t = 0; t < nth; t++)
            any |= cells[I_FLOOR][m][th[t]].n &&
                   (cells[I_SEGOPS][m][th[t]].n || cells[I_PREPARED][m][th[t]].n);
    if (!any) /* nothing to read against the floor: no table */
        return;
    printf("\n# libsegops and segops-prep against the floor of the same run: p50 over the "
           "floor's (ns), p99.9 as a ratio to the floor's\n");
    printf("# issue 14's targets: segops-prep p50 within %.0f ns and p99.9 within %.2fx; "
           "libsegops p50 within %.0f ns; verdicts on the figures as printed",
           T_PREP_P50_NS, T_PREP_P999_X, T_PLAIN_P50_NS);
    if (tsc_step_ns > 0)
        printf(" (the TSC moves in steps of %.1f ns here: one step is the finest difference)",
               tsc_step_ns);
    printf("\n");
    if (opt_reps > 1)
        printf("# every figure: the median over %ld reps (sweeps); (k/%ld): the reps whose own "
               "pair, path and floor of the same sweep, met the target\n",
               opt_reps, opt_reps);
    printf("\n| mode      | th | impl        | floor p50 |    p50 | p50 - floor | target |"
           " p50 met       | floor p99.9 |   p99.9 | p99.9 / floor | target | p99.9 met     |\n");
    printf("|-----------|----|-------------|-----------|--------|-------------|--------|"
           "---------------|-------------|---------|---------------|--------|---------------|\n");
    int met[NMODE][2][2] = {{{0}}}, rows[NMODE][2] = {{0}};
    for (int m = 0; m < NMODE; m++)
        for (int t = 0; t < nth; t++) {
            if (!cells[I_FLOOR][m][th[t]].n)
                continue;
            floor_row(m, th[t], I_SEGOPS, met[m][0]);
            floor_row(m, th[t], I_PREPARED, met[m][1]);
            rows[m][0] += cells[I_SEGOPS][m][th[t]].n > 0;
            rows[m][1] += cells[I_PREPARED][m][th[t]].n > 0;
        }
    if (opt_reps < 2)
        return;
    /* one line per mode: how the medians fare, over its thread counts */
    printf("\n");
    for (int m = 0; m < NMODE; m++) {
        if (!rows[m][0] && !rows[m][1])
            continue;
        printf("# %s, medians of %ld reps: targets met at", mode_name[m], opt_reps);
        if (rows[m][1])
            printf(" %d of %d thread counts for segops-prep p50, %d of %d for its p99.9%s",
                   met[m][1][0], rows[m][1], met[m][1][1], rows[m][1], rows[m][0] ? "," : "");
        if (rows[m][0])
            printf(" %d of %d for libsegops p50", met[m][0][0], rows[m][0]);
        printf("\n");
    }
}

/* ---- where the time goes: the first call of a burst ---- */

static void first_call_table(const int *th, int nth)
{
    /* the floor first, as the row to read the others against */
    static const int show[NIMPL] = {I_FLOOR, I_SEGOPS, I_PREPARED, I_MUTEX, I_SPDLOG};
    int any = 0;
    for (int t = 0; t < nth; t++)
        for (int i = 0; i < NIMPL; i++)
            any |= cells[i][M_BURST][th[t]].n > 0;
    if (!any)
        return;
    printf("\n# where the time goes, burst mode: the first call of each burst, right after the "
           "200 us sleep (what the pause costs: whatever it left cold), against the other 19 "
           "calls; ns, "
           "bracket included%s\n\n",
           opt_reps > 1 ? "; medians over the reps" : "");
    printf("| impl         | th | first p50 | first p99 | rest p50 | rest p99 |\n");
    printf("|--------------|----|-----------|-----------|----------|----------|\n");
    for (int t = 0; t < nth; t++)
        for (int k = 0; k < NIMPL; k++) {
            const struct cell *c = &cells[show[k]][M_BURST][th[t]];
            if (c->n)
                printf("| %-12s | %2d | %9.0f | %9.0f | %8.0f | %8.0f |\n", impl_name[show[k]],
                       th[t], c->med.first50, c->med.first99, c->med.rest50, c->med.rest99);
        }
}

/* ---- many threads at a fixed rate (--rate) ---- */

#define RATE_MAXTH 4096

static long opt_rate = -1, opt_events = 1000, opt_duration_ms = 0;
static int opt_pin = -1, opt_nice = 0, opt_nice_set = 0, opt_fifo = 0;
static int opt_sink_nice = 0, opt_sink_nice_set = 0;
static uint32_t opt_shared = 0;
static int opt_capacity_set = 0;
static const char *opt_pcpus = NULL;

struct rate_worker {
    segops_client *c;
    long events;
    int64_t period_ns; /* 0: as fast as it can */
    int64_t duration_ns; /* > 0: calls until then instead of `events` */
    pthread_barrier_t *bar;
    cpu_set_t *cpus;
    uint64_t ok, full, nolane, other;
};

static void *rate_run(void *arg)
{
    struct rate_worker *w = arg;
    if (w->cpus)
        pthread_setaffinity_np(pthread_self(), sizeof(*w->cpus), w->cpus);
    segops_prop props[] = {SEGOPS_STR(K1, V1), SEGOPS_F64(K2, V2)};
    segops_event ev = {.user_id = USER, .event_type = TYPE, .payload = props, .payload_len = 2};
    pthread_barrier_wait(w->bar);
    int64_t t0 = mono_ns();
    for (long i = 0; w->duration_ns ? (i & 63) || mono_ns() - t0 < w->duration_ns : i < w->events;
         i++) {
        if (w->period_ns) {
            int64_t due = t0 + i * w->period_ns, now = mono_ns();
            if (due > now)
                sleep_ns(due - now);
        }
        int rc = segops_track(w->c, &ev);
        w->ok += rc == 0;
        w->full += rc == SEGOPS_EFULL;
        w->nolane += rc == SEGOPS_ENOLANE;
        w->other += rc != 0 && rc != SEGOPS_EFULL && rc != SEGOPS_ENOLANE;
    }
    return NULL;
}

/* Address space (VmSize) and resident memory of the process, bytes. */
static void vm_now(long *vsz, long *rss)
{
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &size, &res) != 2)
        size = res = 0;
    if (f)
        fclose(f);
    *vsz = size * sysconf(_SC_PAGESIZE);
    *rss = res * sysconf(_SC_PAGESIZE);
}

/* Slot memory committed so far: the lanes touched (lane_touch). */
static double lanes_committed_mib(const struct sg_queue *q, uint32_t *nlanes)
{
    size_t b = 0;
    *nlanes = 0;
    for (uint32_t i = 0; i < q->nlanes; i++)
        if (atomic_load(&q->lanes[i].touched)) {
            b += (size_t)q->lanes[i].nslots * q->slot_size;
            (*nlanes)++;
        }
    return (double)b / 1048576.0;
}

static void rate_one(int threads, cpu_set_t *pcpus)
{
    char url[64];
    bench_sink_url(url, sizeof(url), sink_port);
    segops_options o;
    bench_client_opts(&o, url);
    o.max_producers = opt_lanes; /* 0: the defaults */
    o.queue_capacity = opt_capacity_set ? opt_capacity : 0;
    o.shared_lanes = opt_shared;
    o.slot_size = opt_slot;
    if (opt_pin >= 0) {
        o.pin_sender = 1;
        o.sender_cpu = opt_pin;
    }
    long v0, r0, v1, r1, v2, r2;
    vm_now(&v0, &r0);
    segops_client *c = bench_client_new(&o, "bench_track: client");
    vm_now(&v1, &r1);
    const struct sg_queue *q = &c->q;
    sleep_ns(20000000); /* the sender is up (and sets its nice value below) */
    int stid = find_task("segops-sender");
    if (opt_nice_set && stid > 0 && setpriority(PRIO_PROCESS, (id_t)stid, opt_nice) != 0)
        printf("# setpriority(sender, %d): %s\n", opt_nice, strerror(errno));
    struct sched_param sp = {.sched_priority = opt_fifo};
    if (opt_fifo && stid > 0 && sched_setscheduler(stid, SCHED_FIFO, &sp) != 0)
        printf("# sched_setscheduler(sender, SCHED_FIFO %d): %s\n", opt_fifo, strerror(errno));
    int64_t cpu0 = task_cpu_ns(stid);

    struct rate_worker *w = calloc((size_t)threads, sizeof(*w));
    pthread_t *th = calloc((size_t)threads, sizeof(*th));
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 256 * 1024);
    for (int i = 0; i < threads; i++) {
        w[i].c = c;
        w[i].events = opt_events;
        w[i].period_ns = opt_rate > 0 ? 1000000000 / opt_rate : 0;
        w[i].duration_ns = opt_duration_ms * 1000000;
        w[i].bar = &bar;
        w[i].cpus = pcpus;
        if (pthread_create(&th[i], &at, rate_run, &w[i]) != 0) {
            fprintf(stderr, "bench_track: pthread_create %d: %s\n", i, strerror(errno));
            exit(1);
        }
    }
    int64_t t0 = mono_ns();
    uint64_t ok = 0, full = 0, nolane = 0, other = 0, offered = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
        full += w[i].full;
        nolane += w[i].nolane;
        other += w[i].other;
    }
    offered = ok + full + nolane + other;
    double secs = (double)(mono_ns() - t0) / 1e9;
    /* the threads are gone, their lanes given back but still committed */
    vm_now(&v2, &r2);
    uint32_t ncommitted;
    double committed = lanes_committed_mib(q, &ncommitted);
    /* the sender's CPU time while the producers ran (the flush is not in it) */
    double cpu = cpu0 >= 0 ? (double)(task_cpu_ns(stid) - cpu0) / 1e9 : -1;
    segops_flush(c, 60000);
    segops_counters k = SEGOPS_COUNTERS_INIT;
    segops_stats(c, &k);
    printf("| %4d | %5ld | %3u+%u | %s | %8" PRIu64 " | %8" PRIu64 " | %6" PRIu64 " | %6" PRIu64
           " | %8" PRIu64 " | %6.2f | %5.2f | %7.0f | %6.3f | %5.1f | %7.1f | %6.1f | %4u |"
           " %7.1f |\n",
           threads, opt_rate, q->nowned, q->nshared, opt_capacity_set ? "fixed" : "dflt ", offered,
           ok, full, nolane, k.delivered, 100.0 * (double)(offered - k.delivered) / (double)offered,
           secs, (double)ok / secs, cpu, cpu >= 0 ? 100.0 * cpu / secs : -1,
           (double)(v1 - v0) / 1048576.0, (double)(r1 - r0) / 1048576.0, ncommitted,
           committed);
    (void)r2;
    (void)v2;
    if (other)
        printf("# %" PRIu64 " calls failed otherwise\n", other);
    fflush(stdout);
    segops_shutdown(c, 30000, NULL);
    pthread_attr_destroy(&at);
    pthread_barrier_destroy(&bar);
    free(th);
    free(w);
}

/* --sink-nice: the sink in a child process at that nice value, so that
 * the producers under test do not starve the server's threads too (in
 * production the server is another machine).  Returns its pid. */
static pid_t rate_sink_process(int nice_value)
{
    int fds[2];
    if (pipe(fds) != 0)
        exit(1);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        if (setpriority(PRIO_PROCESS, 0, nice_value) != 0)
            fprintf(stderr, "bench_track: sink nice %d: %s\n", nice_value, strerror(errno));
        uint16_t port = 0;
        struct sink *s = bench_sink_start(NULL, &port);
        if (!s || write(fds[1], &port, sizeof(port)) != sizeof(port))
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    if (pid < 0 || read(fds[0], &sink_port, sizeof(sink_port)) != sizeof(sink_port)) {
        fprintf(stderr, "bench_track: the sink process did not start\n");
        exit(1);
    }
    close(fds[0]);
    return pid;
}

static int rate_main(const char *threads_arg)
{
    int th[16], nth = 0;
    for (const char *s = threads_arg; *s && nth < 16;) {
        long v = bench_list_item(s);
        if (v < 1 || v > RATE_MAXTH) {
            fprintf(stderr, "bench_track: --threads: 1..%d in --rate mode\n", RATE_MAXTH);
            return 2;
        }
        th[nth++] = (int)v;
        s = strchr(s, ',');
        if (!s)
            break;
        s++;
    }
    cpu_set_t pcpus, *pc = NULL;
    if (opt_pcpus) {
        CPU_ZERO(&pcpus);
        for (const char *s = opt_pcpus; *s;) {
            long v = bench_list_item(s);
            if (v >= CPU_SETSIZE) {
                fprintf(stderr, "bench_track: --producer-cpus: CPU %ld\n", v);
                return 2;
            }
            CPU_SET((int)v, &pcpus);
            s = strchr(s, ',');
            if (!s)
                break;
            s++;
        }
        pc = &pcpus;
    }
    bench_calibrate();
    bench_machine(stdout);
    struct sink *sink = NULL;
    pid_t sink_pid = -1;
    if (opt_sink_nice_set) {
        sink_pid = rate_sink_process(opt_sink_nice);
        printf("# sink: a child process at nice %d\n", opt_sink_nice);
    } else if (!(sink = bench_sink_start(NULL, &sink_port))) {
        perror("bench_track: sink");
        return 1;
    }
    printf("# many threads: each tracks %ld events (or for %ld ms if not 0) at %ld events/s "
           "(0: as fast as it can); pin_sender %s; producers on %s; sender nice %s\n",
           opt_events, opt_duration_ms, opt_rate, opt_pin >= 0 ? "on" : "off", opt_pcpus ? opt_pcpus : "any CPU",
           opt_nice_set ? "set" : "0");
    printf("# secs = the producers' run; acc/s = accepted / secs; sender CPU = its CPU time "
           "during that run (%% of one CPU);\n");
    printf("# lost %% = (offered - delivered) / offered; vsz/rss = the client's creation "
           "(address space reserved, memory resident); committed = lanes whose slots are "
           "committed after the run and their MiB\n\n");
    printf("| th   | rate  | lanes | cap   |  offered | accepted |  EFULL | ENOLANE |"
           " delivered | lost %% |  secs |   acc/s | sender CPU s | CPU %% | vsz MiB | rss MiB |"
           " lanes | slots MiB |\n");
    printf("|------|-------|-------|-------|----------|----------|--------|---------|"
           "-----------|--------|-------|---------|--------------|-------|---------|---------|"
           "-------|-----------|\n");
    for (long r = 0; r < opt_reps; r++)
        for (int t = 0; t < nth; t++)
            rate_one(th[t], pc);
    if (sink)
        sink_stop(sink);
    if (sink_pid > 0) {
        kill(sink_pid, SIGTERM);
        waitpid(sink_pid, NULL, 0);
    }
    return 0;
}

/* A comma-separated list of names, each one of a[] or b[] (b may be NULL):
 * sets use[i] for each.  A name that is neither exits 2 with the option
 * named (strstr() on the whole argument ran nothing for a typo, and
 * "segops" matched every name containing it). */
static void parse_names(const char *opt, const char *s, const char *const *a,
                        const char *const *b, int count, int *use)
{
    for (;;) {
        size_t n = strcspn(s, ",");
        int found = 0;
        for (int i = 0; i < count; i++)
            if ((strlen(a[i]) == n && !strncmp(s, a[i], n)) ||
                (b && strlen(b[i]) == n && !strncmp(s, b[i], n)))
                use[i] = found = 1;
        if (!found) {
            fprintf(stderr, "bench_track: %s: \"%.*s\" is not one of", opt, (int)n, s);
            for (int i = 0; i < count; i++)
                fprintf(stderr, " %s", a[i]);
            fprintf(stderr, "\n");
            exit(2);
        }
        if (!s[n])
            return;
        s += n + 1;
    }
}

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        int v = (int)bench_list_item(s), seen = 0;
        for (int k = 0; k < n; k++)
            seen |= out[k] == v;
        /* once each: a cell holds --reps runs, no more */
        if (v >= 1 && v <= MAXTH && !seen)
            out[n++] = v;
        s = strchr(s, ',');
        if (!s)
            break;
        s++;
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *threads_arg = "1,2,4,8", *mode_arg = "all";
    const char *impl_arg = "floor,segops,prepared,mutex,spdlog";
    const char *dat = NULL;
    long calls = 0, budget_ms = 4000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--threads") && v)
            threads_arg = v, i++;
        else if (!strcmp(a, "--mode") && v)
            mode_arg = v, i++;
        else if (!strcmp(a, "--impl") && v)
            impl_arg = v, i++;
        else if (!strcmp(a, "--calls") && v)
            calls = bench_num(v), i++;
        else if (!strcmp(a, "--budget-ms") && v)
            budget_ms = bench_num(v), i++;
        else if (!strcmp(a, "--capacity") && v)
            opt_capacity = (uint32_t)bench_num(v), opt_capacity_set = 1, i++;
        else if (!strcmp(a, "--rate") && v)
            opt_rate = bench_num(v), i++;
        else if (!strcmp(a, "--events") && v)
            opt_events = bench_num_in(v, 1, 100000000), i++;
        else if (!strcmp(a, "--sender-fifo") && v)
            opt_fifo = (int)bench_num_in(v, 1, 99), i++;
        else if (!strcmp(a, "--duration-ms") && v)
            opt_duration_ms = bench_num_in(v, 1, 3600000), i++;
        else if (!strcmp(a, "--reps") && v)
            opt_reps = bench_num_in(v, 1, 100), i++;
        else if (!strcmp(a, "--shared") && v)
            opt_shared = (uint32_t)bench_num_in(v, 0, 256), i++;
        else if (!strcmp(a, "--pin-sender") && v)
            opt_pin = (int)bench_num_in(v, 0, CPU_SETSIZE - 1), i++;
        else if (!strcmp(a, "--producer-cpus") && v)
            opt_pcpus = v, i++;
        else if ((!strcmp(a, "--sender-nice") || !strcmp(a, "--sink-nice")) && v) {
            char *end = NULL;
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < -20 || n > 19) {
                fprintf(stderr, "bench: \"%s\" is not a nice value (-20..19)\n", v);
                return 2;
            }
            if (!strcmp(a, "--sink-nice"))
                opt_sink_nice = (int)n, opt_sink_nice_set = 1;
            else
                opt_nice = (int)n, opt_nice_set = 1;
            i++;
        }
        else if (!strcmp(a, "--slot") && v)
            opt_slot = (uint32_t)bench_num(v), i++;
        else if (!strcmp(a, "--lanes") && v)
            opt_lanes = (uint32_t)bench_num(v), i++;
        else if (!strcmp(a, "--dat") && v)
            dat = v, i++;
        else if (!strcmp(a, "--no-parts"))
            opt_no_parts = 1;
        else {
            fprintf(stderr,
                    "usage: %s [--threads 1,2,4,8] [--mode all|LIST of burst,pressured,saturate]\n"
                    "          [--impl floor,segops,prepared,mutex,spdlog] [--calls N] [--budget-ms MS]\n"
                    "          [--capacity N] [--slot BYTES] [--lanes N] [--reps N] [--dat FILE]\n"
                    "          [--no-parts]\n"
                    "       %s --rate R [--threads 256] [--events N] [--capacity N] [--lanes N]\n"
                    "          [--shared N] [--pin-sender CPU] [--producer-cpus LIST]\n"
                    "          [--sender-nice N] [--sender-fifo PRIO] [--sink-nice N]\n"
                    "          [--duration-ms MS] [--reps N]\n",
                    argv[0], argv[0]);
            return 2;
        }
    }
    if (opt_rate >= 0)
        return rate_main(strcmp(threads_arg, "1,2,4,8") ? threads_arg : "256");
    int th[16];
    int nth = parse_list(threads_arg, th, 16);
    int use[NIMPL] = {0}, usem[NMODE] = {0};
    parse_names("--impl", impl_arg, impl_opt, impl_name, NIMPL, use);
    if (!strcmp(mode_arg, "all"))
        usem[M_BURST] = usem[M_PRESSURED] = usem[M_SATURATE] = 1;
    else
        parse_names("--mode", mode_arg, mode_name, NULL, NMODE, usem);
#ifndef BENCH_HAVE_SPDLOG
    if (use[I_SPDLOG])
        printf("# spdlog baseline: not built (libspdlog-dev not found at configure time)\n");
    use[I_SPDLOG] = 0;
#endif

    bench_calibrate();
    bench_machine(stdout);
    struct sink *sink = bench_sink_start(NULL, &sink_port);
    if (!sink) {
        perror("bench_track: sink");
        return 1;
    }
#ifdef BENCH_HAVE_SPDLOG
    printf("# baselines: mutex+malloc (C SDK design), %s async to a null sink\n",
           bl_spdlog_version());
#else
    printf("# baselines: mutex+malloc (C SDK design)\n");
#endif
    if (!opt_no_parts) {
        bracket_cost();
        cost_breakdown();
    }
    printf("# latency in ns per call (bracket included); Mcalls/s and Macc/s are totals over "
           "all threads;\n# 'full' = SEGOPS_EFULL (libsegops) or dropped at the bound (mutex)\n");
    /* The implementations in the order they run; each rep starts one
     * further along, so that none always runs first (just after another
     * client's shutdown) or always after the same neighbour. */
    int order[NIMPL], nuse = 0;
    for (int i = 0; i < NIMPL; i++)
        if (use[i])
            order[nuse++] = i;
    /* Reps are whole sweeps, so that each cell's reps are spread over the
     * run: a busy minute on a shared machine then costs one rep of many
     * cells rather than every rep of one. */
    for (long r = 0; r < opt_reps; r++) {
        if (opt_reps > 1)
            printf("\n# rep %ld of %ld (impls in the order run)\n", r + 1, opt_reps);
        printf("\n| impl         | mode      | th |    p50 |    p99 |   p99.9 |   p99.99 |       max |"
               " Mcalls/s |   Macc/s |     calls |     full |\n");
        printf("|--------------|-----------|----|--------|--------|---------|----------|-----------|"
               "----------|----------|-----------|----------|\n");
        for (int m = 0; m < NMODE; m++) {
            if (!usem[m])
                continue;
            long n = calls ? calls : m == M_BURST ? 100000 : 200000;
            for (int t = 0; t < nth; t++)
                for (int k = 0; k < nuse; k++)
                    one(order[(k + r) % nuse], m, th[t], n, budget_ms);
        }
    }
    sink_stop(sink);
    for (int i = 0; i < NIMPL; i++)
        for (int m = 0; m < NMODE; m++)
            for (int t = 0; t < nth; t++)
                if (cells[i][m][th[t]].n)
                    cell_medians(&cells[i][m][th[t]]);
    floor_table(th, nth);
    first_call_table(th, nth);

    if (use[I_MUTEX] || use[I_SPDLOG]) {
        printf("\n# ratios libsegops and segops-prep / baseline (lower is better; 0.10 = 10x "
               "faster)%s\n\n",
               opt_reps > 1 ? "; medians over the reps" : "");
        printf("| mode      | th | impl        | p50 vs mutex | p99.9 vs mutex | p50 vs spdlog |"
               " p99.9 vs spdlog |\n");
        printf("|-----------|----|-------------|--------------|----------------|---------------|"
               "-----------------|\n");
        for (int m = 0; m < NMODE; m++)
            for (int t = 0; t < nth; t++)
                for (int i = I_SEGOPS; i <= I_PREPARED; i++) {
                    const struct cell *s = &cells[i][m][th[t]];
                    const struct cell *a = &cells[I_MUTEX][m][th[t]];
                    const struct cell *b = &cells[I_SPDLOG][m][th[t]];
                    if (!s->n)
                        continue;
                    char c1[16] = "-", c2[16] = "-", c3[16] = "-", c4[16] = "-";
                    if (a->n) {
                        snprintf(c1, sizeof(c1), "%.3f", s->med.p50 / a->med.p50);
                        snprintf(c2, sizeof(c2), "%.3f", s->med.p999 / a->med.p999);
                    }
                    if (b->n) {
                        snprintf(c3, sizeof(c3), "%.3f", s->med.p50 / b->med.p50);
                        snprintf(c4, sizeof(c4), "%.3f", s->med.p999 / b->med.p999);
                    }
                    printf("| %-9s | %2d | %-11s | %12s | %14s | %13s | %15s |\n", mode_name[m],
                           th[t], impl_name[i], c1, c2, c3, c4);
                }
    }
    /* scaling: saturating call rate of N producers relative to 1 */
    for (int i = I_SEGOPS; i <= I_PREPARED; i++) {
        const struct cell *one_th = &cells[i][M_SATURATE][1];
        if (!one_th->n)
            continue;
        printf("\n# %s saturate scaling (total calls/s relative to 1 producer):", impl_name[i]);
        for (int t = 0; t < nth; t++)
            if (cells[i][M_SATURATE][th[t]].n)
                printf(" %dth %.2fx", th[t],
                       cells[i][M_SATURATE][th[t]].med.mcalls / one_th->med.mcalls);
        printf("\n");
    }
    if (dat) {
        FILE *f = fopen(dat, "w");
        if (!f) {
            perror(dat);
            return 1;
        }
        fprintf(f, "# impl mode threads p50 p99 p99.9 p99.99 max (ns)%s\n",
                opt_reps > 1 ? "; medians over the reps" : "");
        for (int i = 0; i < NIMPL; i++)
            for (int m = 0; m < NMODE; m++)
                for (int t = 0; t < nth; t++) {
                    const struct cell *c = &cells[i][m][th[t]];
                    const struct result *r = &c->med;
                    if (c->n)
                        fprintf(f, "%s %s %d %.1f %.1f %.1f %.1f %.1f\n", impl_name[i],
                                mode_name[m], th[t], r->p50, r->p99, r->p999, r->p9999, r->max);
                }
        fclose(f);
    }
    return 0;
}
