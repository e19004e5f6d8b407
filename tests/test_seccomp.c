/* SPDX-License-Identifier: MIT */
/*
 * Part 1.  io_uring forbidden by a seccomp filter (as under Docker's default
 * profile and many hardened deployments): SEGOPS_IO_AUTO must fall back to
 * poll() with a WARN line and lose nothing; SEGOPS_IO_URING must refuse to
 * start with SEGOPS_EIO.
 *
 * The filter is installed in a child forked for the purpose (it cannot be
 * removed, and the test runner's own process should stay unfiltered); the
 * child reports through a pipe and the checks run in the parent.  The sink
 * is started in the child before the filter (it does not use io_uring).
 *
 * Part 2.  membarrier() forbidden after the client was created (its
 * registration succeeded, so producers use plain stores): shutdown must
 * notice the failure, make the handshake hold another way (CPU migration,
 * see src/barrier.h) and say so; with sched_setaffinity() forbidden too,
 * it must say that nothing worked and keep the queue mapped.  Producers
 * keep tracking while shutdown runs; everything accepted is delivered.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "segops.h"
#include "queue.h"
#include "sink.h"

#if defined(__x86_64__)
#define SC_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SC_ARCH AUDIT_ARCH_AARCH64
#elif defined(__riscv) && __riscv_xlen == 64
#define SC_ARCH AUDIT_ARCH_RISCV64
#endif

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#define __NR_io_uring_register 427
#endif

enum { THREADS = 4, PER = 2500 };

struct result {
    int stage;           /* how far the child got; 99: done */
    int filter_rc;       /* install_filter() */
    int probe_errno;     /* errno of a raw io_uring_setup after the filter */
    int new_auto_rc, new_uring_rc;
    int io_mode;
    int flush_rc, shutdown_rc;
    uint64_t accepted, delivered, failed, pending, undelivered;
    uint64_t sink_queued;
    uint32_t warn_fallback; /* WARN lines mentioning the fallback */
    uint32_t warn_lines;
    char first_warn[200];
};

static struct result *RES; /* the child's report */

static int install_filter(void)
{
#ifdef SC_ARCH
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SC_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof(f) / sizeof(f[0])), f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -errno;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        return -errno;
    return 0;
#else
    return -ENOSYS;
#endif
}

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_log(void *user, int level, const char *line)
{
    struct result *r = user;
    if (level != SEGOPS_LOG_WARN)
        return;
    pthread_mutex_lock(&log_mu);
    r->warn_lines++;
    if (!r->first_warn[0])
        snprintf(r->first_warn, sizeof(r->first_warn), "%s", line);
    if (strstr(line, "io_uring") && strstr(line, "poll"))
        r->warn_fallback++;
    pthread_mutex_unlock(&log_mu);
}

struct prod {
    segops_client *c;
    int id, ok;
};

static void *producer(void *arg)
{
    struct prod *p = arg;
    for (int i = 0; i < PER; i++) {
        segops_prop props[] = {SEGOPS_I64("thread", p->id), SEGOPS_I64("seq", i)};
        segops_event ev = {
            .user_id = "user-1", .event_type = "page_viewed", .payload = props, .payload_len = 2};
        int rc;
        for (int spin = 0; (rc = segops_track(p->c, &ev)) == SEGOPS_EFULL && spin < 100000;
             spin++)
            sched_yield();
        p->ok += rc == 0;
    }
    return NULL;
}

