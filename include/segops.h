/* SPDX-License-Identifier: MIT */
/*
 * segops.h -- the C client for the SegOps ingestion API.
 *
 * Library-wide rules
 * ------------------
 * Errors.     Every function that can fail returns 0 on success or a
 *             negative SEGOPS_E* code; segops_strerror() names each code.
 *             An error code names one cause.
 *
 * Memory.     segops_client_new() allocates everything the client will ever
 *             need: slots, lanes, the JSON arena, I/O buffers.  After it
 *             returns, segops_track() and segops_identify() never allocate,
 *             and the sender thread allocates nothing per event or per batch
 *             while its connection is up.  segops_shutdown() frees every
 *             byte.  The caller owns every buffer it passes in; the library
 *             copies what it keeps and never holds a caller pointer after a
 *             call returns.
 *
 * Threads.    segops_track(), segops_identify(), segops_flush() and
 *             segops_stats() may be called from any number of threads at
 *             once.  Each producer thread gets its own lane (a wait-free
 *             single-producer ring) on its first call, so no producer ever
 *             waits for another; the lane is given back when the thread
 *             exits.  A thread may call segops_track() from its own
 *             thread-exit destructors, also after the library's has run
 *             (the call then goes through a shared lane), and threads may
 *             exit while the client shuts down.  A thread holds owned lanes
 *             of at most 8 clients at once; beyond, it uses shared lanes.
 *             segops_shutdown() must be called once, after which the client
 *             pointer is invalid.  Calls made while it runs return
 *             SEGOPS_ESHUTDOWN; it waits for every call already inside the
 *             library (whatever step the call is at, a thread's first
 *             call included) before it frees anything, so only a call that
 *             starts after it returned is a use after free.  A membarrier()
 *             refused at shutdown (a seccomp filter installed after
 *             creation) is replaced by another barrier and logged.
 *
 * Hot path.   segops_track() validates, copies the event into a fixed-size
 *             slot and publishes it: no lock, no system call, no allocation,
 *             no logging, never blocks.  When the lane is full the event is
 *             dropped, counted, and SEGOPS_EFULL is returned.
 *
 * NULL.       A NULL client, event or options pointer is SEGOPS_EINVAL; it
 *             never crashes.
 *
 * fork().     A client belongs to the process that created it.  In a child
 *             made by fork(), its sender thread does not exist, so the
 *             client refuses every event with SEGOPS_EFORKED (never a queue
 *             that silently swallows events) and never sends the parent's
 *             queued events again; segops_shutdown() in the child only
 *             frees the child's copy.  A child that wants to send events
 *             creates a client of its own.  The parent is unaffected.
 *
 * Strings.    Every `const char *` is NUL-terminated unless a length is given
 *             alongside it.  Strings may hold any bytes: they are escaped on
 *             the wire, and invalid UTF-8 becomes U+FFFD.  A length of
 *             SEGOPS_NTS means "NUL-terminated"; so does 0 for the strings
 *             that may not be empty (user id, event type, property key).
 *
 * ABI.        segops_options and segops_counters begin with a `size`
 *             member: the sizeof() of the struct as the caller's header
 *             declared it.  Initialise them with SEGOPS_OPTIONS_INIT /
 *             SEGOPS_COUNTERS_INIT or segops_options_init() /
 *             segops_counters_init() (inline: they record YOUR header's
 *             size, never the library's).  New fields are only ever
 *             appended, so a binary built against an older 0.N header keeps
 *             working with a newer library of the same soname: the library
 *             reads only the `size` bytes of options it was given (the
 *             fields beyond take their defaults) and writes only `size`
 *             bytes of counters.  A size of 0 (struct not initialised), one
 *             smaller than the first sized layout (0.2.0) or one larger than
 *             this library knows (a binary built against a newer header)
 *             is refused with SEGOPS_ESIZE and nothing is done.
 *             segops_event, segops_context, segops_prop and segops_delivery
 *             carry no size: a field added to the first three changes the
 *             soname; segops_delivery only grows at its end (the library
 *             fills it, the callback reads what it knows).
 *             Versions: semantic; the soname is libsegops.so.0.MINOR while
 *             the major version is 0 (each 0.MINOR may break the ABI), and
 *             libsegops.so.MAJOR from 1.0 on.
 */
#ifndef SEGOPS_H
#define SEGOPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SEGOPS_BUILDING) && defined(__GNUC__)
#define SEGOPS_API __attribute__((visibility("default")))
#else
#define SEGOPS_API
#endif

#define SEGOPS_VERSION_MAJOR 0
#define SEGOPS_VERSION_MINOR 2
#define SEGOPS_VERSION_PATCH 0
#define SEGOPS_VERSION_STRING "0.2.0"

