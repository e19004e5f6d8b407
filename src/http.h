/* SPDX-License-Identifier: MIT */
/*
 * http.h -- internal: HTTP/1.1 response parser (sans I/O) and helpers for
 * the answers of the SegOps ingestion API.
 *
 * The parser consumes bytes and never does I/O, so it can be fed whole,
 * one byte at a time, or split at any position with identical results.
 */
#ifndef SG_HTTP_H
#define SG_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SG_HTTP_HEAD_MAX 65536      /* status line + headers, bytes */
#define SG_HTTP_LINE_KEEP 8192      /* bytes of one header line kept; longer
                                       lines are skipped unless the client
                                       needs that header (framing: error) */
#define SG_HTTP_LOCATION_MAX 255
#define SG_HTTP_BODY_KEEP 4096      /* body bytes kept for inspection */
#define SG_HTTP_BODY_MAX (64u << 20) /* larger Content-Length/chunk: error */
#define SG_HTTP_RETRY_AFTER_MAX 63

/* Errors returned by sg_http_resp_feed / sg_http_resp_eof. */
#define SG_HTTP_EBADSTATUS (-1)  /* status line malformed */
#define SG_HTTP_EBADHEADER (-2)  /* header line malformed */
#define SG_HTTP_EHEADTOOBIG (-3) /* head (or trailers) over SG_HTTP_HEAD_MAX,
                                    a framing header or chunk line over
                                    SG_HTTP_LINE_KEEP */
#define SG_HTTP_EBADLENGTH (-4)  /* Content-Length bad, conflicting, > max */
#define SG_HTTP_EBADCHUNK (-5)   /* chunk size line/terminator malformed */
#define SG_HTTP_ETRUNCATED (-6)  /* EOF before the message ended */
#define SG_HTTP_EBADTE (-7)      /* Transfer-Encoding other than chunked */

struct sg_http_resp {
    /* results, valid once done != 0 (status from the end of the head) */
    int done;
    int status;            /* 100..599 */
    int conn_close;        /* "Connection: close" seen, or HTTP/1.0 without
                              keep-alive, or a body that runs to EOF (or
                              chunked in HTTP/1.0): do not reuse */
    int chunked;           /* Transfer-Encoding: chunked; it overrides a
                              Content-Length, and then conn_close is set */
    int64_t content_length; /* -1 if absent */
    char location[SG_HTTP_LOCATION_MAX + 1]; /* first Location, "" if none
                                                (truncated if longer) */
    char retry_after[SG_HTTP_RETRY_AFTER_MAX + 1]; /* "" if absent or too
                                                      long; trimmed; first
                                                      one wins */
    char body[SG_HTTP_BODY_KEEP];  /* first bytes of the (de-chunked) body */
    size_t body_len;       /* bytes stored in body */
    uint64_t body_total;   /* total body bytes seen */

    /* private state of the state machine */
    int st;
    size_t head_bytes;
    char line[SG_HTTP_LINE_KEEP]; /* current line; a header line stays
                              here until the next line's first byte shows
                              whether it is folded (obs-fold) */
    size_t line_len;
    uint8_t over;          /* the line had more bytes than line[] holds */
    uint8_t bad;           /* a control byte or a bare CR in the line */
    uint8_t cr;            /* the last byte was CR */
    uint8_t pending;       /* line[] holds a complete header line */
    uint64_t remain;       /* bytes left in body / current chunk */
    int close_delimited;   /* body runs until EOF */
    int connect;           /* the answer to a CONNECT (see
                              sg_http_resp_init_connect) */
};

/* Prepares r for a new response. */
void sg_http_resp_init(struct sg_http_resp *r);

/* Prepares r for the answer to a CONNECT request (a proxy's): the final
 * answer ends with its head, whatever its status.  A 2xx has no body (RFC
 * 9110 9.3.6: Content-Length and Transfer-Encoding are ignored) and the
 * tunnel's bytes follow it; any other status refuses the tunnel and its
 * body is not read (the connection is closed).  Leftover bytes after the
 * head are not consumed: sg_http_resp_feed() returns fewer than len. */
void sg_http_resp_init_connect(struct sg_http_resp *r);

/* Feeds buf[0..len).  Returns the number of bytes consumed (which is less
 * than len only when the response completed inside buf; leftover bytes
 * belong to the next response), or a negative SG_HTTP_E* code (the
 * connection must then be dropped).  1xx interim responses are consumed and
 * skipped.  Responses to POST with status 204/304 have no body.  When the
 * response has neither Content-Length nor chunked encoding its body runs to
 * EOF: call sg_http_resp_eof() then.  Feeding after done returns 0;
 * errors are sticky (later calls return the same code). */
ssize_t sg_http_resp_feed(struct sg_http_resp *r, const char *buf, size_t len);

/* Tells the parser the peer closed the connection.  Returns 0 if that
 * completes the response (close-delimited body; done is set), or
 * SG_HTTP_ETRUNCATED. */
int sg_http_resp_eof(struct sg_http_resp *r);

/* Parses a Retry-After value: delay-seconds (digits only; values beyond
 * 2^31 saturate) or an HTTP-date, relative to now_unix_s (a past date is a
 * delay of 0).  Stores milliseconds; returns 0, or -1 if malformed. */
int sg_retry_after_parse(const char *v, size_t len, int64_t now_unix_s,
                         int64_t *delay_ms);

/* Reads the SegOps answer body: a JSON object whose top-level members
 * "queued" (integer, or true for the single endpoint -> 1) and "skipped"
 * (integer) and "detail" (string) are extracted; other members of any JSON
 * type are skipped.  Absent members leave *queued / *skipped at -1 and
 * detail empty.  detail gets the unescaped string (\uXXXX decoded to UTF-8)
 * truncated to detail_cap-1 bytes, NUL-terminated; control bytes in it are
 * replaced by ' ' (it goes into log lines).  Returns 0 if body is a JSON
 * object, -1 otherwise (the outputs then hold what was found before). */
int sg_answer_parse(const char *body, size_t len, int64_t *queued,
                    int64_t *skipped, char *detail, size_t detail_cap);
/* (detail: a string member's text; a list or object, as compact JSON.) */

/* Copies JSON text without the whitespace outside strings, at most cap-1
 * bytes (never cutting a UTF-8 sequence), NUL-terminated.  Returns the
 * length. */
size_t sg_json_compact(const char *in, size_t len, char *out, size_t cap);

/* Makes text from a server fit for a log line and a callback: every
 * occurrence of `secret` (the API key; ignored when shorter than 4 bytes)
 * becomes "[redacted]", invalid UTF-8 becomes U+FFFD, control characters
 * and invisible format characters (bidi overrides, zero-width, C1) become
 * a space.  At most cap-1 bytes, never cutting a character, NUL-terminated.
 * Returns the length. */
size_t sg_text_clean(const char *in, size_t len, char *out, size_t cap, const char *secret,
                     size_t secret_len);

#endif
