/* SPDX-License-Identifier: MIT */
/*
 * io_uring.c -- the io_uring completion driver (see io.h).
 *
 * Each operation is one SQE carrying the sg_op pointer as user_data; a
 * cancellation is an ASYNC_CANCEL SQE with user_data 0, whose own
 * completion is ignored.  SQEs are submitted by the next wait(), so the
 * operations started in one loop turn cost one system call together.
 *
 * Invariant: io->busy counts operations whose CQE has not been delivered;
 * the ring has room for every one of them at once (entries >= max_ops, and
 * the kernel's CQ is twice that), plus their cancellations.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "io.h"
#include "segops.h"

/* An SQE, submitting what is queued first if the SQ is full. */
static struct io_uring_sqe *get_sqe(struct sg_io *io)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&io->ring);
    if (!s) {
        io_uring_submit(&io->ring);
        s = io_uring_get_sqe(&io->ring);
    }
    return s;
}

static void u_submit(struct sg_io *io, struct sg_op *op)
{
    struct io_uring_sqe *s = get_sqe(io);
    op->busy = 1;
    op->res = 0;
    io->busy++;
    if (!s) {
        /* cannot happen with the ring sized for max_ops; fail the op
         * rather than lose it: it completes on the next wait */
        op->res = -EAGAIN;
        op->next = io->done;
        io->done = op;
        return;
    }
    switch (op->kind) {
    case SG_OP_CONNECT:
        io_uring_prep_connect(s, op->fd, op->sa, op->salen);
        break;
    case SG_OP_SEND:
        io_uring_prep_send(s, op->fd, op->buf, op->len, MSG_NOSIGNAL);
        break;
    default:
        io_uring_prep_recv(s, op->fd, op->buf, op->len, 0);
        break;
    }
    io_uring_sqe_set_data(s, op);
}

static void u_cancel(struct sg_io *io, struct sg_op *op)
{
    if (!op->busy)
        return;
    struct io_uring_sqe *s = get_sqe(io);
    if (!s)
        return;
    io_uring_prep_cancel(s, op, 0);
    io_uring_sqe_set_data(s, NULL);
}

static void to_ts(struct __kernel_timespec *ts, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    ts->tv_sec = ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
}

static void deliver(struct sg_io *io, struct sg_op *op, ssize_t res)
{
    op->res = res;
    op->busy = 0;
    io->busy--;
    io->complete(io->user, op);
}

static int u_wait(struct sg_io *io, int64_t deadline_ns)
{
    int n = 0;
    /* an SQE that could not be queued: completed by hand */
    while (io->done) {
        struct sg_op *op = io->done;
        io->done = op->next;
        deliver(io, op, op->res);
        n++;
    }
    struct __kernel_timespec ts;
    struct io_uring_cqe *cqe = NULL;
    to_ts(&ts, n ? 0 : deadline_ns - sg_mono_ns());
    int rc = io_uring_submit_and_wait_timeout(&io->ring, &cqe, 1, &ts, NULL);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        return rc;
    /* Copy a run of CQEs out and advance before calling handlers: a
     * handler may submit, and submission may enter the kernel. */
    for (;;) {
        struct {
            struct sg_op *op;
            int res;
        } got[64];
        unsigned k = 0, head;
        io_uring_for_each_cqe(&io->ring, head, cqe)
        {
            if (k == 64)
                break;
            got[k].op = io_uring_cqe_get_data(cqe);
            got[k].res = cqe->res;
            k++;
        }
        if (k == 0)
            break;
        io_uring_cq_advance(&io->ring, k);
        for (unsigned i = 0; i < k; i++) {
            if (got[i].op == NULL ||
                (uint64_t)(uintptr_t)got[i].op == LIBURING_UDATA_TIMEOUT)
                continue; /* a cancellation's own completion */
            deliver(io, got[i].op, got[i].res);
            n++;
        }
    }
    return n;
}

static void u_destroy(struct sg_io *io)
{
    if (io->ring_ok)
        io_uring_queue_exit(&io->ring);
    io->ring_ok = 0;
}

static const struct sg_io_ops uring_ops = {
    "io_uring", 0, u_submit, u_cancel, u_wait, u_destroy,
};

int sg_io_uring_init(struct sg_io *io, unsigned max_ops,
                     void (*complete)(void *, struct sg_op *), void *user)
{
    memset(io, 0, sizeof(*io));
    io->complete = complete;
    io->user = user;
    io->max_ops = max_ops;
    /* room for every op and a cancellation of each */
    unsigned entries = 8;
    while (entries < 2 * max_ops && entries < 4096)
        entries *= 2;
    /* strongest flags first; older kernels reject unknown ones with EINVAL */
    unsigned tries[4] = {0, 0, 0, 0};
    int n = 0;
#if defined(IORING_SETUP_SINGLE_ISSUER) && defined(IORING_SETUP_DEFER_TASKRUN)
    tries[n++] = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
#endif
#if defined(IORING_SETUP_COOP_TASKRUN)
    tries[n++] = IORING_SETUP_COOP_TASKRUN;
#endif
    tries[n++] = 0;
    int rc = -EINVAL;
    for (int i = 0; i < n; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof(p));
        p.flags = tries[i];
        rc = io_uring_queue_init_params(entries, &io->ring, &p);
        if (rc != -EINVAL)
            break;
    }
    if (rc < 0)
        return rc;
    io->ring_ok = 1;
    io->ops = &uring_ops;
    io->mode = SEGOPS_IO_URING;
    return 0;
}
