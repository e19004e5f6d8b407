/* SPDX-License-Identifier: MIT */
/*
 * tls_front.h -- the TLS side of B3: nginx terminating TLS on a loopback
 * port in front of an in-process segops-sink, the way a real deployment
 * puts a TLS proxy in front of the ingestion service.
 *
 * tls_front_start() makes a temporary directory under /tmp, a throwaway CA
 * and a certificate for "localhost" in it (tests/tls/mkcerts.sh, run with
 * openssl), writes an nginx.conf there and starts nginx (master + one
 * worker, in the foreground) as a child process:
 *
 *   client --TLS, keep-alive--> nginx 127.0.0.1:port
 *          --plain HTTP/1.1, upstream keep-alive--> sink 127.0.0.1:sink_port
 *
 * nginx streams each request body to the sink as it decrypts it (no
 * buffering of whole bodies, never a temp file) and logs no accesses, so
 * it does only TLS and proxying.  The bench counts nginx's CPU through
 * tls_front_cpu_ns().  Unlike tests/tls_fixture.c this
 * never aborts: a missing nginx or openssl is a reason to skip rows.
 */
#ifndef BENCH_TLS_FRONT_H
#define BENCH_TLS_FRONT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tls_front {
    char dir[64];   /* the temporary directory: certificates, conf, logs */
    char ca[96];    /* dir/ca.pem: the CA the client must trust */
    char url[64];   /* "https://localhost:<port>" */
    uint16_t port;  /* nginx's TLS port on 127.0.0.1 */
    pid_t master;   /* our child */
    pid_t worker;   /* the master's worker process, or -1 if not found */
};

/* Starts nginx in front of 127.0.0.1:sink_port.  Returns NULL when it
 * cannot, with a short reason in why ("nginx not found", "nginx did not
 * start: <last line of its error log>"); everything made so far is undone. */
struct tls_front *tls_front_start(uint16_t sink_port, char *why, size_t why_cap);

/* CPU time (user + system, ns) the nginx worker has used so far, or -1. */
int64_t tls_front_cpu_ns(const struct tls_front *f);

/* Stops nginx (SIGTERM, then waits for it), removes the directory, frees
 * f.  NULL is allowed. */
void tls_front_stop(struct tls_front *f);

#endif
