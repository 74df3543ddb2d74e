/* Unit tests for cleanup_rules.c: the C decision (cleanup_decide), the SQL
 * rendering (cleanup_rules_sql: config values only as parameters), and —
 * when NS_TEST_PGCONN names a PostgreSQL (tests/integration/test_db.sh
 * sets it) — the proof that the two agree: the same tag set under several
 * rule sets is decided in C and filtered by the rendered predicate in the
 * real server, through the db module's read-only session, and the
 * deletable sets must be identical. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup_rules.h"
#include "db.h"
#include "util.h"
#include "testlib.h"

#define DAY  86400000LL
#define HOUR 3600000LL

static char *tags_latest[] = {"latest", "stable"};
static char *pat_release[] = {"release", "develop"};
static char *tags_evil[] = {"x'); DROP TABLE t; --"};

struct rules_case {
    const char *name;
    struct cfg_cleanup c;
};

static struct rules_case cases[] = {
    {"defaults-ish",
     {.days_to_keep = 30, .protected_tags = {tags_latest, 2}, .keep_unknown_dates = true}},
    {"patterns+keep_last",
     {.days_to_keep = 90,
      .protected_tags = {tags_latest, 1},
      .protected_patterns = {pat_release, 2},
      .keep_last = 3,
      .keep_unknown_dates = false}},
    {"regex",
     {.days_to_keep = 10,
      .protected_regex = "^v[0-9]+\\.",
      .keep_last = 1,
      .keep_unknown_dates = true}},
    {"nothing-protected", {.days_to_keep = 0, .keep_unknown_dates = false}},
    {"quote-in-tag",
     {.days_to_keep = 1, .protected_tags = {tags_evil, 1}, .protected_patterns = {pat_release, 1}}},
};

START_TEST(test_decide_order)
{
    struct cleanup_rules r;
    struct err e;
    ck_assert_int_eq(cleanup_rules_init(&r, &cases[1].c, &e), 0);
    int64_t now = 1800000000000LL;
    ck_assert_int_eq(cleanup_decide(&r, "latest", now - 400 * DAY, 9, now), KEEP_PROTECTED_TAG);
    ck_assert_int_eq(cleanup_decide(&r, "my-release-7", now - 400 * DAY, 9, now),
                     KEEP_PROTECTED_PATTERN);
    ck_assert_int_eq(cleanup_decide(&r, "v1.2", now - 400 * DAY, 2, now), KEEP_LAST_N);
    ck_assert_int_eq(cleanup_decide(&r, "v1.2", now - 10 * DAY, 5, now), KEEP_YOUNG);
    ck_assert_int_eq(cleanup_decide(&r, "v1.2", 0, 5, now), KEEP_NONE); /* unknown, not kept */
    ck_assert_int_eq(cleanup_decide(&r, "v1.2", now - 91 * DAY, 5, now), KEEP_NONE);
    cleanup_rules_free(&r);
    ck_assert_int_eq(cleanup_rules_init(&r, &cases[2].c, &e), 0);
    ck_assert_int_eq(cleanup_decide(&r, "v3.1", now - 400 * DAY, 5, now), KEEP_PROTECTED_REGEX);
    ck_assert_int_eq(cleanup_decide(&r, "x", -1, 5, now), KEEP_UNKNOWN_DATE);
    cleanup_rules_free(&r);
}
END_TEST

