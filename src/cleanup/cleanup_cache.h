/* cleanup_cache: what the registry cleanup learnt about content-addressed,
 * immutable objects, kept between runs in the state directory so a later
 * run needs one request per tag (the manifest GET).
 *
 * An entry is keyed by a digest ("sha256:<64 hex>"; nothing else is kept):
 *  - a config blob's digest -> its `created` (ms, 0 = absent/epoch);
 *  - an index child manifest's digest -> the child's `created` and its
 *    blobs (config + layers, digest and size).
 * Content under a sha256 digest never changes, so an entry never goes
 * stale; a tampered file can only be written by whoever owns the state
 * directory.
 *
 * File: text, "nexus-shipper-cleanup-cache 1" then one line per entry,
 *   <digest> <created_ms> <last_used_run> [<blob digest>=<size>]...
 * Unknown versions, bad lines and bad digests are skipped (counted). Saved
 * to <file>.tmp, fsync'ed, renamed: a crash leaves the old or the new
 * file, never a torn one. Bounded: at most max_entries entries are saved,
 * the most recently used first (a run counter stamps each use).
 * Single-threaded; owns everything it returns pointers to until freed. */
#ifndef NS_CLEANUP_CACHE_H
#define NS_CLEANUP_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct cc_blob {
    char digest[72];
    uint64_t size;
};

struct cc_entry {
    char digest[72];
    int64_t created_ms;
    uint64_t run; /* last run that used it */
    struct cc_blob *blobs;
    size_t n_blobs;
};

struct cl_cache;

/* Loads `path` (missing = empty; NULL or "" = memory only, never saved).
 * NULL only when out of memory. */
struct cl_cache *cl_cache_open(const char *path, size_t max_entries);
void cl_cache_free(struct cl_cache *c);

/* The entry for digest (marked used by this run), or NULL. */
const struct cc_entry *cl_cache_get(struct cl_cache *c, const char *digest);
/* Adds or replaces; blobs copied. -1 on a bad digest or out of memory. */
int cl_cache_put(struct cl_cache *c, const char *digest, int64_t created_ms,
                 const struct cc_blob *blobs, size_t n_blobs);
/* Writes the file (no-op when memory only). -1 with e->msg naming it. */
int cl_cache_save(struct cl_cache *c, struct err *e);

/* Counters: entries loaded, lines skipped while loading, hits, misses. */
void cl_cache_stats(const struct cl_cache *c, size_t *entries, size_t *skipped, uint64_t *hits,
                    uint64_t *misses);

/* "sha256:" followed by exactly 64 lowercase hex digits. */
bool cl_sha256_digest(const char *s);

/* Parses the cache file's text (for the loader and the fuzzer). */
int cl_cache_parse(struct cl_cache *c, const char *text, size_t len);

#endif
