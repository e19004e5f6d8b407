/* SPDX-License-Identifier: MIT */
/*
 * fuzz_url.c -- sg_url_parse on arbitrary bytes.  On success every output
 * field must be NUL-terminated inside its array and free of the bytes the
 * parser promises to refuse, since they go into the request line, the Host
 * header and TLS SNI.  A refusal always has a reason; an accepted host
 * whose last label is a number is a dotted quad that inet_pton takes.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

static void clean(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7F || c == '@' || c == '?' || c == '#')
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[4096];
    struct sg_url u;

    if (size >= sizeof buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *why = NULL;
    if (sg_url_parse_why(buf, &u, &why) != 0) {
        if (!why || !why[0] || u.host[0])
            abort();
        return 0;
    }
    if (why)
        abort();
    clean(u.host, sizeof u.host);
    clean(u.name, sizeof u.name);
    /* name: host without one trailing dot */
    size_t hl = strlen(u.host), nl = strlen(u.name);
    if (nl == 0 || u.name[nl - 1] == '.' || strncmp(u.host, u.name, nl) != 0 ||
        (hl != nl && !(hl == nl + 1 && u.host[nl] == '.')))
        abort();
    unsigned char a[16];
    if (u.host_is_ipv4 != (inet_pton(AF_INET, u.host, a) == 1) ||
        u.host_is_ipv6 != (inet_pton(AF_INET6, u.host, a) == 1))
        abort();
    clean(u.prefix, sizeof u.prefix);
    clean(u.hostport, sizeof u.hostport);
    if (u.host[0] == '\0' || u.port == 0)
        abort();
    if (u.prefix[0] != '\0' &&
        (u.prefix[0] != '/' || u.prefix[strlen(u.prefix) - 1] == '/'))
        abort();
    /* Parsing is idempotent on what it accepted. */
    if (strlen(buf) == size) {
        struct sg_url again;
        if (sg_url_parse(buf, &again) != 0 || memcmp(&u, &again, sizeof u) != 0)
            abort();
    }
    return 0;
}
