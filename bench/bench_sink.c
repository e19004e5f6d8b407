/* SPDX-License-Identifier: MIT */
/*
 * bench_sink.c -- throughput of segops-sink on the batch endpoint.
 *
 * Sends N requests of 500 pre-rendered, realistic events over one
 * keep-alive connection with plain blocking sockets (one request in
 * flight at a time), checks every answer is 202 with all events queued,
 * and prints events/s and requests/s with the machine it ran on.
 *
 *   bench_sink [--requests N] [--events K] [--connect HOST:PORT]
 *              [--key KEY] [--jsonl FILE]
 *
 * Without --connect the sink runs in this process (on 127.0.0.1, an
 * ephemeral port); --jsonl then makes it write the events to FILE.
 */
#include "bench_common.h"
#include "sink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define NBODIES 8

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_sink: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* One event in the shape libsegops sends: ~230-300 bytes. */
static size_t render_event(char *b, size_t cap, unsigned seed)
{
    static const char *types[] = {"page_viewed", "order_placed",
                                  "ad_impression", "quote_requested",
                                  "context_identified"};
    static const char *pages[] = {"/", "/pricing", "/docs/getting-started",
                                  "/checkout?step=2", "/blog/\\\"quoted\\\""};
    unsigned ms = seed % 1000, sec = seed % 60, min = (seed / 60) % 60;
    int n = snprintf(
        b, cap,
        "{\"user_id\":\"user-%08u\",\"event_type\":\"%s\","
        "\"occurred_at\":\"2026-04-25T14:%02u:%02u.%03uZ\","
        "\"payload\":{\"order_id\":\"ord-%u\",\"total\":%u.%02u,"
        "\"currency\":\"EUR\",\"items\":%u,\"first_visit\":%s,"
        "\"page\":\"%s\",\"referrer\":null,\"tags\":[\"a\",\"b\",\"c\"],"
        "\"ua\":\"Mozilla/5.0 (X11; Linux x86_64) caf\xc3\xa9\"}}",
        seed * 2654435761u % 100000000u, types[seed % 5], min, sec, ms,
        seed, seed % 1000, seed % 100, seed % 9 + 1,
        seed % 2 ? "true" : "false", pages[seed % 5]);
    return (size_t)n;
}

/* A full request with a 16-hex-digit Idempotency-Key patched per send. */
struct request {
    char *buf;
    size_t len;
    size_t key_at;
};

static void render_request(struct request *r, const char *key, int nev,
                           unsigned seed0, size_t *body_len)
{
    size_t cap = (size_t)nev * 512 + 1024, bl = 0, hl;
    char *body = malloc(cap), head[512];
    if (!body) die("malloc");
    bl += (size_t)sprintf(body, "{\"events\":[");
    for (int i = 0; i < nev; i++) {
        if (i) body[bl++] = ',';
        bl += render_event(body + bl, cap - bl, seed0 + (unsigned)i);
    }
    bl += (size_t)sprintf(body + bl, "]}");
    hl = (size_t)snprintf(head, sizeof head,
                          "POST /api/ingestion/track/batch/ HTTP/1.1\r\n"
                          "Host: 127.0.0.1\r\n"
                          "Authorization: ApiKey %s\r\n"
                          "Content-Type: application/json\r\n"
                          "User-Agent: bench_sink\r\n"
                          "Idempotency-Key: 0000000000000000\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          key, bl);
    r->buf = malloc(hl + bl);
    if (!r->buf) die("malloc");
    memcpy(r->buf, head, hl);
    memcpy(r->buf + hl, body, bl);
    r->len = hl + bl;
    r->key_at = (size_t)(strstr(r->buf, "Idempotency-Key: ") - r->buf) + 17;
    *body_len = bl;
    free(body);
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            die("send");
        }
        p += k;
        n -= (size_t)k;
    }
}

/* Reads one answer (Content-Length framed); returns the status and
 * copies the body into body (NUL-terminated). */
static int read_answer(int fd, char *body, size_t cap)
{
    static char buf[8192];
    static size_t used;
    size_t hl = 0, cl = 0;
    char *t;
    int st;
    for (;;) {
        if (used >= 4 && (t = memmem(buf, used, "\r\n\r\n", 4))) {
            hl = (size_t)(t - buf) + 4;
            break;
        }
        ssize_t k = recv(fd, buf + used, sizeof buf - used, 0);
        if (k <= 0) {
            fprintf(stderr, "bench_sink: connection closed\n");
            exit(1);
        }
        used += (size_t)k;
    }
    if (sscanf(buf, "HTTP/1.1 %d", &st) != 1) st = -1;
    t = memmem(buf, hl, "Content-Length: ", 16);
    if (t) cl = strtoul(t + 16, NULL, 10);
    while (used < hl + cl) {
        ssize_t k = recv(fd, buf + used, sizeof buf - used, 0);
        if (k <= 0) {
            fprintf(stderr, "bench_sink: connection closed\n");
            exit(1);
        }
        used += (size_t)k;
    }
    size_t m = cl < cap - 1 ? cl : cap - 1;
    memcpy(body, buf + hl, m);
    body[m] = '\0';
    memmove(buf, buf + hl + cl, used - hl - cl);
    used -= hl + cl;
    return st;
}

