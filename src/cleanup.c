#include "cleanup.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
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

#include "http.h"
#include "json_util.h"
#include "log.h"

#define MAX_TOKENS   256
#define CATALOG_PAGE 100
#define MAX_PAGES    100000

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

/* ---- registry client ------------------------------------------------ */

/* Bearer tokens by scope hint, shared by every worker of a run. */
struct tokens {
    pthread_mutex_t mu;
    struct {
        char *hint, *token;
    } v[MAX_TOKENS];
    size_t n, next;
};

static void tokens_free(struct tokens *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].hint);
        free(t->v[i].token);
    }
    t->n = 0;
}

struct reg {
    const char *base;          /* registry_url without a trailing '/' */
    char origin[256];          /* scheme://host[:port], for Link headers */
    struct http_client *basic; /* with the basic credentials (if any) */
    struct http_client *plain; /* for bearer tokens */
    struct tokens *tok;        /* borrowed */
    const volatile sig_atomic_t *stop;
    const char *storage; /* storage_path ("" = none): config blobs read from disk */
};

static void reg_free(struct reg *g)
{
    if (!g)
        return;
    http_client_free(g->basic);
    http_client_free(g->plain);
    free(g);
}

static struct reg *reg_new(const char *base, const struct cfg_cleanup *cc,
                           const struct cleanup_opts *o, struct tokens *tok,
                           const volatile sig_atomic_t *stop)
{
    struct reg *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->base = base;
    g->stop = stop;
    g->tok = tok;
    g->storage = o && o->storage_path ? o->storage_path : "";
    const char *p = strstr(base, "://");
    p = p ? strchr(p + 3, '/') : NULL;
    size_t ol = p ? (size_t)(p - base) : strlen(base);
    if (ol >= sizeof g->origin)
        ol = sizeof g->origin - 1;
    memcpy(g->origin, base, ol);
    g->origin[ol] = '\0';
    struct http_opts ho = {
        .timeout_ms = o->timeout_ms,
        .ca_file = o->ca_file,
        .insecure = o->insecure_skip_verify,
        .max_response = 8u << 20,
    };
    if (!(g->plain = http_client_new(&ho)))
        goto fail;
    ho.user = cc->username;
    ho.password = cc->password;
    if (!(g->basic = http_client_new(&ho)))
        goto fail;
    if (stop) {
        http_client_set_abort(g->plain, stop);
        http_client_set_abort(g->basic, stop);
    }
    return g;
fail:
    reg_free(g);
    return NULL;
}

/* Extracts key="value" (or key=value) from a WWW-Authenticate challenge. */
static bool challenge_param(const char *ch, const char *key, char *out, size_t n)
{
    size_t kl = strlen(key);
    const char *p = ch;
    while ((p = strcasestr(p, key))) {
        bool start = p == ch || p[-1] == ' ' || p[-1] == ',';
        if (start && p[kl] == '=') {
            const char *v = p + kl + 1;
            const char *end;
            if (*v == '"') {
                v++;
                end = strchr(v, '"');
            } else {
                end = v + strcspn(v, ", ");
            }
            if (!end)
                end = v + strlen(v);
            size_t l = (size_t)(end - v);
            if (l >= n)
                return false;
            memcpy(out, v, l);
            out[l] = '\0';
            return true;
        }
        p += kl;
    }
    return false;
}

/* Copies the cached token for `hint` into out; false when none. */
static bool token_for(struct reg *g, const char *hint, char *out, size_t n)
{
    bool found = false;
    pthread_mutex_lock(&g->tok->mu);
    for (size_t i = 0; i < g->tok->n && !found; i++)
        if (g->tok->v[i].hint && strcmp(g->tok->v[i].hint, hint) == 0 &&
            strlen(g->tok->v[i].token) < n) {
            strcpy(out, g->tok->v[i].token);
            found = true;
        }
    pthread_mutex_unlock(&g->tok->mu);
    return found;
}

