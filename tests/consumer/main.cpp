/* SPDX-License-Identifier: MIT */
// main.cpp -- an out-of-tree C++17 consumer of the INSTALLED libsegops,
// built by scripts/consumer_test.sh with pkg-config and with
// find_package(segops).  Same checks as main.c, through a unique_ptr that
// owns the client.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <segops.h>

namespace {
struct Shutdown {
    uint64_t *undelivered;
    int *rc;
    void operator()(segops_client *c) const { *rc = segops_shutdown(c, 5000, undelivered); }
};
} // namespace

int main()
{
    const char *url = std::getenv("SEGOPS_API_URL");
    const bool live = url && url[0];
    std::printf("libsegops %s: %s\n", SEGOPS_VERSION_STRING, segops_strerror(SEGOPS_EFULL));

    segops_options o{};
    o.api_url = live ? nullptr : "http://127.0.0.1:9";
    o.api_key = live ? nullptr : "sk_consumer";
    o.max_retries = live ? 0 : SEGOPS_RETRIES_NONE;
    o.logger = live ? nullptr : segops_log_discard;
    segops_client *raw = nullptr;
    int rc = segops_client_new(&o, &raw);
    if (rc != 0) {
        std::fprintf(stderr, "segops_client_new: %s\n", segops_strerror(rc));
        return 1;
    }
    uint64_t undelivered = 0;
    int src = -100;
    segops_counters s{};
    std::string text;
    {
        std::unique_ptr<segops_client, Shutdown> c(raw, Shutdown{&undelivered, &src});
        const std::string user = "consumer-cpp";
        segops_prop props[] = {SEGOPS_STR("lang", "c++17"), SEGOPS_F64("x", 0.5),
                               SEGOPS_NULL("none")};
        segops_event ev{user.c_str(), "consumer_built", nullptr, props, 3};
        if ((rc = segops_track(c.get(), &ev)) != 0) {
            std::fprintf(stderr, "segops_track: %s\n", segops_strerror(rc));
            return 1;
        }
        segops_context ctx{user.c_str(), nullptr, props, 1};
        if ((rc = segops_identify(c.get(), &ctx)) != 0)
            return 1;
        rc = segops_flush(c.get(), 5000);
        segops_stats(c.get(), &s);
        text.assign(SEGOPS_PROMETHEUS_MAX, '\0');
        size_t len = 0;
        if (segops_stats_prometheus(c.get(), text.data(), text.size(), &len) != 0)
            return 1;
        text.resize(len);
    } // shutdown here
    std::printf("flush=%d delivered=%" PRIu64 " shutdown=%d undelivered=%" PRIu64 "\n", rc,
                s.delivered, src, undelivered);
    if (text.find("segops_events_accepted_total 2\n") == std::string::npos)
        return 1;
    if (live)
        return rc == 0 && src == 0 && s.delivered == 2 && undelivered == 0 ? 0 : 1;
    return rc != 0 && s.delivered == 0 ? 0 : 1;
}
