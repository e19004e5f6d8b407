/* SPDX-License-Identifier: MIT */
/*
 * What each answer a real network produces means, against a scripted
 * hostile server (tests/scripted.c): long and folded headers, framing
 * conflicts and truncation after a 202 (never sent again), 2xx bodies that
 * are not SegOps's, answers that cover fewer events than sent, 413 (split
 * in halves), early answers before the body was read, redirects, and
 * server text that must be cleaned before it reaches a log line.  Run
 * once per I/O driver (SEGOPS_IO).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "capture.h"
#include "scripted.h"
#include "segops.h"

static struct scr *S;
static uint16_t PORT;
static segops_client *C;
static _Atomic int MODE; /* set by the test, read by server threads */

/* 413 mode: events seen per seq, to check each arrives exactly once */
static uint8_t SEEN[4096];

static size_t accepted(const struct scr_req *rq, char *out, size_t cap, const char *headers)
{
    char body[64];
    snprintf(body, sizeof(body), "{\"queued\":%u,\"skipped\":0}", rq->events);
    return answer(out, cap, "202 Accepted", headers, body);
}

enum {
    M_LONG_COOKIE = 1,
    M_FOLDED,
    M_BIG_HEAD,
    M_CL_AND_CHUNKED,
    M_TRUNCATED,
    M_HTML_200,
    M_QUEUED_HALF,
    M_413_OVER,
    M_413_ONE,
    M_EARLY_401,
    M_REDIRECT,
    M_DIRTY_DETAIL,
    M_NGINX_HTML_400,
    M_LIST_DETAIL,
};


static size_t script(void *u, const struct scr_req *rq, char *out, size_t cap, int *how)
{
    (void)u;
    char h[40100];
    switch (atomic_load(&MODE)) {
    case M_LONG_COOKIE: {
        char cookie[1537];
        memset(cookie, 'c', 1536);
        cookie[1536] = 0;
        snprintf(h, sizeof(h), "Set-Cookie: lb=%s; Path=/\r\n", cookie);
        return accepted(rq, out, cap, h);
    }
    case M_FOLDED:
        return accepted(rq, out, cap, "X-Note: first\r\n  folded\r\n\tmore\r\n");
    case M_BIG_HEAD: {
        size_t n = 0;
        for (int i = 0; i < 20; i++)
            n += (size_t)snprintf(h + n, sizeof(h) - n, "X-Pad-%02d: %01000d\r\n", i, 0);
        return accepted(rq, out, cap, h);
    }
    case M_CL_AND_CHUNKED: {
        char body[64];
        int bl = snprintf(body, sizeof(body), "{\"queued\":%u,\"skipped\":0}", rq->events);
        return (size_t)snprintf(out, cap,
                                "HTTP/1.1 202 Accepted\r\nContent-Length: 3\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n",
                                bl, body);
    }
    case M_TRUNCATED:
        *how = SCR_CLOSE;
        return (size_t)snprintf(out, cap,
                                "HTTP/1.1 202 Accepted\r\nContent-Length: 100\r\n\r\n{\"queu");
    case M_HTML_200:
        return answer(out, cap, "200 OK", "Content-Type: text/html\r\n",
                      "<html><body>Welcome to the hotel Wi-Fi</body></html>");
    case M_QUEUED_HALF: {
        char body[64];
        snprintf(body, sizeof(body), "{\"queued\":%u}", rq->events / 2);
        return answer(out, cap, "202 Accepted", "", body);
    }
    case M_413_OVER:
        /* like nginx with client_max_body_size: refuses big bodies early */
        if (rq->body_len > 2500) {
            *how = SCR_EARLY;
            return answer(out, cap, "413 Request Entity Too Large", "Connection: close\r\n",
                          "<html>413</html>");
        }
        if (rq->body) {
            /* "seq":K of every event, each must come once */
            for (const char *p = rq->body; (p = strstr(p, "\"seq\":")) != NULL; p += 6) {
                int k = atoi(p + 6);
                if (k >= 0 && k < (int)sizeof(SEEN)) {
                    pthread_mutex_lock(&mu);
                    SEEN[k]++;
                    pthread_mutex_unlock(&mu);
                }
            }
        }
        return accepted(rq, out, cap, "");
    case M_413_ONE:
        if (rq->body && strstr(rq->body, "HUGE"))
            return answer(out, cap, "413 Payload Too Large", "", "{\"detail\":\"too big\"}");
        return accepted(rq, out, cap, "");
    case M_EARLY_401:
        *how = SCR_EARLY;
        return answer(out, cap, "401 Unauthorized", "Connection: close\r\n",
                      "{\"detail\":\"Invalid API key sk_test_secret_key.\"}");
    case M_REDIRECT:
        return answer(out, cap, "301 Moved Permanently",
                      "Location: https://api.segops.example/segops/\r\n", "");
    case M_DIRTY_DETAIL:
        return answer(out, cap, "400 Bad Request", "Content-Type: application/json\r\n",
                      "{\"detail\":\"bad \\u202eevent\\u202c \xff\xfe type\"}");
    case M_NGINX_HTML_400:
        return answer(out, cap, "400 Bad Request", "Content-Type: text/html\r\n",
                      "<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS "
                      "port</title></head>\r\n</html>\r\n");
    case M_LIST_DETAIL:
        return answer(out, cap, "422 Unprocessable Entity", "",
                      "{\"detail\":[{\"loc\":[\"body\",\"events\",0,\"user_id\"],"
                      "\"msg\":\"field required\"}]}");
    }
    return accepted(rq, out, cap, "");
}

