/* SPDX-License-Identifier: MIT */
/*
 * bench_profile.c -- B8: a minimal, repeatable driver of segops_track() for
 * profilers.  One producer thread calls segops_track() `--calls` times in
 * rounds of 1000, flushing between rounds so that every call takes the
 * accepting path (never SEGOPS_EFULL).  Run it under
 *   valgrind --tool=callgrind --toggle-collect=segops_track bench_profile
 * to get instructions per call (total Ir / calls), or under perf stat.
 * With --empty-loop it times the same loop without the call (harness cost).
 */
#include "bench_client.h"
#include "bench_common.h"
#include "segops.h"
#include "sink.h"

int main(int argc, char **argv)
{
    long calls = 50000;
    int empty = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--calls") && i + 1 < argc)
            calls = bench_num(argv[++i]);
        else if (!strcmp(argv[i], "--empty-loop"))
            empty = 1;
        else {
            fprintf(stderr, "usage: %s [--calls N] [--empty-loop]\n", argv[0]);
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
    long ok = 0, other = 0;
    for (long done = 0; done < calls;) {
        long n = calls - done < 1000 ? calls - done : 1000;
        for (long i = 0; i < n; i++) {
            if (empty) {
                __asm__ __volatile__("" ::: "memory");
                ok++;
            } else if (segops_track(c, &ev) == 0) {
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
    sink_stop(sink);
    return 0;
}
