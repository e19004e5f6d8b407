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
    char host[SG_URL_HOST_MAX + 1];     /* no brackets for IPv6; lowercase */
    int host_is_ipv6;
    uint16_t port;                      /* explicit or 80/443 */
    int port_explicit;
    char prefix[SG_URL_PREFIX_MAX + 1]; /* "" or "/p/q" (no trailing '/') */
    /* value of the Host header: host (IPv6 in brackets) plus ":port" when
     * the port is not the scheme's default */
    char hostport[SG_URL_HOST_MAX + 3 + 6 + 1];
};

/* Parses "http[s]://host[:port][/path]" (scheme case-insensitive).
 * host: a DNS name (letters, digits, '-', '.'), an IPv4 literal or a
 * bracketed IPv6 literal.  Refused (returns -1): NULL, empty, any byte
 * <= 0x20 or >= 0x7F anywhere, another scheme, userinfo ('@'), empty host,
 * port not 1..65535 or with non-digits, a query ('?') or fragment ('#'),
 * percent-encodings other than %XX hex, a path longer than
 * SG_URL_PREFIX_MAX, a host longer than SG_URL_HOST_MAX.  One trailing '/'
 * of the path is trimmed ("https://h/" -> prefix "", "https://h/a/" ->
 * "/a").  Returns 0 on success. */
int sg_url_parse(const char *s, struct sg_url *out);

#endif
