/* SPDX-License-Identifier: MIT */
/*
 * local_sink.h -- lets the examples run with no account and no network.
 *
 * example_local_sink() does nothing when $SEGOPS_API_URL is set: the example
 * then talks to that server, with $SEGOPS_API_KEY.  Otherwise it starts the
 * local SegOps sink (tools/sink.h) in this process on a loopback port and
 * sets $SEGOPS_API_URL and $SEGOPS_API_KEY to it, so that the example code
 * itself stays exactly what a real program writes: options left NULL, filled
 * from the environment by segops_client_new().
 *
 * Not part of libsegops; C and C++.
 */
#ifndef SEGOPS_EXAMPLE_LOCAL_SINK_H
#define SEGOPS_EXAMPLE_LOCAL_SINK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "sink.h"
#ifdef __cplusplus
}
#endif

static inline struct sink *example_local_sink(void)
{
    const char *url = getenv("SEGOPS_API_URL");
    if (url && url[0])
        return NULL;
    struct sink_opts so;
    memset(&so, 0, sizeof(so));
    so.api_key = "sk_example";
    uint16_t port = 0;
    struct sink *s = sink_start(&so, &port);
    if (!s) {
        perror("example: starting the local sink");
        exit(1);
    }
    char buf[64];
    snprintf(buf, sizeof(buf), "http://127.0.0.1:%u", (unsigned)port);
    setenv("SEGOPS_API_URL", buf, 1);
    setenv("SEGOPS_API_KEY", "sk_example", 1);
    fprintf(stderr, "(no $SEGOPS_API_URL: using a local sink at %s)\n", buf);
    return s;
}

/* Stops the local sink, if one was started; returns the events it queued. */
static inline unsigned long long example_local_sink_stop(struct sink *s)
{
    if (!s)
        return 0;
    struct sink_counts k;
    sink_get_counts(s, &k);
    sink_stop(s);
    fprintf(stderr, "(local sink: %llu events queued in %llu requests)\n",
            (unsigned long long)k.queued, (unsigned long long)k.requests);
    return (unsigned long long)k.queued;
}

#endif