static void setup(void)
{
    memset(SEEN, 0, sizeof(SEEN));
    capture_reset();
    S = scr_start(script, NULL, &PORT);
    cr_assert_not_null(S);
}

static void teardown(void)
{
    if (C) {
        segops_shutdown(C, 2000, NULL);
        C = NULL;
    }
    scr_stop(S);
    S = NULL;
}

TestSuite(answers, .init = setup, .fini = teardown, .timeout = 60);

static uint32_t SLOT;

static void client(uint32_t batch, uint32_t max_batch_bytes)
{
    static char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)PORT);
    segops_options o = h_opts();
    o.api_url = url;
    o.api_key = "sk_test_secret_key";
    o.logger = on_log;
    o.on_delivery = on_delivery;
    o.flush_interval_ms = 60000;
    if (batch)
        o.batch_size = batch;
    if (max_batch_bytes)
        o.max_batch_bytes = max_batch_bytes;
    if (SLOT)
        o.slot_size = SLOT;
    cr_assert_eq(segops_client_new(&o, &C), 0);
}

static void track(int n, int first, const char *extra)
{
    for (int i = 0; i < n; i++) {
        segops_prop p[] = {SEGOPS_I64("seq", first + i), SEGOPS_STR("note", extra ? extra : "x")};
        segops_event ev = {.user_id = "user-1", .event_type = "page_viewed", .payload = p, .payload_len = 2};
        cr_assert_eq(segops_track(C, &ev), 0);
    }
}

static void stats(segops_counters *s)
{
    cr_assert_eq(segops_stats(C, s), 0);
}

/* ------------------------------------------------ 2xx: never sent again */

static void expect_delivered_once(int mode, int n)
{
    MODE = mode;
    client(0, 0);
    track(n, 0, NULL);
    cr_expect_eq(segops_flush(C, 10000), 0, "mode %d", mode);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    struct scr_counts k;
    scr_counts(S, &k);
    cr_expect_eq(s.delivered, (uint64_t)n, "mode %d", mode);
    cr_expect_eq(s.failed, 0);
    cr_expect_eq(s.retries, 0, "mode %d: a 2xx was retried", mode);
    cr_expect_eq(k.requests, 1, "mode %d: the server got %u requests", mode, k.requests);
    cr_expect_eq(k.repeated_keys, 0);
}

