/* SPDX-License-Identifier: MIT */
/*
 * tls.c -- trust anchors from PEM, and BearSSL engines set up for the
 * client: suites, versions, session resumption shared across connections.
 * No I/O here: conn.c moves the engine's records.
 */
#include "tls.h"

#include <dirent.h>
#include <limits.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* The PEM decoding state of sg_anchors_from_pem(), across the segments
 * that line-end repair cuts the text into. */
struct pem_run {
    br_pem_decoder_context pc;
    struct growbuf der;
    int in_cert;
    size_t skipped, certs, objects;
};

/* Pushes len bytes into the decoder; 0, or -1 (PEM syntax or memory). */
static int pem_feed(struct sg_anchors *a, struct pem_run *r, const unsigned char *p, size_t len)
{
    while (len > 0) {
        size_t n = br_pem_decoder_push(&r->pc, p, len);
        p += n;
        len -= n;
        switch (br_pem_decoder_event(&r->pc)) {
        case BR_PEM_BEGIN_OBJ: {
            const char *name = br_pem_decoder_name(&r->pc);
            r->objects++;
            r->in_cert = !strcmp(name, "CERTIFICATE") || !strcmp(name, "X509 CERTIFICATE") ||
                         !strcmp(name, "TRUSTED CERTIFICATE");
            r->der.len = 0;
            br_pem_decoder_setdest(&r->pc, r->in_cert ? grow_append : NULL,
                                   r->in_cert ? &r->der : NULL);
            break;
        }
        case BR_PEM_END_OBJ:
            if (r->in_cert) {
                if (r->der.oom)
                    return -1;
                int rc = add_anchor(a, r->der.p, r->der.len);
                if (rc < 0)
                    return -1;
                r->certs++;
                r->skipped += (size_t)rc;
            }
            r->in_cert = 0;
            break;
        case BR_PEM_ERROR:
            return -1;
        default:
            break;
        }
    }
    return 0;
}

/* BearSSL's PEM decoder takes only '\n' line ends: a bundle written with
 * CRLF (Windows tools, some CA downloads) would decode to nothing.  The
 * text is fed in segments cut at each '\r': one before '\n' is left out,
 * a lone one becomes '\n'. */
static int pem_decode(struct sg_anchors *a, struct pem_run *r, const void *pem, size_t len)
{
    const unsigned char *p = pem, *end = p + len;
    br_pem_decoder_init(&r->pc);
    while (p < end) {
        const unsigned char *cr = memchr(p, '\r', (size_t)(end - p));
        const unsigned char *stop = cr ? cr : end;
        if (pem_feed(a, r, p, (size_t)(stop - p)) != 0)
            return -1;
        if (!cr)
            break;
        if (cr + 1 == end || cr[1] != '\n') {
            if (pem_feed(a, r, (const unsigned char *)"\n", 1) != 0)
                return -1;
        }
        p = cr + 1;
    }
    return 0;
}

int sg_anchors_from_pem(struct sg_anchors *a, const void *pem, size_t len, size_t *bad)
{
    struct pem_run r;
    memset(&r, 0, sizeof(r));
    int rc = pem_decode(a, &r, pem, len);
    free(r.der.p);
    if (bad)
        *bad = r.skipped;
    return rc;
}

