#include "cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "cleanup_cache.h"
#include "http.h"
#include "json_util.h"
#include "log.h"
#include "proc.h"
#include "regmulti.h"
#include "skopeo.h"

#define CATALOG_PAGE 100
#define MAX_PAGES    100000
/* post_gc_command after a stop: it may make the registry writable again */
#define POST_GC_STOPPED_MS 10000

static const char accept_manifests[] =
    "Accept: application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

void cleanup_opts_defaults(struct cleanup_opts *o)
{
    memset(o, 0, sizeof *o);
    o->container = "registry";
    o->registry_config = "/etc/docker/registry/config.yml";
    o->gc_command = "";
    o->pre_gc_command = "";
    o->post_gc_command = "";
    o->storage_path = "";
    o->log_file = "";
    o->include_repositories = "";
    o->exclude_repositories = "";
    o->max_deletions = 0;
    o->concurrency = 4;
    o->timeout_ms = 30000;
    o->ca_file = "";
    o->cache_file = "";
}

const char *cl_status_name(enum cl_status s)
{
    switch (s) {
    case CL_OK:
        return "success";
    case CL_FAILED:
        return "failure";
    case CL_ABORTED_MAX:
        return "aborted_max_deletions";
    case CL_DELETE_DISABLED:
        return "delete_disabled";
    }
    return "?";
}

const char *cl_reason_name(int r)
{
    if (r == CL_REASON_DELETE)
        return "delete";
    if (r > 0 && r <= KEEP_YOUNG)
        return keep_reason_name((enum keep_reason)r);
    if (r == CL_REASON_SHARED)
        return "shared_digest";
    if (r == CL_REASON_INDEX_CHILD)
        return "index_child";
    if (r == CL_REASON_ERROR)
        return "error";
    return "?";
}

int64_t cl_parse_time(const char *s)
{
    int64_t ms;
    if (!s || parse_iso8601_ms(s, &ms) < 0)
        return -1;
    return ms;
}

static int strv_push(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return -1;
    *v = nv;
    if (!(nv[*n] = strdup(s)))
        return -1;
    (*n)++;
    return 0;
}

/* ---- registry answers (pure parsers) ---------------------------------- */

void cl_printable(const char *s, char *out, size_t n)
{
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && k + 4 < n; p++)
        out[k++] = *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\' ? (char)*p : '?';
    if (s && strlen(s) > k && n > 4) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[n ? k : 0] = '\0';
}

int cl_parse_names(const char *what, const char *body, size_t len, const char *ctype,
                   const char *key, char ***v, size_t *n, struct err *e)
{
    json_object *j = NULL, *arr = NULL;
    if (jd_parse(what, body, len, ctype, &j, e) < 0)
        return -1;
    int rc = 0;
    if (!json_object_is_type(j, json_type_object)) {
        err_set(e, "%s: answer is a JSON %s, not an object", what, jd_type_name(j));
        rc = -1;
    } else if (json_object_object_get_ex(j, key, &arr) &&
               !json_object_is_type(arr, json_type_null) &&
               !json_object_is_type(arr, json_type_array)) {
        err_set(e, "%s: \"%s\" is a JSON %s, not an array", what, key, jd_type_name(arr));
        rc = -1;
    }
    /* absent or null (a repository whose tags were all deleted): none */
    for (size_t i = 0; rc == 0 && arr && json_object_is_type(arr, json_type_array) &&
                       i < json_object_array_length(arr);
         i++) {
        json_object *s = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(s, json_type_string)) {
            err_set(e, "%s: \"%s\"[%zu] is a JSON %s, not a string", what, key, i, jd_type_name(s));
            rc = -1;
        } else if (strv_push(v, n, json_object_get_string(s)) < 0) {
            err_set(e, "out of memory");
            rc = -1;
        }
    }
    json_object_put(j);
    return rc;
}

void cl_parsed_manifest_free(struct cl_parsed_manifest *pm)
{
    for (size_t i = 0; i < pm->n_blobs; i++)
        free(pm->blobs[i].digest);
    free(pm->blobs);
    strv_free(pm->children, pm->n_children);
    free(pm->child_sizes);
    memset(pm, 0, sizeof *pm);
}

/* Appends a copy of digest with its size to the array *v of *n blobs (no
 * duplicate check); -1: out of memory, *v and *n still consistent. */
static int blob_push(struct cl_blob **v, size_t *n, const char *digest, uint64_t size)
{
    struct cl_blob *nb = realloc(*v, (*n + 1) * sizeof *nb);
    if (!nb)
        return -1;
    *v = nb;
    if (!(nb[*n].digest = strdup(digest)))
        return -1;
    nb[(*n)++].size = size;
    return 0;
}

/* {"digest": "<algo:hex>", "size": N} -> digest (validated) and size. */
static int descriptor(const char *what, const char *where, json_object *o, const char **digest,
                      uint64_t *size, struct err *e)
{
    json_object *d = NULL, *s = NULL;
    char pb[120];
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "digest", &d) ||
        !json_object_is_type(d, json_type_string)) {
        err_set(e, "%s: %s has no \"digest\" string", what, where);
        return -1;
    }
    *digest = json_object_get_string(d);
    if (!skopeo_valid_digest(*digest)) {
        cl_printable(*digest, pb, sizeof pb);
        err_set(e, "%s: %s: \"%s\" is not a valid digest (algorithm:hex)", what, where, pb);
        return -1;
    }
    int64_t v = 0;
    if (json_object_object_get_ex(o, "size", &s) && json_object_is_type(s, json_type_int))
        v = json_object_get_int64(s);
    *size = v > 0 ? (uint64_t)v : 0;
    return 0;
}

