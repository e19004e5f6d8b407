/* SPDX-License-Identifier: MIT */
/*
 * test_x509.c -- src/x509.c: the name check on the end-entity certificate
 * (subjectAltName: iPAddress for addresses, dNSName for names, nothing
 * from the CN) and its bounded DER reader.  Certificates are built here
 * byte by byte (only the structure the check walks), so that malformed
 * ones can be made too; openssl-made ones go through the TLS tests.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "x509.h"

struct buf {
    unsigned char b[8192];
    size_t n;
};

/* Appends tag, DER length, value. */
static void tlv(struct buf *o, unsigned tag, const void *v, size_t n)
{
    o->b[o->n++] = (unsigned char)tag;
    if (n < 128) {
        o->b[o->n++] = (unsigned char)n;
    } else if (n < 256) {
        o->b[o->n++] = 0x81;
        o->b[o->n++] = (unsigned char)n;
    } else {
        o->b[o->n++] = 0x82;
        o->b[o->n++] = (unsigned char)(n >> 8);
        o->b[o->n++] = (unsigned char)n;
    }
    memcpy(o->b + o->n, v, n);
    o->n += n;
}

static void wrap(struct buf *o, unsigned tag, const struct buf *in)
{
    tlv(o, tag, in->b, in->n);
}

/* The validity the next cert() writes: DER of the two Times (n == 0: an
 * empty SEQUENCE). */
static struct buf validity;

/* A certificate whose tbsCertificate holds a few ordinary fields and the
 * given extensions (DER of the Extension SEQUENCEs, concatenated; NULL: no
 * extensions field at all). */
static void cert(struct buf *out, const struct buf *exts)
{
    struct buf tbs = {0}, e3 = {0}, seq = {0}, c = {0};
    static const unsigned char ver[] = {0x02, 0x01, 0x02}, serial[] = {0x01, 0x02};
    static const unsigned char cn[] = {0x31, 0x12, 0x30, 0x10, 0x06, 0x03, 0x55, 0x04, 0x03,
                                       0x0c, 0x09, 'l',  'o',  'c',  'a',  'l',  'h',  'o',
                                       's',  't'};
    tlv(&tbs, 0xa0, ver, sizeof(ver));
    tlv(&tbs, 0x02, serial, sizeof(serial));
    tlv(&tbs, 0x30, "", 0);         /* signature algorithm (empty here) */
    tlv(&tbs, 0x30, cn, sizeof(cn)); /* issuer */
    tlv(&tbs, 0x30, validity.b, validity.n); /* validity */
    tlv(&tbs, 0x30, cn, sizeof(cn)); /* subject: CN=localhost */
    tlv(&tbs, 0x30, "", 0);         /* subjectPublicKeyInfo */
    if (exts) {
        wrap(&seq, 0x30, exts);
        wrap(&e3, 0xa3, &seq);
        memcpy(tbs.b + tbs.n, e3.b, e3.n);
        tbs.n += e3.n;
    }
    wrap(&c, 0x30, &tbs);
    tlv(&c, 0x30, "", 0); /* signatureAlgorithm */
    tlv(&c, 0x03, "\0", 1); /* signature */
    out->n = 0;
    wrap(out, 0x30, &c);
}

/* Appends an Extension: OID 2.5.29.17 (or another), optional critical
 * flag, and the GeneralNames given as raw DER. */
static void ext(struct buf *exts, const unsigned char *oid, size_t oidlen, int critical,
                const struct buf *names)
{
    struct buf e = {0}, gn = {0};
    tlv(&e, 0x06, oid, oidlen);
    if (critical)
        tlv(&e, 0x01, "\xff", 1);
    wrap(&gn, 0x30, names);
    wrap(&e, 0x04, &gn);
    wrap(exts, 0x30, &e);
}

static const unsigned char SAN[] = {0x55, 0x1d, 0x11};
static const unsigned char KU[] = {0x55, 0x1d, 0x0f};

static void dns(struct buf *names, const char *s)
{
    tlv(names, 0x82, s, strlen(s));
}

static void ip(struct buf *names, const void *a, size_t n)
{
    tlv(names, 0x87, a, n);
}

