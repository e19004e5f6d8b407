/* SPDX-License-Identifier: MIT */
/*
 * chaos.c -- segops-chaos, see chaos.h.
 *
 * Threads: one acceptor, one thread per client connection; blocking
 * sockets, but every wait goes through poll() in slices of at most 50 ms so
 * that stop, kill and refuse requests are seen quickly.  A connection
 * thread owns its two fds and closes them itself (no cross-thread close, so
 * no fd-reuse race); other threads only ask it to act through atomics.
 *
 * Bounds: request head 64 KiB, request body 64 MiB, answer 1 MiB; a request
 * must arrive within 60 s of its first byte and an answer within 120 s; an
 * idle connection is closed after 15 min.
 */
#include "chaos.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQ_HEAD_MAX (64u * 1024)
#define REQ_BODY_MAX (64u * 1024 * 1024)
#define ANS_MAX (1024u * 1024)
#define ANS_HEAD_MAX (64u * 1024)
#define REQ_TIMEOUT_MS 60000
#define ANS_TIMEOUT_MS 120000
#define IDLE_MAX_MS (15 * 60 * 1000)
#define SLICE_MS 50

enum {
    C_CONN, C_REFUSED, C_REQ, C_FWD, C_ANS, C_RELAYED, C_RESETS, C_CUTS, C_STALLS,
    C_TINY, C_INJECTED, C_UPERR, C_RESTARTS, C_BUP, C_BDOWN, C_N
};

struct pconn {
    struct chaos *ch;
    pthread_t th;
    int cfd, ufd;
    uint64_t num;
    uint64_t kill_gen;    /* chaos kill generation at accept */
    atomic_int done;
    struct pconn *next;
    char *buf;            /* client bytes: the request being read */
    size_t cap, used;
    char *ans;            /* upstream answer */
    size_t aused;
};

struct chaos {
    struct chaos_opts o;
    struct sockaddr_in up;
    struct sockaddr_in self;
    int lfd;
    pthread_t acceptor;
    atomic_int stop;
    atomic_int mode;
    atomic_uint ms;
    atomic_int next_action;
    atomic_uint next_left;
    _Atomic int64_t refuse_until; /* monotonic ms */
    atomic_int refuse_how;
    _Atomic uint64_t kill_gen;
    _Atomic uint64_t nreq, nconn;
    _Atomic uint64_t ctr[C_N];
    pthread_mutex_t mu;
    struct pconn *conns;
};

static void cadd(struct chaos *ch, int i, uint64_t n)
{
    atomic_fetch_add_explicit(&ch->ctr[i], n, memory_order_relaxed);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int stopping(struct chaos *ch)
{
    return atomic_load_explicit(&ch->stop, memory_order_acquire);
}

/* Closes with SO_LINGER 0: the peer gets a RST. */
static void rst_close(int fd)
{
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(fd);
}

/* Orderly close: FIN, then a short drain so the close does not turn into a
 * RST because of unread client bytes. */
static void fin_close(int fd)
{
    shutdown(fd, SHUT_WR);
    char tmp[4096];
    int64_t end = mono_ms() + 200;
    for (int i = 0; i < 64 && mono_ms() < end; i++) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 20) <= 0)
            continue;
        ssize_t n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
        if (n <= 0)
            break;
    }
    close(fd);
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* ------------------------------------------------------------ framing */

static const char *find_crlf2(const char *b, size_t n)
{
    return n >= 4 ? memmem(b, n, "\r\n\r\n", 4) : NULL;
}

/* Value of header `name` (case-insensitive) in head[0..n), or NULL;
 * *vlen gets its length (trimmed). */
