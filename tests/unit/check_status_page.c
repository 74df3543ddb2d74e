/* Unit tests for status_page.c: HTML escaping of outside text (receiver
 * answers, Nexus errors), and a page rendered from a hand-made scheduler
 * (no sender) and a state_dir with a recorded cleanup run and skopeo
 * operations. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "collector.h"
#include "config.h"
#include "nsconfig.h"
#include "scheduler.h"
#include "status_page.h"
#include "testlib.h"
#include "util.h"

/* NAME under the program's directory (testlib's basedir) */
static void write_file(const char *name, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", basedir, name);
    tl_write_file(path, text, 0600);
}

START_TEST(escapes_markup_and_control_bytes)
{
    struct buf b;
    buf_init(&b, 0);
    ck_assert_int_eq(status_html_escape(&b, "<script>alert('x')</script> & \"q\"\x01\x1b"), 0);
    ck_assert_str_eq(buf_cstr(&b), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; "
                                   "&quot;q&quot;\xef\xbf\xbd\xef\xbf\xbd");
    buf_free(&b);
    /* a full buffer is an error, not a silent cut */
    buf_init(&b, 8);
    ck_assert_int_eq(status_html_escape(&b, "<<<"), -1);
    buf_free(&b);
}
END_TEST

static const struct collector fake_up = {.name = "fake_up"};
static const struct collector fake_down = {.name = "fake<down>"};

START_TEST(page_shows_collectors_runs_and_identity)
{
    char conf[PATH_MAX], text[1024];
    snprintf(conf, sizeof conf, "%s/s.conf", basedir);
    snprintf(text, sizeof text,
             "[shipper]\ninstance = page-host\nspool_dir = %s/spool\nstate_dir = %s\n", basedir,
             basedir);
    write_file("s.conf", text);
    write_file("cleanup.state", "runs success 2\nlast_run_ms 1700000000000\nlast_status success\n"
                                "last_scanned 31337\nlast_success_ms 1700000000000\n"
                                "last_du_freed -1\nlast_duration_s 2.5\n");
    write_file("skopeo-metrics.state", "ops inspect error 2\nlast inspect error 1700000060000\n");
    struct err e;
    struct config *cfg = config_load(conf, &e);
    ck_assert_msg(cfg != NULL, "%s", e.msg);
    struct coll_inst ci[2] = {
        {.c = &fake_up,
         .ready = true,
         .up = true,
         .has_run = true,
         .series = 42,
         .duration = 0.25,
         .last_ok_ms = 1700000000000},
        {.c = &fake_down, .ready = true, .up = false, .has_run = true, .failures = 3},
    };
    snprintf(ci[1].last_error, sizeof ci[1].last_error,
             "GET /x: HTTP 500: <html><script>alert(1)</script></html>");
    struct scheduler s = {.cfg = cfg, .ci = ci, .n = 2};
    struct status_page *p = status_page_new(&s, cfg, conf, 1700000000000, 1700000100000);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(strlen(p->html), p->len);
    const char *h = p->html;
    ck_assert_ptr_nonnull(strstr(h, "<!DOCTYPE html>"));
    ck_assert_ptr_nonnull(strstr(h, "page-host"));
    ck_assert_ptr_nonnull(strstr(h, PACKAGE_VERSION));
    ck_assert_ptr_nonnull(strstr(h, conf));
    ck_assert_ptr_nonnull(strstr(h, "No targets configured"));
    ck_assert_ptr_nonnull(strstr(h, "<td>fake_up</td>"));
    ck_assert_ptr_nonnull(strstr(h, "<td>fake&lt;down&gt;</td>"));
    ck_assert_ptr_nonnull(strstr(h, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    ck_assert_ptr_null(strstr(h, "<script"));
    ck_assert_ptr_nonnull(strstr(h, "31337"));
    ck_assert_ptr_nonnull(strstr(h, "2023-11-14T22:13:20Z")); /* cleanup run, 1700000000 */
    ck_assert_ptr_nonnull(strstr(h, "<td>inspect</td>"));
    ck_assert_ptr_nonnull(strstr(h, "2023-11-14T22:14:20Z")); /* skopeo error */
    ck_assert_ptr_null(strstr(h, "http://"));                 /* no external asset */
    /* no sender: nothing delivers, the delivery age is not checked */
    ck_assert_uint_eq(p->delivery.targets, 0);
    status_page_free(p);
    config_free(cfg);
}
END_TEST

START_TEST(page_without_state)
{
    char conf[PATH_MAX], text[1024];
    snprintf(conf, sizeof conf, "%s/s2.conf", basedir);
    snprintf(text, sizeof text, "[shipper]\nspool_dir = %s/spool2\nstate_dir = %s/nothing\n",
             basedir, basedir);
    write_file("s2.conf", text);
    struct err e;
    struct config *cfg = config_load(conf, &e);
    ck_assert_msg(cfg != NULL, "%s", e.msg);
    struct scheduler s = {.cfg = cfg};
    struct status_page *p = status_page_new(&s, cfg, conf, 1, 2);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(strstr(p->html, "No cleanup run recorded"));
    ck_assert_ptr_nonnull(strstr(p->html, "No skopeo operation recorded"));
    ck_assert_ptr_nonnull(strstr(p->html, "No collectors enabled"));
    status_page_free(p);
    config_free(cfg);
}
END_TEST

static Suite *status_page_suite(void)
{
    Suite *su = suite_create("status_page");
    TCase *tc = tcase_create("page");
    tcase_add_test(tc, escapes_markup_and_control_bytes);
    tcase_add_test(tc, page_shows_collectors_runs_and_identity);
    tcase_add_test(tc, page_without_state);
    suite_add_tcase(su, tc);
    return su;
}

int main(void)
{
    return tl_run(status_page_suite(), "page");
}
