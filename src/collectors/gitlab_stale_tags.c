/* gitlab_stale_tags: docker tags whose branch or git tag is gone from
 * GitLab (the old exporter's docker_tags + api_gitlab). Needs [nexus] and [gitlab].
 *
 * 1. Nexus: every hosted docker repository's components
 *    (GET /service/rest/v1/components?repository=R; docker name = image,
 *    version = tag). Proxy repositories hold upstream images, groups
 *    repeat their members: both are skipped.
 * 2. Image -> project: the image name with [gitlab] image_prefix removed
 *    (images without that prefix are skipped) is a project path
 *    (path_with_namespace, compared case-insensitively).
 * 3. GitLab: the projects ([gitlab] projects, each by path or id via
 *    GET /api/v4/projects/:id, a 404 meaning "gone"; or, when the list is
 *    empty, every project the token sees via GET /api/v4/projects), then
 *    for each project that has images its branches and tags
 *    (/repository/branches, /repository/tags), all paged.
 * 4. A docker tag is current when it is "latest", or equals a branch or
 *    git tag name or its CI_COMMIT_REF_SLUG, or is such a name followed by
 *    "-<7 to 40 hex digits>" (a commit suffix), or "v" + tag is a git tag.
 *    Anything else is stale; every tag of an image whose project is gone
 *    is stale.
 *
 *   nexus_gitlab_stale_tags{repository,image,project}         stale tags of the image
 *        (its own family: db_docker's nexus_docker_stale_tags{reason}
 *        counts tags nobody downloads, a different question)
 *   nexus_docker_image_gitlab_project_exists{repository,image,project}
 *                                                              1 project found, 0 gone
 *
 * Images mapped to a project outside a configured [gitlab] projects list
 * are not judged. Stale tag names are logged at debug level. Any malformed
 * answer fails the collector. State: struct stale (nexus_api + gitlab_api), owned. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collector.h"
#include "gitlab_api.h"
#include "log.h"
#include "nexus_api.h"

static const struct metric_desc m_stale = {
    "nexus_gitlab_stale_tags", MT_GAUGE,
    "Tags of the docker image whose branch or git tag no longer exists in the GitLab project.", ""};
static const struct metric_desc m_exists = {
    "nexus_docker_image_gitlab_project_exists", MT_GAUGE,
    "1 if the GitLab project the docker image maps to exists, 0 if it is gone.", ""};

#define MAX_NEXUS_PAGES  200
#define MAX_GITLAB_PAGES 100

struct stale {
    const struct cfg_gitlab *cfg;
    struct nexus_api *nx;
    struct gitlab_api *gl;
};

struct pair {
    char *image, *tag; /* owned */
};

struct project {
    long id;
    char *path; /* path_with_namespace, owned */
    bool gone;  /* configured but 404 */
    bool refs_loaded;
    char **refs; /* branch and tag names, owned */
    size_t nrefs, capr;
};

struct run {
    struct stale *s;
    struct collect_ctx *ctx;
    struct pair *pairs;
    size_t npairs, cappairs;
    struct project *proj;
    size_t nproj, capproj;
};

static bool enabled(const struct config *cfg)
{
    return cfg->gitlab != NULL && cfg->nexus != NULL;
}

static void destroy(void *state)
{
    struct stale *s = state;
    if (!s)
        return;
    nexus_api_free(s->nx);
    gitlab_api_free(s->gl);
    free(s);
}

static int init(const struct config *cfg, void **state, struct err *e)
{
    struct stale *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, "out of memory");
        return -1;
    }
    s->cfg = cfg->gitlab;
    if (!(s->nx = nexus_api_new(cfg->nexus, e)) || !(s->gl = gitlab_api_new(cfg->gitlab, e))) {
        destroy(s);
        return -1;
    }
    *state = s;
    return 0;
}

static void run_free(struct run *r)
{
    for (size_t i = 0; i < r->npairs; i++) {
        free(r->pairs[i].image);
        free(r->pairs[i].tag);
    }
    free(r->pairs);
    for (size_t i = 0; i < r->nproj; i++) {
        free(r->proj[i].path);
        for (size_t k = 0; k < r->proj[i].nrefs; k++)
            free(r->proj[i].refs[k]);
        free(r->proj[i].refs);
    }
    free(r->proj);
}

/* ---- Nexus side ------------------------------------------------------ */

