/* SPDX-License-Identifier: MIT */
/*
 * batch.c -- building a batch: events from the lanes rendered as JSON into
 * the batch's arena, then the request head written in front of them.
 */
#include "batch.h"

#include <stdio.h>
#include <string.h>

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
}

void sg_batch_fill(struct sg_batch *b, struct sg_queue *q, const struct sg_clock *ck,
                   uint32_t want, uint32_t *rr)
{
    const size_t worst = SG_EVENT_RENDER_MAX(q->slot_size) + 1; /* + ',' */
    int took;
    do {
        took = 0;
        for (uint32_t k = 0; k < q->nlanes && b->n < want; k++) {
            struct sg_lane *l = &q->lanes[(*rr + k) % q->nlanes];
            for (int j = 0; j < 64 && b->n < want; j++) {
                if (b->len + worst + 2 > b->cap)
                    return;
                void *slot = sg_lane_take(l);
                if (!slot)
                    break;
                if (b->n)
                    b->body[b->len++] = ',';
                b->len += sg_event_render(slot, b->body + b->len, ck);
                b->n++;
                took = 1;
                sg_lane_recycle(l, slot);
            }
        }
        *rr = (*rr + 1) % q->nlanes;
    } while (took && b->n < want);
}

void sg_batch_seal(struct sg_batch *b, const struct sg_url *url, const char *api_key,
                   size_t api_key_len)
{
    sg_batch_seal_via(b, url, NULL, api_key, api_key_len);
}

void sg_batch_seal_via(struct sg_batch *b, const struct sg_url *url, const struct sg_proxy *px,
                       const char *api_key, size_t api_key_len)
{
    int fwd = px && px->on && !url->tls; /* the proxy forwards this request */
    memcpy(b->body + b->len, "]}", 2);
    b->len += 2;
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
                     fwd && px->auth[0] ? "\r\n" : "", (int)api_key_len, api_key, b->len,
                     b->key);
    /* bounded by creation-time checks on prefix, host, key and proxy user
     * info lengths: 1024 + 2 x 263 + 511 + 694 + fixed text < SG_HEAD_MAX */
    char *start = b->body - n;
    memcpy(start, head, (size_t)n);
    b->req = start;
    b->req_len = (size_t)n + b->len;
}
