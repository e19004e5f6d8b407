/* SPDX-License-Identifier: MIT */
/*
 * bench_rtt.c -- B3b: the sender against a network round trip.  An
 * in-process segops-sink on 127.0.0.1 (plain HTTP) answers every request
 * delay_ms after reading it (its delay_ms option; one thread per
 * connection, so the delays of concurrent connections overlap), like a
 * server one round trip away.
 *
 * Paced rows: P producer threads (--producers, default 2) together offer R
 * events/s (--rate) for D seconds (--secs, default 5).  Each paces itself
 * in 1 ms ticks on an absolute schedule: at tick k it tracks the events
 * due by k ms (rate * k / 1000, less those already tracked) in one burst
 * without sleeping, then sleeps until tick k+1; a tick that starts late
 * catches up in its burst ("lag" is the latest start behind schedule).
 * Every segops_track() result is counted: accepted, SEGOPS_EFULL, other.
 * Per row:
 *   delivered ev/s  the client's delivered counter when the last producer
 *                   has finished, divided by the offering period (from the
 *                   first tick's schedule to then): the final flush is not
 *                   in it
 *   EFULL, drop %   SEGOPS_EFULL results, and their share of all calls
 *   flush ms        how long segops_flush() took after the offering period
 *   in-flight, conns  requests_in_flight and connections_open, sampled
 *                   every 10 ms during the offering period: max / mean
 *   batches, ev/req batches resolved and delivered events per HTTP request,
 *                   over the whole row (flush included)
 *   CPU             during the offering period, % of one core: the whole
 *                   process (getrusage: producers, sender, sink threads),
 *                   the segops-sender thread alone, and the machine's
 *                   cores busy (/proc/stat, other processes' work and
 *                   steal included; up to 200 on 2 cores)
 *   check           accepted = delivered + skipped + failed + pending in
 *                   every 10 ms sample, at the end of the offering period
 *                   and after the flush; the producers' own count of 0
 *                   results equals the client's accepted; after
 *                   segops_shutdown() the sink's queued count equals the
 *                   client's delivered; flush and shutdown returned 0.
 *
 * Saturating row: as the B3 plain rows of bench_sender (RTT 0, batch 500,
 * one producer keeping a 65536-event lane full, sleeping 50 us on
 * SEGOPS_EFULL), to check that the sender is no slower on loopback.
 *
 * Default rows: 200,000 ev/s at RTT 0, 1, 5, 20, 100 ms with default
 * options; 500,000 ev/s at 5 ms; 1,000,000 ev/s at 20 ms with
 * max_connections 16, 32, 64; the saturating row.  Giving any of --rtt,
 * --rate, --max-conn runs only the paced rows they name (comma lists: every
 * combination); --saturate runs the saturating row (alone, or with those).
 *
 *   bench_rtt [--rtt MS[,MS..]] [--rate EV/S[,..]] [--max-conn N[,..]]
 *             [--producers 2] [--secs 5] [--batch N] [--queue N]
 *             [--saturate] [--sat-secs 3]
 *
 * --max-conn 0, --batch 0 and --queue 0 leave the option at 0 (the
 * library's default: 16 connections, batch_size 20, queue_capacity 8192).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include "bench_client.h"
#include "bench_common.h"
#include "segops.h"
#include "sink.h"

#define DEFAULT_MAX_CONN 16 /* segops.h: max_connections 0 means 16 */
#define MAX_LIST 16
#define MAX_PRODUCERS 64
#define MAX_ROWS 256

static void sleep_until(int64_t t_ns)
{
    struct timespec ts = {(time_t)(t_ns / 1000000000), (long)(t_ns % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
    }
}

/* CPU time of the whole process (all threads), ns */
static int64_t proc_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* The machine's CPU time from /proc/stat's "cpu" line, in ticks: busy
 * (user nice system irq softirq steal) and total (those + idle iowait). */
struct cpu_ticks {
    unsigned long long busy, total;
};

static void machine_ticks(struct cpu_ticks *t)
{
    unsigned long long v[8] = {0};
    t->busy = t->total = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) == 8) {
        t->busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        t->total = t->busy + v[3] + v[4];
    }
    fclose(f);
}

