/* SPDX-License-Identifier: MIT */
/*
 * test_sink.c -- tests of tools/sink.c: an in-process sink on an ephemeral
 * loopback port, driven by a tiny raw-socket client written here (so that
 * the sink is tested independently of libsegops' own HTTP code).
 */
#include <criterion/criterion.h>

#include "sink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BATCH "/api/ingestion/track/batch/"
#define SINGLE "/api/ingestion/track/"
#define KEY "sk_test"

static const char EV_OK[] =
    "{\"user_id\":\"user-123\",\"event_type\":\"order_placed\","
    "\"occurred_at\":\"2026-04-25T14:32:00.123Z\","
    "\"payload\":{\"order_id\":\"ord-456\",\"total\":89.95}}";
static const char EV_BAD[] = "{\"user_id\":\"\",\"event_type\":\"x\"}";

/* ---- a tiny client ------------------------------------------------ */

struct resp {
    int status;
    char head[8192];
    char body[65536];
    size_t body_len;
    int chunked;
    int nchunks;
};

static int cli_connect(uint16_t port)
{
    struct sockaddr_in a;
    struct timeval tv = {10, 0};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(connect(fd, (struct sockaddr *)&a, sizeof a) == 0,
              "connect: %s", strerror(errno));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void cli_send(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        cr_assert(k > 0, "send: %s", strerror(errno));
        p += k;
        n -= (size_t)k;
    }
}

/* Renders a POST; key NULL: no Authorization; idem NULL: no key. */
static char *render_post(const char *path, const char *key, const char *idem,
                         const char *body, size_t *len)
{
    size_t bl = strlen(body), cap = bl + 1024;
    char *b = malloc(cap);
    int n = snprintf(b, cap, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", path);
    if (key)
        n += snprintf(b + n, cap - n, "Authorization: ApiKey %s\r\n", key);
    if (idem) n += snprintf(b + n, cap - n, "Idempotency-Key: %s\r\n", idem);
    n += snprintf(b + n, cap - n,
                  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                  bl);
    memcpy(b + n, body, bl);
    *len = (size_t)n + bl;
    return b;
}

static void cli_post(int fd, const char *path, const char *key,
                     const char *idem, const char *body)
{
    size_t n;
    char *b = render_post(path, key, idem, body, &n);
    cli_send(fd, b, n);
    free(b);
}

/* One byte at a time, so that nothing of a following answer is eaten.
 * Returns 1 if a byte was read, 0 on EOF, -1 on error/timeout. */
static int rd1(int fd, char *c)
{
    ssize_t k = recv(fd, c, 1, 0);
    return k == 1 ? 1 : k == 0 ? 0 : -1;
}

static int rd_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    char c;
    while (n + 1 < cap) {
        if (rd1(fd, &c) != 1) return -1;
        buf[n++] = c;
        if (c == '\n') break;
    }
    buf[n] = '\0';
    return n >= 2 && buf[n - 2] == '\r' && buf[n - 1] == '\n' ? (int)n : -1;
}

/* Reads one answer.  Returns 0, 1 if the connection was closed before any
 * byte of an answer, -1 if the answer is malformed (also bad chunking). */
static int cli_read(int fd, struct resp *r)
{
    size_t n = 0;
    char c;
    long cl = -1;
    int k;

    memset(r, 0, sizeof *r);
    k = rd1(fd, &c);
    if (k == 0) return 1;
    if (k < 0) return -1;
    r->head[n++] = c;
    while (n < 4 || memcmp(r->head + n - 4, "\r\n\r\n", 4) != 0) {
        if (n + 1 >= sizeof r->head || rd1(fd, &c) != 1) return -1;
        r->head[n++] = c;
    }
    r->head[n] = '\0';
    if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1) return -1;
    {
        const char *t = strcasestr(r->head, "\r\nContent-Length:");
        if (t) cl = strtol(t + 17, NULL, 10);
        r->chunked = strcasestr(r->head, "\r\nTransfer-Encoding: chunked\r\n")
                     != NULL;
    }
    if (r->chunked) {
        if (cl >= 0) return -1;
        for (;;) {
            char line[128], *end;
            unsigned long sz;
            if (rd_line(fd, line, sizeof line) < 0) return -1;
            sz = strtoul(line, &end, 16);
            if (end == line || strcmp(end, "\r\n") != 0) return -1;
            if (sz == 0) break;
            r->nchunks++;
            if (r->body_len + sz >= sizeof r->body) return -1;
            for (unsigned long i = 0; i < sz; i++)
                if (rd1(fd, &r->body[r->body_len++]) != 1) return -1;
            if (rd_line(fd, line, sizeof line) != 2) return -1;
        }
        {
            char line[8];
            if (rd_line(fd, line, sizeof line) != 2) return -1;   /* no trailers */
        }
    } else {
        if (cl < 0 || (size_t)cl >= sizeof r->body) return -1;
        for (long i = 0; i < cl; i++)
            if (rd1(fd, &r->body[r->body_len++]) != 1) return -1;
    }
    r->body[r->body_len] = '\0';
    return 0;
}

/* The connection is closed by the peer (EOF, or a reset). */
static int cli_closed(int fd)
{
    char c;
    ssize_t k = recv(fd, &c, 1, 0);
    return k == 0 || (k < 0 && errno == ECONNRESET);
}

static int roundtrip(uint16_t port, const char *path, const char *key,
                     const char *idem, const char *body, struct resp *r)
{
    int fd = cli_connect(port), rc;
    cli_post(fd, path, key, idem, body);
    rc = cli_read(fd, r);
    close(fd);
    return rc;
}

static char *batch_of(int n, const char *ev)
{
    size_t el = strlen(ev), cap = (size_t)n * (el + 1) + 32, k = 0;
    char *b = malloc(cap);
    k += (size_t)sprintf(b, "{\"events\":[");
    for (int i = 0; i < n; i++) {
        if (i) b[k++] = ',';
        memcpy(b + k, ev, el);
        k += el;
    }
    strcpy(b + k, "]}");
    return b;
}

static struct sink *start(struct sink_opts *o, uint16_t *port)
{
    struct sink *s = sink_start(o, port);
    cr_assert_not_null(s, "sink_start: %s", strerror(errno));
    cr_assert(*port != 0);
    return s;
}

