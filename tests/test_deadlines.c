/* SPDX-License-Identifier: MIT */
/*
 * Deadlines and addresses: what the pooled, event-loop sender must
 * guarantee, against hostile peers (tests/netfix.h) on real loopback
 * sockets.  ctest runs this file twice, with SEGOPS_IO=uring and
 * SEGOPS_IO=poll.
 *
 * Hang cases: a batch is stuck in one wait -- name resolution, TCP connect,
 * TLS handshake, a plain or TLS write the server no longer reads, the wait
 * for an answer that never comes -- when segops_shutdown(c, 500) is called.
 * Each wait must be bounded by the shutdown deadline: shutdown returns
 * SEGOPS_ETIMEDOUT within 1500 ms (a generous bound; the bench measures the
 * real figure) and *undelivered is exactly the events accepted and not
 * delivered.  Before shutdown each test checks, from the peer's side, that
 * the batch really is in that wait (a DNS query arrived, a SYN_SENT socket
 * exists, the ClientHello sits unread, the request sits unread), so that a
 * test cannot pass because shutdown came before the wait began.
 *
 * Addresses: Happy Eyeballs (an IPv6 address that hangs must not delay the
 * IPv4 one past a fraction of the connect timeout), a DNS change followed
 * after a failed connect, periodic re-resolution (dns_refresh_ms).
 *
 * Flush: under continuous traffic it completes (it waits for the events
 * accepted before the call, not for an empty queue; concurrent flushes are
 * in test_pool.c).  Gauges: requests_in_flight and
 * connections_open while the server holds a request.
 *
 * Accounting is exact everywhere: accepted = delivered + skipped + failed +
 * pending, the delivery reports add up to the counters, and the sinks saw
 * each event once.  Waits for conditions are bounded polls; time bounds
 * are generous upper bounds only.
 *
 * Tests needing a private /etc (mount namespace) or port 53 skip without
 * root.  Criterion runs every test in its own forked process (so does the
 * TSan shim), so a test's mount namespace ends with it.
 *
 * The suite "netfix" checks the hostile peers themselves.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "netfix.h"
#include "tls_fixture.h"

#define SHUTDOWN_MS 500
#define SHUTDOWN_BOUND_MS 5000 /* loose: tests must hold on a busy machine; the
                                  waits it catches are 10 s or forever */

static struct harness H;  /* the client's harness; sink A where there is one */
static struct harness H2; /* sink B */
static struct netfix_blackhole *BH;
static struct netfix_silent *SIL;
static struct netfix_relay *RL;
static struct netfix_dns *DNS;
static int NGINX;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls cond every 5 ms for up to ms milliseconds. */
#define WAIT_UNTIL(cond, ms)                                                  \
    do {                                                                      \
        int64_t wu_end_ = mono_ms() + (ms);                                   \
        while (!(cond) && mono_ms() < wu_end_)                                \
            h_sleep_ms(5);                                                    \
    } while (0)

static void teardown(void)
{
    if (H.c)
        segops_shutdown(H.c, 5000, NULL);
    H.c = NULL;
    netfix_relay_stop(RL);
    RL = NULL;
    netfix_blackhole_stop(BH);
    BH = NULL;
    netfix_silent_stop(SIL);
    SIL = NULL;
    netfix_dns_blackhole_stop(DNS);
    DNS = NULL;
    if (NGINX)
        tls_nginx_stop();
    NGINX = 0;
    h_stop(&H);
    h_stop(&H2);
}

TestSuite(deadlines, .fini = teardown, .timeout = 120);

/* The harness without a sink: capture of logs and delivery reports for a
 * client aimed at a hostile peer. */
static void h_init_no_sink(struct harness *h)
{
    memset(h, 0, sizeof(*h));
    pthread_mutex_init(&h->mu, NULL);
}

static segops_counters stats(void)
{
    segops_counters s = SEGOPS_COUNTERS_INIT;
    cr_assert_eq(segops_stats(H.c, &s), 0);
    return s;
}

static struct sink_counts sink_counts(struct harness *h)
{
    struct sink_counts k;
    h_counts(h, &k);
    return k;
}

/* The client's counters now: the invariant, nothing pending, and the
 * delivery reports adding up to delivered / skipped / failed. */
static segops_counters expect_exact(void)
{
    segops_counters s = stats();
    h_expect_invariant(H.c);
    cr_expect_eq(s.pending, 0);
    pthread_mutex_lock(&H.mu);
    cr_expect_eq(H.rep_delivered, s.delivered, "reports %llu, counter %llu",
                 (unsigned long long)H.rep_delivered, (unsigned long long)s.delivered);
    cr_expect_eq(H.rep_skipped, s.skipped);
    cr_expect_eq(H.rep_failed, s.failed, "reports %llu, counter %llu",
                 (unsigned long long)H.rep_failed, (unsigned long long)s.failed);
    cr_expect_eq((uint64_t)H.deliveries, s.batches);
    pthread_mutex_unlock(&H.mu);
    return s;
}

static int track_n(segops_client *c, int thread, int from, int n)
{
    int ok = 0;
    for (int i = from; i < from + n; i++) {
        segops_prop p[] = {SEGOPS_I64("thread", thread), SEGOPS_I64("seq", i),
                           SEGOPS_STR("order_id", "ord-456")};
        segops_event ev = {
            .user_id = "user-123", .event_type = "order_placed", .payload = p, .payload_len = 3};
        ok += segops_track(c, &ev) == 0;
    }
    return ok;
}

