/* SPDX-License-Identifier: MIT */
/*
 * The connection state machine (src/conn.c) driven by a scripted driver
 * and a made-up clock: every operation the pool submits is recorded, and
 * the test completes it with the result it chooses, at the time it
 * chooses.  No network: the timing rules (Happy Eyeballs' 250 ms, the
 * connect and request deadlines) are checked to the nanosecond, and every
 * outcome the policy would see is recorded.
 *
 * Sockets are real (the pool creates them) but never connected.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "batch.h"
#include "conn.h"
#include "segops.h"

#define MS 1000000LL
#define MAXOPS 64

static struct {
    struct sg_op *op[MAXOPS];  /* submitted, not yet completed */
    int cancelled[MAXOPS];
    int n;
    int submitted;
} D;

static void f_submit(struct sg_io *io, struct sg_op *op)
{
    (void)io;
    cr_assert(!op->busy, "an op was submitted twice");
    cr_assert(D.n < MAXOPS);
    op->busy = 1;
    D.cancelled[D.n] = 0;
    D.op[D.n++] = op;
    D.submitted++;
}

static void f_cancel(struct sg_io *io, struct sg_op *op)
{
    (void)io;
    for (int i = 0; i < D.n; i++)
        if (D.op[i] == op)
            D.cancelled[i] = 1;
}

static int f_wait(struct sg_io *io, int64_t d)
{
    (void)io;
    (void)d;
    return 0;
}

static void f_destroy(struct sg_io *io)
{
    (void)io;
}

static const struct sg_io_ops fake_ops = {"fake", 1, f_submit, f_cancel, f_wait, f_destroy};

static struct sg_io IO = {.ops = &fake_ops};
static struct sg_pool P;
static struct sg_url U;
static struct sg_net_stats ST;
static struct sg_batch B[4];
static char arena[4][SG_HEAD_MAX + 1024];

static struct {
    struct sg_batch *b;
    int rc, before_request, reused, status, proxy_status;
    size_t got;
    char why[256];
} O[16];
static int NO;

static void on_outcome(void *user, struct sg_batch *b, const struct sg_outcome *o, int64_t now)
{
    (void)user;
    (void)now;
    cr_assert(NO < 16);
    O[NO].b = b;
    O[NO].rc = o->rc;
    O[NO].before_request = o->before_request;
    O[NO].reused = o->reused;
    O[NO].got = o->got;
    O[NO].status = o->rc == 0 ? o->resp->status : 0;
    O[NO].proxy_status = o->proxy_status;
    snprintf(O[NO].why, sizeof(O[NO].why), "%s", o->rc ? o->why : "");
    NO++;
}

/* Index of the busy op of this kind (the first one after `from`), or -1. */
static int find(int kind, int from)
{
    for (int i = from; i < D.n; i++)
        if (D.op[i]->kind == kind)
            return i;
    return -1;
}

/* Peers of the connections the test lets succeed (see complete()). */
static int peers[16], npeers;

/* Completes op i with res at time now.  A successful connect turns the
 * pool's socket into one end of a connected socket pair, so that the
 * pool's idle check (a peek) sees a live, quiet connection. */
static void complete(int i, ssize_t res, int64_t now)
{
    struct sg_op *op = D.op[i];
    if (op->kind == SG_OP_CONNECT && res == 0) {
        int sv[2];
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        cr_assert_geq(dup2(sv[0], op->fd), 0);
        close(sv[0]);
        cr_assert(npeers < 16);
        peers[npeers++] = sv[1];
    }
    memmove(&D.op[i], &D.op[i + 1], (size_t)(D.n - i - 1) * sizeof(D.op[0]));
    memmove(&D.cancelled[i], &D.cancelled[i + 1], (size_t)(D.n - i - 1) * sizeof(int));
    D.n--;
    op->busy = 0;
    op->res = res;
    sg_pool_complete(&P, op, now);
}

/* Completes every cancelled op with -ECANCELED. */
static void reap_cancels(int64_t now)
{
    for (int i = 0; i < D.n;)
        if (D.cancelled[i])
            complete(i, -ECANCELED, now);
        else
            i++;
}

