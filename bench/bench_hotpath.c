/* SPDX-License-Identifier: MIT */
/*
 * bench_hotpath.c -- B2: nothing on the hot path.  Over 1,000,000 calls of
 * segops_track() it counts, on the producer threads only:
 *
 *   heap allocations  malloc/calloc/realloc/free/aligned_alloc/
 *                     posix_memalign/memalign/valloc/pvalloc are interposed
 *                     in this binary and counted per thread (__thread
 *                     counters, armed only around the measured calls);
 *   system calls      each producer thread installs a seccomp filter for
 *                     itself only (no TSYNC) that traps every system call
 *                     with SIGSYS; while armed the handler counts it,
 *                     records its number and lets it fail with ENOSYS.
 *                     Disarmed, the handler performs the call itself
 *                     through a stub whose address the filter allows, so
 *                     the thread can still exit normally.
 *
 * The first call of each thread (which claims its lane) is reported apart
 * from the rest.  The sender thread's allocations during the run are
 * counted too (the contract: none per event or per batch while connected).
 * Events go to an in-process segops-sink on 127.0.0.1.
 *
 *   bench_hotpath [--calls 1000000] [--threads 1,4]
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>

#include "bench_client.h"
#include "bench_common.h"
#include "segops.h"
#include "sink.h"

/* ------------------------------------------------ allocation counting */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static __thread volatile int tl_armed_alloc __attribute__((tls_model("initial-exec")));
static __thread volatile unsigned long tl_allocs __attribute__((tls_model("initial-exec")));
static __thread int tl_tid __attribute__((tls_model("initial-exec")));
static _Atomic int sender_tid;
static _Atomic unsigned long sender_allocs;

static inline void count_alloc(void)
{
    if (tl_armed_alloc) {
        tl_allocs++;
        return;
    }
    int s = atomic_load_explicit(&sender_tid, memory_order_relaxed);
    if (s) {
        if (!tl_tid)
            tl_tid = gettid();
        if (tl_tid == s)
            atomic_fetch_add_explicit(&sender_allocs, 1, memory_order_relaxed);
    }
}

void *malloc(size_t n)
{
    count_alloc();
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
    count_alloc();
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
    count_alloc();
    return __libc_realloc(p, n);
}
void free(void *p)
{
    if (p)
        count_alloc();
    __libc_free(p);
}
void *memalign(size_t al, size_t n)
{
    count_alloc();
    return __libc_memalign(al, n);
}
void *aligned_alloc(size_t al, size_t n)
{
    count_alloc();
    return __libc_memalign(al, n);
}
int posix_memalign(void **out, size_t al, size_t n)
{
    count_alloc();
    void *p = __libc_memalign(al, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}
void *valloc(size_t n)
{
    count_alloc();
    return __libc_memalign(4096, n);
}
void *pvalloc(size_t n)
{
    count_alloc();
    return __libc_memalign(4096, (n + 4095) & ~(size_t)4095);
}

/* ---------------------------------------------- system-call trapping */

/* long bench_raw_syscall(long nr, a1..a6): the only place allowed to make
 * a system call once a thread's filter is installed. */
__asm__(".text\n"
        ".globl bench_raw_syscall\n"
        ".type bench_raw_syscall,@function\n"
        "bench_raw_syscall:\n"
        "  mov %rdi, %rax\n"
        "  mov %rsi, %rdi\n"
        "  mov %rdx, %rsi\n"
        "  mov %rcx, %rdx\n"
        "  mov %r8, %r10\n"
        "  mov %r9, %r8\n"
        "  mov 8(%rsp), %r9\n"
        "  syscall\n"
        ".globl bench_raw_syscall_ret\n"
        "bench_raw_syscall_ret:\n"
        "  ret\n"
        ".size bench_raw_syscall, .-bench_raw_syscall\n");
long bench_raw_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6);
extern char bench_raw_syscall_ret[];

#define MAXREC 16
static __thread volatile int tl_armed_sys __attribute__((tls_model("initial-exec")));
static __thread volatile unsigned long tl_syscalls __attribute__((tls_model("initial-exec")));
static __thread volatile int tl_rec[MAXREC] __attribute__((tls_model("initial-exec")));
static __thread volatile int tl_nrec __attribute__((tls_model("initial-exec")));

static void on_sigsys(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    if (tl_armed_sys) {
        tl_syscalls++;
        if (tl_nrec < MAXREC)
            tl_rec[tl_nrec++] = si->si_syscall;
        g[REG_RAX] = -ENOSYS;
        return;
    }
    g[REG_RAX] = bench_raw_syscall(si->si_syscall, g[REG_RDI], g[REG_RSI], g[REG_RDX],
                                   g[REG_R10], g[REG_R8], g[REG_R9]);
}

/* Traps every system call of the calling thread except rt_sigreturn and
 * those made from bench_raw_syscall. */
static int install_filter(void)
{
    uint64_t ip = (uint64_t)(uintptr_t)bench_raw_syscall_ret;
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_sigreturn, 5, 0),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)ip, 0, 2),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, instruction_pointer) + 4),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(ip >> 32), 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof(f) / sizeof(f[0])), f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

/* ------------------------------------------------------------ producers */

struct prod {
    segops_client *c;
    long calls;
    pthread_barrier_t *bar;
    int filter_rc;
    unsigned long first_allocs, first_sys, allocs, sys;
    int rec[MAXREC], nrec;
    uint64_t ok, full, other;
};

