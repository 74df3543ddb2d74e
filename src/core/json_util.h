/* json_util: typed access to JSON answers, with errors that say where.
 *
 * A struct jdec walks one answer (a REST endpoint's body). It knows what
 * the answer is ("GET /service/rest/v1/blobstores") and the JSON path of
 * the value being read ("[1].totalSizeInBytes"), so every complaint reads
 *
 *   GET /service/rest/v1/blobstores: [1].totalSizeInBytes: expected a number, got string
 *
 * Getters take the object holding `key`; with key == NULL they check
 * `parent` itself (the top level, or an array element whose index was
 * pushed with jd_push_index()). They return
 *    1  the value is there and of the wanted type (*out set),
 *    0  it is absent (JD_OPTIONAL) or null (JD_NULLABLE): *out untouched,
 *   -1  anything else, with e->msg naming endpoint, path and what was found.
 * Strings returned point into the json_object and live as long as it does.
 * jdec owns nothing; it needs no cleanup. */
#ifndef NS_JSON_UTIL_H
#define NS_JSON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "util.h"

#define JD_REQUIRED 0u
#define JD_OPTIONAL 1u /* the key may be missing */
#define JD_NULLABLE 2u /* the value may be null */
#define JD_MAYBE    (JD_OPTIONAL | JD_NULLABLE)

struct jdec {
    const char *what; /* e.g. "GET /service/rest/v1/tasks (page 2)"; not owned */
    struct err *e;
    char path[256];
    size_t len;
};

void jd_init(struct jdec *d, const char *what, struct err *e);

/* Path bookkeeping: push a key or an index, later restore with jd_pop(mark). */
size_t jd_push_key(struct jdec *d, const char *key);
size_t jd_push_index(struct jdec *d, size_t i);
void jd_pop(struct jdec *d, size_t mark);

/* Sets e->msg = "WHAT: PATH[.key]: <message>" and returns -1. */
int jd_fail(struct jdec *d, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int jd_object(struct jdec *d, json_object *parent, const char *key, unsigned fl, json_object **out);
/* An array and its length. */
int jd_array(struct jdec *d, json_object *parent, const char *key, unsigned fl, json_object **out,
             size_t *n);
int jd_string(struct jdec *d, json_object *parent, const char *key, unsigned fl, const char **out);
/* A JSON integer (or a number with no fractional part that fits int64). */
int jd_int64(struct jdec *d, json_object *parent, const char *key, unsigned fl, int64_t *out);
/* Any JSON number. */
int jd_number(struct jdec *d, json_object *parent, const char *key, unsigned fl, double *out);
int jd_bool(struct jdec *d, json_object *parent, const char *key, unsigned fl, bool *out);
/* An ISO-8601 date-time string ("2024-01-01T01:00:00.101+00:00", "...Z"),
 * as milliseconds since the epoch. */
int jd_time_ms(struct jdec *d, json_object *parent, const char *key, unsigned fl, int64_t *out);

/* "2024-01-01T01:00:00.101+00:00" -> epoch ms. Returns 0 or -1. */
int parse_iso8601_ms(const char *s, int64_t *out);

/* Bounds of jd_parse: json-c turns 3 bytes ("{},") into some 800 bytes
 * of objects, so a hostile answer of a few MiB would take gigabytes. A
 * body is refused before parsing when it nests deeper than JD_MAX_DEPTH or
 * when its estimated parsed size (its bytes plus what json-c allocates per
 * object, array, value and key) passes JD_MAX_PARSE_COST. Nexus's
 * /v1/repositorySettings of 2000 repositories (1 MB) is estimated at 13
 * MiB: the limit admits some 10000 repositories. */
#define JD_MAX_DEPTH      32
#define JD_MAX_PARSE_COST (64u << 20)

/* Parses an HTTP answer body as JSON. Returns 0 with *out owned by the
 * caller (json_object_put), or -1 with e->msg = "WHAT: answer is not JSON
 * (...)" naming the content type and the first bytes of the body, or
 * "WHAT: answer refused: ..." past the bounds above. */
int jd_parse(const char *what, const char *body, size_t len, const char *content_type,
             json_object **out, struct err *e);

/* The JSON type as used in messages: "null", "boolean", "number", "string",
 * "object", "array". */
const char *jd_type_name(json_object *v);

#endif
