/* SPDX-License-Identifier: MIT */
/*
 * fuzz_x509_san.c -- the certificate name check (src/x509.c) on any DER:
 * the first byte picks the host (a name, a wildcard-able name, an IPv4 or
 * an IPv6 literal), the rest is the end-entity certificate.  No crash, no
 * read outside the input (ASan), a known result, the SAN text
 * NUL-terminated inside its buffer, and the same answer twice; the
 * validity reader on the same bytes gives 14 digits or nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char v4[4] = {127, 0, 0, 1}, v6[16] = {[15] = 1};
    static const char *const names[] = {"localhost", "api.segops.ai", "127.0.0.1", "::1"};
    if (size < 1)
        return 0;
    int mode = data[0] & 3;
    const unsigned char *ip = mode == 2 ? v4 : mode == 3 ? v6 : NULL;
    size_t iplen = mode == 2 ? 4 : mode == 3 ? 16 : 0;
    /* a copy of exactly size - 1 bytes, so ASan sees any over-read */
    unsigned char *der = malloc(size - 1 ? size - 1 : 1);
    if (!der)
        return 0;
    memcpy(der, data + 1, size - 1);
    char seen[40];
    memset(seen, 0x5a, sizeof(seen));
    int r = sg_x509_check_name(der, size - 1, names[mode], ip, iplen, seen, sizeof(seen));
    if (r < SG_X509_OK || r > SG_X509_TOO_BIG || r == SG_X509_TOO_BIG)
        abort();
    if (memchr(seen, 0, sizeof(seen)) == NULL)
        abort();
    if (sg_x509_check_name(der, size - 1, names[mode], ip, iplen, NULL, 0) != r)
        abort();
    char nb[15], na[15];
    if (sg_x509_validity(der, size - 1, nb, na) == 0) {
        for (int i = 0; i < 14; i++)
            if (nb[i] < '0' || nb[i] > '9' || na[i] < '0' || na[i] > '9')
                abort();
        if (nb[14] || na[14])
            abort();
        char t[80];
        sg_x509_dates_text(nb, na, "20261201000000", t, sizeof(t));
    }
    free(der);
    return 0;
}
