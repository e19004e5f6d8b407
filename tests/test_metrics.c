/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/metrics.c (segops_stats_prometheus) and for the default
 * logger's filters in src/log.c (rate limit, $SEGOPS_LOG_LEVEL).
 *
 * The Prometheus text is checked by a strict reader written here (every
 * metric has HELP then TYPE before its sample, names and labels well
 * formed, values parse, counters end in _total) and, when Python's
 * prometheus_client is installed, by its parser as well.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"

/* src/log.c, internal: forget rate state; read time from *fake_now_ms. */
void sg_log_limit_reset(const int64_t *fake_now_ms);

/* ------------------------------------------------------------ helpers */

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
            return 0;
    return 1;
}

#define MAXFAM 64

struct family {
    char name[96];
    char type[16];
    int help, samples;
    double value;
};

struct expo {
    struct family f[MAXFAM];
    int n;
};

static struct family *find(struct expo *e, const char *name, size_t n)
{
    for (int i = 0; i < e->n; i++)
        if (strlen(e->f[i].name) == n && !memcmp(e->f[i].name, name, n))
            return &e->f[i];
    return NULL;
}

/* Reads text exposition format 0.0.4 strictly; fails the test on the
 * first deviation.  Labels are checked for syntax only. */
static void parse_strict(const char *text, struct expo *e)
{
    memset(e, 0, sizeof(*e));
    size_t tl = strlen(text);
    cr_assert(tl > 0 && text[tl - 1] == '\n', "text must end with a newline");
    struct family *cur = NULL; /* family whose HELP/TYPE came last */
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        cr_assert_not_null(eol, "unterminated line");
        size_t len = (size_t)(eol - p);
        char line[512];
        cr_assert_lt(len, sizeof(line), "line too long");
        if (len >= sizeof(line))
            len = sizeof(line) - 1; /* for frameworks whose assert returns */
        memcpy(line, p, len);
        line[len] = 0;
        p = eol + 1;
        cr_assert(len > 0, "empty line");

        if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7)) {
            int is_help = line[2] == 'H';
            const char *name = line + 7;
            const char *sp = strchr(name, ' ');
            cr_assert_not_null(sp, "%s: no text after the name", line);
            size_t nl = (size_t)(sp - name);
            cr_assert(name_ok(name, nl), "bad metric name in: %s", line);
            cr_assert(sp[1] != 0, "empty HELP/TYPE text: %s", line);
            struct family *f = find(e, name, nl);
            if (is_help) {
                cr_assert_null(f, "second HELP for a family: %s", line);
                cr_assert_lt(e->n, MAXFAM, "too many families");
                f = &e->f[e->n++];
                memcpy(f->name, name, nl);
                f->help = 1;
                cur = f;
            } else {
                cr_assert(f && f == cur && f->type[0] == 0 && f->samples == 0,
                          "TYPE must follow its HELP, once, before samples: %s", line);
                cr_assert(!strcmp(sp + 1, "counter") || !strcmp(sp + 1, "gauge"),
                          "unexpected type: %s", line);
                snprintf(f->type, sizeof(f->type), "%s", sp + 1);
            }
            continue;
        }
        cr_assert(line[0] != '#', "unexpected comment: %s", line);

        /* sample: name[{labels}] value */
        size_t nl = strcspn(line, "{ ");
        cr_assert(name_ok(line, nl), "bad sample name: %s", line);
        struct family *f = find(e, line, nl);
        cr_assert(f && f == cur && f->help && f->type[0],
                  "sample without HELP and TYPE right before it: %s", line);
        const char *q = line + nl;
        if (*q == '{') {
            q++;
            while (*q != '}') {
                size_t ln = strcspn(q, "=");
                cr_assert(name_ok(q, ln) && q[ln] == '=' && q[ln + 1] == '"',
                          "bad label: %s", line);
                q += ln + 2;
                while (*q && *q != '"') {
                    if (*q == '\\')
                        q++;
                    cr_assert(*q && *q != '\n', "bad label value: %s", line);
                    q++;
                }
                cr_assert_eq(*q, '"', "unterminated label value: %s", line);
                q++;
                if (*q == ',')
                    q++;
                else
                    cr_assert_eq(*q, '}', "bad label list: %s", line);
            }
            q++;
        }
        cr_assert_eq(*q, ' ', "no value: %s", line);
        q++;
        char *end;
        f->value = strtod(q, &end);
        cr_assert(end != q && *end == 0, "value does not parse: %s", line);
        f->samples++;
        cr_assert_eq(f->samples, 1, "one sample per family expected: %s", line);
        if (!strcmp(f->type, "counter")) {
            cr_assert(nl > 6 && !memcmp(line + nl - 6, "_total", 6),
                      "counter without _total: %s", line);
            cr_assert(f->value >= 0, "negative counter: %s", line);
        }
    }
    for (int i = 0; i < e->n; i++)
        cr_assert_eq(e->f[i].samples, 1, "family %s has no sample", e->f[i].name);
}

