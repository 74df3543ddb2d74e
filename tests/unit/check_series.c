/* Unit tests for series.c: the time-series buffer. */
#include <check.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"
#include "util.h"
#include "testlib.h"

static const struct metric_desc m_a = {"test_a", MT_GAUGE, "A gauge.", ""};
static const struct metric_desc m_b = {"test_b_total", MT_COUNTER, "A counter.", ""};
static const struct metric_desc m_h = {"test_latency_seconds", MT_HISTOGRAM, "A histogram.",
                                       "seconds"};

static struct series_buf *new_sb(size_t max_bytes, const char *const *ext, size_t n_ext)
{
    struct sb_opts o = {.max_bytes = max_bytes, .ext_labels = ext, .n_ext = n_ext};
    struct series_buf *sb = sb_new(&o);
    ck_assert_ptr_nonnull(sb);
    return sb;
}

/* `name{a="1",b="2"}` in stored (sorted) label order, __name__ shown as a label. */
static void series_str(const struct series_buf *sb, uint32_t id, char *out, size_t n)
{
    size_t w = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sb_series_nlabels(sb, id); i++) {
        const char *ln, *lv;
        sb_series_label(sb, id, i, &ln, &lv);
        w += (size_t)snprintf(out + w, n - w, "%s%s=\"%s\"", i ? "," : "", ln, lv);
        ck_assert_uint_lt(w, n);
    }
}

/* Index in v of the series spelled `want` (see series_str), or -1. */
static long find(const struct series_buf *sb, const struct sb_sample *v, size_t n, const char *want)
{
    long found = -1;
    for (size_t i = 0; i < n; i++) {
        char s[1024];
        series_str(sb, v[i].series, s, sizeof s);
        if (strcmp(s, want) == 0) {
            ck_assert_msg(found < 0, "%s appears twice in the snapshot", want);
            found = (long)i;
        }
    }
    return found;
}

static double value_of(const struct series_buf *sb, const struct sb_sample *v, size_t n,
                       const char *want)
{
    long i = find(sb, v, n, want);
    ck_assert_msg(i >= 0, "%s not in snapshot", want);
    return v[i].value;
}

static uint64_t bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static void snap(struct series_buf *sb, bool sorted, struct sb_sample **v, size_t *n)
{
    ck_assert_int_eq(sb_snapshot(sb, sorted, v, n), 0);
}

/* ---- names ----------------------------------------------------------------- */

START_TEST(test_name_validation)
{
    static const char *good_metric[] = {"a", "_", "a_b", "a:b", ":a", "A9_:z", "__name"};
    static const char *bad_metric[] = {"", "9a", "a-b", "a b", "a.b", "\xc3\xa9", "a{", "a\"b"};
    for (size_t i = 0; i < NS_ARRAY_LEN(good_metric); i++)
        ck_assert_msg(metric_name_valid(good_metric[i]), "%s", good_metric[i]);
    for (size_t i = 0; i < NS_ARRAY_LEN(bad_metric); i++)
        ck_assert_msg(!metric_name_valid(bad_metric[i]), "%s", bad_metric[i]);
    ck_assert(!metric_name_valid(NULL));
    static const char *good_label[] = {"a", "_a", "a9", "A_b", "le"};
    static const char *bad_label[] = {"", "9", ":a", "a:b", "a-b", "a b", "\xc3\xa9"};
    for (size_t i = 0; i < NS_ARRAY_LEN(good_label); i++)
        ck_assert_msg(label_name_valid(good_label[i]), "%s", good_label[i]);
    for (size_t i = 0; i < NS_ARRAY_LEN(bad_label); i++)
        ck_assert_msg(!label_name_valid(bad_label[i]), "%s", bad_label[i]);
    ck_assert(!label_name_valid(NULL));
}
END_TEST

