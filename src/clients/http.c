#include "http.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "json_util.h"
#include "nsconfig.h"

struct http_client {
    CURL *curl;
    struct curl_slist *headers;
    struct http_opts o;
    const volatile sig_atomic_t *abort_flag;
};

static http_test_responder_fn test_responder;
static void *test_responder_ctx;

void http_set_test_responder(http_test_responder_fn fn, void *ctx)
{
    test_responder = fn;
    test_responder_ctx = ctx;
}

void http_client_set_abort(struct http_client *c, const volatile sig_atomic_t *flag)
{
    c->abort_flag = flag;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    const struct http_client *c = ud;
    return c->abort_flag && *c->abort_flag ? 1 : 0;
}

struct http_client *http_client_new(const struct http_opts *o)
{
    static int global_init; /* curl_global_init is idempotent-safe via this guard */
    if (!global_init) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
            return NULL;
        global_init = 1;
    }
    struct http_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->o = *o;
    if (!c->o.timeout_ms)
        c->o.timeout_ms = 30000;
    if (!c->o.connect_timeout_ms)
        c->o.connect_timeout_ms = c->o.timeout_ms < 10000 ? c->o.timeout_ms : 10000;
    if (!c->o.max_response)
        c->o.max_response = 16u << 20;
    if (!(c->curl = curl_easy_init()))
        goto fail;
    for (size_t i = 0; i < o->n_headers; i++) {
        struct curl_slist *n = curl_slist_append(c->headers, o->headers[i]);
        if (!n)
            goto fail;
        c->headers = n;
    }
    return c;
fail:
    http_client_free(c);
    return NULL;
}

void http_client_free(struct http_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    free(c);
}

void http_response_init(struct http_response *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->body, 0);
    buf_init(&r->headers, 64 * 1024);
    r->retry_after_ms = -1;
}

void http_response_free(struct http_response *r)
{
    if (!r)
        return;
    buf_free(&r->body);
    buf_free(&r->headers);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    size_t len = size * n;
    if (buf_append(b, p, len) < 0)
        return 0; /* too large: abort the transfer */
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0)
        buf_reset(b);      /* a new response (after 100-continue): keep only its headers */
    buf_append(b, p, len); /* over the cap: extra headers are ignored */
    return len;
}

bool http_header(const struct http_response *r, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    const char *p = r->headers.data;
    if (!p)
        return false;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            const char *end = p + ll;
            while (v < end && isspace((unsigned char)*v))
                v++;
            while (end > v && isspace((unsigned char)end[-1]))
                end--;
            size_t vl = (size_t)(end - v);
            if (vl >= n)
                vl = n - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return true;
        }
        if (!eol)
            break;
        p = eol + 1;
    }
    return false;
}

/* What every answer gets once its status, headers and body are in:
 * Retry-After read, the body NUL-terminated. -1 when out of memory. */
static int answer_done(struct http_response *r)
{
    char ra[64];
    if (http_header(r, "Retry-After", ra, sizeof ra)) {
        int64_t secs;
        /* saturated: a huge Retry-After is "very long", never an overflow */
        if (parse_int64(ra, &secs) == 0 && secs >= 0)
            r->retry_after_ms = secs > INT64_MAX / 1000 ? INT64_MAX : secs * 1000;
        else {
            time_t when = curl_getdate(ra, NULL);
            if (when > 0) {
                int64_t ms = when > INT64_MAX / 1000 ? INT64_MAX : (int64_t)when * 1000;
                int64_t d = ms - now_ms();
                r->retry_after_ms = d > 0 ? d : 0;
            }
        }
    }
    return buf_cstr(&r->body) ? 0 : -1;
}

/* The test seam: the answer comes from test_responder, not the network. */
static int test_answer(const struct http_client *c, const char *method, const char *url,
                       struct http_response *r)
{
    (void)c; /* r->body.max holds this request's cap */
    const char *hdrs = NULL, *body = NULL;
    size_t len = 0;
    if (test_responder(test_responder_ctx, method, url, &r->status, &hdrs, &body, &len) < 0) {
        r->status = 0;
        snprintf(r->error, sizeof r->error, "Couldn't connect to server");
        return -1;
    }
    if (hdrs)
        buf_append(&r->headers, hdrs, strlen(hdrs)); /* over the cap: ignored, as on_header */
    if (len && buf_append(&r->body, body, len) < 0) {
        r->status = 0;
        snprintf(r->error, sizeof r->error, "answer larger than %zu bytes", r->body.max);
        return -1;
    }
    http_header(r, "Content-Type", r->content_type, sizeof r->content_type);
    if (answer_done(r) < 0) {
        snprintf(r->error, sizeof r->error, "out of memory");
        return -1;
    }
    return 0;
}

