/* skopeo_int: the inside of libnexusskopeo, shared by its files only. The
 * library's API is skopeo.h; nothing here is installed, and the shared
 * library exports ^skopeo_ only, so these names may change freely. Names
 * shared between the files carry the sk_ prefix: a static archive and the
 * shipper's core library, which links these files too, see them.
 *
 * Which file owns what:
 *   skopeo.c           the capped buffer (struct sbuf), sk_printf, the
 *                      operation and error-type names, the error
 *                      classifier, options and results
 *   skopeo_ref.c       image references: transports, the registry's name
 *                      grammar, the docker:// helpers below
 *   skopeo_progress.c  the step table, skopeo_parse_line, and a copy's
 *                      progress (struct op_ctx, the result's blob list)
 *   skopeo_run.c       one run of skopeo (struct run) on top of proc.h:
 *                      output into capped buffers, lines, the result
 *   skopeo_authfile.c  credentials: the temporary authfile and directory
 *   skopeo_ops.c       the operations (copy, inspect, delete, digest)
 * (skopeo_metrics.[ch], in this folder too, are the shipper's, not the
 * library's: the skopeo_* counters of the CLI and the skopeo_runs collector.)
 *
 * Dependencies: libc, json-c and proc.h (src/core, linked into the
 * library), nothing else of the shipper: libnexusskopeo stands alone. It
 * has its own buffer instead of util.h's struct buf because util.c needs
 * libcurl and because the semantics differ: an sbuf keeps the first `max`
 * bytes of a child's output and flags the rest as cut (truncated), where
 * buf_append refuses the whole append.
 *
 * Ownership and errors: functions returning char * return malloc'd
 * strings (NULL when out of memory); int functions return 0 or -1 (errno
 * set) unless noted. Nothing here keeps global state. */
#ifndef NS_SKOPEO_INT_H
#define NS_SKOPEO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skopeo.h"

#define SK_LINE_MAX            65536
#define SK_DEFAULT_MAX_OUTPUT  (16u << 20)
#define SK_DEFAULT_GRACE_MS    5000
#define SK_MAX_CHILD_MANIFESTS 32
#define SK_MAX_ARGS            64

/* ---- skopeo.c: small helpers ------------------------------------------ */

/* A growable buffer of at most max bytes (0 = no limit), NUL-terminated
 * once anything was added: what does not fit is dropped and `truncated`
 * set. The owner frees d. */
struct sbuf {
    char *d;
    size_t len, cap, max;
    bool truncated;
};
/* -1 only when out of memory. */
int sk_sbuf_add(struct sbuf *b, const char *p, size_t n);

/* vasprintf into a new string; NULL when out of memory. */
char *sk_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- skopeo_ref.c: docker:// references -------------------------------- */

bool sk_is_docker(const char *ref);
/* "docker://host:port/repo/x:tag" -> host ("docker.io" for Docker Hub names). */
void sk_docker_host(const char *ref, char *out, size_t n);
/* "docker://host/repo:tag" or "...@sha256:x" -> "docker://host/repo" (malloc'd). */
char *sk_docker_repo(const char *ref);

/* ---- skopeo_run.c: one run of skopeo ------------------------------------ */

struct linebuf {
    char b[SK_LINE_MAX + 1];
    size_t len;
};

struct run;
/* Called with each non-empty output line, ANSI escapes removed; `line`
 * is valid during the call only. */
typedef void (*line_fn)(struct run *r, int stream, char *line);

struct run {
    const struct skopeo_options *o;
    int64_t deadline; /* monotonic ms, 0 = none */
    int64_t timeout_ms;
    struct sbuf out, err;
    struct linebuf lb[2];
    line_fn on_line;
    void *ctx;
    int exit_status, term_signal;
    bool timed_out, cancelled, started;
    int exec_errno;
};

/* Output capped at o->max_output (default SK_DEFAULT_MAX_OUTPUT). */
void sk_run_init(struct run *r, const struct skopeo_options *o, int64_t deadline);
void sk_run_free(struct run *r);
/* Runs argv (proc.h); fills r (status, output); returns 0 when it ran
 * (whatever the exit status), -1 when it could not be started
 * (r->exec_errno). */
int sk_run_argv(struct run *r, char *const argv[]);
/* Moves the run's output into res and sets ok, error and error_type;
 * start_rc is sk_run_argv's return value, t0 the start (proc_mono_ms). */
void sk_fill_result(struct skopeo_result *res, struct run *run, int start_rc, int64_t t0,
                    const struct skopeo_options *o);

/* ---- skopeo_authfile.c: credentials ------------------------------------ */

/* A private 0700 directory for the temporary authfile and digest file. */
struct tmpdir {
    char dir[256];
    char auth[300];
    char digest[300];
};
/* Under $TMPDIR (else /tmp); dir[0] stays '\0' on failure. */
int sk_tmpdir_make(struct tmpdir *t);
/* Removes the files and the directory; a no-op when dir[0] is '\0'. */
void sk_tmpdir_remove(struct tmpdir *t);
/* Writes {"auths":{host:{"auth":b64(user:pass)}}} (0600, new file) for
 * every docker:// reference among ref1 and ref2 (ref2 may be NULL). */
int sk_write_authfile(const char *path, const struct skopeo_options *o, const char *ref1,
                      const char *ref2);
/* True for an argument that carries credentials (--creds, --password=...). */
bool sk_is_secret_arg(const char *a);

/* ---- skopeo_progress.c: the progress of an operation ------------------ */

struct op_ctx {
    enum skopeo_op op;
    const struct skopeo_options *o;
    struct skopeo_result *res;
    struct skopeo_progress p;
    struct skopeo_blob_info cur;
    bool has_cur;
    int image_index, image_count;
};

/* Sends one progress event to o->progress (if set); pct never goes down. */
void sk_emit(struct op_ctx *c, const char *step, double pct, const char *line);
/* The blob of digest d in r (a 12-hex TTY prefix matches too), else a new
 * one; NULL when out of memory. A known blob keeps its size unless it was
 * unknown (-1). */
struct skopeo_blob *sk_add_blob(struct skopeo_result *r, const char *d, int64_t size,
                                bool is_config);
/* The line handler of a copy (run->ctx is its struct op_ctx). */
void sk_copy_on_line(struct run *run, int stream, char *line);

#endif
