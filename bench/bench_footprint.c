/* SPDX-License-Identifier: MIT */
/*
 * bench_footprint.c -- B5: memory.  The sink runs in a child process so
 * that this process's RSS (/proc/self/statm) is libsegops plus harness.
 *
 * 1. RSS delta of segops_client_new() for a few option sets, each in a
 *    fresh child process, next to the formula
 *      lanes x (queue_capacity + 1) x slot_size      slots (pre-touched)
 *    + lanes x 2 x ring_size x 8                     ck rings of pointers
 *    + 4096 + max_batch_bytes + 8                    JSON arena (1 MiB)
 *    + 65536                                         receive buffer
 *    with lanes = max_producers + shared_lanes and ring_size the power of
 *    two >= queue_capacity + 1.  (The rings are calloc'ed and only touched
 *    up to queue_capacity entries; the arena is memset: all resident.)
 * 2. RSS before and after 10,000,000 events delivered to the sink (it
 *    should be flat), sampled every million.
 *
 *   bench_footprint [--events 10000000] [--budget-s 60]
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "bench_client.h"
#include "bench_common.h"
#include "segops.h"
#include "sink.h"

static uint16_t sink_port;
static pid_t sink_pid;

static void start_sink_process(void)
{
    int fds[2];
    if (pipe(fds) != 0)
        exit(1);
    fflush(stdout);
    sink_pid = fork();
    if (sink_pid == 0) {
        close(fds[0]);
        uint16_t port = 0;
        struct sink *s = bench_sink_start(NULL, &port);
        if (!s)
            _exit(1);
        if (write(fds[1], &port, sizeof(port)) != sizeof(port))
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    if (read(fds[0], &sink_port, sizeof(sink_port)) != sizeof(sink_port)) {
        fprintf(stderr, "bench_footprint: sink did not start\n");
        exit(1);
    }
    close(fds[0]);
}

static uint64_t pow2_at_least(uint64_t v)
{
    uint64_t p = 4;
    while (p < v)
        p <<= 1;
    return p;
}

struct optset {
    uint32_t producers, shared, capacity, slot, batch_bytes;
};

struct claimer {
    segops_client *c;
    pthread_barrier_t *bar;
};

/* Tracks once (claiming an owned lane) and holds the lane until every
 * claimer has tracked. */
static void *claim(void *arg)
{
    struct claimer *k = arg;
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456")};
    segops_event ev = {
        .user_id = "user-123", .event_type = "order_placed", .payload = props, .payload_len = 1};
    segops_track(k->c, &ev);
    pthread_barrier_wait(k->bar);
    return NULL;
}

static void footprint_row(const struct optset *s)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid != 0) {
        int st;
        waitpid(pid, &st, 0);
        return;
    }
    char url[64];
    segops_options o;
    bench_sink_url(url, sizeof(url), sink_port);
    bench_client_opts(&o, url);
    o.max_producers = s->producers;
    o.shared_lanes = s->shared;
    o.queue_capacity = s->capacity;
    o.slot_size = s->slot;
    o.max_batch_bytes = s->batch_bytes;
    long r0 = rss_bytes();
    segops_client *c;
    int rc = segops_client_new(&o, &c);
    if (rc) {
        printf("| %u+%u | %u | %u | error %s |\n", s->producers, s->shared, s->capacity, s->slot,
               segops_strerror(rc));
        _exit(0);
    }
    sleep_ns(20000000);
    long r1 = rss_bytes();
    /* every owned lane claimed by a live thread */
    uint32_t nown = s->producers ? s->producers : 16;
    pthread_t th[64];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, nown + 1);
    struct claimer k = {c, &bar};
    for (uint32_t i = 0; i < nown; i++)
        pthread_create(&th[i], NULL, claim, &k);
    sleep_ns(50000000);
    long r2 = rss_bytes();
    pthread_barrier_wait(&bar);
    for (uint32_t i = 0; i < nown; i++)
        pthread_join(th[i], NULL);
    uint64_t owned = s->producers ? s->producers : 256, shared = s->shared ? s->shared : 2;
    uint64_t lanes = owned + shared;
    uint64_t cap = s->capacity ? s->capacity : 8192, slot = s->slot ? s->slot : 512;
    uint64_t mbb = s->batch_bytes ? s->batch_bytes : (1u << 20);
    /* capacity 0: shared lanes and the first 16 owned lanes hold 8192,
     * the other owned lanes 1024 (the reservation; see README "Options") */
    uint64_t nsmall = s->capacity || owned <= 16 ? 0 : owned - 16;
    uint64_t slots = (lanes - nsmall) * (cap + 1) * slot + nsmall * 1025 * slot;
    uint64_t rings = (lanes - nsmall) * 2 * pow2_at_least(cap + 1) * 8 + nsmall * 2 * 2048 * 8;
    uint64_t formula = slots + rings + 4096 + mbb + 8 + 65536;
    printf("| %3" PRIu64 " (%u+%u) | %8" PRIu64 " | %5" PRIu64 " | %9.2f | %9.2f | %10.2f |"
           " %11.2f | %9.2f | %12.2f | %5.3f |\n",
           lanes, nown, s->shared ? s->shared : 2, cap, slot, slots / 1048576.0,
           rings / 1048576.0, (4096 + mbb + 8 + 65536) / 1048576.0, formula / 1048576.0,
           (double)(r1 - r0) / 1048576.0, (double)(r2 - r0) / 1048576.0,
           (double)(r2 - r0) / (double)formula);
    fflush(stdout);
    segops_shutdown(c, 1000, NULL);
    _exit(0);
}

