/* nexus_api: the REST client the Nexus collectors share: base URL,
 * credentials and TLS settings from [nexus], one reused curl handle. */
#ifndef NS_NEXUS_API_H
#define NS_NEXUS_API_H

#include "config.h"
#include "http.h"

struct nexus_api {
    struct http_client *http;
    char *base; /* url without trailing slash */
};

/* Returns NULL with e->msg on failure. Free with nexus_api_free(). */
struct nexus_api *nexus_api_new(const struct cfg_nexus *nx, struct err *e);
void nexus_api_free(struct nexus_api *a);
/* Builds base + path into out (path starts with '/'). */
int nexus_api_url(const struct nexus_api *a, const char *path, struct buf *out);

#endif
