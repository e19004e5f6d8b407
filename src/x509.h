/* SPDX-License-Identifier: MIT */
/*
 * x509.h -- internal: the server certificate check.
 *
 * BearSSL's minimal X.509 engine (br_x509_minimal) validates the chain --
 * signatures up to a trust anchor, validity dates, key usage -- but matches
 * the server name against DNS names only, and falls back to the subject's
 * CN when a certificate has no subjectAltName.  So it refuses a certificate
 * with IP:127.0.0.1 for https://127.0.0.1 and accepts a CN-only one.
 *
 * struct sg_x509 is an X.509 engine (a br_x509_class) wrapped around a
 * br_x509_minimal_context: every call is passed on to it, with no server
 * name, so it validates the chain and checks no name; meanwhile the wrapper
 * keeps a copy of the end-entity certificate (the first of the chain), and
 * once the chain is valid it checks the name itself, from the
 * subjectAltName extension only (RFC 6125 / RFC 9110 §4.3.4, as Go, Chrome
 * and Firefox do):
 *   - an IP literal host (4 or 16 bytes) matches an iPAddress entry of the
 *     same bytes; DNS entries never match an address;
 *   - a name matches a dNSName entry, ASCII case-insensitive, and "*.rest"
 *     matches one non-empty leftmost label followed by ".rest" (BearSSL's
 *     rule);
 *   - no subjectAltName: refused, whatever the CN says.
 * A failed check ends the chain with BR_ERR_X509_BAD_SERVER_NAME, the
 * engine sends its alert, and sg_x509.why says which case it was.
 *
 * No I/O, no allocation: the end-entity copy goes to a buffer the caller
 * gives (SG_X509_EE_MAX bytes); a larger certificate is refused
 * (SG_X509_TOO_BIG) rather than half-checked.
 */
#ifndef SG_X509_H
#define SG_X509_H

#include <stddef.h>
#include <stdint.h>

#include <bearssl.h>

#define SG_X509_EE_MAX 16384 /* end-entity certificates up to this size */

/* Outcome of the name check (sg_x509.why, sg_x509_check_name()). */
enum sg_x509_why {
    SG_X509_OK = 0,
    SG_X509_NO_SAN,         /* no subjectAltName extension */
    SG_X509_NAME_MISMATCH,  /* no dNSName entry matches the host name */
    SG_X509_IP_MISMATCH,    /* no iPAddress entry matches the address */
    SG_X509_BAD_DER,        /* the certificate or its extension is malformed */
    SG_X509_TOO_BIG,        /* end-entity certificate over SG_X509_EE_MAX */
};

struct sg_x509 {
    const br_x509_class *vtable;     /* first: BearSSL holds &vtable */
    br_x509_minimal_context *inner;  /* chain validation */
    unsigned char *ee;               /* the end-entity certificate's DER */
    size_t ee_cap, ee_len;
    int ee_over;                     /* it did not fit ee */
    uint32_t depth;                  /* certificates ended so far */
    char name[256];                  /* the host, without a trailing dot */
    unsigned char ip[16];            /* the host as an address, when it is one */
    size_t iplen;                    /* 4, 16, or 0 for a name */
    int why;                         /* enum sg_x509_why of the last chain */
    char seen[160];                  /* the certificate's SAN entries, for a
                                        message ("" when none) */
    char dates[80];                  /* the chain failed its dates: which
                                        date of the server's certificate
                                        ("expired on 2020-02-01 00:00:00
                                        UTC"), or "" when its own are valid
                                        (then a CA certificate's are not) */
};

/* Sets w up around inner (already initialised, e.g. by
 * br_ssl_client_init_full) for host `name` (an IP literal without
 * brackets, or a DNS name), with ee_cap bytes at ee for the end-entity
 * certificate.  Install it with br_ssl_engine_set_x509(eng, &w->vtable). */
void sg_x509_init(struct sg_x509 *w, br_x509_minimal_context *inner, unsigned char *ee,
                  size_t ee_cap, const char *name);

/* 1 when name is an IPv4 or IPv6 literal (sent without SNI: RFC 6066 §3). */
int sg_x509_is_ip(const struct sg_x509 *w);

/* The name check alone, on a DER certificate: name (when iplen is 0) or
 * the address ip[0..iplen) against its subjectAltName.  Returns an enum
 * sg_x509_why.  seen (may be NULL) gets the SAN entries as text, ", "
 * separated, truncated to cap bytes, NUL-terminated.  Bounded: reads only
 * der[0..len), recursion-free, and any length that overruns its container
 * is SG_X509_BAD_DER. */
int sg_x509_check_name(const unsigned char *der, size_t len, const char *name,
                       const unsigned char *ip, size_t iplen, char *seen, size_t cap);

/* The validity of a DER certificate as two 14-digit UTC times
 * "YYYYMMDDHHMMSS" (UTCTime years 50..99 are 19xx, as RFC 5280 §4.1.2.5.1
 * says).  0, or -1 when the certificate or its dates are malformed.
 * Bounded like sg_x509_check_name(). */
int sg_x509_validity(const unsigned char *der, size_t len, char not_before[15],
                     char not_after[15]);

/* What is wrong with the dates of a certificate valid from not_before to
 * not_after (sg_x509_validity()) at `now` (same form): "expired on
 * 2020-02-01 00:00:00 UTC", "not valid before 2030-01-01 00:00:00 UTC", or
 * "" when now is inside.  Writes at most cap bytes. */
void sg_x509_dates_text(const char *not_before, const char *not_after, const char *now,
                        char *buf, size_t cap);

/* A phrase for an enum sg_x509_why ("the certificate has no
 * subjectAltName ..."). */
const char *sg_x509_why_text(int why);

#endif
