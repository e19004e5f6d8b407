/* SPDX-License-Identifier: MIT */
/*
 * url.c -- parse the base URL of the SegOps API.
 *
 * The result feeds a request line, a Host header and TLS SNI, so the rule
 * is refusal by default: only the bytes each part's grammar allows get
 * through, which rules out header injection (no byte <= 0x20 or >= 0x7F
 * survives) and anything the request line could misread.  On failure *out
 * is left zeroed.
 */
#include "url.h"

#include <string.h>

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_alnum(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Dotted quad, each part 0..255 without leading zeros (a leading zero
 * means octal to inet_aton, so it is ambiguous). */
static int valid_ipv4(const char *h, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t start = i;
        unsigned v = 0;
        if (part > 0) {
            if (i >= n || h[i] != '.')
                return 0;
            start = ++i;
        }
        while (i < n && is_digit(h[i]) && i - start < 3)
            v = v * 10 + (unsigned)(h[i++] - '0');
        if (i == start || v > 255 || (i - start > 1 && h[start] == '0'))
            return 0;
    }
    return i == n;
}

/* DNS name: labels of 1..63 letters, digits and '-', not starting or
 * ending with '-'.  An all-numeric name must be a valid IPv4 literal. */
static int valid_hostname(const char *h, size_t n)
{
    size_t label = 0;
    int alpha = 0;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)h[i];
        if (c == '.') {
            if (label == 0 || h[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (!is_alnum(c) && c != '-')
            return 0;
        if (c == '-' && label == 0)
            return 0;
        if (!is_digit(c))
            alpha = 1;
        if (++label > 63)
            return 0;
    }
    if (label == 0 || h[n - 1] == '-')
        return 0;
    return alpha || valid_ipv4(h, n);
}

/* RFC 4291 text form: up to 8 groups of 1..4 hex digits, at most one
 * "::", optionally ending in a dotted quad worth two groups.  Zone ids are
 * refused (they would need %25 and mean nothing to a remote server). */
static int valid_ipv6(const char *h, size_t n)
{
    int groups = 0, gap = 0;
    size_t i = 0;

    if (n < 2)
        return 0;
    if (h[0] == ':') {
        if (h[1] != ':')
            return 0;
        gap = 1;
        i = 2;
        if (i == n)
            return 1; /* "::" */
    }
    for (;;) {
        size_t start = i;
        while (i < n && is_hex(h[i]) && i - start < 5)
            i++;
        if (i < n && h[i] == '.') {
            /* Embedded IPv4 must be the last 32 bits. */
            if (groups > 6 || !valid_ipv4(h + start, n - start))
                return 0;
            groups += 2;
            break;
        }
        if (i == start || i - start > 4)
            return 0;
        groups++;
        if (i == n)
            break;
        if (h[i] != ':')
            return 0;
        i++;
        if (i < n && h[i] == ':') {
            if (gap)
                return 0;
            gap = 1;
            i++;
            if (i == n)
                break;
        } else if (i == n) {
            return 0; /* trailing single ':' */
        }
    }
    return gap ? groups < 8 : groups == 8;
}

int sg_url_parse(const char *s, struct sg_url *out)
{
    size_t n, i, hs, he, ps, plen;
    struct sg_url u;

    if (out == NULL)
        return -1;
    memset(out, 0, sizeof *out);
    if (s == NULL)
        return -1;
    memset(&u, 0, sizeof u);

    n = strlen(s);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7F || c == '@' || c == '?' || c == '#')
            return -1;
    }

    if (n >= 7 && lower(s[0]) == 'h' && lower(s[1]) == 't' &&
        lower(s[2]) == 't' && lower(s[3]) == 'p' && s[4] == ':' &&
        s[5] == '/' && s[6] == '/') {
        i = 7;
    } else if (n >= 8 && lower(s[0]) == 'h' && lower(s[1]) == 't' &&
               lower(s[2]) == 't' && lower(s[3]) == 'p' &&
               lower(s[4]) == 's' && s[5] == ':' && s[6] == '/' &&
               s[7] == '/') {
        u.tls = 1;
        i = 8;
    } else {
        return -1;
    }

    /* Host */
    if (i < n && s[i] == '[') {
        hs = ++i;
        while (i < n && s[i] != ']')
            i++;
        if (i >= n)
            return -1;
        he = i++;
        if (!valid_ipv6(s + hs, he - hs))
            return -1;
        u.host_is_ipv6 = 1;
    } else {
        hs = i;
        while (i < n && s[i] != ':' && s[i] != '/')
            i++;
        he = i;
        if (he == hs || !valid_hostname(s + hs, he - hs))
            return -1;
    }
    if (he - hs > SG_URL_HOST_MAX)
        return -1;
    for (size_t k = hs; k < he; k++)
        u.host[k - hs] = (char)lower(s[k]);

    /* Port */
    u.port = u.tls ? 443 : 80;
    if (i < n && s[i] == ':') {
        unsigned long v = 0;
        size_t start = ++i;
        while (i < n && is_digit(s[i])) {
            v = v * 10 + (unsigned long)(s[i] - '0');
            if (v > 65535)
                return -1;
            i++;
        }
        if (i == start || v == 0)
            return -1;
        u.port = (uint16_t)v;
        u.port_explicit = 1;
    }
    if (i < n && s[i] != '/')
        return -1;

    /* Path: RFC 3986 pchar and '/', with %XX checked. */
    ps = i;
    for (; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (n - i < 3 || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return -1;
            i += 2;
            continue;
        }
        if (!is_alnum(c) && !strchr("-._~!$&'()*+,;=:/", c))
            return -1;
    }
    plen = n - ps;
    if (plen > 0 && s[n - 1] == '/')
        plen--;
    /* "https://h//" would leave a trailing '/' and give "//api/..." */
    if (plen > 0 && s[ps + plen - 1] == '/')
        return -1;
    if (plen > SG_URL_PREFIX_MAX)
        return -1;
    memcpy(u.prefix, s + ps, plen);

    /* Host header value */
    {
        char *o = u.hostport;
        size_t hl = he - hs;
        if (u.host_is_ipv6)
            *o++ = '[';
        memcpy(o, u.host, hl);
        o += hl;
        if (u.host_is_ipv6)
            *o++ = ']';
        if (u.port != (u.tls ? 443 : 80)) {
            char d[5];
            int k = 0;
            unsigned p = u.port;
            *o++ = ':';
            do {
                d[k++] = (char)('0' + p % 10);
                p /= 10;
            } while (p);
            while (k)
                *o++ = d[--k];
        }
        *o = '\0';
    }
    *out = u;
    return 0;
}
