/* SPDX-License-Identifier: MIT */
/*
 * test_proxy.c -- src/proxy.c: proxy URL parsing, NO_PROXY matching (curl's
 * rules) and the choice between options and environment, with a made-up
 * environment.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "proxy.h"
#include "url.h"

/* ------------------------------------------------------------- parse */

static void parse_ok(const char *in, const char *host, unsigned port, const char *auth)
{
    struct sg_proxy p;
    const char *why = NULL;
    cr_assert_eq(sg_proxy_parse(in, &p, &why), 0, "should accept %s (%s)", in,
                 why ? why : "");
    cr_expect(p.on);
    cr_expect_str_eq(p.host, host, "%s", in);
    cr_expect_eq(p.port, port, "%s", in);
    cr_expect_str_eq(p.auth, auth, "%s", in);
    cr_expect_null(strchr(p.display, '@'), "display never holds user info: %s", p.display);
}

static void parse_bad(const char *in, const char *reason_part)
{
    struct sg_proxy p;
    const char *why = NULL;
    cr_assert_neq(sg_proxy_parse(in, &p, &why), 0, "should refuse %s", in);
    cr_expect_not_null(why);
    if (reason_part)
        cr_expect(why && strstr(why, reason_part), "%s: reason '%s' lacks '%s'", in, why,
                  reason_part);
    cr_expect_eq(p.on, 0);
    cr_expect_eq(p.auth[0], 0, "no credentials kept from a refused URL");
}

Test(proxy, parses_http_proxies_with_curl_defaults)
{
    parse_ok("http://proxy.corp:3128", "proxy.corp", 3128, "");
    parse_ok("HTTP://Proxy.Corp:3128/", "proxy.corp", 3128, "");
    /* no scheme: http; no port: 1080, curl's default */
    parse_ok("proxy.corp", "proxy.corp", 1080, "");
    parse_ok("http://proxy.corp", "proxy.corp", 1080, "");
    parse_ok("10.1.2.3:8080", "10.1.2.3", 8080, "");
    parse_ok("http://[::1]:3128", "::1", 3128, "");
}

Test(proxy, user_info_becomes_basic_credentials_percent_decoded)
{
    /* base64("user:pass") */
    parse_ok("http://user:pass@proxy:3128", "proxy", 3128, "Basic dXNlcjpwYXNz");
    /* "us er" : "p@ss:w" -> base64("us er:p@ss:w") */
    parse_ok("http://us%20er:p%40ss%3aw@proxy:3128", "proxy", 3128, "Basic dXMgZXI6cEBzczp3");
    /* a raw '@' in the password: the last '@' ends the user info */
    parse_ok("http://u:p@ss@proxy:1", "proxy", 1, "Basic dTpwQHNz");
    /* user only: "user:" as curl sends it */
    parse_ok("http://user@proxy:1", "proxy", 1, "Basic dXNlcjo=");
    parse_ok("http://ab:c@proxy:1", "proxy", 1, "Basic YWI6Yw==");
    parse_ok("http://a:@proxy:1", "proxy", 1, "Basic YTo=");
}

Test(proxy, refuses_other_schemes_with_a_reason)
{
    parse_bad("https://proxy:3128", "https:// proxies are not supported");
    parse_bad("HTTPS://proxy:3128", "https:// proxies are not supported");
    parse_bad("socks5://proxy:1080", "SOCKS");
    parse_bad("socks5h://proxy:1080", "SOCKS");
    parse_bad("socks4://proxy:1080", "SOCKS");
    parse_bad("ftp://proxy:21", "only http://");
}

Test(proxy, refuses_malformed_urls)
{
    parse_bad("", NULL);
    parse_bad(NULL, NULL);
    parse_bad("http://", "no host");
    parse_bad("http://user:pw@", "no host");
    parse_bad("http://proxy:3128/path", "no path");
    parse_bad("http://proxy:3128?x", "no path");
    parse_bad("http://proxy:3128#f", "no path");
    parse_bad("http://proxy:0", "malformed");
    parse_bad("http://proxy:65536", "malformed");
    parse_bad("http://proxy:12ab", "malformed");
    parse_bad("http://prox y:1", "control");
    parse_bad("http://proxy:1\r\nX: y", "control");
    parse_bad("http://u:%zz@proxy:1", "percent");
    parse_bad("http://u:%4@proxy:1", "percent");
    parse_bad("http://[::1:1", "malformed");
}

