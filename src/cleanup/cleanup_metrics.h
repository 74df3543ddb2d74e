/* cleanup_metrics: the registry_cleanup_* series of `nexus-shipper
 * cleanup` runs, kept in <state_dir>/cleanup.state.
 *
 * The state holds the counters across runs (runs by status, tags deleted
 * per repository, errors), the last successful run's time, and the last
 * run's own figures (tags scanned, kept by reason, bytes freed, duration,
 * when it ran). It is written durably by the run under cleanup.lock and
 * read by whoever ships (ship.h: the CLI when no daemon runs, else the
 * daemon's cleanup_runs collector), so every writer renders the same
 * values. */
#ifndef NS_CLEANUP_METRICS_H
#define NS_CLEANUP_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"
#include "series.h"
#include "run_job.h"

struct cleanup_state {
    uint64_t runs[4]; /* by enum cl_status */
    uint64_t errors;
    int64_t last_success_ms;
    char **repo;
    uint64_t *deleted;
    size_t n;
    /* the last run (0 / -1 when there was none yet) */
    int64_t last_run_ms; /* when it finished */
    int last_status;     /* enum cl_status, -1 = none */
    uint64_t last_scanned, last_repos, last_manifests_deleted, last_blob_bytes;
    int64_t last_du_freed; /* -1 = not measured */
    double last_duration_s;
    uint64_t last_kept[CL_NREASONS];
};

/* Reads `path` into s (zeroed first; a missing file is an empty state).
 * Unknown lines are ignored. */
void cleanup_state_load(const char *path, struct cleanup_state *s);
/* Writes s durably as <dir>/cleanup.state. 0, or -1 with e->msg. */
int cleanup_state_save(const char *dir, const struct cleanup_state *s, struct err *e);
void cleanup_state_free(struct cleanup_state *s);
/* Adds a finished (not dry) run to the state. */
void cleanup_state_add_run(struct cleanup_state *s, const struct cleanup_result *r);

/* Renders <state_dir>/cleanup.state into sb (inside the caller's
 * transaction). 0 (also with no state yet). */
int cleanup_metrics_publish(const char *state_dir, struct series_buf *sb);

/* The cleanup run job (Pushgateway job "registry_cleanup"). */
extern const struct run_job cleanup_run_job;

#endif
