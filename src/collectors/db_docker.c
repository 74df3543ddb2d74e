/* db_docker: docker images and tags from the Nexus database (the old exporter's
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
 *   (nexus_docker_tags and the two ages are declared in families.c: the
 *   same family and labels as nexus_components reports over REST)
 *
 * Image size: the manifest assets of its tags plus every distinct layer
 * blob (/v2/-/blobs/<digest> asset of the same repository) listed in a
 * manifest's attributes.docker.layers; manifests without that list count
 * their own bytes only. All aggregation runs in SQL, in the one query of
 * db_docker_sql.h (shared with db_cleanup_estimate within a cycle); at
 * most repositories × (top_images + 2) rows come back.
 * State: struct db, the query, and (with [cleanup]) the rules it renders. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "db.h"
#include "log.h"
#include "nexus_api.h"
#include "db_docker_sql.h"
#include "families.h"

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
static const struct metric_desc m_isize = {
    "nexus_docker_image_size_bytes", MT_GAUGE,
    "Manifests plus distinct layers of the image (top images by size; _other sums the rest).",
    "bytes"};

#define MAX_REPOS 100000

struct state {
    struct docker_src *src; /* with [cleanup], the estimate's query too (db_docker_sql.h) */
    struct nexus_api *api; /* with [nexus]: REST view of the ports; else NULL */
};

static const char SQL_PORTS[] =
    "SELECT r.name, p.scheme, p.port FROM repository r"
    " CROSS JOIN LATERAL (VALUES ('http', r.attributes->'docker'->>'httpPort'),"
    "  ('https', r.attributes->'docker'->>'httpsPort')) p(scheme, port)"
    " WHERE r.attributes->'docker' IS NOT NULL AND p.port ~ '^[0-9]+$'"
    " ORDER BY 1, 2";

static void destroy(void *p)
{
    struct state *s = p;
    if (s) {
        docker_src_free(s->src);
        nexus_api_free(s->api);
        free(s);
    }
}

static int init(const struct config *cfg, void **out, struct err *e)
{
    struct state *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, "out of memory");
        return -1;
    }
    /* with [cleanup], the query db_cleanup_estimate runs (same text, same
     * parameters): the second of the two in a cycle gets the rows of the
     * first. Rules it cannot use (db_cleanup_estimate is down for them)
     * leave the estimate out here. */
    if (!(s->src = docker_src_new(cfg, false, "db_docker", e)))
        goto fail;
    if (cfg->nexus && !(s->api = nexus_api_new(cfg->nexus, e)))
        goto fail;
    *out = s;
    return 0;
fail:
    destroy(s);
    return -1;
}

static int summary_row(struct collect_ctx *ctx, const PGresult *r, const char *repo)
{
    static const char *const le[] = {"30", "90", "180", "365", "+Inf"};
    double v;
    db_col_double(r, DQ_IMAGES, &v);
    if (coll_set(ctx, &m_images, v, "repository", repo, NULL) < 0)
        return -1;
    for (int i = 0; i < 5; i++) {
        db_col_double(r, i < 4 ? DQ_AGE + i : DQ_TAGS_ALL, &v);
        if (coll_set(ctx, &m_by_age, v, "repository", repo, "le_days", le[i], NULL) < 0)
            return -1;
    }
    db_col_double(r, DQ_NEVER, &v);
    if (coll_set(ctx, &m_stale, v, "repository", repo, "reason", "never_downloaded", NULL) < 0)
        return -1;
    db_col_double(r, DQ_OLD, &v);
    return coll_set(ctx, &m_stale, v, "repository", repo, "reason", "not_downloaded_recently",
                    NULL);
}

static int image_row(struct collect_ctx *ctx, const PGresult *r, const char *repo)
{
    const char *img = db_col_str(r, DQ_IMAGE);
    double tags = 0, bytes = 0, newest = 0, oldest = 0;
    if (!img)
        return 0;
    db_col_double(r, DQ_TAGS, &tags);
    db_col_double(r, DQ_BYTES, &bytes);
    bool has_n = db_col_double(r, DQ_NEWEST, &newest);
    bool has_o = db_col_double(r, DQ_OLDEST, &oldest);
    double now = (double)(sb_cycle_ts(ctx->sb) / 1000); /* whole seconds, like the dates */
    if (fam_docker_image(ctx, repo, img, tags, has_n, now - newest, has_o, now - oldest) < 0 ||
        coll_set(ctx, &m_isize, bytes, "repository", repo, "image", img, NULL) < 0)
        return -1;
    return 0;
}

static int docker_row(void *ud, const PGresult *r, struct err *e)
{
    struct collect_ctx *ctx = ud;
    const char *kind = db_col_str(r, DQ_KIND), *repo = db_col_str(r, DQ_REPO);
    (void)e;
    if (!kind || !repo)
        return 0;
    return kind[0] == 'R' ? summary_row(ctx, r, repo) : image_row(ctx, r, repo);
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
    if (db_formats(s->src->db, sb_cycle_ts(ctx->sb), ctx->deadline_mono, &fmts, &nf, ctx->e) < 0)
        goto out;
    bool docker = false;
    for (size_t i = 0; i < nf; i++)
        docker = docker || strcmp(fmts[i], "docker") == 0;
    if (!docker) {
        rc = 0;
        goto out;
    }
    struct ports pv = {ctx, NULL, 0};
    if (docker_sql_run(s->src->db, &s->src->q, ctx, docker_row, ctx) < 0 ||
        db_query(s->src->db, "docker_ports", SQL_PORTS, 0, NULL, 2 * MAX_REPOS, ctx->deadline_mono,
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
