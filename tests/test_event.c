/* SPDX-License-Identifier: MIT */
/* Tests for src/event.c: every validation rule, slot bounds, rendering. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "event.h"
#include "json.h"

static _Alignas(8) unsigned char slot[4096];
static char out[4096 * 6 + 200];

static int enc(const char *u, const char *t, const char *at, const segops_prop *p, size_t n)
{
    return sg_event_encode(slot, 512, u, t, at, p, n, 0);
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
    segops_prop s[] = {{"k", 99, NULL, 0, 0, 0.0}};
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
    cr_assert_eq(sg_event_encode(slot, 512, "user-123", "order_placed", NULL, p, 6,
                                 1777127520123000000ull),
                 0);
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
        int rc = sg_event_encode(slot, 1024, strs[0], "ev", NULL, p, 3, 0);
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
        cr_assert_eq(sg_event_encode(slot, 512, "u", "e", NULL, NULL, 0,
                                     (uint64_t)(cases[i].ms * 1000000)),
                     0);
        char want[64];
        snprintf(want, sizeof(want), "\"occurred_at\":\"%s\"", cases[i].text);
        cr_expect(strstr(render(), want) != NULL, "%s: %s", cases[i].text, out);
    }
    /* an hour before year 0000 (a valid RFC 3339 offset): the formatter
     * clamps, and the cached second must not change that */
    cr_assert_eq(sg_event_encode(slot, 512, "u", "e", "0000-01-01T00:00:00.250+01:00", NULL, 0,
                                 0),
                 0);
    cr_expect(strstr(render(), "\"occurred_at\":\"0000-01-01T00:00:00.000Z\"") != NULL, "%s",
              out);
}