static const unsigned char LO4[4] = {127, 0, 0, 1};
static const unsigned char LO6[16] = {[15] = 1};
static const unsigned char OTHER4[4] = {10, 9, 8, 7};

static int check(const struct buf *c, const char *name, char *seen, size_t cap)
{
    unsigned char a[16];
    size_t n = 0;
    if (inet_pton(AF_INET, name, a) == 1)
        n = 4;
    else if (inet_pton(AF_INET6, name, a) == 1)
        n = 16;
    return sg_x509_check_name(c->b, c->n, name, a, n, seen, cap);
}

Test(x509, an_ip_literal_matches_an_ip_address_entry)
{
    struct buf names = {0}, exts = {0}, c;
    ip(&names, LO4, 4);
    ip(&names, LO6, 16);
    ext(&exts, SAN, sizeof(SAN), 0, &names);
    cert(&c, &exts);
    char seen[160];
    cr_expect_eq(check(&c, "127.0.0.1", seen, sizeof(seen)), SG_X509_OK);
    cr_expect_str_eq(seen, "127.0.0.1, ::1");
    cr_expect_eq(check(&c, "::1", NULL, 0), SG_X509_OK);
    cr_expect_eq(check(&c, "127.0.0.2", NULL, 0), SG_X509_IP_MISMATCH);
    cr_expect_eq(check(&c, "::2", NULL, 0), SG_X509_IP_MISMATCH);
    /* ::ffff:127.0.0.1 is 16 bytes: not the 4-byte entry */
    cr_expect_eq(check(&c, "::ffff:127.0.0.1", NULL, 0), SG_X509_IP_MISMATCH);
    cr_expect_eq(check(&c, "localhost", NULL, 0), SG_X509_NAME_MISMATCH,
                 "a name never matches an address entry");
}

Test(x509, an_ip_literal_never_matches_a_dns_entry)
{
    struct buf names = {0}, exts = {0}, c;
    dns(&names, "127.0.0.1");
    ip(&names, OTHER4, 4);
    ext(&exts, SAN, sizeof(SAN), 0, &names);
    cert(&c, &exts);
    char seen[160];
    cr_expect_eq(check(&c, "127.0.0.1", seen, sizeof(seen)), SG_X509_IP_MISMATCH);
    cr_expect_str_eq(seen, "127.0.0.1, 10.9.8.7");
}

Test(x509, names_match_dns_entries_case_insensitively)
{
    struct buf names = {0}, exts = {0}, c;
    dns(&names, "other.example");
    dns(&names, "API.SegOps.AI");
    ext(&exts, SAN, sizeof(SAN), 1 /* critical: no difference */, &names);
    cert(&c, &exts);
    cr_expect_eq(check(&c, "api.segops.ai", NULL, 0), SG_X509_OK);
    cr_expect_eq(check(&c, "other.example", NULL, 0), SG_X509_OK);
    cr_expect_eq(check(&c, "segops.ai", NULL, 0), SG_X509_NAME_MISMATCH);
    cr_expect_eq(check(&c, "api.segops.ai.evil", NULL, 0), SG_X509_NAME_MISMATCH);
    cr_expect_eq(check(&c, "api.segops.a", NULL, 0), SG_X509_NAME_MISMATCH);
}

Test(x509, a_wildcard_stands_for_exactly_one_leftmost_label)
{
    struct buf names = {0}, exts = {0}, c;
    dns(&names, "*.segops.ai");
    ext(&exts, SAN, sizeof(SAN), 0, &names);
    cert(&c, &exts);
    cr_expect_eq(check(&c, "api.segops.ai", NULL, 0), SG_X509_OK);
    cr_expect_eq(check(&c, "x_y.segops.ai", NULL, 0), SG_X509_OK);
    cr_expect_eq(check(&c, "segops.ai", NULL, 0), SG_X509_NAME_MISMATCH);
    cr_expect_eq(check(&c, "a.b.segops.ai", NULL, 0), SG_X509_NAME_MISMATCH);
    cr_expect_eq(check(&c, "apisegops.ai", NULL, 0), SG_X509_NAME_MISMATCH);
    /* '*' elsewhere is a plain byte */
    struct buf n2 = {0}, e2 = {0}, c2;
    dns(&n2, "a*.segops.ai");
    dns(&n2, "api.*.ai");
    ext(&e2, SAN, sizeof(SAN), 0, &n2);
    cert(&c2, &e2);
    cr_expect_eq(check(&c2, "ab.segops.ai", NULL, 0), SG_X509_NAME_MISMATCH);
    cr_expect_eq(check(&c2, "api.segops.ai", NULL, 0), SG_X509_NAME_MISMATCH);
}

