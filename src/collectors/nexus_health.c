/* nexus_health: Nexus's own health checks.
 *
 * GET /service/rest/v1/status/check answers {"<check>": {"healthy": bool,
 * "message": string|null, "error": object|null, ...}, ...}.
 *
 *   nexus_health_check{check}   1 healthy, 0 not; one series for every check
 *                               Nexus reports, healthy or not
 *
 * The message of an unhealthy check ("message", else error.message, cut
 * to 256 bytes) goes to the log, not into a label: a label from free text
 * would start a new series whenever Nexus rewords it (timestamps, counts
 * in the text). It is logged as a complaint per check (WARN when the
 * check turns unhealthy, then at most once per complaint interval while
 * it stays so, with the current message) and an INFO line when it is
 * healthy again.
 *
 * Kept apart from nexus_status so a broken /status/check answer does not
 * hide nexus_up. Any unexpected shape fails the whole collector (nothing
 * half-filled is shipped). State: one nexus_api, owned. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "log.h"
#include "nexus_api.h"

static const struct metric_desc m_check = {
    "nexus_health_check", MT_GAUGE,
    "1 if the Nexus health check (/service/rest/v1/status/check) is healthy, 0 if not.", ""};

#define ENDPOINT    "/service/rest/v1/status/check"
#define MAX_MESSAGE 256

/* Copies s into out (size n >= 4), cut at a UTF-8 character boundary,
 * control characters (line breaks, tabs) made spaces: one log line. */
static void cut_utf8(const char *s, char *out, size_t n)
{
    size_t len = strlen(s);
    if (len < n) {
        memcpy(out, s, len + 1);
    } else {
        size_t k = n - 4; /* room for "..." */
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--;
        memcpy(out, s, k);
        memcpy(out + k, "...", 4);
    }
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
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
        char key[96];
        snprintf(key, sizeof key, "nexus-health-%.80s", name);
        if (!healthy) {
            char cut[MAX_MESSAGE];
            cut_utf8(msg && *msg ? msg : "no message", cut, sizeof cut);
            log_complain(key, "nexus_health: Nexus health check \"%s\" is unhealthy: %s", name,
                         cut);
        } else {
            log_resolved(key, "nexus_health: Nexus health check \"%s\" is healthy again", name);
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
