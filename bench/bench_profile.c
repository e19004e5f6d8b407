/* SPDX-License-Identifier: MIT */
/*
 * bench_profile.c -- B8: a minimal, repeatable driver of segops_track() for
 * profilers.  One producer thread calls segops_track() `--calls` times in
 * rounds of 1000, flushing between rounds so that every call takes the
 * accepting path (never SEGOPS_EFULL).  Run it under
 *   valgrind --tool=callgrind --toggle-collect=segops_track bench_profile
 * to get instructions per call (total Ir / calls), or under perf stat.
 * With --empty-loop it times the same loop without the call (harness cost).
 * --prepared: the same event through segops_track_prepared() (a handle made
 * once; toggle-collect=segops_track_prepared); --macro: through
 * SEGOPS_TRACK_PREPARED() (toggle-collect=segops_track_site).  The
 * sender's rendering of either: --toggle-collect=sg_event_render.
 */
#include "bench_client.h"
#include "bench_common.h"
#include "segops.h"
#include "sink.h"

int main(int argc, char **argv)
{
    long calls = 50000;
    int empty = 0, mode = 0; /* 0 plain, 1 prepared, 2 macro */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--calls") && i + 1 < argc)
            calls = bench_num(argv[++i]);
        else if (!strcmp(argv[i], "--empty-loop"))
            empty = 1;
        else if (!strcmp(argv[i], "--prepared"))
            mode = 1;
        else if (!strcmp(argv[i], "--macro"))
            mode = 2;
        else {
            fprintf(stderr, "usage: %s [--calls N] [--empty-loop] [--prepared | --macro]\n",
                    argv[0]);
            return 2;
        }
    }
    uint16_t port;
    struct sink *sink = bench_sink_start(NULL, &port);
    if (!sink)
        return 1;
    char url[64];
    bench_sink_url(url, sizeof(url), port);
    segops_options o;
    bench_client_opts(&o, url);
    o.max_producers = 1;
    o.queue_capacity = 4096;
    o.batch_size = 500;
    segops_client *c;
    if (segops_client_new(&o, &c) != 0)
        return 1;
    segops_prop props[] = {SEGOPS_STR("order_id", "ord-456"), SEGOPS_F64("total", 89.95)};
    segops_event ev = {
        .user_id = "user-123", .event_type = "order_placed", .payload = props, .payload_len = 2};
    segops_prop_spec keys[] = {SEGOPS_KEY_STR("order_id"), SEGOPS_KEY_F64("total")};
    segops_prepared *prep;
    if (segops_prepare("order_placed", SEGOPS_NTS, keys, 2, &prep) != 0)
        return 1;
    segops_value vals[] = {SEGOPS_VSTR("ord-456"), SEGOPS_VF64(89.95)};
    long ok = 0, other = 0;
    for (long done = 0; done < calls;) {
        long n = calls - done < 1000 ? calls - done : 1000;
        for (long i = 0; i < n; i++) {
            if (empty) {
                __asm__ __volatile__("" ::: "memory");
                ok++;
            } else if ((mode == 0   ? segops_track(c, &ev)
                        : mode == 1 ? segops_track_prepared(c, prep, "user-123", SEGOPS_NTS,
                                                            vals, 2, SEGOPS_TIME_NONE)
                                    : SEGOPS_TRACK_PREPARED(c, "order_placed", "user-123",
                                                            SEGOPS_STR("order_id", "ord-456"),
                                                            SEGOPS_F64("total", 89.95))) == 0) {
                ok++;
            } else {
                other++;
            }
        }
        done += n;
        segops_flush(c, 30000);
    }
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(c, &s);
    printf("calls %ld accepted %ld other %ld delivered %llu\n", calls, ok, other,
           (unsigned long long)s.delivered);
    segops_shutdown(c, 30000, NULL);
    segops_prepared_free(prep); /* the client that used it is shut down */
    sink_stop(sink);
    return 0;
}