static void child(struct result *r)
{
    unsetenv("SEGOPS_IO"); /* the point is the default, AUTO */
    struct sink_opts so;
    memset(&so, 0, sizeof(so));
    uint16_t port = 0;
    struct sink *s = sink_start(&so, &port);
    if (!s)
        return;
    r->stage = 1;
    r->filter_rc = install_filter();
    if (r->filter_rc != 0)
        return;
    r->stage = 2;
    errno = 0;
    long k = syscall(__NR_io_uring_setup, 8, NULL);
    r->probe_errno = k < 0 ? errno : 0;

    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)port);
    segops_options o = SEGOPS_OPTIONS_INIT;
    o.api_url = url;
    o.api_key = "sk_test";
    o.flush_interval_ms = 100;
    o.queue_capacity = 4096;
    o.logger = on_log;
    o.logger_user = r;

    segops_client *c = NULL;
    o.io_mode = SEGOPS_IO_URING;
    r->new_uring_rc = segops_client_new(&o, &c);
    if (r->new_uring_rc == 0)
        segops_shutdown(c, 1000, NULL);
    r->stage = 3;

    c = NULL;
    o.io_mode = SEGOPS_IO_AUTO;
    r->new_auto_rc = segops_client_new(&o, &c);
    if (r->new_auto_rc != 0)
        return;
    r->stage = 4;
    pthread_t th[THREADS];
    struct prod p[THREADS];
    for (int i = 0; i < THREADS; i++) {
        p[i] = (struct prod){c, i, 0};
        pthread_create(&th[i], NULL, producer, &p[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    r->flush_rc = segops_flush(c, 20000);
    segops_counters st = SEGOPS_COUNTERS_INIT;
    segops_stats(c, &st);
    r->io_mode = st.io_mode;
    r->accepted = st.accepted;
    r->delivered = st.delivered;
    r->failed = st.failed;
    r->pending = st.pending;
    r->shutdown_rc = segops_shutdown(c, 5000, &r->undelivered);
    struct sink_counts kc;
    sink_get_counts(s, &kc);
    r->sink_queued = kc.queued;
    sink_stop(s);
    r->stage = 99;
}

/* Runs fn(report, arg) in a forked child: the report (size bytes, zeroed
 * first) goes back through a pipe, then the child leaves with _exit() (no
 * atexit handlers, no leak check: see part 2).  The parent reads it for at
 * most max_s seconds (then kills the child) and reaps the child.  0 when
 * the whole report came and the child exited with 0, and *out holds it. */
static int run_forked(void (*fn)(void *report, void *arg), void *arg, void *out, size_t size,
                      int max_s)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(fds[0]);
        void *r = calloc(1, size);
        if (!r)
            _exit(4);
        fn(r, arg);
        ssize_t w = write(fds[1], r, size);
        _exit(w == (ssize_t)size ? 0 : 3);
    }
    close(fds[1]);
    memset(out, 0, size);
    size_t got = 0;
    for (int i = 0; i < max_s * 10 && got < size; i++) { /* 100 ms each */
        struct pollfd pf = {fds[0], POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t n = read(fds[0], (char *)out + got, size - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    if (got < size)
        kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    return got == size && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void run_child_fn(void *report, void *arg)
{
    (void)arg;
    child(report);
}

/* Runs child() in a fresh process; returns 0 and fills *out. */
static int run_child(struct result *out)
{
    return run_forked(run_child_fn, NULL, out, sizeof(*out), 60);
}

static struct result R;
static int R_rc = -2;

static struct result *result(void)
{
    if (R_rc == -2)
        R_rc = run_child(&R);
    cr_assert_eq(R_rc, 0, "the child did not report (crashed or hung)");
    RES = &R;
    return RES;
}

TestSuite(seccomp, .timeout = 90);

Test(seccomp, io_uring_denied_auto_falls_back_to_poll_and_delivers_everything)
{
    struct result *r = result();
    cr_assert_geq(r->stage, 2, "seccomp filter not installed: %d", r->filter_rc);
    cr_log_info("child: io_mode %d, delivered %llu, sink queued %llu, WARN: '%s'", r->io_mode,
                (unsigned long long)r->delivered, (unsigned long long)r->sink_queued,
                r->first_warn);
    cr_expect_eq(r->probe_errno, EPERM, "io_uring_setup not denied by the filter");
    cr_assert_eq(r->new_auto_rc, 0, "AUTO client: %s", segops_strerror(r->new_auto_rc));
    cr_assert_eq(r->stage, 99, "stopped at stage %d", r->stage);
    cr_expect_eq(r->io_mode, SEGOPS_IO_POLL);
    cr_expect_eq(r->flush_rc, 0, "%s", segops_strerror(r->flush_rc));
    cr_expect_eq(r->accepted, (uint64_t)THREADS * PER);
    cr_expect_eq(r->delivered, (uint64_t)THREADS * PER);
    cr_expect_eq(r->failed, 0);
    cr_expect_eq(r->pending, 0);
    cr_expect_eq(r->sink_queued, (uint64_t)THREADS * PER);
    cr_expect_eq(r->shutdown_rc, 0);
    cr_expect_eq(r->undelivered, 0);
    cr_expect_geq(r->warn_fallback, 1, "no WARN line about the fallback; first WARN: '%s'",
                  r->first_warn);
}

Test(seccomp, io_uring_denied_forced_uring_is_eio)
{
    struct result *r = result();
    cr_assert_geq(r->stage, 3, "stopped at stage %d (filter %d)", r->stage, r->filter_rc);
    cr_expect_eq(r->new_uring_rc, SEGOPS_EIO, "got %s", segops_strerror(r->new_uring_rc));
}

/* ------------------------------------------------- part 2: membarrier */

#ifndef __NR_membarrier
#define __NR_membarrier 324
#endif

struct mb_result {
    int stage;
    int asym;               /* the library relies on membarrier (queue.h) */
    int filter_rc;
    int probe_errno;        /* membarrier() after the filter */
    int shutdown_rc;
    uint64_t ok, refused, other, undelivered, sink_queued;
    uint32_t warn_mb, error_mb, error_none;
    char line[300];
};

static pthread_mutex_t mb_mu = PTHREAD_MUTEX_INITIALIZER;

static void mb_log(void *user, int level, const char *line)
{
    struct mb_result *r = user;
    if (!strstr(line, "membarrier") && !strstr(line, "barrier"))
        return;
    pthread_mutex_lock(&mb_mu);
    if (level == SEGOPS_LOG_WARN && strstr(line, "membarrier() failed") &&
        strstr(line, "cpu migration"))
        r->warn_mb++;
    if (level == SEGOPS_LOG_ERROR && strstr(line, "membarrier() failed"))
        r->error_mb++;
    if (level == SEGOPS_LOG_ERROR && strstr(line, "stays mapped"))
        r->error_none++;
    if (!r->line[0])
        snprintf(r->line, sizeof(r->line), "%s", line);
    pthread_mutex_unlock(&mb_mu);
}

static int install_deny(const int *nrs, int n)
{
#ifdef SC_ARCH
    struct sock_filter f[16];
    int k = 0;
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, arch));
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SC_ARCH, 1, 0);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, nr));
    for (int i = 0; i < n; i++) /* match: jump over the rest to the deny */
        f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nrs[i],
                                              (unsigned char)(n - i), 0);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
                                          SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA));
    struct sock_fprog prog = {(unsigned short)k, f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -errno;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        return -errno;
    return 0;
#else
    (void)nrs;
    (void)n;
    return -ENOSYS;
#endif
}

