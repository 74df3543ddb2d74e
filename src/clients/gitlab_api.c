#include "gitlab_api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct gitlab_api *gitlab_api_new(const struct cfg_gitlab *gc, struct err *e)
{
    struct gitlab_api *g = calloc(1, sizeof *g);
    struct buf b;
    buf_init(&b, 0);
    if (!g)
        goto oom;
    if (buf_puts(&b, gc->url) < 0)
        goto oom;
    while (b.len && b.data[b.len - 1] == '/')
        b.data[--b.len] = '\0';
    if (buf_puts(&b, "/api/v4") < 0)
        goto oom;
    g->base = b.data;
    b.data = NULL;
    const char *token = gc->token ? gc->token : "";
    size_t nh = 0;
    if (*token) {
        if (strpbrk(token, "\r\n")) {
            err_set(e, "[gitlab] token_file: the token holds a line break");
            goto fail;
        }
        size_t len = strlen(token) + sizeof "PRIVATE-TOKEN: ";
        if (!(g->token_hdr = malloc(len)))
            goto oom;
        snprintf(g->token_hdr, len, "PRIVATE-TOKEN: %s", token);
        g->hdrs[nh++] = g->token_hdr;
    }
    struct http_opts o = {
        .timeout_ms = gc->timeout_ms,
        .ca_file = gc->ca_file,
        .headers = g->hdrs,
        .n_headers = nh,
        .max_response = 8u << 20, /* pages of at most 100 projects, branches or tags */
    };
    if (!(g->http = http_client_new(&o)))
        goto oom;
    g->rest = (struct rest_target){
        .http = g->http,
        .base = g->base,
        .auth_hint = "check [gitlab] token_file (a token with read_api scope)",
        .attempts = 3,
        .backoff_ms = 200,
    };
    return g;
oom:
    err_set(e, "out of memory");
fail:
    buf_free(&b);
    gitlab_api_free(g);
    return NULL;
}

void gitlab_api_free(struct gitlab_api *g)
{
    if (!g)
        return;
    http_client_free(g->http);
    free(g->base);
    free(g->token_hdr);
    free(g);
}

int gitlab_get_json(struct gitlab_api *g, const char *path, int64_t deadline_mono_ms,
                    json_object **out, long *status, struct err *e)
{
    struct http_response r;
    http_response_init(&r);
    char what[600];
    snprintf(what, sizeof what, "GET /api/v4%s", path);
    int rc = rest_get_json(&g->rest, path, what, deadline_mono_ms, out, &r, e);
    if (status)
        *status = r.status;
    http_response_free(&r);
    return rc;
}

static long parse_page(const char *s)
{
    long v = 0;
    if (!isdigit((unsigned char)*s))
        return 0;
    for (; isdigit((unsigned char)*s); s++) {
        if (v > 100000000)
            return 0;
        v = v * 10 + (*s - '0');
    }
    return v;
}

long gitlab_next_page(const struct http_response *r)
{
    char v[64];
    if (http_header(r, "X-Next-Page", v, sizeof v)) {
        if (!*v)
            return 0;
        return parse_page(v);
    }
    char link[4096], next[4096];
    if (!http_header(r, "Link", link, sizeof link) || !link_next(link, next, sizeof next))
        return 0;
    for (char *q = next; (q = strstr(q, "page=")); q += 5)
        if (q > next && (q[-1] == '?' || q[-1] == '&'))
            return parse_page(q + 5);
    return 0;
}

int gitlab_get_pages(struct gitlab_api *g, const char *path, int64_t deadline_mono_ms,
                     size_t max_pages, gitlab_page_fn fn, void *ud, bool *truncated, struct err *e)
{
    struct buf p;
    struct http_response r;
    buf_init(&p, 0);
    http_response_init(&r);
    json_object *j = NULL;
    int rc = -1;
    if (truncated)
        *truncated = false;
    const char *sep = strchr(path, '?') ? "&" : "?";
    long page = 1;
    for (size_t count = 1;; count++) {
        if (max_pages && count > max_pages) {
            if (truncated)
                *truncated = true;
            break;
        }
        buf_reset(&p);
        if (buf_printf(&p, "%s%sper_page=100&page=%ld", path, sep, page) < 0) {
            err_set(e, "out of memory");
            goto out;
        }
        char what[600];
        snprintf(what, sizeof what, "GET /api/v4%s", p.data);
        json_object_put(j);
        j = NULL;
        if (rest_get_json(&g->rest, p.data, what, deadline_mono_ms, &j, &r, e) < 0)
            goto out;
        struct jdec d;
        jd_init(&d, what, e);
        json_object *arr;
        size_t n;
        if (jd_array(&d, j, NULL, 0, &arr, &n) < 0 || fn(ud, &d, arr, n) < 0)
            goto out;
        long next = gitlab_next_page(&r);
        if (!next || n == 0)
            break;
        if (next <= page) {
            err_set(e, "%s: next page %ld does not move forward", what, next);
            goto out;
        }
        page = next;
    }
    rc = 0;
out:
    json_object_put(j);
    http_response_free(&r);
    buf_free(&p);
    return rc;
}
