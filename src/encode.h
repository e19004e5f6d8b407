/* SPDX-License-Identifier: MIT */
/*
 * encode.h -- internal: the producer-side validation and slot encoding of
 * events, as always-inlined bodies.  client.c compiles them into each
 * track entry point (no call, no argument struct in memory, constants
 * folded); event.c wraps them as sg_event_encode*() for the tests, the
 * fuzzers and the benches, so every caller runs the same code.
 *
 * Runs on producer threads: no allocation, no system call, bounded work.
 */
#ifndef SG_ENCODE_H
#define SG_ENCODE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "event.h"
#include "json.h"
#include "timefmt.h"

/* Length of a NUL-terminated string, scanning at most max+1 bytes: a
 * result > max means "too long" without reading a huge string to its end. */
static inline size_t bounded_len(const char *s, size_t max)
{
    return strnlen(s, max + 1);
}

/* Bytes allowed after the first of an event type: [a-z0-9_]. */
static const unsigned char sg_snake_tail[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* Length of a valid event type ([a-z][a-z0-9_]*, at most 255 bytes), or 0
 * if it is not one: one pass, validation and length together.  NUL-
 * terminated form. */
static inline size_t snake_case_len(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    if (!(p[0] >= 'a' && p[0] <= 'z'))
        return 0;
    size_t n = 1;
    while (sg_snake_tail[p[n]]) {
        if (++n > 255)
            return 0;
    }
    return p[n] == 0 ? n : 0;
}

/* The same for exactly n bytes (a NUL inside is not snake_case: refused). */
static inline size_t snake_case_len_n(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0 || n > 255 || !(p[0] >= 'a' && p[0] <= 'z'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!sg_snake_tail[p[i]])
            return 0;
    return n;
}

/* SEGOPS_NTS and 0 both mean NUL-terminated for strings that may not be
 * empty (user id, event type, key): 0 is what a zero-initialised field
 * holds, so code written before the lengths existed keeps working. */
static inline int is_nts(size_t len)
{
    return len == SEGOPS_NTS || len == 0;
}

/* isfinite() as a test of the exponent bits: an integer AND and compare,
 * where isfinite() (without -ffinite-math) loads constants and compares
 * in the vector unit.  NaN and the infinities have every exponent bit set. */
static inline int sg_finite(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return (b & 0x7ff0000000000000ull) != 0x7ff0000000000000ull;
}

/* memcpy for the short strings of an event without a library call: the
 * overlapping fixed-size copies below read and write only [0, n). */
static inline void copy_bytes(unsigned char *d, const void *src, size_t n)
{
    const unsigned char *s = src;
    if (n >= 16 && n <= 32) {
        memcpy(d, s, 16);
        memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 8 && n < 16) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4 && n < 8) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else if (n < 4) {
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    } else {
        memcpy(d, s, n);
    }
}

