/* SPDX-License-Identifier: MIT */
/*
 * proxy.c -- choosing and describing the HTTP proxy (see proxy.h).
 *
 * Runs at client creation only.  The proxy's host and port go through
 * sg_url_parse(), so they obey exactly the host rules of api_url; what is
 * proxy-specific here is the scheme, the user info (percent-decoded, then
 * base64 for Proxy-Authorization) and curl's NO_PROXY matching.
 *
 * Invariant: the decoded user info is written only into out->auth; no
 * other field and no error text ever holds any part of it.
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "segops.h"

#define DEFAULT_PROXY_PORT 1080 /* curl's, for a proxy URL without a port */

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decodes s[0..n) onto o (room for cap); returns the length or
 * -1 (bad escape, too long). */
static int pct_decode(const char *s, size_t n, unsigned char *o, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int h, l;
            if (n - i < 3 || (h = hexval(s[i + 1])) < 0 || (l = hexval(s[i + 2])) < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
        }
        if (k >= cap)
            return -1;
        o[k++] = (unsigned char)c;
    }
    return (int)k;
}

static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = tab[(v >> 6) & 63];
        *out++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
    *out = 0;
}

static int parse(const char *s, struct sg_proxy *out, const char **why)
{
    static const char *const other[] = {"https://", "socks4://", "socks4a://", "socks5://",
                                        "socks5h://", "socks://"};
    if (!s || !*s) {
        *why = "empty proxy URL";
        return -1;
    }
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f) {
            *why = "control character, space or non-ASCII byte in the proxy URL";
            return -1;
        }
    }
    const char *sep = strstr(s, "://");
    if (sep) {
        size_t sl = (size_t)(sep - s) + 3;
        int http = sl == 7;
        for (size_t i = 0; http && i < 4; i++)
            http = lower(s[i]) == "http"[i];
        if (!http) {
            *why = "unsupported proxy scheme (only http:// proxies are supported)";
            for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
                size_t ol = strlen(other[i]);
                int same = ol == sl;
                for (size_t j = 0; same && j < ol; j++)
                    same = lower(s[j]) == other[i][j];
                if (same) {
                    *why = i == 0 ? "https:// proxies are not supported (use an http:// proxy: "
                                    "https:// targets still go through it in an encrypted "
                                    "CONNECT tunnel)"
                                  : "SOCKS proxies are not supported (only http:// proxies)";
                    break;
                }
            }
            return -1;
        }
        s = sep + 3;
    }
    /* authority: up to the first '/', '?' or '#'; user info up to its last '@' */
    size_t alen = strcspn(s, "/?#");
    const char *rest = s + alen;
    if (*rest && strcmp(rest, "/") != 0) {
        *why = "a proxy URL has no path, query or fragment (at most a trailing '/')";
        return -1;
    }
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (s[i] == '@')
            at = s + i;
    const char *hp = s;
    if (at) {
        unsigned char ui[SG_PROXY_USERINFO_MAX];
        size_t ulen = (size_t)(at - s);
        const char *colon = memchr(s, ':', ulen);
        size_t nlen = colon ? (size_t)(colon - s) : ulen;
        int a = pct_decode(s, nlen, ui, sizeof(ui));
        if (a < 0 || (size_t)a + 1 > sizeof(ui)) {
            *why = "bad percent-encoding in the proxy user name, or user info too long";
            return -1;
        }
        size_t k = (size_t)a;
        ui[k++] = ':';
        if (colon) {
            int b = pct_decode(colon + 1, ulen - nlen - 1, ui + k, sizeof(ui) - k);
            if (b < 0) {
                *why = "bad percent-encoding in the proxy password, or user info too long";
                return -1;
            }
            k += (size_t)b;
        }
        memcpy(out->auth, "Basic ", 6);
        base64(ui, k, out->auth + 6);
        memset(ui, 0, sizeof(ui)); /* the password leaves no copy behind */
        hp = at + 1;
        alen -= (size_t)(hp - s);
    }
    if (alen == 0) {
        *why = "no host in the proxy URL";
        return -1;
    }
    char buf[8 + SG_URL_HOST_MAX + 8 + 2];
    struct sg_url u;
    if (alen > sizeof(buf) - 8) {
        *why = "proxy host name too long";
        return -1;
    }
    memcpy(buf, "http://", 7);
    memcpy(buf + 7, hp, alen);
    buf[7 + alen] = 0;
    if (sg_url_parse(buf, &u) != 0) {
        *why = "malformed proxy host or port";
        return -1;
    }
    memcpy(out->host, u.host, sizeof(out->host));
    out->host_is_ipv6 = u.host_is_ipv6;
    out->port = u.port_explicit ? u.port : DEFAULT_PROXY_PORT;
    snprintf(out->display, sizeof(out->display), "http://%s%s%s:%u", u.host_is_ipv6 ? "[" : "",
             u.host, u.host_is_ipv6 ? "]" : "", (unsigned)out->port);
    out->on = 1;
    return 0;
}