static struct sink_counts counts(struct sink *s)
{
    struct sink_counts k;
    sink_get_counts(s, &k);
    return k;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- the batch endpoint ------------------------------------------- */

Test(sink, batch_mixed_counts_queued_and_skipped)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    char body[2048];
    snprintf(body, sizeof body,
             "{\"events\":[%s,%s,%s,%s,7,\"x\"]}", EV_OK, EV_BAD, EV_OK,
             "{\"user_id\":\"u\",\"event_type\":\"BadType\"}");
    cr_assert_eq(roundtrip(port, BATCH, KEY, NULL, body, &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert_str_eq(r.body, "{\"queued\":2,\"skipped\":4}");
    cr_assert(strstr(r.head, "Content-Type: application/json\r\n"));
    struct sink_counts k = counts(s);
    cr_assert_eq(k.requests, 1);
    cr_assert_eq(k.batch_requests, 1);
    cr_assert_eq(k.events, 6);
    cr_assert_eq(k.queued, 2);
    cr_assert_eq(k.skipped, 4);
    cr_assert_eq(k.connections, 1);
    cr_assert_gt(k.bytes, strlen(body));
    sink_stop(s);
}

Test(sink, batch_empty_events_is_accepted)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    cr_assert_eq(roundtrip(port, BATCH, KEY, NULL, " { \"events\" : [ ] } ", &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert_str_eq(r.body, "{\"queued\":0,\"skipped\":0}");
    sink_stop(s);
}

Test(sink, batch_of_500_accepted_501_rejected)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    char *b500 = batch_of(500, EV_OK), *b501 = batch_of(501, EV_OK);
    cr_assert_eq(roundtrip(port, BATCH, KEY, NULL, b500, &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert_str_eq(r.body, "{\"queued\":500,\"skipped\":0}");
    cr_assert_eq(roundtrip(port, BATCH, KEY, NULL, b501, &r), 0);
    cr_assert_eq(r.status, 400);
    cr_assert(strstr(r.body, "{\"detail\":\""));
    struct sink_counts k = counts(s);
    cr_assert_eq(k.queued, 500);
    cr_assert_eq(k.bad_requests, 1);
    free(b500);
    free(b501);
    sink_stop(s);
}

Test(sink, malformed_bodies_are_400_and_record_nothing)
{
    static const char *bad[] = {
        "",
        "{",
        "{\"events\":[}",
        "{\"events\":[{\"user_id\":\"u\",\"event_type\":\"a\",}]}",
        "{\"events\":[{\"user_id\":\"u\",\"event_type\":\"a\"},]}",
        "{\"events\":[{\"user_id\":\"u\",\"event_type\":\"a\"}]} x",
        "{\"events\":[{\"user_id\":\"\xff\",\"event_type\":\"a\"}]}",
        "{\"events\":[{\"user_id\":\"\xc0\xaf\",\"event_type\":\"a\"}]}",
        "{\"events\":[{\"user_id\":\"\xed\xa0\x80\",\"event_type\":\"a\"}]}",
        "{\"events\":[{\"user_id\":\"a\tb\",\"event_type\":\"a\"}]}",
        "{\"events\":[{\"user_id\":\"\\x\",\"event_type\":\"a\"}]}",
        "{\"events\":[{\"user_id\":\"\\u12\",\"event_type\":\"a\"}]}",
        "{\"events\":[{\"user_id\":\"u\",\"event_type\":\"a\",\"n\":01}]}",
        "{\"events\":[{\"user_id\":\"u\",\"event_type\":\"a\",\"n\":1.}]}",
        "{\"events\":[{\"user_id\":\"u\",\"event_type\":\"a\",\"n\":NaN}]}",
        "{\"events\":[{\"user_id\":\"u\",\"event_type\":\"a\",\"n\":tru}]}",
        "{\"events\":[{'user_id':\"u\",\"event_type\":\"a\"}]}",
        "{\"events\":[{\"user_id\":\"u\" \"event_type\":\"a\"}]}",
        "{\"events\":[{\"user_id\":\"u\",\"event_type\":\"a\"}]",
        "{\"events\":[{\"user_id\":\"u\",\"event_type\":\"a\",\"p\":[1,2}]}",
        "{\"events\" [] }",
    };
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(roundtrip(port, BATCH, KEY, NULL, bad[i], &r), 0);
        cr_assert_eq(r.status, 400, "body %zu: %d", i, r.status);
        cr_assert(strncmp(r.body, "{\"detail\":\"", 11) == 0, "%s", r.body);
    }
    struct sink_counts k = counts(s);
    cr_assert_eq(k.bad_requests, sizeof bad / sizeof *bad);
    cr_assert_eq(k.queued + k.skipped + k.events, 0);
    sink_stop(s);
}

Test(sink, body_without_events_array_is_400)
{
    static const char *bad[] = {"{}", "{\"events\":{}}", "[]",
                                "{\"events\":null}", "{\"event\":[]}", "42"};
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(roundtrip(port, BATCH, KEY, NULL, bad[i], &r), 0);
        cr_assert_eq(r.status, 400, "body %s", bad[i]);
    }
    /* other top-level members are ignored */
    cr_assert_eq(roundtrip(port, BATCH, KEY, NULL,
                           "{\"sent_at\":\"x\",\"events\":[],\"m\":{\"a\":[1]}}",
                           &r), 0);
    cr_assert_eq(r.status, 202);
    sink_stop(s);
}

/* ---- auth, routing -------------------------------------------------- */

Test(sink, wrong_or_missing_key_is_401)
{
    struct sink_opts o = {.api_key = "sk_live_1"};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    char *b = batch_of(1, EV_OK);
    cr_assert_eq(roundtrip(port, BATCH, "sk_test", NULL, b, &r), 0);
    cr_assert_eq(r.status, 401);
    cr_assert_str_eq(r.body, "{\"detail\":\"Invalid API key.\"}");
    cr_assert_eq(roundtrip(port, BATCH, NULL, NULL, b, &r), 0);
    cr_assert_eq(r.status, 401);
    cr_assert_eq(roundtrip(port, BATCH, "sk_live_10", NULL, b, &r), 0);
    cr_assert_eq(r.status, 401);
    cr_assert_eq(roundtrip(port, SINGLE, "sk_live", NULL, EV_OK, &r), 0);
    cr_assert_eq(r.status, 401);
    cr_assert_eq(roundtrip(port, BATCH, "sk_live_1", NULL, b, &r), 0);
    cr_assert_eq(r.status, 202);
    {
        /* another scheme is refused; the scheme's case does not matter */
        int fd = cli_connect(port);
        const char *q1 = "POST " BATCH " HTTP/1.1\r\nAuthorization: Bearer sk_live_1\r\n"
                         "Content-Length: 13\r\n\r\n{\"events\":[]}";
        const char *q2 = "POST " BATCH " HTTP/1.1\r\nauthorization:   apikey sk_live_1  \r\n"
                         "Content-Length: 13\r\n\r\n{\"events\":[]}";
        cli_send(fd, q1, strlen(q1));
        cr_assert_eq(cli_read(fd, &r), 0);
        cr_assert_eq(r.status, 401);
        cli_send(fd, q2, strlen(q2));
        cr_assert_eq(cli_read(fd, &r), 0);
        cr_assert_eq(r.status, 202);
        close(fd);
    }
    struct sink_counts k = counts(s);
    cr_assert_eq(k.auth_failures, 5);
    cr_assert_eq(k.queued, 1);
    free(b);
    sink_stop(s);
}

Test(sink, unknown_path_is_404_and_wrong_method_405)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    cr_assert_eq(roundtrip(port, "/api/ingestion/track/batch", KEY, NULL, "{}", &r), 0);
    cr_assert_eq(r.status, 404);
    cr_assert(strstr(r.body, "\"detail\""));
    cr_assert_eq(roundtrip(port, "/api/other/", KEY, NULL, "{}", &r), 0);
    cr_assert_eq(r.status, 404);
    {
        int fd = cli_connect(port);
        const char *q = "GET " BATCH " HTTP/1.1\r\nHost: x\r\n\r\n";
        cli_send(fd, q, strlen(q));
        cr_assert_eq(cli_read(fd, &r), 0);
        cr_assert_eq(r.status, 405);
        close(fd);
    }
    cr_assert_eq(counts(s).requests, 0);
    sink_stop(s);
}

Test(sink, prefix_path_and_query_string)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    char *b = batch_of(2, EV_OK);
    cr_assert_eq(roundtrip(port, "/segops" BATCH, KEY, NULL, b, &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert_str_eq(r.body, "{\"queued\":2,\"skipped\":0}");
    cr_assert_eq(roundtrip(port, "/a/b/c" SINGLE, KEY, NULL, EV_OK, &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert_eq(roundtrip(port, BATCH "?x=1", KEY, NULL, b, &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert_eq(counts(s).queued, 5);
    free(b);
    sink_stop(s);
}

Test(sink, single_endpoint)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    cr_assert_eq(roundtrip(port, SINGLE, KEY, NULL, EV_OK, &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert_str_eq(r.body, "{\"queued\":true}");
    cr_assert_eq(roundtrip(port, SINGLE, KEY, NULL, EV_BAD, &r), 0);
    cr_assert_eq(r.status, 400);
    cr_assert(strstr(r.body, "\"detail\""));
    cr_assert_eq(roundtrip(port, SINGLE, KEY, NULL, "{\"user_id\":", &r), 0);
    cr_assert_eq(r.status, 400);
    cr_assert_eq(roundtrip(port, SINGLE, KEY, NULL, "[1]", &r), 0);
    cr_assert_eq(r.status, 400);
    struct sink_counts k = counts(s);
    cr_assert_eq(k.requests, 4);
    cr_assert_eq(k.batch_requests, 0);
    cr_assert_eq(k.queued, 1);
    cr_assert_eq(k.events, 1);
    cr_assert_eq(k.bad_requests, 3);
    sink_stop(s);
}

Test(sink, counts_endpoint)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    char *b = batch_of(3, EV_OK);
    cr_assert_eq(roundtrip(port, BATCH, KEY, NULL, b, &r), 0);
    int fd = cli_connect(port);
    const char *q = "GET /_sink/counts HTTP/1.1\r\nHost: x\r\n\r\n";
    cli_send(fd, q, strlen(q));
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.body, "\"queued\":3,"), "%s", r.body);
    cr_assert(strstr(r.body, "\"requests\":1,"), "%s", r.body);
    cr_assert(r.body[0] == '{' && r.body[r.body_len - 1] == '}');
    close(fd);
    free(b);
    sink_stop(s);
}

/* ---- HTTP handling ---------------------------------------------------- */

Test(sink, keep_alive_and_pipelining)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    char *b = batch_of(2, EV_OK);
    size_t n1, n2;
    char *q1 = render_post(BATCH, KEY, NULL, b, &n1);
    char *q2 = render_post(SINGLE, KEY, NULL, EV_OK, &n2);
    char *both = malloc(n1 + n2);
    memcpy(both, q1, n1);
    memcpy(both + n1, q2, n2);
    int fd = cli_connect(port);
    for (int i = 0; i < 3; i++) {
        cli_send(fd, q1, n1);
        cr_assert_eq(cli_read(fd, &r), 0);
        cr_assert_eq(r.status, 202);
    }
    cli_send(fd, both, n1 + n2);   /* two requests in one segment */
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_str_eq(r.body, "{\"queued\":2,\"skipped\":0}");
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_str_eq(r.body, "{\"queued\":true}");
    close(fd);
    struct sink_counts k = counts(s);
    cr_assert_eq(k.connections, 1);
    cr_assert_eq(k.queued, 9);
    free(q1);
    free(q2);
    free(both);
    free(b);
    sink_stop(s);
}

Test(sink, request_sent_one_byte_at_a_time)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    char *b = batch_of(2, EV_OK);
    size_t n;
    char *q = render_post(BATCH, KEY, "k-1", b, &n);
    int fd = cli_connect(port);
    for (size_t i = 0; i < n; i++) cli_send(fd, q + i, 1);
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert_str_eq(r.body, "{\"queued\":2,\"skipped\":0}");
    close(fd);
    free(q);
    free(b);
    sink_stop(s);
}

Test(sink, chunked_request_body)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    char *b = batch_of(3, EV_OK);
    size_t bl = strlen(b), half = bl / 2;
    char *q = malloc(bl + 512);
    int n = sprintf(q, "POST " BATCH " HTTP/1.1\r\nAuthorization: ApiKey " KEY "\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n%zx;ext=1\r\n",
                    half);
    memcpy(q + n, b, half);
    n += (int)half;
    n += sprintf(q + n, "\r\n%zX\r\n", bl - half);
    memcpy(q + n, b + half, bl - half);
    n += (int)(bl - half);
    n += sprintf(q + n, "\r\n0\r\nX-Trailer: 1\r\n\r\n");
    int fd = cli_connect(port);
    cli_send(fd, q, (size_t)n);
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert_str_eq(r.body, "{\"queued\":3,\"skipped\":0}");
    /* the connection stays usable */
    cli_post(fd, SINGLE, KEY, NULL, EV_OK);
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 202);
    close(fd);
    free(q);
    free(b);
    sink_stop(s);
}

