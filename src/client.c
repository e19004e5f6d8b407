/* SPDX-License-Identifier: MIT */
/*
 * client.c -- options, lifecycle, the producer entry points and stats.
 *
 * segops_track() is the hot path: lane lookup (a thread-local compare),
 * one seq_cst store (the shutdown handshake, see queue.h), validation and
 * a copy into the lane's slot, one wait-free SPSC dequeue and enqueue.  No
 * allocation, no lock, no system call, no logging.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "barrier.h"
#include "client.h"
#include "encode.h"
#include "event.h"

#define DEFAULT_URL "https://api.segops.ai"

SEGOPS_API void segops_log_stderr(void *user, int level, const char *line)
{
    (void)user;
    (void)level;
    fprintf(stderr, "[SegOps] %s\n", line);
}

SEGOPS_API void segops_log_discard(void *user, int level, const char *line)
{
    (void)user;
    (void)level;
    (void)line;
}

SEGOPS_API const char *segops_strerror(int err)
{
    switch (err) {
    case SEGOPS_OK: return "SEGOPS_OK: success";
    case SEGOPS_EINVAL: return "SEGOPS_EINVAL: invalid argument";
    case SEGOPS_ENOMEM: return "SEGOPS_ENOMEM: out of memory";
    case SEGOPS_EUSERID: return "SEGOPS_EUSERID: user_id missing or empty";
    case SEGOPS_EEVENTTYPE: return "SEGOPS_EEVENTTYPE: event_type missing or not snake_case";
    case SEGOPS_ETIMESTAMP: return "SEGOPS_ETIMESTAMP: occurred_at is not RFC 3339";
    case SEGOPS_ENUMBER: return "SEGOPS_ENUMBER: number is NaN or infinite";
    case SEGOPS_ERAWJSON: return "SEGOPS_ERAWJSON: raw JSON is not a valid object or array";
    case SEGOPS_EPROP: return "SEGOPS_EPROP: property key or value missing or of unknown type";
    case SEGOPS_ETOOBIG:
        return "SEGOPS_ETOOBIG: too big: the event does not fit one slot (track, identify), "
               "or the text does not fit the buffer given (stats_prometheus)";
    case SEGOPS_EFULL: return "SEGOPS_EFULL: queue full, event dropped";
    case SEGOPS_ENOLANE: return "SEGOPS_ENOLANE: no lane free for this thread, event dropped";
    case SEGOPS_ESHUTDOWN: return "SEGOPS_ESHUTDOWN: client is shutting down";
    case SEGOPS_ETIMEDOUT: return "SEGOPS_ETIMEDOUT: deadline passed";
    case SEGOPS_EURL: return "SEGOPS_EURL: API URL malformed or unsupported (the log line says why)";
    case SEGOPS_EAPIKEY: return "SEGOPS_EAPIKEY: API key missing or malformed";
    case SEGOPS_EOPTION: return "SEGOPS_EOPTION: option out of range";
    case SEGOPS_EIO: return "SEGOPS_EIO: I/O driver could not be set up";
    case SEGOPS_ETHREAD: return "SEGOPS_ETHREAD: sender thread could not start";
    case SEGOPS_ECONNECT: return "SEGOPS_ECONNECT: could not connect to the server";
    case SEGOPS_EPROTOCOL: return "SEGOPS_EPROTOCOL: malformed answer from the server";
    case SEGOPS_EREJECTED: return "SEGOPS_EREJECTED: server rejected the batch";
    case SEGOPS_ERETRIES: return "SEGOPS_ERETRIES: transient failures, retries exhausted";
    case SEGOPS_ETLS:
        return "SEGOPS_ETLS: TLS failure: handshake, certificate verification, or the file of "
               "trusted CAs (the log line says which)";
    case SEGOPS_EABANDONED: return "SEGOPS_EABANDONED: abandoned at the shutdown deadline";
    case SEGOPS_EFORKED: return "SEGOPS_EFORKED: client belongs to the parent process";
    case SEGOPS_ESIZE:
        return "SEGOPS_ESIZE: struct size 0 or unknown to this library "
               "(initialise with SEGOPS_OPTIONS_INIT / SEGOPS_COUNTERS_INIT; "
               "header and library versions differ?)";
    case SEGOPS_EREDIRECT: return "SEGOPS_EREDIRECT: the server answered with a redirect (set api_url to its Location)";
    case SEGOPS_EANSWER: return "SEGOPS_EANSWER: a 2xx answer that is not the SegOps API's, or did not cover every event";
    case SEGOPS_EPROXY: return "SEGOPS_EPROXY: the HTTP proxy refused the request";
    default: return "SEGOPS_E?: unknown error code";
    }
}

/* ---------------------------------------------------------------- fork */

