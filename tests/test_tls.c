/*
 * TLS integration tests: the client -> nginx (TLS termination, a throwaway
 * CA made by openssl at test time) -> segops-sink.  One nginx serves five
 * loopback ports:
 *   good      localhost, signed by the test CA, keep-alive on
 *   wrong     a certificate for other.invalid
 *   expired   localhost, expired in 2020
 *   rogue     localhost, signed by a CA the client does not trust
 *   close     like good, but closes the connection after every answer (so
 *             every batch reconnects and can resume the TLS session)
 * nginx logs "$server_port $ssl_session_reused $connection $status" per
 * request, which is how resumption and connection reuse are checked from
 * the server's side.  Runs under both I/O drivers (SEGOPS_IO).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "queue.h" /* SG_TSAN */
#include "tls.h"

enum { P_GOOD, P_WRONG, P_EXPIRED, P_ROGUE, P_CLOSE, NPORTS };

static struct harness H;
static char dir[64];
static uint16_t ports[NPORTS];
static pid_t nginx_pid;

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t l = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

static int port_open(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static void server_block(FILE *f, uint16_t port, const char *cert, int keepalive)
{
    fprintf(f,
            "  server {\n"
            "    listen 127.0.0.1:%u ssl;\n"
            "    server_name localhost;\n"
            "    ssl_certificate %s/%s.pem;\n"
            "    ssl_certificate_key %s/%s.key;\n"
            "    keepalive_timeout %s;\n"
            "    location / {\n"
            "      proxy_pass http://sink;\n"
            "      proxy_http_version 1.1;\n"
            "      proxy_set_header Connection \"\";\n"
            "    }\n"
            "  }\n",
            (unsigned)port, dir, cert, dir, cert, keepalive ? "60s" : "0");
}

static void start_nginx(uint16_t sink_port)
{
    snprintf(dir, sizeof(dir), "/tmp/segops-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s/tls/mkcerts.sh %s", SEGOPS_TESTS_DIR, dir);
    cr_assert_eq(system(cmd), 0, "making certificates failed");
    for (int i = 0; i < NPORTS; i++)
        ports[i] = free_port();
    char path[128];
    snprintf(path, sizeof(path), "%s/nginx.conf", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "%s"
            "worker_processes 1;\n"
            "daemon off;\n"
            "pid %s/nginx.pid;\n"
            "error_log %s/error.log warn;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "  log_format reuse '$server_port $ssl_session_reused $connection $status';\n"
            "  access_log %s/access.log reuse;\n"
            "  client_body_temp_path %s/body;\n"
            "  proxy_temp_path %s/proxy;\n"
            "  fastcgi_temp_path %s/fcgi;\n"
            "  uwsgi_temp_path %s/uwsgi;\n"
            "  scgi_temp_path %s/scgi;\n"
            "  client_max_body_size 64m;\n"
            "  client_body_buffer_size 4m;\n"
            "  keepalive_requests 1000000;\n"
            "  ssl_protocols TLSv1.2;\n"
            "  ssl_session_cache shared:segops:1m;\n"
            "  ssl_session_tickets off;\n"
            "  upstream sink { server 127.0.0.1:%u; keepalive 4; }\n",
            geteuid() == 0 ? "user root;\n" : "", dir, dir, dir, dir, dir, dir, dir, dir,
            (unsigned)sink_port);
    server_block(f, ports[P_GOOD], "server", 1);
    server_block(f, ports[P_WRONG], "wronghost", 1);
    server_block(f, ports[P_EXPIRED], "expired", 1);
    server_block(f, ports[P_ROGUE], "rogue", 1);
    server_block(f, ports[P_CLOSE], "server", 0);
    fprintf(f, "}\n");
    fclose(f);

    nginx_pid = fork();
    cr_assert_geq(nginx_pid, 0);
    if (nginx_pid == 0) {
        char elog[128];
        snprintf(elog, sizeof(elog), "%s/error.log", dir);
        execlp("nginx", "nginx", "-p", dir, "-e", elog, "-c", path, (char *)NULL);
        _exit(127);
    }
    for (int waited = 0; waited < 10000; waited += 20) {
        int all = 1;
        for (int i = 0; i < NPORTS; i++)
            all = all && port_open(ports[i]);
        if (all)
            return;
        h_sleep_ms(20);
    }
    cr_assert_fail("nginx did not start (see %s/error.log)", dir);
}

static void stop_all(void)
{
    h_stop(&H);
    if (nginx_pid > 0) {
        kill(nginx_pid, SIGTERM);
        waitpid(nginx_pid, NULL, 0);
        nginx_pid = 0;
    }
    if (dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
        dir[0] = 0;
    }
}

TestSuite(tls, .fini = stop_all, .timeout = 120);

/* Sink + nginx + a client for port p trusting the test CA. */
static int setup(int p, uint32_t per, segops_options *o)
{
    h_start_sink(&H, NULL, per);
    start_nginx(H.port);
    static char url[64], ca[96];
    snprintf(url, sizeof(url), "https://localhost:%u", (unsigned)ports[p]);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    o->api_url = url;
    o->ca_file = ca;
    o->flush_interval_ms = 60000;
    return h_client(&H, o);
}

static int track_tagged(int thread, int from, int n)
{
    int ok = 0;
    for (int i = from; i < from + n; i++) {
        segops_prop p[] = {SEGOPS_I64("thread", thread), SEGOPS_I64("seq", i)};
        ok += segops_track(H.c, &(segops_event){"user-1", "page_viewed", NULL, p, 2}) == 0;
    }
    return ok;
}

/* Lines of nginx's access log for a port: counts of resumed and of
 * distinct connections.  nginx writes a line after answering, so wait (up
 * to 2 s) for the expected number of lines. */
static void access_log(uint16_t port, int expect, int *lines, int *reused, int *conns)
{
    char path[128], line[256];
    snprintf(path, sizeof(path), "%s/access.log", dir);
    *lines = *reused = *conns = 0;
    long last = -1;
    for (int tries = 0; tries < 100 && *lines < expect; tries++) {
        *lines = *reused = *conns = 0;
        last = -1;
        FILE *f = fopen(path, "r");
        if (f) {
            while (fgets(line, sizeof(line), f)) {
                unsigned p;
                char r[8];
                long conn;
                int status;
                if (sscanf(line, "%u %7s %ld %d", &p, r, &conn, &status) != 4 || p != port)
                    continue;
                (*lines)++;
                *reused += r[0] == 'r';
                if (conn != last)
                    (*conns)++;
                last = conn;
            }
            fclose(f);
        }
        if (*lines < expect)
            h_sleep_ms(20);
    }
}

Test(tls, delivers_over_a_verified_chain_and_reuses_the_connection)
{
    segops_options o = {0};
    cr_assert_eq(setup(P_GOOD, 1000, &o), 0);
    for (int b = 0; b < 5; b++) {
        cr_assert_eq(track_tagged(0, b * 20, 20), 20);
        cr_assert_eq(segops_flush(H.c, 10000), 0, "batch %d", b);
    }
    segops_counters s;
    segops_stats(H.c, &s);
    cr_expect_eq(s.delivered, 100);
    cr_expect_eq(s.tls_handshakes, 1, "keep-alive: one handshake for five batches");
    cr_expect_eq(H.tagged, 100);
    cr_expect_eq(H.dup_tagged, 0);
    int lines, reused, conns;
    access_log(ports[P_GOOD], 5, &lines, &reused, &conns);
    cr_expect_eq(lines, 5);
    cr_expect_eq(conns, 1, "nginx saw %d connections", conns);
}

Test(tls, resumes_the_session_after_the_server_drops_the_connection)
{
    segops_options o = {0};
    cr_assert_eq(setup(P_CLOSE, 1000, &o), 0);
    for (int b = 0; b < 4; b++) {
        cr_assert_eq(track_tagged(0, b * 10, 10), 10);
        cr_assert_eq(segops_flush(H.c, 10000), 0, "batch %d", b);
    }
    segops_counters s;
    segops_stats(H.c, &s);
    cr_expect_eq(s.delivered, 40);
    cr_expect_eq(s.tls_handshakes, 4);
    cr_expect_eq(s.tls_resumed, 3, "client saw %llu resumptions",
                 (unsigned long long)s.tls_resumed);
    int lines, reused, conns;
    access_log(ports[P_CLOSE], 4, &lines, &reused, &conns);
    cr_expect_eq(lines, 4);
    cr_expect_eq(reused, 3, "nginx's $ssl_session_reused said %d of %d", reused, lines);
}

/* A refused certificate: the batch fails with SEGOPS_ETLS after the retry
 * policy, the reason is logged, every event is accounted for. */
static void expect_refused(int p, const char *reason)
{
    segops_options o = {0};
    o.max_retries = 1;
    cr_assert_eq(setup(p, 0, &o), 0);
    cr_assert_eq(track_tagged(0, 0, 5), 5);
    cr_expect_eq(segops_flush(H.c, 10000), SEGOPS_ETLS);
    segops_counters s;
    segops_stats(H.c, &s);
    cr_expect_eq(s.failed, 5);
    cr_expect_eq(s.delivered, 0);
    cr_expect_eq(s.retries, 1);
    cr_expect_eq(s.tls_handshakes, 0);
    h_expect_invariant(H.c);
    cr_expect_eq(H.last.result, SEGOPS_ETLS);
    cr_expect(strstr(H.log, reason) != NULL, "log lacks \"%s\": %s", reason, H.log);
    cr_expect(strstr(H.log, "sk_test") == NULL);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.requests, 0, "a refused server must never see the request");
}