static void token_store(struct reg *g, const char *hint, const char *token)
{
    struct tokens *t = g->tok;
    pthread_mutex_lock(&t->mu);
    size_t i;
    for (i = 0; i < t->n; i++)
        if (t->v[i].hint && strcmp(t->v[i].hint, hint) == 0)
            break;
    if (i == t->n) {
        if (t->n < MAX_TOKENS)
            t->n++;
        else
            i = t->next++ % MAX_TOKENS;
    }
    free(t->v[i].hint);
    free(t->v[i].token);
    t->v[i].hint = strdup(hint);
    t->v[i].token = strdup(token);
    if (!t->v[i].hint || !t->v[i].token) { /* out of memory: forget it */
        free(t->v[i].hint);
        free(t->v[i].token);
        t->v[i].hint = t->v[i].token = NULL;
    }
    pthread_mutex_unlock(&t->mu);
}

/* The bearer-token dance: GET realm?service=..&scope=.. (with the basic
 * credentials when configured), answer {"token"} or {"access_token"}. */
static int fetch_token(struct reg *g, const char *challenge, const char *hint, struct err *e)
{
    char realm[1024], service[256] = "", scope[512] = "";
    if (!challenge_param(challenge, "realm", realm, sizeof realm)) {
        err_set(e, "bearer challenge without realm: %.200s", challenge);
        return -1;
    }
    challenge_param(challenge, "service", service, sizeof service);
    if (!challenge_param(challenge, "scope", scope, sizeof scope))
        snprintf(scope, sizeof scope, "%s", hint);
    struct buf url;
    buf_init(&url, 8192);
    int rc = -1;
    json_object *j = NULL;
    buf_puts(&url, realm);
    char sep = strchr(realm, '?') ? '&' : '?';
    if (service[0]) {
        buf_printf(&url, "%cservice=", sep);
        url_escape(service, &url);
        sep = '&';
    }
    if (scope[0]) {
        buf_printf(&url, "%cscope=", sep);
        url_escape(scope, &url);
    }
    long st = 0;
    if (!buf_cstr(&url) || http_get_json(g->basic, url.data, 0, &j, &st, e) < 0)
        goto out;
    json_object *t = NULL;
    if (!json_object_object_get_ex(j, "token", &t) &&
        !json_object_object_get_ex(j, "access_token", &t)) {
        err_set(e, "token endpoint %s answered without a token", realm);
        goto out;
    }
    if (!json_object_is_type(t, json_type_string)) {
        err_set(e, "token endpoint %s: token is not a string", realm);
        goto out;
    }
    token_store(g, hint, json_object_get_string(t));
    log_debug("cleanup: bearer token for %s from %s", scope, realm);
    rc = 0;
out:
    json_object_put(j);
    buf_free(&url);
    return rc;
}

/* One request with authentication: a cached bearer token for `hint`, else
 * basic; a 401 with a Bearer challenge fetches a token and retries once.
 * Returns 0 when an HTTP answer arrived, -1 with e->msg otherwise. */
static int reg_request(struct reg *g, const char *method, const char *url, const char *hint,
                       const char *accept, struct http_response *r, struct err *e)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (g->stop && *g->stop) {
            err_set(e, "%s %s: stopped by a signal", method, url);
            return -1;
        }
        char tok[4096];
        char auth[4200];
        const char *hdr[2];
        size_t nh = 0;
        if (accept)
            hdr[nh++] = accept;
        struct http_client *c = g->basic;
        if (token_for(g, hint, tok, sizeof tok) && tok[0]) {
            snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
            hdr[nh++] = auth;
            c = g->plain;
        }
        if (http_request(c, method, url, hdr, nh, NULL, 0, 0, r) < 0) {
            err_set(e, "%s %s: %s", method, url, r->error);
            return -1;
        }
        char ch[2048];
        if (r->status == 401 && attempt == 0 && http_header(r, "WWW-Authenticate", ch, sizeof ch) &&
            strncasecmp(ch, "Bearer", 6) == 0) {
            if (fetch_token(g, ch, hint, e) < 0)
                return -1;
            continue;
        }
        return 0;
    }
    return 0;
}

static void short_body(const struct http_response *r, char *out, size_t n)
{
    size_t l = r->body.len < n - 1 ? r->body.len : n - 1;
    memcpy(out, r->body.data ? r->body.data : "", l);
    out[l] = '\0';
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

/* GET url -> JSON, following nothing. */
static int reg_get_json(struct reg *g, const char *url, const char *hint, const char *accept,
                        struct http_response *r, json_object **out, struct err *e)
{
    *out = NULL;
    if (reg_request(g, "GET", url, hint, accept, r, e) < 0)
        return -1;
    if (r->status != 200) {
        char b[200];
        short_body(r, b, sizeof b);
        err_set(e, "GET %s: HTTP %ld %s", url, r->status, b);
        return -1;
    }
    return jd_parse(url, r->body.data, r->body.len, r->content_type, out, e);
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
    } else
        buf_printf(next, "%s%s", g->origin, lt + 1);
    return buf_cstr(next) != NULL;
}

