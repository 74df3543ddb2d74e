/* Unit tests for relabel.c: the PromQL selector parser and matcher, and
 * relabel_apply() on a real series buffer (filters, drop_labels,
 * collisions, staleness of relabeled series). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relabel.h"
#include "series.h"
#include "testlib.h"

/* ---- the selector parser -------------------------------------------------- */

static struct relabel_selectors *parse_ok(const char *text)
{
    struct relabel_selectors *s = NULL;
    struct err e;
    e.msg[0] = '\0';
    ck_assert_msg(relabel_selectors_parse(text, &s, &e) == 0, "refused %s: %s", text, e.msg);
    ck_assert_ptr_nonnull(s);
    return s;
}

static void parse_bad(const char *text, const char *want)
{
    struct relabel_selectors *s = NULL;
    struct err e;
    ck_assert_msg(relabel_selectors_parse(text, &s, &e) < 0, "accepted %s", text);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(e.msg, want) != NULL, "%s: got \"%s\", want \"%s\"", text, e.msg, want);
}

/* name,value pairs of one series, __name__ included */
static const char *const series_a[] = {"__name__",   "nexus_repository_size_bytes",
                                       "repository", "tmp-build",
                                       "format",     "docker",
                                       "instance",   "n1"};
static const char *const series_b[] = {
    "__name__", "nexus_repository_size_bytes", "repository", "releases", "format", "maven2"};

static bool matches(const char *text, const char *const *labels, size_t pairs)
{
    struct relabel_selectors *s = parse_ok(text);
    bool m = relabel_selectors_match(s, labels, pairs);
    relabel_selectors_free(s);
    return m;
}

START_TEST(test_parse_and_match)
{
    /* the four operators; anchored regexes as in PromQL */
    ck_assert(matches("{repository=~\"tmp-.*\"}", series_a, 4));
    ck_assert(!matches("{repository=~\"tmp-.*\"}", series_b, 3));
    ck_assert(!matches("{repository=~\"tmp\"}", series_a, 4)); /* anchored: not a substring */
    ck_assert(matches("{repository!~\"tmp-.*\"}", series_b, 3));
    ck_assert(matches("{format=\"docker\"}", series_a, 4));
    ck_assert(matches("{format!=\"docker\"}", series_b, 3));
    /* matchers ANDed */
    ck_assert(matches("{repository=~\"tmp-.*\", format=\"docker\"}", series_a, 4));
    ck_assert(!matches("{repository=~\"tmp-.*\", format=\"maven2\"}", series_a, 4));
    /* selectors ORed: commas, blanks or `or` between them */
    ck_assert(matches("{format=\"maven2\"}, {format=\"docker\"}", series_a, 4));
    ck_assert(matches("{format=\"maven2\"} or {format=\"docker\"}", series_a, 4));
    ck_assert(matches("{format=\"npm\"} {format=\"docker\"}", series_a, 4));
    /* a metric name, alone or in front */
    ck_assert(matches("nexus_repository_size_bytes", series_b, 3));
    ck_assert(matches("nexus_repository_size_bytes{format=\"maven2\"}", series_b, 3));
    ck_assert(!matches("nexus_up{format=\"maven2\"}", series_b, 3));
    ck_assert(matches("{__name__=~\"nexus_.*_bytes\"}", series_b, 3));
    /* an absent label is "" */
    ck_assert(matches("{instance=\"\"}", series_b, 3));
    ck_assert(!matches("{instance=\"\"}", series_a, 4));
    ck_assert(matches("{instance!=\"\"}", series_a, 4));
    /* quoting: escapes, single quotes, raw strings, spaces, a trailing comma */
    const char *const q[] = {"__name__", "x", "v", "a\"b\\c"};
    ck_assert(matches("{v=\"a\\\"b\\\\c\"}", q, 2));
    ck_assert(matches("{ v = 'a\"b\\\\c' , }", q, 2));
    ck_assert(matches("{v=~`a.b\\\\c`}", q, 2));
}
END_TEST

