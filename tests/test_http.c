/* SPDX-License-Identifier: MIT */
/*
 * test_http.c -- src/http.c: the response parser (every response fed whole,
 * one byte at a time and split in two at every position, with identical
 * results), its error codes, Retry-After and the SegOps answer reader.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http.h"
#include "timefmt.h"

/* Everything a caller can observe after feeding a response. */
struct outcome {
    int err;           /* first negative return, or 0 */
    size_t consumed;   /* bytes the parser took; the rest is leftover */
    int done;
    int status;
    int conn_close;
    int chunked;
    int64_t content_length;
    char retry_after[SG_HTTP_RETRY_AFTER_MAX + 1];
    char location[SG_HTTP_LOCATION_MAX + 1];
    size_t body_len;
    char body[SG_HTTP_BODY_KEEP];
    uint64_t body_total;
};

/* Parse as the answer to a CONNECT (sg_http_resp_init_connect). */
static int connect_mode;

/* Feeds msg[0..len) in pieces of the given sizes (the last piece takes the
 * rest), then signals EOF if eof is set and the response is not done. */
static void run(struct outcome *o, const char *msg, size_t len,
                const size_t *cuts, size_t ncuts, int eof)
{
    static struct sg_http_resp r;
    size_t off = 0;

    memset(o, 0, sizeof *o);
    if (connect_mode)
        sg_http_resp_init_connect(&r);
    else
        sg_http_resp_init(&r);
    for (size_t c = 0; c <= ncuts && off <= len; c++) {
        size_t n = c < ncuts ? cuts[c] : len - off;
        ssize_t rc;
        if (n > len - off)
            n = len - off;
        rc = sg_http_resp_feed(&r, msg + off, n);
        if (rc < 0) {
            o->err = (int)rc;
            /* errors are sticky */
            cr_assert_eq(sg_http_resp_feed(&r, "x", 1), rc);
            break;
        }
        cr_assert_leq((size_t)rc, n);
        o->consumed += (size_t)rc;
        off += n;
        if ((size_t)rc < n) {
            cr_assert(r.done, "partial consumption without done");
            break;
        }
        if (off == len && c >= ncuts)
            break;
    }
    if (!o->err && eof && !r.done)
        o->err = sg_http_resp_eof(&r);
    if (r.done)
        cr_assert_eq(sg_http_resp_feed(&r, "HTTP", 4), 0, "feed after done");
    o->done = r.done;
    o->status = r.status;
    o->conn_close = r.conn_close;
    o->chunked = r.chunked;
    o->content_length = r.content_length;
    memcpy(o->retry_after, r.retry_after, sizeof o->retry_after);
    memcpy(o->location, r.location, sizeof o->location);
    o->body_len = r.body_len;
    memcpy(o->body, r.body, r.body_len);
    o->body_total = r.body_total;
}

static void same(const struct outcome *a, const struct outcome *b,
                 const char *how, size_t at)
{
    cr_assert_eq(a->err, b->err, "%s %zu: err %d vs %d", how, at, a->err, b->err);
    /* After an error only the code matters: how much was taken before it
     * depends on the feed sizes, and the connection is dropped anyway. */
    if (a->err)
        return;
    cr_assert_eq(a->consumed, b->consumed, "%s %zu: consumed", how, at);
    cr_assert_eq(a->done, b->done, "%s %zu: done", how, at);
    cr_assert_eq(a->status, b->status, "%s %zu: status", how, at);
    cr_assert_eq(a->conn_close, b->conn_close, "%s %zu: conn_close", how, at);
    cr_assert_eq(a->chunked, b->chunked, "%s %zu: chunked", how, at);
    cr_assert_eq(a->content_length, b->content_length, "%s %zu: CL", how, at);
    cr_assert_str_eq(a->retry_after, b->retry_after, "%s %zu: retry_after", how, at);
    cr_assert_str_eq(a->location, b->location, "%s %zu: location", how, at);
    cr_assert_eq(a->body_len, b->body_len, "%s %zu: body_len", how, at);
    cr_assert(memcmp(a->body, b->body, a->body_len) == 0, "%s %zu: body", how, at);
    cr_assert_eq(a->body_total, b->body_total, "%s %zu: body_total", how, at);
}

/*
 * Runs msg whole (placed against a guard page, so any read past the end
 * faults), one byte at a time, and split in two at every position (see
 * below for messages over 8 KiB); checks
 * that every outcome is identical and returns it.
 */
