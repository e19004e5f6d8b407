/* SPDX-License-Identifier: MIT */
/*
 * cpp_example.cpp -- libsegops from C++17: a small RAII wrapper.
 *
 *   ./example-cpp
 *
 * segops::Client owns a segops_client: the constructor creates it (and
 * throws segops::Error when it cannot), the destructor shuts it down, so
 * every queued event gets its chance to be delivered when the object goes
 * out of scope.  Copying is disabled, moving transfers ownership.  The hot
 * path stays exception-free: track() returns the library's error code.
 * Property helpers take std::string_view: the library copies the bytes
 * during the call and keeps no pointer.
 */
#include <cinttypes>
#include <cstdio>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <segops.h>

#include "local_sink.h"

namespace segops {

class Error : public std::runtime_error {
public:
    explicit Error(int code) : std::runtime_error(segops_strerror(code)), code_(code) {}
    int code() const noexcept { return code_; }

private:
    int code_;
};

inline segops_prop str(const char *key, std::string_view v)
{
    return segops_prop{key, SEGOPS_T_STR, v.data(), v.size(), 0, 0.0};
}
inline segops_prop i64(const char *key, int64_t v)
{
    return segops_prop{key, SEGOPS_T_I64, nullptr, 0, v, 0.0};
}
inline segops_prop f64(const char *key, double v)
{
    return segops_prop{key, SEGOPS_T_F64, nullptr, 0, 0, v};
}
inline segops_prop boolean(const char *key, bool v)
{
    return segops_prop{key, SEGOPS_T_BOOL, nullptr, 0, v ? 1 : 0, 0.0};
}
inline segops_prop json(const char *key, std::string_view text)
{
    return segops_prop{key, SEGOPS_T_JSON, text.data(), text.size(), 0, 0.0};
}

class Client {
public:
    explicit Client(const segops_options &opts = segops_options{},
                    uint32_t shutdown_timeout_ms = 5000)
        : shutdown_timeout_ms_(shutdown_timeout_ms)
    {
        int rc = segops_client_new(&opts, &c_);
        if (rc != 0)
            throw Error(rc);
    }
    ~Client() { shutdown(); }

    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;
    Client(Client &&o) noexcept
        : c_(std::exchange(o.c_, nullptr)), shutdown_timeout_ms_(o.shutdown_timeout_ms_)
    {
    }
    Client &operator=(Client &&o) noexcept
    {
        if (this != &o) {
            shutdown();
            c_ = std::exchange(o.c_, nullptr);
            shutdown_timeout_ms_ = o.shutdown_timeout_ms_;
        }
        return *this;
    }

    /* Never blocks or allocates; returns 0 or a SEGOPS_E* code. */
    int track(const std::string &user_id, const char *event_type,
              std::initializer_list<segops_prop> props = {}) noexcept
    {
        segops_event ev{user_id.c_str(), event_type, nullptr, props.begin(), props.size()};
        return segops_track(c_, &ev);
    }
    int identify(const std::string &user_id, std::initializer_list<segops_prop> traits) noexcept
    {
        segops_context ctx{user_id.c_str(), nullptr, traits.begin(), traits.size()};
        return segops_identify(c_, &ctx);
    }
    int flush(uint32_t timeout_ms) noexcept { return segops_flush(c_, timeout_ms); }

    segops_counters stats() const noexcept
    {
        segops_counters s{};
        segops_stats(c_, &s);
        return s;
    }
    std::string prometheus() const
    {
        std::string text(SEGOPS_PROMETHEUS_MAX, '\0');
        size_t len = 0;
        if (segops_stats_prometheus(c_, text.data(), text.size(), &len) != 0)
            return {};
        text.resize(len);
        return text;
    }

    /* Explicit shutdown, to learn the outcome; the destructor does the same
     * silently.  Returns the number of events not delivered. */
    uint64_t shutdown() noexcept
    {
        uint64_t undelivered = 0;
        if (c_)
            segops_shutdown(std::exchange(c_, nullptr), shutdown_timeout_ms_, &undelivered);
        return undelivered;
    }

private:
    segops_client *c_ = nullptr;
    uint32_t shutdown_timeout_ms_;
};

} // namespace segops

int main()
{
    struct sink *local = example_local_sink();
    int failures = 0;
    try {
        segops::Client client; // api_url, api_key from the environment

        std::string user = "user-123";
        failures += client.identify(user, {segops::str("plan", "pro"),
                                           segops::boolean("beta", true)}) != 0;
        for (int i = 0; i < 100; i++) {
            int rc = client.track(user, "order_placed",
                                  {segops::str("order_id", "ord-" + std::to_string(i)),
                                   segops::f64("total", 89.95), segops::i64("items", i % 5 + 1),
                                   segops::json("tags", R"(["cpp","example"])")});
            if (rc != 0) {
                std::fprintf(stderr, "track: %s\n", segops_strerror(rc));
                failures++;
            }
        }
        int rc = client.flush(5000);
        std::printf("flush: %s\n", segops_strerror(rc));
        segops_counters s = client.stats();
        std::printf("accepted=%" PRIu64 " delivered=%" PRIu64 "\n", s.accepted, s.delivered);
        failures += rc != 0 || s.delivered != 101;

        segops::Client moved = std::move(client); // ownership moves; client is empty
        std::printf("%s", moved.prometheus().substr(0, 200).c_str());
        std::printf("...\nundelivered at shutdown: %" PRIu64 "\n", moved.shutdown());
    } catch (const segops::Error &e) {
        std::fprintf(stderr, "segops: %s\n", e.what());
        failures++;
    }
    example_local_sink_stop(local);
    return failures ? 1 : 0;
}
