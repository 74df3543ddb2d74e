#include "regmulti.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "json_util.h"
#include "log.h"
#include "nsconfig.h"

#define MAX_TOKENS 256
#define MAX_CONC   64
#define MAX_TRIES  3 /* a GET/HEAD: the first try and two retries */

struct rm {
    struct rm_opts o;
    CURLM *multi;
    CURL *idle[MAX_CONC + 1]; /* easy handles kept for reuse */
    size_t n_idle;
    struct rm_req *head, *tail; /* queued, in order */
    size_t running;
    uint64_t requests;
    struct {
        char *hint, *token;
    } tok[MAX_TOKENS];
    size_t n_tok, next_tok;
    bool realm_warned; /* the refusal of an untrusted realm is logged once per run */
    char ua[64];
};

struct rm *rm_new(const struct rm_opts *o)
{
    static int global_init;
    if (!global_init) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
            return NULL;
        global_init = 1;
    }
    struct rm *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->o = *o;
    if (c->o.concurrency < 1)
        c->o.concurrency = 1;
    if (c->o.concurrency > MAX_CONC)
        c->o.concurrency = MAX_CONC;
    if (c->o.timeout_ms <= 0)
        c->o.timeout_ms = 30000;
    if (!c->o.max_response)
        c->o.max_response = 8u << 20;
    snprintf(c->ua, sizeof c->ua, "%s/%s", PACKAGE_NAME, PACKAGE_VERSION);
    if (!(c->multi = curl_multi_init())) {
        free(c);
        return NULL;
    }
    /* HTTP/1.1 registries: one connection per transfer, kept for the next */
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c->o.concurrency);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->o.concurrency + 2);
    return c;
}

static void req_free(struct rm_req *q)
{
    if (!q)
        return;
    free(q->method);
    free(q->url);
    free(q->hint);
    curl_slist_free_all(q->hdrs);
    http_response_free(&q->r);
    free(q);
}

void rm_free(struct rm *c)
{
    if (!c)
        return;
    for (struct rm_req *q = c->head, *n; q; q = n) {
        n = q->next;
        req_free(q);
    }
    for (size_t i = 0; i < c->n_idle; i++)
        curl_easy_cleanup(c->idle[i]);
    curl_multi_cleanup(c->multi);
    for (size_t i = 0; i < c->n_tok; i++) {
        free(c->tok[i].hint);
        free(c->tok[i].token);
    }
    free(c);
}

uint64_t rm_requests(const struct rm *c)
{
    return c->requests;
}

static void enqueue(struct rm *c, struct rm_req *q)
{
    q->next = NULL;
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
}

/* q->error = "METHOD URL: reason", the URL without its secrets (url_redact). */
static void req_fail(struct rm_req *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void req_fail(struct rm_req *q, const char *fmt, ...)
{
    char shown[URL_REDACT_MAX];
    int l = snprintf(q->error, sizeof q->error, "%s %s: ", q->method,
                     url_redact(q->url, shown, sizeof shown));
    if (l < 0 || (size_t)l >= sizeof q->error)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->error + l, sizeof q->error - (size_t)l, fmt, ap);
    va_end(ap);
}

static struct rm_req *req_new(const char *method, const char *url, const char *hint,
                              const char *accept, unsigned flags, rm_done_fn done, void *ud,
                              size_t a, size_t b)
{
    struct rm_req *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->method = strdup(method);
    q->url = strdup(url);
    q->hint = strdup(hint ? hint : "");
    if (!q->method || !q->url || !q->hint) {
        req_free(q);
        return NULL;
    }
    http_response_init(&q->r);
    q->accept = accept;
    q->flags = flags;
    q->done = done;
    q->ud = ud;
    q->a = a;
    q->b = b;
    return q;
}

int rm_submit(struct rm *c, const char *method, const char *url, const char *hint,
              const char *accept, unsigned flags, rm_done_fn done, void *ud, size_t a, size_t b)
{
    struct rm_req *q = req_new(method, url, hint, accept, flags, done, ud, a, b);
    if (!q)
        return -1;
    enqueue(c, q);
    return 0;
}

/* ---- bearer tokens ------------------------------------------------------ */

static const char *token_for(const struct rm *c, const char *hint)
{
    for (size_t i = 0; i < c->n_tok; i++)
        if (strcmp(c->tok[i].hint, hint) == 0)
            return c->tok[i].token;
    return NULL;
}