START_TEST(test_invalid_names_rejected)
{
    struct series_buf *sb = new_sb(0, NULL, 0);
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "t");
    struct err e;
    static const struct metric_desc bad = {"1bad", MT_GAUGE, "", ""};
    ck_assert_int_eq(sb_setv(sb, &bad, NULL, 1, NULL, 0, &e), -1);
    ck_assert_str_eq(e.msg, "invalid metric name \"1bad\"");
    ck_assert_int_eq(sb_setv(sb, &m_a, "-x", 1, NULL, 0, &e), -1);
    ck_assert_str_eq(e.msg, "invalid metric name \"test_a-x\"");
    const char *l1[] = {"a-b", "v"};
    ck_assert_int_eq(sb_setv(sb, &m_a, NULL, 1, l1, 1, &e), -1);
    ck_assert_str_eq(e.msg, "test_a: invalid label name \"a-b\"");
    const char *l2[] = {"__reserved", "v"};
    ck_assert_int_eq(sb_setv(sb, &m_a, NULL, 1, l2, 1, &e), -1);
    ck_assert_str_eq(e.msg, "test_a: invalid label name \"__reserved\"");
    const char *l3[] = {"__name__", "other"};
    ck_assert_int_eq(sb_setv(sb, &m_a, NULL, 1, l3, 1, &e), -1);
    /* the same bad label again: still refused (cached check) */
    ck_assert_int_eq(sb_setv(sb, &m_a, NULL, 1, l1, 1, &e), -1);
    /* more label pairs than sb_set takes */
    ck_assert_int_eq(sb_set(sb, &m_a, 1, "a", "1", "b", "1", "c", "1", "d", "1", "e", "1", "f", "1",
                            "g", "1", "h", "1", "i", "1", "j", "1", "k", "1", "l", "1", "m", "1",
                            "n", "1", "o", "1", "p", "1", "q", "1", "r", "1", "s", "1", "t", "1",
                            "u", "1", "v", "1", "w", "1", "x", "1", "y", "1", "z", "1", "aa", "1",
                            "ab", "1", "ac", "1", "ad", "1", "ae", "1", "af", "1", "ag", "1", NULL),
                     -1);
    sb_txn_commit(sb);
    struct sb_stats st;
    sb_stats(sb, &st);
    ck_assert_uint_eq(st.rejected, 7);
    struct sb_sample *v;
    size_t n;
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 0);
    free(v);
    sb_free(sb);
}
END_TEST

/* ---- labels ---------------------------------------------------------------- */

START_TEST(test_labels_sorted_and_name)
{
    struct series_buf *sb = new_sb(0, NULL, 0);
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "t");
    ck_assert_int_eq(sb_set(sb, &m_a, 3.5, "zone", "z1", "app", "x", "Mode", "m", "b_c", "y", NULL),
                     0);
    sb_txn_commit(sb);
    struct sb_sample *v;
    size_t n;
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 1);
    size_t k = sb_series_nlabels(sb, v[0].series);
    ck_assert_uint_eq(k, 5);
    const char *prev = NULL;
    bool has_name = false;
    for (size_t i = 0; i < k; i++) {
        const char *ln, *lv;
        sb_series_label(sb, v[0].series, i, &ln, &lv);
        if (prev)
            ck_assert_msg(strcmp(prev, ln) < 0, "%s before %s", prev, ln);
        prev = ln;
        if (strcmp(ln, "__name__") == 0) {
            ck_assert_str_eq(lv, "test_a");
            has_name = true;
        }
    }
    ck_assert(has_name);
    /* byte order: upper case sorts before '_' which sorts before lower case */
    ck_assert_double_eq(
        value_of(sb, v, n, "Mode=\"m\",__name__=\"test_a\",app=\"x\",b_c=\"y\",zone=\"z1\""), 3.5);
    const struct metric_desc *f = sb_series_family(sb, v[0].series);
    ck_assert_str_eq(f->name, "test_a");
    ck_assert_int_eq(f->type, MT_GAUGE);
    ck_assert_str_eq(f->help, "A gauge.");
    free(v);
    sb_free(sb);
}
END_TEST

START_TEST(test_external_labels)
{
    const char *ext[] = {"zone", "eu", "env", "prod", "instance", "i1", "env", "ignored"};
    struct series_buf *sb = new_sb(0, ext, 4);
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "t");
    ck_assert_int_eq(sb_set(sb, &m_a, 1, "env", "dev", "job", "j", NULL), 0);
    ck_assert_int_eq(sb_set(sb, &m_b, 2, NULL), 0);
    sb_txn_commit(sb);
    struct sb_sample *v;
    size_t n;
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 2);
    /* a series' own label wins; the others are merged in sorted position */
    ck_assert_double_eq(
        value_of(sb, v, n, "__name__=\"test_a\",env=\"dev\",instance=\"i1\",job=\"j\",zone=\"eu\""),
        1);
    ck_assert_double_eq(
        value_of(sb, v, n, "__name__=\"test_b_total\",env=\"prod\",instance=\"i1\",zone=\"eu\""),
        2);
    free(v);
    sb_free(sb);
    /* an invalid external label makes the buffer unusable */
    const char *bad1[] = {"1x", "v"};
    struct sb_opts o = {.ext_labels = bad1, .n_ext = 1};
    ck_assert_ptr_null(sb_new(&o));
    const char *bad2[] = {"x", ""};
    o.ext_labels = bad2;
    ck_assert_ptr_null(sb_new(&o));
}
END_TEST

