/* SPDX-License-Identifier: MIT */
/*
 * tls.h -- internal: https:// over BearSSL.
 *
 * Two parts:
 *  - trust anchors decoded once, at client creation, from a PEM bundle
 *    (the system bundle by default), deep-copied and owned by the client;
 *  - one BearSSL engine per connection.  Nothing here does I/O: BearSSL's
 *    engine only says which buffer wants bytes (SENDREC: records to write,
 *    RECVREC: room for records read) and which holds application data
 *    (SENDAPP, RECVAPP); the connection code (conn.c) moves those bytes
 *    with whichever driver runs, io_uring or poll().
 *
 * Verification is always on: chain to an anchor and validity dates
 * against the real clock (BearSSL's minimal X.509 engine), and the host
 * name or IP address against the certificate's subjectAltName (x509.c,
 * wrapped around it).  A host name is sent as SNI, an IP literal is not
 * (RFC 6066 §3).  TLS 1.2 only (BearSSL's
 * highest).  The last session is kept in the client-wide context and
 * offered by every new connection, so a reconnect or an extra connection of
 * the pool resumes it when the server agrees.
 *
 * Memory: engine, X.509 context, the 33 KiB record buffer and the 16 KiB
 * copy of the server's certificate live in the struct, allocated with the
 * client; nothing is allocated per connection or
 * per batch.
 */
#ifndef SG_TLS_H
#define SG_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <bearssl.h>

#include "x509.h"


/* The first place the system bundle is looked for (Debian's); see
 * sg_tls_system_cas for the others. */
#define SG_TLS_DEFAULT_CA "/etc/ssl/certs/ca-certificates.crt"
#define SG_TLS_BUNDLE_MAX (32u << 20) /* larger PEM files are refused */

/* TLS failure; the BearSSL error code is in sg_tls.last_err. */
#define SG_ETLS (-100003)
/* TLS failure that retrying cannot cure: the certificate is not trusted,
 * not for this host, or out of its validity dates (sg_tls_permanent()). */
#define SG_ETLSCERT (-100005)

struct sg_anchors {
    br_x509_trust_anchor *ta;
    size_t n, cap;
};

/* Decodes every CERTIFICATE of a PEM text into anchors (appending to a).
 * Objects of other types are skipped; a malformed certificate is skipped
 * and counted in *bad (may be NULL).  Returns 0, or -1 on allocation
 * failure or a PEM syntax error.  Bounded: never reads past pem+len. */
int sg_anchors_from_pem(struct sg_anchors *a, const void *pem, size_t len, size_t *bad);

/* Reads a CA file -- a PEM bundle (LF or CRLF line ends) or one DER
 * certificate, at most SG_TLS_BUNDLE_MAX bytes -- and decodes it.  Returns
 * 0 with at least one anchor, or -1 with the reason in why (cap bytes,
 * NUL-terminated, naming the file; why may be NULL): cannot open or read
 * (the errno text), a directory, empty, too large, neither PEM nor DER,
 * malformed PEM, no certificate among its objects, no certificate that
 * could be parsed. */
int sg_anchors_load(struct sg_anchors *a, const char *path, char *why, size_t cap);

/* Where the system bundle is looked for, in order; NULL-terminated. */
extern const char *const sg_tls_system_cas[];

/* The file of trusted CAs to load: ca_file when given, else
 * $SSL_CERT_FILE when set, else the first of sg_tls_system_cas that
 * exists (NULL when none does).  *origin names which ("ca_file",
 * "SSL_CERT_FILE", "system bundle"). */
const char *sg_tls_trust_file(const char *ca_file, const char **origin);

/* Adds the certificates of every file named like OpenSSL's hashed links
 * (8 hex digits, '.', a number: what c_rehash / update-ca-certificates
 * make) in each directory of the colon-separated list `dirs`
 * ($SSL_CERT_DIR).  Returns how many files gave at least one anchor, or -1
 * with the reason in why when a directory cannot be read. */
int sg_anchors_load_dirs(struct sg_anchors *a, const char *dirs, char *why, size_t cap);

/* Room for the reason sg_tls_ctx_init() gives. */
#define SG_TLS_WHY_MAX 640

void sg_anchors_free(struct sg_anchors *a);

/* Client-wide TLS state, made once at client creation: the trust anchors,
 * the cipher suite order, the server name, and the last session the
 * server gave us, which every connection offers for resumption. */
