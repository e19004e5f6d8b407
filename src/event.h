/* SPDX-License-Identifier: MIT */
/*
 * event.h -- internal: an event's slot encoding (producer side) and its
 * JSON rendering (sender side).
 *
 * A slot holds a compact binary copy of the event, never JSON: escaping,
 * UTF-8 repair, number formatting and time formatting all happen on the
 * sender, off the hot path.  Layout (all integers native-endian, read with
 * memcpy, so the slot needs no alignment beyond the header's):
 *
 *   struct sg_slot_hdr
 *   user_id bytes | event_type bytes
 *   per property: u8 type | u32 key_len | key bytes | value
 *     value: STR/JSON u32 len + bytes; I64/BOOL 8 bytes; F64 8 bytes;
 *            NULL nothing
 *
 * A prepared event's slot (flag SG_SLOT_F_PREPARED) holds no event type
 * and no keys, only what changes from call to call:
 *
 *   struct sg_slot_hdr (len: see below; type_len 0)
 *   const segops_prepared * (memcpy'd) | user_id bytes
 *   per value, in the handle's key order: as above, without type and key
 *
 * and renders to exactly the bytes the plain slot of the same event would:
 * the handle's fragments hold the JSON of everything else.  Its hdr.len is
 * the length the plain encoding of the event would have (never less than
 * the bytes it really uses, both checked against the slot size), so the
 * render bound below holds for both kinds.
 *
 * Invariant: a slot that sg_event_encode() or sg_event_encode_prepared*()
 * accepted renders to valid JSON of at most sg_event_render_bound() bytes.
 */
#ifndef SG_EVENT_H
#define SG_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "segops.h"

struct sg_clock;

#define SG_SLOT_F_USER_TIME 1u /* stamp is user-given Unix ms */
#define SG_SLOT_F_PREPARED 2u  /* rendered from a segops_prepared handle */

struct sg_slot_hdr {
    uint64_t stamp;      /* raw clock stamp, or Unix ms with F_USER_TIME */
    uint32_t len;        /* encoded bytes including this header (prepared:
                            those of the equivalent plain encoding) */
    uint32_t user_len;
    uint32_t type_len;
    uint16_t nprops;
    uint16_t flags;
};

#define SG_SLOT_MIN 128
#define SG_SLOT_MAX 65536

/* One event as the public API gives it (segops_event, segops_context):
 * lengths are SEGOPS_NTS or 0 for NUL-terminated strings. */
struct sg_event_in {
    const char *user_id;
    size_t user_len;
    const char *event_type;
    size_t type_len;
    const char *occurred_at;    /* RFC 3339, or NULL */
    int64_t occurred_at_ms;     /* used when occurred_at is NULL; 0: none */
    const segops_prop *props;
    size_t nprops;
};

/* Unix ms accepted as occurred_at_ms: 0000-01-01 .. 9999-12-31, the years
 * RFC 3339 can write. */
#define SG_MS_MIN (-62167219200000LL)
#define SG_MS_MAX 253402300799999LL

/* Validates the event and encodes it into slot[0..slot_size).  `stamp` is
 * the time of the call (used when no time is given).  Returns 0 or the
 * SEGOPS_E* validation code; on error the slot's contents are unspecified.
 * Reads at most slot_size + 1 bytes of any NUL-terminated string, so a huge
 * string costs no more than a slot's worth of scanning; a string with a
 * length is read for exactly that many bytes (and not at all when it
 * cannot fit). */
int sg_event_encode(void *slot, size_t slot_size, const struct sg_event_in *ev,
                    uint64_t stamp);

/* A prepared event (segops.h).  One allocation: this struct, then types,
 * frag and text.  Never written after segops_prepare() returns, so any
 * number of producer threads and senders read it at once; it outlives
 * every slot that points to it (the caller's duty, see segops.h).
 *
 * text holds n + 2 fragments of JSON; fragment i is text[frag[i],
 * frag[i + 1]).  Rendering: {"user_id":<user>  fragment 0  <time>
 * fragment 1  value 0  ...  fragment n  value n-1  fragment n+1
 *   fragment 0:    ,"event_type":"<type>","occurred_at":"
 *   fragment 1:    ","payload":{"<key 0>":
 *   fragment i:    ,"<key i-1>":          (1 < i <= n)
 *   fragment n+1:  }}   (n = 0: ","payload":{}} )
 * Keys are escaped as sg_json_write_str() escapes them. */
struct segops_prepared {
    uint32_t n;            /* keys */
    uint32_t static_len;   /* bytes the plain slot encoding spends on the
                              event type and the keys (type_len +
                              sum(5 + key_len)): the ETOOBIG limit and the
                              render bound stay those of segops_track() */
    const uint8_t *types;  /* n enum segops_type */
    const uint32_t *frag;  /* n + 3 offsets into text */
    const char *text;
};

/* A call of segops_track_prepared() (values) or of segops_track_site()
 * (props: only their values are read); exactly one of the two is used. */
struct sg_prepared_in {
    const segops_prepared *p;
    const char *user_id;
    size_t user_len;        /* SEGOPS_NTS or 0: NUL-terminated */
    const segops_value *values;
    const segops_prop *props;
    size_t n;
    int64_t occurred_at_ms; /* 0: none */
};

/* Checks the values of in (see segops_track_prepared()) and encodes them
 * into slot[0..slot_size) as a prepared slot.  Same contract as
 * sg_event_encode(). */
int sg_event_encode_prepared(void *slot, size_t slot_size, const struct sg_prepared_in *in,
                             uint64_t stamp);
int sg_event_encode_prepared_props(void *slot, size_t slot_size,
                                   const struct sg_prepared_in *in, uint64_t stamp);

/* Validates an event type and keys (each given as key, key_len, type at
 * those offsets of records `stride` bytes apart: segops_prop_spec and
 * segops_prop both work) and builds a handle.  Returns 0 or the
 * segops_prepare() error codes. */
int sg_prepare(const char *event_type, size_t type_len, const void *keys, size_t stride,
               size_t off_key, size_t off_klen, size_t off_type, size_t n,
               segops_prepared **out);

/* Upper bound of the rendering of an event of `len` encoded bytes: every
 * encoded byte becomes at most 6 output bytes (a \u00XX escape; an 8-byte
 * number at most 32); fixed keys and punctuation fit 160.  With len =
 * slot_size it bounds any event of a client: the arena is sized by it. */
#define SG_EVENT_RENDER_MAX(len) (160 + 6 * (size_t)(len))

/* Upper bound of sg_event_render()'s output for this slot. */
static inline size_t sg_event_render_bound(const void *slot)
{
    const struct sg_slot_hdr *h = (const struct sg_slot_hdr *)slot;
    return SG_EVENT_RENDER_MAX(h->len);
}

/* Renders the slot as one JSON event object into out (which MUST hold
 * sg_event_render_bound(slot) bytes).  Returns the bytes written. */
size_t sg_event_render(const void *slot, char *out, const struct sg_clock *ck);

#endif