/* busy time of all cores between a and b, in % of one core (so at most
 * 100 x the number of cores, like the process's figure) */
static double machine_busy_pct(const struct cpu_ticks *a, const struct cpu_ticks *b)
{
    unsigned long long tot = b->total - a->total;
    return tot ? 100.0 * (double)sysconf(_SC_NPROCESSORS_ONLN) * (double)(b->busy - a->busy) /
                     (double)tot
               : -1;
}

static int invariant(const segops_counters *s)
{
    return s->accepted == s->delivered + s->skipped + s->failed + s->pending;
}

static segops_client *client(const char *url, uint32_t batch, uint32_t cap, uint32_t max_conn,
                             uint32_t producers)
{
    segops_options o;
    bench_client_opts(&o, url);
    o.batch_size = batch;
    o.queue_capacity = cap;
    o.max_connections = max_conn;
    if (producers > 16) /* one lane per producer thread, as by default */
        o.max_producers = producers;
    return bench_client_new(&o, "bench_rtt");
}

/* ------------------------------------------------------------- sampler */

/* requests_in_flight and connections_open every 10 ms, and the counter
 * invariant on every snapshot. */
struct sampler {
    pthread_t th;
    segops_client *c;
    int64_t t0;
    _Atomic int stop;
    uint64_t n, bad, fl_max, fl_sum, co_max, co_sum;
};

static void *sampler_main(void *arg)
{
    struct sampler *s = arg;
    pthread_setname_np(pthread_self(), "bench-sampler");
    for (int64_t k = 1; !atomic_load_explicit(&s->stop, memory_order_relaxed); k++) {
        sleep_until(s->t0 + k * 10000000);
        if (atomic_load_explicit(&s->stop, memory_order_relaxed))
            break;
        segops_counters st = SEGOPS_COUNTERS_INIT;
        segops_stats(s->c, &st);
        s->n++;
        s->bad += !invariant(&st);
        s->fl_sum += st.requests_in_flight;
        s->co_sum += st.connections_open;
        if (st.requests_in_flight > s->fl_max)
            s->fl_max = st.requests_in_flight;
        if (st.connections_open > s->co_max)
            s->co_max = st.connections_open;
    }
    return NULL;
}

static void sampler_start(struct sampler *s, segops_client *c, int64_t t0)
{
    memset(s, 0, sizeof(*s));
    s->c = c;
    s->t0 = t0;
    pthread_create(&s->th, NULL, sampler_main, s);
}

static void sampler_stop(struct sampler *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
}

/* "max / mean" of a gauge */
static void gauge_str(char *out, size_t n, uint64_t max, uint64_t sum, uint64_t cnt)
{
    snprintf(out, n, "%" PRIu64 " / %.2f", max, cnt ? (double)sum / (double)cnt : 0.0);
}

/* ------------------------------------------------------ paced producers */

struct producer {
    pthread_t th;
    segops_client *c;
    uint64_t rate;   /* this thread's events/s */
    int64_t t0;      /* tick 0, CLOCK_MONOTONIC ns */
    int64_t ticks;   /* ticks of 1 ms in the offering period */
    uint64_t calls, accepted, efull, other;
    int64_t max_lag; /* latest start of a tick behind its schedule, ns */
};

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    pthread_setname_np(pthread_self(), "bench-producer");
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95)};
    segops_event ev = {
        .user_id = "user-123", .event_type = "order_placed", .payload = props, .payload_len = 2};
    for (int64_t k = 1; k <= p->ticks; k++) {
        int64_t at = p->t0 + k * 1000000;
        sleep_until(at);
        int64_t lag = mono_ns() - at;
        if (lag > p->max_lag)
            p->max_lag = lag;
        uint64_t due = p->rate * (uint64_t)k / 1000;
        while (p->calls < due) { /* the tick's burst: no sleep in here */
            int rc = segops_track(p->c, &ev);
            p->calls++;
            if (rc == 0)
                p->accepted++;
            else if (rc == SEGOPS_EFULL)
                p->efull++;
            else
                p->other++;
        }
    }
    return NULL;
}

struct row {
    uint32_t rtt_ms;
    uint64_t rate;
    uint32_t max_conn; /* 0: the default */
};

