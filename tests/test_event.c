/* SPDX-License-Identifier: MIT */
/* Tests for src/event.c: every validation rule, slot bounds, rendering. */
#include <criterion/criterion.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "clock.h"
#include "event.h"
#include "json.h"

/* sg_event_encode() of NUL-terminated strings (the 0.1 call shape). */
static int encode_nts(void *slot, size_t size, const char *u, const char *t, const char *at,
                      const segops_prop *p, size_t n, uint64_t stamp)
{
    struct sg_event_in in = {u, SEGOPS_NTS, t, SEGOPS_NTS, at, SEGOPS_TIME_NONE, p, n};
    return sg_event_encode(slot, size, &in, stamp);
}

static _Alignas(8) unsigned char slot[4096];
static char out[4096 * 6 + 200];

static int enc(const char *u, const char *t, const char *at, const segops_prop *p, size_t n)
{
    return encode_nts(slot, 512, u, t, at, p, n, 0);
}

static struct sg_clock realtime_clock(void)
{
    struct sg_clock ck;
    memset(&ck, 0, sizeof(ck));
    return ck; /* use_tsc = 0: stamps are Unix ns */
}

static const char *render(void)
{
    struct sg_clock ck = realtime_clock();
    size_t n = sg_event_render(slot, out, &ck);
    cr_assert_leq(n, sg_event_render_bound(slot));
    out[n] = 0;
    return out;
}

Test(event, user_id_required)
{
    cr_expect_eq(enc(NULL, "a", NULL, NULL, 0), SEGOPS_EUSERID);
    cr_expect_eq(enc("", "a", NULL, NULL, 0), SEGOPS_EUSERID);
}

