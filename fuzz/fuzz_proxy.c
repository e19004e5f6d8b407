/* SPDX-License-Identifier: MIT */
/*
 * fuzz_proxy.c -- the proxy URL parser and NO_PROXY matching on arbitrary
 * bytes.  Input: "<proxy url>\n<no_proxy list>\n<host>".  On success the
 * parsed proxy's fields must be NUL-terminated inside their arrays, the
 * displayable form must hold no user info and no byte that could break a
 * log line, and the credentials must be "Basic " + base64.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

static void clean(const char *s, size_t cap, const char *extra_bad)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7F || strchr(extra_bad, c))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[4096];
    if (size >= sizeof(buf))
        return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    char *list = strchr(buf, '\n');
    char *host = NULL;
    if (list) {
        *list++ = 0;
        host = strchr(list, '\n');
        if (host)
            *host++ = 0;
    }
    struct sg_proxy p;
    const char *why = NULL;
    if (sg_proxy_parse(buf, &p, &why) == 0) {
        clean(p.host, sizeof(p.host), "@/?#");
        clean(p.display, sizeof(p.display), "@?#");
        if (p.port == 0 || !p.on)
            abort();
        size_t an = strnlen(p.auth, sizeof(p.auth));
        if (an == sizeof(p.auth))
            abort();
        if (an) {
            if (an < 10 || memcmp(p.auth, "Basic ", 6) != 0 || (an - 6) % 4 != 0)
                abort();
            for (size_t i = 6; i < an; i++)
                if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=",
                            p.auth[i]))
                    abort();
        }
        struct sg_url u;
        char req[1024];
        if (sg_url_parse("https://api.segops.ai", &u) == 0 &&
            sg_proxy_connect_request(&p, &u, req, sizeof(req)) == 0)
            abort(); /* always fits: bounded by the host and user info caps */
    } else {
        if (!why || p.on || p.auth[0])
            abort();
    }
    if (list && host) {
        int a = sg_no_proxy_match(list, host, 443);
        if (a != 0 && a != 1)
            abort();
    }
    return 0;
}
