/* SPDX-License-Identifier: MIT */
/*
 * test_proxy_client.c -- the client behind a real HTTP proxy: tinyproxy
 * (Debian's tinyproxy-bin), started per test as a child process with a
 * generated configuration on a free loopback port.
 *
 *   http://   client -> tinyproxy -> segops-sink (absolute-form requests;
 *             the sink counts the Via header tinyproxy adds)
 *   https://  client -> tinyproxy (CONNECT tunnel) -> nginx (TLS, the
 *             fixture's throwaway CA) -> segops-sink
 *
 * Run once per I/O driver ($SEGOPS_IO).  Without tinyproxy the tests skip,
 * except under CI=true, where scripts/deps.sh has installed it and a
 * missing proxy is a failure.  No assertion depends on how fast anything
 * happens: only counts, outcomes and log lines.
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tls_fixture.h"

#define PER 500 /* events per producer thread */

static struct harness H;
static pid_t tp_pid;
static uint16_t tp_port;
static char tp_dir[64];

static int port_open(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static int have_tinyproxy(void)
{
    return system("command -v tinyproxy >/dev/null 2>&1") == 0;
}

/* Starts tinyproxy on a free port.  auth: "user pass" for BasicAuth, or
 * NULL; connect_port: the only port CONNECT may reach (0: any). */
static void tp_start(const char *auth, uint16_t connect_port)
{
    if (!have_tinyproxy()) {
        if (getenv("CI"))
            cr_assert_fail("tinyproxy is missing: scripts/deps.sh installs tinyproxy-bin");
        cr_skip_test("tinyproxy not installed (apt-get install tinyproxy-bin)");
    }
    snprintf(tp_dir, sizeof(tp_dir), "/tmp/segops-proxy-XXXXXX");
    cr_assert_not_null(mkdtemp(tp_dir));
    tp_port = tls_free_port();
    char conf[128];
    snprintf(conf, sizeof(conf), "%s/tinyproxy.conf", tp_dir);
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "Port %u\n"
            "Listen 127.0.0.1\n"
            "Timeout 60\n"
            "Allow 127.0.0.1\n"
            "MaxClients 64\n"
            "LogLevel Info\n"
            "LogFile \"%s/tinyproxy.log\"\n",
            (unsigned)tp_port, tp_dir);
    if (auth)
        fprintf(f, "BasicAuth %s\n", auth);
    if (connect_port)
        fprintf(f, "ConnectPort %u\n", (unsigned)connect_port);
    fclose(f);
    tp_pid = fork();
    cr_assert_geq(tp_pid, 0);
    if (tp_pid == 0) {
        /* its stderr (the "set a UserName" warning as root) stays out of
         * the test's output */
        if (!freopen("/dev/null", "w", stderr))
            _exit(126);
        execlp("tinyproxy", "tinyproxy", "-d", "-c", conf, (char *)NULL);
        _exit(127);
    }
    for (int waited = 0; waited < 10000; waited += 20) {
        if (port_open(tp_port))
            return;
        int st;
        if (waitpid(tp_pid, &st, WNOHANG) == tp_pid) {
            tp_pid = 0;
            cr_assert_fail("tinyproxy exited at start (status %d)", st);
        }
        h_sleep_ms(20);
    }
    cr_assert_fail("tinyproxy did not start");
}

static void tp_stop(void)
{
    if (tp_pid > 0) {
        kill(tp_pid, SIGTERM);
        waitpid(tp_pid, NULL, 0);
        tp_pid = 0;
    }
    if (tp_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tp_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tp_dir);
        tp_dir[0] = 0;
    }
}

/* Lines of tinyproxy's log holding `what` (its request lines read
 * "Request (file descriptor N): CONNECT host:port HTTP/1.1"). */
static int tp_log_count(const char *what)
{
    char path[128], line[1024];
    snprintf(path, sizeof(path), "%s/tinyproxy.log", tp_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, what) != NULL;
    fclose(f);
    return n;
}

static char proxy_url[128];

static const char *make_proxy_url(const char *userinfo)
{
    snprintf(proxy_url, sizeof(proxy_url), "http://%s%s127.0.0.1:%u", userinfo ? userinfo : "",
             userinfo ? "@" : "", (unsigned)tp_port);
    return proxy_url;
}