/* Delivers `text` to the pending receive, in pieces of `step` bytes. */
static void answer(const char *text, size_t step, int64_t now)
{
    size_t len = strlen(text), off = 0;
    while (off < len && NO == 0) {
        int r = find(SG_OP_RECV, 0);
        cr_assert(r >= 0, "no receive pending at byte %zu", off);
        size_t n = len - off < step ? len - off : step;
        cr_assert(D.op[r]->len >= n);
        memcpy(D.op[r]->buf, text + off, n);
        off += n;
        complete(r, (ssize_t)n, now);
    }
}

static void add_addr(const char *ip)
{
    struct sg_addrs *a = &P.addrs;
    memset(&a->a[a->n], 0, sizeof(a->a[0]));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a->a[a->n];
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(9);
        inet_pton(AF_INET6, ip, &s->sin6_addr);
        a->len[a->n] = sizeof(*s);
    } else {
        struct sockaddr_in *s = (struct sockaddr_in *)&a->a[a->n];
        s->sin_family = AF_INET;
        s->sin_port = htons(9);
        inet_pton(AF_INET, ip, &s->sin_addr);
        a->len[a->n] = sizeof(*s);
    }
    a->n++;
}

static void setup(void)
{
    memset(&D, 0, sizeof(D));
    memset(&ST, 0, sizeof(ST));
    NO = 0;
    cr_assert_eq(sg_url_parse("http://127.0.0.1:9", &U), 0);
    struct sg_pool_cfg cfg = {
        .max_conns = 2,
        .connect_timeout_ms = 5000,
        .request_timeout_ms = 10000,
        .dns_refresh_ms = 60000,
        .url = &U,
        .st = &ST,
        .outcome = on_outcome,
    };
    cr_assert_eq(sg_pool_init(&P, &cfg), 0);
    sg_pool_attach(&P, &IO);
    P.addrs.n = 0; /* each test sets its addresses */
    for (int i = 0; i < 4; i++) {
        memset(&B[i], 0, sizeof(B[i]));
        B[i].arena = arena[i];
        sg_batch_reset(&B[i], 1024);
        snprintf(B[i].key, sizeof(B[i].key), "key%d", i);
        memcpy(B[i].body + B[i].len, "{}", 2);
        B[i].len += 2;
        sg_batch_seal(&B[i], &U, "sk_test", 7);
    }
}

static void teardown(void)
{
    sg_pool_close_all(&P, 0);
    reap_cancels(0);
    sg_pool_free(&P);
    while (npeers > 0)
        close(peers[--npeers]);
}

TestSuite(conn, .init = setup, .fini = teardown);

static const char ok202[] = "HTTP/1.1 202 Accepted\r\nContent-Length: 27\r\n\r\n"
                            "{\"queued\":1,\"skipped\":0}   ";

Test(conn, happy_eyeballs_starts_the_next_address_250_ms_after_the_last)
{
    add_addr("::1");
    add_addr("127.0.0.1");
    cr_assert_eq(sg_pool_send(&P, &B[0], 0, 0), 0);
    cr_expect_eq(D.n, 1, "one attempt at first");
    cr_expect_eq(D.op[0]->sa->sa_family, AF_INET6);
    sg_pool_tick(&P, 250 * MS - 1);
    cr_expect_eq(D.n, 1, "no second attempt before 250 ms");
    cr_expect_eq(sg_pool_next_deadline(&P), 250 * MS);
    sg_pool_tick(&P, 250 * MS);
    cr_assert_eq(D.n, 2, "the second attempt at 250 ms");
    cr_expect_eq(D.op[1]->sa->sa_family, AF_INET);
    /* IPv4 wins: the IPv6 attempt is cancelled, the request goes out */
    complete(1, 0, 260 * MS);
    cr_expect(D.cancelled[0], "the losing attempt is cancelled");
    cr_expect(find(SG_OP_SEND, 0) >= 0 && find(SG_OP_RECV, 0) >= 0);
    cr_expect_eq(atomic_load(&ST.in_flight), 1);
    cr_expect_eq(atomic_load(&ST.open), 1);
    reap_cancels(261 * MS);
    int s = find(SG_OP_SEND, 0);
    complete(s, (ssize_t)B[0].req_len, 262 * MS);
    answer(ok202, 1000, 270 * MS);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, 0);
    cr_expect_eq(O[0].status, 202);
    cr_expect_eq(O[0].b, &B[0]);
    cr_expect_eq(atomic_load(&ST.in_flight), 0);
    /* the winner is preferred from now on */
    cr_expect_eq(P.addrs.a[0].ss_family, AF_INET);
}

