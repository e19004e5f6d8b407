/* SPDX-License-Identifier: MIT */
/*
 * segops.hpp -- the C++17 interface of libsegops, over <segops.h>.
 *
 * Header-only and thin: every call is one call of the C API, so the rules
 * of segops.h hold unchanged (read its top).  In short:
 *
 *   - segops::client owns one segops_client: move-only; its destructor
 *     shuts the client down (delivering what is queued, within the
 *     timeout given at open()), so events get their chance when it goes
 *     out of scope.
 *   - Error codes, never exceptions: every member returns 0 or a negative
 *     SEGOPS_E* code (segops_strerror() names it); members are noexcept.
 *     A member called on an empty client returns SEGOPS_EINVAL.
 *   - No copies: user ids, event types, property keys and string values
 *     are std::string_view, passed to the library with their lengths (no
 *     NUL needed); the library copies the bytes into its slot during the
 *     call and keeps no pointer.  track() never allocates, blocks, locks or
 *     makes a system call -- the C++ layer adds nothing to that (the
 *     property list is an array on the caller's stack).
 *   - Lifetime of views: a property built from a temporary std::string
 *     (segops::str("k", "ord-" + std::to_string(i))) is valid until the
 *     end of the full expression, i.e. for the whole track() call.  Do not
 *     keep segops_prop values beyond the statement that made them from
 *     temporaries.
 *
 * An empty std::string_view for a user id, event type or key is refused
 * (SEGOPS_EUSERID, SEGOPS_EEVENTTYPE, SEGOPS_EPROP) -- never read as a
 * NUL-terminated string.
 */
#ifndef SEGOPS_HPP
#define SEGOPS_HPP

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <utility>

#include <segops.h>

namespace segops {

namespace detail {
/* An empty view becomes NULL: a length of 0 means "NUL-terminated" to the C
 * API, which must never be applied to a view (it may not end in a NUL). */
inline const char *ptr(std::string_view s) noexcept
{
    return s.empty() ? nullptr : s.data();
}

inline segops_prop make(std::string_view key, int type) noexcept
{
    segops_prop p{};
    p.key = ptr(key);
    p.key_len = key.size();
    p.type = type;
    return p;
}
} // namespace detail

/* Property builders: a key and a value, each a view (no copy). */
inline segops_prop str(std::string_view key, std::string_view value) noexcept
{
    segops_prop p = detail::make(key, SEGOPS_T_STR);
    p.str = value.data() ? value.data() : ""; /* an empty value is valid */
    p.len = value.size();
    return p;
}
inline segops_prop i64(std::string_view key, int64_t value) noexcept
{
    segops_prop p = detail::make(key, SEGOPS_T_I64);
    p.i64 = value;
    return p;
}
inline segops_prop f64(std::string_view key, double value) noexcept
{
    segops_prop p = detail::make(key, SEGOPS_T_F64);
    p.f64 = value;
    return p;
}
inline segops_prop boolean(std::string_view key, bool value) noexcept
{
    segops_prop p = detail::make(key, SEGOPS_T_BOOL);
    p.i64 = value ? 1 : 0;
    return p;
}
inline segops_prop null(std::string_view key) noexcept
{
    return detail::make(key, SEGOPS_T_NULL);
}
/* A JSON object or array as text (validated by track()). */
inline segops_prop json(std::string_view key, std::string_view text) noexcept
{
    segops_prop p = detail::make(key, SEGOPS_T_JSON);
    p.str = text.data() ? text.data() : "";
    p.len = text.size();
    return p;
}

/* Options with every default and `size` set: set what you need. */
inline segops_options options() noexcept
{
    return SEGOPS_OPTIONS_INIT;
}

/* A counters struct ready for stats() (`size` set). */
inline segops_counters counters() noexcept
{
    return SEGOPS_COUNTERS_INIT;
}

class client {
public:
    client() noexcept = default;
    /* Takes ownership of a client made with segops_client_new(). */
    explicit client(segops_client *c, uint32_t shutdown_timeout_ms = 5000) noexcept
        : c_(c), shutdown_timeout_ms_(shutdown_timeout_ms)
    {
    }
    ~client() { shutdown(shutdown_timeout_ms_); }

