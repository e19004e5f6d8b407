/* SPDX-License-Identifier: MIT */
/*
 * fuzz_json_write.c -- sg_json_write_str on arbitrary bytes.  The output is
 * judged by a checker written here, independent of json.c: it must be one
 * JSON string (RFC 8259 section 7) of well-formed UTF-8, with no raw
 * control byte, DEL, U+2028 or U+2029, within SG_JSON_STR_MAX.  When the
 * input itself is well-formed UTF-8, decoding the output must give the
 * input back.  The output must also pass sg_json_validate.  The number
 * writers are exercised on the same bytes.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* Decodes one UTF-8 character strictly; returns its length or 0. */
static size_t dec_utf8(const unsigned char *p, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t v, min;

    if (n == 0)
        return 0;
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if ((p[0] & 0xE0) == 0xC0) {
        len = 2; v = p[0] & 0x1F; min = 0x80;
    } else if ((p[0] & 0xF0) == 0xE0) {
        len = 3; v = p[0] & 0x0F; min = 0x800;
    } else if ((p[0] & 0xF8) == 0xF0) {
        len = 4; v = p[0] & 0x07; min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

static int hexv(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t enc_utf8(unsigned char *o, uint32_t cp)
{
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Checks s[0..n) is exactly one JSON string as described above and decodes
 * it into dec (which holds n bytes); returns the decoded length or -1. */
static long check_string(const unsigned char *s, size_t n, unsigned char *dec)
{
    size_t i = 1, d = 0;

    if (n < 2 || s[0] != '"' || s[n - 1] != '"')
        return -1;
    while (i < n - 1) {
        uint32_t cp;
        size_t k;
        if (s[i] == '"' || s[i] < 0x20 || s[i] == 0x7F)
            return -1;
        if (s[i] == '\\') {
            if (i + 1 >= n - 1)
                return -1;
            switch (s[i + 1]) {
            case '"': dec[d++] = '"'; break;
            case '\\': dec[d++] = '\\'; break;
            case '/': dec[d++] = '/'; break;
            case 'b': dec[d++] = '\b'; break;
            case 'f': dec[d++] = '\f'; break;
            case 'n': dec[d++] = '\n'; break;
            case 'r': dec[d++] = '\r'; break;
            case 't': dec[d++] = '\t'; break;
            case 'u': {
                uint32_t v = 0;
                if (i + 6 > n - 1)
                    return -1;
                for (int h = 0; h < 4; h++) {
                    int x = hexv(s[i + 2 + h]);
                    if (x < 0)
                        return -1;
                    v = v * 16 + (uint32_t)x;
                }
                /* The writer never needs surrogate escapes. */
                if (v >= 0xD800 && v <= 0xDFFF)
                    return -1;
                d += enc_utf8(dec + d, v);
                i += 6;
                continue;
            }
            default:
                return -1;
            }
            i += 2;
            continue;
        }
        k = dec_utf8(s + i, n - 1 - i, &cp);
        if (k == 0 || cp == 0x2028 || cp == 0x2029)
            return -1;
        memcpy(dec + d, s + i, k);
        d += k;
        i += k;
    }
    return (long)d;
}

static int valid_utf8(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = dec_utf8(p + i, n - i, &cp);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char out[SG_JSON_STR_MAX(8192) + 1];
    static unsigned char dec[SG_JSON_STR_MAX(8192) + 1];
    size_t n;
    long dl;

    if (size > 8192)
        return 0;
    out[SG_JSON_STR_MAX(size)] = 0xA5;
    n = sg_json_write_str((char *)out, (const char *)data, size);
    if (n > SG_JSON_STR_MAX(size) || out[SG_JSON_STR_MAX(size)] != 0xA5)
        abort();
    dl = check_string(out, n, dec);
    if (dl < 0)
        abort();
    if (valid_utf8(data, size) &&
        ((size_t)dl != size || memcmp(dec, data, size) != 0))
        abort();
    if (sg_json_validate((const char *)out, n, 1, 0) != 0)
        abort();

    if (size >= 8) {
        char num[SG_JSON_F64_MAX + 1];
        int64_t iv;
        double dv;
        memcpy(&iv, data, 8);
        n = sg_json_write_i64(num, iv);
        num[n] = '\0';
        if (n > SG_JSON_I64_MAX || strtoll(num, NULL, 10) != iv ||
            sg_json_validate(num, n, 1, 0) != 0)
            abort();
        memcpy(&dv, data, 8);
        if (isfinite(dv)) {
            n = sg_json_write_f64(num, dv);
            if (n == 0 || n >= SG_JSON_F64_MAX)
                abort();
            num[n] = '\0';
            if (strtod(num, NULL) != dv || signbit(strtod(num, NULL)) != signbit(dv) ||
                sg_json_validate(num, n, 1, 0) != 0)
                abort();
        }
    }
    return 0;
}
