/* SPDX-License-Identifier: MIT */
/*
 * netfix.h -- hostile network peers for the tests: real sockets on
 * loopback, a thread each where one is needed, and a stop function that
 * never hangs (every loop polls with a short timeout and a wake-up pipe,
 * every socket a thread touches is non-blocking).
 *
 *   black hole      a TCP listener whose backlog is full of connections it
 *                   never accepts: further SYNs are dropped, so a client's
 *                   connect() hangs (checked at start);
 *   silent server   accepts TCP connections and never reads or writes: a
 *                   TLS handshake or an HTTP request against it hangs;
 *   relay           a TCP relay to an upstream host:port that forwards both
 *                   ways until told to stop reading from its clients; its
 *                   accepted sockets have a small receive buffer, so the
 *                   clients' writes soon block;
 *   DNS black hole  a UDP socket on port 53 of a loopback address that reads
 *                   queries and never answers (needs root or
 *                   CAP_NET_BIND_SERVICE);
 *   private /etc    a mount namespace of the calling thread in which
 *                   /etc/hosts and /etc/resolv.conf are files of our own
 *                   (needs CAP_SYS_ADMIN).
 *
 * Plain C and POSIX, no test framework: functions report failure by their
 * return value (NULL or -1, errno set) and the caller decides.  The peers
 * keep no global state, except the private /etc (one per process, see
 * netfix_private_etc()).
 */
#ifndef SEGOPS_TEST_NETFIX_H
#define SEGOPS_TEST_NETFIX_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ black hole */

struct netfix_blackhole;

/* Listens on ip (numeric, "127.0.0.1" or "::1") and port (0: ephemeral),
 * fills the backlog with connections it never accepts, then checks that a
 * further connect() does not complete within 300 ms.  *port_out (may be
 * NULL) gets the port.  NULL on failure (errno set: EALREADY when the
 * probe connected anyway, i.e. this kernel does not drop SYNs to a full
 * listener).  The filler connections count as ESTABLISHED sockets to
 * ip:port in /proc/net/tcp; a client's hanging connect as SYN_SENT. */
struct netfix_blackhole *netfix_blackhole_start(const char *ip, uint16_t port,
                                                uint16_t *port_out);
void netfix_blackhole_stop(struct netfix_blackhole *b);

/* ------------------------------------------------------------ silent server */

struct netfix_silent;

/* Accepts connections on ip:port (port 0: ephemeral) and never reads or
 * writes; connections stay open until netfix_silent_stop(). */
struct netfix_silent *netfix_silent_start(const char *ip, uint16_t port, uint16_t *port_out);
/* Connections accepted so far. */
uint64_t netfix_silent_accepted(struct netfix_silent *s);
/* Bytes the clients sent that are waiting, unread, in our sockets. */
uint64_t netfix_silent_unread(struct netfix_silent *s);
void netfix_silent_stop(struct netfix_silent *s);

/* ------------------------------------------------------------ relay */

struct netfix_relay;

struct netfix_relay_counts {
    uint64_t connections; /* client connections accepted */
    uint64_t upstream_fail; /* upstream connects that failed */
    uint64_t bytes_up;    /* bytes read from clients (and sent upstream) */
    uint64_t bytes_down;  /* bytes read from upstream (and sent to clients) */
    uint64_t unread;      /* bytes waiting unread in the client sockets (last
                             look, at most ~20 ms old) */
    int open;             /* client connections open now */
};

/* Listens on 127.0.0.1:port (0: ephemeral); each client connection gets its
 * own connection to upstream_ip:upstream_port (numeric).  The listener, and
 * so every accepted socket, has SO_RCVBUF = rcvbuf bytes (0: 4096; the
 * kernel doubles it). */
struct netfix_relay *netfix_relay_start(const char *upstream_ip, uint16_t upstream_port,
                                        uint16_t port, int rcvbuf, uint16_t *port_out);
/* From now on (within ~20 ms), nothing more is read from any client
 * connection, present or future; answers still flow to the clients. */
void netfix_relay_stop_reading(struct netfix_relay *r);
void netfix_relay_counts(struct netfix_relay *r, struct netfix_relay_counts *k);
void netfix_relay_stop(struct netfix_relay *r);

/* ------------------------------------------------------------ DNS black hole */

struct netfix_dns;

/* Binds UDP ip:53 (e.g. "127.0.0.77"), reads queries, never answers (until
 * netfix_dns_release()).
 * NULL on failure (EACCES without the right to bind port 53). */
struct netfix_dns *netfix_dns_blackhole_start(const char *ip);
uint64_t netfix_dns_queries(struct netfix_dns *d);
/* From now on (within ~20 ms) answers every query, those it held and those
 * to come, with SERVFAIL: a lookup still waiting returns at once (so a
 * resolver thread that outlived its client wakes up while the test still
 * runs, where ASan can see what it touches). */
void netfix_dns_release(struct netfix_dns *d);
void netfix_dns_blackhole_stop(struct netfix_dns *d);

/* ------------------------------------------------------------ private /etc */

/* Gives the calling thread a mount namespace of its own (unshare
 * CLONE_NEWNS, the whole tree made private so nothing propagates back) in
 * which /etc/hosts and /etc/resolv.conf are replaced by files holding
 * `hosts` and `resolv_conf` (NULL: leave that one as it is).  A mount
 * namespace belongs to the thread that unshared it and is inherited by the
 * threads it creates afterwards: call this before creating the client (and
 * any thread that must see the files).  It ends with the process: run one
 * test per process (Criterion forks one per test, so does the TSan shim).
 * Returns 0, or -1 (errno set) when not possible: not root, no
 * CAP_SYS_ADMIN, no mount namespaces.  Once per process (the hosts file
 * that netfix_hosts_update() rewrites is a process-wide descriptor). */
int netfix_private_etc(const char *hosts, const char *resolv_conf);
/* Rewrites the private hosts file in place (same inode: the bind mount
 * shows it; glibc reads /etc/hosts on every lookup).  The file never
 * shrinks and is written with one pwrite(): a concurrent lookup sees the
 * old or the new entries (padding is blank lines).  Any thread.  0 or -1. */
int netfix_hosts_update(const char *hosts);

/* ------------------------------------------------------------ observation */

/* 1 if a socket can be bound to [::1], else 0. */
int netfix_have_ipv6_loopback(void);

/* TCP states as /proc/net/tcp shows them. */
enum { NETFIX_TCP_ESTABLISHED = 1, NETFIX_TCP_SYN_SENT = 2, NETFIX_TCP_CLOSE_WAIT = 8,
       NETFIX_TCP_LISTEN = 10 };

/* Sockets of this network namespace (/proc/net/tcp and tcp6) in `state`
 * whose remote end is remote_ip:remote_port (numeric).  -1 on error. */
int netfix_tcp_count(const char *remote_ip, uint16_t remote_port, int state);

/* Payload bytes the socket from local_port to remote_port (any address)
 * holds that its peer has not acknowledged: its send queue, written and
 * not yet sent or sent and not yet acknowledged (/proc/net/tcp's
 * tx_queue).  -1 when no such socket is listed (closed, reset). */
int64_t netfix_tcp_send_queue(uint16_t local_port, uint16_t remote_port);

#endif