struct mb_prod {
    segops_client *c;
    int id;
    uint64_t ok, refused, other;
    atomic_int done;
};

/* Tracks until refused by shutdown (then stops: no call after that). */
static void *mb_producer(void *arg)
{
    struct mb_prod *p = arg;
    for (uint64_t i = 0;; i++) {
        segops_prop props[] = {SEGOPS_I64("thread", p->id), SEGOPS_I64("seq", (int64_t)i)};
        segops_event ev = {.user_id = "user-1", .event_type = "page_viewed", .payload = props, .payload_len = 2};
        int rc = segops_track(p->c, &ev);
        if (rc == 0)
            p->ok++;
        else if (rc == SEGOPS_ESHUTDOWN)
            break;
        else if (rc == SEGOPS_EFULL)
            sched_yield();
        else
            p->other++;
    }
    p->refused = 1;
    atomic_store(&p->done, 1);
    return NULL;
}

struct mb_closer {
    segops_client *c;
    struct mb_result *r;
    int deny_affinity;
};

/* The filter is this thread's alone: the closer is the one refused. */
static void *mb_close(void *arg)
{
    struct mb_closer *k = arg;
    int nrs[2] = {__NR_membarrier, __NR_sched_setaffinity};
    k->r->filter_rc = install_deny(nrs, k->deny_affinity ? 2 : 1);
    if (k->r->filter_rc != 0)
        return NULL;
    errno = 0;
    long rc = syscall(__NR_membarrier, 0 /* MEMBARRIER_CMD_QUERY */, 0, 0);
    k->r->probe_errno = rc < 0 ? errno : 0;
    k->r->stage = 2;
    k->r->shutdown_rc = segops_shutdown(k->c, 30000, &k->r->undelivered);
    k->r->stage = 3;
    return NULL;
}

