/* SPDX-License-Identifier: MIT */
/*
 * http.c -- HTTP/1.1 response parser (sans I/O) and SegOps answer reader.
 *
 * The parser is a state machine over bytes.  Everything that is not body
 * data (status line, headers, chunk-size lines, trailers) is taken one byte
 * at a time into r->line, and every bound is checked as each byte arrives;
 * body data is copied in runs.  Because no decision depends on where a feed
 * ends, a response gives the same result -- fields and error code -- fed
 * whole, byte by byte or split anywhere.
 *
 * Lines.  A line's bytes are checked as they arrive (a control byte or a
 * CR not followed by LF marks it bad) and the first SG_HTTP_LINE_KEEP are
 * kept; a longer header line is fine unless the client needs that header
 * (Content-Length, Transfer-Encoding: refused, the framing cannot be
 * trusted; Connection: taken as "close"; Location: truncated; Retry-After:
 * ignored).  The whole head stays within SG_HTTP_HEAD_MAX.
 *
 * obs-fold (RFC 9112 5.2).  A header line is kept in r->line until the
 * first byte of the next line: a space or tab there continues it (the fold
 * becomes one space), anything else ends it and it is interpreted.  A
 * folded line right after the status line is ignored.
 *
 * States:
 *   STATUS      reading the status line (empty lines before it are skipped)
 *   HEADER      reading header lines; the empty line ends the head, which
 *               either restarts at STATUS (1xx) or picks the body framing
 *               (Transfer-Encoding wins over Content-Length, RFC 9112 6.3,
 *               and the connection is then closed after the answer)
 *   BODY_LEN    Content-Length body, r->remain bytes left
 *   BODY_EOF    body delimited by the connection closing
 *   CHUNK_SIZE  reading a chunk-size line (extensions ignored)
 *   CHUNK_DATA  r->remain bytes of chunk data left
 *   CHUNK_CR/LF the CRLF that ends chunk data
 *   TRAILER     trailer lines up to the empty line (content ignored)
 *   DONE, ERROR both sticky.
 *
 * Bits of r->st above the state hold what the head said so far (HTTP/1.0,
 * "keep-alive" seen); in ERROR, r->remain holds the error code.
 */
#include "http.h"
#include "timefmt.h"

#include <string.h>

enum {
    ST_STATUS = 1,
    ST_HEADER,
    ST_BODY_LEN,
    ST_BODY_EOF,
    ST_CHUNK_SIZE,
    ST_CHUNK_DATA,
    ST_CHUNK_CR,
    ST_CHUNK_LF,
    ST_TRAILER,
    ST_DONE,
    ST_ERROR
};
#define ST_MASK 0xff
#define F_HTTP10 0x100
#define F_KEEPALIVE 0x200

#define STATE(r) ((r)->st & ST_MASK)
#define SET_STATE(r, s) ((r)->st = ((r)->st & ~ST_MASK) | (s))

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int is_tchar(int c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int eq_nocase(const char *a, size_t n, const char *lit)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (lit[i] == '\0' || lower((unsigned char)a[i]) != lit[i])
            return 0;
    return lit[i] == '\0';
}

static ssize_t fail(struct sg_http_resp *r, int code)
{
    SET_STATE(r, ST_ERROR);
    r->remain = (uint64_t)(-code);
    return code;
}

static void finish(struct sg_http_resp *r)
{
    SET_STATE(r, ST_DONE);
    r->done = 1;
}

/* Forgets a head.  head_bytes is kept: interim responses share one
 * budget with the final head, so a stream of 1xx cannot go on forever. */
static void reset_head(struct sg_http_resp *r)
{
    r->status = 0;
    r->conn_close = 0;
    r->chunked = 0;
    r->content_length = -1;
    r->retry_after[0] = '\0';
    r->location[0] = '\0';
    r->st = ST_STATUS;
    r->line_len = 0;
    r->over = r->bad = r->cr = r->pending = 0;
}

void sg_http_resp_init(struct sg_http_resp *r)
{
    memset(r, 0, sizeof *r);
    reset_head(r);
}

void sg_http_resp_init_connect(struct sg_http_resp *r)
{
    sg_http_resp_init(r);
    r->connect = 1;
}

/* Starts a new line in r->line. */
static void line_reset(struct sg_http_resp *r)
{
    r->line_len = 0;
    r->over = r->bad = r->cr = r->pending = 0;
}