Test(answers, a_202_with_a_1536_byte_cookie_is_delivered_once)
{
    expect_delivered_once(M_LONG_COOKIE, 20);
}

Test(answers, a_202_with_folded_headers_is_delivered_once)
{
    expect_delivered_once(M_FOLDED, 20);
}

Test(answers, a_202_with_a_20_kib_head_is_delivered_once)
{
    expect_delivered_once(M_BIG_HEAD, 20);
}

Test(answers, a_202_with_length_and_chunked_is_delivered_once_and_the_connection_closed)
{
    expect_delivered_once(M_CL_AND_CHUNKED, 20);
    track(5, 100, NULL);
    cr_expect_eq(segops_flush(C, 10000), 0);
    struct scr_counts k;
    scr_counts(S, &k);
    cr_expect_eq(k.requests, 2);
    cr_expect_eq(k.connections, 2, "the connection was reused after a smuggling-shaped answer");
}

Test(answers, a_truncated_202_counts_delivered_and_says_so)
{
    expect_delivered_once(M_TRUNCATED, 20);
    cr_expect(strstr(LOG, "HTTP 202 answer could not be read") != NULL, "log: %s", LOG);
    cr_expect(strstr(LOG, "not sent again") != NULL);
}

/* ------------------------------------------- 2xx that is not SegOps's */

Test(answers, a_200_html_page_fails_the_batch_and_names_the_url)
{
    MODE = M_HTML_200;
    client(0, 0);
    track(20, 0, NULL);
    cr_expect_eq(segops_flush(C, 10000), SEGOPS_EANSWER);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.delivered, 0);
    cr_expect_eq(s.failed, 20);
    cr_expect_eq(s.retries, 0);
    cr_expect(strstr(LOG, "check api_url") != NULL, "log: %s", LOG);
    cr_expect(strstr(LOG, "hotel Wi-Fi") != NULL, "the body's start is shown: %s", LOG);
    cr_expect_eq(LAST.result, SEGOPS_EANSWER);
    cr_expect_eq(LAST.failed, 20);
}

Test(answers, events_the_answer_does_not_cover_count_failed)
{
    MODE = M_QUEUED_HALF;
    client(0, 0);
    track(20, 0, NULL);
    cr_expect_eq(segops_flush(C, 10000), SEGOPS_EANSWER);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.delivered, 10);
    cr_expect_eq(s.failed, 10);
    cr_expect_eq(s.pending, 0);
    cr_expect_eq(s.retries, 0);
    cr_expect_eq(LAST.failed, 10);
    cr_expect_eq(LAST.events, 20);
    cr_expect(strstr(LOG, "queued 10 and skipped 0 of 20 events: 10 counted failed") != NULL,
              "log: %s", LOG);
}

/* ---------------------------------------------------------------- 413 */

Test(answers, a_413_splits_the_batch_until_every_event_is_delivered_once)
{
    MODE = M_413_OVER;
    client(200, 0);
    track(200, 0, "0123456789012345678901234567890123456789"); /* ~120 bytes each */
    cr_expect_eq(segops_flush(C, 20000), 0);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.delivered, 200);
    cr_expect_eq(s.failed, 0);
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&mu);
        int seen_i = SEEN[i];
        pthread_mutex_unlock(&mu);
        cr_expect_eq(seen_i, 1, "event %d arrived %d times", i, seen_i);
    }
    struct scr_counts k;
    scr_counts(S, &k);
    cr_expect_gt(k.requests, 8, "split requests: %u", k.requests);
    cr_expect_eq(k.repeated_keys, 0, "a half was sent under a key already used");
    cr_expect_eq(LAST.failed, 0);
}

Test(answers, a_413_fails_only_the_one_event_too_large)
{
    MODE = M_413_ONE;
    client(16, 0);
    track(7, 0, NULL);
    track(1, 7, "HUGE");
    track(8, 8, NULL);
    cr_expect_eq(segops_flush(C, 20000), SEGOPS_EREJECTED);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.delivered, 15);
    cr_expect_eq(s.failed, 1);
    cr_expect_eq(s.pending, 0);
    cr_expect_eq(LAST.failed, 1);
    cr_expect_eq(LAST.status, 413);
    cr_expect(strstr(LOG, "1 of 16 events rejected: HTTP 413: 1 event is too large") != NULL,
              "log: %s", LOG);
}