/* ---------------------------------------------------------------- errors */

/* Error codes.  All are negative; 0 is success. */
enum segops_error {
    SEGOPS_OK = 0,
    SEGOPS_EINVAL = -1,      /* NULL client/event/options or bad argument */
    SEGOPS_ENOMEM = -2,      /* segops_client_new() could not allocate */
    SEGOPS_EUSERID = -3,     /* user_id NULL or empty */
    SEGOPS_EEVENTTYPE = -4,  /* event_type NULL, empty or not [a-z][a-z0-9_]* */
    SEGOPS_ETIMESTAMP = -5,  /* occurred_at given but not RFC 3339 */
    SEGOPS_ENUMBER = -6,     /* a double property is NaN or infinite */
    SEGOPS_ERAWJSON = -7,    /* raw JSON not a valid JSON object or array */
    SEGOPS_EPROP = -8,       /* property key NULL/empty, string NULL, or bad type */
    SEGOPS_ETOOBIG = -9,     /* the encoded event does not fit one slot;
                                segops_stats_prometheus(): buffer too small */
    SEGOPS_EFULL = -10,      /* lane full: event dropped and counted */
    SEGOPS_ENOLANE = -11,    /* no lane free for this thread: dropped, counted */
    SEGOPS_ESHUTDOWN = -12,  /* shutdown has begun: event refused */
    SEGOPS_ETIMEDOUT = -13,  /* flush/shutdown deadline passed */
    SEGOPS_EURL = -14,       /* api_url malformed or has control characters
                                (the reason is logged) */
    SEGOPS_EAPIKEY = -15,    /* api_key missing or has control characters */
    SEGOPS_EOPTION = -16,    /* an option is out of range */
    SEGOPS_EIO = -17,        /* neither io_uring nor poll() could be set up */
    SEGOPS_ETHREAD = -18,    /* the sender thread could not be started */
    SEGOPS_ECONNECT = -19,   /* batch failed: could not connect / resolve */
    SEGOPS_EPROTOCOL = -20,  /* batch failed: malformed or oversized answer */
    SEGOPS_EREJECTED = -21,  /* batch failed: non-retryable 4xx from server */
    SEGOPS_ERETRIES = -22,   /* batch failed: transient errors, retries spent */
    SEGOPS_ETLS = -23,       /* batch failed: TLS handshake or verification;
                                the certificate's trust, name or dates fail
                                a batch at once (attempts 1), other TLS
                                failures after the retries; the delivery
                                detail and the log line name the cause;
                                creation: the trusted CA file (logged) */
    SEGOPS_EABANDONED = -24, /* batch failed: shutdown deadline passed */
    SEGOPS_EFORKED = -25,    /* called in a child process after fork() */
    SEGOPS_ESIZE = -26,      /* options/counters `size` 0 or unknown to this
                                library (see ABI above) */
    SEGOPS_EREDIRECT = -27,  /* batch failed: the server answered 3xx (not
                                followed; detail names the Location) */
    SEGOPS_EANSWER = -28,    /* events failed: a 2xx that is not the SegOps
                                API's (not JSON, no "queued": check
                                api_url), or that did not cover them all */
    SEGOPS_EPROXY = -29      /* batch failed: the HTTP proxy refused it
                                (407 authentication failed, CONNECT
                                refused); see README "Proxies" */
};

/* The name and meaning of an error code, e.g. "SEGOPS_EFULL: queue full,
 * event dropped".  Never NULL; unknown codes give a generic string. */
SEGOPS_API const char *segops_strerror(int err);

/* ------------------------------------------------------------- payloads */

/* Property value types. */
enum segops_type {
    SEGOPS_T_STR = 1,  /* str/len: any bytes */
    SEGOPS_T_I64 = 2,  /* i64 */
    SEGOPS_T_F64 = 3,  /* f64: must be finite */
    SEGOPS_T_BOOL = 4, /* i64: 0 false, else true */
    SEGOPS_T_NULL = 5, /* no value */
    SEGOPS_T_JSON = 6  /* str/len: a JSON object or array, as text; validated */
};

/* `len` value meaning "str is NUL-terminated". */
#define SEGOPS_NTS ((size_t)-1)

/* occurred_at_ms value meaning "not given" (the Unix epoch itself cannot be
 * given as a number; give it as text). */
#define SEGOPS_TIME_NONE 0

/* One key -> value property of an event payload or of identify traits.
 * Build them with the macros below; the struct is plain so that the macros
 * are positional initialisers valid in both C and C++. */
