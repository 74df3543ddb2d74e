/* skopeo_runs: the skopeo_* counters that `nexus-shipper skopeo ...` runs
 * accumulate in <state_dir>/skopeo-metrics.state, shipped by the daemon
 * too (and so served on its /metrics listener), for sites that scrape
 * rather than use a Pushgateway. Enabled by [skopeo] with
 * enable_metrics = true. State: the configuration's state_dir, borrowed. */
#include "../collector.h"
#include "../skopeo_cli.h"

static bool enabled(const struct config *cfg)
{
    return cfg->skopeo && cfg->skopeo->enable_metrics;
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
