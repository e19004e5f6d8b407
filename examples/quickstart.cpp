// SPDX-License-Identifier: MIT
#include <cstdio>
#include <segops.hpp>

int main()
{
    segops_options o = segops::options();  // or SEGOPS_OPTIONS_INIT
    o.api_url = "https://api.segops.ai";     // NULL: $SEGOPS_API_URL
    o.api_key = nullptr;                     // NULL: $SEGOPS_API_KEY
    segops::client client;                   // move-only; shuts down when destroyed
    if (int rc = client.open(o); rc != 0) {
        std::fprintf(stderr, "%s\n", segops_strerror(rc));
        return 1;
    }

    std::string_view user = "user-123";      // any string_view: nothing is copied
    int rc = client.track(user, "order_placed",
                          {segops::str("order_id", "ord-456"), segops::f64("total", 89.95)});
    if (rc != 0)                             // error codes, never exceptions
        std::fprintf(stderr, "%s\n", segops_strerror(rc));
    client.identify(user, {segops::str("plan", "pro")});

    rc = client.flush(2000);                 // blocks up to 2 s
    uint64_t undelivered = 0;                // over the client's whole lifetime
    rc = client.shutdown(5000, &undelivered);
    return rc == 0 ? 0 : 1;
}