static const char *header(const char *head, size_t n, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', n); /* skip the start line */
    const char *e = head + n;
    while (p && p + 1 < e) {
        p++;
        const char *le = memchr(p, '\n', (size_t)(e - p));
        if (!le)
            le = e;
        if ((size_t)(le - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *ve = le;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = le < e ? le : NULL;
    }
    return NULL;
}

static int parse_u64(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    if (n == 0 || n > 19)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return 0;
}

/* A complete request in b[0..n)?  1 (*len its length), 0 need more, -1 bad
 * or over a bound. */
static int frame_request(const char *b, size_t n, size_t *len)
{
    const char *he = find_crlf2(b, n < REQ_HEAD_MAX ? n : REQ_HEAD_MAX);
    if (!he)
        return n >= REQ_HEAD_MAX ? -1 : 0;
    size_t hlen = (size_t)(he - b) + 4, vl;
    uint64_t cl = 0;
    const char *v = header(b, hlen, "transfer-encoding", &vl);
    if (v)
        return -1; /* the client never sends chunked requests */
    v = header(b, hlen, "content-length", &vl);
    if (v && parse_u64(v, vl, &cl) != 0)
        return -1;
    if (cl > REQ_BODY_MAX)
        return -1;
    if (n < hlen + cl)
        return 0;
    *len = hlen + (size_t)cl;
    return 1;
}

/* A complete answer in b[0..n)?  1 (*len, *close: the server will close),
 * 0 need more (*eof_body: the body runs to EOF), -1 malformed. */
static int frame_answer(const char *b, size_t n, size_t *len, int *close_after,
                        int *eof_body)
{
    size_t at = 0;
    *eof_body = 0;
    *close_after = 0;
    for (int interim = 0; interim < 8; interim++) {
        const char *he = find_crlf2(b + at, n - at);
        if (!he)
            return n - at >= ANS_HEAD_MAX ? -1 : 0;
        size_t hlen = (size_t)(he - (b + at)) + 4;
        const char *h = b + at;
        if (hlen < 12 || memcmp(h, "HTTP/1.", 7) != 0)
            return -1;
        int status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
        if (status >= 100 && status < 200) {
            at += hlen;
            continue;
        }
        size_t vl;
        const char *v = header(h, hlen, "connection", &vl);
        if (v && vl == 5 && strncasecmp(v, "close", 5) == 0)
            *close_after = 1;
        if (h[7] == '0' && !(v && vl == 10 && strncasecmp(v, "keep-alive", 10) == 0))
            *close_after = 1;
        size_t p = at + hlen;
        if (status == 204 || status == 304) {
            *len = p;
            return 1;
        }
        v = header(h, hlen, "transfer-encoding", &vl);
        if (v && vl >= 7 && strncasecmp(v + vl - 7, "chunked", 7) == 0) {
            for (int chunks = 0; chunks < 100000; chunks++) {
                const char *le = n > p ? memmem(b + p, n - p, "\r\n", 2) : NULL;
                if (!le)
                    return n - p > 1024 ? -1 : 0;
                uint64_t sz = 0;
                int digits = 0;
                for (const char *q = b + p; q < le; q++) {
                    int d = *q >= '0' && *q <= '9'   ? *q - '0'
                            : *q >= 'a' && *q <= 'f' ? *q - 'a' + 10
                            : *q >= 'A' && *q <= 'F' ? *q - 'A' + 10
                                                     : -1;
                    if (d < 0)
                        break; /* chunk extension */
                    if (++digits > 8)
                        return -1;
                    sz = sz * 16 + (uint64_t)d;
                }
                if (!digits)
                    return -1;
                p = (size_t)(le - b) + 2;
                if (sz == 0) {
                    /* trailers up to an empty line */
                    if (n - p >= 2 && b[p] == '\r' && b[p + 1] == '\n') {
                        *len = p + 2;
                        return 1;
                    }
                    const char *te = find_crlf2(b + p, n - p);
                    if (!te)
                        return n - p > ANS_HEAD_MAX ? -1 : 0;
                    *len = (size_t)(te - b) + 4;
                    return 1;
                }
                if (sz > ANS_MAX)
                    return -1;
                if (n < p + sz + 2)
                    return 0;
                p += (size_t)sz + 2;
            }
            return -1;
        }
        v = header(h, hlen, "content-length", &vl);
        if (v) {
            uint64_t cl;
            if (parse_u64(v, vl, &cl) != 0 || cl > ANS_MAX)
                return -1;
            if (n < p + cl)
                return 0;
            *len = p + (size_t)cl;
            return 1;
        }
        *eof_body = 1;
        *close_after = 1;
        return 0;
    }
    return -1;
}

/* ------------------------------------------------------- injections */

static size_t build_injection(int action, char *out, size_t cap)
{
    size_t n = 0;
    switch (action) {
    case CHAOS_BIG_HEAD: {
        /* Malformed answers are 503s: a 2xx is never re-sent, however
         * broken, so these stand for a broken answer the client retries.
         * 80 lines of ~900 bytes: the block well over the 64 KiB head. */
        n = (size_t)snprintf(out, cap, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n");
        for (int i = 0; i < 80 && n + 1000 < cap; i++) {
            n += (size_t)snprintf(out + n, cap - n, "X-Pad-%02d: ", i);
            memset(out + n, 'a' + i % 26, 880);
            n += 880;
            memcpy(out + n, "\r\n", 2);
            n += 2;
        }
        n += (size_t)snprintf(out + n, cap - n,
                              "Content-Length: 26\r\n\r\n{\"queued\":1,\"skipped\":0}  ");
        return n;
    }
    case CHAOS_BIG_LENGTH:
        return (size_t)snprintf(out, cap,
                                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                "Content-Length: 99999999999\r\n\r\n{\"queued\":1,");
    case CHAOS_BIG_CHUNK:
        return (size_t)snprintf(out, cap,
                                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n"
                                "FFFFFFFFFFFFFFFFFFFFFFFF\r\n{\"queued\":1,");
    case CHAOS_GARBAGE:
    default:
        return (size_t)snprintf(out, cap,
                                "\x16\x03\x01 HTTQ/9.9 2x2 ?? \x01\x02\x03\r\n"
                                "not a header line\r\n\r\n{\"queued\":1}");
    }
}

/* ------------------------------------------------------- connections */

enum { W_READY = 1, W_TIMEOUT = 0, W_ABORT = -1, W_UPCLOSED = -2 };

/* Waits until fd is readable.  Watches stop, kill and (if watch_up) the
 * upstream fd becoming readable while idle.  W_ABORT: stop or kill. */
static int wait_readable(struct pconn *pc, int fd, int watch_up, int timeout_ms)
{
    struct chaos *ch = pc->ch;
    int64_t end = mono_ms() + timeout_ms;
    for (;;) {
        if (stopping(ch) ||
            atomic_load_explicit(&ch->kill_gen, memory_order_acquire) != pc->kill_gen)
            return W_ABORT;
        int64_t left = end - mono_ms();
        if (left <= 0)
            return W_TIMEOUT;
        struct pollfd pf[2] = {{fd, POLLIN, 0}, {pc->ufd, POLLIN, 0}};
        int nf = watch_up && pc->ufd >= 0 ? 2 : 1;
        int k = poll(pf, (nfds_t)nf, left < SLICE_MS ? (int)left : SLICE_MS);
        if (k < 0 && errno != EINTR)
            return W_ABORT;
        if (k <= 0)
            continue;
        if (nf == 2 && pf[1].revents)
            return W_UPCLOSED;
        if (pf[0].revents)
            return W_READY;
    }
}

/* Sleeps ms, watching stop and kill.  Returns -1 if aborted. */
static int hold(struct pconn *pc, uint32_t ms)
{
    int64_t end = mono_ms() + ms;
    for (;;) {
        if (stopping(pc->ch) ||
            atomic_load_explicit(&pc->ch->kill_gen, memory_order_acquire) != pc->kill_gen)
            return -1;
        int64_t left = end - mono_ms();
        if (left <= 0)
            return 0;
        nap_ms(left < SLICE_MS ? (int)left : SLICE_MS);
    }
}

static int pick_action(struct pconn *pc, uint64_t reqno)
{
    struct chaos *ch = pc->ch;
    unsigned left = atomic_load_explicit(&ch->next_left, memory_order_acquire);
    while (left > 0) {
        if (atomic_compare_exchange_weak_explicit(&ch->next_left, &left, left - 1,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire))
            return atomic_load_explicit(&ch->next_action, memory_order_acquire);
    }
    const struct chaos_opts *o = &ch->o;
    if ((o->fault_first && reqno <= o->fault_first) ||
        (o->fault_every && reqno % o->fault_every == 0))
        return o->fault;
    if ((o->conn_fault_first && pc->num <= o->conn_fault_first) ||
        (o->conn_fault_every && pc->num % o->conn_fault_every == 0))
        return o->conn_fault;
    return atomic_load_explicit(&ch->mode, memory_order_acquire);
}

static int upstream_connect(struct chaos *ch)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&ch->up, sizeof(ch->up)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads a whole request from the client into pc->buf.  1: *len bytes;
 * 0: the connection is over (client closed, idle limit, stop, kill: the
 * fds are already dealt with except as noted by *abort_kind). */
enum { RQ_OK = 1, RQ_EOF = 0, RQ_ABORT = -1, RQ_BAD = -2, RQ_UPCLOSED = -3 };

static int read_request(struct pconn *pc, size_t *len)
{
    int64_t first = 0;
    for (int iter = 0;; iter++) {
        if (pc->used) {
            int f = frame_request(pc->buf, pc->used, len);
            if (f < 0)
                return RQ_BAD;
            if (f > 0)
                return RQ_OK;
        }
        int timeout;
        if (pc->used == 0) {
            timeout = IDLE_MAX_MS;
        } else {
            if (!first)
                first = mono_ms();
            timeout = (int)(first + REQ_TIMEOUT_MS - mono_ms());
            if (timeout <= 0)
                return RQ_BAD;
        }
        int w = wait_readable(pc, pc->cfd, pc->used == 0, timeout);
        if (w == W_ABORT)
            return RQ_ABORT;
        if (w == W_UPCLOSED)
            return RQ_UPCLOSED;
        if (w == W_TIMEOUT)
            return pc->used ? RQ_BAD : RQ_EOF;
        if (pc->cap - pc->used < 65536) {
            size_t ncap = pc->cap * 2;
            if (ncap > REQ_HEAD_MAX + REQ_BODY_MAX + 131072)
                return RQ_BAD;
            char *nb = realloc(pc->buf, ncap);
            if (!nb)
                return RQ_BAD;
            pc->buf = nb;
            pc->cap = ncap;
        }
        ssize_t n = recv(pc->cfd, pc->buf + pc->used, pc->cap - pc->used, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return RQ_EOF;
        pc->used += (size_t)n;
    }
}

enum { AN_OK = 1, AN_NONE = 0, AN_ABORT = -1 };

/* Reads one whole answer from upstream into pc->ans.  AN_OK: *len bytes
 * (*close_after: upstream will close).  AN_NONE: upstream closed or failed
 * before a complete answer (pc->aused bytes of it were read). */
static int read_answer(struct pconn *pc, size_t *len, int *close_after)
{
    int64_t end = mono_ms() + ANS_TIMEOUT_MS;
    pc->aused = 0;
    for (;;) {
        int eof_body = 0;
        if (pc->aused) {
            int f = frame_answer(pc->ans, pc->aused, len, close_after, &eof_body);
            if (f < 0)
                return AN_NONE;
            if (f > 0)
                return AN_OK;
        }
        int left = (int)(end - mono_ms());
        if (left <= 0)
            return AN_NONE;
        int w = wait_readable(pc, pc->ufd, 0, left);
        if (w == W_ABORT)
            return AN_ABORT;
        if (w != W_READY)
            return AN_NONE;
        if (pc->aused >= ANS_MAX)
            return AN_NONE;
        ssize_t n = recv(pc->ufd, pc->ans + pc->aused, ANS_MAX - pc->aused, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0 && eof_body) {
                *len = pc->aused;
                *close_after = 1;
                return AN_OK;
            }
            return AN_NONE;
        }
        pc->aused += (size_t)n;
    }
}

static void relay_tiny(struct pconn *pc, const char *p, size_t n)
{
    int one = 1;
    setsockopt(pc->cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (size_t i = 0, k = 0; i < n; k++) {
        size_t piece = 1 + k % 3;
        if (piece > n - i)
            piece = n - i;
        if (send_all(pc->cfd, p + i, piece) != 0)
            return;
        i += piece;
        nap_ms(1);
    }
}

/* Serves one client connection.  Returns with both fds closed. */
static void serve(struct pconn *pc)
{
    struct chaos *ch = pc->ch;
    for (uint64_t served = 0;; served++) {
        size_t rlen = 0;
        int rq = read_request(pc, &rlen);
        if (rq != RQ_OK) {
            if (rq == RQ_ABORT) {
                if (!stopping(ch))
                    cadd(ch, C_RESETS, 1);
                rst_close(pc->cfd);
            } else if (rq == RQ_BAD) {
                rst_close(pc->cfd);
            } else {
                /* client closed, or the server closed the idle upstream
                 * connection: mirror it with a FIN */
                fin_close(pc->cfd);
            }
            break;
        }
        uint64_t reqno = atomic_fetch_add_explicit(&ch->nreq, 1, memory_order_relaxed) + 1;
        cadd(ch, C_REQ, 1);
        int act = pick_action(pc, reqno);
        uint32_t ms = atomic_load_explicit(&ch->ms, memory_order_relaxed);

        if (act == CHAOS_RESET_BEFORE) {
            cadd(ch, C_RESETS, 1);
            rst_close(pc->cfd);
            break;
        }
        if (act == CHAOS_ANSWER_400) {
            static const char a400[] =
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                "Content-Length: 33\r\n\r\n{\"detail\":\"Malformed JSON body.\"}";
            cadd(ch, C_INJECTED, 1);
            memmove(pc->buf, pc->buf + rlen, pc->used - rlen);
            pc->used -= rlen;
            if (send_all(pc->cfd, a400, sizeof(a400) - 1) != 0) {
                rst_close(pc->cfd);
                break;
            }
            continue;
        }
        if (act >= CHAOS_BIG_HEAD && act <= CHAOS_GARBAGE) {
            size_t cap = 96 * 1024;
            char *inj = malloc(cap);
            size_t n = inj ? build_injection(act, inj, cap) : 0;
            cadd(ch, C_INJECTED, 1);
            send_all(pc->cfd, inj, n);
            free(inj);
            fin_close(pc->cfd);
            break;
        }
        if (act == CHAOS_DELAY) {
            cadd(ch, C_STALLS, 1);
            if (hold(pc, ms) != 0) {
                rst_close(pc->cfd);
                break;
            }
        }
        if (pc->ufd < 0)
            pc->ufd = upstream_connect(ch);
        if (pc->ufd < 0 || send_all(pc->ufd, pc->buf, rlen) != 0) {
            cadd(ch, C_UPERR, 1);
            fin_close(pc->cfd); /* like a server that went away */
            break;
        }
        cadd(ch, C_FWD, 1);
        cadd(ch, C_BUP, rlen);
        memmove(pc->buf, pc->buf + rlen, pc->used - rlen);
        pc->used -= rlen;

        size_t alen = 0;
        int close_after = 0;
        int an = read_answer(pc, &alen, &close_after);
        if (an == AN_ABORT) {
            if (!stopping(ch))
                cadd(ch, C_RESETS, 1);
            rst_close(pc->cfd);
            break;
        }
        if (an == AN_NONE) {
            /* upstream closed without (a whole) answer: relay what came and
             * close the same way */
            cadd(ch, C_UPERR, 1);
            if (pc->aused)
                send_all(pc->cfd, pc->ans, pc->aused);
            fin_close(pc->cfd);
            break;
        }
        cadd(ch, C_ANS, 1);
        if (act == CHAOS_RESET_AFTER) {
            cadd(ch, C_RESETS, 1);
            rst_close(pc->cfd);
            break;
        }
        if (act == CHAOS_CUT_RST || act == CHAOS_CUT_FIN) {
            size_t half = alen / 2 ? alen / 2 : 1;
            cadd(ch, C_CUTS, 1);
            send_all(pc->cfd, pc->ans, half);
            cadd(ch, C_BDOWN, half);
            if (act == CHAOS_CUT_RST) {
                cadd(ch, C_RESETS, 1);
                nap_ms(5); /* let the half reach the client before the RST */
                rst_close(pc->cfd);
            } else {
                fin_close(pc->cfd);
            }
            break;
        }
        if (act == CHAOS_STALL) {
            cadd(ch, C_STALLS, 1);
            if (hold(pc, ms) != 0) {
                rst_close(pc->cfd);
                break;
            }
        }
        int ok;
        if (act == CHAOS_TINY) {
            cadd(ch, C_TINY, 1);
            relay_tiny(pc, pc->ans, alen);
            ok = 1;
        } else {
            ok = send_all(pc->cfd, pc->ans, alen) == 0;
        }
        if (!ok) {
            rst_close(pc->cfd);
            break;
        }
        cadd(ch, C_RELAYED, 1);
        cadd(ch, C_BDOWN, alen);
        if (close_after) {
            fin_close(pc->cfd);
            break;
        }
        if (served > 10000000)
            break; /* bound */
    }
    if (pc->ufd >= 0)
        close(pc->ufd);
    pc->ufd = -1;
}

static void *conn_main(void *arg)
{
    struct pconn *pc = arg;
    pc->cap = 256 * 1024;
    pc->buf = malloc(pc->cap);
    pc->ans = malloc(ANS_MAX);
    if (!pc->buf || !pc->ans)
        rst_close(pc->cfd);
    else
        serve(pc);
    free(pc->buf);
    free(pc->ans);
    pc->buf = pc->ans = NULL;
    atomic_store_explicit(&pc->done, 1, memory_order_release);
    return NULL;
}

static void reap(struct chaos *ch, int all)
{
    pthread_mutex_lock(&ch->mu);
    struct pconn **pp = &ch->conns;
    while (*pp) {
        struct pconn *pc = *pp;
        if (all || atomic_load_explicit(&pc->done, memory_order_acquire)) {
            *pp = pc->next;
            pthread_join(pc->th, NULL);
            free(pc);
        } else {
            pp = &pc->next;
        }
    }
    pthread_mutex_unlock(&ch->mu);
}

static int listen_on(struct chaos *ch)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ch->self, sizeof(ch->self)) != 0 ||
        listen(fd, 128) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void *acceptor_main(void *arg)
{
    struct chaos *ch = arg;
    while (!stopping(ch)) {
        int64_t now = mono_ms();
        int refusing = now < atomic_load_explicit(&ch->refuse_until, memory_order_acquire);
        int how = atomic_load_explicit(&ch->refuse_how, memory_order_relaxed);
        if (refusing && how == CHAOS_REFUSE_CLOSE) {
            if (ch->lfd >= 0) {
                close(ch->lfd);
                ch->lfd = -1;
            }
            nap_ms(5);
            continue;
        }
        if (ch->lfd < 0) {
            ch->lfd = listen_on(ch);
            if (ch->lfd < 0) {
                nap_ms(10); /* try again: bounded by stop */
                continue;
            }
        }
        struct pollfd pf = {ch->lfd, POLLIN, 0};
        int k = poll(&pf, 1, SLICE_MS);
        reap(ch, 0);
        if (k <= 0)
            continue;
        int fd = accept4(ch->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        if (mono_ms() < atomic_load_explicit(&ch->refuse_until, memory_order_acquire)) {
            cadd(ch, C_REFUSED, 1);
            rst_close(fd);
            continue;
        }
        struct timeval tv = {5, 0};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        struct pconn *pc = calloc(1, sizeof(*pc));
        if (!pc) {
            rst_close(fd);
            continue;
        }
        pc->ch = ch;
        pc->cfd = fd;
        pc->ufd = -1;
        pc->num = atomic_fetch_add_explicit(&ch->nconn, 1, memory_order_relaxed) + 1;
        pc->kill_gen = atomic_load_explicit(&ch->kill_gen, memory_order_acquire);
        cadd(ch, C_CONN, 1);
        pthread_mutex_lock(&ch->mu);
        if (pthread_create(&pc->th, NULL, conn_main, pc) != 0) {
            pthread_mutex_unlock(&ch->mu);
            rst_close(fd);
            free(pc);
            continue;
        }
        pc->next = ch->conns;
        ch->conns = pc;
        pthread_mutex_unlock(&ch->mu);
    }
    if (ch->lfd >= 0)
        close(ch->lfd);
    ch->lfd = -1;
    return NULL;
}

/* ------------------------------------------------------------- public */

struct chaos *chaos_start(const struct chaos_opts *o, uint16_t *port_out)
{
    if (!o || !o->upstream_port) {
        errno = EINVAL;
        return NULL;
    }
    struct chaos *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return NULL;
    ch->o = *o;
    ch->up.sin_family = AF_INET;
    ch->up.sin_port = htons(o->upstream_port);
    if (inet_pton(AF_INET, o->upstream_host ? o->upstream_host : "127.0.0.1",
                  &ch->up.sin_addr) != 1) {
        free(ch);
        errno = EINVAL;
        return NULL;
    }
    ch->self.sin_family = AF_INET;
    ch->self.sin_port = htons(o->port);
    ch->self.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    atomic_store(&ch->mode, o->mode);
    atomic_store(&ch->ms, o->ms ? o->ms : 500);
    pthread_mutex_init(&ch->mu, NULL);
    ch->lfd = listen_on(ch);
    if (ch->lfd < 0)
        goto fail;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    if (getsockname(ch->lfd, (struct sockaddr *)&sa, &sl) != 0)
        goto fail;
    ch->self.sin_port = sa.sin_port; /* re-open on the same port */
    if (port_out)
        *port_out = ntohs(sa.sin_port);
    if (pthread_create(&ch->acceptor, NULL, acceptor_main, ch) != 0)
        goto fail;
    return ch;
fail:;
    int e = errno;
    if (ch->lfd >= 0)
        close(ch->lfd);
    pthread_mutex_destroy(&ch->mu);
    free(ch);
    errno = e;
    return NULL;
}

void chaos_stop(struct chaos *ch)
{
    if (!ch)
        return;
    atomic_store_explicit(&ch->stop, 1, memory_order_release);
    pthread_join(ch->acceptor, NULL);
    reap(ch, 1);
    pthread_mutex_destroy(&ch->mu);
    free(ch);
}

void chaos_get_counts(struct chaos *ch, struct chaos_counts *k)
{
    uint64_t v[C_N];
    for (int i = 0; i < C_N; i++)
        v[i] = atomic_load_explicit(&ch->ctr[i], memory_order_relaxed);
    k->connections = v[C_CONN];
    k->refused = v[C_REFUSED];
    k->requests = v[C_REQ];
    k->forwarded = v[C_FWD];
    k->answers = v[C_ANS];
    k->relayed = v[C_RELAYED];
    k->resets = v[C_RESETS];
    k->cuts = v[C_CUTS];
    k->stalls = v[C_STALLS];
    k->tiny = v[C_TINY];
    k->injected = v[C_INJECTED];
    k->upstream_errors = v[C_UPERR];
    k->restarts = v[C_RESTARTS];
    k->bytes_up = v[C_BUP];
    k->bytes_down = v[C_BDOWN];
}

void chaos_set_mode(struct chaos *ch, int action)
{
    if (action >= 0 && action < CHAOS_ACTION_N)
        atomic_store_explicit(&ch->mode, action, memory_order_release);
}

void chaos_set_ms(struct chaos *ch, uint32_t ms)
{
    atomic_store_explicit(&ch->ms, ms, memory_order_release);
}

void chaos_fault_next(struct chaos *ch, int action, uint32_t n)
{
    if (action < 0 || action >= CHAOS_ACTION_N)
        return;
    atomic_store_explicit(&ch->next_left, 0, memory_order_release);
    atomic_store_explicit(&ch->next_action, action, memory_order_release);
    atomic_store_explicit(&ch->next_left, n, memory_order_release);
}

void chaos_kill_connections(struct chaos *ch)
{
    atomic_fetch_add_explicit(&ch->kill_gen, 1, memory_order_acq_rel);
}

void chaos_refuse(struct chaos *ch, uint32_t ms, int how)
{
    cadd(ch, C_RESTARTS, 1);
    atomic_store_explicit(&ch->refuse_how, how, memory_order_release);
    atomic_store_explicit(&ch->refuse_until, mono_ms() + ms, memory_order_release);
    chaos_kill_connections(ch);
}

const char *chaos_action_name(int a)
{
    static const char *names[CHAOS_ACTION_N] = {
        "forward", "reset_before", "reset_after", "stall", "delay", "cut_rst",
        "cut_fin", "tiny", "big_head", "big_length", "big_chunk", "garbage", "answer_400"};
    return a >= 0 && a < CHAOS_ACTION_N ? names[a] : "?";
}
