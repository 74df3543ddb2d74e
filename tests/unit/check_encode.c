/* Unit tests for remote_write.c (WriteRequest encoding, answers),
 * textfmt.c (text exposition format) and pushgateway.c (group URLs). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <snappy-c.h>

#include "testlib.h"
#include "pushgateway.h"
#include "remote.pb-c.h"
#include "remote_write.h"
#include "rw_reference.h"
#include "series.h"
#include "textfmt.h"
#include "util.h"

static const struct metric_desc f_gauge = {"rt_memory_bytes", MT_GAUGE, "Memory in use.", "bytes"};
static const struct metric_desc f_counter = {"rt_requests_total", MT_COUNTER, "Requests served.",
                                             ""};
static const struct metric_desc f_hist = {"rt_duration_seconds", MT_HISTOGRAM, "Time per request.",
                                          "seconds"};
static const struct metric_desc f_info = {"rt_build_info", MT_INFO, "Build of the thing.", ""};
static const struct metric_desc f_gone = {"rt_gone", MT_GAUGE, "Goes away after cycle 1.", ""};
static const struct metric_desc f_untyped = {"rt_misc", MT_UNKNOWN, "Something untyped.", ""};

static const double hbounds[] = {0.01, 0.1, 1};

static uint64_t bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

/* Fills one cycle; `with_gone` adds the series that disappears later. */
static void fill(struct series_buf *sb, bool with_gone)
{
    sb_txn_begin(sb, "test");
    ck_assert_int_eq(sb_set(sb, &f_gauge, 123456789.0, "area", "heap", NULL), 0);
    ck_assert_int_eq(sb_set(sb, &f_gauge, 0.25, "area", "non\"heap\\\n", NULL), 0);
    ck_assert_int_eq(sb_set(sb, &f_counter, 42, "code", "200", "method", "GET", NULL), 0);
    ck_assert_int_eq(sb_set(sb, &f_counter, NAN, "code", "500", "method", "GET", NULL), 0);
    ck_assert_int_eq(sb_set(sb, &f_counter, INFINITY, "code", "503", "method", "GET", NULL), 0);
    ck_assert_int_eq(sb_set(sb, &f_info, 1, "version", "1.2.3", "revision", "caf\xc3\xa9", NULL),
                     0);
    ck_assert_int_eq(sb_set(sb, &f_untyped, -7.5e-9, NULL), 0);
    struct histogram h = {.bounds = hbounds, .n = 3};
    histogram_observe(&h, 0.005);
    histogram_observe(&h, 0.5);
    histogram_observe(&h, 3);
    const char *hl[] = {"handler", "/api"};
    struct err e;
    ck_assert_int_eq(sb_histogram(sb, &f_hist, &h, hl, 1, &e), 0);
    if (with_gone)
        ck_assert_int_eq(sb_set(sb, &f_gone, 5, "id", "x", NULL), 0);
    sb_txn_commit(sb);
}

static struct series_buf *two_cycles(struct sb_sample **v, size_t *n, bool sorted)
{
    const char *ext[] = {"instance", "host-1", "env", "test"};
    struct sb_opts o = {.ext_labels = ext, .n_ext = 2};
    struct series_buf *sb = sb_new(&o);
    ck_assert_ptr_nonnull(sb);
    sb_begin_cycle(sb, 1700000000000);
    fill(sb, true);
    ck_assert_int_eq(sb_snapshot(sb, sorted, v, n), 0);
    free(*v);
    sb_begin_cycle(sb, 1700000030000);
    fill(sb, false);
    ck_assert_int_eq(sb_snapshot(sb, sorted, v, n), 0);
    return sb;
}

static const struct metric_desc *family_named(const struct series_buf *sb, const char *name)
{
    for (size_t i = 0; i < sb_family_count(sb); i++)
        if (strcmp(sb_family(sb, i)->name, name) == 0)
            return sb_family(sb, i);
    return NULL;
}

/* Checks that wr holds exactly samples v[0..n) of sb at ts, and metadata
 * for exactly the families among them. */
