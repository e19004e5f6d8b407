/* SPDX-License-Identifier: MIT */
/* harness.c -- see harness.h. */
#include "harness.h"

#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void h_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

segops_options h_opts(void)
{
    segops_options o = SEGOPS_OPTIONS_INIT;
    o.flush_interval_ms = 60000;
    return o;
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
    struct harness *h = user;
    uint64_t t, s;
    pthread_mutex_lock(&h->mu);
    if (h->seen && field(json, len, "thread", &t) == 0 && field(json, len, "seq", &s) == 0 &&
        t < H_MAX_THREADS && s < h->per) {
        uint8_t *cell = &h->seen[t * h->per + s];
        if (*cell)
            h->dup_tagged++;
        if (*cell < 255)
            (*cell)++;
        h->tagged++;
    } else {
        h->untagged++;
    }
    uint32_t i;
    for (i = 0; i < h->nkeys; i++)
        if (strcmp(h->keys[i].key, key) == 0)
            break;
    if (i == h->nkeys && h->nkeys < H_MAX_KEYS) {
        snprintf(h->keys[i].key, sizeof(h->keys[i].key), "%s", key);
        h->nkeys++;
    }
    if (i < H_MAX_KEYS)
        h->keys[i].events++;
    size_t n = len < sizeof(h->last_event) - 1 ? len : sizeof(h->last_event) - 1;
    memcpy(h->last_event, json, n);
    h->last_event[n] = 0;
    h->last_event_unix_ms = h_now_ms();
    pthread_mutex_unlock(&h->mu);
}

static void on_log(void *user, int level, const char *line)
{
    struct harness *h = user;
    (void)level;
    if (getenv("H_ECHO_LOG")) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        fprintf(stderr, "%ld.%03ld %s\n", (long)ts.tv_sec, ts.tv_nsec / 1000000, line);
    }
    pthread_mutex_lock(&h->mu);
    size_t n = strlen(line);
    if (h->log_len + n + 2 < H_LOG_MAX) {
        memcpy(h->log + h->log_len, line, n);
        h->log_len += n;
        h->log[h->log_len++] = '\n';
        h->log[h->log_len] = 0;
    }
    h->log_lines++;
    pthread_mutex_unlock(&h->mu);
}

static void on_delivery(void *user, const segops_delivery *d)
{
    struct harness *h = user;
    pthread_mutex_lock(&h->mu);
    h->last = *d;
    snprintf(h->last_detail, sizeof(h->last_detail), "%s", d->detail ? d->detail : "");
    h->last.detail = NULL;
    h->last.idempotency_key = NULL;
    h->deliveries++;
    if (d->result == 0) {
        h->rep_delivered += d->events - d->skipped;
        h->rep_skipped += d->skipped;
    } else {
        h->rep_failed += d->events;
    }
    pthread_mutex_unlock(&h->mu);
}

void h_start_sink(struct harness *h, const struct sink_opts *so, uint32_t per)
{
    memset(h, 0, sizeof(*h));
    pthread_mutex_init(&h->mu, NULL);
    struct sink_opts o;
    if (so)
        o = *so;
    else
        memset(&o, 0, sizeof(o));
    o.on_event = on_event;
    o.on_event_user = h;
    h->per = per;
    if (per) {
        h->seen = calloc((size_t)H_MAX_THREADS * per, 1);
        cr_assert_not_null(h->seen);
    }
    h->sink = sink_start(&o, &h->port);
    cr_assert_not_null(h->sink, "sink_start failed");
    snprintf(h->url, sizeof(h->url), "http://127.0.0.1:%u", (unsigned)h->port);
}

int h_client(struct harness *h, segops_options *o)
{
    segops_options d = SEGOPS_OPTIONS_INIT;
    if (!o) {
        o = &d;
    }
    if (!o->api_url)
        o->api_url = h->url;
    if (!o->api_key)
        o->api_key = "sk_test";
    o->logger = on_log;
    o->logger_user = h;
    o->on_delivery = on_delivery;
    o->delivery_user = h;
    return segops_client_new(o, &h->c);
}

void h_stop(struct harness *h)
{
    if (h->c)
        segops_shutdown(h->c, 5000, NULL);
    h->c = NULL;
    if (h->sink)
        sink_stop(h->sink);
    h->sink = NULL;
    free(h->seen);
    h->seen = NULL;
}

void h_counts(struct harness *h, struct sink_counts *k)
{
    sink_get_counts(h->sink, k);
}

