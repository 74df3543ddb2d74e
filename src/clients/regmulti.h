/* regmulti: an asynchronous Docker Registry HTTP API v2 client on one
 * libcurl multi handle (used by cleanup.c).
 *
 * Requests are queued with rm_submit() and performed by rm_run(), at most
 * `concurrency` at a time over the multi handle's shared connection cache
 * (connections and TLS sessions are reused across requests). Each request
 * ends in its completion callback, called from rm_run(); a callback may
 * submit further requests (the next page, a config blob, ...), which
 * rm_run() performs before it returns.
 *
 * Per request:
 *  - authentication: a cached bearer token for the request's scope hint
 *    ("repository:<name>:pull"), otherwise basic credentials when set. A
 *    401 with `WWW-Authenticate: Bearer realm,service,scope` queues the
 *    token request (GET realm?service=..&scope=.., answer {"token"} or
 *    {"access_token"}), then the request again with the token, once. The
 *    token request carries the basic credentials only when the realm is
 *    https, on the registry's own origin or in realm_hosts; to any other
 *    realm it goes without them (logged once per run as a warning). A
 *    token of any length is sent whole;
 *  - messages never show URL userinfo or credential query values
 *    (url_redact);
 *  - RM_FOLLOW (blob GETs): a 3xx Location is followed once; to another
 *    origin (a pre-signed S3/GCS/CDN URL) with no credentials at all;
 *  - retries: a GET/HEAD without an HTTP answer (connection error, not a
 *    size limit or a stop) or answered 429/502/503/504 is retried twice,
 *    250 ms and 1 s later;
 *  - limits: answers larger than max_response fail the request; redirects
 *    are otherwise not followed; only http and https.
 * The callback sees q->status (0 when no HTTP answer arrived) and, when 0,
 * q->error naming the method and URL ("GET <url>: <reason>").
 *
 * While *stop is non-zero, transfers in progress are aborted and queued
 * requests complete with status 0 and "stopped by a signal".
 * Single-threaded: no locks; one struct rm per run. */
#ifndef NS_REGMULTI_H
#define NS_REGMULTI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "http.h"

struct rm_opts {
    const char *user, *password; /* basic (and for the token endpoint); NULL/"" = none */
    int64_t timeout_ms;          /* per request, 0 = 30 s */
    const char *ca_file;
    bool insecure;
    size_t max_response; /* 0 = 8 MiB */
    int concurrency;     /* transfers at once, 1..64 */
    const char *origin;  /* scheme://host[:port] of the registry */
    /* hosts ("host" or "host:port") trusted as token realms over plain
     * http besides the registry's own origin ([cleanup] token_realm_hosts) */
    char *const *realm_hosts;
    size_t n_realm_hosts;
    const volatile sig_atomic_t *stop;
};

#define RM_FOLLOW 1u /* follow one redirect (no credentials to another origin) */

struct rm;
struct rm_req;
typedef void (*rm_done_fn)(struct rm *c, struct rm_req *q);

struct rm_req {
    /* set by rm_submit */
    char *method, *url, *hint;
    const char *accept; /* static "Accept: ..." header or NULL */
    unsigned flags;
    rm_done_fn done;
    void *ud; /* the caller's context */
    size_t a, b;
    /* the outcome, valid in the callback */
    long status;            /* HTTP status, 0 = no answer */
    char error[512];        /* when status == 0 */
    struct http_response r; /* body, headers, content type of the final answer */
    /* internal */
    int attempt, auth_tries, redirects;
    bool nocreds;
    int64_t not_before;     /* mono ms */
    struct rm_req *waiting; /* token request: the request that waits for it */
    void *h;                /* CURL * while in flight */
    struct curl_slist *hdrs;
    struct rm_req *next;
};

struct rm *rm_new(const struct rm_opts *o);
void rm_free(struct rm *c);

/* Queues a request; url and hint are copied. Returns 0, or -1 (out of
 * memory: the callback is not called). */
int rm_submit(struct rm *c, const char *method, const char *url, const char *hint,
              const char *accept, unsigned flags, rm_done_fn done, void *ud, size_t a, size_t b);

/* Performs every queued request (and those the callbacks add). */
void rm_run(struct rm *c);

/* One request, performed now (with the others queued): a copy of the
 * answer in *r (http_response_free), 0 on an HTTP answer, -1 with e->msg. */
int rm_request(struct rm *c, const char *method, const char *url, const char *hint,
               const char *accept, struct http_response *r, struct err *e);

/* A copy of url without "user:password@" (malloc'd; NULL when out of
 * memory). *user and *password receive the percent-decoded userinfo
 * (malloc'd) or NULL when url has none: the caller uses them as the basic
 * credentials, so that no URL it builds, requests or logs carries them. */
char *rm_url_take_userinfo(const char *url, char **user, char **password);

/* Requests performed so far (token requests and retries included). */
uint64_t rm_requests(const struct rm *c);

#endif