int cl_parse_manifest(const char *what, const char *body, size_t len, const char *ctype,
                      struct cl_parsed_manifest *pm, struct err *e)
{
    memset(pm, 0, sizeof *pm);
    json_object *j = NULL, *mt = NULL, *arr = NULL, *cfg = NULL;
    if (jd_parse(what, body, len, ctype, &j, e) < 0)
        return -1;
    int rc = -1;
    const char *d;
    uint64_t sz;
    if (!json_object_is_type(j, json_type_object)) {
        err_set(e, "%s: answer is a JSON %s, not an object", what, jd_type_name(j));
        goto out;
    }
    const char *s = ctype;
    if (json_object_object_get_ex(j, "mediaType", &mt) && json_object_is_type(mt, json_type_string))
        s = json_object_get_string(mt);
    snprintf(pm->media_type, sizeof pm->media_type, "%s", s ? s : "");
    pm->media_type[strcspn(pm->media_type, "; ")] = '\0';
    pm->is_index =
        strcmp(pm->media_type, "application/vnd.docker.distribution.manifest.list.v2+json") == 0 ||
        strcmp(pm->media_type, "application/vnd.oci.image.index.v1+json") == 0 ||
        (json_object_object_get_ex(j, "manifests", &arr) &&
         json_object_is_type(arr, json_type_array));
    if (pm->is_index) {
        if (!json_object_object_get_ex(j, "manifests", &arr) ||
            !json_object_is_type(arr, json_type_array)) {
            err_set(e, "%s: an index without a \"manifests\" array", what);
            goto out;
        }
        size_t n = json_object_array_length(arr);
        if (n > CL_MAX_CHILDREN) {
            err_set(e, "%s: an index of %zu manifests (more than %d)", what, n, CL_MAX_CHILDREN);
            goto out;
        }
        pm->child_sizes = calloc(n ? n : 1, sizeof *pm->child_sizes);
        if (!pm->child_sizes)
            goto oom;
        for (size_t i = 0; i < n; i++) {
            char where[48];
            snprintf(where, sizeof where, "manifests[%zu]", i);
            if (descriptor(what, where, json_object_array_get_idx(arr, i), &d, &sz, e) < 0)
                goto out;
            pm->child_sizes[pm->n_children] = sz;
            if (strv_push(&pm->children, &pm->n_children, d) < 0)
                goto oom;
        }
        rc = 0;
        goto out;
    }
    if (json_object_object_get_ex(j, "config", &cfg)) {
        if (descriptor(what, "config", cfg, &d, &sz, e) < 0)
            goto out;
        snprintf(pm->config, sizeof pm->config, "%s", d);
        if (blob_push(&pm->blobs, &pm->n_blobs, d, sz) < 0)
            goto oom;
    }
    if (json_object_object_get_ex(j, "layers", &arr) && json_object_is_type(arr, json_type_array)) {
        size_t n = json_object_array_length(arr);
        if (n > CL_MAX_LAYERS) {
            err_set(e, "%s: %zu layers (more than %d)", what, n, CL_MAX_LAYERS);
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            char where[48];
            snprintf(where, sizeof where, "layers[%zu]", i);
            if (descriptor(what, where, json_object_array_get_idx(arr, i), &d, &sz, e) < 0)
                goto out;
            if (blob_push(&pm->blobs, &pm->n_blobs, d, sz) < 0)
                goto oom;
        }
    }
    rc = 0;
    goto out;
oom:
    err_set(e, "out of memory");
out:
    if (rc < 0)
        cl_parsed_manifest_free(pm);
    json_object_put(j);
    return rc;
}

int cl_parse_created(const char *what, const char *body, size_t len, const char *ctype,
                     int64_t *created, struct err *e)
{
    json_object *j = NULL, *c;
    *created = 0;
    if (jd_parse(what, body, len, ctype, &j, e) < 0)
        return -1;
    if (!json_object_is_type(j, json_type_object)) {
        err_set(e, "%s: answer is a JSON %s, not an object", what, jd_type_name(j));
        json_object_put(j);
        return -1;
    }
    /* absent, not a string or not a date: unknown (0), the rules decide */
    if (json_object_object_get_ex(j, "created", &c) && json_object_is_type(c, json_type_string)) {
        int64_t ms = cl_parse_time(json_object_get_string(c));
        *created = ms > 0 ? ms : 0;
    }
    json_object_put(j);
    return 0;
}

/* ---- registry client ------------------------------------------------ */

struct reg {
    const char *base; /* registry_url without a trailing '/' */
    char origin[256]; /* scheme://host[:port], for Link headers */
    struct rm *rm;
    const char *storage; /* storage_path ("" = none): config blobs read from disk */
    struct cl_cache *cache;
};

static void reg_free(struct reg *g)
{
    if (!g)
        return;
    rm_free(g->rm);
    cl_cache_free(g->cache);
    free(g);
}

static struct reg *reg_new(const char *base, const struct cfg_cleanup *cc,
                           const struct cleanup_opts *o, const volatile sig_atomic_t *stop)
{
    struct reg *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->base = base;
    g->storage = o && o->storage_path ? o->storage_path : "";
    const char *p = strstr(base, "://");
    p = p ? strchr(p + 3, '/') : NULL;
    size_t ol = p ? (size_t)(p - base) : strlen(base);
    if (ol >= sizeof g->origin)
        ol = sizeof g->origin - 1;
    memcpy(g->origin, base, ol);
    g->origin[ol] = '\0';
    struct rm_opts ro = {
        .user = cc->username,
        .password = cc->password,
        .timeout_ms = o->timeout_ms,
        .ca_file = o->ca_file,
        .insecure = o->insecure_skip_verify,
        .max_response = 8u << 20,
        .concurrency = (int)(o->concurrency > 0 ? o->concurrency : 1),
        .origin = g->origin,
        .realm_hosts = cc->token_realm_hosts.v,
        .n_realm_hosts = cc->token_realm_hosts.n,
        .stop = stop,
    };
    if (!(g->rm = rm_new(&ro)) ||
        !(g->cache = cl_cache_open(o->cache_file, o->cache_entries ? o->cache_entries : 200000))) {
        reg_free(g);
        return NULL;
    }
    return g;
}

static void short_body(const struct http_response *r, char *out, size_t n)
{
    size_t l = r->body.len < n - 1 ? r->body.len : n - 1;
    memcpy(out, r->body.data ? r->body.data : "", l);
    out[l] = '\0';
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
}

/* e <- why a request did not give a 200 ("GET url: HTTP 500 body" or the
 * transport error, which names the URL). */
static void request_error(const struct rm_req *q, struct err *e)
{
    if (q->status == 0) {
        err_set(e, "%s", q->error);
        return;
    }
    char b[200];
    short_body(&q->r, b, sizeof b);
    err_set(e, "%s %s: HTTP %ld %s", q->method, q->url, q->status, b);
}

/* Resolves a Link: <...>; rel="next" header into an absolute URL. */
static bool next_link(const struct reg *g, const struct http_response *r, struct buf *next)
{
    char link[2048];
    if (!http_header(r, "Link", link, sizeof link) || !strstr(link, "rel=\"next\""))
        return false;
    char *lt = strchr(link, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (!lt || !gt)
        return false;
    *gt = '\0';
    buf_reset(next);
    if (strstr(lt + 1, "://")) {
        /* credentials go to the registry only, never to a host a header names */
        size_t ol = strlen(g->origin);
        if (strncmp(lt + 1, g->origin, ol) != 0 || (lt[1 + ol] != '/' && lt[1 + ol] != '\0')) {
            log_warn("cleanup: ignoring a Link to another host: %.200s", lt + 1);
            return false;
        }
        buf_puts(next, lt + 1);
    } else if (lt[1] == '/')
        buf_printf(next, "%s%s", g->origin, lt + 1);
    else {
        log_warn("cleanup: ignoring a Link that is not a path: %.200s", lt + 1);
        return false;
    }
    return buf_cstr(next) != NULL;
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
};

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
    if (q->b + 1 < MAX_PAGES && next_link(s->g, &q->r, &next) &&
        rm_submit(c, "GET", next.data, q->hint, NULL, 0, cb_tags, s, q->a, q->b + 1) < 0)
        err_set(&e, "out of memory");
    buf_free(&next);
    if (!e.msg[0])
        return;
fail:
    snprintf(rp->error, sizeof rp->error, "%s", e.msg);
    log_error("cleanup: %s: cannot list tags: %s", rp->name, e.msg);
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
    return;
fail:
    snprintf(tj->t->error, sizeof tj->t->error, "%s", e.msg);
    log_error("cleanup: %s:%s: %s", tj->rp->name, tj->t->tag, e.msg);
}