Test(sink, expect_100_continue_gets_interim_answer)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    char line[64];
    const char *h = "POST " SINGLE " HTTP/1.1\r\nAuthorization: ApiKey " KEY "\r\n"
                    "Expect: 100-continue\r\n";
    char q[1024];
    int n = snprintf(q, sizeof q, "%sContent-Length: %zu\r\n\r\n", h, strlen(EV_OK));
    int fd = cli_connect(port);
    cli_send(fd, q, (size_t)n);
    cr_assert_gt(rd_line(fd, line, sizeof line), 0);
    cr_assert_str_eq(line, "HTTP/1.1 100 Continue\r\n");
    cr_assert_eq(rd_line(fd, line, sizeof line), 2);
    cli_send(fd, EV_OK, strlen(EV_OK));
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 202);
    close(fd);
    sink_stop(s);
}

Test(sink, oversized_request_is_413_or_431_and_closed)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    int fd = cli_connect(port);
    const char *q = "POST " BATCH " HTTP/1.1\r\nAuthorization: ApiKey " KEY "\r\n"
                    "Content-Length: 100000000\r\n\r\n{";
    cli_send(fd, q, strlen(q));
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 413);
    cr_assert(strstr(r.head, "Connection: close\r\n"));
    cr_assert(cli_closed(fd));
    close(fd);

    fd = cli_connect(port);
    size_t hn = 70 * 1024;
    char *h = malloc(hn + 64);
    int n = sprintf(h, "POST " BATCH " HTTP/1.1\r\nX-Big: ");
    memset(h + n, 'a', hn);
    cli_send(fd, h, (size_t)n + hn);
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 431);
    close(fd);
    free(h);
    sink_stop(s);
}

Test(sink, malformed_request_head_is_400)
{
    static const char *bad[] = {
        "POST " BATCH " HTTP/2.0\r\n\r\n",
        "POST " BATCH "\r\n\r\n",
        "POST  " BATCH " HTTP/1.1\r\n\r\n",
        "POST " BATCH " HTTP/1.1\r\nNoColon\r\n\r\n",
        "POST " BATCH " HTTP/1.1\r\nContent-Length: x1\r\n\r\n",
        "POST " BATCH " HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "POST " BATCH " HTTP/1.1\nHost: x\n\r\n\r\n",
    };
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int fd = cli_connect(port);
        cli_send(fd, bad[i], strlen(bad[i]));
        cr_assert_eq(cli_read(fd, &r), 0, "request %zu", i);
        cr_assert_eq(r.status, 400, "request %zu: %d", i, r.status);
        cr_assert(cli_closed(fd));
        close(fd);
    }
    sink_stop(s);
}

/* ---- fault injection --------------------------------------------------- */

Test(sink, fail_first_then_success_with_retry_after)
{
    struct sink_opts o = {.fail_first = 2, .fail_status = 503,
                          .retry_after = "1", .fail_detail = "down \"now\""};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    char *b = batch_of(1, EV_OK);
    int fd = cli_connect(port);
    for (int i = 0; i < 2; i++) {
        cli_post(fd, BATCH, KEY, "same", b);
        cr_assert_eq(cli_read(fd, &r), 0);
        cr_assert_eq(r.status, 503);
        cr_assert(strstr(r.head, "\r\nRetry-After: 1\r\n"));
        cr_assert_str_eq(r.body, "{\"detail\":\"down \\\"now\\\"\"}");
    }
    cli_post(fd, BATCH, KEY, "same", b);
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert_null(strstr(r.head, "Retry-After"));
    close(fd);
    struct sink_counts k = counts(s);
    cr_assert_eq(k.failed_requests, 2);
    cr_assert_eq(k.requests, 3);
    cr_assert_eq(k.queued, 1);
    cr_assert_eq(k.events, 1);
    cr_assert_eq(k.repeated_keys, 2);
    free(b);
    sink_stop(s);
}

