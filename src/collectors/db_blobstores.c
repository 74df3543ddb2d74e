/* db_blobstores: blob store totals as Nexus records them in the database
 * (blob_store_metrics, when that table exists; skipped quietly otherwise).
 * Labels {blobstore, type} (type from blob_store_configuration when it
 * exists, else absent):
 *
 *   nexus_blobstore_db_size_bytes   blob_store_metrics.total_size
 *   nexus_blobstore_db_blobs        blob_store_metrics.blob_count
 *
 * The REST view (nexus_blobstore_size_bytes / _blobs) is kept alongside:
 * both are cheap, and a difference between them is worth seeing.
 * State: one struct db, owned. */
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "db.h"
#include "nexus_api.h"

static const struct metric_desc m_size = {
    "nexus_blobstore_db_size_bytes", MT_GAUGE,
    "Total size of the blob store as recorded in the database (blob_store_metrics).", "bytes"};
static const struct metric_desc m_blobs = {
    "nexus_blobstore_db_blobs", MT_GAUGE,
    "Blobs in the blob store as recorded in the database (blob_store_metrics).", ""};

#define MAX_STORES 10000

static int row(void *ud, const PGresult *r, struct err *e)
{
    struct collect_ctx *ctx = ud;
    const char *name = db_col_str(r, 0), *type = db_col_str(r, 1);
    double size, blobs;
    (void)e;
    if (!name)
        return 0;
    if (!type)
        type = "";
    db_col_double(r, 2, &size);
    db_col_double(r, 3, &blobs);
    if (coll_set(ctx, &m_size, size, "blobstore", name, "type", type, NULL) < 0 ||
        coll_set(ctx, &m_blobs, blobs, "blobstore", name, "type", type, NULL) < 0)
        return -1;
    return 0;
}

static int collect(void *state, struct collect_ctx *ctx)
{
    struct db *d = state;
    bool metrics, conf;
    if (db_relation_exists(d, "blob_store_metrics", ctx->deadline_mono, &metrics, ctx->e) < 0)
        return -1;
    if (!metrics)
        return 0;
    if (db_relation_exists(d, "blob_store_configuration", ctx->deadline_mono, &conf, ctx->e) < 0)
        return -1;
    const char *sql = conf ? "SELECT m.blob_store_name, c.type, m.total_size, m.blob_count"
                             " FROM blob_store_metrics m"
                             " LEFT JOIN blob_store_configuration c ON c.name = m.blob_store_name"
                             " ORDER BY 1"
                           : "SELECT m.blob_store_name, NULL, m.total_size, m.blob_count"
                             " FROM blob_store_metrics m ORDER BY 1";
    return db_query(d, "blob_store_metrics", sql, 0, NULL, MAX_STORES, ctx->deadline_mono, row, ctx,
                    ctx->e) < 0
               ? -1
               : 0;
}

const struct collector collector_db_blobstores = {
    .name = "db_blobstores",
    .enabled = db_collector_enabled,
    .init = db_collector_init,
    .collect = collect,
    .destroy = db_collector_destroy,
};
