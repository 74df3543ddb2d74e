/* cleanup_manifest: pure parsers of the registry's answers, for the
 * registry cleanup (cleanup.h) - no network, no state; fuzzed
 * (tests/fuzz/fuzz_registry.c).
 *
 * `what` names the answer in messages (its URL). Each parser returns 0, or
 * -1 with e->msg naming `what` and the offending field. What a parser
 * fills is owned by the caller: strings appended to *v are freed with
 * strv_free() (also after an error), a struct cl_parsed_manifest with
 * cl_parsed_manifest_free() (cl_parse_manifest frees it on an error). */
#ifndef NS_CLEANUP_MANIFEST_H
#define NS_CLEANUP_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct cl_blob {
    char *digest;
    uint64_t size;
};

#define CL_MAX_CHILDREN 1024 /* manifests of one index */
#define CL_MAX_LAYERS   4096 /* layers of one image */

/* A catalog page ("repositories") or a tags list ("tags"): the strings of
 * array `key` appended to *v (absent or null: none; anything else than an
 * array of strings is an error). Names are NOT validated here. */
int cl_parse_names(const char *what, const char *body, size_t len, const char *ctype,
                   const char *key, char ***v, size_t *n, struct err *e);

/* A manifest of any of the four media types (Docker v2 / OCI image, Docker
 * manifest list / OCI index; a body without mediaType is typed by the
 * Content-Type, or as an index when it has "manifests"). Every digest is
 * checked against the digest grammar. */
struct cl_parsed_manifest {
    char media_type[128];
    bool is_index;
    char config[160];      /* an image's config blob digest, "" when none */
    struct cl_blob *blobs; /* an image: config + layers */
    size_t n_blobs;
    char **children; /* an index: child manifest digests, with their sizes */
    uint64_t *child_sizes;
    size_t n_children;
};
int cl_parse_manifest(const char *what, const char *body, size_t len, const char *ctype,
                      struct cl_parsed_manifest *pm, struct err *e);
void cl_parsed_manifest_free(struct cl_parsed_manifest *pm);

/* A config blob: `created` in ms (0 when absent, not a string, not a date
 * or the epoch). -1 only when the body is not a JSON object. */
int cl_parse_created(const char *what, const char *body, size_t len, const char *ctype,
                     int64_t *created, struct err *e);

/* s for a log line: bytes outside printable ASCII, '"' and '\\' become
 * '?', cut with "..." to fit n. */
void cl_printable(const char *s, char *out, size_t n);

/* Parses an RFC 3339 timestamp into ms since the epoch; -1 if invalid. */
int64_t cl_parse_time(const char *s);

#endif
