/* SPDX-License-Identifier: MIT */
/*
 * baseline.h -- the two baselines bench_track runs next to libsegops, in
 * the same process and the same run, handing over the same four values
 * (user_id, event_type, one string and one double property).
 *
 * Each *_track returns 0 when the event was queued, 1 when it was dropped
 * because the queue was at its bound.
 */
#ifndef BENCH_BASELINE_H
#define BENCH_BASELINE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* (a) the design of the existing C SDKs: a mutex-protected growable array
 * of heap copies, pthread_cond_signal per call, one consumer thread. */
struct bl_mutex;
struct bl_mutex *bl_mutex_new(size_t max_queue);
int bl_mutex_track(struct bl_mutex *b, const char *user_id, const char *event_type,
                   const char *k1, const char *v1, const char *k2, double v2);
/* Drains, joins the consumer, frees.  Returns events consumed. */
unsigned long bl_mutex_free(struct bl_mutex *b);

/* (b) spdlog's async logger (one worker thread, block policy) writing to a
 * null sink.  Only built when spdlog was found (BENCH_HAVE_SPDLOG). */
void *bl_spdlog_new(size_t queue_items);
int bl_spdlog_track(void *b, const char *user_id, const char *event_type, const char *k1,
                    const char *v1, const char *k2, double v2);
void bl_spdlog_free(void *b);
/* "spdlog x.y.z" */
const char *bl_spdlog_version(void);

#ifdef __cplusplus
}
#endif
#endif
