/* SPDX-License-Identifier: MIT */
/*
 * fuzz_url.c -- sg_url_parse on arbitrary bytes.  On success every output
 * field must be NUL-terminated inside its array and free of the bytes the
 * parser promises to refuse, since they go into the request line, the Host
 * header and TLS SNI.
 */
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
    if (sg_url_parse(buf, &u) != 0)
        return 0;
    clean(u.host, sizeof u.host);
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
