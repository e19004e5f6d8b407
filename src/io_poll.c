/*
 * io_poll.c -- the fallback driver: non-blocking socket + poll().
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
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

/* Waits for `events` on fd until the deadline: 0, or -ETIMEDOUT / -errno. */
static int wait_fd(int fd, short events, int64_t deadline_ns)
{
    for (;;) {
        int64_t left = deadline_ns - sg_mono_ns();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int ms = (int)((left + 999999) / 1000000);
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int p_connect(struct sg_io *io, const struct sockaddr *sa, socklen_t len,
                     int64_t deadline_ns)
{
    int fd = sg_io_socket(sa->sa_family, 1);
    if (fd < 0)
        return fd;
    if (connect(fd, sa, len) != 0 && errno != EINPROGRESS) {
        int e = -errno;
        close(fd);
        return e;
    }
    int rc = wait_fd(fd, POLLOUT, deadline_ns);
    if (rc == 0) {
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
            err = errno;
        rc = -err;
    }
    if (rc != 0) {
        close(fd);
        return rc;
    }
    io->fd = fd;
    return 0;
}

static ssize_t p_send(struct sg_io *io, const void *buf, size_t len, int64_t deadline_ns)
{
    for (;;) {
        ssize_t n = send(io->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_fd(io->fd, POLLOUT, deadline_ns);
        if (rc)
            return rc;
    }
}

static ssize_t p_recv(struct sg_io *io, void *buf, size_t cap, int64_t deadline_ns)
{
    for (;;) {
        ssize_t n = recv(io->fd, buf, cap, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_fd(io->fd, POLLIN, deadline_ns);
        if (rc)
            return rc;
    }
}

static void p_close(struct sg_io *io)
{
    if (io->fd >= 0)
        close(io->fd);
    io->fd = -1;
}

static void p_sleep(struct sg_io *io, int64_t ns)
{
    (void)io;
    if (ns <= 0)
        return;
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void p_destroy(struct sg_io *io)
{
    p_close(io);
}

static const struct sg_io_ops poll_ops = {
    "poll", p_connect, p_send, p_recv, p_close, p_sleep, p_destroy,
};

int sg_io_poll_init(struct sg_io *io)
{
    memset(io, 0, sizeof(*io));
    io->ops = &poll_ops;
    io->mode = SEGOPS_IO_POLL;
    io->fd = -1;
    return 0;
}
