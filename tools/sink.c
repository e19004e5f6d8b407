/* SPDX-License-Identifier: MIT */
/*
 * sink.c -- segops-sink: an independent implementation of the server side
 * of the SegOps ingestion API, for the demo, the tests and the benchmarks.
 *
 * It shares no code with src/ on purpose: it is the referee that catches
 * the client's mistakes, so its JSON, HTTP and RFC 3339 checks are written
 * from the specification and are strict (CRLF line ends, valid UTF-8,
 * exact JSON grammar).
 *
 * Threads: one acceptor, one thread per connection, blocking sockets.
 *   - Everything in struct sink set by sink_start is read-only afterwards.
 *   - Counters are relaxed atomics: each is monotonic on its own; a reader
 *     may see them at slightly different instants.
 *   - The in-progress gauge and its high-water mark share one atomic word
 *     (current in the low 32 bits, maximum in the high 32), changed by CAS
 *     or fetch_sub only: a reader gets both from the same instant, so the
 *     maximum it sees is never below the current value it sees.
 *   - conn_mu guards the connection list and each conn's fd/done fields; a
 *     connection thread closes its own fd under conn_mu, so sink_stop can
 *     shutdown() every fd without racing against fd reuse.  A conn's num
 *     is set by the acceptor before its thread starts, read-only after.
 *   - idem_mu guards the Idempotency-Key table; jsonl_mu the JSONL stream;
 *     log_mu the request log (log, log_n).
 *   - hold_mu and hold_cv make the hold gate: `hold` is only written under
 *     hold_mu (turning it off broadcasts), and a waiter re-checks it and
 *     `stopping` under hold_mu before every wait; sink_stop sets stopping,
 *     then broadcasts under hold_mu, so no waiter can miss the wake-up.
 *     The lock-free read of `hold` is only a fast path for an open gate.
 *
 * Request handling order for an ingestion endpoint (POST only): number the
 * request, note its Idempotency-Key, scan the body (for the request log's
 * event count and fail_user_id; nothing is decided yet), then drop_first,
 * delay_ms, the hold gate, the API key check (401), fail_first/fail_every,
 * fail_user_id, the dedupe replay, and finally the body's own checks.
 * Each such request is in the gauge from the moment it is read until just
 * before its answer is sent, and goes into the request log at that same
 * moment.  Every other path (except GET /_sink/counts) is a 404.
 *
 * Hot path: one receive buffer per connection, grown once to the largest
 * request and reused; the batch body is checked by one pass of a
 * hand-written scanner that records each event's extent and validity in a
 * fixed 500-entry array; nothing is allocated per request or per event.
 */
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define SINK_HEAD_MAX (64u * 1024)          /* request line + headers */
#define SINK_BODY_MAX (64u * 1024 * 1024)   /* decoded body */
#define SINK_BATCH_MAX 500
#define SINK_BUF_INIT (256u * 1024)
#define SINK_IDEM_SLOTS (1u << 20)          /* power of two */
#define SINK_IDEM_FILL (SINK_IDEM_SLOTS / 4 * 3)
#define SINK_JSON_DEPTH 256
#define SINK_CHUNK_LINE_MAX 1024
#define SINK_GAUGE_CUR 0xffffffffULL         /* low half of the gauge word */

#ifdef MSG_NOSIGNAL
#define SINK_SEND_FLAGS MSG_NOSIGNAL
#else
#define SINK_SEND_FLAGS 0
#endif

enum {
    CTR_CONNECTIONS, CTR_REQUESTS, CTR_BATCH_REQUESTS, CTR_EVENTS,
    CTR_QUEUED, CTR_SKIPPED, CTR_FAILED, CTR_DROPPED, CTR_AUTH,
    CTR_BAD, CTR_REPEATED, CTR_BYTES, CTR_IDLE_408, CTR_VIA, CTR_N
};

/* One Idempotency-Key seen.  h == 0: empty slot.  kind: what the latest
 * 2xx answer for the key was, for dedupe replays. */
enum { IDEM_NONE = 0, IDEM_BATCH = 1, IDEM_SINGLE = 2 };
struct idem_slot {
    uint64_t h;
    uint16_t queued, skipped;
    uint16_t kind;
};

/* Extent of one element of the "events" array, as offsets into the body. */
struct sink_ev {
    uint32_t off, len;
    int valid;
};

struct conn {
    struct sink *s;
    int fd;         /* -1 once closed; guarded by s->conn_mu */
    int done;       /* thread has finished; guarded by s->conn_mu */
    pthread_t th;
    struct conn *next;
    uint64_t num;   /* connection number, from 1, in the order of accept */

    char *buf;      /* receive buffer: [0, used) holds unconsumed bytes */
    size_t cap, used;
    char *out;      /* rendered answer */
    size_t out_cap;
    char *stage;    /* JSONL lines of one request, grown once */
    size_t stage_cap;
    struct sink_ev evs[SINK_BATCH_MAX];
};

struct sink {
    struct sink_opts o;        /* strings point into the copies below */
    char *bind_host, *api_key, *jsonl_path, *fail_detail, *retry_after;
    char *skip_pat;            /* "user_id":"<skip_user_id>" or NULL */
    size_t skip_pat_len;
    char *fail_body;           /* {"detail":"..."} for injected failures */
    size_t fail_body_len;
    char *fail_user;           /* copy of fail_user_id, or NULL */
    size_t fail_user_len;

    int lfd;
    int wake[2];               /* written by sink_stop to stop the acceptor */
    pthread_t acceptor;
    atomic_int stopping;

    pthread_mutex_t conn_mu;
    struct conn *conns;

    _Atomic uint64_t ctr[CTR_N];
    _Atomic uint64_t gauge;    /* max << 32 | in_progress, see above */

    pthread_mutex_t hold_mu;
    pthread_cond_t hold_cv;
    atomic_int hold;           /* gate on; written under hold_mu only */

    pthread_mutex_t log_mu;
    struct sink_req_rec *log;  /* SINK_REQ_LOG entries, a ring */
    uint64_t log_n;            /* records ever added; the next goes to
                                  log[log_n % SINK_REQ_LOG] */

    pthread_mutex_t idem_mu;
    struct idem_slot *idem;    /* SINK_IDEM_SLOTS entries */
    size_t idem_used;

    pthread_mutex_t jsonl_mu;
    FILE *jsonl;
    char *jsonl_buf;
};

static void ctr_add(struct sink *s, int i, uint64_t n)
{
    atomic_fetch_add_explicit(&s->ctr[i], n, memory_order_relaxed);
}

/* A request enters the in-progress gauge.  The current value is bounded by
 * the number of connection threads, far below 2^32, so the low half never
 * carries into the high half. */
static void gauge_enter(struct sink *s)
{
    uint64_t w = atomic_load(&s->gauge), nw;
    do {
        uint64_t cur = (w & SINK_GAUGE_CUR) + 1, max = w >> 32;
        nw = (cur > max ? cur : max) << 32 | cur;
    } while (!atomic_compare_exchange_weak(&s->gauge, &w, nw));
}

/* A request leaves it (it entered before, so the low half is >= 1 and the
 * subtraction never borrows from the high half). */
static void gauge_leave(struct sink *s)
{
    atomic_fetch_sub(&s->gauge, 1);
}

/* ------------------------------------------------------------------ */
/* JSON scanning.
 *
 * Every scan_* function takes p (first byte of the construct, p < e) and
 * returns the first byte after it, or NULL if the text is not valid JSON
 * (RFC 8259, strict: no trailing commas, no leading zeros, no control bytes
 * in strings, UTF-8 well formed).  Nothing is allocated or decoded except
 * the few short strings whose value matters (keys and event fields with
 * escapes), which are decoded into small stack buffers.
 */

/* Byte classes inside a string: 0 plain, 1 quote, 2 backslash, 3 control,
 * 4 non-ASCII (starts a UTF-8 sequence to check). */
#define R16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
static const uint8_t str_class[256] = {
    R16(3), R16(3),
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0x20: '"' */
    R16(0), R16(0),
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,   /* 0x50: '\\' */
    R16(0), R16(0),
    R16(4), R16(4), R16(4), R16(4), R16(4), R16(4), R16(4), R16(4),
};
#undef R16

static inline const char *skip_ws(const char *p, const char *e)
{
    if (p < e && (unsigned char)*p > ' ') return p;   /* compact JSON */
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Checks one UTF-8 sequence starting at p (*p >= 0x80); returns its end. */
static const char *scan_utf8(const char *p, const char *e)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t left = (size_t)(e - p);
    unsigned c = u[0], lo = 0x80, hi = 0xBF, n;

    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        if (c == 0xE0) lo = 0xA0;         /* no overlong forms */
        else if (c == 0xED) hi = 0x9F;    /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;    /* <= U+10FFFF */
    } else
        return NULL;
    if (left < n + 1) return NULL;
    if (u[1] < lo || u[1] > hi) return NULL;
    for (unsigned i = 2; i <= n; i++)
        if (u[i] < 0x80 || u[i] > 0xBF) return NULL;
    return p + n + 1;
}

