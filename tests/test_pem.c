/* SPDX-License-Identifier: MIT */
/*
 * Tests for the PEM trust-anchor loader of src/tls.c.  The certificates
 * below were made for this test by tests/tls/mkcerts.sh (a throwaway EC
 * test CA and a leaf it signed); they protect nothing.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "segops.h"
#include "tls.h"

static const char CA[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBnTCCAUOgAwIBAgIUAh6grwlJTQBGcHQOZZgQw1dC4wcwCgYIKoZIzj0EAwIw\n"
    "HDEaMBgGA1UEAwwRbGlic2Vnb3BzIHRlc3QgY2EwHhcNMjYxMTI2MTIxMzE4WhcN\n"
    "MjYxMjI2MTIxMzE4WjAcMRowGAYDVQQDDBFsaWJzZWdvcHMgdGVzdCBjYTBZMBMG\n"
    "ByqGSM49AgEGCCqGSM49AwEHA0IABM87P312BCQMWIYnsXDs+lrik2jdQkRoU1N9\n"
    "+JUBpwJbrVO4PUlNwi8H+RbIQ6xAIDYGnC/5Iut0HQRvm5VT3UejYzBhMB0GA1Ud\n"
    "DgQWBBT/4HoGvfNIA0wKbsCVvtqW5PPW5zAfBgNVHSMEGDAWgBT/4HoGvfNIA0wK\n"
    "bsCVvtqW5PPW5zAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAKBggq\n"
    "hkjOPQQDAgNIADBFAiEA4ghOEa6Z2cc4/FzvK/Y9YgJU8GYifvti328d3oUDiNIC\n"
    "IAQwr3fC8mtxnsLTm5RpT0luHqTub/NWFkKvX3gWVZR0\n"
    "-----END CERTIFICATE-----\n";

static const char LEAF[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBvDCCAWKgAwIBAgIUaP5vcelyhGfYRNMGbwL8vMJo+GYwCgYIKoZIzj0EAwIw\n"
    "HDEaMBgGA1UEAwwRbGlic2Vnb3BzIHRlc3QgY2EwHhcNMjYxMTI2MTIxMzE4WhcN\n"
    "MjYxMjI2MTIxMzE4WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIB\n"
    "BggqhkjOPQMBBwNCAARah8/+9VP2mpvg5ff3bxeutyIOLsiOKgSoN7h40WsGx9Zq\n"
    "76WT+3z8lGfxGKOoKeXpOtKL7iF2BSv4pAljVsgHo4GJMIGGMAkGA1UdEwQCMAAw\n"
    "DgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMBQGA1UdEQQNMAuC\n"
    "CWxvY2FsaG9zdDAdBgNVHQ4EFgQUnpHMk393q/A8XfNF8EP9tCH+Jy4wHwYDVR0j\n"
    "BBgwFoAU/+B6Br3zSANMCm7Alb7aluTz1ucwCgYIKoZIzj0EAwIDSAAwRQIhANei\n"
    "9qim/PsrezR+SN/ZgESycH1F60+v4ELmEOVRclKFAiBCUSVOWot3tXEZW1UzHhaL\n"
    "ct+4XGnjaGMhzYh3VNOyag==\n"
    "-----END CERTIFICATE-----\n";

static const char KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg5zxseN8AB97jZ2aO\n"
    "VtF9ns6SE04FhVEskFnkg17dJBWhRANCAARah8/+9VP2mpvg5ff3bxeutyIOLsiO\n"
    "KgSoN7h40WsGx9Zq76WT+3z8lGfxGKOoKeXpOtKL7iF2BSv4pAljVsgH\n"
    "-----END PRIVATE KEY-----\n";

static size_t load(const char *pem, size_t len, int *rc)
{
    struct sg_anchors a = {0};
    *rc = sg_anchors_from_pem(&a, pem, len, NULL);
    size_t n = a.n;
    sg_anchors_free(&a);
    return n;
}

Test(pem, decodes_a_ca_certificate_into_an_anchor)
{
    struct sg_anchors a = {0};
    cr_assert_eq(sg_anchors_from_pem(&a, CA, strlen(CA), NULL), 0);
    cr_assert_eq(a.n, 1);
    cr_expect_eq(a.ta[0].flags & BR_X509_TA_CA, BR_X509_TA_CA);
    cr_expect_eq(a.ta[0].pkey.key_type, BR_KEYTYPE_EC);
    cr_expect_gt(a.ta[0].dn.len, 0);
    sg_anchors_free(&a);
}

Test(pem, leaf_is_an_anchor_without_the_ca_flag)
{
    struct sg_anchors a = {0};
    cr_assert_eq(sg_anchors_from_pem(&a, LEAF, strlen(LEAF), NULL), 0);
    cr_assert_eq(a.n, 1);
    cr_expect_eq(a.ta[0].flags & BR_X509_TA_CA, 0);
    sg_anchors_free(&a);
}

Test(pem, bundle_of_several_objects_skips_non_certificates)
{
    char buf[8192];
    snprintf(buf, sizeof(buf), "junk before\n%s\n%s\ncomment\n%s", CA, KEY, LEAF);
    int rc;
    cr_expect_eq(load(buf, strlen(buf), &rc), 2);
    cr_expect_eq(rc, 0);
}

Test(pem, truncated_or_corrupt_input_never_yields_a_bogus_anchor)
{
    /* every prefix: either an error or only whole certificates */
    for (size_t n = 0; n < strlen(CA); n++) {
        int rc;
        size_t got = load(CA, n, &rc);
        cr_assert_eq(got, 0, "prefix of %zu bytes gave an anchor", n);
    }
    char bad[2048];
    snprintf(bad, sizeof(bad), "%s", CA);
    bad[100] = '*'; /* not base64 */
    int rc;
    cr_expect_eq(load(bad, strlen(bad), &rc), 0);
    cr_expect_eq(rc, -1);
    /* well-formed PEM, garbage DER: skipped, counted */
    const char *g = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    struct sg_anchors a = {0};
    size_t skipped = 0;
    cr_expect_eq(sg_anchors_from_pem(&a, g, strlen(g), &skipped), 0);
    cr_expect_eq(a.n, 0);
    cr_expect_eq(skipped, 1);
    sg_anchors_free(&a);
}