int sg_proxy_parse(const char *s, struct sg_proxy *out, const char **why)
{
    const char *dummy;
    memset(out, 0, sizeof(*out));
    if (parse(s, out, why ? why : &dummy) == 0)
        return 0;
    memset(out, 0, sizeof(*out)); /* no credentials survive a refusal */
    return -1;
}

/* ----------------------------------------------------------- NO_PROXY */

static int is_blank(int c)
{
    return c == ' ' || c == '\t';
}

/* The address of an IP-literal host: family (AF_INET / AF_INET6) and
 * bytes, or 0 for a name. */
static int ip_of(const char *s, size_t n, unsigned char *a)
{
    char t[64];
    if (n == 0 || n >= sizeof(t))
        return 0;
    memcpy(t, s, n);
    t[n] = 0;
    if (inet_pton(AF_INET, t, a) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, t, a) == 1)
        return AF_INET6;
    return 0;
}

/* Whether the first `bits` bits of a and b agree. */
static int prefix_eq(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* One entry e[0..n) (blanks trimmed, non-empty) against the host. */
static int entry_match(const char *e, size_t n, const char *host, size_t hl, int hfam,
                       const unsigned char *haddr, uint16_t port)
{
    if (n == 1 && e[0] == '*')
        return 1;
    /* an optional ":port": after ']' for "[v6]:port"; for other entries
     * only when there is exactly one ':' (a bare IPv6 address has more) */
    const char *colon = NULL;
    if (e[0] == '[') {
        const char *rb = memchr(e, ']', n);
        if (!rb)
            return 0;
        if ((size_t)(rb - e) + 1 < n) {
            if (rb[1] != ':')
                return 0;
            colon = rb + 1;
        }
    } else {
        const char *c1 = memchr(e, ':', n);
        if (c1 && !memchr(c1 + 1, ':', n - (size_t)(c1 - e) - 1))
            colon = c1;
    }
    if (colon) {
        size_t pl = n - (size_t)(colon - e) - 1;
        unsigned long v = 0;
        if (pl == 0 || pl > 5)
            return 0;
        for (size_t i = 1; i <= pl; i++) {
            if (colon[i] < '0' || colon[i] > '9')
                return 0;
            v = v * 10 + (unsigned long)(colon[i] - '0');
        }
        if (v == 0 || v > 65535 || v != port)
            return 0;
        n = (size_t)(colon - e);
    }
    if (n >= 2 && e[0] == '[' && e[n - 1] == ']') {
        e++;
        n -= 2;
    }
    /* an address, or an address/bits */
    const char *slash = memchr(e, '/', n);
    unsigned char ea[16];
    int efam = ip_of(e, slash ? (size_t)(slash - e) : n, ea);
    if (efam || slash) {
        if (!efam || efam != hfam)
            return 0;
        unsigned max = efam == AF_INET ? 32 : 128, bits = max;
        if (slash) {
            size_t bl = n - (size_t)(slash - e) - 1;
            if (bl == 0 || bl > 3)
                return 0;
            bits = 0;
            for (size_t i = 1; i <= bl; i++) {
                if (slash[i] < '0' || slash[i] > '9')
                    return 0;
                bits = bits * 10 + (unsigned)(slash[i] - '0');
            }
            if (bits > max)
                return 0;
        }
        return prefix_eq(ea, haddr, bits);
    }
    if (hfam)
        return 0; /* a name never matches an IP-literal host */
    /* a domain: ".example.com" and "example.com." are "example.com" */
    while (n > 0 && e[0] == '.') {
        e++;
        n--;
    }
    if (n > 0 && e[n - 1] == '.')
        n--;
    if (n == 0 || n > hl)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)e[i]) != lower((unsigned char)host[hl - n + i]))
            return 0;
    return n == hl || host[hl - n - 1] == '.';
}