static double value_of(struct expo *e, const char *name)
{
    struct family *f = find(e, name, strlen(name));
    cr_assert_not_null(f, "missing metric %s", name);
    return f->value;
}

static const char *type_of(struct expo *e, const char *name)
{
    struct family *f = find(e, name, strlen(name));
    cr_assert_not_null(f, "missing metric %s", name);
    return f->type;
}

/* A client against the sink that has delivered a few events, some refused. */
static struct harness H;

static void deliver_some(void)
{
    h_start_sink(&H, NULL, 0);
    cr_assert_eq(h_client(&H, NULL), 0);
    segops_prop props[] = {SEGOPS_STR("k", "v")};
    for (int i = 0; i < 7; i++) {
        segops_event ev = {
            .user_id = "user-1", .event_type = "page_viewed", .payload = props, .payload_len = 1};
        cr_assert_eq(segops_track(H.c, &ev), 0);
    }
    segops_event bad = {.user_id = "user-1", .event_type = "NotSnake"};
    cr_assert_eq(segops_track(H.c, &bad), SEGOPS_EEVENTTYPE);
    cr_assert_eq(segops_flush(H.c, 5000), 0);
}

/* ------------------------------------------------------- prometheus */

Test(metrics, every_counter_has_help_type_and_a_parsable_sample)
{
    deliver_some();
    char buf[SEGOPS_PROMETHEUS_MAX];
    size_t len = 0;
    cr_assert_eq(segops_stats_prometheus(H.c, buf, sizeof(buf), &len), 0);
    cr_assert_eq(len, strlen(buf));
    struct expo e;
    parse_strict(buf, &e);

    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(H.c, &s);
    cr_expect_eq(value_of(&e, "segops_events_accepted_total"), 7.0);
    cr_expect_eq(value_of(&e, "segops_events_rejected_invalid_total"), 1.0);
    cr_expect_eq(value_of(&e, "segops_events_delivered_total"), 7.0);
    cr_expect_eq(value_of(&e, "segops_events_pending"), 0.0);
    cr_expect_eq(value_of(&e, "segops_batches_total"), (double)s.batches);
    cr_expect_eq(value_of(&e, "segops_sent_bytes_total"), (double)s.bytes_sent);
    cr_expect(value_of(&e, "segops_requests_total") >= 1.0);

    /* every segops_counters field, with the documented type */
    static const char *counters[] = {
        "segops_events_accepted_total", "segops_events_rejected_invalid_total",
        "segops_events_dropped_full_total", "segops_events_dropped_no_lane_total",
        "segops_events_delivered_total", "segops_events_skipped_total",
        "segops_events_failed_total", "segops_retries_total", "segops_batches_total",
        "segops_requests_total", "segops_sent_bytes_total", "segops_reconnects_total",
        "segops_tls_handshakes_total", "segops_tls_resumed_total"};
    static const char *gauges[] = {"segops_events_pending", "segops_queue_depth",
                                   "segops_queue_high_water", "segops_lanes_in_use",
                                   "segops_io_driver", "segops_build_info",
                                   "segops_requests_in_flight", "segops_connections_open"};
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
        cr_expect_str_eq(type_of(&e, counters[i]), "counter", "%s", counters[i]);
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
        cr_expect_str_eq(type_of(&e, gauges[i]), "gauge", "%s", gauges[i]);
    cr_expect_eq(e.n, 22, "families: %d", e.n);
    cr_expect(strstr(buf, "segops_build_info{version=\"" SEGOPS_VERSION_STRING "\"} 1\n"));
    cr_expect(strstr(buf, "segops_io_driver{driver=\"io_uring\"} 1\n") ||
              strstr(buf, "segops_io_driver{driver=\"poll\"} 1\n"));
    h_stop(&H);
}