/* Adds a blob to the image m unless m has it already; -1: out of memory. */
static int add_blob(struct cl_manifest *m, const char *digest, uint64_t size)
{
    for (size_t i = 0; i < m->n_blobs; i++)
        if (strcmp(m->blobs[i].digest, digest) == 0)
            return 0;
    return blob_push(&m->blobs, &m->n_blobs, digest, size);
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
    struct buf url, hint;
    buf_init(&url, 8192);
    buf_init(&hint, 1024);
    buf_printf(&url, "%s/v2/%s/blobs/%s", s->g->base, mj->rp->name, digest);
    buf_printf(&hint, "repository:%s:pull", mj->rp->name);
    int rc = buf_cstr(&url) && buf_cstr(&hint) &&
                     rm_submit(s->g->rm, "GET", url.data, hint.data, NULL, RM_FOLLOW, cb_config, x,
                               0, 0) == 0
                 ? 0
                 : -1;
    buf_free(&url);
    buf_free(&hint);
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
    struct buf url, hint;
    buf_init(&url, 8192);
    buf_init(&hint, 1024);
    buf_printf(&hint, "repository:%s:pull", mj->rp->name);
    for (size_t k = 0; k < pm->n_children; k++) {
        const char *d = pm->children[k];
        if (strv_push(&m->children, &m->n_children, d) < 0 ||
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
        buf_reset(&url);
        buf_printf(&url, "%s/v2/%s/manifests/%s", s->g->base, mj->rp->name, d);
        if (!buf_cstr(&url) || !buf_cstr(&hint) ||
            rm_submit(s->g->rm, "GET", url.data, hint.data, accept_manifests, 0, cb_child, s, i,
                      m->n_children - 1) < 0) {
            mj_fail(mj, "out of memory");
            break;
        }
    }
    buf_free(&url);
    buf_free(&hint);
}

/* ---- plan ------------------------------------------------------------- */

static struct cl_manifest *find_m(struct cl_repo *rp, const char *digest)
{
    for (size_t i = 0; i < rp->n_m; i++)
        if (strcmp(rp->m[i].digest, digest) == 0)
            return &rp->m[i];
    return NULL;
}

static struct cl_manifest *add_m(struct cl_repo *rp, const char *digest)
{
    struct cl_manifest *nm = realloc(rp->m, (rp->n_m + 1) * sizeof *nm);
    if (!nm)
        return NULL;
    rp->m = nm;
    struct cl_manifest *m = &nm[rp->n_m];
    memset(m, 0, sizeof *m);
    if (!(m->digest = strdup(digest)))
        return NULL;
    rp->n_m++;
    return m;
}

static int cmp_rank(const void *a, const void *b)
{
    const struct cl_tag *x = *(const struct cl_tag *const *)a,
                        *y = *(const struct cl_tag *const *)b;
    int64_t cx = x->created_ms > 0 ? x->created_ms : 0, cy = y->created_ms > 0 ? y->created_ms : 0;
    if (cx != cy)
        return cx > cy ? -1 : 1;
    return strcmp(x->tag, y->tag);
}

static int cmp_tag(const void *a, const void *b)
{
    return strcmp(((const struct cl_tag *)a)->tag, ((const struct cl_tag *)b)->tag);
}

static int cmp_repo(const void *a, const void *b)
{
    return strcmp(((const struct cl_repo *)a)->name, ((const struct cl_repo *)b)->name);
}

static bool child_of_kept_index(struct cl_repo *rp, const char *digest, const char **by)
{
    for (size_t i = 0; i < rp->n_m; i++) {
        struct cl_manifest *m = &rp->m[i];
        if (!m->is_index || m->delete)
            continue;
        for (size_t k = 0; k < m->n_children; k++)
            if (strcmp(m->children[k], digest) == 0) {
                *by = m->kept_by ? m->kept_by : m->digest;
                return true;
            }
    }
    return false;
}

static int plan_repo(const struct cleanup_rules *rules, struct cl_repo *rp, int64_t now,
                     struct cleanup_result *res)
{
    bool broken = rp->error[0] != '\0';
    /* rank: newest first, unknown dates last */
    struct cl_tag **order = calloc(rp->n_tags ? rp->n_tags : 1, sizeof *order);
    if (!order)
        return -1;
    for (size_t i = 0; i < rp->n_tags; i++) {
        struct cl_tag *t = &rp->tags[i];
        struct cl_manifest *m = t->digest ? find_m(rp, t->digest) : NULL;
        t->created_ms = m ? m->created_ms : 0;
        order[i] = t;
        if (!t->digest || (m && m->result[0] == '!'))
            broken = true;
    }
    qsort(order, rp->n_tags, sizeof *order, cmp_rank);
    for (size_t i = 0; i < rp->n_tags; i++)
        order[i]->rule = cleanup_decide(rules, order[i]->tag, order[i]->created_ms, i, now);
    free(order);
    /* per digest: deleted only when every tag pointing at it is deletable */
    for (size_t i = 0; i < rp->n_m; i++) {
        struct cl_manifest *m = &rp->m[i];
        m->delete = !broken && m->result[0] != '!';
        enum keep_reason best = KEEP_NONE;
        for (size_t k = 0; k < rp->n_tags; k++) {
            struct cl_tag *t = &rp->tags[k];
            if (!t->digest || strcmp(t->digest, m->digest) != 0)
                continue;
            if (t->rule != KEEP_NONE && (best == KEEP_NONE || t->rule < best)) {
                best = t->rule;
                m->kept_by = t->tag;
            }
        }
        if (best != KEEP_NONE)
            m->delete = false;
    }
    /* a child of a kept index is kept (deleting it breaks the index) */
    for (size_t i = 0; i < rp->n_m; i++) {
        const char *by;
        if (rp->m[i].delete &&child_of_kept_index(rp, rp->m[i].digest, &by)) {
            rp->m[i].delete = false;
            rp->m[i].kept_by = by;
            rp->m[i].kept_by_index = true;
        }
    }
    /* an index is deleted whole: its children too, unless something kept uses them */
    size_t n_before = rp->n_m;
    for (size_t i = 0; i < n_before; i++) {
        if (!rp->m[i].is_index || !rp->m[i].delete)
            continue;
        for (size_t k = 0; k < rp->m[i].n_children; k++) {
            const char *cd = rp->m[i].children[k], *by;
            if (find_m(rp, cd) || child_of_kept_index(rp, cd, &by))
                continue;
            struct cl_manifest *c = add_m(rp, cd);
            if (!c)
                return -1;
            c->delete = true;
            c->child_only = true;
            c->media_type = strdup("index child");
        }
    }
    /* final reason per tag */
    for (size_t k = 0; k < rp->n_tags; k++) {
        struct cl_tag *t = &rp->tags[k];
        struct cl_manifest *m = t->digest ? find_m(rp, t->digest) : NULL;
        res->tags_scanned++;
        if (!m || m->result[0] == '!') {
            t->reason = CL_REASON_ERROR;
        } else if (t->rule != KEEP_NONE) {
            t->reason = (int)t->rule;
        } else if (m->delete) {
            t->reason = CL_REASON_DELETE;
        } else if (broken) {
            t->reason = CL_REASON_ERROR;
        } else if (m->kept_by_index) {
            t->reason = CL_REASON_INDEX_CHILD;
            t->kept_by = m->kept_by;
        } else {
            t->reason = CL_REASON_SHARED;
            t->kept_by = m->kept_by;
        }
        if (t->reason == CL_REASON_DELETE)
            res->tags_to_delete++;
        else
            res->kept[t->reason]++;
        char c[32] = "unknown";
        if (t->created_ms > 0) {
            time_t tt = (time_t)(t->created_ms / 1000);
            struct tm tm;
            gmtime_r(&tt, &tm);
            strftime(c, sizeof c, "%Y-%m-%d %H:%M:%S", &tm);
        }
        if (t->reason == CL_REASON_DELETE)
            log_info("%s:%s: delete (%s, created %s)", rp->name, t->tag, t->digest, c);
        else if (t->kept_by)
            log_info("%s:%s: keep (%s: kept by tag %s)", rp->name, t->tag,
                     cl_reason_name(t->reason), t->kept_by);
        else
            log_info("%s:%s: keep (%s)", rp->name, t->tag, cl_reason_name(t->reason));
    }
    for (size_t i = 0; i < rp->n_m; i++) /* every DELETE request, index children included */
        if (rp->m[i].delete)
            res->manifests_to_delete++;
    if (broken && rp->n_tags)
        log_warn("%s: some tags could not be read: nothing is deleted in this repository",
                 rp->name);
    return 0;
}

struct blob_ref {
    const char *digest;
    uint64_t size;
    bool kept;
};

static int cmp_blob(const void *a, const void *b)
{
    return strcmp(((const struct blob_ref *)a)->digest, ((const struct blob_ref *)b)->digest);
}

/* Sum of the sizes of blobs referenced by deleted manifests and by no kept one. */
static uint64_t unreferenced_bytes(const struct cleanup_result *res)
{
    size_t n = 0;
    for (size_t r = 0; r < res->n_repos; r++)
        for (size_t i = 0; i < res->repos[r].n_m; i++)
            n += res->repos[r].m[i].n_blobs;
    struct blob_ref *v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return 0;
    size_t k = 0;
    for (size_t r = 0; r < res->n_repos; r++)
        for (size_t i = 0; i < res->repos[r].n_m; i++) {
            const struct cl_manifest *m = &res->repos[r].m[i];
            for (size_t b = 0; b < m->n_blobs; b++)
                v[k++] = (struct blob_ref){m->blobs[b].digest, m->blobs[b].size, !m->delete};
        }
    qsort(v, n, sizeof *v, cmp_blob);
    uint64_t sum = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        bool kept = false;
        while (j < n && strcmp(v[j].digest, v[i].digest) == 0)
            kept |= v[j++].kept;
        if (!kept)
            sum += v[i].size;
        i = j;
    }
    free(v);
    return sum;
}