int main(int argc, char **argv)
{
    long events = 10000000, budget_s = 60;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--events") && i + 1 < argc)
            events = bench_num(argv[++i]);
        else if (!strcmp(argv[i], "--budget-s") && i + 1 < argc)
            budget_s = bench_num(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--events N] [--budget-s S]\n", argv[0]);
            return 2;
        }
    }
    bench_calibrate();
    bench_machine(stdout);
    start_sink_process();

    printf("# B5a: RSS delta (MiB) of segops_client_new() (fresh process per row), and after"
           " every\n# owned lane was claimed by a live thread (one track each), vs the formula;"
           " ratio = all claimed / formula\n\n");
    printf("| lanes (own+shared) | capacity |  slot | slots MiB | rings MiB | arena+rbuf |"
           " formula MiB | after new | all claimed | ratio |\n");
    printf("|--------------------|----------|-------|-----------|-----------|------------|"
           "-------------|-----------|-------------|-------|\n");
    struct optset sets[] = {
        {0, 0, 0, 0, 0},          /* defaults: 256+2 lanes, 18 x 8192 + 240 x 1024, x 512 */
        {1, 1, 1024, 256, 0},     /* one hot thread, small */
        {4, 1, 8192, 512, 0},
        {8, 2, 4096, 1024, 0},
        {2, 1, 65536, 512, 4u << 20},
    };
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
        footprint_row(&sets[i]);

    printf("\n# B5b: RSS while %ld events are delivered (1 producer, queue 8192, batch 500)\n\n",
           events);
    char url[64];
    segops_options o;
    bench_sink_url(url, sizeof(url), sink_port);
    bench_client_opts(&o, url);
    o.max_producers = 1;
    o.shared_lanes = 1;
    o.batch_size = 500;
    segops_client *c;
    if (segops_client_new(&o, &c) != 0)
        return 1;
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95)};
    segops_event ev = {
        .user_id = "user-123", .event_type = "order_placed", .payload = props, .payload_len = 2};
    for (int i = 0; i < 20000; i++) /* warm-up: connection, lanes, arena */
        if (segops_track(c, &ev) == SEGOPS_EFULL)
            sleep_ns(50000);
    segops_flush(c, 30000);
    long rss0 = rss_bytes();
    printf("| accepted |    RSS KiB | delta KiB |\n|----------|------------|-----------|\n");
    printf("| %8d | %10ld | %9ld |\n", 0, rss0 / 1024, 0L);
    int64_t end = mono_ns() + budget_s * 1000000000;
    long accepted = 0, next = 1000000;
    while (accepted < events && mono_ns() < end) {
        int rc = segops_track(c, &ev);
        if (rc == 0) {
            if (++accepted == next) {
                long r = rss_bytes();
                printf("| %8ld | %10ld | %9ld |\n", accepted, r / 1024, (r - rss0) / 1024);
                fflush(stdout);
                next += 1000000;
            }
        } else if (rc == SEGOPS_EFULL) {
            sleep_ns(50000);
        }
    }
    segops_flush(c, 30000);
    long rss1 = rss_bytes();
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(c, &s);
    printf("\n# after %ld events (%" PRIu64 " delivered, %" PRIu64 " failed): RSS %ld KiB -> %ld KiB,"
           " delta %+ld KiB%s\n",
           accepted, s.delivered, s.failed, rss0 / 1024, rss1 / 1024, (rss1 - rss0) / 1024,
           accepted < events ? " (time budget reached)" : "");
    segops_shutdown(c, 30000, NULL);
    kill(sink_pid, SIGTERM);
    waitpid(sink_pid, NULL, 0);
    return 0;
}