int http_request(struct http_client *c, const char *method, const char *url,
                 const char *const *extra, size_t n_extra, const void *body, size_t body_len,
                 int64_t deadline_mono_ms, struct http_response *r)
{
    CURL *h = c->curl;
    struct curl_slist *hdrs = NULL;
    int rc = -1;
    buf_reset(&r->body);
    buf_reset(&r->headers);
    size_t cap = r->max_body && r->max_body < c->o.max_response ? r->max_body : c->o.max_response;
    r->body.max = cap;
    r->max_body = 0; /* for this request only */
    r->status = 0;
    r->retry_after_ms = -1;
    r->error[0] = '\0';
    r->content_type[0] = '\0';

    int64_t timeout = c->o.timeout_ms;
    if (deadline_mono_ms) {
        int64_t left = deadline_mono_ms - mono_ms();
        if (left < 1) {
            snprintf(r->error, sizeof r->error, "deadline passed before the request");
            return -1;
        }
        if (left < timeout)
            timeout = left;
    }
    if (test_responder)
        return test_answer(c, method, url, r);
    int64_t ctimeout = c->o.connect_timeout_ms < timeout ? c->o.connect_timeout_ms : timeout;

    curl_easy_reset(h); /* keeps live connections and the session cache */
    for (struct curl_slist *s = c->headers; s; s = s->next) {
        struct curl_slist *n = curl_slist_append(hdrs, s->data);
        if (!n)
            goto oom;
        hdrs = n;
    }
    for (size_t i = 0; i < n_extra; i++) {
        struct curl_slist *n = curl_slist_append(hdrs, extra[i]);
        if (!n)
            goto oom;
        hdrs = n;
    }
    if (c->o.bearer_token && *c->o.bearer_token) { /* any length: curl copies the line */
        struct buf auth;
        buf_init(&auth, 0);
        struct curl_slist *n = buf_printf(&auth, "Authorization: Bearer %s", c->o.bearer_token) == 0
                                   ? curl_slist_append(hdrs, auth.data)
                                   : NULL;
        buf_free(&auth);
        if (!n)
            goto oom;
        hdrs = n;
    }
    /* no "Expect: 100-continue" round trip for request bodies */
    struct curl_slist *n2 = curl_slist_append(hdrs, "Expect:");
    if (!n2)
        goto oom;
    hdrs = n2;

    char ua[64];
    snprintf(ua, sizeof ua, "%s/%s", PACKAGE_NAME, PACKAGE_VERSION);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_USERAGENT, ua);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(ctimeout > 0 ? ctimeout : 1));
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cap);
    if (c->abort_flag) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    }
    if (c->o.user && *c->o.user) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, c->o.user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->o.password ? c->o.password : "");
    }
    if (c->o.ca_file && *c->o.ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->o.ca_file);
    if (c->o.cert_file && *c->o.cert_file)
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->o.cert_file);
    if (c->o.key_file && *c->o.key_file)
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->o.key_file);
    if (c->o.insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (body || strcmp(method, "DELETE") != 0) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        }
    }
    CURLcode cc = curl_easy_perform(h);
    double t = 0;
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &t);
    r->seconds = t;
    if (cc != CURLE_OK) {
        if (cc == CURLE_WRITE_ERROR || cc == CURLE_FILESIZE_EXCEEDED)
            snprintf(r->error, sizeof r->error, "answer larger than %zu bytes", cap);
        else if (cc == CURLE_ABORTED_BY_CALLBACK)
            snprintf(r->error, sizeof r->error, "aborted: shutting down");
        else
            snprintf(r->error, sizeof r->error, "%s", curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    char *ct = NULL;
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
        snprintf(r->content_type, sizeof r->content_type, "%s", ct);
    if (answer_done(r) < 0)
        goto oom;
    rc = 0;
    goto out;
oom:
    snprintf(r->error, sizeof r->error, "out of memory");
out:
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    return rc;
}

int http_get_json(struct http_client *c, const char *url, int64_t deadline_mono_ms,
                  json_object **out, long *status, struct err *e)
{
    struct http_response r;
    http_response_init(&r);
    int rc = -1;
    const char *accept = "Accept: application/json";
    *out = NULL;
    char shown[URL_REDACT_MAX];
    url_redact(url, shown, sizeof shown);
    if (http_request(c, "GET", url, &accept, 1, NULL, 0, deadline_mono_ms, &r) < 0) {
        err_set(e, "GET %s: %s", shown, r.error);
        goto done;
    }
    if (status)
        *status = r.status;
    if (r.status < 200 || r.status > 299) {
        err_set(e, "GET %s: HTTP %ld", shown, r.status);
        goto done;
    }
    char what[300];
    snprintf(what, sizeof what, "GET %s", shown);
    json_object *j;
    if (jd_parse(what, r.body.data, r.body.len, r.content_type, &j, e) < 0)
        goto done;
    *out = j;
    rc = 0;
done:
    http_response_free(&r);
    return rc;
}
