/* Unit tests for url.c: the Link-header rel="next" parser (cleanup's
 * registry listing once took the first <...> of the header even when
 * rel="next" belonged to another entry), the curl_url()-based splitter and
 * origin, and url_escape. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"
#include "testlib.h"

START_TEST(test_link_next)
{
    char out[256];
    /* rel="next" on the only entry */
    ck_assert(link_next("</v2/_catalog?n=2&last=b>; rel=\"next\"", out, sizeof out));
    ck_assert_str_eq(out, "/v2/_catalog?n=2&last=b");
    /* rel="next" belongs to the second entry: the first <...> is "prev" */
    ck_assert(link_next("<http://r:5000/v2/_catalog?n=2&last=a>; rel=\"prev\", "
                        "<http://r:5000/v2/_catalog?n=2&last=c>; rel=\"next\"",
                        out, sizeof out));
    ck_assert_str_eq(out, "http://r:5000/v2/_catalog?n=2&last=c");
    /* GitLab's four entries */
    ck_assert(link_next("<https://g/api/v4/projects?page=1>; rel=\"first\", "
                        "<https://g/api/v4/projects?page=3>; rel=\"next\", "
                        "<https://g/api/v4/projects?page=9>; rel=\"last\"",
                        out, sizeof out));
    ck_assert_str_eq(out, "https://g/api/v4/projects?page=3");
    /* no next entry (the last page), or no Link at all */
    ck_assert(!link_next("<https://g/p?page=1>; rel=\"first\", <https://g/p?page=9>; rel=\"last\"",
                         out, sizeof out));
    ck_assert(!link_next("", out, sizeof out));
    ck_assert(!link_next("rel=\"next\"", out, sizeof out));
    /* a target that does not fit is refused, never cut short */
    ck_assert(!link_next("</v2/_catalog?last=abcdef>; rel=\"next\"", out, 10));
}
END_TEST

START_TEST(test_split)
{
    char host[64];
    bool tls = true;
    int port = 0;
    ck_assert_int_eq(url_split("http://nexus.local:8081/x", &tls, host, sizeof host, &port), 0);
    ck_assert(!tls);
    ck_assert_str_eq(host, "nexus.local");
    ck_assert_int_eq(port, 8081);
    ck_assert_int_eq(url_split("HTTPS://u:p@Example.org/a?b#c", &tls, host, sizeof host, &port), 0);
    ck_assert(tls);
    ck_assert_str_eq(host, "Example.org");
    ck_assert_int_eq(port, 443);
    ck_assert_int_eq(url_split("http://[::1]:9/", &tls, host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 9);
    ck_assert_int_eq(url_split("http://[::1]", NULL, host, sizeof host, &port), 0);
    ck_assert_int_eq(port, 80);
    ck_assert_int_eq(url_split("nexus.local:8081", &tls, host, sizeof host, &port), -1);
    ck_assert_int_eq(url_split("http://h:99999/", &tls, host, sizeof host, &port), -1);
    ck_assert_int_eq(url_split("http://h:x/", &tls, host, sizeof host, &port), -1);
    ck_assert_int_eq(url_split("http://verylonghostname/", &tls, host, 5, &port), -1);
}
END_TEST

START_TEST(test_origin)
{
    char o[64];
    ck_assert_int_eq(url_origin("http://registry:5000/v2/_catalog?n=1", o, sizeof o), 0);
    ck_assert_str_eq(o, "http://registry:5000");
    ck_assert_int_eq(url_origin("HTTPS://u:p@h/v2/", o, sizeof o), 0);
    ck_assert_str_eq(o, "https://h");
    ck_assert_int_eq(url_origin("http://[::1]:5000", o, sizeof o), 0);
    ck_assert_str_eq(o, "http://[::1]:5000");
    ck_assert_int_eq(url_origin("/v2/_catalog", o, sizeof o), -1);
    ck_assert_str_eq(o, "");
    ck_assert_int_eq(url_origin("http://registry:5000/", o, 8), -1);
    ck_assert_str_eq(o, "");
}
END_TEST

START_TEST(test_escape)
{
    struct buf b;
    buf_init(&b, 0);
    ck_assert_int_eq(url_escape("a-b_c.d~e", &b), 0);
    ck_assert_int_eq(url_escape("/x y?&=%\xc3\xa9", &b), 0);
    ck_assert_int_eq(url_escape("", &b), 0);
    ck_assert_ptr_nonnull(buf_cstr(&b));
    ck_assert_str_eq(b.data, "a-b_c.d~e%2Fx%20y%3F%26%3D%25%C3%A9");
    buf_free(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("url");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_link_next);
    tcase_add_test(tc, test_split);
    tcase_add_test(tc, test_origin);
    tcase_add_test(tc, test_escape);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run(suite(), "url");
}