/* ---- apply ------------------------------------------------------------ */

/* The DELETEs of one pass, `concurrency` at a time; the next starts only
 * while no 405 was seen and no signal came. */
struct del_pass {
    struct reg *g;
    struct cleanup_result *res;
    const volatile sig_atomic_t *stop;
    int pass;
    size_t r, i; /* cursor: next repository, manifest */
    bool disabled;
};

static void start_next_delete(struct del_pass *d);

/* DELETE of res->repos[q->a].m[q->b]: 202 deleted, 404 already gone,
 * 405 deletion disabled (the run stops), anything else an error. */
static void cb_delete(struct rm *c, struct rm_req *q)
{
    (void)c;
    struct del_pass *d = q->ud;
    struct cleanup_result *res = d->res;
    struct cl_repo *rp = &res->repos[q->a];
    struct cl_manifest *m = &rp->m[q->b];
    if (q->status == 202 || q->status == 200) {
        snprintf(m->result, sizeof m->result, "deleted");
        res->manifests_deleted++;
        log_info("%s@%s: deleted", rp->name, m->digest);
    } else if (q->status == 404) {
        snprintf(m->result, sizeof m->result, "already gone");
        res->manifests_gone++;
        log_info("%s@%s: already gone (404 on DELETE: deleted since the scan)", rp->name,
                 m->digest);
    } else if (q->status == 405) {
        snprintf(m->result, sizeof m->result, "delete disabled");
        d->disabled = true;
    } else {
        struct err e = {{0}};
        request_error(q, &e);
        if (q->status)
            snprintf(m->result, sizeof m->result, "error: HTTP %ld", q->status);
        else
            snprintf(m->result, sizeof m->result, "error: no answer");
        log_error("cleanup: %s", e.msg);
        res->errors++;
        res->status = CL_FAILED;
    }
    if (q->status == 202 || q->status == 200 || q->status == 404)
        for (size_t t = 0; t < rp->n_tags; t++)
            if (rp->tags[t].digest && rp->tags[t].reason == CL_REASON_DELETE &&
                strcmp(rp->tags[t].digest, m->digest) == 0)
                res->tags_deleted++;
    start_next_delete(d);
}

static void start_next_delete(struct del_pass *d)
{
    struct cleanup_result *res = d->res;
    if (d->disabled || (d->stop && *d->stop))
        return;
    for (; d->r < res->n_repos; d->r++, d->i = 0) {
        struct cl_repo *rp = &res->repos[d->r];
        for (; d->i < rp->n_m; d->i++) {
            struct cl_manifest *m = &rp->m[d->i];
            int want = m->child_only ? 2 : m->is_index ? 0 : 1;
            if (!m->delete || want != d->pass)
                continue;
            struct buf url, hint;
            buf_init(&url, 8192);
            buf_init(&hint, 1024);
            buf_printf(&url, "%s/v2/%s/manifests/%s", d->g->base, rp->name, m->digest);
            buf_printf(&hint, "repository:%s:delete", rp->name);
            int rc = buf_cstr(&url) && buf_cstr(&hint)
                         ? rm_submit(d->g->rm, "DELETE", url.data, hint.data, NULL, 0, cb_delete, d,
                                     d->r, d->i)
                         : -1;
            buf_free(&url);
            buf_free(&hint);
            if (rc < 0) {
                snprintf(m->result, sizeof m->result, "error: out of memory");
                res->errors++;
                res->status = CL_FAILED;
            }
            d->i++;
            return;
        }
    }
}

/* Deletes the plan: indexes first, then images, then the children of
 * deleted indexes. Returns -2 when the registry refuses deletes (405). */
static int delete_plan(struct reg *g, struct cleanup_result *res, int64_t concurrency,
                       const volatile sig_atomic_t *stop)
{
    for (int pass = 0; pass < 3; pass++) {
        struct del_pass d = {.g = g, .res = res, .stop = stop, .pass = pass};
        for (int64_t k = 0; k < (concurrency > 0 ? concurrency : 1); k++)
            start_next_delete(&d);
        rm_run(g->rm);
        if (d.disabled)
            return -2;
        if (stop && *stop)
            return -1;
    }
    return 0;
}

/* Test hook (integration tests only): with NS_CLEANUP_TEST_PAUSE=PATH set,
 * a real run creates PATH.ready after its plan and waits (at most 120 s)
 * until PATH exists, so a test can change the registry between the plan
 * and the deletes (a manifest deleted behind the cleanup's back). */
