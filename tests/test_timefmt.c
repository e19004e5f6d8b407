/* SPDX-License-Identifier: MIT */
/*
 * test_timefmt.c -- src/timefmt.c: RFC 3339 parse/format, HTTP-date parse,
 * civil-date arithmetic.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <string.h>

#include "timefmt.h"

static int p3339(const char *s, int64_t *ms)
{
    return sg_rfc3339_parse(s, strlen(s), ms);
}

static const char *fmt(int64_t ms)
{
    static char b[SG_RFC3339_MS_LEN + 1];
    cr_assert_eq(sg_rfc3339_format_ms(b, ms), SG_RFC3339_MS_LEN);
    b[SG_RFC3339_MS_LEN] = '\0';
    return b;
}

/* 2026-04-25T14:32:00Z in seconds. */
#define T2026 1777127520LL

Test(timefmt, days_from_civil_known_dates)
{
    cr_assert_eq(sg_days_from_civil(1970, 1, 1), 0);
    cr_assert_eq(sg_days_from_civil(1970, 1, 2), 1);
    cr_assert_eq(sg_days_from_civil(1969, 12, 31), -1);
    cr_assert_eq(sg_days_from_civil(2000, 3, 1), 11017);
    cr_assert_eq(sg_days_from_civil(2026, 4, 25), T2026 / 86400);
    cr_assert_eq(sg_days_from_civil(0, 1, 1), -719528);
    cr_assert_eq(sg_days_from_civil(1600, 1, 1), -135140);
    cr_assert_eq(sg_days_from_civil(-1, 12, 31), -719529);
}

