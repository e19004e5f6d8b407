/* SPDX-License-Identifier: MIT */
/*
 * Thread exit, shutdown and fork meeting in unusual orders: what a process
 * meets in its first week.  Each test makes the order happen on purpose,
 * with the library's shipped code: pthread keys created before or after
 * the library's own (glibc runs key destructors in the order of the keys'
 * indexes, and the library makes its key when it is loaded) and threads
 * that wait for each other.
 *
 *   - a segops_track() from a thread-exit destructor that runs after the
 *     library's: the thread's lane was given back and another thread holds
 *     it; the late call must not write to it;
 *   - a thread exiting while its client shuts down: its lane must not be
 *     given back into freed memory (ASan sees it);
 *   - fork() while other threads hold lanes: the child's calls are
 *     SEGOPS_EFORKED, never SEGOPS_ENOLANE.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "queue.h"

static struct harness H;

static void teardown(void)
{
    h_stop(&H);
}

TestSuite(lifecycle, .fini = teardown, .timeout = 120);

static int track_tag(segops_client *c, int thread, int seq)
{
    segops_prop p[] = {SEGOPS_I64("thread", thread), SEGOPS_I64("seq", seq)};
    return segops_track(
        c, &(segops_event){
               .user_id = "user-1", .event_type = "page_viewed", .payload = p, .payload_len = 2});
}

/* A client of `o` on the harness's sink, and one thread running fn(client);
 * with `hold_registry`, the library's registry lock is taken (through the
 * fork handler that takes it) between the two */
static pthread_t client_and_thread(segops_options *o, void *(*fn)(void *), int hold_registry)
{
    h_start_sink(&H, NULL, 100);
    cr_assert_eq(h_client(&H, o), 0);
    if (hold_registry)
        sg_queue_atfork_prepare();
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, fn, H.c), 0);
    return t;
}

/* Waits (up to 30 s: only a hang takes that long) for *flag; its value */
static int wait_flag(atomic_int *flag)
{
    for (int i = 0; i < 30000 && !atomic_load(flag); i++)
        h_sleep_ms(1);
    return atomic_load(flag);
}

/* ------------------------------------------ track from a late destructor */

#define LATE_EVENTS 20000
static pthread_key_t late_key;
static atomic_int late_ok, late_nolane, late_other, late_done, churn_stop;

/* Runs after the library's destructor (its key was created later): the
 * thread has given its lane back; keep tracking while others claim it. */
static void late_destructor(void *v)
{
    segops_client *c = v;
    for (int i = 0; i < LATE_EVENTS; i++) {
        int rc = track_tag(c, 0, i);
        if (rc == 0)
            atomic_fetch_add(&late_ok, 1);
        else if (rc == SEGOPS_ENOLANE || rc == SEGOPS_EFULL)
            atomic_fetch_add(&late_nolane, 1);
        else
            atomic_fetch_add(&late_other, 1);
        if (i % 100 == 99)
            h_sleep_ms(1);
    }
    atomic_store(&late_done, 1);
}

static void *claim_and_exit(void *arg)
{
    segops_client *c = arg;
    cr_assert_eq(track_tag(c, 1, 0), 0, "the first thread claims the one owned lane");
    pthread_setspecific(late_key, c); /* its destructor runs after ours */
    return NULL;
}

struct churner {
    segops_client *c;
    int tag;
    atomic_int ok;
};

static void *churn_one(void *arg)
{
    struct churner *ch = arg;
    int seq = atomic_fetch_add(&ch->ok, 0);
    for (int i = 0; i < 20; i++) {
        int rc = track_tag(ch->c, ch->tag, seq + i);
        if (rc == 0)
            atomic_fetch_add(&ch->ok, 1);
        else
            break; /* EFULL / ENOLANE: fine, counted by the client */
    }
    return NULL;
}

/* New threads keep claiming the owned lane (each tracks, then exits). */
static void *churn(void *arg)
{
    struct churner *ch = arg;
    while (!atomic_load(&churn_stop)) {
        pthread_t t;
        if (pthread_create(&t, NULL, churn_one, ch) == 0)
            pthread_join(t, NULL);
    }
    return NULL;
}

