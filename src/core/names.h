/* names: the Prometheus name grammar, shared by the configuration
 * (external_labels, label-name keys), the series buffer and relabelling.
 *
 * metric_name_valid: [a-zA-Z_:][a-zA-Z0-9_:]*; label_name_valid:
 * [a-zA-Z_][a-zA-Z0-9_]*. NULL and "" are invalid. Pure functions, no
 * allocation; inline because the series buffer checks every new family
 * name on its hot path. */
#ifndef NS_NAMES_H
#define NS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

static inline bool names_char_ok(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (colon && c == ':')
        return true;
    return !first && c >= '0' && c <= '9';
}

/* The whole of s is a name; colon: metric names allow ':'. */
static inline bool names_valid(const char *s, bool colon)
{
    if (!s || !*s)
        return false;
    for (size_t i = 0; s[i]; i++)
        if (!names_char_ok(s[i], i == 0, colon))
            return false;
    return true;
}

static inline bool metric_name_valid(const char *s)
{
    return names_valid(s, true);
}

static inline bool label_name_valid(const char *s)
{
    return names_valid(s, false);
}

#endif