/* ---- scan ------------------------------------------------------------ */

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

/* Appends the non-empty strings of array `key` of j (absent or null: none). */
static int push_strings(json_object *j, const char *key, char ***v, size_t *n, struct err *e)
{
    json_object *arr = NULL;
    if (!json_object_object_get_ex(j, key, &arr) || !json_object_is_type(arr, json_type_array))
        return 0;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(arr, i));
        if (s && *s && strv_push(v, n, s) < 0) {
            err_set(e, "out of memory");
            return -1;
        }
    }
    return 0;
}

static int list_catalog(struct reg *g, char ***names, size_t *n, struct err *e)
{
    struct buf url;
    buf_init(&url, 8192);
    struct http_response r;
    http_response_init(&r);
    int rc = -1;
    bool plain = false;
    buf_printf(&url, "%s/v2/_catalog?n=%d", g->base, CATALOG_PAGE);
    for (int page = 0; page < MAX_PAGES; page++) {
        json_object *j = NULL;
        if (!buf_cstr(&url) ||
            reg_get_json(g, url.data, "registry:catalog:*", NULL, &r, &j, e) < 0) {
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
            goto out;
        }
        int pr = push_strings(j, "repositories", names, n, e);
        json_object_put(j);
        if (pr < 0)
            goto out;
        if (!next_link(g, &r, &url))
            break;
    }
    rc = 0;
out:
    http_response_free(&r);
    buf_free(&url);
    return rc;
}

