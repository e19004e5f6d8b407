/* SPDX-License-Identifier: MIT */
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
 *   small     like good, with client_max_body_size 16k: 413 above
 *   ip        IP:127.0.0.1 and IP:::1 only, for https://127.0.0.1 / [::1]
 *   otherip   IP:10.9.8.7 and DNS:example.invalid
 *   cnonly    CN=localhost, no subjectAltName
 * nginx logs "$server_port $ssl_session_reused $connection $status
 * $ssl_cipher $ssl_server_name" per request, which is how resumption,
 * connection reuse and SNI are checked from the server's side.  Servers
 * nginx cannot be (TLS 1.3 only, TLS 1.1 only, no common suite) are
 * `openssl s_server`.  Runs under both I/O drivers (SEGOPS_IO).
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
#include "netfix.h"
#include "tls_fixture.h"

enum { P_GOOD = TLS_GOOD, P_WRONG = TLS_WRONG, P_EXPIRED = TLS_EXPIRED, P_ROGUE = TLS_ROGUE,
       P_CLOSE = TLS_CLOSE, P_SMALL = TLS_SMALL, P_IP = TLS_IP, P_OTHERIP = TLS_OTHERIP,
       P_CNONLY = TLS_CNONLY };

static struct harness H;

static void stop_all(void)
{
    h_stop(&H);
    tls_nginx_stop();
}

TestSuite(tls, .fini = stop_all, .timeout = 120);

/* Sink + nginx + a client for https://host:port-of-p trusting the test
 * CA (host NULL: localhost; an IPv6 literal in brackets). */
static int setup_host(const char *host, int p, uint32_t per, segops_options *o)
{
    h_start_sink(&H, NULL, per);
    tls_nginx_start(H.port);
    static char url[64], ca[96];
    snprintf(url, sizeof(url), "https://%s:%u", host ? host : "localhost",
             (unsigned)tls_ports[p]);
    snprintf(ca, sizeof(ca), "%s/ca.pem", tls_dir);
    o->api_url = url;
    o->ca_file = ca;
    o->flush_interval_ms = 60000;
    return h_client(&H, o);
}

static int setup(int p, uint32_t per, segops_options *o)
{
    return setup_host(NULL, p, per, o);
}

static int track_tagged(int thread, int from, int n)
{
    int ok = 0;
    for (int i = from; i < from + n; i++) {
        segops_prop p[] = {SEGOPS_I64("thread", thread), SEGOPS_I64("seq", i)};
        ok += segops_track(H.c, &(segops_event){.user_id = "user-1",
                                                .event_type = "page_viewed",
                                                .payload = p,
                                                .payload_len = 2}) == 0;
    }
    return ok;
}

/* Lines of nginx's access log for a port: counts of resumed and of
 * distinct connections, and the cipher of the last line (cipher may be
 * NULL).  nginx writes a line after answering, so wait (up to 2 s) for the
 * expected number of lines. */
static void access_log_host(uint16_t port, int expect, int *lines, int *reused, int *conns,
                            char cipher[64], char sni[64], char host[64])
{
    char path[128], line[256];
    snprintf(path, sizeof(path), "%s/access.log", tls_dir);
    *lines = *reused = *conns = 0;
    long last = -1;
    for (int tries = 0; tries < 100 && *lines < expect; tries++) {
        *lines = *reused = *conns = 0;
        last = -1;
        FILE *f = fopen(path, "r");
        if (f) {
            while (fgets(line, sizeof(line), f)) {
                unsigned p;
                char r[8], c[64], name[64] = "", hh[64] = "";
                long conn;
                int status;
                if (sscanf(line, "%u %7s %ld %d %63s %63s %63s", &p, r, &conn, &status, c, name,
                           hh) < 5 ||
                    p != port)
                    continue;
                if (sni)
                    memcpy(sni, name, sizeof(name));
                if (host)
                    memcpy(host, hh, sizeof(hh));
                (*lines)++;
                *reused += r[0] == 'r';
                if (conn != last)
                    (*conns)++;
                last = conn;
                if (cipher)
                    memcpy(cipher, c, sizeof(c));
            }
            fclose(f);
        }
        if (*lines < expect)
            h_sleep_ms(20);
    }
}

