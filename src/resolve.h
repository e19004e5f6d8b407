/* SPDX-License-Identifier: MIT */
/*
 * resolve.h -- internal: host name resolution off the sender thread.
 *
 * getaddrinfo() blocks for as long as the system's resolver likes (glibc:
 * timeout x attempts per server, 10 s by default) and cannot be cancelled.
 * So it runs on a resolver thread created with the client; the sender asks
 * for a resolution and picks the result up on a later loop turn, and a
 * connection waiting for it gives up at its own deadline.  A lookup that
 * never returns costs a blocked thread, never the sender's deadlines.
 *
 * The sender's side never blocks: sg_resolver_ask() and sg_resolver_take()
 * take the mailbox lock, which the resolver thread holds only to copy a
 * request or a result, never across getaddrinfo().
 */
#ifndef SG_RESOLVE_H
#define SG_RESOLVE_H

#include <stdint.h>
#include <sys/socket.h>

#define SG_MAX_ADDRS 8

/* Addresses of the server, in the order to try them. */
struct sg_addrs {
    struct sockaddr_storage a[SG_MAX_ADDRS];
    socklen_t len[SG_MAX_ADDRS];
    int n;
};

struct sg_resolver;

/* Starts the resolver thread for host:port.  Returns 0, SEGOPS_ENOMEM or
 * SEGOPS_ETHREAD. */
int sg_resolver_new(struct sg_resolver **out, const char *host, uint16_t port);

/* Asks for a fresh resolution; does nothing while one is running (its
 * result will do). */
void sg_resolver_ask(struct sg_resolver *r);

/* Takes the result of a resolution finished since the last call: returns 1
 * and fills *out (addresses in Happy Eyeballs order, see
 * sg_addrs_interleave) or, when the lookup failed, sets out->n = 0 and
 * *gai_err to its getaddrinfo() code; returns 0 when nothing new. */
int sg_resolver_take(struct sg_resolver *r, struct sg_addrs *out, int *gai_err);

/* Stops the resolver.  Joins the thread when it is idle; when it is inside
 * getaddrinfo(), detaches it instead (the thread frees the shared state
 * when the lookup returns), so this never waits for the network. */
void sg_resolver_free(struct sg_resolver *r);

/* In a fork() child: drops the parent's resolver without touching its lock
 * or thread (neither exists here).  Frees the shared state. */
void sg_resolver_forget(struct sg_resolver *r);

/* Orders addresses for Happy Eyeballs (RFC 8305 section 4): keeps the
 * resolver's order within each family, starts with the family of the first
 * address and alternates families from there. */
void sg_addrs_interleave(struct sg_addrs *a);

/* Puts address i first, keeping the others' order (the address that
 * connected last time is tried first next time). */
void sg_addrs_prefer(struct sg_addrs *a, int i);

#endif
