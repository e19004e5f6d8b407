/* SPDX-License-Identifier: MIT */
/*
 * runner.c -- runs the tests registered through the TSan stand-in for
 * Criterion (see criterion/criterion.h here): each in a forked child, with
 * its timeout; a test fails on a failed check, a crash, a TSan report
 * (halt_on_error makes TSan exit non-zero) or its timeout.  Prints
 * "N passed, N failed, N skipped" last; a test that calls cr_skip_test()
 * exits with CRS_SKIP_STATUS and counts as skipped.  Arguments: --filter
 * SUBSTRING; others ignored.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "criterion/criterion.h"

#define MAX_TESTS 256

struct test {
    const char *suite, *name;
    void (*fn)(void);
    struct crs_opts o;
};
static struct test tests[MAX_TESTS];
static int ntests;
static struct {
    const char *suite;
    struct crs_opts o;
} suites[32];
static int nsuites;
static int failed_checks;

void crs_register(const char *suite, const char *name, void (*fn)(void), struct crs_opts o)
{
    if (ntests < MAX_TESTS)
        tests[ntests++] = (struct test){suite, name, fn, o};
}

void crs_suite(const char *suite, struct crs_opts o)
{
    if (nsuites < 32) {
        suites[nsuites].suite = suite;
        suites[nsuites].o = o;
        nsuites++;
    }
}

void crs_fail(const char *file, int line, const char *expr, int fatal, const char *fmt, ...)
{
    fprintf(stderr, "%s:%d: check failed: %s", file, line, expr);
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs(": ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    __atomic_add_fetch(&failed_checks, 1, __ATOMIC_SEQ_CST);
    if (fatal)
        _exit(1);
}

void crs_skip(const char *file, int line, const char *fmt, ...)
{
    fprintf(stderr, "%s:%d: skipped", file, line);
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs(": ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    fflush(NULL);
    _exit(failed_checks ? 1 : CRS_SKIP_STATUS);
}

int main(int argc, char **argv)
{
    const char *filter = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--filter") && i + 1 < argc)
            filter = argv[++i];
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < ntests; i++) {
        struct test *t = &tests[i];
        char full[256];
        snprintf(full, sizeof(full), "%s::%s", t->suite, t->name);
        if ((filter && !strstr(full, filter)) || t->o.disabled)
            continue;
        struct crs_opts so = {0};
        for (int k = 0; k < nsuites; k++)
            if (!strcmp(suites[k].suite, t->suite))
                so = suites[k].o;
        void (*init)(void) = t->o.init ? t->o.init : so.init;
        void (*fini)(void) = t->o.fini ? t->o.fini : so.fini;
        double timeout = t->o.timeout > 0 ? t->o.timeout : so.timeout > 0 ? so.timeout : 300;
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            alarm((unsigned)(timeout + 0.999));
            if (init)
                init();
            t->fn();
            if (fini)
                fini();
            fflush(NULL);
            _exit(failed_checks ? 1 : 0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        int skip = WIFEXITED(st) && WEXITSTATUS(st) == CRS_SKIP_STATUS;
        int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (skip)
            skipped++;
        else if (ok)
            passed++;
        else
            failed++;
        fprintf(stderr, "[%s] %s%s\n", skip ? "SKIP" : ok ? "PASS" : "FAIL", full,
                WIFSIGNALED(st) ? (WTERMSIG(st) == SIGALRM ? " (timed out)" : " (crashed)") : "");
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