struct sg_tls_ctx {
    struct sg_anchors anchors;
    char host[256];
    br_ssl_session_parameters session;
    int have_session;
};

/* One connection's engine.  Everything lives in the struct and in iobuf,
 * allocated with the client: nothing is allocated per connection or per
 * batch. */
struct sg_tls {
    br_ssl_client_context cc;
    br_x509_minimal_context xc; /* chain validation, inside xw */
    struct sg_x509 xw;         /* the engine's X.509 engine: xc + name check */
    unsigned char *iobuf;      /* BR_SSL_BUFSIZE_BIDI */
    unsigned char *ee;         /* SG_X509_EE_MAX: the server's certificate */
    int last_err;              /* BearSSL error of the last failure */
    int resumed;               /* the last handshake resumed a session */
    unsigned char offered[32]; /* session id offered by sg_tls_start() */
    size_t offered_len;
};

/* Loads the anchors for `host` from the file sg_tls_trust_file() picks
 * (ca_file, $SSL_CERT_FILE, the system bundle) -- and, without ca_file,
 * from $SSL_CERT_DIR's hashed files when it is set (then the system
 * bundle is not required: the directories alone may hold the anchors).  Returns 0, or SEGOPS_ETLS
 * with the reason in why (cap bytes, SG_TLS_WHY_MAX suffice; why may be
 * NULL): which file, from where, and what is wrong with it. */
int sg_tls_ctx_init(struct sg_tls_ctx *x, const char *ca_file, const char *host, char *why,
                    size_t cap);
void sg_tls_ctx_free(struct sg_tls_ctx *x);

/* Sets up one connection's engine against the context's anchors and the
 * context's host.  Returns 0 or SEGOPS_ENOMEM. */
int sg_tls_init(struct sg_tls *t, const struct sg_tls_ctx *x);
void sg_tls_free(struct sg_tls *t);

/* 1 when BearSSL has AES-NI and PCLMULQDQ code for this CPU: the client
 * then offers AES-GCM before ChaCha20-Poly1305 (see tls.c). */
int sg_tls_aes_hw(void);

/* Starts a handshake on a fresh connection, offering the context's last
 * session.  The caller then moves records: while the engine's state
 * (br_ssl_engine_current_state(sg_tls_engine(t))) has BR_SSL_SENDREC it
 * writes br_ssl_engine_sendrec_buf() to the socket and acks what was
 * written; with BR_SSL_RECVREC it reads into br_ssl_engine_recvrec_buf()
 * and acks; the handshake is over when BR_SSL_SENDAPP appears; BR_SSL_CLOSED
 * ends it (sg_tls_closed()).  Returns 0, or SG_ETLS (reason in last_err). */
int sg_tls_start(struct sg_tls *t, const struct sg_tls_ctx *x);

/* The handshake completed: notes whether it resumed the offered session
 * and keeps the (possibly new) session in the context for the next
 * connection. */
void sg_tls_handshake_done(struct sg_tls *t, struct sg_tls_ctx *x);

/* The engine reached BR_SSL_CLOSED: 0 for a clean close_notify, else
 * SG_ETLS with the reason in last_err. */
int sg_tls_closed(struct sg_tls *t);

static inline br_ssl_engine_context *sg_tls_engine(struct sg_tls *t)
{
    return &t->cc.eng;
}

/* A short reason for a BearSSL error code ("certificate not trusted
 * (...)", "server sent fatal alert protocol_version (70)" without its
 * number, "no cipher suite in common", ...). */
const char *sg_tls_reason(int br_err);

/* The name of a TLS alert as RFC 8446 §6 (and RFC 5246 §7.2 for the older
 * ones) writes it ("handshake_failure"), or NULL for an unknown number. */
const char *sg_tls_alert_name(int alert);

/* The whole reason for the connection's last failure (t->last_err), for a
 * log line and the delivery report: the cause in words, the alert's name
 * and number, what the name check found, a hint where one helps, and the
 * BearSSL code.  Writes at most cap bytes, NUL-terminated. */
void sg_tls_describe(const struct sg_tls *t, char *buf, size_t cap);

/* 1 when the failure is the certificate's -- not trusted (no chain to an
 * anchor, a broken chain, an issuer that is not a CA), not for this host,
 * expired or not yet valid: a configuration problem that a retry cannot
 * cure. */
int sg_tls_permanent(int br_err);

#endif