struct cfg {
    uint32_t producers;
    double secs;
    uint32_t batch, queue;
    double sat_secs;
};

/* One paced row; `note` gets the line printed below the table. */
static void paced(const struct cfg *g, const struct row *r, char *note, size_t note_cap)
{
    uint16_t port;
    struct sink *sink = bench_sink_start_delay(NULL, r->rtt_ms, &port);
    if (!sink) {
        perror("bench_rtt: sink");
        exit(1);
    }
    char url[64];
    bench_sink_url(url, sizeof(url), port);
    segops_client *c = client(url, g->batch, g->queue, r->max_conn, g->producers);
    int stid = find_task("segops-sender");

    uint32_t np = g->producers;
    struct producer *pr = calloc(np, sizeof(*pr));
    int64_t ticks = (int64_t)(g->secs * 1000 + 0.5);
    int64_t t0 = mono_ns() + 20000000; /* threads are up by then */
    for (uint32_t i = 0; i < np; i++) {
        pr[i].c = c;
        pr[i].rate = r->rate / np + (i < r->rate % np ? 1 : 0);
        pr[i].t0 = t0;
        pr[i].ticks = ticks;
        pthread_create(&pr[i].th, NULL, producer_main, &pr[i]);
    }
    struct sampler smp;
    sampler_start(&smp, c, t0);
    sleep_until(t0);
    struct cpu_ticks m0, m1;
    machine_ticks(&m0);
    int64_t p0 = proc_cpu_ns(), s0 = task_cpu_ns(stid);

    for (uint32_t i = 0; i < np; i++)
        pthread_join(pr[i].th, NULL);
    segops_counters a = SEGOPS_COUNTERS_INIT; /* the end of the offering period */
    segops_stats(c, &a);
    int64_t t1 = mono_ns(), p1 = proc_cpu_ns(), s1 = task_cpu_ns(stid);
    machine_ticks(&m1);
    sampler_stop(&smp); /* waits for its current 10 ms sleep: not timed */

    int64_t f0 = mono_ns();
    int frc = segops_flush(c, 120000);
    int64_t f1 = mono_ns();
    segops_counters e = SEGOPS_COUNTERS_INIT; /* after the final flush */
    segops_stats(c, &e);
    uint64_t undelivered = 0;
    int src = segops_shutdown(c, 30000, &undelivered);
    struct sink_counts k;
    sink_get_counts(sink, &k);
    sink_stop(sink);

    uint64_t calls = 0, acc = 0, efull = 0, other = 0;
    int64_t lag = 0;
    for (uint32_t i = 0; i < np; i++) {
        calls += pr[i].calls;
        acc += pr[i].accepted;
        efull += pr[i].efull;
        other += pr[i].other;
        if (pr[i].max_lag > lag)
            lag = pr[i].max_lag;
    }
    free(pr);

    double dt = (double)(t1 - t0) / 1e9;
    char fl[32], co[32], mc[16], sc[16];
    gauge_str(fl, sizeof(fl), smp.fl_max, smp.fl_sum, smp.n);
    gauge_str(co, sizeof(co), smp.co_max, smp.co_sum, smp.n);
    if (r->max_conn)
        snprintf(mc, sizeof(mc), "%u", r->max_conn);
    else
        snprintf(mc, sizeof(mc), "%u dflt", DEFAULT_MAX_CONN);
    if (stid >= 0 && s0 >= 0 && s1 >= 0)
        snprintf(sc, sizeof(sc), "%.0f", (double)(s1 - s0) / 1e7 / dt);
    else
        snprintf(sc, sizeof(sc), "?");
    int ok = smp.bad == 0 && invariant(&a) && invariant(&e) && acc == e.accepted &&
             e.pending == 0 && frc == 0 && src == 0 && undelivered == 0 &&
             k.queued == e.delivered;
    printf("| %6u | %12" PRIu64 " | %8s | %14.0f | %9" PRIu64 " | %6.1f | %8.1f | %18s |"
           " %14s | %7" PRIu64 " | %6.0f | %9.0f | %11s | %12.0f | %6.1f | %-8s |\n",
           r->rtt_ms, r->rate, mc, (double)a.delivered / dt, efull,
           calls ? 100.0 * (double)efull / (double)calls : 0, (double)(f1 - f0) / 1e6, fl, co,
           e.batches, e.requests ? (double)e.delivered / (double)e.requests : 0,
           (double)(p1 - p0) / 1e7 / dt, sc, machine_busy_pct(&m0, &m1),
           (double)lag / 1e6, ok ? "ok" : "MISMATCH");
    fflush(stdout);
    snprintf(note, note_cap,
             "# RTT %u ms, %" PRIu64 " ev/s, %u producers, max_connections %s: %s"
             " calls %" PRIu64 " in %.3f s (accepted %" PRIu64 ", EFULL %" PRIu64
             ", other %" PRIu64 "); at the end of offering: delivered %" PRIu64
             ", pending %" PRIu64 "; after flush (rc %d) and shutdown (rc %d, undelivered %"
             PRIu64 "): accepted %" PRIu64 " = delivered %" PRIu64 " + skipped %" PRIu64
             " + failed %" PRIu64 " + pending %" PRIu64 ", sink queued %" PRIu64
             "; requests %" PRIu64 ", retries %" PRIu64 ", reconnects %" PRIu64
             ", queue high water %" PRIu64 "; samples %" PRIu64 " (invariant broken in %" PRIu64
             ")",
             r->rtt_ms, r->rate, np, mc, ok ? "ok," : "MISMATCH:", calls, dt, acc, efull, other,
             a.delivered, a.pending, frc, src, undelivered, e.accepted, e.delivered, e.skipped,
             e.failed, e.pending, k.queued, e.requests, e.retries, e.reconnects,
             e.queue_high_water, smp.n, smp.bad);
}

