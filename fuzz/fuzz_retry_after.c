/* SPDX-License-Identifier: MIT */
/*
 * fuzz_retry_after.c -- sg_retry_after_parse on arbitrary bytes against
 * several clocks, including the extremes: a delay is never negative and
 * never above the 2^31 s cap, and never depends on bytes past len.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t nows[] = { 0, 784111777, 1777127520, -1,
                                    INT64_MIN, INT64_MAX };
    const int64_t cap = ((int64_t)1 << 31) * 1000;

    for (size_t i = 0; i < sizeof nows / sizeof nows[0]; i++) {
        int64_t ms = -5;
        int rc = sg_retry_after_parse((const char *)data, size, nows[i], &ms);
        if (rc == 0 && (ms < 0 || ms > cap || ms % 1000 != 0))
            abort();
        if (rc != 0 && (rc != -1 || ms != -5))
            abort();
    }
    return 0;
}
