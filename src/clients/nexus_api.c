#include "nexus_api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

#define BACKOFF_CAP_MS 2000

/* ---- target-independent REST GETs ----------------------------------- */

int rest_get(const struct rest_target *t, const char *path, int64_t deadline_mono_ms,
             struct http_response *r, int *attempts_used)
{
    struct buf url;
    buf_init(&url, 0);
    int rc = -1;
    if (buf_printf(&url, "%s%s", t->base, path) < 0) {
        snprintf(r->error, sizeof r->error, "out of memory");
        r->status = 0;
        goto out;
    }
    const char *accept = "Accept: application/json";
    int64_t pause = t->backoff_ms > 0 ? t->backoff_ms : 200;
    for (int i = 1;; i++) {
        r->max_body = t->max_answer ? t->max_answer(path) : 0;
        rc = http_request(t->http, "GET", url.data, &accept, 1, NULL, 0, deadline_mono_ms, r);
        if (attempts_used)
            *attempts_used = i;
        bool retry = rc < 0 ? strncmp(r->error, "answer larger", 13) != 0 &&
                                  strncmp(r->error, "deadline", 8) != 0 &&
                                  strncmp(r->error, "aborted", 7) != 0 &&
                                  strcmp(r->error, "out of memory") != 0
                            : r->status >= 500 && r->status <= 599;
        if (!retry || i >= t->attempts)
            break;
        int64_t wait = pause;
        if (rc == 0 && r->retry_after_ms > wait)
            wait = r->retry_after_ms > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : r->retry_after_ms;
        /* only when the deadline leaves room for the pause and some answer time */
        if (deadline_mono_ms && mono_ms() + wait + 50 >= deadline_mono_ms)
            break;
        if (rc < 0)
            log_debug("GET %s: %s; try %d of %d in %lld ms", path, r->error, i + 1, t->attempts,
                      (long long)wait);
        else
            log_debug("GET %s: HTTP %ld; try %d of %d in %lld ms", path, r->status, i + 1,
                      t->attempts, (long long)wait);
        sleep_until_mono(mono_ms() + wait);
        pause = pause * 2 > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : pause * 2;
    }
out:
    buf_free(&url);
    return rc;
}

/* A short, single-line excerpt of an error body ("" when empty). */
static void excerpt(const struct http_response *r, char *out, size_t n)
{
    size_t k = 0;
    const char *b = r->body.data;
    for (size_t i = 0; b && i < r->body.len && k + 1 < n; i++) {
        unsigned char c = (unsigned char)b[i];
        if (c < 0x20) {
            if (k && out[k - 1] != ' ')
                out[k++] = ' ';
        } else {
            out[k++] = (char)c;
        }
    }
    while (k && out[k - 1] == ' ')
        k--;
    out[k] = '\0';
}

int rest_get_json(const struct rest_target *t, const char *path, const char *what,
                  int64_t deadline_mono_ms, json_object **out, struct http_response *r,
                  struct err *e)
{
    struct http_response own;
    char whatbuf[512];
    int rc = -1, tries = 0;
    *out = NULL;
    if (!r) {
        http_response_init(&own);
        r = &own;
    }
    if (!what) {
        snprintf(whatbuf, sizeof whatbuf, "GET %s", path);
        what = whatbuf;
    }
    char again[32] = "";
    if (rest_get(t, path, deadline_mono_ms, r, &tries) < 0) {
        if (tries > 1)
            snprintf(again, sizeof again, " (after %d tries)", tries);
        err_set(e, "%s: %s%s", what, r->error, again);
        goto out;
    }
    if (tries > 1)
        snprintf(again, sizeof again, " (after %d tries)", tries);
    if (r->status < 200 || r->status > 299) {
        char body[120];
        excerpt(r, body, sizeof body);
        if ((r->status == 401 || r->status == 403) && t->auth_hint)
            err_set(e, "%s: HTTP %ld: %s", what, r->status, t->auth_hint);
        else if (*body && r->status >= 400 && r->status < 500)
            err_set(e, "%s: HTTP %ld%s: %s", what, r->status, again, body);
        else
            err_set(e, "%s: HTTP %ld%s", what, r->status, again);
        goto out;
    }
    rc = jd_parse(what, r->body.data, r->body.len, r->content_type, out, e);
out:
    if (r == &own)
        http_response_free(&own);
    return rc;
}

