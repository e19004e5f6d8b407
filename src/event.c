/* SPDX-License-Identifier: MIT */
/*
 * event.c -- validation + slot encoding (the bodies are in encode.h: they
 * run on producer threads, with no allocation, no system call, bounded
 * work), prepared handles, and JSON rendering (sender).
 */
#include "event.h"
#include "encode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "json.h"
#include "timefmt.h"

static char *lit(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}
#define LIT(o, s) lit((o), (s), sizeof(s) - 1)

int sg_event_encode(void *slot, size_t slot_size, const struct sg_event_in *ev,
                    uint64_t stamp)
{
    return sg_encode_plain(slot, slot_size, ev, stamp);
}

int sg_event_encode_prepared(void *slot, size_t slot_size, const struct sg_prepared_in *in,
                             uint64_t stamp)
{
    return sg_encode_prepared_values(slot, slot_size, in, stamp);
}

int sg_event_encode_prepared_props(void *slot, size_t slot_size,
                                   const struct sg_prepared_in *in, uint64_t stamp)
{
    return sg_encode_prepared_props(slot, slot_size, in, stamp);
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