START_TEST(test_empty_values_dropped)
{
    struct series_buf *sb = new_sb(0, NULL, 0);
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "t");
    const char *l[] = {"a", "", "b", "x", "c", NULL};
    struct err e;
    ck_assert_int_eq(sb_setv(sb, &m_a, NULL, 7, l, 3, &e), 0);
    /* the same series spelled without the empty labels is a duplicate */
    ck_assert_int_eq(sb_set(sb, &m_a, 8, "b", "x", NULL), -1);
    sb_txn_commit(sb);
    struct sb_sample *v;
    size_t n;
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_double_eq(value_of(sb, v, n, "__name__=\"test_a\",b=\"x\""), 7);
    free(v);
    sb_free(sb);
}
END_TEST

START_TEST(test_duplicate_label_rejected)
{
    struct series_buf *sb = new_sb(0, NULL, 0);
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "t");
    struct err e;
    const char *l[] = {"a", "1", "b", "2", "a", "3"};
    ck_assert_int_eq(sb_setv(sb, &m_a, NULL, 1, l, 3, &e), -1);
    ck_assert_str_eq(e.msg, "test_a: label \"a\" given twice");
    const char *l2[] = {"a", "1", "a", "1"};
    ck_assert_int_eq(sb_setv(sb, &m_a, NULL, 1, l2, 2, &e), -1);
    ck_assert_str_eq(e.msg, "test_a: label \"a\" given twice");
    sb_txn_commit(sb);
    struct sb_stats st;
    sb_stats(sb, &st);
    ck_assert_uint_eq(st.rejected, 2);
    struct sb_sample *v;
    size_t n;
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 0);
    free(v);
    sb_free(sb);
}
END_TEST

START_TEST(test_duplicate_series_in_cycle)
{
    struct series_buf *sb = new_sb(0, NULL, 0);
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "coll1");
    struct err e;
    const char *l[] = {"repo", "r1"};
    ck_assert_int_eq(sb_setv(sb, &m_a, NULL, 1, l, 1, &e), 0);
    ck_assert_int_eq(sb_setv(sb, &m_a, NULL, 2, l, 1, &e), -1);
    ck_assert_str_eq(e.msg, "duplicate series test_a{repo=\"r1\"} in one cycle from coll1");
    sb_txn_commit(sb);
    /* another collector in the same cycle cannot set it either */
    sb_txn_begin(sb, "coll2");
    ck_assert_int_eq(sb_setv(sb, &m_a, NULL, 3, l, 1, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "from coll2"));
    sb_txn_commit(sb);
    struct sb_sample *v;
    size_t n;
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_double_eq(v[0].value, 1); /* the first value stays */
    free(v);
    /* next cycle: allowed again */
    sb_begin_cycle(sb, 2000);
    sb_txn_begin(sb, "coll1");
    ck_assert_int_eq(sb_setv(sb, &m_a, NULL, 4, l, 1, &e), 0);
    sb_txn_commit(sb);
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_double_eq(v[0].value, 4);
    ck_assert_int_eq(sb_cycle_ts(sb), 2000);
    free(v);
    sb_free(sb);
}
END_TEST

/* ---- transactions ---------------------------------------------------------- */

