#include "nexus_api.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

struct nexus_api *nexus_api_new(const struct cfg_nexus *nx, struct err *e)
{
    struct nexus_api *a = calloc(1, sizeof *a);
    if (!a || !(a->base = strdup(nx->url)))
        goto oom;
    size_t n = strlen(a->base);
    while (n && a->base[n - 1] == '/')
        a->base[--n] = '\0';
    struct http_opts o = {
        .timeout_ms = nx->timeout_ms,
        .user = nx->username,
        .password = nx->password,
        .ca_file = nx->ca_file,
        .insecure = nx->insecure_skip_verify,
        .max_response = 64u << 20,
    };
    if (!(a->http = http_client_new(&o)))
        goto oom;
    return a;
oom:
    err_set(e, "out of memory");
    nexus_api_free(a);
    return NULL;
}

void nexus_api_free(struct nexus_api *a)
{
    if (!a)
        return;
    http_client_free(a->http);
    free(a->base);
    free(a);
}

int nexus_api_url(const struct nexus_api *a, const char *path, struct buf *out)
{
    buf_reset(out);
    return buf_printf(out, "%s%s", a->base, path);
}