/* "HTTP/1.x SP 3DIGIT [SP reason]" */
static int parse_status(struct sg_http_resp *r)
{
    const char *l = r->line;
    size_t n = r->line_len;
    int code;

    if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || l[7] < '0' || l[7] > '9' ||
        l[8] != ' ')
        return -1;
    if (l[9] < '1' || l[9] > '5' || l[10] < '0' || l[10] > '9' ||
        l[11] < '0' || l[11] > '9')
        return -1;
    code = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (r->bad || (n > 12 && l[12] != ' '))
        return -1;
    for (size_t i = 13; i < n; i++) {
        unsigned char c = (unsigned char)l[i];
        if ((c < 0x20 && c != '\t') || c == 0x7F)
            return -1;
    }
    r->status = code;
    if (l[7] == '0')
        r->st |= F_HTTP10;
    else
        r->st &= ~F_HTTP10;
    return 0;
}

/* Calls fn for each non-empty element of a comma-separated list. */
static int for_each_elem(const char *v, size_t n,
                         int (*fn)(struct sg_http_resp *, const char *, size_t),
                         struct sg_http_resp *r)
{
    size_t i = 0;
    while (i <= n) {
        size_t s = i, e;
        while (i < n && v[i] != ',')
            i++;
        e = i;
        while (s < e && (v[s] == ' ' || v[s] == '\t'))
            s++;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > s) {
            int rc = fn(r, v + s, e - s);
            if (rc != 0)
                return rc;
        }
        i++;
    }
    return 0;
}

/* Content-Length may be a list of one repeated value (RFC 9110 8.6). */
static int cl_elem(struct sg_http_resp *r, const char *v, size_t n)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return SG_HTTP_EBADLENGTH;
        x = x * 10 + (uint64_t)(v[i] - '0');
        if (x > SG_HTTP_BODY_MAX)
            return SG_HTTP_EBADLENGTH;
    }
    if (r->content_length >= 0 && (uint64_t)r->content_length != x)
        return SG_HTTP_EBADLENGTH;
    r->content_length = (int64_t)x;
    return 0;
}

/* Only "chunked", once, is a coding this client can undo. */
static int te_elem(struct sg_http_resp *r, const char *v, size_t n)
{
    if (r->chunked || !eq_nocase(v, n, "chunked"))
        return SG_HTTP_EBADTE;
    r->chunked = 1;
    return 0;
}

static int conn_elem(struct sg_http_resp *r, const char *v, size_t n)
{
    if (eq_nocase(v, n, "close"))
        r->conn_close = 1;
    else if (eq_nocase(v, n, "keep-alive"))
        r->st |= F_KEEPALIVE;
    return 0;
}

static int has_nonempty_elem(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            return 1;
    return 0;
}

/* One "name: value" line (folds already joined).  `use` is 0 for
 * trailers, which are checked for syntax but may not change framing or
 * anything else. */
static int parse_header(struct sg_http_resp *r, int use)
{
    const char *l = r->line;
    size_t n = r->line_len, c = 0, vs, ve;

    while (c < n && is_tchar((unsigned char)l[c]))
        c++;
    /* No name, or whitespace before ':': refused.  (Control bytes were
     * refused as they arrived.) */
    if (r->bad || c == 0 || c >= n || l[c] != ':')
        return SG_HTTP_EBADHEADER;
    if (r->over && use) {
        /* longer than we keep: fine unless we need this one */
        if (eq_nocase(l, c, "content-length") || eq_nocase(l, c, "transfer-encoding"))
            return SG_HTTP_EHEADTOOBIG;
        if (eq_nocase(l, c, "connection"))
            r->conn_close = 1; /* cannot read it all: the safe reading */
        if (!eq_nocase(l, c, "location"))
            return 0;
    }
    vs = c + 1;
    ve = n;
    while (vs < ve && (l[vs] == ' ' || l[vs] == '\t'))
        vs++;
    while (ve > vs && (l[ve - 1] == ' ' || l[ve - 1] == '\t'))
        ve--;
    if (!use)
        return 0;

    if (eq_nocase(l, c, "content-length")) {
        if (!has_nonempty_elem(l + vs, ve - vs))
            return SG_HTTP_EBADLENGTH;
        return for_each_elem(l + vs, ve - vs, cl_elem, r);
    }
    if (eq_nocase(l, c, "transfer-encoding")) {
        if (!has_nonempty_elem(l + vs, ve - vs))
            return SG_HTTP_EBADTE;
        return for_each_elem(l + vs, ve - vs, te_elem, r);
    }
    if (eq_nocase(l, c, "connection"))
        return for_each_elem(l + vs, ve - vs, conn_elem, r);
    if (eq_nocase(l, c, "location")) {
        if (r->location[0] == '\0') {
            size_t k = ve - vs > SG_HTTP_LOCATION_MAX ? SG_HTTP_LOCATION_MAX : ve - vs;
            memcpy(r->location, l + vs, k);
            r->location[k] = '\0';
        }
        return 0;
    }
    if (eq_nocase(l, c, "retry-after")) {
        /* First one wins; a value too long to be valid is dropped. */
        if (r->retry_after[0] == '\0' && ve - vs <= SG_HTTP_RETRY_AFTER_MAX) {
            memcpy(r->retry_after, l + vs, ve - vs);
            r->retry_after[ve - vs] = '\0';
        }
    }
    return 0;
}

