/* cleanup: Docker registry cleanup (seed 001), safe against shared digests
 * and multi-arch images.
 *
 * A run has three steps:
 *  1. scan   walk /v2/_catalog (Link pagination) and every repository's
 *            tags; per tag GET the manifest accepting all four manifest
 *            media types, take the digest from Docker-Content-Digest (or
 *            the sha256 of the body), the creation date from the config
 *            blob (for an index: the newest child) and the blob sizes.
 *            Bounded concurrency: `concurrency` transfers at once on
 *            one libcurl multi handle (regmulti.h), connections reused.
 *            Names from the registry (catalog, tags list) and digests
 *            (Docker-Content-Digest, config, index children) are checked
 *            against distribution's reference grammar (skopeo.h:
 *            skopeo_valid_*) before they enter a URL: a bad repository is
 *            skipped, a bad tag leaves its repository untouched, both with
 *            an error naming the name and the URL it came from.
 *            Config blobs and index children are content-addressed, so
 *            what they tell (created date, child blobs) is cached by
 *            digest in the overrides' cache_file (cleanup_cache.h): a
 *            later run needs one manifest GET per tag.
 *  2. plan   cleanup_decide() per tag (cleanup_rules.h is the one
 *            definition of the rules), then per digest: a manifest is
 *            deleted only if every tag pointing at it is deletable and no
 *            kept index of the repository lists it as a child; otherwise
 *            it is kept "by tag X". An index is deleted as a whole (the
 *            index, then its children that nothing kept references).
 *  3. apply  (not in dry-run) DELETE /v2/<repo>/manifests/<digest>: 202
 *            deleted, 404 already gone, 405 stops the run (deletion is
 *            disabled in the registry), then the optional garbage
 *            collection (argv, no shell) with du of storage_path before
 *            and after.
 *
 * Authentication: basic (username/password) and the bearer-token dance
 * (401 + WWW-Authenticate: Bearer realm,service,scope -> token endpoint,
 * with the basic credentials when set). Passwords are never logged.
 *
 * Options: the [cleanup] keys (struct cfg_cleanup) and what the command
 * line overrides (struct cleanup_overrides). The steps are one file each
 * in src/cleanup/ (cleanup_int.h lists them); the command is cleanup_cli.h.
 *
 * Ownership: cleanup_run() fills a struct cleanup_result the caller frees
 * with cleanup_result_free(). Nothing here keeps global state. */
#ifndef NS_CLEANUP_H
#define NS_CLEANUP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cleanup_manifest.h"
#include "cleanup_rules.h"
#include "config.h"
#include "util.h"

/* What the command line changes for one run; everything else comes from
 * the [cleanup] keys (struct cfg_cleanup). A NULL string or a negative
 * number means "not overridden". Strings are borrowed and must outlive
 * the run. */
struct cleanup_overrides {
    bool dry_run;
    int64_t max_deletions;            /* --max-deletions; 0 = no limit */
    int64_t concurrency;              /* --concurrency, 1..64 */
    const char *include_repositories; /* --include (ERE, "" = all) */
    const char *exclude_repositories; /* --exclude (ERE, "" = none) */
    const char *gc_command;           /* --gc-command / --no-gc ("" = no GC) */
    const char *pre_gc_command, *post_gc_command;
    const char *container, *registry_config, *storage_path; /* {container} {config} {storage} */
    const char *cache_file; /* NULL or "" = no cache: digest -> created/blobs between runs */
    size_t cache_entries;   /* bound of the cache file (0 = 200000) */
    FILE *progress;         /* NULL = none: live progress of scan and deletes (progress.h) */
};
/* Nothing overridden (max_deletions and concurrency -1). */
void cleanup_overrides_init(struct cleanup_overrides *ov);

enum cl_status {
    CL_OK = 0,
    CL_FAILED,          /* errors (scan or delete); details logged */
    CL_ABORTED_MAX,     /* the plan exceeded max_deletions: nothing deleted */
    CL_DELETE_DISABLED, /* 405: storage.delete.enabled is off */
};
const char *cl_status_name(enum cl_status s);

#define CL_NREASONS 10 /* keep reasons counted (see cl_reason_name) */

struct cl_manifest {
    char *digest;
    char *media_type;
    bool is_index;
    char **children; /* index: child manifest digests */
    size_t n_children;
    struct cl_blob *blobs; /* config + layers (of the children for an index) */
    size_t n_blobs;
    uint64_t size; /* manifest bytes */
    int64_t created_ms;
    bool delete;         /* in the plan */
    bool child_only;     /* deleted because its index is (no tag of its own) */
    bool kept_by_index;  /* a child of a kept index (kept_by = the index's tag) */
    const char *kept_by; /* tag (or index tag) that keeps it; borrowed */
    char result[64];     /* after apply: "deleted", "already gone", error */
};

struct cl_tag {
    char *tag;
    char *digest; /* NULL when the manifest could not be read */
    int64_t created_ms;
    enum keep_reason rule; /* cleanup_decide() */
    int reason;            /* cl_reason index: what finally happens */
    const char *kept_by;   /* borrowed */
    char error[160];
};

struct cl_repo {
    char *name;
    struct cl_tag *tags;
    size_t n_tags;
    struct cl_manifest *m; /* distinct digests of the tags (+ index children) */
    size_t n_m;
    char error[256];
};

struct cleanup_result {
    char *registry;
    bool dry_run;
    enum cl_status status;
    char message[512];
    int64_t started_ms, finished_ms;
    struct cl_repo *repos;
    size_t n_repos;
    /* summary */
    uint64_t tags_scanned, tags_to_delete, tags_deleted;
    uint64_t kept[CL_NREASONS];
    uint64_t manifests_to_delete, manifests_deleted, manifests_gone;
    uint64_t errors;
    uint64_t blob_bytes;         /* sum of blobs no kept manifest references */
    int64_t du_before, du_after; /* -1 = not measured */
    bool gc_ran;
    bool gc_none; /* manifests deleted, no gc_command: the registry's own GC frees blobs */
    int gc_exit;
    char gc_summary[160]; /* the "N blobs marked..." line */
};

/* Name of a final per-tag reason: "delete", the keep_reason names, and
 * "shared_digest", "index_child", "error". */
const char *cl_reason_name(int r);
#define CL_REASON_DELETE      0
#define CL_REASON_SHARED      7
#define CL_REASON_INDEX_CHILD 8
#define CL_REASON_ERROR       9

/* Runs a cleanup. `stop` (may be NULL) aborts between requests.
 * Returns 0 when the run went through (res->status may still say it
 * failed), -1 only on setup errors (bad regex, out of memory) with e->msg. */
int cleanup_run(const struct cfg_cleanup *cc, const struct cleanup_overrides *ov,
                const volatile sig_atomic_t *stop, struct cleanup_result *res, struct err *e);
void cleanup_result_free(struct cleanup_result *r);

/* The plan/result as text (one line per tag, then the deletions and a
 * summary) or as one JSON document. */
int cleanup_format_text(const struct cleanup_result *r, struct buf *out);
int cleanup_format_json(const struct cleanup_result *r, struct buf *out);

/* Sums the apparent sizes of every file and directory under path (du -sb);
 * -1 on error. */
int64_t cl_du(const char *path);

#endif
