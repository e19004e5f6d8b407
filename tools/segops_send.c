/* SPDX-License-Identifier: MIT */
/*
 * segops_send.c -- the segops-send program: sends events to a SegOps
 * ingestion API from the shell, through libsegops's public API.
 *
 * One event from the arguments, or many from JSON Lines on stdin.  Typing
 * of KEY=VALUE arguments: an integer that fits int64 is I64, any other JSON
 * number F64, true/false BOOL, null NULL, "str:..." forces a string, and
 * KEY:=JSON takes a JSON value (an object or array is sent as raw JSON).
 *
 * Outcome accounting comes from the delivery callback (per batch, sender
 * thread) plus the return codes of track(); the exit status is 0 only when
 * every event given was delivered: 1 when any was refused, skipped by the
 * server, failed or left undelivered, 2 for usage errors.
 *
 * Memory: the program allocates freely (getline); every buffer is freed
 * before exit, so it runs clean under ASan's leak checker.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segops.h"

#define EXIT_USAGE 2
#define MAX_PROPS 256
#define SEND_SLOT_SIZE 8192 /* slot_size: the largest encoded event */

static const char usage[] =
    "usage: segops-send [options] --user ID --type EVENT_TYPE [KEY=VALUE | KEY:=JSON ...]\n"
    "       segops-send [options] --identify --user ID [KEY=VALUE | KEY:=JSON ...]\n"
    "       segops-send [options] [--identify] --stdin < events.jsonl\n"
    "\n"
    "Sends events to a SegOps ingestion API and reports what became of them.\n"
    "\n"
    "Properties (KEY=VALUE):\n"
    "  n=42  -> integer     x=89.95, y=1e3 -> number     ok=true, ok=false -> boolean\n"
    "  v=null -> null        s=str:123 -> the string \"123\"   anything else -> string\n"
    "  items:='[1,2]'  obj:='{\"a\":1}'  n:=42 -> the JSON value as given\n"
    "\n"
    "--stdin: one JSON object per line:\n"
    "  {\"user_id\":\"u1\",\"event_type\":\"page_viewed\",\"occurred_at\":\"2026-04-25T14:32:00Z\",\n"
    "   \"payload\":{\"path\":\"/\"}}\n"
    "  occurred_at and payload are optional; with --identify each line needs user_id\n"
    "  and takes its traits from \"traits\" (or \"payload\").  Blank lines are ignored.\n"
    "\n"
    "Options:\n"
    "  --url URL          API base URL (default $SEGOPS_API_URL, else https://api.segops.ai)\n"
    "  --key KEY          API key (default $SEGOPS_API_KEY)\n"
    "  --ca FILE          PEM bundle of trusted CAs for https (default: system)\n"
    "  --user ID          user_id of the event\n"
    "  --type TYPE        event_type (snake_case)\n"
    "  --at TIME          occurred_at, RFC 3339 (default: now)\n"
    "  --identify         send identify (context_identified) events: properties are traits\n"
    "  --stdin            read events as JSON Lines from standard input\n"
    "  --timeout MS       time allowed to deliver everything (default 10000)\n"
    "  --quiet            print no summary\n"
    "  -h, --help         this text\n"
    "\n"
    "Prints a summary: accepted, delivered, skipped, failed, rejected.  Exit status:\n"
    "0 all delivered; 1 some events were rejected, skipped, failed or undelivered;\n"
    "2 usage error.\n";

/* ------------------------------------------------------------ outcome */

static _Atomic uint64_t n_delivered, n_skipped, n_failed;

static void on_delivery(void *user, const segops_delivery *d)
{
    (void)user;
    if (d->result == 0) {
        atomic_fetch_add(&n_delivered, d->events - d->skipped);
        atomic_fetch_add(&n_skipped, d->skipped);
    } else {
        atomic_fetch_add(&n_failed, d->events);
    }
}

/* ------------------------------------------------- minimal JSON reader */

/* A cursor over one line; values are decoded in place (strings are
 * unescaped into the line's own bytes, which only ever shrink). */
struct jr {
    char *p, *end;
    const char *err;
};

static void ws(struct jr *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n'))
        j->p++;
}