typedef struct segops_prop {
    const char *key; /* MUST be non-NULL and non-empty; any bytes */
    int type;        /* an enum segops_type */
    const char *str; /* STR, JSON: the bytes (MUST be non-NULL) */
    size_t len;      /* STR, JSON: byte length, or SEGOPS_NTS */
    int64_t i64;     /* I64, BOOL */
    double f64;      /* F64 */
    size_t key_len;  /* key's byte length (need not be NUL-terminated), or
                        SEGOPS_NTS / 0: NUL-terminated */
} segops_prop;

#define SEGOPS_STR(k, s) {(k), SEGOPS_T_STR, (s), SEGOPS_NTS, 0, 0.0, SEGOPS_NTS}
#define SEGOPS_STRN(k, s, n) {(k), SEGOPS_T_STR, (s), (size_t)(n), 0, 0.0, SEGOPS_NTS}
#define SEGOPS_I64(k, v) {(k), SEGOPS_T_I64, 0, 0, (int64_t)(v), 0.0, SEGOPS_NTS}
#define SEGOPS_F64(k, v) {(k), SEGOPS_T_F64, 0, 0, 0, (double)(v), SEGOPS_NTS}
#define SEGOPS_BOOL(k, v) {(k), SEGOPS_T_BOOL, 0, 0, (v) ? 1 : 0, 0.0, SEGOPS_NTS}
#define SEGOPS_NULL(k) {(k), SEGOPS_T_NULL, 0, 0, 0, 0.0, SEGOPS_NTS}
#define SEGOPS_JSON(k, j) {(k), SEGOPS_T_JSON, (j), SEGOPS_NTS, 0, 0.0, SEGOPS_NTS}

/* One behavioural event.  Nothing is kept after segops_track() returns.
 * The time: occurred_at when non-NULL, else occurred_at_ms when not
 * SEGOPS_TIME_NONE, else the time of the call.  Either way it goes on the
 * wire as RFC 3339 UTC with milliseconds ("2026-04-25T14:32:00.123Z"). */
typedef struct segops_event {
    const char *user_id;        /* required, non-empty */
    const char *event_type;     /* required, snake_case: [a-z][a-z0-9_]* */
    const char *occurred_at;    /* optional RFC 3339; NULL: see above */
    const segops_prop *payload; /* may be NULL when payload_len is 0 */
    size_t payload_len;
    size_t user_id_len;         /* bytes of user_id (need not be
                                   NUL-terminated), or SEGOPS_NTS / 0 */
    size_t event_type_len;      /* bytes of event_type, or SEGOPS_NTS / 0 */
    int64_t occurred_at_ms;     /* Unix time in ms (years 0000..9999), used
                                   when occurred_at is NULL; SEGOPS_TIME_NONE
                                   (0): the time of the call */
} segops_event;

/* identify(): an event of type "context_identified" whose payload is the
 * user's traits.  Time and lengths as in segops_event. */
typedef struct segops_context {
    const char *user_id;       /* required, non-empty */
    const char *occurred_at;   /* optional RFC 3339; NULL: see segops_event */
    const segops_prop *traits; /* may be NULL when traits_len is 0 */
    size_t traits_len;
    size_t user_id_len;        /* bytes of user_id, or SEGOPS_NTS / 0 */
    int64_t occurred_at_ms;    /* Unix ms, or SEGOPS_TIME_NONE */
} segops_context;

/* -------------------------------------------------------------- options */

/* Log levels passed to the logger. */
enum segops_log_level { SEGOPS_LOG_ERROR = 0, SEGOPS_LOG_WARN = 1, SEGOPS_LOG_INFO = 2 };

/* Logger: one line, no trailing newline.  Called on the sender thread, or
 * on the thread in segops_shutdown() after the sender thread has ended --
 * never two calls at once, never from segops_track() -- and by
 * segops_client_new() on its caller's thread, before the sender exists, to
 * say why creation failed (the trusted CA file: which file, what is wrong;
 * a refused api_url: the reason and the URL, user info and key hidden; a
 * refused proxy setting).  The API key never appears in a line. */
typedef void (*segops_log_fn)(void *user, int level, const char *line);

/* The default logger: writes "[SegOps] <line>\n" to stderr. */
SEGOPS_API void segops_log_stderr(void *user, int level, const char *line);
/* A logger that discards every line. */
SEGOPS_API void segops_log_discard(void *user, int level, const char *line);

/* The outcome of one batch, passed to the delivery callback on the sender
 * thread.  Pointers are valid only during the call. */