/* The slow part of scan_str, out of line to keep the hot loop small: one
 * byte (or escape, or UTF-8 sequence) that is not a closing quote.  Returns
 * the byte after it, or NULL. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static const char *scan_str_byte(const char *p, const char *e, int *esc)
{
    switch (str_class[(unsigned char)*p]) {
    case 0:
        return p + 1;
    case 2:
        *esc = 1;
        if (e - p < 2) return NULL;
        switch (p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n':
        case 'r': case 't':
            return p + 2;
        case 'u':
            if (e - p < 6) return NULL;
            for (int i = 2; i < 6; i++)
                if (hex_val(p[i]) < 0) return NULL;
            return p + 6;
        default:
            return NULL;
        }
    case 4:
        return scan_utf8(p, e);
    default:   /* control byte; a quote never gets here */
        return NULL;
    }
}

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define SWAR_ONES 0x0101010101010101ULL
#define SWAR_HIGH 0x8080808080808080ULL
#define SWAR_ZERO(v) (((v) - SWAR_ONES) & ~(v) & SWAR_HIGH)

/* p: first byte after the opening quote.  Returns the closing quote, or
 * NULL.  *esc is set to 1 if the string holds a backslash escape.
 * Fast path: skip a block of plain bytes (no quote, backslash, control or
 * non-ASCII byte) at once and land on the first byte that needs a look. */
static const char *scan_str(const char *p, const char *e, int *esc)
{
    for (;;) {
#if defined(__SSE2__)
        {
            const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\');
            const __m128i sp = _mm_set1_epi8(0x20);
            while (e - p >= 16) {
                __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
                /* signed x < 0x20: control bytes and bytes >= 0x80 */
                __m128i m = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(x, q), _mm_cmpeq_epi8(x, b)),
                    _mm_cmplt_epi8(x, sp));
                unsigned bits = (unsigned)_mm_movemask_epi8(m);
                if (bits) {
                    p += __builtin_ctz(bits);
                    goto look;
                }
                p += 16;
            }
        }
#endif
        while (e - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            uint64_t q = x ^ (0x22 * SWAR_ONES), b = x ^ (0x5C * SWAR_ONES);
            uint64_t ctl = (x - 0x20 * SWAR_ONES) & ~x & SWAR_HIGH;
            uint64_t m = SWAR_ZERO(q) | SWAR_ZERO(b) | ctl | (x & SWAR_HIGH);
            if (m) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                /* the lowest flagged byte is exact (a borrow only
                 * propagates upwards from a true hit) */
                p += __builtin_ctzll(m) / 8;
#endif
                goto look;
            }
            p += 8;
        }
        if (p >= e) return NULL;
    look:
        if (*p == '"') return p;
        p = scan_str_byte(p, e, esc);
        if (!p) return NULL;
    }
}

/* Decodes the content of an already scanned string [s, e) into out, for
 * comparisons only: code points >= 0x80 become the byte 0x80, which
 * matches no name and fails every check.  Returns the length, or
 * (size_t)-1 if it does not fit in cap. */
static size_t unescape_small(const char *s, const char *e, char *out,
                             size_t cap)
{
    size_t n = 0;
    while (s < e) {
        char c = *s++;
        if (c == '\\') {
            char k = *s++;
            switch (k) {
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                unsigned v = 0;
                for (int i = 0; i < 4; i++)
                    v = v * 16 + (unsigned)hex_val(s[i]);
                s += 4;
                c = v < 0x80 ? (char)v : (char)0x80;
                break;
            }
            default: c = k; break;   /* " \ / */
            }
        } else if ((unsigned char)c >= 0x80) {
            while (s < e && ((unsigned char)*s & 0xC0) == 0x80)
                s++;
            c = (char)0x80;
        }
        if (n == cap) return (size_t)-1;
        out[n++] = c;
    }
    return n;
}

static const char *scan_num(const char *p, const char *e)
{
    if (*p == '-') p++;
    if (p >= e) return NULL;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (++p < e && is_digit(*p)) {}
    else
        return NULL;
    if (p < e && *p == '.') {
        if (++p >= e || !is_digit(*p)) return NULL;
        while (++p < e && is_digit(*p)) {}
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        if (++p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || !is_digit(*p)) return NULL;
        while (++p < e && is_digit(*p)) {}
    }
    return p;
}

static const char *scan_lit(const char *p, const char *e, const char *w,
                            size_t n)
{
    if ((size_t)(e - p) < n || memcmp(p, w, n) != 0) return NULL;
    return p + n;
}

static const char *scan_value(const char *p, const char *e, int depth);

static const char *scan_obj(const char *p, const char *e, int depth)
{
    int esc = 0;
    if (depth > SINK_JSON_DEPTH) return NULL;
    p = skip_ws(p + 1, e);
    if (p >= e) return NULL;
    if (*p == '}') return p + 1;
    for (;;) {
        if (*p != '"') return NULL;
        p = scan_str(p + 1, e, &esc);
        if (!p) return NULL;
        p = skip_ws(p + 1, e);
        if (p >= e || *p != ':') return NULL;
        p = skip_ws(p + 1, e);
        if (p >= e) return NULL;
        p = scan_value(p, e, depth);
        if (!p) return NULL;
        p = skip_ws(p, e);
        if (p >= e) return NULL;
        if (*p == '}') return p + 1;
        if (*p != ',') return NULL;
        p = skip_ws(p + 1, e);
        if (p >= e) return NULL;
    }
}

static const char *scan_arr(const char *p, const char *e, int depth)
{
    if (depth > SINK_JSON_DEPTH) return NULL;
    p = skip_ws(p + 1, e);
    if (p >= e) return NULL;
    if (*p == ']') return p + 1;
    for (;;) {
        p = scan_value(p, e, depth);
        if (!p) return NULL;
        p = skip_ws(p, e);
        if (p >= e) return NULL;
        if (*p == ']') return p + 1;
        if (*p != ',') return NULL;
        p = skip_ws(p + 1, e);
        if (p >= e) return NULL;
    }
}

static const char *scan_value(const char *p, const char *e, int depth)
{
    int esc = 0;
    switch (*p) {
    case '"':
        p = scan_str(p + 1, e, &esc);
        return p ? p + 1 : NULL;
    case '{': return scan_obj(p, e, depth + 1);
    case '[': return scan_arr(p, e, depth + 1);
    case 't': return scan_lit(p, e, "true", 4);
    case 'f': return scan_lit(p, e, "false", 5);
    case 'n': return scan_lit(p, e, "null", 4);
    default:
        if (*p == '-' || is_digit(*p)) return scan_num(p, e);
        return NULL;
    }
}

/* ---- RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */

static int two_digits(const char *s)
{
    if (!is_digit(s[0]) || !is_digit(s[1])) return -1;
    return (s[0] - '0') * 10 + (s[1] - '0');
}

static int rfc3339_valid(const char *s, size_t n)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
                                  30, 31};
    const char *e = s + n;
    int y, mo, d, h, mi, sec;

    if (n < 20) return 0;   /* shortest: 2026-04-25T14:32:00Z */
    if (two_digits(s) < 0 || two_digits(s + 2) < 0) return 0;
    y = two_digits(s) * 100 + two_digits(s + 2);
    if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
        s[13] != ':' || s[16] != ':')
        return 0;
    mo = two_digits(s + 5);
    d = two_digits(s + 8);
    h = two_digits(s + 11);
    mi = two_digits(s + 14);
    sec = two_digits(s + 17);
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1]) return 0;
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return 0;
    if (h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
        return 0;
    s += 19;
    if (*s == '.') {
        s++;
        if (s >= e || !is_digit(*s)) return 0;
        while (s < e && is_digit(*s)) s++;
    }
    if (s >= e) return 0;
    if (*s == 'Z' || *s == 'z') return s + 1 == e;
    if (*s != '+' && *s != '-') return 0;
    if (e - s != 6 || s[3] != ':') return 0;
    h = two_digits(s + 1);
    mi = two_digits(s + 4);
    return h >= 0 && h <= 23 && mi >= 0 && mi <= 59;
}

/* ---- events */

enum { F_OTHER, F_USER_ID, F_EVENT_TYPE, F_OCCURRED_AT, F_PAYLOAD };

static int field_of(const char *s, const char *e, int esc)
{
    char tmp[16];
    size_t n = (size_t)(e - s);
    if (esc) {
        n = unescape_small(s, e, tmp, sizeof tmp);
        if (n == (size_t)-1) return F_OTHER;
        s = tmp;
    }
    switch (n) {
    case 7:
        if (memcmp(s, "user_id", 7) == 0) return F_USER_ID;
        if (memcmp(s, "payload", 7) == 0) return F_PAYLOAD;
        return F_OTHER;
    case 10:
        return memcmp(s, "event_type", 10) == 0 ? F_EVENT_TYPE : F_OTHER;
    case 11:
        return memcmp(s, "occurred_at", 11) == 0 ? F_OCCURRED_AT : F_OTHER;
    default:
        return F_OTHER;
    }
}

static int snake_case(const char *s, size_t n)
{
    if (n == 0 || s[0] < 'a' || s[0] > 'z') return 0;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '_')) return 0;
    }
    return 1;
}