#define BLOB_LEN 15000

/* Events of ~15 KB each (slot_size 16384). */
static int track_big(segops_client *c, int thread, int from, int n)
{
    static char blob[BLOB_LEN + 1];
    if (!blob[0])
        memset(blob, 'x', BLOB_LEN);
    int ok = 0;
    for (int i = from; i < from + n; i++) {
        segops_prop p[] = {SEGOPS_I64("thread", thread), SEGOPS_I64("seq", i),
                           SEGOPS_STR("blob", blob)};
        segops_event ev = {
            .user_id = "user-123", .event_type = "page_viewed", .payload = p, .payload_len = 3};
        ok += segops_track(c, &ev) == 0;
    }
    return ok;
}

static void need_root(void)
{
    if (geteuid() != 0)
        cr_skip_test("needs root (mount namespace, port 53)");
}

/* A private /etc for this test's thread and the threads it creates from
 * now on (the client's); skips when not possible. */
static void private_etc(const char *hosts, const char *resolv)
{
    need_root();
    if (netfix_private_etc(hosts, resolv) != 0)
        cr_skip_test("no private /etc here (%s)", strerror(errno));
}

/* The "hosts:" line of nsswitch.conf names dns. */
static int nss_hosts_uses_dns(void)
{
    FILE *f = fopen("/etc/nsswitch.conf", "r");
    if (!f)
        return 1; /* glibc's default: dns [!UNAVAIL=return] files */
    char line[512];
    int dns = 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "hosts:", 6) == 0)
            dns = strstr(line, "dns") != NULL;
    fclose(f);
    return dns;
}

/* 1 if nothing listens on (or holds) TCP ip:port. */
static int port_free(const char *ip, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    cr_assert_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/*
 * The end of every hang case: `stuck` events are held in the wait under
 * test.  segops_shutdown(c, 500) must return SEGOPS_ETIMEDOUT within
 * SHUTDOWN_BOUND_MS, *undelivered must be exactly the events accepted and
 * not delivered, and the delivery reports must account for every accepted
 * event.
 */
static void expect_shutdown_cut_short(uint64_t stuck, const char *wait)
{
    segops_counters s = stats();
    h_expect_invariant(H.c);
    cr_expect_eq(s.failed, 0, "%s: a batch failed before shutdown", wait);
    uint64_t undelivered = 0xdead;
    int64_t t0 = mono_ms();
    int rc = segops_shutdown(H.c, SHUTDOWN_MS, &undelivered);
    int64_t took = mono_ms() - t0;
    H.c = NULL;
    cr_log_info("%s: segops_shutdown(%d) returned %s after %lld ms, undelivered %llu", wait,
                SHUTDOWN_MS, segops_strerror(rc), (long long)took,
                (unsigned long long)undelivered);
    cr_expect_eq(rc, SEGOPS_ETIMEDOUT, "%s: segops_shutdown returned %s", wait,
                 segops_strerror(rc));
    cr_expect_lt(took, SHUTDOWN_BOUND_MS,
                 "%s: segops_shutdown(%d) took %lld ms: that wait is not bounded by the "
                 "shutdown deadline",
                 wait, SHUTDOWN_MS, (long long)took);
    pthread_mutex_lock(&H.mu);
    uint64_t reported = H.rep_delivered + H.rep_skipped + H.rep_failed;
    cr_expect_eq(reported, s.accepted, "%s: reports cover %llu events, %llu accepted", wait,
                 (unsigned long long)reported, (unsigned long long)s.accepted);
    cr_expect_eq(undelivered, s.accepted - H.rep_delivered - H.rep_skipped,
                 "%s: undelivered %llu, accepted %llu, delivered %llu, skipped %llu", wait,
                 (unsigned long long)undelivered, (unsigned long long)s.accepted,
                 (unsigned long long)H.rep_delivered, (unsigned long long)H.rep_skipped);
    cr_expect_eq(undelivered, stuck, "%s: undelivered %llu, stuck %llu", wait,
                 (unsigned long long)undelivered, (unsigned long long)stuck);
    cr_expect_eq(H.rep_failed, stuck);
    pthread_mutex_unlock(&H.mu);
}

/* ------------------------------------------------------------ hang cases */

/* (a) The name server never answers (glibc would wait 30 s). */
Test(deadlines, shutdown_cuts_short_a_name_resolution_that_never_answers)
{
    if (!nss_hosts_uses_dns())
        cr_skip_test("nsswitch.conf: hosts do not use dns");
    private_etc("127.0.0.1 localhost\n", "nameserver 127.0.0.77\noptions timeout:30 attempts:1\n");
    DNS = netfix_dns_blackhole_start("127.0.0.77");
    if (!DNS)
        cr_skip_test("cannot bind 127.0.0.77:53 (%s)", strerror(errno));
    h_init_no_sink(&H);
    segops_options o = h_opts();
    o.api_url = "http://never-answers.segops.test:8080";
    o.batch_size = 5;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 5), 5);
    WAIT_UNTIL(netfix_dns_queries(DNS) > 0, 10000);
    cr_assert_gt(netfix_dns_queries(DNS), 0, "the sender never asked the name server");
    expect_shutdown_cut_short(5, "name resolution");
    /* a lookup that outlived the client returns now: whatever it touches
     * must still be its own (ASan runs this too) */
    netfix_dns_release(DNS);
    h_sleep_ms(300);
}