Test(event, event_type_must_be_snake_case)
{
    const char *bad[] = {"", "Order", "order-placed", "1order", "_x", "order placed", "ordér", "a.b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(enc("u", bad[i], NULL, NULL, 0), SEGOPS_EEVENTTYPE, "%s", bad[i]);
    cr_expect_eq(enc("u", NULL, NULL, NULL, 0), SEGOPS_EEVENTTYPE);
    cr_expect_eq(enc("u", "page_viewed", NULL, NULL, 0), 0);
    cr_expect_eq(enc("u", "a9_b_", NULL, NULL, 0), 0);
    char longtype[300];
    memset(longtype, 'a', 299);
    longtype[299] = 0;
    cr_expect_eq(enc("u", longtype, NULL, NULL, 0), SEGOPS_EEVENTTYPE);
}

Test(event, occurred_at_must_be_rfc3339)
{
    cr_expect_eq(enc("u", "a", "2026-04-25", NULL, 0), SEGOPS_ETIMESTAMP);
    cr_expect_eq(enc("u", "a", "2026-02-30T00:00:00Z", NULL, 0), SEGOPS_ETIMESTAMP);
    cr_expect_eq(enc("u", "a", "yesterday", NULL, 0), SEGOPS_ETIMESTAMP);
    cr_expect_eq(enc("u", "a", "2026-04-25T16:32:00.1234+02:00", NULL, 0), 0);
    cr_expect(strstr(render(), "\"occurred_at\":\"2026-04-25T14:32:00.123Z\""), "%s", out);
}

Test(event, double_must_be_finite)
{
    segops_prop p[] = {SEGOPS_F64("x", NAN)};
    cr_expect_eq(enc("u", "a", NULL, p, 1), SEGOPS_ENUMBER);
    segops_prop q[] = {SEGOPS_F64("x", INFINITY)};
    cr_expect_eq(enc("u", "a", NULL, q, 1), SEGOPS_ENUMBER);
    segops_prop r[] = {SEGOPS_F64("x", -INFINITY)};
    cr_expect_eq(enc("u", "a", NULL, r, 1), SEGOPS_ENUMBER);
}

Test(event, raw_json_validated)
{
    const char *bad[] = {"{", "[1,]", "\"str\"", "42", "{\"a\":1}x", "{'a':1}", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        segops_prop p[] = {SEGOPS_JSON("j", bad[i])};
        cr_expect_eq(enc("u", "a", NULL, p, 1), SEGOPS_ERAWJSON, "%s", bad[i]);
    }
    segops_prop ok[] = {SEGOPS_JSON("j", "{\"a\":[1,2,{\"b\":null}]}")};
    cr_expect_eq(enc("u", "a", NULL, ok, 1), 0);
    cr_expect(strstr(render(), "\"j\":{\"a\":[1,2,{\"b\":null}]}"), "%s", out);
}

Test(event, property_keys_and_values_required)
{
    segops_prop p[] = {SEGOPS_STR(NULL, "v")};
    cr_expect_eq(enc("u", "a", NULL, p, 1), SEGOPS_EPROP);
    segops_prop q[] = {SEGOPS_STR("", "v")};
    cr_expect_eq(enc("u", "a", NULL, q, 1), SEGOPS_EPROP);
    segops_prop r[] = {SEGOPS_STR("k", NULL)};
    cr_expect_eq(enc("u", "a", NULL, r, 1), SEGOPS_EPROP);
    segops_prop s[] = {{"k", 99, NULL, 0, 0, 0.0, SEGOPS_NTS}};
    cr_expect_eq(enc("u", "a", NULL, s, 1), SEGOPS_EPROP);
    cr_expect_eq(enc("u", "a", NULL, NULL, 3), SEGOPS_EPROP);
}

Test(event, too_big_for_slot)
{
    static char big[600];
    memset(big, 'x', sizeof(big) - 1);
    cr_expect_eq(enc(big, "a", NULL, NULL, 0), SEGOPS_ETOOBIG);
    segops_prop p[] = {SEGOPS_STR("k", big)};
    cr_expect_eq(enc("u", "a", NULL, p, 1), SEGOPS_ETOOBIG);
    /* the largest string that fits: header 24 + "u" + "a" + 1+4+1 + 4 */
    size_t fit = 512 - sizeof(struct sg_slot_hdr) - 2 - 6 - 4;
    segops_prop q[] = {SEGOPS_STRN("k", big, fit)};
    cr_expect_eq(enc("u", "a", NULL, q, 1), 0);
    segops_prop r[] = {SEGOPS_STRN("k", big, fit + 1)};
    cr_expect_eq(enc("u", "a", NULL, r, 1), SEGOPS_ETOOBIG);
}

Test(event, renders_every_type)
{
    segops_prop p[] = {
        SEGOPS_STR("s", "a\"b\\c\n"), SEGOPS_I64("i", -9223372036854775807LL - 1),
        SEGOPS_F64("f", 89.95),       SEGOPS_BOOL("t", 1),
        SEGOPS_BOOL("no", 0),         SEGOPS_NULL("n"),
    };
    cr_assert_eq(
        encode_nts(slot, 512, "user-123", "order_placed", NULL, p, 6, 1777127520123000000ull), 0);
    cr_expect_str_eq(render(),
                     "{\"user_id\":\"user-123\",\"event_type\":\"order_placed\","
                     "\"occurred_at\":\"2026-04-25T14:32:00.123Z\",\"payload\":{"
                     "\"s\":\"a\\\"b\\\\c\\n\",\"i\":-9223372036854775808,\"f\":89.95,"
                     "\"t\":true,\"no\":false,\"n\":null}}");
}

Test(event, empty_payload_is_an_object)
{
    cr_assert_eq(enc("u", "a", NULL, NULL, 0), 0);
    cr_expect(strstr(render(), "\"payload\":{}}"), "%s", out);
}

Test(event, invalid_utf8_becomes_replacement)
{
    cr_assert_eq(enc("u\xff\xfe", "a", NULL, NULL, 0), 0);
    cr_expect(strstr(render(), "\"user_id\":\"u\xef\xbf\xbd\xef\xbf\xbd\""), "%s", out);
}

/* Random events of random bytes: the rendering is always valid JSON and
 * within the bound that the sender relies on to size its arena. */
Test(event, random_events_render_valid_json_within_bound)
{
    srand(7);
    char strs[4][200];
    for (int iter = 0; iter < 3000; iter++) {
        for (int k = 0; k < 4; k++) {
            int n = rand() % 199;
            for (int i = 0; i < n; i++)
                strs[k][i] = (char)(1 + rand() % 255);
            strs[k][n] = 0;
        }
        if (!strs[0][0])
            strcpy(strs[0], "u");
        segops_prop p[] = {SEGOPS_STR(strs[1][0] ? strs[1] : "k", strs[2]),
                           SEGOPS_F64("f", (double)rand() / 7.0),
                           SEGOPS_STR("x", strs[3])};
        int rc = encode_nts(slot, 1024, strs[0], "ev", NULL, p, 3, 0);
        cr_assert(rc == 0 || rc == SEGOPS_ETOOBIG);
        if (rc)
            continue;
        struct sg_clock ck = realtime_clock();
        size_t n = sg_event_render(slot, out, &ck);
        cr_assert_leq(n, sg_event_render_bound(slot));
        cr_assert_eq(sg_json_validate(out, n, 8, 1), 0, "%.*s", (int)n, out);
    }
}

/* The sender reuses the formatted second between events; a change of
 * second, of millisecond, and a time outside 0000..9999 must all show. */
Test(event, occurred_at_is_right_across_seconds_and_out_of_range)
{
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {1777127520123, "2026-04-25T14:32:00.123Z"},
        {1777127520999, "2026-04-25T14:32:00.999Z"},
        {1777127521000, "2026-04-25T14:32:01.000Z"},
        {1777127520007, "2026-04-25T14:32:00.007Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {0, "1970-01-01T00:00:00.000Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(
            encode_nts(slot, 512, "u", "e", NULL, NULL, 0, (uint64_t)(cases[i].ms * 1000000)), 0);
        char want[64];
        snprintf(want, sizeof(want), "\"occurred_at\":\"%s\"", cases[i].text);
        cr_expect(strstr(render(), want) != NULL, "%s: %s", cases[i].text, out);
    }
    /* an hour before year 0000 (a valid RFC 3339 offset): the formatter
     * clamps, and the cached second must not change that */
    cr_assert_eq(encode_nts(slot, 512, "u", "e", "0000-01-01T00:00:00.250+01:00", NULL, 0, 0), 0);
    cr_expect(strstr(render(), "\"occurred_at\":\"0000-01-01T00:00:00.000Z\"") != NULL, "%s",
              out);
}

/* ------------------------------------------------ lengths, epoch ms */

static int enc_in(const struct sg_event_in *in)
{
    return sg_event_encode(slot, 512, in, 0);
}

/* Strings given with a length are read for exactly that many bytes: cut
 * out of one buffer, no NUL after any of them, embedded NULs kept. */
Test(event, lengths_take_bytes_out_of_a_larger_buffer)
{
    static const char buf[] = "user\0-7XXorder_placedYYcolourZZredQQ";
    segops_prop p[] = {SEGOPS_STRN("", buf + 31, 3)};
    p[0].key = buf + 23; /* "colour", followed by "ZZ" */
    p[0].key_len = 6;
    struct sg_event_in in = {buf, 7, buf + 9, 12, NULL, SEGOPS_TIME_NONE, p, 1};
    cr_assert_eq(enc_in(&in), 0);
    cr_expect(strstr(render(), "{\"user_id\":\"user\\u0000-7\",\"event_type\":\"order_placed\"") !=
                  NULL,
              "%s", out);
    cr_expect(strstr(out, "\"payload\":{\"colour\":\"red\"}}") != NULL, "%s", out);
}

/* SEGOPS_NTS and 0 both mean NUL-terminated for user id, type and key. */
Test(event, nts_and_zero_lengths_mean_nul_terminated)
{
    segops_prop p[] = {SEGOPS_I64("n", 1), SEGOPS_I64("m", 2)};
    p[1].key_len = 0;
    struct sg_event_in in = {"user-1", SEGOPS_NTS, "page_viewed", 0, NULL, 0, p, 2};
    cr_assert_eq(enc_in(&in), 0);
    cr_expect(strstr(render(), "\"user_id\":\"user-1\",\"event_type\":\"page_viewed\"") != NULL,
              "%s", out);
    cr_expect(strstr(out, "\"payload\":{\"n\":1,\"m\":2}}") != NULL, "%s", out);
    in.user_len = 0;
    in.type_len = SEGOPS_NTS;
    cr_assert_eq(enc_in(&in), 0);
}

/* An event type with a length is validated over exactly those bytes: a
 * NUL or any other byte outside [a-z0-9_] inside it is refused, and the
 * byte after it is never looked at. */
Test(event, event_type_with_length_is_validated_over_its_bytes)
{
    struct sg_event_in in = {"u", SEGOPS_NTS, "page_viewedX", 11, NULL, 0, NULL, 0};
    cr_expect_eq(enc_in(&in), 0);
    in.event_type = "page\0viewed";
    cr_expect_eq(enc_in(&in), SEGOPS_EEVENTTYPE);
    in.event_type = "Page_viewed";
    cr_expect_eq(enc_in(&in), SEGOPS_EEVENTTYPE);
    char longtype[300];
    memset(longtype, 'a', sizeof(longtype));
    in.event_type = longtype;
    in.type_len = 255;
    cr_expect_eq(enc_in(&in), 0);
    in.type_len = 256;
    cr_expect_eq(enc_in(&in), SEGOPS_EEVENTTYPE);
}

/* A length larger than the slot is ETOOBIG without reading the string:
 * the bytes sit right before a PROT_NONE page, lengths run far past it. */
Test(event, huge_lengths_are_too_big_without_reading_past_them)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    cr_assert_eq(mprotect(m + pg, (size_t)pg, PROT_NONE), 0);
    char *u = m + pg - 4;
    memcpy(u, "abcd", 4); /* no NUL before the guard page */
    struct sg_event_in in = {u, 4, "e", SEGOPS_NTS, NULL, 0, NULL, 0};
    cr_expect_eq(enc_in(&in), 0);
    size_t huge[] = {513, 1u << 20, SIZE_MAX - 1, SIZE_MAX - 300};
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        in.user_len = huge[i];
        cr_expect_eq(enc_in(&in), SEGOPS_ETOOBIG, "user_len %zu", huge[i]);
    }
    segops_prop p[] = {SEGOPS_I64("k", 1)};
    p[0].key = u;
    in.user_len = 4;
    in.props = p;
    in.nprops = 1;
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        p[0].key_len = huge[i];
        cr_expect_eq(enc_in(&in), SEGOPS_ETOOBIG, "key_len %zu", huge[i]);
    }
    munmap(m, (size_t)pg * 2);
}

