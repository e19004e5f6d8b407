/* SPDX-License-Identifier: MIT */
/*
 * test_json.c -- src/json.c: string escaping and UTF-8 repair, number
 * writers, and the strict validator.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "json.h"

/* Writes s[0..len) and returns it NUL-terminated in a static buffer,
 * checking the stated worst-case bound with a canary just past it. */
static const char *wr(const char *s, size_t len)
{
    static char out[SG_JSON_STR_MAX(256) + 16];
    size_t bound = SG_JSON_STR_MAX(len), n;

    cr_assert(len <= 256);
    memset(out, 0x5A, sizeof out);
    n = sg_json_write_str(out, s, len);
    cr_assert(n <= bound, "wrote %zu > bound %zu", n, bound);
    cr_assert_eq(out[bound], 0x5A, "wrote past the bound");
    out[n] = '\0';
    return out;
}

#define WR(lit) wr(lit, sizeof(lit) - 1)

Test(json, escapes_control_bytes)
{
    for (unsigned c = 0; c < 0x20; c++) {
        char in[1] = { (char)c };
        char want[16];
        switch (c) {
        case '\b': strcpy(want, "\"\\b\""); break;
        case '\f': strcpy(want, "\"\\f\""); break;
        case '\n': strcpy(want, "\"\\n\""); break;
        case '\r': strcpy(want, "\"\\r\""); break;
        case '\t': strcpy(want, "\"\\t\""); break;
        default: snprintf(want, sizeof want, "\"\\u%04x\"", c); break;
        }
        cr_assert_str_eq(wr(in, 1), want, "byte 0x%02x", c);
    }
}

Test(json, escapes_quote_backslash_and_del)
{
    cr_assert_str_eq(WR("a\"b"), "\"a\\\"b\"");
    cr_assert_str_eq(WR("a\\b"), "\"a\\\\b\"");
    cr_assert_str_eq(WR("\x7f"), "\"\\u007f\"");
    cr_assert_str_eq(WR("/"), "\"/\"");
    cr_assert_str_eq(WR(""), "\"\"");
}

Test(json, escapes_line_and_paragraph_separators)
{
    cr_assert_str_eq(WR("a\xe2\x80\xa8" "b\xe2\x80\xa9"), "\"a\\u2028b\\u2029\"");
    /* Neighbours of U+2028/2029 are copied as they are. */
    cr_assert_str_eq(WR("\xe2\x80\xa7\xe2\x80\xaa"), "\"\xe2\x80\xa7\xe2\x80\xaa\"");
}

Test(json, keeps_nul_bytes_inside_strings)
{
    cr_assert_str_eq(wr("a\0b", 3), "\"a\\u0000b\"");
}