START_TEST(test_parse_errors)
{
    parse_bad("", "no selector");
    parse_bad("{}", "empty selector {}");
    parse_bad("{a}", "expected =, !=, =~ or !~ at character 3");
    parse_bad("{a=b}", "expected a quoted value at character 4");
    parse_bad("{a=\"b\"", "expected ',' or '}' at the end");
    parse_bad("{a=\"b}", "unterminated quoted value at character 4");
    parse_bad("{a=~\"(\"}", "bad regular expression \"(\" for label a");
    parse_bad("{1a=\"b\"}", "expected a label name at character 2");
    parse_bad("{a==\"b\"}", "expected a quoted value at character 4");
    parse_bad("\"x\"", "expected a selector");
    parse_bad("{a=\"b\\q\"}", "unknown escape");
    parse_bad("repository=\"x\"", "expected a selector such as {label=\"value\"} at character 11");
}
END_TEST

/* ---- relabel_apply ---------------------------------------------------------- */

static const struct metric_desc m_size = {"nexus_repository_size_bytes", MT_GAUGE, "Size.",
                                          "bytes"};
static const struct metric_desc m_up = {"nexus_up", MT_GAUGE, "Up.", ""};
static const struct metric_desc m_self = {"nexus_shipper_cycles_total", MT_COUNTER, "Cycles.", ""};
static const double bounds[] = {1, 5};
static const struct metric_desc m_hist = {"nexus_request_seconds", MT_HISTOGRAM, "Latency.", ""};

/* the value of the series whose labels (without __name__) render as `want` */
static const char *render(const struct series_buf *sb, uint32_t s, char *out, size_t n)
{
    size_t k = sb_series_nlabels(sb, s), o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < k; i++) {
        const char *nm, *v;
        sb_series_label(sb, s, i, &nm, &v);
        o += (size_t)snprintf(out + o, n - o, "%s%s=%s", i ? "," : "", nm, v);
    }
    return out;
}

static bool has(const struct relabel_out *o, const char *labels, double v)
{
    char b[512];
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(render(o->sb, o->v[i].series, b, sizeof b), labels) == 0 &&
            (isnan(v) ? is_stale_nan(o->v[i].value) : o->v[i].value == v))
            return true;
    return false;
}

static void fill(struct series_buf *sb, int64_t ts, bool with_tmp)
{
    sb_begin_cycle(sb, ts);
    sb_txn_begin(sb, "test");
    if (with_tmp)
        ck_assert_int_eq(sb_set(sb, &m_size, 1.0, "repository", "tmp-1", "blobstore", "a", NULL),
                         0);
    ck_assert_int_eq(sb_set(sb, &m_size, 2.0, "repository", "rel", "blobstore", "a", NULL), 0);
    ck_assert_int_eq(sb_set(sb, &m_size, 3.0, "repository", "rel", "blobstore", "b", NULL), 0);
    ck_assert_int_eq(sb_set(sb, &m_up, 1.0, "repository", "rel", NULL), 0);
    ck_assert_int_eq(sb_set(sb, &m_self, 7.0, NULL), 0);
    struct histogram h = {.bounds = bounds, .n = 2};
    histogram_observe(&h, 0.5);
    struct err e;
    const char *hl[] = {"repository", "rel"};
    ck_assert_int_eq(sb_histogram(sb, &m_hist, &h, hl, 1, &e), 0);
    sb_txn_commit(sb);
}