static void clear_env(void)
{
    static const char *const vars[] = {"http_proxy", "HTTP_PROXY", "https_proxy",
                                       "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                                       "no_proxy", "NO_PROXY"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

static void setup(void)
{
    clear_env();
    tp_pid = 0;
    tp_dir[0] = 0;
}

static void teardown(void)
{
    h_stop(&H);
    tls_nginx_stop();
    tp_stop();
}

TestSuite(proxy_client, .init = setup, .fini = teardown, .timeout = 120);

static int log_has(const char *s)
{
    pthread_mutex_lock(&H.mu);
    int r = strstr(H.log, s) != NULL;
    pthread_mutex_unlock(&H.mu);
    return r;
}

/* https://localhost:<nginx> with the fixture's CA. */
static segops_options tls_opts(char *url, size_t cap, char *ca, size_t cacap)
{
    tls_nginx_start(H.port);
    snprintf(url, cap, "https://localhost:%u", (unsigned)tls_ports[TLS_GOOD]);
    snprintf(ca, cacap, "%s/ca.pem", tls_dir);
    segops_options o = h_opts();
    o.api_url = url;
    o.ca_file = ca;
    return o;
}

/* Tracks n events and flushes; returns the flush's result. */
static int send_some(int n)
{
    for (int i = 0; i < n; i++) {
        segops_prop props[] = {SEGOPS_I64("thread", 0), SEGOPS_I64("seq", i)};
        segops_event ev = {.user_id = "user-1", .event_type = "page_viewed", .payload = props,
                           .payload_len = 2};
        cr_assert_eq(segops_track(H.c, &ev), 0);
    }
    return segops_flush(H.c, 30000);
}

/* ------------------------------------------------------------ http:// */

Test(proxy_client, http_through_the_proxy_delivers_everything)
{
    h_start_sink(&H, NULL, PER);
    tp_start(NULL, 0);
    segops_options o = h_opts();
    o.proxy_url = make_proxy_url(NULL);
    cr_assert_eq(h_client(&H, &o), 0);
    h_exactly_once(&H, 2, PER, 30000);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_gt(k.batch_requests, 0);
    cr_expect_eq(k.via_requests, k.requests, "every request came through the proxy: %llu of %llu",
                 (unsigned long long)k.via_requests, (unsigned long long)k.requests);
    char want[64];
    snprintf(want, sizeof(want), "POST http://127.0.0.1:%u/api/", (unsigned)H.port);
    cr_expect_gt(tp_log_count(want), 0, "absolute-form requests at the proxy");
    cr_expect(log_has("through proxy http://127.0.0.1:"), "%s", H.log);
}

Test(proxy_client, http_proxy_lowercase_from_the_environment_is_honoured_uppercase_is_not)
{
    h_start_sink(&H, NULL, PER);
    tp_start(NULL, 0);
    setenv("http_proxy", make_proxy_url(NULL), 1);
    cr_assert_eq(h_client(&H, NULL), 0);
    cr_expect_eq(send_some(20), 0);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.queued, 20);
    cr_expect_eq(k.via_requests, k.requests);
    cr_expect_gt(k.via_requests, 0);
    segops_shutdown(H.c, 5000, NULL);
    H.c = NULL;
    /* HTTP_PROXY is the httpoxy variable: never read */
    unsetenv("http_proxy");
    setenv("HTTP_PROXY", make_proxy_url(NULL), 1);
    cr_assert_eq(h_client(&H, NULL), 0);
    cr_expect_eq(send_some(20), 0);
    struct sink_counts k2;
    h_counts(&H, &k2);
    cr_expect_eq(k2.queued, 40);
    cr_expect_eq(k2.via_requests, k.via_requests, "sent directly");
}

Test(proxy_client, http_no_proxy_bypasses_the_proxy)
{
    h_start_sink(&H, NULL, PER);
    /* a proxy that is not there: only a bypass can deliver */
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    setenv("NO_PROXY", "localhost, 127.0.0.1", 1);
    cr_assert_eq(h_client(&H, NULL), 0);
    cr_expect_eq(send_some(20), 0);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.queued, 20);
    cr_expect_eq(k.via_requests, 0);
    cr_expect(log_has("NO_PROXY exempts it"), "%s", H.log);
}

Test(proxy_client, http_wrong_credentials_are_not_retried)
{
    h_start_sink(&H, NULL, PER);
    tp_start("user pass", 0);
    segops_options o = h_opts();
    o.proxy_url = make_proxy_url("user:wrong-secret");
    cr_assert_eq(h_client(&H, &o), 0);
    /* tinyproxy answers wrong credentials with 401, which through a proxy
     * cannot be told from the server's own 401: a rejection either way */
    cr_expect_eq(send_some(20), SEGOPS_EREJECTED);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.requests, 0, "nothing reached the server");
    cr_expect_eq(H.last.status, 401);
    cr_expect_eq(H.last.attempts, 1);
    cr_expect_not(log_has("wrong-secret"), "the password is never logged");
}

