/* SPDX-License-Identifier: MIT */
/*
 * event.c -- validation + slot encoding (runs on producer threads: no
 * allocation, no system call, bounded work) and JSON rendering (sender).
 */
#include "event.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "json.h"
#include "timefmt.h"

/* Length of a NUL-terminated string, scanning at most max+1 bytes: a
 * result > max means "too long" without reading a huge string to its end. */
static size_t bounded_len(const char *s, size_t max)
{
    return strnlen(s, max + 1);
}

/* Bytes allowed after the first of an event type: [a-z0-9_]. */
static const unsigned char snake_tail[256] = {
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
static size_t snake_case_len(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    if (!(p[0] >= 'a' && p[0] <= 'z'))
        return 0;
    size_t n = 1;
    while (snake_tail[p[n]]) {
        if (++n > 255)
            return 0;
    }
    return p[n] == 0 ? n : 0;
}

/* The same for exactly n bytes (a NUL inside is not snake_case: refused). */
static size_t snake_case_len_n(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0 || n > 255 || !(p[0] >= 'a' && p[0] <= 'z'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!snake_tail[p[i]])
            return 0;
    return n;
}

/* SEGOPS_NTS and 0 both mean NUL-terminated for strings that may not be
 * empty (user id, event type, key): 0 is what a zero-initialised field
 * holds, so code written before the lengths existed keeps working. */
static char *lit(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}
#define LIT(o, s) lit((o), (s), sizeof(s) - 1)

static inline int is_nts(size_t len)
{
    return len == SEGOPS_NTS || len == 0;
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

int sg_event_encode(void *slot, size_t slot_size, const struct sg_event_in *ev,
                    uint64_t stamp)
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
            if (p->type == SEGOPS_T_F64 && !isfinite(p->f64))
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


/* ------------------------------------------------------ prepared events */

int sg_prepare(const char *event_type, size_t type_len, const void *keys, size_t stride,
               size_t off_key, size_t off_klen, size_t off_type, size_t n,
               segops_prepared **out)
{
    const unsigned char *rec = (const unsigned char *)keys;
    if (!event_type)
        return SEGOPS_EEVENTTYPE;
    size_t tlen = is_nts(type_len) ? snake_case_len(event_type)
                                   : snake_case_len_n(event_type, type_len);
    if (tlen == 0)
        return SEGOPS_EEVENTTYPE;
    if (n > UINT16_MAX)
        return SEGOPS_ETOOBIG;
    /* pass 1: validate, and size the static part (as the plain slot
     * encoding would spend it) and the fragments' text */
    size_t static_len = tlen, text_len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *key;
        size_t klen;
        int type;
        memcpy(&key, rec + i * stride + off_key, sizeof(key));
        memcpy(&klen, rec + i * stride + off_klen, sizeof(klen));
        memcpy(&type, rec + i * stride + off_type, sizeof(type));
        if (!key || type < SEGOPS_T_STR || type > SEGOPS_T_JSON)
            return SEGOPS_EPROP;
        klen = is_nts(klen) ? bounded_len(key, SG_SLOT_MAX) : klen;
        if (klen == 0)
            return SEGOPS_EPROP;
        if (klen > SG_SLOT_MAX || static_len + 5 + klen > SG_SLOT_MAX)
            return SEGOPS_ETOOBIG;
        static_len += 5 + klen;
        text_len += SG_JSON_STR_MAX(klen) + 2; /* ',' and ':' */
    }
    static const char f0a[] = ",\"event_type\":\"", f0b[] = "\",\"occurred_at\":\"",
                      f1[] = "\",\"payload\":{";
    text_len += sizeof(f0a) + tlen + sizeof(f0b) + sizeof(f1) + 2;
    size_t frag_at = sizeof(segops_prepared) + n;
    frag_at = (frag_at + 3) & ~(size_t)3;
    size_t text_at = frag_at + (n + 3) * sizeof(uint32_t);
    unsigned char *m = malloc(text_at + text_len);
    if (!m)
        return SEGOPS_ENOMEM;
    segops_prepared *p = (segops_prepared *)(void *)m;
    uint8_t *types = m + sizeof(*p);
    uint32_t *frag = (uint32_t *)(void *)(m + frag_at);
    char *text = (char *)m + text_at, *o = text;
    /* pass 2: the fragments (see event.h) */
    frag[0] = 0;
    o = lit(o, f0a, sizeof(f0a) - 1);
    o = lit(o, event_type, tlen);
    o = lit(o, f0b, sizeof(f0b) - 1);
    for (size_t i = 0; i < n; i++) {
        const char *key;
        size_t klen;
        int type;
        memcpy(&key, rec + i * stride + off_key, sizeof(key));
        memcpy(&klen, rec + i * stride + off_klen, sizeof(klen));
        memcpy(&type, rec + i * stride + off_type, sizeof(type));
        klen = is_nts(klen) ? strlen(key) : klen; /* bounded in pass 1 */
        frag[i + 1] = (uint32_t)(o - text);
        if (i == 0)
            o = lit(o, f1, sizeof(f1) - 1);
        else
            *o++ = ',';
        o += sg_json_write_str(o, key, klen);
        *o++ = ':';
        types[i] = (uint8_t)type;
    }
    frag[n + 1] = (uint32_t)(o - text);
    if (n == 0)
        o = lit(o, f1, sizeof(f1) - 1);
    o = lit(o, "}}", 2);
    frag[n + 2] = (uint32_t)(o - text);
    p->n = (uint32_t)n;
    p->static_len = (uint32_t)static_len;
    p->types = types;
    p->frag = frag;
    p->text = text;
    *out = p;
    return 0;
}

/* The value checks and copies of a prepared slot, for an array of T
 * (segops_value or segops_prop: the same value fields).  Bounds as in
 * sg_event_encode(); the handle's static part is added at the end, so
 * that ETOOBIG is exactly the plain encoding's limit. */
#define SG_ENCODE_PREPARED(name, T, field)                                                   \
    int name(void *slot, size_t slot_size, const struct sg_prepared_in *in, uint64_t stamp)  \
    {                                                                                        \
        struct sg_slot_hdr h;                                                                \
        unsigned char *base = (unsigned char *)slot;                                         \
        const segops_prepared *p = in->p;                                                    \
        const T *vals = in->field;                                                           \
        size_t n = in->n;                                                                    \
        size_t off = sizeof(h) + sizeof(p);                                                  \
        if (!in->user_id)                                                                    \
            return SEGOPS_EUSERID;                                                           \
        if (n != p->n || (n && !vals))                                                       \
            return SEGOPS_EPROP;                                                             \
        size_t room = slot_size - off; /* slot_size >= SG_SLOT_MIN */                        \
        size_t ulen = is_nts(in->user_len) ? bounded_len(in->user_id, room) : in->user_len;  \
        if (ulen == 0)                                                                       \
            return SEGOPS_EUSERID;                                                           \
        memset(&h, 0, sizeof(h));                                                            \
        h.stamp = stamp;                                                                     \
        h.flags = SG_SLOT_F_PREPARED;                                                        \
        if (in->occurred_at_ms != SEGOPS_TIME_NONE) {                                        \
            if (in->occurred_at_ms < SG_MS_MIN || in->occurred_at_ms > SG_MS_MAX)            \
                return SEGOPS_ETIMESTAMP;                                                     \
            h.stamp = (uint64_t)in->occurred_at_ms;                                          \
            h.flags |= SG_SLOT_F_USER_TIME;                                                  \
        }                                                                                    \
        if (ulen > room)                                                                     \
            return SEGOPS_ETOOBIG;                                                           \
        memcpy(base + sizeof(h), &p, sizeof(p));                                             \
        copy_bytes(base + off, in->user_id, ulen);                                           \
        off += ulen;                                                                         \
        for (size_t i = 0; i < n; i++) {                                                     \
            const T *v = &vals[i];                                                           \
            if (v->type != p->types[i])                                                      \
                return SEGOPS_EPROP;                                                         \
            switch (v->type) {                                                               \
            case SEGOPS_T_STR:                                                               \
            case SEGOPS_T_JSON: {                                                            \
                if (!v->str)                                                                 \
                    return SEGOPS_EPROP;                                                     \
                size_t vroom = slot_size - off;                                              \
                size_t vlen;                                                                 \
                if (v->len == SEGOPS_NTS)                                                    \
                    vlen = vroom < 4 ? 5 : bounded_len(v->str, vroom - 4);                   \
                else                                                                         \
                    vlen = v->len;                                                           \
                if (vroom < 4 || vlen > vroom - 4)                                           \
                    return SEGOPS_ETOOBIG;                                                   \
                if (v->type == SEGOPS_T_JSON &&                                              \
                    sg_json_validate(v->str, vlen, SG_JSON_MAX_DEPTH, 1) != 0)               \
                    return SEGOPS_ERAWJSON;                                                  \
                uint32_t v32 = (uint32_t)vlen;                                               \
                memcpy(base + off, &v32, 4);                                                 \
                copy_bytes(base + off + 4, v->str, vlen);                                    \
                off += 4 + vlen;                                                             \
                break;                                                                       \
            }                                                                                \
            case SEGOPS_T_NULL:                                                              \
                break;                                                                       \
            default: /* I64, BOOL, F64: the types the handle allows */                       \
                if (v->type == SEGOPS_T_F64 && !isfinite(v->f64))                            \
                    return SEGOPS_ENUMBER;                                                   \
                if (slot_size - off < 8)                                                     \
                    return SEGOPS_ETOOBIG;                                                   \
                if (v->type == SEGOPS_T_F64)                                                 \
                    memcpy(base + off, &v->f64, 8);                                          \
                else                                                                         \
                    memcpy(base + off, &v->i64, 8);                                          \
                off += 8;                                                                    \
                break;                                                                       \
            }                                                                                \
        }                                                                                    \
        /* the plain encoding's length: header, user, type, keys, values */                  \
        size_t plain = off - sizeof(p) + p->static_len;                                      \
        if (plain > slot_size)                                                               \
            return SEGOPS_ETOOBIG;                                                           \
        h.len = (uint32_t)plain;                                                             \
        h.user_len = (uint32_t)ulen;                                                         \
        h.nprops = (uint16_t)n;                                                              \
        memcpy(base, &h, sizeof(h));                                                         \
        return 0;                                                                            \
    }

SG_ENCODE_PREPARED(sg_event_encode_prepared, segops_value, values)
SG_ENCODE_PREPARED(sg_event_encode_prepared_props, segops_prop, props)

/* ------------------------------------------------------------- render */

/* Events of one batch mostly share their second: the sender keeps the
 * "YYYY-MM-DDTHH:MM:SS." of the last one and writes only the milliseconds.
 * Thread-local: each thread that renders (the sender; tests) has its own. */
static __thread struct {
    int64_t sec;
    int valid;
    char text[SG_RFC3339_MS_LEN];
} ts_cache;

static char *put_time(char *o, int64_t ms)
{
    /* outside 0000-01-01 .. 9999-12-31 the formatter clamps: let it */
    if (ms < -62167219200000LL || ms > 253402300799999LL)
        return o + sg_rfc3339_format_ms(o, ms);
    int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    if (!ts_cache.valid || ts_cache.sec != sec) {
        sg_rfc3339_format_ms(ts_cache.text, sec * 1000);
        ts_cache.sec = sec;
        ts_cache.valid = 1;
    }
    unsigned m = (unsigned)(ms - sec * 1000);
    memcpy(o, ts_cache.text, 20); /* up to and including the '.' */
    o[20] = (char)('0' + m / 100);
    o[21] = (char)('0' + m / 10 % 10);
    o[22] = (char)('0' + m % 10);
    o[23] = 'Z';
    return o + SG_RFC3339_MS_LEN;
}

/* Writes one encoded value of `type` at *pp as JSON; advances *pp. */
static inline char *put_value(char *o, unsigned type, const unsigned char **pp)
{
    const unsigned char *p = *pp;
    uint32_t vlen;
    switch (type) {
    case SEGOPS_T_STR:
        memcpy(&vlen, p, 4);
        o += sg_json_write_str(o, (const char *)p + 4, vlen);
        p += 4 + vlen;
        break;
    case SEGOPS_T_JSON:
        memcpy(&vlen, p, 4);
        o = lit(o, (const char *)p + 4, vlen); /* validated at track */
        p += 4 + vlen;
        break;
    case SEGOPS_T_I64: {
        int64_t v;
        memcpy(&v, p, 8);
        o += sg_json_write_i64(o, v);
        p += 8;
        break;
    }
    case SEGOPS_T_BOOL: {
        int64_t v;
        memcpy(&v, p, 8);
        o = v ? LIT(o, "true") : LIT(o, "false");
        p += 8;
        break;
    }
    case SEGOPS_T_F64: {
        double v;
        memcpy(&v, p, 8);
        o += sg_json_write_f64(o, v);
        p += 8;
        break;
    }
    default: /* SEGOPS_T_NULL */
        o = LIT(o, "null");
        break;
    }
    *pp = p;
    return o;
}

/* A prepared slot: the handle's fragments around the values (event.h). */
static size_t render_prepared(const unsigned char *base, const struct sg_slot_hdr *h, char *out,
                              const struct sg_clock *ck)
{
    const segops_prepared *pr;
    memcpy(&pr, base + sizeof(*h), sizeof(pr));
    const unsigned char *p = base + sizeof(*h) + sizeof(pr);
    const char *text = pr->text;
    const uint32_t *frag = pr->frag;
    char *o = out;

    o = LIT(o, "{\"user_id\":");
    o += sg_json_write_str(o, (const char *)p, h->user_len);
    p += h->user_len;
    o = lit(o, text, frag[1]);
    int64_t ms = (h->flags & SG_SLOT_F_USER_TIME) ? (int64_t)h->stamp
                                                  : sg_clock_to_unix_ms(ck, h->stamp);
    o = put_time(o, ms);
    uint32_t n = pr->n;
    for (uint32_t i = 0; i < n; i++) {
        o = lit(o, text + frag[i + 1], frag[i + 2] - frag[i + 1]);
        o = put_value(o, pr->types[i], &p);
    }
    o = lit(o, text + frag[n + 1], frag[n + 2] - frag[n + 1]);
    return (size_t)(o - out);
}

size_t sg_event_render(const void *slot, char *out, const struct sg_clock *ck)
{
    const unsigned char *base = (const unsigned char *)slot;
    struct sg_slot_hdr h;
    memcpy(&h, base, sizeof(h));
    if (h.flags & SG_SLOT_F_PREPARED)
        return render_prepared(base, &h, out, ck);
    const unsigned char *p = base + sizeof(h);
    char *o = out;

    o = LIT(o, "{\"user_id\":");
    o += sg_json_write_str(o, (const char *)p, h.user_len);
    p += h.user_len;
    o = LIT(o, ",\"event_type\":\"");
    o = lit(o, (const char *)p, h.type_len); /* snake_case: no escaping */
    p += h.type_len;
    o = LIT(o, "\",\"occurred_at\":\"");
    int64_t ms = (h.flags & SG_SLOT_F_USER_TIME) ? (int64_t)h.stamp
                                                 : sg_clock_to_unix_ms(ck, h.stamp);
    o = put_time(o, ms);
    o = LIT(o, "\",\"payload\":{");
    for (unsigned i = 0; i < h.nprops; i++) {
        unsigned char type = *p++;
        uint32_t klen;
        memcpy(&klen, p, 4);
        p += 4;
        if (i)
            *o++ = ',';
        o += sg_json_write_str(o, (const char *)p, klen);
        p += klen;
        *o++ = ':';
        o = put_value(o, type, &p);
    }
    o = LIT(o, "}}");
    return (size_t)(o - out);
}
