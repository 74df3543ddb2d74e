/* nexus_status: is Nexus serving reads and writes?
 *
 * GET /service/rest/v1/status          -> nexus_up       (200 = 1, else 0)
 * GET /service/rest/v1/status/writable -> nexus_writable (200 = 1, else 0)
 * No answer at all (connection refused, timeout) is also 0: the collector
 * itself succeeded in finding Nexus down. 401/403 is a collector error
 * (wrong credentials), not a Nexus outage. */
#include <stdlib.h>

#include "collector.h"
#include "log.h"
#include "nexus_api.h"

static const struct metric_desc m_up = {
    "nexus_up", MT_GAUGE, "1 if Nexus answers 200 on /service/rest/v1/status (it can serve reads).",
    ""};
static const struct metric_desc m_writable = {
    "nexus_writable", MT_GAUGE,
    "1 if Nexus answers 200 on /service/rest/v1/status/writable (it can accept writes).", ""};
static const struct metric_desc m_rt = {"nexus_status_response_seconds", MT_GAUGE,
                                        "Time Nexus took to answer /service/rest/v1/status.",
                                        "seconds"};

static int probe(struct nexus_api *a, const char *path, int64_t deadline, double *secs,
                 struct err *e)
{
    struct buf url;
    struct http_response r;
    char shown[URL_REDACT_MAX];
    buf_init(&url, 0);
    http_response_init(&r);
    int up = 0;
    if (nexus_api_url(a, path, &url) == 0 &&
        http_request(a->http, "GET", url.data, NULL, 0, NULL, 0, deadline, &r) == 0)
        up = r.status == 200;
    else
        r.status = 0;
    if (r.status == 401 || r.status == 403) {
        err_set(e, "GET %s: HTTP %ld: check [nexus] username and password_file",
                url_redact(url.data, shown, sizeof shown), r.status);
        up = -1;
    } else if (!r.status)
        log_debug("nexus_status: GET %s: %s",
                  url.data ? url_redact(url.data, shown, sizeof shown) : path, r.error);
    if (secs)
        *secs = r.seconds;
    http_response_free(&r);
    buf_free(&url);
    return up;
}

static int collect(void *state, struct collect_ctx *ctx)
{
    struct nexus_api *a = state;
    double secs = 0;
    int up = probe(a, "/service/rest/v1/status", ctx->deadline_mono, &secs, ctx->e);
    if (up < 0)
        return -1;
    int wr = probe(a, "/service/rest/v1/status/writable", ctx->deadline_mono, NULL, ctx->e);
    if (wr < 0)
        return -1;
    if (sb_set(ctx->sb, &m_up, up, NULL) < 0 || sb_set(ctx->sb, &m_writable, wr, NULL) < 0 ||
        sb_set(ctx->sb, &m_rt, secs, NULL) < 0) {
        err_set(ctx->e, "cannot store nexus_up");
        return -1;
    }
    return 0;
}

const struct collector collector_nexus_status = {
    .name = "nexus_status",
    .enabled = nexus_collector_enabled,
    .init = nexus_collector_init,
    .collect = collect,
    .destroy = nexus_collector_destroy,
};