Test(conn, a_refused_attempt_starts_the_next_address_at_once)
{
    add_addr("::1");
    add_addr("127.0.0.1");
    cr_assert_eq(sg_pool_send(&P, &B[0], 0, 0), 0);
    complete(0, -ECONNREFUSED, 10 * MS);
    cr_assert_eq(D.n, 1, "the next attempt starts at once");
    cr_expect_eq(D.op[0]->sa->sa_family, AF_INET);
    cr_expect_eq(NO, 0);
}

Test(conn, every_address_refused_fails_before_the_request_and_marks_addresses_stale)
{
    add_addr("::1");
    add_addr("127.0.0.1");
    cr_assert_eq(sg_pool_send(&P, &B[0], 0, 0), 0);
    complete(0, -ECONNREFUSED, 1 * MS);
    complete(0, -ENETUNREACH, 2 * MS);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, -ENETUNREACH);
    cr_expect(O[0].before_request);
    cr_expect(strstr(O[0].why, "2 addresses tried"), "%s", O[0].why);
    cr_expect_eq(P.stale, 1);
    cr_expect_eq(atomic_load(&ST.open), 0);
    cr_expect_eq(P.conns[0].state, SG_C_FREE);
}

Test(conn, connect_deadline_fails_the_batch_and_frees_the_slot_after_the_cancellations)
{
    add_addr("127.0.0.1");
    cr_assert_eq(sg_pool_send(&P, &B[0], 0, 0), 0);
    sg_pool_tick(&P, 5000 * MS - 1);
    cr_expect_eq(NO, 0);
    sg_pool_tick(&P, 5000 * MS);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, -ETIMEDOUT);
    cr_expect(O[0].before_request);
    cr_expect(D.cancelled[0]);
    cr_expect_eq(P.conns[0].state, SG_C_CLOSING, "the slot waits for its operation");
    reap_cancels(5001 * MS);
    cr_expect_eq(P.conns[0].state, SG_C_FREE);
}

static void up_and_sent(int bi, int64_t now)
{
    cr_assert_eq(sg_pool_send(&P, &B[bi], 0, now), 0);
    int c = find(SG_OP_CONNECT, 0);
    if (c >= 0)
        complete(c, 0, now);
    int s = find(SG_OP_SEND, 0);
    cr_assert(s >= 0);
    complete(s, (ssize_t)B[bi].req_len, now);
}

Test(conn, request_deadline_fails_after_the_request_was_written)
{
    add_addr("127.0.0.1");
    up_and_sent(0, 0);
    sg_pool_tick(&P, 10000 * MS - 1);
    cr_expect_eq(NO, 0);
    sg_pool_tick(&P, 10000 * MS);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, -ETIMEDOUT);
    cr_expect(!O[0].before_request, "the server may have the request");
    cr_expect(strstr(O[0].why, "no answer"), "%s", O[0].why);
}

Test(conn, an_answer_fed_one_byte_at_a_time_gives_one_outcome_and_an_idle_connection)
{
    add_addr("127.0.0.1");
    up_and_sent(0, 0);
    answer(ok202, 1, 5 * MS);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, 0);
    cr_expect_eq(O[0].got, strlen(ok202));
    cr_expect_eq(P.conns[0].state, SG_C_IDLE);
    cr_expect_eq(find(SG_OP_RECV, 0), -1, "nothing is read on an idle connection");
}

Test(conn, a_short_write_is_continued_from_where_it_stopped)
{
    add_addr("127.0.0.1");
    cr_assert_eq(sg_pool_send(&P, &B[0], 0, 0), 0);
    complete(0, 0, 0);
    int s = find(SG_OP_SEND, 0);
    complete(s, 10, 1);
    s = find(SG_OP_SEND, 0);
    cr_assert(s >= 0, "the rest is written");
    cr_expect_eq(D.op[s]->len, B[0].req_len - 10);
    cr_expect_eq((const char *)D.op[s]->buf, B[0].req + 10);
    cr_expect_eq(atomic_load(&ST.bytes_sent), 0);
    complete(s, (ssize_t)(B[0].req_len - 10), 2);
    cr_expect_eq(atomic_load(&ST.bytes_sent), B[0].req_len);
}

