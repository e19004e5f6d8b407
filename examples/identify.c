/* SPDX-License-Identifier: MIT */
/*
 * identify.c -- identify a user with traits, then track events for them;
 * every payload value type; what validation refuses.
 *
 *   ./example-identify
 *
 * identify() is not a separate endpoint: it is an event of type
 * "context_identified" whose payload is the user's traits.  Validation
 * happens in the calling thread, at once: a refused event returns an error
 * code and never reaches the queue.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include <segops.h>

#include "local_sink.h"

static int check(const char *what, int rc, int want)
{
    printf("%-34s -> %s\n", what, segops_strerror(rc));
    return rc == want ? 0 : 1;
}

int main(void)
{
    struct sink *local = example_local_sink();
    segops_options opts = SEGOPS_OPTIONS_INIT;
    segops_client *client;
    int rc = segops_client_new(&opts, &client);
    if (rc != 0) {
        fprintf(stderr, "segops_client_new: %s\n", segops_strerror(rc));
        return 1;
    }
    int bad = 0;

    /* Traits: every value type.  Nested objects and arrays are raw JSON
     * text, validated before they are queued. */
    segops_prop traits[] = {
        SEGOPS_STR("email", "ada@example.com"),
        SEGOPS_STR("plan", "pro"),
        SEGOPS_I64("seats", 25),
        SEGOPS_F64("mrr", 1249.5),
        SEGOPS_BOOL("beta", 1),
        SEGOPS_NULL("churned_at"),
        SEGOPS_JSON("company", "{\"name\":\"Analytical Engines\",\"size\":\"11-50\"}"),
        SEGOPS_JSON("roles", "[\"admin\",\"billing\"]"),
    };
    segops_context ctx = {
        .user_id = "user-123",
        .traits = traits,
        .traits_len = sizeof(traits) / sizeof(traits[0]),
    };
    bad |= check("identify user-123", segops_identify(client, &ctx), 0);

    /* An event with an explicit time (RFC 3339, UTC); without one the event
     * carries the time track() was called. */
    segops_prop props[] = {SEGOPS_STR("plan", "enterprise")};
    segops_event upgraded = {.user_id = "user-123",
                             .event_type = "plan_upgraded",
                             .occurred_at = "2026-04-25T14:32:00.123Z",
                             .payload = props,
                             .payload_len = 1};
    bad |= check("track plan_upgraded", segops_track(client, &upgraded), 0);

    /* What validation refuses (nothing is queued; counted as rejected). */
    segops_event camel = {.user_id = "user-123", .event_type = "PlanUpgraded"};
    bad |= check("event_type not snake_case", segops_track(client, &camel), SEGOPS_EEVENTTYPE);
    segops_event anon = {.user_id = "", .event_type = "page_viewed"};
    bad |= check("empty user_id", segops_track(client, &anon), SEGOPS_EUSERID);
    segops_event when = {
        .user_id = "user-123", .event_type = "page_viewed", .occurred_at = "yesterday"};
    bad |= check("occurred_at not RFC 3339", segops_track(client, &when), SEGOPS_ETIMESTAMP);
    segops_prop nan_prop[] = {SEGOPS_F64("ratio", NAN)};
    segops_event nan_ev = {
        .user_id = "user-123", .event_type = "page_viewed", .payload = nan_prop, .payload_len = 1};
    bad |= check("NaN number", segops_track(client, &nan_ev), SEGOPS_ENUMBER);
    segops_prop broken[] = {SEGOPS_JSON("cart", "{\"items\": [1, 2}")};
    segops_event broken_ev = {
        .user_id = "user-123", .event_type = "cart_viewed", .payload = broken, .payload_len = 1};
    bad |= check("raw JSON that does not parse", segops_track(client, &broken_ev),
                 SEGOPS_ERAWJSON);

    rc = segops_flush(client, 5000);
    segops_counters s = SEGOPS_COUNTERS_INIT;
    segops_stats(client, &s);
    printf("flush: %s; accepted=%" PRIu64 " rejected_invalid=%" PRIu64 " delivered=%" PRIu64
           "\n",
           segops_strerror(rc), s.accepted, s.rejected_invalid, s.delivered);
    bad |= s.accepted != 2 || s.rejected_invalid != 5 || s.delivered != 2;

    uint64_t undelivered = 0;
    rc = segops_shutdown(client, 5000, &undelivered);
    printf("shutdown: %s (undelivered: %" PRIu64 ")\n", segops_strerror(rc), undelivered);
    example_local_sink_stop(local);
    return bad || rc != 0 || undelivered != 0 ? 1 : 0;
}
