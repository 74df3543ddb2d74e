/* db_cleanup_estimate: what a registry cleanup with the [cleanup] rules
 * would free in each docker repository of Nexus (the seed's
 * cleanup_query), computed in the database. Enabled when both [database]
 * and [cleanup] are present (and the docker tables exist).
 *
 * The rules are rendered to SQL by cleanup_rules_sql() — the same
 * definition `nexus-shipper cleanup` decides with (cleanup_decide) — over
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
 * State: struct db, the rules, and the rendered query with its parameters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cleanup_rules.h"
#include "../collector.h"
#include "../db.h"
#include "../nexus_api.h"

static const struct metric_desc m_tags = {
    "nexus_cleanup_reclaimable_tags", MT_GAUGE,
    "Docker tags of the repository that the [cleanup] rules would delete.", ""};
static const struct metric_desc m_bytes = {
    "nexus_cleanup_reclaimable_bytes", MT_GAUGE,
    "Bytes a cleanup with the [cleanup] rules would free in the repository (deleted manifests "
    "and layers no kept tag references).",
    "bytes"};

#define MAX_REPOS 100000

struct state {
    struct db *db;
    struct cleanup_rules rules;
    bool rules_ok;
    struct buf sql;
    char **params;
    size_t nparams;
};

static const char SQL_HEAD[] =
    "WITH t AS ("
    " SELECT c.component_id, c.repository_id, c.version AS tag, c.created,"
    "  c.name AS image,"
    "  row_number() OVER (PARTITION BY c.repository_id, c.name"
    "   ORDER BY CASE WHEN c.created > 'epoch'::timestamptz THEN c.created"
    "   ELSE 'epoch'::timestamptz END DESC, c.version COLLATE \"C\") - 1 AS rnk"
    " FROM docker_component c),"
    " d AS (SELECT component_id, repository_id, ";
static const char SQL_TAIL[] =
    " AS del FROM t),"
    " m AS (SELECT d.repository_id, d.del, a.attributes, a.asset_blob_size"
    " FROM d JOIN docker_asset a ON a.component_id = d.component_id),"
    " refs AS (SELECT m.repository_id, g.digest, bool_and(m.del) AS only_del"
    " FROM m CROSS JOIN LATERAL jsonb_array_elements_text("
    "  CASE WHEN jsonb_typeof(m.attributes->'docker'->'layers') = 'array'"
    "  THEN m.attributes->'docker'->'layers' ELSE '[]'::jsonb END) g(digest)"
    " GROUP BY m.repository_id, g.digest),"
    " lay AS (SELECT r.repository_id, sum(l.asset_blob_size) AS bytes"
    " FROM refs r JOIN docker_asset l ON l.repository_id = r.repository_id"
    "  AND l.path = '/v2/-/blobs/' || r.digest"
    " WHERE r.only_del GROUP BY r.repository_id),"
    " tg AS (SELECT repository_id, count(*) FILTER (WHERE del) AS tags FROM d"
    "  GROUP BY repository_id),"
    " mb AS (SELECT repository_id, sum(asset_blob_size) FILTER (WHERE del) AS bytes FROM m"
    "  GROUP BY repository_id)"
    " SELECT r.name, coalesce(tg.tags, 0), coalesce(mb.bytes, 0) + coalesce(lay.bytes, 0)"
    " FROM docker_content_repository cr"
    " JOIN repository r ON r.id = cr.config_repository_id"
    " LEFT JOIN tg ON tg.repository_id = cr.repository_id"
    " LEFT JOIN mb ON mb.repository_id = cr.repository_id"
    " LEFT JOIN lay ON lay.repository_id = cr.repository_id"
    " ORDER BY r.name";

static bool enabled(const struct config *cfg)
{
    return cfg->database && cfg->cleanup;
}

static void destroy(void *p)
{
    struct state *s = p;
    if (!s)
        return;
    db_free(s->db);
    if (s->rules_ok)
        cleanup_rules_free(&s->rules);
    buf_free(&s->sql);
    strv_free(s->params, s->nparams);
    free(s);
}

/* Appends " AND <op> $n" with the regex as parameter n (nothing for ""). */
static int add_repo_filter(struct state *s, const char *op, const char *re)
{
    if (!re || !*re)
        return 0;
    char **np = realloc(s->params, (s->nparams + 1) * sizeof *np);
    if (!np)
        return -1;
    s->params = np;
    if (!(np[s->nparams] = strdup(re)))
        return -1;
    s->nparams++;
    return buf_printf(&s->sql, " AND %s $%zu", op, s->nparams);
}

static int init(const struct config *cfg, void **out, struct err *e)
{
    struct state *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, "out of memory");
        return -1;
    }
    buf_init(&s->sql, 0);
    if (cleanup_rules_init(&s->rules, cfg->cleanup, e) < 0)
        goto fail;
    s->rules_ok = true;
    if (buf_puts(&s->sql, SQL_HEAD) < 0 ||
        cleanup_rules_sql(&s->rules, "t.tag", "t.created", "t.rnk", 1, &s->sql, &s->params,
                          &s->nparams) < 0 ||
        add_repo_filter(s, "t.image ~", cfg->cleanup->include_repositories) < 0 ||
        add_repo_filter(s, "t.image !~", cfg->cleanup->exclude_repositories) < 0 ||
        buf_puts(&s->sql, SQL_TAIL) < 0) {
        err_set(e, "out of memory");
        goto fail;
    }
    if (!(s->db = db_new(cfg->database, e)))
        goto fail;
    *out = s;
    return 0;
fail:
    destroy(s);
    return -1;
}

static int row(void *ud, const PGresult *r, struct err *e)
{
    struct collect_ctx *ctx = ud;
    const char *repo = db_col_str(r, 0);
    double tags, bytes;
    (void)e;
    if (!repo)
        return 0;
    db_col_double(r, 1, &tags);
    db_col_double(r, 2, &bytes);
    if (coll_set(ctx, &m_tags, tags, "repository", repo, NULL) < 0 ||
        coll_set(ctx, &m_bytes, bytes, "repository", repo, NULL) < 0)
        return -1;
    return 0;
}

static int collect(void *p, struct collect_ctx *ctx)
{
    struct state *s = p;
    bool comp, asset, cr;
    if (db_relation_exists(s->db, "docker_component", ctx->deadline_mono, &comp, ctx->e) < 0 ||
        db_relation_exists(s->db, "docker_asset", ctx->deadline_mono, &asset, ctx->e) < 0 ||
        db_relation_exists(s->db, "docker_content_repository", ctx->deadline_mono, &cr, ctx->e) < 0)
        return -1;
    if (!comp || !asset || !cr)
        return 0; /* no docker format in this Nexus */
    return db_query(s->db, "cleanup_estimate", s->sql.data, s->nparams,
                    (const char *const *)s->params, MAX_REPOS, ctx->deadline_mono, row, ctx,
                    ctx->e) < 0
               ? -1
               : 0;
}

const struct collector collector_db_cleanup_estimate = {
    .name = "db_cleanup_estimate",
    .enabled = enabled,
    .init = init,
    .collect = collect,
    .destroy = destroy,
};