Test(x509, a_certificate_without_subject_alt_name_is_refused)
{
    struct buf c, exts = {0}, names = {0};
    cert(&c, NULL); /* CN=localhost, no extensions */
    cr_expect_eq(check(&c, "localhost", NULL, 0), SG_X509_NO_SAN);
    cr_expect_eq(check(&c, "127.0.0.1", NULL, 0), SG_X509_NO_SAN);
    /* extensions, but not this one */
    dns(&names, "localhost");
    ext(&exts, KU, sizeof(KU), 1, &names);
    cert(&c, &exts);
    cr_expect_eq(check(&c, "localhost", NULL, 0), SG_X509_NO_SAN);
}

Test(x509, an_empty_or_repeated_subject_alt_name)
{
    struct buf none = {0}, exts = {0}, c;
    ext(&exts, SAN, sizeof(SAN), 0, &none);
    cert(&c, &exts);
    cr_expect_eq(check(&c, "localhost", NULL, 0), SG_X509_NAME_MISMATCH);
    struct buf names = {0}, two = {0};
    dns(&names, "localhost");
    ext(&two, SAN, sizeof(SAN), 0, &names);
    ext(&two, SAN, sizeof(SAN), 0, &names);
    cert(&c, &two);
    cr_expect_eq(check(&c, "localhost", NULL, 0), SG_X509_BAD_DER, "RFC 5280: at most once");
}

Test(x509, seen_is_bounded_and_printable)
{
    struct buf names = {0}, exts = {0}, c;
    for (int i = 0; i < 40; i++)
        dns(&names, "a-rather-long-name.example.invalid");
    dns(&names, "bad\nname\x01");
    ext(&exts, SAN, sizeof(SAN), 0, &names);
    cert(&c, &exts);
    char seen[64];
    memset(seen, 'x', sizeof(seen));
    cr_expect_eq(sg_x509_check_name(c.b, c.n, "localhost", NULL, 0, seen, sizeof(seen)),
                 SG_X509_NAME_MISMATCH);
    cr_expect_lt(strlen(seen), sizeof(seen));
    cr_expect(strcmp(seen + strlen(seen) - 3, "...") == 0, "%s", seen);
    struct buf n2 = {0}, e2 = {0};
    dns(&n2, "bad\nname\x01");
    ext(&e2, SAN, sizeof(SAN), 0, &n2);
    cert(&c, &e2);
    char s2[64];
    sg_x509_check_name(c.b, c.n, "localhost", NULL, 0, s2, sizeof(s2));
    cr_expect_str_eq(s2, "bad?name?");
}

