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
 * nginx logs "$server_port $ssl_session_reused $connection $status $ssl_cipher" per
 * request to tls_dir/access.log.  The CA is tls_dir/ca.pem.
 */
#ifndef SEGOPS_TLS_FIXTURE_H
#define SEGOPS_TLS_FIXTURE_H

#include <stdint.h>
#include <sys/types.h>

enum { TLS_GOOD, TLS_WRONG, TLS_EXPIRED, TLS_ROGUE, TLS_CLOSE, TLS_SMALL, TLS_NPORTS };

extern char tls_dir[64];
extern uint16_t tls_ports[TLS_NPORTS];
extern pid_t tls_nginx_pid;

uint16_t tls_free_port(void);
/* Makes the certificates and starts nginx in front of 127.0.0.1:sink_port;
 * fails the test if nginx does not come up. */
void tls_nginx_start(uint16_t sink_port);
void tls_nginx_stop(void);

#endif
