/* nexus_components: repository sizes and docker tags over REST (the old exporter's
 * repo_size and docker_tags), the fallback when no database is configured.
 *
 * GET /service/rest/v1/repositories, then for every hosted and proxy
 * repository (groups only repeat their members) GET
 * /service/rest/v1/components?repository=NAME paging through
 * continuationToken, at most MAX_PAGES pages per repository.
 *
 *   nexus_repository_components{repository,format}   components
 *   nexus_repository_assets{repository,format}       assets
 *   nexus_repository_size_bytes{repository,format}   sum of the assets' fileSize
 *        (the labels of db_repositories: families.c declares these)
 *   nexus_repository_listing_truncated{repository}
 *        1 when the page limit stopped the listing: the three above are
 *        then left out for that repository (never a partial count), else 0
 *   nexus_docker_tags{repository,image}       tags (components) of a docker image
 *   nexus_docker_image_newest_tag_age_seconds{repository,image}
 *   nexus_docker_image_oldest_tag_age_seconds{repository,image}
 *        age at the cycle's timestamp of the image's newest / oldest tag; a
 *        tag's time is the earliest blobCreated (else lastModified) of its
 *        assets; left out when no asset carries a date
 *
 * This reads every component of every repository each cycle: fine for
 * thousands, slow for millions (the database collector is the scalable
 * path; a warning says so once, at the first cycle). With [database] present this
 * collector is off: db_repositories and db_docker report these families
 * from SQL aggregates instead (the database view wins; no duplicate
 * series). State: nexus_api, owned. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "log.h"
#include "nexus_api.h"
#include "families.h"

static const struct metric_desc m_trunc = {
    "nexus_repository_listing_truncated", MT_GAUGE,
    "1 if the component listing of the repository hit the page limit (sizes then not "
    "reported), else 0.",
    ""};

/* [nexus] components_max_pages (default 200: 20,000 components at 100 a page) */
#define MAX_PAGES ((int)a->cfg->components_max_pages)

struct image {
    char *name; /* owned */
    uint64_t tags;
    int64_t newest, oldest; /* ms; 0 = no date seen */
};

struct walk {
    bool docker;
    uint64_t comps, assets;
    double bytes;
    struct image *img; /* open addressing, cap a power of two */
    size_t nimg, cap;
    struct err *e;
};

static bool enabled(const struct config *cfg)
{
    return cfg->nexus && !cfg->database;
}

static int init(const struct config *cfg, void **state, struct err *e)
{
    struct nexus_api *a = nexus_api_new(cfg->nexus, e);
    *state = a;
    return *state ? 0 : -1;
}

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void walk_reset(struct walk *w)
{
    for (size_t i = 0; i < w->cap; i++)
        free(w->img[i].name);
    free(w->img);
    w->img = NULL;
    w->nimg = w->cap = 0;
    w->comps = w->assets = 0;
    w->bytes = 0;
}

/* Finds or adds image `name`; NULL on OOM. */
static struct image *image_get(struct walk *w, const char *name)
{
    if ((w->nimg + 1) * 2 > w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 64;
        struct image *t = calloc(nc, sizeof *t);
        if (!t)
            return NULL;
        for (size_t i = 0; i < w->cap; i++) {
            if (!w->img[i].name)
                continue;
            size_t j = hash_str(w->img[i].name) & (nc - 1);
            while (t[j].name)
                j = (j + 1) & (nc - 1);
            t[j] = w->img[i];
        }
        free(w->img);
        w->img = t;
        w->cap = nc;
    }
    size_t j = hash_str(name) & (w->cap - 1);
    while (w->img[j].name) {
        if (strcmp(w->img[j].name, name) == 0)
            return &w->img[j];
        j = (j + 1) & (w->cap - 1);
    }
    if (!(w->img[j].name = strdup(name)))
        return NULL;
    w->nimg++;
    return &w->img[j];
}