Test(timefmt, days_from_civil_is_continuous)
{
    int64_t prev = sg_days_from_civil(-401, 12, 31);
    for (int64_t y = -400; y <= 2500; y++) {
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        static const unsigned ml[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        for (unsigned m = 1; m <= 12; m++) {
            unsigned n = ml[m - 1] + (m == 2 && leap);
            for (unsigned d = 1; d <= n; d++) {
                int64_t v = sg_days_from_civil(y, m, d);
                cr_assert_eq(v, prev + 1, "%lld-%u-%u", (long long)y, m, d);
                prev = v;
            }
        }
    }
}

Test(timefmt, rfc3339_parses_valid_forms)
{
    static const struct { const char *s; int64_t ms; } t[] = {
        { "1970-01-01T00:00:00Z", 0 },
        { "1970-01-01t00:00:00z", 0 },
        { "1970-01-01 00:00:00Z", 0 },
        { "2026-04-25T14:32:00Z", T2026 * 1000 },
        { "2026-04-25T14:32:00.123Z", T2026 * 1000 + 123 },
        { "2026-04-25T14:32:00.1Z", T2026 * 1000 + 100 },
        { "2026-04-25T14:32:00.12Z", T2026 * 1000 + 120 },
        { "2026-04-25T14:32:00.123456789Z", T2026 * 1000 + 123 },
        { "2026-04-25T14:32:00.999999999Z", T2026 * 1000 + 999 },
        { "2026-04-25T16:32:00+02:00", T2026 * 1000 },
        { "2026-04-25T09:02:00-05:30", T2026 * 1000 },
        { "2026-04-25T14:32:00+00:00", T2026 * 1000 },
        { "2026-04-25T14:32:00-00:00", T2026 * 1000 },
        { "2026-04-26T14:31:00+23:59", T2026 * 1000 },
        { "1969-12-31T23:59:59.999Z", -1 },
        { "1969-12-31T23:59:59Z", -1000 },
        { "0000-01-01T00:00:00Z", -62167219200000LL },
        { "9999-12-31T23:59:59.999Z", 253402300799999LL },
        { "2016-12-31T23:59:60Z", 1483228799999LL },  /* leap second */
        { "2016-12-31T23:59:60.5Z", 1483228799999LL },
        { "2024-02-29T00:00:00Z", 1709164800000LL },
        { "2000-02-29T00:00:00Z", 951782400000LL },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int64_t ms = 42;
        cr_assert_eq(p3339(t[i].s, &ms), 0, "%s", t[i].s);
        cr_assert_eq(ms, t[i].ms, "%s: %lld", t[i].s, (long long)ms);
    }
}

Test(timefmt, rfc3339_rejects_bad_fields_and_garbage)
{
    static const char *bad[] = {
        "", "2026-04-25", "2026-04-25T14:32:00", "2026-04-25T14:32Z",
        "2026-00-25T14:32:00Z", "2026-13-25T14:32:00Z", "2026-04-00T14:32:00Z",
        "2026-04-31T14:32:00Z", "2026-01-32T14:32:00Z", "2026-02-29T00:00:00Z",
        "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2100-02-29T00:00:00Z",
        "2026-04-25T24:00:00Z", "2026-04-25T14:60:00Z", "2026-04-25T14:32:61Z",
        "2026-04-25T14:32:00+24:00", "2026-04-25T14:32:00+01:60",
        "2026-04-25T14:32:00+0100", "2026-04-25T14:32:00+01", "2026-04-25T14:32:00+1:00",
        "2026-04-25T14:32:00.Z", "2026-04-25T14:32:00.1234567890Z",
        "2026-04-25T14:32:00.12aZ", "2026-04-25T14:32:00ZZ", "2026-04-25T14:32:00Z ",
        " 2026-04-25T14:32:00Z", "2026-04-25T14:32:00Zjunk", "2026-04-25T14:32:00+01:00x",
        "2026-04-25X14:32:00Z", "2026/04/25T14:32:00Z", "2026-04-25T14-32-00Z",
        "20260-04-25T14:32:00Z", "-2026-04-25T14:32:00Z", "+2026-04-25T14:32:00Z",
        "2026-4-25T14:32:00Z", "2026-04-25T1:32:00Z", "2026-04-25T14:32:00GMT",
        "2026-04-25T14:32:00 Z", "2026-04-25T14:32:0aZ", "abcd-04-25T14:32:00Z",
        "2026-04-25T14:32:00,123Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        cr_assert_eq(p3339(bad[i], &ms), -1, "should reject: '%s'", bad[i]);
        cr_assert_eq(ms, 42, "output touched on failure");
    }
}

Test(timefmt, rfc3339_rejects_embedded_nul)
{
    int64_t ms;
    cr_assert_eq(sg_rfc3339_parse("2026-04-25T14:32:00Z\0", 21, &ms), -1);
    cr_assert_eq(sg_rfc3339_parse("2026-04-25T14:32:00Z", 19, &ms), -1);
}

Test(timefmt, formats_known_instants)
{
    cr_assert_str_eq(fmt(0), "1970-01-01T00:00:00.000Z");
    cr_assert_str_eq(fmt(T2026 * 1000 + 123), "2026-04-25T14:32:00.123Z");
    cr_assert_str_eq(fmt(-1), "1969-12-31T23:59:59.999Z");
    cr_assert_str_eq(fmt(-86400000), "1969-12-31T00:00:00.000Z");
    cr_assert_str_eq(fmt(-86400001), "1969-12-30T23:59:59.999Z");
    cr_assert_str_eq(fmt(951782400000LL), "2000-02-29T00:00:00.000Z");
    cr_assert_str_eq(fmt(253402300799999LL), "9999-12-31T23:59:59.999Z");
    cr_assert_str_eq(fmt(-62167219200000LL), "0000-01-01T00:00:00.000Z");
    cr_assert_str_eq(fmt(-62135596800000LL), "0001-01-01T00:00:00.000Z");
}

Test(timefmt, format_clamps_out_of_range)
{
    cr_assert_str_eq(fmt(253402300800000LL), "9999-12-31T23:59:59.999Z");
    cr_assert_str_eq(fmt(INT64_MAX), "9999-12-31T23:59:59.999Z");
    cr_assert_str_eq(fmt(-62167219200001LL), "0000-01-01T00:00:00.000Z");
    cr_assert_str_eq(fmt(INT64_MIN), "0000-01-01T00:00:00.000Z");
}

Test(timefmt, parse_of_format_is_identity)
{
    const int64_t lo = -62167219200000LL, hi = 253402300799999LL;
    uint64_t x = 88172645463325252ull;
    static const int64_t edge[] = { 0, -1, 1, 999, -999, 86399999, -86400000,
                                    951782399999LL, 951782400000LL };

    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        int64_t back;
        cr_assert_eq(sg_rfc3339_parse(fmt(edge[i]), SG_RFC3339_MS_LEN, &back), 0);
        cr_assert_eq(back, edge[i]);
    }
    for (int i = 0; i < 200000; i++) {
        int64_t v, back;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v = lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
        cr_assert_eq(sg_rfc3339_parse(fmt(v), SG_RFC3339_MS_LEN, &back), 0, "%s", fmt(v));
        cr_assert_eq(back, v, "%s", fmt(v));
    }
}