/* Checks the string value [s, e) of a known field: 1 valid, -1 not. */
static int check_string_field(int f, const char *s, const char *e, int esc)
{
    char tmp[256];
    size_t n = (size_t)(e - s);
    if (f == F_USER_ID) return n > 0 ? 1 : -1;
    if (esc) {
        n = unescape_small(s, e, tmp, sizeof tmp);
        if (n == (size_t)-1) return -1;   /* too long to be either */
        s = tmp;
    }
    if (f == F_EVENT_TYPE) return snake_case(s, n) ? 1 : -1;
    return rfc3339_valid(s, n) ? 1 : -1;
}

/* p at '{' of an event.  Scans the whole object; *valid tells whether it
 * is an acceptable event.  Later duplicates of a field override earlier
 * ones, as in most JSON decoders. */
static const char *scan_event(const char *p, const char *e, int depth,
                              int *valid)
{
    int st[5] = {0, 0, 0, 0, 0};   /* per field: 0 absent, 1 ok, -1 bad */

    *valid = 0;
    if (depth > SINK_JSON_DEPTH) return NULL;
    p = skip_ws(p + 1, e);
    if (p >= e) return NULL;
    if (*p == '}') return p + 1;
    for (;;) {
        int esc = 0, f;
        const char *ks, *ke;
        if (*p != '"') return NULL;
        ks = p + 1;
        ke = scan_str(ks, e, &esc);
        if (!ke) return NULL;
        f = field_of(ks, ke, esc);
        p = skip_ws(ke + 1, e);
        if (p >= e || *p != ':') return NULL;
        p = skip_ws(p + 1, e);
        if (p >= e) return NULL;
        if (f != F_OTHER && f != F_PAYLOAD && *p == '"') {
            int vesc = 0;
            const char *vs = p + 1, *ve = scan_str(vs, e, &vesc);
            if (!ve) return NULL;
            st[f] = check_string_field(f, vs, ve, vesc);
            p = ve + 1;
        } else {
            if (f == F_PAYLOAD) st[f] = *p == '{' ? 1 : -1;
            else if (f != F_OTHER) st[f] = -1;
            p = scan_value(p, e, depth);
            if (!p) return NULL;
        }
        p = skip_ws(p, e);
        if (p >= e) return NULL;
        if (*p == '}') break;
        if (*p != ',') return NULL;
        p = skip_ws(p + 1, e);
        if (p >= e) return NULL;
    }
    *valid = st[F_USER_ID] == 1 && st[F_EVENT_TYPE] == 1 &&
             st[F_OCCURRED_AT] >= 0 && st[F_PAYLOAD] >= 0;
    return p + 1;
}

int sink_event_valid(const char *json, size_t len)
{
    const char *p, *e;
    int valid = 0;
    if (!json) return 0;
    p = json;
    e = json + len;
    p = skip_ws(p, e);
    if (p >= e || *p != '{') return 0;
    p = scan_event(p, e, 1, &valid);
    if (!p) return 0;
    return skip_ws(p, e) == e && valid;
}

enum { BATCH_OK = 0, BATCH_MALFORMED, BATCH_TOO_MANY, BATCH_NO_EVENTS };

/* Scans a batch body {"events":[...]} (other top-level members are
 * allowed and ignored).  Fills evs[0..*nev) with each element's extent. */
static int scan_batch(const char *b, size_t n, struct sink_ev *evs, int *nev)
{
    const char *p = b, *e = b + n;
    int have = 0, wrong = 0, cnt = 0;

    *nev = 0;
    p = skip_ws(p, e);
    if (p >= e) return BATCH_MALFORMED;
    if (*p != '{') {
        p = scan_value(p, e, 0);
        return p && skip_ws(p, e) == e ? BATCH_NO_EVENTS : BATCH_MALFORMED;
    }
    p = skip_ws(p + 1, e);
    if (p >= e) return BATCH_MALFORMED;
    if (*p != '}') {
        for (;;) {
            int esc = 0;
            const char *ks, *ke;
            char tmp[8];
            size_t kl;
            if (*p != '"') return BATCH_MALFORMED;
            ks = p + 1;
            ke = scan_str(ks, e, &esc);
            if (!ke) return BATCH_MALFORMED;
            kl = (size_t)(ke - ks);
            if (esc) {
                kl = unescape_small(ks, ke, tmp, sizeof tmp);
                ks = tmp;
            }
            p = skip_ws(ke + 1, e);
            if (p >= e || *p != ':') return BATCH_MALFORMED;
            p = skip_ws(p + 1, e);
            if (p >= e) return BATCH_MALFORMED;
            if (kl == 6 && memcmp(ks, "events", 6) == 0) {
                have = 1;
                cnt = 0;
                wrong = *p != '[';
                if (wrong) {
                    p = scan_value(p, e, 1);
                    if (!p) return BATCH_MALFORMED;
                } else {
                    p = skip_ws(p + 1, e);
                    if (p >= e) return BATCH_MALFORMED;
                    if (*p == ']') {
                        p++;
                    } else {
                        for (;;) {
                            const char *q;
                            int valid = 0;
                            if (cnt == SINK_BATCH_MAX) return BATCH_TOO_MANY;
                            if (*p == '{')
                                q = scan_event(p, e, 2, &valid);
                            else
                                q = scan_value(p, e, 1);
                            if (!q) return BATCH_MALFORMED;
                            evs[cnt].off = (uint32_t)(p - b);
                            evs[cnt].len = (uint32_t)(q - p);
                            evs[cnt].valid = valid;
                            cnt++;
                            p = skip_ws(q, e);
                            if (p >= e) return BATCH_MALFORMED;
                            if (*p == ']') {
                                p++;
                                break;
                            }
                            if (*p != ',') return BATCH_MALFORMED;
                            p = skip_ws(p + 1, e);
                            if (p >= e) return BATCH_MALFORMED;
                        }
                    }
                }
            } else {
                p = scan_value(p, e, 0);
                if (!p) return BATCH_MALFORMED;
            }
            p = skip_ws(p, e);
            if (p >= e) return BATCH_MALFORMED;
            if (*p == '}') break;
            if (*p != ',') return BATCH_MALFORMED;
            p = skip_ws(p + 1, e);
            if (p >= e) return BATCH_MALFORMED;
        }
    }
    if (skip_ws(p + 1, e) != e) return BATCH_MALFORMED;
    if (!have || wrong) return BATCH_NO_EVENTS;
    *nev = cnt;
    return BATCH_OK;
}

/* Encodes the code point v (< 0x110000) as UTF-8 into u; returns the
 * length.  A lone surrogate gets the 3-byte form, which no valid UTF-8
 * text contains, so it never compares equal to one. */
static size_t utf8_put(unsigned v, char *u)
{
    if (v < 0x80) {
        u[0] = (char)v;
        return 1;
    }
    if (v < 0x800) {
        u[0] = (char)(0xC0 | v >> 6);
        u[1] = (char)(0x80 | (v & 0x3F));
        return 2;
    }
    if (v < 0x10000) {
        u[0] = (char)(0xE0 | v >> 12);
        u[1] = (char)(0x80 | (v >> 6 & 0x3F));
        u[2] = (char)(0x80 | (v & 0x3F));
        return 3;
    }
    u[0] = (char)(0xF0 | v >> 18);
    u[1] = (char)(0x80 | (v >> 12 & 0x3F));
    u[2] = (char)(0x80 | (v >> 6 & 0x3F));
    u[3] = (char)(0x80 | (v & 0x3F));
    return 4;
}

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++)
        v = v * 16 + (unsigned)hex_val(p[i]);
    return v;
}

/* Does the content [s, e) of a string already checked by scan_str decode
 * to exactly want[0, wn)?  Escapes are decoded to UTF-8, a surrogate pair
 * to one code point, so that "\u0075\u00e9" equals "u\xc3\xa9": the
 * comparison is between the values a JSON decoder would produce, unlike
 * unescape_small, which is lossy above ASCII. */
static int json_str_equals(const char *s, const char *e, const char *want,
                           size_t wn)
{
    size_t k = 0;
    while (s < e) {
        char u[4];
        size_t n;
        if (*s != '\\') {
            if (k == wn || want[k] != *s) return 0;
            k++;
            s++;
            continue;
        }
        if (s[1] == 'u') {
            unsigned v = hex4(s + 2);
            s += 6;
            if (v >= 0xD800 && v <= 0xDBFF && e - s >= 6 && s[0] == '\\' &&
                s[1] == 'u') {
                unsigned lo = hex4(s + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                    s += 6;
                }
            }
            n = utf8_put(v, u);
        } else {
            switch (s[1]) {
            case 'b': u[0] = '\b'; break;
            case 'f': u[0] = '\f'; break;
            case 'n': u[0] = '\n'; break;
            case 'r': u[0] = '\r'; break;
            case 't': u[0] = '\t'; break;
            default: u[0] = s[1]; break;   /* " \ / */
            }
            n = 1;
            s += 2;
        }
        if (wn - k < n || memcmp(want + k, u, n) != 0) return 0;
        k += n;
    }
    return k == wn;
}