Test(proxy, refuses_user_info_longer_than_the_cap)
{
    char big[SG_PROXY_USERINFO_MAX + 64];
    memset(big, 0, sizeof(big));
    strcpy(big, "http://u:");
    size_t n = strlen(big);
    memset(big + n, 'p', SG_PROXY_USERINFO_MAX);
    strcpy(big + n + SG_PROXY_USERINFO_MAX, "@proxy:1");
    parse_bad(big, "too long");
    /* the longest allowed fits its buffer */
    big[n + SG_PROXY_USERINFO_MAX - 2] = 0;
    strcat(big, "@proxy:1");
    struct sg_proxy p;
    cr_assert_eq(sg_proxy_parse(big, &p, NULL), 0);
    cr_expect_lt(strlen(p.auth), sizeof(p.auth));
}

/* ---------------------------------------------------------- NO_PROXY */

Test(proxy, no_proxy_matches_names_on_a_dot_boundary)
{
    cr_expect(sg_no_proxy_match("example.com", "example.com", 443));
    cr_expect(sg_no_proxy_match("example.com", "api.example.com", 443));
    cr_expect(sg_no_proxy_match(".example.com", "api.example.com", 443));
    cr_expect(sg_no_proxy_match(".example.com", "example.com", 443));
    cr_expect(sg_no_proxy_match("EXAMPLE.com.", "Api.Example.COM", 443));
    cr_expect(sg_no_proxy_match("example.com", "example.com.", 443), "trailing dot of the host");
    cr_expect_not(sg_no_proxy_match("example.com", "badexample.com", 443));
    cr_expect_not(sg_no_proxy_match("example.com", "example.com.org", 443));
    cr_expect_not(sg_no_proxy_match("api.example.com", "example.com", 443));
    cr_expect_not(sg_no_proxy_match("", "example.com", 443));
    cr_expect_not(sg_no_proxy_match(",, ,", "example.com", 443));
    cr_expect_not(sg_no_proxy_match(".", "example.com", 443));
}

Test(proxy, no_proxy_lists_are_comma_separated_with_blanks)
{
    const char *l = "localhost, .internal ,segops.ai,\t10.0.0.1";
    cr_expect(sg_no_proxy_match(l, "localhost", 80));
    cr_expect(sg_no_proxy_match(l, "db.internal", 80));
    cr_expect(sg_no_proxy_match(l, "api.segops.ai", 443));
    cr_expect(sg_no_proxy_match(l, "10.0.0.1", 443));
    cr_expect_not(sg_no_proxy_match(l, "segops.com", 443));
}

Test(proxy, no_proxy_star_means_every_host)
{
    cr_expect(sg_no_proxy_match("*", "api.segops.ai", 443));
    cr_expect(sg_no_proxy_match("*", "127.0.0.1", 80));
    cr_expect(sg_no_proxy_match("foo, *", "::1", 80));
    cr_expect_not(sg_no_proxy_match("*.example.com", "a.example.com", 80),
                  "'*' is no glob: only a lone '*' is a wildcard");
}

Test(proxy, no_proxy_ip_addresses_match_exactly_or_by_cidr)
{
    cr_expect(sg_no_proxy_match("127.0.0.1", "127.0.0.1", 80));
    cr_expect_not(sg_no_proxy_match("127.0.0.1", "127.0.0.10", 80));
    cr_expect_not(sg_no_proxy_match("0.0.1", "127.0.0.1", 80), "no suffix match on addresses");
    cr_expect_not(sg_no_proxy_match("127.0.0.1", "localhost", 80),
                  "an address never matches a name (no resolution)");
    cr_expect_not(sg_no_proxy_match("localhost", "127.0.0.1", 80));
    cr_expect(sg_no_proxy_match("::1", "::1", 80));
    cr_expect(sg_no_proxy_match("[::1]", "::1", 80));
    cr_expect(sg_no_proxy_match("0:0::1", "::1", 80), "addresses compare as addresses");
    cr_expect_not(sg_no_proxy_match("::1", "127.0.0.1", 80));
    cr_expect(sg_no_proxy_match("10.0.0.0/8", "10.200.3.4", 80));
    cr_expect_not(sg_no_proxy_match("10.0.0.0/8", "11.0.0.1", 80));
    cr_expect(sg_no_proxy_match("192.168.0.0/23", "192.168.1.7", 80));
    cr_expect_not(sg_no_proxy_match("192.168.0.0/23", "192.168.2.7", 80));
    cr_expect(sg_no_proxy_match("0.0.0.0/0", "8.8.8.8", 80));
    cr_expect(sg_no_proxy_match("fd00::/8", "fd12::1", 80));
    cr_expect_not(sg_no_proxy_match("fd00::/8", "fe80::1", 80));
    cr_expect_not(sg_no_proxy_match("10.0.0.0/33", "10.0.0.1", 80), "bad prefix length");
    cr_expect_not(sg_no_proxy_match("example.com/8", "example.com", 80));
}

