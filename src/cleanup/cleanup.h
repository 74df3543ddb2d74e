/* cleanup: Docker registry cleanup (seed 001), safe against shared digests
 * and multi-arch images.
 *
 * A run has three steps:
 *  1. scan   walk /v2/_catalog (Link pagination) and every repository's
 *            tags; per tag GET the manifest accepting all four manifest
 *            media types, take the digest from Docker-Content-Digest (or
 *            the sha256 of the body), the creation date from the config
 *            blob (for an index: the newest child) and the blob sizes.
 *            Bounded concurrency: opts.concurrency transfers at once on
 *            one libcurl multi handle (regmulti.h), connections reused.
 *            Names from the registry (catalog, tags list) and digests
 *            (Docker-Content-Digest, config, index children) are checked
 *            against distribution's reference grammar (skopeo.h:
 *            skopeo_valid_*) before they enter a URL: a bad repository is
 *            skipped, a bad tag leaves its repository untouched, both with
 *            an error naming the name and the URL it came from.
 *            Config blobs and index children are content-addressed, so
 *            what they tell (created date, child blobs) is cached by
 *            digest in opts.cache_file (cleanup_cache.h): a later run
 *            needs one manifest GET per tag.
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
 * Ownership: cleanup_run() fills a struct cleanup_result the caller frees
 * with cleanup_result_free(). Nothing here keeps global state. */
#ifndef NS_CLEANUP_H
#define NS_CLEANUP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "cleanup_rules.h"
#include "config.h"
#include "util.h"

/* [cleanup] keys that config.c does not have yet (see the report to the
 * lead); filled by cleanup_opts_defaults() and the command line. Strings
 * are borrowed and must outlive the run. */
struct cleanup_opts {
    const char *container;       /* {container} in gc_command ("registry") */
    const char *registry_config; /* {config} in gc_command ("/etc/docker/registry/config.yml") */
    const char *gc_command;      /* "" = no GC (Nexus: its own task) */
    const char *pre_gc_command;  /* "" = none */
    const char *post_gc_command; /* "" = none */
    const char *storage_path;    /* "" = freed space by du not measured */
    const char *log_file;        /* "" = none */
    const char *include_repositories; /* ERE, "" = all */
    const char *exclude_repositories; /* ERE, "" = none */
    int64_t max_deletions; /* 0 = no limit: DELETE requests in the plan (index children count) */
    int64_t concurrency;   /* parallel manifest requests, >= 1 */
    int64_t timeout_ms;    /* per HTTP request */
    const char *ca_file;
    bool insecure_skip_verify;
    const char *cache_file; /* "" = none: digest -> created/blobs kept between runs */
    size_t cache_entries;   /* bound of the cache file (0 = 200000) */
};
void cleanup_opts_defaults(struct cleanup_opts *o);

enum cl_status {
    CL_OK = 0,
    CL_FAILED,          /* errors (scan or delete); details logged */
    CL_ABORTED_MAX,     /* the plan exceeded max_deletions: nothing deleted */
    CL_DELETE_DISABLED, /* 405: storage.delete.enabled is off */
};
const char *cl_status_name(enum cl_status s);

#define CL_NREASONS 10 /* keep reasons counted (see cl_reason_name) */

struct cl_blob {
    char *digest;
    uint64_t size;
};

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
int cleanup_run(const struct cfg_cleanup *cc, const struct cleanup_opts *o, bool dry_run,
                const volatile sig_atomic_t *stop, struct cleanup_result *res, struct err *e);
void cleanup_result_free(struct cleanup_result *r);

/* The plan/result as text (one line per tag, then the deletions and a
 * summary) or as one JSON document. */
int cleanup_format_text(const struct cleanup_result *r, struct buf *out);
int cleanup_format_json(const struct cleanup_result *r, struct buf *out);

/* ---- registry answers: pure parsers (no network; fuzzed) ----
 * `what` names the answer in messages (its URL). Each returns 0, or -1 with
 * e->msg naming `what` and the offending field. */

#define CL_MAX_CHILDREN 1024 /* manifests of one index */
#define CL_MAX_LAYERS   4096 /* layers of one image */

/* A catalog page ("repositories") or a tags list ("tags"): the strings of
 * array `key` appended to *v (absent or null: none; anything else than an
 * array of strings is an error). Names are NOT validated here. */
int cl_parse_names(const char *what, const char *body, size_t len, const char *ctype,
                   const char *key, char ***v, size_t *n, struct err *e);

/* A manifest of any of the four media types (Docker v2 / OCI image, Docker
 * manifest list / OCI index; a body without mediaType is typed by the
 * Content-Type, or as an index when it has "manifests"). Every digest is
 * checked against the digest grammar. */
struct cl_parsed_manifest {
    char media_type[128];
    bool is_index;
    char config[160];      /* an image's config blob digest, "" when none */
    struct cl_blob *blobs; /* an image: config + layers */
    size_t n_blobs;
    char **children; /* an index: child manifest digests, with their sizes */
    uint64_t *child_sizes;
    size_t n_children;
};
int cl_parse_manifest(const char *what, const char *body, size_t len, const char *ctype,
                      struct cl_parsed_manifest *pm, struct err *e);
void cl_parsed_manifest_free(struct cl_parsed_manifest *pm);

/* A config blob: `created` in ms (0 when absent, not a string, not a date
 * or the epoch). -1 only when the body is not a JSON object. */
int cl_parse_created(const char *what, const char *body, size_t len, const char *ctype,
                     int64_t *created, struct err *e);

/* s for a log line: bytes outside printable ASCII, '"' and '\\' become
 * '?', cut with "..." to fit n. */
void cl_printable(const char *s, char *out, size_t n);

/* Parses an RFC 3339 timestamp into ms since the epoch; -1 if invalid. */
int64_t cl_parse_time(const char *s);

/* Sums the apparent sizes of every file and directory under path (du -sb);
 * -1 on error. */
int64_t cl_du(const char *path);

/* `nexus-shipper cleanup [--dry-run] [--json] [--legacy-json FILE] ...`
 * (cleanup_cli.c): argv[0] is "cleanup". Logs through `lg` (the caller's
 * logger; its log file is opened here). Returns the process exit code:
 * 0 success, 1 runtime failure (errors, 405, max_deletions, lock held),
 * 2 usage or configuration error. */
struct logger;
/* Its usage text (`cleanup --help`), for cli_args. */
extern const char *const cleanup_cli_usage;
int cleanup_cli(const char *config_path, int argc, char **argv, struct logger *lg,
                const volatile sig_atomic_t *stop);

#endif
