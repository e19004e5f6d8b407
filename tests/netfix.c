/* SPDX-License-Identifier: MIT */
/* netfix.c -- see netfix.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "netfix.h"
#include "harness.h" /* h_now_ms, h_sleep_ms */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

/* numeric ip + port -> address; 0 or -1 (EINVAL) */
static int mkaddr(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *len = sizeof(*a4);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *len = sizeof(*a6);
        return 0;
    }
    errno = EINVAL;
    return -1;
}

static uint16_t port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t l = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &l) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void close_keep_errno(int fd)
{
    int e = errno;
    if (fd >= 0)
        close(fd);
    errno = e;
}

/* A listening TCP socket on ip:port; rcvbuf > 0 sets SO_RCVBUF first (the
 * accepted sockets inherit it).  -1 on error (errno set). */
static int listen_on(const char *ip, uint16_t port, int backlog, int rcvbuf, int nonblock)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (mkaddr(ip, port, &ss, &sl) != 0)
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, backlog) != 0) {
        close_keep_errno(fd);
        return -1;
    }
    return fd;
}

/* Starts a non-blocking connect to ss; the socket, or -1. */
static int connect_start(const struct sockaddr_storage *ss, socklen_t sl)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)ss, sl) != 0 && errno != EINPROGRESS) {
        close_keep_errno(fd);
        return -1;
    }
    return fd;
}

/* Waits up to ms for a connect started by connect_start(): 1 connected,
 * 0 still pending, -1 failed (errno set). */
static int connect_wait(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int64_t end = h_now_ms() + ms;
    for (;;) {
        int left = (int)(end - h_now_ms());
        if (left < 0)
            left = 0;
        int n = poll(&p, 1, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            errno = err;
            return -1;
        }
        return 1;
    }
}

/* The accept queue of a listener: *queued, *max (TCP_INFO aliases tcpi_unacked
 * and tcpi_sacked for listeners).  0 or -1. */
static int accept_queue(int lfd, unsigned *queued, unsigned *max)
{
    struct tcp_info ti;
    socklen_t l = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(lfd, IPPROTO_TCP, TCP_INFO, &ti, &l) != 0)
        return -1;
    *queued = ti.tcpi_unacked;
    *max = ti.tcpi_sacked;
    return 0;
}

struct waker {
    int fd[2];
};

static int waker_init(struct waker *w)
{
    return pipe2(w->fd, O_CLOEXEC | O_NONBLOCK);
}

static void waker_kick(struct waker *w)
{
    char one = 1;
    while (write(w->fd[1], &one, 1) < 0 && errno == EINTR) {
    }
}

/* Empties the pipe once a kick has been seen (or poll would return at once
 * from then on). */
static void waker_drain(struct waker *w)
{
    char buf[64];
    while (read(w->fd[0], buf, sizeof(buf)) > 0) {
    }
}

static void waker_close(struct waker *w)
{
    close(w->fd[0]);
    close(w->fd[1]);
}

/* ------------------------------------------------------------ black hole */

#define BH_MAX_FILL 64

struct netfix_blackhole {
    int lfd;
    int fill[BH_MAX_FILL];
    int nfill;
};

void netfix_blackhole_stop(struct netfix_blackhole *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->nfill; i++)
        close(b->fill[i]);
    if (b->lfd >= 0)
        close(b->lfd);
    free(b);
}

