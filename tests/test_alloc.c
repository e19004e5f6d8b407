/*
 * Steady state allocates nothing: malloc and friends are interposed in this
 * test program and counted.  After a warm-up (first connection, host
 * resolution), 100,000 tracked events and 50 flushed batches must not
 * allocate a byte -- neither on the producer thread nor on the sender.  The
 * sink runs in a forked child process so its allocations do not count.
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

#include "alloc_count.h"

Test(alloc, steady_state_track_and_send_allocate_nothing, .timeout = 60)
{
    uint16_t port;
    pid_t child = sink_child(&port);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)port);
    segops_options o;
    memset(&o, 0, sizeof(o));
    o.api_url = url;
    o.api_key = "sk_test";
    o.flush_interval_ms = 60000;
    segops_client *c;
    unsigned long long at_new = atomic_load(&allocs);
    cr_assert_eq(segops_client_new(&o, &c), 0);
    /* the interposition is live: creation is where the client allocates */
    cr_assert_gt(atomic_load(&allocs), at_new);
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95),
                           SEGOPS_JSON("items", "[{\"sku\":\"a\",\"qty\":2}]")};
    segops_event ev = {"user-123", "order_placed", NULL, props, 3};
    int bad;
    unsigned long long n = steady_state_allocs(c, &ev, 50, 2000, &bad);
    segops_counters s;
    segops_stats(c, &s);
    cr_expect_eq(segops_shutdown(c, 5000, NULL), 0);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    cr_expect_eq(bad, 0);
    cr_expect_eq(s.delivered, 100100);
    cr_expect_eq(n, 0, "%llu allocations in steady state", n);
}