static int component_page(void *ud, struct jdec *d, json_object *items, size_t n)
{
    struct run *r = ud;
    for (size_t i = 0; i < n; i++) {
        size_t m = jd_push_index(d, i);
        json_object *c;
        const char *name, *version = NULL;
        if (jd_object(d, json_object_array_get_idx(items, i), NULL, 0, &c) < 0 ||
            jd_string(d, c, "name", 0, &name) < 0 ||
            jd_string(d, c, "version", JD_MAYBE, &version) < 0)
            return -1;
        jd_pop(d, m);
        if (!version || !*version)
            continue;
        struct pair *nv = array_grow(r->pairs, &r->cappairs, r->npairs, sizeof *nv, 256);
        if (!nv)
            goto oom;
        r->pairs = nv;
        struct pair *p = &r->pairs[r->npairs];
        p->image = strdup(name);
        p->tag = strdup(version);
        if (!p->image || !p->tag) {
            free(p->image);
            free(p->tag);
            goto oom;
        }
        r->npairs++;
    }
    return 0;
oom:
    err_set(r->ctx->e, "out of memory");
    return -1;
}

static int cmp_pair(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    int c = strcmp(x->image, y->image);
    return c ? c : strcmp(x->tag, y->tag);
}

/* ---- GitLab side ----------------------------------------------------- */

static struct project *project_add(struct run *r, long id, const char *path, bool gone)
{
    for (size_t i = 0; i < r->nproj; i++)
        if (strcasecmp(r->proj[i].path, path) == 0)
            return &r->proj[i];
    if (r->nproj == r->capproj) {
        size_t nc = r->capproj ? r->capproj * 2 : 64;
        struct project *nv = realloc(r->proj, nc * sizeof *nv);
        if (!nv)
            return NULL;
        r->proj = nv;
        r->capproj = nc;
    }
    struct project *p = &r->proj[r->nproj];
    memset(p, 0, sizeof *p);
    if (!(p->path = strdup(path)))
        return NULL;
    p->id = id;
    p->gone = gone;
    r->nproj++;
    return p;
}

/* Reads id and path_with_namespace of one project object. */
static int project_fields(struct jdec *d, json_object *o, long *id, const char **path)
{
    json_object *p;
    int64_t v;
    if (jd_object(d, o, NULL, 0, &p) < 0 || jd_int64(d, p, "id", 0, &v) < 0 ||
        jd_string(d, p, "path_with_namespace", 0, path) < 0)
        return -1;
    *id = (long)v;
    return 0;
}

static int projects_page(void *ud, struct jdec *d, json_object *arr, size_t n)
{
    struct run *r = ud;
    for (size_t i = 0; i < n; i++) {
        size_t m = jd_push_index(d, i);
        long id;
        const char *path;
        if (project_fields(d, json_object_array_get_idx(arr, i), &id, &path) < 0)
            return -1;
        if (!project_add(r, id, path, false)) {
            err_set(r->ctx->e, "out of memory");
            return -1;
        }
        jd_pop(d, m);
    }
    return 0;
}