static inline __attribute__((always_inline)) int
sg_encode_plain(void *slot, size_t slot_size, const struct sg_event_in *ev, uint64_t stamp)
{
    struct sg_slot_hdr h;
    unsigned char *base = (unsigned char *)slot;
    size_t off = sizeof(h);
    size_t room = slot_size - off;
    const char *user_id = ev->user_id, *event_type = ev->event_type;
    const segops_prop *props = ev->props;
    size_t nprops = ev->nprops;

    if (!user_id)
        return SEGOPS_EUSERID;
    if (!event_type)
        return SEGOPS_EEVENTTYPE;
    if (nprops && !props)
        return SEGOPS_EPROP;
    if (nprops > UINT16_MAX)
        return SEGOPS_ETOOBIG;

    size_t ulen = is_nts(ev->user_len) ? bounded_len(user_id, room) : ev->user_len;
    if (ulen == 0)
        return SEGOPS_EUSERID;
    /* event types: <= 255 bytes */
    size_t tlen = is_nts(ev->type_len) ? snake_case_len(event_type)
                                       : snake_case_len_n(event_type, ev->type_len);
    if (tlen == 0)
        return SEGOPS_EEVENTTYPE;

    memset(&h, 0, sizeof(h));
    h.stamp = stamp;
    if (ev->occurred_at) {
        size_t olen = strnlen(ev->occurred_at, 64);
        int64_t ms;
        if (olen > 63 || sg_rfc3339_parse(ev->occurred_at, olen, &ms) != 0)
            return SEGOPS_ETIMESTAMP;
        h.stamp = (uint64_t)ms;
        h.flags |= SG_SLOT_F_USER_TIME;
    } else if (ev->occurred_at_ms != SEGOPS_TIME_NONE) {
        /* a number needs no parsing: only the range RFC 3339 can write */
        if (ev->occurred_at_ms < SG_MS_MIN || ev->occurred_at_ms > SG_MS_MAX)
            return SEGOPS_ETIMESTAMP;
        h.stamp = (uint64_t)ev->occurred_at_ms;
        h.flags |= SG_SLOT_F_USER_TIME;
    }

    /* written so that a huge given length cannot wrap the sum */
    if (ulen > room || tlen > room - ulen)
        return SEGOPS_ETOOBIG;
    copy_bytes(base + off, user_id, ulen);
    off += ulen;
    copy_bytes(base + off, event_type, tlen);
    off += tlen;

    for (size_t i = 0; i < nprops; i++) {
        const segops_prop *p = &props[i];
        if (!p->key)
            return SEGOPS_EPROP;
        room = slot_size - off;
        size_t klen = is_nts(p->key_len) ? bounded_len(p->key, room) : p->key_len;
        if (klen == 0)
            return SEGOPS_EPROP;
        if (room < 1 + 4 || klen > room - (1 + 4))
            return SEGOPS_ETOOBIG;
        unsigned char type = (unsigned char)p->type;
        uint32_t k32 = (uint32_t)klen;
        size_t voff = off + 1 + 4 + klen;
        switch (p->type) {
        case SEGOPS_T_STR:
        case SEGOPS_T_JSON: {
            if (!p->str)
                return SEGOPS_EPROP;
            size_t vroom = slot_size - voff;
            size_t vlen;
            if (p->len == SEGOPS_NTS)
                vlen = vroom < 4 ? 5 : bounded_len(p->str, vroom - 4);
            else
                vlen = p->len;
            if (vroom < 4 || vlen > vroom - 4)
                return SEGOPS_ETOOBIG;
            if (p->type == SEGOPS_T_JSON &&
                sg_json_validate(p->str, vlen, SG_JSON_MAX_DEPTH, 1) != 0)
                return SEGOPS_ERAWJSON;
            uint32_t v32 = (uint32_t)vlen;
            memcpy(base + voff, &v32, 4);
            copy_bytes(base + voff + 4, p->str, vlen);
            voff += 4 + vlen;
            break;
        }
        case SEGOPS_T_I64:
        case SEGOPS_T_BOOL:
        case SEGOPS_T_F64: {
            if (p->type == SEGOPS_T_F64 && !sg_finite(p->f64))
                return SEGOPS_ENUMBER;
            if (slot_size - voff < 8)
                return SEGOPS_ETOOBIG;
            if (p->type == SEGOPS_T_F64)
                memcpy(base + voff, &p->f64, 8);
            else
                memcpy(base + voff, &p->i64, 8);
            voff += 8;
            break;
        }
        case SEGOPS_T_NULL:
            break;
        default:
            return SEGOPS_EPROP;
        }
        base[off] = type;
        memcpy(base + off + 1, &k32, 4);
        copy_bytes(base + off + 5, p->key, klen);
        off = voff;
    }

    h.len = (uint32_t)off;
    h.user_len = (uint32_t)ulen;
    h.type_len = (uint32_t)tlen;
    h.nprops = (uint16_t)nprops;
    memcpy(base, &h, sizeof(h));
    return 0;
}

/* Where a value's fields sit in the caller's array: segops_value and
 * segops_prop carry the same value fields at different offsets.  Always a
 * constant, so each encoder below is compiled for its own layout. */
struct sg_value_layout {
    size_t stride, type, str, len, i64, f64;
};
#define SG_VALUE_LAYOUT(T) \
    {sizeof(T), offsetof(T, type), offsetof(T, str), offsetof(T, len), offsetof(T, i64), \
     offsetof(T, f64)}

#define SG_FIELD(rec, lay, f, T) (*(T const *)(const void *)((rec) + (lay).f))

/* The value checks and copies of a prepared slot.  Bounds as in
 * sg_event_encode(); the handle's static part is added at the end, so
 * that ETOOBIG is exactly the plain encoding's limit. */