static void check_request(const struct series_buf *sb, const struct sb_sample *v, size_t n,
                          int64_t ts, const Prometheus__WriteRequest *wr)
{
    ck_assert_uint_eq(wr->n_timeseries, n);
    bool fam_seen[64] = {false};
    size_t nfam = 0;
    for (size_t i = 0; i < n; i++) {
        const Prometheus__TimeSeries *t = wr->timeseries[i];
        size_t k = sb_series_nlabels(sb, v[i].series);
        ck_assert_uint_eq(t->n_labels, k);
        bool has_name = false;
        for (size_t j = 0; j < k; j++) {
            const char *ln, *lv;
            sb_series_label(sb, v[i].series, j, &ln, &lv);
            ck_assert_str_eq(t->labels[j]->name, ln);
            ck_assert_str_eq(t->labels[j]->value, lv);
            ck_assert_str_ne(t->labels[j]->value, "");
            if (j)
                ck_assert_int_lt(strcmp(t->labels[j - 1]->name, t->labels[j]->name), 0);
            has_name |= strcmp(ln, "__name__") == 0;
        }
        ck_assert(has_name);
        ck_assert_uint_eq(t->n_samples, 1);
        ck_assert_uint_eq(bits(t->samples[0]->value), bits(v[i].value));
        ck_assert_int_eq(t->samples[0]->timestamp, ts);
        uint32_t fi = sb_series_family_index(sb, v[i].series);
        ck_assert_uint_lt(fi, 64);
        if (!fam_seen[fi]) {
            fam_seen[fi] = true;
            nfam++;
        }
    }
    ck_assert_uint_eq(wr->n_metadata, nfam);
    for (size_t m = 0; m < wr->n_metadata; m++) {
        const Prometheus__MetricMetadata *md = wr->metadata[m];
        const struct metric_desc *d = family_named(sb, md->metric_family_name);
        ck_assert_msg(d != NULL, "metadata for unknown family %s", md->metric_family_name);
        ck_assert_int_eq((int)md->type, (int)d->type);
        ck_assert_str_eq(md->help, d->help);
        ck_assert_str_eq(md->unit, d->unit);
        ck_assert(!str_has_suffix(md->metric_family_name, "_bucket"));
        ck_assert(!str_has_suffix(md->metric_family_name, "_count"));
        ck_assert(!str_has_suffix(md->metric_family_name, "_sum"));
        for (size_t m2 = 0; m2 < m; m2++)
            ck_assert_str_ne(wr->metadata[m2]->metric_family_name, md->metric_family_name);
    }
}

