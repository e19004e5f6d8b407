/* SPDX-License-Identifier: MIT */
/*
 * tls.c -- trust anchors from PEM, and BearSSL engines set up for the
 * client: suites, versions, session resumption shared across connections.
 * No I/O here: conn.c moves the engine's records.
 */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segops.h"

/* ------------------------------------------------------------ anchors */

struct growbuf {
    unsigned char *p;
    size_t len, cap;
    int oom;
};

static void grow_append(void *ctx, const void *buf, size_t len)
{
    struct growbuf *g = ctx;
    if (g->oom)
        return;
    if (g->len + len > g->cap) {
        size_t cap = g->cap ? g->cap : 1024;
        while (cap < g->len + len)
            cap *= 2;
        unsigned char *p = realloc(g->p, cap);
        if (!p) {
            g->oom = 1;
            return;
        }
        g->p = p;
        g->cap = cap;
    }
    memcpy(g->p + g->len, buf, len);
    g->len += len;
}

static void *dup_mem(const void *p, size_t n)
{
    void *q = malloc(n ? n : 1);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

/* Decodes one DER certificate into a new anchor.  0, 1 (not a usable
 * certificate: skipped), -1 (out of memory). */
static int add_anchor(struct sg_anchors *a, const unsigned char *der, size_t len)
{
    struct growbuf dn = {0};
    br_x509_decoder_context dc;
    br_x509_decoder_init(&dc, grow_append, &dn);
    br_x509_decoder_push(&dc, der, len);
    const br_x509_pkey *pk = br_x509_decoder_get_pkey(&dc);
    if (dn.oom) {
        free(dn.p);
        return -1;
    }
    if (!pk || dn.len == 0) {
        free(dn.p);
        return 1;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        br_x509_trust_anchor *ta = realloc(a->ta, cap * sizeof(*ta));
        if (!ta) {
            free(dn.p);
            return -1;
        }
        a->ta = ta;
        a->cap = cap;
    }
    br_x509_trust_anchor *t = &a->ta[a->n];
    memset(t, 0, sizeof(*t));
    t->dn.data = dn.p;
    t->dn.len = dn.len;
    t->flags = br_x509_decoder_isCA(&dc) ? BR_X509_TA_CA : 0;
    t->pkey.key_type = pk->key_type;
    if (pk->key_type == BR_KEYTYPE_RSA) {
        t->pkey.key.rsa.n = dup_mem(pk->key.rsa.n, pk->key.rsa.nlen);
        t->pkey.key.rsa.nlen = pk->key.rsa.nlen;
        t->pkey.key.rsa.e = dup_mem(pk->key.rsa.e, pk->key.rsa.elen);
        t->pkey.key.rsa.elen = pk->key.rsa.elen;
        if (!t->pkey.key.rsa.n || !t->pkey.key.rsa.e) {
            free(t->pkey.key.rsa.n);
            free(t->pkey.key.rsa.e);
            free(dn.p);
            return -1;
        }
    } else if (pk->key_type == BR_KEYTYPE_EC) {
        t->pkey.key.ec.curve = pk->key.ec.curve;
        t->pkey.key.ec.q = dup_mem(pk->key.ec.q, pk->key.ec.qlen);
        t->pkey.key.ec.qlen = pk->key.ec.qlen;
        if (!t->pkey.key.ec.q) {
            free(dn.p);
            return -1;
        }
    } else {
        free(dn.p);
        return 1;
    }
    a->n++;
    return 0;
}

int sg_anchors_from_pem(struct sg_anchors *a, const void *pem, size_t len, size_t *bad)
{
    br_pem_decoder_context pc;
    struct growbuf der = {0};
    const unsigned char *p = pem;
    int in_cert = 0, rc = 0;
    size_t skipped = 0;

    br_pem_decoder_init(&pc);
    while (len > 0) {
        size_t n = br_pem_decoder_push(&pc, p, len);
        p += n;
        len -= n;
        switch (br_pem_decoder_event(&pc)) {
        case BR_PEM_BEGIN_OBJ: {
            const char *name = br_pem_decoder_name(&pc);
            in_cert = !strcmp(name, "CERTIFICATE") || !strcmp(name, "X509 CERTIFICATE") ||
                      !strcmp(name, "TRUSTED CERTIFICATE");
            der.len = 0;
            br_pem_decoder_setdest(&pc, in_cert ? grow_append : NULL, in_cert ? &der : NULL);
            break;
        }
        case BR_PEM_END_OBJ:
            if (in_cert) {
                if (der.oom) {
                    rc = -1;
                    goto out;
                }
                int r = add_anchor(a, der.p, der.len);
                if (r < 0) {
                    rc = -1;
                    goto out;
                }
                skipped += (size_t)r;
            }
            in_cert = 0;
            break;
        case BR_PEM_ERROR:
            rc = -1;
            goto out;
        default:
            break;
        }
    }
out:
    free(der.p);
    if (bad)
        *bad = skipped;
    return rc;
}

int sg_anchors_load(struct sg_anchors *a, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    unsigned char *buf = malloc(SG_TLS_BUNDLE_MAX);
    size_t len = buf ? fread(buf, 1, SG_TLS_BUNDLE_MAX, f) : 0;
    int too_big = buf && len == SG_TLS_BUNDLE_MAX && fgetc(f) != EOF;
    fclose(f);
    int rc = -1;
    if (buf && !too_big && sg_anchors_from_pem(a, buf, len, NULL) == 0 && a->n > 0)
        rc = 0;
    free(buf);
    return rc;
}

void sg_anchors_free(struct sg_anchors *a)
{
    for (size_t i = 0; i < a->n; i++) {
        br_x509_trust_anchor *t = &a->ta[i];
        free(t->dn.data);
        if (t->pkey.key_type == BR_KEYTYPE_RSA) {
            free(t->pkey.key.rsa.n);
            free(t->pkey.key.rsa.e);
        } else {
            free(t->pkey.key.ec.q);
        }
    }
    free(a->ta);
    memset(a, 0, sizeof(*a));
}

/* ------------------------------------------------------------- engine */

/* Cipher suites we offer, best first: forward-secret ECDHE only, AEAD
 * before CBC.  Between the two AEADs the CPU decides: with AES-NI and
 * PCLMULQDQ, BearSSL's AES-GCM costs a fraction of its ChaCha20-Poly1305
 * (the sender encrypts every byte it sends); without them ChaCha20 is the
 * faster constant-time choice.  A server honouring the client's order
 * (nginx's default) takes the first it supports. */
#define SG_SUITES_GCM                                                                      \
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, \
        BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
#define SG_SUITES_CHACHA                                  \
    BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, \
        BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
#define SG_SUITES_CBC                                                                      \
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, \
        BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384

static const uint16_t suites_aes_first[] = {SG_SUITES_GCM, SG_SUITES_CHACHA, SG_SUITES_CBC};
static const uint16_t suites_chacha_first[] = {SG_SUITES_CHACHA, SG_SUITES_GCM, SG_SUITES_CBC};

int sg_tls_aes_hw(void)
{
    return br_aes_x86ni_ctr_get_vtable() != NULL && br_ghash_pclmul_get() != 0;
}

int sg_tls_ctx_init(struct sg_tls_ctx *x, const char *ca_file, const char *host)
{
    memset(x, 0, sizeof(*x));
    if (strlen(host) >= sizeof(x->host))
        return SEGOPS_ETLS;
    snprintf(x->host, sizeof(x->host), "%s", host);
    if (sg_anchors_load(&x->anchors, ca_file ? ca_file : SG_TLS_DEFAULT_CA) != 0) {
        sg_anchors_free(&x->anchors);
        return SEGOPS_ETLS;
    }
    return 0;
}

void sg_tls_ctx_free(struct sg_tls_ctx *x)
{
    sg_anchors_free(&x->anchors);
    memset(x, 0, sizeof(*x));
}

int sg_tls_init(struct sg_tls *t, const struct sg_tls_ctx *x)
{
    memset(t, 0, sizeof(*t));
    t->iobuf = malloc(BR_SSL_BUFSIZE_BIDI);
    if (!t->iobuf)
        return SEGOPS_ENOMEM;
    br_ssl_client_init_full(&t->cc, &t->xc, x->anchors.ta, x->anchors.n);
    br_ssl_engine_set_versions(&t->cc.eng, BR_TLS12, BR_TLS12);
    if (sg_tls_aes_hw())
        br_ssl_engine_set_suites(&t->cc.eng, suites_aes_first,
                                 sizeof(suites_aes_first) / sizeof(suites_aes_first[0]));
    else
        br_ssl_engine_set_suites(&t->cc.eng, suites_chacha_first,
                                 sizeof(suites_chacha_first) / sizeof(suites_chacha_first[0]));
    br_ssl_engine_set_buffer(&t->cc.eng, t->iobuf, BR_SSL_BUFSIZE_BIDI, 1);
    return 0;
}

void sg_tls_free(struct sg_tls *t)
{
    free(t->iobuf);
    memset(t, 0, sizeof(*t));
}

int sg_tls_start(struct sg_tls *t, const struct sg_tls_ctx *x)
{
    t->last_err = 0;
    t->resumed = 0;
    t->offered_len = 0;
    if (x->have_session) {
        br_ssl_engine_set_session_parameters(&t->cc.eng, &x->session);
        t->offered_len = x->session.session_id_len;
        memcpy(t->offered, x->session.session_id, t->offered_len);
    }
    if (!br_ssl_client_reset(&t->cc, x->host, x->have_session)) {
        t->last_err = br_ssl_engine_last_error(&t->cc.eng);
        return SG_ETLS;
    }
    return 0;
}

void sg_tls_handshake_done(struct sg_tls *t, struct sg_tls_ctx *x)
{
    br_ssl_session_parameters now;
    br_ssl_engine_get_session_parameters(&t->cc.eng, &now);
    t->resumed = t->offered_len > 0 && now.session_id_len == t->offered_len &&
                 memcmp(now.session_id, t->offered, t->offered_len) == 0;
    if (now.session_id_len > 0) {
        x->session = now;
        x->have_session = 1;
    }
}

int sg_tls_closed(struct sg_tls *t)
{
    t->last_err = br_ssl_engine_last_error(&t->cc.eng);
    return t->last_err == BR_ERR_OK ? 0 : SG_ETLS;
}

const char *sg_tls_reason(int err)
{
    switch (err) {
    case BR_ERR_X509_NOT_TRUSTED:
        return "certificate not trusted (no chain to a trusted CA)";
    case BR_ERR_X509_BAD_SERVER_NAME:
        return "certificate does not match the host name";
    case BR_ERR_X509_EXPIRED:
        return "certificate expired or not yet valid";
    case BR_ERR_BAD_VERSION:
    case BR_ERR_UNSUPPORTED_VERSION:
        return "server does not speak TLS 1.2";
    case BR_ERR_BAD_CIPHER_SUITE:
        return "no cipher suite in common";
    case BR_ERR_IO:
        return "I/O error or unexpected data during TLS";
    case BR_ERR_SEND_FATAL_ALERT:
        return "client aborted the handshake";
    default:
        if (err >= BR_ERR_RECV_FATAL_ALERT && err < BR_ERR_SEND_FATAL_ALERT)
            return "server sent a fatal alert";
        if (err >= 32 && err < 64)
            return "certificate chain invalid";
        return "TLS protocol error";
    }
}
