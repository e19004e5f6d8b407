/* SPDX-License-Identifier: MIT */
/*
 * test_abi_v01.c -- a binary built against the 0.1.0 header (no `size`
 * members; tests/abi/segops_v0_1.h, frozen) meets this library.
 *
 * 0.2.0 changed the layouts, so the soname changed (libsegops.so.0 ->
 * libsegops.so.0.2) and the dynamic linker never pairs a 0.1.0 binary with
 * this library.  Should one be forced onto it anyway (a symlink), the
 * first member of its options is a pointer or NULL where `size` is now
 * expected: the library refuses it with SEGOPS_ESIZE rather than read the
 * fields shifted.  Linked statically with today's library.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "segops_v0_1.h"

#define SEGOPS_ESIZE_0_2 (-26) /* unknown to the 0.1.0 header */

Test(abi_v01, options_of_the_0_1_layout_are_refused)
{
    segops_options o;
    memset(&o, 0, sizeof(o)); /* the 0.1.0 idiom */
    segops_client *c = (segops_client *)1;
    /* api_url NULL: reads as size 0 */
    o.api_key = "sk_test";
    cr_expect_eq(segops_client_new(&o, &c), SEGOPS_ESIZE_0_2);
    cr_expect_null(c);
    /* api_url set: reads as a huge size */
    o.api_url = "http://127.0.0.1:9";
    cr_expect_eq(segops_client_new(&o, &c), SEGOPS_ESIZE_0_2);
    cr_expect_null(c);
    cr_expect(strncmp(segops_strerror(SEGOPS_ESIZE_0_2), "SEGOPS_ESIZE", 12) == 0);
}
