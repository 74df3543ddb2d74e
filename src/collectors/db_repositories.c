/* db_repositories: size, assets, components and last download of every
 * repository, read from the Nexus database (the old exporter's repository_info /
 * repo_size), for every format whose tables exist (db_formats; a format
 * without its tables is skipped quietly). Labels {repository, format}:
 *
 *   nexus_repository_size_bytes                       sum(asset_blob_size)
 *   nexus_repository_assets                           count of {f}_asset rows
 *   nexus_repository_components                       count of {f}_component rows
 *   nexus_repository_last_download_timestamp_seconds  max(last_downloaded), whole seconds
 *        (left out when nothing in the repository was ever downloaded)
 *
 * One aggregate query per format (GROUP BY repository_id over the asset
 * and component tables, joined to repository through
 * {f}_content_repository); repositories without content report 0.
 * With [database] present these families come from here, and the REST
 * collector nexus_components is off (no duplicate series); the first
 * three are declared in families.c, with the same labels from both.
 * State: one struct db, owned. */
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "db.h"
#include "nexus_api.h"
#include "families.h"

static const struct metric_desc m_lastdl = {
    "nexus_repository_last_download_timestamp_seconds", MT_GAUGE,
    "Time of the most recent download of any asset of the repository (absent: never).", "seconds"};

#define MAX_REPOS 100000

static const char SQL_REPOS[] =
    "SELECT r.name, coalesce(a.assets, 0), coalesce(a.bytes, 0),"
    " floor(extract(epoch FROM a.last_dl)), coalesce(c.comps, 0)"
    " FROM {f}_content_repository cr"
    " JOIN repository r ON r.id = cr.config_repository_id"
    " LEFT JOIN (SELECT repository_id, count(*) AS assets, sum(asset_blob_size) AS bytes,"
    "   max(last_downloaded) AS last_dl FROM {f}_asset GROUP BY repository_id) a"
    "   ON a.repository_id = cr.repository_id"
    " LEFT JOIN (SELECT repository_id, count(*) AS comps FROM {f}_component"
    "   GROUP BY repository_id) c ON c.repository_id = cr.repository_id"
    " ORDER BY r.name";

struct walk {
    struct collect_ctx *ctx;
    const char *fmt;
};

static int row(void *ud, const PGresult *r, struct err *e)
{
    struct walk *w = ud;
    const char *name = db_col_str(r, 0);
    double assets, bytes, lastdl, comps;
    if (!name)
        return 0;
    db_col_double(r, 1, &assets);
    db_col_double(r, 2, &bytes);
    bool has_dl = db_col_double(r, 3, &lastdl);
    db_col_double(r, 4, &comps);
    (void)e;
    if (fam_repository_sizes(w->ctx, name, w->fmt, comps, assets, bytes) < 0 ||
        (has_dl &&
         coll_set(w->ctx, &m_lastdl, lastdl, "repository", name, "format", w->fmt, NULL) < 0))
        return -1;
    return 0;
}

static int collect(void *state, struct collect_ctx *ctx)
{
    struct db *d = state;
    char **fmts = NULL;
    size_t nf = 0;
    struct buf sql;
    buf_init(&sql, 0);
    int rc = -1;
    if (db_formats(d, sb_cycle_ts(ctx->sb), ctx->deadline_mono, &fmts, &nf, ctx->e) < 0)
        goto out;
    for (size_t i = 0; i < nf; i++) {
        char qn[80];
        snprintf(qn, sizeof qn, "repository_sizes[%s]", fmts[i]);
        if (db_sql_fmt(&sql, SQL_REPOS, fmts[i]) < 0) {
            err_set(ctx->e, "%s: out of memory", qn);
            goto out;
        }
        struct walk w = {ctx, fmts[i]};
        if (db_query(d, qn, sql.data, 0, NULL, MAX_REPOS, ctx->deadline_mono, row, &w, ctx->e) < 0)
            goto out;
    }
    rc = 0;
out:
    buf_free(&sql);
    strv_free(fmts, nf);
    return rc;
}

const struct collector collector_db_repositories = {
    .name = "db_repositories",
    .enabled = db_collector_enabled,
    .init = db_collector_init,
    .collect = collect,
    .destroy = db_collector_destroy,
};