static void access_log_full(uint16_t port, int expect, int *lines, int *reused, int *conns,
                            char cipher[64], char sni[64])
{
    access_log_host(port, expect, lines, reused, conns, cipher, sni, NULL);
}

static void access_log_cipher(uint16_t port, int expect, int *lines, int *reused, int *conns,
                              char cipher[64])
{
    access_log_full(port, expect, lines, reused, conns, cipher, NULL);
}

static void access_log(uint16_t port, int expect, int *lines, int *reused, int *conns)
{
    access_log_cipher(port, expect, lines, reused, conns, NULL);
}

/* A client for port p sends `batches` batches of `per` tagged events, each
 * flushed and delivered; *s gets the client's counters. */
static void send_batches(int p, int batches, int per, segops_counters *s)
{
    segops_options o = SEGOPS_OPTIONS_INIT;
    cr_assert_eq(setup(p, 1000, &o), 0);
    for (int b = 0; b < batches; b++) {
        cr_assert_eq(track_tagged(0, b * per, per), per);
        cr_assert_eq(segops_flush(H.c, 10000), 0, "batch %d", b);
    }
    segops_stats(H.c, s);
}

Test(tls, delivers_over_a_verified_chain_and_reuses_the_connection)
{
    segops_counters s = SEGOPS_COUNTERS_INIT;
    send_batches(P_GOOD, 5, 20, &s);
    cr_expect_eq(s.delivered, 100);
    cr_expect_eq(s.tls_handshakes, 1, "keep-alive: one handshake for five batches");
    cr_expect_eq(H.tagged, 100);
    cr_expect_eq(H.dup_tagged, 0);
    int lines, reused, conns;
    char cipher[64] = "", sni[64] = "";
    access_log_full(tls_ports[P_GOOD], 5, &lines, &reused, &conns, cipher, sni);
    cr_expect_eq(lines, 5);
    cr_expect_str_eq(sni, "localhost", "a host name is sent as SNI");
    cr_expect_eq(conns, 1, "nginx saw %d connections", conns);
    /* the client's order decides (nginx's default): AES-GCM first where the
     * CPU accelerates it, ChaCha20-Poly1305 first elsewhere */
    const char *want = sg_tls_aes_hw() ? "AES128-GCM" : "CHACHA20";
    cr_expect(strncmp(cipher, "ECDHE-", 6) == 0 && strstr(cipher, want) != NULL,
              "negotiated %s, expected ECDHE with %s", cipher, want);
}

/* nginx refuses bodies over client_max_body_size with 413 (before reading
 * them): the client splits the batch in halves until each fits, and every
 * event reaches the sink exactly once. */
Test(tls, a_413_from_nginx_splits_the_batch_until_it_fits)
{
    segops_options o = h_opts();
    o.batch_size = 400;
    cr_assert_eq(setup(P_SMALL, 400, &o), 0);
    cr_assert_eq(track_tagged(0, 0, 400), 400); /* ~90 bytes each: ~36 KB */
    cr_expect_eq(segops_flush(H.c, 30000), 0);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(H.c, &s);
    cr_expect_eq(s.delivered, 400);
    cr_expect_eq(s.failed, 0);
    cr_expect_eq(h_wait_queued(&H, 400, 30000), 400);
    pthread_mutex_lock(&H.mu);
    cr_expect_eq(H.tagged, 400);
    cr_expect_eq(H.dup_tagged, 0);
    pthread_mutex_unlock(&H.mu);
    int lines, reused, conns;
    access_log_cipher(tls_ports[P_SMALL], 4, &lines, &reused, &conns, NULL);
    cr_expect_geq(lines, 4, "nginx logged %d requests: no 413 and split?", lines);
}