/* Every live client is in this list so that the fork() child handler can
 * mark them.  The prepare handler takes reg_mu and every client's mu, so
 * the child inherits them in a known (locked) state and re-initialises
 * them; the parent just unlocks.  Invariant: a client is in the list from
 * the end of segops_client_new() to the start of segops_shutdown(). */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct segops_client *reg_head;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

/* The client's lock and its condition variable (on CLOCK_MONOTONIC, for
 * the flush and shutdown deadlines); also re-made in a fork() child. */
static void init_sync(struct segops_client *c)
{
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
}

static void fork_prepare(void)
{
    pthread_mutex_lock(&reg_mu);
    for (struct segops_client *c = reg_head; c; c = c->reg_next)
        pthread_mutex_lock(&c->mu);
    sg_queue_atfork_prepare();
}

static void fork_parent(void)
{
    sg_queue_atfork_parent();
    for (struct segops_client *c = reg_head; c; c = c->reg_next)
        pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&reg_mu);
}

static void fork_child(void)
{
    sg_queue_atfork_child();
    for (struct segops_client *c = reg_head; c; c = c->reg_next) {
        c->forked = 1;
        /* producers see closing == 2 and answer SEGOPS_EFORKED */
        atomic_store_explicit(&c->q.closing, 2, memory_order_seq_cst);
        init_sync(c);
    }
    pthread_mutex_init(&reg_mu, NULL);
}

static void reg_init(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void reg_add(struct segops_client *c)
{
    pthread_once(&reg_once, reg_init);
    pthread_mutex_lock(&reg_mu);
    c->reg_prev = NULL;
    c->reg_next = reg_head;
    if (reg_head)
        reg_head->reg_prev = c;
    reg_head = c;
    pthread_mutex_unlock(&reg_mu);
}

static void reg_remove(struct segops_client *c)
{
    pthread_mutex_lock(&reg_mu);
    if (c->reg_prev)
        c->reg_prev->reg_next = c->reg_next;
    else if (reg_head == c)
        reg_head = c->reg_next;
    if (c->reg_next)
        c->reg_next->reg_prev = c->reg_prev;
    pthread_mutex_unlock(&reg_mu);
}

/* ----------------------------------------------------------------- ABI */

/* The sized structs (see "ABI" in segops.h).  A caller's `size` is its own
 * header's sizeof: at least the first sized layout (0.2.0), at most ours.
 * Fields are only ever appended, so the caller's struct is a prefix of
 * ours: we read (options) or write (counters) exactly that prefix and
 * never touch a byte past `size` -- tests/test_abi.c checks it with the
 * struct placed right before a guard page. */
#define SG_END(T, f) (offsetof(T, f) + sizeof(((T *)0)->f))
#define SG_ROUND(n, a) (((n) + (a) - 1) / (a) * (a))
#define SG_OPTIONS_SIZE_0_2 \
    SG_ROUND(SG_END(segops_options, dns_refresh_ms), _Alignof(segops_options))
#define SG_COUNTERS_SIZE_0_2 \
    SG_ROUND(SG_END(segops_counters, connections_open), _Alignof(segops_counters))
/* proxy_url and no_proxy came after 0.2.0: appended past its layout, so a
 * 0.2.0 caller's options read them as NULL (the environment decides) */
_Static_assert(offsetof(segops_options, proxy_url) >= SG_OPTIONS_SIZE_0_2,
               "options added after 0.2.0 must come after its layout");
#ifndef SEGOPS_ABI_NEXT
_Static_assert(SG_COUNTERS_SIZE_0_2 == sizeof(segops_counters),
               "segops_counters grew: keep SG_COUNTERS_SIZE_0_2 the 0.2.0 size");
#endif

static int size_ok(size_t size, size_t min, size_t max)
{
    return size >= min && size <= max;
}

/* ------------------------------------------------------------- options */

static int has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return 1;
    return 0;
}

/* The URL as a log line may show it: printable ASCII, '"' and '\\' and
 * every other byte as \xNN, user info ("user:password@") and any
 * occurrence of the API key replaced, at most ~160 bytes. */
