#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nsconfig.h"
#include "ship.h"

static const struct metric_desc m_build = {"nexus_shipper_build_info", MT_GAUGE,
                                           "Always 1; the version of nexus-shipper.", ""};
static const struct metric_desc m_cup = {"nexus_shipper_collector_up", MT_GAUGE,
                                         "1 if the collector's last run succeeded in time.", ""};
static const struct metric_desc m_cdur = {"nexus_shipper_collector_duration_seconds", MT_GAUGE,
                                          "Duration of the collector's last run.", "seconds"};
static const struct metric_desc m_clast = {
    "nexus_shipper_collector_last_success_timestamp_seconds", MT_GAUGE,
    "When the collector's last successful run ended (0: none since start).", "seconds"};
static const struct metric_desc m_cfail = {
    "nexus_shipper_collector_failures_total", MT_COUNTER,
    "Runs of the collector that failed or ran past their deadline (a collector that could not "
    "start counts once per cycle).",
    ""};
static const struct metric_desc m_reload_ok = {
    "nexus_shipper_config_last_reload_successful", MT_GAUGE,
    "1 if the last configuration reload (or the start) succeeded, 0 if it was refused.", ""};
static const struct metric_desc m_reload_ts = {
    "nexus_shipper_config_last_reload_success_timestamp_seconds", MT_GAUGE,
    "When the configuration was last loaded successfully (start or reload).", "seconds"};
static const struct metric_desc m_series = {"nexus_shipper_buffer_series", MT_GAUGE,
                                            "Series held in the buffer (live).", ""};
static const struct metric_desc m_bytes = {"nexus_shipper_buffer_bytes", MT_GAUGE,
                                           "Memory held by the series buffer.", "bytes"};
static const struct metric_desc m_refused = {
    "nexus_shipper_series_refused_total", MT_COUNTER,
    "New series refused because the buffer reached buffer_max_size.", ""};
static const struct metric_desc m_rejected = {
    "nexus_shipper_samples_rejected_total", MT_COUNTER,
    "Samples refused by the buffer: invalid names or labels, duplicates.", ""};
static const struct metric_desc m_cycles = {"nexus_shipper_cycles_total", MT_COUNTER,
                                            "Collection cycles run.", ""};

struct scheduler *sched_new(const struct config *cfg, const struct collector *const *table,
                            size_t n, struct sender *sender, struct err *e)
{
    struct scheduler *s = calloc(1, sizeof *s);
    if (!s)
        goto oom;
    s->cfg = cfg;
    s->reload_ok = true;
    s->reload_ok_ms = now_ms();
    if (!(s->sb = ship_sb_new(cfg))) /* the identity every producer's series carry */
        goto oom;
    s->ci = calloc(n ? n : 1, sizeof *s->ci);
    if (!s->ci)
        goto oom;
    if (n > 254) {
        err_set(e, "too many collectors (%zu)", n);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const struct collector *c = table[i];
        if (c->enabled && !c->enabled(cfg))
            continue;
        struct coll_inst *ci = &s->ci[s->n++];
        ci->c = c;
        ci->max_series = (size_t)cfg->shipper.collector_max_series;
        ci->timeout_ms = cfg->shipper.collector_timeout_ms;
        struct err e2;
        if (c->init && c->init(cfg, &ci->state, &e2) < 0) {
            snprintf(ci->last_error, sizeof ci->last_error, "init: %s", e2.msg);
            log_error("collector %s: cannot start: %s", c->name, e2.msg);
        } else {
            ci->ready = true;
        }
    }
    /* collector_intervals / collector_series_limits: name=value items */
    const struct strlist *lists[3] = {&cfg->shipper.collector_intervals,
                                      &cfg->shipper.collector_series_limits,
                                      &cfg->shipper.collector_timeouts};
    static const char *const list_keys[3] = {"collector_intervals", "collector_series_limits",
                                             "collector_timeouts"};
    for (int l = 0; l < 3; l++) {
        for (size_t k = 0; k < lists[l]->n; k++) {
            const char *item = lists[l]->v[k];
            const char *eq = strchr(item, '=');
            const char *key = list_keys[l];
            if (!eq) {
                err_set(e, "%s: [shipper] %s: \"%s\" is not collector=value", cfg->path, key, item);
                goto fail;
            }
            struct coll_inst *ci = NULL;
            for (size_t i = 0; i < s->n; i++)
                if (strlen(s->ci[i].c->name) == (size_t)(eq - item) &&
                    strncmp(s->ci[i].c->name, item, (size_t)(eq - item)) == 0)
                    ci = &s->ci[i];
            bool known = ci != NULL;
            for (size_t i = 0; !known && i < n; i++)
                known = strlen(table[i]->name) == (size_t)(eq - item) &&
                        strncmp(table[i]->name, item, (size_t)(eq - item)) == 0;
            if (!known) {
                err_set(e, "%s: [shipper] %s: no collector named \"%.*s\"", cfg->path, key,
                        (int)(eq - item), item);
                goto fail;
            }
            if (!ci)
                continue; /* known but not enabled by this configuration */
            int64_t v;
            if (l != 1 ? parse_duration_ms(eq + 1, &v) < 0 || v < 1
                       : parse_int64(eq + 1, &v) < 0 || v < 1) {
                err_set(e, "%s: [shipper] %s: bad value in \"%s\"", cfg->path, key, item);
                goto fail;
            }
            if (l == 0)
                ci->interval_ms = v > cfg->shipper.interval_ms ? v : 0;
            else if (l == 1)
                ci->max_series = (size_t)v;
            else
                ci->timeout_ms = v;
        }
    }
    s->sender = sender;
    return s;
oom:
    err_set(e, "out of memory");
fail:
    sched_free(s);
    return NULL;
}

