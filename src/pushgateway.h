/* pushgateway: pushes of batch-run results in text format 0.0.4.
 *
 * PUT replaces the whole group, POST only the metrics of the same names,
 * DELETE removes the group. The group is /metrics/job/<job>{/<k>/<v>};
 * values containing '/' (or empty) use the `@base64` form. */
#ifndef NS_PUSHGATEWAY_H
#define NS_PUSHGATEWAY_H

#include "http.h"
#include "remote_write.h"
#include "util.h"

/* Builds the group path "/metrics/job/<job>{/<k>/<v>}" into out. */
int pgw_group_path(const char *job, const char *const *grouping, size_t n_grouping,
                   struct buf *out);
/* Builds base + "/metrics/job/..." into out. grouping = name,value pairs. */
int pgw_url(const char *base, const char *job, const char *const *grouping, size_t n_grouping,
            struct buf *out);

/* Sends and classifies (same three outcomes as remote-write). */
enum send_outcome pgw_push(struct http_client *c, const char *method, const char *url,
                           const char *body, size_t len, struct http_response *r);

#endif