Test(sink, fail_every_kth_request)
{
    struct sink_opts o = {.fail_every = 3, .fail_status = 500,
                          .retry_after = "7"};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    char *b = batch_of(1, EV_OK);
    int fd = cli_connect(port);
    for (int i = 1; i <= 7; i++) {
        cli_post(fd, BATCH, KEY, NULL, b);
        cr_assert_eq(cli_read(fd, &r), 0);
        cr_assert_eq(r.status, i % 3 == 0 ? 500 : 202, "request %d", i);
        cr_assert_null(strstr(r.head, "Retry-After"));   /* not on 500 */
        if (i % 3 == 0) cr_assert_str_eq(r.body, "{\"detail\":\"Injected failure.\"}");
    }
    close(fd);
    cr_assert_eq(counts(s).failed_requests, 2);
    cr_assert_eq(counts(s).queued, 5);
    free(b);
    sink_stop(s);
}

Test(sink, retry_after_on_429)
{
    struct sink_opts o = {.fail_first = 1, .fail_status = 429,
                          .retry_after = "Wed, 21 Oct 2015 07:28:00 GMT"};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    cr_assert_eq(roundtrip(port, SINGLE, KEY, NULL, EV_OK, &r), 0);
    cr_assert_eq(r.status, 429);
    cr_assert(strstr(r.head, "HTTP/1.1 429 Too Many Requests\r\n"));
    cr_assert(strstr(r.head, "\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"));
    cr_assert(strstr(r.body, "\"detail\""));
    cr_assert_eq(roundtrip(port, SINGLE, KEY, NULL, EV_OK, &r), 0);
    cr_assert_eq(r.status, 202);
    sink_stop(s);
}

Test(sink, drop_first_closes_without_answer)
{
    struct sink_opts o = {.drop_first = 2};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    char *b = batch_of(2, EV_OK);
    for (int i = 0; i < 2; i++) {
        int fd = cli_connect(port);
        cli_post(fd, BATCH, KEY, "k", b);
        cr_assert_eq(cli_read(fd, &r), 1, "request %d answered", i);
        close(fd);
    }
    cr_assert_eq(roundtrip(port, BATCH, KEY, "k", b, &r), 0);
    cr_assert_eq(r.status, 202);
    struct sink_counts k = counts(s);
    cr_assert_eq(k.dropped_requests, 2);
    cr_assert_eq(k.requests, 3);
    cr_assert_eq(k.queued, 2);
    cr_assert_eq(k.repeated_keys, 2);
    free(b);
    sink_stop(s);
}

Test(sink, chunked_answer_is_valid_chunked_encoding)
{
    struct sink_opts o = {.chunked = 1};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    char *b = batch_of(3, EV_OK);
    int fd = cli_connect(port);
    for (int i = 0; i < 2; i++) {   /* and keep-alive still works */
        cli_post(fd, BATCH, KEY, NULL, b);
        cr_assert_eq(cli_read(fd, &r), 0);
        cr_assert_eq(r.status, 202);
        cr_assert(r.chunked);
        cr_assert_null(strcasestr(r.head, "Content-Length"));
        cr_assert_geq(r.nchunks, 2);
        cr_assert_str_eq(r.body, "{\"queued\":3,\"skipped\":0}");
    }
    close(fd);
    free(b);
    sink_stop(s);
}

Test(sink, byte_by_byte_answer)
{
    struct sink_opts o = {.byte_by_byte = 1, .chunked = 1};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    int fd = cli_connect(port);
    for (int i = 0; i < 2; i++) {
        cli_post(fd, SINGLE, KEY, NULL, EV_OK);
        cr_assert_eq(cli_read(fd, &r), 0);
        cr_assert_eq(r.status, 202);
        cr_assert_str_eq(r.body, "{\"queued\":true}");
    }
    close(fd);
    sink_stop(s);
}

Test(sink, conn_close_says_so_and_closes)
{
    struct sink_opts o = {.conn_close = 1};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    int fd = cli_connect(port);
    cli_post(fd, SINGLE, KEY, NULL, EV_OK);
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert(strstr(r.head, "\r\nConnection: close\r\n"));
    cr_assert(cli_closed(fd));
    close(fd);
    sink_stop(s);
}

Test(sink, close_after_answer_closes_silently)
{
    struct sink_opts o = {.close_after_answer = 1};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    int fd = cli_connect(port);
    cli_post(fd, SINGLE, KEY, NULL, EV_OK);
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert_null(strcasestr(r.head, "Connection:"));
    cr_assert(cli_closed(fd));
    close(fd);
    sink_stop(s);
}

Test(sink, client_connection_close_is_honoured)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    int fd = cli_connect(port);
    const char *q = "POST " SINGLE " HTTP/1.1\r\nAuthorization: ApiKey " KEY "\r\n"
                    "Connection: close\r\nContent-Length: 2\r\n\r\n{}";
    cli_send(fd, q, strlen(q));
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 400);
    cr_assert(strstr(r.head, "\r\nConnection: close\r\n"));
    cr_assert(cli_closed(fd));
    close(fd);
    sink_stop(s);
}

Test(sink, idle_close_ms_closes_idle_connection)
{
    struct sink_opts o = {.idle_close_ms = 100};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    int fd = cli_connect(port);
    cli_post(fd, SINGLE, KEY, NULL, EV_OK);   /* in use: stays open */
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert_null(strcasestr(r.head, "Connection:"));
    double t0 = now_ms();
    cr_assert(cli_closed(fd));                 /* then idle: closed */
    cr_assert_geq(now_ms() - t0, 90.0);
    close(fd);
    cr_assert_eq(counts(s).requests, 1);
    sink_stop(s);
}

Test(sink, delay_ms_delays_answers)
{
    struct sink_opts o = {.delay_ms = 150};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    double t0 = now_ms();
    cr_assert_eq(roundtrip(port, SINGLE, KEY, NULL, EV_OK, &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert_geq(now_ms() - t0, 145.0);
    sink_stop(s);
}

/* ---- idempotency ------------------------------------------------------- */

static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static int ev_calls;
static char ev_last[1024];
static char ev_key[64];

static void on_event(void *user, const char *json, size_t len,
                     const char *key)
{
    pthread_mutex_lock(&ev_mu);
    ev_calls++;
    cr_assert_eq(user, (void *)&ev_calls);
    cr_assert_eq(json[len], '\0');
    cr_assert_eq(strlen(json), len);
    snprintf(ev_last, sizeof ev_last, "%.*s", (int)len, json);
    snprintf(ev_key, sizeof ev_key, "%s", key);
    pthread_mutex_unlock(&ev_mu);
}

Test(sink, repeated_idempotency_keys_are_counted)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    char *b = batch_of(2, EV_OK);
    int fd = cli_connect(port);
    const char *keys[] = {"a", "b", "a", "a", "c", "b"};
    for (int i = 0; i < 6; i++) {
        cli_post(fd, BATCH, KEY, keys[i], b);
        cr_assert_eq(cli_read(fd, &r), 0);
        cr_assert_eq(r.status, 202);
    }
    cli_post(fd, BATCH, KEY, NULL, b);   /* no key: not counted */
    cr_assert_eq(cli_read(fd, &r), 0);
    close(fd);
    struct sink_counts k = counts(s);
    cr_assert_eq(k.repeated_keys, 3);
    cr_assert_eq(k.queued, 14);   /* without dedupe every copy counts */
    free(b);
    sink_stop(s);
}

Test(sink, dedupe_answers_repeats_from_memory)
{
    struct sink_opts o = {.dedupe = 1, .on_event = on_event,
                          .on_event_user = &ev_calls};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    char body[1024];
    snprintf(body, sizeof body, "{\"events\":[%s,%s,%s]}", EV_OK, EV_BAD, EV_OK);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(roundtrip(port, BATCH, KEY, "batch-1", body, &r), 0);
        cr_assert_eq(r.status, 202);
        cr_assert_str_eq(r.body, "{\"queued\":2,\"skipped\":1}");
    }
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(roundtrip(port, SINGLE, KEY, "one-1", EV_OK, &r), 0);
        cr_assert_eq(r.status, 202);
        cr_assert_str_eq(r.body, "{\"queued\":true}");
    }
    struct sink_counts k = counts(s);
    cr_assert_eq(k.queued, 3);
    cr_assert_eq(k.skipped, 1);
    cr_assert_eq(k.repeated_keys, 3);
    cr_assert_eq(ev_calls, 3);
    sink_stop(s);
}