Test(conn, connection_close_in_the_answer_closes_the_connection)
{
    add_addr("127.0.0.1");
    up_and_sent(0, 0);
    answer("HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", 7, 1);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].status, 202);
    cr_expect_eq(P.conns[0].state, SG_C_FREE);
}

Test(conn, eof_before_any_answer_byte_is_eeof)
{
    add_addr("127.0.0.1");
    up_and_sent(0, 0);
    complete(find(SG_OP_RECV, 0), 0, 1);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, SG_EEOF);
    cr_expect_eq(O[0].got, 0);
    cr_expect(!O[0].reused);
}

Test(conn, a_second_request_reuses_the_idle_connection_and_says_so)
{
    add_addr("127.0.0.1");
    up_and_sent(0, 0);
    answer(ok202, 1000, 1);
    NO = 0;
    int before = D.submitted;
    up_and_sent(1, 2);
    cr_expect_eq(find(SG_OP_CONNECT, 0), -1);
    cr_expect_eq(D.submitted - before, 2, "a send and a receive, no connect");
    complete(find(SG_OP_RECV, 0), 0, 3);
    cr_assert_eq(NO, 1);
    cr_expect(O[0].reused, "the policy must know the connection was reused");
    cr_expect_eq(O[0].rc, SG_EEOF);
}

Test(conn, the_pool_opens_at_most_max_connections)
{
    add_addr("127.0.0.1");
    cr_assert_eq(sg_pool_send(&P, &B[0], 0, 0), 0);
    cr_assert_eq(sg_pool_send(&P, &B[1], 0, 0), 0);
    cr_expect_eq(sg_pool_room(&P), 0);
    cr_expect_eq(sg_pool_send(&P, &B[2], 0, 0), -1);
    cr_expect_eq(atomic_load(&ST.open), 2);
}

Test(conn, a_malformed_answer_fails_as_eproto_after_bytes_arrived)
{
    add_addr("127.0.0.1");
    up_and_sent(0, 0);
    answer("HTTP/1.1 2x2 Nope\r\n\r\n", 1000, 1);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, SG_EPROTO);
    cr_expect(O[0].got > 0);
}

Test(conn, idle_extras_close_after_the_idle_time_but_the_last_one_stays)
{
    add_addr("127.0.0.1");
    up_and_sent(0, 0);
    up_and_sent(1, 0);
    answer(ok202, 1000, 1);
    NO = 0;
    answer(ok202, 1000, 2);
    cr_expect_eq(atomic_load(&ST.open), 2);
    sg_pool_tick(&P, 2 + SG_IDLE_CLOSE_NS);
    cr_expect_eq(atomic_load(&ST.open), 1, "one extra closed");
    sg_pool_tick(&P, 4 + 2 * SG_IDLE_CLOSE_NS);
    cr_expect_eq(atomic_load(&ST.open), 1, "the last one is kept");
}

Test(conn, a_closing_connection_pins_the_arena_its_send_still_reads)
{
    add_addr("127.0.0.1");
    cr_assert_eq(sg_pool_send(&P, &B[0], 0, 0), 0);
    complete(find(SG_OP_CONNECT, 0), 0, 0);
    /* the server answers before the request is written: the connection
     * closes with the send still in the kernel's hands */
    answer("HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\n{}", 1000, 1);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].status, 400);
    cr_expect_eq(B[0].pins, 1, "the batch's arena is still read by the send");
    cr_expect_eq(P.conns[0].state, SG_C_CLOSING);
    reap_cancels(2);
    cr_expect_eq(B[0].pins, 0, "released when the send completed");
    cr_expect_eq(P.conns[0].state, SG_C_FREE);
}