/* ---------------------------------------------------- early answers */

Test(answers, an_early_401_is_the_answer_not_a_reset)
{
    MODE = M_EARLY_401;
    /* a body far larger than the socket buffers: still being written when
     * the server answers and closes */
    SLOT = 8192;
    client(500, 4 << 20);
    static char big[6000];
    memset(big, 'b', sizeof(big) - 1);
    track(500, 0, big);
    cr_expect_eq(segops_flush(C, 20000), SEGOPS_EREJECTED);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    stats(&s);
    cr_expect_eq(s.failed, 500);
    cr_expect_eq(s.retries, 0, "a 401 is not retried");
    cr_expect_eq(LAST.status, 401);
    cr_expect_eq(LAST.attempts, 1);
    cr_expect(strstr(LAST_DETAIL, "Invalid API key") != NULL, "detail: %s", LAST_DETAIL);
    cr_expect(strstr(LOG, "sk_test_secret_key") == NULL, "the key was logged: %s", LOG);
    cr_expect(strstr(LAST_DETAIL, "[redacted]") != NULL, "detail: %s", LAST_DETAIL);
}

/* ------------------------------------------------------- 3xx, details */

Test(answers, a_redirect_is_named_with_its_location)
{
    MODE = M_REDIRECT;
    client(0, 0);
    track(3, 0, NULL);
    cr_expect_eq(segops_flush(C, 10000), SEGOPS_EREDIRECT);
    cr_expect_eq(LAST.result, SEGOPS_EREDIRECT);
    cr_expect_eq(LAST.status, 301);
    cr_expect(strstr(LAST_DETAIL, "https://api.segops.example/segops/") != NULL, "detail: %s",
              LAST_DETAIL);
    cr_expect(strstr(LAST_DETAIL, "api_url") != NULL);
    struct scr_counts k;
    scr_counts(S, &k);
    cr_expect_eq(k.requests, 1, "a redirect is not retried");
}

Test(answers, server_details_are_cleaned)
{
    MODE = M_DIRTY_DETAIL;
    client(0, 0);
    track(1, 0, NULL);
    cr_expect_eq(segops_flush(C, 10000), SEGOPS_EREJECTED);
    cr_expect(strstr(LAST_DETAIL, "\xe2\x80\xae") == NULL, "bidi override kept: %s", LAST_DETAIL);
    cr_expect(strstr(LAST_DETAIL, "\xef\xbf\xbd") != NULL, "invalid UTF-8 not replaced: %s",
              LAST_DETAIL);
    cr_expect(strstr(LOG, "bad  event  ") != NULL, "log: %s", LOG);
}

Test(answers, a_non_json_400_shows_the_start_of_its_body)
{
    MODE = M_NGINX_HTML_400;
    client(0, 0);
    track(1, 0, NULL);
    cr_expect_eq(segops_flush(C, 10000), SEGOPS_EREJECTED);
    cr_expect(strstr(LAST_DETAIL, "plain HTTP request was sent to HTTPS port") != NULL,
              "detail: %s", LAST_DETAIL);
    cr_expect(strchr(LAST_DETAIL, '\n') == NULL, "a newline in a log line: %s", LAST_DETAIL);
}

Test(answers, a_list_detail_is_shown_as_json)
{
    MODE = M_LIST_DETAIL;
    client(0, 0);
    track(1, 0, NULL);
    cr_expect_eq(segops_flush(C, 10000), SEGOPS_EREJECTED);
    cr_expect(strstr(LAST_DETAIL, "\"msg\":\"field required\"") != NULL, "detail: %s",
              LAST_DETAIL);
    cr_expect(strstr(LOG, "HTTP 422: [{") != NULL, "log: %s", LOG);
}