Test(proxy, no_proxy_port_is_ignored_unless_given)
{
    cr_expect(sg_no_proxy_match("example.com", "example.com", 8443));
    cr_expect(sg_no_proxy_match("example.com:8443", "example.com", 8443));
    cr_expect(sg_no_proxy_match(".example.com:8443", "a.example.com", 8443));
    cr_expect_not(sg_no_proxy_match("example.com:8443", "example.com", 443));
    cr_expect(sg_no_proxy_match("127.0.0.1:8080", "127.0.0.1", 8080));
    cr_expect_not(sg_no_proxy_match("127.0.0.1:8080", "127.0.0.1", 8081));
    cr_expect(sg_no_proxy_match("[::1]:8080", "::1", 8080));
    cr_expect_not(sg_no_proxy_match("[::1]:8080", "::1", 80));
    cr_expect_not(sg_no_proxy_match("example.com:", "example.com", 80), "empty port");
    cr_expect_not(sg_no_proxy_match("example.com:99999", "example.com", 80));
}

/* ------------------------------------------------------------ choose */

static const char *ENV[16][2];

static const char *fake_env(const char *name)
{
    for (int i = 0; i < 16 && ENV[i][0]; i++)
        if (strcmp(ENV[i][0], name) == 0)
            return ENV[i][1];
    return NULL;
}

static void env_set(const char *const *pairs)
{
    memset(ENV, 0, sizeof(ENV));
    for (int i = 0; pairs[2 * i]; i++) {
        ENV[i][0] = pairs[2 * i];
        ENV[i][1] = pairs[2 * i + 1];
    }
}

static struct sg_proxy choose(const char *target, const char *opt, const char *opt_no,
                              int want_rc)
{
    struct sg_url u;
    struct sg_proxy p;
    const char *why = NULL;
    cr_assert_eq(sg_url_parse(target, &u), 0);
    int rc = sg_proxy_choose(&u, opt, opt_no, fake_env, &p, &why);
    cr_assert_eq(rc, want_rc, "choose(%s): rc %d (%s)", target, rc, why ? why : "");
    return p;
}

Test(proxy, https_targets_read_https_proxy_then_all_proxy_lowercase_first)
{
    env_set((const char *[]){"HTTPS_PROXY", "http://upper:1", "https_proxy", "http://lower:2",
                             "ALL_PROXY", "http://all:3", NULL});
    struct sg_proxy p = choose("https://api.segops.ai", NULL, NULL, 0);
    cr_expect(p.on);
    cr_expect_str_eq(p.host, "lower");
    cr_expect_str_eq(p.source, "https_proxy");
    env_set((const char *[]){"HTTPS_PROXY", "http://upper:1", "ALL_PROXY", "http://all:3",
                             NULL});
    p = choose("https://api.segops.ai", NULL, NULL, 0);
    cr_expect_str_eq(p.host, "upper");
    cr_expect_str_eq(p.source, "HTTPS_PROXY");
    env_set((const char *[]){"HTTPS_PROXY", "", "ALL_PROXY", "http://all:3", NULL});
    p = choose("https://api.segops.ai", NULL, NULL, 0);
    cr_expect_str_eq(p.host, "all", "an empty variable counts as unset");
    cr_expect_str_eq(p.source, "ALL_PROXY");
    env_set((const char *[]){"http_proxy", "http://plain:1", NULL});
    p = choose("https://api.segops.ai", NULL, NULL, 0);
    cr_expect_not(p.on, "http_proxy is for http:// targets only");
}

Test(proxy, http_targets_never_read_uppercase_http_proxy)
{
    env_set((const char *[]){"HTTP_PROXY", "http://httpoxy:1", NULL});
    struct sg_proxy p = choose("http://sink:8080", NULL, NULL, 0);
    cr_expect_not(p.on, "HTTP_PROXY may come from a request header (httpoxy)");
    env_set((const char *[]){"HTTP_PROXY", "http://httpoxy:1", "http_proxy", "http://ok:2",
                             "HTTPS_PROXY", "http://tls:3", NULL});
    p = choose("http://sink:8080", NULL, NULL, 0);
    cr_expect_str_eq(p.host, "ok");
    cr_expect_str_eq(p.source, "http_proxy");
    env_set((const char *[]){"HTTP_PROXY", "http://httpoxy:1", "all_proxy", "http://all:2",
                             NULL});
    p = choose("http://sink:8080", NULL, NULL, 0);
    cr_expect_str_eq(p.host, "all");
}