/* -------------------------------------------------------- saturating row */


static void saturate(const struct cfg *g, uint32_t max_conn)
{
    uint16_t port;
    struct sink *sink = bench_sink_start_delay(NULL, 0, &port);
    if (!sink) {
        perror("bench_rtt: sink");
        exit(1);
    }
    char url[64];
    bench_sink_url(url, sizeof(url), port);
    segops_options o;
    bench_client_opts(&o, url);
    o.batch_size = 500;
    o.queue_capacity = 65536;
    o.max_producers = 1;
    o.shared_lanes = 1;
    o.max_connections = max_conn;
    segops_client *c = bench_client_new(&o, "bench_rtt");
    int stid = find_task("segops-sender");
    atomic_store(&bench_stop_feed, 0);
    pthread_t th;
    pthread_create(&th, NULL, bench_feeder, c);
    sleep_ns(500000000); /* warm-up: connections, caches */
    segops_counters a = SEGOPS_COUNTERS_INIT, b = SEGOPS_COUNTERS_INIT, e = SEGOPS_COUNTERS_INIT;
    int64_t t0 = mono_ns();
    struct sampler smp;
    sampler_start(&smp, c, t0);
    segops_stats(c, &a);
    int64_t s0 = task_cpu_ns(stid), p0 = proc_cpu_ns();
    sleep_ns((int64_t)(g->sat_secs * 1e9));
    segops_stats(c, &b);
    int64_t s1 = task_cpu_ns(stid), p1 = proc_cpu_ns(), t1 = mono_ns();
    sampler_stop(&smp);
    atomic_store(&bench_stop_feed, 1);
    pthread_join(th, NULL);
    int frc = segops_flush(c, 30000);
    segops_stats(c, &e);
    uint64_t undelivered = 0;
    int src = segops_shutdown(c, 30000, &undelivered);
    struct sink_counts k;
    sink_get_counts(sink, &k);
    sink_stop(sink);

    double ev = (double)(b.delivered - a.delivered), dt = (double)(t1 - t0) / 1e9;
    double req = (double)(b.requests - a.requests);
    char fl[32], co[32], mc[16];
    gauge_str(fl, sizeof(fl), smp.fl_max, smp.fl_sum, smp.n);
    gauge_str(co, sizeof(co), smp.co_max, smp.co_sum, smp.n);
    if (max_conn)
        snprintf(mc, sizeof(mc), "%u", max_conn);
    else
        snprintf(mc, sizeof(mc), "%u dflt", DEFAULT_MAX_CONN);
    int ok = smp.bad == 0 && invariant(&e) && frc == 0 && src == 0 && undelivered == 0 &&
             e.failed == 0 && e.skipped == 0 && e.pending == 0 && e.delivered == e.accepted &&
             k.queued == e.delivered;
    printf("| %6u | %5u | %8s | %10.0f | %6.0f | %11.1f | %15.0f | %16.0f | %18s | %14s |"
           " %-8s |\n",
           0u, 500u, mc, ev / dt, req > 0 ? ev / req : 0, (double)(s1 - s0) / 1e7 / dt,
           ev > 0 ? (double)(s1 - s0) / ev : 0, ev > 0 ? (double)(p1 - p0) / ev : 0, fl, co,
           ok ? "ok" : "MISMATCH");
    printf("\n# saturate: %s accepted %" PRIu64 ", delivered %" PRIu64 " (sink queued %" PRIu64
           "), failed %" PRIu64 ", retries %" PRIu64 ", reconnects %" PRIu64
           "; flush rc %d, shutdown rc %d; samples %" PRIu64 " (invariant broken in %" PRIu64
           ")\n",
           ok ? "ok," : "MISMATCH:", e.accepted, e.delivered, k.queued, e.failed, e.retries,
           e.reconnects, frc, src, smp.n, smp.bad);
    fflush(stdout);
}

