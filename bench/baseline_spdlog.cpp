/* SPDX-License-Identifier: MIT */
// baseline_spdlog.cpp -- baseline (b): spdlog's async logger (one worker
// thread, default "block" overflow policy) logging the same four values to
// a null sink.  C++ kept to this file; the harness sees the C functions of
// baseline.h.  The producer side is spdlog's: timestamp, fmt formatting
// into the message buffer, a mutex-protected bounded queue and a
// condition-variable notify per call.
#include "baseline.h"

#include <pthread.h>

#include <cstdio>
#include <memory>

#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

namespace {
struct bl_spd {
    std::shared_ptr<spdlog::details::thread_pool> tp;
    std::shared_ptr<spdlog::async_logger> lg;
};
} // namespace

extern "C" void *bl_spdlog_new(size_t queue_items)
{
    auto *b = new bl_spd;
    b->tp = std::make_shared<spdlog::details::thread_pool>(
        queue_items, 1, [] { pthread_setname_np(pthread_self(), "bl-spdlog"); });
    auto sink = std::make_shared<spdlog::sinks::null_sink_mt>();
    b->lg = std::make_shared<spdlog::async_logger>("bench", std::move(sink), b->tp,
                                                   spdlog::async_overflow_policy::block);
    b->lg->set_level(spdlog::level::info);
    return b;
}

extern "C" int bl_spdlog_track(void *p, const char *user_id, const char *event_type,
                               const char *k1, const char *v1, const char *k2, double v2)
{
    auto *b = static_cast<bl_spd *>(p);
    b->lg->info("{} {} {}={} {}={}", user_id, event_type, k1, v1, k2, v2);
    return 0;
}

extern "C" void bl_spdlog_free(void *p)
{
    auto *b = static_cast<bl_spd *>(p);
    b->lg->flush();
    b->lg.reset();
    b->tp.reset(); // joins the worker after it drained the queue
    delete b;
}

extern "C" const char *bl_spdlog_version(void)
{
    static char v[32];
    std::snprintf(v, sizeof v, "spdlog %d.%d.%d", SPDLOG_VER_MAJOR, SPDLOG_VER_MINOR,
                  SPDLOG_VER_PATCH);
    return v;
}
