#include "cleanup_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *keep_reason_name(enum keep_reason r)
{
    static const char *n[] = {
        "delete",    "protected_tag", "protected_pattern",        "protected_regex",
        "keep_last", "unknown_date",  "younger_than_days_to_keep"};
    return (unsigned)r < NS_ARRAY_LEN(n) ? n[r] : "?";
}

int cleanup_rules_init(struct cleanup_rules *r, const struct cfg_cleanup *c, struct err *e)
{
    memset(r, 0, sizeof *r);
    r->days_to_keep = c->days_to_keep;
    r->protected_tags = &c->protected_tags;
    r->protected_patterns = &c->protected_patterns;
    r->protected_regex = c->protected_regex ? c->protected_regex : "";
    r->keep_last = c->keep_last;
    r->keep_unknown_dates = c->keep_unknown_dates;
    if (r->protected_regex[0]) {
        if (regcomp(&r->re, r->protected_regex, REG_EXTENDED | REG_NOSUB) != 0) {
            err_set(e, "[cleanup] protected_regex: bad regular expression \"%s\"",
                    r->protected_regex);
            return -1;
        }
        r->has_re = true;
    }
    return 0;
}

void cleanup_rules_free(struct cleanup_rules *r)
{
    if (r && r->has_re) {
        regfree(&r->re);
        r->has_re = false;
    }
}

enum keep_reason cleanup_decide(const struct cleanup_rules *r, const char *tag, int64_t created_ms,
                                size_t rank_newest, int64_t now_ms)
{
    for (size_t i = 0; r->protected_tags && i < r->protected_tags->n; i++)
        if (strcmp(tag, r->protected_tags->v[i]) == 0)
            return KEEP_PROTECTED_TAG;
    for (size_t i = 0; r->protected_patterns && i < r->protected_patterns->n; i++)
        if (strstr(tag, r->protected_patterns->v[i]))
            return KEEP_PROTECTED_PATTERN;
    if (r->has_re && regexec(&r->re, tag, 0, NULL, 0) == 0)
        return KEEP_PROTECTED_REGEX;
    if (r->keep_last > 0 && rank_newest < (size_t)r->keep_last)
        return KEEP_LAST_N;
    if (created_ms <= 0)
        return r->keep_unknown_dates ? KEEP_UNKNOWN_DATE : KEEP_NONE;
    if (now_ms - created_ms < r->days_to_keep * 86400000LL)
        return KEEP_YOUNG;
    return KEEP_NONE;
}

bool cleanup_rules_need_rank(const struct cleanup_rules *r)
{
    return r->keep_last > 0;
}

static int add_param(char ***params, size_t *n, const char *v)
{
    char **np = realloc(*params, (*n + 1) * sizeof *np);
    if (!np)
        return -1;
    *params = np;
    if (!(np[*n] = strdup(v)))
        return -1;
    (*n)++;
    return 0;
}

int cleanup_rules_sql(const struct cleanup_rules *r, const char *tag_col, const char *created_col,
                      const char *rank_col, int first_param, struct buf *sql, char ***params,
                      size_t *n_params)
{
    int p = first_param;
    if (buf_puts(sql, "(TRUE") < 0)
        return -1;
    for (size_t i = 0; r->protected_tags && i < r->protected_tags->n; i++) {
        if (buf_printf(sql, " AND %s <> $%d", tag_col, p++) < 0 ||
            add_param(params, n_params, r->protected_tags->v[i]) < 0)
            return -1;
    }
    for (size_t i = 0; r->protected_patterns && i < r->protected_patterns->n; i++) {
        if (buf_printf(sql, " AND strpos(%s, $%d) = 0", tag_col, p++) < 0 ||
            add_param(params, n_params, r->protected_patterns->v[i]) < 0)
            return -1;
    }
    if (r->has_re) {
        /* PostgreSQL's ~ is a superset of POSIX ERE for the usual patterns */
        if (buf_printf(sql, " AND %s !~ $%d", tag_col, p++) < 0 ||
            add_param(params, n_params, r->protected_regex) < 0)
            return -1;
    }
    if (r->keep_last > 0 &&
        buf_printf(sql, " AND %s >= %lld", rank_col, (long long)r->keep_last) < 0)
        return -1;
    if (created_col) {
        if (buf_printf(sql,
                       " AND (%s IS NOT NULL AND %s > 'epoch'::timestamptz OR %s)"
                       " AND (%s IS NULL OR %s <= (SELECT now() - make_interval(days => %lld)))",
                       created_col, created_col, r->keep_unknown_dates ? "FALSE" : "TRUE",
                       created_col, created_col, (long long)r->days_to_keep) < 0)
            return -1;
    }
    return buf_puts(sql, ")");
}
