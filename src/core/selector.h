/* selector: PromQL series selectors (`{name="v", name!="v", name=~"re",
 * name!~"re"}`; matchers ANDed, several selectors ORed; `metric{...}` or a
 * bare metric name adds __name__="metric"; regexes are POSIX ERE anchored
 * at both ends as in PromQL; an absent label has the value ""). Parsed
 * when the configuration is loaded (check-config names the character of a
 * mistake) and matched by delivery/relabel.c against plain label pairs:
 * nothing here knows the series buffer.
 *
 * Ownership: relabel_selectors_parse() allocates *out, freed with
 * relabel_selectors_free() (NULL is fine). */
#ifndef NS_SELECTOR_H
#define NS_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

struct relabel_selectors;
/* Parses one or more selectors. -1 with e->msg saying what and at which
 * character (1-based) on error. */
int relabel_selectors_parse(const char *text, struct relabel_selectors **out, struct err *e);
void relabel_selectors_free(struct relabel_selectors *s);
/* `labels`: name,value pairs (n pairs), __name__ included. */
bool relabel_selectors_match(const struct relabel_selectors *s, const char *const *labels,
                             size_t n);

#endif