/* occurred_at_ms: used when occurred_at is NULL, rendered as RFC 3339 UTC
 * with milliseconds; occurred_at text wins; out of 0000..9999 refused. */
Test(event, epoch_ms_renders_as_rfc3339_with_millis)
{
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {1777127520123LL, "2026-04-25T14:32:00.123Z"},
        {1777127520007LL, "2026-04-25T14:32:00.007Z"},
        {1LL, "1970-01-01T00:00:00.001Z"},
        {-1LL, "1969-12-31T23:59:59.999Z"},
        {253402300799999LL, "9999-12-31T23:59:59.999Z"},
        {-62167219200000LL, "0000-01-01T00:00:00.000Z"},
    };
    struct sg_event_in in = {"u", SEGOPS_NTS, "e", SEGOPS_NTS, NULL, 0, NULL, 0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        in.occurred_at_ms = cases[i].ms;
        /* the call's own stamp must not be used */
        cr_assert_eq(sg_event_encode(slot, 512, &in, 5000000000ull), 0);
        char want[64];
        snprintf(want, sizeof(want), "\"occurred_at\":\"%s\"", cases[i].text);
        cr_expect(strstr(render(), want) != NULL, "%s: %s", cases[i].text, out);
    }
    in.occurred_at = "2020-01-01T00:00:00Z";
    in.occurred_at_ms = 1777127520123LL;
    cr_assert_eq(enc_in(&in), 0);
    cr_expect(strstr(render(), "\"occurred_at\":\"2020-01-01T00:00:00.000Z\"") != NULL, "%s",
              out);
    in.occurred_at = NULL;
    in.occurred_at_ms = 253402300800000LL;
    cr_expect_eq(enc_in(&in), SEGOPS_ETIMESTAMP);
    in.occurred_at_ms = -62167219200001LL;
    cr_expect_eq(enc_in(&in), SEGOPS_ETIMESTAMP);
    in.occurred_at_ms = INT64_MIN;
    cr_expect_eq(enc_in(&in), SEGOPS_ETIMESTAMP);
    /* SEGOPS_TIME_NONE: the time of the call (stamp 5 s after the epoch) */
    in.occurred_at_ms = SEGOPS_TIME_NONE;
    cr_assert_eq(sg_event_encode(slot, 512, &in, 5000000000ull), 0);
    cr_expect(strstr(render(), "\"occurred_at\":\"1970-01-01T00:00:05.000Z\"") != NULL, "%s",
              out);
}

