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
};

/* Starts listening; *port_out gets the bound port.  Returns NULL on error
 * (errno set). */
struct sink *sink_start(const struct sink_opts *o, uint16_t *port_out);
void sink_get_counts(struct sink *s, struct sink_counts *out);
/* Stops accepting, closes every connection, joins every thread, frees. */
void sink_stop(struct sink *s);

/* Validates one event object like the real server: user_id non-empty
 * string; event_type string matching [a-z][a-z0-9_]*; occurred_at, if
 * present, an RFC 3339 string; payload, if present, an object.  Returns 1
 * if valid. */
int sink_event_valid(const char *json, size_t len);

#endif