Test(conn, a_fresh_send_never_reuses_an_idle_connection)
{
    add_addr("127.0.0.1");
    up_and_sent(0, 0);
    answer(ok202, 1000, 1);
    cr_assert_eq(P.conns[0].state, SG_C_IDLE);
    int before = D.submitted;
    cr_assert_eq(sg_pool_send(&P, &B[1], 1, 2), 0);
    cr_expect(find(SG_OP_CONNECT, 0) >= 0, "a new connection is opened");
    cr_expect_eq(D.submitted - before, 1);
    /* with the pool full, the idle one is closed to make room */
    cr_assert_eq(sg_pool_send(&P, &B[2], 1, 3), 0);
    cr_expect_eq(P.conns[0].state, SG_C_CONNECT, "the idle connection made room");
    cr_expect_eq(P.conns[0].b, &B[2]);
    cr_expect_eq(P.conns[0].requests, 0, "a new connection in the old one's slot");
    cr_expect_eq(atomic_load(&ST.open), 2);
}

/* A server that answers before reading the whole request (a proxy's 407
 * to a POST, HTTP/1.0, body to the close) resets the connection when it
 * closes with the request's bytes unread: the reset ends that body. */
Test(conn, a_reset_ends_a_close_delimited_answer)
{
    add_addr("127.0.0.1");
    up_and_sent(0, 0);
    answer("HTTP/1.0 407 Proxy Authentication Required\r\n"
           "Proxy-Authenticate: Basic realm=\"p\"\r\n\r\n<html>",
           1000, 1);
    cr_assert_eq(NO, 0, "a body to the close is not over yet");
    complete(find(SG_OP_RECV, 0), -ECONNRESET, 2);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, 0);
    cr_expect_eq(O[0].status, 407);
    cr_expect_eq(P.conns[0].state, SG_C_FREE, "the connection is closed");
}

Test(conn, a_reset_before_the_head_is_complete_is_still_an_error)
{
    add_addr("127.0.0.1");
    up_and_sent(0, 0);
    answer("HTTP/1.0 407 Proxy Auth", 1000, 1);
    complete(find(SG_OP_RECV, 0), -ECONNRESET, 2);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, -ECONNRESET);
}

/* ------------------------------------------------- early answers, reset */

/* A server that refuses a request early (nginx's 413, a 401) answers after
 * the head and closes with the body unread; its kernel resets the
 * connection.  The answer is in our receive queue before the reset, but
 * the drivers may report the write's failure first (poll retries the ready
 * operations in its own order, io_uring posts completions as they come).
 * The pool must then keep reading: the answer is the request's outcome.
 * Here the order is forced: the send fails before any answer byte is
 * delivered, which real sockets produce only sometimes. */

/* Opens a connection for B[0] and starts its request, nothing written. */
static void up_sending(int64_t now)
{
    cr_assert_eq(sg_pool_send(&P, &B[0], 0, now), 0);
    complete(find(SG_OP_CONNECT, 0), 0, now);
    cr_assert(find(SG_OP_SEND, 0) >= 0 && find(SG_OP_RECV, 0) >= 0);
}

static const char early413[] = "HTTP/1.1 413 Request Entity Too Large\r\n"
                               "Connection: close\r\nContent-Length: 16\r\n\r\n"
                               "<html>413</html>";

Test(conn, a_write_reset_before_an_early_413_is_read_still_gives_the_413)
{
    add_addr("127.0.0.1");
    up_sending(0);
    complete(find(SG_OP_SEND, 0), -ECONNRESET, 1 * MS);
    cr_expect_eq(NO, 0, "a failed write with a receive pending waits for the answer");
    cr_expect_eq(find(SG_OP_SEND, 0), -1, "nothing more is written");
    cr_assert(find(SG_OP_RECV, 0) >= 0, "the receive goes on");
    answer(early413, 20, 2 * MS);
    cr_assert_eq(NO, 1, "one outcome");
    cr_expect_eq(O[0].rc, 0, "the answer, not the reset (why: %s)", O[0].why);
    cr_expect_eq(O[0].status, 413);
    cr_expect_eq(O[0].got, strlen(early413));
    cr_expect(!O[0].before_request);
    cr_expect_eq(B[0].pins, 0, "no send holds the arena");
    cr_expect_eq(P.conns[0].state, SG_C_FREE, "the connection is closed, not kept");
    cr_expect_eq(atomic_load(&ST.in_flight), 0);
    cr_expect_eq(atomic_load(&ST.bytes_sent), 0, "the request was not written");
}

