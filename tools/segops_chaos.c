/* SPDX-License-Identifier: MIT */
/*
 * segops-chaos: the chaos proxy (chaos.h) as a program, for trying a
 * client against faults by hand.
 *
 *   segops-chaos UPSTREAM_PORT [--port P] [--mode ACTION] [--fault ACTION]
 *                [--every K] [--first N] [--ms MS]
 *
 * ACTION is one of the names printed by --help.  Listens on 127.0.0.1,
 * prints its counters every 5 s, stops on SIGINT/SIGTERM.
 */
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

static int action(const char *name)
{
    for (int a = 0; a < CHAOS_ACTION_N; a++)
        if (strcmp(name, chaos_action_name(a)) == 0)
            return a;
    fprintf(stderr, "unknown action '%s'\n", name);
    exit(2);
}

static void usage(void)
{
    fprintf(stderr, "usage: segops-chaos UPSTREAM_PORT [--port P] [--mode A] [--fault A] "
                    "[--every K] [--first N] [--ms MS]\nactions:");
    for (int a = 0; a < CHAOS_ACTION_N; a++)
        fprintf(stderr, " %s", chaos_action_name(a));
    fputc('\n', stderr);
}

int main(int argc, char **argv)
{
    struct chaos_opts o;
    memset(&o, 0, sizeof(o));
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--port") && v)
            o.port = (uint16_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mode") && v)
            o.mode = action(argv[++i]);
        else if (!strcmp(argv[i], "--fault") && v)
            o.fault = action(argv[++i]);
        else if (!strcmp(argv[i], "--every") && v)
            o.fault_every = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--first") && v)
            o.fault_first = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ms") && v)
            o.ms = (uint32_t)atoi(argv[++i]);
        else if (argv[i][0] != '-' && !o.upstream_port)
            o.upstream_port = (uint16_t)atoi(argv[i]);
        else {
            usage();
            return 2;
        }
    }
    if (!o.upstream_port) {
        usage();
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