Test(json, passes_valid_multibyte_through)
{
    cr_assert_str_eq(WR("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
    cr_assert_str_eq(WR("\xc2\x80\xdf\xbf"), "\"\xc2\x80\xdf\xbf\"");
    cr_assert_str_eq(WR("\xe0\xa0\x80\xef\xbf\xbf"), "\"\xe0\xa0\x80\xef\xbf\xbf\"");
    cr_assert_str_eq(WR("\xed\x9f\xbf\xee\x80\x80"), "\"\xed\x9f\xbf\xee\x80\x80\"");
    cr_assert_str_eq(WR("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"),
                     "\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"");
    cr_assert_str_eq(WR("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");
}

#define FFFD "\xef\xbf\xbd"

Test(json, replaces_invalid_utf8_with_fffd)
{
    static const struct { const char *in; const char *want; } t[] = {
        /* lone continuation bytes, one U+FFFD each */
        { "\x80", "\"" FFFD "\"" },
        { "a\xbf" "b", "\"a" FFFD "b\"" },
        { "\x80\x80", "\"" FFFD FFFD "\"" },
        /* bytes that never start a sequence */
        { "\xc0\xaf", "\"" FFFD FFFD "\"" },          /* overlong '/' */
        { "\xc1\xbf", "\"" FFFD FFFD "\"" },
        { "\xe0\x80\xaf", "\"" FFFD FFFD FFFD "\"" }, /* overlong 3-byte */
        { "\xf0\x80\x80\xaf", "\"" FFFD FFFD FFFD FFFD "\"" },
        { "\xf5\x80\x80\x80", "\"" FFFD FFFD FFFD FFFD "\"" },
        { "\xff", "\"" FFFD "\"" },
        { "\xfe\xff", "\"" FFFD FFFD "\"" },
        /* UTF-16 surrogates encoded in UTF-8 */
        { "\xed\xa0\x80", "\"" FFFD FFFD FFFD "\"" },
        { "\xed\xbf\xbf", "\"" FFFD FFFD FFFD "\"" },
        /* above U+10FFFF */
        { "\xf4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\"" },
        /* truncated: the maximal prefix is one U+FFFD */
        { "\xc3", "\"" FFFD "\"" },
        { "\xe2\x82", "\"" FFFD "\"" },
        { "\xf0\x9f\x98", "\"" FFFD "\"" },
        { "a\xf0\x9f", "\"a" FFFD "\"" },
        /* truncated in the middle, followed by ASCII */
        { "\xe2\x82" "A", "\"" FFFD "A\"" },
        { "\xf0\x9f\x98" "\"", "\"" FFFD "\\\"\"" },
        /* a valid character right after a broken one survives */
        { "\xc3\xc3\xa9", "\"" FFFD "\xc3\xa9\"" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        cr_assert_str_eq(wr(t[i].in, strlen(t[i].in)), t[i].want, "case %zu", i);
}

Test(json, output_of_random_bytes_always_validates)
{
    char in[64];
    static char out[SG_JSON_STR_MAX(64)];
    uint32_t x = 12345;

    for (int it = 0; it < 200000; it++) {
        size_t len, n;
        x = x * 1103515245u + 12345u;
        len = (x >> 16) % sizeof in;
        for (size_t k = 0; k < len; k++) {
            x = x * 1103515245u + 12345u;
            /* Half the time, favour bytes that form (near-)UTF-8. */
            unsigned b = (x >> 16) & 0xFF;
            if ((it & 1) && b < 0x80)
                b = 0x80 | (b & 0x3F);
            in[k] = (char)b;
        }
        n = sg_json_write_str(out, in, len);
        cr_assert(n <= SG_JSON_STR_MAX(len));
        cr_assert_eq(sg_json_validate(out, n, 1, 0), 0, "iteration %d", it);
    }
}

Test(json, writes_i64_extremes)
{
    char b[SG_JSON_I64_MAX + 1];
    static const struct { int64_t v; const char *s; } t[] = {
        { 0, "0" }, { 1, "1" }, { -1, "-1" }, { 10, "10" },
        { INT64_MAX, "9223372036854775807" },
        { INT64_MIN, "-9223372036854775808" },
        { INT64_MIN + 1, "-9223372036854775807" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t n = sg_json_write_i64(b, t[i].v);
        cr_assert(n <= SG_JSON_I64_MAX);
        b[n] = '\0';
        cr_assert_str_eq(b, t[i].s);
    }
}

static void check_f64(double v)
{
    char b[SG_JSON_F64_MAX + 1];
    size_t n = sg_json_write_f64(b, v);
    double back;

    cr_assert(n > 0 && n < SG_JSON_F64_MAX, "length %zu for %a", n, v);
    b[n] = '\0';
    cr_assert_eq(sg_json_validate(b, n, 1, 0), 0, "not JSON: %s", b);
    back = strtod(b, NULL);
    cr_assert(back == v && signbit(back) == signbit(v),
              "%s does not round-trip %a", b, v);
}

Test(json, f64_round_trips)
{
    static const double t[] = {
        0.0, -0.0, 0.1, -0.1, 1.0, 1.5, 1e300, -1e300, 1e-300, 1e20, 1e21,
        1e22, 123456789012345680.0, 89.95, 1.0 / 3.0, 2.0 / 3.0,
        4.9406564584124654e-324, 2.2250738585072009e-308,
        2.2250738585072014e-308, 1.7976931348623157e308, -1.7976931348623157e308,
        9007199254740993.0, 0.30000000000000004, 5e-324, 1e-7, 123e-20,
    };
    uint64_t x = 0x9E3779B97F4A7C15ull;

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        check_f64(t[i]);
    for (int i = 0; i < 100000; i++) {
        double v;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(&v, &x, sizeof v);
        if (isfinite(v))
            check_f64(v);
        /* subnormals: exponent bits cleared */
        uint64_t sub = x & 0x800FFFFFFFFFFFFFull;
        memcpy(&v, &sub, sizeof v);
        check_f64(v);
    }
}

Test(json, f64_prefers_short_forms)
{
    char b[SG_JSON_F64_MAX + 1];
    static const struct { double v; const char *s; } t[] = {
        { 0.1, "0.1" }, { -0.0, "-0" }, { 1e20, "1e+20" }, { 89.95, "89.95" },
        { 100, "100" }, { 0.30000000000000004, "0.30000000000000004" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t n = sg_json_write_f64(b, t[i].v);
        b[n] = '\0';
        cr_assert_str_eq(b, t[i].s);
    }
}

Test(json, f64_refuses_non_finite)
{
    char b[SG_JSON_F64_MAX];
    cr_assert_eq(sg_json_write_f64(b, INFINITY), 0);
    cr_assert_eq(sg_json_write_f64(b, -INFINITY), 0);
    cr_assert_eq(sg_json_write_f64(b, NAN), 0);
}

static int val(const char *s, int container_only)
{
    return sg_json_validate(s, strlen(s), SG_JSON_MAX_DEPTH, container_only);
}

Test(json, validator_accepts_valid_documents)
{
    static const char *ok[] = {
        "0", "-0", "1", "-1", "1.5", "1e5", "1E+5", "1e-05", "-0.0e0", "123",
        "true", "false", "null", "\"\"", "\"a\"", " \t\r\n1 \t\r\n",
        "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uFFFF\"",
        "\"\\ud800\"", "\"\\udc00\\ud800\"", /* lone surrogate escapes */
        "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"", "\"\x7f\"",
        "{}", "[]", "[ ]", "{ }", "[1,2,3]", "[[],[{}]]",
        "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
        "{\"\":0}", "{ \"a\" : 1 , \"b\" : 2 }", "[\"x\" , -1.25e+3]",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_assert_eq(val(ok[i], 0), 0, "should accept: %s", ok[i]);
}

Test(json, validator_rejects_invalid_documents)
{
    static const char *bad[] = {
        "", " ", "[1,]", "{\"a\":1,}", "[,1]", "{,}", "01", "-01", "00",
        "1.", ".5", "-", "+1", "1e", "1e+", "0x10", "1.5.5", "NaN", "Infinity",
        "tru", "truee", "nul", "True", "'a'", "\"a", "\"\\x\"", "\"\\u12\"",
        "\"\\u12G4\"", "\"\\\"", "\"a\tb\"", "\"a\nb\"", "\"\x01\"",
        "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xc3\"",
        "\"\x80\"", "[1 2]", "{\"a\" 1}", "{\"a\":}", "{a:1}", "{1:1}", "[}",
        "{]", "[", "{", "]", "}", "[1]]", "{}{}", "1 2", "[1] x", "{\"a\":1",
        "[\"a\",", "\xef\xbb\xbf{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(val(bad[i], 0), -1, "should reject case %zu: %s", i, bad[i]);
}

Test(json, validator_rejects_embedded_nul)
{
    cr_assert_eq(sg_json_validate("[1]\0", 4, 4, 0), -1);
    cr_assert_eq(sg_json_validate("\"a\0\"", 4, 4, 0), -1);
}

Test(json, validator_container_only_refuses_scalars)
{
    cr_assert_eq(val("1", 1), -1);
    cr_assert_eq(val("\"s\"", 1), -1);
    cr_assert_eq(val("null", 1), -1);
    cr_assert_eq(val("  {}", 1), 0);
    cr_assert_eq(val("[1]", 1), 0);
}

Test(json, validator_enforces_depth_bound)
{
    char b[700];
    for (int d = 1; d <= 100; d++) {
        /* "[{"a":[{"a":...}]}]", d levels */
        size_t n = 0;
        for (int k = 0; k < d; k++) {
            if (k & 1) {
                memcpy(b + n, "{\"a\":", 5);
                n += 5;
            } else {
                b[n++] = '[';
            }
        }
        b[n++] = '0';
        for (int k = d - 1; k >= 0; k--)
            b[n++] = (k & 1) ? '}' : ']';
        cr_assert_eq(sg_json_validate(b, n, 10, 0), d <= 10 ? 0 : -1, "depth %d", d);
        cr_assert_eq(sg_json_validate(b, n, SG_JSON_MAX_DEPTH, 0),
                     d <= SG_JSON_MAX_DEPTH ? 0 : -1, "depth %d", d);
    }
    cr_assert_eq(sg_json_validate("1", 1, 0, 0), 0);
    cr_assert_eq(sg_json_validate("[]", 2, 0, 0), -1);
}

Test(json, validator_survives_huge_nesting)
{
    static char b[1 << 20];
    memset(b, '[', sizeof b);
    cr_assert_eq(sg_json_validate(b, sizeof b, 1 << 30, 0), -1);
}

/* Input placed so that its last byte is the last readable byte. */
Test(json, validator_never_reads_past_len)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static const char *t[] = { "[1,2", "\"abc", "\"\\u12", "tru", "{\"a\"",
                               "1e", "\"\xf0\x9f", "-", "[1,2]", "\"\\" };
    cr_assert(m != MAP_FAILED);
    cr_assert_eq(mprotect(m + pg, (size_t)pg, PROT_NONE), 0);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t n = strlen(t[i]);
        memcpy(m + pg - n, t[i], n);
        for (size_t k = 0; k <= n; k++)
            (void)sg_json_validate(m + pg - k, k, 8, 0);
    }
    munmap(m, (size_t)pg * 2);
}

/* The decimal fast path writes what a person would: few decimals, no
 * exponent, and still parses back to the same double. */
Test(json, f64_short_decimals_are_written_plainly)
{
    static const struct {
        double v;
        const char *s;
    } cases[] = {{89.95, "89.95"}, {0.05, "0.05"},     {-3.25, "-3.25"},
                 {0.1, "0.1"},     {1e-5, "0.00001"},  {42.0, "42"},
                 {-0.5, "-0.5"},   {1e15, "1000000000000000"},
                 {123456789.123, "123456789.123"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[SG_JSON_F64_MAX + 1];
        size_t n = sg_json_write_f64(out, cases[i].v);
        out[n] = 0;
        cr_expect_str_eq(out, cases[i].s, "%.17g", cases[i].v);
        cr_expect(strtod(out, NULL) == cases[i].v);
    }
}

/* The 8-byte fast path must hand every byte that needs care back to the
 * byte loop, wherever it falls in a long run of plain ASCII. */
Test(json, escapes_a_special_byte_at_every_position_of_a_long_run)
{
    static const unsigned char specials[] = {'"', '\\', 0x00, 0x1f, 0x7f, 0x80, 0xff, 0x0a};
    for (size_t k = 0; k < sizeof(specials); k++) {
        for (size_t pos = 0; pos < 40; pos++) {
            char in[40], out[SG_JSON_STR_MAX(40)];
            memset(in, 'a', sizeof(in));
            in[pos] = (char)specials[k];
            size_t n = sg_json_write_str(out, in, sizeof(in));
            cr_assert_eq(sg_json_validate(out, n, 4, 0), 0, "byte %02x at %zu: %.*s",
                         specials[k], pos, (int)n, out);
            /* everything but the special byte came through unchanged */
            size_t plain = 0;
            for (size_t i = 0; i < n; i++)
                plain += out[i] == 'a';
            cr_assert_eq(plain, sizeof(in) - 1, "byte %02x at %zu: %.*s", specials[k], pos,
                         (int)n, out);
        }
    }
}

/* The short-string and tail paths (whole words that overlap bytes already
 * written) must give exactly the byte loop's output for every length, with
 * no special byte or one at any position. */
Test(json, writes_every_length_exactly_with_a_special_byte_anywhere)
{
    static const struct { unsigned char b; const char *esc; } sp[] = {
        {'"', "\\\""}, {'\\', "\\\\"}, {0x00, "\\u0000"}, {0x1f, "\\u001f"},
        {0x7f, "\\u007f"}, {0x80, "\xEF\xBF\xBD"}, {0xff, "\xEF\xBF\xBD"}, {0x0a, "\\n"},
    };
    for (size_t len = 0; len <= 40; len++) {
        char in[40], out[SG_JSON_STR_MAX(40)], want[SG_JSON_STR_MAX(40)];
        for (size_t i = 0; i < len; i++)
            in[i] = (char)('a' + i % 26);
        size_t n = sg_json_write_str(out, in, len);
        cr_assert_eq(n, len + 2, "plain, length %zu", len);
        cr_assert(out[0] == '"' && out[len + 1] == '"' && memcmp(out + 1, in, len) == 0,
                  "plain, length %zu: %.*s", len, (int)n, out);
        for (size_t k = 0; k < sizeof(sp) / sizeof(sp[0]); k++) {
            for (size_t pos = 0; pos < len; in[pos] = (char)('a' + pos % 26), pos++) {
                in[pos] = (char)sp[k].b;
                size_t w = 0, el = strlen(sp[k].esc);
                want[w++] = '"';
                memcpy(want + w, in, pos);
                w += pos;
                memcpy(want + w, sp[k].esc, el);
                w += el;
                memcpy(want + w, in + pos + 1, len - pos - 1);
                w += len - pos - 1;
                want[w++] = '"';
                n = sg_json_write_str(out, in, len);
                cr_assert(n == w && memcmp(out, want, w) == 0,
                          "byte %02x at %zu of %zu: got %.*s want %.*s", sp[k].b, pos, len,
                          (int)n, out, (int)w, want);
            }
        }
    }
}
