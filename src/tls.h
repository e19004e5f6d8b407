/*
 * tls.h -- internal: https:// over BearSSL.
 *
 * Two parts:
 *  - trust anchors decoded once, at client creation, from a PEM bundle
 *    (the system bundle by default), deep-copied and owned by the client;
 *  - a pump that moves BearSSL's records over the sender's byte-stream
 *    driver (struct sg_io).  BearSSL's engine does no I/O itself: it only
 *    says which buffer wants bytes (SENDREC: records to write, RECVREC:
 *    room for records read) and which holds application data (SENDAPP,
 *    RECVAPP).  So the same TLS code runs over io_uring and over poll().
 *
 * Verification is always on: chain to an anchor, host name (also sent as
 * SNI), validity dates against the real clock.  TLS 1.2 only (BearSSL's
 * highest).  Session IDs are kept in the engine across reconnects, so a
 * reconnect resumes the session when the server agrees.
 *
 * Memory: engine, X.509 context and the 33 KiB record buffer live in the
 * struct, allocated with the client; nothing is allocated per connection or
 * per batch.
 */
#ifndef SG_TLS_H
#define SG_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <bearssl.h>

#include "io.h"

#define SG_TLS_DEFAULT_CA "/etc/ssl/certs/ca-certificates.crt"
#define SG_TLS_BUNDLE_MAX (32u << 20) /* larger PEM files are refused */

/* TLS failure; the BearSSL error code is in sg_tls.last_err. */
#define SG_ETLS (-100003)

struct sg_anchors {
    br_x509_trust_anchor *ta;
    size_t n, cap;
};

/* Decodes every CERTIFICATE of a PEM text into anchors (appending to a).
 * Objects of other types are skipped; a malformed certificate is skipped
 * and counted in *bad (may be NULL).  Returns 0, or -1 on allocation
 * failure or a PEM syntax error.  Bounded: never reads past pem+len. */
int sg_anchors_from_pem(struct sg_anchors *a, const void *pem, size_t len, size_t *bad);

/* Reads a PEM bundle file (at most SG_TLS_BUNDLE_MAX bytes) and decodes
 * it.  Returns 0 with at least one anchor, or -1. */
int sg_anchors_load(struct sg_anchors *a, const char *path);

void sg_anchors_free(struct sg_anchors *a);

struct sg_tls {
    br_ssl_client_context cc;
    br_x509_minimal_context xc;
    unsigned char *iobuf;      /* BR_SSL_BUFSIZE_BIDI */
    struct sg_anchors anchors;
    char host[256];
    int last_err;              /* BearSSL error of the last failure */
    int resumed;               /* the last handshake resumed a session */
};

/* Loads the anchors (ca_file, or the system bundle when NULL) and sets up
 * the engine for `host`.  Returns 0, SEGOPS_ENOMEM, or SEGOPS_ETLS when
 * the bundle cannot be read or holds no certificate. */
int sg_tls_init(struct sg_tls *t, const char *ca_file, const char *host);

/* 1 when BearSSL has AES-NI and PCLMULQDQ code for this CPU: the client
 * then offers AES-GCM before ChaCha20-Poly1305 (see tls.c). */
int sg_tls_aes_hw(void);
void sg_tls_free(struct sg_tls *t);

/* Runs a handshake on the connected io (resuming the previous session when
 * there is one).  Returns 0, -errno / -ETIMEDOUT from the driver, 0-byte
 * EOF as -ECONNRESET, or SG_ETLS (reason in last_err). */
int sg_tls_handshake(struct sg_tls *t, struct sg_io *io, int64_t deadline_ns);

/* Encrypts and writes all of buf.  Returns 0 or a negative code as above. */
int sg_tls_send(struct sg_tls *t, struct sg_io *io, const void *buf, size_t len,
                int64_t deadline_ns);

/* Reads application data: > 0 bytes, 0 when the peer closed (close_notify
 * or TCP FIN), or a negative code as above. */
ssize_t sg_tls_recv(struct sg_tls *t, struct sg_io *io, void *buf, size_t cap,
                    int64_t deadline_ns);

/* A short reason for a BearSSL error code ("certificate not trusted",
 * "wrong host name", "certificate expired or not yet valid", ...). */
const char *sg_tls_reason(int br_err);

#endif
