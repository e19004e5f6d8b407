/* SPDX-License-Identifier: MIT */
/* scripted.c -- see scripted.h. */
#include "scripted.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXCONN 512
#define MAXKEYS 4096

struct scr {
    scr_fn fn;
    void *user;
    int lfd;
    atomic_int stop;
    pthread_t acceptor;
    pthread_mutex_t mu;
    pthread_t th[MAXCONN];
    int fds[MAXCONN];
    int nth;
    struct scr_counts k;
    char keys[MAXKEYS][64];
    int nkeys;
};

struct conn_arg {
    struct scr *s;
    int fd;
    uint32_t conn;
};

/* Waits for fd to be readable, watching the stop flag.  1 ready, 0 stop. */
static int wait_in(struct scr *s, int fd)
{
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) > 0)
            return 1;
    }
    return 0;
}

static size_t count_events(const char *b, size_t n)
{
    size_t c = 0;
    for (const char *p = b; (p = memmem(p, n - (size_t)(p - b), "\"user_id\":", 10)) != NULL;
         p += 10)
        c++;
    return c;
}

static void header_value(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    out[0] = 0;
    for (const char *p = head; (p = strstr(p, "\r\n")) != NULL;) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t k = strcspn(v, "\r\n");
            if (k >= cap)
                k = cap - 1;
            memcpy(out, v, k);
            out[k] = 0;
            return;
        }
    }
}

static void *serve(void *arg)
{
    struct conn_arg a = *(struct conn_arg *)arg;
    free(arg);
    struct scr *s = a.s;
    size_t cap = 8 << 20;
    char *buf = malloc(cap);
    char *out = malloc(1 << 20);
    size_t have = 0;
    while (buf && out) {
        /* the head */
        char *end = NULL;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            if (have == cap || !wait_in(s, a.fd))
                goto bye;
            ssize_t k = recv(a.fd, buf + have, cap - have, 0);
            if (k <= 0)
                goto bye;
            have += (size_t)k;
        }
        size_t hlen = (size_t)(end - buf) + 4;
        char save = buf[hlen - 1];
        buf[hlen - 1] = 0;
        char cl[32], key[64];
        header_value(buf, "Content-Length", cl, sizeof(cl));
        header_value(buf, "Idempotency-Key", key, sizeof(key));
        buf[hlen - 1] = save;
        struct scr_req rq;
        memset(&rq, 0, sizeof(rq));
        rq.body_len = (size_t)strtoull(cl, NULL, 10);
        rq.conn = a.conn;
        rq.fd = a.fd;
        snprintf(rq.key, sizeof(rq.key), "%s", key);
        /* what to answer decides whether the body is read: ask first with
         * no body, then again with it unless the answer is early */
        pthread_mutex_lock(&s->mu);
        rq.n = ++s->k.requests;
        int rep = 0;
        for (int i = 0; i < s->nkeys; i++)
            rep |= strcmp(s->keys[i], key) == 0;
        if (rep)
            s->k.repeated_keys++;
        else if (s->nkeys < MAXKEYS)
            snprintf(s->keys[s->nkeys++], 64, "%s", key);
        pthread_mutex_unlock(&s->mu);
        int how = SCR_KEEP;
        size_t n = s->fn(s->user, &rq, out, 1 << 20, &how);
        if (how != SCR_EARLY) {
            if (hlen + rq.body_len > cap)
                goto bye;
            while (have < hlen + rq.body_len) {
                if (!wait_in(s, a.fd))
                    goto bye;
                ssize_t k = recv(a.fd, buf + have, cap - have, 0);
                if (k <= 0)
                    goto bye;
                have += (size_t)k;
            }
            rq.body = buf + hlen;
            rq.events = (uint32_t)count_events(rq.body, rq.body_len);
            pthread_mutex_lock(&s->mu);
            s->k.events += rq.events;
            pthread_mutex_unlock(&s->mu);
            how = SCR_KEEP;
            /* NUL-terminated for the call (the next request may follow) */
            size_t at = hlen + rq.body_len;
            char keep = at < cap ? buf[at] : 0;
            if (at < cap)
                buf[at] = 0;
            n = s->fn(s->user, &rq, out, 1 << 20, &how);
            if (at < cap)
                buf[at] = keep;
        }
        for (size_t off = 0; off < n;) {
            ssize_t k = send(a.fd, out + off, n - off, MSG_NOSIGNAL);
            if (k <= 0)
                goto bye;
            off += (size_t)k;
        }
        if (how != SCR_KEEP)
            goto bye;
        size_t used = hlen + rq.body_len;
        memmove(buf, buf + used, have - used);
        have -= used;
    }
bye:
    /* Early: close with the body unread -- the kernel answers the client's
     * further data with a reset.  But first let the answer leave: a reset
     * discards what is still in our send queue, and the test is about an
     * answer that arrived before the reset (bounded wait; on a busy
     * machine the client may take a while to acknowledge). */
    for (int i = 0; i < 5000 && !atomic_load(&s->stop); i++) {
        int q = 0;
        if (ioctl(a.fd, SIOCOUTQ, &q) != 0 || q == 0)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    close(a.fd);
    free(buf);
    free(out);
    return NULL;
}

static void *acceptor(void *arg)
{
    struct scr *s = arg;
    while (wait_in(s, s->lfd)) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&s->mu);
        if (s->nth == MAXCONN) {
            pthread_mutex_unlock(&s->mu);
            close(fd);
            continue;
        }
        struct conn_arg *a = malloc(sizeof(*a));
        a->s = s;
        a->fd = fd;
        a->conn = ++s->k.connections;
        pthread_create(&s->th[s->nth++], NULL, serve, a);
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

struct scr *scr_start(scr_fn fn, void *user, uint16_t *port)
{
    struct scr *s = calloc(1, sizeof(*s));
    s->fn = fn;
    s->user = user;
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(s->lfd, 64) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&sa, &sl) != 0) {
        close(s->lfd);
        free(s);
        return NULL;
    }
    *port = ntohs(sa.sin_port);
    pthread_create(&s->acceptor, NULL, acceptor, s);
    return s;
}

void scr_stop(struct scr *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    pthread_join(s->acceptor, NULL);
    for (int i = 0; i < s->nth; i++)
        pthread_join(s->th[i], NULL);
    close(s->lfd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void scr_counts(struct scr *s, struct scr_counts *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->k;
    pthread_mutex_unlock(&s->mu);
}
