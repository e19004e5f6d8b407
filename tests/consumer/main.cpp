/* SPDX-License-Identifier: MIT */
// main.cpp -- an out-of-tree C++17 consumer of the INSTALLED libsegops,
// built by scripts/consumer_test.sh with pkg-config and with
// find_package(segops).  Same checks as main.c, through the installed
// <segops.hpp> (segops::client owns the client; views, no copies).
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <segops.hpp>

int main()
{
    const char *url = std::getenv("SEGOPS_API_URL");
    const bool live = url && url[0];
    std::printf("libsegops %s: %s\n", SEGOPS_VERSION_STRING, segops_strerror(SEGOPS_EFULL));

    segops_options o = segops::options();
    o.api_url = live ? nullptr : "http://127.0.0.1:9";
    o.api_key = live ? nullptr : "sk_consumer";
    o.max_retries = live ? 0 : SEGOPS_RETRIES_NONE;
    o.logger = live ? nullptr : segops_log_discard;
    uint64_t undelivered = 0;
    int src = -100, rc = 0;
    segops_counters s = segops::counters();
    std::string text;
    {
        segops::client c;
        if ((rc = c.open(o)) != 0) {
            std::fprintf(stderr, "segops_client_new: %s\n", segops_strerror(rc));
            return 1;
        }
        const std::string user = "consumer-cpp";
        if ((rc = c.track(user, "consumer_built",
                          {segops::str("lang", "c++17"), segops::f64("x", 0.5),
                           segops::null("none")})) != 0) {
            std::fprintf(stderr, "segops_track: %s\n", segops_strerror(rc));
            return 1;
        }
        if ((rc = c.identify(user, {segops::str("lang", "c++17")})) != 0)
            return 1;
        rc = c.flush(5000);
        c.stats(s);
        text.assign(SEGOPS_PROMETHEUS_MAX, '\0');
        size_t len = 0;
        if (segops_stats_prometheus(c.get(), text.data(), text.size(), &len) != 0)
            return 1;
        text.resize(len);
        src = c.shutdown(5000, &undelivered);
    }
    std::printf("flush=%d delivered=%" PRIu64 " shutdown=%d undelivered=%" PRIu64 "\n", rc,
                s.delivered, src, undelivered);
    if (text.find("segops_events_accepted_total 2\n") == std::string::npos)
        return 1;
    if (live)
        return rc == 0 && src == 0 && s.delivered == 2 && undelivered == 0 ? 0 : 1;
    return rc != 0 && s.delivered == 0 && undelivered == 2 ? 0 : 1;
}
