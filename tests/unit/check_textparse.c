/* Unit tests for textparse.c: the Prometheus text format 0.0.4 parser. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textfmt.h"
#include "textparse.h"
#include "util.h"
#include "testlib.h"

/* Renders every sample as one line:
 *   name{a=<v>,...} value [@ts] | family suffix type | help
 * values with %.17g, NaN/Inf as nan/inf, escapes shown raw (unescaped). */
static int render(void *ud, const struct tp_sample *s, struct err *e)
{
    (void)e;
    struct buf *b = ud;
    buf_printf(b, "%s{", s->name);
    for (size_t i = 0; i < s->n_labels; i++)
        buf_printf(b, "%s%s=<%s>", i ? "," : "", s->labels[2 * i], s->labels[2 * i + 1]);
    buf_printf(b, "} %.17g", s->value);
    if (s->has_ts)
        buf_printf(b, " @%lld", (long long)s->ts_ms);
    buf_printf(b, " | %s %s %s | %s\n", s->family, *s->suffix ? s->suffix : "-",
               tp_type_name(s->type), s->help);
    return 0;
}

static char out_str[8192];
static char err_str[512];

/* Parses `in` (in chunks of `chunk` bytes, 0 = one call); returns rc. */
static int parse(const char *in, size_t chunk, const struct tp_limits *lim)
{
    struct buf b;
    buf_init(&b, 0);
    struct err e = {{0}};
    struct textparse *p = tp_new(lim, render, &b);
    ck_assert_ptr_nonnull(p);
    size_t n = strlen(in);
    int rc = 0;
    if (!chunk)
        chunk = n ? n : 1;
    for (size_t off = 0; off < n && rc == 0; off += chunk)
        rc = tp_feed(p, in + off, n - off < chunk ? n - off : chunk, &e);
    if (rc == 0)
        rc = tp_finish(p, &e);
    tp_free(p);
    snprintf(out_str, sizeof out_str, "%s", b.len ? b.data : "");
    snprintf(err_str, sizeof err_str, "%s", rc ? e.msg : "");
    buf_free(&b);
    return rc;
}

static void expect_ok(const char *in, const char *want)
{
    for (size_t chunk = 0; chunk <= 7; chunk += 1) {
        int rc = parse(in, chunk, NULL);
        ck_assert_msg(rc == 0, "chunk %zu: unexpected error: %s", chunk, err_str);
        ck_assert_msg(strcmp(out_str, want) == 0, "chunk %zu:\n--- want\n%s--- got\n%s", chunk,
                      want, out_str);
    }
}

static void expect_err(const char *in, const struct tp_limits *lim, const char *want_msg)
{
    for (size_t chunk = 0; chunk <= 3; chunk++) {
        int rc = parse(in, chunk, lim);
        ck_assert_msg(rc == -1, "chunk %zu: no error for %s", chunk, in);
        ck_assert_msg(strstr(err_str, want_msg) != NULL, "chunk %zu: error \"%s\" lacks \"%s\"",
                      chunk, err_str, want_msg);
    }
}

START_TEST(test_basic_families)
{
    expect_ok("# HELP jvm_memory_bytes_used Used bytes of a given JVM memory area.\n"
              "# TYPE jvm_memory_bytes_used gauge\n"
              "jvm_memory_bytes_used{area=\"heap\",} 4.38124544E8\n"
              "jvm_memory_bytes_used{area=\"nonheap\"} 2.30918712e+08\n"
              "\n"
              "# a plain comment\n"
              "#HELP not metadata either\n"
              "# TYPE req counter\n"
              "req_total 15 \n"
              "req 1\n"
              "other_total{ a = \"1\" , b=\"2\" } -0.5\n",
              "jvm_memory_bytes_used{area=<heap>} 438124544 | jvm_memory_bytes_used - gauge | "
              "Used bytes of a given JVM memory area.\n"
              "jvm_memory_bytes_used{area=<nonheap>} 230918712 | jvm_memory_bytes_used - gauge | "
              "Used bytes of a given JVM memory area.\n"
              "req_total{} 15 | req _total counter | \n"
              "req{} 1 | req - counter | \n"
              "other_total{a=<1>,b=<2>} -0.5 | other_total - untyped | \n");
}
END_TEST

