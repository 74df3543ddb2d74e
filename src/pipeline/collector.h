/* collector: the descriptor every collector exports (src/README.md,
 * "Adding a collector").
 *
 * One collector = one file in src/collectors/ = one `const struct
 * collector` listed in collectors.c. The scheduler calls init() once
 * (when enabled() says its configuration section is present), collect()
 * every cycle inside a series-buffer transaction, destroy() at the end.
 *
 * collect() returns 0 on success; on -1 (with ctx->e->msg saying what and
 * where) everything it added this cycle is rolled back and the collector
 * is reported down. It must respect ctx->deadline_mono (pass it to HTTP
 * and database calls). */
#ifndef NS_COLLECTOR_H
#define NS_COLLECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "series.h"
#include "util.h"

struct collect_ctx {
    struct series_buf *sb;
    int64_t deadline_mono; /* monotonic ms */
    struct err *e;
};

struct collector {
    const char *name;
    bool (*enabled)(const struct config *cfg);
    int (*init)(const struct config *cfg, void **state, struct err *e);
    int (*collect)(void *state, struct collect_ctx *ctx);
    void (*destroy)(void *state);
};

/* The static table of built-in collectors (collectors.c). */
extern const struct collector *const builtin_collectors[];
extern const size_t n_builtin_collectors;

/* sb_setv for collectors (collector.c): stores one sample with
 * NULL-terminated label pairs; on failure ctx->e says which series and -1
 * is returned. The descriptor parts of the collectors whose state is one
 * client are declared with that client: nexus_collector_* in nexus_api.h,
 * db_collector_* in db.h. */
int coll_set(struct collect_ctx *ctx, const struct metric_desc *d, double v, ...)
    __attribute__((sentinel));

/* The three samples of one HTTP probe with the same NULL-terminated label
 * pairs: up (1 or 0), the probe's duration in seconds and its HTTP status
 * (0 = no answer). -1 with ctx->e as coll_set. */
struct probe_descs {
    const struct metric_desc *up, *seconds, *status;
};
int coll_set_probe(struct collect_ctx *ctx, const struct probe_descs *d, bool up, double seconds,
                   long status, ...) __attribute__((sentinel));

#endif
