/* scheduler: the collection cycle and the daemon loop.
 *
 * A cycle: begin a new buffer cycle, run every enabled collector in turn
 * with its own deadline (collector_timeout) inside a transaction (a
 * failing or late collector is rolled back and reported down, the others
 * still ship), add the shipper's own metrics, snapshot, and hand the
 * batch to the sender.
 *
 * The scheduler owns the series buffer, the collector states and (if
 * given one) the sender; sched_free() releases all of them. */
#ifndef NS_SCHEDULER_H
#define NS_SCHEDULER_H

#include <signal.h>
#include <stdbool.h>

#include "collector.h"
#include "config.h"
#include "sender.h"
#include "series.h"

struct coll_inst {
    const struct collector *c;
    void *state;
    bool ready; /* init succeeded */
    bool up;
    double duration;
    size_t series; /* series of its last successful run */
    uint64_t failures;  /* failed runs since start (init failures count every cycle) */
    int64_t last_ok_ms; /* wall clock of the last successful run; 0 = none yet */
    char last_error[256];
    int64_t interval_ms; /* 0: every cycle; else runs this often, carried in between */
    int64_t last_run_mono;
    bool has_run;
    size_t max_series;
    int64_t timeout_ms; /* its own deadline (collector_timeout unless overridden) */
};

struct scheduler {
    const struct config *cfg;
    struct series_buf *sb;
    struct sender *sender; /* may be NULL (dry run, tests) */
    struct coll_inst *ci;
    size_t n;
    uint64_t cycles;
    int64_t last_cycle_ok_ms;
    bool reload_ok;       /* outcome of the last configuration (re)load */
    int64_t reload_ok_ms; /* wall clock of the last successful one */
};

/* Creates a scheduler over `table` (builtin_collectors for the binary).
 * Collectors whose init fails are kept and reported down every cycle. */
struct scheduler *sched_new(const struct config *cfg, const struct collector *const *table,
                            size_t n, struct sender *sender, struct err *e);
void sched_free(struct scheduler *s);

/* Records the outcome of a configuration reload for the self-metrics
 * nexus_shipper_config_last_reload_successful (1/0) and
 * nexus_shipper_config_last_reload_success_timestamp_seconds (ts_ms when
 * ok; a failed reload keeps the time of the last success). sched_new()
 * starts with (true, now): the configuration it was made from loaded. */
void sched_set_reload_status(struct scheduler *s, bool ok, int64_t ts_ms);

/* Runs the collectors and the self-metrics for a cycle at ts_ms. */
void sched_collect(struct scheduler *s, int64_t ts_ms);

/* One full cycle: collect, snapshot, submit to the sender. Returns the
 * number of samples produced, -1 if the batch could not be stored. */
long sched_cycle(struct scheduler *s, int64_t ts_ms);

struct run_flags {
    volatile sig_atomic_t *stop;
    volatile sig_atomic_t *reload;
    volatile sig_atomic_t *reopen_log;
};

#endif
