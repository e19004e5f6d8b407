/* SPDX-License-Identifier: MIT */
/*
 * timefmt.c -- RFC 3339 and HTTP-date conversions.
 *
 * All calendar arithmetic is done here on the proleptic Gregorian calendar
 * with floor division, so results never depend on TZ, the locale or the C
 * library's time functions.  Parsers read exactly s[0..len) and accept a
 * string only if every byte belongs to the grammar.
 */
#include "timefmt.h"

#include <string.h>

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 0000-01-01 to January 1st of year y.  Year 0 is a leap year,
 * and floor division keeps the count right for negative years too. */
static int64_t days_before_year(int64_t y)
{
    int64_t n = y - 1;
    return 365 * y + 1 + floordiv(n, 4) - floordiv(n, 100) + floordiv(n, 400);
}

/* Days before the first of month m (1..12) in a common year. */
static const uint16_t month_start[13] = {
    0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334
};

static unsigned month_days(int64_t y, unsigned m)
{
    static const uint8_t len[13] = { 0, 31, 28, 31, 30, 31, 30,
                                     31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : len[m];
}

int64_t sg_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t doy;

    if (m < 1 || m > 12)
        m = 1;
    doy = month_start[m] + (m > 2 && is_leap(y)) + (int64_t)d - 1;
    return days_before_year(y) - days_before_year(1970) + doy;
}

/* --------------------------------------------------------------- RFC 3339 */

/* Reads n digits at s; -1 if any is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int sg_rfc3339_parse(const char *s, size_t len, int64_t *unix_ms)
{
    int y, mo, d, h, mi, sec, ms = 0, off = 0;
    size_t i;
    int64_t t;

    /* "YYYY-MM-DDTHH:MM:SS" then at least one byte of zone. */
    if (s == NULL || len < 20)
        return -1;
    if (s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':')
        return -1;
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
        return -1;
    y = digits(s, 4);
    mo = digits(s + 5, 2);
    d = digits(s + 8, 2);
    h = digits(s + 11, 2);
    mi = digits(s + 14, 2);
    sec = digits(s + 17, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || (unsigned)d > month_days(y, (unsigned)mo) ||
        h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
        return -1;

    i = 19;
    if (s[i] == '.') {
        size_t start = ++i;
        int scale = 100;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (i - start >= 9)
                return -1;
            ms += (s[i] - '0') * scale; /* digits past the third add 0 */
            scale /= 10;
            i++;
        }
        if (i == start)
            return -1;
    }
    if (i >= len)
        return -1;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        int oh, om;
        if (len - i < 6 || s[i + 3] != ':')
            return -1;
        oh = digits(s + i + 1, 2);
        om = digits(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        off = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return -1;
    }
    if (i != len)
        return -1;

    if (sec == 60) {
        /* Unix time has no leap second: keep it inside the same minute. */
        sec = 59;
        ms = 999;
    }
    t = sg_days_from_civil(y, (unsigned)mo, (unsigned)d);
    t = ((t * 24 + h) * 60 + mi - off) * 60 + sec;
    *unix_ms = t * 1000 + ms;
    return 0;
}

/* Inclusive range that format can represent: 0000-01-01 .. 9999-12-31. */
#define MS_PER_DAY 86400000LL

static void put2(char *o, unsigned v)
{
    o[0] = (char)('0' + v / 10);
    o[1] = (char)('0' + v % 10);
}

size_t sg_rfc3339_format_ms(char *out, int64_t unix_ms)
{
    const int64_t lo = sg_days_from_civil(0, 1, 1) * MS_PER_DAY;
    const int64_t hi = sg_days_from_civil(10000, 1, 1) * MS_PER_DAY - 1;
    int64_t days, rem, z, y;
    unsigned m, d, doy;

    if (unix_ms < lo)
        unix_ms = lo;
    if (unix_ms > hi)
        unix_ms = hi;
    days = floordiv(unix_ms, MS_PER_DAY);
    rem = unix_ms - days * MS_PER_DAY; /* [0, MS_PER_DAY) */

    /* Year from days since 0000-01-01: estimate, then correct by one. */
    z = days + days_before_year(1970);
    y = z * 400 / 146097;
    while (y < 9999 && days_before_year(y + 1) <= z)
        y++;
    while (y > 0 && days_before_year(y) > z)
        y--;
    doy = (unsigned)(z - days_before_year(y));
    for (m = 12; m > 1; m--) {
        unsigned start = month_start[m] + (unsigned)(m > 2 && is_leap(y));
        if (doy >= start)
            break;
    }
    d = doy - (month_start[m] + (unsigned)(m > 2 && is_leap(y))) + 1;

    put2(out, (unsigned)(y / 100));
    put2(out + 2, (unsigned)(y % 100));
    out[4] = '-';
    put2(out + 5, m);
    out[7] = '-';
    put2(out + 8, d);
    out[10] = 'T';
    put2(out + 11, (unsigned)(rem / 3600000));
    out[13] = ':';
    put2(out + 14, (unsigned)(rem / 60000 % 60));
    out[16] = ':';
    put2(out + 17, (unsigned)(rem / 1000 % 60));
    out[19] = '.';
    out[20] = (char)('0' + rem % 1000 / 100);
    put2(out + 21, (unsigned)(rem % 100));
    out[23] = 'Z';
    return SG_RFC3339_MS_LEN;
}