Test(metrics, too_small_a_buffer_is_etoobig_and_reports_the_size)
{
    deliver_some();
    size_t need = 0;
    cr_assert_eq(segops_stats_prometheus(H.c, NULL, 0, &need), SEGOPS_ETOOBIG);
    cr_assert(need > 100 && need < SEGOPS_PROMETHEUS_MAX, "need %zu", need);

    char *buf = malloc(need + 1);
    size_t len = 0;
    memset(buf, 'x', need + 1);
    /* room for the text but not its NUL */
    cr_expect_eq(segops_stats_prometheus(H.c, buf, need, &len), SEGOPS_ETOOBIG);
    cr_expect_eq(len, need);
    cr_expect_eq(buf[0], 0, "a refused buffer holds \"\"");
    cr_expect_eq(segops_stats_prometheus(H.c, buf, 1, &len), SEGOPS_ETOOBIG);
    cr_expect_eq(buf[0], 0);
    cr_expect_eq(segops_stats_prometheus(H.c, buf, need + 1, &len), 0);
    cr_expect_eq(len, need);
    cr_expect_eq(strlen(buf), need);
    free(buf);
    /* the code's text covers this meaning too, not only "one slot" */
    cr_expect(strstr(segops_strerror(SEGOPS_ETOOBIG), "buffer") != NULL, "%s",
              segops_strerror(SEGOPS_ETOOBIG));
    h_stop(&H);
}

Test(metrics, bad_arguments_are_einval)
{
    char buf[64];
    size_t len = 1;
    cr_expect_eq(segops_stats_prometheus(NULL, buf, sizeof(buf), &len), SEGOPS_EINVAL);
    cr_expect_eq(len, 0);
    deliver_some();
    cr_expect_eq(segops_stats_prometheus(H.c, NULL, 10, &len), SEGOPS_EINVAL);
    cr_expect_eq(segops_stats_prometheus(H.c, NULL, 0, NULL), SEGOPS_ETOOBIG);
    h_stop(&H);
}

/* The same text through Python's prometheus_client parser, when present
 * (Debian: python3-prometheus-client); skipped otherwise. */
static const char *python_with_prometheus(void)
{
    static const char *cands[] = {"/usr/bin/python3", "python3"};
    for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "%s -c 'import prometheus_client' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0)
            return cands[i];
    }
    return NULL;
}

Test(metrics, prometheus_client_parses_the_text)
{
    const char *py = python_with_prometheus();
    if (!py) {
        cr_log_info("python3 prometheus_client not installed: skipped");
        return;
    }
    deliver_some();
    char buf[SEGOPS_PROMETHEUS_MAX];
    cr_assert_eq(segops_stats_prometheus(H.c, buf, sizeof(buf), NULL), 0);
    h_stop(&H);

    char path[] = "/tmp/segops_metrics_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, buf, strlen(buf)), (ssize_t)strlen(buf));
    close(fd);
    /* prometheus_client names a counter family without its _total */
    static const char script[] =
        "import sys\n"
        "from prometheus_client.parser import text_string_to_metric_families as parse\n"
        "fams = {f.name: f for f in parse(open(sys.argv[1]).read())}\n"
        "assert len(fams) == 22, sorted(fams)\n"
        "acc = fams['segops_events_accepted']\n"
        "assert acc.type == 'counter', acc.type\n"
        "assert acc.samples[0].name == 'segops_events_accepted_total'\n"
        "assert acc.samples[0].value == 7.0, acc.samples\n"
        "assert fams['segops_queue_depth'].type == 'gauge'\n"
        "assert fams['segops_build_info'].samples[0].labels['version']\n"
        "for f in fams.values():\n"
        "    assert f.documentation, f.name\n"
        "    assert len(f.samples) == 1, f.name\n";
    char spath[] = "/tmp/segops_metrics_py_XXXXXX";
    fd = mkstemp(spath);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, script, sizeof(script) - 1), (ssize_t)(sizeof(script) - 1));
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "%s %s %s", py, spath, path);
    int rc = system(cmd);
    unlink(path);
    unlink(spath);
    cr_expect_eq(rc, 0, "prometheus_client rejected the text:\n%s", buf);
}