static int fail(struct jr *j, const char *why)
{
    if (!j->err)
        j->err = why;
    return -1;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int hex4(const char *s, const char *end, unsigned *out)
{
    if (end - s < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)s[i]);
        if (h < 0)
            return -1;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return 0;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

/* Reads a JSON string at j->p ('"'), unescapes it in place; *s and *n get the
 * decoded bytes, NUL-terminated (the closing quote's byte or earlier). */
static int jstring(struct jr *j, char **s, size_t *n)
{
    if (j->p >= j->end || *j->p != '"')
        return fail(j, "expected a string");
    char *in = ++j->p, *o = in;
    while (in < j->end && *in != '"') {
        if ((unsigned char)*in < 0x20)
            return fail(j, "control character in a string");
        if (*in != '\\') {
            *o++ = *in++;
            continue;
        }
        if (++in >= j->end)
            break;
        char e = *in++;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (hex4(in, j->end, &cp))
                return fail(j, "bad \\u escape");
            in += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && j->end - in >= 6 && in[0] == '\\' &&
                in[1] == 'u' && hex4(in + 2, j->end, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                in += 6;
            } else if (cp >= 0xd800 && cp < 0xe000) {
                cp = 0xfffd; /* lone surrogate */
            }
            /* the escape (6 or 12 bytes) is longer than its UTF-8 (<= 4) */
            o = put_utf8(o, cp);
            break;
        }
        default: return fail(j, "bad escape in a string");
        }
    }
    if (in >= j->end)
        return fail(j, "unterminated string");
    *o = 0;
    *s = j->p;
    *n = (size_t)(o - j->p);
    j->p = in + 1;
    return 0;
}

/* Steps over a JSON string at j->p without changing it (inside raw JSON,
 * which is passed on as written); the library validates escapes. */
static int jstring_skip(struct jr *j)
{
    if (j->p >= j->end || *j->p != '"')
        return fail(j, "expected a string");
    for (char *in = j->p + 1; in < j->end; in++) {
        if (*in == '\\') {
            in++;
        } else if (*in == '"') {
            j->p = in + 1;
            return 0;
        }
    }
    return fail(j, "unterminated string");
}

/* Steps over the '{' or '[' at j->p, and over `close` when it follows at
 * once.  Returns 1 when members or elements follow, 0 when it was empty. */
static int jopen(struct jr *j, char close)
{
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        return 0;
    }
    return 1;
}

/* An object member's name and the ':' after it; j->p is then at the value.
 * The name is decoded in place into *name and *n (as jstring), or, with
 * name NULL, stepped over unchanged (inside raw JSON, as jstring_skip). */
static int jmember(struct jr *j, char **name, size_t *n)
{
    ws(j);
    if (name ? jstring(j, name, n) : jstring_skip(j))
        return -1;
    ws(j);
    if (j->p >= j->end || *j->p != ':')
        return fail(j, "expected ':'");
    j->p++;
    return 0;
}

/* After a member or element: steps over ',' (returns 1: another follows)
 * or the closing `close` (returns 0); anything else fails with `why`. */
static int jnext(struct jr *j, char close, const char *why)
{
    ws(j);
    if (j->p < j->end && *j->p == ',') {
        j->p++;
        return 1;
    }
    if (j->p < j->end && *j->p == close) {
        j->p++;
        return 0;
    }
    return fail(j, why);
}

/* Skips one JSON value of any kind (for objects and arrays, their text
 * span is then handed to the library, which validates it strictly). */
static int jskip(struct jr *j, int depth)
{
    ws(j);
    if (j->p >= j->end)
        return fail(j, "expected a value");
    if (depth > 64)
        return fail(j, "nested too deep");
    char c = *j->p;
    if (c == '"')
        return jstring_skip(j);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        if (!jopen(j, close))
            return 0;
        for (;;) {
            if (c == '{' && jmember(j, NULL, NULL))
                return -1;
            if (jskip(j, depth + 1))
                return -1;
            int more = jnext(j, close, "expected ',' or a closing bracket");
            if (more <= 0)
                return more;
        }
    }
    /* number or literal: up to a delimiter */
    while (j->p < j->end && !strchr(" \t\r\n,]}:", *j->p))
        j->p++;
    return 0;
}

/* The JSON number grammar, whole string: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
 * Returns 0 not a number, 1 integer, 2 other number. */
