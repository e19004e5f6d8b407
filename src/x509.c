/* SPDX-License-Identifier: MIT */
/*
 * x509.c -- the server certificate check (see x509.h): BearSSL's minimal
 * engine validates the chain, this file checks the name against the
 * end-entity certificate's subjectAltName, with a small bounded DER reader.
 *
 * Invariants of the DER reader: every TLV is read from a [p, end) window
 * that its container's length bounds; a length that runs past the window,
 * an indefinite length, a length over 4 bytes or a multi-byte tag is an
 * error; no read happens at or beyond end.
 */
#include "x509.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------- DER reader */

struct tlv {
    unsigned tag;
    const unsigned char *val; /* contents */
    size_t len;
    const unsigned char *next; /* first byte after this TLV */
};

/* Reads the TLV at *p (p < end).  0, or -1 when malformed. */
static int read_tlv(const unsigned char *p, const unsigned char *end, struct tlv *t)
{
    size_t n = (size_t)(end - p);
    if (n < 2 || (p[0] & 0x1f) == 0x1f)
        return -1;
    t->tag = p[0];
    size_t len = p[1], hdr = 2;
    if (len & 0x80) {
        size_t k = len & 0x7f;
        if (k == 0 || k > 4 || n - 2 < k)
            return -1;
        len = 0;
        for (size_t i = 0; i < k; i++)
            len = (len << 8) | p[2 + i];
        hdr += k;
    }
    if (len > n - hdr)
        return -1;
    t->val = p + hdr;
    t->len = len;
    t->next = p + hdr + len;
    return 0;
}

/* ------------------------------------------------------------ matching */

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int eq_nocase(const unsigned char *a, const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(b[i]))
            return 0;
    return 1;
}

/* A dNSName pattern against the host name: exact (ASCII case-insensitive),
 * or "*.rest" for one non-empty leftmost label then ".rest". */
static int dns_match(const unsigned char *pat, size_t pl, const char *name)
{
    const unsigned char *nm = (const unsigned char *)name;
    size_t nl = strlen(name);
    if (pl >= 2 && pat[0] == '*' && pat[1] == '.') {
        const unsigned char *dot = memchr(nm, '.', nl);
        if (!dot || dot == nm)
            return 0;
        size_t rest = nl - (size_t)(dot - nm);
        return rest == pl - 1 && eq_nocase(dot, pat + 1, rest);
    }
    return pl == nl && eq_nocase(pat, nm, nl);
}

/* Appends one SAN entry to seen, as text a log line can carry. */
static void note(char *seen, size_t cap, size_t *used, unsigned tag, const unsigned char *v,
                 size_t len)
{
    char item[64];
    size_t k = 0;
    if (!seen || cap == 0)
        return;
    if (tag == 0x87 && (len == 4 || len == 16)) {
        if (!inet_ntop(len == 4 ? AF_INET : AF_INET6, v, item, sizeof(item)))
            snprintf(item, sizeof(item), "?");
        k = strlen(item);
    } else if (tag == 0x82) {
        for (size_t i = 0; i < len && k < sizeof(item) - 4; i++)
            item[k++] = v[i] > 0x20 && v[i] < 0x7f ? (char)v[i] : '?';
        if (len > k)
            item[k++] = '.', item[k++] = '.', item[k++] = '.';
        item[k] = 0;
    } else {
        return; /* other kinds are not names a host can have */
    }
    int w = snprintf(seen + *used, cap - *used, "%s%s", *used ? ", " : "", item);
    if (w < 0 || (size_t)w >= cap - *used) {
        /* full: end with "..." if there is room, and stop */
        if (cap >= 4)
            memcpy(seen + cap - 4, "...", 4);
        *used = cap - 1;
        return;
    }
    *used += (size_t)w;
}

/* OID 2.5.29.17, subjectAltName */
static const unsigned char oid_san[] = {0x55, 0x1d, 0x11};