static void url_for_log(char *out, size_t cap, const char *url, const char *key)
{
    size_t o = 0, n = strlen(url), klen = strlen(key);
    const char *auth = strstr(url, "://");
    const char *at = NULL;
    if (auth) {
        auth += 3;
        size_t alen = strcspn(auth, "/");
        for (size_t i = 0; i < alen; i++)
            if (auth[i] == '@')
                at = auth + i;
    }
    for (size_t i = 0; i < n && o + 16 < cap;) {
        if (at && url + i == auth) {
            o += (size_t)snprintf(out + o, cap - o, "[user info]@");
            i = (size_t)(at - url) + 1;
            continue;
        }
        if (klen >= 4 && strncmp(url + i, key, klen) == 0) {
            o += (size_t)snprintf(out + o, cap - o, "[api key]");
            i += klen;
            continue;
        }
        if (o >= 160) {
            o += (size_t)snprintf(out + o, cap - o, "...");
            break;
        }
        unsigned char c = (unsigned char)url[i++];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o < cap ? o : cap - 1] = 0;
}

static const char *env_get(const char *name)
{
    return getenv(name);
}

/* The default lane geometry (README "Options", "Many threads").  Lanes are
 * reserved (mmap) for all and committed only when a thread claims one (the
 * sender commits one ahead), so many owned lanes cost address space, not
 * memory: 256 owned lanes serve a 256-thread pool without ENOLANE.  The
 * shared lanes and the first SG_LANES_BIG owned lanes -- the lanes of the
 * first 16 concurrent producer threads, since a thread claims the lowest
 * free one -- hold SG_LANE_CAP_BIG events, as every lane did before
 * (unchanged bursts for up to 16 threads); the others hold
 * SG_LANE_CAP_REST, a second of events at 1,000 events/s per thread,
 * 512 KiB committed per thread with 512-byte slots.  An explicit
 * queue_capacity sizes every lane alike. */
#define SG_LANES_OWNED 256
#define SG_LANES_SHARED 2
#define SG_LANES_BIG 16
#define SG_LANE_CAP_BIG 8192
#define SG_LANE_CAP_REST 1024

static uint32_t dflt(uint32_t v, uint32_t d)
{
    return v ? v : d;
}

static int load_config(const segops_options *o, struct segops_client *c)
{
    struct sg_config *k = &c->cfg;
    k->batch_size = dflt(o->batch_size, 20);
    k->flush_interval_ms = dflt(o->flush_interval_ms, 5000);
    k->queue_capacity = o->queue_capacity; /* 0: the tiers, see SG_LANE_* */
    k->slot_size = dflt(o->slot_size, 512);
    k->max_batch_bytes = dflt(o->max_batch_bytes, 1u << 20);
    k->request_timeout_ms = dflt(o->request_timeout_ms, 10000);
    k->connect_timeout_ms = dflt(o->connect_timeout_ms, 5000);
    k->max_backoff_ms = dflt(o->max_backoff_ms, 30000);
    k->idle_poll_us = dflt(o->idle_poll_us, 5000); /* README: Idle cost */
    k->max_connections = dflt(o->max_connections, 16);
    k->dns_refresh_ms = dflt(o->dns_refresh_ms, 60000);
    const char *tr = getenv("SEGOPS_TRACE");
    k->trace = tr && tr[0] && strcmp(tr, "0") != 0;
    k->max_retries = o->max_retries == 0 ? 3 : o->max_retries < 0 ? 0 : o->max_retries;
    k->io_mode = o->io_mode;
    const char *io = getenv("SEGOPS_IO");
    if (io && strcmp(io, "poll") == 0)
        k->io_mode = SEGOPS_IO_POLL;
    else if (io && strcmp(io, "uring") == 0)
        k->io_mode = SEGOPS_IO_URING;
    k->pin_sender = o->pin_sender;
    k->sender_cpu = o->sender_cpu;
    k->logger = o->logger ? o->logger : segops_log_stderr;
    k->logger_user = o->logger_user;
    k->on_delivery = o->on_delivery;
    k->delivery_user = o->delivery_user;

    if (k->slot_size < SG_SLOT_MIN || k->slot_size > SG_SLOT_MAX || (k->slot_size & 7) ||
        k->queue_capacity > (1u << 24) || o->max_producers > 4096 || o->shared_lanes > 256 ||
        k->io_mode < SEGOPS_IO_AUTO || k->io_mode > SEGOPS_IO_POLL || k->max_retries > 100 ||
        (k->pin_sender && (k->sender_cpu < 0 || k->sender_cpu >= CPU_SETSIZE)) ||
        k->request_timeout_ms > 3600000 || k->connect_timeout_ms > 3600000 ||
        k->flush_interval_ms > 86400000 || k->idle_poll_us > 1000000 ||
        k->max_connections > 128 || k->dns_refresh_ms > 86400000)
        return SEGOPS_EOPTION;
    /* one worst-case event must always fit a request body */
    if ((uint64_t)k->max_batch_bytes < SG_EVENT_RENDER_MAX(k->slot_size) + 64 ||
        k->max_batch_bytes > (256u << 20))
        return SEGOPS_EOPTION;
    return 0;
}