/* The same after a write that got partway: an EPIPE, and a 401 whose head
 * comes in pieces. */
Test(conn, a_write_epipe_midway_before_an_early_401_still_gives_the_401)
{
    add_addr("127.0.0.1");
    up_sending(0);
    complete(find(SG_OP_SEND, 0), 10, 1 * MS);
    cr_assert(find(SG_OP_SEND, 0) >= 0, "the rest is written");
    complete(find(SG_OP_SEND, 0), -EPIPE, 2 * MS);
    cr_expect_eq(NO, 0);
    answer("HTTP/1.1 401 Unauthorized\r\nContent-Length: 30\r\n\r\n"
           "{\"detail\":\"Invalid API key.\"}\n",
           7, 3 * MS);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, 0, "the answer, not the broken pipe (why: %s)", O[0].why);
    cr_expect_eq(O[0].status, 401);
    cr_expect_eq(P.conns[0].state, SG_C_FREE);
}

/* A proxy's 407 to a POST, HTTP/1.0 with its body to the close: the write
 * fails, then the answer arrives, then the receive sees the reset that
 * ends it (a_reset_ends_a_close_delimited_answer, after a failed write). */
Test(conn, a_write_reset_before_a_close_delimited_407_still_gives_the_407)
{
    add_addr("127.0.0.1");
    up_sending(0);
    complete(find(SG_OP_SEND, 0), -ECONNRESET, 1 * MS);
    answer("HTTP/1.0 407 Proxy Authentication Required\r\n"
           "Proxy-Authenticate: Basic realm=\"p\"\r\n\r\n<html>",
           1000, 2 * MS);
    cr_assert_eq(NO, 0, "a body to the close is not over yet");
    complete(find(SG_OP_RECV, 0), -ECONNRESET, 3 * MS);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, 0, "why: %s", O[0].why);
    cr_expect_eq(O[0].status, 407);
    cr_expect_eq(P.conns[0].state, SG_C_FREE);
}

/* No early answer comes: what ends the receive (EOF, a reset) is a
 * consequence; the write's failure is what is reported. */
Test(conn, a_write_failure_with_no_answer_is_reported_as_the_write_failure)
{
    static const struct {
        int send_err;
        ssize_t recv_res;
    } cases[] = {
        {-EPIPE, 0},
        {-ECONNRESET, 0},
        {-EPIPE, -ECONNRESET},
    };
    add_addr("127.0.0.1");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        NO = 0;
        up_sending((int64_t)i * 10 * MS);
        complete(find(SG_OP_SEND, 0), cases[i].send_err, (int64_t)i * 10 * MS + 1);
        cr_expect_eq(NO, 0, "case %zu: waits for the receive", i);
        complete(find(SG_OP_RECV, 0), cases[i].recv_res, (int64_t)i * 10 * MS + 2);
        cr_assert_eq(NO, 1, "case %zu", i);
        cr_expect_eq(O[0].rc, cases[i].send_err, "case %zu: rc %d", i, O[0].rc);
        cr_expect(!O[0].before_request, "case %zu", i);
        cr_expect_eq(O[0].got, 0, "case %zu", i);
        cr_expect(strstr(O[0].why, "writing the request: ") != NULL, "case %zu: %s", i,
                  O[0].why);
        cr_expect_eq(P.conns[0].state, SG_C_FREE, "case %zu", i);
        cr_expect_eq(D.n, 0, "case %zu: nothing outstanding", i);
    }
}

Test(conn, requests_through_a_proxy_use_the_absolute_form_and_its_credentials)
{
    struct sg_proxy px;
    cr_assert_eq(sg_proxy_parse("http://user:pass@proxy:3128", &px, NULL), 0);
    sg_batch_reset(&B[3], 1024);
    sg_batch_seal_via(&B[3], &U, &px, "sk_test", 7);
    static const char line[] = "POST http://127.0.0.1:9/api/ingestion/track/batch/ HTTP/1.1\r\n"
                               "Host: 127.0.0.1:9\r\n";
    cr_expect(strncmp(B[3].req, line, sizeof(line) - 1) == 0, "%.*s", (int)B[3].req_len,
              B[3].req);
    cr_expect(memmem(B[3].req, B[3].req_len, "\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n",
                     43) != NULL);
    /* https:// goes through a tunnel: the proxy sees none of the request */
    struct sg_url tu;
    cr_assert_eq(sg_url_parse("https://api.segops.ai", &tu), 0);
    sg_batch_reset(&B[3], 1024);
    sg_batch_seal_via(&B[3], &tu, &px, "sk_test", 7);
    cr_expect(strncmp(B[3].req, "POST /api/ingestion/track/batch/ HTTP/1.1\r\n", 43) == 0);
    cr_expect_null(memmem(B[3].req, B[3].req_len, "Proxy-Authorization", 19));
}