static inline __attribute__((always_inline)) int
sg_encode_prepared(void *slot, size_t slot_size, const struct sg_prepared_in *in, uint64_t stamp,
                const unsigned char *vals, const struct sg_value_layout lay)
{
    unsigned char *base = (unsigned char *)slot;
    const segops_prepared *p = in->p;
    size_t n = in->n;
    size_t off = sizeof(struct sg_slot_hdr) + sizeof(p);
    if (!in->user_id)
        return SEGOPS_EUSERID;
    if (n != p->n || (n && !vals))
        return SEGOPS_EPROP;
    size_t room = slot_size - off; /* slot_size >= SG_SLOT_MIN */
    size_t ulen = is_nts(in->user_len) ? bounded_len(in->user_id, room) : in->user_len;
    if (ulen == 0)
        return SEGOPS_EUSERID;
    uint16_t flags = SG_SLOT_F_PREPARED;
    if (in->occurred_at_ms != SEGOPS_TIME_NONE) {
        if (in->occurred_at_ms < SG_MS_MIN || in->occurred_at_ms > SG_MS_MAX)
            return SEGOPS_ETIMESTAMP;
        stamp = (uint64_t)in->occurred_at_ms;
        flags |= SG_SLOT_F_USER_TIME;
    }
    if (ulen > room)
        return SEGOPS_ETOOBIG;
    memcpy(base + sizeof(struct sg_slot_hdr), &p, sizeof(p));
    copy_bytes(base + off, in->user_id, ulen);
    off += ulen;
    const uint8_t *types = p->types;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *v = vals + i * lay.stride;
        int type = SG_FIELD(v, lay, type, int);
        if (type != types[i])
            return SEGOPS_EPROP;
        switch (type) {
        case SEGOPS_T_STR:
        case SEGOPS_T_JSON: {
            const char *str = SG_FIELD(v, lay, str, const char *);
            size_t len = SG_FIELD(v, lay, len, size_t);
            if (!str)
                return SEGOPS_EPROP;
            size_t vroom = slot_size - off;
            size_t vlen;
            if (len == SEGOPS_NTS)
                vlen = vroom < 4 ? 5 : bounded_len(str, vroom - 4);
            else
                vlen = len;
            if (vroom < 4 || vlen > vroom - 4)
                return SEGOPS_ETOOBIG;
            if (type == SEGOPS_T_JSON && sg_json_validate(str, vlen, SG_JSON_MAX_DEPTH, 1) != 0)
                return SEGOPS_ERAWJSON;
            uint32_t v32 = (uint32_t)vlen;
            memcpy(base + off, &v32, 4);
            copy_bytes(base + off + 4, str, vlen);
            off += 4 + vlen;
            break;
        }
        case SEGOPS_T_NULL:
            break;
        default: /* I64, BOOL, F64: the types the handle allows */
            if (type == SEGOPS_T_F64 && !sg_finite(SG_FIELD(v, lay, f64, double)))
                return SEGOPS_ENUMBER;
            if (slot_size - off < 8)
                return SEGOPS_ETOOBIG;
            memcpy(base + off, v + (type == SEGOPS_T_F64 ? lay.f64 : lay.i64), 8);
            off += 8;
            break;
        }
    }
    /* the plain encoding's length: header, user, type, keys, values */
    size_t plain = off - sizeof(p) + p->static_len;
    if (plain > slot_size)
        return SEGOPS_ETOOBIG;
    struct sg_slot_hdr h;
    memset(&h, 0, sizeof(h));
    h.stamp = stamp;
    h.flags = flags;
    h.len = (uint32_t)plain;
    h.user_len = (uint32_t)ulen;
    h.nprops = (uint16_t)n;
    memcpy(base, &h, sizeof(h));
    return 0;
}

/* The two layouts a prepared call's values come in: segops_value (from
 * segops_track_prepared()) and segops_prop (from segops_track_site()). */
static inline __attribute__((always_inline)) int
sg_encode_prepared_values(void *slot, size_t slot_size, const struct sg_prepared_in *in,
                          uint64_t stamp)
{
    static const struct sg_value_layout lay = SG_VALUE_LAYOUT(segops_value);
    return sg_encode_prepared(slot, slot_size, in, stamp, (const unsigned char *)in->values, lay);
}

static inline __attribute__((always_inline)) int
sg_encode_prepared_props(void *slot, size_t slot_size, const struct sg_prepared_in *in,
                         uint64_t stamp)
{
    static const struct sg_value_layout lay = SG_VALUE_LAYOUT(segops_prop);
    return sg_encode_prepared(slot, slot_size, in, stamp, (const unsigned char *)in->props, lay);
}

#endif
