/* SPDX-License-Identifier: MIT */
/*
 * scripted.h -- a scripted hostile HTTP server for the test suite: raw
 * sockets, one thread per connection, every answer chosen by the test.
 *
 * For each request it reads the head and (unless the answer is early) the
 * Content-Length body, notes what the client sent (events, the
 * Idempotency-Key, tags of the events), then asks the test's function for
 * the raw bytes to answer with and what to do after: keep the connection,
 * close it, or answer before reading the body and close (a server that
 * refuses a request early, as nginx does with 413 and many do with 401).
 */
#ifndef SEGOPS_SCRIPTED_H
#define SEGOPS_SCRIPTED_H

#include <stddef.h>
#include <stdint.h>

#define SCR_LOG 1024

struct scr_req {
    uint32_t n;          /* request number, from 1 */
    uint32_t conn;       /* connection number, from 1 */
    size_t body_len;     /* Content-Length */
    uint32_t events;     /* "user_id" members in the body (0 if early) */
    char key[64];        /* Idempotency-Key */
    const char *body;    /* the body, NUL-terminated (NULL if early);
                            valid during the call */
    int fd;              /* the connection's socket: a script that answers
                            early may read part of the body itself (on the
                            first call, before the answer is sent) */
};

enum {
    SCR_KEEP = 0,  /* keep the connection for the next request */
    SCR_CLOSE = 1, /* close after the answer */
    SCR_EARLY = 2, /* answer right after the head, then close without
                      reading the body (the client's send then fails) */
};

/* Fills out[0..cap) with the raw answer; returns its length and sets *how.
 * Called once with rq->body NULL (to learn whether to answer early), then,
 * unless early, again with the body; under no lock, possibly from several
 * connection threads at once. */
typedef size_t (*scr_fn)(void *user, const struct scr_req *rq, char *out, size_t cap,
                         int *how);

struct scr;

struct scr *scr_start(scr_fn fn, void *user, uint16_t *port);
void scr_stop(struct scr *s);

struct scr_counts {
    uint32_t requests, connections;
    uint64_t events;          /* events in requests read whole */
    uint32_t repeated_keys;   /* requests whose key was seen before */
};
void scr_counts(struct scr *s, struct scr_counts *out);

#endif