/* The empty line after the headers: choose what comes next. */
static int end_of_head(struct sg_http_resp *r)
{
    if (r->status < 200) {
        /* We never ask to upgrade, so 101 cannot be followed by HTTP. */
        if (r->status == 101)
            return SG_HTTP_EBADSTATUS;
        reset_head(r);
        return 0;
    }
    if (r->connect) {
        /* a tunnel (2xx) or a refusal: either way the head is the answer */
        r->line_len = 0;
        finish(r);
        return 0;
    }
    if (r->chunked && r->content_length >= 0) {
        /* RFC 9112 6.3: chunked wins; such a message may be an attempt to
         * smuggle one past an intermediary, so do not reuse the connection */
        r->content_length = -1;
        r->conn_close = 1;
    }
    if (r->st & F_HTTP10) {
        if (!(r->st & F_KEEPALIVE))
            r->conn_close = 1;
        /* Chunked in 1.0 is suspect framing: use it, then close
         * (RFC 9112 6.1). */
        if (r->chunked)
            r->conn_close = 1;
    }
    r->line_len = 0;
    if (r->status == 204 || r->status == 304) {
        finish(r);
    } else if (r->chunked) {
        SET_STATE(r, ST_CHUNK_SIZE);
    } else if (r->content_length >= 0) {
        r->remain = (uint64_t)r->content_length;
        if (r->remain == 0)
            finish(r);
        else
            SET_STATE(r, ST_BODY_LEN);
    } else {
        r->close_delimited = 1;
        r->conn_close = 1; /* the connection ends with the body */
        SET_STATE(r, ST_BODY_EOF);
    }
    return 0;
}

/* "1*HEXDIG [BWS ';' ext...]" */
static int parse_chunk_size(struct sg_http_resp *r)
{
    const char *l = r->line;
    size_t n = r->line_len, i = 0;
    uint64_t v = 0;

    for (; i < n; i++) {
        int c = lower((unsigned char)l[i]), d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else
            break;
        v = v * 16 + (uint64_t)d;
        if (v > SG_HTTP_BODY_MAX)
            return SG_HTTP_EBADCHUNK;
    }
    if (i == 0)
        return SG_HTTP_EBADCHUNK;
    while (i < n && (l[i] == ' ' || l[i] == '\t'))
        i++;
    if (i < n && l[i] != ';')
        return SG_HTTP_EBADCHUNK;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)l[i];
        if ((c < 0x20 && c != '\t') || c == 0x7F)
            return SG_HTTP_EBADCHUNK;
    }
    if (r->body_total + v > SG_HTTP_BODY_MAX)
        return SG_HTTP_EBADCHUNK;
    r->remain = v;
    return 0;
}

static void keep_body(struct sg_http_resp *r, const char *p, size_t n)
{
    if (r->body_len < SG_HTTP_BODY_KEEP) {
        size_t k = SG_HTTP_BODY_KEEP - r->body_len;
        if (k > n)
            k = n;
        memcpy(r->body + r->body_len, p, k);
        r->body_len += k;
    }
    r->body_total += n;
}

/* One byte of a line: LINE_MORE, or LINE_DONE at its LF (the line is in
 * r->line without CR/LF; r->over if it was longer, r->bad if it held a
 * control byte or a CR not followed by LF -- RFC 9112 2.2). */
