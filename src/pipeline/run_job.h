/* run_job: a batch job whose runs are recorded in state_dir (registry
 * cleanup, skopeo) as a producer of series.
 *
 * Its series are rendered from that state, never from memory, so any
 * writer renders the same cumulative values: the daemon (through a
 * collector) or the run itself when no daemon runs (delivery/ship.h,
 * which also says who is the one writer). The job name is the
 * Pushgateway job of its group. The descriptors are const and static. */
#ifndef NS_RUN_JOB_H
#define NS_RUN_JOB_H

#include "series.h"

struct run_job {
    const char *job; /* Pushgateway job: "skopeo", "registry_cleanup" */
    /* Adds the job's series to sb (inside a transaction); 0 or -1. */
    int (*publish)(const char *state_dir, struct series_buf *sb);
};

#endif