/* -------------------------------------------- default logger filters */

/* Captures what the default logger writes to stderr. */
struct capture {
    FILE *f;
    int saved;
};

static void capture_start(struct capture *k)
{
    fflush(stderr);
    k->f = tmpfile();
    cr_assert_not_null(k->f);
    k->saved = dup(2);
    dup2(fileno(k->f), 2);
}

/* Restores stderr; returns the captured text (static buffer). */
static const char *capture_end(struct capture *k)
{
    static char text[65536];
    fflush(stderr);
    dup2(k->saved, 2);
    close(k->saved);
    rewind(k->f);
    size_t n = fread(text, 1, sizeof(text) - 1, k->f);
    text[n] = 0;
    fclose(k->f);
    return text;
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static struct segops_client *fake_client(segops_log_fn logger, void *user)
{
    struct segops_client *c = calloc(1, sizeof(*c));
    cr_assert_not_null(c);
    c->cfg.logger = logger;
    c->cfg.logger_user = user;
    return c;
}

/* The default logger at its default level, the limiter's clock at *now,
 * stderr captured into *k. */
static struct segops_client *log_to_capture(int64_t *now, struct capture *k)
{
    unsetenv("SEGOPS_LOG_LEVEL");
    sg_log_limit_reset(now);
    struct segops_client *c = fake_client(segops_log_stderr, NULL);
    capture_start(k);
    return c;
}

Test(log, repeated_lines_are_limited_to_ten_per_window_then_summarised)
{
    int64_t now = 1000;
    struct capture k;
    struct segops_client *c = log_to_capture(&now, &k);
    for (int i = 0; i < 25; i++)
        sg_log(c, SEGOPS_LOG_ERROR, "batch %d failed: connection refused", i);
    now += 9999; /* same window */
    sg_log(c, SEGOPS_LOG_ERROR, "batch %d failed: connection refused", 25);
    now += 2; /* the window has ended */
    sg_log(c, SEGOPS_LOG_ERROR, "batch %d failed: connection refused", 26);
    const char *out = capture_end(&k);

    cr_expect_eq(count(out, "[SegOps] batch "), 11, "%s", out);
    cr_expect(strstr(out, "[SegOps] batch 9 failed") != NULL, "%s", out);
    cr_expect(strstr(out, "batch 10 failed") == NULL, "%s", out);
    cr_expect_eq(count(out, "similar lines suppressed"), 1, "%s", out);
    cr_expect(strstr(out, "[SegOps] ... 16 similar lines suppressed (last: batch 25 failed") !=
                  NULL,
              "%s", out);
    /* the summary comes before the first line of the new window */
    const char *sum = strstr(out, "suppressed"), *next = strstr(out, "batch 26 failed");
    cr_expect(sum && next && sum < next, "%s", out);
    sg_log_limit_reset(NULL);
    free(c);
}

Test(log, categories_are_limited_independently)
{
    int64_t now = 5;
    struct capture k;
    struct segops_client *c = log_to_capture(&now, &k);
    for (int i = 0; i < 30; i++) {
        sg_log(c, SEGOPS_LOG_ERROR, "alpha %d", i);
        sg_log(c, SEGOPS_LOG_WARN, "beta %d", i);
    }
    /* more categories than the table holds: none floods, none is lost */
    static const char *fmts[] = {"c0 %d", "c1 %d", "c2 %d", "c3 %d", "c4 %d", "c5 %d",
                                 "c6 %d", "c7 %d", "c8 %d", "c9 %d", "ca %d", "cb %d",
                                 "cc %d", "cd %d", "ce %d", "cf %d", "cg %d", "ch %d",
                                 "ci %d", "cj %d", "ck %d", "cl %d", "cm %d", "cn %d",
                                 "co %d", "cp %d", "cq %d", "cr %d", "cs %d", "ct %d",
                                 "cu %d", "cv %d", "cw %d", "cx %d", "cy %d", "cz %d"};
    for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++)
        sg_log(c, SEGOPS_LOG_ERROR, fmts[f], 1);
    const char *out = capture_end(&k);
    cr_expect_eq(count(out, "[SegOps] alpha "), 10, "%s", out);
    cr_expect_eq(count(out, "[SegOps] beta "), 10, "%s", out);
    cr_expect_eq(count(out, "[SegOps] c"), 36, "%s", out);
    /* evicting alpha and beta reported their counts at once */
    cr_expect(strstr(out, "... 20 similar lines suppressed (last: alpha 29)") != NULL, "%s", out);
    cr_expect(strstr(out, "... 20 similar lines suppressed (last: beta 29)") != NULL, "%s", out);
    sg_log_limit_reset(NULL);
    free(c);
}

