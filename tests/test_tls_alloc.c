/* SPDX-License-Identifier: MIT */
/*
 * Steady state over TLS allocates nothing: like tests/test_alloc.c, with
 * malloc and friends interposed and counted, but through nginx terminating
 * TLS.  The sink runs in a forked child and nginx in its own process, so
 * only the client's threads (this one and the sender) are counted.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "segops.h"
#include "sink.h"
#include "tls_fixture.h"

#include "alloc_count.h"

static pid_t sink_pid;

static void teardown(void)
{
    tls_nginx_stop();
    if (sink_pid > 0) {
        kill(sink_pid, SIGKILL);
        waitpid(sink_pid, NULL, 0);
    }
}

Test(tls_alloc, steady_state_over_tls_allocates_nothing, .fini = teardown, .timeout = 120)
{
    uint16_t port;
    sink_pid = sink_child(&port);
    tls_nginx_start(port);

    char url[64], ca[96];
    snprintf(url, sizeof(url), "https://localhost:%u", (unsigned)tls_ports[TLS_GOOD]);
    snprintf(ca, sizeof(ca), "%s/ca.pem", tls_dir);
    segops_client *c = counted_client(url, ca);
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95)};
    segops_event ev = {
        .user_id = "user-123", .event_type = "order_placed", .payload = props, .payload_len = 2};
    segops_counters s = SEGOPS_COUNTERS_INIT;
    unsigned long long n = steady_state_allocs(c, &ev, 20, 1000, &s);
    cr_expect_eq(s.delivered, 20100);
    /* one handshake per connection of the pool, none to replace one */
    cr_expect_eq(s.reconnects, 0, "a connection was not kept alive");
    cr_expect(s.tls_handshakes >= 1 && s.tls_handshakes <= 16, "handshakes %llu",
              (unsigned long long)s.tls_handshakes);
    cr_expect_eq(n, 0, "%llu allocations in steady state over TLS", n);
}