static Prometheus__WriteRequest *round_trip(struct rw_encoder *enc, const struct series_buf *sb,
                                            const struct sb_sample *v, size_t n, int64_t ts)
{
    struct buf out;
    buf_init(&out, 0);
    struct err e;
    ck_assert_msg(rw_encode(enc, sb, v, n, ts, &out, &e) == 0, "%s", e.msg);
    /* the direct encoder writes exactly what protobuf-c's packer writes */
    struct buf ref;
    buf_init(&ref, 0);
    ck_assert_msg(rw_encode_reference(sb, v, n, ts, &ref, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(out.len, ref.len);
    ck_assert_msg(memcmp(out.data, ref.data, out.len) == 0,
                  "direct and protobuf-c encodings differ");
    buf_free(&ref);
    /* snappy block format, whole body */
    ck_assert_int_eq(snappy_validate_compressed_buffer(out.data, out.len), SNAPPY_OK);
    Prometheus__WriteRequest *wr = rw_decode(out.data, out.len, &e);
    ck_assert_msg(wr != NULL, "%s", e.msg);
    buf_free(&out);
    return wr;
}

/* ---- remote write --------------------------------------------------------- */

START_TEST(test_round_trip)
{
    struct sb_sample *v;
    size_t n;
    struct series_buf *sb = two_cycles(&v, &n, false);
    ck_assert_uint_eq(n, 7 + 6 + 1); /* 7 plain, 6 histogram series, 1 staleness marker */
    struct rw_encoder *enc = rw_encoder_new();
    ck_assert_ptr_nonnull(enc);
    int64_t ts = sb_cycle_ts(sb);
    Prometheus__WriteRequest *wr = round_trip(enc, sb, v, n, ts);
    check_request(sb, v, n, ts, wr);
    /* the staleness marker kept its exact bits; a real NaN kept its own */
    size_t stale = 0, plain_nan = 0;
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        double d = wr->timeseries[i]->samples[0]->value;
        if (bits(d) == STALE_NAN_BITS)
            stale++;
        else if (isnan(d))
            plain_nan++;
    }
    ck_assert_uint_eq(stale, 1);
    ck_assert_uint_eq(plain_nan, 1);
    /* metadata: every family, histogram under its own name */
    ck_assert_uint_eq(wr->n_metadata, 6);
    bool hist = false, info = false;
    for (size_t m = 0; m < wr->n_metadata; m++) {
        if (strcmp(wr->metadata[m]->metric_family_name, "rt_duration_seconds") == 0) {
            hist = true;
            ck_assert_int_eq(wr->metadata[m]->type,
                             PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM);
            ck_assert_str_eq(wr->metadata[m]->unit, "seconds");
            ck_assert_str_eq(wr->metadata[m]->help, "Time per request.");
        }
        if (strcmp(wr->metadata[m]->metric_family_name, "rt_build_info") == 0) {
            info = true;
            ck_assert_int_eq(wr->metadata[m]->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__INFO);
        }
    }
    ck_assert(hist && info);
    rw_decoded_free(wr);

    /* a subset carries only its own families' metadata */
    wr = round_trip(enc, sb, v, 2, ts);
    check_request(sb, v, 2, ts, wr);
    ck_assert_uint_eq(wr->n_metadata, 1);
    ck_assert_str_eq(wr->metadata[0]->metric_family_name, "rt_memory_bytes");
    rw_decoded_free(wr);
    wr = round_trip(enc, sb, v + 5, 4, ts + 1);
    check_request(sb, v + 5, 4, ts + 1, wr);
    rw_decoded_free(wr);
    /* nothing at all */
    wr = round_trip(enc, sb, v, 0, ts);
    ck_assert_uint_eq(wr->n_timeseries, 0);
    ck_assert_uint_eq(wr->n_metadata, 0);
    rw_decoded_free(wr);
    free(v);
    rw_encoder_free(enc);
    sb_free(sb);
}
END_TEST

START_TEST(test_encoder_reuse_large)
{
    struct series_buf *sb = sb_new(&(struct sb_opts){0});
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "t");
    char id[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "%d", i);
        ck_assert_int_eq(sb_set(sb, &f_gauge, i * 0.5, "id", id, "x", i % 2 ? "odd" : "even", NULL),
                         0);
    }
    sb_txn_commit(sb);
    struct sb_sample *v;
    size_t n;
    ck_assert_int_eq(sb_snapshot(sb, false, &v, &n), 0);
    ck_assert_uint_eq(n, 5000);
    struct rw_encoder *enc = rw_encoder_new();
    Prometheus__WriteRequest *wr = round_trip(enc, sb, v, 3, 1000);
    check_request(sb, v, 3, 1000, wr);
    rw_decoded_free(wr);
    wr = round_trip(enc, sb, v, n, 1000);
    check_request(sb, v, n, 1000, wr);
    rw_decoded_free(wr);
    wr = round_trip(enc, sb, v + 4990, 10, 2000);
    check_request(sb, v + 4990, 10, 2000, wr);
    rw_decoded_free(wr);
    free(v);
    rw_encoder_free(enc);
    rw_encoder_free(NULL);
    sb_free(sb);
}
END_TEST

START_TEST(test_decode_garbage)
{
    struct err e;
    e.msg[0] = '\0';
    ck_assert_ptr_null(rw_decode("\xff\xff\xff\xff\xff\xff", 6, &e));
    ck_assert_str_ne(e.msg, "");
    /* valid snappy, not a WriteRequest */
    const char raw[] = "\x0a\x05\xff\xff\xff\xff\xff";
    char comp[64];
    size_t cl = sizeof comp;
    ck_assert_int_eq(snappy_compress(raw, sizeof raw - 1, comp, &cl), SNAPPY_OK);
    e.msg[0] = '\0';
    ck_assert_ptr_null(rw_decode(comp, cl, &e));
    ck_assert_str_eq(e.msg, "payload is not a WriteRequest");
}
END_TEST

