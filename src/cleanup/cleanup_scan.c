/* The scan of a cleanup run (cleanup_int.h: cl_scan) over the registry
 * client (cleanup_registry.c): the catalog, every repository's tags, every
 * tag's manifest and the details of each distinct manifest (blobs, created
 * date from the cache, storage_path or a config GET). */
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "cleanup_int.h"
#include "log.h"
#include "progress.h"
#include "skopeo.h"

#define CATALOG_PAGE 100
#define MAX_PAGES    100000

static const char accept_manifests[] =
    "Accept: application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/* Queues a GET of the URL that fmt makes, for repository repo (token
 * scope "repository:REPO:pull" as the hint); the other arguments are
 * rm_submit's. Returns 0, or -1 (out of memory). */
static int submit_get(struct rm *rm, const char *repo, const char *accept, unsigned flags,
                      rm_done_fn done, void *ud, size_t a, size_t b, const char *fmt, ...)
    __attribute__((format(printf, 9, 10)));
static int submit_get(struct rm *rm, const char *repo, const char *accept, unsigned flags,
                      rm_done_fn done, void *ud, size_t a, size_t b, const char *fmt, ...)
{
    struct buf url, hint;
    buf_init(&url, 8192);
    buf_init(&hint, 1024);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&url, fmt, ap);
    va_end(ap);
    buf_printf(&hint, "repository:%s:pull", repo);
    int rc = buf_cstr(&url) && buf_cstr(&hint) &&
                     rm_submit(rm, "GET", url.data, hint.data, accept, flags, done, ud, a, b) == 0
                 ? 0
                 : -1;
    buf_free(&url);
    buf_free(&hint);
    return rc;
}

/* ---- scan ------------------------------------------------------------ */

static int list_catalog(struct reg *g, char ***names, size_t *n, struct cleanup_result *res,
                        struct err *e)
{
    struct buf url;
    buf_init(&url, 8192);
    struct http_response r;
    http_response_init(&r);
    int rc = -1;
    bool plain = false;
    buf_printf(&url, "%s/v2/_catalog?n=%d", g->base, CATALOG_PAGE);
    for (int page = 0; page < MAX_PAGES; page++) {
        if (!buf_cstr(&url) ||
            rm_request(g->rm, "GET", url.data, "registry:catalog:*", NULL, &r, e) < 0)
            goto out;
        if (r.status != 200) {
            /* catalog.maxentries below our page size: 2.8 answers 400
             * PAGINATION_NUMBER_INVALID; its own page size then applies */
            if (page == 0 && !plain && r.status == 400 && r.body.data &&
                strstr(r.body.data, "PAGINATION_NUMBER_INVALID")) {
                log_debug("cleanup: the registry refuses n=%d; using its page size", CATALOG_PAGE);
                buf_reset(&url);
                buf_printf(&url, "%s/v2/_catalog", g->base);
                plain = true;
                page = -1;
                continue;
            }
            char b[200];
            short_body(&r, b, sizeof b);
            err_set(e, "GET %s: HTTP %ld %s", url.data, r.status, b);
            goto out;
        }
        char **page_names = NULL;
        size_t np = 0;
        if (cl_parse_names(url.data, r.body.data, r.body.len, r.content_type, "repositories",
                           &page_names, &np, e) < 0) {
            strv_free(page_names, np);
            goto out;
        }
        for (size_t i = 0; i < np; i++) {
            if (!skopeo_valid_repository(page_names[i])) {
                char pb[120];
                cl_printable(page_names[i], pb, sizeof pb);
                log_error("cleanup: GET %s: skipping repository \"%s\": not a valid repository "
                          "name (path components [a-z0-9]+([._]|__|-*)[a-z0-9]+ separated by /)",
                          url.data, pb);
                res->errors++;
                continue;
            }
            char **nv = realloc(*names, (*n + 1) * sizeof *nv);
            if (!nv) {
                strv_free(page_names, np);
                err_set(e, "out of memory");
                goto out;
            }
            *names = nv;
            nv[(*n)++] = page_names[i];
            page_names[i] = NULL;
        }
        strv_free(page_names, np);
        if (!next_link(g, &r, &url))
            break;
    }
    rc = 0;
out:
    http_response_free(&r);
    buf_free(&url);
    return rc;
}