typedef struct segops_delivery {
    int result;               /* 0 delivered, or a negative SEGOPS_E* code */
    int status;               /* last HTTP status, 0 if none was received */
    uint32_t events;          /* events in the batch */
    uint32_t skipped;         /* events the server skipped (validation) */
    uint32_t attempts;        /* tries (1 + retries), connected or not */
    const char *idempotency_key; /* the last request's (a 413 split sends
                                    each half under a new key) */
    const char *detail;       /* the server's "detail" (a string, or a
                                 list/object as compact JSON, or the start of
                                 a non-JSON body) or our reason; made safe
                                 for a log line, the API key redacted; ""
                                 if none */
    uint32_t failed;          /* events that failed: all of them when the
                                 whole batch failed; fewer when only part
                                 did (a 413 half, events a 2xx did not
                                 cover) -- result is then that failure */
} segops_delivery;

typedef void (*segops_delivery_fn)(void *user, const segops_delivery *d);

/* I/O driver of the sender. */
enum segops_io_mode {
    SEGOPS_IO_AUTO = 0,  /* io_uring, falling back to poll() if unavailable */
    SEGOPS_IO_URING = 1, /* io_uring only: client creation fails without it */
    SEGOPS_IO_POLL = 2   /* non-blocking sockets and poll() */
};

/* max_retries value meaning "never retry" (0 means the default, 3). */
#define SEGOPS_RETRIES_NONE (-1)

/* Client options.  Initialise with SEGOPS_OPTIONS_INIT (or
 * segops_options_init()) and set what you need: every zero field takes the
 * default shown.  `size` MUST be sizeof(segops_options) of the header the
 * caller was compiled with (see ABI at the top). */
typedef struct segops_options {
    size_t size;                 /* set by SEGOPS_OPTIONS_INIT */
    const char *api_url;         /* NULL: $SEGOPS_API_URL, else
                                    "https://api.segops.ai".  http[s]://
                                    host[:port][/prefix]; host: a DNS name
                                    ('_' and a trailing dot allowed), a
                                    dotted-quad IPv4 or [IPv6] address
                                    (README "URLs") */
    const char *api_key;         /* NULL: $SEGOPS_API_KEY; required */
    uint32_t batch_size;         /* 20: a batch starts once this many queue */
    uint32_t flush_interval_ms;  /* 5000: periodic flush */
    int max_retries;             /* 3; SEGOPS_RETRIES_NONE for none */
    uint32_t queue_capacity;     /* events each lane can hold; 0 (the
                                    default): 8192 in the shared lanes and
                                    the first 16 owned lanes, 1024 in the
                                    others (README "Many threads") */
    uint32_t max_producers;      /* 256: lanes owned by producer threads
                                    (reserved address space; committed
                                    only when a thread claims one) */
    uint32_t shared_lanes;       /* 2: lanes shared by threads beyond those */
    uint32_t slot_size;          /* 512: bytes per encoded event (128..65536) */
    uint32_t max_batch_bytes;    /* 1 MiB: body cap of one request */
    uint32_t request_timeout_ms; /* 10000: send + answer of one request */
    uint32_t connect_timeout_ms; /* 5000 */
    uint32_t max_backoff_ms;     /* 30000: cap of back-off and Retry-After */
    uint32_t idle_poll_us;       /* 5000: longest sleep of an idle sender
                                    (bounds the wait of an event that comes
                                    after a quiet spell, and of a flush) */
    const char *ca_file;         /* https: PEM bundle; NULL: system bundle */
    int io_mode;                 /* SEGOPS_IO_AUTO; $SEGOPS_IO=poll|uring */
    int pin_sender;              /* non-zero: pin the sender to sender_cpu */
    int sender_cpu;
    segops_log_fn logger;        /* NULL: segops_log_stderr */
    void *logger_user;
    segops_delivery_fn on_delivery; /* NULL: none */
    void *delivery_user;
    uint32_t max_connections;    /* 16: keep-alive connections to the
                                    server, each carrying one request at a
                                    time (so: requests in flight); 1..128 */
    uint32_t dns_refresh_ms;     /* 60000: a connection opened this long
                                    after the last name resolution resolves
                                    the host again (a failed connect always
                                    does) */
    const char *proxy_url;       /* HTTP proxy, "http://[user:password@]
                                    host[:port]" (no scheme: http://; no
                                    port: 1080; user info percent-encoded,
                                    sent as Proxy-Authorization: Basic, never
                                    logged).  NULL: from the environment,
                                    curl's rules: https:// targets read
                                    https_proxy, HTTPS_PROXY, all_proxy,
                                    ALL_PROXY; http:// targets http_proxy
                                    (lowercase only), all_proxy, ALL_PROXY.
                                    "": no proxy, whatever the environment
                                    says.  https:// targets go through a
                                    CONNECT tunnel (TLS to the server inside
                                    it: the API key never reaches the proxy
                                    in clear); http:// targets as absolute-
                                    form requests.  https:// and SOCKS
                                    proxies are refused (SEGOPS_EURL).  Read
                                    once, by segops_client_new() */
    const char *no_proxy;        /* hosts reached without the proxy, a
                                    comma-separated list: names match
                                    themselves and their subdomains (a
                                    leading '.' changes nothing), IP
                                    addresses exactly or as CIDR
                                    (10.0.0.0/8), "*" every host, ":port"
                                    limits an entry to that port.  NULL:
                                    $no_proxy, else $NO_PROXY (also with
                                    proxy_url set, as curl); "": none */
    /* New options are appended here, never inserted (see ABI). */
#ifdef SEGOPS_ABI_NEXT
    uint64_t abi_next; /* tests/test_abi.c only: a field of a later version */
#endif
} segops_options;