SEGOPS_API int segops_client_new(const segops_options *given, segops_client **out)
{
    if (!out)
        return SEGOPS_EINVAL;
    *out = NULL;
    if (!given)
        return SEGOPS_EINVAL;
    if (!size_ok(given->size, SG_OPTIONS_SIZE_0_2, sizeof(segops_options)))
        return SEGOPS_ESIZE;
    /* the caller's prefix; the fields it does not have take their
     * defaults (zero) */
    segops_options full = SEGOPS_OPTIONS_INIT;
    memcpy(&full, given, given->size);
    const segops_options *o = &full;

    const char *url = o->api_url ? o->api_url : getenv("SEGOPS_API_URL");
    if (!url || !url[0])
        url = DEFAULT_URL;
    const char *key = o->api_key ? o->api_key : getenv("SEGOPS_API_KEY");
    if (!key || !key[0] || has_ctl(key) || strchr(key, ' ') ||
        strlen(key) >= sizeof(((struct segops_client *)0)->api_key))
        return SEGOPS_EAPIKEY;

    /* The client holds cache-line-aligned members (the queue's producer
     * groups): calloc() promises only max_align_t (16 bytes), so the
     * lines the layout keeps apart would straddle real ones. */
    size_t csize = (sizeof(struct segops_client) + _Alignof(struct segops_client) - 1) &
                   ~(_Alignof(struct segops_client) - 1);
    struct segops_client *c = aligned_alloc(_Alignof(struct segops_client), csize);
    if (!c)
        return SEGOPS_ENOMEM;
    memset(c, 0, csize);
    int rc = load_config(o, c);
    if (rc)
        goto fail_free;
    const char *why;
    if (sg_url_parse_why(url, &c->url, &why) != 0) {
        char shown[200];
        url_for_log(shown, sizeof(shown), url, key);
        /* on the caller's thread: the sender does not exist yet */
        sg_log(c, SEGOPS_LOG_ERROR, "api_url%s refused: %s: \"%s\"",
               o->api_url ? "" : " (from $SEGOPS_API_URL)", why, shown);
        rc = SEGOPS_EURL;
        goto fail_free;
    }
    /* the proxy: once, here (never on the sender's path) */
    const char *px_why = NULL;
    if (sg_proxy_choose(&c->url, o->proxy_url, o->no_proxy, env_get, &c->proxy, &px_why) != 0) {
        sg_log(c, SEGOPS_LOG_ERROR, "%s refused: %s", c->proxy.source, px_why);
        rc = SEGOPS_EURL;
        goto fail_free;
    }
    if (o->no_proxy && has_ctl(o->no_proxy)) {
        sg_log(c, SEGOPS_LOG_ERROR, "no_proxy refused: control character");
        rc = SEGOPS_EOPTION;
        goto fail_free;
    }
    if (c->url.tls) {
        /* anchors decoded once, here; the sender never reads the bundle */
        char why[SG_TLS_WHY_MAX];
        rc = sg_tls_ctx_init(&c->tls, o->ca_file, c->url.name, why, sizeof(why));
        if (rc) {
            sg_log(c, SEGOPS_LOG_ERROR, "%s", why); /* on the caller's thread */
            goto fail_free;
        }
        c->tls_on = 1;
    }
    c->api_key_len = strlen(key);
    memcpy(c->api_key, key, c->api_key_len);

    uint32_t nowned = o->max_producers ? o->max_producers : SG_LANES_OWNED;
    uint32_t nshared = o->shared_lanes ? o->shared_lanes : SG_LANES_SHARED;
    if (c->cfg.queue_capacity)
        rc = sg_queue_init(&c->q, nowned, nshared, c->cfg.queue_capacity, c->cfg.slot_size);
    else
        rc = sg_queue_init_tiers(&c->q, nowned, nshared, SG_LANE_CAP_BIG, SG_LANES_BIG,
                                 SG_LANE_CAP_REST, c->cfg.slot_size);
    if (rc)
        goto fail_free;
    /* the host the sockets connect to: the server's, or the proxy's */
    const char *peer = c->proxy.on ? c->proxy.host : c->url.host;
    uint16_t peer_port = c->proxy.on ? c->proxy.port : c->url.port;
    if (!sg_pool_literal_host(peer)) {
        /* getaddrinfo() runs there, never on the sender */
        rc = sg_resolver_new(&c->resolver, peer, peer_port);
        if (rc)
            goto fail_queue;
    }
    rc = sg_sender_alloc(c);
    if (rc)
        goto fail_queue;
    sg_key_seeds(c->key_seed);
    c->jitter_state = c->key_seed[0] ^ (c->key_seed[1] << 1);
    sg_clock_init(&c->ck);

    init_sync(c);

    if (pthread_create(&c->thread, NULL, sg_sender_main, c) != 0) {
        rc = SEGOPS_ETHREAD;
        goto fail_sync;
    }
    pthread_mutex_lock(&c->mu);
    while (!c->started)
        pthread_cond_wait(&c->cv, &c->mu);
    rc = c->start_rc;
    pthread_mutex_unlock(&c->mu);
    if (rc) {
        pthread_join(c->thread, NULL);
        goto fail_sync;
    }
    c->thread_started = 1;
    reg_add(c);
    *out = c;
    return 0;

fail_sync:
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
fail_queue:
    sg_sender_free(c);
    sg_resolver_free(c->resolver);
    sg_queue_destroy(&c->q);
fail_free:
    if (c->tls_on)
        sg_tls_ctx_free(&c->tls);
    free(c);
    return rc;
}