uint64_t h_wait_queued(struct harness *h, uint64_t n, int ms)
{
    struct sink_counts k;
    for (int waited = 0;; waited += 5) {
        sink_get_counts(h->sink, &k);
        if (k.queued >= n || waited >= ms)
            return k.queued;
        h_sleep_ms(5);
    }
}

void h_expect_invariant(segops_client *c)
{
    segops_counters s = SEGOPS_COUNTERS_INIT;
    cr_assert_eq(segops_stats(c, &s), 0);
    cr_expect_eq(s.accepted, s.delivered + s.skipped + s.failed + s.pending,
                 "accepted %llu != delivered %llu + skipped %llu + failed %llu + pending %llu",
                 (unsigned long long)s.accepted, (unsigned long long)s.delivered,
                 (unsigned long long)s.skipped, (unsigned long long)s.failed,
                 (unsigned long long)s.pending);
}

struct h_prod {
    segops_client *c;
    int id, n, ok;
    int mode;                   /* enum h_track */
    const segops_prepared *prep;
    pthread_barrier_t *start;   /* all threads start at once */
};

/* One event (thread, seq) the way `mode` says. */
static int h_track_one(const struct h_prod *p, int i)
{
    switch (p->mode) {
    case H_TRACK_PREPARED: {
        segops_value v[] = {SEGOPS_VI64(p->id), SEGOPS_VI64(i), SEGOPS_VSTR("/checkout")};
        return segops_track_prepared(p->c, p->prep, "user-1", SEGOPS_NTS, v, 3,
                                     SEGOPS_TIME_NONE);
    }
    case H_TRACK_MACRO:
        return SEGOPS_TRACK_PREPARED(p->c, "page_viewed", "user-1", SEGOPS_I64("thread", p->id),
                                     SEGOPS_I64("seq", i), SEGOPS_STR("page", "/checkout"));
    default: {
        segops_prop props[] = {SEGOPS_I64("thread", p->id), SEGOPS_I64("seq", i),
                               SEGOPS_STR("page", "/checkout")};
        segops_event ev = {
            .user_id = "user-1", .event_type = "page_viewed", .payload = props, .payload_len = 3};
        return segops_track(p->c, &ev);
    }
    }
}

static void *h_producer(void *arg)
{
    struct h_prod *p = arg;
    pthread_barrier_wait(p->start);
    for (int i = 0; i < p->n; i++) {
        int rc;
        while ((rc = h_track_one(p, i)) == SEGOPS_EFULL)
            sched_yield(); /* the test wants every event; users may drop */
        p->ok += rc == 0;
    }
    return NULL;
}

void h_exactly_once(struct harness *h, int threads, int per, uint32_t flush_ms)
{
    h_exactly_once_as(h, threads, per, flush_ms, H_TRACK_PLAIN);
}

void h_exactly_once_as(struct harness *h, int threads, int per, uint32_t flush_ms, int mode)
{
    cr_assert(threads <= H_MAX_THREADS && (uint32_t)per <= h->per);
    pthread_t th[H_MAX_THREADS];
    struct h_prod p[H_MAX_THREADS];
    segops_prepared *prep = NULL;
    if (mode == H_TRACK_PREPARED) {
        segops_prop_spec k[] = {SEGOPS_KEY_I64("thread"), SEGOPS_KEY_I64("seq"),
                                SEGOPS_KEY_STR("page")};
        cr_assert_eq(segops_prepare("page_viewed", SEGOPS_NTS, k, 3, &prep), 0);
    }
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++) {
        p[i] = (struct h_prod){h->c, i, per, 0, mode, prep, &start};
        pthread_create(&th[i], NULL, h_producer, &p[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(p[i].ok, per);
    }
    uint64_t all = (uint64_t)threads * (uint64_t)per;
    cr_expect_eq(segops_flush(h->c, flush_ms), 0);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    cr_assert_eq(segops_stats(h->c, &s), 0);
    cr_expect_eq(s.accepted, all);
    cr_expect_eq(s.delivered, all);
    cr_expect_eq(s.failed, 0);
    cr_expect_eq(s.pending, 0);
    h_expect_invariant(h->c);
    pthread_mutex_lock(&h->mu);
    cr_expect_eq(h->tagged, all);
    cr_expect_eq(h->dup_tagged, 0);
    uint64_t missing = 0;
    for (int t = 0; t < threads; t++)
        for (int i = 0; i < per; i++)
            missing += h->seen[(size_t)t * h->per + i] != 1;
    pthread_mutex_unlock(&h->mu);
    cr_expect_eq(missing, 0);
    pthread_barrier_destroy(&start);
    /* every event is resolved (flushed above): the handle may go */
    segops_prepared_free(prep);
}
