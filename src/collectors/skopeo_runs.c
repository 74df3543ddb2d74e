/* skopeo_runs: the skopeo_* series of `nexus-shipper skopeo ...` runs
 * (skopeo_metrics.h: counters accumulated in state_dir, the operations
 * running now), shipped by the daemon, which is their one writer while it
 * runs (ship.h), and served on its /metrics listener. On unless [skopeo]
 * enable_metrics = false. State: the configuration's state_dir, borrowed. */
#include "collector.h"
#include "skopeo_metrics.h"

static bool enabled(const struct config *cfg)
{
    return skopeo_metrics_enabled(cfg);
}

static int init(const struct config *cfg, void **state, struct err *e)
{
    *state = cfg->shipper.state_dir;
    return 0;
}

static int collect(void *state, struct collect_ctx *ctx)
{
    if (skopeo_metrics_publish(state, ctx->sb) < 0) {
        err_set(ctx->e, "cannot read %s/skopeo-metrics.state", (const char *)state);
        return -1;
    }
    return 0;
}

const struct collector collector_skopeo_runs = {
    .name = "skopeo_runs",
    .enabled = enabled,
    .init = init,
    .collect = collect,
    .destroy = NULL,
};