Test(tls, refuses_a_certificate_from_another_ca)
{
    expect_refused(P_ROGUE, "not trusted");
}

Test(tls, refuses_a_certificate_for_another_host)
{
    expect_refused(P_WRONG, "does not match the host name");
}

Test(tls, refuses_an_expired_certificate)
{
    expect_refused(P_EXPIRED, "expired");
}

Test(tls, refuses_the_server_when_trusting_only_the_system_bundle)
{
    segops_options o = {0};
    o.max_retries = SEGOPS_RETRIES_NONE;
    cr_assert_eq(setup(P_GOOD, 0, &o), 0);
    segops_shutdown(H.c, 1000, NULL);
    H.c = NULL;
    /* same server, default trust: the throwaway CA is not in it */
    o.ca_file = NULL;
    if (access(SG_TLS_DEFAULT_CA, R_OK) != 0) {
        cr_log_info("no system CA bundle: creation must fail clearly");
        cr_expect_eq(h_client(&H, &o), SEGOPS_ETLS);
        return;
    }
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_tagged(0, 0, 1), 1);
    cr_expect_eq(segops_flush(H.c, 10000), SEGOPS_ETLS);
    cr_expect(strstr(H.log, "not trusted") != NULL, "%s", H.log);
}

Test(tls, creation_fails_on_an_unreadable_or_empty_ca_file)
{
    segops_options o = {0};
    o.api_url = "https://localhost:1";
    o.api_key = "sk_test";
    o.ca_file = "/nonexistent/ca.pem";
    segops_client *c;
    cr_expect_eq(segops_client_new(&o, &c), SEGOPS_ETLS);
    o.ca_file = "/dev/null";
    cr_expect_eq(segops_client_new(&o, &c), SEGOPS_ETLS);
}