Test(lifecycle, a_track_from_a_later_thread_exit_destructor_never_writes_a_lane_given_back)
{
    h_start_sink(&H, NULL, LATE_EVENTS + 1000);
    segops_options o = h_opts();
    o.max_producers = 1;
    o.shared_lanes = 1;
    o.batch_size = 50;
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(pthread_key_create(&late_key, late_destructor), 0);
    struct churner ch = {H.c, 2, 0};
    pthread_t churner_t, first;
    cr_assert_eq(pthread_create(&churner_t, NULL, churn, &ch), 0);
    cr_assert_eq(pthread_create(&first, NULL, claim_and_exit, H.c), 0);
    pthread_join(first, NULL); /* joined after its destructors ran */
    atomic_store(&churn_stop, 1);
    pthread_join(churner_t, NULL);
    cr_assert(atomic_load(&late_done));
    cr_expect_eq(atomic_load(&late_other), 0, "a late track got an unexpected error");
    cr_expect_gt(atomic_load(&late_ok), 0, "late tracks go through the shared lane");
    cr_assert_eq(segops_flush(H.c, 20000), 0);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(H.c, &s);
    h_expect_invariant(H.c);
    cr_expect_eq(s.pending, 0);
    cr_expect_eq(s.failed, 0);
    cr_expect_eq(s.skipped, 0, "a corrupted slot reached the server");
    uint64_t want = (uint64_t)atomic_load(&late_ok) + 1 + (uint64_t)atomic_load(&ch.ok);
    cr_expect_eq(s.accepted, want);
    cr_expect_eq(s.delivered, want);
    cr_expect_eq(h_wait_queued(&H, want, 30000), want);
    pthread_mutex_lock(&H.mu);
    cr_expect_eq(H.dup_tagged, 0);
    pthread_mutex_unlock(&H.mu);
    pthread_key_delete(late_key);
}

/* ------------------------------------------- thread exit during shutdown */

/* The window: glibc has decided to run the library's thread-exit
 * destructor, and the destructor has not yet touched the queue, when the
 * client shuts down and frees it.  It is widened here: a key destructor
 * that runs before the library's (its key was made first, by a
 * constructor) takes the library's registry lock (through the fork
 * handler that takes it), so the library's destructor finds it busy and
 * yields; the first sched_yield() after that (link-time wrapping,
 * -Wl,--wrap=sched_yield, this program only) lets the lock go and waits
 * until the client has shut down.  The library must then find its queue
 * gone, not write into freed memory (the ASan build checks). */
static __thread int pause_next_yield;
static atomic_int paused, resume;

/* called by the sched_yield() wrapper below */
static void pause_exiting_thread(void)
{
    if (pause_next_yield) {
        pause_next_yield = 0;
        sg_queue_atfork_parent(); /* the lock early_destructor took */
        atomic_store(&paused, 1);
        while (!atomic_load(&resume))
            h_sleep_ms(1);
    }
}

static pthread_key_t early_key;

static void early_destructor(void *v)
{
    (void)v;
    sg_queue_atfork_prepare(); /* the library's destructor runs next */
    pause_next_yield = 1;
}

__attribute__((constructor(101))) static void make_early_key(void)
{
    pthread_key_create(&early_key, early_destructor);
}

static void *claim_then_exit(void *arg)
{
    segops_client *c = arg;
    cr_assert_eq(track_tag(c, 0, 0), 0);
    pthread_setspecific(early_key, c);
    return NULL;
}

Test(lifecycle, a_thread_exiting_while_its_client_shuts_down_touches_no_freed_memory)
{
    segops_options o = h_opts();
    o.max_producers = 2;
    pthread_t t = client_and_thread(&o, claim_then_exit, 0);
    cr_assert(wait_flag(&paused),
              "the library's destructor never waited for its registry lock");
    uint64_t lost = 99;
    cr_expect_eq(segops_shutdown(H.c, 5000, &lost), 0);
    H.c = NULL;
    cr_expect_eq(lost, 0);
    /* the client is freed; the library's destructor goes on */
    atomic_store(&resume, 1);
    pthread_join(t, NULL);
    cr_expect_eq(h_wait_queued(&H, 1, 30000), 1);
}