int sg_x509_check_name(const unsigned char *der, size_t len, const char *name,
                       const unsigned char *ip, size_t iplen, char *seen, size_t cap)
{
    struct tlv cert, tbs, f, exts, ext, e, names, gn;
    const unsigned char *end = der + len, *p;
    size_t used = 0;
    int found = 0, match = 0;

    if (seen && cap)
        seen[0] = 0;
    if (read_tlv(der, end, &cert) || cert.tag != 0x30)
        return SG_X509_BAD_DER;
    if (read_tlv(cert.val, cert.next, &tbs) || tbs.tag != 0x30)
        return SG_X509_BAD_DER;
    /* tbsCertificate: version [0], serial, signature, issuer, validity,
     * subject, spki, [1], [2], extensions [3] EXPLICIT */
    for (p = tbs.val; p < tbs.next; p = f.next) {
        if (read_tlv(p, tbs.next, &f))
            return SG_X509_BAD_DER;
        if (f.tag != 0xa3)
            continue;
        if (read_tlv(f.val, f.next, &exts) || exts.tag != 0x30 || exts.next != f.next)
            return SG_X509_BAD_DER;
        for (const unsigned char *q = exts.val; q < exts.next; q = ext.next) {
            /* Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT
             * FALSE, extnValue OCTET STRING } */
            if (read_tlv(q, exts.next, &ext) || ext.tag != 0x30)
                return SG_X509_BAD_DER;
            if (read_tlv(ext.val, ext.next, &e) || e.tag != 0x06)
                return SG_X509_BAD_DER;
            if (e.len != sizeof(oid_san) || memcmp(e.val, oid_san, sizeof(oid_san)) != 0)
                continue;
            if (found)
                return SG_X509_BAD_DER; /* RFC 5280 §4.2: at most once */
            found = 1;
            if (read_tlv(e.next, ext.next, &e))
                return SG_X509_BAD_DER;
            if (e.tag == 0x01 && read_tlv(e.next, ext.next, &e))
                return SG_X509_BAD_DER;
            if (e.tag != 0x04 || e.next != ext.next)
                return SG_X509_BAD_DER;
            /* GeneralNames ::= SEQUENCE OF GeneralName, filling extnValue */
            if (read_tlv(e.val, e.next, &names) || names.tag != 0x30 || names.next != e.next)
                return SG_X509_BAD_DER;
            for (const unsigned char *r = names.val; r < names.next; r = gn.next) {
                if (read_tlv(r, names.next, &gn))
                    return SG_X509_BAD_DER;
                note(seen, cap, &used, gn.tag, gn.val, gn.len);
                if (iplen && gn.tag == 0x87)
                    match |= gn.len == iplen && memcmp(gn.val, ip, iplen) == 0;
                else if (!iplen && gn.tag == 0x82)
                    match |= dns_match(gn.val, gn.len, name);
            }
        }
    }
    if (!found)
        return SG_X509_NO_SAN;
    if (match)
        return SG_X509_OK;
    return iplen ? SG_X509_IP_MISMATCH : SG_X509_NAME_MISMATCH;
}

/* One Time (UTCTime or GeneralizedTime, DER: seconds and 'Z' present)
 * as 14 digits. */
static int der_time(const struct tlv *t, char out[15])
{
    size_t digits = t->tag == 0x17 ? 12 : t->tag == 0x18 ? 14 : 0;
    if (digits == 0 || t->len != digits + 1 || t->val[digits] != 'Z')
        return -1;
    for (size_t i = 0; i < digits; i++)
        if (t->val[i] < '0' || t->val[i] > '9')
            return -1;
    if (digits == 12) {
        /* RFC 5280 4.1.2.5.1: YY >= 50 is 19YY, else 20YY */
        int yy = (t->val[0] - '0') * 10 + (t->val[1] - '0');
        memcpy(out, yy >= 50 ? "19" : "20", 2);
        memcpy(out + 2, t->val, 12);
    } else {
        memcpy(out, t->val, 14);
    }
    out[14] = 0;
    return 0;
}

int sg_x509_validity(const unsigned char *der, size_t len, char not_before[15],
                     char not_after[15])
{
    struct tlv cert, tbs, f, nb, na;
    const unsigned char *end = der + len, *p;
    if (read_tlv(der, end, &cert) || cert.tag != 0x30)
        return -1;
    if (read_tlv(cert.val, cert.next, &tbs) || tbs.tag != 0x30)
        return -1;
    /* [0] version (optional), serial, signature, issuer, validity */
    p = tbs.val;
    if (read_tlv(p, tbs.next, &f))
        return -1;
    if (f.tag == 0xa0)
        p = f.next;
    for (int i = 0; i < 4; i++) {
        if (p >= tbs.next || read_tlv(p, tbs.next, &f))
            return -1;
        p = f.next;
    }
    if (f.tag != 0x30 || read_tlv(f.val, f.next, &nb) || read_tlv(nb.next, f.next, &na) ||
        na.next != f.next)
        return -1;
    return der_time(&nb, not_before) || der_time(&na, not_after) ? -1 : 0;
}

/* "YYYYMMDDHHMMSS" as "YYYY-MM-DD HH:MM:SS UTC" */
static void fmt_time(const char *t, char out[24])
{
    snprintf(out, 24, "%.4s-%.2s-%.2s %.2s:%.2s:%.2s UTC", t, t + 4, t + 6, t + 8, t + 10,
             t + 12);
}

void sg_x509_dates_text(const char *not_before, const char *not_after, const char *now,
                        char *buf, size_t cap)
{
    char t[24];
    if (cap == 0)
        return;
    buf[0] = 0;
    /* 14-digit times compare as strings */
    if (strcmp(now, not_after) > 0) {
        fmt_time(not_after, t);
        snprintf(buf, cap, "expired on %s", t);
    } else if (strcmp(now, not_before) < 0) {
        fmt_time(not_before, t);
        snprintf(buf, cap, "not valid before %s", t);
    }
}

