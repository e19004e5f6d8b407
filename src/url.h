/* SPDX-License-Identifier: MIT */
/*
 * url.h -- internal: the base URL of the SegOps API.
 */
#ifndef SG_URL_H
#define SG_URL_H

#include <stddef.h>
#include <stdint.h>

#define SG_URL_HOST_MAX 255
#define SG_URL_PREFIX_MAX 1024

struct sg_url {
    int tls;                            /* 1 for https */
    char host[SG_URL_HOST_MAX + 1];     /* no brackets for IPv6; lowercase; what
                                           is resolved: a trailing dot is kept */
    char name[SG_URL_HOST_MAX + 1];     /* host without a trailing dot: the
                                           Host header, SNI, the certificate */
    int host_is_ipv6;
    int host_is_ipv4;                   /* a dotted-quad literal */
    uint16_t port;                      /* explicit or 80/443 */
    int port_explicit;
    char prefix[SG_URL_PREFIX_MAX + 1]; /* "" or "/p/q" (no trailing '/') */
    /* value of the Host header: host (IPv6 in brackets) plus ":port" when
     * the port is not the scheme's default */
    char hostport[SG_URL_HOST_MAX + 3 + 6 + 1];
};

/* Parses "http[s]://host[:port][/path]" (scheme case-insensitive).
 * host: a DNS name as resolvers take it (labels of letters, digits, '-'
 * and '_', not starting or ending with '-'; an optional trailing dot, kept
 * for resolving -- an absolute name, no search domains -- and dropped from
 * the Host header, SNI and the certificate check, as RFC 6066 writes SNI
 * names), a dotted-quad IPv4 literal or a bracketed IPv6 literal.  A host
 * whose last label is a number (digits, or 0x and hex digits) must be a
 * dotted quad: 127.1, 2130706433, 0x7f.0.0.1 and 0177.0.0.1 are refused,
 * since resolvers read them as addresses in other forms.  Refused
 * (returns -1): NULL, empty, any byte <= 0x20 or >= 0x7F anywhere, another
 * scheme, userinfo ('@'), empty host, port not 1..65535 or with non-digits,
 * a query ('?') or fragment ('#'), percent-encodings other than %XX hex, a
 * path longer than SG_URL_PREFIX_MAX, a host longer than SG_URL_HOST_MAX.
 * One trailing '/' of the path is trimmed ("https://h/" -> prefix "",
 * "https://h/a/" -> "/a").  Returns 0 on success. */
int sg_url_parse(const char *s, struct sg_url *out);

/* sg_url_parse(), and on failure *why (why may be NULL) points to a static
 * sentence saying what is wrong, for a log line ("the port must be a
 * number from 1 to 65535"); it never quotes the URL. */
int sg_url_parse_why(const char *s, struct sg_url *out, const char **why);

#endif