/* The same, but nginx closes at once after its 413 (lingering_close off):
 * the client is still writing its 3 MB of records and gets a reset.  The
 * 413 that arrived first is the answer: the batch is split, not retried
 * whole after "connection reset by peer". */
Test(tls, an_early_413_before_a_reset_is_the_answer)
{
    segops_options o = h_opts();
    o.batch_size = 500;
    o.slot_size = 8192;
    o.max_batch_bytes = 4 << 20;
    o.max_retries = SEGOPS_RETRIES_NONE; /* a reset taken for the answer fails at once */
    cr_assert_eq(setup(TLS_EARLY, 500, &o), 0);
    static char big[6000];
    memset(big, 'b', sizeof(big) - 1);
    int ok = 0;
    for (int i = 0; i < 500; i++) {
        segops_prop p[] = {SEGOPS_I64("thread", 0), SEGOPS_I64("seq", i), SEGOPS_STR("pad", big)};
        ok += segops_track(H.c, &(segops_event){.user_id = "user-1",
                                                .event_type = "page_viewed",
                                                .payload = p,
                                                .payload_len = 3}) == 0;
    }
    cr_assert_eq(ok, 500);
    int rc = segops_flush(H.c, 60000);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(H.c, &s);
    /* 6 KB events: halves of two fit under 16k; all delivered, nothing
     * retried (a reset taken for the answer would have failed the batch) */
    cr_expect_eq(rc, 0, "%s", segops_strerror(rc));
    cr_expect_eq(s.delivered, 500);
    cr_expect_eq(s.failed, 0);
    cr_expect_eq(s.retries, 0);
}

Test(tls, resumes_the_session_after_the_server_drops_the_connection)
{
    segops_counters s = SEGOPS_COUNTERS_INIT;
    send_batches(P_CLOSE, 4, 10, &s);
    cr_expect_eq(s.delivered, 40);
    cr_expect_eq(s.tls_handshakes, 4);
    cr_expect_eq(s.tls_resumed, 3, "client saw %llu resumptions",
                 (unsigned long long)s.tls_resumed);
    int lines, reused, conns;
    access_log(tls_ports[P_CLOSE], 4, &lines, &reused, &conns);
    cr_expect_eq(lines, 4);
    cr_expect_eq(reused, 3, "nginx's $ssl_session_reused said %d of %d", reused, lines);
}

/* The pool over TLS: while the first connection's request is held at the
 * sink, the next batch opens a second connection, which offers the first
 * one's session and resumes it; both requests are in flight at once. */
Test(tls, a_second_connection_of_the_pool_resumes_the_first_ones_session)
{
    segops_options o = SEGOPS_OPTIONS_INIT;
    o.max_connections = 4;
    cr_assert_eq(setup(P_GOOD, 100, &o), 0);
    sink_hold(H.sink, 1);
    struct sink_counts k;
    for (uint64_t b = 0; b < 3; b++) {
        cr_assert_eq(track_tagged(0, (int)b * 20, 20), 20);
        for (int i = 0; i < 15000; i++) {
            h_counts(&H, &k);
            if (k.in_progress == b + 1)
                break;
            h_sleep_ms(2);
        }
        cr_assert_eq(k.in_progress, b + 1, "%llu requests in flight over TLS",
                     (unsigned long long)b + 1);
    }
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(H.c, &s);
    cr_expect_eq(s.requests_in_flight, 3);
    cr_expect_eq(s.tls_handshakes, 3);
    cr_expect_eq(s.tls_resumed, 2, "the later connections resumed the first one's session");
    sink_hold(H.sink, 0);
    cr_assert_eq(segops_flush(H.c, 20000), 0);
    segops_stats(H.c, &s);
    cr_expect_eq(s.delivered, 60);
    int lines, reused, conns;
    access_log(tls_ports[P_GOOD], 3, &lines, &reused, &conns);
    cr_expect_eq(lines, 3);
    cr_expect_eq(conns, 3);
    cr_expect_eq(reused, 2, "nginx's $ssl_session_reused said %d of %d", reused, lines);
}