Test(proxy_client, http_missing_credentials_get_407_named_and_not_retried)
{
    h_start_sink(&H, NULL, PER);
    tp_start("user pass", 0);
    segops_options o = h_opts();
    o.proxy_url = make_proxy_url(NULL);
    cr_assert_eq(h_client(&H, &o), 0);
    cr_expect_eq(send_some(20), SEGOPS_EPROXY);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.requests, 0, "nothing reached the server");
    cr_expect_eq(H.last.result, SEGOPS_EPROXY);
    cr_expect_eq(H.last.attempts, 1, "a 407 is not retried");
    cr_expect(strstr(H.last_detail, "proxy authentication failed (407)"), "%s", H.last_detail);
    cr_expect(log_has("proxy authentication failed (407)"), "%s", H.log);
    cr_expect_eq(H.last.status, 407);
    h_expect_invariant(H.c);
}

Test(proxy_client, http_right_credentials_deliver)
{
    h_start_sink(&H, NULL, PER);
    tp_start("user pass", 0);
    segops_options o = h_opts();
    o.proxy_url = make_proxy_url("user:pass");
    cr_assert_eq(h_client(&H, &o), 0);
    h_exactly_once(&H, 1, PER, 30000);
    cr_expect_not(log_has("user:pass"));
}

/* ----------------------------------------------------------- https:// */

Test(proxy_client, https_through_a_connect_tunnel_delivers_everything)
{
    char url[64], ca[128];
    h_start_sink(&H, NULL, PER);
    segops_options o = tls_opts(url, sizeof(url), ca, sizeof(ca));
    tp_start(NULL, tls_ports[TLS_GOOD]);
    o.proxy_url = make_proxy_url(NULL);
    cr_assert_eq(h_client(&H, &o), 0);
    h_exactly_once(&H, 2, PER, 30000);
    char want[64];
    snprintf(want, sizeof(want), "CONNECT localhost:%u ", (unsigned)tls_ports[TLS_GOOD]);
    cr_expect_gt(tp_log_count(want), 0, "the tunnel went through the proxy");
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(H.c, &s);
    cr_expect_gt(s.tls_handshakes, 0, "TLS with the server inside the tunnel");
}

Test(proxy_client, https_proxy_from_the_environment_is_honoured)
{
    char url[64], ca[128];
    h_start_sink(&H, NULL, PER);
    segops_options o = tls_opts(url, sizeof(url), ca, sizeof(ca));
    tp_start(NULL, tls_ports[TLS_GOOD]);
    setenv("HTTPS_PROXY", make_proxy_url(NULL), 1);
    cr_assert_eq(h_client(&H, &o), 0);
    cr_expect_eq(send_some(50), 0);
    char want[64];
    snprintf(want, sizeof(want), "CONNECT localhost:%u ", (unsigned)tls_ports[TLS_GOOD]);
    cr_expect_gt(tp_log_count(want), 0);
    cr_expect(log_has("(from HTTPS_PROXY)"), "%s", H.log);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.queued, 50);
}

Test(proxy_client, https_no_proxy_bypasses_the_proxy)
{
    char url[64], ca[128];
    h_start_sink(&H, NULL, PER);
    segops_options o = tls_opts(url, sizeof(url), ca, sizeof(ca));
    setenv("HTTPS_PROXY", "http://127.0.0.1:1", 1); /* nobody there */
    setenv("no_proxy", ".example.com,localhost", 1);
    cr_assert_eq(h_client(&H, &o), 0);
    cr_expect_eq(send_some(50), 0);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.queued, 50);
    cr_expect(log_has("no_proxy exempts it"), "%s", H.log);
}

Test(proxy_client, https_wrong_credentials_get_407_named_and_not_retried)
{
    char url[64], ca[128];
    h_start_sink(&H, NULL, PER);
    segops_options o = tls_opts(url, sizeof(url), ca, sizeof(ca));
    tp_start("user pass", tls_ports[TLS_GOOD]);
    o.proxy_url = make_proxy_url("user:wrong-secret");
    cr_assert_eq(h_client(&H, &o), 0);
    cr_expect_eq(send_some(20), SEGOPS_EPROXY);
    cr_expect_eq(H.last.result, SEGOPS_EPROXY);
    cr_expect_eq(H.last.attempts, 1, "an authentication failure is not retried");
    /* tinyproxy answers wrong credentials with 401, missing ones with 407 */
    cr_expect(strstr(H.last_detail, "proxy authentication failed (401)"), "%s", H.last_detail);
    cr_expect(log_has("proxy authentication failed (401)"), "%s", H.log);
    cr_expect_not(log_has("wrong-secret"));
    cr_expect_eq(tp_log_count("CONNECT localhost:"), 1, "one CONNECT: not retried");
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.requests, 0);
    h_expect_invariant(H.c);
}