/* ----------------------------------------------------------- hot path */

/* An encoder of one kind of call: validates `in` and writes the slot (the
 * sg_event_encode() contract). */
typedef int (*sg_encode_fn)(void *slot, size_t slot_size, const void *in, uint64_t stamp);

/* The one copy of the hot path's handshake, for every kind of call:
 * always inlined with a constant `enc`, so each entry point gets the
 * encoder inlined and no indirect call. */
static inline __attribute__((always_inline)) int produce_with(segops_client *c, sg_encode_fn enc,
                                                              const void *in)
{
    struct sg_queue *q = &c->q;
    /* First, before any load of the client's memory: from here the closer
     * waits for this call (see "Shutdown handshake" in queue.h). */
    sg_call_enter(q);
    /* the time of the call */
    uint64_t stamp = sg_clock_stamp(&c->ck);
    struct sg_lane *l = sg_lane_enter(q);
    if (__builtin_expect(l == NULL, 0)) {
        /* No lane: in a fork() child the lanes parent threads held stay
         * taken, and during shutdown lanes may be busy -- say why the
         * event is refused (EFORKED, ESHUTDOWN), not ENOLANE.  Off the
         * hot path: only when no lane was found. */
        uint32_t closing = atomic_load_explicit(&q->closing, memory_order_relaxed);
        int rc = SEGOPS_ENOLANE;
        if (closing != 0)
            rc = closing == 2 ? SEGOPS_EFORKED : SEGOPS_ESHUTDOWN;
        else
            atomic_fetch_add_explicit(&q->dropped_no_lane, 1, memory_order_relaxed);
        sg_call_leave();
        return rc;
    }
    /* Dekker read: pairs with sg_queue_close() (see queue.h) */
    uint32_t closing = atomic_load_explicit(&q->closing, memory_order_seq_cst);
    if (__builtin_expect(closing != 0, 0)) {
        sg_lane_leave(l);
        sg_call_leave();
        return closing == 2 ? SEGOPS_EFORKED : SEGOPS_ESHUTDOWN;
    }
    int rc = enc(l->cur, q->slot_size, in, stamp);
    if (__builtin_expect(rc != 0, 0)) {
        sg_count(&l->rejected);
    } else if (__builtin_expect(sg_lane_publish(l) != 0, 0)) {
        sg_count(&l->dropped);
        rc = SEGOPS_EFULL;
    }
    sg_lane_leave(l);
    sg_call_leave();
    return rc;
}

/* The encoders, inlined from encode.h into each entry point: the same
 * code the sg_event_encode*() wrappers run, without a call. */
static inline __attribute__((always_inline)) int encode_plain(void *slot, size_t slot_size,
                                                              const void *in, uint64_t stamp)
{
    return sg_encode_plain(slot, slot_size, (const struct sg_event_in *)in, stamp);
}

static inline __attribute__((always_inline)) int encode_prepared(void *slot, size_t slot_size,
                                                                 const void *in, uint64_t stamp)
{
    return sg_encode_prepared_values(slot, slot_size, (const struct sg_prepared_in *)in, stamp);
}

static inline __attribute__((always_inline)) int
encode_prepared_props(void *slot, size_t slot_size, const void *in, uint64_t stamp)
{
    return sg_encode_prepared_props(slot, slot_size, (const struct sg_prepared_in *)in, stamp);
}

