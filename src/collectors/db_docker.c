/* db_docker: docker images and tags from the Nexus database (the seed's
 * docker_tags and docker_ports), when the docker tables exist (skipped
 * quietly otherwise). A tag is a docker_component (name = image, version
 * = tag); its date is the component's `created`; its last download is the
 * latest last_downloaded of its assets (the manifest).
 *
 * Per repository {repository}:
 *   nexus_docker_images                      distinct images
 *   nexus_docker_tags_by_age{le_days}        tags at most 30/90/180/365 days old,
 *                                            cumulative; le_days="+Inf" = all tags
 *                                            (tags without a date count only there)
 *   nexus_docker_stale_tags{reason}          reason="never_downloaded": no asset of the
 *                                            tag was ever downloaded;
 *                                            reason="not_downloaded_recently": downloaded,
 *                                            but not within [database] stale_days
 *   nexus_docker_connector_port{scheme}      httpPort / httpsPort from repository.attributes
 *   nexus_docker_connector_port_mismatch{scheme}
 *        with [nexus] too: 1 when the database and REST (/v1/repositorySettings)
 *        disagree on that repository's port for the scheme (or only one has it),
 *        else 0; over the union of both views. When the REST call fails the
 *        comparison is left out for the cycle (logged), the rest still ships.
 * Per image, for the [database] top_images largest images of each
 * repository; the others are summed into image="_other" {repository,image}:
 *   nexus_docker_tags                        tags
 *   nexus_docker_image_size_bytes            manifests + distinct layers of the image
 *   nexus_docker_image_newest_tag_age_seconds, _oldest_tag_age_seconds
 *                                            (whole seconds at the cycle's timestamp)
 *
 * Image size: the manifest assets of its tags plus every distinct layer
 * blob (/v2/-/blobs/<digest> asset of the same repository) listed in a
 * manifest's attributes.docker.layers; manifests without that list count
 * their own bytes only. All aggregation runs in SQL; at most
 * repositories × (top_images + 1) rows come back.
 * State: struct db + the two settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../collector.h"
#include "../db.h"
#include "../log.h"
#include "../nexus_api.h"

static const struct metric_desc m_images = {"nexus_docker_images", MT_GAUGE,
                                            "Distinct docker images in the repository.", ""};
static const struct metric_desc m_by_age = {
    "nexus_docker_tags_by_age", MT_GAUGE,
    "Docker tags created at most le_days days ago (cumulative; +Inf = all tags).", ""};
static const struct metric_desc m_stale = {
    "nexus_docker_stale_tags", MT_GAUGE,
    "Docker tags never downloaded (reason=never_downloaded) or not downloaded within "
    "[database] stale_days (reason=not_downloaded_recently).",
    ""};
static const struct metric_desc m_port = {
    "nexus_docker_connector_port", MT_GAUGE,
    "Docker connector port of the repository as configured (repository.attributes).", ""};
static const struct metric_desc m_mismatch = {
    "nexus_docker_connector_port_mismatch", MT_GAUGE,
    "1 if the database and the REST API disagree on the repository's connector port for the "
    "scheme (or only one of them has it), else 0.",
    ""};
static const struct metric_desc m_tags = {
    "nexus_docker_tags", MT_GAUGE,
    "Tags of the docker image in the repository (top images by size; the rest as _other).", ""};
static const struct metric_desc m_isize = {
    "nexus_docker_image_size_bytes", MT_GAUGE,
    "Manifests plus distinct layers of the image (top images by size; _other sums the rest).",
    "bytes"};
static const struct metric_desc m_newest = {"nexus_docker_image_newest_tag_age_seconds", MT_GAUGE,
                                            "Age of the image's newest tag.", "seconds"};
static const struct metric_desc m_oldest = {"nexus_docker_image_oldest_tag_age_seconds", MT_GAUGE,
                                            "Age of the image's oldest tag.", "seconds"};

#define MAX_REPOS      100000
#define MAX_IMAGE_ROWS 1000000

struct state {
    struct db *db;
    struct nexus_api *api; /* with [nexus]: REST view of the ports; else NULL */
    char top[24];          /* top_images, as the query parameter */
    char stale[24];        /* stale_days */
};

static const char SQL_SUMMARY[] =
    "WITH t AS ("
    " SELECT c.repository_id, c.name, c.created, d.last_dl"
    " FROM docker_component c"
    " LEFT JOIN (SELECT component_id, max(last_downloaded) AS last_dl FROM docker_asset"
    "   WHERE component_id IS NOT NULL GROUP BY component_id) d"
    "   ON d.component_id = c.component_id)"
    " SELECT r.name, count(DISTINCT t.name),"
    " count(t.created) FILTER (WHERE t.created >= now() - interval '30 days'),"
    " count(t.created) FILTER (WHERE t.created >= now() - interval '90 days'),"
    " count(t.created) FILTER (WHERE t.created >= now() - interval '180 days'),"
    " count(t.created) FILTER (WHERE t.created >= now() - interval '365 days'),"
    " count(t.repository_id),"
    " count(t.repository_id) FILTER (WHERE t.last_dl IS NULL),"
    " count(t.repository_id) FILTER (WHERE t.last_dl < now() - make_interval(days => $1::int))"
    " FROM docker_content_repository cr"
    " JOIN repository r ON r.id = cr.config_repository_id"
    " LEFT JOIN t ON t.repository_id = cr.repository_id"
    " GROUP BY r.name ORDER BY r.name";

