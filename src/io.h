/*
 * io.h -- internal: the sender's byte-stream driver.
 *
 * One connection, one operation at a time, each bounded by an absolute
 * CLOCK_MONOTONIC deadline.  Two implementations: io_uring (connect, send,
 * recv each linked to a link-timeout; sleeps are io_uring timeouts) and a
 * fallback on non-blocking sockets + poll() for kernels or sandboxes where
 * io_uring cannot be set up.  Protocol code above this (HTTP, TLS) never
 * sees which one runs.
 *
 * Return convention: >= 0 bytes (recv: 0 is EOF), or -errno; a passed
 * deadline is -ETIMEDOUT.
 */
#ifndef SG_IO_H
#define SG_IO_H

#include <liburing.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct sg_io;

struct sg_io_ops {
    const char *name;
    int (*connect)(struct sg_io *io, const struct sockaddr *sa, socklen_t len,
                   int64_t deadline_ns);
    ssize_t (*send)(struct sg_io *io, const void *buf, size_t len, int64_t deadline_ns);
    ssize_t (*recv)(struct sg_io *io, void *buf, size_t cap, int64_t deadline_ns);
    void (*close)(struct sg_io *io);
    void (*sleep)(struct sg_io *io, int64_t ns);
    void (*destroy)(struct sg_io *io);
};

struct sg_io {
    const struct sg_io_ops *ops;
    int mode;      /* SEGOPS_IO_URING or SEGOPS_IO_POLL */
    int fd;        /* connected socket or -1 */
    struct io_uring ring;
    int ring_ok;
};

/* Set up io_uring.  Returns 0 or -errno (-ENOSYS, -EPERM, ...). */
int sg_io_uring_init(struct sg_io *io);
/* Set up the poll() driver.  Cannot fail. */
int sg_io_poll_init(struct sg_io *io);

/* Creates a close-on-exec TCP socket with TCP_NODELAY for the family,
 * non-blocking if asked (io_uring wants blocking sockets: it honours
 * O_NONBLOCK by failing with -EAGAIN instead of waiting); -errno on
 * failure.  Shared by both drivers. */
int sg_io_socket(int family, int nonblock);

#endif
