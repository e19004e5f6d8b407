/* SPDX-License-Identifier: MIT */
/*
 * test_url.c -- src/url.c: base URL parsing and its refusals.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "url.h"

struct want {
    const char *in;
    int tls;
    const char *host;
    int v6;
    unsigned port;
    int explicit_port;
    const char *prefix;
    const char *hostport;
};

static void check(const struct want *w)
{
    struct sg_url u;
    cr_assert_eq(sg_url_parse(w->in, &u), 0, "should accept: %s", w->in);
    cr_assert_eq(u.tls, w->tls, "%s", w->in);
    cr_assert_str_eq(u.host, w->host, "%s", w->in);
    cr_assert_eq(u.host_is_ipv6, w->v6, "%s", w->in);
    cr_assert_eq(u.port, w->port, "%s", w->in);
    cr_assert_eq(u.port_explicit, w->explicit_port, "%s", w->in);
    cr_assert_str_eq(u.prefix, w->prefix, "%s", w->in);
    cr_assert_str_eq(u.hostport, w->hostport, "%s", w->in);
}

Test(url, applies_scheme_default_ports)
{
    static const struct want t[] = {
        { "https://api.segops.ai", 1, "api.segops.ai", 0, 443, 0, "", "api.segops.ai" },
        { "http://api.segops.ai", 0, "api.segops.ai", 0, 80, 0, "", "api.segops.ai" },
        { "HTTPS://API.SegOps.AI/", 1, "api.segops.ai", 0, 443, 0, "", "api.segops.ai" },
        { "HtTp://h", 0, "h", 0, 80, 0, "", "h" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        check(&t[i]);
}

Test(url, keeps_explicit_ports)
{
    static const struct want t[] = {
        { "http://localhost:8080", 0, "localhost", 0, 8080, 1, "", "localhost:8080" },
        { "https://h:1", 1, "h", 0, 1, 1, "", "h:1" },
        { "https://h:65535/", 1, "h", 0, 65535, 1, "", "h:65535" },
        /* the default port, written out, stays out of the Host header */
        { "https://h:443", 1, "h", 0, 443, 1, "", "h" },
        { "http://h:80/x", 0, "h", 0, 80, 1, "/x", "h" },
        { "http://h:443", 0, "h", 0, 443, 1, "", "h:443" },
        { "https://h:00080", 1, "h", 0, 80, 1, "", "h:80" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        check(&t[i]);
}