static int hd(const char *s, int64_t *t)
{
    return sg_http_date_parse(s, strlen(s), t);
}

Test(timefmt, http_date_parses_all_three_forms)
{
    int64_t t;
    cr_assert_eq(hd("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
    cr_assert_eq(t, 784111777);
    cr_assert_eq(hd("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
    cr_assert_eq(t, 784111777);
    cr_assert_eq(hd("Sun Nov  6 08:49:37 1994", &t), 0);
    cr_assert_eq(t, 784111777);
    cr_assert_eq(hd("Sun Nov 06 08:49:37 1994", &t), 0);
    cr_assert_eq(t, 784111777);
    cr_assert_eq(hd("Wednesday, 01-Jan-25 00:00:00 GMT", &t), 0);
    cr_assert_eq(t, 1735689600);
    cr_assert_eq(hd("Sat, 25 Apr 2026 14:32:00 GMT", &t), 0);
    cr_assert_eq(t, T2026);
    cr_assert_eq(hd("Thu, 01 Jan 1970 00:00:00 GMT", &t), 0);
    cr_assert_eq(t, 0);
    cr_assert_eq(hd("Thu, 29 Feb 2024 23:59:59 GMT", &t), 0);
    cr_assert_eq(t, 1709251199);
}

Test(timefmt, http_date_rejects_bad_names_and_junk)
{
    static const char *bad[] = {
        "", "Sun, 06 Nov 1994 08:49:37 GMT ", " Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 08:49:37 gmt",
        "Xyz, 06 Nov 1994 08:49:37 GMT", "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMTx", "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT", "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT", "Sun, 29 Feb 1900 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:49:37 GMT", "Sun, 06 Nov 1994 08:60:37 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT", "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT", "Sun 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06 Nov 1994 08:49:37 GMT", "Sundae, 06-Nov-94 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT", "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT junk", "Sunday, 06-Xyz-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994 ", "Sun Nov 6 08:49:37 1994", "Abc Nov  6 08:49:37 1994",
        "Sun Xyz  6 08:49:37 1994", "Sun Nov  6 08:49:37 94", "Sun Nov  0 08:49:37 1994",
        "Sun Nov 31 08:49:37 1994", "120", "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Nov 1994 08.49.37 GMT",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t t = 42;
        cr_assert_eq(hd(bad[i], &t), -1, "should reject: '%s'", bad[i]);
        cr_assert_eq(t, 42);
    }
}

Test(timefmt, http_date_two_digit_year_pivots_at_70)
{
    int64_t t;
    cr_assert_eq(hd("Thursday, 01-Jan-70 00:00:00 GMT", &t), 0);
    cr_assert_eq(t, 0);
    cr_assert_eq(hd("Saturday, 31-Dec-69 00:00:00 GMT", &t), 0);
    cr_assert_eq(t, sg_days_from_civil(2069, 12, 31) * 86400);
}
