/* progress.h: the line format (counts, human bytes, rate, ETA) and the
 * plain (non-terminal) form's policy. The terminal form is tested through
 * the binary under `script` (tests/integration/test_progress.sh). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "progress.h"
#include "testlib.h"

/* each formatter against a table of (input, expected) */
static const struct fmt_case {
    void (*fn)(double, char *, size_t);
    double in;
    const char *out;
} fmt_cases[] = {
    {progress_fmt_bytes, 0, "0 B"},
    {progress_fmt_bytes, 1023, "1023 B"},
    {progress_fmt_bytes, 1536, "1.50 KiB"},
    {progress_fmt_bytes, 12.5 * 1024 * 1024, "12.5 MiB"},
    {progress_fmt_bytes, 300.0 * 1024 * 1024 * 1024, "300 GiB"},
    {progress_fmt_duration, 0, "0s"},
    {progress_fmt_duration, 7.4, "7s"},
    {progress_fmt_duration, 185, "3m05s"},
    {progress_fmt_duration, 3720, "1h02m"},
    {progress_fmt_duration, 3 * 86400 + 4 * 3600 + 59, "3d04h"},
    {progress_fmt_duration, -1, "-"},
};

START_TEST(test_units)
{
    char b[32];
    for (size_t i = 0; i < sizeof fmt_cases / sizeof fmt_cases[0]; i++) {
        fmt_cases[i].fn(fmt_cases[i].in, b, sizeof b);
        ck_assert_str_eq(b, fmt_cases[i].out);
    }
}
END_TEST

START_TEST(test_line)
{
    char l[256];
    /* 10 of 40 in 2 s: 5/s, 30 left -> 6 s */
    progress_fmt_line(l, sizeof l, "spool replay", "batches", 10, 40, 2.0, NULL);
    ck_assert_str_eq(l, "spool replay: 10/40 batches (25%), 5.0/s, ETA 6s");
    /* unknown total: count and rate only */
    progress_fmt_line(l, sizeof l, "spool import", "segments", 300, 0, 2.0, "2 skipped");
    ck_assert_str_eq(l, "spool import: 300 segments, 150/s, 2 skipped");
    /* nothing done yet: no rate, no ETA */
    progress_fmt_line(l, sizeof l, "cleanup", "tags", 0, 9, 0.0, NULL);
    ck_assert_str_eq(l, "cleanup: 0/9 tags (0%)");
    /* bytes: human units, no unit word */
    progress_fmt_line(l, sizeof l, "skopeo copy", "bytes", 3u << 20, 12u << 20, 3.0, NULL);
    ck_assert_str_eq(l, "skopeo copy: 3.00 MiB/12.0 MiB (25%), 1.00 MiB/s, ETA 9s");
    /* done: 100%, no ETA */
    progress_fmt_line(l, sizeof l, "x", "jobs", 4, 4, 2.0, NULL);
    ck_assert_str_eq(l, "x: 4/4 jobs (100%), 2.0/s");
    /* cut, never overflowing */
    char small[16];
    progress_fmt_line(small, sizeof small, "a long name here", "jobs", 4, 4, 2.0, NULL);
    ck_assert(strlen(small) > 0 && strlen(small) < sizeof small);
}
END_TEST

static char *run_plain(const char *interval, int updates)
{
    setenv("NS_PROGRESS_INTERVAL", interval, 1);
    unsetenv("NS_PROGRESS");
    char *data = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&data, &len);
    ck_assert_ptr_nonnull(f);
    struct progress *p = progress_new(f, "job", "items", (uint64_t)updates);
    ck_assert_ptr_nonnull(p);
    for (int i = 1; i <= updates; i++)
        progress_update(p, (uint64_t)i, NULL);
    progress_done(p, "all good");
    fclose(f);
    return data;
}

START_TEST(test_plain_every_update)
{
    char *s = run_plain("0", 3);
    ck_assert_ptr_null(strchr(s, '\r'));
    ck_assert_ptr_null(strchr(s, '\033'));
    ck_assert_ptr_nonnull(strstr(s, "job: 1/3 items (33%)"));
    ck_assert_ptr_nonnull(strstr(s, "job: 2/3 items (66%)"));
    ck_assert_ptr_nonnull(strstr(s, "\njob: 3/3 items in "));
    ck_assert_ptr_nonnull(strstr(s, "; all good\n"));
    free(s);
}
END_TEST

START_TEST(test_plain_quiet_when_short)
{
    /* a run shorter than the interval prints nothing, not even the end */
    char *s = run_plain("3600", 50);
    ck_assert_str_eq(s, "");
    free(s);
}
END_TEST

START_TEST(test_off_and_null)
{
    setenv("NS_PROGRESS", "off", 1);
    ck_assert_ptr_null(progress_new(stderr, "x", "y", 1));
    unsetenv("NS_PROGRESS");
    ck_assert_ptr_null(progress_new(NULL, "x", "y", 1));
    progress_update(NULL, 1, NULL); /* callers need no "if" */
    progress_set_total(NULL, 3);
    progress_done(NULL, NULL);
    progress_free(NULL);
}
END_TEST

static Suite *progress_suite(void)
{
    Suite *s = suite_create("progress");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_units);
    tcase_add_test(tc, test_line);
    tcase_add_test(tc, test_plain_every_update);
    tcase_add_test(tc, test_plain_quiet_when_short);
    tcase_add_test(tc, test_off_and_null);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run(progress_suite(), "progress");
}