/* The initialiser of segops_options: zero everywhere (every default), size
 * set.  `segops_options o = SEGOPS_OPTIONS_INIT;` in C and in C++. */
#ifdef __cplusplus
#define SEGOPS_OPTIONS_INIT \
    ([] { segops_options o_{}; o_.size = sizeof(segops_options); return o_; }())
#else
#define SEGOPS_OPTIONS_INIT {.size = sizeof(segops_options)}
#endif

/* The same as a function: *o = SEGOPS_OPTIONS_INIT.  Inline on purpose: it
 * records the caller's sizeof, not the library's. */
static inline void segops_options_init(segops_options *o)
{
    segops_options z = SEGOPS_OPTIONS_INIT;
    *o = z;
}

/* ---------------------------------------------------------------- client */

typedef struct segops_client segops_client;

/* Creates a client and starts its sender thread.  Validates every option,
 * parses the URL, refuses an api_key or api_url holding control characters
 * (header injection), allocates all memory.  A refused api_url returns
 * SEGOPS_EURL and logs its reason through opts' logger, on this thread.  Does no network I/O: the host
 * is resolved and connected by the sender thread.  On error *out is NULL. */
SEGOPS_API int segops_client_new(const segops_options *opts, segops_client **out);

/* Validates ev and queues a copy of it.  Never blocks, allocates, logs or
 * makes a system call.  Returns 0 (accepted: it will be delivered, skipped
 * by the server, or counted as failed), or a validation error (nothing
 * queued, counted as rejected), SEGOPS_EFULL / SEGOPS_ENOLANE (dropped,
 * counted), SEGOPS_ESHUTDOWN. */
SEGOPS_API int segops_track(segops_client *c, const segops_event *ev);

/* ------------------------------------------------------ prepared events */

/* A prepared event: an event type and its property keys and types,
 * validated once and kept with their JSON already written
 * ("event_type":"order_placed",... "payload":{"order_id":), so that each
 * call copies only what changes (user id, values, time) and the sender
 * formats only those.  For the same event the wire carries exactly the
 * bytes segops_track() would have sent.
 *
 * A handle belongs to no client: one handle may be used with any number
 * of clients, from any number of threads at once (it is never written
 * after segops_prepare() returned).  It MUST outlive every event tracked
 * with it: the slot keeps a pointer to it until the sender has rendered
 * the event, so free it only after segops_shutdown() of every client that
 * tracked with it (or segops_flush() returned 0 and no thread tracks with
 * it any more).  Handles made by SEGOPS_TRACK_PREPARED() are never freed:
 * they live until the process exits. */
typedef struct segops_prepared segops_prepared;

/* One property of a prepared event: its key and the type of its value. */
typedef struct segops_prop_spec {
    const char *key; /* MUST be non-NULL and non-empty; any bytes */
    size_t key_len;  /* key's byte length, or SEGOPS_NTS / 0: NUL-terminated */
    int type;        /* an enum segops_type */
} segops_prop_spec;

#define SEGOPS_KEY(k, t) {(k), SEGOPS_NTS, (t)}
#define SEGOPS_KEY_STR(k) SEGOPS_KEY(k, SEGOPS_T_STR)
#define SEGOPS_KEY_I64(k) SEGOPS_KEY(k, SEGOPS_T_I64)
#define SEGOPS_KEY_F64(k) SEGOPS_KEY(k, SEGOPS_T_F64)
#define SEGOPS_KEY_BOOL(k) SEGOPS_KEY(k, SEGOPS_T_BOOL)
#define SEGOPS_KEY_NULL(k) SEGOPS_KEY(k, SEGOPS_T_NULL)
#define SEGOPS_KEY_JSON(k) SEGOPS_KEY(k, SEGOPS_T_JSON)

/* One value of a prepared event, in the order of its keys.  `type` MUST
 * equal the key's type (checked: SEGOPS_EPROP); the other fields as in
 * segops_prop. */
