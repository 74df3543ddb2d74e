/* cleanup_runs: the registry_cleanup_* series of `nexus-shipper cleanup`
 * runs (cleanup_metrics.h: the counters and the last run's figures kept in
 * state_dir), shipped by the daemon, which is their one writer while it
 * runs (ship.h), and served on its /metrics listener. Always on: with no
 * run recorded yet it adds nothing. State: the state_dir, borrowed. */
#include "cleanup_metrics.h"
#include "collector.h"

static int init(const struct config *cfg, void **state, struct err *e)
{
    (void)e;
    *state = cfg->shipper.state_dir;
    return 0;
}

static int collect(void *state, struct collect_ctx *ctx)
{
    if (cleanup_metrics_publish(state, ctx->sb) < 0) {
        err_set(ctx->e, "cannot render %s/cleanup.state", (const char *)state);
        return -1;
    }
    return 0;
}

const struct collector collector_cleanup_runs = {
    .name = "cleanup_runs",
    .enabled = NULL,
    .init = init,
    .collect = collect,
    .destroy = NULL,
};