/* p at the '{' of an element of a batch that scan_batch accepted (so the
 * object is well-formed JSON).  Is its user_id a string equal to want?
 * The last "user_id" member decides, as in scan_event. */
static int event_user_is(const char *p, const char *e, const char *want,
                         size_t wn)
{
    int is = 0;
    p = skip_ws(p + 1, e);
    if (p >= e || *p == '}') return 0;
    for (;;) {
        int esc = 0, uid;
        const char *ks = p + 1, *ke = scan_str(ks, e, &esc);
        if (!ke) return 0;
        uid = field_of(ks, ke, esc) == F_USER_ID;
        p = skip_ws(ke + 1, e);                   /* at ':' */
        if (p >= e) return 0;
        p = skip_ws(p + 1, e);
        if (p >= e) return 0;
        if (uid && *p == '"') {
            const char *vs = p + 1, *ve = scan_str(vs, e, &esc);
            if (!ve) return 0;
            is = json_str_equals(vs, ve, want, wn);
            p = ve + 1;
        } else {
            if (uid) is = 0;
            p = scan_value(p, e, 2);   /* the depth scan_event gave it */
            if (!p) return 0;
        }
        p = skip_ws(p, e);
        if (p >= e || *p == '}') return is;
        p = skip_ws(p + 1, e);                    /* past ',' */
        if (p >= e) return 0;
    }
}

/* ------------------------------------------------------------------ */
/* Idempotency keys */

static uint64_t key_hash(const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;   /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h ? h : 1;
}

/* Finds the slot of h, inserting it if absent and the table has room.
 * Returns the slot (NULL if absent and the table is full) and sets *seen.
 * Caller holds idem_mu. */
static struct idem_slot *idem_find(struct sink *s, uint64_t h, int *seen)
{
    size_t mask = SINK_IDEM_SLOTS - 1, i = (size_t)h & mask;
    *seen = 0;
    for (;;) {
        struct idem_slot *sl = &s->idem[i];
        if (sl->h == h) {
            *seen = 1;
            return sl;
        }
        if (sl->h == 0) {
            if (s->idem_used >= SINK_IDEM_FILL) return NULL;
            s->idem_used++;
            sl->h = h;
            return sl;
        }
        i = (i + 1) & mask;
    }
}

/* ------------------------------------------------------------------ */
/* HTTP */

struct req {
    size_t method, method_len;   /* offsets into the connection buffer */
    size_t path, path_len;       /* without the query string */
    size_t auth, auth_len;
    size_t idem, idem_len;
    int has_auth, has_idem;
    int via;                     /* a Via header: came through a proxy */
    int http10;
    int close;                   /* client asked to close */
    int chunked;
    int expect_continue;         /* "Expect: 100-continue" */
    int64_t clen;                /* -1: none */
    size_t head_len;
    size_t body, body_len;
};

static int ci_eq(const char *a, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != lit[i]) return 0;
    }
    return 1;
}

static int is_tchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Does the comma-separated header value [v, v+n) hold the token tok? */
static int has_token(const char *v, size_t n, const char *tok)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && v[j] != ',') j++;
        size_t a = i, b = j;
        while (a < b && (v[a] == ' ' || v[a] == '\t')) a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t')) b--;
        if (ci_eq(v + a, b - a, tok)) return 1;
        i = j + 1;
    }
    return 0;
}

/* Parses the head b[0, hlen) (ending with CRLF CRLF).  Returns 0, or the
 * status to answer (400, 501). */
static int parse_head(const char *b, size_t hlen, struct req *r)
{
    const char *p = b, *e = b + hlen, *le, *sp;
    int keep_alive = 0;

    memset(r, 0, sizeof *r);
    r->clen = -1;
    r->head_len = hlen;

    le = memchr(p, '\n', (size_t)(e - p));
    if (!le || le == p || le[-1] != '\r') return 400;
    /* method SP target SP HTTP/1.x */
    sp = p;
    while (sp < le && is_tchar(*sp)) sp++;
    if (sp == p || *sp != ' ') return 400;
    r->method = 0;
    r->method_len = (size_t)(sp - p);
    {
        const char *t = sp + 1, *te = t;
        while (te < le && *te != ' ') {
            if ((unsigned char)*te <= 0x20 || *te == 0x7f) return 400;
            te++;
        }
        if (te == t || te >= le) return 400;
        if ((size_t)(le - 1 - (te + 1)) != 8 ||
            memcmp(te + 1, "HTTP/1.", 7) != 0)
            return 400;
        if (te[8] == '0') r->http10 = 1;
        else if (te[8] != '1') return 400;
        const char *q = memchr(t, '?', (size_t)(te - t));
        r->path = (size_t)(t - b);
        r->path_len = (size_t)((q ? q : te) - t);
    }
    p = le + 1;

    for (;;) {
        const char *name, *ne, *v, *ve;
        le = memchr(p, '\n', (size_t)(e - p));
        if (!le || le[-1] != '\r' || le - 1 < p) return 400;
        if (le - 1 == p) break;          /* empty line: end of head */
        name = p;
        ne = p;
        while (ne < le && is_tchar(*ne)) ne++;
        if (ne == name || *ne != ':') return 400;   /* also obs-fold */
        v = ne + 1;
        ve = le - 1;
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        for (const char *c = v; c < ve; c++)
            if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
                return 400;
        size_t nl = (size_t)(ne - name), vl = (size_t)(ve - v);

        if (ci_eq(name, nl, "content-length")) {
            int64_t n = 0;
            if (vl == 0 || vl > 18) return 400;
            for (size_t i = 0; i < vl; i++) {
                if (!is_digit(v[i])) return 400;
                n = n * 10 + (v[i] - '0');
            }
            if (r->clen >= 0 && r->clen != n) return 400;
            r->clen = n;
        } else if (ci_eq(name, nl, "transfer-encoding")) {
            if (!ci_eq(v, vl, "chunked")) return 501;
            r->chunked = 1;
        } else if (ci_eq(name, nl, "connection")) {
            if (has_token(v, vl, "close")) r->close = 1;
            if (has_token(v, vl, "keep-alive")) keep_alive = 1;
        } else if (ci_eq(name, nl, "authorization")) {
            r->has_auth = 1;
            r->auth = (size_t)(v - b);
            r->auth_len = vl;
        } else if (ci_eq(name, nl, "expect")) {
            if (ci_eq(v, vl, "100-continue")) r->expect_continue = 1;
        } else if (ci_eq(name, nl, "via")) {
            r->via = 1;
        } else if (ci_eq(name, nl, "idempotency-key")) {
            r->has_idem = 1;
            r->idem = (size_t)(v - b);
            r->idem_len = vl;
        }
        p = le + 1;
    }
    if (r->chunked && r->clen >= 0) return 400;   /* RFC 9112 6.1: reject */
    if (r->http10 && !keep_alive) r->close = 1;
    return 0;
}