Test(sink, dedupe_processes_a_repeat_whose_first_answer_failed)
{
    struct sink_opts o = {.dedupe = 1, .fail_first = 1, .fail_status = 500};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    char *b = batch_of(2, EV_OK);
    cr_assert_eq(roundtrip(port, BATCH, KEY, "k", b, &r), 0);
    cr_assert_eq(r.status, 500);
    cr_assert_eq(roundtrip(port, BATCH, KEY, "k", b, &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert_eq(roundtrip(port, BATCH, KEY, "k", b, &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert_str_eq(r.body, "{\"queued\":2,\"skipped\":0}");
    struct sink_counts k = counts(s);
    cr_assert_eq(k.queued, 2);
    cr_assert_eq(k.repeated_keys, 2);
    free(b);
    sink_stop(s);
}

/* ---- recording ---------------------------------------------------------- */

Test(sink, on_event_called_per_queued_event)
{
    struct sink_opts o = {.on_event = on_event, .on_event_user = &ev_calls};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    char body[1024];
    snprintf(body, sizeof body, "{\"events\":[%s,%s, %s ]}", EV_BAD, EV_OK, EV_OK);
    cr_assert_eq(roundtrip(port, BATCH, KEY, "key-42", body, &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert_eq(ev_calls, 2);
    cr_assert_str_eq(ev_last, EV_OK);
    cr_assert_str_eq(ev_key, "key-42");
    cr_assert_eq(roundtrip(port, SINGLE, KEY, NULL, EV_OK, &r), 0);
    cr_assert_eq(ev_calls, 3);
    cr_assert_str_eq(ev_last, EV_OK);
    cr_assert_str_eq(ev_key, "");
    sink_stop(s);
}

Test(sink, jsonl_gets_exactly_the_queued_events)
{
    char path[] = "/tmp/test_sink_XXXXXX";
    int tfd = mkstemp(path);
    cr_assert(tfd >= 0);
    close(tfd);
    struct sink_opts o = {.jsonl_path = path};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    const char *ev2 = "{\"user_id\":\"u\\n2\",\"event_type\":\"b\",\"payload\":{}}";
    const char *ev3_in = "{\"user_id\":\"u3\",\n\r\t\"event_type\":\"c\"}";
    const char *ev3_out = "{\"user_id\":\"u3\",  \t\"event_type\":\"c\"}";
    char body[2048];
    snprintf(body, sizeof body, "{\"events\":[%s,%s,%s,\n%s]}", EV_OK, EV_BAD,
             ev2, ev3_in);
    cr_assert_eq(roundtrip(port, BATCH, KEY, NULL, body, &r), 0);
    cr_assert_str_eq(r.body, "{\"queued\":3,\"skipped\":1}");
    cr_assert_eq(roundtrip(port, BATCH, KEY, NULL, "{\"events\":[1,2]}", &r), 0);
    cr_assert_eq(roundtrip(port, BATCH, KEY, NULL, "{\"events\":[{]}", &r), 0);
    cr_assert_eq(r.status, 400);
    cr_assert_eq(roundtrip(port, SINGLE, KEY, NULL, EV_OK, &r), 0);

    /* written before the answer: readable now, without stopping */
    char want[4096];
    snprintf(want, sizeof want, "%s\n%s\n%s\n%s\n", EV_OK, ev2, ev3_out, EV_OK);
    char got[4096] = "";
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(got, 1, sizeof got - 1, f);
    got[n] = '\0';
    fclose(f);
    cr_assert_str_eq(got, want);
    sink_stop(s);
    unlink(path);
}

/* ---- concurrency and shutdown ------------------------------------------ */

struct worker {
    uint16_t port;
    int ok;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct resp r;
    char *b = batch_of(10, EV_OK);
    int fd = cli_connect(w->port);
    for (int i = 0; i < 25; i++) {
        char key[32];
        snprintf(key, sizeof key, "w%p-%d", (void *)w, i);
        cli_post(fd, BATCH, KEY, key, b);
        if (cli_read(fd, &r) == 0 && r.status == 202) w->ok++;
    }
    close(fd);
    free(b);
    return NULL;
}

Test(sink, concurrent_connections)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i].port = port;
        w[i].ok = 0;
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(w[i].ok, 25);
    }
    struct sink_counts k = counts(s);
    cr_assert_eq(k.connections, 4);
    cr_assert_eq(k.requests, 100);
    cr_assert_eq(k.queued, 1000);
    cr_assert_eq(k.repeated_keys, 0);
    sink_stop(s);
}

Test(sink, stop_with_open_and_half_sent_connections)
{
    struct sink_opts o = {.delay_ms = 60000};
    uint16_t port;
    struct sink *s = start(&o, &port);
    int idle = cli_connect(port), half = cli_connect(port);
    int slow = cli_connect(port);
    const char *q = "POST " BATCH " HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"ev";
    cli_send(half, q, strlen(q));
    cli_post(slow, SINGLE, KEY, NULL, EV_OK);   /* waits in delay_ms */
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    double t0 = now_ms();
    sink_stop(s);
    cr_assert_lt(now_ms() - t0, 5000.0);
    cr_assert(cli_closed(idle));
    cr_assert(cli_closed(half));
    close(idle);
    close(half);
    close(slow);
}

Test(sink, start_refuses_bad_options)
{
    struct sink_opts o = {.retry_after = "1\r\nX: y"};
    uint16_t port;
    cr_assert_null(sink_start(&o, &port));
    cr_assert_null(sink_start(NULL, &port));
    struct sink_opts o2 = {.bind_host = "not an address"};
    cr_assert_null(sink_start(&o2, &port));
}

/* ---- pooled senders: hold gate, in-progress gauge, request log ---------- */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Waits until in_progress == n.  The bound is generous and only there to
 * end a test that would otherwise hang: nothing here depends on how fast
 * the sink gets there. */
static int wait_in_progress(struct sink *s, uint64_t n)
{
    double end = now_ms() + 30000.0;
    while (counts(s).in_progress != n) {
        if (now_ms() > end) return 0;
        pause_ms(2);
    }
    return 1;
}

/* Nothing to read on fd right now (no answer was sent). */
static int cli_nothing_yet(int fd)
{
    char c;
    ssize_t k = recv(fd, &c, 1, MSG_DONTWAIT);
    return k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

#define HOLD_N 4

Test(sink, hold_gate_holds_requests_on_several_connections, .timeout = 120)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    static struct sink_req_rec log[SINK_REQ_LOG];
    char *b = batch_of(3, EV_OK);
    int fd[HOLD_N], conn_of[HOLD_N];

    sink_hold(s, 1);
    for (int i = 0; i < HOLD_N; i++) {
        char key[16];
        snprintf(key, sizeof key, "g-%d", i);
        fd[i] = cli_connect(port);
        cli_post(fd[i], BATCH, KEY, key, b);
    }
    /* every request read, none answered: all held at once */
    cr_assert(wait_in_progress(s, HOLD_N), "in_progress %llu",
              (unsigned long long)counts(s).in_progress);
    struct sink_counts k = counts(s);
    cr_assert_eq(k.max_in_progress, HOLD_N);
    cr_assert_eq(k.requests, HOLD_N);
    cr_assert_eq(k.queued, 0);
    cr_assert_eq(sink_requests(s, log, SINK_REQ_LOG), 0);
    for (int i = 0; i < HOLD_N; i++)
        cr_assert(cli_nothing_yet(fd[i]), "connection %d answered early", i);

    sink_hold(s, 0);
    for (int i = 0; i < HOLD_N; i++) {
        cr_assert_eq(cli_read(fd[i], &r), 0, "connection %d", i);
        cr_assert_eq(r.status, 202);
        cr_assert_str_eq(r.body, "{\"queued\":3,\"skipped\":0}");
    }
    /* a request leaves the gauge before its answer is sent */
    k = counts(s);
    cr_assert_eq(k.in_progress, 0);
    cr_assert_eq(k.max_in_progress, HOLD_N);
    cr_assert_eq(k.queued, 3 * HOLD_N);

    /* released in any order: one record per connection, its own key */
    cr_assert_eq(sink_requests(s, log, SINK_REQ_LOG), HOLD_N);
    for (int i = 0; i < HOLD_N; i++) conn_of[i] = 0;
    for (int j = 0; j < HOLD_N; j++) {
        int i;
        cr_assert_eq(log[j].status, 202);
        cr_assert_eq(log[j].events, 3);
        cr_assert(sscanf(log[j].key, "g-%d", &i) == 1 && i >= 0 && i < HOLD_N,
                  "key %s", log[j].key);
        cr_assert_eq(conn_of[i], 0, "key %s twice", log[j].key);
        cr_assert(log[j].conn >= 1 && log[j].conn <= HOLD_N);
        conn_of[i] = (int)log[j].conn;
    }
    for (int i = 0; i < HOLD_N; i++)
        for (int j = i + 1; j < HOLD_N; j++)
            cr_assert_neq(conn_of[i], conn_of[j]);

    /* the gate is open now: the next request is answered without help */
    cli_post(fd[0], BATCH, KEY, "after", b);
    cr_assert_eq(cli_read(fd[0], &r), 0);
    cr_assert_eq(r.status, 202);
    cr_assert_eq(counts(s).max_in_progress, HOLD_N);
    for (int i = 0; i < HOLD_N; i++) close(fd[i]);
    free(b);
    sink_stop(s);
}

Test(sink, hold_gate_is_released_by_stop_without_answers, .timeout = 120)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    int fd[2];
    sink_hold(s, 1);
    for (int i = 0; i < 2; i++) {
        fd[i] = cli_connect(port);
        cli_post(fd[i], SINGLE, KEY, NULL, EV_OK);
    }
    cr_assert(wait_in_progress(s, 2));
    sink_stop(s);   /* must not wait for the gate (the test's timeout) */
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(cli_read(fd[i], &r), 1, "connection %d answered", i);
        close(fd[i]);
    }
}

Test(sink, requests_waiting_in_delay_ms_are_in_progress, .timeout = 120)
{
    struct sink_opts o = {.delay_ms = 3600000};
    uint16_t port;
    struct sink *s = start(&o, &port);
    int fd[3];
    for (int i = 0; i < 3; i++) {
        fd[i] = cli_connect(port);
        cli_post(fd[i], SINGLE, KEY, NULL, EV_OK);
    }
    cr_assert(wait_in_progress(s, 3));
    struct sink_counts k = counts(s);
    cr_assert_eq(k.max_in_progress, 3);
    cr_assert_eq(k.requests, 3);
    sink_stop(s);   /* ends delay_ms early */
    for (int i = 0; i < 3; i++) close(fd[i]);
}

Test(sink, request_log_records_order_status_events_keys_and_connections)
{
    struct sink_opts o = {.drop_first = 1, .fail_first = 2};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    static struct sink_req_rec log[SINK_REQ_LOG];
    char *b1 = batch_of(1, EV_OK), *b2 = batch_of(2, EV_OK);
    char *b4 = batch_of(4, EV_OK);
    char longkey[101];
    int64_t t0 = mono_ns(), t1;
    int fd;

    memset(longkey, 'k', 100);
    longkey[100] = '\0';
    /* connection 1: request 1 is dropped */
    fd = cli_connect(port);
    cli_post(fd, BATCH, KEY, "k-1", b2);
    cr_assert_eq(cli_read(fd, &r), 1);
    close(fd);
    /* connection 2 */
    fd = cli_connect(port);
    cli_post(fd, BATCH, KEY, "k-2", b4);          /* 2: fail_first: 503 */
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 503);
    cli_post(fd, BATCH, KEY, "k-3", b2);          /* 3: 202 */
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 202);
    cli_post(fd, "/nowhere/", KEY, "x", "{}");    /* not ingestion: no record */
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 404);
    cli_post(fd, BATCH, KEY, "k-4", "{\"events\":[");   /* 4: 400, 0 events */
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 400);
    cli_post(fd, SINGLE, KEY, NULL, EV_OK);       /* 5: 202, 1 event, no key */
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 202);
    cli_post(fd, BATCH, "sk_wrong", "k-6", b4);   /* 6: 401, still 4 events */
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 401);
    close(fd);
    /* connection 3 */
    fd = cli_connect(port);
    cli_post(fd, BATCH, KEY, longkey, b1);        /* 7: 202, key cut */
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 202);
    close(fd);
    t1 = mono_ns();

    static const struct {
        int status;
        uint32_t events;
        uint64_t conn;
        const char *key;
    } want[] = {
        {0, 2, 1, "k-1"}, {503, 4, 2, "k-2"}, {202, 2, 2, "k-3"},
        {400, 0, 2, "k-4"}, {202, 1, 2, ""},   {401, 4, 2, "k-6"},
        {202, 1, 3, NULL},
    };
    size_t n = sink_requests(s, log, SINK_REQ_LOG);
    cr_assert_eq(n, 7);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(log[i].status, want[i].status, "record %zu", i);
        cr_assert_eq(log[i].events, want[i].events, "record %zu", i);
        cr_assert_eq(log[i].conn, want[i].conn, "record %zu", i);
        if (want[i].key) cr_assert_str_eq(log[i].key, want[i].key, "record %zu", i);
        /* read before it was answered, after the test began */
        cr_assert_geq(log[i].t_ns, i ? log[i - 1].t_ns : t0, "record %zu", i);
        cr_assert_leq(log[i].t_ns, t1, "record %zu", i);
    }
    cr_assert_eq(strlen(log[6].key), 63);
    cr_assert_eq(strncmp(log[6].key, longkey, 63), 0);
    /* cap: the oldest ones */
    cr_assert_eq(sink_requests(s, log, 2), 2);
    cr_assert_str_eq(log[0].key, "k-1");
    cr_assert_str_eq(log[1].key, "k-2");
    cr_assert_eq(sink_requests(s, log, 0), 0);
    free(b1);
    free(b2);
    free(b4);
    sink_stop(s);
}