Test(proxy_client, https_missing_credentials_get_407_named_and_not_retried)
{
    char url[64], ca[128];
    h_start_sink(&H, NULL, PER);
    segops_options o = tls_opts(url, sizeof(url), ca, sizeof(ca));
    tp_start("user pass", tls_ports[TLS_GOOD]);
    o.proxy_url = make_proxy_url(NULL);
    cr_assert_eq(h_client(&H, &o), 0);
    cr_expect_eq(send_some(20), SEGOPS_EPROXY);
    cr_expect_eq(H.last.result, SEGOPS_EPROXY);
    cr_expect_eq(H.last.attempts, 1, "a 407 is not retried");
    cr_expect(strstr(H.last_detail, "proxy authentication failed (407)") &&
                  strstr(H.last_detail, "put user:password@ in the proxy URL"),
              "%s", H.last_detail);
    cr_expect(log_has("proxy authentication failed (407)"), "%s", H.log);
    cr_expect_eq(tp_log_count("CONNECT localhost:"), 1, "one CONNECT: not retried");
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.requests, 0);
    h_expect_invariant(H.c);
}

Test(proxy_client, https_right_credentials_deliver)
{
    char url[64], ca[128];
    h_start_sink(&H, NULL, PER);
    segops_options o = tls_opts(url, sizeof(url), ca, sizeof(ca));
    tp_start("user pass", tls_ports[TLS_GOOD]);
    /* percent-encoded user info is decoded: "p%61ss" is "pass" */
    o.proxy_url = make_proxy_url("user:p%61ss");
    cr_assert_eq(h_client(&H, &o), 0);
    h_exactly_once(&H, 1, PER, 30000);
    cr_expect(log_has("with credentials"), "%s", H.log);
    cr_expect_not(log_has("p%61ss"));
}

Test(proxy_client, https_connect_refused_is_named_with_its_status)
{
    char url[64], ca[128];
    h_start_sink(&H, NULL, PER);
    segops_options o = tls_opts(url, sizeof(url), ca, sizeof(ca));
    /* CONNECT only to another port: tinyproxy answers 403 */
    tp_start(NULL, (uint16_t)(tls_ports[TLS_GOOD] == 1 ? 2 : 1));
    o.proxy_url = make_proxy_url(NULL);
    cr_assert_eq(h_client(&H, &o), 0);
    cr_expect_eq(send_some(20), SEGOPS_EPROXY);
    cr_expect_eq(H.last.result, SEGOPS_EPROXY);
    cr_expect_eq(H.last.attempts, 1, "a 403 is the proxy's policy: not retried");
    cr_expect(strstr(H.last_detail, "refused CONNECT to localhost") &&
                  strstr(H.last_detail, "HTTP 403"),
              "%s", H.last_detail);
    cr_expect(log_has("HTTP 403"), "%s", H.log);
}

Test(proxy_client, an_unreachable_proxy_is_a_connect_failure_and_retried)
{
    h_start_sink(&H, NULL, PER);
    segops_options o = h_opts();
    char dead[64];
    snprintf(dead, sizeof(dead), "http://127.0.0.1:%u", (unsigned)tls_free_port());
    o.proxy_url = dead;
    o.max_retries = 1;
    o.max_backoff_ms = 100;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_expect_eq(send_some(5), SEGOPS_ECONNECT);
    cr_expect_eq(H.last.result, SEGOPS_ECONNECT);
    cr_expect_eq(H.last.attempts, 2, "retried like any failed connect");
    cr_expect(strstr(H.last_detail, "cannot connect to proxy 127.0.0.1"), "%s", H.last_detail);
}

/* ------------------------------------------------------------ options */

Test(proxy_client, unsupported_proxies_are_refused_at_creation_with_a_reason)
{
    h_start_sink(&H, NULL, 0);
    segops_options o = h_opts();
    o.proxy_url = "https://127.0.0.1:3128";
    cr_expect_eq(h_client(&H, &o), SEGOPS_EURL);
    cr_expect(log_has("proxy_url refused: https:// proxies are not supported"), "%s", H.log);
    setenv("ALL_PROXY", "socks5://127.0.0.1:1080", 1);
    o = h_opts();
    cr_expect_eq(h_client(&H, &o), SEGOPS_EURL);
    cr_expect(log_has("ALL_PROXY refused: SOCKS"), "%s", H.log);
    /* "" ignores the environment */
    o = h_opts();
    o.proxy_url = "";
    cr_expect_eq(h_client(&H, &o), 0);
}