static int why_set(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int why_set(char *why, size_t cap, const char *fmt, ...)
{
    if (why && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int sg_anchors_load(struct sg_anchors *a, const char *path, char *why, size_t cap)
{
    if (why && cap)
        why[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return why_set(why, cap, "cannot open \"%s\": %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return why_set(why, cap, "\"%s\" is a directory, not a file of certificates", path);
    }
    unsigned char *buf = malloc(SG_TLS_BUNDLE_MAX);
    if (!buf) {
        fclose(f);
        return why_set(why, cap, "\"%s\": out of memory", path);
    }
    size_t len = fread(buf, 1, SG_TLS_BUNDLE_MAX, f);
    int rerr = ferror(f) ? errno : 0;
    int too_big = len == SG_TLS_BUNDLE_MAX && fgetc(f) != EOF;
    fclose(f);
    int rc = -1;
    struct pem_run r;
    memset(&r, 0, sizeof(r));
    if (rerr) {
        why_set(why, cap, "cannot read \"%s\": %s", path, strerror(rerr));
    } else if (too_big) {
        why_set(why, cap, "\"%s\" is larger than %u MiB", path, SG_TLS_BUNDLE_MAX >> 20);
    } else if (len == 0) {
        why_set(why, cap, "\"%s\" is empty", path);
    } else if (!memmem(buf, len, "-----BEGIN ", 11)) {
        /* not PEM: one DER certificate (an X.509 SEQUENCE) is accepted */
        int d = buf[0] == 0x30 ? add_anchor(a, buf, len) : 1;
        if (d == 0)
            rc = 0;
        else if (d < 0)
            why_set(why, cap, "\"%s\": out of memory", path);
        else
            why_set(why, cap,
                    "\"%s\" is neither PEM (no \"-----BEGIN\" line) nor a DER certificate", path);
    } else if (pem_decode(a, &r, buf, len) != 0) {
        why_set(why, cap, "\"%s\": malformed PEM (bad base64 or BEGIN/END lines)", path);
    } else if (r.certs == 0) {
        why_set(why, cap, "\"%s\" holds no certificate (%zu PEM object%s of other types)", path,
                r.objects, r.objects == 1 ? "" : "s");
    } else if (a->n == 0) {
        why_set(why, cap,
                "\"%s\": none of its %zu certificate%s could be parsed (corrupt, or a key type "
                "other than RSA or EC)",
                path, r.certs, r.certs == 1 ? "" : "s");
    } else {
        rc = 0;
    }
    free(r.der.p);
    free(buf);
    return rc;
}

static int hashed_name(const char *n)
{
    int i = 0;
    for (; i < 8; i++)
        if (!((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'a' && n[i] <= 'f')))
            return 0;
    if (n[i++] != '.' || n[i] < '0' || n[i] > '9')
        return 0;
    while (n[i] >= '0' && n[i] <= '9')
        i++;
    return n[i] == 0;
}

int sg_anchors_load_dirs(struct sg_anchors *a, const char *dirs, char *why, size_t cap)
{
    int files = 0;
    char dir[PATH_MAX];
    for (const char *p = dirs; *p;) {
        size_t n = strcspn(p, ":");
        if (n > 0 && n < sizeof(dir)) {
            memcpy(dir, p, n);
            dir[n] = 0;
            DIR *d = opendir(dir);
            if (!d)
                return why_set(why, cap, "SSL_CERT_DIR: cannot read \"%s\": %s", dir,
                               strerror(errno));
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (!hashed_name(e->d_name))
                    continue;
                char path[PATH_MAX + 260]; /* dir + "/" + a d_name of up to 255 */
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                size_t before = a->n;
                /* a file that does not load is skipped, as OpenSSL does */
                if (sg_anchors_load(a, path, NULL, 0) == 0 && a->n > before)
                    files++;
            }
            closedir(d);
        }
        p += n;
        if (*p == ':')
            p++;
    }
    return files;
}

const char *const sg_tls_system_cas[] = {
    "/etc/ssl/certs/ca-certificates.crt",                /* Debian, Ubuntu, Arch, Alpine */
    "/etc/pki/tls/certs/ca-bundle.crt",                  /* Fedora, RHEL, CentOS */
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* RHEL 7+ */
    "/etc/ssl/ca-bundle.pem",                            /* openSUSE, SLES */
    "/etc/ssl/cert.pem",                                 /* Alpine, BSDs */
    NULL,
};

const char *sg_tls_trust_file(const char *ca_file, const char **origin)
{
    if (ca_file) {
        *origin = "ca_file";
        return ca_file;
    }
    const char *env = getenv("SSL_CERT_FILE");
    if (env && env[0]) {
        *origin = "SSL_CERT_FILE";
        return env;
    }
    *origin = "system bundle";
    for (int i = 0; sg_tls_system_cas[i]; i++)
        if (access(sg_tls_system_cas[i], F_OK) == 0)
            return sg_tls_system_cas[i];
    return NULL;
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

int sg_tls_ctx_init(struct sg_tls_ctx *x, const char *ca_file, const char *host, char *why,
                    size_t cap)
{
    memset(x, 0, sizeof(*x));
    if (why && cap)
        why[0] = 0;
    if (strlen(host) >= sizeof(x->host)) {
        why_set(why, cap, "TLS: host name longer than %zu bytes", sizeof(x->host) - 1);
        return SEGOPS_ETLS;
    }
    snprintf(x->host, sizeof(x->host), "%s", host);
    const char *origin;
    const char *path = sg_tls_trust_file(ca_file, &origin);
    const char *dirs = ca_file ? NULL : getenv("SSL_CERT_DIR");
    if (dirs && dirs[0]) {
        /* OpenSSL's rule: the directories add to the file; with them, a
         * missing system bundle is no error */
        char reason[SG_TLS_WHY_MAX - 64];
        int n = sg_anchors_load_dirs(&x->anchors, dirs, reason, sizeof(reason));
        if (n < 0) {
            sg_anchors_free(&x->anchors);
            why_set(why, cap, "TLS: trusted CAs: %s", reason);
            return SEGOPS_ETLS;
        }
        if (!path || strcmp(origin, "system bundle") == 0) {
            if (path)
                (void)sg_anchors_load(&x->anchors, path, NULL, 0);
            if (x->anchors.n > 0)
                return 0;
            why_set(why, cap, "TLS: trusted CAs: no certificate in SSL_CERT_DIR \"%s\"%s%s",
                    dirs, path ? " nor in " : "", path ? path : "");
            return SEGOPS_ETLS;
        }
    }
    if (!path) {
        why_set(why, cap,
                "TLS: no system CA bundle found (tried %s, %s, %s, %s, %s): install "
                "ca-certificates, or set ca_file or SSL_CERT_FILE",
                sg_tls_system_cas[0], sg_tls_system_cas[1], sg_tls_system_cas[2],
                sg_tls_system_cas[3], sg_tls_system_cas[4]);
        return SEGOPS_ETLS;
    }
    char reason[SG_TLS_WHY_MAX - 64];
    if (sg_anchors_load(&x->anchors, path, reason, sizeof(reason)) != 0) {
        sg_anchors_free(&x->anchors);
        why_set(why, cap, "TLS: trusted CAs (%s): %s", origin, reason);
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
    t->ee = malloc(SG_X509_EE_MAX);
    if (!t->iobuf || !t->ee) {
        free(t->iobuf);
        free(t->ee);
        t->iobuf = t->ee = NULL;
        return SEGOPS_ENOMEM;
    }
    br_ssl_client_init_full(&t->cc, &t->xc, x->anchors.ta, x->anchors.n);
    /* the engine talks to the wrapper, which passes everything on to xc
     * and checks the name itself (x509.h) */
    sg_x509_init(&t->xw, &t->xc, t->ee, SG_X509_EE_MAX, x->host);
    br_ssl_engine_set_x509(&t->cc.eng, &t->xw.vtable);
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
    free(t->ee);
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
    /* SNI carries host names only: none for an IP literal (RFC 6066 §3).
     * BearSSL hands this name to the X.509 engine too; the wrapper ignores
     * it and checks its own (the same host, or the address). */
    const char *sni = sg_x509_is_ip(&t->xw) ? NULL : x->host;
    if (!br_ssl_client_reset(&t->cc, sni, x->have_session)) {
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

/* TLS alerts, RFC 8446 §6 and, for those TLS 1.3 dropped, RFC 5246 §7.2. */
const char *sg_tls_alert_name(int a)
{
    switch (a) {
    case 0: return "close_notify";
    case 10: return "unexpected_message";
    case 20: return "bad_record_mac";
    case 21: return "decryption_failed";
    case 22: return "record_overflow";
    case 30: return "decompression_failure";
    case 40: return "handshake_failure";
    case 41: return "no_certificate";
    case 42: return "bad_certificate";
    case 43: return "unsupported_certificate";
    case 44: return "certificate_revoked";
    case 45: return "certificate_expired";
    case 46: return "certificate_unknown";
    case 47: return "illegal_parameter";
    case 48: return "unknown_ca";
    case 49: return "access_denied";
    case 50: return "decode_error";
    case 51: return "decrypt_error";
    case 60: return "export_restriction";
    case 70: return "protocol_version";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 86: return "inappropriate_fallback";
    case 90: return "user_canceled";
    case 100: return "no_renegotiation";
    case 109: return "missing_extension";
    case 110: return "unsupported_extension";
    case 112: return "unrecognized_name";
    case 113: return "bad_certificate_status_response";
    case 115: return "unknown_psk_identity";
    case 116: return "certificate_required";
    case 120: return "no_application_protocol";
    default: return NULL;
    }
}

/* What the client offers, for hints: BearSSL's limits and tls.c's suites. */
#define SG_OFFER "the client offers TLS 1.2 only, ECDHE with AES-GCM, ChaCha20 or AES-CBC"

/* A hint for an alert the server sent, or "". */
static const char *alert_hint(int a)
{
    switch (a) {
    case 70:
        return "the server does not accept TLS 1.2 (" SG_OFFER "): allow TLS 1.2 on the server";
    case 40:
        return "no protocol version, cipher suite or curve in common (" SG_OFFER ")";
    case 71: return "the server wants stronger parameters than offered (" SG_OFFER ")";
    case 112: return "the server does not know the host name sent in SNI";
    case 116: return "the server asks for a client certificate, which the client does not have";
    default: return "";
    }
}

int sg_tls_permanent(int err)
{
    switch (err) {
    case BR_ERR_X509_NOT_TRUSTED:
    case BR_ERR_X509_DN_MISMATCH:
    case BR_ERR_X509_NOT_CA:
    case BR_ERR_X509_BAD_SERVER_NAME:
    case BR_ERR_X509_EXPIRED:
        return 1;
    default:
        return 0;
    }
}

void sg_tls_describe(const struct sg_tls *t, char *buf, size_t cap)
{
    int err = t->last_err;
    if (err >= BR_ERR_RECV_FATAL_ALERT && err < BR_ERR_SEND_FATAL_ALERT + 256) {
        int sent = err >= BR_ERR_SEND_FATAL_ALERT;
        int a = err - (sent ? BR_ERR_SEND_FATAL_ALERT : BR_ERR_RECV_FATAL_ALERT);
        const char *name = sg_tls_alert_name(a);
        const char *hint = sent ? "" : alert_hint(a);
        snprintf(buf, cap, "%s fatal alert %s (%d)%s%s (BearSSL error %d)",
                 sent ? "the client sent" : "the server sent", name ? name : "unknown", a,
                 hint[0] ? ": " : "", hint, err);
        return;
    }
    if (err == BR_ERR_X509_BAD_SERVER_NAME && t->xw.why != SG_X509_OK) {
        /* the wrapper's own check: say what it looked for and found */
        const struct sg_x509 *w = &t->xw;
        snprintf(buf, cap, "certificate does not match the %s %s: %s%s%s (BearSSL error %d)",
                 w->iplen ? "address" : "host name", w->name, sg_x509_why_text(w->why),
                 w->seen[0] ? "; it names " : "", w->seen, err);
        return;
    }
    if (err == BR_ERR_X509_EXPIRED) {
        /* which date, when it is the server's own certificate's */
        const char *d = t->xw.dates;
        snprintf(buf, cap, "%s%s; not retried: fix the server's certificate or this machine's "
                 "clock (BearSSL error %d)",
                 d[0] ? "the server's certificate " : "a CA certificate of the server's "
                                                      "chain expired or is not yet valid",
                 d, err);
        return;
    }
    snprintf(buf, cap, "%s%s (BearSSL error %d)", sg_tls_reason(err),
             sg_tls_permanent(err) ? "; not retried: fix the server's certificate or ca_file"
                                   : "",
             err);
}

const char *sg_tls_reason(int err)
{
    switch (err) {
    case BR_ERR_X509_NOT_TRUSTED:
        return "certificate not trusted (no chain to a trusted CA: unknown CA, or an "
               "intermediate certificate missing on the server)";
    case BR_ERR_X509_BAD_SERVER_NAME:
        return "certificate does not match the host name";
    case BR_ERR_X509_EXPIRED:
        return "certificate expired or not yet valid (check the server's certificate and "
               "this machine's clock)";
    case BR_ERR_X509_DN_MISMATCH:
        return "certificate chain broken (an issuer does not match the next certificate)";
    case BR_ERR_X509_NOT_CA:
        return "certificate chain invalid (an issuer is not a CA, or a path length limit "
               "is exceeded)";
    case BR_ERR_X509_BAD_SIGNATURE:
        return "certificate chain has a bad signature";
    case BR_ERR_X509_FORBIDDEN_KEY_USAGE:
        return "certificate's key usage forbids TLS server authentication";
    case BR_ERR_X509_WEAK_PUBLIC_KEY:
        return "certificate's public key is too small";
    case BR_ERR_X509_CRITICAL_EXTENSION:
        return "certificate has an unknown critical extension";
    case BR_ERR_X509_EMPTY_CHAIN:
        return "the server sent no certificate";
    case BR_ERR_X509_TIME_UNKNOWN:
        return "the current time is unknown: certificate dates cannot be checked";
    case BR_ERR_BAD_VERSION:
    case BR_ERR_UNSUPPORTED_VERSION:
        return "the server chose a protocol version other than TLS 1.2 (" SG_OFFER ")";
    case BR_ERR_BAD_CIPHER_SUITE:
        return "the server chose a cipher suite that was not offered (" SG_OFFER ")";
    case BR_ERR_INVALID_ALGORITHM:
        return "the server chose an unsupported curve or signature algorithm";
    case BR_ERR_BAD_SIGNATURE:
        return "the server's key exchange signature is invalid";
    case BR_ERR_WRONG_KEY_USAGE:
        return "the server's certificate key does not fit the chosen cipher suite";
    case BR_ERR_BAD_MAC:
        return "a record failed its integrity check (data corrupted in transit)";
    case BR_ERR_BAD_FINISHED:
        return "the handshake's Finished message did not verify";
    case BR_ERR_IO:
        return "I/O error or unexpected data during TLS";
    default:
        if (err >= BR_ERR_SEND_FATAL_ALERT)
            return "the client sent a fatal alert";
        if (err >= BR_ERR_RECV_FATAL_ALERT)
            return "the server sent a fatal alert";
        if (err >= 32 && err < 64)
            return "certificate malformed or unsupported";
        return "TLS protocol error";
    }
}
