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