START_TEST(test_histogram_summary)
{
    expect_ok("# TYPE h histogram\n"
              "# HELP h Latency.\n"
              "h_bucket{le=\"0.1\"} 1\n"
              "h_bucket{le=\"+Inf\"} 3\n"
              "h_sum 0.5\n"
              "h_count 3\n"
              "h_total 9\n"
              "# TYPE s summary\n"
              "s{quantile=\"0.99\"} 0.25\n"
              "s_sum 1\n"
              "s_count 2\n"
              "s_bucket 7\n",
              "h_bucket{le=<0.1>} 1 | h _bucket histogram | Latency.\n"
              "h_bucket{le=<+Inf>} 3 | h _bucket histogram | Latency.\n"
              "h_sum{} 0.5 | h _sum histogram | Latency.\n"
              "h_count{} 3 | h _count histogram | Latency.\n"
              "h_total{} 9 | h_total - untyped | \n"
              "s{quantile=<0.99>} 0.25 | s - summary | \n"
              "s_sum{} 1 | s _sum summary | \n"
              "s_count{} 2 | s _count summary | \n"
              "s_bucket{} 7 | s_bucket - untyped | \n");
}
END_TEST

START_TEST(test_escapes)
{
    expect_ok("# HELP m Line one.\\nA \\\\ backslash, a \"quote\".\n"
              "m{path=\"C:\\\\dir\",q=\"say \\\"hi\\\"\",nl=\"a\\nb\",e=\"\"} 1\r\n",
              "m{path=<C:\\dir>,q=<say \"hi\">,nl=<a\nb>,e=<>} 1 | m - untyped | Line one.\n"
              "A \\ backslash, a \"quote\".\n");
}
END_TEST

START_TEST(test_values_timestamps)
{
    expect_ok("a NaN\nb +Inf\nc -Inf\nd Inf\ne 1e3 1700000000000\nf -1.5E-3 -5\ng nan\n"
              "h 1.7976931348623157e309\ni .5\n",
              "a{} nan | a - untyped | \n"
              "b{} inf | b - untyped | \n"
              "c{} -inf | c - untyped | \n"
              "d{} inf | d - untyped | \n"
              "e{} 1000 @1700000000000 | e - untyped | \n"
              "f{} -0.0015 @-5 | f - untyped | \n"
              "g{} nan | g - untyped | \n"
              "h{} inf | h - untyped | \n"
              "i{} 0.5 | i - untyped | \n");
    /* the last line needs no newline */
    expect_ok("x 2", "x{} 2 | x - untyped | \n");
}
END_TEST

START_TEST(test_errors_name_the_line)
{
    expect_err("ok 1\nbad{a=\"1\" 2\n", NULL, "line 2: expected ',' or '}' after label value");
    expect_err("a 1\n\n# TYPE a gauge\n", NULL, "line 3: TYPE line after samples of metric: a");
    expect_err("# TYPE a gauge\n# TYPE a counter\n", NULL, "line 2: second TYPE line");
    expect_err("# TYPE a meter\n", NULL, "line 1: unknown metric type: meter");
    expect_err("x 0x10\n", NULL, "line 1: invalid value: 0x10");
    expect_err("x infinity\n", NULL, "line 1: invalid value: infinity");
    expect_err("x 1 12.5\n", NULL, "line 1: invalid timestamp: 12.5");
    expect_err("x 1 2 3\n", NULL, "line 1: unexpected text after the timestamp");
    expect_err("x\n", NULL, "line 1: missing value");
    expect_err("x{a=\"1\",a=\"2\"} 1\n", NULL, "line 1: duplicate label name: a");
    expect_err("x{a=\"\\t\"} 1\n", NULL, "line 1: invalid escape in label value");
    expect_err("x{a=\"open} 1\n", NULL, "line 1: unterminated label value of label: a");
    expect_err("x{1a=\"v\"} 1\n", NULL, "line 1: expected a label name or '}'");
    expect_err("\n\n9x 1\n", NULL, "line 3: expected a metric name: 9x 1");
    expect_err("# HELP\n", NULL, "line 1: # HELP without a valid metric name");
    expect_err("# HELP m bad \\t escape\n", NULL, "line 1: invalid escape in HELP text");
}
END_TEST

