/* SPDX-License-Identifier: MIT */
/*
 * fork() safety: a child inherits a copy of the client but not its sender
 * thread.  The copy must refuse events with SEGOPS_EFORKED (never swallow
 * them), must never send the parent's queued events again, and the
 * parent's client must keep working -- same connection included.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static struct harness H;

static void teardown(void)
{
    h_stop(&H);
}

TestSuite(fork, .fini = teardown, .timeout = 60);

static int track(int seq)
{
    segops_prop p[] = {SEGOPS_I64("thread", 0), SEGOPS_I64("seq", seq)};
    return segops_track(
        H.c, &(segops_event){.user_id = "u", .event_type = "e", .payload = p, .payload_len = 2});
}

Test(fork, child_copy_refuses_events_and_never_resends_the_parents)
{
    h_start_sink(&H, NULL, 100);
    segops_options o = SEGOPS_OPTIONS_INIT;
    o.flush_interval_ms = 60000;
    cr_assert_eq(h_client(&H, &o), 0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(track(i), 0);
    cr_assert_eq(segops_flush(H.c, 5000), 0); /* connection open */
    for (int i = 5; i < 10; i++)
        cr_assert_eq(track(i), 0); /* queued in the parent at fork time */

    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int bad = 0;
        bad |= (track(100) != SEGOPS_EFORKED) << 0;
        bad |= (segops_identify(H.c, &(segops_context){.user_id = "u"}) != SEGOPS_EFORKED) << 1;
        bad |= (segops_flush(H.c, 1000) != SEGOPS_EFORKED) << 2;
        uint64_t lost = 99;
        bad |= (segops_shutdown(H.c, 1000, &lost) != 0) << 3;
        bad |= (lost != 0) << 4;
        _exit(bad);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st), "child crashed");
    cr_expect_eq(WEXITSTATUS(st), 0, "child checks failed: mask %d", WEXITSTATUS(st));

    /* the parent still delivers its queue, on the same connection */
    for (int i = 10; i < 15; i++)
        cr_assert_eq(track(i), 0);
    cr_expect_eq(segops_flush(H.c, 5000), 0);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(H.c, &s);
    cr_expect_eq(s.delivered, 15);
    struct sink_counts k;
    h_counts(&H, &k);
    cr_expect_eq(k.queued, 15, "the sink got %llu events: the child resent some",
                 (unsigned long long)k.queued);
    cr_expect_eq(k.connections, 1, "the child's exit broke the parent's connection");
    cr_expect_eq(H.dup_tagged, 0);
    cr_expect_eq(H.untagged, 0);
}