static inline __attribute__((always_inline)) int produce(segops_client *c,
                                                          const struct sg_event_in *in)
{
    return produce_with(c, encode_plain, in);
}

SEGOPS_API int segops_track(segops_client *c, const segops_event *ev)
{
    if (__builtin_expect(!c || !ev, 0))
        return SEGOPS_EINVAL;
    struct sg_event_in in = {ev->user_id,    ev->user_id_len,    ev->event_type,
                             ev->event_type_len, ev->occurred_at, ev->occurred_at_ms,
                             ev->payload,    ev->payload_len};
    return produce(c, &in);
}

SEGOPS_API int segops_identify(segops_client *c, const segops_context *ctx)
{
    if (!c || !ctx)
        return SEGOPS_EINVAL;
    struct sg_event_in in = {ctx->user_id,       ctx->user_id_len,    "context_identified",
                             sizeof("context_identified") - 1, ctx->occurred_at,
                             ctx->occurred_at_ms, ctx->traits,        ctx->traits_len};
    return produce(c, &in);
}

/* ------------------------------------------------------ prepared events */

SEGOPS_API int segops_prepare(const char *event_type, size_t event_type_len,
                              const segops_prop_spec *keys, size_t n, segops_prepared **out)
{
    if (!out)
        return SEGOPS_EINVAL;
    *out = NULL;
    if (n && !keys)
        return SEGOPS_EINVAL;
    return sg_prepare(event_type, event_type_len, keys, sizeof(*keys),
                      offsetof(segops_prop_spec, key), offsetof(segops_prop_spec, key_len),
                      offsetof(segops_prop_spec, type), n, out);
}

SEGOPS_API void segops_prepared_free(segops_prepared *p)
{
    free(p);
}

SEGOPS_API int segops_track_prepared(segops_client *c, const segops_prepared *p,
                                     const char *user_id, size_t user_id_len,
                                     const segops_value *values, size_t n,
                                     int64_t occurred_at_ms)
{
    if (__builtin_expect(!c || !p, 0))
        return SEGOPS_EINVAL;
    struct sg_prepared_in in = {p, user_id, user_id_len, values, NULL, n, occurred_at_ms};
    return produce_with(c, encode_prepared, &in);
}

/* First use of a call site: prepare from the props' keys and install the
 * handle with a CAS; the loser of a race frees its own and uses the
 * winner's.  NULL when the event type or a key is refused (validation
 * comes before the allocation: a bad site allocates nothing) or memory is
 * short. */