/* ------------------------------- a first call still claiming at shutdown */

/* A thread's first call is still in the library's claim path -- listing
 * the thread, setting the key's value -- when another thread shuts the
 * client down.  Shutdown must wait for that call to leave before it frees
 * the queue: the call had begun.  The window is widened by link-time
 * wrapping (-Wl,--wrap=pthread_setspecific,--wrap=sched_yield, this
 * program only): the claiming thread's pthread_setspecific() waits until
 * either the closer is seen waiting for someone (it yields in its wait
 * loop) or shutdown has returned -- the latter is the bug. */
int __real_pthread_setspecific(pthread_key_t k, const void *v);
int __real_sched_yield(void);
static __thread int pause_setspecific;
static atomic_int claim_in_window, closer_waiting, closer_is_set, shutdown_done,
    done_while_claiming;
static pthread_t closer_thread;

int __wrap_pthread_setspecific(pthread_key_t k, const void *v)
{
    if (pause_setspecific) {
        pause_setspecific = 0;
        atomic_store(&claim_in_window, 1);
        while (!atomic_load(&closer_waiting) && !atomic_load(&shutdown_done))
            h_sleep_ms(1);
        atomic_store(&done_while_claiming, atomic_load(&shutdown_done));
    }
    return __real_pthread_setspecific(k, v);
}

int __wrap_sched_yield(void)
{
    pause_exiting_thread();
    if (atomic_load(&closer_is_set) && pthread_equal(pthread_self(), closer_thread) &&
        atomic_load(&claim_in_window))
        atomic_store(&closer_waiting, 1);
    return __real_sched_yield();
}

static atomic_int first_call_rc = 1;

static void *first_call(void *arg)
{
    segops_client *c = arg;
    pause_setspecific = 1;
    atomic_store(&first_call_rc, track_tag(c, 5, 0));
    return NULL;
}

static atomic_int closer_rc = 1;

static void *closer(void *arg)
{
    segops_client *c = arg;
    closer_thread = pthread_self();
    atomic_store(&closer_is_set, 1);
    uint64_t lost = 99;
    atomic_store(&closer_rc, segops_shutdown(c, 5000, &lost));
    atomic_store(&shutdown_done, 1);
    return NULL;
}

Test(lifecycle, shutdown_waits_for_a_first_call_still_claiming_its_lane)
{
    h_start_sink(&H, NULL, 100);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    pthread_t p, s;
    cr_assert_eq(pthread_create(&p, NULL, first_call, H.c), 0);
    while (!atomic_load(&claim_in_window))
        h_sleep_ms(1);
    cr_assert_eq(pthread_create(&s, NULL, closer, H.c), 0);
    pthread_join(p, NULL);
    pthread_join(s, NULL);
    H.c = NULL;
    cr_expect_eq(atomic_load(&done_while_claiming), 0,
                 "segops_shutdown() returned (and freed the client) while a call was inside");
    cr_expect_eq(atomic_load(&first_call_rc), SEGOPS_ESHUTDOWN);
    cr_expect_eq(atomic_load(&closer_rc), 0);
}

/* A thread's first call lists the thread under the registry lock
 * (queue.c).  It must never wait in the kernel for that lock -- a
 * contended mutex is a futex wait: bench_hotpath's seccomp trap caught one
 * when four threads made their first calls at once, and glibc aborted on
 * the refused futex.  With the lock held elsewhere (here by the test,
 * through the fork handler that takes it), the call tries it a bounded
 * number of times and returns, through a shared lane; the thread's next
 * call, once the lock is free, lists it. */
static atomic_int locked_first_rc = 1, locked_first_done, locked_go_on;
static atomic_int locked_second_rc = 1;
static atomic_uint lanes_after_first = 99, lanes_after_second = 99;