typedef struct segops_value {
    int type;        /* an enum segops_type */
    const char *str; /* STR, JSON: the bytes (MUST be non-NULL) */
    size_t len;      /* STR, JSON: byte length, or SEGOPS_NTS */
    int64_t i64;     /* I64, BOOL */
    double f64;      /* F64 */
} segops_value;

#define SEGOPS_VSTR(s) {SEGOPS_T_STR, (s), SEGOPS_NTS, 0, 0.0}
#define SEGOPS_VSTRN(s, n) {SEGOPS_T_STR, (s), (size_t)(n), 0, 0.0}
#define SEGOPS_VI64(v) {SEGOPS_T_I64, 0, 0, (int64_t)(v), 0.0}
#define SEGOPS_VF64(v) {SEGOPS_T_F64, 0, 0, 0, (double)(v)}
#define SEGOPS_VBOOL(v) {SEGOPS_T_BOOL, 0, 0, (v) ? 1 : 0, 0.0}
#define SEGOPS_VNULL() {SEGOPS_T_NULL, 0, 0, 0, 0.0}
#define SEGOPS_VJSON(j) {SEGOPS_T_JSON, (j), SEGOPS_NTS, 0, 0.0}

/* Validates an event type and n property keys and types exactly as
 * segops_track() does, renders their JSON once and returns a handle in
 * *out (NULL on error).  Allocates (one block).  Returns 0, SEGOPS_EINVAL
 * (out NULL, or keys NULL with n > 0), SEGOPS_EEVENTTYPE, SEGOPS_EPROP (a
 * key NULL or empty, a type unknown), SEGOPS_ETOOBIG (more than 65535
 * keys, or type and keys larger than the largest slot, 65536 bytes),
 * SEGOPS_ENOMEM.  Any thread. */
SEGOPS_API int segops_prepare(const char *event_type, size_t event_type_len,
                              const segops_prop_spec *keys, size_t n, segops_prepared **out);

/* Frees a handle made by segops_prepare() (NULL: nothing).  See above for
 * when it may be freed. */
SEGOPS_API void segops_prepared_free(segops_prepared *p);

/* segops_track() of the event p describes, with these values (n MUST be
 * p's number of keys, values[i] the value of key i).  Checks only the
 * values: user_id non-NULL and non-empty (SEGOPS_EUSERID), n and each
 * value's type as prepared, strings non-NULL (SEGOPS_EPROP), doubles
 * finite (SEGOPS_ENUMBER), raw JSON valid (SEGOPS_ERAWJSON), occurred_at_ms
 * in range (SEGOPS_ETIMESTAMP), the event fits one slot (SEGOPS_ETOOBIG:
 * the limit of segops_track() for the same event, except that the slot
 * holds an 8-byte pointer to p in place of the event type and keys: an
 * event whose type and keys (5 bytes each, plus their length) total less
 * than 8 bytes has that much less room).  user_id_len: bytes,
 * or SEGOPS_NTS / 0.  occurred_at_ms: Unix ms, or SEGOPS_TIME_NONE for the
 * time of the call.  Same guarantees and results as segops_track(): never
 * blocks, allocates, locks, logs or makes a system call; the result is
 * counted the same way.  A NULL client or handle is SEGOPS_EINVAL. */
SEGOPS_API int segops_track_prepared(segops_client *c, const segops_prepared *p,
                                     const char *user_id, size_t user_id_len,
                                     const segops_value *values, size_t n,
                                     int64_t occurred_at_ms);

/* The engine of SEGOPS_TRACK_PREPARED(): *site is a handle pointer in
 * static storage, NULL at first (one per call site).  While *site is NULL,
 * the call prepares a handle from event_type and the props' keys and
 * types and installs it with a compare-and-swap (when several threads
 * race, one handle wins and the others free theirs); every later call
 * reads *site with one acquire load, no lock, and tracks the props' values
 * as segops_track_prepared() does (their keys are not read again: the
 * event type and keys of a site MUST be the same at every call, e.g.
 * literals).  If preparation fails (a bad event type or key: nothing is
 * installed), the call is segops_track() of the same event, which gives
 * its error code and counts it.  The first call at a site allocates the
 * handle; the handle is never freed. */
SEGOPS_API int segops_track_site(segops_client *c, segops_prepared **site,
                                 const char *event_type, const char *user_id,
                                 size_t user_id_len, const segops_prop *props, size_t n,
                                 int64_t occurred_at_ms);