/* ------------------------------------------------------------------ main */

/* "a,b,c" of unsigned integers into v; returns the count, 0 on error */
static int parse_list(const char *s, uint64_t *v, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        unsigned long long x = strtoull(s, &end, 10);
        if (end == s || (*end && *end != ','))
            return 0;
        v[n++] = x;
        s = *end ? end + 1 : end;
    }
    return *s ? 0 : n;
}

static void usage(const char *me)
{
    fprintf(stderr,
            "usage: %s [--rtt MS[,MS..]] [--rate EV/S[,..]] [--max-conn N[,..]]\n"
            "          [--producers 2] [--secs 5] [--batch N] [--queue N]\n"
            "          [--saturate] [--sat-secs 3]\n"
            "no --rtt/--rate/--max-conn/--saturate: the default rows\n",
            me);
    exit(2);
}

int main(int argc, char **argv)
{
    struct cfg g = {2, 5.0, 0, 0, 3.0};
    uint64_t rtts[MAX_LIST], rates[MAX_LIST], mcs[MAX_LIST];
    int nrtt = 0, nrate = 0, nmc = 0, sat = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--saturate")) {
            sat = 1;
            continue;
        }
        if (!v)
            usage(argv[0]);
        i++;
        if (!strcmp(a, "--rtt"))
            nrtt = parse_list(v, rtts, MAX_LIST);
        else if (!strcmp(a, "--rate"))
            nrate = parse_list(v, rates, MAX_LIST);
        else if (!strcmp(a, "--max-conn"))
            nmc = parse_list(v, mcs, MAX_LIST);
        else if (!strcmp(a, "--producers"))
            g.producers = (uint32_t)(int)bench_num(v);
        else if (!strcmp(a, "--secs"))
            g.secs = bench_real(v);
        else if (!strcmp(a, "--batch"))
            g.batch = (uint32_t)(int)bench_num(v);
        else if (!strcmp(a, "--queue"))
            g.queue = (uint32_t)(int)bench_num(v);
        else if (!strcmp(a, "--sat-secs"))
            g.sat_secs = bench_real(v);
        else
            usage(argv[0]);
        if ((!strcmp(a, "--rtt") && !nrtt) || (!strcmp(a, "--rate") && !nrate) ||
            (!strcmp(a, "--max-conn") && !nmc))
            usage(argv[0]);
    }
    if (g.producers < 1 || g.producers > MAX_PRODUCERS || g.secs <= 0 || g.sat_secs <= 0)
        usage(argv[0]);

    struct row rows[MAX_ROWS];
    int nrows = 0;
    int custom = nrtt || nrate || nmc;
    if (custom) {
        if (!nrtt)
            rtts[nrtt++] = 20;
        if (!nrate)
            rates[nrate++] = 200000;
        if (!nmc)
            mcs[nmc++] = 0;
        for (int i = 0; i < nrtt; i++)
            for (int j = 0; j < nrate; j++)
                for (int m = 0; m < nmc && nrows < MAX_ROWS; m++)
                    rows[nrows++] = (struct row){(uint32_t)rtts[i], rates[j], (uint32_t)mcs[m]};
    } else if (!sat) {
        static const uint32_t def_rtt[] = {0, 1, 5, 20, 100};
        for (int i = 0; i < 5; i++)
            rows[nrows++] = (struct row){def_rtt[i], 200000, 0};
        rows[nrows++] = (struct row){5, 500000, 0};
        for (uint32_t m = 16; m <= 64; m *= 2)
            rows[nrows++] = (struct row){20, 1000000, m};
        sat = 1;
    }

    bench_calibrate();
    bench_machine(stdout);
    char cmd[1024];
    size_t off = 0;
    for (int i = 0; i < argc && off < sizeof(cmd); i++)
        off += (size_t)snprintf(cmd + off, sizeof(cmd) - off, "%s%s", i ? " " : "", argv[i]);
    time_t now = time(NULL);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    printf("# command: %s (%s)\n", cmd, when);

    if (nrows) {
        printf("# B3b sender against a round trip: in-process sink on 127.0.0.1 answering each"
               " request RTT ms after reading it\n# (one sink thread per connection: delays of"
               " concurrent connections overlap); %u paced producer threads, 1 ms ticks,"
               " %.1f s per row;\n# batch_size %u, queue_capacity %u per lane; 'dflt' ="
               " max_connections left at 0 (the default)\n",
               g.producers, g.secs, g.batch ? g.batch : 20, g.queue ? g.queue : 8192);
        printf("# delivered ev/s: delivered when the offering ends / its duration (final flush"
               " not included); drop %% = EFULL / calls;\n# in-flight, conns: requests_in_flight"
               " and connections_open every 10 ms, max / mean; batches, ev/req: whole row;\n"
               "# CPU %% of one core over the offering period: proc = this process (sink"
               " included), sender = segops-sender thread,\n# machine = all %ld cores busy incl."
               " other processes and steal (at most %ld); lag = latest producer tick start"
               " behind schedule\n\n",
               sysconf(_SC_NPROCESSORS_ONLN), 100 * sysconf(_SC_NPROCESSORS_ONLN));
        printf("| RTT ms | offered ev/s | max conn | delivered ev/s |     EFULL | drop %% |"
               " flush ms | in-flight max/mean | conns max/mean | batches | ev/req |"
               " proc %%CPU | sender %%CPU | machine %%CPU | lag ms | check    |\n");
        printf("|--------|--------------|----------|----------------|-----------|--------|"
               "----------|--------------------|----------------|---------|--------|"
               "-----------|-------------|--------------|--------|----------|\n");
        fflush(stdout);
        char(*notes)[640] = calloc((size_t)nrows, sizeof(*notes));
        for (int i = 0; i < nrows; i++)
            paced(&g, &rows[i], notes[i], sizeof(notes[0]));
        /* a blank line first: a line right under a table would be read as
         * one more row in the report */
        printf("\n");
        for (int i = 0; i < nrows; i++)
            printf("%s\n", notes[i]);
        free(notes);
        if (sat)
            printf("\n");
    }
    if (sat) {
        uint32_t mc = custom && nmc ? (uint32_t)mcs[0] : 0;
        printf("# B3b saturating row: RTT 0, plain, batch 500, one producer keeping a 65536-event"
               " lane full (50 us sleep on EFULL), %.1f s\n# after 0.5 s warm-up; compare with B3"
               " plain batch 500 (target >= 2.5 M events/s)\n\n",
               g.sat_secs);
        printf("| RTT ms | batch | max conn |   events/s | ev/req | sender %%CPU |"
               " sender ns/event | process ns/event | in-flight max/mean | conns max/mean |"
               " check    |\n");
        printf("|--------|-------|----------|------------|--------|-------------|"
               "-----------------|------------------|--------------------|----------------|"
               "----------|\n");
        saturate(&g, mc);
    }
    return 0;
}