    client(const client &) = delete;
    client &operator=(const client &) = delete;
    client(client &&o) noexcept
        : c_(std::exchange(o.c_, nullptr)), shutdown_timeout_ms_(o.shutdown_timeout_ms_)
    {
    }
    client &operator=(client &&o) noexcept
    {
        if (this != &o) {
            shutdown(shutdown_timeout_ms_);
            c_ = std::exchange(o.c_, nullptr);
            shutdown_timeout_ms_ = o.shutdown_timeout_ms_;
        }
        return *this;
    }

    /* segops_client_new(); a client already open is shut down first.  The
     * destructor will give shutdown shutdown_timeout_ms.  On error the
     * client stays empty. */
    int open(const segops_options &opts, uint32_t shutdown_timeout_ms = 5000) noexcept
    {
        shutdown(shutdown_timeout_ms_);
        shutdown_timeout_ms_ = shutdown_timeout_ms;
        return segops_client_new(&opts, &c_);
    }

    explicit operator bool() const noexcept { return c_ != nullptr; }
    segops_client *get() const noexcept { return c_; }
    /* Gives up ownership: the caller must segops_shutdown() it. */
    segops_client *release() noexcept { return std::exchange(c_, nullptr); }

    /* segops_track().  occurred_at_ms: Unix time in ms, or SEGOPS_TIME_NONE
     * for the time of the call. */
    int track(std::string_view user_id, std::string_view event_type,
              std::initializer_list<segops_prop> props = {},
              int64_t occurred_at_ms = SEGOPS_TIME_NONE) noexcept
    {
        return track(user_id, event_type, props.begin(), props.size(), occurred_at_ms);
    }
    int track(std::string_view user_id, std::string_view event_type, const segops_prop *props,
              size_t nprops, int64_t occurred_at_ms = SEGOPS_TIME_NONE) noexcept
    {
        segops_event ev{};
        ev.user_id = detail::ptr(user_id);
        ev.user_id_len = user_id.size();
        ev.event_type = detail::ptr(event_type);
        ev.event_type_len = event_type.size();
        ev.payload = props;
        ev.payload_len = nprops;
        ev.occurred_at_ms = occurred_at_ms;
        return segops_track(c_, &ev);
    }

    /* segops_identify(): the user's traits. */
    int identify(std::string_view user_id, std::initializer_list<segops_prop> traits = {},
                 int64_t occurred_at_ms = SEGOPS_TIME_NONE) noexcept
    {
        segops_context ctx{};
        ctx.user_id = detail::ptr(user_id);
        ctx.user_id_len = user_id.size();
        ctx.traits = traits.begin();
        ctx.traits_len = traits.size();
        ctx.occurred_at_ms = occurred_at_ms;
        return segops_identify(c_, &ctx);
    }

    int flush(uint32_t timeout_ms) noexcept { return segops_flush(c_, timeout_ms); }

    /* segops_stats() into out (initialise it with segops::counters()). */
    int stats(segops_counters &out) const noexcept { return segops_stats(c_, &out); }

    /* segops_shutdown(): the client is empty afterwards.  *undelivered:
     * events accepted over the client's lifetime and not delivered (see
     * segops.h).  0 on an empty client. */
    int shutdown(uint32_t timeout_ms, uint64_t *undelivered = nullptr) noexcept
    {
        if (undelivered)
            *undelivered = 0;
        if (!c_)
            return 0;
        return segops_shutdown(std::exchange(c_, nullptr), timeout_ms, undelivered);
    }
    /* segops_shutdown_stats(): final lifetime counters into out
     * (initialise it with segops::counters()). */
    int shutdown(uint32_t timeout_ms, segops_counters &out) noexcept
    {
        if (!c_)
            return 0;
        int rc = segops_shutdown_stats(c_, timeout_ms, &out);
        if (rc != SEGOPS_EINVAL && rc != SEGOPS_ESIZE)
            c_ = nullptr; /* freed */
        return rc;
    }

private:
    segops_client *c_ = nullptr;
    uint32_t shutdown_timeout_ms_ = 5000;
};

} // namespace segops

#endif /* SEGOPS_HPP */
