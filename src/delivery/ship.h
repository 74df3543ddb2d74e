/* ship: how every producer's samples reach the receivers.
 *
 * Producers: the daemon's collection cycle, `once`, registry cleanup runs,
 * skopeo runs and local batch jobs ([textfile]). All of them render into a
 * series buffer made by ship_sb_new() (so every series carries the same
 * identity: `instance` and the external labels, on remote-write and in the
 * Pushgateway body alike) and hand it to the sender (sender.h), which
 * spools first and then delivers to every configured target.
 *
 * One writer per series (src/README.md): the holder of the spool's
 * delivery lock is the only process on the host that renders and sends.
 * A daemon takes the lock before its first cycle and keeps it. A run of
 * `cleanup` or `skopeo` first records its outcome in state_dir (under the
 * state file's own lock), then:
 *   - a daemon holds the lock: the run wakes it (SIGUSR2) and the daemon
 *     ships the run's series with its next cycle (remote-write through the
 *     skopeo_runs / cleanup_runs collectors, the Pushgateway group
 *     job/<job>/instance/<i> when its content changed);
 *   - otherwise the run takes the lock itself (waiting while another run
 *     delivers), renders the job's cumulative state at a timestamp later
 *     than any the previous holder rendered, enqueues it for every target
 *     and delivers it within its budget; what cannot be delivered stays
 *     in the spool for whoever holds the lock next.
 * Since every writer renders cumulative state and holds the lock while
 * rendering and sending, a receiver sees each series from one writer at a
 * time, with increasing timestamps. */
#ifndef NS_SHIP_H
#define NS_SHIP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "run_job.h"
#include "sender.h"
#include "series.h"

/* The identity every series carries: {"instance", <instance>, name,
 * value, ...} for the external labels; *n pairs. The names are malloc'd
 * (free with ship_identity_free); the values are borrowed from cfg. NULL
 * on allocation failure. */
const char **ship_identity_new(const struct config *cfg, size_t *n);
void ship_identity_free(const char **ext, size_t n);

/* A series buffer with the identity and the global keep/drop filters; the
 * caller frees it with sb_free(). NULL on allocation failure. */
struct series_buf *ship_sb_new(const struct config *cfg);

/* The time a one-shot producer (`once`, a run) gives delivery: one second
 * plus every target's timeout (each gets one attempt). */
int64_t ship_budget_ms(const struct config *cfg);

/* Ships a finished run's series under the one-writer rule above, within
 * the targets' timeouts. Returns 0 when they were delivered, spooled or
 * handed to the running daemon (or left recorded for the next writer),
 * -1 when they could not be stored anywhere. */
int ship_run(const struct config *cfg, const struct run_job *job,
             const volatile sig_atomic_t *stop);

/* The daemon's side: pushes each job's Pushgateway group when its
 * rendered content changed since the last push of this process. */
struct job_pusher;
struct job_pusher *job_pusher_new(const struct run_job *const *jobs, size_t n);
void job_pusher_free(struct job_pusher *p);
void job_pusher_run(struct job_pusher *p, const struct config *cfg, struct sender *s);

/* Wakes the daemon whose pid is given (a run was recorded). */
void ship_wake_daemon(long pid);

#endif