enum { LINE_MORE, LINE_DONE };

static int line_byte(struct sg_http_resp *r, char ch)
{
    unsigned char c = (unsigned char)ch;
    if (c == '\n') {
        r->cr = 0;
        return LINE_DONE;
    }
    if (r->cr) {
        r->bad = 1; /* a bare CR */
        r->cr = 0;
    }
    if (c == '\r') {
        r->cr = 1;
        return LINE_MORE;
    }
    if ((c < 0x20 && c != '\t') || c == 0x7F)
        r->bad = 1;
    if (r->line_len < sizeof r->line)
        r->line[r->line_len++] = (char)c;
    else
        r->over = 1;
    return LINE_MORE;
}

/* A header line ended and the next line's first byte is c: a space or tab
 * folds the next line into it (returns 1); anything else ends it: it is
 * interpreted, and line[] is free for the next line (returns 0 or an
 * SG_HTTP_E* code). */
static int header_boundary(struct sg_http_resp *r, char c)
{
    if (c == ' ' || c == '\t') {
        r->pending = 0; /* keep collecting into the same line */
        if (r->line_len < sizeof r->line)
            r->line[r->line_len++] = ' ';
        else
            r->over = 1;
        return 1;
    }
    int rc = parse_header(r, 1);
    line_reset(r);
    return rc < 0 ? rc : 0;
}

ssize_t sg_http_resp_feed(struct sg_http_resp *r, const char *buf, size_t len)
{
    size_t i = 0;

    while (i < len) {
        int st = STATE(r), rc;

        switch (st) {
        case ST_DONE:
            return (ssize_t)i;
        case ST_ERROR:
            return -(ssize_t)r->remain;

        case ST_STATUS:
            if (++r->head_bytes > SG_HTTP_HEAD_MAX)
                return fail(r, SG_HTTP_EHEADTOOBIG);
            if (line_byte(r, buf[i++]) == LINE_MORE)
                break;
            if (r->line_len == 0 && !r->over && !r->bad) {
                line_reset(r); /* stray CRLF between responses */
                break;
            }
            if (parse_status(r) != 0)
                return fail(r, SG_HTTP_EBADSTATUS);
            line_reset(r);
            SET_STATE(r, ST_HEADER);
            break;

        case ST_HEADER:
            if (++r->head_bytes > SG_HTTP_HEAD_MAX)
                return fail(r, SG_HTTP_EHEADTOOBIG);
            if (r->pending) {
                rc = header_boundary(r, buf[i]);
                if (rc < 0)
                    return fail(r, rc);
                if (rc == 1) {
                    i++; /* the fold's first blank is the one space */
                    break;
                }
            }
            if (line_byte(r, buf[i++]) == LINE_MORE)
                break;
            if (r->line_len == 0 && !r->over) {
                if (r->bad)
                    return fail(r, SG_HTTP_EBADHEADER);
                rc = end_of_head(r);
                if (rc < 0)
                    return fail(r, rc);
                line_reset(r);
            } else if (r->line[0] == ' ' || r->line[0] == '\t') {
                line_reset(r); /* folded line with nothing to fold into */
            } else {
                r->pending = 1; /* until the next line's first byte */
            }
            break;

        case ST_BODY_LEN:
        case ST_CHUNK_DATA: {
            size_t k = len - i;
            if (k > r->remain)
                k = (size_t)r->remain;
            keep_body(r, buf + i, k);
            i += k;
            r->remain -= k;
            if (r->remain == 0) {
                if (st == ST_BODY_LEN)
                    finish(r);
                else
                    SET_STATE(r, ST_CHUNK_CR);
            }
            break;
        }

        case ST_BODY_EOF: {
            size_t k = len - i;
            if (r->body_total + k > SG_HTTP_BODY_MAX)
                return fail(r, SG_HTTP_EBADLENGTH);
            keep_body(r, buf + i, k);
            i += k;
            break;
        }

        case ST_CHUNK_SIZE:
            if (line_byte(r, buf[i++]) == LINE_MORE) {
                if (r->over)
                    return fail(r, SG_HTTP_EBADCHUNK);
                break;
            }
            if (r->bad || r->over)
                return fail(r, SG_HTTP_EBADCHUNK);
            rc = parse_chunk_size(r);
            if (rc < 0)
                return fail(r, rc);
            line_reset(r);
            if (r->remain == 0) {
                r->head_bytes = 0; /* trailers get their own head budget */
                SET_STATE(r, ST_TRAILER);
            } else {
                SET_STATE(r, ST_CHUNK_DATA);
            }
            break;

        case ST_CHUNK_CR:
            if (buf[i] == '\r')
                SET_STATE(r, ST_CHUNK_LF);
            else if (buf[i] == '\n')
                SET_STATE(r, ST_CHUNK_SIZE);
            else
                return fail(r, SG_HTTP_EBADCHUNK);
            i++;
            break;

        case ST_CHUNK_LF:
            if (buf[i] != '\n')
                return fail(r, SG_HTTP_EBADCHUNK);
            SET_STATE(r, ST_CHUNK_SIZE);
            i++;
            break;

        case ST_TRAILER:
            if (++r->head_bytes > SG_HTTP_HEAD_MAX)
                return fail(r, SG_HTTP_EHEADTOOBIG);
            if (line_byte(r, buf[i++]) == LINE_MORE)
                break;
            if (r->line_len == 0 && !r->over && !r->bad) {
                finish(r);
                break;
            }
            /* trailers: checked, never used; a folded one is refused */
            if (r->line[0] == ' ' || r->line[0] == '\t')
                return fail(r, SG_HTTP_EBADHEADER);
            rc = parse_header(r, 0);
            if (rc < 0)
                return fail(r, rc);
            line_reset(r);
            break;

        default:
            return fail(r, SG_HTTP_EBADSTATUS); /* not initialised */
        }
    }
    if (STATE(r) == ST_ERROR)
        return -(ssize_t)r->remain;
    return (ssize_t)i;
}