/* ------------------------------------------------------ prepared events */

static int prep(const char *t, const segops_prop_spec *k, size_t n, segops_prepared **out)
{
    return sg_prepare(t, SEGOPS_NTS, k, sizeof(*k), offsetof(segops_prop_spec, key),
                      offsetof(segops_prop_spec, key_len), offsetof(segops_prop_spec, type), n,
                      out);
}

static int enc_prep(size_t size, const segops_prepared *p, const char *u, const segops_value *v,
                    size_t n, int64_t ms)
{
    struct sg_prepared_in in = {p, u, SEGOPS_NTS, v, NULL, n, ms};
    return sg_event_encode_prepared(slot, size, &in, 1777127520123000000ull);
}

/* The render of the current slot, copied (render() reuses `out`). */
static char *render_dup(void)
{
    return strdup(render());
}

Test(prepared, event_type_and_keys_refused_with_track_codes)
{
    segops_prepared *p = (segops_prepared *)1;
    const char *bad[] = {"", "Order", "order-placed", "1order", "_x", "order placed", "a.b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(prep(bad[i], NULL, 0, &p), SEGOPS_EEVENTTYPE, "%s", bad[i]);
    cr_expect_eq(prep(NULL, NULL, 0, &p), SEGOPS_EEVENTTYPE);
    char longtype[300];
    memset(longtype, 'a', 299);
    longtype[299] = 0;
    cr_expect_eq(prep(longtype, NULL, 0, &p), SEGOPS_EEVENTTYPE);
    segops_prop_spec k1[] = {SEGOPS_KEY_STR(NULL)};
    cr_expect_eq(prep("a", k1, 1, &p), SEGOPS_EPROP);
    segops_prop_spec k2[] = {SEGOPS_KEY_STR("ok"), SEGOPS_KEY_I64("")};
    cr_expect_eq(prep("a", k2, 2, &p), SEGOPS_EPROP);
    segops_prop_spec k3[] = {SEGOPS_KEY("k", 99)};
    cr_expect_eq(prep("a", k3, 1, &p), SEGOPS_EPROP);
    segops_prop_spec k4[] = {SEGOPS_KEY("k", 0)};
    cr_expect_eq(prep("a", k4, 1, &p), SEGOPS_EPROP);
    /* the same type as a length-given event type: validated over its bytes */
    cr_expect_eq(sg_prepare("order_placedX", 12, NULL, sizeof(segops_prop_spec), 0, 8, 16, 0, &p),
                 0);
    free(p);
    cr_expect_eq(sg_prepare("ab-", 3, NULL, sizeof(segops_prop_spec), 0, 8, 16, 0, &p),
                 SEGOPS_EEVENTTYPE);
}

Test(prepared, values_checked_per_call)
{
    segops_prop_spec k[] = {SEGOPS_KEY_STR("s"), SEGOPS_KEY_F64("f"), SEGOPS_KEY_JSON("j")};
    segops_prepared *p;
    cr_assert_eq(prep("order_placed", k, 3, &p), 0);
    segops_value ok[] = {SEGOPS_VSTR("x"), SEGOPS_VF64(1.5), SEGOPS_VJSON("[1]")};
    cr_expect_eq(enc_prep(512, p, "u", ok, 3, 0), 0);
    cr_expect_eq(enc_prep(512, p, NULL, ok, 3, 0), SEGOPS_EUSERID);
    cr_expect_eq(enc_prep(512, p, "", ok, 3, 0), SEGOPS_EUSERID);
    cr_expect_eq(enc_prep(512, p, "u", ok, 2, 0), SEGOPS_EPROP);      /* count */
    cr_expect_eq(enc_prep(512, p, "u", NULL, 3, 0), SEGOPS_EPROP);
    segops_value nan_[] = {SEGOPS_VSTR("x"), SEGOPS_VF64(NAN), SEGOPS_VJSON("[1]")};
    cr_expect_eq(enc_prep(512, p, "u", nan_, 3, 0), SEGOPS_ENUMBER);
    segops_value inf[] = {SEGOPS_VSTR("x"), SEGOPS_VF64(-INFINITY), SEGOPS_VJSON("[1]")};
    cr_expect_eq(enc_prep(512, p, "u", inf, 3, 0), SEGOPS_ENUMBER);
    segops_value raw[] = {SEGOPS_VSTR("x"), SEGOPS_VF64(1), SEGOPS_VJSON("{\"a\":}")};
    cr_expect_eq(enc_prep(512, p, "u", raw, 3, 0), SEGOPS_ERAWJSON);
    segops_value nul[] = {SEGOPS_VSTR(NULL), SEGOPS_VF64(1), SEGOPS_VJSON("[1]")};
    cr_expect_eq(enc_prep(512, p, "u", nul, 3, 0), SEGOPS_EPROP);
    segops_value typ[] = {SEGOPS_VI64(1), SEGOPS_VF64(1), SEGOPS_VJSON("[1]")};
    cr_expect_eq(enc_prep(512, p, "u", typ, 3, 0), SEGOPS_EPROP);     /* type */
    cr_expect_eq(enc_prep(512, p, "u", ok, 3, SG_MS_MAX + 1), SEGOPS_ETIMESTAMP);
    cr_expect_eq(enc_prep(512, p, "u", ok, 3, SG_MS_MIN - 1), SEGOPS_ETIMESTAMP);
    free(p);
}

/* The limit is the plain encoding's: the same event fits (or not) either
 * way, to the byte -- once type and keys take the 8 bytes of the handle
 * pointer that the prepared slot holds instead. */
Test(prepared, too_big_is_the_plain_limit)
{
    static char big[600];
    memset(big, 'x', sizeof(big) - 1);
    segops_prop_spec k[] = {SEGOPS_KEY_STR("kk")};
    segops_prepared *p;
    cr_assert_eq(prep("a", k, 1, &p), 0);
    size_t fit = 512 - sizeof(struct sg_slot_hdr) - 2 - 7 - 4;
    segops_prop pl[] = {SEGOPS_STRN("kk", big, fit)};
    cr_expect_eq(enc("u", "a", NULL, pl, 1), 0);
    pl[0].len = fit + 1;
    cr_expect_eq(enc("u", "a", NULL, pl, 1), SEGOPS_ETOOBIG);
    segops_value v1[] = {SEGOPS_VSTRN(big, fit)};
    cr_expect_eq(enc_prep(512, p, "u", v1, 1, 0), 0);
    segops_value v2[] = {SEGOPS_VSTRN(big, fit + 1)};
    cr_expect_eq(enc_prep(512, p, "u", v2, 1, 0), SEGOPS_ETOOBIG);
    segops_value v3[] = {SEGOPS_VSTR(big)};
    cr_expect_eq(enc_prep(512, p, "u", v3, 1, 0), SEGOPS_ETOOBIG);
    cr_expect_eq(enc_prep(512, p, big, v1, 1, 0), SEGOPS_ETOOBIG);
    segops_value v4[] = {SEGOPS_VSTRN(big, (size_t)1 << 40)};
    cr_expect_eq(enc_prep(512, p, "u", v4, 1, 0), SEGOPS_ETOOBIG);
    free(p);
    /* an event without properties, whose handle pointer outweighs its
     * type: still within the slot */
    cr_assert_eq(prep("a", NULL, 0, &p), 0);
    size_t ufit = 128 - sizeof(struct sg_slot_hdr) - sizeof(void *);
    big[ufit] = 0;
    cr_expect_eq(enc_prep(128, p, big, NULL, 0, 0), 0);
    big[ufit] = 'x';
    big[ufit + 1] = 0;
    cr_expect_eq(enc_prep(128, p, big, NULL, 0, 0), SEGOPS_ETOOBIG);
    big[ufit + 1] = 'x';
    free(p);
}

/* A prepared event renders to exactly the bytes of the plain one. */
Test(prepared, renders_exactly_as_plain_every_type)
{
    segops_prop props[] = {
        SEGOPS_STR("s\"q", "a\"b\\c\n"), SEGOPS_I64("i", -9223372036854775807LL - 1),
        SEGOPS_F64("f", 89.95),          SEGOPS_BOOL("t", 1),
        SEGOPS_BOOL("no", 0),            SEGOPS_NULL("n\xff"),
        SEGOPS_JSON("j", "{\"a\":[1,2]}"),
    };
    size_t n = sizeof(props) / sizeof(props[0]);
    struct sg_event_in in = {"user-123", SEGOPS_NTS, "order_placed", SEGOPS_NTS, NULL, 0, props, n};
    cr_assert_eq(sg_event_encode(slot, 512, &in, 1777127520123000000ull), 0);
    struct sg_slot_hdr h;
    memcpy(&h, slot, sizeof(h));
    char *plain = render_dup();
    segops_prepared *p;
    cr_assert_eq(sg_prepare("order_placed", SEGOPS_NTS, props, sizeof(props[0]),
                            offsetof(segops_prop, key), offsetof(segops_prop, key_len),
                            offsetof(segops_prop, type), n, &p),
                 0);
    struct sg_prepared_in pin = {p, "user-123", SEGOPS_NTS, NULL, props, n, 0};
    cr_assert_eq(sg_event_encode_prepared_props(slot, 512, &pin, 1777127520123000000ull), 0);
    struct sg_slot_hdr hp;
    memcpy(&hp, slot, sizeof(hp));
    cr_expect_eq(hp.len, h.len, "the render bound is the plain one");
    cr_expect_str_eq(render(), plain);
    /* and with no properties, and with a given time */
    cr_assert_eq(sg_event_encode(slot, 512,
                                 &(struct sg_event_in){"u", 0, "a", 0, NULL, 86400000, NULL, 0},
                                 0),
                 0);
    free(plain);
    plain = render_dup();
    segops_prepared *e;
    cr_assert_eq(prep("a", NULL, 0, &e), 0);
    cr_assert_eq(enc_prep(512, e, "u", NULL, 0, 86400000), 0);
    cr_expect_str_eq(render(), plain);
    cr_expect(strstr(plain, "\"payload\":{}}"), "%s", plain);
    free(plain);
    free(e);
    free(p);
}

/* Random keys, values and user ids of random bytes: the prepared slot
 * renders as the plain one, valid JSON within the bound, or both refuse
 * with the same code. */
Test(prepared, random_events_render_as_plain)
{
    srand(11);
    char strs[5][200];
    for (int iter = 0; iter < 3000; iter++) {
        for (int k = 0; k < 5; k++) {
            int n = rand() % 199;
            for (int i = 0; i < n; i++)
                strs[k][i] = (char)(1 + rand() % 255);
            strs[k][n] = 0;
        }
        segops_prop props[] = {SEGOPS_STR(strs[1][0] ? strs[1] : "k", strs[2]),
                               SEGOPS_F64("f", (double)rand() / 7.0 - 1e5),
                               SEGOPS_I64(strs[4][0] ? strs[4] : "i", rand()),
                               SEGOPS_STR("x", strs[3])};
        struct sg_event_in in = {strs[0], SEGOPS_NTS, "ev_x", SEGOPS_NTS, NULL, 0, props, 4};
        int rc = sg_event_encode(slot, 1024, &in, 0);
        char *plain = rc == 0 ? render_dup() : NULL;
        segops_prepared *p;
        cr_assert_eq(sg_prepare("ev_x", SEGOPS_NTS, props, sizeof(props[0]),
                                offsetof(segops_prop, key), offsetof(segops_prop, key_len),
                                offsetof(segops_prop, type), 4, &p),
                     0);
        struct sg_prepared_in pin = {p, strs[0], SEGOPS_NTS, NULL, props, 4, 0};
        int prc = sg_event_encode_prepared_props(slot, 1024, &pin, 0);
        cr_assert_eq(prc, rc, "iteration %d", iter);
        if (rc == 0) {
            const char *r = render();
            cr_assert_str_eq(r, plain);
            cr_assert_eq(sg_json_validate(r, strlen(r), 8, 1), 0);
        }
        free(plain);
        free(p);
    }
}
