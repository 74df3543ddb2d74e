/* The registry client of a cleanup run (cleanup_int.h: struct reg): one
 * libcurl multi handle (regmulti.h) with the credentials and the token
 * dance, the digest cache, and what every step needs of the answers:
 * errors that name the URL, the Link header of the next page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup_int.h"
#include "log.h"
#include "url.h"

void reg_free(struct reg *g)
{
    if (!g)
        return;
    rm_free(g->rm);
    cl_cache_free(g->cache);
    free(g);
}

struct reg *reg_new(const char *base, const struct cfg_cleanup *cc,
                    const struct cleanup_overrides *ov, const volatile sig_atomic_t *stop)
{
    struct reg *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->base = base;
    g->storage = cl_opt(ov->storage_path, cc->storage_path);
    url_origin(base, g->origin, sizeof g->origin);
    struct rm_opts ro = {
        .user = cc->username,
        .password = cc->password,
        .timeout_ms = cc->timeout_ms,
        .ca_file = cl_opt(NULL, cc->ca_file),
        .insecure = cc->insecure_skip_verify,
        .max_response = 8u << 20,
        .concurrency = (int)cl_concurrency(cc, ov),
        .origin = g->origin,
        .realm_hosts = cc->token_realm_hosts.v,
        .n_realm_hosts = cc->token_realm_hosts.n,
        .stop = stop,
    };
    if (!(g->rm = rm_new(&ro)) ||
        !(g->cache = cl_cache_open(cl_opt(ov->cache_file, NULL),
                                   ov->cache_entries ? ov->cache_entries : 200000))) {
        reg_free(g);
        return NULL;
    }
    return g;
}

void short_body(const struct http_response *r, char *out, size_t n)
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
void request_error(const struct rm_req *q, struct err *e)
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
bool next_link(const struct reg *g, const struct http_response *r, struct buf *next)
{
    char link[2048], t[2048], to[256];
    if (!http_header(r, "Link", link, sizeof link) || !link_next(link, t, sizeof t))
        return false;
    buf_reset(next);
    if (strstr(t, "://")) {
        /* credentials go to the registry only, never to a host a header names */
        if (url_origin(t, to, sizeof to) < 0 || !g->origin[0] || strcasecmp(to, g->origin) != 0) {
            log_warn("cleanup: ignoring a Link to another host: %.200s", t);
            return false;
        }
        buf_puts(next, t);
    } else if (t[0] == '/')
        buf_printf(next, "%s%s", g->origin, t);
    else {
        log_warn("cleanup: ignoring a Link that is not a path: %.200s", t);
        return false;
    }
    return buf_cstr(next) != NULL;
}
