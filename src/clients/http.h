/* http: a thin libcurl wrapper shared by senders and collectors.
 *
 * One struct http_client per target keeps one curl easy handle, so
 * connections (and TLS sessions) are reused across requests and cycles.
 * Responses are read into a buffer capped at `max_response` bytes; a
 * larger answer fails the request instead of growing without bound.
 * Redirects are not followed (credentials never leak to another host). */
#ifndef NS_HTTP_H
#define NS_HTTP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "url.h" /* url_escape, url_split: URL pieces for every client */
#include "util.h"

struct http_opts {
    int64_t timeout_ms;          /* total, 0 = 30 s */
    int64_t connect_timeout_ms;  /* 0 = min(timeout, 10 s) */
    const char *user, *password; /* basic auth when user is non-empty */
    const char *bearer_token;    /* Authorization: Bearer */
    const char *ca_file, *cert_file, *key_file;
    bool insecure;
    const char *const *headers; /* extra "Name: value" */
    size_t n_headers;
    size_t max_response; /* 0 = 16 MiB */
};

struct http_response {
    size_t max_body; /* a lower cap for the next http_request only (it resets it); 0 = max_response */
    long status;            /* 0 when no HTTP answer (connection error, timeout) */
    struct buf body;        /* capped by max_response (or max_body) */
    int64_t retry_after_ms; /* -1 if absent */
    char error[256];        /* curl's reason when status == 0 */
    double seconds;         /* total time */
    char content_type[128];
    struct buf headers; /* raw response headers, capped */
};

struct http_client;

struct http_client *http_client_new(const struct http_opts *o);
/* While *flag is non-zero, transfers in progress are aborted (shutdown). */
void http_client_set_abort(struct http_client *c, const volatile sig_atomic_t *flag);
void http_client_free(struct http_client *c);

void http_response_init(struct http_response *r);
void http_response_free(struct http_response *r);

/* Performs one request. `extra` (n_extra "Name: value") are added to the
 * client's headers. `deadline_mono_ms` (0 = none) caps the timeout further.
 * Returns 0 when an HTTP answer arrived (any status), -1 otherwise with
 * r->error set. */
int http_request(struct http_client *c, const char *method, const char *url,
                 const char *const *extra, size_t n_extra, const void *body, size_t body_len,
                 int64_t deadline_mono_ms, struct http_response *r);

/* Looks up a response header (case-insensitive); copies its value. */
bool http_header(const struct http_response *r, const char *name, char *out, size_t n);

/* GET url and parse a JSON answer. Returns 0 with *out owned by the
 * caller (json_object_put), or -1 with e->msg naming the URL and what was
 * wrong (HTTP status, not JSON, too large). */
int http_get_json(struct http_client *c, const char *url, int64_t deadline_mono_ms,
                  json_object **out, long *status, struct err *e);

/* Test seam (the fuzz targets in tests/fuzz; production never sets it).
 * While a responder is set, every http_request() of every client is
 * answered by fn instead of the network, after the deadline check: fn
 * gets the method and URL and returns 0 with an answer (*status, raw
 * *headers "Name: value\r\n..." or NULL, *body of *body_len bytes; all
 * owned by fn and only read during the call) or -1 for "no answer".
 * The answer then goes through the same path as one off the wire: the
 * client's max_response cap, Content-Type and Retry-After from the
 * headers. Process-wide and not thread-safe: set it before any request;
 * http_set_test_responder(NULL, NULL) clears it. */
typedef int (*http_test_responder_fn)(void *ctx, const char *method, const char *url, long *status,
                                      const char **headers, const char **body, size_t *body_len);
void http_set_test_responder(http_test_responder_fn fn, void *ctx);

#endif