static void print_machine(void)
{
    char line[512], model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    struct utsname u;
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) {
                    snprintf(model, sizeof model, "%s", c + 2);
                    model[strcspn(model, "\n")] = '\0';
                }
                break;
            }
        }
        fclose(f);
    }
    uname(&u);
    printf("machine: %s, nproc %ld, %s %s %s\n", model,
           sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release, u.machine);
}

int main(int argc, char **argv)
{
    long nreq = 20000;
    int nev = 500;
    const char *connect_to = NULL, *key = "sk_test", *jsonl = NULL;
    struct sink *s = NULL;
    uint16_t port = 0;
    char host[256] = "127.0.0.1";
    struct request reqs[NBODIES];
    size_t body_bytes = 0;
    int fd, one = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--requests") && v) nreq = bench_num(v), i++;
        else if (!strcmp(a, "--events") && v) nev = (int)bench_num(v), i++;
        else if (!strcmp(a, "--connect") && v) connect_to = v, i++;
        else if (!strcmp(a, "--key") && v) key = v, i++;
        else if (!strcmp(a, "--jsonl") && v) jsonl = v, i++;
        else {
            fprintf(stderr,
                    "usage: bench_sink [--requests N] [--events K] "
                    "[--connect HOST:PORT] [--key KEY] [--jsonl FILE]\n");
            return 2;
        }
    }
    if (nreq < 1 || nev < 1 || nev > 500) {
        fprintf(stderr, "bench_sink: bad --requests/--events\n");
        return 2;
    }

    if (connect_to) {
        const char *c = strrchr(connect_to, ':');
        if (!c || (size_t)(c - connect_to) >= sizeof host) {
            fprintf(stderr, "bench_sink: --connect HOST:PORT\n");
            return 2;
        }
        memcpy(host, connect_to, (size_t)(c - connect_to));
        host[c - connect_to] = '\0';
        port = (uint16_t)bench_num_in(c + 1, 1, 65535);
    } else {
        struct sink_opts o = {.api_key = key, .jsonl_path = jsonl};
        s = sink_start(&o, &port);
        if (!s) die("sink_start");
    }

    for (int i = 0; i < NBODIES; i++) {
        size_t bl;
        render_request(&reqs[i], key, nev, (unsigned)i * 7919u, &bl);
        body_bytes += bl;
    }

    {
        struct addrinfo hints = {0}, *ai;
        char ps[8];
        hints.ai_socktype = SOCK_STREAM;
        snprintf(ps, sizeof ps, "%u", port);
        if (getaddrinfo(host, ps, &hints, &ai)) {
            fprintf(stderr, "bench_sink: cannot resolve %s\n", host);
            return 1;
        }
        fd = socket(ai->ai_family, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
            die("connect");
        freeaddrinfo(ai);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }

    /* warm-up: grows the sink's buffer, faults in pages */
    char ans[256], expect[64];
    snprintf(expect, sizeof expect, "{\"queued\":%d,\"skipped\":0}", nev);
    long total = nreq + 200;
    double t0 = 0;
    for (long i = 0; i < total; i++) {
        struct request *r = &reqs[i % NBODIES];
        char key16[17];
        if (i == 200) t0 = now_s();
        snprintf(key16, sizeof key16, "%016lx", (unsigned long)i);
        memcpy(r->buf + r->key_at, key16, 16);
        send_all(fd, r->buf, r->len);
        int st = read_answer(fd, ans, sizeof ans);
        if (st != 202 || strcmp(ans, expect) != 0) {
            fprintf(stderr, "bench_sink: unexpected answer %d %s\n", st, ans);
            return 1;
        }
    }
    double dt = now_s() - t0;
    close(fd);

    print_machine();
    printf("sink: %s, one keep-alive connection, one request in flight%s\n",
           connect_to ? connect_to : "in-process", jsonl ? ", jsonl on" : "");
    printf("requests: %ld x %d events, %.0f bytes/body average\n", nreq, nev,
           (double)body_bytes / NBODIES);
    printf("time: %.3f s\n", dt);
    printf("events/s: %.0f\n", (double)nreq * nev / dt);
    printf("requests/s: %.0f\n", (double)nreq / dt);
    printf("MB/s (bodies): %.1f\n",
           (double)nreq * ((double)body_bytes / NBODIES) / dt / 1e6);
    if (s) {
        struct sink_counts k;
        sink_get_counts(s, &k);
        if (k.queued != (uint64_t)total * (uint64_t)nev) {
            fprintf(stderr, "bench_sink: sink counted %llu queued\n",
                    (unsigned long long)k.queued);
            return 1;
        }
        sink_stop(s);
    }
    for (int i = 0; i < NBODIES; i++) free(reqs[i].buf);
    return 0;
}
