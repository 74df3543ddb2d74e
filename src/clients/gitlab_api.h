/* gitlab_api: GitLab API v4 client for [gitlab] (PRIVATE-TOKEN header,
 * one reused curl handle, the retrying JSON GET of nexus_api).
 *
 * Listings page by `page`/`per_page=100`: the next page number comes from
 * X-Next-Page, or from the page= parameter of the Link rel="next" URL when
 * X-Next-Page is absent (the URL itself is never followed, so the token
 * never goes to another host). Errors name "GET /api/v4/...".
 * Ownership: gitlab_api_new() result freed by gitlab_api_free(). */
#ifndef NS_GITLAB_API_H
#define NS_GITLAB_API_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "nexus_api.h"

struct gitlab_api {
    struct http_client *http;
    char *base;          /* url + "/api/v4", owned */
    char *token_hdr;     /* "PRIVATE-TOKEN: ..." owned */
    const char *hdrs[1]; /* the client's extra headers (token_hdr) */
    struct rest_target rest;
};

struct gitlab_api *gitlab_api_new(const struct cfg_gitlab *g, struct err *e);
void gitlab_api_free(struct gitlab_api *g);

/* GET path (under /api/v4, with its query) as JSON. *status (may be NULL)
 * gets the HTTP status even on failure (0 = no answer). */
int gitlab_get_json(struct gitlab_api *g, const char *path, int64_t deadline_mono_ms,
                    json_object **out, long *status, struct err *e);

/* One page: a JSON array of n elements (d's path is the page's top level). */
typedef int (*gitlab_page_fn)(void *ud, struct jdec *d, json_object *arr, size_t n);

/* Pages through a listing (max_pages 0 = no limit; *truncated tells). */
int gitlab_get_pages(struct gitlab_api *g, const char *path, int64_t deadline_mono_ms,
                     size_t max_pages, gitlab_page_fn fn, void *ud, bool *truncated, struct err *e);

/* The next page number from X-Next-Page or Link rel="next"; 0 = last page. */
long gitlab_next_page(const struct http_response *r);

#endif