/* ------------------------------------------------------------- tunnels */

/* https://localhost through a proxy at 127.0.0.1:3128 (credentials given):
 * a TLS pool, so the engine is real (the system trust anchors; nothing is
 * verified here: no handshake completes). */
static struct sg_url TU;
static struct sg_proxy PX;
static struct sg_tls_ctx TX;

static void setup_tunnel(void)
{
    memset(&D, 0, sizeof(D));
    memset(&ST, 0, sizeof(ST));
    NO = 0;
    cr_assert_eq(sg_url_parse("https://localhost:8443", &TU), 0);
    cr_assert_eq(sg_proxy_parse("http://user:pass@127.0.0.1:3128", &PX, NULL), 0);
    cr_assert_eq(sg_tls_ctx_init(&TX, NULL, TU.host, NULL, 0), 0, "system CA bundle");
    struct sg_pool_cfg cfg = {
        .max_conns = 2,
        .connect_timeout_ms = 5000,
        .request_timeout_ms = 10000,
        .dns_refresh_ms = 60000,
        .url = &TU,
        .tls = &TX,
        .proxy = &PX,
        .st = &ST,
        .outcome = on_outcome,
    };
    cr_assert_eq(sg_pool_init(&P, &cfg), 0);
    sg_pool_attach(&P, &IO);
    cr_expect_eq(P.addrs.n, 1, "the proxy's literal address, not the server's");
    for (int i = 0; i < 4; i++) {
        memset(&B[i], 0, sizeof(B[i]));
        B[i].arena = arena[i];
        sg_batch_reset(&B[i], 1024);
        snprintf(B[i].key, sizeof(B[i].key), "key%d", i);
        memcpy(B[i].body + B[i].len, "{}", 2);
        B[i].len += 2;
        sg_batch_seal_via(&B[i], &TU, &PX, "sk_test", 7);
    }
}

static void teardown_tunnel(void)
{
    teardown();
    sg_tls_ctx_free(&TX);
}

TestSuite(tunnel, .init = setup_tunnel, .fini = teardown_tunnel);

/* Opens a connection for B[0] at `now` and completes its connect: returns
 * with CONNECT written. */
static void to_proxy_connect(int64_t now)
{
    cr_assert_eq(sg_pool_send(&P, &B[0], 0, now), 0);
    const struct sockaddr_in *sa = (const struct sockaddr_in *)D.op[0]->sa;
    cr_expect_eq(ntohs(sa->sin_port), 3128, "TCP goes to the proxy");
    complete(find(SG_OP_CONNECT, 0), 0, now);
    cr_assert_eq(P.conns[0].state, SG_C_PROXY_CONNECT);
    int s = find(SG_OP_SEND, 0);
    cr_assert(s >= 0);
    const char *req = D.op[s]->buf;
    static const char want[] = "CONNECT localhost:8443 HTTP/1.1\r\nHost: localhost:8443\r\n";
    cr_expect(strncmp(req, want, sizeof(want) - 1) == 0, "%.*s", (int)D.op[s]->len, req);
    cr_expect(memmem(req, D.op[s]->len, "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n", 41));
    cr_expect_null(memmem(req, D.op[s]->len, "ApiKey", 6), "the key never goes in clear");
    complete(s, (ssize_t)D.op[s]->len, now);
}

