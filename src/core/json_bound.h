/* json_bound: parse JSON from outside with bounds on what json-c would
 * allocate (json-c turns 3 bytes "[]," into some 150-800 bytes, so a
 * hostile text of a few MiB takes gigabytes).
 *
 * json_parse_cost() is one pass over the text outside strings: nesting
 * depth and an over-estimate of the parsed size. json_parse_bounded()
 * refuses a text deeper than JSON_MAX_DEPTH or costlier than `max_cost`
 * before json-c sees it. Needs only json-c: libnexusskopeo links it too.
 *
 * Ownership: json_parse_bounded() returns a new object (json_object_put),
 * or NULL with `why` saying what was wrong. */
#ifndef NS_JSON_BOUND_H
#define NS_JSON_BOUND_H

#include <stddef.h>

#include <json-c/json.h>

#define JSON_MAX_DEPTH 32

/* The estimate in bytes, or SIZE_MAX when deeper than JSON_MAX_DEPTH;
 * counts in the out parameters (any may be NULL). */
size_t json_parse_cost(const char *p, size_t len, size_t *objects, size_t *arrays,
                       size_t *values, unsigned *depth);

json_object *json_parse_bounded(const char *p, size_t len, size_t max_cost, char *why,
                                size_t why_len);

#endif