static __attribute__((noinline, cold)) segops_prepared *
site_prepare(segops_prepared **site, const char *event_type, const segops_prop *props, size_t n)
{
    segops_prepared *p;
    if ((n && !props) ||
        sg_prepare(event_type, SEGOPS_NTS, props, sizeof(*props), offsetof(segops_prop, key),
                   offsetof(segops_prop, key_len), offsetof(segops_prop, type), n, &p) != 0)
        return NULL;
    segops_prepared *won = NULL;
    /* release: the handle's contents before its pointer; acquire on
     * failure: the winner's contents */
    if (!__atomic_compare_exchange_n(site, &won, p, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        free(p);
        return won;
    }
    return p;
}

SEGOPS_API int segops_track_site(segops_client *c, segops_prepared **site,
                                 const char *event_type, const char *user_id,
                                 size_t user_id_len, const segops_prop *props, size_t n,
                                 int64_t occurred_at_ms)
{
    if (__builtin_expect(!c || !site, 0))
        return SEGOPS_EINVAL;
    /* acquire: pairs with the CAS's release in site_prepare() */
    segops_prepared *p = __atomic_load_n(site, __ATOMIC_ACQUIRE);
    if (__builtin_expect(p == NULL, 0)) {
        p = site_prepare(site, event_type, props, n);
        if (!p) {
            /* refused (or no memory): segops_track() of the same event
             * gives the error code and counts it, as it would have */
            segops_event ev = {user_id, event_type, NULL, props, n,
                               user_id_len, SEGOPS_NTS, occurred_at_ms};
            return segops_track(c, &ev);
        }
    }
    struct sg_prepared_in in = {p, user_id, user_id_len, NULL, props, n, occurred_at_ms};
    return produce_with(c, encode_prepared_props, &in);
}

/* ------------------------------------------------------ flush, shutdown */

static struct timespec abs_deadline(uint32_t timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

SEGOPS_API int segops_flush(segops_client *c, uint32_t timeout_ms)
{
    if (!c)
        return SEGOPS_EINVAL;
    if (c->forked)
        return SEGOPS_EFORKED;
    struct timespec dl = abs_deadline(timeout_ms);
    pthread_mutex_lock(&c->mu);
    if (c->stop) {
        pthread_mutex_unlock(&c->mu);
        return SEGOPS_ESHUTDOWN;
    }
    uint64_t gen = ++c->flush_req;
    atomic_store_explicit(&c->flush_req_pub, gen, memory_order_release);
    /* failures not yet returned by any flush, and those while we wait:
     * concurrent flushes each see every failure of their time */
    uint64_t from = c->failures_reported;
    int rc = 0;
    c->flush_waiters++; /* shutdown frees nothing while we are inside */
    while (c->flush_done < gen) {
        if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) == ETIMEDOUT &&
            c->flush_done < gen) {
            rc = SEGOPS_ETIMEDOUT;
            break;
        }
    }
    if (rc == 0 && c->failures > from)
        rc = c->last_error;
    if (c->failures > c->failures_reported)
        c->failures_reported = c->failures;
    if (--c->flush_waiters == 0 && c->stop)
        pthread_cond_broadcast(&c->cv); /* shutdown waits for us to leave */
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static void snapshot(segops_client *c, segops_counters *s);

/* segops_shutdown() and segops_shutdown_stats(): *fin gets the final
 * counters (our full layout). */
static int shutdown_client(segops_client *c, uint32_t timeout_ms, uint64_t *undelivered,
                           segops_counters *fin)
{
    int rc = 0;
    int keep = 0;
    if (undelivered)
        *undelivered = 0;
    memset(fin, 0, sizeof(*fin));
    if (!c)
        return SEGOPS_EINVAL;
    reg_remove(c);
    if (c->forked) {
        /* A child's copy: no sender thread here, and the connection and
         * io_uring ring are the parent's.  The driver's destroy drops our
         * references without sending a byte (close() of an inherited
         * socket sends nothing while the parent holds it; unmapping our
         * view of the ring does not touch the parent's). */
        c->io.ops->destroy(&c->io);
        sg_resolver_forget(c->resolver);
        c->resolver = NULL;
        goto free_all;
    }
    /* 1. refuse new events; wait out producers mid-publish (never long) */
    sg_queue_close(&c->q);
    /* 2. tell the sender: deliver everything before the deadline */
    pthread_mutex_lock(&c->mu);
    c->stop_deadline_ns = sg_mono_ns() + (int64_t)timeout_ms * 1000000;
    c->stop = 1;
    atomic_store_explicit(&c->stop_pub, 1, memory_order_release);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->thread_started)
        pthread_join(c->thread, NULL);
    /* 3. a producer refused while we delivered may still be leaving its
     * lane, or still checking its binding: wait it out (acquire) before
     * the lanes are freed */
    sg_queue_close(&c->q);
    /* The sender is gone: log from here (see segops_log_fn). */
    if (c->q.barrier_errno && !c->q.unproven)
        sg_log(c, SEGOPS_LOG_WARN,
               "shutdown: membarrier() failed (%s); the shutdown handshake used %s instead",
               strerror(c->q.barrier_errno), sg_barrier_name(c->q.barrier_used));
    else if (c->q.barrier_errno)
        sg_log(c, SEGOPS_LOG_ERROR,
               "shutdown: membarrier() failed (%s) and CPU migration was refused too",
               strerror(c->q.barrier_errno));
    keep = c->q.unproven;
    if (keep)
        sg_log(c, SEGOPS_LOG_ERROR,
               "shutdown: no barrier could make producer threads' stores visible "
               "(membarrier and sched_setaffinity refused); the client's queue (%zu KiB) "
               "stays mapped so that a call caught mid-way cannot write freed memory",
               (c->q.slab_size + (size_t)c->q.nlanes * sizeof(struct sg_lane)) / 1024);

    /* The sender has stopped and no producer is inside: the counters are
     * final.  Everything accepted is resolved (pending 0); what was not
     * delivered -- failed at any time of the lifetime, or skipped by the
     * server -- is the loss the caller must see (issue 13: 20 events
     * failed with 401 early on and shutdown said OK, 0 undelivered). */
    snapshot(c, fin);
    uint64_t lost = fin->accepted - fin->delivered;
    if (lost) {
        if (c->failures)
            rc = c->last_error == SEGOPS_EABANDONED ? SEGOPS_ETIMEDOUT : c->last_error;
        else
            rc = SEGOPS_EREJECTED; /* only skips: the server refused them */
    }
    if (undelivered)
        *undelivered = lost;

    /* never waits for a lookup in progress (see resolve.h) */
    sg_resolver_free(c->resolver);
    /* flushers the sender's last broadcast woke must leave the lock and
     * condition variable before they are destroyed (they return at once) */
    pthread_mutex_lock(&c->mu);
    while (c->flush_waiters > 0)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);