Test(tunnel, a_2xx_answer_starts_the_tls_handshake_inside_the_tunnel)
{
    to_proxy_connect(0);
    answer("HTTP/1.1 200 Connection established\r\n\r\n", 5, 1 * MS);
    cr_expect_eq(NO, 0);
    cr_assert_eq(P.conns[0].state, SG_C_HANDSHAKE);
    int s = find(SG_OP_SEND, 0);
    cr_assert(s >= 0, "the ClientHello goes out");
    cr_expect_eq(((const unsigned char *)D.op[s]->buf)[0], 0x16, "a TLS handshake record");
    /* SNI is the server's name, not the proxy's */
    cr_expect(memmem(D.op[s]->buf, D.op[s]->len, "localhost", 9) != NULL);
}

Test(tunnel, a_407_fails_the_batch_as_eproxy_before_the_request)
{
    to_proxy_connect(0);
    answer("HTTP/1.1 407 Proxy Authentication Required\r\n"
           "Proxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 100\r\n\r\n<html>",
           1000, 1 * MS);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, SG_EPROXY);
    cr_expect_eq(O[0].proxy_status, 407);
    cr_expect(O[0].before_request);
    cr_expect(strstr(O[0].why, "proxy authentication failed (407)"), "%s", O[0].why);
    cr_expect_null(strstr(O[0].why, "user:pass"), "%s", O[0].why);
    cr_expect_null(strstr(O[0].why, "dXNlcjpwYXNz"), "%s", O[0].why);
}

Test(tunnel, a_refused_connect_names_the_status)
{
    to_proxy_connect(0);
    answer("HTTP/1.1 403 Forbidden\r\n\r\n", 1000, 1 * MS);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, SG_EPROXY);
    cr_expect_eq(O[0].proxy_status, 403);
    cr_expect(strstr(O[0].why, "refused CONNECT to localhost port 8443: HTTP 403"), "%s",
              O[0].why);
}

Test(tunnel, bytes_after_the_2xx_head_fail_the_connection)
{
    to_proxy_connect(0);
    answer("HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 200 OK\r\n", 1000, 1 * MS);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, SG_EPROTO);
    cr_expect(strstr(O[0].why, "bytes after its answer to CONNECT"), "%s", O[0].why);
}

Test(tunnel, the_proxy_closing_without_an_answer_is_eeof)
{
    to_proxy_connect(0);
    complete(find(SG_OP_RECV, 0), 0, 1 * MS);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, SG_EEOF);
    cr_expect(O[0].before_request);
}

Test(tunnel, proxy_connect_has_its_own_connect_deadline)
{
    /* the TCP connect took 3 s of the 5 s: the tunnel still gets 5 s */
    cr_assert_eq(sg_pool_send(&P, &B[0], 0, 0), 0);
    complete(find(SG_OP_CONNECT, 0), 0, 3000 * MS);
    cr_assert_eq(P.conns[0].state, SG_C_PROXY_CONNECT);
    cr_expect_eq(sg_pool_next_deadline(&P), 8000 * MS);
    sg_pool_tick(&P, 8000 * MS - 1);
    cr_expect_eq(NO, 0);
    sg_pool_tick(&P, 8000 * MS);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, -ETIMEDOUT);
    cr_expect(O[0].before_request);
    cr_expect(strstr(O[0].why, "timed out waiting for proxy http://127.0.0.1:3128"), "%s",
              O[0].why);
}

Test(tunnel, the_handshake_after_the_tunnel_shares_its_deadline)
{
    to_proxy_connect(1000 * MS);
    answer("HTTP/1.1 200 Connection established\r\n\r\n", 1000, 2000 * MS);
    cr_assert_eq(P.conns[0].state, SG_C_HANDSHAKE);
    sg_pool_tick(&P, 6000 * MS - 1);
    cr_expect_eq(NO, 0);
    sg_pool_tick(&P, 6000 * MS);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, -ETIMEDOUT);
}

Test(tunnel, an_unreachable_proxy_is_named_in_the_connect_failure)
{
    cr_assert_eq(sg_pool_send(&P, &B[0], 0, 0), 0);
    complete(find(SG_OP_CONNECT, 0), -ECONNREFUSED, 1 * MS);
    cr_assert_eq(NO, 1);
    cr_expect_eq(O[0].rc, -ECONNREFUSED);
    cr_expect(strstr(O[0].why, "cannot connect to proxy 127.0.0.1 port 3128"), "%s", O[0].why);
}
