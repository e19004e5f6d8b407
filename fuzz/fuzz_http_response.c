/* SPDX-License-Identifier: MIT */
/*
 * fuzz_http_response.c -- the response parser fed whole, split in two at a
 * position taken from the first byte, and one byte at a time: every
 * observable result must match.  The parsed Retry-After and body are then
 * run through their own parsers.  Half the inputs are read as the answer
 * to a CONNECT (a proxy's), which never has a body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

struct outcome {
    int err;
    size_t consumed;
    struct sg_http_resp r;
};

static int connect_mode; /* the answer to a CONNECT */

static void run(struct outcome *o, const char *p, size_t n, size_t step, size_t first)
{
    size_t off = 0;

    memset(o, 0, sizeof *o);
    if (connect_mode)
        sg_http_resp_init_connect(&o->r);
    else
        sg_http_resp_init(&o->r);
    while (off < n) {
        size_t k = off == 0 && first ? first : step;
        ssize_t rc;
        if (k > n - off)
            k = n - off;
        rc = sg_http_resp_feed(&o->r, p + off, k);
        if (rc < 0) {
            o->err = (int)rc;
            return;
        }
        if ((size_t)rc > k)
            abort();
        o->consumed += (size_t)rc;
        if ((size_t)rc < k) {
            if (!o->r.done)
                abort();
            return;
        }
        off += k;
    }
    if (!o->r.done)
        o->err = sg_http_resp_eof(&o->r);
}

static void same(const struct outcome *a, const struct outcome *b)
{
    if (a->err != b->err)
        abort();
    if (a->err)
        return;
    if (a->consumed != b->consumed || a->r.done != b->r.done ||
        a->r.status != b->r.status || a->r.conn_close != b->r.conn_close ||
        a->r.chunked != b->r.chunked ||
        a->r.content_length != b->r.content_length ||
        strcmp(a->r.retry_after, b->r.retry_after) != 0 ||
        a->r.body_len != b->r.body_len || a->r.body_total != b->r.body_total ||
        memcmp(a->r.body, b->r.body, a->r.body_len) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct outcome whole, split, bytes;
    const char *p = (const char *)data;
    size_t cut;

    if (size == 0)
        return 0;
    cut = (size_t)data[0] * size / 256 + 1;
    /* the last bit of the first byte picks the mode: a CONNECT answer
     * ends with its head, whatever it says about a body */
    connect_mode = data[0] & 1;
    run(&whole, p, size, size, 0);
    run(&split, p, size, size, cut);
    same(&whole, &split);
    if (size <= 2048) {
        run(&bytes, p, size, 1, 0);
        same(&whole, &bytes);
    }
    if (whole.err == 0) {
        int64_t ms, q, s;
        char detail[64];
        if (whole.r.done && (whole.r.status < 200 || whole.r.status > 599))
            abort();
        if (connect_mode && whole.r.body_total != 0)
            abort();
        if (whole.r.body_len > SG_HTTP_BODY_KEEP ||
            whole.r.body_len > whole.r.body_total)
            abort();
        if (strlen(whole.r.retry_after) > SG_HTTP_RETRY_AFTER_MAX)
            abort();
        if (sg_retry_after_parse(whole.r.retry_after, strlen(whole.r.retry_after),
                                 1700000000, &ms) == 0 &&
            (ms < 0 || ms > ((int64_t)1 << 31) * 1000))
            abort();
        (void)sg_answer_parse(whole.r.body, whole.r.body_len, &q, &s, detail,
                              sizeof detail);
        if (strnlen(detail, sizeof detail) == sizeof detail)
            abort();
    }
    return 0;
}
