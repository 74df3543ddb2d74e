/* Unit tests for log.c: line rendering (text and JSON, escapes, numbers,
 * the cap), URL redaction, the complaint and once tables. Rendering is
 * checked through log_render with a fixed time; JSON validity of the
 * awkward cases is checked by the integration test's Python parser too. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "testlib.h"

/* 2026-12-07T23:12:32.045Z */
#define T0 1796685152045LL

static char line[LOG_LINE_MAX];

START_TEST(test_text_and_json)
{
    struct log_field f[] = {LOG_S("target", "rw a"),  LOG_URL("url", "http://u:pw@h:9/w"),
                            LOG_I("status", 503),     LOG_S("error", "HTTP 503: busy"),
                            LOG_F("retry_in_s", 1.5), LOG_INZ("zero", 0),
                            LOG_S("missing", NULL)};
    log_render(line, sizeof line, false, T0, LOG_WARN, "send failed", f, 7);
    ck_assert_str_eq(line, "2026-12-07T23:12:32.045Z [WARNING] send failed: HTTP 503: busy "
                           "target=\"rw a\" url=http://REDACTED@h:9/w status=503 retry_in_s=1.5\n");
    log_render(line, sizeof line, true, T0, LOG_WARN, "send failed", f, 7);
    ck_assert_str_eq(line, "{\"time\":\"2026-12-07T23:12:32.045Z\",\"level\":\"warn\","
                           "\"msg\":\"send failed\",\"target\":\"rw a\","
                           "\"url\":\"http://REDACTED@h:9/w\",\"status\":503,"
                           "\"error\":\"HTTP 503: busy\",\"retry_in_s\":1.5}\n");
    log_render(line, sizeof line, true, T0, LOG_INFO, "plain", NULL, 0);
    ck_assert_str_eq(line, "{\"time\":\"2026-12-07T23:12:32.045Z\",\"level\":\"info\","
                           "\"msg\":\"plain\"}\n");
    struct log_field nan_f[] = {LOG_F("v", NAN)};
    log_render(line, sizeof line, true, T0, LOG_DEBUG, "n", nan_f, 1);
    ck_assert_ptr_nonnull(strstr(line, "\"v\":null}"));
    log_render(line, sizeof line, false, T0, LOG_DEBUG, "n", nan_f, 1);
    ck_assert_ptr_nonnull(strstr(line, "[DEBUG] n v=NaN\n"));
}
END_TEST

START_TEST(test_escapes)
{
    /* a receiver's answer cannot start a line of its own, nor break JSON */
    struct log_field f[] = {LOG_S("error", "a\nb\"c\\d\x01\xff\xc3\xa9"), LOG_S("k", "x=y \"q\"")};
    log_render(line, sizeof line, false, T0, LOG_ERROR, "m\r\n2026 fake", f, 2);
    ck_assert_str_eq(line, "2026-12-07T23:12:32.045Z [ERROR] m\\r\\n2026 fake: "
                           "a\\nb\"c\\d\\x01\\xff\xc3\xa9 k=\"x=y \\\"q\\\"\"\n");
    log_render(line, sizeof line, true, T0, LOG_ERROR, "m", f, 2);
    ck_assert_str_eq(line,
                     "{\"time\":\"2026-12-07T23:12:32.045Z\",\"level\":\"error\",\"msg\":\"m\","
                     "\"error\":\"a\\nb\\\"c\\\\d\\u0001\\ufffd\xc3\xa9\","
                     "\"k\":\"x=y \\\"q\\\"\"}\n");
    ck_assert_int_eq(strchr(line, '\n') - line, (long)strlen(line) - 1);
}
END_TEST