static void token_store(struct rm *c, const char *hint, const char *token)
{
    size_t i;
    for (i = 0; i < c->n_tok; i++)
        if (strcmp(c->tok[i].hint, hint) == 0)
            break;
    char *h = strdup(hint), *t = strdup(token);
    if (!h || !t) { /* out of memory: forget it */
        free(h);
        free(t);
        return;
    }
    if (i == c->n_tok) {
        if (c->n_tok < MAX_TOKENS)
            c->n_tok++;
        else
            i = c->next_tok++ % MAX_TOKENS;
    }
    free(c->tok[i].hint);
    free(c->tok[i].token);
    c->tok[i].hint = h;
    c->tok[i].token = t;
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

static void finish(struct rm *c, struct rm_req *q);

/* The token request completed: store the token and queue the waiting
 * request again, or fail it with the reason. */
static void token_done(struct rm *c, struct rm_req *t)
{
    struct rm_req *q = t->waiting;
    t->waiting = NULL;
    json_object *j = NULL;
    struct err e = {{0}};
    if (t->status == 0) {
        req_fail(q, "bearer token: %s", t->error);
    } else if (t->status != 200) {
        req_fail(q, "token endpoint %.200s answered HTTP %ld%s", t->hint, t->status,
                 t->nocreds && (t->status == 401 || t->status == 403)
                     ? " (asked without the registry credentials: its realm is not trusted, see "
                       "[cleanup] token_realm_hosts)"
                     : "");
    } else if (jd_parse(t->hint, t->r.body.data, t->r.body.len, t->r.content_type, &j, &e) < 0) {
        req_fail(q, "%s", e.msg);
    } else {
        json_object *v = NULL;
        if ((!json_object_object_get_ex(j, "token", &v) &&
             !json_object_object_get_ex(j, "access_token", &v)) ||
            !json_object_is_type(v, json_type_string))
            req_fail(q, "token endpoint %.200s answered without a token", t->hint);
        else {
            token_store(c, q->hint, json_object_get_string(v));
            log_debug("cleanup: bearer token for %s from %s", q->hint, t->hint);
        }
    }
    json_object_put(j);
    if (q->error[0]) {
        q->status = 0;
        finish(c, q);
        return;
    }
    q->auth_tries++;
    enqueue(c, q);
}

/* The scheme, host and port (the scheme's default when absent) of url,
 * lower-cased by libcurl; false when it cannot be parsed. */
struct origin {
    char scheme[16], host[256], port[8];
};

static bool origin_parse(const char *url, struct origin *o)
{
    CURLU *h = curl_url();
    char *sc = NULL, *ho = NULL, *po = NULL;
    bool ok = h && curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(h, CURLUPART_SCHEME, &sc, 0) == CURLUE_OK &&
              curl_url_get(h, CURLUPART_HOST, &ho, 0) == CURLUE_OK &&
              curl_url_get(h, CURLUPART_PORT, &po, CURLU_DEFAULT_PORT) == CURLUE_OK &&
              strlen(sc) < sizeof o->scheme && strlen(ho) < sizeof o->host &&
              strlen(po) < sizeof o->port;
    if (ok) {
        strcpy(o->scheme, sc);
        strcpy(o->host, ho);
        strcpy(o->port, po);
    }
    curl_free(sc);
    curl_free(ho);
    curl_free(po);
    curl_url_cleanup(h);
    return ok;
}

/* May the registry's basic credentials go to this token realm? On the
 * registry's own origin (scheme, host and port), over https, or to a host
 * listed in [cleanup] token_realm_hosts ("host" or "host:port"); never
 * over plain http to another host or port (issue 18). why: the refusal. */
static bool realm_trusted(const struct rm *c, const char *realm, const char *reg_url, char *why,
                          size_t n)
{
    struct origin r, g;
    if (!origin_parse(realm, &r)) {
        snprintf(why, n, "it is not a URL");
        return false;
    }
    if (strcasecmp(r.scheme, "https") == 0)
        return true;
    if (origin_parse(reg_url, &g) && strcasecmp(r.scheme, g.scheme) == 0 &&
        strcasecmp(r.host, g.host) == 0 && strcmp(r.port, g.port) == 0)
        return true;
    char hp[300];
    snprintf(hp, sizeof hp, "%s:%s", r.host, r.port);
    for (size_t i = 0; i < c->o.n_realm_hosts; i++) {
        const char *a = c->o.realm_hosts[i];
        /* "[::1]" and "::1" both name the IPv6 host */
        size_t al = strlen(a);
        if (strcasecmp(a, r.host) == 0 || strcasecmp(a, hp) == 0 ||
            (r.host[0] == '[' && strlen(r.host) == al + 2 && strncasecmp(r.host + 1, a, al) == 0))
            return true;
    }
    snprintf(why, n,
             "plain %s to %s:%s, not the registry's origin and not in [cleanup] "
             "token_realm_hosts",
             r.scheme, r.host, r.port);
    return false;
}

/* A 401 with a Bearer challenge: queues the token request for q. */
static int start_token(struct rm *c, struct rm_req *q, const char *challenge)
{
    char realm[1024], service[256] = "", scope[512] = "";
    if (!challenge_param(challenge, "realm", realm, sizeof realm)) {
        req_fail(q, "bearer challenge without realm: %.200s", challenge);
        return -1;
    }
    challenge_param(challenge, "service", service, sizeof service);
    if (!challenge_param(challenge, "scope", scope, sizeof scope))
        snprintf(scope, sizeof scope, "%s", q->hint);
    struct buf url;
    buf_init(&url, 8192);
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
    /* the token request's hint holds the realm (without secrets), for messages */
    char shown[URL_REDACT_MAX];
    url_redact(realm, shown, sizeof shown);
    struct rm_req *t =
        buf_cstr(&url) ? req_new("GET", url.data, shown, NULL, 0, token_done, NULL, 0, 0) : NULL;
    buf_free(&url);
    if (!t) {
        req_fail(q, "out of memory");
        return -1;
    }
    t->waiting = q;
    t->auth_tries = 1; /* basic credentials, never a token */
    char why[400];
    if (c->o.user && *c->o.user &&
        !realm_trusted(c, realm, c->o.origin && *c->o.origin ? c->o.origin : q->url, why,
                       sizeof why)) {
        /* anonymous: a public registry's realm still hands out pull tokens */
        t->nocreds = true;
        if (!c->realm_warned)
            log_warn("cleanup: not sending the registry credentials to token realm %s (%s); "
                     "asking it for a token without them",
                     shown, why);
        else
            log_debug("cleanup: token realm %s: asking without credentials (%s)", shown, why);
        c->realm_warned = true;
    }
    enqueue(c, t);
    return 0;
}

/* ---- transfers ---------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    size_t len = size * n;
    return buf_append(ud, p, len) < 0 ? 0 : len; /* too large: abort */
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0)
        buf_reset(b);
    buf_append(b, p, len); /* over the cap: extra headers are ignored */
    return len;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    const struct rm *c = ud;
    return c->o.stop && *c->o.stop ? 1 : 0;
}