Test(pem, loads_the_system_bundle_when_present)
{
    if (access(SG_TLS_DEFAULT_CA, R_OK) != 0)
        return;
    struct sg_anchors a = {0};
    char why[256];
    cr_assert_eq(sg_anchors_load(&a, SG_TLS_DEFAULT_CA, why, sizeof(why)), 0, "%s", why);
    cr_expect_gt(a.n, 50);
    sg_anchors_free(&a);
}

/* Writes len bytes to a new temporary file; its path into path. */
static void temp_file(char *path, size_t cap, const void *data, size_t len)
{
    snprintf(path, cap, "/tmp/segops_test_pem_XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* Loads path; expects failure and a reason holding the path and `cause`. */
static void expect_refused(const char *path, const char *cause)
{
    struct sg_anchors a = {0};
    char why[512] = "unchanged";
    cr_expect_eq(sg_anchors_load(&a, path, why, sizeof(why)), -1, "%s loaded", path);
    cr_expect(strstr(why, path) != NULL, "the reason names the file: %s", why);
    cr_expect(strstr(why, cause) != NULL, "the reason says \"%s\": %s", cause, why);
    cr_expect_eq(a.n, 0);
    sg_anchors_free(&a);
}

Test(pem, load_names_the_file_and_the_reason_it_is_refused)
{
    expect_refused("/nonexistent/bundle.pem", "No such file or directory");
    expect_refused("/tmp", "is a directory");
    expect_refused("/dev/null", "is empty");
    char path[64];
    temp_file(path, sizeof(path), "hello, not a certificate\n", 25);
    expect_refused(path, "neither PEM");
    unlink(path);
    temp_file(path, sizeof(path), KEY, strlen(KEY));
    expect_refused(path, "holds no certificate (1 PEM object of other types)");
    unlink(path);
    const char *g = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    temp_file(path, sizeof(path), g, strlen(g));
    expect_refused(path, "none of its 1 certificate could be parsed");
    unlink(path);
    char bad[2048];
    snprintf(bad, sizeof(bad), "%s", CA);
    bad[100] = '*';
    temp_file(path, sizeof(path), bad, strlen(bad));
    expect_refused(path, "malformed PEM");
    unlink(path);
}

/* A CRLF bundle (written by Windows tools) decoded to no anchor at all. */
Test(pem, accepts_crlf_line_ends)
{
    char crlf[8192];
    size_t n = 0;
    for (const char *p = CA; *p; p++) {
        if (*p == '\n')
            crlf[n++] = '\r';
        crlf[n++] = *p;
    }
    for (const char *p = LEAF; *p; p++) {
        if (*p == '\n')
            crlf[n++] = '\r';
        crlf[n++] = *p;
    }
    int rc;
    cr_expect_eq(load(crlf, n, &rc), 2);
    cr_expect_eq(rc, 0);
    /* a lone '\r' ends a line too */
    for (size_t i = 0; i < n; i++)
        if (crlf[i] == '\n')
            crlf[i] = '\r';
    cr_expect_eq(load(crlf, n, &rc), 2);
}

static void der_append(void *ctx, const void *buf, size_t len)
{
    struct {
        unsigned char b[2048];
        size_t n;
    } *d = ctx;
    if (d->n + len <= sizeof(d->b)) {
        memcpy(d->b + d->n, buf, len);
        d->n += len;
    }
}

Test(pem, loads_one_der_certificate)
{
    struct {
        unsigned char b[2048];
        size_t n;
    } der = {{0}, 0};
    br_pem_decoder_context pc;
    br_pem_decoder_init(&pc);
    const char *p = CA;
    size_t left = strlen(CA);
    while (left) {
        size_t k = br_pem_decoder_push(&pc, p, left);
        p += k;
        left -= k;
        if (br_pem_decoder_event(&pc) == BR_PEM_BEGIN_OBJ)
            br_pem_decoder_setdest(&pc, der_append, &der);
    }
    cr_assert_gt(der.n, 100);
    char path[64];
    temp_file(path, sizeof(path), der.b, der.n);
    struct sg_anchors a = {0};
    char why[256] = "";
    cr_expect_eq(sg_anchors_load(&a, path, why, sizeof(why)), 0, "%s", why);
    cr_expect_eq(a.n, 1);
    sg_anchors_free(&a);
    unlink(path);
}

Test(pem, ssl_cert_file_replaces_the_system_bundle_and_ca_file_wins)
{
    const char *origin;
    setenv("SSL_CERT_FILE", "/some/where.pem", 1);
    cr_expect_str_eq(sg_tls_trust_file(NULL, &origin), "/some/where.pem");
    cr_expect_str_eq(origin, "SSL_CERT_FILE");
    cr_expect_str_eq(sg_tls_trust_file("/mine.pem", &origin), "/mine.pem");
    cr_expect_str_eq(origin, "ca_file");
    unsetenv("SSL_CERT_FILE");
    const char *sys = sg_tls_trust_file(NULL, &origin);
    cr_expect_str_eq(origin, "system bundle");
    if (access(SG_TLS_DEFAULT_CA, F_OK) == 0)
        cr_expect_str_eq(sys, SG_TLS_DEFAULT_CA);
    /* the reason names where the file came from */
    struct sg_tls_ctx x;
    char why[SG_TLS_WHY_MAX];
    setenv("SSL_CERT_FILE", "/nonexistent/env.pem", 1);
    cr_expect_eq(sg_tls_ctx_init(&x, NULL, "example.com", why, sizeof(why)), SEGOPS_ETLS);
    unsetenv("SSL_CERT_FILE");
    cr_expect(strstr(why, "SSL_CERT_FILE") && strstr(why, "/nonexistent/env.pem"), "%s", why);
}

/* $SSL_CERT_DIR: the hashed files of each listed directory add to the
 * anchors (other names are ignored, as OpenSSL's lookup ignores them); an
 * unreadable directory is named. */
Test(pem, ssl_cert_dir_adds_its_hashed_files)
{
    char dir[] = "/tmp/segops-certdir-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char p1[96], p2[96], p3[96];
    snprintf(p1, sizeof(p1), "%s/0a1b2c3d.0", dir);
    snprintf(p2, sizeof(p2), "%s/ca.pem", dir);        /* not a hashed name */
    snprintf(p3, sizeof(p3), "%s/deadbeef.1", dir);    /* hashed, not a cert */
    FILE *f = fopen(p1, "w");
    fputs(CA, f);
    fclose(f);
    f = fopen(p2, "w");
    fputs(CA, f);
    fclose(f);
    f = fopen(p3, "w");
    fputs("garbage\n", f);
    fclose(f);
    struct sg_anchors a;
    memset(&a, 0, sizeof(a));
    char list[200];
    snprintf(list, sizeof(list), "/nonexistent-is-not-listed-here:%s", dir);
    cr_expect_eq(sg_anchors_load_dirs(&a, dir, NULL, 0), 1);
    cr_expect_eq(a.n, 1, "only the hashed file loads");
    sg_anchors_free(&a);
    char why[SG_TLS_WHY_MAX];
    cr_expect_eq(sg_anchors_load_dirs(&a, list, why, sizeof(why)), -1);
    cr_expect(strstr(why, "/nonexistent-is-not-listed-here"), "%s", why);
    sg_anchors_free(&a);
    /* through the client's context: the directory's anchor is added */
    struct sg_tls_ctx x;
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
    int base_rc = sg_tls_ctx_init(&x, NULL, "example.com", why, sizeof(why));
    size_t base = base_rc == 0 ? x.anchors.n : 0;
    sg_tls_ctx_free(&x);
    setenv("SSL_CERT_DIR", dir, 1);
    cr_expect_eq(sg_tls_ctx_init(&x, NULL, "example.com", why, sizeof(why)), 0, "%s", why);
    cr_expect_eq(x.anchors.n, base + 1);
    sg_tls_ctx_free(&x);
    /* ca_file given: the directory is not consulted */
    cr_expect_eq(sg_tls_ctx_init(&x, p2, "example.com", why, sizeof(why)), 0, "%s", why);
    cr_expect_eq(x.anchors.n, 1);
    sg_tls_ctx_free(&x);
    unsetenv("SSL_CERT_DIR");
    unlink(p1);
    unlink(p2);
    unlink(p3);
    rmdir(dir);
}
