/* Unit tests for scheduler.c: a table of fake collectors that succeed,
 * fail half-way, overrun their deadline, fail to start or are disabled. */
#include <check.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"
#include "collector.h"
#include "nsconfig.h"
#include "config.h"
#include "scheduler.h"
#include "sender.h"
#include "sender_int.h"
#include "series.h"
#include "spool.h"
#include "util.h"

/* ---- fake collectors ------------------------------------------------------- */

struct fake_state {
    const char *name;
    int collects;
    int64_t last_deadline, last_start;
};

static int inits, destroys;
static bool flaky_fails;

static const struct metric_desc m_val = {"sched_test_value", MT_GAUGE, "A test value.", ""};

static int fake_init(const struct config *cfg, void **state, struct err *e)
{
    (void)cfg;
    (void)e;
    struct fake_state *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    inits++;
    *state = st;
    return 0;
}

static void fake_destroy(void *state)
{
    destroys++;
    free(state);
}

static int set_val(struct collect_ctx *ctx, const char *who, const char *k, double v)
{
    return sb_set(ctx->sb, &m_val, v, "source", who, "k", k, NULL);
}

static int collect_ok(void *state, struct collect_ctx *ctx)
{
    struct fake_state *st = state;
    st->collects++;
    st->last_deadline = ctx->deadline_mono;
    st->last_start = mono_ms();
    if (set_val(ctx, "ok", "a", 1) < 0 || set_val(ctx, "ok", "b", 2) < 0)
        return -1;
    return 0;
}

static int collect_after(void *state, struct collect_ctx *ctx)
{
    struct fake_state *st = state;
    st->collects++;
    return set_val(ctx, "after", "a", 10);
}

static int collect_flaky(void *state, struct collect_ctx *ctx)
{
    struct fake_state *st = state;
    st->collects++;
    if (set_val(ctx, "flaky", "a", 3) < 0)
        return -1;
    if (!flaky_fails)
        return 0;
    set_val(ctx, "flaky", "new", 4); /* added, then the collector fails */
    err_set(ctx->e, "GET /x: HTTP 500");
    return -1;
}

static int collect_slow(void *state, struct collect_ctx *ctx)
{
    struct fake_state *st = state;
    st->collects++;
    set_val(ctx, "slow", "a", 5);
    sleep_until_mono(ctx->deadline_mono + 150); /* ignores its deadline */
    return 0;
}

static int init_fails(const struct config *cfg, void **state, struct err *e)
{
    (void)cfg;
    (void)state;
    err_set(e, "cannot reach the database");
    return -1;
}

static int collect_never(void *state, struct collect_ctx *ctx)
{
    (void)state;
    (void)ctx;
    ck_abort_msg("collect() called on a collector that never started");
    return -1;
}

static bool never(const struct config *cfg)
{
    (void)cfg;
    return false;
}

static bool always(const struct config *cfg)
{
    (void)cfg;
    return true;
}

static const struct collector c_ok = {"ok", always, fake_init, collect_ok, fake_destroy};
static const struct collector c_flaky = {"flaky", NULL, fake_init, collect_flaky, fake_destroy};
static const struct collector c_slow = {"slow", always, fake_init, collect_slow, fake_destroy};
static const struct collector c_broken = {"broken", always, init_fails, collect_never,
                                          fake_destroy};
static const struct collector c_off = {"off", never, fake_init, collect_never, fake_destroy};
static const struct collector c_after = {"after", always, fake_init, collect_after, fake_destroy};

static const struct collector *const table[] = {&c_ok,     &c_flaky, &c_slow,
                                                &c_broken, &c_off,   &c_after};

/* ---- helpers ------------------------------------------------------------------- */

static void setup(void)
{
    tl_tmpdir_setup();
    inits = destroys = 0;
    flaky_fails = false;
}

static void teardown(void)
{
    tl_tmpdir_teardown();
}

static struct config *make_config(const char *extra)
{
    char path[PATH_MAX + 32], text[2048];
    snprintf(path, sizeof path, "%s/s.conf", tmpdir);
    snprintf(text, sizeof text,
             "[shipper]\ninstance = test-host\nexternal_labels = env=ci, instance=not-this\n"
             "collector_timeout = 500ms\nspool_dir = %s/spool\n%s\n",
             tmpdir, extra ? extra : "");
    return tl_load_config(path, text);
}

