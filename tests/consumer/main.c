/* SPDX-License-Identifier: MIT */
/*
 * main.c -- an out-of-tree C11 consumer of the INSTALLED libsegops,
 * built by scripts/consumer_test.sh with pkg-config and with
 * find_package(segops).
 *
 * With $SEGOPS_API_URL set (the script starts the installed segops-sink),
 * one event must be delivered; without it the client is pointed at a
 * loopback port where nothing listens and the event must be reported as
 * undelivered.  Either way every public entry point is linked and called.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <segops.h>

int main(void)
{
    const char *url = getenv("SEGOPS_API_URL");
    int live = url && url[0];
    printf("libsegops %s: %s\n", SEGOPS_VERSION_STRING, segops_strerror(SEGOPS_EFULL));

    segops_options o = SEGOPS_OPTIONS_INIT;
    o.api_url = live ? NULL : "http://127.0.0.1:9"; /* discard port: refused */
    o.api_key = live ? NULL : "sk_consumer";
    o.max_retries = live ? 0 : SEGOPS_RETRIES_NONE;
    o.logger = live ? NULL : segops_log_discard;
    segops_client *c;
    int rc = segops_client_new(&o, &c);
    if (rc) {
        fprintf(stderr, "segops_client_new: %s\n", segops_strerror(rc));
        return 1;
    }
    segops_prop props[] = {SEGOPS_STR("lang", "c11"), SEGOPS_I64("n", 1), SEGOPS_BOOL("ok", 1)};
    segops_event ev = {.user_id = "consumer-c",
                       .event_type = "consumer_built",
                       .payload = props,
                       .payload_len = 3};
    if ((rc = segops_track(c, &ev)) != 0) {
        fprintf(stderr, "segops_track: %s\n", segops_strerror(rc));
        return 1;
    }
    segops_context ctx = {.user_id = "consumer-c", .traits = props, .traits_len = 1};
    if ((rc = segops_identify(c, &ctx)) != 0) {
        fprintf(stderr, "segops_identify: %s\n", segops_strerror(rc));
        return 1;
    }
    rc = segops_flush(c, 5000);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(c, &s);
    char text[SEGOPS_PROMETHEUS_MAX];
    size_t len = 0;
    int prc = segops_stats_prometheus(c, text, sizeof(text), &len);
    uint64_t undelivered = 0;
    int src = segops_shutdown(c, 5000, &undelivered);
    printf("flush=%d delivered=%" PRIu64 " shutdown=%d undelivered=%" PRIu64
           " prometheus=%d (%zu bytes)\n",
           rc, s.delivered, src, undelivered, prc, len);
    if (prc != 0 || !strstr(text, "segops_events_accepted_total 2\n"))
        return 1;
    if (live)
        return rc == 0 && src == 0 && s.delivered == 2 && undelivered == 0 ? 0 : 1;
    return rc != 0 && s.delivered == 0 ? 0 : 1;
}