/* (b) The listener's backlog is full: SYNs are dropped, connect() hangs. */
Test(deadlines, shutdown_cuts_short_a_tcp_connect_that_never_completes)
{
    uint16_t port;
    BH = netfix_blackhole_start("127.0.0.1", 0, &port);
    cr_assert_not_null(BH, "black hole: %s", strerror(errno));
    cr_assert_eq(netfix_tcp_count("127.0.0.1", port, NETFIX_TCP_SYN_SENT), 0);
    h_init_no_sink(&H);
    static char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)port);
    segops_options o = h_opts();
    o.api_url = url;
    o.batch_size = 5;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 5), 5);
    WAIT_UNTIL(netfix_tcp_count("127.0.0.1", port, NETFIX_TCP_SYN_SENT) > 0, 10000);
    cr_assert_gt(netfix_tcp_count("127.0.0.1", port, NETFIX_TCP_SYN_SENT), 0,
                 "no connect to the black hole seen");
    expect_shutdown_cut_short(5, "TCP connect");
}

/* (c) The server accepts and never answers the ClientHello. */
Test(deadlines, shutdown_cuts_short_a_tls_handshake_that_never_completes)
{
    static const char *bundle = "/etc/ssl/certs/ca-certificates.crt";
    if (access(bundle, R_OK) != 0)
        cr_skip_test("no readable PEM bundle at %s", bundle);
    uint16_t port;
    SIL = netfix_silent_start("127.0.0.1", 0, &port);
    cr_assert_not_null(SIL, "silent server: %s", strerror(errno));
    h_init_no_sink(&H);
    static char url[64];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u", (unsigned)port);
    segops_options o = h_opts();
    o.api_url = url;
    o.ca_file = bundle;
    o.batch_size = 5;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 5), 5);
    /* the ClientHello sits unread in the server's socket: the client waits
     * for the ServerHello */
    WAIT_UNTIL(netfix_silent_unread(SIL) > 0, 10000);
    cr_assert_gt(netfix_silent_unread(SIL), 0, "no ClientHello reached the silent server");
    expect_shutdown_cut_short(5, "TLS handshake");
}

/* Options for the write cases: one request of 500 events of ~15 KB
 * (~7.5 MB, far more than the socket buffers hold), sent as soon as the
 * 500th event is queued. */
static segops_options big_opts(void)
{
    segops_options o = h_opts();
    o.slot_size = 16384;
    o.max_batch_bytes = 16u << 20;
    o.batch_size = 500;
    o.queue_capacity = 600;
    o.max_producers = 2;
    o.shared_lanes = 1;
    return o;
}

#define BIG_EVENTS 500

/* Delivers a first small batch through the relay, stops the relay reading,
 * then queues one huge batch and waits until its bytes pile up unread. */
static void stuck_in_write(void)
{
    cr_assert_eq(track_n(H.c, 0, 0, 5), 5);
    cr_assert_eq(segops_flush(H.c, 10000), 0, "first batch through the relay");
    cr_assert_eq(h_wait_queued(&H, 5, 30000), 5);
    netfix_relay_stop_reading(RL);
    struct netfix_relay_counts k0, k;
    netfix_relay_counts(RL, &k0);
    cr_assert_eq(track_big(H.c, 0, 5, BIG_EVENTS), BIG_EVENTS);
    WAIT_UNTIL((netfix_relay_counts(RL, &k), k.unread > 0), 10000);
    cr_assert_gt(k.unread, 0, "the big request never reached the relay");
    cr_assert_eq(k.bytes_up, k0.bytes_up, "the relay read after it was told to stop");
    cr_log_info("relay: %llu bytes unread from the client, %d connections open",
                (unsigned long long)k.unread, k.open);
}

/* (d) client -> relay (stops reading) -> sink, plain HTTP. */
Test(deadlines, shutdown_cuts_short_a_plain_write_the_server_no_longer_reads)
{
    h_start_sink(&H, NULL, 1000);
    uint16_t rport;
    RL = netfix_relay_start("127.0.0.1", H.port, 0, 0, &rport);
    cr_assert_not_null(RL, "relay: %s", strerror(errno));
    static char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)rport);
    segops_options o = big_opts();
    o.api_url = url;
    cr_assert_eq(h_client(&H, &o), 0);
    stuck_in_write();
    expect_shutdown_cut_short(BIG_EVENTS, "plain write");
}

/* (e) client -> relay (stops reading) -> nginx (TLS) -> sink. */
Test(deadlines, shutdown_cuts_short_a_tls_write_the_server_no_longer_reads)
{
    h_start_sink(&H, NULL, 1000);
    tls_nginx_start(H.port);
    NGINX = 1;
    uint16_t rport;
    RL = netfix_relay_start("127.0.0.1", tls_ports[TLS_GOOD], 0, 0, &rport);
    cr_assert_not_null(RL, "relay: %s", strerror(errno));
    static char url[64], ca[96];
    snprintf(url, sizeof(url), "https://localhost:%u", (unsigned)rport);
    snprintf(ca, sizeof(ca), "%s/ca.pem", tls_dir);
    segops_options o = big_opts();
    o.api_url = url;
    o.ca_file = ca;
    cr_assert_eq(h_client(&H, &o), 0);
    stuck_in_write();
    expect_shutdown_cut_short(BIG_EVENTS, "TLS write");
}

