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

/* The last label is a number (all decimal digits, or "0x" and hex
 * digits): resolvers (inet_aton) and browsers (WHATWG URL) then read the
 * whole host as an IPv4 address in one of its many forms -- 127.1,
 * 2130706433, 0x7f.0.0.1, 0177.0.0.1 -- so such a host is an address or
 * nothing.  `n` excludes a trailing dot. */
static int ends_in_number(const char *h, size_t n)
{
    size_t s = n;
    while (s > 0 && h[s - 1] != '.')
        s--;
    if (s == n)
        return 0;
    size_t i = s;
    if (n - s >= 2 && h[s] == '0' && (h[s + 1] == 'x' || h[s + 1] == 'X')) {
        for (i = s + 2; i < n && is_hex(h[i]); i++)
            ;
        return i == n;
    }
    while (i < n && is_digit(h[i]))
        i++;
    return i == n;
}

/* A host that is not in brackets: a dotted-quad IPv4 address, or a DNS
 * name as resolvers take it: labels of 1..63 letters, digits, '-' and '_'
 * (Docker Compose service names have '_'), not starting or ending with
 * '-', and an optional trailing dot (an absolute name).  0 or the reason
 * it is refused; *v4 is set for an address. */
static const char *check_host(const char *h, size_t n, int *v4)
{
    size_t label = 0;

    *v4 = 0;
    if (n == 0)
        return "the host is empty";
    if (n > SG_URL_HOST_MAX)
        return "the host name is longer than 255 characters";
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)h[i];
        if (c == '.') {
            if (label == 0)
                return "the host name has an empty label (a leading dot or \"..\")";
            if (h[i - 1] == '-')
                return "a label of the host name ends with '-'";
            label = 0;
            continue;
        }
        if (!is_alnum(c) && c != '-' && c != '_')
            return "the host name may hold only letters, digits, '-', '_' and '.'";
        if (c == '-' && label == 0)
            return "a label of the host name starts with '-'";
        if (++label > 63)
            return "a label of the host name is longer than 63 characters";
    }
    int dot = h[n - 1] == '.';
    if (dot && n == 1)
        return "the host is empty";
    if (!dot && h[n - 1] == '-')
        return "a label of the host name ends with '-'";
    if (ends_in_number(h, n - (size_t)dot)) {
        if (!valid_ipv4(h, n - (size_t)dot))
            return "ambiguous IPv4 address: only the dotted-decimal form a.b.c.d is "
                   "accepted (four parts 0-255, no leading zeros; no hex, octal or "
                   "shortened forms)";
        if (dot)
            return "an IPv4 address must not end with '.'";
        *v4 = 1;
    }
    return 0;
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
    return sg_url_parse_why(s, out, NULL);
}

#define REFUSE(text)    \
    do {                \
        if (why)        \
            *why = text; \
        return -1;      \
    } while (0)

int sg_url_parse_why(const char *s, struct sg_url *out, const char **why)
{
    size_t n, i, hs, he, ps, plen;
    struct sg_url u;

    if (why)
        *why = NULL;
    if (out == NULL)
        REFUSE("no place for the result");
    memset(out, 0, sizeof *out);
    if (s == NULL)
        REFUSE("no URL");
    memset(&u, 0, sizeof u);

    n = strlen(s);
    if (n == 0)
        REFUSE("the URL is empty");
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7F)
            REFUSE("the URL holds a space, a control character or a non-ASCII byte");
        if (c == '@')
            REFUSE("the URL holds '@': user info (user@host) is not supported (the key "
                   "goes in api_key); in a path, write %40");
        if (c == '?')
            REFUSE("the URL has a query ('?'): not supported");
        if (c == '#')
            REFUSE("the URL has a fragment ('#'): not supported");
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
        REFUSE("the URL must start with http:// or https://");
    }

    /* Host */
    if (i < n && s[i] == '[') {
        hs = ++i;
        while (i < n && s[i] != ']')
            i++;
        if (i >= n)
            REFUSE("'[' without a closing ']' around the IPv6 address");
        he = i++;
        if (memchr(s + hs, '%', he - hs))
            REFUSE("IPv6 zone ids ('%') are not supported");
        if (!valid_ipv6(s + hs, he - hs))
            REFUSE("not a valid IPv6 address between '[' and ']'");
        u.host_is_ipv6 = 1;
    } else {
        hs = i;
        while (i < n && s[i] != ':' && s[i] != '/')
            i++;
        he = i;
        const char *bad = check_host(s + hs, he - hs, &u.host_is_ipv4);
        if (bad)
            REFUSE(bad);
    }
    for (size_t k = hs; k < he; k++)
        u.host[k - hs] = (char)lower(s[k]);
    /* the name without an absolute name's trailing dot (see url.h) */
    memcpy(u.name, u.host, he - hs);
    if (he > hs && u.name[he - hs - 1] == '.')
        u.name[he - hs - 1] = '\0';

    /* Port */
    u.port = u.tls ? 443 : 80;
    if (i < n && s[i] == ':') {
        unsigned long v = 0;
        size_t start = ++i;
        while (i < n && is_digit(s[i])) {
            v = v * 10 + (unsigned long)(s[i] - '0');
            if (v > 65535)
                REFUSE("the port must be a number from 1 to 65535");
            i++;
        }
        if (i == start || v == 0 || (i < n && s[i] != '/'))
            REFUSE("the port must be a number from 1 to 65535");
        u.port = (uint16_t)v;
        u.port_explicit = 1;
    }
    if (i < n && s[i] != '/')
        REFUSE("unexpected characters after the host (expected ':port' or '/path')");

    /* Path: RFC 3986 pchar and '/', with %XX checked. */
    ps = i;
    for (; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (n - i < 3 || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                REFUSE("the path has a '%' not followed by two hex digits");
            i += 2;
            continue;
        }
        if (!is_alnum(c) && !strchr("-._~!$&'()*+,;=:/", c))
            REFUSE("the path holds a character that must be %-encoded");
    }
    plen = n - ps;
    if (plen > 0 && s[n - 1] == '/')
        plen--;
    /* "https://h//" would leave a trailing '/' and give "//api/..." */
    if (plen > 0 && s[ps + plen - 1] == '/')
        REFUSE("the path ends with \"//\"");
    if (plen > SG_URL_PREFIX_MAX)
        REFUSE("the path is longer than 1024 characters");
    memcpy(u.prefix, s + ps, plen);

    /* Host header value: the name, without a trailing dot */
    {
        char *o = u.hostport;
        size_t hl = strlen(u.name);
        if (u.host_is_ipv6)
            *o++ = '[';
        memcpy(o, u.name, hl);
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
