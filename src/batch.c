/* SPDX-License-Identifier: MIT */
/*
 * batch.c -- building a batch: events from the lanes rendered as JSON into
 * the batch's arena, then the request head written in front of them.
 */
#include "batch.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "event.h"
#include "segops.h"

static const char body_open[] = "{\"events\":[";

void sg_batch_reset(struct sg_batch *b, size_t cap)
{
    b->body = b->arena + SG_HEAD_MAX;
    b->cap = cap;
    memcpy(b->body, body_open, sizeof(body_open) - 1);
    b->len = sizeof(body_open) - 1;
    b->n = 0;
    b->req = NULL;
    b->req_len = 0;
    b->lo = b->hi = 0;
    b->nstk = 0;
    b->rebuild = 0;
    b->saved_at = 0;
    b->skipped = b->failed = 0;
    b->range_result = 0;
}

/* SplitMix64's finaliser: a bijection of 64-bit integers (xor-shifts and
 * multiplications by odd constants are each invertible). */
uint64_t sg_perm64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

void sg_key_seeds(uint64_t seed[2])
{
    if (getrandom(seed, 2 * sizeof(seed[0]), GRND_NONBLOCK) != (ssize_t)(2 * sizeof(seed[0]))) {
        /* no entropy yet (early boot): the clock and the address of the
         * seeds, mixed; still distinct per client in practice */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed[0] = sg_perm64((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
        seed[1] = sg_perm64(seed[0] ^ (uint64_t)(uintptr_t)seed);
    }
    /* equal seeds would make equal halves (see batch.h) */
    if (seed[1] == seed[0])
        seed[1] = ~seed[0];
}

void sg_batch_key(char key[33], const uint64_t seed[2], uint64_t seq)
{
    snprintf(key, 33, "%016" PRIx64 "%016" PRIx64, sg_perm64(seed[0] + seq), sg_perm64(seed[1] + seq));
}

/* Slots taken ahead of the one being rendered, their first lines
 * prefetched.  A slot was written by a producer on another core, or long
 * ago when the lane is deep: its first load is a miss (bench_sender's
 * profile before this: ~95 % of sg_event_render's time on that one load),
 * and several misses in flight cost about one. */
#define SG_FILL_AHEAD 8

void sg_batch_fill(struct sg_batch *b, struct sg_queue *q, const struct sg_clock *ck,
                   uint32_t want, uint32_t *rr)
{
    const size_t worst = SG_EVENT_RENDER_MAX(q->slot_size) + 1; /* + ',' */
    /* only the lanes that may hold events (sg_queue_span_lane): with 256
     * owned lanes and 4 producer threads, 6 lanes per pass, not 258 */
    const uint32_t owned = sg_queue_scan_owned(q), n = owned + q->nshared;
    if (n == 0)
        return; /* no thread has claimed a lane and there are no shared lanes */
    int took;
    do {
        took = 0;
        for (uint32_t k = 0; k < n && b->n < want; k++) {
            struct sg_lane *l = sg_queue_span_lane(q, owned, (*rr + k) % n);
            /* a FIFO of slots taken and not yet rendered: each holds a
             * worst-case event's room in the body and a place in `want` */
            void *ahead[SG_FILL_AHEAD];
            uint32_t head = 0, cnt = 0, taken = 0;
            int empty = 0;
            for (;;) {
                while (!empty && cnt < SG_FILL_AHEAD && taken < 64 && b->n + cnt < want &&
                       b->len + (cnt + 1) * worst + 2 <= b->cap) {
                    void *s = sg_lane_take(l);
                    if (!s) {
                        empty = 1;
                        break;
                    }
                    __builtin_prefetch(s, 0, 3);
                    __builtin_prefetch((char *)s + 64, 0, 3);
                    ahead[(head + cnt) % SG_FILL_AHEAD] = s;
                    cnt++;
                    taken++;
                }
                if (cnt == 0)
                    break;
                void *slot = ahead[head];
                head = (head + 1) % SG_FILL_AHEAD;
                cnt--;
                if (b->n)
                    b->body[b->len++] = ',';
                b->ev_off[b->n] = (uint32_t)b->len;
                b->len += sg_event_render(slot, b->body + b->len, ck);
                b->n++;
                took = 1;
                sg_lane_recycle(l, slot);
            }
            if (b->len + worst + 2 > b->cap)
                return;
        }
        *rr = (*rr + 1) % n; /* n only grows: *rr < n on the next call too */
    } while (took && b->n < want);
}

/* Writes the request head so that it ends right before `body`, whose
 * length is body_len.  Through an HTTP proxy (px on, http:// url) the
 * target is in absolute form and Proxy-Authorization carries px's
 * credentials; https:// goes through a CONNECT tunnel, where the proxy
 * sees none of this. */
static void put_head(struct sg_batch *b, char *body, size_t body_len, const struct sg_url *url,
                     const struct sg_proxy *px, const char *api_key, size_t api_key_len)
{
    int fwd = px && px->on && !url->tls; /* the proxy forwards this request */
    char head[SG_HEAD_MAX];
    int n = snprintf(head, sizeof(head),
                     "POST %s%s%s/api/ingestion/track/batch/ HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "%s%s%s"
                     "Authorization: ApiKey %.*s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "User-Agent: segops-c/" SEGOPS_VERSION_STRING "\r\n"
                     "Idempotency-Key: %s\r\n"
                     "\r\n",
                     fwd ? "http://" : "", fwd ? url->hostport : "", url->prefix, url->hostport,
                     fwd && px->auth[0] ? "Proxy-Authorization: " : "", fwd ? px->auth : "",
                     fwd && px->auth[0] ? "\r\n" : "", (int)api_key_len, api_key, body_len,
                     b->key);
    /* bounded by creation-time checks on prefix, host, key and proxy user
     * info lengths: 1024 + 2 x 263 + 511 + 694 + fixed text < SG_HEAD_MAX */
    char *start = body - n;
    memcpy(start, head, (size_t)n);
    b->req = start;
    b->req_len = (size_t)n + body_len;
}

void sg_batch_seal(struct sg_batch *b, const struct sg_url *url, const char *api_key,
                   size_t api_key_len)
{
    sg_batch_seal_via(b, url, NULL, api_key, api_key_len);
}

void sg_batch_seal_via(struct sg_batch *b, const struct sg_url *url, const struct sg_proxy *px,
                       const char *api_key, size_t api_key_len)
{
    b->ev_off[b->n] = (uint32_t)b->len;
    memcpy(b->body + b->len, "]}", 2);
    b->len += 2;
    b->lo = 0;
    b->hi = b->n;
    put_head(b, b->body, b->len, url, px, api_key, api_key_len);
}

void sg_batch_range(struct sg_batch *b, uint32_t lo, uint32_t hi, const struct sg_url *url,
                    const char *api_key, size_t api_key_len)
{
    sg_batch_range_via(b, lo, hi, url, NULL, api_key, api_key_len);
}

void sg_batch_range_via(struct sg_batch *b, uint32_t lo, uint32_t hi, const struct sg_url *url,
                        const struct sg_proxy *px, const char *api_key, size_t api_key_len)
{
    if (b->saved_at) {
        memcpy(b->body + b->saved_at, b->saved, 2);
        b->saved_at = 0;
    }
    const size_t open = sizeof(body_open) - 1;
    char *first = b->body + b->ev_off[lo];
    /* the range's text ends before the comma that follows its last event,
     * or before the body's own "]}" */
    size_t end = hi < b->n ? b->ev_off[hi] - 1 : b->ev_off[b->n];
    if (hi < b->n) {
        b->saved_at = end;
        memcpy(b->saved, b->body + end, 2);
        memcpy(b->body + end, "]}", 2);
    }
    char *body = first - open; /* over resolved events' text, or the opening */
    memcpy(body, body_open, open);
    b->lo = lo;
    b->hi = hi;
    put_head(b, body, (size_t)(b->body + end + 2 - body), url, px, api_key, api_key_len);
}
