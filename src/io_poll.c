/* SPDX-License-Identifier: MIT */
/*
 * io_poll.c -- the fallback completion driver: non-blocking sockets and
 * ppoll() (see io.h).
 *
 * submit() tries the operation at once; if the socket is not ready the op
 * joins `pending`, else its result joins `done`.  wait() polls the pending
 * ops' sockets (not at all when something is already done), retries the
 * ready ones, and delivers `done` in completion order.  cancel() moves a
 * pending op to `done` with -ECANCELED.
 *
 * Invariant: a busy op is on exactly one of `pending` and `done`.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "io.h"
#include "segops.h"

int sg_io_socket(int family, int nonblock)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int sg_io_idle_check(int fd)
{
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    return -1; /* EOF, bytes nobody asked for, or an error */
}

/* One non-blocking try: 1 when the op completed (res set), 0 when it must
 * wait for readiness. */
static int attempt(struct sg_op *op, int first)
{
    ssize_t n;
    switch (op->kind) {
    case SG_OP_CONNECT:
        if (first) {
            if (connect(op->fd, op->sa, op->salen) == 0) {
                op->res = 0;
                return 1;
            }
            if (errno == EINPROGRESS || errno == EINTR)
                return 0;
            op->res = -errno;
            return 1;
        } else {
            int err = 0;
            socklen_t el = sizeof(err);
            if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
                err = errno;
            op->res = -err;
            return 1;
        }
    case SG_OP_SEND:
        n = send(op->fd, op->buf, op->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        break;
    default:
        n = recv(op->fd, op->buf, op->len, MSG_DONTWAIT);
        break;
    }
    if (n >= 0) {
        op->res = n;
        return 1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    op->res = -errno;
    return 1;
}

static void push_done(struct sg_io *io, struct sg_op *op)
{
    op->next = NULL;
    *io->done_tail = op;
    io->done_tail = &op->next;
}

static void p_submit(struct sg_io *io, struct sg_op *op)
{
    op->busy = 1;
    op->res = 0;
    io->busy++;
    if (attempt(op, 1)) {
        push_done(io, op);
    } else {
        op->next = io->pending;
        io->pending = op;
    }
}

static void p_cancel(struct sg_io *io, struct sg_op *op)
{
    for (struct sg_op **pp = &io->pending; *pp; pp = &(*pp)->next) {
        if (*pp == op) {
            *pp = op->next;
            op->res = -ECANCELED;
            push_done(io, op);
            return;
        }
    }
}

static int p_wait(struct sg_io *io, int64_t deadline_ns)
{
    if (io->pending) {
        unsigned n = 0;
        for (struct sg_op *op = io->pending; op && n < io->max_ops; op = op->next) {
            io->pfd[n].fd = op->fd;
            io->pfd[n].events = op->kind == SG_OP_RECV ? POLLIN : POLLOUT;
            io->pfd[n].revents = 0;
            io->pop[n++] = op;
        }
        int64_t left = io->done ? 0 : deadline_ns - sg_mono_ns();
        if (left < 0)
            left = 0;
        struct timespec ts = {.tv_sec = left / 1000000000, .tv_nsec = left % 1000000000};
        int k = ppoll(io->pfd, n, &ts, NULL);
        for (unsigned i = 0; k > 0 && i < n; i++) {
            if (!io->pfd[i].revents)
                continue;
            struct sg_op *op = io->pop[i];
            if (!attempt(op, 0))
                continue;
            for (struct sg_op **pp = &io->pending; *pp; pp = &(*pp)->next) {
                if (*pp == op) {
                    *pp = op->next;
                    break;
                }
            }
            push_done(io, op);
        }
    } else if (!io->done) {
        int64_t left = deadline_ns - sg_mono_ns();
        if (left > 0) {
            struct timespec ts = {.tv_sec = left / 1000000000, .tv_nsec = left % 1000000000};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            }
        }
    }
    /* deliver what is done now; what handlers complete waits for the
     * next wait() */
    struct sg_op *list = io->done;
    io->done = NULL;
    io->done_tail = &io->done;
    int n = 0;
    while (list) {
        struct sg_op *op = list;
        list = op->next;
        op->busy = 0;
        io->busy--;
        io->complete(io->user, op);
        n++;
    }
    return n;
}

static void p_destroy(struct sg_io *io)
{
    free(io->pfd);
    free(io->pop);
    io->pfd = NULL;
    io->pop = NULL;
}

static const struct sg_io_ops poll_ops = {
    "poll", 1, p_submit, p_cancel, p_wait, p_destroy,
};

int sg_io_poll_init(struct sg_io *io, unsigned max_ops,
                    void (*complete)(void *, struct sg_op *), void *user)
{
    memset(io, 0, sizeof(*io));
    io->complete = complete;
    io->user = user;
    io->max_ops = max_ops;
    io->done_tail = &io->done;
    io->pfd = calloc(max_ops, sizeof(*io->pfd));
    io->pop = calloc(max_ops, sizeof(*io->pop));
    if (!io->pfd || !io->pop) {
        p_destroy(io);
        return -ENOMEM;
    }
    io->ops = &poll_ops;
    io->mode = SEGOPS_IO_POLL;
    return 0;
}