Test(sink, request_log_keeps_the_last_4096, .timeout = 300)
{
    struct sink_opts o = {0};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    static struct sink_req_rec log[SINK_REQ_LOG + 8];
    const int total = SINK_REQ_LOG + 10;
    int fd = cli_connect(port);
    for (int i = 0; i < total; i++) {
        char key[16];
        snprintf(key, sizeof key, "r-%d", i);
        cli_post(fd, BATCH, KEY, key, "{\"events\":[]}");
        cr_assert_eq(cli_read(fd, &r), 0, "request %d", i);
        cr_assert_eq(r.status, 202);
    }
    close(fd);
    cr_assert_eq(sink_requests(s, log, SINK_REQ_LOG + 8), SINK_REQ_LOG);
    for (int j = 0; j < SINK_REQ_LOG; j++) {
        char key[16];
        snprintf(key, sizeof key, "r-%d", j + 10);
        cr_assert_str_eq(log[j].key, key);
        cr_assert_eq(log[j].conn, 1);
        if (j) cr_assert_geq(log[j].t_ns, log[j - 1].t_ns);
    }
    cr_assert_eq(sink_requests(s, log, 3), 3);
    cr_assert_str_eq(log[0].key, "r-10");
    cr_assert_str_eq(log[2].key, "r-12");
    sink_stop(s);
}

