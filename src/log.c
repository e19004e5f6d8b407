/* SPDX-License-Identifier: MIT */
/*
 * log.c -- log lines of the sender thread.  Bounded formatting into a stack
 * buffer, no allocation.  Callers never pass the API key.
 *
 * Lines for the default logger (segops_log_stderr) go through two filters
 * first, so that a server that stays down cannot flood stderr:
 *
 *   level     $SEGOPS_LOG_LEVEL = error | warn | info (default) | off;
 *             lines above the level are dropped before formatting.
 *   rate      each category -- one call site, identified by its format
 *             string -- may write SG_LOG_BURST lines per SG_LOG_WINDOW_MS
 *             window; further lines of that category in the window are
 *             counted, not written.  Once the window has ended, the next
 *             line of the default logger, of any category, is preceded by
 *             one "... N similar lines suppressed" summary.
 *
 * The rate state is process-wide (several clients failing at once are still
 * one flood) and lives in a small fixed table under a mutex: sg_log() runs
 * on sender threads only, never on the producers' hot path, so the lock is
 * uncontended in practice.  A custom logger gets every line unfiltered: it
 * can make its own policy.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"

#define SG_LOG_BURST 10
#define SG_LOG_WINDOW_MS 10000
#define SG_LOG_CATEGORIES 32
#define SG_LOG_EXCERPT 96

struct sg_log_cat {
    const char *fmt;      /* the category; NULL: free entry */
    int64_t window_start; /* ms */
    uint64_t last_used;   /* lim_clock at the last line: LRU eviction */
    uint32_t written;     /* lines written in this window */
    uint64_t suppressed;  /* lines counted, not written, in this window */
    int level;            /* of the last suppressed line */
    char excerpt[SG_LOG_EXCERPT]; /* start of the last suppressed line */
};

static pthread_mutex_t lim_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sg_log_cat lim[SG_LOG_CATEGORIES];
static uint64_t lim_clock;          /* lines seen, for LRU order */
static const int64_t *lim_fake_now; /* tests: a clock they drive */

/* Internal, for tests only (declared by tests/test_metrics.c): forgets all
 * rate state and reads time from *fake_now_ms (NULL: the real clock). */
void sg_log_limit_reset(const int64_t *fake_now_ms);

void sg_log_limit_reset(const int64_t *fake_now_ms)
{
    pthread_mutex_lock(&lim_mu);
    memset(lim, 0, sizeof(lim));
    lim_fake_now = fake_now_ms;
    pthread_mutex_unlock(&lim_mu);
}

static int64_t now_ms(void)
{
    if (lim_fake_now)
        return *lim_fake_now;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Highest level the default logger writes: $SEGOPS_LOG_LEVEL, read for
 * each line (lines are rare, and no state needs setting up).  -1: none.
 * Like any getenv(), this races with a setenv() in another thread: set
 * the variable before creating clients. */
static int max_level(void)
{
    const char *v = getenv("SEGOPS_LOG_LEVEL");
    if (!v || !v[0])
        return SEGOPS_LOG_INFO;
    if (!strcmp(v, "error"))
        return SEGOPS_LOG_ERROR;
    if (!strcmp(v, "warn") || !strcmp(v, "warning"))
        return SEGOPS_LOG_WARN;
    if (!strcmp(v, "off") || !strcmp(v, "none"))
        return -1;
    return SEGOPS_LOG_INFO; /* "info" and anything unknown */
}

static void summarise(const struct sg_log_cat *k)
{
    char line[SG_LOG_EXCERPT + 96];
    snprintf(line, sizeof(line), "... %llu similar lines suppressed (last: %s)",
             (unsigned long long)k->suppressed, k->excerpt);
    segops_log_stderr(NULL, k->level, line);
}

/* Writes the summaries of categories whose window has ended.  Called with
 * lim_mu held; writing to stderr under the lock keeps summaries ordered
 * with the lines they summarise. */
static void flush_summaries(int64_t now)
{
    for (int i = 0; i < SG_LOG_CATEGORIES; i++) {
        struct sg_log_cat *k = &lim[i];
        if (!k->fmt || now - k->window_start < SG_LOG_WINDOW_MS)
            continue;
        if (k->suppressed)
            summarise(k);
        k->fmt = NULL;
    }
}

/* Decides whether a line of category fmt may be written now; counts it
 * when not.  Called with lim_mu held. */
static int admit(const char *fmt, int level, const char *line, int64_t now)
{
    struct sg_log_cat *k = NULL, *victim = NULL;
    for (int i = 0; i < SG_LOG_CATEGORIES && !k; i++) {
        if (lim[i].fmt == fmt)
            k = &lim[i];
        else if (!lim[i].fmt)
            victim = victim && !victim->fmt ? victim : &lim[i];
        else if (!victim || (victim->fmt && lim[i].last_used < victim->last_used))
            victim = &lim[i];
    }
    if (!k) {
        /* a free entry, else the least recently used category is evicted,
         * its pending count reported now rather than lost */
        if (victim->fmt && victim->suppressed)
            summarise(victim);
        k = victim;
        memset(k, 0, sizeof(*k));
        k->fmt = fmt;
        k->window_start = now;
    }
    k->last_used = ++lim_clock;
    if (k->written < SG_LOG_BURST) {
        k->written++;
        return 1;
    }
    k->suppressed++;
    k->level = level;
    size_t n = strlen(line);
    if (n > sizeof(k->excerpt) - 1) {
        n = sizeof(k->excerpt) - 1;
        while (n > 0 && ((unsigned char)line[n] & 0xc0) == 0x80)
            n--; /* cut before a UTF-8 sequence, not inside it */
    }
    memcpy(k->excerpt, line, n);
    k->excerpt[n] = 0;
    return 0;
}

void sg_log(struct segops_client *c, int level, const char *fmt, ...)
{
    char line[768];
    int dflt = c->cfg.logger == segops_log_stderr;
    if (dflt && level > max_level())
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (!dflt) {
        c->cfg.logger(c->cfg.logger_user, level, line);
        return;
    }
    pthread_mutex_lock(&lim_mu);
    int64_t now = now_ms();
    flush_summaries(now);
    if (admit(fmt, level, line, now))
        segops_log_stderr(c->cfg.logger_user, level, line);
    pthread_mutex_unlock(&lim_mu);
}