struct netfix_blackhole *netfix_blackhole_start(const char *ip, uint16_t port,
                                                uint16_t *port_out)
{
    struct netfix_blackhole *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    /* backlog 0: the accept queue holds one connection (Linux counts a
     * queue as full once it holds more than the backlog) */
    b->lfd = listen_on(ip, port, 0, 0, 0);
    if (b->lfd < 0) {
        free(b);
        return NULL;
    }
    uint16_t p = port_of(b->lfd);
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    mkaddr(ip, p, &ss, &sl);
    int err = 0;
    /* Fill the accept queue with connections that complete, one at a time,
     * each seen in the queue before the next: a SYN that arrives while the
     * queue is full is dropped, and no filler is left half-open. */
    while (b->nfill < BH_MAX_FILL) {
        unsigned q = 0, max = 0;
        int have_info = accept_queue(b->lfd, &q, &max) == 0;
        if (have_info && q > max)
            break; /* full */
        int fd = connect_start(&ss, sl);
        if (fd < 0) {
            err = errno;
            break;
        }
        int rc = connect_wait(fd, 1000);
        if (rc <= 0) {
            /* pending for a second: its SYN was dropped, the queue is full */
            close(fd);
            if (rc < 0)
                err = errno;
            break;
        }
        b->fill[b->nfill++] = fd;
        if (have_info) {
            for (int w = 0; w < 1000; w += 5) {
                if (accept_queue(b->lfd, &q, &max) == 0 && q >= (unsigned)b->nfill)
                    break;
                h_sleep_ms(5);
            }
        }
    }
    if (!err) {
        /* the check: a further connect must hang */
        int fd = connect_start(&ss, sl);
        if (fd < 0) {
            err = errno;
        } else {
            int rc = connect_wait(fd, 300);
            if (rc != 0)
                err = rc > 0 ? EALREADY : errno;
            close(fd);
        }
    }
    if (err) {
        netfix_blackhole_stop(b);
        errno = err;
        return NULL;
    }
    if (port_out)
        *port_out = p;
    return b;
}

/* ------------------------------------------------------------ silent server */

#define SILENT_MAX 256

struct netfix_silent {
    int lfd;
    struct waker wk;
    pthread_t th;
    atomic_int stop;
    pthread_mutex_t mu;
    int fds[SILENT_MAX];
    int nfds;
    _Atomic uint64_t accepted;
};

static void *silent_main(void *arg)
{
    struct netfix_silent *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN},
                              {.fd = s->wk.fd[0], .events = POLLIN}};
        if (poll(p, 2, 50) <= 0)
            continue;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            continue;
        /* counted before the fd is listed: a reader that sees its unread
         * bytes (netfix_silent_unread) sees the accept counted too */
        atomic_fetch_add(&s->accepted, 1);
        pthread_mutex_lock(&s->mu);
        if (s->nfds < SILENT_MAX)
            s->fds[s->nfds++] = fd;
        else
            close(fd);
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

struct netfix_silent *netfix_silent_start(const char *ip, uint16_t port, uint16_t *port_out)
{
    struct netfix_silent *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->lfd = listen_on(ip, port, 64, 0, 1);
    if (s->lfd < 0) {
        free(s);
        return NULL;
    }
    if (waker_init(&s->wk) != 0) {
        close_keep_errno(s->lfd);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    int e = pthread_create(&s->th, NULL, silent_main, s);
    if (e) {
        close(s->lfd);
        waker_close(&s->wk);
        pthread_mutex_destroy(&s->mu);
        free(s);
        errno = e;
        return NULL;
    }
    if (port_out)
        *port_out = port_of(s->lfd);
    return s;
}

uint64_t netfix_silent_accepted(struct netfix_silent *s)
{
    return atomic_load(&s->accepted);
}

uint64_t netfix_silent_unread(struct netfix_silent *s)
{
    uint64_t sum = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nfds; i++) {
        int n = 0;
        if (ioctl(s->fds[i], FIONREAD, &n) == 0 && n > 0)
            sum += (uint64_t)n;
    }
    pthread_mutex_unlock(&s->mu);
    return sum;
}

