/* pushgateway: pushes of batch-run results in text format 0.0.4.
 *
 * PUT replaces the whole group, POST only the metrics of the same names,
 * DELETE removes the group. The group is /metrics/job/<job>{/<k>/<v>};
 * values containing '/' (or empty) use the `@base64` form.
 * Paths and URLs only: no HTTP here (the sender in src/delivery/ sends the
 * pushes; src/README.md). */
#ifndef NS_PUSHGATEWAY_H
#define NS_PUSHGATEWAY_H

#include "remote_write.h"
#include "util.h"

/* Builds the group path "/metrics/job/<job>{/<k>/<v>}" into out. */
int pgw_group_path(const char *job, const char *const *grouping, size_t n_grouping,
                   struct buf *out);
/* Checks a group path against the grammar pgw_group_path writes (a
 * spooled or imported push is untrusted input): "/metrics", then
 * "/job/<value>" or "/job@base64/<b64>", then any number of
 * "/<name>/<value>" or "/<name>@base64/<b64>", where <name> is a label
 * name ([a-zA-Z_][a-zA-Z0-9_]*, not "__..."), <value> is percent-encoded
 * (unreserved characters and %XX escapes of reserved bytes other
 * than NUL and '/'), non-empty, not "." or "..", and <b64> is base64url
 * ("=" alone: the empty value). At most PGW_PATH_MAX bytes. 0, or -1 with
 * e->msg saying what is wrong and where. */
#define PGW_PATH_MAX 1000
int pgw_group_path_check(const char *path, struct err *e);

/* Checks a spooled push's "METHOD group-path" (struct seg_meta.extra):
 * METHOD must be one the shipper writes (PUT, POST) and the path must pass
 * pgw_group_path_check. On success copies the method into method[] and
 * points *path into extra. 0, or -1 with e->msg. */
int pgw_extra_check(const char *extra, char *method, size_t method_n, const char **path,
                    struct err *e);
/* Whether the shipper writes pushes with this method (PUT, POST; never
 * DELETE). */
bool pgw_method_ok(const char *method);

/* The push URL: base (the configured [pushgateway] url, trusted) with
 * group_path (checked with pgw_group_path_check first; refused otherwise)
 * appended to its path, built with libcurl's URL API: scheme, user
 * info, host and port are always the base's. Replaces out's content.
 * 0, or -1 (bad base or path, out of memory). */
int pgw_build_url(const char *base, const char *group_path, struct buf *out);

/* Builds base + "/metrics/job/..." into out. grouping = name,value pairs. */
int pgw_url(const char *base, const char *job, const char *const *grouping, size_t n_grouping,
            struct buf *out);

#endif
