/* db_docker_sql: see db_docker_sql.h. How the pass is shaped (each step
 * measured on 1M assets, tests/bench/README.md):
 *   t    one row per tag: the asset facts of the tag (latest download,
 *        bytes of its assets) and, with the estimate, whether the rules
 *        delete it; its image key img is the least component_id of the
 *        image when the rank is needed (the window that ranks the tags
 *        gives it for free), else the image name. The window runs over
 *        the components alone and the asset facts are joined after it
 *        (narrower rows to sort)
 *   lr   (image, layer digest) pairs of the manifests, deduped before the
 *        join: generate_series + ->> walks each array once (cheaper than
 *        jsonb_array_elements_text, which builds a tuplestore per call),
 *        a non-array attributes.docker.layers lists nothing
 *   ref  the pairs joined to the layer blobs (same repository, path
 *        /v2/-/blobs/<digest>, assets without a component; the unique
 *        (repository_id, path) key, so the planner has real statistics
 *        for the hash join)
 * Text keys hashed per layer compare in the "C" collation (digests and
 * paths are ASCII; no locale lookup per comparison).
 *   the image sizes, the shared-layer check of the estimate and the
 *   per-repository counts are small aggregates over t and ref.
 * Date thresholds are scalar subqueries (evaluated once: now() is fixed
 * in a statement); `now() - interval` per row cost a quarter of the
 * query. Per-tag and per-image byte sums are cast back to int8 (an
 * image cannot reach 2^63 bytes), so the ranking adds and sorts int8,
 * not numeric. */
#include "db_docker_sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define MAX_ROWS (100000 + 1000000) /* R rows + I rows */

/* tags of an image ordered as `nexus-shipper cleanup` orders them: newest
 * first, unknown or epoch dates last (GREATEST skips NULL), ties by tag
 * name in byte order. The partition leads with a hash of (name,
 * repository): rows of different images then compare on one int8 instead
 * of the repository and the name (a third of the sort's cost). */
static const char RANK_WINDOW[] =
    " WINDOW w AS (PARTITION BY hashtextextended(c.name, c.repository_id), c.repository_id,"
    " c.name COLLATE \"C\""
    " ORDER BY GREATEST(c.created, 'epoch'::timestamptz) DESC, c.version COLLATE \"C\""
    " ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)";

/* The part's rows: (repository_id & 1) <> $3, $3 being the other part's
 * bit. Written as "<>", not "= part": the planner has no statistics for
 * the expression and takes "=" to keep 0.5 % of the rows (it then plans
 * nested loops and sorts for a few rows: 2.16 G instructions per part
 * instead of 1.96 G), "<>" 99.5 % (the plan of the whole pass). */
#define PART_COMPONENTS " FROM docker_component c WHERE (c.repository_id & 1) <> $3::int"

/* closes the ranked subquery w and joins the tag's asset facts to it */
static const char ASSET_FACTS[] =
    ") w LEFT JOIN (SELECT component_id, max(last_downloaded) AS last_dl,"
    "  sum(asset_blob_size)::int8 AS bytes FROM docker_asset WHERE component_id IS NOT NULL"
    "  AND (repository_id & 1) <> $3::int"
    "  GROUP BY component_id) a ON a.component_id = w.component_id),";

static const char LAYERS[] =
    " lr AS (SELECT y.repository_id, y.img, (y.l ->> y.i) COLLATE \"C\" AS digest,"
    " bool_and(y.del) AS del"
    " FROM (SELECT x.repository_id, x.img, x.del, x.l,"
    "  generate_series(0, jsonb_array_length(x.l) - 1) AS i"
    "  FROM (SELECT t.repository_id, t.img, t.del, m.attributes #> '{docker,layers}' AS l"
    "   FROM t JOIN docker_asset m ON m.component_id = t.component_id"
    "   AND m.component_id IS NOT NULL AND (m.repository_id & 1) <> $3::int OFFSET 0) x"
    "  WHERE jsonb_typeof(x.l) = 'array') y"
    " GROUP BY 1, 2, 3),"
    " ref AS (SELECT lr.repository_id, lr.img, lr.del, b.asset_id, b.asset_blob_size AS size"
    " FROM lr JOIN docker_asset b ON b.repository_id = lr.repository_id"
    "  AND b.path COLLATE \"C\" = '/v2/-/blobs/' || lr.digest AND b.component_id IS NULL"
    "  AND (b.repository_id & 1) <> $3::int),"
    " il AS (SELECT repository_id, img, sum(size)::int8 AS bytes FROM ref GROUP BY 1, 2),";

/* layers no kept tag of the repository references */
static const char SHARED_CHECK[] =
    " cl AS (SELECT repository_id, sum(size) AS bytes FROM (SELECT repository_id, asset_id,"
    "  min(size) AS size FROM ref GROUP BY 1, 2 HAVING bool_and(del)) x GROUP BY 1),";