/* (f) The server read the request and never answers; the request timeout
 * is the default 10 s. */
Test(deadlines, shutdown_cuts_short_the_wait_for_an_answer_that_never_comes)
{
    struct sink_opts so = {0};
    so.delay_ms = 60000;
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    o.batch_size = 5;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 5), 5);
    WAIT_UNTIL(sink_counts(&H).requests > 0, 10000);
    cr_assert_eq(sink_counts(&H).requests, 1, "the request never reached the sink");
    expect_shutdown_cut_short(5, "answer");
}

/* ------------------------------------------------------------ addresses */

struct syn_watch {
    const char *ip;
    uint16_t port;
    atomic_int stop, seen;
    pthread_t th;
};

static void *syn_watch_main(void *arg)
{
    struct syn_watch *w = arg;
    while (!atomic_load(&w->stop)) {
        if (netfix_tcp_count(w->ip, w->port, NETFIX_TCP_SYN_SENT) > 0)
            atomic_store(&w->seen, 1);
        h_sleep_ms(2);
    }
    return NULL;
}

/* The first address getaddrinfo gives for name is IPv6. */
static int resolves_ipv6_first(const char *name)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(name, "80", &hints, &res) != 0 || !res)
        return 0;
    int v6 = res->ai_family == AF_INET6;
    int n = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next)
        n++;
    freeaddrinfo(res);
    return v6 && n >= 2;
}

/* (g) The name maps to ::1 (a black hole) and 127.0.0.1 (the sink), same
 * port.  The connect timeout is 10 s and the flush gets 5 s: only racing
 * the IPv4 address against the hanging IPv6 one (Happy Eyeballs, RFC 8305:
 * next address after ~250 ms) delivers in time. */
Test(deadlines, happy_eyeballs_delivers_past_an_ipv6_address_that_hangs)
{
    if (!netfix_have_ipv6_loopback())
        cr_skip_test("no IPv6 loopback");
    private_etc("127.0.0.1 localhost\n::1 dual.segops.test\n127.0.0.1 dual.segops.test\n", NULL);
    if (!resolves_ipv6_first("dual.segops.test"))
        cr_skip_test("getaddrinfo does not give ::1 first here (gai.conf?)");
    uint16_t port = 0;
    for (int i = 0; i < 20 && !BH; i++) {
        BH = netfix_blackhole_start("::1", 0, &port);
        cr_assert_not_null(BH, "black hole on [::1]: %s", strerror(errno));
        if (!port_free("127.0.0.1", port)) {
            netfix_blackhole_stop(BH);
            BH = NULL;
        }
    }
    cr_assert_not_null(BH, "no port free on both ::1 and 127.0.0.1");
    struct sink_opts so = {0};
    so.bind_host = "127.0.0.1";
    so.port = port;
    h_start_sink(&H, &so, 1000);
    static char url[64];
    snprintf(url, sizeof(url), "http://dual.segops.test:%u", (unsigned)port);
    segops_options o = h_opts();
    o.api_url = url;
    o.connect_timeout_ms = 10000;
    cr_assert_eq(h_client(&H, &o), 0);

    struct syn_watch w = {.ip = "::1", .port = port};
    pthread_create(&w.th, NULL, syn_watch_main, &w);
    cr_assert_eq(track_n(H.c, 0, 0, 20), 20);
    int64_t t0 = mono_ms();
    int rc = segops_flush(H.c, 5000);
    int64_t took = mono_ms() - t0;
    atomic_store(&w.stop, 1);
    pthread_join(w.th, NULL);
    cr_expect_eq(rc, 0,
                 "flush returned %s after %lld ms: the IPv4 address was not tried while the "
                 "IPv6 connect hung",
                 segops_strerror(rc), (long long)took);
    if (!atomic_load(&w.seen))
        cr_log_info("never saw a connect to [::1]:%u: Happy Eyeballs was not exercised "
                    "(AI_ADDRCONFIG dropping ::1?)", (unsigned)port);
    segops_counters s = expect_exact();
    cr_expect_eq(s.delivered, 20);
    cr_expect_eq(s.failed, 0);
    cr_expect_eq(h_wait_queued(&H, 20, 30000), 20);
    pthread_mutex_lock(&H.mu);
    cr_expect_eq(H.tagged, 20, "the sink saw %llu events", (unsigned long long)H.tagged);
    cr_expect_eq(H.dup_tagged, 0);
    uint64_t once = 0;
    for (int i = 0; i < 20; i++)
        once += H.seen[i] == 1;
    cr_expect_eq(once, 20, "events seen exactly once: %llu of 20", (unsigned long long)once);
    pthread_mutex_unlock(&H.mu);
}

/* Sinks A on 127.0.0.2:P and B on 127.0.0.3:P (same port); A's options
 * may be given. */
