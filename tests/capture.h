/* SPDX-License-Identifier: MIT */
/*
 * capture.h -- what a client told its test, for the suites run against the
 * scripted server (test_answers.c, test_edges.c): every log line, the last
 * delivery report, and raw-answer helpers.  Definitions, not declarations:
 * include it in one translation unit per test program.
 */
#ifndef SEGOPS_TEST_CAPTURE_H
#define SEGOPS_TEST_CAPTURE_H

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "scripted.h"
#include "segops.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* guards all below */
static char LOG[65536];   /* every log line, '\n'-separated */
static size_t LOGN;
static segops_delivery LAST; /* the last report (its key not kept) */
static char LAST_DETAIL[512];
static uint32_t NREP;
static uint64_t REP_FAILED; /* sum of the reports' `failed` */

static void on_log(void *u, int level, const char *line)
{
    (void)u;
    (void)level;
    pthread_mutex_lock(&mu);
    size_t n = strlen(line);
    if (LOGN + n + 2 < sizeof(LOG)) {
        memcpy(LOG + LOGN, line, n);
        LOGN += n;
        LOG[LOGN++] = '\n';
        LOG[LOGN] = 0;
    }
    pthread_mutex_unlock(&mu);
}

static void on_delivery(void *u, const segops_delivery *d)
{
    (void)u;
    pthread_mutex_lock(&mu);
    LAST = *d;
    snprintf(LAST_DETAIL, sizeof(LAST_DETAIL), "%s", d->detail);
    LAST.detail = LAST_DETAIL;
    LAST.idempotency_key = NULL;
    NREP++;
    REP_FAILED += d->failed;
    pthread_mutex_unlock(&mu);
}

static void capture_reset(void)
{
    pthread_mutex_lock(&mu);
    LOGN = 0;
    LOG[0] = 0;
    NREP = 0;
    REP_FAILED = 0;
    memset(&LAST, 0, sizeof(LAST));
    pthread_mutex_unlock(&mu);
}

/* A raw answer: status line, the given header lines, Content-Length, body. */
static size_t answer(char *out, size_t cap, const char *status, const char *headers,
                     const char *body)
{
    return (size_t)snprintf(out, cap, "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\n\r\n%s", status,
                            headers, strlen(body), body);
}

#endif
