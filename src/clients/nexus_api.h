/* nexus_api: the REST client the Nexus collectors share: base URL,
 * credentials and TLS settings from [nexus], one reused curl handle per
 * collector (connections and TLS sessions survive across requests and
 * cycles).
 *
 * JSON GETs (rest_get_json, nexus_get_json, nexus_get_pages) retry on
 * connection errors and 5xx answers with a doubling backoff, as long as
 * the deadline leaves room; 4xx answers are final. Every error message
 * names the request ("GET /service/rest/v1/blobstores: ...") and, for bad
 * JSON, the JSON path (see json_util.h). Answers are capped in size by the
 * http client (max_response).
 *
 * The rest_* functions are the target-independent part, also used by
 * gitlab_api. Ownership: json objects handed out belong to the caller
 * (json_object_put); nothing else is retained. */
#ifndef NS_NEXUS_API_H
#define NS_NEXUS_API_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "http.h"
#include "json_util.h"

/* A REST target: the client, its base URL and how to retry. */
struct rest_target {
    struct http_client *http;
    const char *base;      /* no trailing slash; not owned */
    const char *auth_hint; /* appended to 401/403 errors, e.g. "check [nexus] username ..." */
    int attempts;          /* total tries for a GET (1 = no retry) */
    int64_t backoff_ms;    /* first pause; doubles, capped at 2 s */
    /* optional: the largest answer of the endpoint `path` (0 = the client's cap) */
    size_t (*max_answer)(const char *path);
};

/* GET base+path (path includes the query). Retries connection errors and
 * 5xx as described above. Returns 0 when an answer arrived (r->status is
 * whatever the last attempt got), -1 when none did (r->error says why);
 * *attempts_used (may be NULL) counts the tries. */
int rest_get(const struct rest_target *t, const char *path, int64_t deadline_mono_ms,
             struct http_response *r, int *attempts_used);

/* rest_get + status check (2xx) + JSON parse. `what` names the request in
 * errors (NULL = "GET <path>"). On success *out is owned by the caller and
 * r (if given; else an internal one is used) still holds the headers. */
int rest_get_json(const struct rest_target *t, const char *path, const char *what,
                  int64_t deadline_mono_ms, json_object **out, struct http_response *r,
                  struct err *e);

struct nexus_api {
    struct http_client *http;  /* authenticated: /service/rest */
    struct http_client *probe; /* anonymous: repository and docker port probes */
    char *base;                /* url without trailing slash */
    char *host;                /* host of url (IPv6 without brackets) */
    char *docker_host;         /* [nexus] docker_host or host */
    bool https;                /* url is https */
    struct rest_target rest;
    const struct cfg_nexus *cfg; /* not owned; outlives the api (config lifetime) */
};

/* Returns NULL with e->msg on failure. Free with nexus_api_free(). */
struct nexus_api *nexus_api_new(const struct cfg_nexus *nx, struct err *e);
void nexus_api_free(struct nexus_api *a);
/* Builds base + path into out (path starts with '/'). */
int nexus_api_url(const struct nexus_api *a, const char *path, struct buf *out);

/* GET a REST path (e.g. "/service/rest/v1/blobstores") and parse it. */
int nexus_get_json(struct nexus_api *a, const char *path, int64_t deadline_mono_ms,
                   json_object **out, struct err *e);

/* GET path (named `what` in errors, a literal: d keeps it) whose answer
 * must be a JSON array: *j (the caller puts it, also on error) and its
 * *arr of *len. -1 with e set. */
int nexus_get_array(struct nexus_api *a, const char *path, const char *what, int64_t deadline,
                    json_object **j, struct jdec *d, json_object **arr, size_t *len, struct err *e);

/* One anonymous GET of url on a->probe (repository and docker port
 * probes). 0 with *r filled; when nothing answered, r->status is 0 and
 * r->error says why (logged at debug as "<who>: GET <url>: <error>").
 * -1 with e only when the deadline passed: "deadline reached while
 * probing <what> (GET <url>)", what from the format. URLs are shown
 * redacted. The caller frees r (http_response_free) in every case. */
int nexus_probe(struct nexus_api *a, const char *url, int64_t deadline_mono_ms,
                struct http_response *r, struct err *e, const char *who, const char *what_fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* One page of a continuationToken listing: `items` is the page's array
 * (n elements) and d's path already reads "items". Return 0 to go on,
 * -1 (with d->e set) to stop with an error. */
typedef int (*nexus_page_fn)(void *ud, struct jdec *d, json_object *items, size_t n);

/* Pages through `path` ({"items": [...], "continuationToken": T|null}),
 * at most max_pages pages (0 = no limit). *truncated (may be NULL) tells
 * whether the limit stopped it. A token that comes back (the same as any
 * earlier one: pages in a cycle) is an error. */
int nexus_get_pages(struct nexus_api *a, const char *path, int64_t deadline_mono_ms,
                    size_t max_pages, nexus_page_fn fn, void *ud, bool *truncated, struct err *e);

/* A docker repository's connector ports, from /v1/repositorySettings. */
struct docker_conn {
    char *repository;
    int port;
    bool https;
};
/* Reads repositorySettings and lists every docker httpPort/httpsPort.
 * *out is malloc'd (free with docker_conns_free). */
int nexus_docker_connectors(struct nexus_api *a, int64_t deadline_mono_ms, struct docker_conn **out,
                            size_t *n, struct err *e);
void docker_conns_free(struct docker_conn *v, size_t n);

/* A repository of /v1/repositories (strings malloc'd). */
struct nexus_repo {
    char *name;
    char *format;
    char *type;
};
/* Reads /v1/repositories, checks every entry (an object with string name,
 * format and type; a bad entry is an error naming its JSON path) and lists
 * those of `format` (NULL = any) and `type` (NULL = any type but "group":
 * a group only lists its members' content), in the answer's order.
 * *out is malloc'd (free with nexus_repos_free). */
int nexus_list_repositories(struct nexus_api *a, int64_t deadline_mono_ms, const char *format,
                            const char *type, struct nexus_repo **out, size_t *n, struct err *e);
void nexus_repos_free(struct nexus_repo *v, size_t n);

/* Descriptor parts shared by the collectors whose state is one nexus_api:
 * enabled when [nexus] is present, init creates the client, destroy frees it
 * (defined in collector.c with the rest of the collector API). */
bool nexus_collector_enabled(const struct config *cfg);
int nexus_collector_init(const struct config *cfg, void **state, struct err *e);
void nexus_collector_destroy(void *state);

#endif