static uint16_t two_sinks(const struct sink_opts *a_opts)
{
    struct sink_opts a = {0}, b = {0};
    if (a_opts)
        a = *a_opts;
    a.bind_host = "127.0.0.2";
    b.bind_host = "127.0.0.3";
    for (int i = 0; i < 20; i++) {
        h_start_sink(&H, &a, 1000);
        if (port_free("127.0.0.3", H.port)) {
            b.port = H.port;
            h_start_sink(&H2, &b, 1000);
            return H.port;
        }
        h_stop(&H);
    }
    cr_assert_fail("no port free on both 127.0.0.2 and 127.0.0.3");
    return 0;
}

/* (h) A failed connect resolves the name again: A stops, the name moved to
 * B, the next batch reaches B and nothing fails. */
Test(deadlines, a_dns_change_is_followed_after_a_failed_connect)
{
    private_etc("127.0.0.1 localhost\n127.0.0.2 moving.segops.test\n", NULL);
    uint16_t port = two_sinks(NULL);
    static char url[64];
    snprintf(url, sizeof(url), "http://moving.segops.test:%u", (unsigned)port);
    segops_options o = h_opts();
    o.api_url = url;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 10), 10);
    cr_assert_eq(segops_flush(H.c, 10000), 0);
    cr_assert_eq(sink_counts(&H).queued, 10, "the first batch went to sink A");

    cr_assert_eq(netfix_hosts_update("127.0.0.1 localhost\n127.0.0.3 moving.segops.test\n"), 0);
    sink_stop(H.sink); /* A is gone: connects to it are refused */
    H.sink = NULL;
    cr_assert_eq(track_n(H.c, 0, 10, 10), 10);
    int rc = segops_flush(H.c, 10000);
    cr_expect_eq(rc, 0, "flush after the move: %s", segops_strerror(rc));
    segops_counters s = expect_exact();
    cr_expect_eq(s.delivered, 20);
    cr_expect_eq(s.failed, 0);
    cr_expect_eq(h_wait_queued(&H2, 10, 30000), 10, "sink B");
    pthread_mutex_lock(&H2.mu);
    cr_expect_eq(H2.tagged, 10);
    cr_expect_eq(H2.dup_tagged, 0);
    for (int i = 10; i < 20; i++)
        cr_expect_eq(H2.seen[i], 1, "event %d at sink B", i);
    pthread_mutex_unlock(&H2.mu);
}

/* (i) dns_refresh_ms: a connection opened more than 200 ms after the last
 * resolution resolves again.  A stays up (but closes idle connections after
 * 50 ms, so the next batch needs a new connection); the name moved to B;
 * the next batch reaches B. */
Test(deadlines, a_connection_opened_after_dns_refresh_ms_resolves_again)
{
    private_etc("127.0.0.1 localhost\n127.0.0.2 refresh.segops.test\n", NULL);
    struct sink_opts a = {0};
    a.idle_close_ms = 50;
    uint16_t port = two_sinks(&a);
    static char url[64];
    snprintf(url, sizeof(url), "http://refresh.segops.test:%u", (unsigned)port);
    segops_options o = h_opts();
    o.api_url = url;
    o.dns_refresh_ms = 200;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 10), 10);
    cr_assert_eq(segops_flush(H.c, 10000), 0);
    int64_t resolved_before = mono_ms(); /* the last resolution came before this */
    cr_assert_eq(sink_counts(&H).queued, 10, "the first batch went to sink A");

    cr_assert_eq(netfix_hosts_update("127.0.0.1 localhost\n127.0.0.3 refresh.segops.test\n"), 0);
    /* A closed the client's idle connections: the next batch opens one */
    WAIT_UNTIL(netfix_tcp_count("127.0.0.2", port, NETFIX_TCP_ESTABLISHED) == 0, 10000);
    cr_assert_eq(netfix_tcp_count("127.0.0.2", port, NETFIX_TCP_ESTABLISHED), 0,
                 "sink A did not close the idle connection");
    WAIT_UNTIL(mono_ms() - resolved_before > 400, 1000);
    cr_assert_eq(track_n(H.c, 0, 10, 10), 10);
    int rc = segops_flush(H.c, 10000);
    cr_expect_eq(rc, 0, "%s", segops_strerror(rc));
    segops_counters s = expect_exact();
    cr_expect_eq(s.delivered, 20);
    cr_expect_eq(s.failed, 0);
    h_wait_queued(&H2, 10, 30000);
    cr_expect_eq(sink_counts(&H).queued, 10, "sink A got the second batch: the name was not "
                 "resolved again after dns_refresh_ms");
    cr_expect_eq(sink_counts(&H2).queued, 10, "sink B");
    pthread_mutex_lock(&H2.mu);
    cr_expect_eq(H2.dup_tagged, 0);
    pthread_mutex_unlock(&H2.mu);
}

/* A slow resolver never fails sends to a server that works: the name was
 * resolved (from /etc/hosts), then lookups start going to a name server
 * that never answers; a connection opened after dns_refresh_ms waits a
 * grace period for the new lookup, then uses the addresses it knows. */