static const char IMAGES_HEAD[] =
    " img AS (SELECT t.repository_id, t.img, t.name, count(*) AS tags, min(t.created) AS oldest,"
    " max(t.created) AS newest, coalesce(sum(t.bytes), 0)::int8 AS mbytes,"
    " count(t.created) FILTER (WHERE t.created >= (SELECT now() - interval '30 days')) AS b30,"
    " count(t.created) FILTER (WHERE t.created >= (SELECT now() - interval '90 days')) AS b90,"
    " count(t.created) FILTER (WHERE t.created >= (SELECT now() - interval '180 days')) AS b180,"
    " count(t.created) FILTER (WHERE t.created >= (SELECT now() - interval '365 days')) AS b365,"
    " count(*) FILTER (WHERE t.last_dl IS NULL) AS never,"
    " count(*) FILTER (WHERE t.last_dl < (SELECT now() - make_interval(days => $2::int))) AS old";

static const char RANKED[] =
    " FROM t GROUP BY 1, 2, 3),"
    " rk AS (SELECT img.*, img.mbytes + coalesce(il.bytes, 0) AS bytes,"
    "  row_number() OVER (PARTITION BY img.repository_id"
    "   ORDER BY img.mbytes + coalesce(il.bytes, 0) DESC, img.name) AS rnk"
    " FROM img LEFT JOIN il USING (repository_id, img)),"
    " rs AS (SELECT repository_id, count(*) AS images, sum(b30) AS b30, sum(b90) AS b90,"
    "  sum(b180) AS b180, sum(b365) AS b365, sum(tags) AS tags, sum(never) AS never,"
    "  sum(old) AS old";

static const char REPO_ROWS[] =
    " SELECT 'R' AS kind, r.name, NULL AS image, coalesce(rs.images, 0), coalesce(rs.b30, 0),"
    " coalesce(rs.b90, 0), coalesce(rs.b180, 0), coalesce(rs.b365, 0), coalesce(rs.tags, 0),"
    " coalesce(rs.never, 0), coalesce(rs.old, 0), ";

static const char IMAGE_ROWS[] =
    " FROM docker_content_repository cr JOIN repository r ON r.id = cr.config_repository_id"
    " LEFT JOIN rs ON rs.repository_id = cr.repository_id%s"
    " WHERE (cr.repository_id & 1) <> $3::int"
    " UNION ALL"
    " SELECT 'I', r.name, CASE WHEN rk.rnk <= $1::int THEN rk.name ELSE '_other' END,"
    " sum(rk.tags), sum(rk.bytes), floor(extract(epoch FROM max(rk.newest))),"
    " floor(extract(epoch FROM min(rk.oldest))), NULL, NULL, NULL, NULL, NULL, NULL"
    " FROM rk JOIN docker_content_repository cr ON cr.repository_id = rk.repository_id"
    " JOIN repository r ON r.id = cr.config_repository_id"
    " GROUP BY 2, 3"
    " ORDER BY 1, 2, 3";

static int add_param(struct docker_sql *q, const char *v)
{
    char **np = realloc(q->params, (q->nparams + 1) * sizeof *np);
    if (!np)
        return -1;
    q->params = np;
    if (!(np[q->nparams] = strdup(v)))
        return -1;
    q->nparams++;
    return 0;
}

/* " AND c.name <op> $n" with the regex as parameter n (nothing for "") */
static int add_repo_filter(struct docker_sql *q, const char *op, const char *re)
{
    if (!re || !*re)
        return 0;
    if (add_param(q, re) < 0)
        return -1;
    return buf_printf(&q->sql, " AND c.name %s $%zu", op, q->nparams);
}

/* t: one row per tag (see the top of the file) */
static int tags_cte(struct docker_sql *q, const struct cleanup_rules *rules,
                    const struct cfg_cleanup *cl)
{
    bool ranked = rules && cleanup_rules_need_rank(rules);
    struct buf *b = &q->sql;
    if (buf_puts(b, "WITH t AS MATERIALIZED (SELECT w.*, a.last_dl, a.bytes FROM (SELECT"
                    " c.component_id, c.repository_id, c.name, c.created, ") < 0 ||
        buf_puts(b, ranked ? "min(c.component_id) OVER w AS img, " : "c.name AS img, ") < 0)
        return -1;
    if (!rules)
        return buf_puts(b, "FALSE AS del" PART_COMPONENTS) < 0 || buf_puts(b, ASSET_FACTS) < 0 ? -1
                                                                                               : 0;
    if (cleanup_rules_sql(rules, "c.version", "c.created", "(row_number() OVER w - 1)",
                          (int)q->nparams + 1, b, &q->params, &q->nparams) < 0 ||
        add_repo_filter(q, "~", cl->include_repositories) < 0 ||
        add_repo_filter(q, "!~", cl->exclude_repositories) < 0 ||
        buf_puts(b, " AS del" PART_COMPONENTS) < 0 || (ranked && buf_puts(b, RANK_WINDOW) < 0) ||
        buf_puts(b, ASSET_FACTS) < 0)
        return -1;
    return 0;
}