static int load_projects(struct run *r)
{
    struct stale *s = r->s;
    struct collect_ctx *ctx = r->ctx;
    if (!s->cfg->projects.n) {
        bool trunc = false;
        if (gitlab_get_pages(s->gl, "/projects?simple=true", ctx->deadline_mono, MAX_GITLAB_PAGES,
                             projects_page, r, &trunc, ctx->e) < 0)
            return -1;
        if (trunc) {
            err_set(ctx->e, "GET /api/v4/projects: more than %d pages; list [gitlab] projects",
                    MAX_GITLAB_PAGES);
            return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < s->cfg->projects.n; i++) {
        const char *want = s->cfg->projects.v[i];
        struct buf path;
        buf_init(&path, 0);
        json_object *j = NULL;
        long status = 0;
        int rc = -1;
        if (buf_puts(&path, "/projects/") < 0 || url_escape(want, &path) < 0) {
            err_set(ctx->e, "out of memory");
            goto next;
        }
        if (gitlab_get_json(s->gl, path.data, ctx->deadline_mono, &j, &status, ctx->e) < 0) {
            if (status == 404) {
                bool numeric = *want != '\0';
                for (const char *c = want; *c; c++)
                    numeric &= isdigit((unsigned char)*c) != 0;
                if (numeric) {
                    log_complain("gitlab-project-gone", "gitlab: project %s not found", want);
                    rc = 0;
                } else {
                    rc = project_add(r, 0, want, true) ? 0 : -1;
                    if (rc < 0)
                        err_set(ctx->e, "out of memory");
                }
            }
            goto next;
        }
        char what[600];
        snprintf(what, sizeof what, "GET /api/v4%s", path.data);
        struct jdec d;
        jd_init(&d, what, ctx->e);
        long id;
        const char *pw;
        if (project_fields(&d, j, &id, &pw) < 0)
            goto next;
        if (!project_add(r, id, pw, false)) {
            err_set(ctx->e, "out of memory");
            goto next;
        }
        rc = 0;
    next:
        json_object_put(j);
        buf_free(&path);
        if (rc < 0)
            return -1;
    }
    return 0;
}

struct refs_walk {
    struct project *p;
    struct err *e;
};

static int refs_page(void *ud, struct jdec *d, json_object *arr, size_t n)
{
    struct refs_walk *w = ud;
    struct project *p = w->p;
    for (size_t i = 0; i < n; i++) {
        size_t m = jd_push_index(d, i);
        json_object *o;
        const char *name;
        if (jd_object(d, json_object_array_get_idx(arr, i), NULL, 0, &o) < 0 ||
            jd_string(d, o, "name", 0, &name) < 0)
            return -1;
        jd_pop(d, m);
        if (p->nrefs == p->capr) {
            size_t nc = p->capr ? p->capr * 2 : 32;
            char **nv = realloc(p->refs, nc * sizeof *nv);
            if (!nv)
                goto oom;
            p->refs = nv;
            p->capr = nc;
        }
        if (!(p->refs[p->nrefs] = strdup(name)))
            goto oom;
        p->nrefs++;
    }
    return 0;
oom:
    err_set(w->e, "out of memory");
    return -1;
}

static int load_refs(struct run *r, struct project *p)
{
    static const char *const kinds[] = {"branches", "tags"};
    for (int k = 0; k < 2; k++) {
        char path[128];
        snprintf(path, sizeof path, "/projects/%ld/repository/%s", p->id, kinds[k]);
        struct refs_walk w = {p, r->ctx->e};
        bool trunc = false;
        if (gitlab_get_pages(r->s->gl, path, r->ctx->deadline_mono, MAX_GITLAB_PAGES, refs_page, &w,
                             &trunc, r->ctx->e) < 0)
            return -1;
        if (trunc) {
            err_set(r->ctx->e, "GET /api/v4%s: more than %d pages", path, MAX_GITLAB_PAGES);
            return -1;
        }
    }
    p->refs_loaded = true;
    return 0;
}

/* ---- matching -------------------------------------------------------- */

/* GitLab's CI_COMMIT_REF_SLUG: lower case, [^a-z0-9] -> '-', 63 bytes, no
 * leading or trailing '-'. */
static void ref_slug(const char *ref, char *out, size_t n)
{
    size_t k = 0;
    for (const char *p = ref; *p && k + 1 < n && k < 63; p++) {
        unsigned char c = (unsigned char)tolower((unsigned char)*p);
        out[k++] = (isalnum(c) && c < 0x80) ? (char)c : '-';
    }
    while (k && out[k - 1] == '-')
        k--;
    out[k] = '\0';
    size_t lead = strspn(out, "-");
    if (lead)
        memmove(out, out + lead, k - lead + 1);
}

static bool ref_matches(const struct project *p, const char *name, size_t len)
{
    char slug[80];
    for (size_t i = 0; i < p->nrefs; i++) {
        const char *ref = p->refs[i];
        if (strlen(ref) == len && strncmp(ref, name, len) == 0)
            return true;
        ref_slug(ref, slug, sizeof slug);
        if (strlen(slug) == len && strncmp(slug, name, len) == 0)
            return true;
        if (ref[0] == 'v' && strlen(ref + 1) == len && strncmp(ref + 1, name, len) == 0)
            return true;
    }
    return false;
}

static bool tag_current(const struct project *p, const char *tag)
{
    if (strcmp(tag, "latest") == 0)
        return true;
    size_t len = strlen(tag);
    if (ref_matches(p, tag, len))
        return true;
    const char *dash = strrchr(tag, '-');
    if (dash && dash > tag) {
        size_t hl = strlen(dash + 1);
        bool hex = hl >= 7 && hl <= 40;
        for (const char *c = dash + 1; *c && hex; c++)
            hex = isxdigit((unsigned char)*c) && !isupper((unsigned char)*c);
        if (hex && ref_matches(p, tag, (size_t)(dash - tag)))
            return true;
    }
    return false;
}

static struct project *find_project(struct run *r, const char *path)
{
    for (size_t i = 0; i < r->nproj; i++)
        if (strcasecmp(r->proj[i].path, path) == 0)
            return &r->proj[i];
    return NULL;
}

/* Judges the tags pairs[from..to) of one image in `repo`. */
static int judge(struct run *r, const char *repo, size_t from, size_t to)
{
    struct collect_ctx *ctx = r->ctx;
    const char *image = r->pairs[from].image;
    const char *prefix = r->s->cfg->image_prefix ? r->s->cfg->image_prefix : "";
    if (*prefix && !str_has_prefix(image, prefix))
        return 0;
    const char *path = image + strlen(prefix);
    struct project *p = find_project(r, path);
    if (!p) {
        if (r->s->cfg->projects.n)
            return 0; /* not one of the configured projects: not ours to judge */
        /* every project the token sees is known: this one is gone */
        if (!(p = project_add(r, 0, path, true))) {
            err_set(ctx->e, "out of memory");
            return -1;
        }
    }
    if (!p->gone && !p->refs_loaded && load_refs(r, p) < 0)
        return -1;
    size_t stale = 0;
    for (size_t i = from; i < to; i++) {
        if (i > from && strcmp(r->pairs[i].tag, r->pairs[i - 1].tag) == 0)
            continue;
        if (p->gone || !tag_current(p, r->pairs[i].tag)) {
            stale++;
            log_debug("gitlab_stale_tags: %s/%s:%s is stale (project %s%s)", repo, image,
                      r->pairs[i].tag, p->path, p->gone ? " is gone" : "");
        }
    }
    if (coll_set(ctx, &m_stale, (double)stale, "repository", repo, "image", image, "project",
                 p->path, NULL) < 0 ||
        coll_set(ctx, &m_exists, p->gone ? 0 : 1, "repository", repo, "image", image, "project",
                 p->path, NULL) < 0)
        return -1;
    return 0;
}

static void pairs_clear(struct run *r)
{
    for (size_t i = 0; i < r->npairs; i++) {
        free(r->pairs[i].image);
        free(r->pairs[i].tag);
    }
    r->npairs = 0;
}

static int collect(void *state, struct collect_ctx *ctx)
{
    struct stale *s = state;
    struct run r = {.s = s, .ctx = ctx};
    struct nexus_repo *repos = NULL;
    size_t n = 0;
    struct buf path;
    buf_init(&path, 0);
    int rc = -1;
    if (nexus_list_repositories(s->nx, ctx->deadline_mono, "docker", "hosted", &repos, &n,
                                ctx->e) < 0)
        goto out;
    bool projects_loaded = false;
    for (size_t i = 0; i < n; i++) {
        const char *name = repos[i].name;
        buf_reset(&path);
        if (buf_puts(&path, "/service/rest/v1/components?repository=") < 0 ||
            url_escape(name, &path) < 0) {
            err_set(ctx->e, "out of memory");
            goto out;
        }
        pairs_clear(&r);
        bool trunc = false;
        if (nexus_get_pages(s->nx, path.data, ctx->deadline_mono, MAX_NEXUS_PAGES, component_page,
                            &r, &trunc, ctx->e) < 0)
            goto out;
        if (trunc) {
            log_complain("gitlab-stale-truncated",
                         "gitlab_stale_tags: repository %s has more than %d pages of components; "
                         "skipped",
                         name, MAX_NEXUS_PAGES);
            continue;
        }
        if (!r.npairs)
            continue;
        if (!projects_loaded) {
            if (load_projects(&r) < 0)
                goto out;
            projects_loaded = true;
        }
        if (r.npairs)
            qsort(r.pairs, r.npairs, sizeof *r.pairs, cmp_pair);
        for (size_t a = 0, b; a < r.npairs; a = b) {
            for (b = a + 1; b < r.npairs && strcmp(r.pairs[b].image, r.pairs[a].image) == 0; b++) {
            }
            if (judge(&r, name, a, b) < 0)
                goto out;
        }
    }
    rc = 0;
out:
    run_free(&r);
    buf_free(&path);
    nexus_repos_free(repos, n);
    return rc;
}

const struct collector collector_gitlab_stale_tags = {
    .name = "gitlab_stale_tags",
    .enabled = enabled,
    .init = init,
    .collect = collect,
    .destroy = destroy,
};