/* A refused certificate: a configuration problem no retry cures, so the
 * batch fails with SEGOPS_ETLS after exactly one attempt (max_retries 3
 * would allow four), the reason is logged and in the delivery report,
 * every event is accounted for. */
static void expect_refused_at(const char *host, int p, const char *reason)
{
    segops_options o = SEGOPS_OPTIONS_INIT;
    o.max_retries = 3;
    cr_assert_eq(setup_host(host, p, 0, &o), 0);
    cr_assert_eq(track_tagged(0, 0, 5), 5);
    cr_expect_eq(segops_flush(H.c, 10000), SEGOPS_ETLS);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(H.c, &s);
    cr_expect_eq(s.failed, 5);
    cr_expect_eq(s.delivered, 0);
    cr_expect_eq(s.retries, 0, "a certificate failure was retried %llu times",
                 (unsigned long long)s.retries);
    cr_expect_eq(H.last.attempts, 1);
    cr_expect_eq(s.tls_handshakes, 0);
    h_expect_invariant(H.c);
    cr_expect_eq(H.last.result, SEGOPS_ETLS);
    cr_expect(strstr(H.log, reason) != NULL, "log lacks \"%s\": %s", reason, H.log);
    cr_expect(strstr(H.last_detail, reason) != NULL, "delivery detail lacks \"%s\": %s",
              reason, H.last_detail);
    cr_expect(strstr(H.log, "sk_test") == NULL);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.requests, 0, "a refused server must never see the request");
}

static void expect_refused(int p, const char *reason)
{
    expect_refused_at(NULL, p, reason);
}

Test(tls, refuses_a_certificate_from_another_ca)
{
    expect_refused(P_ROGUE, "not trusted");
}

Test(tls, refuses_a_certificate_for_another_host)
{
    expect_refused(P_WRONG, "does not match the host name localhost");
    cr_expect(strstr(H.log, "it names other.invalid") != NULL, "%s", H.log);
}

/* https://127.0.0.1 against a certificate with IP:127.0.0.1 (and no DNS
 * name): accepted -- BearSSL's own engine checks DNS names only -- and no
 * SNI sent for an address (RFC 6066 §3): nginx logs $ssl_server_name "-". */
Test(tls, accepts_an_ip_address_san_for_an_ipv4_literal_and_sends_no_sni)
{
    segops_options o = SEGOPS_OPTIONS_INIT;
    cr_assert_eq(setup_host("127.0.0.1", P_IP, 100, &o), 0);
    cr_assert_eq(track_tagged(0, 0, 10), 10);
    cr_expect_eq(segops_flush(H.c, 10000), 0, "%s", H.log);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(H.c, &s);
    cr_expect_eq(s.delivered, 10);
    cr_expect_eq(s.tls_handshakes, 1);
    int lines, reused, conns;
    char sni[64] = "";
    access_log_full(tls_ports[P_IP], 1, &lines, &reused, &conns, NULL, sni);
    cr_expect_eq(lines, 1);
    cr_expect_str_eq(sni, "-", "the client sent SNI \"%s\" for an IP literal", sni);
}

Test(tls, accepts_an_ip_address_san_for_an_ipv6_literal)
{
    segops_options o = SEGOPS_OPTIONS_INIT;
    h_start_sink(&H, NULL, 100);
    tls_nginx_start(H.port);
    if (!tls_have_ipv6) {
        cr_log_info("no IPv6 loopback: skipped");
        return;
    }
    static char url[64], ca[96];
    snprintf(url, sizeof(url), "https://[::1]:%u", (unsigned)tls_ports[P_IP]);
    snprintf(ca, sizeof(ca), "%s/ca.pem", tls_dir);
    o.api_url = url;
    o.ca_file = ca;
    o.flush_interval_ms = 60000;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_tagged(0, 0, 10), 10);
    cr_expect_eq(segops_flush(H.c, 10000), 0, "%s", H.log);
    int lines, reused, conns;
    char sni[64] = "";
    access_log_full(tls_ports[P_IP], 1, &lines, &reused, &conns, NULL, sni);
    cr_expect_eq(lines, 1);
    cr_expect_str_eq(sni, "-", "the client sent SNI \"%s\" for an IP literal", sni);
}

