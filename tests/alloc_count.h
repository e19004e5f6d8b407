/*
 * alloc_count.h -- counts heap allocations of the whole test program by
 * interposing malloc and friends (glibc's __libc_* do the work).  Include
 * in exactly one source file of a test program; never under a sanitizer,
 * which replaces the allocator itself.
 */
#ifndef SEGOPS_ALLOC_COUNT_H
#define SEGOPS_ALLOC_COUNT_H

#include <stdatomic.h>
#include <stddef.h>

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

#endif