/* The value of series `name` whose labels include all pairs of `want`
 * (NULL-terminated name,value list); NAN if absent; fails if ambiguous. */
static double find_value(const struct series_buf *sb, const struct sb_sample *v, size_t n,
                         const char *name, const char *const *want)
{
    double found = NAN;
    int hits = 0;
    for (size_t i = 0; i < n; i++) {
        bool ok = true, name_ok = false;
        for (size_t j = 0; j < sb_series_nlabels(sb, v[i].series); j++) {
            const char *ln, *lv;
            sb_series_label(sb, v[i].series, j, &ln, &lv);
            if (strcmp(ln, "__name__") == 0)
                name_ok = strcmp(lv, name) == 0;
        }
        for (size_t w = 0; want && want[w]; w += 2) {
            bool has = false;
            for (size_t j = 0; j < sb_series_nlabels(sb, v[i].series); j++) {
                const char *ln, *lv;
                sb_series_label(sb, v[i].series, j, &ln, &lv);
                has |= strcmp(ln, want[w]) == 0 && strcmp(lv, want[w + 1]) == 0;
            }
            ok &= has;
        }
        if (ok && name_ok) {
            found = v[i].value;
            hits++;
        }
    }
    ck_assert_int_le(hits, 1);
    return found;
}

static double up_of(const struct series_buf *sb, const struct sb_sample *v, size_t n, const char *c)
{
    const char *w[] = {"collector", c, NULL};
    return find_value(sb, v, n, "nexus_shipper_collector_up", w);
}

static double val_of(const struct series_buf *sb, const struct sb_sample *v, size_t n,
                     const char *source, const char *k)
{
    const char *w[] = {"source", source, "k", k, NULL};
    return find_value(sb, v, n, "sched_test_value", w);
}

static struct coll_inst *inst(struct scheduler *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->ci[i].c->name, name) == 0)
            return &s->ci[i];
    return NULL;
}

/* ---- tests ------------------------------------------------------------------------ */

