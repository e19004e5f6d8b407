/* SPDX-License-Identifier: MIT */
/* Tests for src/clock.c: stamps convert to the wall clock. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"

Test(clock, stamp_converts_to_wall_time_within_a_millisecond_or_two)
{
    struct sg_clock ck;
    sg_clock_init(&ck);
    for (int i = 0; i < 5; i++) {
        usleep(20000);
        sg_clock_recalibrate(&ck);
        uint64_t s = sg_clock_stamp(&ck);
        int64_t wall = sg_realtime_ns() / 1000000;
        int64_t ms = sg_clock_to_unix_ms(&ck, s);
        cr_expect(llabs(ms - wall) <= 2, "stamp %lld wall %lld", (long long)ms,
                  (long long)wall);
    }
}

Test(clock, stamp_taken_earlier_converts_to_the_earlier_time)
{
    struct sg_clock ck;
    sg_clock_init(&ck);
    uint64_t s = sg_clock_stamp(&ck);
    int64_t wall = sg_realtime_ns() / 1000000;
    usleep(300000); /* events wait in the queue; conversion happens later */
    sg_clock_recalibrate(&ck);
    int64_t ms = sg_clock_to_unix_ms(&ck, s);
    cr_expect(llabs(ms - wall) <= 2, "stamp %lld wall %lld", (long long)ms, (long long)wall);
}

Test(clock, realtime_mode_when_asked)
{
    setenv("SEGOPS_CLOCK", "realtime", 1);
    struct sg_clock ck;
    sg_clock_init(&ck);
    unsetenv("SEGOPS_CLOCK");
    cr_expect_eq(ck.use_tsc, 0);
    uint64_t s = sg_clock_stamp(&ck);
    cr_expect(llabs(sg_clock_to_unix_ms(&ck, s) - sg_realtime_ns() / 1000000) <= 1);
    /* pre-1970 instants floor, not truncate */
    cr_expect_eq(sg_clock_to_unix_ms(&ck, (uint64_t)(int64_t)-1), -1);
}