/* ---- Nexus ---------------------------------------------------------- */

/* What a real Nexus answers, with room to spare (issue 18: a hostile one
 * must not make us read 16 MiB of [[],[],...] where 20 kB are expected).
 * The repository listings may be large (thousands of repositories): they
 * get the client's cap (16 MiB). */
static size_t nexus_max_answer(const char *path)
{
    static const struct {
        const char *prefix;
        size_t max;
    } caps[] = {
        {"/service/rest/v1/status", 1u << 20},       /* status, check (11 checks), writable */
        {"/service/rest/v1/blobstores", 1u << 20},   /* stores and their quota status */
        {"/service/rest/v1/security/ssl", 1u << 20}, /* one certificate */
        {"/service/rest/v1/tasks", 4u << 20},        /* a page of tasks */
        {"/service/rest/v1/components", 8u << 20},   /* a page of components with assets */
    };
    for (size_t i = 0; i < NS_ARRAY_LEN(caps); i++)
        if (strncmp(path, caps[i].prefix, strlen(caps[i].prefix)) == 0)
            return caps[i].max;
    return 0;
}

struct nexus_api *nexus_api_new(const struct cfg_nexus *nx, struct err *e)
{
    struct nexus_api *a = calloc(1, sizeof *a);
    if (!a || !(a->base = strdup(nx->url)))
        goto oom;
    a->cfg = nx;
    size_t n = strlen(a->base);
    while (n && a->base[n - 1] == '/')
        a->base[--n] = '\0';
    char host[256], shown[URL_REDACT_MAX];
    if (url_split(a->base, &a->https, host, sizeof host, NULL) < 0) {
        err_set(e, "[nexus] url %s: cannot find the host name",
                url_redact(nx->url, shown, sizeof shown));
        goto fail;
    }
    if (!(a->host = strdup(host)) ||
        !(a->docker_host = strdup(nx->docker_host && *nx->docker_host ? nx->docker_host : host)))
        goto oom;
    struct http_opts o = {
        .timeout_ms = nx->timeout_ms,
        .user = nx->username,
        .password = nx->password,
        .ca_file = nx->ca_file,
        .insecure = nx->insecure_skip_verify,
        .max_response = 16u << 20, /* a real Nexus: a few MiB (/v1/repositories of thousands) */
    };
    if (!(a->http = http_client_new(&o)))
        goto oom;
    /* probes carry no credentials: repository URLs may point elsewhere */
    struct http_opts po = {
        .timeout_ms = nx->timeout_ms,
        .ca_file = nx->ca_file,
        .insecure = nx->insecure_skip_verify,
        .max_response = 8u << 20,
    };
    if (!(a->probe = http_client_new(&po)))
        goto oom;
    a->rest = (struct rest_target){
        .http = a->http,
        .base = a->base,
        .auth_hint = "check [nexus] username and password_file (the user needs nx-metrics-all "
                     "and browse privileges)",
        .attempts = 3,
        .backoff_ms = 200,
        .max_answer = nexus_max_answer,
    };
    return a;
oom:
    err_set(e, "out of memory");
fail:
    nexus_api_free(a);
    return NULL;
}

void nexus_api_free(struct nexus_api *a)
{
    if (!a)
        return;
    http_client_free(a->http);
    http_client_free(a->probe);
    free(a->base);
    free(a->host);
    free(a->docker_host);
    free(a);
}

int nexus_api_url(const struct nexus_api *a, const char *path, struct buf *out)
{
    buf_reset(out);
    return buf_printf(out, "%s%s", a->base, path);
}

int nexus_get_json(struct nexus_api *a, const char *path, int64_t deadline_mono_ms,
                   json_object **out, struct err *e)
{
    return rest_get_json(&a->rest, path, NULL, deadline_mono_ms, out, NULL, e);
}