static int list_tags(struct reg *g, struct cl_repo *rp, struct err *e)
{
    struct buf url, hint;
    buf_init(&url, 8192);
    buf_init(&hint, 1024);
    struct http_response r;
    http_response_init(&r);
    int rc = -1;
    buf_printf(&hint, "repository:%s:pull", rp->name);
    buf_printf(&url, "%s/v2/%s/tags/list", g->base, rp->name);
    char **tags = NULL;
    size_t nt = 0;
    for (int page = 0; page < MAX_PAGES; page++) {
        json_object *j = NULL;
        if (!buf_cstr(&url) || !buf_cstr(&hint) ||
            reg_get_json(g, url.data, hint.data, NULL, &r, &j, e) < 0) {
            if (page == 0 && r.status == 404 && r.body.data &&
                strstr(r.body.data, "NAME_UNKNOWN")) {
                log_debug("cleanup: %s: no tags (NAME_UNKNOWN)", rp->name);
                break; /* listed by the catalog, but without tags */
            }
            goto out;
        }
        /* `tags` may be null (every tag deleted) */
        int pr = push_strings(j, "tags", &tags, &nt, e);
        json_object_put(j);
        if (pr < 0)
            goto out;
        if (!next_link(g, &r, &url))
            break;
    }
    rp->tags = calloc(nt ? nt : 1, sizeof *rp->tags);
    if (!rp->tags) {
        err_set(e, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nt; i++) {
        rp->tags[i].tag = tags[i];
        tags[i] = NULL;
    }
    rp->n_tags = nt;
    rc = 0;
out:
    strv_free(tags, nt);
    http_response_free(&r);
    buf_free(&url);
    buf_free(&hint);
    return rc;
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

/* A fetched manifest: digest, media type and the parsed body. */
struct fetched {
    char digest[160];
    char media_type[128];
    json_object *j;
    size_t size;
};

static int get_manifest(struct reg *g, const char *repo, const char *ref, struct fetched *f,
                        struct err *e)
{
    struct buf url, hint;
    buf_init(&url, 8192);
    buf_init(&hint, 1024);
    struct http_response r;
    http_response_init(&r);
    int rc = -1;
    memset(f, 0, sizeof *f);
    buf_printf(&url, "%s/v2/%s/manifests/%s", g->base, repo, ref);
    buf_printf(&hint, "repository:%s:pull", repo);
    if (!buf_cstr(&url) || !buf_cstr(&hint)) {
        err_set(e, "out of memory");
        goto out;
    }
    if (reg_request(g, "GET", url.data, hint.data, accept_manifests, &r, e) < 0)
        goto out;
    if (r.status != 200) {
        char b[160];
        short_body(&r, b, sizeof b);
        err_set(e, "GET %s: HTTP %ld %s", url.data, r.status, b);
        goto out;
    }
    if (!http_header(&r, "Docker-Content-Digest", f->digest, sizeof f->digest) || !f->digest[0])
        sha256_hex(r.body.data, r.body.len, f->digest);
    f->size = r.body.len;
    if (jd_parse(url.data, r.body.data, r.body.len, r.content_type, &f->j, e) < 0)
        goto out;
    json_object *mt;
    const char *s = NULL;
    if (json_object_object_get_ex(f->j, "mediaType", &mt) &&
        json_object_is_type(mt, json_type_string))
        s = json_object_get_string(mt);
    else
        s = r.content_type;
    snprintf(f->media_type, sizeof f->media_type, "%s", s ? s : "");
    char *semi = strchr(f->media_type, ';');
    if (semi)
        *semi = '\0';
    rc = 0;
out:
    http_response_free(&r);
    buf_free(&url);
    buf_free(&hint);
    return rc;
}

/* On the registry host (storage_path set), a config blob is read from the
 * registry's filesystem storage instead of over HTTP: one request less per
 * image. The content is verified against its sha256 digest; any problem
 * (other layout, missing file, mismatch) returns -1 and HTTP is used. */
static int created_from_disk(const struct reg *g, const char *digest, int64_t *created)
{
    if (!g->storage[0] || strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 71)
        return -1;
    const char *hex = digest + 7;
    for (const char *c = hex; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return -1; /* never a path from outside */
    char path[4096];
    snprintf(path, sizeof path, "%s/docker/registry/v2/blobs/sha256/%.2s/%s/data", g->storage, hex,
             hex);
    char *data = NULL;
    struct err e2;
    struct stat st;
    if (stat(path, &st) < 0 || st.st_size > (4 << 20) ||
        read_file(path, 4u << 20, false, &data, &e2) < 0)
        return -1;
    int rc = -1;
    unsigned char md[32];
    unsigned int mdlen = 0;
    char got[65];
    json_object *j = NULL;
    if (EVP_Digest(data, (size_t)st.st_size, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        goto out;
    for (int i = 0; i < 32; i++)
        snprintf(got + 2 * i, 3, "%02x", md[i]);
    if (strcmp(got, hex) != 0)
        goto out;
    j = json_tokener_parse(data);
    json_object *c;
    *created = 0;
    if (j && json_object_object_get_ex(j, "created", &c) &&
        json_object_is_type(c, json_type_string)) {
        int64_t ms = cl_parse_time(json_object_get_string(c));
        *created = ms > 0 ? ms : 0;
    }
    rc = j ? 0 : -1;
out:
    json_object_put(j);
    free(data);
    return rc;
}

/* The config blob's `created`, 0 when absent or unparsable. */
static int get_created(struct reg *g, const char *repo, const char *digest, int64_t *created,
                       struct err *e)
{
    if (created_from_disk(g, digest, created) == 0)
        return 0;
    struct buf url, hint;
    buf_init(&url, 8192);
    buf_init(&hint, 1024);
    struct http_response r;
    http_response_init(&r);
    json_object *j = NULL;
    int rc = -1;
    *created = 0;
    buf_printf(&url, "%s/v2/%s/blobs/%s", g->base, repo, digest);
    buf_printf(&hint, "repository:%s:pull", repo);
    if (!buf_cstr(&url) || !buf_cstr(&hint)) {
        err_set(e, "out of memory");
        goto out;
    }
    if (reg_request(g, "GET", url.data, hint.data, NULL, &r, e) < 0)
        goto out;
    char loc[4096];
    if (r.status >= 301 && r.status <= 308 && r.status != 304 &&
        http_header(&r, "Location", loc, sizeof loc) && strstr(loc, "://")) {
        /* blob storage behind a redirect (S3, GCS, CDN): a pre-signed URL
         * that must get no credentials, so the plain client, no token */
        log_debug("cleanup: %s@%s: config blob redirected", repo, digest);
        if (http_request(g->plain, "GET", loc, NULL, 0, NULL, 0, 0, &r) < 0) {
            err_set(e, "GET %s (redirected): %s", url.data, r.error);
            goto out;
        }
    }
    if (r.status != 200) {
        char b[160];
        short_body(&r, b, sizeof b);
        err_set(e, "GET %s: HTTP %ld %s", url.data, r.status, b);
        goto out;
    }
    if (jd_parse(url.data, r.body.data, r.body.len, r.content_type, &j, e) < 0)
        goto out;
    json_object *c;
    if (json_object_object_get_ex(j, "created", &c) && json_object_is_type(c, json_type_string)) {
        int64_t ms = cl_parse_time(json_object_get_string(c));
        *created = ms > 0 ? ms : 0;
    }
    rc = 0;
out:
    json_object_put(j);
    http_response_free(&r);
    buf_free(&url);
    buf_free(&hint);
    return rc;
}

static bool is_index_type(const char *mt, json_object *j)
{
    if (strcmp(mt, "application/vnd.docker.distribution.manifest.list.v2+json") == 0 ||
        strcmp(mt, "application/vnd.oci.image.index.v1+json") == 0)
        return true;
    json_object *m;
    return json_object_object_get_ex(j, "manifests", &m) && json_object_is_type(m, json_type_array);
}

static int add_blob(struct cl_manifest *m, const char *digest, uint64_t size)
{
    for (size_t i = 0; i < m->n_blobs; i++)
        if (strcmp(m->blobs[i].digest, digest) == 0)
            return 0;
    struct cl_blob *nb = realloc(m->blobs, (m->n_blobs + 1) * sizeof *nb);
    if (!nb)
        return -1;
    m->blobs = nb;
    if (!(nb[m->n_blobs].digest = strdup(digest)))
        return -1;
    nb[m->n_blobs++].size = size;
    return 0;
}

static int json_digest_size(json_object *o, const char **digest, uint64_t *size)
{
    json_object *d, *s;
    if (!json_object_object_get_ex(o, "digest", &d) || !json_object_is_type(d, json_type_string))
        return -1;
    *digest = json_object_get_string(d);
    *size = json_object_object_get_ex(o, "size", &s) ? (uint64_t)json_object_get_int64(s) : 0;
    return 0;
}

/* An image manifest's blobs (config + layers) into m; its created date. */
static int image_details(struct reg *g, const char *repo, json_object *j, struct cl_manifest *m,
                         int64_t *created, struct err *e)
{
    json_object *cfg, *layers;
    const char *d;
    uint64_t sz;
    *created = 0;
    if (json_object_object_get_ex(j, "config", &cfg) && json_digest_size(cfg, &d, &sz) == 0) {
        if (add_blob(m, d, sz) < 0)
            goto oom;
        if (get_created(g, repo, d, created, e) < 0)
            return -1;
    }
    if (json_object_object_get_ex(j, "layers", &layers) &&
        json_object_is_type(layers, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(layers); i++)
            if (json_digest_size(json_object_array_get_idx(layers, i), &d, &sz) == 0 &&
                add_blob(m, d, sz) < 0)
                goto oom;
    }
    return 0;
oom:
    err_set(e, "out of memory");
    return -1;
}

/* Fills a distinct manifest from its body: kind, blobs, creation date
 * (an index: the newest child), children. */
static int manifest_details(struct reg *g, const char *repo, struct cl_manifest *m, json_object *j,
                            struct err *e)
{
    if (add_blob(m, m->digest, m->size) < 0) {
        err_set(e, "out of memory");
        return -1;
    }
    if (!m->is_index)
        return image_details(g, repo, j, m, &m->created_ms, e);
    json_object *arr;
    json_object_object_get_ex(j, "manifests", &arr);
    int64_t newest = 0;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        const char *d;
        uint64_t sz;
        if (json_digest_size(json_object_array_get_idx(arr, i), &d, &sz) < 0)
            continue;
        if (strv_push(&m->children, &m->n_children, d) < 0 || add_blob(m, d, sz) < 0) {
            err_set(e, "out of memory");
            return -1;
        }
        struct fetched cf;
        if (get_manifest(g, repo, d, &cf, e) < 0)
            return -1;
        int64_t c = 0;
        int rc = 0;
        if (!is_index_type(cf.media_type, cf.j)) /* nested indexes: blobs not followed */
            rc = image_details(g, repo, cf.j, m, &c, e);
        json_object_put(cf.j);
        if (rc < 0)
            return -1;
        if (c > newest)
            newest = c;
        log_debug("cleanup: %s@%s: child %s created %lld", repo, m->digest, d, (long long)c);
    }
    m->created_ms = newest;
    return 0;
}

/* ---- parallel work ------------------------------------------------------ */

struct tag_job {
    struct cl_repo *rp;
    struct cl_tag *t;
    json_object *body; /* the manifest, kept until its details are read */
    char media_type[128];
    size_t size;
};

struct man_job {
    struct cl_repo *rp;
    struct cl_manifest *m;
    json_object *body; /* borrowed from a tag job */
    char error[256];
};

struct pool {
    const struct cfg_cleanup *cc;
    const struct cleanup_opts *o;
    const char *base;
    const volatile sig_atomic_t *stop;
    atomic_size_t next;
    size_t n;
    int phase; /* 0 tags lists, 1 tag manifests, 2 manifest details */
    struct tokens *tok;
    struct cl_repo *repos;
    struct tag_job *tj;
    struct man_job *mj;
};

static void do_item(struct pool *p, struct reg *g, size_t i)
{
    struct err e = {{0}};
    if (p->phase == 0) {
        struct cl_repo *rp = &p->repos[i];
        if (list_tags(g, rp, &e) < 0) {
            snprintf(rp->error, sizeof rp->error, "%s", e.msg);
            log_error("cleanup: %s: cannot list tags: %s", rp->name, e.msg);
        }
    } else if (p->phase == 1) {
        struct tag_job *tj = &p->tj[i];
        struct fetched f;
        if (get_manifest(g, tj->rp->name, tj->t->tag, &f, &e) < 0) {
            snprintf(tj->t->error, sizeof tj->t->error, "%s", e.msg);
            log_error("cleanup: %s:%s: %s", tj->rp->name, tj->t->tag, e.msg);
            return;
        }
        tj->t->digest = strdup(f.digest);
        tj->body = f.j;
        tj->size = f.size;
        snprintf(tj->media_type, sizeof tj->media_type, "%s", f.media_type);
        log_debug("cleanup: %s:%s -> %s (%s, %zu bytes)", tj->rp->name, tj->t->tag, f.digest,
                  f.media_type, f.size);
    } else {
        struct man_job *mj = &p->mj[i];
        if (manifest_details(g, mj->rp->name, mj->m, mj->body, &e) < 0) {
            snprintf(mj->error, sizeof mj->error, "%s", e.msg);
            log_error("cleanup: %s@%s: %s", mj->rp->name, mj->m->digest, e.msg);
        }
    }
}

static void *worker(void *arg)
{
    struct pool *p = arg;
    struct reg *g = reg_new(p->base, p->cc, p->o, p->tok, p->stop);
    if (!g)
        return NULL;
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n)
            break;
        do_item(p, g, i);
    }
    reg_free(g);
    return NULL;
}

/* Runs items 0..n-1 of the current phase on up to `concurrency` threads
 * (each with its own connections and token cache). */
static void run_pool(struct pool *p, size_t n)
{
    p->n = n;
    atomic_store(&p->next, 0);
    size_t nt = p->o->concurrency > 0 ? (size_t)p->o->concurrency : 1;
    if (nt > 64)
        nt = 64;
    if (nt > n)
        nt = n;
    if (nt <= 1) {
        if (n)
            worker(p);
        return;
    }
    pthread_t th[64];
    size_t started = 0;
    for (size_t i = 0; i < nt; i++)
        if (pthread_create(&th[i], NULL, worker, p) == 0)
            started++;
        else
            break;
    if (!started)
        worker(p);
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
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

/* Deletes one manifest by digest. Returns 0 (deleted or gone), -1 error,
 * -2 deletion disabled (405). */
static int delete_manifest(struct reg *g, struct cl_repo *rp, struct cl_manifest *m,
                           struct cleanup_result *res)
{
    struct buf url, hint;
    buf_init(&url, 8192);
    buf_init(&hint, 1024);
    struct http_response r;
    http_response_init(&r);
    struct err e = {{0}};
    int rc = -1;
    buf_printf(&url, "%s/v2/%s/manifests/%s", g->base, rp->name, m->digest);
    buf_printf(&hint, "repository:%s:delete", rp->name);
    if (!buf_cstr(&url) || !buf_cstr(&hint)) {
        snprintf(m->result, sizeof m->result, "error: out of memory");
        goto out;
    }
    if (reg_request(g, "DELETE", url.data, hint.data, NULL, &r, &e) < 0) {
        snprintf(m->result, sizeof m->result, "error");
        log_error("cleanup: %s", e.msg);
        goto out;
    }
    if (r.status == 202 || r.status == 200) {
        snprintf(m->result, sizeof m->result, "deleted");
        res->manifests_deleted++;
        log_info("%s@%s: deleted", rp->name, m->digest);
        rc = 0;
    } else if (r.status == 404) {
        snprintf(m->result, sizeof m->result, "already gone");
        res->manifests_gone++;
        log_info("%s@%s: already gone (404)", rp->name, m->digest);
        rc = 0;
    } else if (r.status == 405) {
        snprintf(m->result, sizeof m->result, "delete disabled");
        rc = -2;
    } else {
        char b[200];
        short_body(&r, b, sizeof b);
        snprintf(m->result, sizeof m->result, "error: HTTP %ld", r.status);
        log_error("cleanup: DELETE %s@%s: HTTP %ld %s", rp->name, m->digest, r.status, b);
    }
out:
    http_response_free(&r);
    buf_free(&url);
    buf_free(&hint);
    return rc;
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

/* Runs a command (execvp, no shell), logging its output line by line.
 * Returns the exit status (or -1 if it could not run). `summary` gets the
 * last line mentioning "eligible for deletion". */
static int run_command(const char *what, const char *cmd, const struct cleanup_opts *o,
                       char *summary, size_t sn)
{
    size_t argc;
    char **argv = build_argv(cmd, o, &argc);
    if (!argv || !argc) {
        strv_free(argv, argc);
        log_error("cleanup: %s: empty command", what);
        return -1;
    }
    log_info("cleanup: %s: running %s", what, cmd);
    int pfd[2];
    if (pipe(pfd) < 0) {
        strv_free(argv, argc);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        strv_free(argv, argc);
        return -1;
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    FILE *f = fdopen(pfd[0], "r");
    char line[2048];
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        log_info("cleanup: %s: %s", what, line);
        if (summary && strstr(line, "eligible for deletion"))
            snprintf(summary, sn, "%s", line);
    }
    if (f)
        fclose(f);
    else
        close(pfd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    strv_free(argv, argc);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (code != 0)
        log_error("cleanup: %s exited with status %d", what, code);
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
    struct tokens tok = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct pool p = {.cc = cc, .o = o, .stop = stop, .tok = &tok};
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
    if (!(res->registry = strdup(cc->registry_url)))
        goto oom;
    size_t bl = strlen(res->registry);
    while (bl > 0 && res->registry[bl - 1] == '/')
        res->registry[--bl] = '\0';
    if (bl >= 3 && strcmp(res->registry + bl - 3, "/v2") == 0)
        res->registry[bl - 3] = '\0';
    p.base = res->registry;
    if (!(g = reg_new(res->registry, cc, o, &tok, stop)))
        goto oom;
    rc = 0; /* from here on, problems are the run's status, not a setup error */
    log_info("cleanup: %s%s: days_to_keep=%lld keep_last=%lld", res->registry,
             dry_run ? " (dry run)" : "", (long long)cc->days_to_keep, (long long)cc->keep_last);

    struct err ce = {{0}};
    if (list_catalog(g, &names, &n_names, &ce) < 0) {
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
    p.repos = res->repos;
    p.phase = 0;
    run_pool(&p, res->n_repos);

    size_t nt = 0;
    for (size_t r = 0; r < res->n_repos; r++) {
        qsort(res->repos[r].tags, res->repos[r].n_tags, sizeof *res->repos[r].tags, cmp_tag);
        nt += res->repos[r].n_tags;
    }
    p.tj = calloc(nt ? nt : 1, sizeof *p.tj);
    if (!p.tj)
        goto oom_run;
    size_t k = 0;
    for (size_t r = 0; r < res->n_repos; r++)
        for (size_t i = 0; i < res->repos[r].n_tags; i++)
            p.tj[k++] = (struct tag_job){.rp = &res->repos[r], .t = &res->repos[r].tags[i]};
    p.phase = 1;
    run_pool(&p, nt);

    /* distinct digests per repository */
    size_t nm = 0;
    for (size_t i = 0; i < nt; i++) {
        struct tag_job *tj = &p.tj[i];
        if (!tj->t->digest || find_m(tj->rp, tj->t->digest))
            continue;
        struct cl_manifest *m = add_m(tj->rp, tj->t->digest);
        if (!m || !(m->media_type = strdup(tj->media_type)))
            goto oom_run;
        m->size = tj->size;
        m->is_index = is_index_type(tj->media_type, tj->body);
        nm++;
    }
    p.mj = calloc(nm ? nm : 1, sizeof *p.mj);
    if (!p.mj)
        goto oom_run;
    k = 0;
    for (size_t r = 0; r < res->n_repos; r++)
        for (size_t i = 0; i < res->repos[r].n_m; i++) {
            struct man_job *mj = &p.mj[k++];
            mj->rp = &res->repos[r];
            mj->m = &res->repos[r].m[i];
            for (size_t t = 0; t < nt; t++)
                if (p.tj[t].rp == mj->rp && p.tj[t].t->digest &&
                    strcmp(p.tj[t].t->digest, mj->m->digest) == 0) {
                    mj->body = p.tj[t].body;
                    break;
                }
        }
    p.phase = 2;
    run_pool(&p, nm);
    for (size_t i = 0; i < nm; i++)
        if (p.mj[i].error[0]) /* details unknown: keep it, and its repository untouched */
            snprintf(p.mj[i].m->result, sizeof p.mj[i].m->result, "!%.60s", p.mj[i].error);
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

    /* indexes first, then images, then children of deleted indexes */
    for (int pass = 0; pass < 3; pass++) {
        for (size_t r = 0; r < res->n_repos; r++) {
            struct cl_repo *rp = &res->repos[r];
            for (size_t i = 0; i < rp->n_m; i++) {
                struct cl_manifest *m = &rp->m[i];
                int want = m->child_only ? 2 : m->is_index ? 0 : 1;
                if (!m->delete || want != pass)
                    continue;
                if (stop && *stop) {
                    res->status = CL_FAILED;
                    snprintf(res->message, sizeof res->message, "stopped by a signal");
                    goto deleted;
                }
                int d = delete_manifest(g, rp, m, res);
                if (d == -2) {
                    res->status = CL_DELETE_DISABLED;
                    snprintf(res->message, sizeof res->message,
                             "the registry refuses deletes (HTTP 405 UNSUPPORTED): set "
                             "storage.delete.enabled: true in its config.yml (or "
                             "REGISTRY_STORAGE_DELETE_ENABLED=true) and restart it; "
                             "nothing else was deleted");
                    log_error("cleanup: %s", res->message);
                    goto deleted;
                }
                if (d < 0) {
                    res->errors++;
                    res->status = CL_FAILED;
                } else {
                    for (size_t t = 0; t < rp->n_tags; t++)
                        if (rp->tags[t].digest && rp->tags[t].reason == CL_REASON_DELETE &&
                            strcmp(rp->tags[t].digest, m->digest) == 0)
                            res->tags_deleted++;
                }
            }
        }
    }
deleted:
    if (res->manifests_deleted > 0 && res->status != CL_DELETE_DISABLED) {
        if (o->gc_command && *o->gc_command) {
            if (o->storage_path && *o->storage_path)
                res->du_before = cl_du(o->storage_path);
            if (o->pre_gc_command && *o->pre_gc_command &&
                run_command("pre_gc_command", o->pre_gc_command, o, NULL, 0) != 0) {
                res->errors++;
                res->status = CL_FAILED;
                snprintf(res->message, sizeof res->message, "pre_gc_command failed: no GC run");
            } else {
                res->gc_ran = true;
                res->gc_exit = run_command("garbage-collect", o->gc_command, o, res->gc_summary,
                                           sizeof res->gc_summary);
                if (res->gc_exit != 0) {
                    res->errors++;
                    res->status = CL_FAILED;
                    snprintf(res->message, sizeof res->message,
                             "garbage collection exited with status %d", res->gc_exit);
                }
                if (o->post_gc_command && *o->post_gc_command &&
                    run_command("post_gc_command", o->post_gc_command, o, NULL, 0) != 0) {
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
    if (p.tj) {
        size_t total = 0;
        for (size_t r = 0; r < res->n_repos; r++)
            total += res->repos[r].n_tags;
        for (size_t i = 0; i < total; i++)
            json_object_put(p.tj[i].body);
    }
    free(p.tj);
    free(p.mj);
    strv_free(names, n_names);
    reg_free(g);
    tokens_free(&tok);
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