START_TEST(test_classify)
{
    static const struct {
        long status;
        enum send_outcome o;
    } cases[] = {
        {200, SEND_OK},    {204, SEND_OK},    {299, SEND_OK},    {400, SEND_DROP},
        {401, SEND_DROP},  {403, SEND_DROP},  {404, SEND_DROP},  {408, SEND_RETRY},
        {413, SEND_DROP},  {429, SEND_RETRY}, {500, SEND_RETRY}, {502, SEND_RETRY},
        {503, SEND_RETRY}, {0, SEND_RETRY},   {100, SEND_DROP},  {301, SEND_DROP},
    };
    for (size_t i = 0; i < NS_ARRAY_LEN(cases); i++)
        ck_assert_msg(rw_classify(cases[i].status) == cases[i].o, "status %ld", cases[i].status);
    ck_assert_str_eq(send_outcome_name(SEND_OK), "sent");
    ck_assert_str_eq(send_outcome_name(SEND_RETRY), "retried");
    ck_assert_str_eq(send_outcome_name(SEND_DROP), "dropped");
}
END_TEST

START_TEST(test_drop_reason)
{
    ck_assert_int_eq(rw_drop_reason(400, "out of bounds"), DROP_OUT_OF_BOUNDS);
    ck_assert_int_eq(rw_drop_reason(400, "err: out of bounds: sample timestamp out of bounds\n"),
                     DROP_OUT_OF_BOUNDS);
    ck_assert_int_eq(rw_drop_reason(400, "Out Of Order sample"), DROP_OUT_OF_BOUNDS);
    ck_assert_int_eq(rw_drop_reason(400, "sample too old"), DROP_OUT_OF_BOUNDS);
    ck_assert_int_eq(rw_drop_reason(400, "out-of-order sample"), DROP_OUT_OF_BOUNDS);
    ck_assert_int_eq(rw_drop_reason(400, "label name \"a\" is not unique"), DROP_REJECTED);
    ck_assert_int_eq(rw_drop_reason(400, NULL), DROP_REJECTED);
    ck_assert_int_eq(rw_drop_reason(401, "out of bounds"), DROP_UNAUTHORIZED);
    ck_assert_int_eq(rw_drop_reason(403, ""), DROP_UNAUTHORIZED);
    ck_assert_int_eq(rw_drop_reason(413, "too big"), DROP_TOO_LARGE);
    ck_assert_int_eq(rw_drop_reason(404, "not found"), DROP_REJECTED);
}
END_TEST

START_TEST(test_headers)
{
    bool ct = false, ce = false, ver = false;
    size_t n = 0;
    for (; rw_headers[n]; n++) {
        ct |= strcmp(rw_headers[n], "Content-Type: application/x-protobuf") == 0;
        ce |= strcmp(rw_headers[n], "Content-Encoding: snappy") == 0;
        ver |= strcmp(rw_headers[n], "X-Prometheus-Remote-Write-Version: 0.1.0") == 0;
    }
    ck_assert(ct && ce && ver);
    ck_assert_uint_ge(n, 3);
}
END_TEST

/* ---- text format ------------------------------------------------------------ */

static char *render(const struct series_buf *sb, const struct sb_sample *v, size_t n)
{
    struct buf out;
    buf_init(&out, 0);
    ck_assert_int_eq(textfmt_write(sb, v, n, &out), 0);
    char *s = strdup(buf_cstr(&out));
    buf_free(&out);
    return s;
}

START_TEST(test_escape_label)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "plain"},
        {"a\\b", "a\\\\b"},
        {"say \"hi\"", "say \\\"hi\\\""},
        {"two\nlines", "two\\nlines"},
        {"\\\"\n", "\\\\\\\"\\n"},
        {"tab\there", "tab\there"},
        {"", ""},
    };
    for (size_t i = 0; i < NS_ARRAY_LEN(cases); i++) {
        struct buf b;
        buf_init(&b, 0);
        ck_assert_int_eq(textfmt_escape_label(cases[i].in, &b), 0);
        ck_assert_str_eq(buf_cstr(&b), cases[i].out);
        buf_free(&b);
    }
}
END_TEST