static void test_pause(const volatile sig_atomic_t *stop)
{
    const char *p = getenv("NS_CLEANUP_TEST_PAUSE");
    if (!p || !*p)
        return;
    char ready[4200];
    snprintf(ready, sizeof ready, "%s.ready", p);
    int fd = open(ready, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    log_info("cleanup: NS_CLEANUP_TEST_PAUSE: waiting for %s", p);
    int64_t until = mono_ms() + 120000;
    while (access(p, F_OK) != 0 && mono_ms() < until && !(stop && *stop))
        sleep_until_mono(mono_ms() + 50);
}

/* Splits a command line on blanks and substitutes {container}, {config}
 * and {storage} inside each word. No shell, no quoting. */
static char **build_argv(const char *cmd, const struct cleanup_opts *o, size_t *argc)
{
    char **items = NULL;
    size_t n = 0;
    const char *p = cmd;
    *argc = 0;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        size_t l = strcspn(p, " \t");
        struct buf w;
        buf_init(&w, 8192);
        for (size_t i = 0; i < l;) {
            static const char *const names[] = {"{container}", "{config}", "{storage}"};
            const char *vals[] = {o->container, o->registry_config, o->storage_path};
            bool done = false;
            for (size_t k = 0; k < 3 && !done; k++) {
                size_t nl = strlen(names[k]);
                if (l - i >= nl && strncmp(p + i, names[k], nl) == 0) {
                    buf_puts(&w, vals[k] ? vals[k] : "");
                    i += nl;
                    done = true;
                }
            }
            if (!done)
                buf_append(&w, p + i++, 1);
        }
        const char *s = buf_cstr(&w);
        char **nv = s ? realloc(items, (n + 2) * sizeof *nv) : NULL;
        if (!nv || !(nv[n] = strdup(s))) {
            buf_free(&w);
            if (nv)
                items = nv;
            strv_free(items, n);
            return NULL;
        }
        items = nv;
        items[++n] = NULL;
        buf_free(&w);
        p += l;
    }
    *argc = n;
    return items;
}

struct cmd_out {
    const char *what;
    char *summary;
    size_t sn;
    char line[2048];
    size_t len;
};

static void cmd_line(struct cmd_out *c)
{
    if (!c->len)
        return;
    c->line[c->len] = '\0';
    c->len = 0;
    log_info("cleanup: %s: %s", c->what, c->line);
    if (c->summary && strstr(c->line, "eligible for deletion"))
        snprintf(c->summary, c->sn, "%s", c->line);
}

/* stdout and stderr share one line buffer: the GC tools write one stream */
static void cmd_output(void *ctx, int stream, const char *p, size_t n)
{
    struct cmd_out *c = ctx;
    (void)stream;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' || p[i] == '\r') {
            cmd_line(c);
        } else {
            if (c->len == sizeof c->line - 1)
                cmd_line(c);
            c->line[c->len++] = p[i];
        }
    }
}

/* Runs a command (execvp, no shell; proc.h: own process group, no
 * inherited descriptors), logging its output line by line, for at most
 * `timeout_ms` (0 = no limit) and until *stop (may be NULL) is set: then
 * the group gets SIGTERM and, a second later, SIGKILL. Returns the exit
 * status, 128 + signal when a signal ended it, -1 if it could not run.
 * `summary` gets the last line mentioning "eligible for deletion". */
static int run_command(const char *what, const char *cmd, const struct cleanup_opts *o,
                       char *summary, size_t sn, int64_t timeout_ms,
                       const volatile sig_atomic_t *stop)
{
    size_t argc;
    char **argv = build_argv(cmd, o, &argc);
    if (!argv || !argc) {
        strv_free(argv, argc);
        log_error("cleanup: %s: empty command", what);
        return -1;
    }
    log_info("cleanup: %s: running %s", what, cmd);
    struct cmd_out co = {.what = what, .summary = summary, .sn = sn};
    struct proc_spec ps = {.deadline = timeout_ms > 0 ? proc_mono_ms() + timeout_ms : 0,
                           .grace_ms = 1000,
                           .cancel = stop,
                           .on_output = cmd_output,
                           .ctx = &co};
    struct proc_result pr;
    int rc = proc_run(argv, &ps, &pr);
    cmd_line(&co);
    int code;
    if (rc < 0) {
        log_error("cleanup: %s: cannot run %s: %s", what, argv[0], strerror(pr.exec_errno));
        code = -1;
    } else {
        code = pr.term_signal ? 128 + pr.term_signal : pr.exit_status;
        if (pr.timed_out)
            log_error("cleanup: %s: still running after %.1f s: stopped (SIGTERM, then SIGKILL "
                      "to its process group)",
                      what, (double)timeout_ms / 1000.0);
        else if (pr.cancelled)
            log_error("cleanup: %s: stopped by a signal", what);
        if (code != 0)
            log_error("cleanup: %s exited with status %d", what, code);
    }
    strv_free(argv, argc);
    return code;
}

static int64_t du_sum;
static int du_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)p;
    (void)ftw;
    if (flag == FTW_F || flag == FTW_D || flag == FTW_DP || flag == FTW_SL)
        du_sum += st->st_size;
    return 0;
}

int64_t cl_du(const char *path)
{
    /* nftw has no user pointer: du_sum is only touched here, under this lock */
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mu);
    du_sum = 0;
    int rc = nftw(path, du_cb, 32, FTW_PHYS);
    int64_t v = rc == 0 ? du_sum : -1;
    pthread_mutex_unlock(&mu);
    return v;
}

/* ---- the run ---------------------------------------------------------- */