/* Tracks an event at a call site that prepares it on first use:
 *
 *   rc = SEGOPS_TRACK_PREPARED(c, "order_placed", user_id,
 *                              SEGOPS_STR("order_id", id),
 *                              SEGOPS_F64("total", total));
 *
 * The same arguments as segops_track() of that event, the same result;
 * event type and keys MUST be literals (or otherwise the same at every
 * call of this line).  The first call (of any thread) prepares the handle
 * (allocates); later calls are segops_track_prepared() of the values: no
 * lock, no allocation.  The handle lives until the process exits.  An
 * expression (GNU statement expression: gcc and clang); C only -- in C++
 * use a function-local `static const segops::prepared` (segops.hpp).
 * Without properties (SEGOPS_TRACK_PREPARED(c, "app_opened", user)) it
 * works too; -Wpedantic then warns that "..." got no argument. */
#if !defined(__cplusplus) && defined(__GNUC__)
#define SEGOPS_TRACK_PREPARED(c, event_type, user_id, ...)                              \
    __extension__({                                                                     \
        static segops_prepared *segops_site_;                                           \
        const segops_prop segops_props_[] = {__VA_ARGS__};                              \
        segops_track_site((c), &segops_site_, (event_type), (user_id), SEGOPS_NTS,      \
                          segops_props_, sizeof(segops_props_) / sizeof(segops_prop),   \
                          SEGOPS_TIME_NONE);                                            \
    })
#endif

/* segops_track() of a "context_identified" event carrying ctx's traits. */
SEGOPS_API int segops_identify(segops_client *c, const segops_context *ctx);

/* Blocks until every event accepted before the call is delivered or has
 * failed, or timeout_ms passes (SEGOPS_ETIMEDOUT).  Returns 0, or the code
 * of the last batch failure since the previous flush. */
SEGOPS_API int segops_flush(segops_client *c, uint32_t timeout_ms);

/* Refuses new events, delivers everything queued (retries included) within
 * timeout_ms, closes the connection, joins the sender and frees the client.
 *
 * What it reports covers the client's WHOLE LIFETIME, not only the
 * shutdown: *undelivered (may be NULL) gets the number of events accepted
 * (segops_track()/segops_identify() returned 0) since segops_client_new()
 * that did not reach the server's queue -- failed batches (non-retryable
 * 4xx, retries spent, TLS, abandoned at this deadline; any time in the
 * lifetime) plus events the server skipped for validation.  Events never
 * accepted (rejected_invalid, dropped_full, dropped_no_lane) are not in it:
 * the caller was told at once; segops_shutdown_stats() gives them too.
 *
 * Returns 0 exactly when *undelivered is 0.  Otherwise: SEGOPS_ETIMEDOUT
 * when the deadline cut delivery short, else the code of the last batch
 * failure of the lifetime, else (only skips) SEGOPS_EREJECTED. */
SEGOPS_API int segops_shutdown(segops_client *c, uint32_t timeout_ms,
                               uint64_t *undelivered);

/* Monotonic counters over the client's lifetime.  accepted = delivered +
 * skipped + failed + pending holds in every snapshot.  Initialise with
 * SEGOPS_COUNTERS_INIT (or segops_counters_init()) before passing it:
 * `size` tells the library how much of it to write (see ABI). */
typedef struct segops_counters {
    size_t size;               /* set by SEGOPS_COUNTERS_INIT; kept */
    uint64_t accepted;         /* track/identify returned 0 */
    uint64_t rejected_invalid; /* refused by validation (incl. ETOOBIG) */
    uint64_t dropped_full;     /* SEGOPS_EFULL */
    uint64_t dropped_no_lane;  /* SEGOPS_ENOLANE */
    uint64_t delivered;        /* queued by the server */
    uint64_t skipped;          /* dropped by the server's validation */
    uint64_t failed;           /* in batches that failed */
    uint64_t pending;          /* accepted, not yet resolved */
    uint64_t retries;          /* requests re-sent after a transient error */
    uint64_t batches;          /* batches resolved (delivered or failed) */
    uint64_t requests;         /* HTTP requests written */
    uint64_t bytes_sent;       /* request bytes written */
    uint64_t reconnects;       /* connections opened to replace one that
                                  closed (growth of the pool not counted) */
    uint64_t queue_depth;      /* events in lanes now */
    uint64_t queue_high_water; /* largest queue_depth seen (by the sender
                                  each turn, and by every snapshot) */
    uint32_t lanes_in_use;     /* lanes owned by live producer threads */
    int io_mode;               /* SEGOPS_IO_URING or SEGOPS_IO_POLL */
    uint64_t tls_handshakes;   /* https: full or resumed handshakes done */
    uint64_t tls_resumed;      /* https: of which resumed a session */
    uint64_t requests_in_flight; /* requests written or being written whose
                                    answer has not arrived yet (gauge) */
    uint64_t connections_open; /* connections established or being opened
                                  (gauge) */
    /* New counters are appended here, never inserted (see ABI). */
#ifdef SEGOPS_ABI_NEXT
    uint64_t abi_next; /* tests/test_abi.c only: a field of a later version */
#endif
} segops_counters;

