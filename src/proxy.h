/* SPDX-License-Identifier: MIT */
/*
 * proxy.h -- internal: the HTTP proxy between the client and the server.
 *
 * Chosen once, at client creation (never on the sender's path), from the
 * proxy_url / no_proxy options or, when they are NULL, from the
 * environment with curl's rules:
 *
 *   https:// targets   https_proxy, HTTPS_PROXY, then all_proxy, ALL_PROXY
 *   http:// targets    http_proxy (lowercase only: a CGI server puts a
 *                      request's "Proxy:" header in HTTP_PROXY, the
 *                      "httpoxy" hole), then all_proxy, ALL_PROXY
 *   bypass             no_proxy, then NO_PROXY
 *
 * The first variable set to a non-empty value wins (lowercase before
 * uppercase, as curl).  An option wins over the environment; "" means
 * none (the environment is not read).
 *
 * Only http:// proxies are supported (an https:// proxy would need TLS
 * inside TLS; SOCKS is another protocol); a proxy string without a scheme
 * is http://, and without a port uses 1080 (curl's default).  User info
 * in the proxy URL ("user:password@", percent-encoded) becomes a
 * "Proxy-Authorization: Basic" header, which is never logged.
 *
 * Nothing here does I/O or reads the environment by itself: the
 * environment comes in through a getenv-like function, so every rule is
 * tested with a made-up environment.
 */
#ifndef SG_PROXY_H
#define SG_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "url.h"

#define SG_PROXY_USERINFO_MAX 512 /* decoded "user:password" bytes */
#define SG_PROXY_AUTH_MAX (6 + 4 * ((SG_PROXY_USERINFO_MAX + 2) / 3) + 1)

struct sg_proxy {
    int on;                             /* a proxy is used */
    char host[SG_URL_HOST_MAX + 1];     /* lowercase; no brackets for IPv6 */
    int host_is_ipv6;
    uint16_t port;
    /* "Basic <base64(user:password)>", or "" without user info.  Secret:
     * goes into Proxy-Authorization only, never into a log line. */
    char auth[SG_PROXY_AUTH_MAX];
    /* "http://host:port" without user info: safe to log */
    char display[SG_URL_HOST_MAX + 16];
    const char *source;                 /* the setting that named the
                                           proxy: "proxy_url",
                                           "HTTPS_PROXY", ...; NULL: none */
    const char *bypass;                 /* a proxy was named but the
                                           target is exempt: "no_proxy",
                                           "NO_PROXY" or the option's
                                           name; else NULL */
};

/* Parses a proxy string: "[http://][user[:password]@]host[:port][/]".
 * host as in sg_url_parse (DNS name, IPv4, bracketed IPv6); user and
 * password percent-decoded, at most SG_PROXY_USERINFO_MAX bytes together.
 * Returns 0 (out->on = 1), or -1 with *why (static text) saying what is
 * wrong: another scheme (https://, socks5://, ...), a path, query or
 * fragment, a bad host or port, a control character. */
int sg_proxy_parse(const char *s, struct sg_proxy *out, const char **why);

/* Whether NO_PROXY-style `list` exempts host:port from the proxy.
 * Entries are separated by commas (and blanks around them):
 *   "*"                  every host
 *   "example.com"        example.com and its subdomains (a dot boundary:
 *   ".example.com"       not "badexample.com"); the leading dot is the
 *                        same; a trailing dot is ignored; case-insensitive
 *   "192.168.1.2", "::1" that address exactly (IPv6 without brackets)
 *   "10.0.0.0/8"         CIDR: addresses with those leading bits
 *   "name:port", "[::1]:port"  as above, for that port only
 * An IP entry matches only an IP-literal host (no name resolution). */
int sg_no_proxy_match(const char *list, const char *host, uint16_t port);

/* Chooses the proxy for `target`.  opt_proxy / opt_no_proxy: the options
 * (NULL: from env(); "" : none); env: a getenv() (NULL: nothing is set).
 * Fills *out (out->on = 0 when no proxy applies).  Returns 0, or -1 when
 * the chosen proxy string is malformed or unsupported: *why then says
 * why (static text) and out->source which setting held it. */
int sg_proxy_choose(const struct sg_url *target, const char *opt_proxy,
                    const char *opt_no_proxy, const char *(*env)(const char *name),
                    struct sg_proxy *out, const char **why);

/* Writes the CONNECT request that opens a tunnel to target through px
 * ("CONNECT host:port HTTP/1.1", Host, Proxy-Authorization when px has
 * credentials, User-Agent).  Returns its length, or 0 if cap is too
 * small. */
size_t sg_proxy_connect_request(const struct sg_proxy *px, const struct sg_url *target,
                                char *buf, size_t cap);

#endif
