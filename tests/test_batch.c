/* SPDX-License-Identifier: MIT */
/*
 * test_batch.c -- src/batch.c: Idempotency-Keys (128 random bits: two
 * independent seeds, a bijection of the batch number).
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "batch.h"

static void halves(const char key[33], char a[17], char b[17])
{
    cr_assert_eq(strlen(key), 32, "%s", key);
    for (int i = 0; i < 32; i++)
        cr_assert(strchr("0123456789abcdef", key[i]) != NULL, "not lowercase hex: %s", key);
    memcpy(a, key, 16);
    a[16] = 0;
    memcpy(b, key + 16, 16);
    b[16] = 0;
}

/* The old scheme, mix(seed ^ seq) || mix(seq + seed), gave equal halves
 * whenever seed & seq == 0: every seed with its low bits clear collided
 * on the first batches.  Chosen seeds of that shape, and the extremes. */
Test(batch, key_halves_differ_where_the_old_scheme_collided)
{
    static const uint64_t shapes[] = {0, 0xffffffffffff0000ull, 0x8000000000000000ull,
                                      0xfffffffffffffffeull, 0xf0f0f0f0f0f0f000ull, 1};
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        uint64_t seed[2] = {shapes[i], shapes[i]};
        /* sg_key_seeds' guarantee, applied to chosen seeds the way it
         * applies it to drawn ones */
        seed[1] = ~seed[0];
        for (uint64_t seq = 1; seq <= 4096; seq++) {
            char key[33], a[17], b[17];
            sg_batch_key(key, seed, seq);
            halves(key, a, b);
            cr_assert(strcmp(a, b) != 0, "seed %#llx seq %llu: halves equal (%s)",
                              (unsigned long long)seed[0], (unsigned long long)seq, key);
        }
    }
}

static int cmp_key(const void *x, const void *y)
{
    return memcmp(x, y, 33);
}

Test(batch, keys_are_unique_over_many_batches_and_halves_never_repeat)
{
    enum { N = 200000 };
    uint64_t seed[2];
    sg_key_seeds(seed);
    char (*k)[33] = malloc(sizeof(*k) * N);
    char (*h)[33] = malloc(sizeof(*h) * 2 * N);
    cr_assert(k && h);
    for (uint64_t seq = 1; seq <= N; seq++) {
        sg_batch_key(k[seq - 1], seed, seq);
        char a[17], b[17];
        halves(k[seq - 1], a, b);
        cr_assert(strcmp(a, b) != 0, "halves equal: %s", k[seq - 1]);
        /* every half, of either side, is distinct from every other */
        memset(h[2 * (seq - 1)], 0, 33);
        memset(h[2 * (seq - 1) + 1], 0, 33);
        memcpy(h[2 * (seq - 1)], a, 16);
        memcpy(h[2 * (seq - 1) + 1], b, 16);
    }
    qsort(k, N, sizeof(*k), cmp_key);
    for (size_t i = 1; i < N; i++)
        cr_assert_neq(memcmp(k[i - 1], k[i], 33), 0, "key repeated: %s", k[i]);
    qsort(h, 2 * N, sizeof(*h), cmp_key);
    size_t same = 0;
    for (size_t i = 1; i < 2 * N; i++)
        same += memcmp(h[i - 1], h[i], 33) == 0;
    cr_expect_eq(same, 0, "%zu halves repeated within one client", same);
    free(k);
    free(h);
}

Test(batch, the_key_is_the_same_for_the_same_batch)
{
    uint64_t seed[2] = {42, 43};
    char a[33], b[33];
    sg_batch_key(a, seed, 7);
    sg_batch_key(b, seed, 7);
    cr_expect_str_eq(a, b, "a retry rebuilds nothing, but the function is pure anyway");
}

Test(batch, seeds_are_two_independent_draws)
{
    uint64_t s[64][2];
    for (int i = 0; i < 64; i++) {
        sg_key_seeds(s[i]);
        cr_assert_neq(s[i][0], s[i][1]);
    }
    for (int i = 0; i < 64; i++)
        for (int j = i + 1; j < 64; j++)
            cr_assert(s[i][0] != s[j][0] && s[i][1] != s[j][1], "two clients drew one seed");
    /* the halves come from different seeds: not a function of each other */
    uint64_t x[2] = {s[0][0], s[0][1]}, y[2] = {s[0][0], s[1][1]};
    char kx[33], ky[33];
    sg_batch_key(kx, x, 1);
    sg_batch_key(ky, y, 1);
    cr_expect(memcmp(kx, ky, 16) == 0 && memcmp(kx + 16, ky + 16, 16) != 0,
              "the second half must depend on the second seed only: %s %s", kx, ky);
}