/* An absolute name, https://localhost.:port: resolved as written (the
 * private /etc/hosts knows only "localhost.", so the lookup must carry the
 * dot), while SNI, the certificate check and the Host header use the name
 * without it (nginx logs $ssl_server_name and $http_host). */
Test(tls, an_absolute_name_is_resolved_with_its_dot_and_sent_without_it)
{
    if (geteuid() != 0)
        cr_skip_test("needs root (a private /etc/hosts in a mount namespace)");
    if (netfix_private_etc("127.0.0.1 localhost.\n", NULL) != 0)
        cr_skip_test("no private /etc here (%s)", strerror(errno));
    segops_options o = SEGOPS_OPTIONS_INIT;
    cr_assert_eq(setup_host("localhost.", P_GOOD, 100, &o), 0, "%s", H.log);
    cr_assert_eq(track_tagged(0, 0, 5), 5);
    cr_expect_eq(segops_flush(H.c, 10000), 0, "%s", H.log);
    int lines, reused, conns;
    char sni[64] = "", host[64] = "", want[64];
    access_log_host(tls_ports[P_GOOD], 1, &lines, &reused, &conns, NULL, sni, host);
    cr_expect_eq(lines, 1);
    cr_expect_str_eq(sni, "localhost", "SNI without the trailing dot");
    snprintf(want, sizeof(want), "localhost:%u", (unsigned)tls_ports[P_GOOD]);
    cr_expect_str_eq(host, want, "Host header without the trailing dot");
}

Test(tls, refuses_a_certificate_for_another_address)
{
    expect_refused_at("127.0.0.1", P_OTHERIP, "does not match the address 127.0.0.1");
    cr_expect(strstr(H.log, "it names 10.9.8.7") != NULL, "%s", H.log);
}

/* An address is matched against iPAddress entries only: a certificate
 * naming localhost (and the address only in its CN) does not do. */
Test(tls, refuses_a_dns_only_certificate_for_an_address)
{
    expect_refused_at("127.0.0.1", P_GOOD, "no IP address of the certificate matches");
}

/* A name only in the subject's CN, no subjectAltName: refused, as Go,
 * Chrome and Firefox refuse it (BearSSL alone accepts it). */
Test(tls, refuses_a_certificate_without_subject_alt_name)
{
    expect_refused(P_CNONLY, "no subjectAltName");
}

/* A handshake that fails for a server's protocol settings: the alert named
 * as RFC 8446 names it, with a hint, and retried as any transient failure
 * (max_retries 1: two attempts). */
static void expect_alert(const char *const *args, const char *alert, const char *hint)
{
    h_start_sink(&H, NULL, 0);
    tls_nginx_start(H.port); /* the PKI */
    uint16_t port = tls_s_server_start("server", args);
    static char url[64], ca[96];
    snprintf(url, sizeof(url), "https://localhost:%u", (unsigned)port);
    snprintf(ca, sizeof(ca), "%s/ca.pem", tls_dir);
    segops_options o = SEGOPS_OPTIONS_INIT;
    o.api_url = url;
    o.ca_file = ca;
    o.max_retries = 1;
    o.flush_interval_ms = 60000;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_tagged(0, 0, 3), 3);
    cr_expect_eq(segops_flush(H.c, 20000), SEGOPS_ETLS);
    cr_expect_eq(H.last.result, SEGOPS_ETLS);
    cr_expect_eq(H.last.attempts, 2, "a protocol failure is retried");
    cr_expect(strstr(H.log, alert) != NULL, "log lacks \"%s\": %s", alert, H.log);
    cr_expect(strstr(H.log, hint) != NULL, "log lacks \"%s\": %s", hint, H.log);
    cr_expect(strstr(H.last_detail, alert) != NULL, "detail lacks \"%s\": %s", alert,
              H.last_detail);
    h_expect_invariant(H.c);
}