START_TEST(test_sql_params_only)
{
    struct cleanup_rules r;
    struct err e;
    ck_assert_int_eq(cleanup_rules_init(&r, &cases[4].c, &e), 0);
    struct buf sql;
    buf_init(&sql, 0);
    char **params = NULL;
    size_t n = 0;
    ck_assert_int_eq(cleanup_rules_sql(&r, "t.tag", "t.created", "t.rnk", 5, &sql, &params, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(params[0], tags_evil[0]);
    ck_assert_str_eq(params[1], "release");
    ck_assert_ptr_null(strstr(sql.data, "DROP"));
    ck_assert_ptr_null(strstr(sql.data, "release"));
    ck_assert_ptr_nonnull(strstr(sql.data, "$5"));
    ck_assert_ptr_nonnull(strstr(sql.data, "$6"));
    strv_free(params, n);
    buf_free(&sql);
    cleanup_rules_free(&r);
}
END_TEST

/* ---- agreement with PostgreSQL ---- */

struct tagrow {
    const char *tag;
    int64_t created_ms; /* <= 0 unknown; -2 = SQL NULL */
    size_t rank;
};

static const char *tag_names[] = {"latest",    "stable",     "v1.0",      "v2.13",
                                  "release-3", "my-develop", "feature-x", "x'); DROP TABLE t; --",
                                  "1.0",       "develop",    "v10.",      "nightly",
                                  "",          "Release"};

static int collect_ids(void *ud, const PGresult *row, struct err *e)
{
    (void)e;
    struct buf *b = ud;
    return buf_printf(b, "%s,", PQgetvalue(row, 0, 0));
}

/* array literal element: "..." with \ and " escaped */
static int arr_str(struct buf *b, const char *s)
{
    if (buf_puts(b, "\"") < 0)
        return -1;
    for (; *s; s++)
        if ((*s == '"' || *s == '\\') ? buf_printf(b, "\\%c", *s) < 0 : buf_append(b, s, 1) < 0)
            return -1;
    return buf_puts(b, "\"");
}

START_TEST(test_agrees_with_postgres)
{
    const char *conn = getenv("NS_TEST_PGCONN");
    if (!conn || !*conn) {
        fprintf(stderr, "check_cleanup_rules: NS_TEST_PGCONN not set; C/SQL agreement skipped\n");
        return;
    }
    struct cfg_database dc = {
        .conninfo = (char *)conn, .statement_timeout_ms = 10000, .connect_timeout_ms = 5000};
    struct err e = {{0}};
    struct db *d = db_new(&dc, &e);
    ck_assert_ptr_nonnull(d);

    /* the tag set: every name × dates around every boundary (an hour off,
     * so the server's now() may lag ours) × ranks 0..4 */
    int64_t now = now_ms();
    static const int64_t ages[] = {-1,
                                   -2,
                                   0,
                                   1 * HOUR,
                                   1 * DAY - HOUR,
                                   1 * DAY + HOUR,
                                   10 * DAY - HOUR,
                                   10 * DAY + HOUR,
                                   30 * DAY - HOUR,
                                   30 * DAY + HOUR,
                                   90 * DAY + HOUR,
                                   400 * DAY};
    size_t nt = NS_ARRAY_LEN(tag_names) * NS_ARRAY_LEN(ages) * 5;
    struct tagrow *t = calloc(nt, sizeof *t);
    ck_assert_ptr_nonnull(t);
    size_t k = 0;
    for (size_t i = 0; i < NS_ARRAY_LEN(tag_names); i++)
        for (size_t a = 0; a < NS_ARRAY_LEN(ages); a++)
            for (size_t r = 0; r < 5; r++) {
                t[k].tag = tag_names[i];
                t[k].created_ms = ages[a] == -1 ? 0 : ages[a] == -2 ? -2 : now - ages[a];
                t[k].rank = r;
                k++;
            }
    struct buf ids, tags, created, ranks;
    buf_init(&ids, 0), buf_init(&tags, 0), buf_init(&created, 0), buf_init(&ranks, 0);
    buf_puts(&ids, "{"), buf_puts(&tags, "{"), buf_puts(&created, "{"), buf_puts(&ranks, "{");
    for (size_t i = 0; i < nt; i++) {
        const char *sep = i ? "," : "";
        ck_assert_int_eq(buf_printf(&ids, "%s%zu", sep, i), 0);
        ck_assert_int_eq(buf_puts(&tags, sep), 0);
        ck_assert_int_eq(arr_str(&tags, t[i].tag), 0);
        if (t[i].created_ms == -2)
            ck_assert_int_eq(buf_printf(&created, "%sNULL", sep), 0);
        else
            ck_assert_int_eq(buf_printf(&created, "%s%lld.%03lld", sep,
                                        (long long)(t[i].created_ms / 1000),
                                        (long long)(t[i].created_ms % 1000)),
                             0);
        ck_assert_int_eq(buf_printf(&ranks, "%s%zu", sep, t[i].rank), 0);
    }
    buf_puts(&ids, "}"), buf_puts(&tags, "}"), buf_puts(&created, "}"), buf_puts(&ranks, "}");

    size_t total_deletable = 0;
    for (size_t c = 0; c < NS_ARRAY_LEN(cases); c++) {
        struct cleanup_rules r;
        ck_assert_int_eq(cleanup_rules_init(&r, &cases[c].c, &e), 0);
        struct buf sql, want, got;
        buf_init(&sql, 0), buf_init(&want, 0), buf_init(&got, 0);
        char **params = NULL;
        size_t np = 0;
        ck_assert_int_eq(buf_puts(&sql, "SELECT t.i FROM unnest($1::int[], $2::text[],"
                                        " $3::float8[], $4::int[]) AS u(i, tag, c, rnk),"
                                        " LATERAL (SELECT u.i, u.tag, to_timestamp(u.c) AS created,"
                                        " u.rnk) t WHERE "),
                         0);
        ck_assert_int_eq(
            cleanup_rules_sql(&r, "t.tag", "t.created", "t.rnk", 5, &sql, &params, &np), 0);
        ck_assert_int_eq(buf_puts(&sql, " ORDER BY t.i"), 0);
        const char **pv = calloc(4 + np, sizeof *pv);
        ck_assert_ptr_nonnull(pv);
        pv[0] = ids.data, pv[1] = tags.data, pv[2] = created.data, pv[3] = ranks.data;
        for (size_t i = 0; i < np; i++)
            pv[4 + i] = params[i];
        long n = db_query(d, cases[c].name, sql.data, 4 + np, pv, nt, mono_ms() + 10000,
                          collect_ids, &got, &e);
        ck_assert_msg(n >= 0, "%s: %s", cases[c].name, e.msg);
        int64_t t_now = now_ms();
        for (size_t i = 0; i < nt; i++) {
            int64_t cm = t[i].created_ms == -2 ? 0 : t[i].created_ms;
            if (cleanup_decide(&r, t[i].tag, cm, t[i].rank, t_now) == KEEP_NONE)
                buf_printf(&want, "%zu,", i);
        }
        ck_assert_msg(strcmp(buf_cstr(&want), buf_cstr(&got)) == 0,
                      "rules %s: C deletes [%s], SQL deletes [%s]", cases[c].name, buf_cstr(&want),
                      buf_cstr(&got));
        total_deletable += (size_t)n;
        fprintf(stderr, "check_cleanup_rules: rules %s: %ld of %zu tags deletable in C and SQL\n",
                cases[c].name, n, nt);
        free(pv);
        strv_free(params, np);
        buf_free(&sql), buf_free(&want), buf_free(&got);
        cleanup_rules_free(&r);
    }
    ck_assert_uint_gt(total_deletable, 0);
    buf_free(&ids), buf_free(&tags), buf_free(&created), buf_free(&ranks);
    free(t);
    db_free(d);
}
END_TEST

static Suite *rules_suite(void)
{
    Suite *s = suite_create("cleanup_rules");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_decide_order);
    tcase_add_test(tc, test_sql_params_only);
    tcase_add_test(tc, test_agrees_with_postgres);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run(rules_suite(), "cleanup_rules");
}
