/* SPDX-License-Identifier: MIT */
/*
 * json.c -- JSON writer and bounded validator.
 *
 * The writer turns arbitrary bytes into a JSON string that every strict
 * parser accepts: it never emits a raw control byte, never emits invalid
 * UTF-8 (each maximal ill-formed subsequence, in the sense of Unicode
 * chapter 3, becomes one U+FFFD), and escapes U+2028/U+2029 so the output
 * is also safe inside JavaScript.  Numbers are written without touching the
 * locale's decimal point.
 *
 * The validator is a loop over an explicit container stack (one bit per
 * level), so its stack use is constant whatever the input; it reads only
 * s[0..len) and needs no NUL terminator.
 */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char hexdig[] = "0123456789abcdef";

/*
 * Length of the well-formed UTF-8 sequence at p[0..n), or 0 if it is not
 * one; *bad receives the length of the maximal ill-formed prefix to replace
 * (at least 1) in that case.  The second-byte ranges below are the only
 * places where overlongs, surrogates and values above U+10FFFF differ from
 * the plain 80..BF continuation range.
 */
static size_t utf8_seq(const unsigned char *p, size_t n, size_t *bad)
{
    unsigned c = p[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;

    if (c < 0x80)
        return 1;
    if (c < 0xC2) {
        *bad = 1;
        return 0;
    } else if (c < 0xE0) {
        need = 2;
    } else if (c < 0xF0) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c < 0xF5) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t i = 1; i < need; i++) {
        unsigned b;
        if (i >= n) {
            *bad = i;
            return 0;
        }
        b = p[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) {
            *bad = i;
            return 0;
        }
    }
    return need;
}

static char *put_u4(char *o, unsigned v)
{
    o[0] = '\\';
    o[1] = 'u';
    o[2] = hexdig[(v >> 12) & 15];
    o[3] = hexdig[(v >> 8) & 15];
    o[4] = hexdig[(v >> 4) & 15];
    o[5] = hexdig[v & 15];
    return o + 6;
}

/* High bit set in every byte of w that JSON cannot copy as is: a control
 * byte, '"', '\\', DEL, or a byte >= 0x80 (UTF-8, checked separately). */
static inline uint64_t json_special8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t ctl = (w - ones * 0x20) & ~w; /* byte < 0x20 */
    uint64_t quo = w ^ (ones * '"'), bsl = w ^ (ones * '\\');
    uint64_t del = w ^ (ones * 0x7F);
    return (ctl | ((quo - ones) & ~quo) | ((bsl - ones) & ~bsl) | ((del - ones) & ~del) | w) &
           high;
}

size_t sg_json_write_str(char *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    char *o = out;
    size_t i = 0;

    *o++ = '"';
    /* Short strings (keys, identifiers, small values) that need no escaping,
     * checked and copied as one or two overlapping words: reads and writes
     * only [0, len). */
    if (len >= 4 && len < 8) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + len - 4, 4);
        if (!json_special8((uint64_t)a | (uint64_t)b << 32)) {
            memcpy(o, &a, 4);
            memcpy(o + len - 4, &b, 4);
            o[len] = '"';
            return len + 2;
        }
    }
    while (i < len) {
        /* 8 bytes at a time while none needs escaping or is non-ASCII:
         * the common case of identifiers, keys and plain values */
        while (len - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (json_special8(w))
                break;
            memcpy(o, &w, 8);
            o += 8;
            i += 8;
        }
        if (i >= len)
            break;
        /* a tail under 8 bytes of a string of 8 or more: check the last
         * word, overlapping bytes already copied, and copy it whole */
        if (len - i < 8 && len >= 8) {
            uint64_t w;
            memcpy(&w, p + len - 8, 8);
            if (!json_special8(w)) {
                memcpy(o + (len - i) - 8, &w, 8);
                o += len - i;
                break;
            }
        }
        unsigned c = p[i];
        size_t n, bad;

        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            *o++ = (char)c;
            i++;
            continue;
        }
        if (c < 0x80) {
            char sh = 0;
            switch (c) {
            case '"': sh = '"'; break;
            case '\\': sh = '\\'; break;
            case '\b': sh = 'b'; break;
            case '\f': sh = 'f'; break;
            case '\n': sh = 'n'; break;
            case '\r': sh = 'r'; break;
            case '\t': sh = 't'; break;
            }
            if (sh) {
                *o++ = '\\';
                *o++ = sh;
            } else {
                o = put_u4(o, c);
            }
            i++;
            continue;
        }
        n = utf8_seq(p + i, len - i, &bad);
        if (n == 0) {
            /* U+FFFD is 3 bytes for >= 1 input byte: within the 6x bound. */
            *o++ = (char)0xEF;
            *o++ = (char)0xBF;
            *o++ = (char)0xBD;
            i += bad;
            continue;
        }
        if (n == 3 && c == 0xE2 && p[i + 1] == 0x80 &&
            (p[i + 2] == 0xA8 || p[i + 2] == 0xA9)) {
            o = put_u4(o, p[i + 2] == 0xA8 ? 0x2028 : 0x2029);
        } else {
            memcpy(o, p + i, n);
            o += n;
        }
        i += n;
    }
    *o++ = '"';
    return (size_t)(o - out);
}