START_TEST(test_txn_rollback)
{
    struct series_buf *sb = new_sb(0, NULL, 0);
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "bad");
    ck_assert_int_eq(sb_set(sb, &m_a, 1, "x", "1", NULL), 0);
    ck_assert_int_eq(sb_set(sb, &m_a, 2, "x", "2", NULL), 0);
    ck_assert_int_eq(sb_set(sb, &m_b, 3, NULL), 0);
    sb_txn_rollback(sb);
    sb_txn_begin(sb, "good");
    ck_assert_int_eq(sb_set(sb, &m_a, 10, "x", "10", NULL), 0);
    /* a rolled-back series may be set again by someone else this cycle */
    ck_assert_int_eq(sb_set(sb, &m_b, 30, NULL), 0);
    sb_txn_commit(sb);
    struct sb_sample *v;
    size_t n;
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_double_eq(value_of(sb, v, n, "__name__=\"test_a\",x=\"10\""), 10);
    ck_assert_double_eq(value_of(sb, v, n, "__name__=\"test_b_total\""), 30);
    ck_assert_int_eq(find(sb, v, n, "__name__=\"test_a\",x=\"1\""), -1);
    free(v);

    /* cycle 2: a committed series, then a rollback of its update: the
     * earlier value is not overwritten, and nothing new appears */
    sb_begin_cycle(sb, 2000);
    sb_txn_begin(sb, "bad");
    ck_assert_int_eq(sb_set(sb, &m_a, 99, "x", "10", NULL), 0);
    ck_assert_int_eq(sb_set(sb, &m_a, 98, "x", "new", NULL), 0);
    sb_txn_rollback(sb);
    sb_txn_begin(sb, "good");
    ck_assert_int_eq(sb_set(sb, &m_b, 31, NULL), 0);
    sb_txn_commit(sb);
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_double_eq(value_of(sb, v, n, "__name__=\"test_b_total\""), 31);
    /* the series the failed collector did not deliver goes stale */
    ck_assert(is_stale_nan(value_of(sb, v, n, "__name__=\"test_a\",x=\"10\"")));
    ck_assert_int_eq(find(sb, v, n, "__name__=\"test_a\",x=\"new\""), -1);
    free(v);

    /* cycle 3: the old value never leaked into the buffer */
    sb_begin_cycle(sb, 3000);
    sb_txn_begin(sb, "good");
    ck_assert_int_eq(sb_set(sb, &m_a, 11, "x", "10", NULL), 0);
    sb_txn_commit(sb);
    snap(sb, false, &v, &n);
    ck_assert_double_eq(value_of(sb, v, n, "__name__=\"test_a\",x=\"10\""), 11);
    free(v);
    sb_free(sb);
}
END_TEST

/* ---- staleness ------------------------------------------------------------- */

START_TEST(test_staleness_once)
{
    ck_assert_uint_eq(bits(stale_nan()), STALE_NAN_BITS);
    ck_assert(is_stale_nan(stale_nan()));
    ck_assert(!is_stale_nan(NAN));
    ck_assert(!is_stale_nan(0));

    struct series_buf *sb = new_sb(0, NULL, 0);
    struct sb_sample *v;
    size_t n;
    /* cycle 1: a and b */
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "t");
    sb_set(sb, &m_a, 1, "k", "a", NULL);
    sb_set(sb, &m_a, 2, "k", "b", NULL);
    sb_set(sb, &m_a, NAN, "k", "nan", NULL); /* a real NaN is not a marker */
    sb_txn_commit(sb);
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 3);
    long i = find(sb, v, n, "__name__=\"test_a\",k=\"nan\"");
    ck_assert_int_ge(i, 0);
    ck_assert(isnan(v[i].value));
    ck_assert(!is_stale_nan(v[i].value));
    free(v);
    /* cycle 2: b and the NaN gone -> one marker each */
    sb_begin_cycle(sb, 2000);
    sb_txn_begin(sb, "t");
    sb_set(sb, &m_a, 1.5, "k", "a", NULL);
    sb_txn_commit(sb);
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 3);
    ck_assert_double_eq(value_of(sb, v, n, "__name__=\"test_a\",k=\"a\""), 1.5);
    ck_assert_uint_eq(bits(value_of(sb, v, n, "__name__=\"test_a\",k=\"b\"")), STALE_NAN_BITS);
    ck_assert_uint_eq(bits(value_of(sb, v, n, "__name__=\"test_a\",k=\"nan\"")), STALE_NAN_BITS);
    free(v);
    struct sb_stats st;
    sb_stats(sb, &st);
    ck_assert_uint_eq(st.series, 3);
    ck_assert_uint_eq(st.live, 3);
    /* cycle 3: not again */
    sb_begin_cycle(sb, 3000);
    sb_txn_begin(sb, "t");
    sb_set(sb, &m_a, 1.75, "k", "a", NULL);
    sb_txn_commit(sb);
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_double_eq(value_of(sb, v, n, "__name__=\"test_a\",k=\"a\""), 1.75);
    free(v);
    sb_stats(sb, &st);
    ck_assert_uint_eq(st.live, 1);
    /* cycle 4: b comes back with a real value */
    sb_begin_cycle(sb, 4000);
    sb_txn_begin(sb, "t");
    sb_set(sb, &m_a, 1, "k", "a", NULL);
    sb_set(sb, &m_a, 5, "k", "b", NULL);
    sb_txn_commit(sb);
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_double_eq(value_of(sb, v, n, "__name__=\"test_a\",k=\"b\""), 5);
    free(v);
    /* a second snapshot in the same cycle carries no new markers either */
    sb_begin_cycle(sb, 5000);
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 2);
    for (size_t j = 0; j < n; j++)
        ck_assert(is_stale_nan(v[j].value));
    free(v);
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 0);
    free(v);
    sb_free(sb);
}
END_TEST