static void mb_child(struct mb_result *r, int deny_affinity)
{
    struct sink_opts so;
    memset(&so, 0, sizeof(so));
    uint16_t port = 0;
    struct sink *s = sink_start(&so, &port);
    if (!s)
        return;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)port);
    segops_options o = SEGOPS_OPTIONS_INIT;
    o.api_url = url;
    o.api_key = "sk_test";
    o.flush_interval_ms = 50;
    o.queue_capacity = 4096;
    o.logger = mb_log;
    o.logger_user = r;
    segops_client *c = NULL;
    if (segops_client_new(&o, &c) != 0)
        return;
    r->stage = 1;
    r->asym = sg_mode.asym;
    pthread_t th[THREADS];
    struct mb_prod p[THREADS];
    memset(p, 0, sizeof(p));
    for (int i = 0; i < THREADS; i++) {
        p[i].c = c;
        p[i].id = i;
        pthread_create(&th[i], NULL, mb_producer, &p[i]);
    }
    /* let them run, then hold deliveries: shutdown cannot return before
     * every producer has been refused (no call after it returned) */
    for (int i = 0; i < 10000; i++) {
        segops_counters st = SEGOPS_COUNTERS_INIT;
        segops_stats(c, &st);
        if (st.accepted >= 2000)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    sink_hold(s, 1);
    struct mb_closer k = {c, r, deny_affinity};
    pthread_t ct;
    pthread_create(&ct, NULL, mb_close, &k);
    for (int i = 0; i < THREADS; i++) {
        while (!atomic_load(&p[i].done)) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    sink_hold(s, 0);
    pthread_join(ct, NULL);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        r->ok += p[i].ok;
        r->refused += p[i].refused;
        r->other += p[i].other;
    }
    struct sink_counts kc;
    sink_get_counts(s, &kc);
    r->sink_queued = kc.queued;
    sink_stop(s);
    r->stage = 99;
}

static void run_mb_child_fn(void *report, void *arg)
{
    mb_child(report, *(const int *)arg);
}

/* Runs mb_child() in a fresh process; returns 0 and fills *out. */
static int run_mb_child(struct mb_result *out, int deny_affinity)
{
    return run_forked(run_mb_child_fn, &deny_affinity, out, sizeof(*out), 80);
}

static void mb_expect_delivered(const struct mb_result *r)
{
    if (r->stage >= 1 && !r->asym)
        cr_skip_test("membarrier() not in use here (TSan build, or the kernel lacks it): "
                     "producers fence themselves");
    cr_assert_eq(r->stage, 99, "stopped at stage %d (filter %d)", r->stage, r->filter_rc);
    cr_log_info("accepted %llu, sink %llu; log: '%s'", (unsigned long long)r->ok,
                (unsigned long long)r->sink_queued, r->line);
    cr_expect_eq(r->probe_errno, EPERM, "membarrier() not denied by the filter");
    cr_expect_eq(r->refused, THREADS, "every producer was refused by shutdown");
    cr_expect_eq(r->other, 0);
    cr_expect_geq(r->ok, 2000);
    cr_expect_eq(r->shutdown_rc, 0, "%s", segops_strerror(r->shutdown_rc));
    cr_expect_eq(r->undelivered, 0);
    cr_expect_eq(r->sink_queued, r->ok, "every accepted event reached the sink, once");
}

Test(seccomp, membarrier_denied_after_creation_shutdown_migrates_and_says_so)
{
    struct mb_result r;
    cr_assert_eq(run_mb_child(&r, 0), 0, "the child did not report (crashed or hung)");
    mb_expect_delivered(&r);
    cr_expect_eq(r.warn_mb, 1, "no WARN naming membarrier's failure and the fallback: '%s'",
                 r.line);
    cr_expect_eq(r.error_none, 0);
}

Test(seccomp, membarrier_and_affinity_denied_shutdown_says_so_and_keeps_the_queue)
{
    struct mb_result r;
    cr_assert_eq(run_mb_child(&r, 1), 0, "the child did not report (crashed or hung)");
    mb_expect_delivered(&r);
    cr_expect_eq(r.error_mb, 1, "no ERROR naming membarrier's failure: '%s'", r.line);
    cr_expect_eq(r.error_none, 1, "no ERROR saying the queue stays mapped: '%s'", r.line);
}