size_t sg_json_write_i64(char *out, int64_t v)
{
    char tmp[SG_JSON_I64_MAX];
    size_t n = 0, k = 0;
    /* Work on the magnitude as unsigned so INT64_MIN needs no special case. */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[k++] = '-';
    while (n)
        out[k++] = tmp[--n];
    return k;
}

/*
 * snprintf/strtod follow LC_NUMERIC, which the host application may have
 * changed.  Both sides of the round-trip test use the same locale, so the
 * test is sound; afterwards any run of bytes that cannot belong to a C
 * number (a ',' or a multibyte decimal point) is rewritten as one '.'.
 */
/* Fast path for the common case, a value with few decimals (prices,
 * ratios, measurements): the smallest k <= 17 for which m = round(v * 10^k)
 * satisfies m / 10^k == v.  With |m| < 2^53 and 10^k exact, that division
 * is correctly rounded, exactly like strtod() of the decimal text "m with k
 * decimals", so the text round-trips by construction.  Anything else takes
 * the printf path.  Returns bytes written, or 0 to fall back. */
static size_t write_f64_fast(char *out, double v)
{
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,
                                 1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17};
    const double two53 = 9007199254740992.0;
    double a = v < 0 ? -v : v;
    for (int k = 0; k < 18; k++) {
        double sc = a * p10[k];
        if (sc >= two53)
            return 0;
        uint64_t m = (uint64_t)(sc + 0.5);
        if ((double)m / p10[k] != a)
            continue;
        char dig[24];
        int nd = 0;
        do {
            dig[nd++] = (char)('0' + m % 10);
            m /= 10;
        } while (m);
        while (nd <= k)
            dig[nd++] = '0'; /* 0.05: at least one digit before the point */
        size_t o = 0;
        if (v < 0)
            out[o++] = '-';
        for (int i = nd - 1; i >= 0; i--) {
            out[o++] = dig[i];
            if (i == k && k > 0)
                out[o++] = '.';
        }
        return o;
    }
    return 0;
}

size_t sg_json_write_f64(char *out, double v)
{
    char tmp[64];
    static const int prec[] = { 15, 16, 17 };
    int n = 0;
    size_t k = 0;

    if (!isfinite(v))
        return 0;
    if (v == 0) {
        memcpy(out, signbit(v) ? "-0" : "0", 2);
        return signbit(v) ? 2 : 1;
    }
    if ((k = write_f64_fast(out, v)) != 0)
        return k;
    for (size_t i = 0; i < sizeof prec / sizeof prec[0]; i++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec[i], v);
        if (n <= 0 || (size_t)n >= sizeof tmp)
            return 0;
        double back = strtod(tmp, NULL);
        if (back == v && signbit(back) == signbit(v))
            break;
    }
    for (int i = 0; i < n; i++) {
        char c = tmp[i];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e' ||
            c == 'E') {
            out[k++] = c;
        } else if (k == 0 || out[k - 1] != '.') {
            out[k++] = '.';
        }
        if (k >= SG_JSON_F64_MAX - 1)
            break;
    }
    return k;
}

/* ------------------------------------------------------------ validator */

/* Depth the validator can track; deeper input is refused whatever
 * max_depth says.  128 bytes of stack. */
#define VDEPTH_CAP 1024

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

/* Skips a string whose opening quote is at p[*i]; 0 or -1. */
static int v_string(const unsigned char *p, size_t len, size_t *i)
{
    size_t k = *i + 1;

    while (k < len) {
        unsigned c = p[k];
        size_t bad;
        if (c == '"') {
            *i = k + 1;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (++k >= len)
                return -1;
            c = p[k];
            if (c == 'u') {
                /* Lone surrogate escapes are grammatical (RFC 8259 8.2). */
                if (len - k < 5 || !is_hex(p[k + 1]) || !is_hex(p[k + 2]) ||
                    !is_hex(p[k + 3]) || !is_hex(p[k + 4]))
                    return -1;
                k += 5;
            } else if (c == '"' || c == '\\' || c == '/' || c == 'b' ||
                       c == 'f' || c == 'n' || c == 'r' || c == 't') {
                k++;
            } else {
                return -1;
            }
            continue;
        }
        if (c < 0x80) {
            k++;
            continue;
        }
        size_t n = utf8_seq(p + k, len - k, &bad);
        if (n == 0)
            return -1;
        k += n;
    }
    return -1;
}