static unsigned lanes_in_use(segops_client *c)
{
    segops_counters s = SEGOPS_COUNTERS_INIT;
    return segops_stats(c, &s) == 0 ? s.lanes_in_use : 99;
}

static void *first_call_under_lock(void *arg)
{
    segops_client *c = arg;
    atomic_store(&locked_first_rc, track_tag(c, 7, 0));
    atomic_store(&lanes_after_first, lanes_in_use(c));
    atomic_store(&locked_first_done, 1);
    while (!atomic_load(&locked_go_on))
        h_sleep_ms(1);
    atomic_store(&locked_second_rc, track_tag(c, 7, 1));
    atomic_store(&lanes_after_second, lanes_in_use(c));
    return NULL;
}

Test(lifecycle, a_first_call_never_waits_for_the_registry_lock)
{
    segops_options o = h_opts();
    o.batch_size = 2;
    pthread_t p = client_and_thread(&o, first_call_under_lock, 1);
    int returned = wait_flag(&locked_first_done);
    sg_queue_atfork_parent(); /* lets it go (the call, if it waited) */
    atomic_store(&locked_go_on, 1);
    pthread_join(p, NULL);
    cr_expect(returned, "the first call waited for the registry lock");
    cr_expect_eq(atomic_load(&locked_first_rc), 0);
    cr_expect_eq(atomic_load(&locked_second_rc), 0);
    /* unlisted, the first call took no owned lane (nothing would give it
     * back at exit); the second listed the thread and claimed one */
    cr_expect_eq(atomic_load(&lanes_after_first), 0);
    cr_expect_eq(atomic_load(&lanes_after_second), 1);
    cr_expect_eq(h_wait_queued(&H, 2, 30000), 2, "both events delivered");
    segops_counters s = SEGOPS_COUNTERS_INIT;
    cr_assert_eq(segops_stats(H.c, &s), 0);
    cr_expect_eq(s.accepted, 2);
}

/* A call interrupted anywhere inside -- reading the client's generation,
 * before its lane is marked, mid-publication -- when shutdown begins: a
 * signal handler on the tracking thread holds the call there until the
 * closer is seen waiting (or, the bug, shutdown returns).  The handler
 * looks at the thread's in_call (queue.h) to know it interrupted a call;
 * otherwise the main thread signals again. */
static atomic_int hold_in_window, hold_caught, hold_done_inside;
static __thread int hold_stop;

static void hold_handler(int sig)
{
    (void)sig;
    if (!atomic_load(&hold_in_window) || hold_stop ||
        atomic_load_explicit(&sg_tls_lane.in_call, memory_order_relaxed) == NULL)
        return;
    hold_stop = 1; /* no new call after this one */
    atomic_store(&claim_in_window, 1); /* the closer's yields count from here */
    atomic_store(&hold_caught, 1);
    while (!atomic_load(&closer_waiting) && !atomic_load(&shutdown_done))
        h_sleep_ms(1);
    atomic_store(&hold_done_inside, atomic_load(&shutdown_done));
}

static atomic_int hold_last_rc = 1;

static void *hold_tracker(void *arg)
{
    segops_client *c = arg;
    for (int i = 0; !hold_stop; i++) {
        int rc = track_tag(c, 6, i % 1000);
        if (hold_stop)
            atomic_store(&hold_last_rc, rc);
    }
    return NULL;
}