/* ---- memory cap ------------------------------------------------------------ */

START_TEST(test_memory_cap)
{
    size_t cap = 256 * 1024;
    struct series_buf *sb = new_sb(cap, NULL, 0);
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "t");
    struct err e;
    size_t stored = 0;
    char val[64];
    for (size_t i = 0; i < 100000; i++) {
        snprintf(val, sizeof val, "value-%zu", i);
        const char *l[] = {"id", val};
        if (sb_setv(sb, &m_a, NULL, (double)i, l, 1, &e) < 0)
            break;
        stored++;
    }
    ck_assert_uint_gt(stored, 100);
    ck_assert_uint_lt(stored, 100000);
    ck_assert_ptr_nonnull(strstr(e.msg, "series buffer full"));
    ck_assert_ptr_nonnull(strstr(e.msg, "test_a{id=\"value-"));
    struct sb_stats st;
    sb_stats(sb, &st);
    ck_assert_uint_eq(st.refused, 1);
    ck_assert_uint_eq(st.series, stored);
    size_t bytes_full = st.bytes;
    /* many more new series: all refused, counted, and memory does not grow */
    for (size_t i = 0; i < 20000; i++) {
        snprintf(val, sizeof val, "another-unique-value-%zu", i);
        const char *l[] = {"other", val};
        ck_assert_int_eq(sb_setv(sb, &m_a, NULL, 1, l, 1, &e), -1);
    }
    sb_stats(sb, &st);
    ck_assert_uint_eq(st.refused, 20001);
    ck_assert_uint_eq(st.series, stored);
    ck_assert_uint_eq(st.bytes, bytes_full);
    ck_assert_uint_le(st.bytes, cap + 64 * 1024 + 4096);
    sb_txn_commit(sb);
    struct sb_sample *v;
    size_t n;
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, stored);
    free(v);
    /* existing series still update in the next cycle */
    sb_begin_cycle(sb, 2000);
    sb_txn_begin(sb, "t");
    for (size_t i = 0; i < stored; i++) {
        snprintf(val, sizeof val, "value-%zu", i);
        const char *l[] = {"id", val};
        ck_assert_msg(sb_setv(sb, &m_a, NULL, (double)i * 2, l, 1, &e) == 0, "%s", e.msg);
    }
    sb_txn_commit(sb);
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, stored);
    ck_assert_double_eq(value_of(sb, v, n, "__name__=\"test_a\",id=\"value-7\""), 14);
    free(v);
    sb_stats(sb, &st);
    ck_assert_uint_eq(st.refused, 20001);
    sb_free(sb);
}
END_TEST

/* ---- drop / keep ----------------------------------------------------------- */