static int start(struct rm *c, struct rm_req *q)
{
    CURL *h = c->n_idle ? c->idle[--c->n_idle] : curl_easy_init();
    if (!h) {
        req_fail(q, "out of memory");
        return -1;
    }
    curl_easy_reset(h);
    buf_reset(&q->r.body);
    buf_reset(&q->r.headers);
    q->r.body.max = c->o.max_response;
    q->r.content_type[0] = '\0';
    q->status = 0;
    q->error[0] = '\0';
    curl_slist_free_all(q->hdrs);
    q->hdrs = NULL;
    const char *tok = q->nocreds ? NULL : token_for(c, q->hint);
    struct buf auth; /* a bearer token of any length (curl copies the line) */
    buf_init(&auth, 0);
    const char *lines[3];
    size_t nl = 0;
    if (q->accept)
        lines[nl++] = q->accept;
    if (tok) {
        if (buf_printf(&auth, "Authorization: Bearer %s", tok) < 0) {
            curl_easy_cleanup(h);
            req_fail(q, "out of memory");
            return -1;
        }
        lines[nl++] = auth.data;
    }
    lines[nl++] = "Expect:";
    for (size_t i = 0; i < nl; i++) {
        struct curl_slist *s = curl_slist_append(q->hdrs, lines[i]);
        if (!s) {
            buf_free(&auth);
            curl_easy_cleanup(h);
            req_fail(q, "out of memory");
            return -1;
        }
        q->hdrs = s;
    }
    buf_free(&auth);
    long ct = c->o.timeout_ms < 10000 ? (long)c->o.timeout_ms : 10000L;
    curl_easy_setopt(h, CURLOPT_URL, q->url);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->ua);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, q->hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->o.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ct);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &q->r.body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &q->r.headers);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->o.max_response);
    curl_easy_setopt(h, CURLOPT_PRIVATE, q);
    if (c->o.stop) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    }
    if (!tok && !q->nocreds && c->o.user && *c->o.user) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, c->o.user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->o.password ? c->o.password : "");
    }
    if (c->o.ca_file && *c->o.ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->o.ca_file);
    if (c->o.insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (strcmp(q->method, "GET") == 0)
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    else if (strcmp(q->method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    if (curl_multi_add_handle(c->multi, h) != CURLM_OK) {
        curl_easy_cleanup(h);
        req_fail(q, "cannot start the transfer");
        return -1;
    }
    q->h = h;
    c->running++;
    c->requests++;
    return 0;
}

static void release(struct rm *c, struct rm_req *q)
{
    CURL *h = q->h;
    if (!h)
        return;
    curl_multi_remove_handle(c->multi, h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    if (c->n_idle < (size_t)c->o.concurrency + 1)
        c->idle[c->n_idle++] = h;
    else
        curl_easy_cleanup(h);
    q->h = NULL;
    c->running--;
}

/* Calls the callback and frees q (a token request: resumes its waiter). */
static void finish(struct rm *c, struct rm_req *q)
{
    if (q->done)
        q->done(c, q);
    if (q->waiting) { /* a token request that never completed normally */
        q->waiting->status = 0;
        req_fail(q->waiting, "bearer token: %s", q->error);
        finish(c, q->waiting);
        q->waiting = NULL;
    }
    req_free(q);
}

static bool retryable(const struct rm_req *q, CURLcode cc)
{
    if (strcmp(q->method, "GET") != 0 && strcmp(q->method, "HEAD") != 0)
        return false;
    if (q->attempt + 1 >= MAX_TRIES)
        return false;
    if (q->status == 0)
        return cc != CURLE_WRITE_ERROR && cc != CURLE_FILESIZE_EXCEEDED &&
               cc != CURLE_ABORTED_BY_CALLBACK && cc != CURLE_OUT_OF_MEMORY;
    return q->status == 429 || q->status == 502 || q->status == 503 || q->status == 504;
}

/* A transfer ended: authentication, redirects, retries, or the callback. */
static void completed(struct rm *c, struct rm_req *q, CURLcode cc)
{
    CURL *h = q->h;
    if (cc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &q->status);
        char *ct = NULL;
        if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
            snprintf(q->r.content_type, sizeof q->r.content_type, "%s", ct);
        if (!buf_cstr(&q->r.body)) {
            q->status = 0;
            req_fail(q, "out of memory");
        }
    } else if (cc == CURLE_WRITE_ERROR || cc == CURLE_FILESIZE_EXCEEDED) {
        req_fail(q, "answer larger than %zu bytes", c->o.max_response);
    } else if (cc == CURLE_ABORTED_BY_CALLBACK) {
        req_fail(q, "stopped by a signal");
    } else {
        req_fail(q, "%s", curl_easy_strerror(cc));
    }
    release(c, q);
    q->r.status = q->status;
    char hv[2048];
    if (q->status == 401 && q->auth_tries == 0 && !q->nocreds &&
        http_header(&q->r, "WWW-Authenticate", hv, sizeof hv) &&
        strncasecmp(hv, "Bearer", 6) == 0) {
        if (start_token(c, q, hv) == 0)
            return; /* resumed by token_done */
        q->status = 0;
        finish(c, q);
        return;
    }
    if ((q->flags & RM_FOLLOW) && q->redirects == 0 && q->status >= 301 && q->status <= 308 &&
        q->status != 304 && http_header(&q->r, "Location", hv, sizeof hv) && hv[0]) {
        char from[512], to[512];
        url_origin(q->url, from, sizeof from);
        struct buf u;
        buf_init(&u, 8192);
        if (strstr(hv, "://"))
            buf_puts(&u, hv);
        else if (hv[0] == '/')
            buf_printf(&u, "%s%s", from, hv);
        if (buf_cstr(&u) && u.len) {
            url_origin(u.data, to, sizeof to);
            char *nu = strdup(u.data);
            if (nu) {
                char shown[URL_REDACT_MAX], shown_to[URL_REDACT_MAX];
                log_debug("cleanup: %s redirected to %s", url_redact(q->url, shown, sizeof shown),
                          to[0] ? url_redact(to, shown_to, sizeof shown_to) : "?");
                /* credentials go to the registry's origin only */
                const char *reg = c->o.origin && *c->o.origin ? c->o.origin : from;
                if (!to[0] || strcasecmp(to, reg) != 0)
                    q->nocreds = true;
                free(q->url);
                q->url = nu;
                q->redirects++;
                buf_free(&u);
                enqueue(c, q);
                return;
            }
        }
        buf_free(&u);
    }
    if (retryable(q, cc)) {
        q->attempt++;
        int64_t wait = q->attempt == 1 ? 250 : 1000;
        char shown[URL_REDACT_MAX];
        log_debug("cleanup: %s %s: %s; retry %d in %lld ms", q->method,
                  url_redact(q->url, shown, sizeof shown), q->status ? "busy" : q->error,
                  q->attempt, (long long)wait);
        q->not_before = mono_ms() + wait;
        enqueue(c, q);
        return;
    }
    finish(c, q);
}

/* Starts queued requests that are due while fewer than `concurrency` run. */
static void fill(struct rm *c)
{
    int64_t now = 0;
    struct rm_req **pp = &c->head, *prev = NULL;
    while (*pp && c->running < (size_t)c->o.concurrency) {
        struct rm_req *q = *pp;
        if (q->not_before) {
            if (!now)
                now = mono_ms();
            if (q->not_before > now) {
                prev = q;
                pp = &q->next;
                continue;
            }
        }
        *pp = q->next;
        if (c->tail == q)
            c->tail = prev;
        q->next = NULL;
        if (start(c, q) < 0)
            finish(c, q); /* may enqueue more: the list is re-read from *pp */
    }
}

/* Completes every transfer that ended. */
static void harvest(struct rm *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct rm_req *q = NULL;
        CURLcode cc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
        if (q)
            completed(c, q, cc);
    }
}

/* Ends every queued request: "stopped by a signal". */
static void drain(struct rm *c)
{
    while (c->head) {
        struct rm_req *q = c->head;
        c->head = q->next;
        if (!c->head)
            c->tail = NULL;
        req_fail(q, "stopped by a signal");
        q->status = 0;
        finish(c, q);
    }
}

void rm_run(struct rm *c)
{
    for (;;) {
        if (c->o.stop && *c->o.stop)
            drain(c);
        else
            fill(c);
        if (!c->running && !c->head)
            break;
        if (!c->running) { /* only delayed retries queued */
            sleep_until_mono(mono_ms() + 20);
            continue;
        }
        int still = 0;
        curl_multi_perform(c->multi, &still);
        harvest(c);
        if (!(c->o.stop && *c->o.stop))
            fill(c); /* new transfers start at once: curl's timer for them is 0 */
        if (c->running)
            curl_multi_poll(c->multi, NULL, 0, 100, NULL);
    }
}

struct sync_ctx {
    struct http_response *r;
    struct err *e;
    int rc;
};

static void sync_done(struct rm *c, struct rm_req *q)
{
    (void)c;
    struct sync_ctx *s = q->ud;
    struct http_response t = *s->r; /* hand the answer over, take back the empty one */
    *s->r = q->r;
    q->r = t;
    s->r->status = q->status;
    if (q->status == 0) {
        err_set(s->e, "%s", q->error);
        snprintf(s->r->error, sizeof s->r->error, "%.255s", q->error);
        s->rc = -1;
    } else
        s->rc = 0;
}

int rm_request(struct rm *c, const char *method, const char *url, const char *hint,
               const char *accept, struct http_response *r, struct err *e)
{
    struct sync_ctx s = {r, e, -1};
    buf_reset(&r->body);
    buf_reset(&r->headers);
    r->status = 0;
    if (rm_submit(c, method, url, hint, accept, 0, sync_done, &s, 0, 0) < 0) {
        char shown[URL_REDACT_MAX];
        err_set(e, "%s %s: out of memory", method, url_redact(url, shown, sizeof shown));
        return -1;
    }
    rm_run(c);
    return s.rc;
}

char *rm_url_take_userinfo(const char *url, char **user, char **password)
{
    *user = *password = NULL;
    CURLU *h = curl_url();
    char *u = NULL, *pw = NULL, *full = NULL, *out = NULL;
    if (!h)
        return NULL;
    if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK) { /* not ours to judge: as is */
        out = strdup(url);
        goto done;
    }
    curl_url_get(h, CURLUPART_USER, &u, CURLU_URLDECODE);
    curl_url_get(h, CURLUPART_PASSWORD, &pw, CURLU_URLDECODE);
    if (!u && !pw) {
        out = strdup(url);
        goto done;
    }
    if (curl_url_set(h, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
        curl_url_set(h, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
        curl_url_set(h, CURLUPART_OPTIONS, NULL, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_URL, &full, 0) != CURLUE_OK)
        goto done;
    if (!(out = strdup(full)) || !(*user = strdup(u ? u : "")) ||
        !(*password = strdup(pw ? pw : ""))) {
        free(out);
        free(*user);
        free(*password);
        *user = *password = NULL;
        out = NULL;
        goto done;
    }
    size_t l = strlen(out); /* libcurl adds a "/" path to a bare origin */
    while (l && out[l - 1] == '/')
        out[--l] = '\0';
done:
    curl_free(u);
    curl_free(pw);
    curl_free(full);
    curl_url_cleanup(h);
    return out;
}