static int number_kind(const char *s, size_t n)
{
    size_t i = 0;
    int integer = 1;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return 0;
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return 0;
    if (i < n && s[i] == '.') {
        integer = 0;
        if (++i >= n || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        integer = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    return i == n ? (integer ? 1 : 2) : 0;
}

/* A number's text (NUL-terminated) as I64 when it is an integer that
 * fits, else F64.  Returns 0, or -1 when the text is not a number. */
static int number_prop(const char *key, const char *s, size_t n, segops_prop *p)
{
    int k = number_kind(s, n);
    if (!k)
        return -1;
    if (k == 1) {
        errno = 0;
        long long v = strtoll(s, NULL, 10);
        if (errno != ERANGE) {
            *p = (segops_prop)SEGOPS_I64(key, v);
            return 0;
        }
    }
    *p = (segops_prop)SEGOPS_F64(key, strtod(s, NULL));
    return 0;
}

/* A JSON value at j->p as one property: strings, numbers, booleans, null
 * typed; objects and arrays as raw JSON text (a span of the line, with its
 * length: not NUL-terminated). */
static int value_prop(struct jr *j, const char *key, segops_prop *p)
{
    ws(j);
    if (j->p >= j->end)
        return fail(j, "expected a value");
    char *start = j->p;
    if (*start == '"') {
        char *s;
        size_t n;
        if (jstring(j, &s, &n))
            return -1;
        *p = (segops_prop)SEGOPS_STRN(key, s, n);
        return 0;
    }
    if (jskip(j, 0))
        return -1;
    size_t n = (size_t)(j->p - start);
    if (*start == '{' || *start == '[') {
        *p = (segops_prop)SEGOPS_STRN(key, start, n);
        p->type = SEGOPS_T_JSON;
        return 0;
    }
    /* scalars: the caller's next read looks at j->p, so copy the token
     * before terminating it */
    char tok[64];
    if (n == 0 || n >= sizeof(tok))
        return fail(j, "bad value");
    memcpy(tok, start, n);
    tok[n] = 0;
    if (!strcmp(tok, "true") || !strcmp(tok, "false")) {
        *p = (segops_prop)SEGOPS_BOOL(key, tok[0] == 't');
        return 0;
    }
    if (!strcmp(tok, "null")) {
        *p = (segops_prop)SEGOPS_NULL(key);
        return 0;
    }
    if (number_prop(key, tok, n, p))
        return fail(j, "bad value");
    return 0;
}

/* ------------------------------------------------------------ sending */

struct run {
    segops_client *c;
    uint32_t timeout_ms;
    int identify;
    uint64_t given, accepted, rejected, dropped;
};

/* Sends one event; on a full queue, waits for the sender to drain it and
 * tries again, so that a long input is never dropped. */
static int send_one(struct run *r, const char *user, const char *type, const char *at,
                    const segops_prop *props, size_t n, const char *where, size_t input_bytes)
{
    r->given++;
    int rc;
    for (int tries = 0;; tries++) {
        if (r->identify) {
            segops_context ctx = {
                .user_id = user, .occurred_at = at, .traits = props, .traits_len = n};
            rc = segops_identify(r->c, &ctx);
        } else {
            segops_event ev = {.user_id = user,
                               .event_type = type,
                               .occurred_at = at,
                               .payload = props,
                               .payload_len = n};
            rc = segops_track(r->c, &ev);
        }
        if ((rc != SEGOPS_EFULL && rc != SEGOPS_ENOLANE) || tries == 3)
            break;
        segops_flush(r->c, r->timeout_ms);
    }
    if (rc == 0) {
        r->accepted++;
        return 0;
    }
    if (rc == SEGOPS_EFULL || rc == SEGOPS_ENOLANE)
        r->dropped++;
    else
        r->rejected++;
    if (rc == SEGOPS_ETOOBIG)
        fprintf(stderr,
                "segops-send: %s%sSEGOPS_ETOOBIG: the event is too big: its input is %zu "
                "bytes, and an encoded event must fit one %u-byte slot (fields, keys and values "
                "with their lengths)\n",
                where, where[0] ? ": " : "", input_bytes, (unsigned)SEND_SLOT_SIZE);
    else
        fprintf(stderr, "segops-send: %s%s%s\n", where, where[0] ? ": " : "",
                segops_strerror(rc));
    return rc;
}

/* One JSON Lines record. */
static void send_line(struct run *r, char *line, size_t len, unsigned long lineno)
{
    char where[48];
    snprintf(where, sizeof(where), "line %lu", lineno);
    struct jr j = {line, line + len, NULL};
    ws(&j);
    if (j.p == j.end)
        return; /* blank line */
    char *user = NULL, *type = NULL, *at = NULL;
    segops_prop props[MAX_PROPS];
    size_t nprops = 0;
    if (*j.p != '{') {
        fail(&j, "not a JSON object");
        goto bad;
    }
    if (jopen(&j, '}')) {
        for (;;) {
            char *name, *sv;
            size_t nlen, svlen;
            if (jmember(&j, &name, &nlen))
                goto bad;
            ws(&j);
            int is_props = !strcmp(name, r->identify ? "traits" : "payload") ||
                           (r->identify && !strcmp(name, "payload"));
            if (!strcmp(name, "user_id") || !strcmp(name, "event_type") ||
                !strcmp(name, "occurred_at")) {
                if (j.p < j.end && *j.p == 'n' && j.end - j.p >= 4 && !memcmp(j.p, "null", 4)) {
                    j.p += 4; /* treated as absent */
                } else {
                    if (jstring(&j, &sv, &svlen))
                        goto bad;
                    if (strlen(sv) != svlen) {
                        fail(&j, "NUL byte in a field");
                        goto bad;
                    }
                    if (name[0] == 'u')
                        user = sv;
                    else if (name[0] == 'e')
                        type = sv;
                    else
                        at = sv;
                }
            } else if (is_props && j.p < j.end && *j.p == '{') {
                if (jopen(&j, '}')) {
                    for (;;) {
                        char *k;
                        size_t klen;
                        if (jmember(&j, &k, &klen))
                            goto bad;
                        if (nprops == MAX_PROPS) {
                            fail(&j, "more than 256 properties");
                            goto bad;
                        }
                        if (value_prop(&j, k, &props[nprops]))
                            goto bad;
                        nprops++;
                        int more = jnext(&j, '}', "expected ',' or '}' in the payload");
                        if (more < 0)
                            goto bad;
                        if (!more)
                            break;
                    }
                }
            } else if (is_props) {
                fail(&j, "payload is not an object");
                goto bad;
            } else if (jskip(&j, 0)) { /* other members: ignored */
                goto bad;
            }
            int more = jnext(&j, '}', "expected ',' or '}'");
            if (more < 0)
                goto bad;
            if (!more)
                break;
        }
    }
    ws(&j);
    if (j.p != j.end) {
        fail(&j, "text after the object");
        goto bad;
    }
    if (!user || (!r->identify && !type)) {
        fail(&j, r->identify ? "user_id missing" : "user_id or event_type missing");
        goto bad;
    }
    send_one(r, user, type, at, props, nprops, where, len);
    return;
bad:
    r->given++;
    r->rejected++;
    fprintf(stderr, "segops-send: line %lu: %s\n", lineno, j.err ? j.err : "bad line");
}

/* One KEY=VALUE or KEY:=JSON argument as a property; the argument's bytes
 * are modified in place and referenced.  Returns 0, or -1 (usage) with the
 * reason in why. */
static int arg_prop(char *arg, segops_prop *p, char *why, size_t cap)
{
    char *eq = strchr(arg, '=');
    if (!eq) {
        snprintf(why, cap, "expected KEY=VALUE or KEY:=JSON");
        return -1;
    }
    if (eq == arg || (eq == arg + 1 && arg[0] == ':')) {
        snprintf(why, cap, "the key is empty");
        return -1;
    }
    if (eq[-1] == ':') { /* KEY:=JSON */
        eq[-1] = 0;
        char *v = eq + 1;
        struct jr j = {v, v + strlen(v), NULL};
        int bad = value_prop(&j, arg, p);
        if (!bad) {
            ws(&j);
            if (j.p != j.end) {
                fail(&j, "text after the value");
                bad = 1;
            }
        }
        if (bad) {
            snprintf(why, cap, "the value after := is not valid JSON: %s at byte %zu of \"%s\"",
                     j.err ? j.err : "bad value", (size_t)(j.p - v) + 1, eq + 1);
            eq[-1] = ':';
            return -1;
        }
        return 0;
    }
    *eq = 0;
    char *v = eq + 1;
    size_t n = strlen(v);
    if (!strncmp(v, "str:", 4))
        *p = (segops_prop)SEGOPS_STR(arg, v + 4);
    else if (!strcmp(v, "true") || !strcmp(v, "false"))
        *p = (segops_prop)SEGOPS_BOOL(arg, v[0] == 't');
    else if (!strcmp(v, "null"))
        *p = (segops_prop)SEGOPS_NULL(arg);
    else if (number_prop(arg, v, n, p))
        *p = (segops_prop)SEGOPS_STR(arg, v);
    return 0;
}

static int parse_ms(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > 3600000)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *key = NULL, *user = NULL, *type = NULL, *at = NULL;
    const char *ca = NULL;
    int identify = 0, from_stdin = 0, quiet = 0;
    uint32_t timeout_ms = 10000;
    static segops_prop props[MAX_PROPS];
    size_t nprops = 0, input_bytes = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
#define OPT(name, var)                                                                  \
    if (!strcmp(a, name)) {                                                             \
        if (!v) {                                                                       \
            fprintf(stderr, "segops-send: %s needs a value (see --help)\n", name);     \
            return EXIT_USAGE;                                                          \
        }                                                                               \
        var = v;                                                                        \
        i++;                                                                            \
        continue;                                                                       \
    }
        OPT("--url", url)
        OPT("--key", key)
        OPT("--ca", ca)
        OPT("--user", user)
        OPT("--type", type)
        OPT("--at", at)
#undef OPT
        if (!strcmp(a, "--timeout")) {
            if (!v || parse_ms(v, &timeout_ms)) {
                fprintf(stderr, "segops-send: --timeout needs milliseconds (0..3600000)\n");
                return EXIT_USAGE;
            }
            i++;
        } else if (!strcmp(a, "--identify")) {
            identify = 1;
        } else if (!strcmp(a, "--stdin")) {
            from_stdin = 1;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            quiet = 1;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "segops-send: unknown option %s (see --help)\n", a);
            return EXIT_USAGE;
        } else {
            char why[256] = "more than 256 properties";
            char shown[128];
            snprintf(shown, sizeof(shown), "%s", a); /* arg_prop() edits the argument */
            size_t alen = strlen(a);
            if (nprops == MAX_PROPS || arg_prop(argv[i], &props[nprops], why, sizeof(why))) {
                fprintf(stderr, "segops-send: bad property \"%s\": %s\n", shown, why);
                return EXIT_USAGE;
            }
            input_bytes += alen;
            nprops++;
        }
    }
    if (from_stdin && (user || type || at || nprops)) {
        fprintf(stderr, "segops-send: --stdin takes events from stdin only: no --user, --type, "
                        "--at or properties\n");
        return EXIT_USAGE;
    }
    if (!from_stdin && (!user || (!identify && !type))) {
        fprintf(stderr, "segops-send: %s (see --help)\n",
                identify ? "--identify needs --user" : "needs --user and --type, or --stdin");
        return EXIT_USAGE;
    }
    if (identify && type) {
        fprintf(stderr, "segops-send: --identify sends context_identified: no --type\n");
        return EXIT_USAGE;
    }

    segops_options o = SEGOPS_OPTIONS_INIT;
    o.api_url = url; /* NULL: $SEGOPS_API_URL, else the default */
    o.api_key = key; /* NULL: $SEGOPS_API_KEY */
    o.ca_file = ca;  /* NULL: the system bundle */
    o.max_producers = 1;
    o.shared_lanes = 1;
    o.queue_capacity = 1024;
    o.slot_size = SEND_SLOT_SIZE; /* room for sizeable payloads */
    o.batch_size = 100;
    o.flush_interval_ms = 200;
    o.on_delivery = on_delivery;
    struct run r = {0};
    r.timeout_ms = timeout_ms;
    r.identify = identify;
    int rc = segops_client_new(&o, &r.c);
    if (rc) {
        fprintf(stderr, "segops-send: %s\n", segops_strerror(rc));
        return rc == SEGOPS_EURL || rc == SEGOPS_EAPIKEY || rc == SEGOPS_EOPTION ? EXIT_USAGE : 1;
    }

    if (from_stdin) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        unsigned long lineno = 0;
        while ((n = getline(&line, &cap, stdin)) >= 0) {
            lineno++;
            send_line(&r, line, (size_t)n, lineno);
        }
        free(line);
    } else {
        input_bytes += strlen(user) + (type ? strlen(type) : 0) + (at ? strlen(at) : 0);
        send_one(&r, user, type, at, props, nprops, "", input_bytes);
    }

    int frc = segops_flush(r.c, timeout_ms);
    /* the final counters cover the whole run, failures before the end too */
    segops_counters fin = SEGOPS_COUNTERS_INIT;
    rc = segops_shutdown_stats(r.c, frc == SEGOPS_ETIMEDOUT ? 1000 : timeout_ms, &fin);
    uint64_t undelivered = fin.accepted - fin.delivered;
    uint64_t delivered = atomic_load(&n_delivered), skipped = atomic_load(&n_skipped);
    uint64_t failed = atomic_load(&n_failed);
    /* accepted but never reported by a batch: left behind at the deadline */
    uint64_t resolved = delivered + skipped + failed;
    uint64_t unresolved = r.accepted > resolved ? r.accepted - resolved : 0;

    if (!quiet)
        printf("segops-send: %" PRIu64 " given, %" PRIu64 " accepted, %" PRIu64
               " delivered, %" PRIu64 " skipped, %" PRIu64 " failed, %" PRIu64
               " rejected, %" PRIu64 " dropped, %" PRIu64 " unresolved (shutdown: %s; %" PRIu64
               " of the accepted events undelivered over the run)\n",
               r.given, r.accepted, delivered, skipped, failed, r.rejected, r.dropped,
               unresolved, segops_strerror(rc), undelivered);
    int all = delivered == r.given && rc == 0;
    return all ? 0 : 1;
}