int docker_sql_build(struct docker_sql *q, const struct cfg_database *db,
                     const struct cleanup_rules *rules, const struct cfg_cleanup *cl)
{
    char v[32];
    memset(q, 0, sizeof *q);
    buf_init(&q->sql, 0);
    q->estimate = rules != NULL;
    snprintf(v, sizeof v, "%lld", (long long)db->top_images);
    if (add_param(q, v) < 0)
        return -1;
    snprintf(v, sizeof v, "%lld", (long long)db->stale_days);
    if (add_param(q, v) < 0 || add_param(q, "1") < 0) /* $3: set per part */
        return -1;
    struct buf *b = &q->sql;
    if (tags_cte(q, rules, cl) < 0 || buf_puts(b, LAYERS) < 0 ||
        (rules && buf_puts(b, SHARED_CHECK) < 0) || buf_puts(b, IMAGES_HEAD) < 0 ||
        (rules && buf_puts(b, ", count(*) FILTER (WHERE t.del) AS dtags,"
                              " sum(t.bytes) FILTER (WHERE t.del) AS dbytes") < 0) ||
        buf_puts(b, RANKED) < 0 ||
        (rules && buf_puts(b, ", sum(dtags) AS dtags, sum(dbytes) AS dbytes") < 0) ||
        buf_puts(b, " FROM img GROUP BY 1)") < 0 || buf_puts(b, REPO_ROWS) < 0 ||
        buf_puts(b, rules ? "coalesce(rs.dtags, 0), coalesce(rs.dbytes, 0) + coalesce(cl.bytes, 0)"
                          : "NULL, NULL") < 0 ||
        buf_printf(b, IMAGE_ROWS,
                   rules ? " LEFT JOIN cl ON cl.repository_id = cr.repository_id" : "") < 0 ||
        !buf_cstr(b))
        return -1;
    return 0;
}

void docker_sql_free(struct docker_sql *q)
{
    buf_free(&q->sql);
    strv_free(q->params, q->nparams);
    q->params = NULL;
    q->nparams = 0;
}

/* part k's parameters: q's, with $3 = the other part's bit (the strings
 * stay q's) */
static const char **part_params(const struct docker_sql *q, int k, const char **pv)
{
    for (size_t i = 0; i < q->nparams; i++)
        pv[i] = q->params[i];
    pv[2] = k ? "0" : "1";
    return pv;
}

int docker_sql_run(struct db *d, const struct docker_sql *q, struct collect_ctx *ctx, db_row_fn fn,
                   void *ud)
{
    const char **pv = malloc(q->nparams * sizeof *pv);
    if (!pv) {
        err_set(ctx->e, "docker_inventory: out of memory");
        return -1;
    }
    int rc = 0;
    /* the prefetched part 0 last: the others run on the main session
     * while the server is still working on it */
    for (int k = DOCKER_PARTS - 1; k >= 0 && rc == 0; k--) {
        char name[40];
        snprintf(name, sizeof name, "docker_inventory[%d/%d]", k, DOCKER_PARTS);
        if (db_query_cycle(d, sb_cycle_ts(ctx->sb), name, q->sql.data, q->nparams,
                           part_params(q, k, pv), MAX_ROWS, ctx->deadline_mono, fn, ud, ctx->e) < 0)
            rc = -1;
    }
    free(pv);
    return rc;
}

int docker_sql_prefetch(struct db *d, const struct docker_sql *q, struct err *e)
{
    const char **pv = malloc(q->nparams * sizeof *pv);
    if (!pv) {
        err_set(e, "docker_inventory: out of memory");
        return -1;
    }
    char name[40];
    snprintf(name, sizeof name, "docker_inventory[0/%d]", DOCKER_PARTS);
    int rc = db_prefetch(d, name, q->sql.data, q->nparams, part_params(q, 0, pv), e);
    free(pv);
    return rc;
}

struct docker_src *docker_src_new(const struct config *cfg, bool need_rules, const char *who,
                                  struct err *e)
{
    struct docker_src *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, "out of memory");
        return NULL;
    }
    if (cfg->cleanup) {
        struct err e2 = {{0}};
        s->rules_ok = cleanup_rules_init(&s->rules, cfg->cleanup, need_rules ? e : &e2) == 0;
        if (!s->rules_ok && need_rules)
            goto fail;
        if (!s->rules_ok)
            log_debug("%s: docker query without the cleanup estimate: %s", who, e2.msg);
    }
    if (docker_sql_build(&s->q, cfg->database, s->rules_ok ? &s->rules : NULL, cfg->cleanup) < 0) {
        err_set(e, "out of memory");
        goto fail;
    }
    if (!(s->db = db_new(cfg->database, e)) || docker_sql_prefetch(s->db, &s->q, e) < 0)
        goto fail;
    return s;
fail:
    docker_src_free(s);
    return NULL;
}

void docker_src_free(void *src)
{
    struct docker_src *s = src;
    if (!s)
        return;
    db_free(s->db);
    if (s->rules_ok)
        cleanup_rules_free(&s->rules);
    docker_sql_free(&s->q);
    free(s);
}
