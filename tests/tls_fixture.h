/* SPDX-License-Identifier: MIT */
/*
 * tls_fixture.h -- TLS test fixture: a throwaway PKI made by openssl
 * (tests/tls/mkcerts.sh) and one nginx terminating TLS on five loopback
 * ports in front of a segops-sink:
 *   TLS_GOOD     localhost, signed by the test CA, keep-alive on
 *   TLS_WRONG    a certificate for other.invalid
 *   TLS_EXPIRED  localhost, expired in 2020
 *   TLS_ROGUE    localhost, signed by a CA the client does not trust
 *   TLS_CLOSE    like good, but closes the connection after every answer
 *   TLS_SMALL    like good, with client_max_body_size 16k (413 above)
 *   TLS_EARLY    like small, and lingering_close off: nginx answers 413
 *                and closes at once, so the client's further records get
 *                a reset (the answer arrives before the write fails)
 *   TLS_IP       IP:127.0.0.1 and IP:::1 in the SAN, no DNS name; listens on
 *                [::1] too (same port) when the host has IPv6 loopback
 *   TLS_OTHERIP  IP:10.9.8.7 and DNS:example.invalid
 *   TLS_CNONLY   CN=localhost, no subjectAltName
 * nginx logs "$server_port $ssl_session_reused $connection $status
 * $ssl_cipher $ssl_server_name $http_host" per request to
 * tls_dir/access.log ($ssl_server_name is "-" when the client sent no SNI;
 * $http_host is the request's Host header).  The CA is
 * tls_dir/ca.pem.
 *
 * Beside nginx, tls_s_server_start() runs `openssl s_server` with the
 * test PKI and any protocol options, for servers nginx cannot be (TLS 1.3
 * only, TLS 1.1 only, no suite in common).
 */
#ifndef SEGOPS_TLS_FIXTURE_H
#define SEGOPS_TLS_FIXTURE_H

#include <stdint.h>
#include <sys/types.h>

enum { TLS_GOOD, TLS_WRONG, TLS_EXPIRED, TLS_ROGUE, TLS_CLOSE, TLS_SMALL, TLS_IP, TLS_OTHERIP,
       TLS_CNONLY, TLS_EARLY, TLS_NPORTS };

extern char tls_dir[64];
extern uint16_t tls_ports[TLS_NPORTS];
extern pid_t tls_nginx_pid;
extern int tls_have_ipv6; /* TLS_IP also listens on [::1] */

uint16_t tls_free_port(void);
/* Makes the certificates and starts nginx in front of 127.0.0.1:sink_port;
 * fails the test if nginx does not come up. */
void tls_nginx_start(uint16_t sink_port);
void tls_nginx_stop(void);

/* Starts `openssl s_server` on a free 127.0.0.1 port with tls_dir's
 * certificate `cert` (e.g. "server") and the extra arguments (NULL-
 * terminated), after tls_nginx_start() made the PKI; its stdin is a pipe
 * held open, so it serves until tls_s_server_stop().  Returns the port;
 * fails the test if it does not listen. */
uint16_t tls_s_server_start(const char *cert, const char *const *args);
void tls_s_server_stop(void);

#endif
