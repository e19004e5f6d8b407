/* SPDX-License-Identifier: MIT */
/*
 * A minimal stand-in for <criterion/criterion.h>, used only by the
 * ThreadSanitizer build: Criterion's sandbox cannot map its inheritable
 * arena next to TSan's shadow memory (it aborts with "Could not initialize
 * inheritable arena"), so under TSan the same test sources are compiled
 * against this header and run by runner.c: each test in a forked child,
 * with its timeout, init and fini.  It covers exactly the part of the
 * Criterion API our tests use.
 */
#ifndef SEGOPS_TSAN_SHIM_CRITERION_H
#define SEGOPS_TSAN_SHIM_CRITERION_H

#include <stdio.h>
#include <string.h>

struct crs_opts {
    void (*init)(void);
    void (*fini)(void);
    double timeout;
    int disabled;
};

void crs_register(const char *suite, const char *name, void (*fn)(void), struct crs_opts o);
void crs_suite(const char *suite, struct crs_opts o);
/* fmt is always a literal ("" when the check has no message) */
void crs_fail(const char *file, int line, const char *expr, int fatal, const char *fmt, ...);
/* ends the test as skipped (exit status CRS_SKIP_STATUS); fini is not run */
void crs_skip(const char *file, int line, const char *fmt, ...) __attribute__((noreturn));
#define CRS_SKIP_STATUS 77

#define Test(suite, name, ...)                                                        \
    static void suite##_##name(void);                                                 \
    __attribute__((constructor)) static void crs_reg_##suite##_##name(void)           \
    {                                                                                 \
        crs_register(#suite, #name, suite##_##name, (struct crs_opts){__VA_ARGS__});  \
    }                                                                                 \
    static void suite##_##name(void)

#define TestSuite(suite, ...)                                                         \
    __attribute__((constructor)) static void crs_suite_##suite(void)                  \
    {                                                                                 \
        crs_suite(#suite, (struct crs_opts){__VA_ARGS__});                            \
    }

#define crs_check(cond, fatal, ...)                                                   \
    do {                                                                              \
        if (!(cond))                                                                  \
            crs_fail(__FILE__, __LINE__, #cond, fatal, "" __VA_ARGS__);               \
    } while (0)

#define cr_assert(c, ...) crs_check((c), 1, __VA_ARGS__)
#define cr_expect(c, ...) crs_check((c), 0, __VA_ARGS__)
#define cr_assert_not(c, ...) crs_check(!(c), 1, __VA_ARGS__)
#define cr_expect_not(c, ...) crs_check(!(c), 0, __VA_ARGS__)
#define cr_assert_eq(a, b, ...) crs_check((a) == (b), 1, __VA_ARGS__)
#define cr_expect_eq(a, b, ...) crs_check((a) == (b), 0, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) crs_check((a) != (b), 1, __VA_ARGS__)
#define cr_expect_neq(a, b, ...) crs_check((a) != (b), 0, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) crs_check((a) < (b), 1, __VA_ARGS__)
#define cr_expect_lt(a, b, ...) crs_check((a) < (b), 0, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) crs_check((a) <= (b), 1, __VA_ARGS__)
#define cr_expect_leq(a, b, ...) crs_check((a) <= (b), 0, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) crs_check((a) > (b), 1, __VA_ARGS__)
#define cr_expect_gt(a, b, ...) crs_check((a) > (b), 0, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) crs_check((a) >= (b), 1, __VA_ARGS__)
#define cr_expect_geq(a, b, ...) crs_check((a) >= (b), 0, __VA_ARGS__)
#define cr_assert_null(p, ...) crs_check((p) == NULL, 1, __VA_ARGS__)
#define cr_expect_null(p, ...) crs_check((p) == NULL, 0, __VA_ARGS__)
#define cr_assert_not_null(p, ...) crs_check((p) != NULL, 1, __VA_ARGS__)
#define cr_expect_not_null(p, ...) crs_check((p) != NULL, 0, __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) crs_check(strcmp((a), (b)) == 0, 1, __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...) crs_check(strcmp((a), (b)) == 0, 0, __VA_ARGS__)
#define cr_assert_fail(...) crs_fail(__FILE__, __LINE__, "fail", 1, "" __VA_ARGS__)
#define cr_skip_test(...) crs_skip(__FILE__, __LINE__, "" __VA_ARGS__)
#define cr_log_info(...) (fprintf(stderr, "[info] " __VA_ARGS__), fputc('\n', stderr))

#endif