START_TEST(test_drop_keep)
{
    regex_t drop, keep;
    ck_assert_int_eq(regcomp(&drop, "_debug$|^nexus_shipper_", REG_EXTENDED | REG_NOSUB), 0);
    ck_assert_int_eq(regcomp(&keep, "^nexus_", REG_EXTENDED | REG_NOSUB), 0);
    struct sb_opts o = {.drop_re = &drop, .keep_re = &keep};
    struct series_buf *sb = sb_new(&o);
    ck_assert_ptr_nonnull(sb);
    static const struct metric_desc kept = {"nexus_up", MT_GAUGE, "", ""};
    static const struct metric_desc dropped = {"nexus_thing_debug", MT_GAUGE, "", ""};
    static const struct metric_desc not_kept = {"other_metric", MT_GAUGE, "", ""};
    static const struct metric_desc self = {"nexus_shipper_cycles_total", MT_COUNTER, "", ""};
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "t");
    ck_assert_int_eq(sb_set(sb, &kept, 1, NULL), 0);
    ck_assert_int_eq(sb_set(sb, &dropped, 2, NULL), 0); /* dropped silently */
    ck_assert_int_eq(sb_set(sb, &not_kept, 3, NULL), 0);
    ck_assert_int_eq(sb_set(sb, &self, 4, NULL), 0);
    sb_txn_commit(sb);
    struct sb_sample *v;
    size_t n;
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_double_eq(value_of(sb, v, n, "__name__=\"nexus_up\""), 1);
    ck_assert_double_eq(value_of(sb, v, n, "__name__=\"nexus_shipper_cycles_total\""), 4);
    free(v);
    struct sb_stats st;
    sb_stats(sb, &st);
    ck_assert_uint_eq(st.rejected, 0);
    sb_free(sb);
    /* drop alone */
    o.keep_re = NULL;
    sb = sb_new(&o);
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "t");
    sb_set(sb, &kept, 1, NULL);
    sb_set(sb, &dropped, 2, NULL);
    sb_set(sb, &not_kept, 3, NULL);
    sb_txn_commit(sb);
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(find(sb, v, n, "__name__=\"nexus_thing_debug\""), -1);
    ck_assert_double_eq(value_of(sb, v, n, "__name__=\"other_metric\""), 3);
    free(v);
    sb_free(sb);
    regfree(&drop);
    regfree(&keep);
}
END_TEST

/* ---- histogram --------------------------------------------------------------- */

START_TEST(test_histogram)
{
    static const double bounds[] = {0.1, 1, 10};
    struct histogram h = {.bounds = bounds, .n = 3};
    const double obs[] = {0.05, 0.1, 0.5, 5, 50, 100};
    for (size_t i = 0; i < NS_ARRAY_LEN(obs); i++)
        histogram_observe(&h, obs[i]);
    ck_assert_uint_eq(h.count, 6);
    ck_assert_uint_eq(h.counts[0], 2); /* le is inclusive */
    ck_assert_uint_eq(h.counts[1], 1);
    ck_assert_uint_eq(h.counts[2], 1);
    ck_assert_uint_eq(h.counts[3], 2);
    struct series_buf *sb = new_sb(0, NULL, 0);
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "t");
    const char *l[] = {"path", "/x"};
    struct err e;
    ck_assert_int_eq(sb_histogram(sb, &m_h, &h, l, 1, &e), 0);
    sb_txn_commit(sb);
    struct sb_sample *v;
    size_t n;
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 6);
    ck_assert_double_eq(
        value_of(sb, v, n, "__name__=\"test_latency_seconds_bucket\",le=\"0.1\",path=\"/x\""), 2);
    ck_assert_double_eq(
        value_of(sb, v, n, "__name__=\"test_latency_seconds_bucket\",le=\"1\",path=\"/x\""), 3);
    ck_assert_double_eq(
        value_of(sb, v, n, "__name__=\"test_latency_seconds_bucket\",le=\"10\",path=\"/x\""), 4);
    ck_assert_double_eq(
        value_of(sb, v, n, "__name__=\"test_latency_seconds_bucket\",le=\"+Inf\",path=\"/x\""), 6);
    ck_assert_double_eq_tol(value_of(sb, v, n, "__name__=\"test_latency_seconds_sum\",path=\"/x\""),
                            155.65, 1e-9);
    ck_assert_double_eq(value_of(sb, v, n, "__name__=\"test_latency_seconds_count\",path=\"/x\""),
                        6);
    /* one family, named without suffix */
    for (size_t i = 0; i < n; i++) {
        const struct metric_desc *f = sb_series_family(sb, v[i].series);
        ck_assert_str_eq(f->name, "test_latency_seconds");
        ck_assert_int_eq(f->type, MT_HISTOGRAM);
        ck_assert_str_eq(f->unit, "seconds");
    }
    ck_assert_uint_eq(sb_family_count(sb), 1);
    free(v);
    sb_free(sb);
}
END_TEST

/* ---- UTF-8 ------------------------------------------------------------------- */