int sg_http_resp_eof(struct sg_http_resp *r)
{
    switch (STATE(r)) {
    case ST_DONE:
        return 0;
    case ST_BODY_EOF:
        finish(r);
        return 0;
    case ST_ERROR:
        return -(int)r->remain;
    default:
        SET_STATE(r, ST_ERROR);
        r->remain = (uint64_t)(-SG_HTTP_ETRUNCATED);
        return SG_HTTP_ETRUNCATED;
    }
}

/* ------------------------------------------------------------ Retry-After */

#define RETRY_CAP_S ((int64_t)1 << 31)

int sg_retry_after_parse(const char *v, size_t len, int64_t now_unix_s,
                         int64_t *delay_ms)
{
    size_t s = 0, e = len, i;
    int64_t secs = 0, at;

    if (v == NULL || delay_ms == NULL)
        return -1;
    while (s < e && (v[s] == ' ' || v[s] == '\t'))
        s++;
    while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
        e--;
    if (s == e)
        return -1;
    for (i = s; i < e && v[i] >= '0' && v[i] <= '9'; i++)
        if (secs < RETRY_CAP_S)
            secs = secs * 10 + (v[i] - '0');
    if (i == e) {
        if (secs > RETRY_CAP_S)
            secs = RETRY_CAP_S;
        *delay_ms = secs * 1000;
        return 0;
    }
    if (sg_http_date_parse(v + s, e - s, &at) != 0)
        return -1;
    /* at is within years 0-9999, so at - RETRY_CAP_S cannot overflow;
     * at - now_unix_s could, for an arbitrary caller clock. */
    if (now_unix_s > at)
        secs = 0;
    else if (now_unix_s < at - RETRY_CAP_S)
        secs = RETRY_CAP_S;
    else
        secs = at - now_unix_s;
    *delay_ms = secs * 1000;
    return 0;
}

/* --------------------------------------------------------- answer parsing */

/*
 * A cursor over the answer body.  Only the top level is interpreted; inner
 * values are checked for JSON syntax while skipped, with a bounded explicit
 * stack, so a hostile body costs at most one pass and no recursion.
 */
struct jcur {
    const char *p;
    size_t n, i;
};

#define ANSWER_DEPTH 64

