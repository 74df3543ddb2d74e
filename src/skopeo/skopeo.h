/* skopeo: run the skopeo tool (copy, inspect, delete, manifest digest) and
 * report its progress, true blob sizes and a classified error.
 *
 * Installed as libnexusskopeo (header $(includedir)/nexus-shipper/skopeo.h,
 * `#include <skopeo.h>` with `pkg-config --cflags nexusskopeo`; pkg-config
 * name `nexusskopeo`); depends on libc and json-c only.
 *
 * How a run works: skopeo is started with fork/execvp (no shell) in its own
 * process group, stdin /dev/null, stdout and stderr on pipes read with
 * poll(). Real skopeo writes its progress lines to STDOUT ("Getting image
 * source signatures", "Copying blob sha256:...", ...); both streams are
 * split into lines on '\n' and on '\r' (TTY-style redraws), ANSI escapes are
 * removed, and a partial line waits for the rest. At the timeout the whole
 * process group gets SIGTERM, then SIGKILL after the grace period; the child
 * is always reaped and the error reads "timed out after N s".
 *
 * Credentials never reach a command line: username/password are written to a
 * 0600 temporary auth file passed as --authfile (only its path is on argv)
 * and removed afterwards; extra arguments that carry credentials
 * (--creds, --src-creds, --dest-creds, --password...) are refused.
 *
 * Blob sizes are true: before a copy the source manifest is read with
 * `skopeo inspect --raw` (children of a docker:// index are read too) and
 * every blob gets its `size` from there. When the source is unreachable the
 * size is -1 ("unknown"); it is never estimated.
 *
 * Every function is re-entrant (no global state); runs may go on in
 * several threads at once. Ownership: a struct skopeo_result is filled by
 * the call and released with skopeo_result_free(); pointers inside a
 * progress event are valid only during the callback. */
#ifndef NEXUS_SKOPEO_H
#define NEXUS_SKOPEO_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum skopeo_op {
    SKOPEO_OP_COPY,
    SKOPEO_OP_INSPECT,
    SKOPEO_OP_DELETE,
    SKOPEO_OP_MANIFEST_DIGEST,
    SKOPEO_OP_COUNT
};
/* "copy", "inspect", "delete", "manifest_digest" (the seed's operation label). */
const char *skopeo_op_name(enum skopeo_op op);

/* error_type label values; SKOPEO_ERR_NONE ("") on success. */
enum skopeo_error_type {
    SKOPEO_ERR_NONE,
    SKOPEO_ERR_MANIFEST_UNKNOWN,
    SKOPEO_ERR_UNAUTHORIZED,
    SKOPEO_ERR_DENIED,
    SKOPEO_ERR_CONNECTION_REFUSED,
    SKOPEO_ERR_TLS,
    SKOPEO_ERR_TIMEOUT,
    SKOPEO_ERR_INVALID_REFERENCE,
    SKOPEO_ERR_NOT_FOUND,
    SKOPEO_ERR_RATE_LIMITED,
    SKOPEO_ERR_NO_SPACE,
    SKOPEO_ERR_OTHER,
    SKOPEO_ERR_COUNT
};
const char *skopeo_error_type_name(enum skopeo_error_type t);
/* Classifies skopeo's stderr text (case-insensitive patterns). */
enum skopeo_error_type skopeo_classify_error(const char *stderr_text);

/* The seed's BlobInfo. */
struct skopeo_blob_info {
    char sha256[72];    /* "sha256:<64 hex>" (as printed: may be a 12-hex prefix on a TTY) */
    int64_t size;       /* bytes from the source manifest; -1 = unknown */
    const char *status; /* "copying", "done", "skipped", "failed" */
    bool is_config;
};

/* The seed's ProgressInfo, plus the percentage of the step table. */
struct skopeo_progress {
    enum skopeo_op operation;
    const char *operation_name;
    const char *current_step; /* getting_signatures, copying_blob, copying_config,
                                 writing_manifest, storing_signatures, copying_image,
                                 completed, failed, running */
    const struct skopeo_blob_info *current_blob; /* NULL when the step has none */
    bool manifest_written;
    bool signatures_stored;
    const char *error; /* NULL unless the run failed */
    bool completed;
    double percentage;            /* getting_signatures 10, copying_blob 50, copying_config 75,
                                     writing_manifest 90, storing_signatures 95, completed 100 */
    int image_index, image_count; /* multi-arch: "Copying image ... (i/n)"; 0 otherwise */
    size_t blobs_seen;            /* distinct blobs (layers and config) reported so far */
    const char *line;             /* the output line behind this event ("" if none) */
    /* copy: bytes of the source manifest's blobs (-1: sizes unknown) and of
     * those finished; skopeo reports a blob when it starts, so a blob
     * counts as finished once a later one (or a later step) is reported */
    int64_t bytes_total, bytes_done;
};
typedef void (*skopeo_progress_cb)(const struct skopeo_progress *p, void *userdata);

struct skopeo_options {
    const char *binary;   /* NULL = "skopeo" (PATH lookup) */
    int64_t timeout_ms;   /* 0 = no timeout */
    int64_t grace_ms;     /* SIGTERM -> SIGKILL; 0 = 5000 */
    int tls_verify;       /* 1 verify, 0 --tls-verify=false, -1 skopeo's default */
    const char *authfile; /* passed as --authfile (NULL: skopeo's default / REGISTRY_AUTH_FILE) */
    const char *username; /* with password: a 0600 temporary authfile for the */
    const char *password; /* registries of every docker:// reference involved */
    const char *const *extra_args; /* appended before the image arguments */
    size_t n_extra;
    skopeo_progress_cb progress; /* optional */
    void *userdata;
    const volatile sig_atomic_t *cancel; /* optional: when non-zero the run is stopped */
    int version_major, version_minor, version_patch; /* major 0 = detect (`skopeo --version`) */
    bool no_sizes;                                   /* copy: do not read the source manifest */
    size_t max_output;                               /* stdout/stderr kept, each; 0 = 16 MiB */
};
/* Defaults: binary NULL, tls_verify -1, everything else 0. */
void skopeo_options_init(struct skopeo_options *o);

