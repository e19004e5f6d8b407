/* SPDX-License-Identifier: MIT */
/*
 * soak.c -- segops-soak: a long run of the client against a flaky sink
 * behind the chaos proxy, with an exact reconciliation at the end.
 *
 *   segops-soak [seconds] [--producers N] [--rate EVENTS_PER_S_PER_PRODUCER]
 *               [--verbose]   (every retried/failed/slow batch, every log line)
 *
 * Faults: the sink answers 503 to every 50th request and closes keep-alive
 * connections idle for 1 s (the producers pause 1.5 s every 30 s); the
 * proxy injects one fault every 400 ms (reset before/after processing, cut
 * answers, tiny segments, stalls, malformed answers) and restarts the
 * "server" (refuses connections for 800 ms) every 90 s.
 *
 * Every 10 s a row: RSS (/proc/self/statm) and the counters.  At the end,
 * with the faults off: flush, then the account must be exact (see
 * docs/hardening.md): accepted = delivered + skipped + failed + pending
 * with pending 0; every batch the sink saw was reported by the client; the
 * sink holds each batch a whole number of times; distinct events at the
 * sink = delivered + the events of failed batches that reached it; every
 * duplicate is a repeated copy under the batch's own Idempotency-Key.
 * Exit status 0 when every check holds.  Not part of CI.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chaos.h"
#include "segops.h"
#include "sink.h"

#define MAX_PRODUCERS 16
#define KEY_SLOTS (1u << 20) /* power of two; batches over the run */

struct kslot {
    char key[33];
    uint8_t used, reported;
    int8_t failed;
    uint32_t events;      /* from the delivery report */
    uint32_t sink_events; /* events the sink recorded under the key */
};

/* Shared (MAP_SHARED) between this process -- the client and the
 * producers -- and a forked child running the sink and the proxy, so that
 * this process's RSS is the client's (plus these pre-faulted tables). */
struct shared {
    pthread_mutex_t mu; /* process-shared */
    atomic_int ready, stop_faults, stop, done;
    uint16_t sink_port, chaos_port;
    struct chaos_counts cc;
    struct sink_counts sk;
    struct kslot *slots;
    uint32_t nkeys, key_overflow;
    uint8_t *seen;       /* [producer * per + seq] */
    uint64_t per;
    uint64_t sink_tagged, sink_untagged, sink_dups;
    uint64_t log_err, log_warn, log_info;
    char first_errors[5][200];
    int nerr_kept;
};
static struct shared *G;

static atomic_int quiet, stop_producers;
static int verbose;
static int64_t t_start, last_report_ms;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint64_t hash_key(const char *k)
{
    uint64_t h = 1469598103934665603ull;
    for (; *k; k++)
        h = (h ^ (uint8_t)*k) * 1099511628211ull;
    return h;
}

/* G->mu held */
static struct kslot *key_slot(const char *key)
{
    uint64_t h = hash_key(key);
    for (uint32_t i = 0; i < 4096; i++) {
        struct kslot *s = &G->slots[(h + i) & (KEY_SLOTS - 1)];
        if (!s->used) {
            if (G->nkeys >= KEY_SLOTS / 4 * 3)
                break;
            s->used = 1;
            snprintf(s->key, sizeof(s->key), "%s", key);
            G->nkeys++;
            return s;
        }
        if (strcmp(s->key, key) == 0)
            return s;
    }
    G->key_overflow++;
    return NULL;
}

static int field(const char *json, size_t len, const char *name, uint64_t *v)
{
    char pat[32];
    int n = snprintf(pat, sizeof(pat), "\"%s\":", name);
    const char *p = memmem(json, len, pat, (size_t)n);
    if (!p)
        return -1;
    *v = strtoull(p + n, NULL, 10);
    return 0;
}