void netfix_silent_stop(struct netfix_silent *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    waker_kick(&s->wk);
    pthread_join(s->th, NULL);
    for (int i = 0; i < s->nfds; i++)
        close(s->fds[i]);
    close(s->lfd);
    waker_close(&s->wk);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ------------------------------------------------------------ relay */

#define RELAY_MAX 64
#define RELAY_BUF 65536

struct rconn {
    int cfd, ufd;
    int connecting; /* upstream connect in progress */
    int ceof, ueof;
    size_t c2u_len, c2u_off, u2c_len, u2c_off;
    char c2u[RELAY_BUF], u2c[RELAY_BUF];
};

struct netfix_relay {
    int lfd;
    struct waker wk;
    pthread_t th;
    atomic_int stop, stop_reading;
    struct sockaddr_storage up;
    socklen_t up_len;
    struct rconn *conns[RELAY_MAX];
    int nconns;
    _Atomic uint64_t connections, upstream_fail, bytes_up, bytes_down, unread;
    atomic_int open;
};

static void rconn_close(struct rconn *c)
{
    if (c->cfd >= 0)
        close(c->cfd);
    if (c->ufd >= 0)
        close(c->ufd);
    free(c);
}

/* Moves what it can on one connection; returns -1 when it is finished. */
static int rconn_step(struct netfix_relay *r, struct rconn *c, short crev, short urev)
{
    if (c->connecting) {
        if (!(urev & (POLLOUT | POLLERR | POLLHUP)))
            return 0;
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            atomic_fetch_add(&r->upstream_fail, 1);
            return -1;
        }
        c->connecting = 0;
        return 0;
    }
    /* client -> upstream */
    if ((crev & POLLIN) && c->c2u_len == 0 && !c->ceof && !atomic_load(&r->stop_reading)) {
        ssize_t n = read(c->cfd, c->c2u, sizeof(c->c2u));
        if (n > 0) {
            c->c2u_len = (size_t)n;
            c->c2u_off = 0;
            atomic_fetch_add(&r->bytes_up, (uint64_t)n);
        } else if (n == 0) {
            c->ceof = 1;
        } else if (errno != EAGAIN && errno != EINTR) {
            return -1;
        }
    }
    if (c->c2u_off < c->c2u_len) {
        ssize_t n = send(c->ufd, c->c2u + c->c2u_off, c->c2u_len - c->c2u_off, MSG_NOSIGNAL);
        if (n > 0)
            c->c2u_off += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (c->c2u_off == c->c2u_len)
            c->c2u_len = c->c2u_off = 0;
    }
    /* upstream -> client */
    if ((urev & (POLLIN | POLLHUP)) && c->u2c_len == 0 && !c->ueof) {
        ssize_t n = read(c->ufd, c->u2c, sizeof(c->u2c));
        if (n > 0) {
            c->u2c_len = (size_t)n;
            c->u2c_off = 0;
            atomic_fetch_add(&r->bytes_down, (uint64_t)n);
        } else if (n == 0) {
            c->ueof = 1;
        } else if (errno != EAGAIN && errno != EINTR) {
            return -1;
        }
    }
    if (c->u2c_off < c->u2c_len) {
        ssize_t n = send(c->cfd, c->u2c + c->u2c_off, c->u2c_len - c->u2c_off, MSG_NOSIGNAL);
        if (n > 0)
            c->u2c_off += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (c->u2c_off == c->u2c_len)
            c->u2c_len = c->u2c_off = 0;
    }
    if ((c->ceof && c->c2u_len == 0) || (c->ueof && c->u2c_len == 0))
        return -1; /* one side closed and everything it sent went through */
    if ((crev & (POLLERR | POLLHUP)) && !(crev & POLLIN))
        return -1;
    return 0;
}

