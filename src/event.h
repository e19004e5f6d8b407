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
 * Invariant: a slot that sg_event_encode() accepted renders to valid JSON
 * of at most sg_event_render_bound() bytes.
 */
#ifndef SG_EVENT_H
#define SG_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "segops.h"

struct sg_clock;

#define SG_SLOT_F_USER_TIME 1u /* stamp is user-given Unix ms */

struct sg_slot_hdr {
    uint64_t stamp;      /* raw clock stamp, or Unix ms with F_USER_TIME */
    uint32_t len;        /* encoded bytes including this header */
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