int cleanup_run(const struct cfg_cleanup *cc, const struct cleanup_opts *o, bool dry_run,
                const volatile sig_atomic_t *stop, struct cleanup_result *res, struct err *e)
{
    memset(res, 0, sizeof *res);
    res->dry_run = dry_run;
    res->du_before = res->du_after = -1;
    res->started_ms = now_ms();
    struct cleanup_rules rules;
    regex_t inc, exc;
    bool has_inc = false, has_exc = false;
    int rc = -1;
    struct reg *g = NULL;
    char **names = NULL;
    size_t n_names = 0;
    struct scan sc = {.res = res};
    char *url_user = NULL, *url_password = NULL;
    if (cleanup_rules_init(&rules, cc, e) < 0)
        return -1;
    if (o->include_repositories && *o->include_repositories) {
        if (regcomp(&inc, o->include_repositories, REG_EXTENDED | REG_NOSUB) != 0) {
            err_set(e, "[cleanup] include_repositories: bad regular expression");
            goto out;
        }
        has_inc = true;
    }
    if (o->exclude_repositories && *o->exclude_repositories) {
        if (regcomp(&exc, o->exclude_repositories, REG_EXTENDED | REG_NOSUB) != 0) {
            err_set(e, "[cleanup] exclude_repositories: bad regular expression");
            goto out;
        }
        has_exc = true;
    }
    if (!cc->registry_url || !*cc->registry_url) {
        err_set(e, "[cleanup] registry_url is not set");
        goto out;
    }
    /* user:password@ in registry_url: the credentials (unless username is
     * set), never part of a URL that is requested or logged (issue 18) */
    if (!(res->registry = rm_url_take_userinfo(cc->registry_url, &url_user, &url_password)))
        goto oom;
    struct cfg_cleanup cc_url = *cc;
    if (url_user && !(cc->username && *cc->username)) {
        cc_url.username = url_user;
        cc_url.password = url_password;
    }
    size_t bl = strlen(res->registry);
    while (bl > 0 && res->registry[bl - 1] == '/')
        res->registry[--bl] = '\0';
    if (bl >= 3 && strcmp(res->registry + bl - 3, "/v2") == 0)
        res->registry[bl - 3] = '\0';
    if (!(g = reg_new(res->registry, &cc_url, o, stop)))
        goto oom;
    sc.g = g;
    rc = 0; /* from here on, problems are the run's status, not a setup error */
    log_info("cleanup: %s%s: days_to_keep=%lld keep_last=%lld", res->registry,
             dry_run ? " (dry run)" : "", (long long)cc->days_to_keep, (long long)cc->keep_last);

    struct err ce = {{0}};
    if (list_catalog(g, &names, &n_names, res, &ce) < 0) {
        res->status = CL_FAILED;
        res->errors++;
        snprintf(res->message, sizeof res->message, "cannot list repositories: %s", ce.msg);
        log_error("cleanup: %s", res->message);
        goto done;
    }
    res->repos = calloc(n_names ? n_names : 1, sizeof *res->repos);
    if (!res->repos)
        goto oom_run;
    for (size_t i = 0; i < n_names; i++) {
        if ((has_inc && regexec(&inc, names[i], 0, NULL, 0) != 0) ||
            (has_exc && regexec(&exc, names[i], 0, NULL, 0) == 0)) {
            log_debug("cleanup: %s: skipped (include/exclude_repositories)", names[i]);
            continue;
        }
        res->repos[res->n_repos++].name = names[i];
        names[i] = NULL;
    }
    qsort(res->repos, res->n_repos, sizeof *res->repos, cmp_repo);
    /* 1. every repository's tags (pages chained by the callbacks) */
    for (size_t r = 0; r < res->n_repos; r++) {
        struct buf url, hint;
        buf_init(&url, 8192);
        buf_init(&hint, 1024);
        buf_printf(&url, "%s/v2/%s/tags/list", res->registry, res->repos[r].name);
        buf_printf(&hint, "repository:%s:pull", res->repos[r].name);
        int sr = buf_cstr(&url) && buf_cstr(&hint)
                     ? rm_submit(g->rm, "GET", url.data, hint.data, NULL, 0, cb_tags, &sc, r, 0)
                     : -1;
        buf_free(&url);
        buf_free(&hint);
        if (sr < 0)
            goto oom_run;
    }
    rm_run(g->rm);

    /* 2. every tag's manifest */
    size_t nt = 0;
    for (size_t r = 0; r < res->n_repos; r++) {
        if (res->repos[r].n_tags > 1) /* tags is NULL for a repository without tags */
            qsort(res->repos[r].tags, res->repos[r].n_tags, sizeof *res->repos[r].tags, cmp_tag);
        nt += res->repos[r].n_tags;
    }
    sc.tj = calloc(nt ? nt : 1, sizeof *sc.tj);
    if (!sc.tj)
        goto oom_run;
    for (size_t r = 0; r < res->n_repos; r++) {
        struct cl_repo *rp = &res->repos[r];
        struct buf url, hint;
        buf_init(&url, 8192);
        buf_init(&hint, 1024);
        buf_printf(&hint, "repository:%s:pull", rp->name);
        for (size_t i = 0; i < rp->n_tags; i++) {
            sc.tj[sc.n_tj] = (struct tag_job){.rp = rp, .t = &rp->tags[i]};
            buf_reset(&url);
            buf_printf(&url, "%s/v2/%s/manifests/%s", res->registry, rp->name, rp->tags[i].tag);
            if (!buf_cstr(&url) || !buf_cstr(&hint) ||
                rm_submit(g->rm, "GET", url.data, hint.data, accept_manifests, 0, cb_manifest, &sc,
                          sc.n_tj, 0) < 0) {
                buf_free(&url);
                buf_free(&hint);
                goto oom_run;
            }
            sc.n_tj++;
        }
        buf_free(&url);
        buf_free(&hint);
    }
    rm_run(g->rm);

    /* 3. distinct digests per repository: blobs and created dates */
    size_t nm = 0;
    for (size_t i = 0; i < sc.n_tj; i++) {
        struct tag_job *tj = &sc.tj[i];
        if (!tj->ok || find_m(tj->rp, tj->t->digest))
            continue;
        struct cl_manifest *m = add_m(tj->rp, tj->t->digest);
        if (!m || !(m->media_type = strdup(tj->pm.media_type)))
            goto oom_run;
        m->size = tj->size;
        m->is_index = tj->pm.is_index;
        nm++;
    }
    sc.mj = calloc(nm ? nm : 1, sizeof *sc.mj);
    if (!sc.mj)
        goto oom_run;
    /* a repository's tag jobs are contiguous: its manifests' bodies are there */
    for (size_t r = 0, first = 0; r < res->n_repos; first += res->repos[r++].n_tags)
        for (size_t i = 0; i < res->repos[r].n_m; i++) {
            struct man_job *mj = &sc.mj[sc.n_mj++];
            mj->rp = &res->repos[r];
            mj->m = &res->repos[r].m[i];
            for (size_t t = first; t < first + res->repos[r].n_tags; t++)
                if (sc.tj[t].ok && strcmp(sc.tj[t].t->digest, mj->m->digest) == 0) {
                    mj->pm = &sc.tj[t].pm;
                    break;
                }
        }
    for (size_t i = 0; i < sc.n_mj; i++)
        manifest_details(&sc, i);
    rm_run(g->rm);
    for (size_t i = 0; i < sc.n_mj; i++)
        if (sc.mj[i].error[0]) /* details unknown: keep it, and its repository untouched */
            snprintf(sc.mj[i].m->result, sizeof sc.mj[i].m->result, "!%.60s", sc.mj[i].error);
    size_t c_entries, c_skipped;
    uint64_t c_hits, c_misses;
    cl_cache_stats(g->cache, &c_entries, &c_skipped, &c_hits, &c_misses);
    log_info("cleanup: scan: %llu HTTP requests; created dates: %llu from the cache, %llu from "
             "storage_path, %llu shared with another manifest's config GET, the rest over HTTP "
             "(cache: %zu entries%s%s)",
             (unsigned long long)rm_requests(g->rm), (unsigned long long)sc.cache_hits,
             (unsigned long long)sc.disk_hits, (unsigned long long)sc.shared, c_entries,
             c_skipped ? ", bad lines skipped" : "",
             o->cache_file && *o->cache_file ? "" : ", not kept");
    if (o->cache_file && *o->cache_file) {
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
    if (stop && *stop) {
        res->status = CL_FAILED;
        snprintf(res->message, sizeof res->message, "stopped by a signal");
        goto done;
    }

    int64_t now = now_ms();
    for (size_t r = 0; r < res->n_repos; r++)
        if (plan_repo(&rules, &res->repos[r], now, res) < 0)
            goto oom_run;
    res->blob_bytes = unreferenced_bytes(res);
    log_info("cleanup: plan: %zu repositories, %llu tags, %llu tags and %llu manifests to delete, "
             "%llu bytes of blobs no longer referenced",
             res->n_repos, (unsigned long long)res->tags_scanned,
             (unsigned long long)res->tags_to_delete, (unsigned long long)res->manifests_to_delete,
             (unsigned long long)res->blob_bytes);
    if (res->errors)
        res->status = CL_FAILED;
    if (o->max_deletions > 0 && res->manifests_to_delete > (uint64_t)o->max_deletions) {
        res->status = CL_ABORTED_MAX;
        snprintf(res->message, sizeof res->message,
                 "the plan deletes %llu manifests, more than max_deletions=%lld: nothing deleted",
                 (unsigned long long)res->manifests_to_delete, (long long)o->max_deletions);
        log_error("cleanup: %s", res->message);
        goto done;
    }
    if (dry_run)
        goto done;

    test_pause(stop);
    int dr = delete_plan(g, res, o->concurrency, stop);
    if (dr == -2) {
        res->status = CL_DELETE_DISABLED;
        snprintf(res->message, sizeof res->message,
                 "the registry refuses deletes (HTTP 405 UNSUPPORTED): set "
                 "storage.delete.enabled: true in its config.yml (or "
                 "REGISTRY_STORAGE_DELETE_ENABLED=true) and restart it; "
                 "nothing else was deleted");
        log_error("cleanup: %s", res->message);
    } else if (dr == -1) {
        res->status = CL_FAILED;
        snprintf(res->message, sizeof res->message, "stopped by a signal");
    }
    int64_t gc_timeout = cc->gc_timeout_ms;
    if (res->manifests_deleted > 0 && res->status != CL_DELETE_DISABLED) {
        if (o->gc_command && *o->gc_command && stop && *stop) {
            log_warn("cleanup: stopped by a signal: garbage collection not run (the deleted "
                     "manifests' blobs stay until the next one)");
        } else if (o->gc_command && *o->gc_command) {
            if (o->storage_path && *o->storage_path)
                res->du_before = cl_du(o->storage_path);
            if (o->pre_gc_command && *o->pre_gc_command &&
                run_command("pre_gc_command", o->pre_gc_command, o, NULL, 0, gc_timeout, stop) !=
                    0) {
                res->errors++;
                res->status = CL_FAILED;
                snprintf(res->message, sizeof res->message, "pre_gc_command failed: no GC run");
            } else {
                res->gc_ran = true;
                res->gc_exit = run_command("garbage-collect", o->gc_command, o, res->gc_summary,
                                           sizeof res->gc_summary, gc_timeout, stop);
                if (res->gc_exit != 0) {
                    res->errors++;
                    res->status = CL_FAILED;
                    if (stop && *stop)
                        snprintf(res->message, sizeof res->message,
                                 "stopped by a signal during garbage collection");
                    else
                        snprintf(res->message, sizeof res->message,
                                 "garbage collection exited with status %d", res->gc_exit);
                }
                /* undoes pre_gc_command (a read-only registry): runs even after a
                 * stop, bounded by POST_GC_STOPPED_MS then */
                int64_t post_to = gc_timeout;
                if (stop && *stop && (!post_to || post_to > POST_GC_STOPPED_MS))
                    post_to = POST_GC_STOPPED_MS;
                if (o->post_gc_command && *o->post_gc_command &&
                    run_command("post_gc_command", o->post_gc_command, o, NULL, 0, post_to,
                                NULL) != 0) {
                    res->errors++;
                    res->status = CL_FAILED;
                    snprintf(res->message, sizeof res->message, "post_gc_command failed");
                }
            }
            if (o->storage_path && *o->storage_path)
                res->du_after = cl_du(o->storage_path);
        } else {
            res->gc_none = true;
            log_info("cleanup: no gc_command: blobs are freed by the registry's own garbage "
                     "collection (Nexus: the \"Docker - Delete unused manifests and images\" and "
                     "\"Compact blob store\" tasks)");
        }
    }
done:
    if (res->status == CL_OK && res->errors)
        res->status = CL_FAILED;
    if (res->status == CL_FAILED && !res->message[0])
        snprintf(res->message, sizeof res->message, "%llu errors (see the log)",
                 (unsigned long long)res->errors);
    res->finished_ms = now_ms();
    goto out;
oom_run:
    res->status = CL_FAILED;
    res->errors++;
    snprintf(res->message, sizeof res->message, "out of memory");
    res->finished_ms = now_ms();
    goto out;
oom:
    err_set(e, "out of memory");
    rc = -1;
out:
    for (size_t i = 0; i < sc.n_tj; i++)
        cl_parsed_manifest_free(&sc.tj[i].pm);
    free(sc.tj);
    free(sc.mj);
    pend_free(&sc);
    strv_free(names, n_names);
    reg_free(g);
    free(url_user);
    free(url_password);
    if (has_inc)
        regfree(&inc);
    if (has_exc)
        regfree(&exc);
    cleanup_rules_free(&rules);
    return rc;
}

void cleanup_result_free(struct cleanup_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_repos; i++) {
        struct cl_repo *rp = &r->repos[i];
        for (size_t k = 0; k < rp->n_tags; k++) {
            free(rp->tags[k].tag);
            free(rp->tags[k].digest);
        }
        free(rp->tags);
        for (size_t k = 0; k < rp->n_m; k++) {
            struct cl_manifest *m = &rp->m[k];
            free(m->digest);
            free(m->media_type);
            strv_free(m->children, m->n_children);
            for (size_t b = 0; b < m->n_blobs; b++)
                free(m->blobs[b].digest);
            free(m->blobs);
        }
        free(rp->m);
        free(rp->name);
    }
    free(r->repos);
    free(r->registry);
    memset(r, 0, sizeof *r);
}