struct skopeo_blob {
    char digest[72];
    int64_t size; /* -1 unknown */
    bool is_config;
    bool copied;        /* seen in skopeo's output */
    bool skipped;       /* "skipped: already exists" (TTY output only) */
    const char *status; /* last status reported: NULL, "copying", "done", "skipped" */
};

struct skopeo_result {
    bool ok;
    int exit_status; /* exit code; -1 when killed by a signal or not started */
    int term_signal; /* signal that ended it, 0 otherwise */
    bool timed_out;
    bool cancelled;
    enum skopeo_error_type error_type;
    char *error; /* malloc'd message, NULL on success */
    char *out;   /* stdout (NUL-terminated), malloc'd */
    size_t out_len;
    char *err_out; /* stderr (NUL-terminated), malloc'd */
    size_t err_len;
    char *digest; /* manifest-digest / copy destination digest when known; malloc'd or NULL */
    struct skopeo_blob *blobs; /* copy: from the source manifest plus any seen in the output */
    size_t n_blobs;
    bool sizes_known;    /* the source manifest was read */
    int64_t bytes_total; /* sum of known blob sizes; -1 when none known */
    double duration_s;
    int version_major, version_minor, version_patch; /* 0 when unknown */
    bool manifest_written, signatures_stored;
    int image_count; /* multi-arch copies */
};
void skopeo_result_free(struct skopeo_result *r);

/* Each returns 0 when skopeo succeeded, -1 otherwise; `r` is always filled
 * (memset by the call) and must be freed with skopeo_result_free(). */
int skopeo_copy(const char *src, const char *dst, const struct skopeo_options *o,
                struct skopeo_result *r);
/* inspect: r->out holds skopeo's JSON (or the raw manifest when raw). */
int skopeo_inspect(const char *image, bool raw, const struct skopeo_options *o,
                   struct skopeo_result *r);
int skopeo_delete(const char *image, const struct skopeo_options *o, struct skopeo_result *r);
/* IMAGE (transport:ref): `inspect --raw`, then `skopeo manifest-digest` of
 * those exact bytes (= the registry's Docker-Content-Digest, indexes too);
 * an existing FILE (or a name without transport): `skopeo manifest-digest
 * FILE`. r->digest holds "sha256:...". */
int skopeo_manifest_digest(const char *image_or_file, const struct skopeo_options *o,
                           struct skopeo_result *r);

/* `skopeo --version` -> 0 and major/minor/patch, or -1. */
int skopeo_version(const char *binary, int *major, int *minor, int *patch);

/* The step table of a skopeo version: the copy steps printed and their
 * percentages. 1.13+ print "Storing signatures" only when signing. */
struct skopeo_step {
    const char *name;
    double percentage;
    bool always; /* printed by every copy of this version */
};
const struct skopeo_step *skopeo_step_table(int major, int minor, size_t *n);

/* Transport of a reference: "docker", "oci", "dir", "docker-archive",
 * "oci-archive", "containers-storage", "docker-daemon", ... or "unknown". */
void skopeo_transport(const char *ref, char *out, size_t n);

/* The registry's name grammar (distribution/reference), the one
 * definition shared by the skopeo runner and the registry cleanup; a name
 * from a configuration, a command line or a registry's answer enters a URL
 * or an argv only after passing it.
 *  repository: path components [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
 *              separated by '/', at most 255 characters in all;
 *  tag:        [A-Za-z0-9_][A-Za-z0-9_.-]{0,127};
 *  digest:     algorithm:hex, algorithm [a-z0-9]+(?:[.+_-][a-z0-9]+)*,
 *              hex [a-zA-Z0-9=_-]{32,}; "sha256:" needs 64 lowercase hex. */
bool skopeo_valid_repository(const char *name);
bool skopeo_valid_tag(const char *tag);
bool skopeo_valid_digest(const char *digest);

/* Checks an image reference before it goes on skopeo's command line:
 * never empty or starting with '-' (an option), no control characters;
 * a docker:// reference must be docker://HOST[:PORT]/REPOSITORY[:TAG][@DIGEST]
 * with a valid host, repository, tag and digest. Returns true, or false
 * with the reason in why. */
bool skopeo_check_reference(const char *ref, char *why, size_t n);

/* Parses one output line (no line terminator) as skopeo prints it; used by
 * the runner and exposed for tests. Returns the step name or NULL. */
struct skopeo_line {
    const char *step;   /* static string, NULL if the line is no progress line */
    char digest[72];    /* blob/config/image digest or hex prefix, "" if none */
    const char *status; /* "done", "skipped", "copying" or NULL */
    int image_index, image_count;
};
int skopeo_parse_line(const char *line, struct skopeo_line *out);

#ifdef __cplusplus
}
#endif
/* JSON that skopeo prints for a registry (inspect, manifests) is parsed
 * only when json-c would need at most this much for it (json_bound.h). */
#define SKOPEO_MAX_JSON_COST (64u << 20)

#endif
