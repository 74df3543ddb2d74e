/* nexus_repositories: what repositories exist, how they are set up, and
 * whether each answers (the old exporter's repo_status).
 *
 * GET /service/rest/v1/repositorySettings, then (probe_repositories) one
 * anonymous GET of every repository URL (url + "/").
 *
 *   nexus_repository_info{repository,format,type,blobstore}   1
 *   nexus_repository_online{repository}                       1 online, 0 offline
 *   nexus_repository_cleanup_policies{repository}             number of cleanup policies
 *   nexus_repository_up{repository}                           1 if the URL answered < 500
 *   nexus_repository_probe_duration_seconds{repository}       time of that GET
 *   nexus_repository_probe_status_code{repository}            its status, 0 = no answer
 *   nexus_repository_present{repository}                      per [nexus] expected_repositories:
 *                                                             1 listed by Nexus, 0 missing
 *
 * Up means the Nexus repository route answered (2xx..4xx: 401 for a
 * repository that needs credentials is still up); 5xx (offline: 503,
 * blocked proxy: 502) or no answer is down. Probes send no credentials.
 * A malformed settings answer fails the collector; a failed probe is a
 * value, not an error. State: one nexus_api, owned. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "log.h"
#include "nexus_api.h"

static const struct metric_desc m_info = {
    "nexus_repository_info", MT_INFO,
    "Always 1: a repository with its format, type and blob store.", ""};
static const struct metric_desc m_online = {"nexus_repository_online", MT_GAUGE,
                                            "1 if the repository is online, 0 if offline.", ""};
static const struct metric_desc m_cleanup = {
    "nexus_repository_cleanup_policies", MT_GAUGE,
    "Number of cleanup policies attached to the repository.", ""};
static const struct metric_desc m_up = {
    "nexus_repository_up", MT_GAUGE,
    "1 if a GET of the repository URL got an answer below 500, else 0.", ""};
static const struct metric_desc m_dur = {"nexus_repository_probe_duration_seconds", MT_GAUGE,
                                         "Time the repository URL probe took.", "seconds"};
static const struct metric_desc m_code = {
    "nexus_repository_probe_status_code", MT_GAUGE,
    "HTTP status of the repository URL probe; 0 when there was no answer.", ""};
static const struct metric_desc m_present = {
    "nexus_repository_present", MT_GAUGE,
    "For each expected repository ([nexus] expected_repositories): 1 if Nexus lists it, else 0.",
    ""};

static const struct probe_descs m_probe = {&m_up, &m_dur, &m_code};

#define ENDPOINT "/service/rest/v1/repositorySettings"

static int probe(struct nexus_api *a, struct collect_ctx *ctx, const char *name, const char *url)
{
    struct buf u;
    struct http_response r;
    buf_init(&u, 0);
    http_response_init(&r);
    int rc = -1;
    if (url && *url) {
        if (buf_puts(&u, url) < 0 || (!str_has_suffix(url, "/") && buf_puts(&u, "/") < 0))
            goto oom;
    } else if (buf_printf(&u, "%s/repository/", a->base) < 0 || url_escape(name, &u) < 0 ||
               buf_puts(&u, "/") < 0) {
        goto oom;
    }
    if (nexus_probe(a, u.data, ctx->deadline_mono, &r, ctx->e, "nexus_repositories",
                    "repository %s", name) < 0)
        goto out;
    bool up = r.status >= 200 && r.status < 500;
    if (coll_set_probe(ctx, &m_probe, up, r.seconds, r.status, "repository", name, NULL) < 0)
        goto out;
    rc = 0;
    goto out;
oom:
    err_set(ctx->e, "out of memory");
out:
    http_response_free(&r);
    buf_free(&u);
    return rc;
}

static int collect(void *state, struct collect_ctx *ctx)
{
    struct nexus_api *a = state;
    const struct cfg_nexus *cfg = a->cfg;
    json_object *j = NULL;
    bool *seen = NULL;
    int rc = -1;
    if (cfg->expected_repositories.n &&
        !(seen = calloc(cfg->expected_repositories.n, sizeof *seen))) {
        err_set(ctx->e, "out of memory");
        goto out;
    }
    struct jdec d;
    json_object *arr;
    size_t n;
    if (nexus_get_array(a, ENDPOINT, "GET " ENDPOINT, ctx->deadline_mono, &j, &d, &arr, &n,
                        ctx->e) < 0)
        goto out;
    /* validate and store the settings first, probe afterwards */
    for (size_t i = 0; i < n; i++) {
        size_t m = jd_push_index(&d, i);
        json_object *r, *storage = NULL, *cleanup = NULL, *policies = NULL;
        const char *name, *format, *type, *store = NULL, *url = NULL;
        bool online = true;
        size_t npol = 0;
        if (jd_object(&d, json_object_array_get_idx(arr, i), NULL, 0, &r) < 0 ||
            jd_string(&d, r, "name", 0, &name) < 0 || jd_string(&d, r, "format", 0, &format) < 0 ||
            jd_string(&d, r, "type", 0, &type) < 0 || jd_string(&d, r, "url", JD_MAYBE, &url) < 0 ||
            jd_bool(&d, r, "online", 0, &online) < 0 ||
            jd_object(&d, r, "storage", JD_MAYBE, &storage) < 0 ||
            jd_object(&d, r, "cleanup", JD_MAYBE, &cleanup) < 0)
            goto out;
        if (storage) {
            size_t m2 = jd_push_key(&d, "storage");
            if (jd_string(&d, storage, "blobStoreName", JD_MAYBE, &store) < 0)
                goto out;
            jd_pop(&d, m2);
        }
        if (cleanup) {
            size_t m2 = jd_push_key(&d, "cleanup");
            if (jd_array(&d, cleanup, "policyNames", JD_MAYBE, &policies, &npol) < 0)
                goto out;
            for (size_t k = 0; k < npol; k++) {
                size_t m3 = jd_push_key(&d, "policyNames");
                jd_push_index(&d, k);
                const char *pn;
                if (jd_string(&d, json_object_array_get_idx(policies, k), NULL, 0, &pn) < 0)
                    goto out;
                jd_pop(&d, m3);
            }
            jd_pop(&d, m2);
        }
        if (coll_set(ctx, &m_info, 1, "repository", name, "format", format, "type", type,
                     "blobstore", store ? store : "", NULL) < 0 ||
            coll_set(ctx, &m_online, online ? 1 : 0, "repository", name, NULL) < 0 ||
            coll_set(ctx, &m_cleanup, (double)npol, "repository", name, NULL) < 0)
            goto out;
        for (size_t k = 0; k < cfg->expected_repositories.n; k++)
            if (strcmp(cfg->expected_repositories.v[k], name) == 0)
                seen[k] = true;
        jd_pop(&d, m);
    }
    for (size_t k = 0; k < cfg->expected_repositories.n; k++) {
        const char *want = cfg->expected_repositories.v[k];
        bool dup = false;
        for (size_t x = 0; x < k; x++)
            dup |= strcmp(cfg->expected_repositories.v[x], want) == 0;
        if (dup)
            continue;
        if (!seen[k])
            log_complain("nexus-repository-missing", "expected repository %s is missing in Nexus",
                         want);
        if (coll_set(ctx, &m_present, seen[k] ? 1 : 0, "repository", want, NULL) < 0)
            goto out;
    }
    if (cfg->probe_repositories)
        for (size_t i = 0; i < n; i++) {
            json_object *r = json_object_array_get_idx(arr, i), *v;
            const char *name =
                json_object_get_string(json_object_object_get_ex(r, "name", &v) ? v : NULL);
            const char *url =
                json_object_object_get_ex(r, "url", &v) && json_object_is_type(v, json_type_string)
                    ? json_object_get_string(v)
                    : NULL;
            if (probe(a, ctx, name, url) < 0)
                goto out;
        }
    rc = 0;
out:
    free(seen);
    json_object_put(j);
    return rc;
}

const struct collector collector_nexus_repositories = {
    .name = "nexus_repositories",
    .enabled = nexus_collector_enabled,
    .init = nexus_collector_init,
    .collect = collect,
    .destroy = nexus_collector_destroy,
};