START_TEST(test_collectors_isolated)
{
    struct config *cfg = make_config(NULL);
    struct err e;
    struct scheduler *s = sched_new(cfg, table, NS_ARRAY_LEN(table), NULL, &e);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->n, 5); /* "off" is disabled */
    ck_assert_ptr_null(inst(s, "off"));
    ck_assert_int_eq(inits, 4);
    ck_assert(!inst(s, "broken")->ready);
    ck_assert_str_eq(inst(s, "broken")->last_error, "init: cannot reach the database");

    /* cycle 1: flaky works */
    int64_t ts = 1700000000000;
    int64_t t0 = mono_ms();
    sched_collect(s, ts);
    ck_assert_int_eq(sb_cycle_ts(s->sb), ts);
    struct fake_state *okst = inst(s, "ok")->state;
    ck_assert_int_eq(okst->collects, 1);
    ck_assert_int_ge(okst->last_deadline, t0 + 500);
    ck_assert_int_le(okst->last_deadline, okst->last_start + 500);
    struct sb_sample *v;
    size_t n;
    ck_assert_int_eq(sb_snapshot(s->sb, false, &v, &n), 0);
    ck_assert_double_eq(val_of(s->sb, v, n, "ok", "a"), 1);
    ck_assert_double_eq(val_of(s->sb, v, n, "ok", "b"), 2);
    ck_assert_double_eq(val_of(s->sb, v, n, "flaky", "a"), 3);
    ck_assert(isnan(val_of(s->sb, v, n, "slow", "a"))); /* late: rolled back */
    ck_assert_double_eq(val_of(s->sb, v, n, "after", "a"), 10);
    ck_assert_double_eq(up_of(s->sb, v, n, "ok"), 1);
    ck_assert_double_eq(up_of(s->sb, v, n, "flaky"), 1);
    ck_assert_double_eq(up_of(s->sb, v, n, "slow"), 0);
    ck_assert_double_eq(up_of(s->sb, v, n, "broken"), 0);
    ck_assert_double_eq(up_of(s->sb, v, n, "after"), 1);
    ck_assert(isnan(up_of(s->sb, v, n, "off")));
    ck_assert_ptr_nonnull(strstr(inst(s, "slow")->last_error, "timed out"));
    const char *w_slow[] = {"collector", "slow", NULL};
    ck_assert_double_ge(find_value(s->sb, v, n, "nexus_shipper_collector_duration_seconds", w_slow),
                        0.6);
    ck_assert_double_eq(find_value(s->sb, v, n, "nexus_shipper_cycles_total", NULL), 1);
    const char *w_build[] = {"version", PACKAGE_VERSION, NULL};
    ck_assert_double_eq(find_value(s->sb, v, n, "nexus_shipper_build_info", w_build), 1);
    /* instance and external labels on every series; the configured
     * instance wins over an external label of the same name */
    for (size_t i = 0; i < n; i++) {
        bool inst_ok = false, env_ok = false;
        for (size_t j = 0; j < sb_series_nlabels(s->sb, v[i].series); j++) {
            const char *ln, *lv;
            sb_series_label(s->sb, v[i].series, j, &ln, &lv);
            if (strcmp(ln, "instance") == 0)
                inst_ok = strcmp(lv, "test-host") == 0;
            if (strcmp(ln, "env") == 0)
                env_ok = strcmp(lv, "ci") == 0;
        }
        ck_assert(inst_ok && env_ok);
    }
    free(v);

    /* cycle 2: flaky fails after adding a sample: nothing of it is kept */
    flaky_fails = true;
    sched_collect(s, ts + 30000);
    ck_assert_int_eq(sb_snapshot(s->sb, false, &v, &n), 0);
    ck_assert_double_eq(up_of(s->sb, v, n, "flaky"), 0);
    ck_assert(isnan(val_of(s->sb, v, n, "flaky", "new")));
    ck_assert(is_stale_nan(val_of(s->sb, v, n, "flaky", "a"))); /* gone: one marker */
    ck_assert_double_eq(val_of(s->sb, v, n, "ok", "a"), 1);
    ck_assert_double_eq(val_of(s->sb, v, n, "after", "a"), 10);
    ck_assert_double_eq(up_of(s->sb, v, n, "ok"), 1);
    ck_assert_str_eq(inst(s, "flaky")->last_error, "GET /x: HTTP 500");
    ck_assert_uint_eq(inst(s, "flaky")->failures, 1);
    ck_assert_uint_eq(inst(s, "slow")->failures, 2);
    ck_assert_uint_eq(inst(s, "broken")->failures, 2);
    ck_assert_double_eq(find_value(s->sb, v, n, "nexus_shipper_cycles_total", NULL), 2);
    free(v);

    /* cycle 3: flaky recovers */
    flaky_fails = false;
    sched_collect(s, ts + 60000);
    ck_assert_int_eq(sb_snapshot(s->sb, false, &v, &n), 0);
    ck_assert_double_eq(up_of(s->sb, v, n, "flaky"), 1);
    ck_assert_double_eq(val_of(s->sb, v, n, "flaky", "a"), 3);
    ck_assert(isnan(val_of(s->sb, v, n, "flaky", "new")));
    free(v);
    ck_assert_int_eq(okst->collects, 3);

    sched_free(s);
    ck_assert_int_eq(destroys, 4); /* every started collector, not the broken one */
    config_free(cfg);
}
END_TEST

START_TEST(test_cycle_with_sender)
{
    /* no [remote_write]: the sender spools everything (air-gapped mode) */
    struct config *cfg = make_config(NULL);
    struct err e;
    struct sender *snd = sender_new(cfg, &e);
    ck_assert_ptr_nonnull(snd);
    static const struct collector *const t2[] = {&c_ok, &c_after};
    struct scheduler *s = sched_new(cfg, t2, NS_ARRAY_LEN(t2), snd, &e);
    ck_assert_ptr_nonnull(s);
    long n = sched_cycle(s, 1700000000000);
    ck_assert_int_gt(n, 3);
    ck_assert_int_gt(s->last_cycle_ok_ms, 0);
    struct seg_info *segs;
    size_t ns;
    ck_assert_int_eq(spool_list(snd->spool, "rw-default", true, &segs, &ns), 0);
    ck_assert_uint_eq(ns, 1);
    ck_assert_uint_eq(segs[0].m.samples, (uint32_t)n);
    ck_assert_int_eq(segs[0].m.min_ts, 1700000000000);
    free(segs);
    /* the sender's own metrics are in the next cycle's batch */
    long n2 = sched_cycle(s, 1700000030000);
    ck_assert_int_ge(n2, n);
    ck_assert_int_eq(spool_list(snd->spool, "rw-default", true, &segs, &ns), 0);
    ck_assert_uint_eq(ns, 2);
    free(segs);
    sched_free(s); /* frees the sender too */
    ck_assert_int_eq(destroys, 2);
    config_free(cfg);
}
END_TEST