/* FNV-1a of a continuation token, for spotting one that comes back. */
static uint64_t token_hash(const char *s)
{
    uint64_t h = 14695981039346656037u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

int nexus_get_pages(struct nexus_api *a, const char *path, int64_t deadline_mono_ms,
                    size_t max_pages, nexus_page_fn fn, void *ud, bool *truncated, struct err *e)
{
    struct buf p, tok;
    buf_init(&p, 0);
    buf_init(&tok, 4096);
    uint64_t *seen = NULL; /* hashes of the tokens followed so far */
    size_t nseen = 0, capseen = 0;
    json_object *j = NULL;
    int rc = -1;
    if (truncated)
        *truncated = false;
    const char *sep = strchr(path, '?') ? "&" : "?";
    for (size_t page = 1;; page++) {
        if (max_pages && page > max_pages) {
            if (truncated)
                *truncated = true;
            break;
        }
        buf_reset(&p);
        if (buf_puts(&p, path) < 0)
            goto oom;
        if (tok.len) {
            if (buf_printf(&p, "%scontinuationToken=", sep) < 0 || url_escape(tok.data, &p) < 0)
                goto oom;
        }
        char what[600];
        if (page == 1)
            snprintf(what, sizeof what, "GET %s", path);
        else
            snprintf(what, sizeof what, "GET %s (page %zu)", path, page);
        json_object_put(j);
        j = NULL;
        if (rest_get_json(&a->rest, p.data, what, deadline_mono_ms, &j, NULL, e) < 0)
            goto out;
        struct jdec d;
        jd_init(&d, what, e);
        json_object *top, *items;
        size_t n = 0;
        const char *next = NULL;
        if (jd_object(&d, j, NULL, 0, &top) < 0 || jd_array(&d, top, "items", 0, &items, &n) < 0 ||
            jd_string(&d, top, "continuationToken", JD_MAYBE, &next) < 0)
            goto out;
        size_t m = jd_push_key(&d, "items");
        if (fn(ud, &d, items, n) < 0)
            goto out;
        jd_pop(&d, m);
        if (!next || !*next || n == 0)
            break;
        buf_reset(&tok);
        if (buf_puts(&tok, next) < 0) {
            err_set(e, "%s: continuationToken longer than %zu bytes", what, tok.max);
            goto out;
        }
        /* a token seen before means pages in a cycle: the listing would
         * never end (without max_pages) or repeat items until the limit */
        uint64_t h = token_hash(tok.data);
        for (size_t i = 0; i < nseen; i++)
            if (seen[i] == h) {
                err_set(e,
                        "%s: continuationToken repeats an earlier one (the listing would never "
                        "end)",
                        what);
                goto out;
            }
        if (nseen == capseen) {
            size_t nc = capseen ? capseen * 2 : 16;
            uint64_t *ns = realloc(seen, nc * sizeof *ns);
            if (!ns)
                goto oom;
            seen = ns;
            capseen = nc;
        }
        seen[nseen++] = h;
    }
    rc = 0;
    goto out;
oom:
    err_set(e, "GET %s: out of memory", path);
out:
    json_object_put(j);
    buf_free(&p);
    buf_free(&tok);
    free(seen);
    return rc;
}

void docker_conns_free(struct docker_conn *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].repository);
    free(v);
}

int nexus_probe(struct nexus_api *a, const char *url, int64_t deadline_mono_ms,
                struct http_response *r, struct err *e, const char *who, const char *what_fmt, ...)
{
    if (http_request(a->probe, "GET", url, NULL, 0, NULL, 0, deadline_mono_ms, r) == 0)
        return 0;
    char shown[URL_REDACT_MAX];
    if (deadline_mono_ms && mono_ms() >= deadline_mono_ms) {
        char what[256];
        va_list ap;
        va_start(ap, what_fmt);
        vsnprintf(what, sizeof what, what_fmt, ap);
        va_end(ap);
        err_set(e, "deadline reached while probing %s (GET %s)", what,
                url_redact(url, shown, sizeof shown));
        return -1;
    }
    log_debug("%s: GET %s: %s", who, url_redact(url, shown, sizeof shown), r->error);
    r->status = 0;
    return 0;
}

int nexus_get_array(struct nexus_api *a, const char *path, const char *what, int64_t deadline,
                    json_object **j, struct jdec *d, json_object **arr, size_t *len, struct err *e)
{
    if (nexus_get_json(a, path, deadline, j, e) < 0)
        return -1;
    jd_init(d, what, e);
    return jd_array(d, *j, NULL, 0, arr, len);
}

