/* strpool: the series buffer's string pool. Every label name, label value,
 * family name, help and unit is interned once and named by a dense id
 * (0, 1, ...); the strings never move once interned (they live in 64 KiB
 * chunks, a big string in a block of its own), so `strs[id]` stays valid
 * until strpool_free(). The pool only grows: nothing is removed before
 * strpool_free().
 *
 * Owner: the struct is embedded in struct series_buf (series.c), zeroed
 * before first use; strpool_free() releases everything and zeroes it again.
 * Fields are read directly by series.c; only `flags` (the label-name check
 * cache) is written outside this module. `bytes` counts what the pool holds
 * (for buffer_max_size). Errors: -1 on out of memory, nothing changed but
 * possibly grown arrays. Not thread-safe (the buffer's lock covers it). */
#ifndef NS_STRPOOL_H
#define NS_STRPOOL_H

#include <stddef.h>
#include <stdint.h>

struct strpool {
    char **chunks;
    size_t nchunks;
    size_t used; /* bytes used in the last regular chunk */
    const char **strs;
    uint32_t *hashes;
    uint32_t *lens; /* strlen of every string, for the encoder */
    uint8_t *flags; /* bit 0: checked as label name, bit 1: valid label name */
    size_t n, cap;
    uint32_t *table; /* id + 1, 0 = empty; open addressing */
    size_t tcap;
    size_t bytes;
};

/* FNV-1a over n bytes: the pool's hash, also used by series.c for label sets. */
static inline uint32_t strpool_hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 16777619u;
    }
    return h;
}

void strpool_free(struct strpool *p);
/* Returns the id of `s` (len bytes, need not be NUL-terminated) if it is
 * interned, else -1. */
int64_t strpool_find(const struct strpool *p, const char *s, size_t len);
/* Returns the id of `s` (len bytes), interning it; -1 on out of memory. */
int64_t strpool_intern(struct strpool *p, const char *s, size_t len);

#endif
