/* nexus_blobstores: size, blob count, free space and quotas of every blob
 * store (the old exporter's blobs_size).
 *
 * GET /service/rest/v1/blobstores, then for each store with a soft quota
 * GET /service/rest/v1/blobstores/{name}/quota-status. All labelled
 * {blobstore, type}:
 *
 *   nexus_blobstore_size_bytes          totalSizeInBytes
 *   nexus_blobstore_blobs               blobCount
 *   nexus_blobstore_available_bytes     availableSpaceInBytes
 *   nexus_blobstore_available           0 when "unavailable" is true, else 1
 *   nexus_blobstore_quota_limit_bytes   softQuota.limit (stores with a quota)
 *   nexus_blobstore_quota_violation     quota-status isViolation (stores with a quota)
 *
 * A wrong type anywhere fails the collector with endpoint + JSON path.
 * State: one nexus_api, owned. */
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "log.h"
#include "nexus_api.h"

static const struct metric_desc m_size = {"nexus_blobstore_size_bytes", MT_GAUGE,
                                          "Total size of the blobs in the blob store.", "bytes"};
static const struct metric_desc m_blobs = {"nexus_blobstore_blobs", MT_GAUGE,
                                           "Number of blobs in the blob store.", ""};
static const struct metric_desc m_avail_bytes = {
    "nexus_blobstore_available_bytes", MT_GAUGE,
    "Space still available to the blob store, as Nexus reports it.", "bytes"};
static const struct metric_desc m_avail = {
    "nexus_blobstore_available", MT_GAUGE,
    "1 if the blob store is available, 0 if Nexus reports it unavailable.", ""};
static const struct metric_desc m_qlimit = {
    "nexus_blobstore_quota_limit_bytes", MT_GAUGE,
    "Soft quota limit of the blob store (only stores with a quota).", "bytes"};
static const struct metric_desc m_qviol = {
    "nexus_blobstore_quota_violation", MT_GAUGE,
    "1 if the blob store violates its soft quota (quota-status isViolation), else 0.", ""};

#define ENDPOINT "/service/rest/v1/blobstores"

/* GET quota-status of `name`; *violation from isViolation. */
static int quota_status(struct nexus_api *a, const char *name, int64_t deadline, bool *violation,
                        struct err *e)
{
    struct buf path;
    buf_init(&path, 0);
    json_object *j = NULL;
    int rc = -1;
    if (buf_puts(&path, ENDPOINT "/") < 0 || url_escape(name, &path) < 0 ||
        buf_puts(&path, "/quota-status") < 0) {
        err_set(e, "out of memory");
        goto out;
    }
    if (nexus_get_json(a, path.data, deadline, &j, e) < 0)
        goto out;
    char what[600];
    snprintf(what, sizeof what, "GET %s", path.data);
    struct jdec d;
    jd_init(&d, what, e);
    json_object *top;
    if (jd_object(&d, j, NULL, 0, &top) < 0 || jd_bool(&d, top, "isViolation", 0, violation) < 0)
        goto out;
    rc = 0;
out:
    json_object_put(j);
    buf_free(&path);
    return rc;
}

static int collect(void *state, struct collect_ctx *ctx)
{
    struct nexus_api *a = state;
    json_object *j = NULL;
    int rc = -1;
    struct jdec d;
    json_object *arr;
    size_t n;
    if (nexus_get_array(a, ENDPOINT, "GET " ENDPOINT, ctx->deadline_mono, &j, &d, &arr, &n,
                        ctx->e) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        size_t m = jd_push_index(&d, i);
        json_object *b, *quota = NULL;
        const char *name, *type;
        bool unavailable = false;
        double blobs, size, avail;
        if (jd_object(&d, json_object_array_get_idx(arr, i), NULL, 0, &b) < 0 ||
            jd_string(&d, b, "name", 0, &name) < 0 || jd_string(&d, b, "type", 0, &type) < 0 ||
            jd_bool(&d, b, "unavailable", JD_MAYBE, &unavailable) < 0 ||
            jd_number(&d, b, "blobCount", 0, &blobs) < 0 ||
            jd_number(&d, b, "totalSizeInBytes", 0, &size) < 0 ||
            jd_number(&d, b, "availableSpaceInBytes", 0, &avail) < 0 ||
            jd_object(&d, b, "softQuota", JD_MAYBE, &quota) < 0)
            goto out;
        double limit = 0;
        if (quota) {
            size_t m2 = jd_push_key(&d, "softQuota");
            if (jd_number(&d, quota, "limit", 0, &limit) < 0)
                goto out;
            jd_pop(&d, m2);
        }
        if (coll_set(ctx, &m_size, size, "blobstore", name, "type", type, NULL) < 0 ||
            coll_set(ctx, &m_blobs, blobs, "blobstore", name, "type", type, NULL) < 0 ||
            coll_set(ctx, &m_avail_bytes, avail, "blobstore", name, "type", type, NULL) < 0 ||
            coll_set(ctx, &m_avail, unavailable ? 0 : 1, "blobstore", name, "type", type, NULL) < 0)
            goto out;
        if (quota) {
            bool viol = false;
            if (quota_status(a, name, ctx->deadline_mono, &viol, ctx->e) < 0 ||
                coll_set(ctx, &m_qlimit, limit, "blobstore", name, "type", type, NULL) < 0 ||
                coll_set(ctx, &m_qviol, viol ? 1 : 0, "blobstore", name, "type", type, NULL) < 0)
                goto out;
        }
        jd_pop(&d, m);
    }
    rc = 0;
out:
    json_object_put(j);
    return rc;
}

const struct collector collector_nexus_blobstores = {
    .name = "nexus_blobstores",
    .enabled = nexus_collector_enabled,
    .init = nexus_collector_init,
    .collect = collect,
    .destroy = nexus_collector_destroy,
};