static const char SQL_IMAGES[] =
    "WITH img AS ("
    " SELECT repository_id, name, count(*) AS tags, min(created) AS oldest,"
    "  max(created) AS newest FROM docker_component GROUP BY repository_id, name),"
    " man AS ("
    " SELECT c.repository_id, c.name, sum(a.asset_blob_size) AS bytes"
    " FROM docker_component c JOIN docker_asset a ON a.component_id = c.component_id"
    " GROUP BY c.repository_id, c.name),"
    " lay AS ("
    " SELECT x.repository_id, x.name, sum(l.asset_blob_size) AS bytes FROM ("
    "  SELECT DISTINCT c.repository_id, c.name, g.digest"
    "  FROM docker_component c JOIN docker_asset a ON a.component_id = c.component_id"
    "  CROSS JOIN LATERAL jsonb_array_elements_text("
    "   CASE WHEN jsonb_typeof(a.attributes->'docker'->'layers') = 'array'"
    "   THEN a.attributes->'docker'->'layers' ELSE '[]'::jsonb END) g(digest)) x"
    " JOIN docker_asset l ON l.repository_id = x.repository_id"
    "  AND l.path = '/v2/-/blobs/' || x.digest"
    " GROUP BY x.repository_id, x.name),"
    " sized AS ("
    " SELECT img.*, coalesce(man.bytes, 0) + coalesce(lay.bytes, 0) AS bytes,"
    "  row_number() OVER (PARTITION BY img.repository_id"
    "   ORDER BY coalesce(man.bytes, 0) + coalesce(lay.bytes, 0) DESC, img.name) AS rnk"
    " FROM img LEFT JOIN man USING (repository_id, name) LEFT JOIN lay USING (repository_id, name))"
    " SELECT r.name, CASE WHEN s.rnk <= $1::int THEN s.name ELSE '_other' END AS image,"
    " sum(s.tags), sum(s.bytes), floor(extract(epoch FROM max(s.newest))),"
    " floor(extract(epoch FROM min(s.oldest)))"
    " FROM sized s JOIN docker_content_repository cr ON cr.repository_id = s.repository_id"
    " JOIN repository r ON r.id = cr.config_repository_id"
    " GROUP BY 1, 2 ORDER BY 1, 2";

static const char SQL_PORTS[] =
    "SELECT r.name, p.scheme, p.port FROM repository r"
    " CROSS JOIN LATERAL (VALUES ('http', r.attributes->'docker'->>'httpPort'),"
    "  ('https', r.attributes->'docker'->>'httpsPort')) p(scheme, port)"
    " WHERE r.attributes->'docker' IS NOT NULL AND p.port ~ '^[0-9]+$'"
    " ORDER BY 1, 2";

static int init(const struct config *cfg, void **out, struct err *e)
{
    struct state *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, "out of memory");
        return -1;
    }
    if (!(s->db = db_new(cfg->database, e))) {
        free(s);
        return -1;
    }
    if (cfg->nexus && !(s->api = nexus_api_new(cfg->nexus, e))) {
        db_free(s->db);
        free(s);
        return -1;
    }
    snprintf(s->top, sizeof s->top, "%lld", (long long)cfg->database->top_images);
    snprintf(s->stale, sizeof s->stale, "%lld", (long long)cfg->database->stale_days);
    *out = s;
    return 0;
}

static void destroy(void *p)
{
    struct state *s = p;
    if (s) {
        db_free(s->db);
        nexus_api_free(s->api);
        free(s);
    }
}

static int summary_row(void *ud, const PGresult *r, struct err *e)
{
    struct collect_ctx *ctx = ud;
    const char *repo = db_col_str(r, 0);
    static const char *const le[] = {"30", "90", "180", "365", "+Inf"};
    double v[8];
    (void)e;
    if (!repo)
        return 0;
    for (int i = 0; i < 8; i++)
        db_col_double(r, i + 1, &v[i]);
    if (coll_set(ctx, &m_images, v[0], "repository", repo, NULL) < 0)
        return -1;
    for (int i = 0; i < 5; i++)
        if (coll_set(ctx, &m_by_age, v[1 + i], "repository", repo, "le_days", le[i], NULL) < 0)
            return -1;
    if (coll_set(ctx, &m_stale, v[6], "repository", repo, "reason", "never_downloaded", NULL) < 0 ||
        coll_set(ctx, &m_stale, v[7], "repository", repo, "reason", "not_downloaded_recently",
                 NULL) < 0)
        return -1;
    return 0;
}