static const char *reason(int st)
{
    switch (st) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

static int send_all(int fd, const char *p, size_t n, int byte_by_byte)
{
    while (n > 0) {
        ssize_t k = send(fd, p, byte_by_byte ? 1 : n, SINK_SEND_FLAGS);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void sleep_ms(struct sink *s, uint32_t ms)
{
    /* in short slices so that sink_stop is not held up */
    while (ms > 0 && !atomic_load(&s->stopping)) {
        uint32_t step = ms < 20 ? ms : 20;
        struct timespec ts = {0, (long)step * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
        ms -= step;
    }
}

enum { ANS_RETRY_AFTER = 1, ANS_CLOSE_HDR = 2 };

/* Renders and sends one answer.  Returns 0, or -1 if the connection is
 * broken. */
static int answer(struct conn *c, int status, const char *body, size_t blen,
                  int flags)
{
    struct sink *s = c->s;
    char *o = c->out;
    size_t cap = c->out_cap, n;
    int k;

    k = snprintf(o, cap, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n",
                 status, reason(status));
    n = (size_t)k;
    if (s->o.chunked)
        n += (size_t)snprintf(o + n, cap - n, "Transfer-Encoding: chunked\r\n");
    else
        n += (size_t)snprintf(o + n, cap - n, "Content-Length: %zu\r\n", blen);
    if ((flags & ANS_RETRY_AFTER) && s->o.retry_after)
        n += (size_t)snprintf(o + n, cap - n, "Retry-After: %s\r\n",
                              s->o.retry_after);
    if (flags & ANS_CLOSE_HDR)
        n += (size_t)snprintf(o + n, cap - n, "Connection: close\r\n");
    n += (size_t)snprintf(o + n, cap - n, "\r\n");
    if (s->o.chunked) {
        /* three chunks (fewer for tiny bodies), then the last chunk */
        size_t step = blen / 3 + 1, off = 0;
        while (off < blen) {
            size_t m = blen - off < step ? blen - off : step;
            n += (size_t)snprintf(o + n, cap - n, "%zx\r\n", m);
            memcpy(o + n, body + off, m);
            n += m;
            memcpy(o + n, "\r\n", 2);
            n += 2;
            off += m;
        }
        memcpy(o + n, "0\r\n\r\n", 5);
        n += 5;
    } else {
        memcpy(o + n, body, blen);
        n += blen;
    }
    return send_all(c->fd, o, n, s->o.byte_by_byte);
}

static int answer_detail(struct conn *c, int status, const char *detail,
                         int flags)
{
    char b[256];
    int n = snprintf(b, sizeof b, "{\"detail\":\"%s\"}", detail);
    return answer(c, status, b, (size_t)n, flags);
}

static size_t render_counts(const struct sink_counts *k, char *b, size_t cap)
{
    int n = snprintf(
        b, cap,
        "{\"connections\":%llu,\"requests\":%llu,\"batch_requests\":%llu,"
        "\"events\":%llu,\"queued\":%llu,\"skipped\":%llu,"
        "\"failed_requests\":%llu,\"dropped_requests\":%llu,"
        "\"auth_failures\":%llu,\"bad_requests\":%llu,"
        "\"repeated_keys\":%llu,\"bytes\":%llu,\"idle_408s\":%llu,"
        "\"in_progress\":%llu,\"max_in_progress\":%llu}",
        (unsigned long long)k->connections, (unsigned long long)k->requests,
        (unsigned long long)k->batch_requests, (unsigned long long)k->events,
        (unsigned long long)k->queued, (unsigned long long)k->skipped,
        (unsigned long long)k->failed_requests,
        (unsigned long long)k->dropped_requests,
        (unsigned long long)k->auth_failures,
        (unsigned long long)k->bad_requests,
        (unsigned long long)k->repeated_keys, (unsigned long long)k->bytes,
        (unsigned long long)k->idle_408s, (unsigned long long)k->in_progress,
        (unsigned long long)k->max_in_progress);
    return n < 0 ? 0 : (size_t)n;
}

/* Records the valid events of evs (extents relative to body). */
static void record(struct conn *c, char *body, const struct sink_ev *evs,
                   int n, int queued, const char *idem)
{
    struct sink *s = c->s;
    if (s->jsonl && queued > 0) {
        /* the lines are staged in the connection's buffer and written with
         * one fwrite: no per-event stdio call under the lock */
        size_t need = 0, k = 0;
        for (int i = 0; i < n; i++)
            if (evs[i].valid) need += evs[i].len + 1;
        if (need > c->stage_cap) {
            char *nb = realloc(c->stage, need);
            if (nb) {
                c->stage = nb;
                c->stage_cap = need;
            }
        }
        if (need <= c->stage_cap) {
            for (int i = 0; i < n; i++) {
                if (!evs[i].valid) continue;
                char *d = c->stage + k;
                memcpy(d, body + evs[i].off, evs[i].len);
                /* raw CR/LF can only be whitespace between tokens: blank
                 * them so that each event stays on one line */
                for (char *q = d; (q = memchr(q, '\n', evs[i].len - (size_t)(q - d)));)
                    *q = ' ';
                for (char *q = d; (q = memchr(q, '\r', evs[i].len - (size_t)(q - d)));)
                    *q = ' ';
                k += evs[i].len;
                c->stage[k++] = '\n';
            }
            pthread_mutex_lock(&s->jsonl_mu);
            fwrite(c->stage, 1, k, s->jsonl);
            /* the lines are in the file before the client sees 202 */
            fflush(s->jsonl);
            pthread_mutex_unlock(&s->jsonl_mu);
        } else {
            /* out of memory for the staging copy: slower, still complete */
            pthread_mutex_lock(&s->jsonl_mu);
            for (int i = 0; i < n; i++) {
                if (!evs[i].valid) continue;
                const char *t = body + evs[i].off;
                for (uint32_t j = 0; j < evs[i].len; j++)
                    putc(t[j] == '\n' || t[j] == '\r' ? ' ' : t[j], s->jsonl);
                putc('\n', s->jsonl);
            }
            fflush(s->jsonl);
            pthread_mutex_unlock(&s->jsonl_mu);
        }
    }
    if (s->o.on_event) {
        for (int i = 0; i < n; i++) {
            if (!evs[i].valid) continue;
            /* NUL-terminate in place for the callback's convenience; the
             * byte after an event is a separator that is no longer read */
            char *t = body + evs[i].off;
            char save = t[evs[i].len];
            t[evs[i].len] = '\0';
            s->o.on_event(s->o.on_event_user, t, evs[i].len, idem);
            t[evs[i].len] = save;
        }
    }
}

static int suffix_is(const char *p, size_t n, const char *suf)
{
    size_t m = strlen(suf);
    return n >= m && memcmp(p + n - m, suf, m) == 0;
}

enum { KEEP = 0, CLOSE = 1 };

/* What the request log needs to know about the ingestion request being
 * handled, gathered before its answer is chosen. */
struct ingest {
    int64_t t_ns;      /* CLOCK_MONOTONIC when it was completely read */
    uint32_t events;   /* events in the body, 0 if not parsable */
    const char *idem;  /* Idempotency-Key, NUL-terminated, or "" */
    size_t idem_len;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The request is settled with `status` (0: closed unanswered).  It goes
 * into the request log, then leaves the gauge, both before any byte of the
 * answer is sent: a client that has read the answer finds the record and
 * no longer finds the request in progress.  Called exactly once for every
 * request that entered the gauge. */
static void ingest_done(struct conn *c, const struct ingest *in, int status)
{
    struct sink *s = c->s;
    struct sink_req_rec *rec;
    size_t kl = in->idem_len < sizeof rec->key - 1 ? in->idem_len
                                                   : sizeof rec->key - 1;
    pthread_mutex_lock(&s->log_mu);
    rec = &s->log[s->log_n % SINK_REQ_LOG];
    s->log_n++;
    rec->t_ns = in->t_ns;
    rec->status = status;
    rec->events = in->events;
    rec->conn = c->num;
    memcpy(rec->key, in->idem, kl);
    rec->key[kl] = '\0';
    pthread_mutex_unlock(&s->log_mu);
    gauge_leave(s);
}

static int ingest_answer(struct conn *c, const struct ingest *in, int status,
                         const char *body, size_t blen, int flags)
{
    ingest_done(c, in, status);
    return answer(c, status, body, blen, flags) ? CLOSE : KEEP;
}

static int ingest_answer_detail(struct conn *c, const struct ingest *in,
                                int status, const char *detail, int flags)
{
    ingest_done(c, in, status);
    return answer_detail(c, status, detail, flags) ? CLOSE : KEEP;
}

/* Waits while the hold gate is on.  Returns -1 if it was the sink stopping
 * that ended the wait (the request is then closed unanswered), else 0.
 * The gate is checked once per request, so a request that got past an
 * open gate is not stopped by a later sink_hold(s, 1). */
static int hold_wait(struct sink *s)
{
    int stopped = 0;
    if (!atomic_load(&s->hold)) return 0;
    pthread_mutex_lock(&s->hold_mu);
    while (atomic_load(&s->hold) && !(stopped = atomic_load(&s->stopping)))
        pthread_cond_wait(&s->hold_cv, &s->hold_mu);
    pthread_mutex_unlock(&s->hold_mu);
    return stopped ? -1 : 0;
}

/* Handles a request to an ingestion endpoint.  Returns KEEP or CLOSE
 * (close without a further answer). */
static int handle_ingest(struct conn *c, struct req *r, int batch)
{
    struct sink *s = c->s;
    char *b = c->buf;
    char *body = b + r->body;
    const char *be = body + r->body_len;
    char out[64];
    struct ingest in = {mono_ns(), 0, "", 0};
    struct idem_slot *slot = NULL;
    uint64_t num, h = 0;
    int seen = 0, flags = 0;
    /* the body, scanned once up front: batch: brc and c->evs[0, nev);
     * single: the value's extent [sp, sq) (sq NULL if not exactly one
     * JSON value) and whether it is a valid event */
    int brc = BATCH_MALFORMED, nev = 0, svalid = 0;
    const char *sp = NULL, *sq = NULL;

    gauge_enter(s);
    num = atomic_fetch_add_explicit(&s->ctr[CTR_REQUESTS], 1,
                                    memory_order_relaxed) + 1;
    if (batch) ctr_add(s, CTR_BATCH_REQUESTS, 1);
    if (r->via) ctr_add(s, CTR_VIA, 1);
    if (s->o.conn_close || r->close) flags |= ANS_CLOSE_HDR;

    if (r->has_idem) {
        b[r->idem + r->idem_len] = '\0';   /* was CR, OWS: head is parsed */
        in.idem = b + r->idem;
        in.idem_len = r->idem_len;
        h = key_hash(in.idem, r->idem_len);
        pthread_mutex_lock(&s->idem_mu);
        slot = idem_find(s, h, &seen);
        pthread_mutex_unlock(&s->idem_mu);
        if (seen) ctr_add(s, CTR_REPEATED, 1);
    }

    if (batch) {
        brc = scan_batch(body, r->body_len, c->evs, &nev);
        if (brc == BATCH_OK) in.events = (uint32_t)nev;
    } else {
        sp = skip_ws(body, be);
        if (sp < be) {
            sq = *sp == '{' ? scan_event(sp, be, 1, &svalid)
                            : scan_value(sp, be, 0);
            if (sq && skip_ws(sq, be) != be) sq = NULL;
        }
        in.events = sq && *sp == '{';
    }

    if (num <= s->o.drop_first) {
        ctr_add(s, CTR_DROPPED, 1);
        ingest_done(c, &in, 0);
        return CLOSE;
    }
    sleep_ms(s, s->o.delay_ms);
    if (hold_wait(s)) {
        ingest_done(c, &in, 0);
        return CLOSE;
    }

    {
        size_t kl = strlen(s->o.api_key);
        const char *a = b + r->auth;
        if (!r->has_auth || r->auth_len != 7 + kl ||
            !ci_eq(a, 6, "apikey") || a[6] != ' ' ||
            memcmp(a + 7, s->o.api_key, kl) != 0) {
            ctr_add(s, CTR_AUTH, 1);
            return ingest_answer_detail(c, &in, 401, "Invalid API key.", flags);
        }
    }

    {
        int fail = (s->o.fail_first && num <= s->o.fail_first) ||
                   (s->o.fail_every && num % s->o.fail_every == 0);
        /* a poison record: fails whatever the request's number */
        for (int i = 0; !fail && s->fail_user && brc == BATCH_OK && i < nev;
             i++)
            fail = body[c->evs[i].off] == '{' &&
                   event_user_is(body + c->evs[i].off,
                                 body + c->evs[i].off + c->evs[i].len,
                                 s->fail_user, s->fail_user_len);
        if (fail) {
            int st = s->o.fail_status;
            ctr_add(s, CTR_FAILED, 1);
            if (st == 429 || st == 503) flags |= ANS_RETRY_AFTER;
            return ingest_answer(c, &in, st, s->fail_body, s->fail_body_len,
                                 flags);
        }
    }

    if (s->o.dedupe && slot && seen) {
        struct idem_slot snap;
        pthread_mutex_lock(&s->idem_mu);
        snap = *slot;
        pthread_mutex_unlock(&s->idem_mu);
        if (snap.kind == IDEM_BATCH) {
            int n = snprintf(out, sizeof out, "{\"queued\":%u,\"skipped\":%u}",
                             snap.queued, snap.skipped);
            return ingest_answer(c, &in, 202, out, (size_t)n, flags);
        }
        if (snap.kind == IDEM_SINGLE)
            return ingest_answer(c, &in, 202, "{\"queued\":true}", 15, flags);
    }

    if (batch) {
        int queued = 0, n;
        if (brc != BATCH_OK) {
            const char *why =
                brc == BATCH_TOO_MANY
                    ? "Too many events: at most 500 per request."
                : brc == BATCH_NO_EVENTS
                    ? "Body must be a JSON object with an \\\"events\\\" array."
                    : "Malformed JSON body.";
            ctr_add(s, CTR_BAD, 1);
            return ingest_answer_detail(c, &in, 400, why, flags);
        }
        for (int i = 0; i < nev; i++) {
            /* a server-side rule the client cannot know: skip this user */
            if (s->skip_pat && c->evs[i].valid &&
                memmem(body + c->evs[i].off, c->evs[i].len, s->skip_pat, s->skip_pat_len))
                c->evs[i].valid = 0;
            queued += c->evs[i].valid;
        }
        record(c, body, c->evs, nev, queued, in.idem);
        ctr_add(s, CTR_EVENTS, (uint64_t)nev);
        ctr_add(s, CTR_QUEUED, (uint64_t)queued);
        ctr_add(s, CTR_SKIPPED, (uint64_t)(nev - queued));
        if (slot) {
            pthread_mutex_lock(&s->idem_mu);
            slot->kind = IDEM_BATCH;
            slot->queued = (uint16_t)queued;
            slot->skipped = (uint16_t)(nev - queued);
            pthread_mutex_unlock(&s->idem_mu);
        }
        n = snprintf(out, sizeof out, "{\"queued\":%d,\"skipped\":%d}", queued,
                     nev - queued);
        return ingest_answer(c, &in, 202, out, (size_t)n, flags);
    } else {
        struct sink_ev ev;
        if (!sq) {
            ctr_add(s, CTR_BAD, 1);
            return ingest_answer_detail(c, &in, 400, "Malformed JSON body.",
                                        flags);
        }
        if (!svalid) {
            ctr_add(s, CTR_BAD, 1);
            return ingest_answer_detail(c, &in, 400, "Invalid event.", flags);
        }
        ev.off = (uint32_t)(sp - body);
        ev.len = (uint32_t)(sq - sp);
        ev.valid = 1;
        record(c, body, &ev, 1, 1, in.idem);
        ctr_add(s, CTR_EVENTS, 1);
        ctr_add(s, CTR_QUEUED, 1);
        if (slot) {
            pthread_mutex_lock(&s->idem_mu);
            slot->kind = IDEM_SINGLE;
            pthread_mutex_unlock(&s->idem_mu);
        }
        return ingest_answer(c, &in, 202, "{\"queued\":true}", 15, flags);
    }
}

/* Routes one complete request.  Returns KEEP or CLOSE. */
static int handle(struct conn *c, struct req *r)
{
    struct sink *s = c->s;
    const char *b = c->buf;
    const char *m = b + r->method, *path = b + r->path;
    int is_post = r->method_len == 4 && memcmp(m, "POST", 4) == 0;
    int is_get = r->method_len == 3 && memcmp(m, "GET", 3) == 0;
    int flags = (s->o.conn_close || r->close) ? ANS_CLOSE_HDR : 0;
    int batch = suffix_is(path, r->path_len, "/api/ingestion/track/batch/");
    int single = !batch && suffix_is(path, r->path_len, "/api/ingestion/track/");
    int rc;

    if (r->path_len == 13 && memcmp(path, "/_sink/counts", 13) == 0) {
        struct sink_counts k;
        char out[1024];
        size_t n;
        if (!is_get) {
            rc = answer_detail(c, 405, "Method not allowed.", flags);
        } else {
            sink_get_counts(s, &k);
            n = render_counts(&k, out, sizeof out);
            rc = answer(c, 200, out, n, flags);
        }
    } else if (batch || single) {
        if (!is_post) {
            sleep_ms(s, s->o.delay_ms);
            rc = answer_detail(c, 405, "Method not allowed.", flags);
        } else {
            if (handle_ingest(c, r, batch) == CLOSE) return CLOSE;
            rc = 0;
        }
    } else {
        sleep_ms(s, s->o.delay_ms);
        rc = answer_detail(c, 404, "Not found.", flags);
    }
    return rc ? CLOSE : KEEP;
}

/* recv into the free space of the buffer.  Returns bytes read, 0 on EOF,
 * -1 on error. */
static ssize_t conn_read(struct conn *c)
{
    ssize_t n;
    do
        n = recv(c->fd, c->buf + c->used, c->cap - c->used, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        c->used += (size_t)n;
        ctr_add(c->s, CTR_BYTES, (uint64_t)n);
    }
    return n;
}

static int conn_reserve(struct conn *c, size_t need)
{
    if (need <= c->cap) return 0;
    size_t cap = c->cap;
    while (cap < need) cap *= 2;
    char *nb = realloc(c->buf, cap);
    if (!nb) return -1;
    c->buf = nb;
    c->cap = cap;
    return 0;
}

/* Reads until at least `need` bytes are buffered.  0, or -1 (EOF/error). */
static int conn_fill(struct conn *c, size_t need)
{
    if (conn_reserve(c, need)) return -1;
    while (c->used < need)
        if (conn_read(c) <= 0) return -1;
    return 0;
}

/* Decodes a chunked body that starts at offset `at`, in place: chunk data
 * is moved down over the chunk framing.  On success sets r->body,
 * r->body_len and returns the offset just past the message; on error
 * returns 0 and sets *status (400, 413) or leaves it 0 (EOF). */
static size_t read_chunked(struct conn *c, struct req *r, size_t at,
                           int *status)
{
    size_t src = at, dst = at;
    *status = 0;
    for (;;) {
        /* the size line */
        char *nl;
        uint64_t size = 0;
        size_t i;
        for (;;) {
            nl = memchr(c->buf + src, '\n', c->used - src);
            if (nl) break;
            if (c->used - src > SINK_CHUNK_LINE_MAX) {
                *status = 400;
                return 0;
            }
            if (conn_reserve(c, c->used + 4096) || conn_read(c) <= 0)
                return 0;
        }
        size_t le = (size_t)(nl - c->buf);
        if (le == src || c->buf[le - 1] != '\r') {
            *status = 400;
            return 0;
        }
        for (i = src; i < le - 1 && hex_val(c->buf[i]) >= 0; i++) {
            size = size * 16 + (uint64_t)hex_val(c->buf[i]);
            if (size > SINK_BODY_MAX) {
                *status = 413;
                return 0;
            }
        }
        if (i == src || (i < le - 1 && c->buf[i] != ';' && c->buf[i] != ' ' &&
                         c->buf[i] != '\t')) {
            *status = 400;
            return 0;
        }
        src = le + 1;
        if (size == 0) break;
        if (dst - at + size > SINK_BODY_MAX) {
            *status = 413;
            return 0;
        }
        if (conn_fill(c, src + size + 2)) return 0;
        if (c->buf[src + size] != '\r' || c->buf[src + size + 1] != '\n') {
            *status = 400;
            return 0;
        }
        memmove(c->buf + dst, c->buf + src, size);
        dst += size;
        src += size + 2;
    }
    /* trailer fields, then the empty line */
    for (;;) {
        char *nl;
        size_t start = src;
        for (;;) {
            nl = memchr(c->buf + src, '\n', c->used - src);
            if (nl) break;
            if (c->used - src > SINK_HEAD_MAX) {
                *status = 431;
                return 0;
            }
            if (conn_reserve(c, c->used + 4096) || conn_read(c) <= 0)
                return 0;
        }
        size_t le = (size_t)(nl - c->buf);
        if (le == start || c->buf[le - 1] != '\r') {
            *status = 400;
            return 0;
        }
        src = le + 1;
        if (le - 1 == start) break;
    }
    r->body = at;
    r->body_len = dst - at;
    return src;
}

/* After a last answer: ends the sending side, then drains what the client
 * still sends for a while, so that the answer is not lost to the reset a
 * close() with unread data would cause. */
static void linger(struct conn *c)
{
    char tmp[4096];
    struct pollfd pf;
    size_t total = 0;
    shutdown(c->fd, SHUT_WR);
    pf.fd = c->fd;
    pf.events = POLLIN;
    /* until EOF, 2 s of silence or 64 MiB; sink_stop's shutdown() ends
     * it at once */
    for (int quiet_ms = 0; quiet_ms < 2000 && total < SINK_BODY_MAX &&
                           !atomic_load(&c->s->stopping);) {
        int k = poll(&pf, 1, 100);
        ssize_t n;
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) break;
        if (k == 0) {
            quiet_ms += 100;
            continue;
        }
        n = recv(c->fd, tmp, sizeof tmp, 0);
        if (n <= 0) break;
        total += (size_t)n;
    }
}

/* Answers an error that ends the connection, then lingers. */
static void answer_and_linger(struct conn *c, int status, const char *detail)
{
    if (answer_detail(c, status, detail, ANS_CLOSE_HDR)) return;
    linger(c);
}

#define IDLE_408_BODY "{\"detail\":\"idle timeout\"}"

/* The unsolicited answer of a server that gives up on an idle keep-alive
 * connection.  Fixed text, whatever chunked/byte_by_byte say: it stands
 * for a front end's answer, not the API's.  The client may be sending a
 * request at this very moment, hence the linger: it must get to read the
 * 408 (and then EOF), not a reset. */
static void answer_idle_408(struct conn *c)
{
    char m[256];
    int n = snprintf(m, sizeof m,
                     "HTTP/1.1 408 Request Timeout\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: close\r\n\r\n" IDLE_408_BODY,
                     sizeof IDLE_408_BODY - 1);
    /* counted first: a client that has read the 408 finds it counted */
    ctr_add(c->s, CTR_IDLE_408, 1);
    if (send_all(c->fd, m, (size_t)n, 0)) return;
    linger(c);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct sink *s = c->s;

    c->cap = SINK_BUF_INIT;
    c->buf = malloc(c->cap);
    c->out_cap = 2048 + s->fail_body_len * 2 +
                 (s->o.retry_after ? strlen(s->o.retry_after) : 0);
    c->out = malloc(c->out_cap);
    if (!c->buf || !c->out) goto out;

    /* idle limit: the shorter of idle_close_ms and idle_408_ms that is set;
     * at a tie the 408 wins (it says what the silent close does not) */
    uint32_t idle_ms = s->o.idle_close_ms;
    int idle_says_408 = 0;
    if (s->o.idle_408_ms && (!idle_ms || s->o.idle_408_ms <= idle_ms)) {
        idle_ms = s->o.idle_408_ms;
        idle_says_408 = 1;
    }

    for (;;) {
        struct req r;
        size_t hlen = 0, scanned = 0, end;
        char *t;
        int st;

        /* idle: no byte of a next request yet (a pipelined request already
         * buffered, even one byte of it, means the connection is in use) */
        if (c->used == 0 && idle_ms) {
            struct pollfd pf = {c->fd, POLLIN, 0};
            int k;
            do
                k = poll(&pf, 1, (int)idle_ms);
            while (k < 0 && errno == EINTR);
            if (k == 0 && idle_says_408) answer_idle_408(c);
            if (k <= 0) break;   /* idle too long */
        }
        /* the head */
        for (;;) {
            size_t from = scanned > 3 ? scanned - 3 : 0;
            /* leading empty lines before a request are ignored */
            while (c->used >= 2 && c->buf[0] == '\r' && c->buf[1] == '\n') {
                memmove(c->buf, c->buf + 2, c->used - 2);
                c->used -= 2;
                from = 0;
            }
            if (c->used >= 4) {
                t = memmem(c->buf + from, c->used - from, "\r\n\r\n", 4);
                if (t) {
                    hlen = (size_t)(t - c->buf) + 4;
                    break;
                }
            }
            scanned = c->used;
            if (c->used >= SINK_HEAD_MAX) {
                answer_and_linger(c, 431, "Request head too large.");
                goto out;
            }
            if (c->cap - c->used < 4096 && conn_reserve(c, c->cap * 2))
                goto out;
            if (conn_read(c) <= 0) goto out;
        }
        if (hlen > SINK_HEAD_MAX) {
            answer_and_linger(c, 431, "Request head too large.");
            goto out;
        }
        st = parse_head(c->buf, hlen, &r);
        if (st) {
            if (st == 400) ctr_add(s, CTR_BAD, 1);
            answer_and_linger(c, st, st == 400 ? "Malformed request."
                                               : "Transfer-Encoding not supported.");
            goto out;
        }
        /* the body */
        if (r.expect_continue && c->used == hlen && (r.chunked || r.clen > 0) &&
            (r.chunked || (uint64_t)r.clen <= SINK_BODY_MAX) &&
            send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, 0))
            goto out;
        if (r.chunked) {
            end = read_chunked(c, &r, hlen, &st);
            if (!end) {
                if (st) {
                    if (st == 400) ctr_add(s, CTR_BAD, 1);
                    answer_and_linger(c, st, st == 413 ? "Request body too large."
                                                       : "Malformed chunked body.");
                }
                goto out;
            }
        } else {
            size_t cl = r.clen > 0 ? (size_t)r.clen : 0;
            if (cl > SINK_BODY_MAX) {
                answer_and_linger(c, 413, "Request body too large.");
                goto out;
            }
            /* +1: room to NUL-terminate an event that ends the body */
            if (conn_reserve(c, hlen + cl + 1) || conn_fill(c, hlen + cl))
                goto out;
            r.body = hlen;
            r.body_len = cl;
            end = hlen + cl;
        }
        if (handle(c, &r) == CLOSE) goto out;
        if (s->o.conn_close || s->o.close_after_answer || r.close) goto out;
        /* keep what follows (a pipelined request) */
        memmove(c->buf, c->buf + end, c->used - end);
        c->used -= end;
    }
out:
    free(c->buf);
    free(c->out);
    free(c->stage);
    c->buf = c->out = c->stage = NULL;
    pthread_mutex_lock(&s->conn_mu);
    close(c->fd);
    c->fd = -1;
    c->done = 1;
    pthread_mutex_unlock(&s->conn_mu);
    return NULL;
}

/* Joins and frees finished connections.  Caller holds conn_mu. */
static void reap(struct sink *s)
{
    struct conn **pp = &s->conns;
    while (*pp) {
        struct conn *c = *pp;
        if (c->done) {
            *pp = c->next;
            pthread_join(c->th, NULL);
            free(c);
        } else {
            pp = &c->next;
        }
    }
}

static void *acceptor_main(void *arg)
{
    struct sink *s = arg;
    for (;;) {
        struct pollfd pf[2] = {{s->lfd, POLLIN, 0}, {s->wake[0], POLLIN, 0}};
        int fd, one = 1;
        uint64_t num;
        struct conn *c;
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (pf[1].revents) break;
        if (!(pf[0].revents & POLLIN)) continue;
        fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM)
                sleep_ms(s, 10);
            continue;
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        num = atomic_fetch_add_explicit(&s->ctr[CTR_CONNECTIONS], 1,
                                        memory_order_relaxed) + 1;
        c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->s = s;
        c->fd = fd;
        c->num = num;
        pthread_mutex_lock(&s->conn_mu);
        reap(s);
        if (pthread_create(&c->th, NULL, conn_main, c) != 0) {
            close(fd);
            free(c);
        } else {
            c->next = s->conns;
            s->conns = c;
        }
        pthread_mutex_unlock(&s->conn_mu);
    }
    return NULL;
}

/* ------------------------------------------------------------------ */

static char *dup_or(const char *v, const char *dflt)
{
    if (!v) v = dflt;
    return v ? strdup(v) : NULL;
}

static void sink_free(struct sink *s)
{
    if (s->jsonl) fclose(s->jsonl);
    free(s->jsonl_buf);
    free(s->idem);
    free(s->bind_host);
    free(s->api_key);
    free(s->jsonl_path);
    free(s->fail_detail);
    free(s->retry_after);
    free(s->skip_pat);
    free(s->fail_body);
    free(s->fail_user);
    free(s->log);
    pthread_mutex_destroy(&s->conn_mu);
    pthread_mutex_destroy(&s->idem_mu);
    pthread_mutex_destroy(&s->jsonl_mu);
    pthread_mutex_destroy(&s->hold_mu);
    pthread_cond_destroy(&s->hold_cv);
    pthread_mutex_destroy(&s->log_mu);
    free(s);
}

/* JSON-escapes v into a fresh {"detail":"..."} body. */
static char *detail_body(const char *v, size_t *len)
{
    size_t n = strlen(v), k = 0;
    char *b = malloc(n * 6 + 16);
    if (!b) return NULL;
    k += (size_t)sprintf(b, "{\"detail\":\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch == '"' || ch == '\\') {
            b[k++] = '\\';
            b[k++] = (char)ch;
        } else if (ch < 0x20) {
            k += (size_t)sprintf(b + k, "\\u%04x", ch);
        } else {
            b[k++] = (char)ch;
        }
    }
    memcpy(b + k, "\"}", 3);
    *len = k + 2;
    return b;
}

struct sink *sink_start(const struct sink_opts *o, uint16_t *port_out)
{
    struct sink *s;
    struct addrinfo hints, *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char portstr[8];
    int one = 1, err;

    if (!o) {
        errno = EINVAL;
        return NULL;
    }
    if (o->retry_after && strpbrk(o->retry_after, "\r\n")) {
        errno = EINVAL;
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->o = *o;
    s->lfd = -1;
    s->wake[0] = s->wake[1] = -1;
    pthread_mutex_init(&s->conn_mu, NULL);
    pthread_mutex_init(&s->idem_mu, NULL);
    pthread_mutex_init(&s->jsonl_mu, NULL);
    pthread_mutex_init(&s->hold_mu, NULL);
    pthread_cond_init(&s->hold_cv, NULL);
    pthread_mutex_init(&s->log_mu, NULL);

    s->bind_host = dup_or(o->bind_host, "127.0.0.1");
    s->api_key = dup_or(o->api_key, "sk_test");
    s->jsonl_path = dup_or(o->jsonl_path, NULL);
    s->fail_detail = dup_or(o->fail_detail, "Injected failure.");
    s->retry_after = dup_or(o->retry_after, NULL);
    s->fail_user = dup_or(o->fail_user_id, NULL);
    s->idem = calloc(SINK_IDEM_SLOTS, sizeof *s->idem);
    s->log = calloc(SINK_REQ_LOG, sizeof *s->log);
    if (!s->bind_host || !s->api_key || !s->fail_detail || !s->idem ||
        !s->log || (o->jsonl_path && !s->jsonl_path) ||
        (o->retry_after && !s->retry_after) ||
        (o->fail_user_id && !s->fail_user))
        goto fail_nomem;
    s->o.bind_host = s->bind_host;
    s->o.api_key = s->api_key;
    s->o.jsonl_path = s->jsonl_path;
    s->o.fail_detail = s->fail_detail;
    s->o.retry_after = s->retry_after;
    s->o.fail_user_id = s->fail_user;
    s->fail_user_len = s->fail_user ? strlen(s->fail_user) : 0;
    s->o.skip_user_id = NULL;
    if (o->skip_user_id) {
        size_t n = strlen(o->skip_user_id) + 16;
        s->skip_pat = malloc(n);
        if (!s->skip_pat) goto fail_nomem;
        s->skip_pat_len = (size_t)snprintf(s->skip_pat, n, "\"user_id\":\"%s\"",
                                           o->skip_user_id);
    }
    if (s->o.fail_status < 100 || s->o.fail_status > 599)
        s->o.fail_status = 503;
    s->fail_body = detail_body(s->fail_detail, &s->fail_body_len);
    if (!s->fail_body) goto fail_nomem;

    if (s->jsonl_path) {
        s->jsonl = fopen(s->jsonl_path, "w");
        if (!s->jsonl) goto fail;
        s->jsonl_buf = malloc(1u << 20);
        if (s->jsonl_buf) setvbuf(s->jsonl, s->jsonl_buf, _IOFBF, 1u << 20);
    }

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof portstr, "%u", (unsigned)o->port);
    /* numeric addresses only (and "localhost"): never a DNS lookup */
    hints.ai_flags |= AI_NUMERICHOST;
    err = getaddrinfo(strcmp(s->bind_host, "localhost") == 0 ? "127.0.0.1"
                                                            : s->bind_host,
                      portstr, &hints, &ai);
    if (err) {
        errno = err == EAI_SYSTEM ? errno : EADDRNOTAVAIL;
        goto fail;
    }
    s->lfd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (s->lfd < 0) goto fail;
    fcntl(s->lfd, F_SETFD, FD_CLOEXEC);
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s->lfd, ai->ai_addr, ai->ai_addrlen) < 0) goto fail;
    if (listen(s->lfd, 128) < 0) goto fail;
    freeaddrinfo(ai);
    ai = NULL;
    if (getsockname(s->lfd, (struct sockaddr *)&ss, &sl) < 0) goto fail;
    if (port_out) {
        if (ss.ss_family == AF_INET)
            *port_out = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else
            *port_out = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    if (pipe(s->wake) < 0) goto fail;
    fcntl(s->wake[0], F_SETFD, FD_CLOEXEC);
    fcntl(s->wake[1], F_SETFD, FD_CLOEXEC);
    err = pthread_create(&s->acceptor, NULL, acceptor_main, s);
    if (err) {
        errno = err;
        goto fail;
    }
    return s;

fail_nomem:
    errno = ENOMEM;
fail:
    err = errno;
    if (ai) freeaddrinfo(ai);
    if (s->lfd >= 0) close(s->lfd);
    if (s->wake[0] >= 0) close(s->wake[0]);
    if (s->wake[1] >= 0) close(s->wake[1]);
    sink_free(s);
    errno = err;
    return NULL;
}