START_TEST(test_no_collectors)
{
    struct config *cfg = make_config("drop_metrics = ^nexus_shipper_buffer_");
    struct err e;
    struct scheduler *s = sched_new(cfg, NULL, 0, NULL, &e);
    ck_assert_ptr_nonnull(s);
    long n = sched_cycle(s, 1000);
    ck_assert_int_gt(n, 0);
    struct sb_sample *v;
    size_t nv;
    sched_collect(s, 2000);
    ck_assert_int_eq(sb_snapshot(s->sb, false, &v, &nv), 0);
    /* self-metrics are never dropped by drop_metrics */
    ck_assert(!isnan(find_value(s->sb, v, nv, "nexus_shipper_buffer_series", NULL)));
    ck_assert_double_eq(find_value(s->sb, v, nv, "nexus_shipper_cycles_total", NULL), 2);
    free(v);
    sched_free(s);
    sched_free(NULL);
    config_free(cfg);
}
END_TEST

/* collector_intervals: a collector that is not due ships its last values
 * again (no staleness marker, same value), and runs again when due;
 * collector_series_limits: over its limit a collector is down. */
START_TEST(test_interval_and_series_limit)
{
    struct config *cfg = make_config("collector_intervals = ok=1h, after=1s\n"
                                     "collector_series_limits = after=1\n"
                                     "collector_timeouts = after=250ms\n");
    struct err e;
    const struct collector *const t3[] = {&c_ok, &c_after};
    struct scheduler *s = sched_new(cfg, t3, 2, NULL, &e);
    ck_assert_msg(s != NULL, "%s", e.msg);
    ck_assert_int_eq(inst(s, "ok")->interval_ms, 3600000);
    ck_assert_int_eq(inst(s, "after")->interval_ms, 0); /* not longer than interval: every cycle */
    ck_assert_uint_eq(inst(s, "after")->max_series, 1);
    ck_assert_int_eq(inst(s, "after")->timeout_ms, 250);
    ck_assert_int_eq(inst(s, "ok")->timeout_ms, 500); /* collector_timeout */
    struct fake_state *ok = inst(s, "ok")->state;
    for (int cycle = 1; cycle <= 3; cycle++) {
        sched_collect(s, 1000 * cycle);
        struct sb_sample *v;
        size_t n;
        ck_assert_int_eq(sb_snapshot(s->sb, false, &v, &n), 0);
        ck_assert_int_eq(ok->collects, 1); /* ran once, then carried */
        ck_assert(val_of(s->sb, v, n, "ok", "a") == 1);
        ck_assert(val_of(s->sb, v, n, "ok", "b") == 2);
        for (size_t i = 0; i < n; i++)
            ck_assert(!is_stale_nan(v[i].value));
        ck_assert(up_of(s->sb, v, n, "ok") == 1);
        ck_assert(up_of(s->sb, v, n, "after") == 1);
        free(v);
    }
    sched_free(s);
    config_free(cfg);
    /* a limit below what the collector produces marks it down */
    cfg = make_config("collector_series_limits = ok=1\n");
    const struct collector *const t1[] = {&c_ok};
    s = sched_new(cfg, t1, 1, NULL, &e);
    ck_assert_msg(s != NULL, "%s", e.msg);
    sched_collect(s, 1000);
    struct sb_sample *v;
    size_t n;
    ck_assert_int_eq(sb_snapshot(s->sb, false, &v, &n), 0);
    ck_assert(up_of(s->sb, v, n, "ok") == 0);
    ck_assert(isnan(val_of(s->sb, v, n, "ok", "a")));
    ck_assert_ptr_nonnull(strstr(inst(s, "ok")->last_error, "over its limit of 1"));
    free(v);
    sched_free(s);
    config_free(cfg);
    /* an unknown collector name is a configuration error */
    cfg = make_config("collector_intervals = nope=5m\n");
    ck_assert_ptr_null(sched_new(cfg, t1, 1, NULL, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "no collector named \"nope\""));
    config_free(cfg);
}
END_TEST

static Suite *sched_suite(void)
{
    Suite *s = suite_create("scheduler");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_collectors_isolated);
    tcase_add_test(tc, test_cycle_with_sender);
    tcase_add_test(tc, test_interval_and_series_limit);
    tcase_add_test(tc, test_no_collectors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run(sched_suite(), "sched");
}
