/* SPDX-License-Identifier: MIT */
/*
 * chaos.h -- segops-chaos: an in-process TCP fault-injection proxy for
 * HTTP/1.1, placed between the client and a segops-sink (or any server).
 *
 *   client --> 127.0.0.1:<chaos port> --> upstream host:port
 *
 * One acceptor thread, one thread per client connection; each client
 * connection gets its own upstream connection, opened on its first request.
 * The proxy frames what flows through it: a request is its head plus
 * Content-Length bytes of body; an answer is its head plus Content-Length
 * bytes, a chunked body, or everything up to EOF.  So it can count requests
 * and act on a chosen request: reset the client before or after the server
 * processed it, hold or delay, cut the answer, dribble it in 1-3 byte
 * segments, or answer with something malformed instead of forwarding.
 *
 * Which action a request gets (first match wins):
 *   1. chaos_fault_next(): the next N requests (over the proxy's life);
 *   2. opts.fault_first / fault_every on the request number (from 1);
 *   3. opts.conn_fault_first / conn_fault_every on the connection number
 *      (from 1): every request of such a connection;
 *   4. the current mode (opts.mode, chaos_set_mode()), normally FORWARD.
 *
 * Everything changeable at run time is atomic; every loop is bounded by
 * the stop flag (checked at least every 50 ms) and by byte limits.
 */
#ifndef SEGOPS_CHAOS_H
#define SEGOPS_CHAOS_H

#include <stddef.h>
#include <stdint.h>

struct chaos;

enum chaos_action {
    CHAOS_FORWARD = 0,     /* relay request and answer unchanged */
    CHAOS_RESET_BEFORE,    /* RST the client; the request is not forwarded */
    CHAOS_RESET_AFTER,     /* forward, read the whole answer, RST the client:
                              the server processed it, the answer is lost */
    CHAOS_STALL,           /* forward, hold the answer `ms` ms, relay it */
    CHAOS_DELAY,           /* hold the request `ms` ms, then forward */
    CHAOS_CUT_RST,         /* relay half of the answer, then RST */
    CHAOS_CUT_FIN,         /* relay half of the answer, then FIN */
    CHAOS_TINY,            /* relay the answer in 1-3 byte segments
                              (TCP_NODELAY, ~1 ms apart) */
    CHAOS_BIG_HEAD,        /* answer (not forwarded) a 503 with a 72 KiB
                              head (over the client's 64 KiB); the
                              malformed answers are 503s: a 2xx is never
                              re-sent, however broken */
    CHAOS_BIG_LENGTH,      /* answer a 503 with Content-Length: 99999999999 */
    CHAOS_BIG_CHUNK,       /* answer a 503 chunked with an absurd chunk size */
    CHAOS_GARBAGE,         /* answer with a garbage status line */
    CHAOS_ANSWER_400,      /* answer (not forwarded) a well-formed 400 with
                              a JSON detail; the connection stays open */
    CHAOS_ACTION_N
};

/* How chaos_refuse() makes the server look down. */
enum chaos_refuse_how {
    CHAOS_REFUSE_RST = 0,  /* accept and reset at once */
    CHAOS_REFUSE_CLOSE = 1 /* close the listener (connect: ECONNREFUSED),
                              re-open it on the same port afterwards */
};

struct chaos_opts {
    const char *upstream_host;  /* NULL: "127.0.0.1" (numeric only) */
    uint16_t upstream_port;     /* required */
    uint16_t port;              /* 0: ephemeral; the proxy binds 127.0.0.1 */
    int mode;                   /* default action, CHAOS_FORWARD */
    int fault;                  /* action of requests picked below */
    uint32_t fault_first;       /* requests 1..N get `fault` */
    uint32_t fault_every;       /* requests K, 2K, ... get `fault` */
    int conn_fault;             /* action of connections picked below */
    uint32_t conn_fault_first;  /* connections 1..N: every request */
    uint32_t conn_fault_every;  /* connections K, 2K, ... */
    uint32_t ms;                /* STALL / DELAY duration; 0: 500 ms */
};

struct chaos_counts {
    uint64_t connections;   /* client connections accepted */
    uint64_t refused;       /* connections reset while refusing */
    uint64_t requests;      /* complete requests read from clients */
    uint64_t forwarded;     /* requests written upstream */
    uint64_t answers;       /* upstream answers read completely */
    uint64_t relayed;       /* answers relayed to the client in full */
    uint64_t resets;        /* RSTs injected (before, after, cut, kill) */
    uint64_t cuts;          /* answers cut in the middle */
    uint64_t stalls;        /* answers held or requests delayed */
    uint64_t tiny;          /* answers relayed in tiny segments */
    uint64_t injected;      /* malformed answers sent instead of forwarding */
    uint64_t upstream_errors; /* upstream connect failed or closed early */
    uint64_t restarts;      /* chaos_refuse() calls */
    uint64_t bytes_up;      /* request bytes forwarded */
    uint64_t bytes_down;    /* answer bytes relayed */
};

/* Starts the proxy; *port_out gets its port.  NULL on error (errno set). */
struct chaos *chaos_start(const struct chaos_opts *o, uint16_t *port_out);
/* Stops accepting, closes every connection, joins every thread, frees. */
void chaos_stop(struct chaos *ch);
void chaos_get_counts(struct chaos *ch, struct chaos_counts *out);

/* Run-time control, from any thread. */
void chaos_set_mode(struct chaos *ch, int action);    /* default action */
void chaos_set_ms(struct chaos *ch, uint32_t ms);     /* STALL / DELAY */
/* The next n requests get `action` (replaces an unspent budget). */
void chaos_fault_next(struct chaos *ch, int action, uint32_t n);
/* Looks like a server restart for ms: resets every open client connection
 * (within 50 ms), then refuses new ones as `how` says until ms passed. */
void chaos_refuse(struct chaos *ch, uint32_t ms, int how);
/* Resets every open client connection (within 50 ms), e.g. to make the
 * client's idle keep-alive connection stale. */
void chaos_kill_connections(struct chaos *ch);

const char *chaos_action_name(int action);

#endif
