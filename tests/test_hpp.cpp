/* SPDX-License-Identifier: MIT */
/*
 * test_hpp.cpp -- <segops.hpp>: the C++17 client against an in-process
 * segops-sink.  A plain program (ctest: exit 0 = pass): Criterion is C.
 *
 * Checks that views are passed with their lengths (a user id, event type,
 * key and value cut out of a larger buffer with no NUL after them arrive
 * exactly), that empty views are refused rather than read as
 * NUL-terminated, epoch milliseconds, move-only ownership, error codes on
 * an empty client, and the lifetime counters of shutdown().
 */
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <segops.hpp>

extern "C" {
#include "sink.h"
}

static_assert(!std::is_copy_constructible_v<segops::client>, "move-only");
static_assert(!std::is_copy_assignable_v<segops::client>, "move-only");
static_assert(std::is_nothrow_move_constructible_v<segops::client>, "noexcept move");
static_assert(std::is_nothrow_move_assignable_v<segops::client>, "noexcept move");

static int failures;
#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            std::fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond);       \
            failures++;                                                                   \
        }                                                                                 \
    } while (0)

static std::mutex mu;
static std::vector<std::string> events;

static void on_event(void *, const char *json, size_t len, const char *)
{
    std::lock_guard<std::mutex> g(mu);
    events.emplace_back(json, len);
}

static bool seen(const std::string &needle)
{
    std::lock_guard<std::mutex> g(mu);
    for (const auto &e : events)
        if (e.find(needle) != std::string::npos)
            return true;
    return false;
}

int main()
{
    sink_opts so;
    std::memset(&so, 0, sizeof(so));
    so.on_event = on_event;
    uint16_t port = 0;
    sink *s = sink_start(&so, &port);
    if (!s)
        return 1;
    std::string url = "http://127.0.0.1:" + std::to_string(port);

    segops_options o = segops::options();
    CHECK(o.size == sizeof(segops_options));
    o.api_url = url.c_str();
    o.api_key = "sk_test";
    o.flush_interval_ms = 60000;
    o.logger = segops_log_discard;

    segops::client empty;
    CHECK(!empty);
    CHECK(empty.track("u", "e") == SEGOPS_EINVAL);
    CHECK(empty.flush(10) == SEGOPS_EINVAL);
    CHECK(empty.shutdown(10) == 0);

    segops::client c;
    CHECK(c.open(o) == 0);
    CHECK(static_cast<bool>(c));

    // Views into one buffer, none NUL-terminated where it ends.
    const char buf[] = "user-42XXorder_placedXXcolourXXred!";
    std::string_view all(buf, sizeof(buf) - 1);
    std::string_view user = all.substr(0, 7), type = all.substr(9, 12),
                     key = all.substr(23, 6), value = all.substr(31, 3);
    CHECK(c.track(user, type, {segops::str(key, value), segops::i64("n", 7)}) == 0);
    // An explicit time in Unix milliseconds.
    CHECK(c.track("user-ms", "timed", {}, 1777127520123LL) == 0);
    CHECK(c.identify(user, {segops::boolean("beta", true), segops::null("none")}) == 0);

    // Empty views are refused, never read as NUL-terminated strings.
    CHECK(c.track(std::string_view(), "e") == SEGOPS_EUSERID);
    CHECK(c.track(all.substr(0, 0), "e") == SEGOPS_EUSERID);
    CHECK(c.track("u", all.substr(5, 0)) == SEGOPS_EEVENTTYPE);
    CHECK(c.track("u", "e", {segops::str(all.substr(3, 0), "v")}) == SEGOPS_EPROP);
    CHECK(c.track("u", "Not_Snake") == SEGOPS_EEVENTTYPE);
    CHECK(c.track("u", "e", {segops::json("j", "{bad")}) == SEGOPS_ERAWJSON);
    // An empty string VALUE is fine.
    CHECK(c.track("u", "e", {segops::str("empty", "")}) == 0);

    // Prepared events: keys and values as views; the same checks.
    {
        static const segops::prepared order(type, {segops::key::str(key), segops::key::i64("n")});
        CHECK(order && order.error() == 0);
        CHECK(c.track(order, "user-prep", {segops::val::str(value), segops::val::i64(8)}) == 0);
        CHECK(c.track(order, "", {segops::val::str(value), segops::val::i64(8)}) ==
              SEGOPS_EUSERID);
        CHECK(c.track(order, "u", {segops::val::i64(1), segops::val::i64(8)}) == SEGOPS_EPROP);
        segops::prepared bad("Not_Snake", {});
        CHECK(!bad && bad.error() == SEGOPS_EEVENTTYPE);
        CHECK(c.track(bad, "u") == SEGOPS_EINVAL);
        segops::prepared badkey("e", {segops::key::str(all.substr(3, 0))});
        CHECK(badkey.error() == SEGOPS_EPROP);
        segops::prepared moved = std::move(badkey);
        CHECK(!moved && !badkey);
    }

    CHECK(c.flush(5000) == 0);
    CHECK(seen(R"("user_id":"user-prep","event_type":"order_placed")"));
    CHECK(seen(R"("payload":{"colour":"red","n":8})"));
    CHECK(seen(R"("user_id":"user-42","event_type":"order_placed")"));
    CHECK(seen(R"("payload":{"colour":"red","n":7})"));
    CHECK(seen(R"("user_id":"user-ms","event_type":"timed","occurred_at":"2026-04-25T14:32:00.123Z")"));
    CHECK(seen(R"("event_type":"context_identified")"));
    CHECK(seen(R"("payload":{"empty":""})"));

    segops_counters st = segops::counters();
    CHECK(c.stats(st) == 0);
    CHECK(st.accepted == 5 && st.delivered == 5 && st.rejected_invalid == 8);

    // Moving transfers ownership; the moved-from client is empty.
    segops::client m = std::move(c);
    CHECK(!c);
    CHECK(c.track("u", "e") == SEGOPS_EINVAL);
    CHECK(m.track("u", "after_move") == 0);
    segops::client m2;
    m2 = std::move(m);
    CHECK(!m && m2);

    segops_counters fin = segops::counters();
    CHECK(m2.shutdown(5000, fin) == 0);
    CHECK(!m2);
    CHECK(fin.accepted == 6 && fin.delivered == 6 && fin.pending == 0 &&
          fin.rejected_invalid == 8);

    // The destructor shuts down and delivers what is queued.
    {
        segops::client d;
        CHECK(d.open(o) == 0);
        CHECK(d.track("user-dtor", "destructed") == 0);
    }
    CHECK(seen(R"("user_id":"user-dtor")"));

    sink_stop(s);
    if (failures)
        std::fprintf(stderr, "test_hpp: %d failed\n", failures);
    else
        std::printf("test_hpp: all passed\n");
    return failures ? 1 : 0;
}