Test(log, segops_log_level_filters_the_default_logger)
{
    int64_t now = 0;
    sg_log_limit_reset(&now);
    struct segops_client *c = fake_client(segops_log_stderr, NULL);
    struct capture k;

    setenv("SEGOPS_LOG_LEVEL", "error", 1);
    capture_start(&k);
    sg_log(c, SEGOPS_LOG_ERROR, "e1");
    sg_log(c, SEGOPS_LOG_WARN, "w1");
    sg_log(c, SEGOPS_LOG_INFO, "i1");
    const char *out = capture_end(&k);
    cr_expect(strstr(out, "e1") && !strstr(out, "w1") && !strstr(out, "i1"), "%s", out);

    setenv("SEGOPS_LOG_LEVEL", "warn", 1);
    capture_start(&k);
    sg_log(c, SEGOPS_LOG_ERROR, "e2");
    sg_log(c, SEGOPS_LOG_WARN, "w2");
    sg_log(c, SEGOPS_LOG_INFO, "i2");
    out = capture_end(&k);
    cr_expect(strstr(out, "e2") && strstr(out, "w2") && !strstr(out, "i2"), "%s", out);

    setenv("SEGOPS_LOG_LEVEL", "off", 1);
    capture_start(&k);
    sg_log(c, SEGOPS_LOG_ERROR, "e3");
    out = capture_end(&k);
    cr_expect_eq(out[0], 0, "%s", out);

    unsetenv("SEGOPS_LOG_LEVEL"); /* default: info, every line */
    capture_start(&k);
    sg_log(c, SEGOPS_LOG_ERROR, "e4");
    sg_log(c, SEGOPS_LOG_WARN, "w4");
    sg_log(c, SEGOPS_LOG_INFO, "i4");
    out = capture_end(&k);
    cr_expect(strstr(out, "e4") && strstr(out, "w4") && strstr(out, "i4"), "%s", out);
    sg_log_limit_reset(NULL);
    free(c);
}

static int custom_lines;
static void custom_logger(void *user, int level, const char *line)
{
    (void)level;
    (void)line;
    *(int *)user += 1;
}

Test(log, a_custom_logger_gets_every_line)
{
    int64_t now = 0;
    sg_log_limit_reset(&now);
    setenv("SEGOPS_LOG_LEVEL", "error", 1);
    struct segops_client *c = fake_client(custom_logger, &custom_lines);
    for (int i = 0; i < 50; i++)
        sg_log(c, SEGOPS_LOG_INFO, "line %d", i);
    cr_expect_eq(custom_lines, 50);
    unsetenv("SEGOPS_LOG_LEVEL");
    sg_log_limit_reset(NULL);
    free(c);
}