Test(tls, names_the_protocol_version_alert_of_a_tls13_only_server)
{
    static const char *const args[] = {"-tls1_3", NULL};
    expect_alert(args, "server sent fatal alert protocol_version (70)",
                 "does not accept TLS 1.2");
}

Test(tls, names_the_alert_of_a_tls11_only_server)
{
    /* OpenSSL 3 needs security level 0 for TLS 1.1; it answers a TLS 1.2
     * ClientHello with handshake_failure */
    static const char *const args[] = {"-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", NULL};
    expect_alert(args, "server sent fatal alert handshake_failure (40)", "TLS 1.2 only");
}

Test(tls, names_the_alert_when_no_cipher_suite_is_in_common)
{
    static const char *const args[] = {"-tls1_2", "-cipher", "AES128-SHA", NULL};
    expect_alert(args, "server sent fatal alert handshake_failure (40)",
                 "no protocol version, cipher suite or curve in common");
}

Test(tls, refuses_an_expired_certificate)
{
    /* mkcerts.sh: valid from 2020-01-01 to 2020-02-01 */
    expect_refused(P_EXPIRED, "the server's certificate expired on 2020-02-01 00:00:00 UTC");
}

Test(tls, refuses_the_server_when_trusting_only_the_system_bundle)
{
    segops_options o = SEGOPS_OPTIONS_INIT;
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

static char creation_log[1024];

static void log_creation(void *user, int level, const char *line)
{
    (void)user;
    cr_expect_eq(level, SEGOPS_LOG_ERROR);
    snprintf(creation_log, sizeof(creation_log), "%s", line);
}

/* The logger, on the creating thread, says which file and why. */
Test(tls, creation_fails_on_an_unreadable_or_empty_ca_file_and_logs_why)
{
    segops_options o = SEGOPS_OPTIONS_INIT;
    o.api_url = "https://localhost:1";
    o.api_key = "sk_test";
    o.logger = log_creation;
    o.ca_file = "/nonexistent/ca.pem";
    segops_client *c;
    cr_expect_eq(segops_client_new(&o, &c), SEGOPS_ETLS);
    cr_expect(strstr(creation_log, "/nonexistent/ca.pem") &&
                  strstr(creation_log, "No such file or directory") &&
                  strstr(creation_log, "ca_file"),
              "%s", creation_log);
    o.ca_file = "/dev/null";
    cr_expect_eq(segops_client_new(&o, &c), SEGOPS_ETLS);
    cr_expect(strstr(creation_log, "\"/dev/null\" is empty"), "%s", creation_log);
}

Test(tls, eight_threads_deliver_every_event_exactly_once_over_tls, .timeout = 180)
{
#ifdef SG_TSAN
    enum { T = 8, N = 5000 };
#else
    enum { T = 8, N = 50000 };
#endif
    segops_options o = SEGOPS_OPTIONS_INIT;
    o.max_producers = T;
    cr_assert_eq(setup(P_GOOD, N, &o), 0);
    h_exactly_once(&H, T, N, 120000);
}

/* segops-send over https with the private CA: exit 0, event delivered. */
Test(tls, segops_send_delivers_over_https_with_a_private_ca)
{
    h_start_sink(&H, NULL, 0);
    tls_nginx_start(H.port);
    char url[64], ca[96];
    snprintf(url, sizeof(url), "https://localhost:%u", (unsigned)tls_ports[P_GOOD]);
    snprintf(ca, sizeof(ca), "%s/ca.pem", tls_dir);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        execl(SEGOPS_SEND_PATH, "segops-send", "--url", url, "--key", "sk_test", "--ca", ca,
              "--quiet", "--user", "user-123", "--type", "order_placed", "order_id=ord-456",
              "total=89.95", (char *)NULL);
        _exit(127);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "segops-send exit status %d", st);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.queued, 1);
    cr_expect(strstr(H.last_event, "\"total\":89.95") != NULL, "%s", H.last_event);
}
