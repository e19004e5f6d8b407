/* SPDX-License-Identifier: MIT */
/*
 * timefmt.h -- internal: RFC 3339 parse/format and HTTP-date parse.  Pure
 * functions over caller buffers; locale- and time-zone-independent (no
 * gmtime/timegm/strptime: civil-date arithmetic done here).
 */
#ifndef SG_TIMEFMT_H
#define SG_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Length of "YYYY-MM-DDTHH:MM:SS.mmmZ". */
#define SG_RFC3339_MS_LEN 24

/* Parses an RFC 3339 date-time (section 5.6): "YYYY-MM-DDTHH:MM:SS",
 * optional fraction of 1..9 digits, then "Z"/"z" or "+HH:MM"/"-HH:MM".
 * 'T' may also be 't' or ' ' (RFC 3339 allows it).  Checks field ranges
 * (month 1-12, day within the month incl. leap years, hour 0-23, minute
 * 0-59, second 0-60 (leap second accepted, folded to :59.999), offset
 * hours 0-23 / minutes 0-59).  Year 0000-9999.  The whole of s[0..len)
 * must be consumed.  On success stores milliseconds since the Unix epoch
 * (UTC, fraction truncated to ms) and returns 0; else returns -1. */
int sg_rfc3339_parse(const char *s, size_t len, int64_t *unix_ms);

/* Writes unix_ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" (exactly SG_RFC3339_MS_LEN
 * bytes, no NUL) into out.  Valid for years 0000-9999 (values outside are
 * clamped to that range).  Returns SG_RFC3339_MS_LEN. */
size_t sg_rfc3339_format_ms(char *out, int64_t unix_ms);

/* Parses an HTTP-date (RFC 9110 5.6.7): IMF-fixdate
 * "Sun, 06 Nov 1994 08:49:37 GMT", obsolete RFC 850
 * "Sunday, 06-Nov-94 08:49:37 GMT" and asctime "Sun Nov  6 08:49:37 1994".
 * Whole input must match.  Stores seconds since the epoch; returns 0 or -1. */
int sg_http_date_parse(const char *s, size_t len, int64_t *unix_s);

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
int64_t sg_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