START_TEST(test_limits)
{
    struct tp_limits lim = {.max_line = 16, .max_labels = 2, .max_samples = 3};
    expect_err("a 1\nb 2\nc_is_a_long_name 1\n", &lim, "line 3: line longer than 16 bytes");
    struct tp_limits lim2 = {.max_labels = 2};
    expect_err("a{x=\"1\",y=\"2\",z=\"3\"} 1\n", &lim2, "line 1: more than 2 labels: a");
    expect_err("a 1\nb 2\nc 3\nd 4\n", &lim, "line 4: more than 3 samples");
    /* a line that never ends fails as soon as it passes the limit */
    struct tp_limits lim3 = {.max_line = 1024};
    struct err e;
    struct textparse *p = tp_new(&lim3, render, NULL);
    ck_assert_ptr_nonnull(p);
    char chunk[512];
    memset(chunk, 'a', sizeof chunk);
    int rc = 0, feeds = 0;
    while (rc == 0 && feeds < 100) {
        rc = tp_feed(p, chunk, sizeof chunk, &e);
        feeds++;
    }
    ck_assert_int_eq(rc, -1);
    ck_assert_int_le(feeds, 3);
    ck_assert_str_eq(e.msg, "line 1: line longer than 1024 bytes");
    /* failed parsers stay failed */
    ck_assert_int_eq(tp_feed(p, "x 1\n", 4, &e), -1);
    tp_free(p);
}
END_TEST

static int stop_at_two(void *ud, const struct tp_sample *s, struct err *e)
{
    (void)s;
    int *n = ud;
    if (++*n == 2) {
        err_set(e, "callback says stop");
        return -1;
    }
    return 0;
}

START_TEST(test_callback_stops)
{
    int n = 0;
    struct err e;
    ck_assert_int_eq(tp_parse("a 1\nb 2\nc 3\n", 12, NULL, stop_at_two, &n, &e), -1);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(e.msg, "callback says stop");
}
END_TEST

START_TEST(test_nul_byte)
{
    struct err e;
    int n = 0;
    ck_assert_int_eq(tp_parse("a 1\nb\0 2\n", 9, NULL, stop_at_two, &n, &e), -1);
    ck_assert_str_eq(e.msg, "line 2: NUL byte in line");
}
END_TEST

static int keep_value(void *ud, const struct tp_sample *s, struct err *e)
{
    (void)e;
    *(double *)ud = s->value;
    return 0;
}

/* Whatever value parses renders back in the text format (found by
 * fuzz_textparse: textfmt_value cast 3.38e84 to an integer, undefined). */
START_TEST(test_values_render)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"x 3.3812454E84\n", "3.3812454e+84"},
        {"x -1e300\n", "-1e+300"},
        {"x 9.3e18\n", "9.3e+18"},
        {"x 4.38124544E8\n", "438124544"},
        {"x 1e400\n", "+Inf"},
        {"x -Inf\n", "-Inf"},
        {"x NaN\n", "NaN"},
        {"x 0.0025\n", "0.0025"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double v = 0;
        struct err e;
        ck_assert_int_eq(tp_parse(cases[i].in, strlen(cases[i].in), NULL, keep_value, &v, &e), 0);
        char out[64];
        textfmt_value(v, out, sizeof out);
        ck_assert_str_eq(out, cases[i].out);
    }
}
END_TEST

static Suite *textparse_suite(void)
{
    Suite *s = suite_create("textparse");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_basic_families);
    tcase_add_test(tc, test_histogram_summary);
    tcase_add_test(tc, test_escapes);
    tcase_add_test(tc, test_values_timestamps);
    tcase_add_test(tc, test_errors_name_the_line);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_callback_stops);
    tcase_add_test(tc, test_nul_byte);
    tcase_add_test(tc, test_values_render);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run(textparse_suite(), "textparse");
}