Test(url, accepts_ip_literals)
{
    static const struct want t[] = {
        { "http://127.0.0.1:8000", 0, "127.0.0.1", 0, 8000, 1, "", "127.0.0.1:8000" },
        { "http://[::1]:8000", 0, "::1", 1, 8000, 1, "", "[::1]:8000" },
        { "https://[::1]", 1, "::1", 1, 443, 0, "", "[::1]" },
        { "https://[2001:DB8::A]/p/", 1, "2001:db8::a", 1, 443, 0, "/p", "[2001:db8::a]" },
        { "http://[::]", 0, "::", 1, 80, 0, "", "[::]" },
        { "http://[1:2:3:4:5:6:7:8]", 0, "1:2:3:4:5:6:7:8", 1, 80, 0, "", "[1:2:3:4:5:6:7:8]" },
        { "http://[::ffff:10.0.0.1]", 0, "::ffff:10.0.0.1", 1, 80, 0, "", "[::ffff:10.0.0.1]" },
        { "http://[1::]", 0, "1::", 1, 80, 0, "", "[1::]" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        check(&t[i]);
}

Test(url, trims_one_trailing_slash_of_prefix)
{
    static const struct want t[] = {
        { "https://example.com/segops", 1, "example.com", 0, 443, 0, "/segops", "example.com" },
        { "https://example.com/segops/", 1, "example.com", 0, 443, 0, "/segops", "example.com" },
        { "https://example.com/a/b", 1, "example.com", 0, 443, 0, "/a/b", "example.com" },
        { "https://example.com/a/b/", 1, "example.com", 0, 443, 0, "/a/b", "example.com" },
        { "https://example.com/", 1, "example.com", 0, 443, 0, "", "example.com" },
        { "https://example.com:9/a%20b/", 1, "example.com", 0, 9, 1, "/a%20b", "example.com:9" },
        { "https://e.com/a-b_c.d~e!$&'()*+,;=:", 1, "e.com", 0, 443, 0,
          "/a-b_c.d~e!$&'()*+,;=:", "e.com" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        check(&t[i]);
}

Test(url, accepts_longest_host_and_prefix)
{
    char s[2048], host[SG_URL_HOST_MAX + 1];
    struct sg_url u;
    size_t n = 0;

    /* 255 bytes: four 63-byte labels and dots */
    for (int l = 0; l < 4; l++) {
        if (l)
            host[n++] = '.';
        memset(host + n, 'a' + l, 63);
        n += 63;
    }
    host[n] = '\0';
    cr_assert_eq(n, SG_URL_HOST_MAX);
    snprintf(s, sizeof s, "https://%s/", host);
    cr_assert_eq(sg_url_parse(s, &u), 0);
    cr_assert_str_eq(u.host, host);

    strcpy(s, "https://h");
    n = strlen(s);
    s[n++] = '/';
    memset(s + n, 'p', SG_URL_PREFIX_MAX - 1);
    n += SG_URL_PREFIX_MAX - 1;
    s[n] = '\0';
    cr_assert_eq(sg_url_parse(s, &u), 0);
    cr_assert_eq(strlen(u.prefix), SG_URL_PREFIX_MAX);
    strcat(s, "/");
    cr_assert_eq(sg_url_parse(s, &u), 0, "trailing slash is trimmed first");
    strcat(s, "x");
    cr_assert_eq(sg_url_parse(s, &u), -1);
}

Test(url, refuses_overlong_host)
{
    char s[600];
    struct sg_url u;
    /* 256 bytes of valid labels */
    strcpy(s, "https://");
    for (int l = 0; l < 4; l++) {
        size_t n = strlen(s);
        memset(s + n, 'a', 63);
        strcpy(s + n + 63, l < 3 ? "." : "b");
    }
    cr_assert_eq(strlen(s) - 8, 256);
    cr_assert_eq(sg_url_parse(s, &u), -1);
    memset(s + 8, 'a', 300);
    s[308] = '\0';
    cr_assert_eq(sg_url_parse(s, &u), -1, "label over 63 bytes");
}

Test(url, refuses_malformed_and_dangerous_urls)
{
    static const char *bad[] = {
        "", "https://", "http://", "https:///x", "ftp://h", "https:/h", "https:h",
        "//h", "h", "httpx://h", "https//h", "https:://h",
        /* control characters, header injection, spaces, non-ASCII */
        "https://h\r\nX-Evil: 1", "https://h/\r\nX: y", "https://h/a\n", "https://h\t",
        "https://h/a b", " https://h", "https://h ", "https://h/\x7f", "https://h\x01",
        "https://h/\xc3\xa9", "https://h\x80",
        /* userinfo, query, fragment */
        "https://user@h", "https://user:pw@h/", "https://h/a@b", "https://h?x=1",
        "https://h/?", "https://h/p#frag", "https://h#",
        /* ports */
        "https://h:0", "https://h:65536", "https://h:abc", "https://h:", "https://h:-1",
        "https://h:+80", "https://h:8080x", "https://h:99999999999999999999",
        "https://[::1]:", "https://[::1]:0", "https://h:80:80",
        /* hosts */
        "https://:443", "https://.h", "https://.", "https://h..", "https://a..b", "https://-h",
        "https://h-", "https://h-.", "https://a.-b", "https://h%41", "https://h*", "https://[::1",
        "https://::1", "https://[]", "https://[1:2:3:4:5:6:7:8:9]",
        "https://[1:2:3:4:5:6:7]", "https://[1::2::3]", "https://[12345::]",
        "https://[::g]", "https://[::1%25eth0]", "https://[:1]", "https://[1:]",
        "https://[::1]x", "https://[::1.2.3.4.5]", "https://[1.2.3.4]",
        "https://256.1.1.1", "https://1.2.3", "https://01.2.3.4", "https://1.2.3.4.5",
        "https://0x7f.0.0.1", "https://0177.0.0.1", "https://127.1", "https://2130706433",
        "https://1.2.3.4.", "https://a.0x10", "https://a.b.0X", "https://host.123",
        /* path */
        "https://h/a%", "https://h/a%2", "https://h/a%zz", "https://h/a\"b",
        "https://h/a<b>", "https://h/a\\b", "https://h/a{b}", "https://h//",
        "https://h/a//", "https://h/a|b", "https://h/a^b", "https://h/a`b",
        "https://h/[x]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sg_url u;
        memset(&u, 0x41, sizeof u);
        cr_assert_eq(sg_url_parse(bad[i], &u), -1, "should refuse: %s", bad[i]);
        cr_assert_eq(u.host[0], '\0', "output not cleared on failure");
        const char *why = NULL;
        cr_assert_eq(sg_url_parse_why(bad[i], &u, &why), -1);
        cr_assert(why != NULL && why[0], "no reason for refusing %s", bad[i]);
    }
}

/* The reason names the cause, in words a user can act on. */
Test(url, says_why_it_refuses)
{
    static const struct {
        const char *in, *why;
    } t[] = {
        {"https://0x7f.0.0.1", "ambiguous IPv4 address"},
        {"https://0177.0.0.1", "ambiguous IPv4 address"},
        {"https://127.1", "ambiguous IPv4 address"},
        {"https://2130706433:8080", "ambiguous IPv4 address"},
        {"https://a.0x10", "ambiguous IPv4 address"},
        {"https://256.1.1.1", "ambiguous IPv4 address"},
        {"https://1.2.3.4.", "must not end with '.'"},
        {"https://h:0", "port must be a number from 1 to 65535"},
        {"https://h:80:80", "port must be a number from 1 to 65535"},
        {"https://h:8x", "port must be a number from 1 to 65535"},
        {"ftp://h", "must start with http:// or https://"},
        {"https://user:pw@h/", "user info"},
        {"https://h?x=1", "query"},
        {"https://h#f", "fragment"},
        {"https://h\r\nX: y", "control character"},
        {"https://a..b", "empty label"},
        {"https://-h", "starts with '-'"},
        {"https://h-", "ends with '-'"},
        {"https://h*", "only letters, digits, '-', '_' and '.'"},
        {"https://[::1", "closing ']'"},
        {"https://[::1%25eth0]", "zone ids"},
        {"https://[1::2::3]", "not a valid IPv6 address"},
        {"https://[::1]x", "after the host"},
        {"https://h/a%zz", "two hex digits"},
        {"https://h/a b", "space"},
        {"https://h/a<b>", "must be %-encoded"},
        {"https://h/a//", "ends with \"//\""},
        {"", "empty"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct sg_url u;
        const char *why = NULL;
        cr_assert_eq(sg_url_parse_why(t[i].in, &u, &why), -1, "should refuse: %s", t[i].in);
        cr_assert(why && strstr(why, t[i].why), "%s: reason \"%s\" lacks \"%s\"", t[i].in,
                  why ? why : "(none)", t[i].why);
    }
    const char *why = "x";
    struct sg_url u;
    cr_expect_eq(sg_url_parse_why("https://h", &u, &why), 0);
    cr_expect_null(why, "no reason on success");
}

/* Host names as resolvers take them: '_' (Docker Compose service names),
 * an absolute name's trailing dot (kept for resolving, dropped from the
 * Host header and the TLS name). */
Test(url, accepts_underscores_and_a_trailing_dot)
{
    static const struct want t[] = {
        { "http://segops_sink:8080", 0, "segops_sink", 0, 8080, 1, "", "segops_sink:8080" },
        { "http://_svc._tcp.example", 0, "_svc._tcp.example", 0, 80, 0, "", "_svc._tcp.example" },
        { "http://a_-b", 0, "a_-b", 0, 80, 0, "", "a_-b" },
        { "http://localhost.:8080", 0, "localhost.", 0, 8080, 1, "", "localhost:8080" },
        { "https://API.SegOps.AI./x/", 1, "api.segops.ai.", 0, 443, 0, "/x", "api.segops.ai" },
        { "http://123.example", 0, "123.example", 0, 80, 0, "", "123.example" },
        { "http://0x7f.example", 0, "0x7f.example", 0, 80, 0, "", "0x7f.example" },
        { "http://1e100.net", 0, "1e100.net", 0, 80, 0, "", "1e100.net" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        check(&t[i]);
    struct sg_url u;
    cr_assert_eq(sg_url_parse("https://localhost.:9", &u), 0);
    cr_expect_str_eq(u.name, "localhost", "the TLS name has no trailing dot");
    cr_assert_eq(sg_url_parse("https://segops_sink", &u), 0);
    cr_expect_str_eq(u.name, "segops_sink");
    cr_expect_eq(u.host_is_ipv4, 0);
    cr_assert_eq(sg_url_parse("https://127.0.0.1:9", &u), 0);
    cr_expect_eq(u.host_is_ipv4, 1);
    cr_expect_str_eq(u.name, "127.0.0.1");
    cr_assert_eq(sg_url_parse("https://[::1]:9", &u), 0);
    cr_expect_eq(u.host_is_ipv4, 0);
    cr_expect_str_eq(u.name, "::1");
}

Test(url, refuses_overlong_path)
{
    char s[SG_URL_PREFIX_MAX + 64];
    struct sg_url u;
    strcpy(s, "https://h/");
    memset(s + 10, 'p', SG_URL_PREFIX_MAX);
    s[10 + SG_URL_PREFIX_MAX] = '\0';
    cr_assert_eq(sg_url_parse(s, &u), -1);
}

Test(url, refuses_null)
{
    struct sg_url u;
    cr_assert_eq(sg_url_parse(NULL, &u), -1);
    cr_assert_eq(sg_url_parse("https://h", NULL), -1);
}