static void relay_accept(struct netfix_relay *r)
{
    int cfd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (cfd < 0)
        return;
    atomic_fetch_add(&r->connections, 1);
    if (r->nconns == RELAY_MAX) {
        close(cfd);
        return;
    }
    struct rconn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(cfd);
        return;
    }
    c->cfd = cfd;
    c->ufd = connect_start(&r->up, r->up_len);
    if (c->ufd < 0) {
        atomic_fetch_add(&r->upstream_fail, 1);
        c->ufd = -1;
        rconn_close(c);
        return;
    }
    int one = 1;
    setsockopt(c->ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(c->cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->connecting = 1;
    r->conns[r->nconns++] = c;
}

static void *relay_main(void *arg)
{
    struct netfix_relay *r = arg;
    struct pollfd p[2 + 2 * RELAY_MAX];
    while (!atomic_load(&r->stop)) {
        int stop_reading = atomic_load(&r->stop_reading);
        p[0] = (struct pollfd){.fd = r->wk.fd[0], .events = POLLIN};
        p[1] = (struct pollfd){.fd = r->lfd, .events = POLLIN};
        int n = r->nconns;
        for (int i = 0; i < n; i++) {
            struct rconn *c = r->conns[i];
            short ce = 0, ue = 0;
            if (c->connecting) {
                ue = POLLOUT;
            } else {
                if (!stop_reading && !c->ceof && c->c2u_len == 0)
                    ce |= POLLIN;
                if (c->u2c_len)
                    ce |= POLLOUT;
                if (!c->ueof && c->u2c_len == 0)
                    ue |= POLLIN;
                if (c->c2u_len)
                    ue |= POLLOUT;
            }
            p[2 + 2 * i] = (struct pollfd){.fd = c->cfd, .events = ce};
            p[3 + 2 * i] = (struct pollfd){.fd = c->ufd, .events = ue};
        }
        int k = poll(p, (nfds_t)(2 + 2 * n), 20);
        if (k < 0 && errno != EINTR)
            break;
        if (p[0].revents & POLLIN)
            waker_drain(&r->wk);
        if (k > 0) {
            for (int i = 0; i < n; i++) {
                struct rconn *c = r->conns[i];
                if (rconn_step(r, c, p[2 + 2 * i].revents, p[3 + 2 * i].revents) != 0) {
                    rconn_close(c);
                    r->conns[i] = NULL;
                }
            }
            int m = 0;
            for (int i = 0; i < n; i++)
                if (r->conns[i])
                    r->conns[m++] = r->conns[i];
            r->nconns = m;
            if (p[1].revents & POLLIN)
                relay_accept(r);
        }
        uint64_t unread = 0;
        for (int i = 0; i < r->nconns; i++) {
            int q = 0;
            if (ioctl(r->conns[i]->cfd, FIONREAD, &q) == 0 && q > 0)
                unread += (uint64_t)q;
        }
        atomic_store(&r->unread, unread);
        atomic_store(&r->open, r->nconns);
    }
    return NULL;
}

struct netfix_relay *netfix_relay_start(const char *upstream_ip, uint16_t upstream_port,
                                        uint16_t port, int rcvbuf, uint16_t *port_out)
{
    struct netfix_relay *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    if (mkaddr(upstream_ip, upstream_port, &r->up, &r->up_len) != 0) {
        free(r);
        return NULL;
    }
    r->lfd = listen_on("127.0.0.1", port, 64, rcvbuf > 0 ? rcvbuf : 4096, 1);
    if (r->lfd < 0) {
        free(r);
        return NULL;
    }
    if (waker_init(&r->wk) != 0) {
        close_keep_errno(r->lfd);
        free(r);
        return NULL;
    }
    int e = pthread_create(&r->th, NULL, relay_main, r);
    if (e) {
        close(r->lfd);
        waker_close(&r->wk);
        free(r);
        errno = e;
        return NULL;
    }
    if (port_out)
        *port_out = port_of(r->lfd);
    return r;
}

void netfix_relay_stop_reading(struct netfix_relay *r)
{
    atomic_store(&r->stop_reading, 1);
    waker_kick(&r->wk);
}

void netfix_relay_counts(struct netfix_relay *r, struct netfix_relay_counts *k)
{
    k->connections = atomic_load(&r->connections);
    k->upstream_fail = atomic_load(&r->upstream_fail);
    k->bytes_up = atomic_load(&r->bytes_up);
    k->bytes_down = atomic_load(&r->bytes_down);
    k->unread = atomic_load(&r->unread);
    k->open = atomic_load(&r->open);
}

void netfix_relay_stop(struct netfix_relay *r)
{
    if (!r)
        return;
    atomic_store(&r->stop, 1);
    waker_kick(&r->wk);
    pthread_join(r->th, NULL);
    for (int i = 0; i < r->nconns; i++)
        rconn_close(r->conns[i]);
    close(r->lfd);
    waker_close(&r->wk);
    free(r);
}

/* ------------------------------------------------------------ DNS black hole */

#define DNS_KEPT 64

struct dns_query {
    struct sockaddr_storage from;
    socklen_t from_len;
    size_t len;
    unsigned char msg[512];
};

struct netfix_dns {
    int fd;
    struct waker wk;
    pthread_t th;
    atomic_int stop, release;
    _Atomic uint64_t queries;
    struct dns_query kept[DNS_KEPT]; /* the dns thread's only */
    int nkept;
};

/* The query turned into an answer with no records and rcode SERVFAIL. */
static void dns_servfail(struct netfix_dns *d, struct dns_query *q)
{
    if (q->len < 12)
        return;
    q->msg[2] |= 0x80;                     /* QR: a response */
    q->msg[3] = (unsigned char)(0x80 | 2); /* RA, rcode 2 */
    memset(q->msg + 6, 0, 6);              /* no AN, NS, AR */
    sendto(d->fd, q->msg, q->len, MSG_DONTWAIT, (struct sockaddr *)&q->from, q->from_len);
}

static void *dns_main(void *arg)
{
    struct netfix_dns *d = arg;
    struct dns_query q;
    int released = 0;
    while (!atomic_load(&d->stop)) {
        if (!released && atomic_load(&d->release)) {
            released = 1;
            for (int i = 0; i < d->nkept; i++)
                dns_servfail(d, &d->kept[i]);
            d->nkept = 0;
        }
        struct pollfd p[2] = {{.fd = d->fd, .events = POLLIN},
                              {.fd = d->wk.fd[0], .events = POLLIN}};
        if (poll(p, 2, 20) <= 0)
            continue;
        if (p[1].revents & POLLIN)
            waker_drain(&d->wk);
        if (!(p[0].revents & POLLIN))
            continue;
        for (;;) {
            q.from_len = sizeof(q.from);
            ssize_t n = recvfrom(d->fd, q.msg, sizeof(q.msg), MSG_DONTWAIT,
                                 (struct sockaddr *)&q.from, &q.from_len);
            if (n <= 0)
                break;
            q.len = (size_t)n;
            atomic_fetch_add(&d->queries, 1);
            if (released) /* only once told to */
                dns_servfail(d, &q);
            else if (d->nkept < DNS_KEPT) /* and never a word back */
                d->kept[d->nkept++] = q;
        }
    }
    return NULL;
}

struct netfix_dns *netfix_dns_blackhole_start(const char *ip)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (mkaddr(ip, 53, &ss, &sl) != 0)
        return NULL;
    struct netfix_dns *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (d->fd < 0) {
        free(d);
        return NULL;
    }
    int one = 1;
    setsockopt(d->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(d->fd, (struct sockaddr *)&ss, sl) != 0 || waker_init(&d->wk) != 0) {
        close_keep_errno(d->fd);
        free(d);
        return NULL;
    }
    int e = pthread_create(&d->th, NULL, dns_main, d);
    if (e) {
        close(d->fd);
        waker_close(&d->wk);
        free(d);
        errno = e;
        return NULL;
    }
    return d;
}