Test(x509, malformed_der_is_refused)
{
    static const unsigned char bad[][8] = {
        {0x30, 0x80, 0x00, 0x00},             /* indefinite length */
        {0x30, 0x85, 1, 0, 0, 0, 0},          /* 5-byte length */
        {0x30, 0x05, 0x30, 0x03},             /* longer than its input */
        {0x1f, 0x81, 0x01, 0x00},             /* multi-byte tag */
        {0x31, 0x02, 0x30, 0x00},             /* not a SEQUENCE */
        {0x30, 0x02, 0x30, 0x00},             /* tbs empty: no SAN, but well formed */
    };
    for (size_t i = 0; i + 1 < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(sg_x509_check_name(bad[i], 7, "h", NULL, 0, NULL, 0), SG_X509_BAD_DER,
                     "case %zu", i);
    cr_expect_eq(sg_x509_check_name(bad[5], 4, "h", NULL, 0, NULL, 0), SG_X509_NO_SAN);
    cr_expect_eq(sg_x509_check_name(bad[0], 0, "h", NULL, 0, NULL, 0), SG_X509_BAD_DER);
    cr_expect_eq(sg_x509_check_name(bad[0], 1, "h", NULL, 0, NULL, 0), SG_X509_BAD_DER);
}

/* Every prefix of a good certificate, placed right before a page that
 * cannot be read: always refused as malformed, never a read past the end
 * (which would fault).  Longer-than-needed input is fine: trailing bytes
 * are not the certificate's. */
Test(x509, every_truncation_is_refused_without_reading_past_the_end)
{
    struct buf names = {0}, exts = {0}, c;
    dns(&names, "localhost");
    ip(&names, LO4, 4);
    ext(&exts, KU, sizeof(KU), 1, &names);
    ext(&exts, SAN, sizeof(SAN), 0, &names);
    cert(&c, &exts);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    cr_assert_lt(c.n, page);
    unsigned char *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                            -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    cr_assert_eq(mprotect(m + page, page, PROT_NONE), 0);
    for (size_t len = 0; len <= c.n; len++) {
        unsigned char *p = m + page - len;
        memcpy(p, c.b, len);
        int r = sg_x509_check_name(p, len, "localhost", NULL, 0, NULL, 0);
        if (len == c.n)
            cr_expect_eq(r, SG_X509_OK);
        else
            cr_expect_eq(r, SG_X509_BAD_DER, "prefix of %zu of %zu bytes gave %d", len, c.n, r);
    }
    munmap(m, 2 * page);
}

Test(x509, the_reasons_have_words)
{
    for (int w = SG_X509_OK; w <= SG_X509_TOO_BIG; w++)
        cr_expect(sg_x509_why_text(w)[0] != 0);
    cr_expect(strstr(sg_x509_why_text(SG_X509_NO_SAN), "no subjectAltName") != NULL);
}

static void dates(unsigned nb_tag, const char *nb, unsigned na_tag, const char *na)
{
    validity.n = 0;
    tlv(&validity, nb_tag, nb, strlen(nb));
    tlv(&validity, na_tag, na, strlen(na));
}

Test(x509, reads_the_validity_dates)
{
    struct buf c;
    char nb[15], na[15];
    dates(0x17, "200101000000Z", 0x17, "200201000000Z");
    cert(&c, NULL);
    cr_assert_eq(sg_x509_validity(c.b, c.n, nb, na), 0);
    cr_expect_str_eq(nb, "20200101000000");
    cr_expect_str_eq(na, "20200201000000");
    /* UTCTime 50..99 is 19xx; GeneralizedTime as written */
    dates(0x17, "991231235959Z", 0x18, "20500101000000Z");
    cert(&c, NULL);
    cr_assert_eq(sg_x509_validity(c.b, c.n, nb, na), 0);
    cr_expect_str_eq(nb, "19991231235959");
    cr_expect_str_eq(na, "20500101000000");
    /* malformed: no Z, a letter, wrong length, wrong tag, one Time */
    static const char *const bad[] = {"2001010000000", "20010100000xZ", "2001010000Z",
                                      "200101000000+0100"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dates(0x17, bad[i], 0x17, "200201000000Z");
        cert(&c, NULL);
        cr_expect_eq(sg_x509_validity(c.b, c.n, nb, na), -1, "%s", bad[i]);
    }
    dates(0x04, "200101000000Z", 0x17, "200201000000Z");
    cert(&c, NULL);
    cr_expect_eq(sg_x509_validity(c.b, c.n, nb, na), -1);
    validity.n = 0;
    tlv(&validity, 0x17, "200101000000Z", 13);
    cert(&c, NULL);
    cr_expect_eq(sg_x509_validity(c.b, c.n, nb, na), -1);
    validity.n = 0;
}

Test(x509, says_which_date_is_wrong)
{
    char t[80];
    sg_x509_dates_text("20200101000000", "20200201000000", "20261201183000", t, sizeof(t));
    cr_expect_str_eq(t, "expired on 2020-02-01 00:00:00 UTC");
    sg_x509_dates_text("20300101120000", "20310101000000", "20261201183000", t, sizeof(t));
    cr_expect_str_eq(t, "not valid before 2030-01-01 12:00:00 UTC");
    sg_x509_dates_text("20200101000000", "20310101000000", "20261201183000", t, sizeof(t));
    cr_expect_str_eq(t, "", "valid now: nothing to say");
}
