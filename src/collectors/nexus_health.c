/* nexus_health: Nexus's own health checks.
 *
 * GET /service/rest/v1/status/check answers {"<check>": {"healthy": bool,
 * "message": string|null, "error": object|null, ...}, ...}.
 *
 *   nexus_health_check{check}               1 healthy, 0 not
 *   nexus_health_check_info{check,message}  1, only for unhealthy checks;
 *                                           message = "message", else
 *                                           error.message, cut to 256 bytes
 *
 * Kept apart from nexus_status so a broken /status/check answer does not
 * hide nexus_up. Any unexpected shape fails the whole collector (nothing
 * half-filled is shipped). State: one nexus_api, owned. */
#include <stdlib.h>
#include <string.h>

#include "../collector.h"
#include "../log.h"
#include "../nexus_api.h"

static const struct metric_desc m_check = {
    "nexus_health_check", MT_GAUGE,
    "1 if the Nexus health check (/service/rest/v1/status/check) is healthy, 0 if not.", ""};
static const struct metric_desc m_info = {
    "nexus_health_check_info", MT_INFO,
    "Present (1) only for an unhealthy Nexus health check; message says why.", ""};

#define ENDPOINT    "/service/rest/v1/status/check"
#define MAX_MESSAGE 256

/* Copies s into out (size n >= 4), cut at a UTF-8 character boundary. */
static void cut_utf8(const char *s, char *out, size_t n)
{
    size_t len = strlen(s);
    if (len < n) {
        memcpy(out, s, len + 1);
        return;
    }
    size_t k = n - 4; /* room for "..." */
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    memcpy(out, s, k);
    memcpy(out + k, "...", 4);
}

static int collect(void *state, struct collect_ctx *ctx)
{
    struct nexus_api *a = state;
    json_object *j = NULL;
    int rc = -1;
    if (nexus_get_json(a, ENDPOINT, ctx->deadline_mono, &j, ctx->e) < 0)
        goto out;
    struct jdec d;
    jd_init(&d, "GET " ENDPOINT, ctx->e);
    json_object *top;
    if (jd_object(&d, j, NULL, 0, &top) < 0)
        goto out;
    json_object_object_foreach(top, name, val)
    {
        size_t m = jd_push_key(&d, name);
        json_object *c, *err = NULL;
        bool healthy;
        const char *msg = NULL;
        if (jd_object(&d, val, NULL, 0, &c) < 0 || jd_bool(&d, c, "healthy", 0, &healthy) < 0 ||
            jd_string(&d, c, "message", JD_MAYBE, &msg) < 0 ||
            jd_object(&d, c, "error", JD_MAYBE, &err) < 0)
            goto out;
        if (!msg && err) {
            size_t m2 = jd_push_key(&d, "error");
            if (jd_string(&d, err, "message", JD_MAYBE, &msg) < 0)
                goto out;
            jd_pop(&d, m2);
        }
        if (coll_set(ctx, &m_check, healthy ? 1 : 0, "check", name, NULL) < 0)
            goto out;
        if (!healthy) {
            char cut[MAX_MESSAGE];
            cut_utf8(msg ? msg : "", cut, sizeof cut);
            if (coll_set(ctx, &m_info, 1, "check", name, "message", cut, NULL) < 0)
                goto out;
        }
        jd_pop(&d, m);
    }
    rc = 0;
out:
    json_object_put(j);
    return rc;
}

const struct collector collector_nexus_health = {
    .name = "nexus_health",
    .enabled = nexus_collector_enabled,
    .init = nexus_collector_init,
    .collect = collect,
    .destroy = nexus_collector_destroy,
};