Test(proxy, the_option_wins_and_empty_means_no_proxy)
{
    env_set((const char *[]){"HTTPS_PROXY", "http://env:1", NULL});
    struct sg_proxy p = choose("https://api.segops.ai", "http://opt:2", NULL, 0);
    cr_expect_str_eq(p.host, "opt");
    cr_expect_str_eq(p.source, "proxy_url");
    p = choose("https://api.segops.ai", "", NULL, 0);
    cr_expect_not(p.on, "\"\" ignores the environment");
    cr_expect_null(p.source);
}

Test(proxy, no_proxy_bypasses_and_says_which_setting_did)
{
    env_set((const char *[]){"HTTPS_PROXY", "http://env:1", "NO_PROXY", ".segops.ai", NULL});
    struct sg_proxy p = choose("https://api.segops.ai", NULL, NULL, 0);
    cr_expect_not(p.on);
    cr_expect_str_eq(p.bypass, "NO_PROXY");
    cr_expect_str_eq(p.source, "HTTPS_PROXY");
    p = choose("https://other.example", NULL, NULL, 0);
    cr_expect(p.on);
    /* lowercase first: no_proxy hides NO_PROXY */
    env_set((const char *[]){"HTTPS_PROXY", "http://env:1", "no_proxy", "example.org",
                             "NO_PROXY", ".segops.ai", NULL});
    p = choose("https://api.segops.ai", NULL, NULL, 0);
    cr_expect(p.on);
    /* NO_PROXY from the environment applies to the option's proxy too
     * (curl's CURLOPT_PROXY and no_proxy); the no_proxy option replaces it */
    env_set((const char *[]){"NO_PROXY", "api.segops.ai", NULL});
    p = choose("https://api.segops.ai", "http://opt:2", NULL, 0);
    cr_expect_not(p.on);
    p = choose("https://api.segops.ai", "http://opt:2", "", 0);
    cr_expect(p.on, "no_proxy \"\" exempts nothing");
    p = choose("https://api.segops.ai", "http://opt:2", "*", 0);
    cr_expect_not(p.on);
    cr_expect_str_eq(p.bypass, "no_proxy option");
}

Test(proxy, a_bad_proxy_from_the_environment_is_refused_with_its_source)
{
    env_set((const char *[]){"ALL_PROXY", "socks5://127.0.0.1:1080", NULL});
    struct sg_url u;
    struct sg_proxy p;
    const char *why = NULL;
    cr_assert_eq(sg_url_parse("https://api.segops.ai", &u), 0);
    cr_expect_eq(sg_proxy_choose(&u, NULL, NULL, fake_env, &p, &why), -1);
    cr_expect_str_eq(p.source, "ALL_PROXY");
    cr_expect(why && strstr(why, "SOCKS"));
    /* unless the target is exempt */
    env_set((const char *[]){"ALL_PROXY", "socks5://127.0.0.1:1080", "NO_PROXY", "*", NULL});
    cr_expect_eq(sg_proxy_choose(&u, NULL, NULL, fake_env, &p, &why), 0);
    cr_expect_not(p.on);
}

Test(proxy, connect_request_names_the_origin_and_carries_credentials)
{
    struct sg_url u;
    struct sg_proxy p;
    char buf[1024];
    cr_assert_eq(sg_url_parse("https://api.segops.ai/prefix", &u), 0);
    cr_assert_eq(sg_proxy_parse("http://user:pass@proxy:3128", &p, NULL), 0);
    size_t n = sg_proxy_connect_request(&p, &u, buf, sizeof(buf));
    cr_assert_gt(n, 0);
    cr_expect_eq(n, strlen(buf));
    static const char start[] = "CONNECT api.segops.ai:443 HTTP/1.1\r\nHost: api.segops.ai:443\r\n";
    cr_expect(strncmp(buf, start, sizeof(start) - 1) == 0, "%s", buf);
    cr_expect(strstr(buf, "\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n"), "%s", buf);
    cr_expect(strstr(buf, "\r\n\r\n") == buf + n - 4);
    cr_expect_null(strstr(buf, "Authorization: ApiKey"));
    cr_assert_eq(sg_url_parse("https://[::1]:8443", &u), 0);
    cr_assert_eq(sg_proxy_parse("proxy", &p, NULL), 0);
    n = sg_proxy_connect_request(&p, &u, buf, sizeof(buf));
    cr_expect(strncmp(buf, "CONNECT [::1]:8443 HTTP/1.1\r\n", 29) == 0, "%s", buf);
    cr_expect_null(strstr(buf, "Proxy-Authorization"));
    cr_expect_eq(sg_proxy_connect_request(&p, &u, buf, 10), 0, "too small: 0");
}
