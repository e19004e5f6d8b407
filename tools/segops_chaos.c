/* SPDX-License-Identifier: MIT */
/*
 * segops-chaos: the chaos proxy (chaos.h) as a program, for trying a
 * client against faults by hand.
 *
 *   segops-chaos UPSTREAM_PORT [--port P] [--mode ACTION] [--fault ACTION]
 *                [--every K] [--first N] [--ms MS]
 *
 * ACTION is one of the names printed by --help, each with what it does.
 * Listens on 127.0.0.1, prints its counters every 5 s, stops on
 * SIGINT/SIGTERM.  Numbers are parsed strictly: a whole decimal number in
 * range, or a usage error naming the option.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chaos.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* What each action does, in CHAOS_* order (tools/chaos.h). */
static const char *const action_help[CHAOS_ACTION_N] = {
    "relay the request and the answer unchanged",
    "reset the client's connection; the request is not forwarded",
    "forward, read the whole answer, then reset the client (the answer is lost)",
    "forward, hold the answer --ms MS, then relay it",
    "hold the request --ms MS, then forward it",
    "relay half of the answer, then reset the connection",
    "relay half of the answer, then close it (FIN)",
    "relay the answer in 1-3 byte segments",
    "answer (not forwarded) with a 20 KiB response head",
    "answer with Content-Length: 99999999999",
    "answer chunked with an absurd chunk size",
    "answer with a garbage status line",
    "answer (not forwarded) a well-formed 400 with a JSON detail; keep the connection",
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: segops-chaos UPSTREAM_PORT [--port P] [--mode ACTION] [--fault ACTION]\n"
            "                    [--every K] [--first N] [--ms MS]\n"
            "\n"
            "A fault-injecting HTTP proxy on 127.0.0.1 in front of a server on\n"
            "127.0.0.1:UPSTREAM_PORT (segops-sink, say): point a client at it to see how\n"
            "it copes.  Prints its counters every 5 s; stops on SIGINT/SIGTERM.\n"
            "\n"
            "  UPSTREAM_PORT  port of the server to relay to (1..65535)\n"
            "  --port P       port to listen on (default 0: any free port, printed)\n"
            "  --mode ACTION  what to do with every request (default forward)\n"
            "  --fault ACTION what to do with the requests chosen by --every / --first\n"
            "  --every K      every Kth request gets --fault\n"
            "  --first N      the first N requests get --fault\n"
            "  --ms MS        the time of stall and delay (milliseconds)\n"
            "  -h, --help     this text\n"
            "\n"
            "actions:\n");
    for (int a = 0; a < CHAOS_ACTION_N; a++)
        fprintf(out, "  %-13s %s\n", chaos_action_name(a), action_help[a] ? action_help[a] : "");
}

static int action(const char *opt, const char *name)
{
    for (int a = 0; a < CHAOS_ACTION_N; a++)
        if (strcmp(name, chaos_action_name(a)) == 0)
            return a;
    fprintf(stderr, "segops-chaos: %s: unknown action \"%s\" (see --help for the list)\n", opt,
            name);
    exit(2);
}

/* A whole decimal number in [lo, hi], or exits 2 naming the option. */
static unsigned long number(const char *opt, const char *s, unsigned long lo, unsigned long hi)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || s[0] == '+' || v < lo || v > hi) {
        fprintf(stderr, "segops-chaos: %s: \"%s\" is not a whole number from %lu to %lu\n", opt,
                s, lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    struct chaos_opts o;
    memset(&o, 0, sizeof(o));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (a[0] != '-') {
            if (o.upstream_port) {
                fprintf(stderr, "segops-chaos: one UPSTREAM_PORT only (\"%s\")\n", a);
                return 2;
            }
            o.upstream_port = (uint16_t)number("UPSTREAM_PORT", a, 1, 65535);
            continue;
        }
        int known = !strcmp(a, "--port") || !strcmp(a, "--mode") || !strcmp(a, "--fault") ||
                    !strcmp(a, "--every") || !strcmp(a, "--first") || !strcmp(a, "--ms");
        if (!known) {
            fprintf(stderr, "segops-chaos: unknown option %s (see --help)\n", a);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "segops-chaos: %s needs a value (see --help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--port"))
            o.port = (uint16_t)number(a, v, 0, 65535);
        else if (!strcmp(a, "--mode"))
            o.mode = action(a, v);
        else if (!strcmp(a, "--fault"))
            o.fault = action(a, v);
        else if (!strcmp(a, "--every"))
            o.fault_every = (uint32_t)number(a, v, 0, UINT32_MAX);
        else if (!strcmp(a, "--first"))
            o.fault_first = (uint32_t)number(a, v, 0, UINT32_MAX);
        else
            o.ms = (uint32_t)number(a, v, 0, 3600000);
    }
    if (!o.upstream_port) {
        usage(stderr);
        return 2;
    }
    uint16_t port;
    struct chaos *ch = chaos_start(&o, &port);
    if (!ch) {
        perror("chaos_start");
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("segops-chaos: 127.0.0.1:%u -> 127.0.0.1:%u\n", (unsigned)port,
           (unsigned)o.upstream_port);
    fflush(stdout);
    for (int ticks = 0; !stop; ticks++) {
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
        if (ticks % 50 == 49) {
            struct chaos_counts k;
            chaos_get_counts(ch, &k);
            printf("connections %llu requests %llu forwarded %llu resets %llu cuts %llu "
                   "injected %llu\n",
                   (unsigned long long)k.connections, (unsigned long long)k.requests,
                   (unsigned long long)k.forwarded, (unsigned long long)k.resets,
                   (unsigned long long)k.cuts, (unsigned long long)k.injected);
            fflush(stdout);
        }
    }
    chaos_stop(ch);
    return 0;
}