START_TEST(test_utf8_sanitized)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "plain"},
        {"caf\xc3\xa9", "caf\xc3\xa9"},           /* valid 2-byte */
        {"\xe2\x82\xac", "\xe2\x82\xac"},         /* valid 3-byte (euro) */
        {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"}, /* valid 4-byte */
        {"ab\xff"
         "cd",
         "ab?cd"},
        {"\xc0\xaf", "??"},           /* overlong '/' */
        {"\xe0\x80\xaf", "???"},      /* overlong 3-byte */
        {"\xed\xa0\x80", "???"},      /* UTF-16 surrogate */
        {"\xf4\x90\x80\x80", "????"}, /* past U+10FFFF */
        {"\xf0\x80\x80\xaf", "????"}, /* overlong 4-byte */
        {"x\xe2\x82", "x??"},         /* truncated at the end */
        {"\x80y", "?y"},              /* stray continuation byte */
    };
    struct series_buf *sb = new_sb(0, NULL, 0);
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "t");
    for (size_t i = 0; i < NS_ARRAY_LEN(cases); i++) {
        char idx[8];
        snprintf(idx, sizeof idx, "%zu", i);
        ck_assert_int_eq(sb_set(sb, &m_a, (double)i, "i", idx, "v", cases[i].in, NULL), 0);
    }
    /* a long value takes another path */
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[1500] = '\xfe';
    ck_assert_int_eq(sb_set(sb, &m_a, 100, "i", "big", "v", big, NULL), 0);
    sb_txn_commit(sb);
    struct sb_sample *v;
    size_t n;
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, NS_ARRAY_LEN(cases) + 1);
    for (size_t i = 0; i < n; i++) {
        const char *ln, *lv, *iv = NULL, *vv = NULL;
        for (size_t j = 0; j < sb_series_nlabels(sb, v[i].series); j++) {
            sb_series_label(sb, v[i].series, j, &ln, &lv);
            if (strcmp(ln, "i") == 0)
                iv = lv;
            if (strcmp(ln, "v") == 0)
                vv = lv;
        }
        ck_assert_ptr_nonnull(iv);
        ck_assert_ptr_nonnull(vv);
        if (strcmp(iv, "big") == 0) {
            ck_assert_uint_eq(strlen(vv), sizeof big - 1);
            ck_assert_int_eq(vv[1500], '?');
            continue;
        }
        size_t k = (size_t)atoi(iv);
        ck_assert_msg(strcmp(vv, cases[k].out) == 0, "case %zu: got \"%s\"", k, vv);
    }
    free(v);
    sb_free(sb);
}
END_TEST

/* ---- compaction -------------------------------------------------------------- */

START_TEST(test_compact)
{
    const char *ext[] = {"instance", "i1"};
    struct series_buf *sb = new_sb(0, ext, 1);
    struct sb_sample *v;
    size_t n;
    char id[32];
    /* cycle 1: 3000 series */
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "t");
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof id, "%d", i);
        ck_assert_int_eq(sb_set(sb, &m_a, i, "id", id, NULL), 0);
    }
    ck_assert_int_eq(sb_set(sb, &m_b, -1, NULL), 0);
    sb_txn_commit(sb);
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 3001);
    free(v);
    /* not worth compacting yet: everything is live */
    ck_assert_int_eq(sb_compact(sb), 0);
    /* cycles 2 and 3: only 100 of them (ids 0, 30, 60, ...) */
    for (int c = 2; c <= 3; c++) {
        sb_begin_cycle(sb, c * 1000);
        sb_txn_begin(sb, "t");
        for (int i = 0; i < 3000; i += 30) {
            snprintf(id, sizeof id, "%d", i);
            ck_assert_int_eq(sb_set(sb, &m_a, i * 10 + c, "id", id, NULL), 0);
        }
        sb_txn_commit(sb);
        snap(sb, false, &v, &n);
        ck_assert_uint_eq(n, c == 2 ? 3001 : 100); /* 2900 + 1 markers in cycle 2 */
        free(v);
    }
    struct sb_stats st;
    sb_stats(sb, &st);
    ck_assert_uint_eq(st.series, 3001);
    size_t before = st.bytes;
    ck_assert_int_eq(sb_compact(sb), 1);
    sb_stats(sb, &st);
    ck_assert_uint_eq(st.series, 100);
    ck_assert_uint_eq(st.live, 100);
    ck_assert_uint_lt(st.bytes, before);
    /* values and labels survive: a second snapshot of cycle 3 */
    snap(sb, true, &v, &n);
    ck_assert_uint_eq(n, 100);
    ck_assert_double_eq(value_of(sb, v, n, "__name__=\"test_a\",id=\"30\",instance=\"i1\""), 303);
    ck_assert_double_eq(value_of(sb, v, n, "__name__=\"test_a\",id=\"2970\",instance=\"i1\""),
                        29703);
    free(v);
    /* cycle 4: half of them: the other half goes stale exactly once */
    sb_begin_cycle(sb, 4000);
    sb_txn_begin(sb, "t");
    for (int i = 0; i < 3000; i += 60) {
        snprintf(id, sizeof id, "%d", i);
        ck_assert_int_eq(sb_set(sb, &m_a, i, "id", id, NULL), 0);
    }
    /* a dropped series can come back */
    ck_assert_int_eq(sb_set(sb, &m_a, 7, "id", "1", NULL), 0);
    sb_txn_commit(sb);
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 101);
    size_t stale = 0;
    for (size_t i = 0; i < n; i++)
        stale += is_stale_nan(v[i].value);
    ck_assert_uint_eq(stale, 50);
    ck_assert_double_eq(value_of(sb, v, n, "__name__=\"test_a\",id=\"1\",instance=\"i1\""), 7);
    ck_assert(is_stale_nan(value_of(sb, v, n, "__name__=\"test_a\",id=\"30\",instance=\"i1\"")));
    free(v);
    sb_free(sb);
}
END_TEST