static void *producer(void *arg)
{
    struct prod *p = arg;
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95)};
    segops_event ev = {
        .user_id = "user-123", .event_type = "order_placed", .payload = props, .payload_len = 2};
    p->filter_rc = install_filter();
    /* self-test: a deliberate system call must be trapped and counted */
    tl_armed_sys = 1;
    long r = syscall(SYS_getppid);
    tl_armed_sys = 0;
    int e = errno;
    if (p->filter_rc == 0 && !(tl_syscalls == 1 && r == -1 && e == ENOSYS))
        p->filter_rc = -2;
    /* self-test: an allocation must be counted */
    tl_armed_alloc = 1;
    void *volatile probe = malloc(24);
    free(probe);
    tl_armed_alloc = 0;
    if (p->filter_rc == 0 && tl_allocs != 2)
        p->filter_rc = -3;
    tl_allocs = 0;
    tl_syscalls = 0;
    tl_nrec = 0;
    pthread_barrier_wait(p->bar); /* outside the armed window */

    /* the first call: claims the lane */
    tl_armed_alloc = tl_armed_sys = 1;
    int rc = segops_track(p->c, &ev);
    tl_armed_alloc = tl_armed_sys = 0;
    p->first_allocs = tl_allocs;
    p->first_sys = tl_syscalls;
    p->ok += rc == 0;
    tl_allocs = tl_syscalls = 0;
    tl_nrec = 0;

    tl_armed_alloc = tl_armed_sys = 1;
    for (long i = 1; i < p->calls; i++) {
        rc = segops_track(p->c, &ev);
        p->ok += rc == 0;
        p->full += rc == SEGOPS_EFULL;
        p->other += rc != 0 && rc != SEGOPS_EFULL;
        if (i % 20 == 19)
            spin_ns(2000);
    }
    tl_armed_alloc = tl_armed_sys = 0;
    p->allocs = tl_allocs;
    p->sys = tl_syscalls;
    p->nrec = tl_nrec;
    for (int k = 0; k < MAXREC; k++)
        p->rec[k] = tl_rec[k];
    return NULL;
}

static void run(uint16_t port, int threads, long total)
{
    char url[64];
    bench_sink_url(url, sizeof(url), port);
    segops_options o;
    bench_client_opts(&o, url);
    o.max_producers = (uint32_t)threads;
    segops_client *c = bench_client_new(&o, "bench_hotpath");
    int stid = find_task("segops-sender");
    segops_counters s0 = SEGOPS_COUNTERS_INIT, s1 = SEGOPS_COUNTERS_INIT;
    segops_stats(c, &s0);
    atomic_store(&sender_allocs, 0);
    atomic_store(&sender_tid, stid > 0 ? stid : 0);

    struct prod *p = calloc((size_t)threads, sizeof(*p));
    pthread_t th[64];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++) {
        p[i].c = c;
        p[i].calls = total / threads;
        p[i].bar = &bar;
        pthread_create(&th[i], NULL, producer, &p[i]);
    }
    unsigned long fa = 0, fs = 0, a = 0, sc = 0;
    uint64_t ok = 0, full = 0;
    int filt_ok = 1;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        fa += p[i].first_allocs;
        fs += p[i].first_sys;
        a += p[i].allocs;
        sc += p[i].sys;
        ok += p[i].ok;
        full += p[i].full;
        filt_ok &= p[i].filter_rc == 0;
    }
    segops_flush(c, 30000);
    atomic_store(&sender_tid, 0);
    segops_stats(c, &s1);
    unsigned long sa = atomic_load(&sender_allocs);
    segops_shutdown(c, 30000, NULL);

    printf("| %2d | %8ld | %8" PRIu64 " | %7" PRIu64 " | %11lu | %13lu | %11lu | %13lu | %s |"
           " %9lu / %" PRIu64 " |\n",
           threads, total, ok, full, fa, fs, a - 0, sc, filt_ok ? "pass     " : "FAIL     ", sa,
           s1.batches - s0.batches);
    for (int i = 0; i < threads; i++)
        if (p[i].nrec) {
            printf("#   thread %d system calls seen:", i);
            for (int k = 0; k < p[i].nrec; k++)
                printf(" %d", p[i].rec[k]);
            printf("\n");
        }
    if (a == 0 && sc == 0 && filt_ok)
        printf("# %d producer thread(s): 0 allocations, 0 system calls over %ld tracks\n",
               threads, total);
    else
        printf("# %d producer thread(s): %lu allocations, %lu system calls over %ld tracks%s\n",
               threads, a, sc, total, filt_ok ? "" : " (self-test FAILED: counts not trustworthy)");
    fflush(stdout);
    pthread_barrier_destroy(&bar);
    free(p);
}

int main(int argc, char **argv)
{
    long calls = 1000000;
    const char *threads = "1,4";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--calls") && i + 1 < argc)
            calls = bench_num(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--calls N] [--threads 1,4]\n", argv[0]);
            return 2;
        }
    }
    bench_calibrate();
    bench_machine(stdout);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);

    uint16_t port;
    struct sink *sink = bench_sink_start(NULL, &port);
    if (!sink)
        return 1;
    printf("# producer threads: allocations and system calls inside segops_track()\n"
           "# pattern: 20 calls, 2 us spin; first = each thread's first call (lane claim)\n\n");
    printf("| th |    calls | accepted |   EFULL | first alloc | first syscall | allocations |"
           " system calls | self-test | sender allocs / batches |\n");
    printf("|----|----------|----------|---------|-------------|---------------|-------------|"
           "---------------|-----------|-------------------------|\n");
    for (const char *t = threads; t && *t;) {
        int n = (int)bench_list_item(t);
        if (n >= 1 && n <= 64)
            run(port, n, calls);
        t = strchr(t, ',');
        if (t)
            t++;
    }
    sink_stop(sink);
    return 0;
}