static void on_event(void *user, const char *json, size_t len, const char *key)
{
    (void)user;
    uint64_t t, s;
    pthread_mutex_lock(&G->mu);
    if (field(json, len, "thread", &t) == 0 && field(json, len, "seq", &s) == 0 &&
        t < MAX_PRODUCERS && s < G->per) {
        uint8_t *c = &G->seen[t * G->per + s];
        if (*c)
            G->sink_dups++;
        if (*c < 255)
            (*c)++;
        G->sink_tagged++;
    } else {
        G->sink_untagged++;
    }
    struct kslot *k = key_slot(key);
    if (k)
        k->sink_events++;
    pthread_mutex_unlock(&G->mu);
}

static void on_delivery(void *user, const segops_delivery *d)
{
    (void)user;
    pthread_mutex_lock(&G->mu);
    int64_t now = mono_ms();
    if (verbose && (d->attempts > 1 || d->result != 0 || now - last_report_ms > 1000))
        printf("  [%7.3f s] batch %s: %u events, %u attempts, result %d, status %d, "
               "%lld ms since the previous report, detail '%s'\n",
               (double)(now - t_start) / 1000.0, d->idempotency_key, d->events, d->attempts,
               d->result, d->status, (long long)(now - last_report_ms),
               d->detail ? d->detail : "");
    last_report_ms = now;
    struct kslot *k = key_slot(d->idempotency_key);
    if (k) {
        k->reported++;
        k->events = d->events - (d->result == 0 ? d->skipped : 0);
        k->failed = d->result != 0;
    }
    pthread_mutex_unlock(&G->mu);
}

static void on_log(void *user, int level, const char *line)
{
    (void)user;
    pthread_mutex_lock(&G->mu);
    if (verbose)
        printf("  [%7.3f s] log %d: %s\n", (double)(mono_ms() - t_start) / 1000.0, level, line);
    if (level == SEGOPS_LOG_ERROR) {
        G->log_err++;
        if (G->nerr_kept < 5)
            snprintf(G->first_errors[G->nerr_kept++], 200, "%s", line);
    } else if (level == SEGOPS_LOG_WARN) {
        G->log_warn++;
    } else {
        G->log_info++;
    }
    pthread_mutex_unlock(&G->mu);
}

struct prod {
    segops_client *c;
    int id;
    uint32_t rate;
    uint64_t n, ok, full, other;
};

static void *producer(void *arg)
{
    struct prod *p = arg;
    int64_t t0 = mono_ms();
    uint64_t quiet_ms = 0;
    while (!atomic_load(&stop_producers) && p->n < G->per) {
        if (atomic_load(&quiet)) {
            sleep_ms(20);
            quiet_ms += 20;
            continue;
        }
        segops_prop props[] = {SEGOPS_I64("thread", p->id), SEGOPS_I64("seq", (int64_t)p->n),
                               SEGOPS_STR("page", "/checkout"), SEGOPS_F64("total", 89.95)};
        segops_event ev = {.user_id = "user-soak",
                           .event_type = "page_viewed",
                           .payload = props,
                           .payload_len = 4};
        int rc = segops_track(p->c, &ev);
        p->n++;
        if (rc == 0)
            p->ok++;
        else if (rc == SEGOPS_EFULL)
            p->full++;
        else
            p->other++;
        if (p->n % 50 == 0) {
            /* pace to `rate` events/s (the time spent quiet excluded) */
            int64_t due = t0 + (int64_t)quiet_ms + (int64_t)(p->n * 1000 / p->rate);
            int64_t ahead = due - mono_ms();
            if (ahead > 0)
                sleep_ms(ahead > 1000 ? 1000 : (int)ahead);
        }
    }
    return NULL;
}

static uint64_t rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2)
        res = 0;
    fclose(f);
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
}

static void touch(void *p, size_t n)
{
    volatile char *v = p;
    for (size_t i = 0; i < n; i += 4096)
        v[i] = 0;
}

static int failures;

static void check(int ok, const char *what)
{
    printf("  [%s] %s\n", ok ? "ok" : "FAIL", what);
    if (!ok)
        failures++;
}

