/* SPDX-License-Identifier: MIT */
/*
 * fuzz_prepared.c -- rendering from a prepared handle (src/event.c).  The
 * input is cut into an event type, up to 6 keys with their value types,
 * a user id and the values; the handle is made (sg_prepare), the values
 * encoded into a slot of a size the input picks, and the slot rendered.
 * Checks: preparation and encoding refuse what the plain path
 * (sg_event_encode) refuses, with the same code (but for the order of a
 * size refusal, see below); an accepted event
 * renders to exactly the plain slot's bytes, within the render bound, as
 * valid JSON (sg_json_validate).
 *
 * Input: byte 0: slot size class; byte 1: number of properties (mod 7);
 * then fields separated by 0xFF: event type, then per property a type
 * byte followed by the key, then the user id, then per property the
 * value (strings as bytes; numbers from their first 8 bytes).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "event.h"
#include "json.h"

#define MAXP 6

/* The next 0xFF-separated field of [*p, end). */
static const uint8_t *field(const uint8_t **p, const uint8_t *end, size_t *len)
{
    const uint8_t *s = *p;
    const uint8_t *e = memchr(s, 0xFF, (size_t)(end - s));
    if (!e)
        e = end;
    *len = (size_t)(e - s);
    *p = e < end ? e + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static _Alignas(8) unsigned char slot_a[4096], slot_b[4096];
    static char out_a[SG_EVENT_RENDER_MAX(4096)], out_b[SG_EVENT_RENDER_MAX(4096)];
    static const size_t sizes[4] = {128, 256, 512, 4096};
    if (size < 2)
        return 0;
    size_t slot_size = sizes[data[0] & 3];
    size_t n = data[1] % (MAXP + 1);
    const uint8_t *p = data + 2, *end = data + size;
    size_t tlen, ulen, klen[MAXP];
    const char *type = (const char *)field(&p, end, &tlen);
    segops_prop props[MAXP];
    memset(props, 0, sizeof(props));
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const uint8_t *f = field(&p, end, &l);
        props[i].type = l ? (int)(f[0] % 7) : SEGOPS_T_STR; /* 0: an unknown type */
        props[i].key = l ? (const char *)f + 1 : (const char *)f;
        klen[i] = l ? l - 1 : 0;
        /* a key with a length: 0 would mean NUL-terminated */
        props[i].key_len = klen[i] ? klen[i] : SEGOPS_NTS;
        if (!klen[i])
            props[i].key = ""; /* refused as empty either way */
    }
    const char *user = (const char *)field(&p, end, &ulen);
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const uint8_t *f = field(&p, end, &l);
        props[i].str = (const char *)f;
        props[i].len = l;
        uint64_t bits = 0;
        memcpy(&bits, f, l < 8 ? l : 8);
        props[i].i64 = (int64_t)bits;
        memcpy(&props[i].f64, &bits, 8);
    }
    if (tlen == 0 || ulen == 0)
        return 0; /* 0 means NUL-terminated: these bytes are not */

    struct sg_event_in in = {user, ulen, type, tlen, NULL, 0, props, n};
    int rc_plain = sg_event_encode(slot_a, slot_size, &in, 1777127520123000000ull);

    segops_prepared *h;
    int rc_prep = sg_prepare(type, tlen, props, sizeof(props[0]), offsetof(segops_prop, key),
                             offsetof(segops_prop, key_len), offsetof(segops_prop, type), n, &h);
    if (rc_prep != 0) {
        /* refused at preparation: the plain path refuses it too, with
         * the same code (type and key errors come before value errors) */
        if (rc_plain != rc_prep && !(rc_prep == SEGOPS_EPROP && rc_plain != 0))
            abort();
        return 0;
    }
    struct sg_prepared_in pin = {h, user, ulen, NULL, props, n, 0};
    int rc = sg_event_encode_prepared_props(slot_b, slot_size, &pin, 1777127520123000000ull);
    if (rc == 0) {
        struct sg_clock ck;
        memset(&ck, 0, sizeof(ck));
        size_t nb = sg_event_render(slot_b, out_b, &ck);
        if (nb > sg_event_render_bound(slot_b) || sg_json_validate(out_b, nb, 8, 1) != 0)
            abort();
        /* the plain slot may refuse for size alone: the prepared one has
         * an 8-byte pointer in place of type and keys (segops.h) */
        if (rc_plain == 0) {
            size_t na = sg_event_render(slot_a, out_a, &ck);
            if (na != nb || memcmp(out_a, out_b, na) != 0)
                abort();
        } else if (rc_plain != SEGOPS_ETOOBIG) {
            abort();
        }
    } else if (rc != rc_plain && rc != SEGOPS_ETOOBIG && rc_plain != SEGOPS_ETOOBIG) {
        /* the two check in different orders (the plain path meets each
         * key's size before the next value), so a size refusal may come
         * first on either side; any other refusal is the same */
        abort();
    }
    free(h);
    return 0;
}