Test(deadlines, a_refresh_stuck_on_a_dead_name_server_falls_back_to_the_known_addresses)
{
    if (!nss_hosts_uses_dns())
        cr_skip_test("nsswitch.conf: hosts do not use dns");
    private_etc("127.0.0.1 localhost\n127.0.0.2 stuck.segops.test\n",
                "nameserver 127.0.0.77\noptions timeout:30 attempts:1\n");
    DNS = netfix_dns_blackhole_start("127.0.0.77");
    if (!DNS)
        cr_skip_test("cannot bind 127.0.0.77:53 (%s)", strerror(errno));
    struct sink_opts a = {0};
    a.idle_close_ms = 50;
    uint16_t port = two_sinks(&a);
    static char url[64];
    snprintf(url, sizeof(url), "http://stuck.segops.test:%u", (unsigned)port);
    segops_options o = h_opts();
    o.api_url = url;
    o.dns_refresh_ms = 200;
    o.max_retries = SEGOPS_RETRIES_NONE;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_n(H.c, 0, 0, 10), 10);
    cr_assert_eq(segops_flush(H.c, 10000), 0);
    cr_assert_eq(sink_counts(&H).queued, 10);
    /* the name leaves /etc/hosts: the next lookup asks the dead server */
    cr_assert_eq(netfix_hosts_update("127.0.0.1 localhost\n"), 0);
    WAIT_UNTIL(netfix_tcp_count("127.0.0.2", port, NETFIX_TCP_ESTABLISHED) == 0, 10000);
    h_sleep_ms(300); /* past dns_refresh_ms */
    cr_assert_eq(track_n(H.c, 0, 10, 10), 10);
    int rc = segops_flush(H.c, 20000);
    cr_expect_eq(rc, 0, "%s", segops_strerror(rc));
    /* the lookup was started before the grace period ran out; its query
     * may leave the resolver thread later on a busy machine */
    WAIT_UNTIL(netfix_dns_queries(DNS) > 0, 10000);
    cr_expect_gt(netfix_dns_queries(DNS), 0, "the refresh asked the name server");
    segops_counters s = expect_exact();
    cr_expect_eq(s.delivered, 20);
    cr_expect_eq(s.failed, 0);
    cr_expect_eq(h_wait_queued(&H, 20, 30000), 20, "sink A, at the address known");
    netfix_dns_release(DNS);
}

/* ------------------------------------------------------------ flush */

struct steady {
    segops_client *c;
    int rate;             /* events per second */
    atomic_int stop;
    _Atomic uint64_t ok, full;
    pthread_t th;
};

static void *steady_main(void *arg)
{
    struct steady *p = arg;
    int64_t t0 = mono_ms();
    uint64_t n = 0;
    while (!atomic_load(&p->stop)) {
        uint64_t due = (uint64_t)(mono_ms() - t0) * (uint64_t)p->rate / 1000;
        for (; n < due; n++) {
            segops_prop props[] = {SEGOPS_I64("seq", (int64_t)n),
                                   SEGOPS_STR("page", "/checkout")};
            segops_event ev = {.user_id = "user-1",
                               .event_type = "page_viewed",
                               .payload = props,
                               .payload_len = 2};
            int rc = segops_track(p->c, &ev);
            if (rc == 0)
                atomic_fetch_add(&p->ok, 1);
            else if (rc == SEGOPS_EFULL)
                atomic_fetch_add(&p->full, 1);
        }
        h_sleep_ms(1);
    }
    return NULL;
}

/* (j) A flush waits for the events accepted before the call, not for a
 * queue that continuous traffic never empties. */
Test(deadlines, flush_completes_under_continuous_traffic)
{
    struct sink_opts so = {0};
    so.delay_ms = 20;
    h_start_sink(&H, &so, 0);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    struct steady p = {.c = H.c, .rate = 3000};
    pthread_create(&p.th, NULL, steady_main, &p);
    WAIT_UNTIL(stats().delivered >= 600, 10000);
    cr_assert_geq(stats().delivered, 600, "traffic never got going");

    uint64_t before = stats().accepted;
    uint64_t ok0 = atomic_load(&p.ok);
    int64_t t0 = mono_ms();
    int rc = segops_flush(H.c, 10000);
    int64_t took = mono_ms() - t0;
    segops_counters s = stats();
    uint64_t during = atomic_load(&p.ok) - ok0;
    atomic_store(&p.stop, 1);
    pthread_join(p.th, NULL);
    cr_log_info("flush under traffic: %s after %lld ms, %llu events tracked meanwhile",
                segops_strerror(rc), (long long)took, (unsigned long long)during);
    cr_expect_eq(rc, 0, "flush under continuous traffic returned %s after %lld ms",
                 segops_strerror(rc), (long long)took);
    cr_expect_geq(s.delivered, before,
                  "flush returned with %llu delivered of the %llu accepted before the call",
                  (unsigned long long)s.delivered, (unsigned long long)before);
    cr_expect_eq(s.failed, 0);
    cr_expect_eq(s.accepted, s.delivered + s.skipped + s.failed + s.pending);

    /* traffic over: everything is delivered exactly */
    cr_expect_eq(segops_flush(H.c, 10000), 0);
    s = expect_exact();
    cr_expect_eq(s.accepted, atomic_load(&p.ok));
    cr_expect_eq(s.delivered, s.accepted);
    cr_expect_eq(s.failed, 0);
    cr_expect_eq(s.dropped_full, atomic_load(&p.full));
    cr_expect_eq(h_wait_queued(&H, s.accepted, 30000), s.accepted);
}

/* The gauges: one request held by the server is one request in flight on
 * an open connection; answered, none in flight, the connection kept. */
