/* cleanup_int: what the files of the cleanup engine share, and nothing
 * outside src/cleanup/ includes (the API is cleanup.h).
 *
 * One run (cleanup.c: cleanup_run) goes through the files in this order:
 *   cleanup_manifest.c  pure parsers of registry answers (cleanup_manifest.h)
 *   cleanup_registry.c  the registry client (struct reg: libcurl multi,
 *                       Link pagination, the digest cache)
 *   cleanup_scan.c      the scan: catalog, tags, manifests, config blobs
 *   cleanup_plan.c      the rules per tag, then per digest and index
 *   cleanup_apply.c     DELETEs, the GC commands, du of storage_path
 *   cleanup_report.c    the result as text or JSON
 * Every step reads the run's options through struct cl_run: the [cleanup]
 * keys (struct cfg_cleanup) and what the command line overrides (struct
 * cleanup_overrides), never a copy of them.
 *
 * Ownership: a struct cl_run lives on cleanup_run()'s stack; everything a
 * step learns goes into run->res (freed by cleanup_result_free()); a step
 * frees its own working state before it returns. Errors: a step returns
 * -1 only when out of memory; what went wrong with the registry is counted
 * in res->errors, logged, and said in res->status / res->message. */
#ifndef NS_CLEANUP_INT_H
#define NS_CLEANUP_INT_H

#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cleanup.h"
#include "cleanup_cache.h"
#include "cleanup_rules.h"
#include "http.h"
#include "regmulti.h"

/* ---- options: the override when the command line set it, else the key */

/* ov (NULL = none) else cfg; NULL reads as "". */
const char *cl_opt(const char *ov, const char *cfg);
/* Parallel registry requests: --concurrency, else [cleanup] concurrency
 * when 1..64, else 4. */
int64_t cl_concurrency(const struct cfg_cleanup *cc, const struct cleanup_overrides *ov);

/* ---- one run ----------------------------------------------------------- */

struct reg;

struct cl_run {
    const struct cfg_cleanup *cc;       /* borrowed; credentials from the URL merged in */
    const struct cleanup_overrides *ov; /* borrowed; never NULL */
    const volatile sig_atomic_t *stop;  /* may be NULL */
    struct cleanup_result *res;
    struct reg *g;
    struct cleanup_rules rules;
    regex_t inc, exc; /* include/exclude_repositories */
    bool has_inc, has_exc;
};

/* ---- cleanup_manifest.c ------------------------------------------------ */

/* Appends a copy of s to the array *v of *n strings; -1: out of memory. */
int cl_strv_push(char ***v, size_t *n, const char *s);
/* Appends a copy of digest with its size to the array *v of *n blobs (no
 * duplicate check); -1: out of memory, *v and *n still consistent. */
int cl_blob_push(struct cl_blob **v, size_t *n, const char *digest, uint64_t size);

/* ---- cleanup_registry.c ------------------------------------------------ */

/* The registry client: base URL, libcurl multi handle, digest cache. */
struct reg {
    const char *base; /* registry_url without a trailing '/' */
    char origin[256]; /* scheme://host[:port], for Link headers */
    struct rm *rm;
    const char *storage; /* storage_path ("" = none): config blobs read from disk */
    struct cl_cache *cache;
};
/* NULL: out of memory (or the cache could not be opened). Borrows base,
 * cc and ov for its life. */
struct reg *reg_new(const char *base, const struct cfg_cleanup *cc,
                    const struct cleanup_overrides *ov, const volatile sig_atomic_t *stop);
void reg_free(struct reg *g);
/* e <- why a request did not give a 200 (names the URL). */
void request_error(const struct rm_req *q, struct err *e);
/* The start of an answer's body for a message, control bytes blanked. */
void short_body(const struct http_response *r, char *out, size_t n);
/* Resolves a Link: <...>; rel="next" header into an absolute URL on the
 * registry's own origin (another host: false, logged). */
bool next_link(const struct reg *g, const struct http_response *r, struct buf *next);

/* ---- cleanup_scan.c ---------------------------------------------------- */

/* Scan: the catalog (include/exclude applied), every repository's tags,
 * every tag's manifest, blobs and created dates, into run->res; saves the
 * cache. 0 done (errors counted), 1 the catalog could not be listed
 * (res->status and res->message set), -1 out of memory. */
int cl_scan(struct cl_run *run);

/* ---- cleanup_plan.c ---------------------------------------------------- */

struct cl_manifest *cl_find_m(struct cl_repo *rp, const char *digest);
/* A new manifest entry of rp with a copy of digest; NULL: out of memory. */
struct cl_manifest *cl_add_m(struct cl_repo *rp, const char *digest);
/* Plan: the rules per tag, the deletions per digest, the blob sum, the
 * max_deletions check. 0 (res->status may be CL_ABORTED_MAX), -1 out of
 * memory. */
int cl_plan(struct cl_run *run);

/* ---- cleanup_apply.c --------------------------------------------------- */

/* Deletes the plan: indexes first, then images, then the children of
 * deleted indexes, with live progress on `progress` (NULL = none;
 * progress.h). Returns -2 when the registry refuses deletes (405), -1
 * when stopped. */
int delete_plan(struct reg *g, struct cleanup_result *res, int64_t concurrency,
                const volatile sig_atomic_t *stop, FILE *progress);
/* The deletes (after the test pause) and the garbage collection, with
 * their outcome in run->res. */
void cl_apply(struct cl_run *run);

#endif
