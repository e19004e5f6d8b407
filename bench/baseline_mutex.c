/* SPDX-License-Identifier: MIT */
/*
 * baseline_mutex.c -- baseline (a): the hand-over design of the existing
 * SegOps SDKs written in C.  track() takes the wall-clock time, makes one
 * heap copy of the event, appends the pointer to a growable array under a
 * mutex (realloc doubling, bounded by max_queue: beyond it the event is
 * dropped), and signals a condition variable on every call.  One consumer
 * thread swaps the array out under the lock and frees the copies.
 */
#include "baseline.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bl_event {
    int64_t ts_ns;
    double v2;
    char *user_id, *event_type, *k1, *v1, *k2;
    char data[]; /* the five strings, NUL-terminated, back to back */
};

struct bl_mutex {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct bl_event **items;
    size_t len, cap, max;
    int stop;
    unsigned long consumed;
    pthread_t th;
};

static void *consumer(void *arg)
{
    struct bl_mutex *b = arg;
    struct bl_event **spare = NULL;
    size_t spare_cap = 0;
    pthread_setname_np(pthread_self(), "bl-mutex");
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (b->len == 0 && !b->stop)
            pthread_cond_wait(&b->cv, &b->mu);
        if (b->len == 0 && b->stop)
            break;
        /* take the whole array, leave the spare one behind */
        struct bl_event **items = b->items;
        size_t n = b->len, cap = b->cap;
        b->items = spare;
        b->cap = spare_cap;
        b->len = 0;
        pthread_mutex_unlock(&b->mu);
        for (size_t i = 0; i < n; i++) {
            /* a real SDK would serialise here; touching the copy keeps the
             * consumer's memory traffic honest */
            volatile double sink = items[i]->v2 + (double)items[i]->user_id[0];
            (void)sink;
            free(items[i]);
        }
        spare = items;
        spare_cap = cap;
        pthread_mutex_lock(&b->mu);
        b->consumed += n;
    }
    pthread_mutex_unlock(&b->mu);
    free(spare);
    return NULL;
}

struct bl_mutex *bl_mutex_new(size_t max_queue)
{
    struct bl_mutex *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->max = max_queue;
    if (pthread_create(&b->th, NULL, consumer, b) != 0) {
        free(b);
        return NULL;
    }
    return b;
}

int bl_mutex_track(struct bl_mutex *b, const char *user_id, const char *event_type,
                   const char *k1, const char *v1, const char *k2, double v2)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    size_t l0 = strlen(user_id) + 1, l1 = strlen(event_type) + 1, l2 = strlen(k1) + 1,
           l3 = strlen(v1) + 1, l4 = strlen(k2) + 1;
    struct bl_event *e = malloc(sizeof(*e) + l0 + l1 + l2 + l3 + l4);
    if (!e)
        return 1;
    e->ts_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    e->v2 = v2;
    char *p = e->data;
    e->user_id = memcpy(p, user_id, l0);
    p += l0;
    e->event_type = memcpy(p, event_type, l1);
    p += l1;
    e->k1 = memcpy(p, k1, l2);
    p += l2;
    e->v1 = memcpy(p, v1, l3);
    p += l3;
    e->k2 = memcpy(p, k2, l4);

    pthread_mutex_lock(&b->mu);
    if (b->len >= b->max) {
        pthread_mutex_unlock(&b->mu);
        free(e);
        return 1;
    }
    if (b->len == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        struct bl_event **n = realloc(b->items, ncap * sizeof(*n));
        if (!n) {
            pthread_mutex_unlock(&b->mu);
            free(e);
            return 1;
        }
        b->items = n;
        b->cap = ncap;
    }
    b->items[b->len++] = e;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

unsigned long bl_mutex_free(struct bl_mutex *b)
{
    pthread_mutex_lock(&b->mu);
    b->stop = 1;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->th, NULL);
    unsigned long n = b->consumed;
    for (size_t i = 0; i < b->len; i++)
        free(b->items[i]);
    free(b->items);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
    return n;
}