static void jws(struct jcur *c)
{
    while (c->i < c->n && (c->p[c->i] == ' ' || c->p[c->i] == '\t' ||
                           c->p[c->i] == '\n' || c->p[c->i] == '\r'))
        c->i++;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int read_u4(struct jcur *c, unsigned *out)
{
    unsigned v = 0;
    if (c->n - c->i < 4)
        return -1;
    for (int k = 0; k < 4; k++) {
        int h = hexval((unsigned char)c->p[c->i + (size_t)k]);
        if (h < 0)
            return -1;
        v = v * 16 + (unsigned)h;
    }
    c->i += 4;
    *out = v;
    return 0;
}

/* Output side of a decoded string: bytes beyond cap-1 are dropped whole
 * characters at a time, so truncation never splits a UTF-8 sequence that
 * came from an escape. */
struct sink {
    char *d;
    size_t cap, len;
    int full;
};

static void sink_put(struct sink *k, const char *b, size_t n)
{
    if (k->d == NULL || k->full)
        return;
    if (k->len + n + 1 > k->cap) {
        k->full = 1;
        return;
    }
    memcpy(k->d + k->len, b, n);
    k->len += n;
}

static size_t utf8_enc(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Reads the string whose opening quote is at c->i, decoding into k (may
 * have d == NULL to only skip).  Raw bytes >= 0x80 are copied through; the
 * last step of sg_answer_parse drops an incomplete trailing sequence. */
static int jstring(struct jcur *c, struct sink *k)
{
    c->i++;
    while (c->i < c->n) {
        unsigned char ch = (unsigned char)c->p[c->i++];
        char enc[4];
        if (ch == '"')
            return 0;
        if (ch < 0x20)
            return -1;
        if (ch != '\\') {
            if (ch == 0x7F)
                ch = ' ';
            sink_put(k, (const char *)&ch, 1);
            continue;
        }
        if (c->i >= c->n)
            return -1;
        ch = (unsigned char)c->p[c->i++];
        switch (ch) {
        case '"': case '\\': case '/':
            sink_put(k, (const char *)&ch, 1);
            break;
        case 'b': case 'f': case 'n': case 'r': case 't':
            sink_put(k, " ", 1); /* detail goes into one log line */
            break;
        case 'u': {
            unsigned cp, lo;
            if (read_u4(c, &cp) != 0)
                return -1;
            if (cp >= 0xD800 && cp < 0xDC00 && c->n - c->i >= 6 &&
                c->p[c->i] == '\\' && c->p[c->i + 1] == 'u') {
                size_t save = c->i;
                c->i += 2;
                if (read_u4(c, &lo) != 0)
                    return -1;
                if (lo >= 0xDC00 && lo < 0xE000)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else
                    c->i = save; /* lone high surrogate; lo read next */
            }
            if (cp >= 0xD800 && cp < 0xE000)
                cp = 0xFFFD;
            if (cp < 0x20 || cp == 0x7F)
                cp = ' ';
            sink_put(k, enc, utf8_enc(enc, cp));
            break;
        }
        default:
            return -1;
        }
    }
    return -1;
}

static int jnumber(struct jcur *c, int64_t *iv, int *is_int)
{
    int neg = 0, ovf = 0;
    uint64_t u = 0;

    *is_int = 1;
    if (c->i < c->n && c->p[c->i] == '-') {
        neg = 1;
        c->i++;
    }
    if (c->i >= c->n || c->p[c->i] < '0' || c->p[c->i] > '9')
        return -1;
    if (c->p[c->i] == '0') {
        c->i++;
    } else {
        while (c->i < c->n && c->p[c->i] >= '0' && c->p[c->i] <= '9') {
            unsigned dg = (unsigned)(c->p[c->i++] - '0');
            if (u > (UINT64_MAX - dg) / 10)
                ovf = 1;
            else
                u = u * 10 + dg;
        }
    }
    if (c->i < c->n && c->p[c->i] == '.') {
        size_t d = ++c->i;
        *is_int = 0;
        while (c->i < c->n && c->p[c->i] >= '0' && c->p[c->i] <= '9')
            c->i++;
        if (c->i == d)
            return -1;
    }
    if (c->i < c->n && (c->p[c->i] == 'e' || c->p[c->i] == 'E')) {
        size_t d;
        *is_int = 0;
        c->i++;
        if (c->i < c->n && (c->p[c->i] == '+' || c->p[c->i] == '-'))
            c->i++;
        d = c->i;
        while (c->i < c->n && c->p[c->i] >= '0' && c->p[c->i] <= '9')
            c->i++;
        if (c->i == d)
            return -1;
    }
    if (ovf || u > (uint64_t)INT64_MAX + (uint64_t)neg)
        *is_int = 0;
    else if (neg)
        *iv = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
    else
        *iv = (int64_t)u;
    return 0;
}

static int jword(struct jcur *c, const char *w)
{
    size_t l = strlen(w);
    if (c->n - c->i < l || memcmp(c->p + c->i, w, l) != 0)
        return -1;
    c->i += l;
    return 0;
}

/* Skips one value of any type, checking its syntax. */
static int jskip(struct jcur *c)
{
    uint64_t obj = 0; /* bit d set: level d is an object */
    int depth = 0;
    struct sink none = { NULL, 0, 0, 0 };

    for (;;) {
        int64_t iv;
        int isint;
        jws(c);
        if (c->i >= c->n)
            return -1;
        switch (c->p[c->i]) {
        case '{':
        case '[': {
            int o = c->p[c->i] == '{';
            if (depth >= ANSWER_DEPTH)
                return -1;
            obj = o ? obj | ((uint64_t)1 << depth) : obj & ~((uint64_t)1 << depth);
            depth++;
            c->i++;
            jws(c);
            if (c->i < c->n && c->p[c->i] == (o ? '}' : ']')) {
                c->i++;
                depth--;
                goto after;
            }
            if (o) {
                if (c->i >= c->n || c->p[c->i] != '"' || jstring(c, &none) != 0)
                    return -1;
                jws(c);
                if (c->i >= c->n || c->p[c->i] != ':')
                    return -1;
                c->i++;
            }
            continue;
        }
        case '"':
            if (jstring(c, &none) != 0)
                return -1;
            break;
        case 't':
            if (jword(c, "true") != 0)
                return -1;
            break;
        case 'f':
            if (jword(c, "false") != 0)
                return -1;
            break;
        case 'n':
            if (jword(c, "null") != 0)
                return -1;
            break;
        default:
            if (jnumber(c, &iv, &isint) != 0)
                return -1;
            break;
        }
    after:
        for (;;) {
            int o;
            if (depth == 0)
                return 0;
            jws(c);
            if (c->i >= c->n)
                return -1;
            o = (int)((obj >> (depth - 1)) & 1);
            if (c->p[c->i] == (o ? '}' : ']')) {
                c->i++;
                depth--;
                continue;
            }
            if (c->p[c->i] != ',')
                return -1;
            c->i++;
            if (o) {
                jws(c);
                if (c->i >= c->n || c->p[c->i] != '"' || jstring(c, &none) != 0)
                    return -1;
                jws(c);
                if (c->i >= c->n || c->p[c->i] != ':')
                    return -1;
                c->i++;
            }
            break;
        }
    }
}

/* Drops a UTF-8 sequence cut short at the end of d[0..*len). */
static void trim_partial_utf8(const char *d, size_t *len)
{
    size_t n = *len, back = 0;
    while (back < 4 && back < n &&
           ((unsigned char)d[n - 1 - back] & 0xC0) == 0x80)
        back++;
    if (back < n) {
        unsigned char lead = (unsigned char)d[n - 1 - back];
        size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
        if (lead >= 0xC0 && need > back + 1)
            *len = n - 1 - back;
    }
}

int sg_answer_parse(const char *body, size_t len, int64_t *queued,
                    int64_t *skipped, char *detail, size_t detail_cap)
{
    struct jcur c = { body, len, 0 };
    int64_t dummy_q, dummy_s;
    size_t dstart = 0, dend = 0;
    int rc = -1;

    if (queued == NULL)
        queued = &dummy_q;
    if (skipped == NULL)
        skipped = &dummy_s;
    *queued = -1;
    *skipped = -1;
    if (detail_cap == 0)
        detail = NULL;
    if (detail != NULL)
        detail[0] = '\0';
    if (body == NULL)
        return -1;

    jws(&c);
    if (c.i >= c.n || c.p[c.i] != '{')
        return -1;
    c.i++;
    jws(&c);
    if (c.i < c.n && c.p[c.i] == '}') {
        c.i++;
        goto tail;
    }
    for (;;) {
        size_t ks, kl;
        struct sink none = { NULL, 0, 0, 0 };
        int which = 0; /* 1 queued, 2 skipped, 3 detail */

        jws(&c);
        if (c.i >= c.n || c.p[c.i] != '"')
            return -1;
        ks = c.i + 1;
        if (jstring(&c, &none) != 0)
            return -1;
        kl = c.i - 1 - ks;
        if (kl == 6 && memcmp(body + ks, "queued", 6) == 0)
            which = 1;
        else if (kl == 7 && memcmp(body + ks, "skipped", 7) == 0)
            which = 2;
        else if (kl == 6 && memcmp(body + ks, "detail", 6) == 0)
            which = 3;
        jws(&c);
        if (c.i >= c.n || c.p[c.i] != ':')
            return -1;
        c.i++;
        jws(&c);
        if (c.i >= c.n)
            return -1;

        if (which == 3 && c.p[c.i] != '"') {
            /* a list (FastAPI) or object: kept as compact JSON text */
            dstart = c.i;
            if (jskip(&c) != 0)
                return -1;
            dend = c.i;
        } else if (which == 3 && c.p[c.i] == '"') {
            struct sink k = { detail, detail_cap, 0, 0 };
            if (jstring(&c, &k) != 0)
                return -1;
            if (detail != NULL) {
                if (k.full)
                    trim_partial_utf8(detail, &k.len);
                detail[k.len] = '\0';
            }
        } else if ((which == 1 || which == 2) &&
                   (c.p[c.i] == '-' || (c.p[c.i] >= '0' && c.p[c.i] <= '9'))) {
            int64_t v = 0;
            int isint;
            if (jnumber(&c, &v, &isint) != 0)
                return -1;
            if (isint)
                *(which == 1 ? queued : skipped) = v;
        } else if (which == 1 && jword(&c, "true") == 0) {
            *queued = 1;
        } else if (which == 1 && jword(&c, "false") == 0) {
            *queued = 0;
        } else if (jskip(&c) != 0) {
            return -1;
        }

        jws(&c);
        if (c.i >= c.n)
            return -1;
        if (c.p[c.i] == '}') {
            c.i++;
            break;
        }
        if (c.p[c.i] != ',')
            return -1;
        c.i++;
    }
tail:
    jws(&c);
    if (c.i == c.n)
        rc = 0;
    if (rc == 0 && detail != NULL && dend > dstart)
        sg_json_compact(body + dstart, dend - dstart, detail, detail_cap);
    return rc;
}

size_t sg_json_compact(const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    int str = 0, esc = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < len && o + 1 < cap; i++) {
        char ch = in[i];
        if (str) {
            if (esc)
                esc = 0;
            else if (ch == '\\')
                esc = 1;
            else if (ch == '"')
                str = 0;
        } else if (ch == '"') {
            str = 1;
        } else if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            continue;
        }
        out[o++] = ch;
    }
    trim_partial_utf8(out, &o);
    out[o] = '\0';
    return o;
}