const char *sg_x509_why_text(int why)
{
    switch (why) {
    case SG_X509_OK: return "the certificate matches";
    case SG_X509_NO_SAN:
        return "the certificate has no subjectAltName (a name only in the subject's CN is "
               "not accepted)";
    case SG_X509_NAME_MISMATCH: return "no DNS name of the certificate matches";
    case SG_X509_IP_MISMATCH: return "no IP address of the certificate matches";
    case SG_X509_BAD_DER: return "the certificate's subjectAltName is malformed";
    case SG_X509_TOO_BIG: return "the server certificate is too large to check (over 16 KiB)";
    default: return "name check failed";
    }
}

/* ---------------------------------------------------------- the engine */

static struct sg_x509 *self(const br_x509_class **ctx)
{
    return (struct sg_x509 *)(void *)ctx; /* vtable is the first member */
}

static void w_start_chain(const br_x509_class **ctx, const char *server_name)
{
    struct sg_x509 *w = self(ctx);
    (void)server_name; /* ours is w->name; the inner engine checks none */
    w->depth = 0;
    w->ee_len = 0;
    w->ee_over = 0;
    w->why = SG_X509_OK;
    w->seen[0] = 0;
    w->dates[0] = 0;
    w->inner->vtable->start_chain(&w->inner->vtable, NULL);
}

static void w_start_cert(const br_x509_class **ctx, uint32_t length)
{
    struct sg_x509 *w = self(ctx);
    if (w->depth == 0 && length > w->ee_cap)
        w->ee_over = 1;
    w->inner->vtable->start_cert(&w->inner->vtable, length);
}

static void w_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
    struct sg_x509 *w = self(ctx);
    if (w->depth == 0 && !w->ee_over) {
        if (len > w->ee_cap - w->ee_len) {
            w->ee_over = 1;
        } else {
            memcpy(w->ee + w->ee_len, buf, len);
            w->ee_len += len;
        }
    }
    w->inner->vtable->append(&w->inner->vtable, buf, len);
}

static void w_end_cert(const br_x509_class **ctx)
{
    struct sg_x509 *w = self(ctx);
    w->inner->vtable->end_cert(&w->inner->vtable);
    w->depth++;
}

static unsigned w_end_chain(const br_x509_class **ctx)
{
    struct sg_x509 *w = self(ctx);
    unsigned r = w->inner->vtable->end_chain(&w->inner->vtable);
    if (r == BR_ERR_X509_EXPIRED && !w->ee_over) {
        /* say which date of the server's own certificate, if it is one of
         * its; BearSSL checks against time() too */
        char nb[15], na[15], now[15];
        time_t tt = time(NULL);
        struct tm tm;
        if (sg_x509_validity(w->ee, w->ee_len, nb, na) == 0 && gmtime_r(&tt, &tm) &&
            strftime(now, sizeof(now), "%Y%m%d%H%M%S", &tm) == 14)
            sg_x509_dates_text(nb, na, now, w->dates, sizeof(w->dates));
    }
    if (r != 0)
        return r; /* the chain failed: that is the reason to report */
    if (w->ee_over)
        w->why = SG_X509_TOO_BIG;
    else
        w->why = sg_x509_check_name(w->ee, w->ee_len, w->name, w->ip, w->iplen, w->seen,
                                    sizeof(w->seen));
    return w->why == SG_X509_OK ? 0 : BR_ERR_X509_BAD_SERVER_NAME;
}

static const br_x509_pkey *w_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
    const struct sg_x509 *w = (const struct sg_x509 *)(const void *)ctx;
    return w->inner->vtable->get_pkey((const br_x509_class *const *)&w->inner->vtable, usages);
}

static const br_x509_class sg_x509_vtable = {
    sizeof(struct sg_x509), w_start_chain, w_start_cert, w_append,
    w_end_cert,             w_end_chain,   w_get_pkey,
};

void sg_x509_init(struct sg_x509 *w, br_x509_minimal_context *inner, unsigned char *ee,
                  size_t ee_cap, const char *name)
{
    memset(w, 0, sizeof(*w));
    w->vtable = &sg_x509_vtable;
    w->inner = inner;
    w->ee = ee;
    w->ee_cap = ee_cap;
    snprintf(w->name, sizeof(w->name), "%s", name);
    if (inet_pton(AF_INET, w->name, w->ip) == 1)
        w->iplen = 4;
    else if (inet_pton(AF_INET6, w->name, w->ip) == 1)
        w->iplen = 16;
}

int sg_x509_is_ip(const struct sg_x509 *w)
{
    return w->iplen != 0;
}
