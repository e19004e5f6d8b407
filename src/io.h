/* SPDX-License-Identifier: MIT */
/*
 * io.h -- internal: the sender's completion driver.
 *
 * The sender is an event loop: it starts socket operations (connect, send,
 * recv) on any number of connections, then waits for completions, each
 * delivered to io->complete with the operation's result.  Two
 * implementations behind one interface:
 *
 *   io_uring  each operation is one SQE whose user_data is the sg_op; the
 *             wait is io_uring_submit_and_wait_timeout().  Sockets are
 *             blocking (io_uring honours O_NONBLOCK by failing with
 *             -EAGAIN instead of waiting).
 *   poll      non-blocking sockets; an operation is tried at once when
 *             submitted, and otherwise when ppoll() says its socket is
 *             ready.  For kernels and sandboxes without io_uring.
 *
 * Rules (both drivers):
 *   - An operation is `busy` from submit until its completion has been
 *     delivered; its buffer and address MUST stay valid and untouched
 *     meanwhile, and it MUST NOT be submitted again.
 *   - Every submitted operation completes exactly once, also when
 *     cancelled (then usually with -ECANCELED, but a result that raced the
 *     cancellation may arrive instead).  So the owner of an operation frees
 *     or reuses it only after its completion: that is what a closing
 *     connection waits for.
 *   - Completions are delivered only from wait(), never from submit() or
 *     cancel(), so a handler may submit and cancel freely.
 *   - There are no timers here: the loop computes its earliest deadline
 *     and passes it to wait().
 *
 * Results: connect 0 or -errno; send bytes written (may be short) or
 * -errno; recv bytes read, 0 at EOF, or -errno.
 */
#ifndef SG_IO_H
#define SG_IO_H

#include <liburing.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

enum sg_op_kind { SG_OP_CONNECT = 1, SG_OP_SEND, SG_OP_RECV };

struct sg_op {
    /* set by the owner before submit */
    int kind;                   /* enum sg_op_kind */
    int fd;
    void *buf;                  /* send: bytes to write; recv: room */
    size_t len;
    const struct sockaddr *sa;  /* connect */
    socklen_t salen;
    void *owner;                /* for the completion handler */
    /* driver state */
    int busy;                   /* submitted, completion not yet delivered */
    ssize_t res;                /* the result, valid in the handler */
    struct sg_op *next;         /* poll driver: pending or done list */
};

struct sg_io;

struct sg_io_ops {
    const char *name;
    int nonblock;               /* sockets for this driver are O_NONBLOCK */
    void (*submit)(struct sg_io *io, struct sg_op *op);
    /* Asks a busy operation to finish now; it still completes. */
    void (*cancel)(struct sg_io *io, struct sg_op *op);
    /* Waits until a completion is available or the absolute
     * CLOCK_MONOTONIC deadline passes (<= now: does not wait), then
     * delivers the completions available.  Returns how many. */
    int (*wait)(struct sg_io *io, int64_t deadline_ns);
    /* Frees the driver.  No operation may be busy. */
    void (*destroy)(struct sg_io *io);
};

struct sg_io {
    const struct sg_io_ops *ops;
    int mode;                   /* SEGOPS_IO_URING or SEGOPS_IO_POLL */
    void (*complete)(void *user, struct sg_op *op);
    void *user;
    unsigned busy;              /* operations submitted, not yet delivered */
    /* io_uring */
    struct io_uring ring;
    int ring_ok;
    /* poll */
    struct sg_op *pending;      /* waiting for readiness */
    struct sg_op *done, **done_tail; /* completed, to deliver */
    struct pollfd *pfd;         /* max_ops entries */
    struct sg_op **pop;         /* the op of each pfd entry */
    unsigned max_ops;
};

/* Set up a driver for at most max_ops operations busy at once, delivering
 * completions to complete(user, op).  io_uring: 0 or -errno (-ENOSYS,
 * -EPERM, ...); poll: 0 or -ENOMEM.  Must run on the thread that will use
 * the driver (io_uring's SINGLE_ISSUER binds the ring to it). */
int sg_io_uring_init(struct sg_io *io, unsigned max_ops,
                     void (*complete)(void *, struct sg_op *), void *user);
int sg_io_poll_init(struct sg_io *io, unsigned max_ops,
                    void (*complete)(void *, struct sg_op *), void *user);

/* Creates a close-on-exec TCP socket with TCP_NODELAY for the family,
 * non-blocking if asked; -errno on failure.  Shared by both drivers. */
int sg_io_socket(int family, int nonblock);

/* Whether an idle connection is still usable: 0 when nothing is waiting on
 * the socket, -1 when the peer closed it, reset it, or sent bytes nobody
 * asked for (a 408 on an idle keep-alive connection, a TLS alert).  A
 * non-blocking peek: works with either driver's sockets. */
int sg_io_idle_check(int fd);

#endif