uint64_t netfix_dns_queries(struct netfix_dns *d)
{
    return atomic_load(&d->queries);
}

void netfix_dns_release(struct netfix_dns *d)
{
    atomic_store(&d->release, 1);
    waker_kick(&d->wk);
}

void netfix_dns_blackhole_stop(struct netfix_dns *d)
{
    if (!d)
        return;
    atomic_store(&d->stop, 1);
    waker_kick(&d->wk);
    pthread_join(d->th, NULL);
    close(d->fd);
    waker_close(&d->wk);
    free(d);
}

/* ------------------------------------------------------------ private /etc */

static int hosts_fd = -1;
static size_t hosts_len;

static int write_all(int fd, const char *p, size_t n, off_t off)
{
    while (n) {
        ssize_t k = pwrite(fd, p, n, off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
        off += k;
    }
    return 0;
}

/* Writes text to dir/name and bind-mounts it over target; the file is then
 * unlinked (the mount and the returned descriptor keep it).  fd or -1. */
static int bind_file(const char *dir, const char *name, const char *text, const char *target)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (write_all(fd, text, strlen(text), 0) != 0 ||
        mount(path, target, NULL, MS_BIND, NULL) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        errno = e;
        return -1;
    }
    unlink(path);
    return fd;
}

int netfix_private_etc(const char *hosts, const char *resolv_conf)
{
    if (hosts_fd >= 0) {
        errno = EBUSY;
        return -1;
    }
    if (unshare(CLONE_NEWNS) != 0)
        return -1;
    /* nothing we mount may propagate to the namespace we came from */
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return -1;
    char dir[] = "/tmp/netfix-etc-XXXXXX";
    if (!mkdtemp(dir))
        return -1;
    int rc = 0;
    if (hosts) {
        int fd = bind_file(dir, "hosts", hosts, "/etc/hosts");
        if (fd < 0) {
            rc = -1;
        } else {
            hosts_fd = fd;
            hosts_len = strlen(hosts);
        }
    }
    if (rc == 0 && resolv_conf) {
        int fd = bind_file(dir, "resolv.conf", resolv_conf, "/etc/resolv.conf");
        if (fd < 0)
            rc = -1;
        else
            close(fd);
    }
    int e = errno;
    rmdir(dir);
    errno = e;
    return rc;
}

