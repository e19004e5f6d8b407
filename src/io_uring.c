/*
 * io_uring.c -- the io_uring driver.
 *
 * Every socket operation is submitted linked to a link-timeout carrying the
 * time left until its deadline, so it completes either with its result or
 * with -ECANCELED (and the timeout with -ETIME).  Both completions are
 * always reaped before returning, so the ring holds nothing between calls:
 * invariant, at most two requests in flight and none after return.
 *
 * The ring must be created on the thread that uses it (SINGLE_ISSUER and
 * DEFER_TASKRUN bind it to its creator): the sender creates it.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "io.h"
#include "segops.h"

enum { TAG_OP = 1, TAG_TIMEOUT = 2 };

static void to_ts(struct __kernel_timespec *ts, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    ts->tv_sec = ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
}

/* Submits the prepared op (already in the SQ, tagged TAG_OP) linked to a
 * timeout of the time left, and waits for both completions. */
static int run_linked(struct sg_io *io, struct io_uring_sqe *op, int64_t deadline_ns)
{
    struct __kernel_timespec ts;
    int64_t left = deadline_ns - sg_mono_ns();
    if (left < 1000)
        left = 1000; /* callers checked the deadline; keep the link valid */
    to_ts(&ts, left);
    op->flags |= IOSQE_IO_LINK;
    io_uring_sqe_set_data64(op, TAG_OP);
    struct io_uring_sqe *t = io_uring_get_sqe(&io->ring);
    io_uring_prep_link_timeout(t, &ts, 0);
    io_uring_sqe_set_data64(t, TAG_TIMEOUT);

    int res = -EIO, timed_out = 0, got = 0;
    int rc = io_uring_submit(&io->ring);
    if (rc < 0)
        return rc;
    while (got < 2) {
        struct io_uring_cqe *c;
        rc = io_uring_wait_cqe(&io->ring, &c);
        if (rc == -EINTR)
            continue;
        if (rc < 0)
            return rc;
        if (io_uring_cqe_get_data64(c) == TAG_OP)
            res = c->res;
        else if (c->res == -ETIME)
            timed_out = 1;
        io_uring_cqe_seen(&io->ring, c);
        got++;
    }
    if (res == -ECANCELED && timed_out)
        return -ETIMEDOUT;
    return res;
}

static int expired(int64_t deadline_ns)
{
    return deadline_ns - sg_mono_ns() <= 0;
}

static int u_connect(struct sg_io *io, const struct sockaddr *sa, socklen_t len,
                     int64_t deadline_ns)
{
    if (expired(deadline_ns))
        return -ETIMEDOUT;
    int fd = sg_io_socket(sa->sa_family, 0);
    if (fd < 0)
        return fd;
    struct io_uring_sqe *s = io_uring_get_sqe(&io->ring);
    io_uring_prep_connect(s, fd, sa, len);
    int rc = run_linked(io, s, deadline_ns);
    if (rc != 0) {
        close(fd);
        return rc < 0 ? rc : -EIO;
    }
    io->fd = fd;
    return 0;
}

static ssize_t u_send(struct sg_io *io, const void *buf, size_t len, int64_t deadline_ns)
{
    if (expired(deadline_ns))
        return -ETIMEDOUT;
    struct io_uring_sqe *s = io_uring_get_sqe(&io->ring);
    io_uring_prep_send(s, io->fd, buf, len, MSG_NOSIGNAL);
    return run_linked(io, s, deadline_ns);
}

static ssize_t u_recv(struct sg_io *io, void *buf, size_t cap, int64_t deadline_ns)
{
    if (expired(deadline_ns))
        return -ETIMEDOUT;
    struct io_uring_sqe *s = io_uring_get_sqe(&io->ring);
    io_uring_prep_recv(s, io->fd, buf, cap, 0);
    return run_linked(io, s, deadline_ns);
}

static void u_close(struct sg_io *io)
{
    if (io->fd >= 0)
        close(io->fd);
    io->fd = -1;
}

static void u_sleep(struct sg_io *io, int64_t ns)
{
    if (ns <= 0)
        return;
    struct __kernel_timespec ts;
    to_ts(&ts, ns);
    struct io_uring_sqe *s = io_uring_get_sqe(&io->ring);
    io_uring_prep_timeout(s, &ts, 0, 0);
    io_uring_sqe_set_data64(s, TAG_TIMEOUT);
    io_uring_submit(&io->ring);
    for (;;) {
        struct io_uring_cqe *c;
        int rc = io_uring_wait_cqe(&io->ring, &c);
        if (rc == -EINTR)
            continue;
        if (rc == 0)
            io_uring_cqe_seen(&io->ring, c);
        break;
    }
}

static void u_destroy(struct sg_io *io)
{
    u_close(io);
    if (io->ring_ok)
        io_uring_queue_exit(&io->ring);
    io->ring_ok = 0;
}

static const struct sg_io_ops uring_ops = {
    "io_uring", u_connect, u_send, u_recv, u_close, u_sleep, u_destroy,
};

int sg_io_uring_init(struct sg_io *io)
{
    memset(io, 0, sizeof(*io));
    io->fd = -1;
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
        rc = io_uring_queue_init_params(8, &io->ring, &p);
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