Test(lifecycle, shutdown_waits_for_a_call_interrupted_anywhere_inside)
{
#ifdef SG_TSAN
    /* TSan delivers signals only at its interceptors, never inside a
     * call (track makes none): the handler would never catch one. */
    cr_skip_test("signals are deferred under TSan");
#endif
    h_start_sink(&H, NULL, 1u << 30);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = hold_handler;
    cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    pthread_t p, s;
    cr_assert_eq(pthread_create(&p, NULL, hold_tracker, H.c), 0);
    atomic_store(&hold_in_window, 1);
    while (!atomic_load(&hold_caught)) {
        pthread_kill(p, SIGUSR1);
        h_sleep_ms(1);
    }
    cr_assert_eq(pthread_create(&s, NULL, closer, H.c), 0);
    pthread_join(p, NULL);
    pthread_join(s, NULL);
    H.c = NULL;
    cr_expect_eq(atomic_load(&hold_done_inside), 0,
                 "segops_shutdown() returned (and freed the client) while a call was inside");
    int rc = atomic_load(&hold_last_rc);
    cr_expect(rc == 0 || rc == SEGOPS_ESHUTDOWN || rc == SEGOPS_EFULL, "rc %d", rc);
    cr_expect_eq(atomic_load(&closer_rc), 0);
}

/* ----------------------------------------------------- fork during track */

static atomic_int fork_stop;

static void *busy_tracker(void *arg)
{
    segops_client *c = arg;
    int i = 0;
    while (!atomic_load(&fork_stop))
        track_tag(c, 3, i++ % 100);
    return NULL;
}

Test(lifecycle, a_fork_child_gets_eforked_even_when_parent_threads_hold_every_lane)
{
    h_start_sink(&H, NULL, 100);
    segops_options o = h_opts();
    o.max_producers = 1;
    o.shared_lanes = 1;
    cr_assert_eq(h_client(&H, &o), 0);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, busy_tracker, H.c), 0);
    int eforked = 0, other = 0;
    for (int k = 0; k < 100; k++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            int rc = track_tag(H.c, 4, k);
            _exit(rc == SEGOPS_EFORKED ? 0 : rc == SEGOPS_ENOLANE ? 1 : 2);
        }
        int st = 0;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            eforked++;
        else
            other++;
    }
    atomic_store(&fork_stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    cr_expect_eq(other, 0, "%d of 100 children got something else than SEGOPS_EFORKED", other);
    cr_expect_eq(eforked, 100);
}

/* ------------------------------------------- a flusher during shutdown */

/* A flush waiting when shutdown begins is woken by the sender's last
 * broadcast; shutdown must not destroy the lock and free the client before
 * that flusher has left.  The flusher's way out is slowed here (each
 * return from its condition wait takes 200 ms more, through the same
 * link-time wrapping); the ASan build would see the client read after it
 * was freed. */
int __real_pthread_cond_timedwait(pthread_cond_t *cv, pthread_mutex_t *m,
                                  const struct timespec *ts);
static __thread int slow_wakeups;

int __wrap_pthread_cond_timedwait(pthread_cond_t *cv, pthread_mutex_t *m,
                                  const struct timespec *ts)
{
    int rc = __real_pthread_cond_timedwait(cv, m, ts);
    if (slow_wakeups)
        h_sleep_ms(200);
    return rc;
}

static atomic_int flusher_rc = 1;

static void *slow_flusher(void *arg)
{
    segops_client *c = arg;
    slow_wakeups = 1;
    atomic_store(&flusher_rc, segops_flush(c, 30000));
    return NULL;
}

Test(lifecycle, shutdown_waits_for_a_flusher_it_woke_to_leave)
{
    h_start_sink(&H, NULL, 100);
    sink_hold(H.sink, 1);
    segops_options o = h_opts();
    cr_assert_eq(h_client(&H, &o), 0);
    cr_assert_eq(track_tag(H.c, 0, 0), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, slow_flusher, H.c), 0);
    struct sink_counts k = {0};
    for (int i = 0; i < 10000 && k.in_progress == 0; i++) {
        h_sleep_ms(1);
        h_counts(&H, &k);
    }
    cr_assert_eq(k.in_progress, 1, "the flush's batch is held at the sink");
    uint64_t lost = 0;
    cr_expect_eq(segops_shutdown(H.c, 300, &lost), SEGOPS_ETIMEDOUT);
    H.c = NULL;
    cr_expect_eq(lost, 1);
    pthread_join(t, NULL);
    cr_expect_neq(atomic_load(&flusher_rc), 0, "the flush could not succeed");
    sink_hold(H.sink, 0);
}