struct prod {
    int id, n, ok;
};

static void *producer(void *arg)
{
    struct prod *p = arg;
    for (int i = 0; i < p->n; i++) {
        segops_prop props[] = {SEGOPS_I64("thread", p->id), SEGOPS_I64("seq", i)};
        segops_event ev = {"user-1", "page_viewed", NULL, props, 2};
        int rc;
        while ((rc = segops_track(H.c, &ev)) == SEGOPS_EFULL)
            sched_yield();
        p->ok += rc == 0;
    }
    return NULL;
}

Test(tls, eight_threads_deliver_every_event_exactly_once_over_tls, .timeout = 180)
{
#ifdef SG_TSAN
    enum { T = 8, N = 5000 };
#else
    enum { T = 8, N = 50000 };
#endif
    segops_options o = {0};
    o.max_producers = T;
    cr_assert_eq(setup(P_GOOD, N, &o), 0);
    pthread_t th[T];
    struct prod p[T];
    for (int i = 0; i < T; i++) {
        p[i] = (struct prod){i, N, 0};
        pthread_create(&th[i], NULL, producer, &p[i]);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(p[i].ok, N);
    }
    cr_expect_eq(segops_flush(H.c, 120000), 0);
    segops_counters s;
    segops_stats(H.c, &s);
    cr_expect_eq(s.delivered, (uint64_t)T * N);
    cr_expect_eq(s.failed, 0);
    h_expect_invariant(H.c);
    pthread_mutex_lock(&H.mu);
    cr_expect_eq(H.tagged, (uint64_t)T * N);
    cr_expect_eq(H.dup_tagged, 0);
    uint64_t missing = 0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < N; i++)
            missing += H.seen[(size_t)t * N + i] != 1;
    pthread_mutex_unlock(&H.mu);
    cr_expect_eq(missing, 0);
}