int netfix_hosts_update(const char *hosts)
{
    if (hosts_fd < 0) {
        errno = EBADF;
        return -1;
    }
    size_t n = strlen(hosts);
    size_t total = n > hosts_len ? n : hosts_len;
    char *buf = malloc(total);
    if (!buf)
        return -1;
    memcpy(buf, hosts, n);
    memset(buf + n, '\n', total - n); /* blank lines: the file never shrinks */
    int rc = write_all(hosts_fd, buf, total, 0);
    free(buf);
    if (rc == 0)
        hosts_len = total;
    return rc;
}

/* ------------------------------------------------------------ observation */

int netfix_have_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* hex as /proc/net/tcp prints an address (32-bit words in host order) ->
 * the address bytes; returns the byte count (4, 16) or 0 */
static size_t proc_addr(const char *hex, unsigned char *out)
{
    size_t len = strlen(hex);
    if (len != 8 && len != 32)
        return 0;
    for (size_t w = 0; w < len / 8; w++) {
        char word[9];
        memcpy(word, hex + 8 * w, 8);
        word[8] = 0;
        uint32_t v = (uint32_t)strtoul(word, NULL, 16);
        memcpy(out + 4 * w, &v, 4);
    }
    return len / 2;
}

int netfix_tcp_count(const char *remote_ip, uint16_t remote_port, int state)
{
    unsigned char want4[4], want6[16], mapped[16];
    int is4 = inet_pton(AF_INET, remote_ip, want4) == 1;
    if (!is4 && inet_pton(AF_INET6, remote_ip, want6) != 1)
        return -1;
    if (is4) {
        memset(mapped, 0, 10);
        mapped[10] = mapped[11] = 0xff;
        memcpy(mapped + 12, want4, 4);
    }
    const char *files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    int count = 0, opened = 0;
    for (int f = 0; f < 2; f++) {
        FILE *fp = fopen(files[f], "r");
        if (!fp)
            continue;
        opened++;
        char line[512];
        while (fgets(line, sizeof(line), fp)) {
            char lhex[40], rhex[40];
            unsigned lport, rport, st;
            if (sscanf(line, " %*d: %39[0-9A-Fa-f]:%x %39[0-9A-Fa-f]:%x %x", lhex, &lport, rhex,
                       &rport, &st) != 5)
                continue;
            unsigned char a[16];
            size_t n = proc_addr(rhex, a);
            if ((int)st != state || rport != remote_port || !n)
                continue;
            if ((is4 && n == 4 && memcmp(a, want4, 4) == 0) ||
                (is4 && n == 16 && memcmp(a, mapped, 16) == 0) ||
                (!is4 && n == 16 && memcmp(a, want6, 16) == 0))
                count++;
        }
        fclose(fp);
    }
    return opened ? count : -1;
}

int64_t netfix_tcp_send_queue(uint16_t local_port, uint16_t remote_port)
{
    const char *files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    int64_t q = -1;
    for (int f = 0; f < 2 && q < 0; f++) {
        FILE *fp = fopen(files[f], "r");
        if (!fp)
            continue;
        char line[512];
        while (fgets(line, sizeof(line), fp)) {
            unsigned lport, rport, st;
            unsigned long tx;
            if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%x %x %lx", &lport, &rport,
                       &st, &tx) == 4 &&
                lport == local_port && rport == remote_port && st != 6 /* TIME_WAIT */) {
                q = (int64_t)tx;
                break;
            }
        }
        fclose(fp);
    }
    return q;
}