static int v_number(const unsigned char *p, size_t len, size_t *i)
{
    size_t k = *i;

    if (k < len && p[k] == '-')
        k++;
    if (k >= len)
        return -1;
    if (p[k] == '0') {
        k++;
    } else if (p[k] >= '1' && p[k] <= '9') {
        while (k < len && p[k] >= '0' && p[k] <= '9')
            k++;
    } else {
        return -1;
    }
    if (k < len && p[k] == '.') {
        size_t d = ++k;
        while (k < len && p[k] >= '0' && p[k] <= '9')
            k++;
        if (k == d)
            return -1;
    }
    if (k < len && (p[k] == 'e' || p[k] == 'E')) {
        size_t d;
        k++;
        if (k < len && (p[k] == '+' || p[k] == '-'))
            k++;
        d = k;
        while (k < len && p[k] >= '0' && p[k] <= '9')
            k++;
        if (k == d)
            return -1;
    }
    *i = k;
    return 0;
}

static int v_word(const unsigned char *p, size_t len, size_t *i,
                  const char *w, size_t wl)
{
    if (len - *i < wl || memcmp(p + *i, w, wl) != 0)
        return -1;
    *i += wl;
    return 0;
}

/*
 * States of the loop: VALUE expects a value; after a value the top of the
 * stack decides what may follow (',' or the closer); after '{' or ',' in an
 * object a key string and ':' are read before the next VALUE.  A closer
 * directly after an opener is the empty container; a closer after ',' is a
 * trailing comma and refused.
 */
int sg_json_validate(const char *s, size_t len, int max_depth, int container_only)
{
    const unsigned char *p = (const unsigned char *)s;
    uint64_t stack[VDEPTH_CAP / 64]; /* bit set: the level is an object */
    int depth = 0;
    size_t i = 0;

    if (s == NULL)
        return -1;
    if (max_depth > VDEPTH_CAP)
        max_depth = VDEPTH_CAP;

    while (i < len && is_ws(p[i]))
        i++;
    if (container_only && (i >= len || (p[i] != '{' && p[i] != '[')))
        return -1;

    for (;;) {
        /* VALUE */
        while (i < len && is_ws(p[i]))
            i++;
        if (i >= len)
            return -1;
        switch (p[i]) {
        case '{':
        case '[': {
            int obj = p[i] == '{';
            if (depth >= max_depth)
                return -1;
            if (obj)
                stack[depth / 64] |= (uint64_t)1 << (depth % 64);
            else
                stack[depth / 64] &= ~((uint64_t)1 << (depth % 64));
            depth++;
            i++;
            while (i < len && is_ws(p[i]))
                i++;
            if (i >= len)
                return -1;
            if (p[i] == (obj ? '}' : ']')) {
                i++;
                depth--;
                break; /* empty container is a complete value */
            }
            if (obj) {
                if (p[i] != '"' || v_string(p, len, &i) != 0)
                    return -1;
                while (i < len && is_ws(p[i]))
                    i++;
                if (i >= len || p[i] != ':')
                    return -1;
                i++;
            }
            continue; /* next VALUE */
        }
        case '"':
            if (v_string(p, len, &i) != 0)
                return -1;
            break;
        case 't':
            if (v_word(p, len, &i, "true", 4) != 0)
                return -1;
            break;
        case 'f':
            if (v_word(p, len, &i, "false", 5) != 0)
                return -1;
            break;
        case 'n':
            if (v_word(p, len, &i, "null", 4) != 0)
                return -1;
            break;
        default:
            if (v_number(p, len, &i) != 0)
                return -1;
            break;
        }

        /* AFTER VALUE: close containers or move to the next element. */
        for (;;) {
            int obj;
            while (i < len && is_ws(p[i]))
                i++;
            if (depth == 0)
                return i == len ? 0 : -1;
            if (i >= len)
                return -1;
            obj = (int)((stack[(depth - 1) / 64] >> ((depth - 1) % 64)) & 1);
            if (p[i] == (obj ? '}' : ']')) {
                i++;
                depth--;
                continue;
            }
            if (p[i] != ',')
                return -1;
            i++;
            if (obj) {
                while (i < len && is_ws(p[i]))
                    i++;
                if (i >= len || p[i] != '"' || v_string(p, len, &i) != 0)
                    return -1;
                while (i < len && is_ws(p[i]))
                    i++;
                if (i >= len || p[i] != ':')
                    return -1;
                i++;
            }
            break; /* next VALUE */
        }
    }
}
