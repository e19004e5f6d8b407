/* SPDX-License-Identifier: MIT */
/*
 * quickstart.c -- libsegops in 30 seconds: create a client, track an event,
 * flush, shut down.
 *
 *   export SEGOPS_API_URL=https://api.segops.ai SEGOPS_API_KEY=sk_...
 *   ./example-quickstart
 *
 * Without SEGOPS_API_URL it runs against a local sink (see local_sink.h).
 */
#include <inttypes.h>
#include <stdio.h>

#include <segops.h>

#include "local_sink.h"

int main(void)
{
    struct sink *local = example_local_sink(); /* only when $SEGOPS_API_URL is unset */

    /* Zero options are defaults; api_url and api_key come from the
     * environment ($SEGOPS_API_URL, $SEGOPS_API_KEY). */
    segops_options opts = SEGOPS_OPTIONS_INIT;
    segops_client *client;
    int rc = segops_client_new(&opts, &client);
    if (rc != 0) {
        fprintf(stderr, "segops_client_new: %s\n", segops_strerror(rc));
        return 1;
    }

    /* track() copies the event and returns at once: no I/O, no allocation.
     * A separate thread batches and sends. */
    segops_prop props[] = {
        SEGOPS_STR("order_id", "ord-456"),
        SEGOPS_F64("total", 89.95),
        SEGOPS_BOOL("first_order", 1),
    };
    segops_event ev = {
        .user_id = "user-123",
        .event_type = "order_placed",
        .payload = props,
        .payload_len = sizeof(props) / sizeof(props[0]),
    };
    rc = segops_track(client, &ev);
    printf("track:    %s\n", segops_strerror(rc));

    /* flush() waits (up to 2 s here) until the server has the event. */
    rc = segops_flush(client, 2000);
    printf("flush:    %s\n", segops_strerror(rc));

    /* shutdown() delivers whatever is still queued, then frees everything. */
    uint64_t undelivered = 0;
    rc = segops_shutdown(client, 5000, &undelivered);
    printf("shutdown: %s (undelivered: %" PRIu64 ")\n", segops_strerror(rc), undelivered);

    example_local_sink_stop(local);
    return rc == 0 && undelivered == 0 ? 0 : 1;
}
