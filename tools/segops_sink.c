/* SPDX-License-Identifier: MIT */
/*
 * segops_sink.c -- the segops-sink program: runs the sink of sink.c until
 * SIGINT or SIGTERM, then prints its final counts as one JSON line.
 *
 * stdout carries exactly two kinds of lines, for scripts: the
 * "segops-sink listening on http://HOST:PORT" line once the socket is
 * bound, and the final counts line.  Diagnostics go to stderr.
 */
#include "sink.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: segops-sink [options]\n"
    "\n"
    "A local implementation of the SegOps ingestion API:\n"
    "  POST <prefix>/api/ingestion/track/batch/  -> 202 {\"queued\":N,\"skipped\":M}\n"
    "  POST <prefix>/api/ingestion/track/        -> 202 {\"queued\":true}\n"
    "  GET  /_sink/counts                        -> the counters as JSON\n"
    "Runs until SIGINT/SIGTERM, then prints the final counts as one JSON line.\n"
    "\n"
    "options (VALUE may also be given as --option=VALUE):\n"
    "  --bind HOST            address to listen on (default 127.0.0.1)\n"
    "  --port N               port (default 0: any free port)\n"
    "  --port-file FILE       write the bound port number to FILE\n"
    "  --key KEY              accepted API key (default sk_test)\n"
    "  --jsonl FILE           write accepted events to FILE, one per line\n"
    "  --dedupe               answer a repeated Idempotency-Key from memory\n"
    "                         without recording its events again\n"
    "fault injection (requests to ingestion endpoints, numbered from 1):\n"
    "  --fail-status N        status of injected failures (default 503)\n"
    "  --fail-first N         the first N requests fail\n"
    "  --fail-every K         every Kth request fails\n"
    "  --fail-detail TEXT     \"detail\" of failures (default \"Injected failure.\")\n"
    "  --retry-after VALUE    Retry-After header on 429/503 failures\n"
    "  --drop-first N         the first N requests: read, then close unanswered\n"
    "  --delay-ms N           wait N ms before answering each request\n"
    "  --chunked              answer with Transfer-Encoding: chunked\n"
    "  --byte-by-byte         write answers one byte per send()\n"
    "  --conn-close           send \"Connection: close\" and close after answering\n"
    "  --close-after-answer   close after answering, without saying so\n"
    "  --idle-close-ms N      close a connection idle N ms, silently\n"
    "  --skip-user ID         skip (count, do not queue) events of user_id ID\n"
    "  --fail-user ID         every batch holding an event of user_id ID fails\n"
    "                         with --fail-status (default 503), every time\n"
    "  --idle-408-ms N        answer a connection idle N ms with an unsolicited\n"
    "                         \"408 Request Timeout\" (Connection: close), then close\n"
    "  -h, --help             this text\n";