static struct outcome check_all(const char *msg, size_t len, int eof)
{
    static struct outcome whole, o;
    static size_t *ones;
    static size_t ones_cap;
    long pg = sysconf(_SC_PAGESIZE);
    size_t span = (len + (size_t)pg - 1) / (size_t)pg * (size_t)pg + (size_t)pg;
    char *m = mmap(NULL, span + (size_t)pg, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    cr_assert(m != MAP_FAILED);
    cr_assert_eq(mprotect(m + span, (size_t)pg, PROT_NONE), 0);
    memcpy(m + span - len, msg, len);
    run(&whole, m + span - len, len, NULL, 0, eof);
    munmap(m, span + (size_t)pg);

    if (ones_cap < len) {
        free(ones);
        ones = malloc(len * sizeof *ones);
        cr_assert(ones != NULL);
        ones_cap = len;
    }
    for (size_t i = 0; i < len; i++)
        ones[i] = 1;
    run(&o, msg, len, ones, len, eof);
    same(&whole, &o, "bytewise", 0);

    /* Every position; past 8 KiB (long-line and head-budget cases), every
     * position within 2 bytes of a CR or LF, the first and last 2 KiB, and
     * every 61st elsewhere -- where the state changes, plus a sample. */
    for (size_t k = 0; k <= len; k++) {
        if (len > 8192 && k > 2048 && k + 2048 < len && k % 61 != 0) {
            int near = 0;
            for (size_t d = k >= 2 ? k - 2 : 0; d < k + 2 && d < len && !near; d++)
                near = msg[d] == '\r' || msg[d] == '\n';
            if (!near)
                continue;
        }
        run(&o, msg, len, &k, 1, eof);
        same(&whole, &o, "split at", k);
    }
    return whole;
}

#define CHECK(lit, eof) check_all(lit, sizeof(lit) - 1, eof)

/* ------------------------------------------------------------ framings */

Test(http, content_length_body)
{
    struct outcome o = CHECK("HTTP/1.1 202 Accepted\r\n"
                             "Content-Type: application/json\r\n"
                             "Content-Length: 24\r\n"
                             "\r\n"
                             "{\"queued\":3,\"skipped\":1}", 0);
    cr_assert_eq(o.err, 0);
    cr_assert(o.done);
    cr_assert_eq(o.status, 202);
    cr_assert_eq(o.content_length, 24);
    cr_assert_eq(o.chunked, 0);
    cr_assert_eq(o.conn_close, 0);
    cr_assert_eq(o.body_len, 24);
    cr_assert_eq(o.body_total, 24);
    cr_assert(memcmp(o.body, "{\"queued\":3,\"skipped\":1}", 24) == 0);
    cr_assert_str_eq(o.retry_after, "");
}

Test(http, zero_content_length_ends_at_head)
{
    struct outcome o = CHECK("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
    cr_assert(o.done);
    cr_assert_eq(o.body_total, 0);
}

Test(http, chunked_with_extensions_and_trailers)
{
    struct outcome o = CHECK("HTTP/1.1 200 OK\r\n"
                             "Transfer-Encoding: chunked\r\n"
                             "\r\n"
                             "5;name=value\r\nhello\r\n"
                             "1 ; a ; b=\"q\"\r\n \r\n"
                             "00006\r\nworld!\r\n"
                             "A\r\n0123456789\r\n"
                             "0;last\r\n"
                             "X-Trailer: one\r\n"
                             "Content-Length: 99\r\n"
                             "\r\n", 0);
    cr_assert_eq(o.err, 0);
    cr_assert(o.done);
    cr_assert(o.chunked);
    cr_assert_eq(o.content_length, -1, "trailers may not set framing");
    cr_assert_eq(o.body_total, 22);
    cr_assert_eq(o.body_len, 22);
    cr_assert(memcmp(o.body, "hello world!0123456789", 22) == 0);
}

Test(http, chunked_without_trailers_and_upper_hex)
{
    struct outcome o = CHECK("HTTP/1.1 200 OK\r\n"
                             "transfer-encoding: Chunked\r\n\r\n"
                             "1F\r\n0123456789012345678901234567890\r\n0\r\n\r\n", 0);
    cr_assert(o.done);
    cr_assert_eq(o.body_total, 31);
}

Test(http, interim_1xx_responses_are_skipped)
{
    struct outcome o = CHECK("HTTP/1.1 100 Continue\r\n\r\n"
                             "HTTP/1.1 103 Early Hints\r\n"
                             "Link: </x>; rel=preload\r\n"
                             "Content-Length: 7\r\n"
                             "Retry-After: 5\r\n\r\n"
                             "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0);
    cr_assert(o.done);
    cr_assert_eq(o.status, 200);
    cr_assert_eq(o.content_length, 2);
    cr_assert_str_eq(o.retry_after, "", "1xx headers do not leak");
    cr_assert_eq(o.body_total, 2);
}

Test(http, no_content_has_no_body_and_leaves_leftover)
{
    static const char msg[] = "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n";
    struct outcome o = CHECK(msg, 0);
    cr_assert(o.done);
    cr_assert_eq(o.status, 204);
    cr_assert_eq(o.consumed, strlen("HTTP/1.1 204 No Content\r\n\r\n"));
    cr_assert_eq(o.body_total, 0);
}

/* A proxy's 200 to CONNECT: the tunnel's bytes follow the head at once
 * (here the start of a TLS record), whatever Content-Length says. */
Test(http, connect_answer_ends_at_its_head)
{
    static const char msg[] = "HTTP/1.1 200 Connection established\r\n"
                              "Content-Length: 5\r\n\r\n\x16\x03\x03\x00\x31";
    connect_mode = 1;
    struct outcome o = CHECK(msg, 0);
    connect_mode = 0;
    cr_assert(o.done);
    cr_assert_eq(o.status, 200);
    cr_assert_eq(o.consumed, sizeof(msg) - 1 - 5, "the tunnel's bytes are left over");
    cr_assert_eq(o.body_total, 0);
    /* the same bytes answering a POST: a body of 5 */
    o = CHECK(msg, 0);
    cr_assert_eq(o.body_total, 5);
}

Test(http, connect_refusal_ends_at_its_head_and_skips_interim_answers)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n"
                              "HTTP/1.0 407 Proxy Authentication Required\r\n"
                              "Proxy-Authenticate: Basic realm=\"p\"\r\n"
                              "Transfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n<html>";
    connect_mode = 1;
    struct outcome o = CHECK(msg, 0);
    connect_mode = 0;
    cr_assert(o.done);
    cr_assert_eq(o.status, 407);
    cr_assert_eq(o.consumed, sizeof(msg) - 1 - 6, "the refusal's body is not read");
}

Test(http, not_modified_ignores_content_length)
{
    struct outcome o = CHECK("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", 0);
    cr_assert(o.done);
    cr_assert_eq(o.body_total, 0);
}

Test(http, connection_close_is_reported)
{
    struct outcome o = CHECK("HTTP/1.1 200 OK\r\n"
                             "Connection: Keep-Alive, CLOSE\r\n"
                             "Content-Length: 1\r\n\r\nx", 0);
    cr_assert(o.done);
    cr_assert_eq(o.conn_close, 1);
    o = CHECK("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", 0);
    cr_assert_eq(o.conn_close, 0);
    o = CHECK("HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 1\r\n\r\nx", 0);
    cr_assert_eq(o.conn_close, 0, "only the exact token counts");
}

Test(http, http10_closes_unless_keep_alive)
{
    struct outcome o = CHECK("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 0);
    cr_assert(o.done);
    cr_assert_eq(o.conn_close, 1);
    o = CHECK("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 0);
    cr_assert(o.done);
    cr_assert_eq(o.conn_close, 0);
}

Test(http, close_delimited_body_ends_at_eof)
{
    struct outcome o = CHECK("HTTP/1.0 500 Internal Server Error\r\n"
                             "Content-Type: application/json\r\n\r\n"
                             "{\"detail\":\"boom\"}", 1);
    cr_assert_eq(o.err, 0);
    cr_assert(o.done);
    cr_assert_eq(o.status, 500);
    cr_assert_eq(o.content_length, -1);
    cr_assert_eq(o.conn_close, 1);
    cr_assert_eq(o.body_total, 17);
    cr_assert(memcmp(o.body, "{\"detail\":\"boom\"}", 17) == 0);
    o = CHECK("HTTP/1.1 200 OK\r\n\r\n", 1);
    cr_assert(o.done);
    cr_assert_eq(o.body_total, 0);
}

Test(http, close_delimited_body_without_eof_is_not_done)
{
    struct outcome o = CHECK("HTTP/1.1 200 OK\r\n\r\nabc", 0);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.done, 0);
    cr_assert_eq(o.consumed, strlen("HTTP/1.1 200 OK\r\n\r\nabc"));
}

Test(http, retry_after_is_captured_trimmed)
{
    struct outcome o = CHECK("HTTP/1.1 429 Too Many Requests\r\n"
                             "retry-after: \t 120 \t\r\n"
                             "Retry-After: 7\r\n"
                             "Content-Length: 0\r\n\r\n", 0);
    cr_assert(o.done);
    cr_assert_eq(o.status, 429);
    cr_assert_str_eq(o.retry_after, "120");
    o = CHECK("HTTP/1.1 503 Service Unavailable\r\n"
              "Retry-After: Fri, 31 Dec 1999 23:59:59 GMT\r\n"
              "Content-Length: 0\r\n\r\n", 0);
    cr_assert_str_eq(o.retry_after, "Fri, 31 Dec 1999 23:59:59 GMT");
}

Test(http, overlong_retry_after_is_dropped)
{
    char msg[400];
    struct outcome o;
    snprintf(msg, sizeof msg, "HTTP/1.1 429 X\r\nRetry-After: %0*d\r\nContent-Length: 0\r\n\r\n",
             SG_HTTP_RETRY_AFTER_MAX + 1, 1);
    o = check_all(msg, strlen(msg), 0);
    cr_assert(o.done);
    cr_assert_str_eq(o.retry_after, "");
    snprintf(msg, sizeof msg, "HTTP/1.1 429 X\r\nRetry-After: %0*d\r\nContent-Length: 0\r\n\r\n",
             SG_HTTP_RETRY_AFTER_MAX, 1);
    o = check_all(msg, strlen(msg), 0);
    cr_assert_eq(strlen(o.retry_after), SG_HTTP_RETRY_AFTER_MAX);
}

Test(http, pipelined_bytes_are_left_over)
{
    static const char a[] = "HTTP/1.1 202 Accepted\r\nContent-Length: 3\r\n\r\nabc";
    static const char b[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "2\r\nhi\r\n0\r\n\r\n";
    static const char c[] = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
    char all[sizeof a + sizeof b + sizeof c];
    size_t off = 0, n = 0;
    struct outcome o;

    memcpy(all + n, a, sizeof a - 1);
    n += sizeof a - 1;
    memcpy(all + n, b, sizeof b - 1);
    n += sizeof b - 1;
    memcpy(all + n, c, sizeof c - 1);
    n += sizeof c - 1;

    o = check_all(all + off, n - off, 0);
    cr_assert_eq(o.status, 202);
    cr_assert_eq(o.consumed, sizeof a - 1);
    off += o.consumed;
    o = check_all(all + off, n - off, 0);
    cr_assert_eq(o.status, 200);
    cr_assert_eq(o.body_total, 2);
    cr_assert_eq(o.consumed, sizeof b - 1);
    off += o.consumed;
    o = check_all(all + off, n - off, 0);
    cr_assert_eq(o.status, 401);
    cr_assert_eq(o.consumed, n - off);
}

Test(http, bare_lf_line_endings_are_accepted)
{
    struct outcome o = CHECK("HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 0);
    cr_assert(o.done);
    cr_assert_eq(o.body_total, 2);
    o = CHECK("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\n\n", 0);
    cr_assert(o.done);
    cr_assert_eq(o.body_total, 2);
}

Test(http, header_names_are_case_insensitive_and_values_trimmed)
{
    struct outcome o = CHECK("HTTP/1.1 200 OK\r\ncOnTeNt-LeNgTh:\t 3 \t\r\nX-Empty:\r\n\r\nabc", 0);
    cr_assert(o.done);
    cr_assert_eq(o.content_length, 3);
}

Test(http, repeated_equal_content_lengths_are_accepted)
{
    struct outcome o = CHECK("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                             "Content-Length: 3, 3\r\n\r\nabc", 0);
    cr_assert(o.done);
    cr_assert_eq(o.content_length, 3);
}

Test(http, status_line_variants)
{
    struct outcome o = CHECK("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 0);
    cr_assert_eq(o.status, 200);
    o = CHECK("HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n", 0);
    cr_assert_eq(o.status, 599);
    o = CHECK("\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0);
    cr_assert_eq(o.status, 404, "stray blank lines before a response");
}

Test(http, large_body_keeps_only_a_prefix)
{
    static char msg[20000];
    int h = snprintf(msg, sizeof msg, "HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n");
    struct outcome o;
    for (int i = 0; i < 10000; i++)
        msg[h + i] = (char)('a' + i % 26);
    o = check_all(msg, (size_t)h + 10000, 0);
    cr_assert(o.done);
    cr_assert_eq(o.body_len, SG_HTTP_BODY_KEEP);
    cr_assert_eq(o.body_total, 10000);
    cr_assert(memcmp(o.body, msg + h, SG_HTTP_BODY_KEEP) == 0);
}

/* ---------------------------------------------------------------- errors */

static int err_of(const char *msg, int eof)
{
    return check_all(msg, strlen(msg), eof).err;
}

Test(http, head_too_big_is_refused)
{
    static char msg[SG_HTTP_HEAD_MAX + 4200];
    size_t n = (size_t)snprintf(msg, sizeof msg, "HTTP/1.1 200 OK\r\n");
    while (n < SG_HTTP_HEAD_MAX + 100) {
        n += (size_t)snprintf(msg + n, sizeof msg - n, "X-Pad: ");
        memset(msg + n, 'p', 2000);
        n += 2000;
        n += (size_t)snprintf(msg + n, sizeof msg - n, "\r\n");
    }
    msg[n] = '\0';
    cr_assert_eq(err_of(msg, 0), SG_HTTP_EHEADTOOBIG);
}

Test(http, head_budget_is_shared_with_interim_responses)
{
    static char msg[SG_HTTP_HEAD_MAX + 4200];
    size_t n = 0;
    while (n < SG_HTTP_HEAD_MAX + 100) {
        n += (size_t)snprintf(msg + n, sizeof msg - n, "HTTP/1.1 100 Continue\r\nX-Pad: ");
        memset(msg + n, 'p', 2000);
        n += 2000;
        n += (size_t)snprintf(msg + n, sizeof msg - n, "\r\n\r\n");
    }
    msg[n] = '\0';
    cr_assert_eq(err_of(msg, 0), SG_HTTP_EHEADTOOBIG);
}

/* A load balancer's 1.5 KiB Set-Cookie, a 20 KiB CSP: lines the client
 * does not need are skipped whatever their length (within the head). */
static struct outcome long_line(const char *name, size_t len, const char *rest)
{
    static char msg[40000];
    size_t n = (size_t)snprintf(msg, sizeof msg, "HTTP/1.1 202 Accepted\r\n%s: ", name);
    memset(msg + n, 'a', len);
    n += len;
    n += (size_t)snprintf(msg + n, sizeof msg - n, "\r\n%s", rest);
    return check_all(msg, n, 0);
}

Test(http, long_header_lines_the_client_does_not_need_are_skipped)
{
    size_t lens[] = {1024, 1536, SG_HTTP_LINE_KEEP - 20, SG_HTTP_LINE_KEEP + 1, 20000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        struct outcome o = long_line("Set-Cookie", lens[i], "Content-Length: 2\r\n\r\n{}");
        cr_assert_eq(o.err, 0, "%zu-byte line: %d", lens[i], o.err);
        cr_assert(o.done);
        cr_assert_eq(o.status, 202);
        cr_assert_eq(o.content_length, 2);
        cr_assert_eq(o.conn_close, 0);
    }
}

Test(http, a_framing_header_longer_than_kept_is_refused)
{
    /* digits padded with spaces: cannot be read whole, cannot be trusted */
    static char msg[20000];
    size_t n = (size_t)snprintf(msg, sizeof msg, "HTTP/1.1 200 OK\r\nContent-Length: 5");
    memset(msg + n, ' ', SG_HTTP_LINE_KEEP);
    n += SG_HTTP_LINE_KEEP;
    n += (size_t)snprintf(msg + n, sizeof msg - n, "\r\n\r\nhello");
    cr_assert_eq(check_all(msg, n, 0).err, SG_HTTP_EHEADTOOBIG);
}

Test(http, an_unreadable_connection_header_means_close)
{
    struct outcome o = long_line("Connection", SG_HTTP_LINE_KEEP + 10, "Content-Length: 0\r\n\r\n");
    cr_assert_eq(o.err, 0);
    cr_assert(o.done);
    cr_assert_eq(o.conn_close, 1);
}

Test(http, location_is_kept_truncated)
{
    struct outcome o = CHECK("HTTP/1.1 301 Moved\r\nLocation: https://api.example/x\r\n"
                             "Location: http://second/\r\nContent-Length: 0\r\n\r\n", 0);
    cr_assert(o.done);
    cr_assert_str_eq(o.location, "https://api.example/x");
    o = long_line("Location", 3000, "Content-Length: 0\r\n\r\n");
    cr_assert_eq(o.err, 0);
    cr_assert_eq(strlen(o.location), SG_HTTP_LOCATION_MAX);
}

Test(http, obs_fold_is_accepted_as_one_space)
{
    struct outcome o = CHECK("HTTP/1.1 202 Accepted\r\nX-A: one\r\n two\r\n\tthree\r\n"
                             "Content-Length:\r\n 2\r\nConnection: keep-alive,\r\n close\r\n"
                             "Retry-After:\r\n  7\r\n\r\n{}", 0);
    cr_assert_eq(o.err, 0);
    cr_assert(o.done);
    cr_assert_eq(o.content_length, 2);
    cr_assert_eq(o.conn_close, 1);
    cr_assert_str_eq(o.retry_after, "7");
    cr_assert_eq(o.body_len, 2);
    /* a folded line right after the status line has nothing to fold into:
     * ignored */
    o = CHECK("HTTP/1.1 202 Accepted\r\n stray\r\nContent-Length: 0\r\n\r\n", 0);
    cr_assert_eq(o.err, 0);
    cr_assert(o.done);
    cr_assert_eq(o.content_length, 0);
}

Test(http, header_budget_is_64_kib)
{
    static char msg[SG_HTTP_HEAD_MAX + 4200];
    size_t n = (size_t)snprintf(msg, sizeof msg, "HTTP/1.1 202 Accepted\r\n");
    while (n < SG_HTTP_HEAD_MAX - 4000) {
        n += (size_t)snprintf(msg + n, sizeof msg - n, "X-Pad: ");
        memset(msg + n, 'p', 2000);
        n += 2000;
        n += (size_t)snprintf(msg + n, sizeof msg - n, "\r\n");
    }
    n += (size_t)snprintf(msg + n, sizeof msg - n, "Content-Length: 0\r\n\r\n");
    cr_assert_geq(SG_HTTP_HEAD_MAX, 65536);
    cr_assert_eq(check_all(msg, n, 0).err, 0);
}

Test(http, bad_status_lines_are_refused)
{
    static const char *t[] = {
        "HTTP/2 200 OK\r\n\r\n", "HTTP/2.0 200 OK\r\n\r\n", "HTTX/1.1 200 OK\r\n\r\n",
        "http/1.1 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 600 Bad\r\n\r\n", "HTTP/1.1 099 Bad\r\n\r\n", "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1\r\n\r\n",
        "HTTP/1.1 200 O\x01K\r\n\r\n", "HTTP/1.1 200 OK\rX\r\n\r\n", "garbage\r\n",
        " HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 101 Switching Protocols\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        cr_assert_eq(err_of(t[i], 0), SG_HTTP_EBADSTATUS, "case %zu", i);
}

Test(http, bad_header_lines_are_refused)
{
    static const char *t[] = {
        "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        "HTTP/1.1 200 OK\r\nName : v\r\n\r\n",
        "HTTP/1.1 200 OK\r\nNa me: v\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: v\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: b\r\n fold\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: b\x7f\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA(: b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        cr_assert_eq(err_of(t[i], 0), SG_HTTP_EBADHEADER, "case %zu", i);
}

Test(http, nul_in_header_is_refused)
{
    static const char msg[] = "HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n";
    cr_assert_eq(check_all(msg, sizeof msg - 1, 0).err, SG_HTTP_EBADHEADER);
}

Test(http, bad_chunk_sizes_are_refused)
{
    static const char *t[] = {
        "zz\r\n", "\r\n", " 5\r\nhello\r\n0\r\n\r\n", "5x\r\nhello\r\n",
        "-5\r\n", "0x5\r\n", "FFFFFFFFFFFFFFFFFFFF\r\n", "10000000000000001\r\n",
        "4000001\r\n", "5\r\nhelloX\r\n", "5\r\nhello\rX", "5;ext\x01\r\n",
        "5 x\r\nhello\r\n",
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char msg[200];
        snprintf(msg, sizeof msg, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%s", t[i]);
        cr_assert_eq(err_of(msg, 0), SG_HTTP_EBADCHUNK, "case %zu: %s", i, t[i]);
    }
}

Test(http, chunk_size_at_limit_is_accepted)
{
    static const char msg[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4000000\r\n";
    struct sg_http_resp r;
    sg_http_resp_init(&r);
    cr_assert_eq(sg_http_resp_feed(&r, msg, sizeof msg - 1), (ssize_t)(sizeof msg - 1));
    cr_assert_eq(r.done, 0);
}

Test(http, chunked_body_total_is_bounded)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    static char data[1 << 16];
    struct sg_http_resp r;
    ssize_t rc = 0;
    sg_http_resp_init(&r);
    cr_assert_eq(sg_http_resp_feed(&r, head, sizeof head - 1), (ssize_t)(sizeof head - 1));
    for (int i = 0; i < 70 && rc >= 0; i++) {
        rc = sg_http_resp_feed(&r, "100000\r\n", 8);
        if (rc < 0)
            break;
        memset(data, 'a', sizeof data);
        for (int k = 0; k < 16 && rc >= 0; k++)
            rc = sg_http_resp_feed(&r, data, sizeof data);
        if (rc >= 0)
            rc = sg_http_resp_feed(&r, "\r\n", 2);
    }
    cr_assert_eq(rc, SG_HTTP_EBADCHUNK);
}

/* RFC 9112 6.3: Transfer-Encoding overrides Content-Length, and the
 * connection is not reused after such an answer. */
Test(http, chunked_overrides_content_length_and_closes)
{
    struct outcome o = CHECK("HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 0);
    cr_assert_eq(o.err, 0);
    cr_assert(o.done);
    cr_assert(o.chunked);
    cr_assert_eq(o.content_length, -1);
    cr_assert_eq(o.conn_close, 1);
    cr_assert_eq(o.body_len, 2);
    o = CHECK("HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n"
              "Content-Length: 99\r\n\r\n0\r\n\r\n", 0);
    cr_assert_eq(o.err, 0);
    cr_assert(o.done);
    cr_assert_eq(o.conn_close, 1);
}

Test(http, conflicting_content_lengths_are_refused)
{
    cr_assert_eq(err_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 0),
                 SG_HTTP_EBADLENGTH);
    cr_assert_eq(err_of("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", 0),
                 SG_HTTP_EBADLENGTH);
}

Test(http, absurd_content_lengths_are_refused)
{
    static const char *t[] = {
        "-1", "+5", "1e3", "5 5", "0x10", "", ",", "abc", "99999999999999999999999999",
        "18446744073709551616", "67108865", "5;", "5\x01",
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char msg[200];
        snprintf(msg, sizeof msg, "HTTP/1.1 200 OK\r\nContent-Length: %s\r\n\r\n", t[i]);
        int e = err_of(msg, 0);
        /* a control byte is a header syntax error before it is a length */
        cr_assert(e == SG_HTTP_EBADLENGTH || (i == 12 && e == SG_HTTP_EBADHEADER),
                  "case %zu: %s -> %d", i, t[i], e);
    }
    cr_assert_eq(err_of("HTTP/1.1 200 OK\r\nContent-Length: 67108864\r\n\r\n", 0), 0,
                 "the maximum itself is fine");
}

Test(http, unsupported_transfer_encodings_are_refused)
{
    static const char *t[] = { "gzip", "gzip, chunked", "chunked, gzip", "chunked, chunked",
                               "identity", "", "chunkedx" };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char msg[200];
        snprintf(msg, sizeof msg, "HTTP/1.1 200 OK\r\nTransfer-Encoding: %s\r\n\r\n", t[i]);
        cr_assert_eq(err_of(msg, 0), SG_HTTP_EBADTE, "case %zu: %s", i, t[i]);
    }
    cr_assert_eq(err_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n", 0), SG_HTTP_EBADTE);
}

Test(http, truncation_at_eof_is_reported)
{
    static const char *t[] = {
        "", "HTTP/1.1 200", "HTTP/1.1 200 OK\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        cr_assert_eq(err_of(t[i], 1), SG_HTTP_ETRUNCATED, "case %zu", i);
}

Test(http, eof_after_done_is_fine)
{
    struct sg_http_resp r;
    static const char msg[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    sg_http_resp_init(&r);
    cr_assert_eq(sg_http_resp_feed(&r, msg, sizeof msg - 1), (ssize_t)(sizeof msg - 1));
    cr_assert_eq(sg_http_resp_eof(&r), 0);
    cr_assert(r.done);
}

/* ----------------------------------------------------------- Retry-After */

static int ra(const char *v, int64_t now, int64_t *ms)
{
    return sg_retry_after_parse(v, strlen(v), now, ms);
}

Test(retry_after, parses_seconds)
{
    int64_t ms = -7;
    cr_assert_eq(ra("120", 0, &ms), 0);
    cr_assert_eq(ms, 120000);
    cr_assert_eq(ra("0", 0, &ms), 0);
    cr_assert_eq(ms, 0);
    cr_assert_eq(ra(" 5 ", 0, &ms), 0);
    cr_assert_eq(ms, 5000);
    cr_assert_eq(ra("007", 0, &ms), 0);
    cr_assert_eq(ms, 7000);
}

Test(retry_after, huge_seconds_saturate)
{
    int64_t ms;
    cr_assert_eq(ra("2147483648", 0, &ms), 0);
    cr_assert_eq(ms, 2147483648LL * 1000);
    cr_assert_eq(ra("2147483649", 0, &ms), 0);
    cr_assert_eq(ms, 2147483648LL * 1000);
    cr_assert_eq(ra("99999999999999999999999999999999999999999", 0, &ms), 0);
    cr_assert_eq(ms, 2147483648LL * 1000);
    cr_assert_eq(ra("2147483647", 0, &ms), 0);
    cr_assert_eq(ms, 2147483647LL * 1000);
}

Test(retry_after, http_date_relative_to_now)
{
    int64_t ms, t = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    cr_assert_eq(ra("Sun, 06 Nov 1994 08:49:37 GMT", t - 30, &ms), 0);
    cr_assert_eq(ms, 30000);
    cr_assert_eq(ra("Sunday, 06-Nov-94 08:49:37 GMT", t - 1, &ms), 0);
    cr_assert_eq(ms, 1000);
    cr_assert_eq(ra("Sun Nov  6 08:49:37 1994", t, &ms), 0);
    cr_assert_eq(ms, 0);
    cr_assert_eq(ra("Sun, 06 Nov 1994 08:49:37 GMT", t + 3600, &ms), 0);
    cr_assert_eq(ms, 0, "a past date means no delay");
    cr_assert_eq(ra("Fri, 31 Dec 9999 23:59:59 GMT", 0, &ms), 0);
    cr_assert_eq(ms, 2147483648LL * 1000, "far future saturates");
    cr_assert_eq(ra("Sun, 06 Nov 1994 08:49:37 GMT", INT64_MIN, &ms), 0);
    cr_assert_eq(ms, 2147483648LL * 1000);
    cr_assert_eq(ra("Sun, 06 Nov 1994 08:49:37 GMT", INT64_MAX, &ms), 0);
    cr_assert_eq(ms, 0);
}

Test(retry_after, garbage_is_refused)
{
    static const char *t[] = { "", " ", "-1", "+1", "1.5", "1s", "abc", "12 34",
                               "Sun, 06 Nov 1994 08:49:37 UTC", "0x10", "1e3" };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int64_t ms = 42;
        cr_assert_eq(ra(t[i], 0, &ms), -1, "'%s'", t[i]);
        cr_assert_eq(ms, 42);
    }
}

/* ----------------------------------------------------------- answer body */

static int ans(const char *b, int64_t *q, int64_t *s, char *d, size_t cap)
{
    return sg_answer_parse(b, strlen(b), q, s, d, cap);
}

Test(answer, reads_batch_answer)
{
    int64_t q, s;
    char d[64] = "stale";
    cr_assert_eq(ans("{\"queued\":3,\"skipped\":1}", &q, &s, d, sizeof d), 0);
    cr_assert_eq(q, 3);
    cr_assert_eq(s, 1);
    cr_assert_str_eq(d, "");
    cr_assert_eq(ans(" {\n \"skipped\" : 0 , \"queued\" : 500 }\n", &q, &s, d, sizeof d), 0);
    cr_assert_eq(q, 500);
    cr_assert_eq(s, 0);
}

Test(answer, reads_single_answer)
{
    int64_t q, s;
    char d[8];
    cr_assert_eq(ans("{\"queued\":true}", &q, &s, d, sizeof d), 0);
    cr_assert_eq(q, 1);
    cr_assert_eq(s, -1);
    cr_assert_eq(ans("{\"queued\":false}", &q, &s, d, sizeof d), 0);
    cr_assert_eq(q, 0);
}

Test(answer, reads_detail)
{
    int64_t q, s;
    char d[64];
    cr_assert_eq(ans("{\"detail\":\"Invalid API key.\"}", &q, &s, d, sizeof d), 0);
    cr_assert_str_eq(d, "Invalid API key.");
    cr_assert_eq(q, -1);
    cr_assert_eq(s, -1);
}

Test(answer, skips_unknown_members_of_every_type)
{
    int64_t q, s;
    char d[64];
    cr_assert_eq(ans("{\"a\":\"x\\\"}\",\"b\":-1.5e3,\"c\":true,\"d\":false,\"e\":null,"
                     "\"f\":{\"g\":[1,{\"h\":[]},\"]\"],\"i\":{}},\"j\":[[[]]],"
                     "\"queued\":4,\"k\":[{\"queued\":9}],\"skipped\":2,"
                     "\"detail\":\"ok\",\"l\":{\"detail\":\"no\"}}",
                     &q, &s, d, sizeof d), 0);
    cr_assert_eq(q, 4);
    cr_assert_eq(s, 2);
    cr_assert_str_eq(d, "ok");
}

Test(answer, non_integer_counts_are_ignored)
{
    int64_t q, s;
    char d[8];
    cr_assert_eq(ans("{\"queued\":\"3\",\"skipped\":1.5}", &q, &s, d, sizeof d), 0);
    cr_assert_eq(q, -1);
    cr_assert_eq(s, -1);
    cr_assert_eq(ans("{\"queued\":99999999999999999999,\"skipped\":-2}", &q, &s, d, sizeof d), 0);
    cr_assert_eq(q, -1);
    cr_assert_eq(s, -2);
}

/* FastAPI's list detail, DRF-style objects: kept as compact JSON text,
 * truncated without cutting a character. */
Test(answer, list_and_object_details_become_compact_json)
{
    int64_t q, s;
    char d[64];
    cr_assert_eq(ans("{\"detail\": [ {\"loc\": [\"body\", 0], \"msg\" : \"field required\"} ]}",
                     &q, &s, d, sizeof d), 0);
    cr_assert_str_eq(d, "[{\"loc\":[\"body\",0],\"msg\":\"field required\"}]");
    cr_assert_eq(ans("{\"detail\":{\"a b\": \"c d\"}}", &q, &s, d, sizeof d), 0);
    cr_assert_str_eq(d, "{\"a b\":\"c d\"}");
    char small[8];
    cr_assert_eq(ans("{\"detail\":[\"\u00e9\u00e9\u00e9\u00e9\"]}", &q, &s, small, sizeof small), 0);
    cr_assert_leq(strlen(small), 7);
}

static size_t clean(const char *in, size_t len, char *out, size_t cap, const char *secret)
{
    return sg_text_clean(in, len, out, cap, secret, secret ? strlen(secret) : 0);
}

#define CLEAN(lit, ...) clean(lit, sizeof(lit) - 1, __VA_ARGS__)

Test(answer, server_text_is_cleaned_for_a_log_line)
{
    char out[128];
    /* the key the server echoed is redacted, wherever it appears */
    CLEAN("bad key sk_live_abcdef123 (sk_live_abcdef123)", out, sizeof out, "sk_live_abcdef123");
    cr_assert_str_eq(out, "bad key [redacted] ([redacted])");
    /* bidi override, zero-width space, BOM: a space each */
    CLEAN("a\xE2\x80\xAE" "b\xE2\x80\x8B" "c\xEF\xBB\xBF" "d", out, sizeof out, NULL);
    cr_assert_str_eq(out, "a b c d");
    /* invalid UTF-8, overlong, surrogate, cut short: U+FFFD each byte */
    CLEAN("x\xFFy\xC0\xAFz\xED\xA0\x80w\xE2\x82", out, sizeof out, NULL);
    cr_assert_str_eq(out, "x\xEF\xBF\xBDy\xEF\xBF\xBD\xEF\xBF\xBDz\xEF\xBF\xBD\xEF\xBF\xBD"
                          "\xEF\xBF\xBDw\xEF\xBF\xBD\xEF\xBF\xBD");
    /* control bytes and NUL: spaces; valid UTF-8 kept */
    CLEAN("a\0b\nc\x1b[31m\xC3\xA9", out, sizeof out, NULL);
    cr_assert_str_eq(out, "a b c [31m\xC3\xA9");
    /* never half a character, never half the marker */
    cr_assert_eq(CLEAN("\xC3\xA9\xC3\xA9", out, 4, NULL), 2);
    cr_assert_eq(CLEAN("sk_live_abcdef123", out, 8, "sk_live_abcdef123"), 0);
    /* a short "key" is not searched for (it would redact ordinary words) */
    CLEAN("abc", out, sizeof out, "ab");
    cr_assert_str_eq(out, "abc");
}

Test(answer, unescapes_detail_for_a_log_line)
{
    int64_t q, s;
    char d[64];
    cr_assert_eq(ans("{\"detail\":\"a\\nb\\tc\\r\\\"d\\\\e\\/f\\u00e9\\u0001g\\u007f\"}",
                     &q, &s, d, sizeof d), 0);
    cr_assert_str_eq(d, "a b c \"d\\e/f\xc3\xa9 g ");
    cr_assert_eq(ans("{\"detail\":\"\\ud83d\\ude00 \\u20ac \\ud800x \\udc00\"}",
                     &q, &s, d, sizeof d), 0);
    cr_assert_str_eq(d, "\xf0\x9f\x98\x80 \xe2\x82\xac \xef\xbf\xbdx \xef\xbf\xbd");
    cr_assert_eq(ans("{\"detail\":\"\\ud800\\u0041\"}", &q, &s, d, sizeof d), 0);
    cr_assert_str_eq(d, "\xef\xbf\xbd" "A");
}

Test(answer, truncates_detail_to_cap)
{
    int64_t q, s;
    char d[6];
    memset(d, 'Z', sizeof d);
    cr_assert_eq(ans("{\"detail\":\"abcdefgh\",\"queued\":1}", &q, &s, d, sizeof d), 0);
    cr_assert_str_eq(d, "abcde");
    cr_assert_eq(q, 1);
    /* a character never gets cut in half */
    cr_assert_eq(ans("{\"detail\":\"abcd\\u00e9\"}", &q, &s, d, sizeof d), 0);
    cr_assert_str_eq(d, "abcd");
    cr_assert_eq(ans("{\"detail\":\"abc\xe2\x82\xac\"}", &q, &s, d, sizeof d), 0);
    cr_assert_str_eq(d, "abc");
    cr_assert_eq(ans("{\"detail\":\"ab\xe2\x82\xac\"}", &q, &s, d, sizeof d), 0);
    cr_assert_str_eq(d, "ab\xe2\x82\xac");
    char one[1] = { 'Z' };
    cr_assert_eq(ans("{\"detail\":\"abc\"}", &q, &s, one, 1), 0);
    cr_assert_eq(one[0], '\0');
    cr_assert_eq(ans("{\"detail\":\"abc\"}", &q, &s, NULL, 0), 0);
}

Test(answer, refuses_non_objects_and_bad_json)
{
    static const char *t[] = {
        "", "[]", "[{\"queued\":1}]", "\"x\"", "3", "null", "{", "{\"queued\":1",
        "{\"queued\":1,}", "{\"queued\" 1}", "{queued:1}", "{\"queued\":1} x",
        "{\"a\":[1,]}", "{\"a\":{\"b\":}}", "{\"a\":tru}", "{\"detail\":\"a\nb\"}",
        "{\"detail\":\"\\x\"}", "{\"a\":01}", "{\"a\":\"\\u12\"}", "{} {}",
        "<html>502 Bad Gateway</html>",
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int64_t q, s;
        char d[16];
        cr_assert_eq(ans(t[i], &q, &s, d, sizeof d), -1, "case %zu: %s", i, t[i]);
    }
}

Test(answer, keeps_what_was_found_before_an_error)
{
    int64_t q, s;
    char d[16];
    cr_assert_eq(ans("{\"queued\":2,\"skipped\":1,\"x\":", &q, &s, d, sizeof d), -1);
    cr_assert_eq(q, 2);
    cr_assert_eq(s, 1);
}

Test(answer, bounds_nesting_of_skipped_values)
{
    static char b[1000];
    int64_t q, s;
    size_t n = 0;
    n += (size_t)snprintf(b, sizeof b, "{\"a\":");
    for (int i = 0; i < 200; i++)
        b[n++] = '[';
    for (int i = 0; i < 200; i++)
        b[n++] = ']';
    b[n++] = '}';
    b[n] = '\0';
    cr_assert_eq(ans(b, &q, &s, NULL, 0), -1);
    cr_assert_eq(ans("{\"a\":[[[[[[[[[[]]]]]]]]]],\"queued\":1}", &q, &s, NULL, 0), 0);
    cr_assert_eq(q, 1);
}
