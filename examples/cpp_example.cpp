/* SPDX-License-Identifier: MIT */
/*
 * cpp_example.cpp -- libsegops from C++17 through <segops.hpp>.
 *
 *   ./example-cpp
 *
 * segops::client owns a segops_client: open() creates it, the destructor
 * shuts it down, so every queued event gets its chance to be delivered
 * when the object goes out of scope.  Copying is disabled, moving
 * transfers ownership.  Errors are return codes, never exceptions.  User
 * ids, event types, keys and values are std::string_view: nothing is
 * copied before the library's own copy into its slot.
 */
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

#include <segops.hpp>

#include "local_sink.h"

int main()
{
    struct sink *local = example_local_sink();
    int failures = 0;
    {
        segops_options o = segops::options(); // api_url, api_key from the environment
        segops::client client;
        int rc = client.open(o);
        if (rc != 0) {
            std::fprintf(stderr, "segops: %s\n", segops_strerror(rc));
            example_local_sink_stop(local);
            return 1;
        }

        // A user id inside a larger buffer: passed as a view, no NUL needed.
        const std::string line = "user-123,order_placed";
        std::string_view user = std::string_view(line).substr(0, 8);
        failures += client.identify(user, {segops::str("plan", "pro"),
                                           segops::boolean("beta", true)}) != 0;
        for (int i = 0; i < 100; i++) {
            rc = client.track(user, std::string_view(line).substr(9),
                              {segops::str("order_id", "ord-" + std::to_string(i)),
                               segops::f64("total", 89.95), segops::i64("items", i % 5 + 1),
                               segops::json("tags", R"(["cpp","example"])")});
            if (rc != 0) {
                std::fprintf(stderr, "track: %s\n", segops_strerror(rc));
                failures++;
            }
        }
        // An explicit time as Unix milliseconds.
        auto now = std::chrono::system_clock::now().time_since_epoch();
        int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
        failures += client.track(user, "order_shipped", {}, ms - 60000) != 0;

        rc = client.flush(5000);
        std::printf("flush: %s\n", segops_strerror(rc));
        segops_counters s = segops::counters();
        client.stats(s);
        std::printf("accepted=%" PRIu64 " delivered=%" PRIu64 "\n", s.accepted, s.delivered);
        failures += rc != 0 || s.delivered != 102;

        segops::client moved = std::move(client); // ownership moves; client is empty
        failures += client.track(user, "ignored") != SEGOPS_EINVAL;
        segops_counters fin = segops::counters();
        rc = moved.shutdown(5000, fin);
        std::printf("shutdown: %s; over the lifetime: delivered=%" PRIu64 " failed=%" PRIu64
                    " skipped=%" PRIu64 "\n",
                    segops_strerror(rc), fin.delivered, fin.failed, fin.skipped);
        failures += rc != 0 || fin.delivered != 102;
    }
    example_local_sink_stop(local);
    return failures ? 1 : 0;
}
