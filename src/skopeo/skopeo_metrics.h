/* skopeo_metrics: the seed's skopeo_* series of `nexus-shipper skopeo`
 * runs, kept across runs and processes in state_dir.
 *
 * Counters and histograms accumulate in <state_dir>/skopeo-metrics.state
 * (flock'd on skopeo-metrics.lock, written durably): every writer renders
 * them from there (ship.h: the CLI when no daemon runs, else the daemon
 * through the skopeo_runs collector), so the values are cumulative
 * whoever ships. Operations running now are files in
 * <state_dir>/skopeo-active/, one per operation, each flock'd by its
 * process for as long as it runs: a file whose lock can be taken belongs
 * to a dead process (SIGKILL) and is removed when counted, so the gauge
 * never stays stuck. */
#ifndef NS_SKOPEO_METRICS_H
#define NS_SKOPEO_METRICS_H

#include <stdbool.h>

#include "series.h"
#include "config.h"
#include "run_job.h"
#include "skopeo.h"

#define SK_MAX_TYPES 32

struct sk_typed_count {
    int op;
    char type[32];
    double v;
};

/* One run's (or the cumulative) counters. */
struct sk_metrics {
    bool used[SKOPEO_OP_COUNT];
    double ops[SKOPEO_OP_COUNT][2]; /* [success, error] */
    struct histogram dur[SKOPEO_OP_COUNT];
    double blobs[SKOPEO_OP_COUNT][2];
    struct histogram bsize[SKOPEO_OP_COUNT];
    double errors[SKOPEO_OP_COUNT][SKOPEO_ERR_COUNT];
    struct sk_typed_count src[SK_MAX_TYPES], dst[SK_MAX_TYPES];
    size_t nsrc, ndst;
    double last_ms[SKOPEO_OP_COUNT][2]; /* end of the last operation, by status */
    double active[SKOPEO_OP_COUNT];     /* filled by skopeo_metrics_publish */
};

/* Run metrics are recorded and shipped unless [skopeo] enable_metrics is
 * false (or there is no configuration at all: no state_dir). */
bool skopeo_metrics_enabled(const struct config *cfg);

void sk_metrics_init(struct sk_metrics *m);
/* Counts one finished operation (src/dst are the image references). */
void sk_metrics_record(struct sk_metrics *m, enum skopeo_op op, const char *src, const char *dst,
                       const struct skopeo_result *r);
/* Merges a run's counters into the state file under its lock; `total`
 * gets the cumulative values. 0, or -1 (logged; `total` = this run). */
int sk_metrics_accumulate(const char *state_dir, const struct sk_metrics *run,
                          struct sk_metrics *total);
/* Reads the state file and counts the running operations into m
 * (initialised here). 0 (also with no state yet), -1 if unreadable. */
int sk_metrics_load(const char *state_dir, struct sk_metrics *m);
/* Renders the state file and the running operations into sb (inside the
 * caller's transaction). 0 (also with no state yet), -1 if unreadable. */
int skopeo_metrics_publish(const char *state_dir, struct series_buf *sb);
/* Renders the counters in m (no active operations) into sb. */
void sk_metrics_render(const struct sk_metrics *m, struct series_buf *sb);

/* The skopeo run job (Pushgateway job "skopeo"). */
extern const struct run_job skopeo_run_job;

/* An operation running now: created before skopeo starts, ended (and its
 * file removed) when it finished. NULL when state_dir is unusable (the
 * operation runs anyway, uncounted; logged at debug level). */
struct sk_active;
struct sk_active *sk_active_begin(const char *state_dir, enum skopeo_op op);
void sk_active_end(struct sk_active *a);

#endif