START_TEST(test_value_format)
{
    static const struct {
        double v;
        const char *s;
    } cases[] = {
        {0, "0"},
        {1, "1"},
        {-3, "-3"},
        {0.1, "0.1"},
        {2.5e-7, "2.5e-07"},
        {123456789, "123456789"},
        {0.005, "0.005"},
        {1e20, "1e+20"},
        {1.5, "1.5"},
        {-0.25, "-0.25"},
        {-0.0, "-0"}, /* fuzz_textfmt: -0 was written as 0 */
    };
    char out[64];
    for (size_t i = 0; i < NS_ARRAY_LEN(cases); i++) {
        textfmt_value(cases[i].v, out, sizeof out);
        ck_assert_str_eq(out, cases[i].s);
        ck_assert_double_eq(strtod(out, NULL), cases[i].v);
    }
    textfmt_value(NAN, out, sizeof out);
    ck_assert_str_eq(out, "NaN");
    textfmt_value(INFINITY, out, sizeof out);
    ck_assert_str_eq(out, "+Inf");
    textfmt_value(-INFINITY, out, sizeof out);
    ck_assert_str_eq(out, "-Inf");
    /* every double reads back exactly */
    double odd[] = {1.0 / 3, 2.0 / 3e10, 9007199254740993.0, 1e15 + 0.5, 6.02214076e23, 5e-324};
    for (size_t i = 0; i < NS_ARRAY_LEN(odd); i++) {
        textfmt_value(odd[i], out, sizeof out);
        ck_assert_msg(strtod(out, NULL) == odd[i], "%s", out);
    }
    ck_assert_str_eq(metric_type_name(MT_COUNTER), "counter");
    ck_assert_str_eq(metric_type_name(MT_GAUGE), "gauge");
    ck_assert_str_eq(metric_type_name(MT_HISTOGRAM), "histogram");
    ck_assert_str_eq(metric_type_name(MT_INFO), "gauge");
    ck_assert_str_eq(metric_type_name(MT_UNKNOWN), "untyped");
}
END_TEST

START_TEST(test_textfmt_exact)
{
    static const struct metric_desc temp = {"app_temp_celsius", MT_GAUGE,
                                            "Temp with \\ back\nslash and \"quotes\"", ""};
    static const struct metric_desc req = {"app_requests_total", MT_COUNTER, "Requests.", ""};
    static const struct metric_desc gone = {"app_gone", MT_GAUGE, "Gone.", ""};
    static const struct metric_desc nohelp = {"app_nohelp", MT_UNKNOWN, "", ""};
    struct series_buf *sb = sb_new(&(struct sb_opts){0});
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "t");
    sb_set(sb, &gone, 1, NULL);
    sb_set(sb, &req, 1, "code", "200", NULL);
    sb_txn_commit(sb);
    struct sb_sample *v;
    size_t n;
    ck_assert_int_eq(sb_snapshot(sb, true, &v, &n), 0);
    free(v);
    sb_begin_cycle(sb, 2000);
    sb_txn_begin(sb, "t");
    sb_set(sb, &temp, 21.5, "path", "a\"b\\c\nd", NULL);
    sb_set(sb, &req, 0, "code", "500", NULL);
    sb_set(sb, &req, 3, "code", "200", NULL);
    sb_set(sb, &nohelp, NAN, NULL);
    sb_txn_commit(sb);
    ck_assert_int_eq(sb_snapshot(sb, true, &v, &n), 0);
    ck_assert_uint_eq(n, 5); /* including the marker of app_gone */
    char *s = render(sb, v, n);
    ck_assert_str_eq(s, "# TYPE app_nohelp untyped\n"
                        "app_nohelp NaN\n"
                        "# HELP app_requests_total Requests.\n"
                        "# TYPE app_requests_total counter\n"
                        "app_requests_total{code=\"200\"} 3\n"
                        "app_requests_total{code=\"500\"} 0\n"
                        "# HELP app_temp_celsius Temp with \\\\ back\\nslash and \"quotes\"\n"
                        "# TYPE app_temp_celsius gauge\n"
                        "app_temp_celsius{path=\"a\\\"b\\\\c\\nd\"} 21.5\n");
    free(s);
    free(v);
    sb_free(sb);
}
END_TEST

