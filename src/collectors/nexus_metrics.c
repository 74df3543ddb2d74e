/* nexus_metrics: forwards Nexus's own metrics (JVM, Jetty, request rates),
 * for sites where nothing can scrape Nexus. Enabled by [nexus]
 * forward_metrics = true.
 *
 * GET /service/metrics/prometheus (Dropwizard exporter, text format
 * 0.0.4; the [nexus] user needs nx-metrics-all) is parsed with textparse
 * and every sample is stored as it came: same name, same labels (plus the
 * shipper's external labels), the cycle's timestamp (sample timestamps are
 * ignored). Types: counter -> counter, gauge -> gauge, histogram ->
 * histogram (one family, its _bucket/_sum/_count kept as suffixes),
 * summary and untyped -> unknown, each full sample name its own family
 * with the family's help.
 *
 * A sample the series buffer rejects (invalid or duplicate series, memory
 * cap) is skipped and counted; the first reason is logged. An answer that
 * does not parse fails the collector with the line number and nothing of
 * it is shipped.
 *
 *   nexus_shipper_forwarded_samples{collector="nexus_metrics"}        stored this cycle
 *   nexus_shipper_forward_skipped_samples{collector="nexus_metrics"}  skipped this cycle
 *
 * State: one nexus_api, owned. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "log.h"
#include "nexus_api.h"
#include "textparse.h"

#define ENDPOINT    "/service/metrics/prometheus"
#define MAX_SAMPLES 200000

static const struct metric_desc m_fwd = {
    "nexus_shipper_forwarded_samples", MT_GAUGE,
    "Samples of a forwarded /metrics answer stored in the last cycle.", ""};
static const struct metric_desc m_skip = {
    "nexus_shipper_forward_skipped_samples", MT_GAUGE,
    "Samples of a forwarded /metrics answer the series buffer rejected in the last cycle.", ""};

struct fwd {
    struct collect_ctx *ctx;
    size_t stored, skipped;
    char first_skip[512];
};

static int on_sample(void *ud, const struct tp_sample *s, struct err *e)
{
    (void)e;
    struct fwd *f = ud;
    struct metric_desc d = {s->name, tp_metric_type(s->type), s->help, ""};
    const char *suffix = NULL;
    if (s->type == TP_HISTOGRAM && *s->suffix) {
        d.name = s->family;
        suffix = s->suffix;
    }
    struct err se;
    se.msg[0] = '\0';
    if (sb_setv(f->ctx->sb, &d, suffix, s->value, s->labels, s->n_labels, &se) < 0) {
        if (!f->skipped++)
            snprintf(f->first_skip, sizeof f->first_skip, "line %zu: %s", s->line, se.msg);
    } else {
        f->stored++;
    }
    return 0;
}

static bool enabled(const struct config *cfg)
{
    return cfg->nexus && cfg->nexus->forward_metrics;
}

static int collect(void *state, struct collect_ctx *ctx)
{
    struct nexus_api *a = state;
    struct http_response r;
    http_response_init(&r);
    int rc = -1, tries = 0;
    if (rest_get(&a->rest, ENDPOINT, ctx->deadline_mono, &r, &tries) < 0) {
        err_set(ctx->e, "GET " ENDPOINT ": %s", r.error);
        goto out;
    }
    if (r.status < 200 || r.status > 299) {
        if ((r.status == 401 || r.status == 403) && a->rest.auth_hint)
            err_set(ctx->e, "GET " ENDPOINT ": HTTP %ld: %s", r.status, a->rest.auth_hint);
        else
            err_set(ctx->e, "GET " ENDPOINT ": HTTP %ld", r.status);
        goto out;
    }
    struct fwd f = {.ctx = ctx};
    struct tp_limits lim = {.max_samples = MAX_SAMPLES};
    struct err pe;
    if (tp_parse(r.body.data ? r.body.data : "", r.body.len, &lim, on_sample, &f, &pe) < 0) {
        err_set(ctx->e, "GET " ENDPOINT ": %s", pe.msg);
        goto out;
    }
    if (f.skipped)
        log_warn("nexus_metrics: skipped %zu of %zu samples of " ENDPOINT " (first: %s)", f.skipped,
                 f.skipped + f.stored, f.first_skip);
    if (coll_set(ctx, &m_fwd, (double)f.stored, "collector", "nexus_metrics", NULL) < 0 ||
        coll_set(ctx, &m_skip, (double)f.skipped, "collector", "nexus_metrics", NULL) < 0)
        goto out;
    rc = 0;
out:
    http_response_free(&r);
    return rc;
}

const struct collector collector_nexus_metrics = {
    .name = "nexus_metrics",
    .enabled = enabled,
    .init = nexus_collector_init,
    .collect = collect,
    .destroy = nexus_collector_destroy,
};