Test(deadlines, gauges_show_the_request_in_flight_and_its_connection)
{
    struct sink_opts so = {0};
    so.delay_ms = 1500;
    h_start_sink(&H, &so, 1000);
    segops_options o = h_opts();
    o.batch_size = 5;
    cr_assert_eq(h_client(&H, &o), 0);
    segops_counters s = stats();
    cr_expect_eq(s.requests_in_flight, 0);
    cr_assert_eq(track_n(H.c, 0, 0, 5), 5);
    WAIT_UNTIL(sink_counts(&H).requests > 0, 10000);
    cr_assert_eq(sink_counts(&H).requests, 1, "the batch never reached the sink");
    s = stats();
    pthread_mutex_lock(&H.mu);
    uint32_t resolved = H.deliveries;
    pthread_mutex_unlock(&H.mu);
    cr_assert_eq(resolved, 0, "the sink answered already");
    cr_expect_eq(s.requests_in_flight, 1, "requests_in_flight %llu while the sink holds one",
                 (unsigned long long)s.requests_in_flight);
    cr_expect_geq(s.connections_open, 1, "connections_open %llu while a request is in flight",
                  (unsigned long long)s.connections_open);
    cr_expect_leq(s.connections_open, 16);
    cr_expect_eq(segops_flush(H.c, 10000), 0);
    s = expect_exact();
    cr_expect_eq(s.delivered, 5);
    cr_expect_eq(s.requests_in_flight, 0);
    cr_expect_geq(s.connections_open, 1, "the keep-alive connection is still open");
}

/* ------------------------------------------------------------ the peers */

TestSuite(netfix, .fini = teardown, .timeout = 60);

static int connect_nb(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        sl = sizeof(*a4);
    } else {
        cr_assert_eq(inet_pton(AF_INET6, ip, &a6->sin6_addr), 1);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        sl = sizeof(*a6);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    cr_assert_geq(fd, 0);
    int rc = connect(fd, (struct sockaddr *)&ss, sl);
    cr_assert(rc == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
    return fd;
}

static int writable_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    return poll(&p, 1, ms) > 0;
}

static void blackhole_hangs_a_connect(const char *ip)
{
    uint16_t port;
    BH = netfix_blackhole_start(ip, 0, &port);
    cr_assert_not_null(BH, "black hole on %s: %s", ip, strerror(errno));
    int fd = connect_nb(ip, port);
    cr_expect(!writable_within(fd, 1500), "connect to the black hole completed");
    cr_expect_eq(netfix_tcp_count(ip, port, NETFIX_TCP_SYN_SENT), 1);
    close(fd);
    int64_t t0 = mono_ms();
    netfix_blackhole_stop(BH);
    BH = NULL;
    cr_expect_lt(mono_ms() - t0, 1000);
}

Test(netfix, blackhole_hangs_a_connect_on_ipv4)
{
    blackhole_hangs_a_connect("127.0.0.1");
}

Test(netfix, blackhole_hangs_a_connect_on_ipv6)
{
    if (!netfix_have_ipv6_loopback())
        cr_skip_test("no IPv6 loopback");
    blackhole_hangs_a_connect("::1");
}

Test(netfix, silent_server_accepts_and_never_reads_or_answers)
{
    uint16_t port;
    SIL = netfix_silent_start("127.0.0.1", 0, &port);
    cr_assert_not_null(SIL);
    int fd = connect_nb("127.0.0.1", port);
    cr_assert(writable_within(fd, 30000));
    cr_assert_eq(send(fd, "hello", 5, MSG_NOSIGNAL), 5);
    WAIT_UNTIL(netfix_silent_unread(SIL) == 5, 30000);
    cr_expect_eq(netfix_silent_accepted(SIL), 1);
    cr_expect_eq(netfix_silent_unread(SIL), 5);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    cr_expect_eq(poll(&p, 1, 300), 0, "the silent server said something");
    int64_t t0 = mono_ms();
    netfix_silent_stop(SIL); /* with the connection still open */
    SIL = NULL;
    cr_expect_lt(mono_ms() - t0, 1000);
    close(fd);
}

/* CPU time of the whole process, user + system */
static int64_t cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int read_answer(int fd, char *buf, size_t cap, int ms)
{
    size_t got = 0;
    int64_t end = mono_ms() + ms;
    while (got + 1 < cap && mono_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = 0;
        if (strstr(buf, "\r\n\r\n") && strstr(buf, "}"))
            break;
    }
    buf[got] = 0;
    return (int)got;
}