int nexus_docker_connectors(struct nexus_api *a, int64_t deadline_mono_ms, struct docker_conn **out,
                            size_t *n, struct err *e)
{
    static const char path[] = "/service/rest/v1/repositorySettings";
    json_object *j = NULL;
    struct docker_conn *v = NULL;
    size_t nv = 0;
    int rc = -1;
    *out = NULL;
    *n = 0;
    struct jdec d;
    json_object *arr;
    size_t len;
    if (nexus_get_array(a, path, "GET /service/rest/v1/repositorySettings", deadline_mono_ms, &j,
                        &d, &arr, &len, e) < 0)
        goto out;
    if (len && !(v = calloc(2 * len, sizeof *v)))
        goto oom;
    for (size_t i = 0; i < len; i++) {
        size_t m = jd_push_index(&d, i);
        json_object *r, *dk = NULL;
        const char *name, *fmt;
        if (jd_object(&d, json_object_array_get_idx(arr, i), NULL, 0, &r) < 0 ||
            jd_string(&d, r, "name", 0, &name) < 0 || jd_string(&d, r, "format", 0, &fmt) < 0)
            goto out;
        if (strcmp(fmt, "docker") != 0) {
            jd_pop(&d, m);
            continue;
        }
        if (jd_object(&d, r, "docker", JD_MAYBE, &dk) < 0)
            goto out;
        if (dk) {
            size_t m2 = jd_push_key(&d, "docker");
            static const char *const keys[] = {"httpPort", "httpsPort"};
            for (int k = 0; k < 2; k++) {
                int64_t port;
                int got = jd_int64(&d, dk, keys[k], JD_MAYBE, &port);
                if (got < 0)
                    goto out;
                if (!got)
                    continue;
                if (port < 1 || port > 65535) {
                    jd_fail(&d, keys[k], "port %lld out of range", (long long)port);
                    goto out;
                }
                if (!(v[nv].repository = strdup(name)))
                    goto oom;
                v[nv].port = (int)port;
                v[nv].https = k == 1;
                nv++;
            }
            jd_pop(&d, m2);
        }
        jd_pop(&d, m);
    }
    *out = v;
    *n = nv;
    v = NULL;
    rc = 0;
    goto out;
oom:
    err_set(e, "GET %s: out of memory", path);
out:
    docker_conns_free(v, nv);
    json_object_put(j);
    return rc;
}

void nexus_repos_free(struct nexus_repo *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].name);
        free(v[i].format);
        free(v[i].type);
    }
    free(v);
}

int nexus_list_repositories(struct nexus_api *a, int64_t deadline_mono_ms, const char *format,
                            const char *type, struct nexus_repo **out, size_t *n, struct err *e)
{
    static const char path[] = "/service/rest/v1/repositories";
    json_object *j = NULL;
    struct nexus_repo *v = NULL;
    size_t nv = 0;
    int rc = -1;
    *out = NULL;
    *n = 0;
    struct jdec d;
    json_object *arr;
    size_t len;
    if (nexus_get_array(a, path, "GET /service/rest/v1/repositories", deadline_mono_ms, &j, &d,
                        &arr, &len, e) < 0)
        goto out;
    if (len && !(v = calloc(len, sizeof *v)))
        goto oom;
    for (size_t i = 0; i < len; i++) {
        size_t m = jd_push_index(&d, i);
        json_object *r;
        const char *name, *fmt, *typ;
        if (jd_object(&d, json_object_array_get_idx(arr, i), NULL, 0, &r) < 0 ||
            jd_string(&d, r, "name", 0, &name) < 0 || jd_string(&d, r, "format", 0, &fmt) < 0 ||
            jd_string(&d, r, "type", 0, &typ) < 0)
            goto out;
        jd_pop(&d, m);
        if (format && strcmp(fmt, format) != 0)
            continue;
        if (type ? strcmp(typ, type) != 0 : strcmp(typ, "group") == 0)
            continue;
        if (!(v[nv].name = strdup(name)) || !(v[nv].format = strdup(fmt)) ||
            !(v[nv].type = strdup(typ))) {
            nv++;
            goto oom;
        }
        nv++;
    }
    *out = v;
    *n = nv;
    v = NULL;
    nv = 0;
    rc = 0;
    goto out;
oom:
    err_set(e, "GET %s: out of memory", path);
out:
    nexus_repos_free(v, nv);
    json_object_put(j);
    return rc;
}
