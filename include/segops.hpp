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
 *
 * Prepared events (segops.h, "prepared events"): segops::prepared owns a
 * handle (move-only; its destructor frees it), made from an event type
 * and keys built with segops::key::str("order_id") etc.; track(prepared,
 * user, {segops::val::str(id), segops::val::f64(total)}) copies only the
 * values.  The handle MUST outlive every event tracked with it (until the
 * clients that used it are shut down).  The C++ form of the C macro
 * SEGOPS_TRACK_PREPARED() is a function-local static, prepared once,
 * thread-safely, on first use, and alive until exit:
 *
 *   static const segops::prepared order("order_placed",
 *       {segops::key::str("order_id"), segops::key::f64("total")});
 *   c.track(order, user, {segops::val::str(id), segops::val::f64(total)});
 *
 * (a function-local static's initialisation takes the compiler's guard
 * once; later calls only test it: no lock, no allocation).
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

/* Keys of a prepared event: a key (a view) and the type of its value. */
namespace key {
inline segops_prop_spec make(std::string_view k, int type) noexcept
{
    segops_prop_spec s{};
    s.key = detail::ptr(k);
    s.key_len = k.size();
    s.type = type;
    return s;
}
inline segops_prop_spec str(std::string_view k) noexcept { return make(k, SEGOPS_T_STR); }
inline segops_prop_spec i64(std::string_view k) noexcept { return make(k, SEGOPS_T_I64); }
inline segops_prop_spec f64(std::string_view k) noexcept { return make(k, SEGOPS_T_F64); }
inline segops_prop_spec boolean(std::string_view k) noexcept { return make(k, SEGOPS_T_BOOL); }
inline segops_prop_spec null(std::string_view k) noexcept { return make(k, SEGOPS_T_NULL); }
inline segops_prop_spec json(std::string_view k) noexcept { return make(k, SEGOPS_T_JSON); }
} // namespace key

/* Values of a prepared event, in the order of its keys (views: no copy). */
namespace val {
inline segops_value str(std::string_view v) noexcept
{
    segops_value x{};
    x.type = SEGOPS_T_STR;
    x.str = v.data() ? v.data() : ""; /* an empty value is valid */
    x.len = v.size();
    return x;
}
inline segops_value i64(int64_t v) noexcept
{
    segops_value x{};
    x.type = SEGOPS_T_I64;
    x.i64 = v;
    return x;
}
inline segops_value f64(double v) noexcept
{
    segops_value x{};
    x.type = SEGOPS_T_F64;
    x.f64 = v;
    return x;
}
inline segops_value boolean(bool v) noexcept
{
    segops_value x{};
    x.type = SEGOPS_T_BOOL;
    x.i64 = v ? 1 : 0;
    return x;
}
inline segops_value null() noexcept
{
    segops_value x{};
    x.type = SEGOPS_T_NULL;
    return x;
}
/* A JSON object or array as text (validated by track()). */
inline segops_value json(std::string_view text) noexcept
{
    segops_value x = str(text);
    x.type = SEGOPS_T_JSON;
    return x;
}
} // namespace val

/* A prepared event (segops_prepare()): move-only owner of the handle.
 * Construction never throws: on a refused event type or key the object
 * is empty, error() says why, and track() with it returns SEGOPS_EINVAL. */
class prepared {
public:
    prepared() noexcept = default;
    prepared(std::string_view event_type, std::initializer_list<segops_prop_spec> keys) noexcept
    {
        err_ = segops_prepare(detail::ptr(event_type), event_type.size(), keys.begin(),
                              keys.size(), &p_);
    }
    ~prepared() { segops_prepared_free(p_); }
    prepared(const prepared &) = delete;
    prepared &operator=(const prepared &) = delete;
    prepared(prepared &&o) noexcept
        : p_(std::exchange(o.p_, nullptr)), err_(std::exchange(o.err_, SEGOPS_EINVAL))
    {
    }
    prepared &operator=(prepared &&o) noexcept
    {
        if (this != &o) {
            segops_prepared_free(p_);
            p_ = std::exchange(o.p_, nullptr);
            err_ = std::exchange(o.err_, SEGOPS_EINVAL);
        }
        return *this;
    }
    explicit operator bool() const noexcept { return p_ != nullptr; }
    /* 0, or segops_prepare()'s error code (SEGOPS_EINVAL when empty) */
    int error() const noexcept { return err_; }
    const segops_prepared *get() const noexcept { return p_; }

private:
    segops_prepared *p_ = nullptr;
    int err_ = SEGOPS_EINVAL;
};

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

    /* segops_track_prepared(): the values of p's keys, in their order. */
    int track(const prepared &p, std::string_view user_id,
              std::initializer_list<segops_value> values = {},
              int64_t occurred_at_ms = SEGOPS_TIME_NONE) noexcept
    {
        return segops_track_prepared(c_, p.get(), detail::ptr(user_id), user_id.size(),
                                     values.begin(), values.size(), occurred_at_ms);
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