int sg_no_proxy_match(const char *list, const char *host, uint16_t port)
{
    if (!list || !host)
        return 0;
    size_t hl = strlen(host);
    if (hl > 0 && host[hl - 1] == '.')
        hl--; /* "localhost." is "localhost" */
    unsigned char haddr[16];
    int hfam = ip_of(host, hl, haddr);
    const char *p = list;
    while (*p) {
        while (*p == ',' || is_blank(*p))
            p++;
        size_t n = 0;
        while (p[n] && p[n] != ',' && !is_blank(p[n]))
            n++;
        if (n > 0 && entry_match(p, n, host, hl, hfam, haddr, port))
            return 1;
        p += n;
    }
    return 0;
}

/* ------------------------------------------------------------- choose */

static const char *env_get(const char *(*env)(const char *), const char *name)
{
    const char *v = env ? env(name) : NULL;
    return v && *v ? v : NULL;
}

int sg_proxy_choose(const struct sg_url *target, const char *opt_proxy,
                    const char *opt_no_proxy, const char *(*env)(const char *name),
                    struct sg_proxy *out, const char **why)
{
    static const char *const for_https[] = {"https_proxy", "HTTPS_PROXY", "all_proxy",
                                            "ALL_PROXY", NULL};
    /* HTTP_PROXY (uppercase) is never read: CGI puts a request's "Proxy:"
     * header there ("httpoxy"); curl reads only the lowercase name too */
    static const char *const for_http[] = {"http_proxy", "all_proxy", "ALL_PROXY", NULL};
    const char *spec = NULL, *src = NULL;
    memset(out, 0, sizeof(*out));
    if (opt_proxy) {
        spec = opt_proxy;
        src = "proxy_url";
    } else {
        for (const char *const *n = target->tls ? for_https : for_http; *n && !spec; n++)
            if ((spec = env_get(env, *n)) != NULL)
                src = *n;
    }
    if (!spec || !*spec)
        return 0;
    const char *list = opt_no_proxy, *lsrc = "no_proxy option";
    if (!list) {
        lsrc = "no_proxy";
        if (!(list = env_get(env, "no_proxy"))) {
            lsrc = "NO_PROXY";
            list = env_get(env, "NO_PROXY");
        }
    }
    if (list && sg_no_proxy_match(list, target->host, target->port)) {
        out->source = src;
        out->bypass = lsrc;
        return 0;
    }
    if (sg_proxy_parse(spec, out, why) != 0) {
        out->source = src;
        return -1;
    }
    out->source = src;
    return 0;
}

size_t sg_proxy_connect_request(const struct sg_proxy *px, const struct sg_url *target,
                                char *buf, size_t cap)
{
    /* the authority form always carries the port (RFC 9110 9.3.6) */
    char hp[SG_URL_HOST_MAX + 16];
    snprintf(hp, sizeof(hp), "%s%s%s:%u", target->host_is_ipv6 ? "[" : "", target->host,
             target->host_is_ipv6 ? "]" : "", (unsigned)target->port);
    int n = snprintf(buf, cap,
                     "CONNECT %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "%s%s%s"
                     "User-Agent: segops-c/" SEGOPS_VERSION_STRING "\r\n"
                     "\r\n",
                     hp, hp, px->auth[0] ? "Proxy-Authorization: " : "", px->auth,
                     px->auth[0] ? "\r\n" : "");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
