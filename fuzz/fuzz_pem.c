/* SPDX-License-Identifier: MIT */
/*
 * fuzz_pem.c -- the PEM trust-anchor loader (src/tls.c) on any input: no
 * crash, no leak (ASan), and every anchor it returns is whole (DN and key
 * present).
 */
#include <stdint.h>
#include <stdlib.h>

#include "tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sg_anchors a = {0};
    size_t bad = 0;
    sg_anchors_from_pem(&a, data, size, &bad);
    for (size_t i = 0; i < a.n; i++) {
        const br_x509_trust_anchor *t = &a.ta[i];
        if (!t->dn.data || t->dn.len == 0)
            abort();
        if (t->pkey.key_type == BR_KEYTYPE_RSA && (!t->pkey.key.rsa.n || !t->pkey.key.rsa.e))
            abort();
        if (t->pkey.key_type == BR_KEYTYPE_EC && !t->pkey.key.ec.q)
            abort();
    }
    sg_anchors_free(&a);
    return 0;
}