/* Length of the valid UTF-8 sequence at p[0..n) and its code point, or 0
 * when it is not one (overlong, surrogate, beyond U+10FFFF, cut short). */
static size_t utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char c = p[0];
    size_t need;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return need;
}

/* Characters that change how text is displayed without being seen: bidi
 * controls and embeddings, zero-width and invisible format characters. */
static int is_format_char(uint32_t cp)
{
    return cp == 0x061C || cp == 0x00AD || (cp >= 0x200B && cp <= 0x200F) ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2064) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF || (cp >= 0x80 && cp < 0xA0);
}

size_t sg_text_clean(const char *in, size_t len, char *out, size_t cap, const char *secret,
                     size_t secret_len)
{
    static const char redacted[] = "[redacted]";
    static const char repl[] = "\xEF\xBF\xBD"; /* U+FFFD */
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0, i = 0;
    if (cap == 0)
        return 0;
    while (i < len) {
        const char *put;
        size_t plen, adv;
        char one;
        uint32_t cp = 0;
        if (secret && secret_len >= 4 && len - i >= secret_len &&
            memcmp(in + i, secret, secret_len) == 0) {
            put = redacted, plen = sizeof(redacted) - 1, adv = secret_len;
        } else if ((adv = utf8_seq(p + i, len - i, &cp)) == 0) {
            put = repl, plen = 3, adv = 1;
        } else if (cp < 0x20 || cp == 0x7F || is_format_char(cp)) {
            one = ' ';
            put = &one, plen = 1;
        } else {
            put = in + i, plen = adv;
        }
        if (o + plen + 1 > cap)
            break; /* never half a character, never half the marker */
        memcpy(out + o, put, plen);
        o += plen;
        i += adv;
    }
    out[o] = '\0';
    return o;
}