static void *shared_alloc(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    touch(p, n); /* resident from the start: RSS growth is the client's */
    return p;
}

/* The forked child: sink, proxy and the fault schedule.  Runs until the
 * parent sets G->stop (bounded: the soak's length plus 5 minutes). */
static int server_main(int seconds)
{
    static const int acts[] = {CHAOS_RESET_BEFORE, CHAOS_RESET_AFTER, CHAOS_CUT_RST,
                               CHAOS_CUT_FIN,      CHAOS_TINY,        CHAOS_STALL,
                               CHAOS_GARBAGE,      CHAOS_BIG_LENGTH,  CHAOS_BIG_CHUNK,
                               CHAOS_BIG_HEAD,     CHAOS_DELAY};
    const int nacts = (int)(sizeof(acts) / sizeof(acts[0]));
    struct sink_opts so;
    memset(&so, 0, sizeof(so));
    so.fail_status = 503;
    so.fail_every = 50;
    so.fail_detail = "soak: transient";
    so.idle_close_ms = 1000;
    so.on_event = on_event;
    uint16_t sport = 0, cport = 0;
    struct sink *sink = sink_start(&so, &sport);
    if (!sink) {
        atomic_store(&G->ready, -1);
        return 1;
    }
    struct chaos_opts co;
    memset(&co, 0, sizeof(co));
    co.upstream_port = sport;
    co.ms = 50;
    struct chaos *ch = chaos_start(&co, &cport);
    if (!ch) {
        sink_stop(sink);
        atomic_store(&G->ready, -1);
        return 1;
    }
    G->sink_port = sport;
    G->chaos_port = cport;
    atomic_store(&G->ready, 1);
    int64_t start = mono_ms(), limit = start + ((int64_t)seconds + 300) * 1000;
    int64_t next_fault = start + 400, next_restart = start + 90000;
    int fault_i = 0, faults_on = 1;
    while (!atomic_load(&G->stop) && mono_ms() < limit) {
        int64_t now = mono_ms();
        if (faults_on && atomic_load(&G->stop_faults)) {
            chaos_fault_next(ch, CHAOS_FORWARD, 0);
            chaos_set_mode(ch, CHAOS_FORWARD);
            faults_on = 0;
        }
        if (faults_on && now >= next_fault) {
            chaos_fault_next(ch, acts[fault_i++ % nacts], 1);
            next_fault = now + 400;
        }
        if (faults_on && now >= next_restart) {
            chaos_refuse(ch, 800, (int)(((now - start) / 90000) % 2));
            next_restart = now + 90000;
        }
        struct chaos_counts cc;
        chaos_get_counts(ch, &cc);
        pthread_mutex_lock(&G->mu);
        G->cc = cc;
        pthread_mutex_unlock(&G->mu);
        sleep_ms(20);
    }
    chaos_stop(ch);
    struct chaos_counts cc;
    chaos_get_counts(ch, &cc);
    struct sink_counts sk;
    sink_get_counts(sink, &sk);
    sink_stop(sink);
    pthread_mutex_lock(&G->mu);
    G->cc = cc;
    G->sk = sk;
    pthread_mutex_unlock(&G->mu);
    atomic_store(&G->done, 1);
    return 0;
}