void sink_get_counts(struct sink *s, struct sink_counts *k)
{
    uint64_t v[CTR_N];
    for (int i = 0; i < CTR_N; i++)
        v[i] = atomic_load_explicit(&s->ctr[i], memory_order_relaxed);
    k->connections = v[CTR_CONNECTIONS];
    k->requests = v[CTR_REQUESTS];
    k->batch_requests = v[CTR_BATCH_REQUESTS];
    k->events = v[CTR_EVENTS];
    k->queued = v[CTR_QUEUED];
    k->skipped = v[CTR_SKIPPED];
    k->failed_requests = v[CTR_FAILED];
    k->dropped_requests = v[CTR_DROPPED];
    k->auth_failures = v[CTR_AUTH];
    k->bad_requests = v[CTR_BAD];
    k->repeated_keys = v[CTR_REPEATED];
    k->bytes = v[CTR_BYTES];
    k->idle_408s = v[CTR_IDLE_408];
    k->via_requests = v[CTR_VIA];
    {
        uint64_t g = atomic_load(&s->gauge);   /* both halves at once */
        k->in_progress = g & SINK_GAUGE_CUR;
        k->max_in_progress = g >> 32;
    }
}

void sink_hold(struct sink *s, int on)
{
    pthread_mutex_lock(&s->hold_mu);
    atomic_store(&s->hold, on != 0);
    if (!on) pthread_cond_broadcast(&s->hold_cv);
    pthread_mutex_unlock(&s->hold_mu);
}