START_TEST(test_apply)
{
    struct sb_opts so = {0};
    struct series_buf *sb = sb_new(&so);
    fill(sb, 1000, true);
    struct sb_sample *v;
    size_t n;
    ck_assert_int_eq(sb_snapshot(sb, false, &v, &n), 0);
    ck_assert_uint_eq(n, 10); /* 3 sizes, up, self, 5 histogram series */
    struct err e;

    /* nothing configured: the input itself */
    struct relabel_spec none = {0};
    struct relabel *r = relabel_new(&none, &e);
    ck_assert_ptr_nonnull(r);
    ck_assert(!relabel_active(r));
    struct relabel_out o;
    ck_assert_int_eq(relabel_apply(r, sb, v, n, &o, &e), 0);
    ck_assert_ptr_eq(o.v, v);
    ck_assert_uint_eq(o.n, n);
    relabel_out_free(&o);
    relabel_free(r);

    /* keep_metrics keeps self-metrics; a histogram goes with its family */
    struct relabel_spec keep = {.keep_metrics = "^nexus_request"};
    r = relabel_new(&keep, &e);
    ck_assert_int_eq(relabel_apply(r, sb, v, n, &o, &e), 0);
    ck_assert_uint_eq(o.n, 6); /* 5 histogram series + the self-metric */
    ck_assert_uint_eq(o.filtered, 4);
    ck_assert(has(&o, "__name__=nexus_shipper_cycles_total", 7.0));
    ck_assert(has(&o, "__name__=nexus_request_seconds_bucket,le=1,repository=rel", 1.0));
    relabel_out_free(&o);
    relabel_free(r);

    /* drop_series + drop_metrics */
    struct relabel_spec ds = {.drop_series = "{repository=~\"tmp-.*\"}, {le=\"+Inf\"}",
                              .drop_metrics = "^nexus_up$"};
    r = relabel_new(&ds, &e);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(relabel_apply(r, sb, v, n, &o, &e), 0);
    ck_assert_uint_eq(o.n, 7);
    ck_assert(!has(&o, "__name__=nexus_repository_size_bytes,blobstore=a,repository=tmp-1", 1.0));
    ck_assert(has(&o, "__name__=nexus_repository_size_bytes,blobstore=a,repository=rel", 2.0));
    ck_assert(!has(&o, "__name__=nexus_up,repository=rel", 1.0));
    ck_assert(!has(&o, "__name__=nexus_request_seconds_bucket,le=+Inf,repository=rel", 1.0));
    relabel_out_free(&o);
    relabel_free(r);

    /* drop_labels: the two rel sizes collide (the first wins, the other is counted) */
    const char *const dl[] = {"blobstore"};
    struct relabel_spec lab = {.drop_labels = dl, .n_drop_labels = 1};
    r = relabel_new(&lab, &e);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(relabel_apply(r, sb, v, n, &o, &e), 0);
    ck_assert_uint_eq(o.collisions, 1);
    ck_assert_ptr_nonnull(strstr(o.collision_example, "repository=\"rel\""));
    ck_assert_uint_eq(o.n, 9);
    ck_assert(has(&o, "__name__=nexus_repository_size_bytes,repository=rel", 2.0));
    ck_assert(has(&o, "__name__=nexus_repository_size_bytes,repository=tmp-1", 1.0));
    ck_assert(has(&o, "__name__=nexus_request_seconds_sum,repository=rel", 0.5));
    ck_assert_ptr_ne(o.sb, sb);
    relabel_out_free(&o);
    free(v);

    /* next cycle without tmp-1: its relabeled series gets a staleness
     * marker; the live merged one does not */
    fill(sb, 2000, false);
    ck_assert_int_eq(sb_snapshot(sb, false, &v, &n), 0);
    ck_assert_uint_eq(n, 10); /* 9 live + tmp-1's marker */
    ck_assert_int_eq(relabel_apply(r, sb, v, n, &o, &e), 0);
    ck_assert(has(&o, "__name__=nexus_repository_size_bytes,repository=tmp-1", NAN));
    ck_assert(has(&o, "__name__=nexus_repository_size_bytes,repository=rel", 2.0));
    ck_assert(!has(&o, "__name__=nexus_repository_size_bytes,repository=rel", NAN));
    ck_assert_uint_eq(o.n, 9);
    relabel_out_free(&o);
    free(v);

    /* another producer's buffer: its own series, no markers for the others */
    struct series_buf *sb2 = sb_new(&so);
    sb_begin_cycle(sb2, 3000);
    sb_txn_begin(sb2, "other");
    ck_assert_int_eq(sb_set(sb2, &m_up, 0.0, "repository", "x", NULL), 0);
    sb_txn_commit(sb2);
    ck_assert_int_eq(sb_snapshot(sb2, false, &v, &n), 0);
    ck_assert_int_eq(relabel_apply(r, sb2, v, n, &o, &e), 0);
    ck_assert_uint_eq(o.n, 1);
    ck_assert(has(&o, "__name__=nexus_up,repository=x", 0.0));
    relabel_out_free(&o);
    free(v);
    sb_free(sb2);
    relabel_free(r);

    /* bad specs name their key */
    struct relabel_spec bad = {.drop_series = "{x}"};
    ck_assert_ptr_null(relabel_new(&bad, &e));
    ck_assert(strncmp(e.msg, "drop_series: ", 13) == 0);
    const char *const bl[] = {"__name__"};
    struct relabel_spec bad2 = {.drop_labels = bl, .n_drop_labels = 1};
    ck_assert_ptr_null(relabel_new(&bad2, &e));
    ck_assert(strncmp(e.msg, "drop_labels: ", 13) == 0);
    sb_free(sb);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("relabel");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_parse_and_match);
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_apply);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run(suite(), "relabel");
}