void sched_free(struct scheduler *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        if (s->ci[i].ready && s->ci[i].c->destroy)
            s->ci[i].c->destroy(s->ci[i].state);
    free(s->ci);
    sender_free(s->sender);
    sb_free(s->sb);
    free(s);
}

void sched_set_reload_status(struct scheduler *s, bool ok, int64_t ts_ms)
{
    s->reload_ok = ok;
    if (ok)
        s->reload_ok_ms = ts_ms;
}

static void self_metrics(struct scheduler *s)
{
    struct series_buf *sb = s->sb;
    sb_txn_begin(sb, "self");
    sb_set(sb, &m_build, 1, "version", PACKAGE_VERSION, NULL);
    for (size_t i = 0; i < s->n; i++) {
        sb_set(sb, &m_cup, s->ci[i].up, "collector", s->ci[i].c->name, NULL);
        sb_set(sb, &m_cdur, s->ci[i].duration, "collector", s->ci[i].c->name, NULL);
        sb_set(sb, &m_clast, (double)s->ci[i].last_ok_ms / 1000.0, "collector", s->ci[i].c->name,
               NULL);
        sb_set(sb, &m_cfail, (double)s->ci[i].failures, "collector", s->ci[i].c->name, NULL);
    }
    sb_set(sb, &m_reload_ok, s->reload_ok ? 1 : 0, NULL);
    sb_set(sb, &m_reload_ts, (double)s->reload_ok_ms / 1000.0, NULL);
    struct sb_stats st;
    sb_stats(sb, &st);
    sb_set(sb, &m_series, (double)st.live, NULL);
    sb_set(sb, &m_bytes, (double)st.bytes, NULL);
    sb_set(sb, &m_refused, (double)st.refused, NULL);
    sb_set(sb, &m_rejected, (double)st.rejected, NULL);
    sb_set(sb, &m_cycles, (double)s->cycles, NULL);
    if (s->sender)
        sender_metrics(s->sender, sb);
    sb_txn_commit(sb);
}

void sched_collect(struct scheduler *s, int64_t ts_ms)
{
    if (sb_compact(s->sb) > 0)
        log_debug("series buffer compacted");
    sb_begin_cycle(s->sb, ts_ms);
    s->cycles++;
    for (size_t i = 0; i < s->n; i++) {
        struct coll_inst *ci = &s->ci[i];
        uint8_t owner = (uint8_t)(i + 1);
        int64_t t0 = mono_ms();
        if (ci->interval_ms && ci->has_run && t0 - ci->last_run_mono < ci->interval_ms) {
            /* not due: its last values ship again, so nothing goes stale */
            sb_carry(s->sb, owner);
            continue;
        }
        ci->last_run_mono = t0;
        ci->has_run = true;
        int64_t deadline = t0 + ci->timeout_ms;
        struct err e = {{0}};
        int rc = -1;
        sb_txn_begin_owner(s->sb, ci->c->name, owner);
        if (ci->ready) {
            struct collect_ctx ctx = {.sb = s->sb, .deadline_mono = deadline, .e = &e};
            rc = ci->c->collect(ci->state, &ctx);
            if (rc == 0 && mono_ms() > deadline) {
                rc = -1;
                err_set(&e, "timed out after %.1f s (its deadline)",
                        (double)ci->timeout_ms / 1000.0);
            }
            if (rc == 0 && ci->max_series && sb_txn_size(s->sb) > ci->max_series) {
                rc = -1;
                err_set(&e, "produced %zu series, over its limit of %zu (collector_max_series)",
                        sb_txn_size(s->sb), ci->max_series);
            }
        } else {
            snprintf(e.msg, sizeof e.msg, "%s", ci->last_error);
        }
        ci->duration = (double)(mono_ms() - t0) / 1000.0;
        char key[96];
        snprintf(key, sizeof key, "collector-%s", ci->c->name);
        char msg[128]; /* the name in the text too: greppable as before */
        if (rc == 0) {
            ci->series = sb_txn_size(s->sb);
            sb_txn_commit(s->sb);
            if (!ci->up && ci->failures) {
                snprintf(msg, sizeof msg, "collector %s: working again", ci->c->name);
                log_resolved_event(key, msg, LOG_S("collector", ci->c->name));
            }
            ci->up = true;
            ci->last_ok_ms = now_ms();
        } else {
            sb_txn_rollback(s->sb);
            ci->up = false;
            ci->failures++;
            snprintf(ci->last_error, sizeof ci->last_error, "%s", e.msg);
            snprintf(msg, sizeof msg, "collector %s failed", ci->c->name);
            log_complain_event(key, msg, LOG_S("collector", ci->c->name),
                               LOG_S("error", e.msg[0] ? e.msg : "no reason given"),
                               LOG_F("seconds", ci->duration));
        }
    }
    self_metrics(s);
}

long sched_cycle(struct scheduler *s, int64_t ts_ms)
{
    sched_collect(s, ts_ms);
    struct sb_sample *v;
    size_t n;
    /* label order: similar series side by side compress ~20 % better */
    if (sb_snapshot(s->sb, true, &v, &n) < 0) {
        log_error("out of memory taking the cycle's snapshot");
        return -1;
    }
    long rc = (long)n;
    if (s->sender && n && sender_submit(s->sender, s->sb, v, n) < 0)
        rc = -1;
    else
        s->last_cycle_ok_ms = now_ms();
    free(v);
    return rc;
}