/* ---- fail_user_id ---------------------------------------------------------- */

Test(sink, fail_user_id_fails_only_batches_holding_that_user)
{
    struct sink_opts o = {.fail_user_id = "poison", .retry_after = "2"};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    const char *ev_p = "{\"user_id\":\"poison\",\"event_type\":\"a\"}";
    static const struct {
        int status;
        const char *ev;   /* the second event, after EV_OK */
    } t[] = {
        {202, "{\"user_id\":\"u\",\"event_type\":\"a\"}"},
        {503, "{\"user_id\":\"poison\",\"event_type\":\"a\"}"},
        {503, "{\"user_id\":\"poison\",\"event_type\":\"a\"}"},   /* again */
        {503, "{ \"event_type\" : \"a\" , \"user_id\" : \"poison\" }"},
        {503, "{\"user_id\":\"\\u0070oison\",\"event_type\":\"a\"}"},
        {503, "{\"user_id\":\"poison\",\"event_type\":\"NotValid\"}"},
        {503, "{\"user_id\":1,\"user_id\":\"poison\",\"event_type\":\"a\"}"},
        {202, "{\"user_id\":\"poison\",\"user_id\":\"u\",\"event_type\":\"a\"}"},
        {202, "{\"user_id\":\"poison-2\",\"event_type\":\"a\"}"},
        {202, "{\"user_id\":\"xpoison\",\"event_type\":\"a\"}"},
        {202, "{\"user_id\":\"poiso\",\"event_type\":\"a\"}"},
        {202, "{\"user_id\":\"u\",\"event_type\":\"a\",\"payload\":{\"user_id\":\"poison\"}}"},
        {202, "{\"user\":\"poison\",\"user_id\":\"u\",\"event_type\":\"a\"}"},
    };
    uint64_t queued = 0, failed = 0;
    int fd = cli_connect(port);
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        char body[1024];
        snprintf(body, sizeof body, "{\"events\":[%s,%s]}", EV_OK, t[i].ev);
        cli_post(fd, BATCH, KEY, NULL, body);
        cr_assert_eq(cli_read(fd, &r), 0, "case %zu", i);
        cr_assert_eq(r.status, t[i].status, "case %zu: %s", i, t[i].ev);
        if (r.status == 503) {
            failed++;
            cr_assert(strstr(r.head, "\r\nRetry-After: 2\r\n"));
            cr_assert_str_eq(r.body, "{\"detail\":\"Injected failure.\"}");
        } else {
            queued += 2;
        }
    }
    /* the single endpoint is not a batch: not failed */
    cli_post(fd, SINGLE, KEY, NULL, ev_p);
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 202);
    queued++;
    close(fd);
    struct sink_counts k = counts(s);
    cr_assert_eq(k.failed_requests, failed);
    cr_assert_eq(k.queued, queued);
    cr_assert_eq(k.requests, sizeof t / sizeof *t + 1);
    sink_stop(s);

    /* with fail_status set, that status */
    struct sink_opts o2 = {.fail_user_id = "poison", .fail_status = 500};
    s = start(&o2, &port);
    char body[512];
    snprintf(body, sizeof body, "{\"events\":[%s]}", ev_p);
    cr_assert_eq(roundtrip(port, BATCH, KEY, NULL, body, &r), 0);
    cr_assert_eq(r.status, 500);
    cr_assert_eq(counts(s).queued, 0);
    sink_stop(s);
}

/* ---- idle_408_ms ------------------------------------------------------------ */

/* Connects and sends `first` (a complete request, possibly followed by the
 * start of the next one), then reads the answer into *r.  A busy machine
 * may keep this thread from sending for longer than the sink's idle limit
 * after connect(): the sink then rightly answers 408 on the still-unused
 * connection, and this tries again on a new one.  *retries counts those. */
static int connect_with_first_request(uint16_t port, const char *first,
                                      size_t n, struct resp *r, int *retries)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        int fd = cli_connect(port);
        cli_send(fd, first, n);
        if (cli_read(fd, r) == 0 && r->status != 408) return fd;
        close(fd);
        (*retries)++;
    }
    cr_assert_fail("no connection got its first request through");
    return -1;
}

Test(sink, idle_408_answers_an_idle_connection_then_closes, .timeout = 120)
{
    struct sink_opts o = {.idle_408_ms = 100, .idle_close_ms = 3600000};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    size_t n;
    char *q = render_post(SINGLE, KEY, NULL, EV_OK, &n);
    int retries = 0;
    double t0 = now_ms();
    int fd = connect_with_first_request(port, q, n, &r, &retries);
    cr_assert_eq(r.status, 202);
    cr_assert_null(strcasestr(r.head, "Connection:"));   /* kept alive */
    /* then nothing: the unsolicited 408 */
    cr_assert_eq(cli_read(fd, &r), 0);
    /* the idle time began after the answer, which came after t0 */
    cr_assert_geq(now_ms() - t0, 99.0);
    cr_assert_eq(r.status, 408);
    cr_assert(strncmp(r.head, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0, "%s", r.head);
    cr_assert(strstr(r.head, "\r\nConnection: close\r\n"));
    cr_assert(strstr(r.head, "\r\nContent-Type: application/json\r\n"));
    cr_assert(strstr(r.head, "\r\nContent-Length: 25\r\n"));
    cr_assert_str_eq(r.body, "{\"detail\":\"idle timeout\"}");
    cr_assert(cli_closed(fd));
    close(fd);
    struct sink_counts k = counts(s);
    cr_assert_eq(k.idle_408s, 1 + (uint64_t)retries);
    cr_assert_eq(k.requests, 1);

    /* a connection that never sends a byte gets it too */
    fd = cli_connect(port);
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 408);
    cr_assert(cli_closed(fd));
    close(fd);
    cr_assert_eq(counts(s).idle_408s, 2 + (uint64_t)retries);
    free(q);
    sink_stop(s);

    /* a shorter idle_close_ms closes first, silently */
    struct sink_opts o2 = {.idle_408_ms = 3600000, .idle_close_ms = 50};
    s = start(&o2, &port);
    fd = cli_connect(port);
    cr_assert_eq(cli_read(fd, &r), 1);
    close(fd);
    cr_assert_eq(counts(s).idle_408s, 0);
    sink_stop(s);
}

/* The connection is never idle: each send carries the rest of one request
 * and the first byte of the next, so whenever the sink finishes a request,
 * a byte of the following one is already there, however slowly this
 * thread runs.  The stream lasts well past the idle limit (at least 10
 * times it, and 40 requests), so a limit on the connection's age would
 * show; and every 8th time the rest of the request comes only after twice
 * the limit, so an idle clock that ran while a request is half received
 * would show too. */