/* Buckets in ascending le order, +Inf last, whatever the strings sort as
 * ("+Inf" < "0.5" < "10" < "2.5" in bytes); per label set its buckets,
 * _sum, _count (as client_golang writes them); quantiles as numbers. */
START_TEST(test_histogram_order)
{
    static const double b[] = {0.5, 2.5, 10, 100};
    static const struct metric_desc lat = {"app_latency_seconds", MT_HISTOGRAM, "", ""};
    static const struct metric_desc q = {"app_q", MT_GAUGE, "", ""};
    struct series_buf *sb = sb_new(&(struct sb_opts){0});
    sb_begin_cycle(sb, 1000);
    sb_txn_begin(sb, "t");
    struct err e;
    for (int k = 0; k < 2; k++) {
        struct histogram h = {.bounds = b, .n = 4};
        histogram_observe(&h, k ? 50 : 1);
        const char *l[] = {"op", k ? "b" : "a"};
        ck_assert_int_eq(sb_histogram(sb, &lat, &h, l, 1, &e), 0);
    }
    sb_set(sb, &q, 3, "quantile", "0.99", NULL);
    sb_set(sb, &q, 1, "quantile", "0.5", NULL);
    sb_set(sb, &q, 2, "quantile", "0.9", NULL);
    sb_txn_commit(sb);
    struct sb_sample *v;
    size_t n;
    ck_assert_int_eq(sb_snapshot(sb, true, &v, &n), 0);
    char *s = render(sb, v, n);
    ck_assert_str_eq(s, "# TYPE app_latency_seconds histogram\n"
                        "app_latency_seconds_bucket{le=\"0.5\",op=\"a\"} 0\n"
                        "app_latency_seconds_bucket{le=\"2.5\",op=\"a\"} 1\n"
                        "app_latency_seconds_bucket{le=\"10\",op=\"a\"} 1\n"
                        "app_latency_seconds_bucket{le=\"100\",op=\"a\"} 1\n"
                        "app_latency_seconds_bucket{le=\"+Inf\",op=\"a\"} 1\n"
                        "app_latency_seconds_sum{op=\"a\"} 1\n"
                        "app_latency_seconds_count{op=\"a\"} 1\n"
                        "app_latency_seconds_bucket{le=\"0.5\",op=\"b\"} 0\n"
                        "app_latency_seconds_bucket{le=\"2.5\",op=\"b\"} 0\n"
                        "app_latency_seconds_bucket{le=\"10\",op=\"b\"} 0\n"
                        "app_latency_seconds_bucket{le=\"100\",op=\"b\"} 1\n"
                        "app_latency_seconds_bucket{le=\"+Inf\",op=\"b\"} 1\n"
                        "app_latency_seconds_sum{op=\"b\"} 50\n"
                        "app_latency_seconds_count{op=\"b\"} 1\n"
                        "# TYPE app_q gauge\n"
                        "app_q{quantile=\"0.5\"} 1\n"
                        "app_q{quantile=\"0.9\"} 2\n"
                        "app_q{quantile=\"0.99\"} 3\n");
    free(s);
    free(v);
    sb_free(sb);
}
END_TEST