START_TEST(test_cap_keeps_the_line_whole)
{
    static char big[3 * LOG_LINE_MAX];
    memset(big, 'a', sizeof big - 1);
    big[100] = '"';
    struct log_field f[] = {LOG_S("error", big), LOG_I("after", 1)};
    for (int json = 0; json < 2; json++) {
        for (size_t cap = 100; cap <= sizeof line; cap += 997) {
            size_t n = log_render(line, cap, json, T0, LOG_WARN, big, f, 2);
            ck_assert_uint_lt(n, cap);
            ck_assert_uint_eq(n, strlen(line));
            ck_assert_int_eq(line[n - 1], '\n');
            if (json)
                ck_assert_int_eq(line[n - 2], '}');
        }
    }
    /* a cut JSON string is closed: ..."aaa"} */
    size_t n = log_render(line, 200, true, T0, LOG_WARN, big, f, 2);
    ck_assert_str_eq(line + n - 4, "a\"}\n");
}
END_TEST

START_TEST(test_redact_url)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"http://h:9090/api/v1/write", "http://h:9090/api/v1/write"},
        {"https://alice:TopSecret@h/w", "https://REDACTED@h/w"},
        {"https://alice@h/w", "https://REDACTED@h/w"},
        {"http://h/w?tenant=a&token=s3&X-Api-Key=k&page=2#frag",
         "http://h/w?tenant=a&token=REDACTED&X-Api-Key=REDACTED&page=2#frag"},
        {"http://h/w?password=x;key=y&monkey=z&token=",
         "http://h/w?password=REDACTED;key=REDACTED&monkey=z&token="},
        {"", ""},
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        log_redact_url(cases[i].in, out, sizeof out);
        ck_assert_str_eq(out, cases[i].out);
    }
    log_redact_url("http://alice:secret@host/", out, 12);
    ck_assert_str_eq(out, "http://REDA");
    log_redact_url(NULL, out, sizeof out);
    ck_assert_str_eq(out, "");
}
END_TEST

/* The complaint and once tables, through a registered logger writing to a
 * file (stderr quiet). */
START_TEST(test_complain_once)
{
    char path[] = "/tmp/check_log.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    struct logger lg;
    logger_init(&lg);
    lg.quiet_stderr = true;
    lg.complain_interval_ms = 0; /* every repeat is due */
    ck_assert_int_eq(logger_open_file(&lg, path), 0);
    log_use(&lg);
    logger_set_json(&lg, true);
    log_complain_event("k", "failing", LOG_S("target", "t"));
    log_complain_event("k", "failing", LOG_S("target", "t"));
    log_resolved_event("k", "works again", LOG_S("target", "t"));
    log_resolved("k", "not complaining: silent");
    log_once("o", LOG_WARN, "note %d", 1);
    log_once("o", LOG_WARN, "note %d", 2);
    log_debug("below the level");
    ck_assert_int_eq(logger_open_file(&lg, lg.file_path), 0); /* reopen: same path */
    log_info("after reopen");
    log_use(NULL);
    logger_close(&lg);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char got[4096];
    size_t n = fread(got, 1, sizeof got - 1, f);
    got[n] = '\0';
    fclose(f);
    unlink(path);
    const char *want[] = {"\"msg\":\"failing\",\"target\":\"t\"}",
                          "\"msg\":\"failing\",\"target\":\"t\",\"repeated\":0}",
                          "\"msg\":\"works again\",\"target\":\"t\"}", "\"msg\":\"note 1\"}",
                          "\"msg\":\"after reopen\"}"};
    const char *p = got;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *nl = strchr(p, '\n');
        ck_assert_ptr_nonnull(nl);
        ck_assert_msg(strstr(p, want[i]) && strstr(p, want[i]) < nl, "line %zu: %.*s", i,
                      (int)(nl - p), p);
        p = nl + 1;
    }
    ck_assert_str_eq(p, "");
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_text_and_json);
    tcase_add_test(tc, test_escapes);
    tcase_add_test(tc, test_cap_keeps_the_line_whole);
    tcase_add_test(tc, test_redact_url);
    tcase_add_test(tc, test_complain_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run(log_suite(), "log");
}