/* -------------------------------------------------------------- HTTP-date */

static const char wday_short[7][4] = { "Mon", "Tue", "Wed", "Thu",
                                       "Fri", "Sat", "Sun" };
static const char *const wday_long[7] = { "Monday", "Tuesday", "Wednesday",
                                          "Thursday", "Friday", "Saturday",
                                          "Sunday" };
static const char month_name[12][4] = { "Jan", "Feb", "Mar", "Apr",
                                        "May", "Jun", "Jul", "Aug",
                                        "Sep", "Oct", "Nov", "Dec" };

/* HTTP-date is case-sensitive (RFC 9110 5.6.7), so are these matches. */
static int match_month(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (memcmp(s, month_name[i], 3) == 0)
            return i + 1;
    return -1;
}

static int match_wday_short(const char *s)
{
    for (int i = 0; i < 7; i++)
        if (memcmp(s, wday_short[i], 3) == 0)
            return 0;
    return -1;
}

/* "HH:MM:SS" at s; seconds of the day, or -1. */
static int time_of_day(const char *s)
{
    int h, m, sec;
    if (s[2] != ':' || s[5] != ':')
        return -1;
    h = digits(s, 2);
    m = digits(s + 3, 2);
    sec = digits(s + 6, 2);
    if (h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 60)
        return -1;
    if (sec == 60)
        sec = 59;
    return (h * 60 + m) * 60 + sec;
}

static int finish_date(int64_t y, int mo, int d, int tod, int64_t *unix_s)
{
    if (mo < 1 || d < 1 || (unsigned)d > month_days(y, (unsigned)mo) || tod < 0)
        return -1;
    *unix_s = sg_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + tod;
    return 0;
}

/* The weekday is checked for spelling only: a date whose weekday does not
 * match is still the date its numbers say. */
int sg_http_date_parse(const char *s, size_t len, int64_t *unix_s)
{
    if (s == NULL)
        return -1;

    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (len == 29 && s[3] == ',') {
        if (match_wday_short(s) != 0 || s[4] != ' ' || s[7] != ' ' ||
            s[11] != ' ' || s[16] != ' ' || s[25] != ' ' ||
            memcmp(s + 26, "GMT", 3) != 0)
            return -1;
        int y = digits(s + 12, 4);
        if (y < 0)
            return -1;
        return finish_date(y, match_month(s + 8), digits(s + 5, 2),
                           time_of_day(s + 17), unix_s);
    }

    /* asctime: "Sun Nov  6 08:49:37 1994" (day is " 6" or "06") */
    if (len == 24 && s[3] == ' ') {
        int d, y;
        if (match_wday_short(s) != 0 || s[7] != ' ' || s[10] != ' ' ||
            s[19] != ' ')
            return -1;
        if (s[8] == ' ')
            d = digits(s + 9, 1);
        else
            d = digits(s + 8, 2);
        y = digits(s + 20, 4);
        if (y < 0 || d < 0)
            return -1;
        return finish_date(y, match_month(s + 4), d, time_of_day(s + 11),
                           unix_s);
    }

    /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
    for (int w = 0; w < 7; w++) {
        size_t wl = strlen(wday_long[w]);
        const char *r;
        int y;
        if (len != wl + 24 || memcmp(s, wday_long[w], wl) != 0)
            continue;
        r = s + wl;
        if (r[0] != ',' || r[1] != ' ' || r[4] != '-' || r[8] != '-' ||
            r[11] != ' ' || r[20] != ' ' || memcmp(r + 21, "GMT", 3) != 0)
            return -1;
        y = digits(r + 9, 2);
        if (y < 0)
            return -1;
        /* Two-digit years: without a clock here, pivot at 70 (the epoch);
         * RFC 850 dates are only sent by servers older than 2000 anyway. */
        y += y < 70 ? 2000 : 1900;
        return finish_date(y, match_month(r + 5), digits(r + 2, 2),
                           time_of_day(r + 12), unix_s);
    }
    return -1;
}
