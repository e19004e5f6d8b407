/* SPDX-License-Identifier: MIT */
/*
 * fuzz_rfc3339.c -- RFC 3339 and HTTP-date parsers on arbitrary bytes.  An
 * accepted RFC 3339 time inside the formatter's range must survive
 * format -> parse unchanged (ms resolution); the formatter output for any
 * 64-bit value must parse.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "timefmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const int64_t lo = -62167219200000LL;  /* 0000-01-01T00:00:00.000Z */
    const int64_t hi = 253402300799999LL;  /* 9999-12-31T23:59:59.999Z */
    char out[SG_RFC3339_MS_LEN];
    int64_t ms, back, secs;

    if (sg_rfc3339_parse((const char *)data, size, &ms) == 0) {
        /* Offsets can carry year 0000/9999 just outside the range. */
        if (ms < lo - 86400000LL || ms > hi + 86400000LL)
            abort();
        if (ms >= lo && ms <= hi) {
            if (sg_rfc3339_format_ms(out, ms) != SG_RFC3339_MS_LEN)
                abort();
            if (sg_rfc3339_parse(out, sizeof out, &back) != 0 || back != ms)
                abort();
        }
    }
    if (size >= 8) {
        int64_t v;
        memcpy(&v, data, sizeof v);
        sg_rfc3339_format_ms(out, v);
        if (sg_rfc3339_parse(out, sizeof out, &back) != 0)
            abort();
        if (v >= lo && v <= hi && back != v)
            abort();
    }
    (void)sg_http_date_parse((const char *)data, size, &secs);
    return 0;
}