static int image_row(void *ud, const PGresult *r, struct err *e)
{
    struct collect_ctx *ctx = ud;
    const char *repo = db_col_str(r, 0), *img = db_col_str(r, 1);
    double tags, bytes, newest, oldest;
    (void)e;
    if (!repo || !img)
        return 0;
    db_col_double(r, 2, &tags);
    db_col_double(r, 3, &bytes);
    bool has_n = db_col_double(r, 4, &newest);
    bool has_o = db_col_double(r, 5, &oldest);
    double now = (double)(sb_cycle_ts(ctx->sb) / 1000); /* whole seconds, like the dates */
    if (coll_set(ctx, &m_tags, tags, "repository", repo, "image", img, NULL) < 0 ||
        coll_set(ctx, &m_isize, bytes, "repository", repo, "image", img, NULL) < 0 ||
        (has_n &&
         coll_set(ctx, &m_newest, now - newest, "repository", repo, "image", img, NULL) < 0) ||
        (has_o &&
         coll_set(ctx, &m_oldest, now - oldest, "repository", repo, "image", img, NULL) < 0))
        return -1;
    return 0;
}

struct ports {
    struct collect_ctx *ctx;
    struct docker_conn *v; /* database view: repository, port, https */
    size_t n;
};

static int port_row(void *ud, const PGresult *r, struct err *e)
{
    struct ports *p = ud;
    const char *repo = db_col_str(r, 0), *scheme = db_col_str(r, 1);
    double port;
    if (!repo || !scheme || !db_col_double(r, 2, &port))
        return 0;
    struct docker_conn *nv = realloc(p->v, (p->n + 1) * sizeof *nv);
    if (!nv || !(nv[p->n].repository = strdup(repo))) {
        if (nv)
            p->v = nv;
        err_set(e, "out of memory");
        return -1;
    }
    p->v = nv;
    nv[p->n].port = (int)port;
    nv[p->n].https = strcmp(scheme, "https") == 0;
    p->n++;
    return coll_set(p->ctx, &m_port, port, "repository", repo, "scheme", scheme, NULL);
}

static const struct docker_conn *find_conn(const struct docker_conn *v, size_t n, const char *repo,
                                           bool https)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].https == https && strcmp(v[i].repository, repo) == 0)
            return &v[i];
    return NULL;
}

/* Database ports (p) against REST ports: one mismatch sample per
 * (repository, scheme) of either view. */
static int compare_ports(struct state *s, struct ports *p, struct collect_ctx *ctx)
{
    struct docker_conn *rv = NULL;
    size_t rn = 0;
    struct err e2 = {{0}};
    if (nexus_docker_connectors(s->api, ctx->deadline_mono, &rv, &rn, &e2) < 0) {
        log_complain("db-docker-rest-ports",
                     "db_docker: connector ports not compared with REST this cycle: %s", e2.msg);
        return 0;
    }
    int rc = 0;
    for (int side = 0; side < 2 && rc == 0; side++) {
        const struct docker_conn *a = side ? rv : p->v, *b = side ? p->v : rv;
        size_t na = side ? rn : p->n, nb = side ? p->n : rn;
        for (size_t i = 0; i < na && rc == 0; i++) {
            const struct docker_conn *o = find_conn(b, nb, a[i].repository, a[i].https);
            if (side && o)
                continue; /* pair already reported from the database side */
            double mism = (o && o->port == a[i].port) ? 0 : 1;
            rc = coll_set(ctx, &m_mismatch, mism, "repository", a[i].repository, "scheme",
                          a[i].https ? "https" : "http", NULL);
        }
    }
    docker_conns_free(rv, rn);
    return rc;
}

static int collect(void *p, struct collect_ctx *ctx)
{
    struct state *s = p;
    char **fmts = NULL;
    size_t nf = 0;
    int rc = -1;
    if (db_formats(s->db, ctx->deadline_mono, &fmts, &nf, ctx->e) < 0)
        goto out;
    bool docker = false;
    for (size_t i = 0; i < nf; i++)
        docker = docker || strcmp(fmts[i], "docker") == 0;
    if (!docker) {
        rc = 0;
        goto out;
    }
    const char *p_stale[] = {s->stale};
    const char *p_top[] = {s->top};
    struct ports pv = {ctx, NULL, 0};
    if (db_query(s->db, "docker_summary", SQL_SUMMARY, 1, p_stale, MAX_REPOS, ctx->deadline_mono,
                 summary_row, ctx, ctx->e) < 0 ||
        db_query(s->db, "docker_images", SQL_IMAGES, 1, p_top, MAX_IMAGE_ROWS, ctx->deadline_mono,
                 image_row, ctx, ctx->e) < 0 ||
        db_query(s->db, "docker_ports", SQL_PORTS, 0, NULL, 2 * MAX_REPOS, ctx->deadline_mono,
                 port_row, &pv, ctx->e) < 0 ||
        (s->api && compare_ports(s, &pv, ctx) < 0)) {
        docker_conns_free(pv.v, pv.n);
        goto out;
    }
    docker_conns_free(pv.v, pv.n);
    rc = 0;
out:
    strv_free(fmts, nf);
    return rc;
}

const struct collector collector_db_docker = {
    .name = "db_docker",
    .enabled = db_collector_enabled,
    .init = init,
    .collect = collect,
    .destroy = destroy,
};
