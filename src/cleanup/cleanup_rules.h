/* cleanup_rules: the one definition of which registry tags a cleanup keeps.
 *
 * Used by `nexus-shipper cleanup` (decisions per tag) and by the database
 * collector's reclaimable-space estimate (which renders the same rules as
 * SQL with cleanup_rules_sql()), so the two never drift.
 *
 * Order (protection always wins): protected tag (exact) > protected
 * pattern (substring, as in the seed: `develop` keeps `my-develop-build`)
 * > protected regex > keep_last (the N newest tags of a repository) >
 * unknown or epoch-zero creation date (kept when keep_unknown_dates) >
 * younger than days_to_keep. A tag none of these keeps is deletable. */
#ifndef NS_CLEANUP_RULES_H
#define NS_CLEANUP_RULES_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "util.h"

struct cleanup_rules {
    int64_t days_to_keep;
    const struct strlist *protected_tags;     /* borrowed from the config */
    const struct strlist *protected_patterns; /* borrowed from the config */
    const char *protected_regex;              /* "" = none; borrowed */
    regex_t re;
    bool has_re;
    int64_t keep_last;
    bool keep_unknown_dates;
};

enum keep_reason {
    KEEP_NONE = 0, /* deletable */
    KEEP_PROTECTED_TAG,
    KEEP_PROTECTED_PATTERN,
    KEEP_PROTECTED_REGEX,
    KEEP_LAST_N,
    KEEP_UNKNOWN_DATE,
    KEEP_YOUNG,
};
const char *keep_reason_name(enum keep_reason r);

/* Fills rules from [cleanup]; -1 with e->msg on a bad regex. The config
 * must outlive the rules. Free with cleanup_rules_free(). */
int cleanup_rules_init(struct cleanup_rules *r, const struct cfg_cleanup *c, struct err *e);
void cleanup_rules_free(struct cleanup_rules *r);

/* Decides one tag. created_ms <= 0 means unknown. rank_newest is the tag's
 * position among its repository's tags ordered newest first (0 = newest). */
enum keep_reason cleanup_decide(const struct cleanup_rules *r, const char *tag, int64_t created_ms,
                                size_t rank_newest, int64_t now_ms);

/* Whether the rules look at a tag's rank (keep_last): a query that never
 * uses rank_col need not compute it. */
bool cleanup_rules_need_rank(const struct cleanup_rules *r);

/* Renders the rules as a SQL boolean expression that is true when a tag
 * is deletable, over the columns named by `tag_col` (text), `created_col`
 * (timestamptz, may be NULL) and `rank_col` (0-based rank, newest first).
 * String values are passed as parameters $first_param.. (appended to
 * params/n_params, malloc'd copies the caller frees with strv_free) so
 * nothing from the config is spliced into SQL text. */
int cleanup_rules_sql(const struct cleanup_rules *r, const char *tag_col, const char *created_col,
                      const char *rank_col, int first_param, struct buf *sql, char ***params,
                      size_t *n_params);

#endif