/* ---- output ----------------------------------------------------------- */

static void fmt_time(int64_t ms, char *out, size_t n)
{
    if (ms <= 0) {
        snprintf(out, n, "unknown");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Why a tag is deleted (older, or an unknown date when those are not kept)
 * or kept. */
static const char *tag_reason(const struct cl_tag *t)
{
    if (t->reason == CL_REASON_DELETE)
        return t->created_ms > 0 ? "older_than_days_to_keep" : "unknown_date";
    return cl_reason_name(t->reason);
}

static const char *m_kind(const struct cl_manifest *m)
{
    return m->is_index ? "index" : m->child_only ? "index-child" : "image";
}

int cleanup_format_text(const struct cleanup_result *r, struct buf *out)
{
    buf_printf(out, "# registry cleanup of %s%s\n", r->registry ? r->registry : "?",
               r->dry_run ? " (dry run: nothing deleted)" : "");
    for (size_t i = 0; i < r->n_repos; i++) {
        const struct cl_repo *rp = &r->repos[i];
        if (rp->error[0])
            buf_printf(out, "repository %s error %s\n", rp->name, rp->error);
        for (size_t k = 0; k < rp->n_tags; k++) {
            const struct cl_tag *t = &rp->tags[k];
            char c[32];
            fmt_time(t->created_ms, c, sizeof c);
            buf_printf(out, "tag %s:%s %s %s digest=%s created=%s", rp->name, t->tag,
                       t->reason == CL_REASON_DELETE ? "delete" : "keep", tag_reason(t),
                       t->digest ? t->digest : "-", c);
            if (t->kept_by)
                buf_printf(out, " kept_by=%s", t->kept_by);
            if (t->error[0])
                buf_printf(out, " error=\"%s\"", t->error);
            buf_puts(out, "\n");
        }
    }
    for (size_t i = 0; i < r->n_repos; i++) {
        const struct cl_repo *rp = &r->repos[i];
        for (size_t k = 0; k < rp->n_m; k++) {
            const struct cl_manifest *m = &rp->m[k];
            if (!m->delete)
                continue;
            buf_printf(out, "manifest %s@%s delete %s", rp->name, m->digest, m_kind(m));
            if (m->result[0])
                buf_printf(out, " result=\"%s\"", m->result);
            buf_puts(out, "\n");
        }
    }
    buf_printf(out,
               "summary status=%s repositories=%zu tags=%llu tags_to_delete=%llu "
               "tags_deleted=%llu manifests_to_delete=%llu manifests_deleted=%llu "
               "manifests_gone=%llu errors=%llu blob_bytes=%llu",
               cl_status_name(r->status), r->n_repos, (unsigned long long)r->tags_scanned,
               (unsigned long long)r->tags_to_delete, (unsigned long long)r->tags_deleted,
               (unsigned long long)r->manifests_to_delete, (unsigned long long)r->manifests_deleted,
               (unsigned long long)r->manifests_gone, (unsigned long long)r->errors,
               (unsigned long long)r->blob_bytes);
    if (r->du_before >= 0 && r->du_after >= 0)
        buf_printf(out, " storage_du_before=%lld storage_du_after=%lld storage_du_freed=%lld",
                   (long long)r->du_before, (long long)r->du_after,
                   (long long)(r->du_before - r->du_after));
    if (r->gc_ran)
        buf_printf(out, " gc_exit=%d", r->gc_exit);
    else if (r->gc_none)
        buf_puts(out, " gc=none");
    buf_printf(out, " duration=%.3fs\n", (double)(r->finished_ms - r->started_ms) / 1000.0);
    for (int i = 1; i < CL_NREASONS; i++)
        if (r->kept[i])
            buf_printf(out, "kept %s %llu\n", cl_reason_name(i), (unsigned long long)r->kept[i]);
    if (r->message[0])
        buf_printf(out, "message %s\n", r->message);
    return buf_cstr(out) ? 0 : -1;
}

static json_object *jstr(const char *s)
{
    return s ? json_object_new_string(s) : json_object_new_null();
}

int cleanup_format_json(const struct cleanup_result *r, struct buf *out)
{
    json_object *root = json_object_new_object();
    if (!root)
        return -1;
    json_object_object_add(root, "registry", jstr(r->registry));
    json_object_object_add(root, "dry_run", json_object_new_boolean(r->dry_run));
    json_object_object_add(root, "status", jstr(cl_status_name(r->status)));
    json_object_object_add(root, "message", jstr(r->message));
    json_object *repos = json_object_new_array();
    for (size_t i = 0; i < r->n_repos; i++) {
        const struct cl_repo *rp = &r->repos[i];
        json_object *jr = json_object_new_object(), *tags = json_object_new_array(),
                    *mans = json_object_new_array();
        json_object_object_add(jr, "name", jstr(rp->name));
        if (rp->error[0])
            json_object_object_add(jr, "error", jstr(rp->error));
        for (size_t k = 0; k < rp->n_tags; k++) {
            const struct cl_tag *t = &rp->tags[k];
            json_object *jt = json_object_new_object();
            char c[32];
            fmt_time(t->created_ms, c, sizeof c);
            json_object_object_add(jt, "tag", jstr(t->tag));
            json_object_object_add(jt, "digest", jstr(t->digest));
            json_object_object_add(jt, "created", t->created_ms > 0 ? jstr(c) : NULL);
            json_object_object_add(jt, "action",
                                   jstr(t->reason == CL_REASON_DELETE ? "delete" : "keep"));
            json_object_object_add(jt, "reason", jstr(tag_reason(t)));
            if (t->kept_by)
                json_object_object_add(jt, "kept_by", jstr(t->kept_by));
            if (t->error[0])
                json_object_object_add(jt, "error", jstr(t->error));
            json_object_array_add(tags, jt);
        }
        for (size_t k = 0; k < rp->n_m; k++) {
            const struct cl_manifest *m = &rp->m[k];
            json_object *jm = json_object_new_object();
            json_object_object_add(jm, "digest", jstr(m->digest));
            json_object_object_add(jm, "kind", jstr(m_kind(m)));
            json_object_object_add(jm, "media_type", jstr(m->media_type));
            json_object_object_add(jm, "action", jstr(m->delete ? "delete" : "keep"));
            if (!m->delete &&m->kept_by)
                json_object_object_add(jm, "kept_by", jstr(m->kept_by));
            if (m->result[0])
                json_object_object_add(jm, "result", jstr(m->result));
            json_object_array_add(mans, jm);
        }
        json_object_object_add(jr, "tags", tags);
        json_object_object_add(jr, "manifests", mans);
        json_object_array_add(repos, jr);
    }
    json_object_object_add(root, "repositories", repos);
    json_object *s = json_object_new_object(), *kept = json_object_new_object();
    json_object_object_add(s, "repositories", json_object_new_int64((int64_t)r->n_repos));
    json_object_object_add(s, "tags_scanned", json_object_new_int64((int64_t)r->tags_scanned));
    json_object_object_add(s, "tags_to_delete", json_object_new_int64((int64_t)r->tags_to_delete));
    json_object_object_add(s, "tags_deleted", json_object_new_int64((int64_t)r->tags_deleted));
    json_object_object_add(s, "manifests_to_delete",
                           json_object_new_int64((int64_t)r->manifests_to_delete));
    json_object_object_add(s, "manifests_deleted",
                           json_object_new_int64((int64_t)r->manifests_deleted));
    json_object_object_add(s, "manifests_already_gone",
                           json_object_new_int64((int64_t)r->manifests_gone));
    json_object_object_add(s, "errors", json_object_new_int64((int64_t)r->errors));
    json_object_object_add(s, "freed_bytes_blob_sum",
                           json_object_new_int64((int64_t)r->blob_bytes));
    if (r->du_before >= 0 && r->du_after >= 0)
        json_object_object_add(s, "freed_bytes_storage_du",
                               json_object_new_int64(r->du_before - r->du_after));
    json_object_object_add(
        s, "duration_seconds",
        json_object_new_double((double)(r->finished_ms - r->started_ms) / 1000.0));
    for (int i = 1; i < CL_NREASONS; i++)
        json_object_object_add(kept, cl_reason_name(i), json_object_new_int64((int64_t)r->kept[i]));
    json_object_object_add(s, "kept", kept);
    if (r->gc_none)
        json_object_object_add(s, "gc",
                               jstr("none: freed by the registry's own garbage collection"));
    if (r->gc_ran) {
        json_object_object_add(s, "gc_exit", json_object_new_int(r->gc_exit));
        json_object_object_add(s, "gc_summary", jstr(r->gc_summary));
    }
    json_object_object_add(root, "summary", s);
    const char *txt = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE);
    int rc = txt && buf_puts(out, txt) == 0 && buf_puts(out, "\n") == 0 ? 0 : -1;
    json_object_put(root);
    return rc;
}
