/* SPDX-License-Identifier: MIT */
/* Tests for the retry schedule of src/sender.c. */
#include <criterion/criterion.h>

#include "client.h"

Test(sender, backoff_schedule_is_0_500_1000_then_doubling)
{
    /* rnd = 0: no jitter */
    cr_expect_eq(sg_backoff_ms(0, 30000, 0), 0);
    cr_expect_eq(sg_backoff_ms(1, 30000, 0), 500);
    cr_expect_eq(sg_backoff_ms(2, 30000, 0), 1000);
    cr_expect_eq(sg_backoff_ms(3, 30000, 0), 2000);
    cr_expect_eq(sg_backoff_ms(4, 30000, 0), 4000);
}

Test(sender, backoff_is_capped)
{
    cr_expect_eq(sg_backoff_ms(10, 30000, 0), 30000);
    cr_expect_eq(sg_backoff_ms(1000, 30000, 0), 30000);
    cr_expect_eq(sg_backoff_ms(3, 1500, 0), 1500);
}

Test(sender, jitter_stays_within_ten_percent)
{
    for (uint64_t r = 0; r < 100000; r += 7) {
        int64_t d = sg_backoff_ms(2, 30000, r * 2654435761u);
        cr_assert(d >= 1000 && d <= 1100, "%lld", (long long)d);
        cr_assert_eq(sg_backoff_ms(0, 30000, r), 0, "the first retry is immediate");
    }
}