static int run_promtool(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s' > '%s.out' 2>&1", path, path);
    int st = system(cmd);
    ck_assert_int_ne(st, -1);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

START_TEST(test_promtool)
{
    if (system("command -v promtool > /dev/null 2>&1") != 0) {
        fprintf(stderr, "promtool not on PATH: skipping the promtool check\n");
        return;
    }
    const char *dir = basedir;
    char path[64];
    snprintf(path, sizeof path, "%s/metrics.txt", dir);
    struct sb_sample *v;
    size_t n;
    struct series_buf *sb = two_cycles(&v, &n, true);
    char *s = render(sb, v, n);
    ck_assert_ptr_null(strstr(s, "rt_gone")); /* staleness markers are skipped */
    ck_assert_ptr_nonnull(strstr(s, "rt_duration_seconds_bucket{env=\"test\",handler=\"/api\","
                                    "instance=\"host-1\",le=\"+Inf\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(s, "rt_duration_seconds_bucket{env=\"test\",handler=\"/api\","
                                    "instance=\"host-1\",le=\"0.01\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(s, "# TYPE rt_duration_seconds histogram\n"));
    ck_assert_ptr_nonnull(strstr(s, "area=\"non\\\"heap\\\\\\n\""));
    ck_assert_ptr_nonnull(strstr(s, "} NaN\n"));
    ck_assert_ptr_nonnull(strstr(s, "} +Inf\n"));
    ck_assert_ptr_null(strstr(s, " 1700000030000")); /* no timestamps */
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(s, f);
    fclose(f);
    int rc = run_promtool(path);
    if (rc != 0) {
        char out[80];
        snprintf(out, sizeof out, "%s.out", path);
        char *msg = NULL;
        struct err e;
        read_file(out, 65536, true, &msg, &e);
        fprintf(stderr, "promtool said:\n%s\ninput:\n%s", msg ? msg : "?", s);
        free(msg);
    }
    ck_assert_int_eq(rc, 0);
    /* the check can fail: a counter without _total is a lint error */
    f = fopen(path, "w");
    fputs("# HELP foo x\n# TYPE foo counter\nfoo 1\n", f);
    fclose(f);
    ck_assert_int_ne(run_promtool(path), 0);
    free(s);
    free(v);
    sb_free(sb);
}
END_TEST

/* ---- pushgateway ---------------------------------------------------------------- */

static void url_is(const char *base, const char *job, const char *const *g, size_t ng,
                   const char *want)
{
    struct buf b;
    buf_init(&b, 0);
    ck_assert_int_eq(pgw_url(base, job, g, ng, &b), 0);
    ck_assert_str_eq(buf_cstr(&b), want);
    buf_free(&b);
}

START_TEST(test_pgw_url)
{
    url_is("http://pg:9091", "cleanup", NULL, 0, "http://pg:9091/metrics/job/cleanup");
    url_is("http://pg:9091//", "cleanup", NULL, 0, "http://pg:9091/metrics/job/cleanup");
    const char *g1[] = {"instance", "host1", "repo", "docker-hosted"};
    url_is("http://pg:9091", "cleanup", g1, 2,
           "http://pg:9091/metrics/job/cleanup/instance/host1/repo/docker-hosted");
    const char *g2[] = {"path", "/var/tmp"};
    url_is("http://pg:9091", "j", g2, 1, "http://pg:9091/metrics/job/j/path@base64/L3Zhci90bXA=");
    const char *g3[] = {"v", "a/\xfb\xff"}; /* URL-safe alphabet: '-' and '_' */
    url_is("http://pg:9091", "j", g3, 1, "http://pg:9091/metrics/job/j/v@base64/YS_7_w==");
    const char *g4[] = {"empty", ""};
    url_is("http://pg:9091", "j", g4, 1, "http://pg:9091/metrics/job/j/empty@base64/=");
    url_is("http://pg:9091", "a/b", NULL, 0, "http://pg:9091/metrics/job@base64/YS9i");
    const char *g5[] = {"img", "my image:1.0"};
    /* built with curl_url(), which writes percent-escapes in lower case */
    url_is("http://pg:9091", "j", g5, 1, "http://pg:9091/metrics/job/j/img/my%20image%3a1.0");
    struct buf b;
    buf_init(&b, 0);
    ck_assert_int_eq(pgw_group_path("j", g1, 1, &b), 0);
    ck_assert_str_eq(buf_cstr(&b), "/metrics/job/j/instance/host1");
    buf_free(&b);
}
END_TEST

static Suite *encode_suite(void)
{
    Suite *s = suite_create("encode");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_encoder_reuse_large);
    tcase_add_test(tc, test_decode_garbage);
    tcase_add_test(tc, test_classify);
    tcase_add_test(tc, test_drop_reason);
    tcase_add_test(tc, test_headers);
    tcase_add_test(tc, test_escape_label);
    tcase_add_test(tc, test_value_format);
    tcase_add_test(tc, test_textfmt_exact);
    tcase_add_test(tc, test_histogram_order);
    tcase_add_test(tc, test_promtool);
    tcase_add_test(tc, test_pgw_url);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run(encode_suite(), "encode");
}