size_t sink_requests(struct sink *s, struct sink_req_rec *out, size_t cap)
{
    size_t n, i;
    uint64_t first;
    pthread_mutex_lock(&s->log_mu);
    n = s->log_n < SINK_REQ_LOG ? (size_t)s->log_n : SINK_REQ_LOG;
    first = s->log_n - n;   /* the oldest record still in the ring */
    if (n > cap) n = cap;
    for (i = 0; i < n; i++)
        out[i] = s->log[(first + i) % SINK_REQ_LOG];
    pthread_mutex_unlock(&s->log_mu);
    return n;
}

void sink_stop(struct sink *s)
{
    char one = 1;
    if (!s) return;
    atomic_store(&s->stopping, 1);
    /* under hold_mu: a gate waiter is either not yet past its check of
     * `stopping` (and will see it) or already waiting (and gets this) */
    pthread_mutex_lock(&s->hold_mu);
    pthread_cond_broadcast(&s->hold_cv);
    pthread_mutex_unlock(&s->hold_mu);
    while (write(s->wake[1], &one, 1) < 0 && errno == EINTR) {}
    pthread_join(s->acceptor, NULL);
    close(s->lfd);

    pthread_mutex_lock(&s->conn_mu);
    for (struct conn *c = s->conns; c; c = c->next)
        if (c->fd >= 0) shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_unlock(&s->conn_mu);
    for (;;) {
        struct conn *c;
        pthread_mutex_lock(&s->conn_mu);
        c = s->conns;
        if (c) s->conns = c->next;
        pthread_mutex_unlock(&s->conn_mu);
        if (!c) break;
        pthread_join(c->th, NULL);
        free(c);
    }
    close(s->wake[0]);
    close(s->wake[1]);
    sink_free(s);
}