static int parse_u32(const char *name, const char *v, uint32_t max,
                     uint32_t *out)
{
    char *end;
    unsigned long n;
    errno = 0;
    n = strtoul(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || n > max) {
        fprintf(stderr, "segops-sink: %s: bad number \"%s\"\n", name, v);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

static int is_value_option(const char *name)
{
    static const char *const names[] = {
        "--bind", "--port", "--port-file", "--key", "--jsonl",
        "--fail-status", "--fail-first", "--fail-every", "--fail-detail",
        "--retry-after", "--drop-first", "--delay-ms", "--idle-close-ms",
        "--skip-user", "--fail-user", "--idle-408-ms"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(name, names[i])) return 1;
    return 0;
}

static int write_port_file(const char *path, uint16_t port)
{
    /* written to a temporary name, then renamed: a script polling for the
     * file never sees it half written */
    char tmp[PATH_MAX];
    FILE *f;
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "%u\n", (unsigned)port);
    if (fclose(f) != 0) return -1;
    return rename(tmp, path);
}

int main(int argc, char **argv)
{
    struct sink_opts o;
    struct sink_counts k;
    struct sink *s;
    const char *port_file = NULL;
    uint16_t port = 0;
    sigset_t sigs;
    int sig;

    memset(&o, 0, sizeof o);
    for (int i = 1; i < argc; i++) {
        char name[64];
        const char *a = argv[i], *v = NULL, *eq;
        uint32_t n;
        int flag;

        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (strncmp(a, "--", 2) != 0) goto bad;
        eq = strchr(a, '=');
        if (eq) {
            if ((size_t)(eq - a) >= sizeof name) goto bad;
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = '\0';
            v = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", a);
        }
        flag = !strcmp(name, "--dedupe") || !strcmp(name, "--chunked") ||
               !strcmp(name, "--byte-by-byte") ||
               !strcmp(name, "--conn-close") ||
               !strcmp(name, "--close-after-answer");
        if (flag) {
            if (v) goto bad;
            if (!strcmp(name, "--dedupe")) o.dedupe = 1;
            else if (!strcmp(name, "--chunked")) o.chunked = 1;
            else if (!strcmp(name, "--byte-by-byte")) o.byte_by_byte = 1;
            else if (!strcmp(name, "--conn-close")) o.conn_close = 1;
            else o.close_after_answer = 1;
            continue;
        }
        if (!is_value_option(name)) goto bad;
        if (!v) {
            if (i + 1 >= argc) {
                fprintf(stderr, "segops-sink: %s needs a value\n", name);
                return 2;
            }
            v = argv[++i];
        }
        if (!strcmp(name, "--bind")) o.bind_host = v;
        else if (!strcmp(name, "--port")) {
            if (parse_u32(name, v, 65535, &n)) return 2;
            o.port = (uint16_t)n;
        } else if (!strcmp(name, "--port-file")) port_file = v;
        else if (!strcmp(name, "--key")) o.api_key = v;
        else if (!strcmp(name, "--jsonl")) o.jsonl_path = v;
        else if (!strcmp(name, "--fail-status")) {
            if (parse_u32(name, v, 599, &n) || n < 100) {
                fprintf(stderr, "segops-sink: --fail-status: 100..599\n");
                return 2;
            }
            o.fail_status = (int)n;
        } else if (!strcmp(name, "--fail-first")) {
            if (parse_u32(name, v, UINT32_MAX, &o.fail_first)) return 2;
        } else if (!strcmp(name, "--fail-every")) {
            if (parse_u32(name, v, UINT32_MAX, &o.fail_every)) return 2;
        } else if (!strcmp(name, "--fail-detail")) o.fail_detail = v;
        else if (!strcmp(name, "--retry-after")) o.retry_after = v;
        else if (!strcmp(name, "--drop-first")) {
            if (parse_u32(name, v, UINT32_MAX, &o.drop_first)) return 2;
        } else if (!strcmp(name, "--delay-ms")) {
            if (parse_u32(name, v, 3600000, &o.delay_ms)) return 2;
        } else if (!strcmp(name, "--idle-close-ms")) {
            if (parse_u32(name, v, 3600000, &o.idle_close_ms)) return 2;
        } else if (!strcmp(name, "--idle-408-ms")) {
            if (parse_u32(name, v, 3600000, &o.idle_408_ms)) return 2;
        } else if (!strcmp(name, "--skip-user")) {
            o.skip_user_id = v;
        } else if (!strcmp(name, "--fail-user")) {
            o.fail_user_id = v;
        } else
            goto bad;
        continue;
    bad:
        fprintf(stderr, "segops-sink: unknown or malformed option \"%s\"\n"
                        "try segops-sink --help\n", a);
        return 2;
    }

    /* block the signals before any thread exists, so that every thread
     * inherits the mask and sigwait below is the only receiver */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (o.jsonl_path) {
        /* the sink opens it the same way; a failure there would read as
         * "cannot listen", so name the file first */
        FILE *f = fopen(o.jsonl_path, "w");
        if (!f) {
            fprintf(stderr, "segops-sink: --jsonl %s: cannot open for writing: %s\n",
                    o.jsonl_path, strerror(errno));
            return 1;
        }
        fclose(f);
    }
    s = sink_start(&o, &port);
    if (!s) {
        fprintf(stderr, "segops-sink: cannot listen on %s:%u: %s\n",
                o.bind_host ? o.bind_host : "127.0.0.1", (unsigned)o.port,
                strerror(errno));
        return 1;
    }
    if (port_file && write_port_file(port_file, port) != 0) {
        fprintf(stderr, "segops-sink: cannot write %s: %s\n", port_file,
                strerror(errno));
        sink_stop(s);
        return 1;
    }
    {
        const char *h = o.bind_host ? o.bind_host : "127.0.0.1";
        int v6 = strchr(h, ':') != NULL;
        printf("segops-sink listening on http://%s%s%s:%u\n", v6 ? "[" : "",
               h, v6 ? "]" : "", (unsigned)port);
        fflush(stdout);
    }

    while (sigwait(&sigs, &sig) != 0) {}

    sink_get_counts(s, &k);
    sink_stop(s);
    printf("{\"connections\":%llu,\"requests\":%llu,\"batch_requests\":%llu,"
           "\"events\":%llu,\"queued\":%llu,\"skipped\":%llu,"
           "\"failed_requests\":%llu,\"dropped_requests\":%llu,"
           "\"auth_failures\":%llu,\"bad_requests\":%llu,"
           "\"repeated_keys\":%llu,\"bytes\":%llu,\"idle_408s\":%llu,"
           "\"max_in_progress\":%llu}\n",
           (unsigned long long)k.connections, (unsigned long long)k.requests,
           (unsigned long long)k.batch_requests, (unsigned long long)k.events,
           (unsigned long long)k.queued, (unsigned long long)k.skipped,
           (unsigned long long)k.failed_requests,
           (unsigned long long)k.dropped_requests,
           (unsigned long long)k.auth_failures,
           (unsigned long long)k.bad_requests,
           (unsigned long long)k.repeated_keys, (unsigned long long)k.bytes,
           (unsigned long long)k.idle_408s,
           (unsigned long long)k.max_in_progress);
    fflush(stdout);
    return 0;
}
