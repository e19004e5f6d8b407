/* SPDX-License-Identifier: MIT */
/*
 * sink.h -- segops-sink: a local implementation of the SegOps ingestion
 * API, used by the demo, the tests and the benchmarks.  Runs in-process
 * (sink_start) or as the segops-sink program.  Real sockets, real threads:
 * one acceptor thread and one thread per connection, blocking I/O.
 */
#ifndef SEGOPS_SINK_H
#define SEGOPS_SINK_H

#include <stddef.h>
#include <stdint.h>

struct sink;

/* Called once for every accepted (queued) event, from a connection thread,
 * with the event's JSON text exactly as received and the request's
 * Idempotency-Key ("" if none). */
typedef void (*sink_event_fn)(void *user, const char *json, size_t len,
                              const char *idempotency_key);

struct sink_opts {
    const char *bind_host;   /* NULL: "127.0.0.1" */
    uint16_t port;           /* 0: ephemeral */
    const char *api_key;     /* NULL: "sk_test"; "Authorization: ApiKey <k>" */
    const char *jsonl_path;  /* NULL: none; accepted events, one per line */
    sink_event_fn on_event;  /* NULL: none */
    void *on_event_user;
    int dedupe;              /* answer a repeated Idempotency-Key from memory
                                without recording its events again */

    /* fault injection; request numbers count from 1 over the sink's life,
     * counting every request to an ingestion endpoint */
    int fail_status;         /* status to answer for failing requests */
    uint32_t fail_first;     /* the first N requests fail with fail_status */
    uint32_t fail_every;     /* every Kth request fails (K, 2K, ...) */
    const char *fail_detail; /* "detail" of failures; NULL: a default */
    const char *retry_after; /* Retry-After header value on 429/503, or NULL */
    uint32_t drop_first;     /* the first N requests: read, then close
                                without answering */
    uint32_t delay_ms;       /* wait before answering each request */
    int chunked;             /* answer with Transfer-Encoding: chunked */
    int byte_by_byte;        /* write answers one byte per send() */
    int conn_close;          /* send "Connection: close" and close after */
    int close_after_answer;  /* close after answering, without saying so */
    uint32_t idle_close_ms;  /* close a keep-alive connection idle this long
                                (silently, like a server's keep-alive
                                timeout); 0: never */
    const char *skip_user_id; /* events of this user_id are skipped (a
                                server-side validation rule the client
                                cannot check); NULL: none */
    const char *fail_user_id; /* every request to the batch endpoint holding
                                an event whose (top-level, decoded) user_id
                                equals this string fails with fail_status
                                (503 if unset), every time, whatever its
                                number (a poison record); none of its
                                events is queued; counted in
                                failed_requests; NULL: none */
    uint32_t idle_408_ms;    /* a keep-alive connection idle this long (no
                                byte of a next request) gets an unsolicited
                                "408 Request Timeout" with "Connection:
                                close" and is closed; 0: never.  With
                                idle_close_ms too, the shorter one acts. */
};

struct sink_counts {
    uint64_t connections;    /* accepted TCP connections */
    uint64_t requests;       /* requests to ingestion endpoints */
    uint64_t batch_requests; /* of which to the batch endpoint */
    uint64_t events;         /* events received in answered 2xx requests */
    uint64_t queued;         /* events accepted (valid) */
    uint64_t skipped;        /* events that failed validation */
    uint64_t failed_requests;/* answered with an injected failure */
    uint64_t dropped_requests;/* closed without answer (drop_first) */
    uint64_t auth_failures;  /* 401 answers */
    uint64_t bad_requests;   /* 400 answers (malformed body/request) */
    uint64_t repeated_keys;  /* requests whose Idempotency-Key was seen */
    uint64_t bytes;          /* request bytes read */
    uint64_t idle_408s;      /* unsolicited 408 answers (idle_408_ms) */
    /* A gauge, not a counter: ingestion requests read completely and not
     * yet answered, including those waiting in delay_ms or the hold gate.
     * A request leaves it just before its answer's first byte is sent (or
     * its connection is closed unanswered), so once a client has read an
     * answer, that request is no longer counted. */
    uint64_t in_progress;
    uint64_t max_in_progress;/* high-water mark of in_progress; read
                                together with it, so never below it */
    uint64_t via_requests;   /* ingestion requests with a Via header:
                                forwarded by a proxy (RFC 9110 7.6.3) */
};

/* One ingestion request, as kept by the request log. */
struct sink_req_rec {
    int64_t t_ns;       /* CLOCK_MONOTONIC at the moment the request was
                           completely read */
    int status;         /* status answered, 0 if closed without answering */
    uint32_t events;    /* events in the body: the elements of a well-formed
                           batch's "events" array (0 past the limit of 500,
                           which is refused), 1 for a well-formed single-
                           event body; 0 if not parsable */
    uint64_t conn;      /* connection number, from 1 (the order of accept) */
    char key[64];       /* Idempotency-Key ("" if none), cut to 63 bytes */
};

/* Capacity of the request log: the last SINK_REQ_LOG requests are kept. */
#define SINK_REQ_LOG 4096

/* Starts listening; *port_out gets the bound port.  Returns NULL on error
 * (errno set). */
struct sink *sink_start(const struct sink_opts *o, uint16_t *port_out);
void sink_get_counts(struct sink *s, struct sink_counts *out);
/* Stops accepting, closes every connection, joins every thread, frees.
 * Requests waiting in the hold gate are released and closed unanswered. */
void sink_stop(struct sink *s);

/* The hold gate.  While on, every ingestion request, once read completely
 * and numbered (and after drop_first and delay_ms), waits before being
 * answered until the gate is turned off (all waiting requests are then
 * released) or the sink stops.  Off at start.  Any thread may call it. */
void sink_hold(struct sink *s, int on);

/* Copies the records of the ingestion requests still in the request log
 * (the last SINK_REQ_LOG answered or dropped), oldest first, at most cap
 * of them (the oldest ones), into out; returns how many it copied.  A
 * record is added in the order requests are answered or dropped, just
 * before the answer is sent: once a client has read an answer, its
 * request's record is in the log. */
size_t sink_requests(struct sink *s, struct sink_req_rec *out, size_t cap);

/* Validates one event object like the real server: user_id non-empty
 * string; event_type string matching [a-z][a-z0-9_]*; occurred_at, if
 * present, an RFC 3339 string; payload, if present, an object.  Returns 1
 * if valid. */
int sink_event_valid(const char *json, size_t len);

#endif