/* What a tag's manifest GET brought. */
struct tag_job {
    struct cl_repo *rp;
    struct cl_tag *t;
    struct cl_parsed_manifest pm;
    size_t size;
    bool ok;
};

/* One distinct manifest of a repository and the state of its details. */
struct man_job {
    struct cl_repo *rp;
    struct cl_manifest *m;
    const struct cl_parsed_manifest *pm; /* borrowed from a tag job */
    char error[256];
};

struct scan {
    struct reg *g;
    struct cleanup_result *res;
    struct tag_job *tj;
    size_t n_tj;
    struct man_job *mj;
    size_t n_mj;
    uint64_t cache_hits, disk_hits, shared;
    /* config GETs in flight by digest: later askers wait for the answer */
    struct pending {
        char *digest;
        struct cfg_ctx *waiters; /* NULL once answered */
    } * pend;
    size_t n_pend, cap_pend; /* open addressing, cap a power of 2 */
    FILE *progress;          /* run->ov->progress (NULL = none) */
    struct progress *pg;     /* repositories listed, tags read, then config/child GETs */
    uint64_t pg_done, pg_total;
};

static void scan_tick(struct scan *s)
{
    progress_update(s->pg, ++s->pg_done, NULL);
}

/* one more config/child GET sent (their total grows as indexes answer) */
static void scan_sent(struct scan *s)
{
    progress_set_total(s->pg, ++s->pg_total);
}

static void mj_fail(struct man_job *mj, const char *msg)
{
    if (!mj->error[0]) {
        snprintf(mj->error, sizeof mj->error, "%s", msg);
        log_error("cleanup: %s@%s: %s", mj->rp->name, mj->m->digest, msg);
    }
}

/* tags/list of repository q->a, page q->b */
static void cb_tags(struct rm *c, struct rm_req *q)
{
    (void)c;
    struct scan *s = q->ud;
    struct cl_repo *rp = &s->res->repos[q->a];
    struct err e = {{0}};
    if (q->status != 200) {
        if (q->b == 0 && q->status == 404 && q->r.body.data &&
            strstr(q->r.body.data, "NAME_UNKNOWN")) {
            log_debug("cleanup: %s: no tags (NAME_UNKNOWN)", rp->name);
            scan_tick(s);
            return; /* listed by the catalog, but without tags */
        }
        request_error(q, &e);
        goto fail;
    }
    char **tags = NULL;
    size_t nt = 0;
    if (cl_parse_names(q->url, q->r.body.data, q->r.body.len, q->r.content_type, "tags", &tags, &nt,
                       &e) < 0) {
        strv_free(tags, nt);
        goto fail;
    }
    struct cl_tag *nv = nt ? realloc(rp->tags, (rp->n_tags + nt) * sizeof *nv) : rp->tags;
    if (nt && !nv) {
        strv_free(tags, nt);
        err_set(&e, "out of memory");
        goto fail;
    }
    rp->tags = nv;
    for (size_t i = 0; i < nt; i++) {
        if (!skopeo_valid_tag(tags[i])) {
            /* never used in a URL; the repository is left alone, since the
             * bad tag may point at a digest another tag would delete */
            char pb[160];
            cl_printable(tags[i], pb, sizeof pb);
            log_error("cleanup: GET %s: skipping tag \"%s\": not a valid tag "
                      "([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}); nothing is deleted in %s",
                      q->url, pb, rp->name);
            snprintf(rp->error, sizeof rp->error, "invalid tag \"%.100s\" in the tags list", pb);
            continue;
        }
        memset(&rp->tags[rp->n_tags], 0, sizeof rp->tags[rp->n_tags]);
        rp->tags[rp->n_tags++].tag = tags[i];
        tags[i] = NULL;
    }
    strv_free(tags, nt);
    struct buf next;
    buf_init(&next, 8192);
    bool more = q->b + 1 < MAX_PAGES && next_link(s->g, &q->r, &next);
    if (more && rm_submit(c, "GET", next.data, q->hint, NULL, 0, cb_tags, s, q->a, q->b + 1) < 0)
        err_set(&e, "out of memory");
    buf_free(&next);
    if (!e.msg[0]) {
        if (!more)
            scan_tick(s);
        return;
    }
fail:
    snprintf(rp->error, sizeof rp->error, "%s", e.msg);
    log_error("cleanup: %s: cannot list tags: %s", rp->name, e.msg);
    scan_tick(s);
}