free_all:
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    sg_sender_free(c);
    if (c->tls_on)
        sg_tls_ctx_free(&c->tls);
    if (keep) {
        /* Deliberately not freed (logged above): a producer may still be
         * between its check of `closing` and its publication.  Taken off
         * the registry so no thread-exit destructor looks at it. */
        sg_queue_unregister(&c->q);
        return rc;
    }
    sg_queue_destroy(&c->q);
    free(c);
    return rc;
}

SEGOPS_API int segops_shutdown(segops_client *c, uint32_t timeout_ms, uint64_t *undelivered)
{
    segops_counters fin = SEGOPS_COUNTERS_INIT;
    return shutdown_client(c, timeout_ms, undelivered, &fin);
}

/* Copies the caller's prefix of a full counters snapshot; its size kept. */
static void counters_out(segops_counters *out, const segops_counters *full)
{
    memcpy((char *)out + sizeof(out->size), (const char *)full + sizeof(full->size),
           out->size - sizeof(out->size));
}

SEGOPS_API int segops_shutdown_stats(segops_client *c, uint32_t timeout_ms,
                                     segops_counters *final)
{
    if (!c || !final)
        return SEGOPS_EINVAL;
    if (!size_ok(final->size, SG_COUNTERS_SIZE_0_2, sizeof(segops_counters)))
        return SEGOPS_ESIZE;
    segops_counters fin = SEGOPS_COUNTERS_INIT;
    int rc = shutdown_client(c, timeout_ms, NULL, &fin);
    counters_out(final, &fin);
    return rc;
}

/* --------------------------------------------------------------- stats */

static uint64_t ld(_Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_acquire);
}

SEGOPS_API int segops_stats(segops_client *c, segops_counters *out)
{
    if (!c || !out)
        return SEGOPS_EINVAL;
    if (!size_ok(out->size, SG_COUNTERS_SIZE_0_2, sizeof(segops_counters)))
        return SEGOPS_ESIZE;
    segops_counters full = SEGOPS_COUNTERS_INIT;
    snapshot(c, &full);
    counters_out(out, &full);
    return 0;
}

/* A snapshot in our full layout. */
static void snapshot(segops_client *c, segops_counters *s)
{
    memset(s, 0, sizeof(*s));
    s->size = sizeof(*s);
    /* resolved counters first: everything resolved was accepted earlier,
     * so reading accepted afterwards keeps pending >= 0 */
    s->delivered = ld(&c->delivered);
    s->skipped = ld(&c->skipped);
    s->failed = ld(&c->failed);
    struct sg_queue *q = &c->q;
    for (uint32_t i = 0; i < q->nlanes; i++) {
        struct sg_lane *l = &q->lanes[i];
        s->accepted += ld(&l->enq);
        s->rejected_invalid += ld(&l->rejected);
        s->dropped_full += ld(&l->dropped);
    }
    s->dropped_no_lane = ld(&q->dropped_no_lane);
    s->pending = s->accepted - s->delivered - s->skipped - s->failed;
    s->retries = ld(&c->retries);
    s->batches = ld(&c->batches);
    s->requests = ld(&c->net.requests);
    s->bytes_sent = ld(&c->net.bytes_sent);
    s->reconnects = ld(&c->net.reconnects);
    s->requests_in_flight = ld(&c->net.in_flight);
    s->connections_open = ld(&c->net.open);
    s->queue_depth = sg_queue_depth(q);
    /* The sender samples the depth once per loop turn; producers that hold
     * every core can fill the lanes between two turns.  Raise the mark to
     * the depth seen now, so that a snapshot never shows a high-water mark
     * below its own queue_depth. */
    uint64_t hw = ld(&c->high_water);
    while (hw < s->queue_depth &&
           !atomic_compare_exchange_weak_explicit(&c->high_water, &hw, s->queue_depth,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
    s->queue_high_water = hw > s->queue_depth ? hw : s->queue_depth;
    s->lanes_in_use = atomic_load_explicit(&q->lanes_in_use, memory_order_relaxed);
    s->io_mode = c->io.mode;
    s->tls_handshakes = ld(&c->net.tls_handshakes);
    s->tls_resumed = ld(&c->net.tls_resumed);
#ifdef SEGOPS_ABI_NEXT
    s->abi_next = UINT64_MAX; /* tests/test_abi.c: must never reach a 0.2 caller */
#endif
}