Test(sink, idle_408_never_hits_a_connection_that_keeps_sending, .timeout = 300)
{
    struct sink_opts o = {.idle_408_ms = 100};
    uint16_t port;
    struct sink *s = start(&o, &port);
    struct resp r;
    size_t n;
    char *b = batch_of(2, EV_OK);
    char *q = render_post(BATCH, KEY, NULL, b, &n);
    /* first: a request and the first byte of the next; loop: the rest
     * of a request and the first byte of the next */
    char *first = malloc(n + 1), *loop = malloc(n);
    int retries = 0, reqs = 1, fd;
    double t0;

    memcpy(first, q, n);
    first[n] = q[0];
    memcpy(loop, q + 1, n - 1);
    loop[n - 1] = q[0];
    fd = connect_with_first_request(port, first, n + 1, &r, &retries);
    t0 = now_ms();
    cr_assert_eq(r.status, 202);
    while (reqs < 40 || now_ms() - t0 < 1000.0) {
        if (reqs % 8 == 0) pause_ms(200);
        cli_send(fd, loop, n);
        cr_assert_eq(cli_read(fd, &r), 0, "request %d", reqs);
        cr_assert_eq(r.status, 202, "request %d", reqs);
        cr_assert_null(strcasestr(r.head, "Connection:"));
        reqs++;
    }
    cr_assert_eq(counts(s).idle_408s, (uint64_t)retries);
    /* the last request, and nothing after it: now it idles */
    cli_send(fd, q + 1, n - 1);
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 202);
    reqs++;
    cr_assert_eq(cli_read(fd, &r), 0);
    cr_assert_eq(r.status, 408);
    cr_assert(cli_closed(fd));
    close(fd);
    struct sink_counts k = counts(s);
    cr_assert_eq(k.idle_408s, (uint64_t)retries + 1);
    cr_assert_eq(k.requests, (uint64_t)reqs);   /* a 408'd try is not one */
    cr_assert_eq(k.queued, (uint64_t)reqs * 2);
    free(first);
    free(loop);
    free(q);
    free(b);
    sink_stop(s);
}

/* ---- sink_event_valid ---------------------------------------------------- */

Test(sink_event_valid, table)
{
    static const struct {
        int ok;
        const char *json;
    } t[] = {
        {1, "{\"user_id\":\"u\",\"event_type\":\"a\"}"},
        {1, " {\"event_type\":\"page_viewed\" , \"user_id\":\"user-123\"} \n"},
        {1, "{\"user_id\":\"u\",\"event_type\":\"a1_b2\",\"payload\":{}}"},
        {1, "{\"user_id\":\"u\",\"event_type\":\"x\",\"payload\":{\"a\":[1,-2.5e+3,true,false,null,{\"b\":\"\\u00e9\\ud83d\\ude00\"}]}}"},
        {1, "{\"user_id\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\",\"event_type\":\"a\"}"},
        {1, "{\"user_id\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"event_type\":\"a\"}"},
        {1, "{\"user_id\":\"\\u0000\",\"event_type\":\"a\"}"},
        {1, "{\"user_id\":\"u\",\"event_type\":\"page\\u005fviewed\"}"},
        {1, "{\"user\\u005fid\":\"u\",\"event_type\":\"a\"}"},
        {1, "{\"user_id\":\"u\",\"event_type\":\"a\",\"extra\":[1,{}],\"x\":null}"},
        {1, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-04-25T14:32:00Z\"}"},
        {1, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-04-25T14:32:00.123Z\"}"},
        {1, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-04-25t14:32:00.123456789z\"}"},
        {1, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-04-25T14:32:00+05:30\"}"},
        {1, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-04-25T14:32:00.5-23:59\"}"},
        {1, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2024-02-29T23:59:60Z\"}"},
        {1, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2000-02-29T00:00:00Z\"}"},
        {1, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-12-31T23:59:59\\u005a\"}"},
        {1, "{\"user_id\":1,\"user_id\":\"u\",\"event_type\":\"a\"}"},   /* last wins */

        {0, "{}"},
        {0, "{\"event_type\":\"a\"}"},
        {0, "{\"user_id\":\"u\"}"},
        {0, "{\"user_id\":\"\",\"event_type\":\"a\"}"},
        {0, "{\"user_id\":42,\"event_type\":\"a\"}"},
        {0, "{\"user_id\":null,\"event_type\":\"a\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"PageViewed\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"page-viewed\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"1abc\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"_abc\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"ab c\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"caf\xc3\xa9\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\\u0000\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":[\"a\"]}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":null}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":1714000000}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-04-25\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-04-25T14:32:00\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-04-25 14:32:00Z\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-13-01T00:00:00Z\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-00-01T00:00:00Z\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-04-31T00:00:00Z\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-02-29T00:00:00Z\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"1900-02-29T00:00:00Z\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-04-00T00:00:00Z\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-04-25T24:00:00Z\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-04-25T14:60:00Z\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-04-25T14:32:61Z\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-04-25T14:32:00.Z\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-04-25T14:32:00+24:00\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-04-25T14:32:00+0530\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-04-25T14:32:00ZZ\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"26-04-25T14:32:00Z\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"occurred_at\":\"2026-4-25T14:32:00Z\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"payload\":[]}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"payload\":\"{}\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"payload\":null}"},
        {0, "[{\"user_id\":\"u\",\"event_type\":\"a\"}]"},
        {0, "\"x\""},
        {0, ""},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\"} {}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\""},
        {0, "{\"user_id\":\"u\"\"event_type\":\"a\"}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"p\":{\"k\":1,}}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"p\":[1 2]}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"p\":+1}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"p\":-}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"p\":1e}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"p\":Infinity}"},
        {0, "{\"user_id\":\"u\",\"event_type\":\"a\",\"p\":nul}"},
        {0, "{\"user_id\":\"u\x01\",\"event_type\":\"a\"}"},
        {0, "{\"user_id\":\"\xe2\x82\",\"event_type\":\"a\"}"},
        {0, "{\"user_id\":\"\xf4\x90\x80\x80\",\"event_type\":\"a\"}"},
        {0, "{\"user_id\":\"\\uZZZZ\",\"event_type\":\"a\"}"},
        {0, "{\"user_id\":\"\\a\",\"event_type\":\"a\"}"},
        {0, "{user_id:\"u\",\"event_type\":\"a\"}"},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        cr_assert_eq(sink_event_valid(t[i].json, strlen(t[i].json)), t[i].ok,
                     "case %zu: %s", i, t[i].json);
}

Test(sink_event_valid, deep_nesting_is_bounded)
{
    size_t depth = 100000, n = 0;
    char *b = malloc(depth * 2 + 128);
    n += (size_t)sprintf(b, "{\"user_id\":\"u\",\"event_type\":\"a\",\"payload\":{\"x\":");
    for (size_t i = 0; i < depth; i++) b[n++] = '[';
    for (size_t i = 0; i < depth; i++) b[n++] = ']';
    n += (size_t)sprintf(b + n, "}}");
    cr_assert_eq(sink_event_valid(b, n), 0);   /* refused, no stack overflow */
    free(b);
}

Test(sink_event_valid, every_prefix_of_a_valid_event_is_invalid)
{
    size_t n = strlen(EV_OK);
    cr_assert_eq(sink_event_valid(EV_OK, n), 1);
    for (size_t i = 0; i < n; i++) {
        char *c = malloc(i ? i : 1);   /* exact size: ASan catches over-reads */
        memcpy(c, EV_OK, i);
        cr_assert_eq(sink_event_valid(c, i), 0, "prefix %zu", i);
        free(c);
    }
    cr_assert_eq(sink_event_valid(NULL, 0), 0);
}
