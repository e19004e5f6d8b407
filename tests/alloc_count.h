/* SPDX-License-Identifier: MIT */
/*
 * alloc_count.h -- counts heap allocations of the whole test program by
 * interposing malloc and friends (glibc's __libc_* do the work).  Include
 * in exactly one source file of a test program; never under a sanitizer,
 * which replaces the allocator itself.
 */
#ifndef SEGOPS_ALLOC_COUNT_H
#define SEGOPS_ALLOC_COUNT_H

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "segops.h"
#include "sink.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static atomic_ullong allocs;

void *malloc(size_t n)
{
    atomic_fetch_add(&allocs, 1);
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
    atomic_fetch_add(&allocs, 1);
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
    atomic_fetch_add(&allocs, 1);
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t al, size_t n)
{
    atomic_fetch_add(&allocs, 1);
    return __libc_memalign(al, n);
}
int posix_memalign(void **out, size_t al, size_t n)
{
    atomic_fetch_add(&allocs, 1);
    *out = __libc_memalign(al, n);
    return *out ? 0 : 12;
}
void free(void *p)
{
    __libc_free(p);
}

/* Starts a segops-sink in a forked child (its allocations are not this
 * process's) and returns the child's pid; *port gets its port. */
static pid_t sink_child_delay(uint16_t *port, uint32_t delay_ms)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct sink_opts so;
        memset(&so, 0, sizeof(so));
        so.delay_ms = delay_ms;
        uint16_t p = 0;
        struct sink *s = sink_start(&so, &p);
        if (write(fds[1], &p, sizeof(p)) != sizeof(p) || !s)
            _exit(1);
        for (;;)
            pause();
    }
    cr_assert_eq(read(fds[0], port, sizeof(*port)), (ssize_t)sizeof(*port));
    close(fds[0]);
    close(fds[1]);
    return pid;
}

static pid_t sink_child(uint16_t *port)
{
    return sink_child_delay(port, 0);
}

/* A client for url (ca: the CA file to trust, or NULL) with key "sk_test"
 * that sends only when flushed.  Checks that creating it allocates: the
 * interposition is live. */
static segops_client *counted_client(const char *url, const char *ca)
{
    segops_options o = SEGOPS_OPTIONS_INIT;
    o.api_url = url;
    o.api_key = "sk_test";
    o.ca_file = ca;
    o.flush_interval_ms = 60000;
    segops_client *c;
    unsigned long long at_new = atomic_load(&allocs);
    cr_assert_eq(segops_client_new(&o, &c), 0);
    /* creation is where the client allocates */
    cr_assert_gt(atomic_load(&allocs), at_new, "interposition not live");
    return c;
}

/* Warms c up (lane claim, resolution, connection, handshake: 100 events
 * and a flush), then tracks `batches` x `per_batch` events, flushing after
 * each batch; then takes c's counters into *s and shuts c down.  Checks
 * that every call of the steady state and the shutdown returned 0.
 * Returns the allocations made in that steady state. */
static unsigned long long steady_state_allocs(segops_client *c, const segops_event *ev,
                                              int batches, int per_batch, segops_counters *s)
{
    for (int i = 0; i < 100; i++)
        cr_assert_eq(segops_track(c, ev), 0);
    cr_assert_eq(segops_flush(c, 10000), 0);
    unsigned long long before = atomic_load(&allocs);
    int bad = 0;
    for (int b = 0; b < batches; b++) {
        for (int i = 0; i < per_batch; i++)
            bad += segops_track(c, ev) != 0;
        bad += segops_flush(c, 10000) != 0;
    }
    unsigned long long n = atomic_load(&allocs) - before;
    segops_stats(c, s);
    cr_expect_eq(segops_shutdown(c, 5000, NULL), 0);
    cr_expect_eq(bad, 0);
    return n;
}

#endif