#ifdef __cplusplus
#define SEGOPS_COUNTERS_INIT \
    ([] { segops_counters s_{}; s_.size = sizeof(segops_counters); return s_; }())
#else
#define SEGOPS_COUNTERS_INIT {.size = sizeof(segops_counters)}
#endif

/* *s = SEGOPS_COUNTERS_INIT (inline: the caller's sizeof). */
static inline void segops_counters_init(segops_counters *s)
{
    segops_counters z = SEGOPS_COUNTERS_INIT;
    *s = z;
}

/* Fills the first out->size bytes of *out with a snapshot (out->size is
 * kept).  Returns 0, SEGOPS_EINVAL (NULL), SEGOPS_ESIZE (see ABI). */
SEGOPS_API int segops_stats(segops_client *c, segops_counters *out);

/* segops_shutdown(), and *final (initialised with SEGOPS_COUNTERS_INIT)
 * gets the counters as they stood once the sender had stopped: pending is
 * 0, and accepted, delivered, skipped, failed, rejected_invalid,
 * dropped_full and dropped_no_lane each cover the client's whole lifetime.
 * Same return value as segops_shutdown().  With a NULL client or final, or
 * a bad final->size, returns SEGOPS_EINVAL / SEGOPS_ESIZE and does
 * nothing: the client is still open. */
SEGOPS_API int segops_shutdown_stats(segops_client *c, uint32_t timeout_ms,
                                     segops_counters *final);

/* ------------------------------------------------------- observability */

/* The default logger.  When options.logger is NULL (or segops_log_stderr),
 * the client filters lines before they reach stderr:
 *   - $SEGOPS_LOG_LEVEL = error | warn | info | off sets the most verbose
 *     level written (default info: every line);
 *   - each kind of message (one call site in the library) writes at most 10
 *     lines per 10 s, process-wide; the rest are counted, and once the
 *     10 s window has ended the next line written is preceded by one
 *     "... N similar lines suppressed (last: ...)" summary.
 * So a server that stays down costs a few lines a minute, not one per
 * batch.  A custom logger receives every line unfiltered. */

/* A buffer of this many bytes always holds the text of
 * segops_stats_prometheus(). */
#define SEGOPS_PROMETHEUS_MAX 8192

/* Formats a segops_stats() snapshot as Prometheus text exposition format
 * 0.0.4 (Content-Type "text/plain; version=0.0.4"), ready to serve on a
 * /metrics endpoint: for each metric one "# HELP" line, one "# TYPE" line,
 * then its sample; '\n' line ends; NUL-terminated.  Metrics (all without
 * labels unless shown):
 *
 *   counter segops_events_accepted_total          accepted
 *   counter segops_events_rejected_invalid_total  rejected_invalid
 *   counter segops_events_dropped_full_total      dropped_full
 *   counter segops_events_dropped_no_lane_total   dropped_no_lane
 *   counter segops_events_delivered_total         delivered
 *   counter segops_events_skipped_total           skipped
 *   counter segops_events_failed_total            failed
 *   gauge   segops_events_pending                 pending
 *   counter segops_retries_total                  retries
 *   counter segops_batches_total                  batches
 *   counter segops_requests_total                 requests
 *   counter segops_sent_bytes_total               bytes_sent
 *   counter segops_reconnects_total               reconnects
 *   gauge   segops_requests_in_flight             requests_in_flight
 *   gauge   segops_connections_open               connections_open
 *   counter segops_tls_handshakes_total           tls_handshakes
 *   counter segops_tls_resumed_total              tls_resumed
 *   gauge   segops_queue_depth                    queue_depth
 *   gauge   segops_queue_high_water               queue_high_water
 *   gauge   segops_lanes_in_use                   lanes_in_use
 *   gauge   segops_io_driver{driver="io_uring"|"poll"}  1 (io_mode;
 *                                                "none" before the sender
 *                                                has chosen)
 *   gauge   segops_build_info{version="X.Y.Z"}    1
 *
 * The text is cap bytes at most, NUL included.  *len (may be NULL) gets
 * the length of the whole text, NUL not counted, whether or not it fitted,
 * so a buffer of *len + 1 bytes (or SEGOPS_PROMETHEUS_MAX) suffices.
 * Returns 0; SEGOPS_EINVAL for a NULL client, or a NULL buf with cap > 0;
 * SEGOPS_ETOOBIG when cap is too small (buf then holds "" if cap > 0).
 * Any thread; reads the same atomics as segops_stats(), no allocation. */
SEGOPS_API int segops_stats_prometheus(segops_client *c, char *buf, size_t cap, size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* SEGOPS_H */