/* A whole decimal number (no sign, nothing after it) into *out; 0 or -1. */
static int strict_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || s[0] == '+')
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    int seconds = 600, nprod = 8;
    uint32_t rate = 2500;
    for (int i = 1; i < argc; i++) {
        long v;
        if (!strcmp(argv[i], "--producers") && i + 1 < argc) {
            if (strict_long(argv[++i], &v))
                goto usage;
            nprod = (int)v;
        } else if (!strcmp(argv[i], "--verbose")) {
            verbose = 1;
        } else if (!strcmp(argv[i], "--rate") && i + 1 < argc) {
            if (strict_long(argv[++i], &v))
                goto usage;
            rate = (uint32_t)(v > 0 && v <= 1000000 ? v : 0);
        } else if (argv[i][0] != '-' && strict_long(argv[i], &v) == 0) {
            seconds = v <= 86400 * 365 ? (int)v : 0;
        } else {
            goto usage;
        }
    }
    if (seconds < 5 || nprod < 1 || nprod > MAX_PRODUCERS || rate < 1 || rate > 1000000) {
    usage:
        fprintf(stderr, "usage: segops-soak [SECONDS >= 5] [--producers 1..16] [--rate "
                        "1..1000000] [--verbose]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    uint64_t per = (uint64_t)rate * (uint64_t)seconds + 10000;
    G = shared_alloc(sizeof(*G));
    uint8_t *seen = shared_alloc((size_t)MAX_PRODUCERS * per);
    struct kslot *slots = shared_alloc(KEY_SLOTS * sizeof(struct kslot));
    if (!G || !seen || !slots) {
        fprintf(stderr, "out of memory\n");
        return 2;
    }
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&G->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    G->per = per;
    G->seen = seen;
    G->slots = slots;

    pid_t server = fork();
    if (server < 0) {
        perror("fork");
        return 2;
    }
    if (server == 0)
        _exit(server_main(seconds));
    for (int i = 0; i < 500 && !atomic_load(&G->ready); i++)
        sleep_ms(10);
    if (atomic_load(&G->ready) != 1) {
        fprintf(stderr, "the sink/proxy process did not start\n");
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
        return 2;
    }
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)G->chaos_port);
    segops_options o = SEGOPS_OPTIONS_INIT;
    o.api_url = url;
    o.api_key = "sk_test";
    o.flush_interval_ms = 200;
    o.batch_size = 100;
    o.max_retries = 5;
    o.request_timeout_ms = 3000;
    o.max_producers = (uint32_t)nprod;
    o.logger = on_log;
    o.on_delivery = on_delivery;
    segops_client *c;
    int rc = segops_client_new(&o, &c);
    if (rc) {
        fprintf(stderr, "segops_client_new: %s\n", segops_strerror(rc));
        atomic_store(&G->stop, 1);
        waitpid(server, NULL, 0);
        return 2;
    }
    segops_counters st = SEGOPS_COUNTERS_INIT;
    segops_stats(c, &st);
    printf("segops-soak: %d s, %d producers x %u events/s, io=%s, sink :%u, proxy :%u "
           "(sink and proxy in process %d)\n",
           seconds, nprod, rate, st.io_mode == SEGOPS_IO_URING ? "io_uring" : "poll",
           (unsigned)G->sink_port, (unsigned)G->chaos_port, (int)server);
    printf("%6s %9s %10s %10s %7s %7s %8s %7s %6s %6s %7s %7s %7s\n", "t_s", "rss_kib",
           "accepted", "delivered", "failed", "dropped", "retries", "reconn", "pend",
           "q_hw", "p_reset", "p_cut", "p_inj");

    struct prod p[MAX_PRODUCERS];
    pthread_t th[MAX_PRODUCERS];
    for (int i = 0; i < nprod; i++) {
        p[i] = (struct prod){c, i, rate, 0, 0, 0, 0};
        pthread_create(&th[i], NULL, producer, &p[i]);
    }

    t_start = last_report_ms = mono_ms();
    int64_t start = mono_ms(), end = start + (int64_t)seconds * 1000;
    int64_t next_sample = start + 10000;
    int64_t next_quiet = start + 30000, quiet_until = 0;
    uint64_t rss_first = 0, rss_min = UINT64_MAX, rss_max = 0, rss_last = 0;
    int rows = 0;
    for (int64_t now = mono_ms(); now < end; now = mono_ms()) {
        if (now >= next_quiet) {
            atomic_store(&quiet, 1);
            quiet_until = now + 1500;
            next_quiet = now + 30000;
        }
        if (quiet_until && now >= quiet_until) {
            atomic_store(&quiet, 0);
            quiet_until = 0;
        }
        if (now >= next_sample) {
            segops_stats(c, &st);
            struct chaos_counts cc;
            pthread_mutex_lock(&G->mu);
            cc = G->cc;
            pthread_mutex_unlock(&G->mu);
            uint64_t rss = rss_kib();
            rows++;
            if (rows == 2)
                rss_first = rss; /* after warm-up */
            if (rows >= 2) {
                rss_min = rss < rss_min ? rss : rss_min;
                rss_max = rss > rss_max ? rss : rss_max;
            }
            rss_last = rss;
            if (st.accepted != st.delivered + st.skipped + st.failed + st.pending)
                check(0, "invariant in a sample");
            printf("%6lld %9" PRIu64 " %10" PRIu64 " %10" PRIu64 " %7" PRIu64 " %7" PRIu64
                   " %8" PRIu64 " %7" PRIu64 " %6" PRIu64 " %6" PRIu64 " %7" PRIu64
                   " %7" PRIu64 " %7" PRIu64 "\n",
                   (long long)((now - start) / 1000), rss, st.accepted, st.delivered,
                   st.failed, st.dropped_full, st.retries, st.reconnects, st.pending,
                   st.queue_high_water, cc.resets, cc.cuts, cc.injected);
            next_sample += 10000;
        }
        sleep_ms(20);
    }
    atomic_store(&stop_producers, 1);
    atomic_store(&quiet, 0);
    for (int i = 0; i < nprod; i++)
        pthread_join(th[i], NULL);

    /* faults off, drain */
    atomic_store(&G->stop_faults, 1);
    sleep_ms(100);
    int frc = segops_flush(c, 60000);
    segops_stats(c, &st);
    uint64_t undelivered = 99;
    int src = segops_shutdown(c, 30000, &undelivered);
    atomic_store(&G->stop, 1);
    int wst = 0;
    waitpid(server, &wst, 0);
    if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0 || !atomic_load(&G->done))
        check(0, "the sink/proxy process exited cleanly");
    struct chaos_counts cc = G->cc;
    struct sink_counts sk = G->sk;

    uint64_t tracked = 0, ok = 0, full = 0, other = 0;
    for (int i = 0; i < nprod; i++) {
        tracked += p[i].n;
        ok += p[i].ok;
        full += p[i].full;
        other += p[i].other;
    }
    printf("\nproducers: %" PRIu64 " track calls, %" PRIu64 " accepted, %" PRIu64
           " dropped (queue full), %" PRIu64 " other\n",
           tracked, ok, full, other);
    printf("client: delivered %" PRIu64 ", skipped %" PRIu64 ", failed %" PRIu64
           ", pending %" PRIu64 ", batches %" PRIu64 ", requests %" PRIu64 ", retries %" PRIu64
           ", reconnects %" PRIu64 ", queue high water %" PRIu64 "\n",
           st.delivered, st.skipped, st.failed, st.pending, st.batches, st.requests, st.retries,
           st.reconnects, st.queue_high_water);
    printf("client log: %" PRIu64 " ERROR, %" PRIu64 " WARN lines; flush %s; shutdown %s, "
           "undelivered %" PRIu64 "\n",
           G->log_err, G->log_warn, segops_strerror(frc), segops_strerror(src), undelivered);
    for (int i = 0; i < G->nerr_kept; i++)
        printf("  e.g. %s\n", G->first_errors[i]);
    printf("proxy: %" PRIu64 " connections, %" PRIu64 " refused, %" PRIu64 " requests, %" PRIu64
           " resets, %" PRIu64 " cuts, %" PRIu64 " tiny, %" PRIu64 " stalls, %" PRIu64
           " injected, %" PRIu64 " restarts\n",
           cc.connections, cc.refused, cc.requests, cc.resets, cc.cuts, cc.tiny, cc.stalls,
           cc.injected, cc.restarts);
    printf("sink: %" PRIu64 " connections, %" PRIu64 " requests, %" PRIu64 " 503s, %" PRIu64
           " queued, %" PRIu64 " repeated keys\n",
           sk.connections, sk.requests, sk.failed_requests, sk.queued, sk.repeated_keys);
    printf("rss: %" PRIu64 " KiB at 20 s, min %" PRIu64 ", max %" PRIu64 ", last %" PRIu64
           " KiB\n",
           rss_first, rss_min == UINT64_MAX ? 0 : rss_min, rss_max, rss_last);

    /* the account */
    uint64_t distinct = 0, extra = 0, failed_seen = 0, rep_deliv = 0, rep_failed = 0;
    uint64_t unreported = 0, bad_multiple = 0, multi_report = 0, sink_total = 0;
    for (uint32_t i = 0; i < KEY_SLOTS; i++) {
        struct kslot *k = &G->slots[i];
        if (!k->used)
            continue;
        sink_total += k->sink_events;
        if (!k->reported) {
            unreported++;
            continue;
        }
        if (k->reported > 1)
            multi_report++;
        if (k->failed)
            rep_failed += k->events;
        else
            rep_deliv += k->events;
        if (k->events && k->sink_events % k->events != 0)
            bad_multiple++;
        if (!k->failed && k->events && k->sink_events < k->events)
            bad_multiple++;
        if (k->sink_events) {
            distinct += k->events;
            extra += k->sink_events - k->events;
            if (k->failed)
                failed_seen += k->events;
        }
    }
    uint64_t cells = 0;
    for (int t = 0; t < nprod; t++)
        for (uint64_t s = 0; s < G->per; s++)
            cells += G->seen[(size_t)t * G->per + s] != 0;
    printf("account: %" PRIu64 " batches, %" PRIu64 " distinct events at the sink (%" PRIu64
           " of them from batches the client counted failed), %" PRIu64
           " duplicate copies, all under repeated keys: %s\n",
           (uint64_t)G->nkeys, distinct, failed_seen, extra,
           extra == G->sink_dups ? "yes" : "NO");
    printf("checks:\n");
    check(st.accepted == ok, "accepted == track calls that returned 0");
    check(st.dropped_full == full && other == 0, "drops counted exactly (dropped_full)");
    check(st.accepted == st.delivered + st.skipped + st.failed + st.pending,
          "accepted = delivered + skipped + failed + pending");
    check(st.pending == 0, "pending == 0 after the final flush");
    check(st.accepted == st.delivered + st.failed + st.skipped,
          "everything accepted was delivered or counted failed");
    /* shutdown's report covers the whole run: what failed under the
     * faults (and what the sink skipped) is undelivered */
    check(undelivered == st.failed + st.skipped && (src == 0) == (undelivered == 0),
          "shutdown: undelivered = failed + skipped over the run");
    check(G->key_overflow == 0, "key table did not overflow");
    check(unreported == 0, "every key the sink saw was reported by the client");
    check(multi_report == 0, "one report per batch");
    check(rep_deliv == st.delivered && rep_failed == st.failed,
          "delivery reports add up to delivered / failed");
    check((uint64_t)G->nkeys == st.batches, "batches == distinct Idempotency-Keys");
    check(bad_multiple == 0, "the sink holds every batch a whole number of times");
    check(sink_total == G->sink_tagged && G->sink_untagged == 0, "sink events all accounted");
    check(cells == distinct, "distinct (thread, seq) at the sink == distinct from reports");
    check(distinct == st.delivered + failed_seen,
          "distinct at the sink == delivered + failed-but-received");
    check(extra == G->sink_dups, "duplicates only as repeated copies under the same key");
    check(sk.queued == G->sink_tagged, "sink queued == events recorded");
    printf("%s\n", failures ? "SOAK FAILED" : "SOAK PASSED");
    return failures ? 1 : 0;
}
