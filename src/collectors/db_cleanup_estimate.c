/* db_cleanup_estimate: what a registry cleanup with the [cleanup] rules
 * would free in each docker repository of Nexus (the old exporter's
 * cleanup_query), computed in the database. Enabled when both [database]
 * and [cleanup] are present (and the docker tables exist).
 *
 * The rules are rendered to SQL by cleanup_rules_sql() — the same
 * definition `nexus-shipper cleanup` decides with (cleanup_decide) — into
 * the docker query of db_docker_sql.h (one pass with db_docker's metrics;
 * whichever of the two runs first in a cycle asks the server), over
 * each tag's name (component version), date (component created) and rank
 * among the tags of its image — the registry's "repository" — ordered as
 * `nexus-shipper cleanup` orders them: newest first, unknown or epoch
 * dates last, ties by tag name in byte order. Images are filtered by
 * [cleanup] include_repositories / exclude_repositories like the cleanup
 * does (PostgreSQL regular expressions, a superset of POSIX ERE for the
 * usual patterns). Config values travel as query parameters only. {repository}:
 *
 *   nexus_cleanup_reclaimable_tags    tags the rules would delete
 *   nexus_cleanup_reclaimable_bytes   their manifest assets, plus the layer
 *        blobs (/v2/-/blobs/<digest> assets listed in manifests'
 *        attributes.docker.layers) referenced ONLY by deletable manifests of
 *        the repository: a layer shared with a kept tag is not counted
 *
 * State: a struct docker_src (db_docker_sql.h): the session, the rules and
 * the rendered query with its parameters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup_rules.h"
#include "collector.h"
#include "db.h"
#include "nexus_api.h"
#include "db_docker_sql.h"

static const struct metric_desc m_tags = {
    "nexus_cleanup_reclaimable_tags", MT_GAUGE,
    "Docker tags of the repository that the [cleanup] rules would delete.", ""};
static const struct metric_desc m_bytes = {
    "nexus_cleanup_reclaimable_bytes", MT_GAUGE,
    "Bytes a cleanup with the [cleanup] rules would free in the repository (deleted manifests "
    "and layers no kept tag references).",
    "bytes"};

/* the state is a struct docker_src: the query db_docker runs too (db_docker_sql.h) */

static bool enabled(const struct config *cfg)
{
    return cfg->database && cfg->cleanup;
}

static int init(const struct config *cfg, void **out, struct err *e)
{
    *out = docker_src_new(cfg, true, "db_cleanup_estimate", e);
    return *out ? 0 : -1;
}

static int row(void *ud, const PGresult *r, struct err *e)
{
    struct collect_ctx *ctx = ud;
    const char *kind = db_col_str(r, DQ_KIND), *repo = db_col_str(r, DQ_REPO);
    double tags, bytes;
    (void)e;
    if (!kind || kind[0] != 'R' || !repo)
        return 0;
    db_col_double(r, DQ_DEL_TAGS, &tags);
    db_col_double(r, DQ_DEL_BYTES, &bytes);
    if (coll_set(ctx, &m_tags, tags, "repository", repo, NULL) < 0 ||
        coll_set(ctx, &m_bytes, bytes, "repository", repo, NULL) < 0)
        return -1;
    return 0;
}

static int collect(void *p, struct collect_ctx *ctx)
{
    struct docker_src *s = p;
    char **fmts = NULL;
    size_t nf = 0;
    if (db_formats(s->db, sb_cycle_ts(ctx->sb), ctx->deadline_mono, &fmts, &nf, ctx->e) < 0)
        return -1;
    bool docker = false;
    for (size_t i = 0; i < nf; i++)
        docker = docker || strcmp(fmts[i], "docker") == 0;
    strv_free(fmts, nf);
    if (!docker)
        return 0; /* no docker format in this Nexus */
    return docker_sql_run(s->db, &s->q, ctx, row, ctx);
}

const struct collector collector_db_cleanup_estimate = {
    .name = "db_cleanup_estimate",
    .enabled = enabled,
    .init = init,
    .collect = collect,
    .destroy = docker_src_free,
};