/* ---- snapshot order ------------------------------------------------------------ */

START_TEST(test_snapshot_sorted)
{
    struct series_buf *sb = new_sb(0, NULL, 0);
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "t");
    sb_set(sb, &m_b, 1, "k", "z", NULL);
    sb_set(sb, &m_a, 2, "k", "b", NULL);
    sb_set(sb, &m_b, 3, "k", "a", NULL);
    sb_set(sb, &m_a, 4, "k", "a", "x", "1", NULL);
    sb_set(sb, &m_a, 5, "k", "a", NULL);
    sb_txn_commit(sb);
    struct sb_sample *v;
    size_t n;
    snap(sb, false, &v, &n);
    ck_assert_uint_eq(n, 5);
    for (size_t i = 0; i < n; i++) /* creation order */
        ck_assert_double_eq(v[i].value, (double)(i + 1));
    free(v);
    sb_begin_cycle(sb, 2000);
    sb_txn_begin(sb, "t");
    sb_set(sb, &m_b, 1, "k", "z", NULL);
    sb_set(sb, &m_a, 2, "k", "b", NULL);
    sb_set(sb, &m_b, 3, "k", "a", NULL);
    sb_set(sb, &m_a, 4, "k", "a", "x", "1", NULL);
    sb_set(sb, &m_a, 5, "k", "a", NULL);
    sb_txn_commit(sb);
    snap(sb, true, &v, &n);
    ck_assert_uint_eq(n, 5);
    static const char *want[] = {"__name__=\"test_a\",k=\"a\"",
                                 "__name__=\"test_a\",k=\"a\",x=\"1\"",
                                 "__name__=\"test_a\",k=\"b\"", "__name__=\"test_b_total\",k=\"a\"",
                                 "__name__=\"test_b_total\",k=\"z\""};
    for (size_t i = 0; i < n; i++) {
        char s[256];
        series_str(sb, v[i].series, s, sizeof s);
        ck_assert_str_eq(s, want[i]);
    }
    free(v);
    ck_assert_uint_eq(sb_family_count(sb), 2);
    ck_assert_str_eq(sb_family(sb, 0)->name, "test_b_total");
    ck_assert_int_eq(sb_family(sb, 0)->type, MT_COUNTER);
    ck_assert_str_eq(sb_family(sb, 1)->name, "test_a");
    sb_free(sb);
}
END_TEST

static Suite *series_suite(void)
{
    Suite *s = suite_create("series");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_name_validation);
    tcase_add_test(tc, test_invalid_names_rejected);
    tcase_add_test(tc, test_labels_sorted_and_name);
    tcase_add_test(tc, test_external_labels);
    tcase_add_test(tc, test_empty_values_dropped);
    tcase_add_test(tc, test_duplicate_label_rejected);
    tcase_add_test(tc, test_duplicate_series_in_cycle);
    tcase_add_test(tc, test_txn_rollback);
    tcase_add_test(tc, test_staleness_once);
    tcase_add_test(tc, test_memory_cap);
    tcase_add_test(tc, test_drop_keep);
    tcase_add_test(tc, test_histogram);
    tcase_add_test(tc, test_utf8_sanitized);
    tcase_add_test(tc, test_compact);
    tcase_add_test(tc, test_snapshot_sorted);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run(series_suite(), "series");
}