static void sha256_hex(const void *p, size_t n, char *out /* 72 */)
{
    unsigned char md[32];
    unsigned int ml = 0;
    EVP_Digest(p, n, md, &ml, EVP_sha256(), NULL);
    strcpy(out, "sha256:");
    for (unsigned i = 0; i < ml && i < 32; i++)
        sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

/* manifest of tag job q->a */
static void cb_manifest(struct rm *c, struct rm_req *q)
{
    (void)c;
    struct scan *s = q->ud;
    struct tag_job *tj = &s->tj[q->a];
    struct err e = {{0}};
    char digest[160];
    if (q->status != 200) {
        request_error(q, &e);
        goto fail;
    }
    if (!http_header(&q->r, "Docker-Content-Digest", digest, sizeof digest) || !digest[0])
        sha256_hex(q->r.body.data, q->r.body.len, digest);
    else if (!skopeo_valid_digest(digest)) {
        char pb[120];
        cl_printable(digest, pb, sizeof pb);
        err_set(&e, "GET %s: Docker-Content-Digest \"%s\" is not a valid digest", q->url, pb);
        goto fail;
    }
    if (cl_parse_manifest(q->url, q->r.body.data, q->r.body.len, q->r.content_type, &tj->pm, &e) <
        0)
        goto fail;
    if (!(tj->t->digest = strdup(digest))) {
        err_set(&e, "out of memory");
        goto fail;
    }
    tj->size = q->r.body.len;
    tj->ok = true;
    log_debug("cleanup: %s:%s -> %s (%s, %zu bytes)", tj->rp->name, tj->t->tag, digest,
              tj->pm.media_type, tj->size);
    scan_tick(s);
    return;
fail:
    snprintf(tj->t->error, sizeof tj->t->error, "%s", e.msg);
    log_error("cleanup: %s:%s: %s", tj->rp->name, tj->t->tag, e.msg);
    scan_tick(s);
}

/* Adds a blob to the image m unless m has it already; -1: out of memory. */
static int add_blob(struct cl_manifest *m, const char *digest, uint64_t size)
{
    for (size_t i = 0; i < m->n_blobs; i++)
        if (strcmp(m->blobs[i].digest, digest) == 0)
            return 0;
    return cl_blob_push(&m->blobs, &m->n_blobs, digest, size);
}

/* On the registry host (storage_path set), a config blob is read from the
 * registry's filesystem storage instead of over HTTP: one request less per
 * image. The content is verified against its sha256 digest; any problem
 * (other layout, missing file, mismatch) returns -1 and HTTP is used. */
static int created_from_disk(const struct reg *g, const char *digest, int64_t *created)
{
    if (!g->storage[0] || !cl_sha256_digest(digest))
        return -1; /* never a path from outside */
    const char *hex = digest + 7;
    char path[4096];
    snprintf(path, sizeof path, "%s/docker/registry/v2/blobs/sha256/%.2s/%s/data", g->storage, hex,
             hex);
    char *data = NULL;
    struct err e2;
    struct stat st;
    if (stat(path, &st) < 0 || st.st_size > (4 << 20) ||
        read_file(path, 4u << 20, false, &data, &e2) < 0)
        return -1;
    char got[72];
    sha256_hex(data, (size_t)st.st_size, got);
    int rc = strcmp(got, digest) == 0 &&
                     cl_parse_created(path, data, (size_t)st.st_size, "", created, &e2) == 0
                 ? 0
                 : -1;
    free(data);
    return rc;
}

/* A config blob's `created` (for image details of man job `mj`; `child`
 * non-NULL for a child of an index, with its blobs to remember). */
struct cfg_ctx {
    struct scan *s;
    size_t mj;
    char child[160];
    char config[160];
    struct cc_blob *blobs;
    size_t n_blobs;
    struct cfg_ctx *next; /* the next waiter for the same config */
};

static size_t pend_hash(const char *d)
{
    size_t h = 1469598103934665603u;
    for (; *d; d++)
        h = (h ^ (unsigned char)*d) * 1099511628211u;
    return h;
}

/* The pending entry for digest; created when absent if `create` (NULL:
 * out of memory, or absent). */
static struct pending *pend_get(struct scan *s, const char *digest, bool create)
{
    if (create && (s->n_pend + 1) * 2 > s->cap_pend) {
        size_t nc = s->cap_pend ? s->cap_pend * 2 : 1024;
        struct pending *nv = calloc(nc, sizeof *nv);
        if (!nv)
            return NULL;
        for (size_t i = 0; i < s->cap_pend; i++)
            if (s->pend[i].digest) {
                size_t k = pend_hash(s->pend[i].digest) & (nc - 1);
                while (nv[k].digest)
                    k = (k + 1) & (nc - 1);
                nv[k] = s->pend[i];
            }
        free(s->pend);
        s->pend = nv;
        s->cap_pend = nc;
    }
    if (!s->cap_pend)
        return NULL;
    size_t k = pend_hash(digest) & (s->cap_pend - 1);
    while (s->pend[k].digest && strcmp(s->pend[k].digest, digest) != 0)
        k = (k + 1) & (s->cap_pend - 1);
    if (!s->pend[k].digest) {
        if (!create)
            return NULL;
        if (!(s->pend[k].digest = strdup(digest)))
            return NULL;
        s->n_pend++;
    }
    return &s->pend[k];
}

static void pend_free(struct scan *s)
{
    for (size_t i = 0; i < s->cap_pend; i++)
        free(s->pend[i].digest);
    free(s->pend);
}

static void cfg_known(struct scan *s, struct cfg_ctx *x, int64_t created)
{
    struct man_job *mj = &s->mj[x->mj];
    if (x->child[0]) {
        cl_cache_put(s->g->cache, x->child, created, x->blobs, x->n_blobs);
        if (created > mj->m->created_ms) /* an index: the newest child */
            mj->m->created_ms = created;
        log_debug("cleanup: %s@%s: child %s created %lld", mj->rp->name, mj->m->digest, x->child,
                  (long long)created);
    } else
        mj->m->created_ms = created;
    free(x->blobs);
    free(x);
}

/* The answer to a config GET, for every manifest waiting for that config. */
static void cb_config(struct rm *c, struct rm_req *q)
{
    (void)c;
    struct cfg_ctx *x = q->ud;
    struct scan *s = x->s;
    struct err e = {{0}};
    int64_t created = 0;
    struct pending *p = pend_get(s, x->config, false);
    struct cfg_ctx *w = p && p->waiters ? p->waiters : x;
    if (p)
        p->waiters = NULL;
    bool ok = false;
    scan_tick(s);
    if (q->status != 200)
        request_error(q, &e);
    else if (cl_parse_created(q->url, q->r.body.data, q->r.body.len, q->r.content_type, &created,
                              &e) == 0) {
        cl_cache_put(s->g->cache, x->config, created, NULL, 0);
        ok = true;
    }
    while (w) {
        struct cfg_ctx *next = w->next;
        if (ok) {
            cfg_known(s, w, created);
        } else {
            mj_fail(&s->mj[w->mj], e.msg[0] ? e.msg : "out of memory");
            free(w->blobs);
            free(w);
        }
        w = next;
    }
}

/* Learns `created` of config `digest` for x: cache, disk, else a GET. */
static int want_config(struct scan *s, struct cfg_ctx *x, const char *digest)
{
    const struct cc_entry *ce = cl_cache_get(s->g->cache, digest);
    int64_t created;
    if (ce) {
        s->cache_hits++;
        cfg_known(s, x, ce->created_ms);
        return 0;
    }
    if (created_from_disk(s->g, digest, &created) == 0) {
        s->disk_hits++;
        cl_cache_put(s->g->cache, digest, created, NULL, 0);
        cfg_known(s, x, created);
        return 0;
    }
    struct man_job *mj = &s->mj[x->mj];
    snprintf(x->config, sizeof x->config, "%s", digest);
    /* the same config asked for by another manifest (a promotion or mirror
     * in another repository): wait for that answer, content is by digest */
    struct pending *p = pend_get(s, digest, true);
    if (!p) {
        mj_fail(mj, "out of memory");
        free(x->blobs);
        free(x);
        return -1;
    }
    x->next = p->waiters;
    p->waiters = x;
    if (x->next) {
        s->shared++;
        return 0;
    }
    int rc = submit_get(s->g->rm, mj->rp->name, NULL, RM_FOLLOW, cb_config, x, 0, 0,
                        "%s/v2/%s/blobs/%s", s->g->base, mj->rp->name, digest);
    if (rc == 0)
        scan_sent(s);
    if (rc < 0) {
        p->waiters = NULL;
        mj_fail(mj, "out of memory");
        free(x->blobs);
        free(x);
    }
    return rc;
}

static struct cfg_ctx *cfg_ctx_new(struct scan *s, size_t mj, const char *child)
{
    struct cfg_ctx *x = calloc(1, sizeof *x);
    if (!x) {
        mj_fail(&s->mj[mj], "out of memory");
        return NULL;
    }
    x->s = s;
    x->mj = mj;
    snprintf(x->child, sizeof x->child, "%s", child ? child : "");
    return x;
}

/* An image's blobs into the man job's manifest, then its config's date. */
static void image_blobs(struct scan *s, size_t i, const struct cl_parsed_manifest *pm,
                        const char *child)
{
    struct man_job *mj = &s->mj[i];
    for (size_t b = 0; b < pm->n_blobs; b++)
        if (add_blob(mj->m, pm->blobs[b].digest, pm->blobs[b].size) < 0) {
            mj_fail(mj, "out of memory");
            return;
        }
    struct cfg_ctx *x = cfg_ctx_new(s, i, child);
    if (!x)
        return;
    if (child && pm->n_blobs) { /* remembered with the child's date */
        if (!(x->blobs = calloc(pm->n_blobs, sizeof *x->blobs))) {
            free(x);
            mj_fail(mj, "out of memory");
            return;
        }
        for (size_t b = 0; b < pm->n_blobs; b++) {
            snprintf(x->blobs[b].digest, sizeof x->blobs[b].digest, "%s", pm->blobs[b].digest);
            x->blobs[b].size = pm->blobs[b].size;
        }
        x->n_blobs = pm->n_blobs;
    }
    if (pm->config[0])
        want_config(s, x, pm->config);
    else
        cfg_known(s, x, 0); /* no config: date unknown */
}

/* a child manifest of man job q->a (an index) */
static void cb_child(struct rm *c, struct rm_req *q)
{
    (void)c;
    struct scan *s = q->ud;
    struct man_job *mj = &s->mj[q->a];
    struct err e = {{0}};
    struct cl_parsed_manifest pm;
    scan_tick(s);
    if (q->status != 200) {
        request_error(q, &e);
        mj_fail(mj, e.msg);
        return;
    }
    if (cl_parse_manifest(q->url, q->r.body.data, q->r.body.len, q->r.content_type, &pm, &e) < 0) {
        mj_fail(mj, e.msg);
        return;
    }
    const char *child = mj->m->children[q->b];
    if (pm.is_index) /* nested indexes: blobs not followed */
        log_debug("cleanup: %s@%s: child %s is an index itself", mj->rp->name, mj->m->digest,
                  child);
    else
        image_blobs(s, q->a, &pm, child);
    cl_parsed_manifest_free(&pm);
}

/* Man job i: blobs and created date, from the cache, disk or requests. */
static void manifest_details(struct scan *s, size_t i)
{
    struct man_job *mj = &s->mj[i];
    struct cl_manifest *m = mj->m;
    const struct cl_parsed_manifest *pm = mj->pm;
    if (add_blob(m, m->digest, m->size) < 0) {
        mj_fail(mj, "out of memory");
        return;
    }
    if (!m->is_index) {
        image_blobs(s, i, pm, NULL);
        return;
    }
    for (size_t k = 0; k < pm->n_children; k++) {
        const char *d = pm->children[k];
        if (cl_strv_push(&m->children, &m->n_children, d) < 0 ||
            add_blob(m, d, pm->child_sizes[k]) < 0) {
            mj_fail(mj, "out of memory");
            break;
        }
        const struct cc_entry *ce = cl_cache_get(s->g->cache, d);
        if (ce) {
            s->cache_hits++;
            for (size_t b = 0; b < ce->n_blobs; b++)
                if (add_blob(m, ce->blobs[b].digest, ce->blobs[b].size) < 0)
                    mj_fail(mj, "out of memory");
            if (ce->created_ms > m->created_ms)
                m->created_ms = ce->created_ms;
            continue;
        }
        if (submit_get(s->g->rm, mj->rp->name, accept_manifests, 0, cb_child, s, i,
                       m->n_children - 1, "%s/v2/%s/manifests/%s", s->g->base, mj->rp->name,
                       d) < 0) {
            mj_fail(mj, "out of memory");
            break;
        }
        scan_sent(s);
    }
}

static int cmp_tag(const void *a, const void *b)
{
    return strcmp(((const struct cl_tag *)a)->tag, ((const struct cl_tag *)b)->tag);
}

static int cmp_repo(const void *a, const void *b)
{
    return strcmp(((const struct cl_repo *)a)->name, ((const struct cl_repo *)b)->name);
}

/* 0. the catalog, include/exclude_repositories applied, sorted into
 * res->repos. 1: the catalog could not be listed (status set), -1 out of
 * memory. */
static int scan_catalog(struct cl_run *run)
{
    struct cleanup_result *res = run->res;
    struct reg *g = run->g;
    char **names = NULL;
    size_t n_names = 0;
    int rc = -1;
    struct err ce = {{0}};
    if (list_catalog(g, &names, &n_names, res, &ce) < 0) {
        res->status = CL_FAILED;
        res->errors++;
        snprintf(res->message, sizeof res->message, "cannot list repositories: %s", ce.msg);
        log_error("cleanup: %s", res->message);
        rc = 1;
        goto out;
    }
    res->repos = calloc(n_names ? n_names : 1, sizeof *res->repos);
    if (!res->repos)
        goto out;
    for (size_t i = 0; i < n_names; i++) {
        if ((run->has_inc && regexec(&run->inc, names[i], 0, NULL, 0) != 0) ||
            (run->has_exc && regexec(&run->exc, names[i], 0, NULL, 0) == 0)) {
            log_debug("cleanup: %s: skipped (include/exclude_repositories)", names[i]);
            continue;
        }
        res->repos[res->n_repos++].name = names[i];
        names[i] = NULL;
    }
    if (res->n_repos)
        qsort(res->repos, res->n_repos, sizeof *res->repos, cmp_repo);
    rc = 0;
out:
    strv_free(names, n_names);
    return rc;
}

/* Runs a scan phase's requests to the end, then its final progress line. */
static void scan_wait(struct scan *sc)
{
    rm_run(sc->g->rm);
    progress_done(sc->pg, NULL);
    sc->pg = NULL;
}

/* 1. every repository's tags (pages chained by the callbacks) */
static int scan_tags(struct scan *sc)
{
    struct cleanup_result *res = sc->res;
    sc->pg = progress_new(sc->progress, "cleanup: listing tags", "repositories", res->n_repos);
    for (size_t r = 0; r < res->n_repos; r++) {
        if (submit_get(sc->g->rm, res->repos[r].name, NULL, 0, cb_tags, sc, r, 0,
                       "%s/v2/%s/tags/list", res->registry, res->repos[r].name) < 0)
            return -1;
    }
    scan_wait(sc);
    return 0;
}

/* 2. every tag's manifest */
static int scan_manifests(struct scan *sc)
{
    struct cleanup_result *res = sc->res;
    size_t nt = 0;
    for (size_t r = 0; r < res->n_repos; r++) {
        if (res->repos[r].n_tags > 1) /* tags is NULL for a repository without tags */
            qsort(res->repos[r].tags, res->repos[r].n_tags, sizeof *res->repos[r].tags, cmp_tag);
        nt += res->repos[r].n_tags;
    }
    sc->pg_done = 0;
    sc->pg = progress_new(sc->progress, "cleanup: reading manifests", "tags", nt);
    sc->tj = calloc(nt ? nt : 1, sizeof *sc->tj);
    if (!sc->tj)
        return -1;
    for (size_t r = 0; r < res->n_repos; r++) {
        struct cl_repo *rp = &res->repos[r];
        for (size_t i = 0; i < rp->n_tags; i++) {
            sc->tj[sc->n_tj] = (struct tag_job){.rp = rp, .t = &rp->tags[i]};
            if (submit_get(sc->g->rm, rp->name, accept_manifests, 0, cb_manifest, sc, sc->n_tj, 0,
                           "%s/v2/%s/manifests/%s", res->registry, rp->name, rp->tags[i].tag) < 0)
                return -1;
            sc->n_tj++;
        }
    }
    scan_wait(sc);
    return 0;
}

/* 3. distinct digests per repository: blobs and created dates */
static int scan_details(struct scan *sc)
{
    struct cleanup_result *res = sc->res;
    size_t nm = 0;
    for (size_t i = 0; i < sc->n_tj; i++) {
        struct tag_job *tj = &sc->tj[i];
        if (!tj->ok || cl_find_m(tj->rp, tj->t->digest))
            continue;
        struct cl_manifest *m = cl_add_m(tj->rp, tj->t->digest);
        if (!m || !(m->media_type = strdup(tj->pm.media_type)))
            return -1;
        m->size = tj->size;
        m->is_index = tj->pm.is_index;
        nm++;
    }
    sc->mj = calloc(nm ? nm : 1, sizeof *sc->mj);
    if (!sc->mj)
        return -1;
    /* a repository's tag jobs are contiguous: its manifests' bodies are there */
    for (size_t r = 0, first = 0; r < res->n_repos; first += res->repos[r++].n_tags)
        for (size_t i = 0; i < res->repos[r].n_m; i++) {
            struct man_job *mj = &sc->mj[sc->n_mj++];
            mj->rp = &res->repos[r];
            mj->m = &res->repos[r].m[i];
            for (size_t t = first; t < first + res->repos[r].n_tags; t++)
                if (sc->tj[t].ok && strcmp(sc->tj[t].t->digest, mj->m->digest) == 0) {
                    mj->pm = &sc->tj[t].pm;
                    break;
                }
        }
    sc->pg_done = 0;
    sc->pg = progress_new(sc->progress, "cleanup: reading configs", "requests", 0);
    for (size_t i = 0; i < sc->n_mj; i++)
        manifest_details(sc, i);
    scan_wait(sc);
    for (size_t i = 0; i < sc->n_mj; i++)
        if (sc->mj[i].error[0]) /* details unknown: keep it, and its repository untouched */
            snprintf(sc->mj[i].m->result, sizeof sc->mj[i].m->result, "!%.60s", sc->mj[i].error);
    return 0;
}

/* What the scan cost, the cache saved, and its errors counted. */
static void scan_done(struct cl_run *run, const struct scan *sc)
{
    struct cleanup_result *res = run->res;
    struct reg *g = run->g;
    const char *cache_file = cl_opt(run->ov->cache_file, NULL);
    size_t c_entries, c_skipped;
    uint64_t c_hits, c_misses;
    cl_cache_stats(g->cache, &c_entries, &c_skipped, &c_hits, &c_misses);
    log_info("cleanup: scan: %llu HTTP requests; created dates: %llu from the cache, %llu from "
             "storage_path, %llu shared with another manifest's config GET, the rest over HTTP "
             "(cache: %zu entries%s%s)",
             (unsigned long long)rm_requests(g->rm), (unsigned long long)sc->cache_hits,
             (unsigned long long)sc->disk_hits, (unsigned long long)sc->shared, c_entries,
             c_skipped ? ", bad lines skipped" : "", *cache_file ? "" : ", not kept");
    if (*cache_file) {
        struct err se = {{0}};
        if (cl_cache_save(g->cache, &se) < 0) /* only a cost for the next run */
            log_warn("cleanup: %s", se.msg);
    }
    for (size_t r = 0; r < res->n_repos; r++) {
        struct cl_repo *rp = &res->repos[r];
        if (rp->error[0])
            res->errors++;
        for (size_t i = 0; i < rp->n_tags; i++)
            if (rp->tags[i].error[0])
                res->errors++;
        for (size_t i = 0; i < rp->n_m; i++)
            if (rp->m[i].result[0] == '!')
                res->errors++;
    }
}

int cl_scan(struct cl_run *run)
{
    struct scan sc = {.g = run->g, .res = run->res, .progress = run->ov->progress};
    int rc = scan_catalog(run);
    if (rc != 0)
        return rc;
    rc = -1;
    if (scan_tags(&sc) < 0 || scan_manifests(&sc) < 0 || scan_details(&sc) < 0)
        goto out;
    scan_done(run, &sc);
    rc = 0;
out:
    progress_free(sc.pg); /* set only when a scan phase ended early */
    for (size_t i = 0; i < sc.n_tj; i++)
        cl_parsed_manifest_free(&sc.tj[i].pm);
    free(sc.tj);
    free(sc.mj);
    pend_free(&sc);
    return rc;
}