Test(netfix, relay_forwards_until_told_to_stop_reading_then_writes_block)
{
    h_start_sink(&H, NULL, 0);
    uint16_t rport;
    RL = netfix_relay_start("127.0.0.1", H.port, 0, 0, &rport);
    cr_assert_not_null(RL);
    int fd = connect_nb("127.0.0.1", rport);
    cr_assert(writable_within(fd, 30000));
    static const char req[] = "GET /_sink/counts HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert_eq(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(req) - 1);
    char buf[4096];
    read_answer(fd, buf, sizeof(buf), 3000);
    cr_expect(strncmp(buf, "HTTP/1.1 200", 12) == 0, "answer through the relay: %.60s", buf);

    netfix_relay_stop_reading(RL);
    h_sleep_ms(50);
    struct netfix_relay_counts k0, k;
    netfix_relay_counts(RL, &k0);
    cr_expect_eq(k0.connections, 1);
    cr_expect_eq(k0.open, 1);
    /* write until the socket refuses more: the client blocks well before
     * 64 MiB */
    static char chunk[65536];
    uint64_t sent = 0;
    int64_t end = mono_ms() + 10000;
    int blocked = 0;
    while (sent < (64u << 20) && mono_ms() < end) {
        ssize_t n = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            sent += (uint64_t)n;
            continue;
        }
        cr_assert(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "send: %s",
                  strerror(errno));
        if (writable_within(fd, 500))
            continue;
        blocked = 1;
        break;
    }
    cr_expect(blocked, "writes never blocked (%llu bytes sent)", (unsigned long long)sent);
    WAIT_UNTIL((netfix_relay_counts(RL, &k), k.unread > 0), 30000);
    cr_expect_gt(k.unread, 0);
    cr_expect_eq(k.bytes_up, k0.bytes_up, "the relay kept reading");
    /* and it waits, it does not spin (two shared cores) */
    int64_t cpu0 = cpu_ms();
    h_sleep_ms(300);
    cr_expect_lt(cpu_ms() - cpu0, 100, "the process used %lld ms of CPU in 300 ms",
                 (long long)(cpu_ms() - cpu0));
    cr_log_info("relay: client blocked after %llu bytes, %llu unread at the relay",
                (unsigned long long)sent, (unsigned long long)k.unread);
    int64_t t0 = mono_ms();
    netfix_relay_stop(RL);
    RL = NULL;
    cr_expect_lt(mono_ms() - t0, 1000);
    close(fd);
}

struct gai_call {
    const char *name;
    int rc;
    int64_t took;
    char first[64];
    atomic_int done;
};

static void *gai_main(void *arg)
{
    struct gai_call *g = arg;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int64_t t0 = mono_ms();
    g->rc = getaddrinfo(g->name, "80", &hints, &res);
    g->took = mono_ms() - t0;
    g->first[0] = 0;
    if (g->rc == 0) {
        getnameinfo(res->ai_addr, res->ai_addrlen, g->first, sizeof(g->first), NULL, 0,
                    NI_NUMERICHOST);
        freeaddrinfo(res);
    }
    atomic_store(&g->done, 1);
    return NULL;
}

/* getaddrinfo(name) on this thread; the first address in g->first */
static void lookup(struct gai_call *g, const char *name)
{
    memset(g, 0, sizeof(*g));
    g->name = name;
    gai_main(g);
}

Test(netfix, private_etc_maps_names_and_follows_hosts_updates)
{
    private_etc("127.0.0.1 localhost\n127.0.0.2 pe.segops.test\n", "nameserver 127.0.0.77\n");
    struct gai_call g;
    lookup(&g, "pe.segops.test");
    cr_expect_eq(g.rc, 0, "%s", gai_strerror(g.rc));
    cr_expect_str_eq(g.first, "127.0.0.2");
    cr_assert_eq(netfix_hosts_update("127.0.0.3 pe.segops.test\n"), 0);
    lookup(&g, "pe.segops.test");
    cr_expect_eq(g.rc, 0, "%s", gai_strerror(g.rc));
    cr_expect_str_eq(g.first, "127.0.0.3");
    /* a thread created now sees the same files */
    pthread_t th;
    struct gai_call t = {.name = "pe.segops.test"};
    pthread_create(&th, NULL, gai_main, &t);
    pthread_join(th, NULL);
    cr_expect_str_eq(t.first, "127.0.0.3");
    FILE *f = fopen("/etc/resolv.conf", "r");
    cr_assert_not_null(f);
    char line[128] = "";
    cr_expect_not_null(fgets(line, sizeof(line), f));
    fclose(f);
    cr_expect_str_eq(line, "nameserver 127.0.0.77\n");
}

Test(netfix, dns_blackhole_reads_queries_and_never_answers_until_released)
{
    if (!nss_hosts_uses_dns())
        cr_skip_test("nsswitch.conf: hosts do not use dns");
    private_etc("127.0.0.1 localhost\n", "nameserver 127.0.0.77\noptions timeout:30 attempts:1\n");
    DNS = netfix_dns_blackhole_start("127.0.0.77");
    if (!DNS)
        cr_skip_test("cannot bind 127.0.0.77:53 (%s)", strerror(errno));
    struct gai_call g = {.name = "nowhere.segops.test"};
    pthread_t th;
    int64_t t0 = mono_ms();
    pthread_create(&th, NULL, gai_main, &g);
    WAIT_UNTIL(netfix_dns_queries(DNS) > 0, 30000);
    cr_expect_gt(netfix_dns_queries(DNS), 0);
    h_sleep_ms(1000);
    cr_expect_eq(atomic_load(&g.done), 0, "getaddrinfo returned: the black hole answered");
    netfix_dns_release(DNS);
    pthread_join(th, NULL);
    int64_t cpu0 = cpu_ms();
    h_sleep_ms(300);
    cr_expect_lt(cpu_ms() - cpu0, 100, "released, the black hole spins");
    cr_expect_neq(g.rc, 0, "the name resolved");
    cr_expect_lt(mono_ms() - t0, 5000, "the lookup did not end when the black hole answered");
    t0 = mono_ms();
    netfix_dns_blackhole_stop(DNS);
    DNS = NULL;
    cr_expect_lt(mono_ms() - t0, 1000);
}