static int page(void *ud, struct jdec *d, json_object *items, size_t n)
{
    struct walk *w = ud;
    for (size_t i = 0; i < n; i++) {
        size_t m = jd_push_index(d, i);
        json_object *c, *assets;
        const char *name;
        size_t na;
        if (jd_object(d, json_object_array_get_idx(items, i), NULL, 0, &c) < 0 ||
            jd_string(d, c, "name", 0, &name) < 0 || jd_array(d, c, "assets", 0, &assets, &na) < 0)
            return -1;
        int64_t when = 0;
        size_t m2 = jd_push_key(d, "assets");
        for (size_t k = 0; k < na; k++) {
            size_t m3 = jd_push_index(d, k);
            json_object *a;
            int64_t size = 0, t = 0;
            int got;
            if (jd_object(d, json_object_array_get_idx(assets, k), NULL, 0, &a) < 0 ||
                jd_int64(d, a, "fileSize", JD_MAYBE, &size) < 0 ||
                (got = jd_time_ms(d, a, "blobCreated", JD_MAYBE, &t)) < 0 ||
                (!got && (got = jd_time_ms(d, a, "lastModified", JD_MAYBE, &t)) < 0))
                return -1;
            if (size < 0)
                return jd_fail(d, "fileSize", "negative size %lld", (long long)size);
            w->bytes += (double)size;
            if (got && (!when || t < when))
                when = t;
            jd_pop(d, m3);
        }
        jd_pop(d, m2);
        w->comps++;
        w->assets += na;
        if (w->docker) {
            struct image *im = image_get(w, name);
            if (!im) {
                err_set(w->e, "out of memory");
                return -1;
            }
            im->tags++;
            if (when && (!im->newest || when > im->newest))
                im->newest = when;
            if (when && (!im->oldest || when < im->oldest))
                im->oldest = when;
        }
        jd_pop(d, m);
    }
    return 0;
}

static int one_repo(struct nexus_api *a, struct collect_ctx *ctx, struct walk *w, const char *name,
                    const char *format)
{
    struct buf path;
    buf_init(&path, 0);
    int rc = -1;
    bool docker = strcmp(format, "docker") == 0;
    walk_reset(w);
    w->docker = docker;
    w->e = ctx->e;
    if (buf_puts(&path, "/service/rest/v1/components?repository=") < 0 ||
        url_escape(name, &path) < 0) {
        err_set(ctx->e, "out of memory");
        goto out;
    }
    bool truncated = false;
    if (nexus_get_pages(a, path.data, ctx->deadline_mono, MAX_PAGES, page, w, &truncated, ctx->e) <
        0)
        goto out;
    if (coll_set(ctx, &m_trunc, truncated ? 1 : 0, "repository", name, NULL) < 0)
        goto out;
    if (truncated) {
        log_complain("nexus-components-truncated",
                     "nexus_components: repository %s has more than %d pages of components; "
                     "its size is not reported (use the database collector)",
                     name, MAX_PAGES);
    } else if (fam_repository_sizes(ctx, name, format, (double)w->comps, (double)w->assets,
                                    w->bytes) < 0) {
        goto out;
    }
    if (docker && !truncated) {
        double now = (double)sb_cycle_ts(ctx->sb);
        for (size_t i = 0; i < w->cap; i++) {
            struct image *im = &w->img[i];
            if (!im->name)
                continue;
            bool dated = im->newest != 0;
            if (fam_docker_image(ctx, name, im->name, (double)im->tags, dated,
                                 (now - (double)im->newest) / 1000.0, dated,
                                 (now - (double)im->oldest) / 1000.0) < 0)
                goto out;
        }
    }
    rc = 0;
out:
    buf_free(&path);
    return rc;
}

static int collect(void *state, struct collect_ctx *ctx)
{
    struct nexus_api *a = state;
    struct nexus_repo *repos = NULL;
    size_t n = 0;
    struct walk w = {0};
    int rc = -1;
    /* once per process (not per reload, never from check-config, which collects nothing) */
    log_once("nexus_components-rest", LOG_WARN,
             "nexus_components: repository sizes and docker tags are read by paging "
             "/service/rest/v1/components (at most %d pages per repository); on big "
             "instances the database collector is the scalable path",
             MAX_PAGES);
    if (nexus_list_repositories(a, ctx->deadline_mono, NULL, NULL, &repos, &n, ctx->e) < 0)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (one_repo(a, ctx, &w, repos[i].name, repos[i].format) < 0)
            goto out;
    rc = 0;
out:
    walk_reset(&w);
    nexus_repos_free(repos, n);
    return rc;
}

const struct collector collector_nexus_components = {
    .name = "nexus_components",
    .enabled = enabled,
    .init = init,
    .collect = collect,
    .destroy = nexus_collector_destroy,
};
