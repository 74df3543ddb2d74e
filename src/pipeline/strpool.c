#include "strpool.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_SIZE (64 * 1024)

void strpool_free(struct strpool *p)
{
    for (size_t i = 0; i < p->nchunks; i++)
        free(p->chunks[i]);
    free(p->chunks);
    free(p->strs);
    free(p->hashes);
    free(p->lens);
    free(p->flags);
    free(p->table);
    memset(p, 0, sizeof *p);
}

static int pool_grow_table(struct strpool *p)
{
    size_t ncap = p->tcap ? p->tcap * 2 : 1024;
    uint32_t *t = calloc(ncap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < p->n; i++) {
        size_t j = p->hashes[i] & (ncap - 1);
        while (t[j])
            j = (j + 1) & (ncap - 1);
        t[j] = (uint32_t)i + 1;
    }
    free(p->table);
    p->bytes += (ncap - p->tcap) * sizeof *t;
    p->table = t;
    p->tcap = ncap;
    return 0;
}

static char *pool_alloc(struct strpool *p, size_t len)
{
    if (len + 1 > CHUNK_SIZE / 4) { /* big string: its own block */
        char **nc = realloc(p->chunks, (p->nchunks + 1) * sizeof *nc);
        if (!nc)
            return NULL;
        p->chunks = nc;
        char *blk = malloc(len + 1);
        if (!blk)
            return NULL;
        /* keep the regular chunk last so `used` stays meaningful */
        if (p->nchunks) {
            nc[p->nchunks] = nc[p->nchunks - 1];
            nc[p->nchunks - 1] = blk;
        } else {
            nc[0] = blk;
            p->used = CHUNK_SIZE; /* no regular chunk yet */
        }
        p->nchunks++;
        p->bytes += len + 1;
        return blk;
    }
    if (!p->nchunks || p->used + len + 1 > CHUNK_SIZE) {
        char **nc = realloc(p->chunks, (p->nchunks + 1) * sizeof *nc);
        if (!nc)
            return NULL;
        p->chunks = nc;
        if (!(nc[p->nchunks] = malloc(CHUNK_SIZE)))
            return NULL;
        p->nchunks++;
        p->used = 0;
        p->bytes += CHUNK_SIZE;
    }
    char *s = p->chunks[p->nchunks - 1] + p->used;
    p->used += len + 1;
    return s;
}

int64_t strpool_find(const struct strpool *p, const char *s, size_t len)
{
    uint32_t h = strpool_hash(s, len);
    if (p->tcap)
        for (size_t j = h & (p->tcap - 1); p->table[j]; j = (j + 1) & (p->tcap - 1)) {
            uint32_t id = p->table[j] - 1;
            if (p->hashes[id] == h && strncmp(p->strs[id], s, len) == 0 && p->strs[id][len] == '\0')
                return id;
        }
    return -1;
}

int64_t strpool_intern(struct strpool *p, const char *s, size_t len)
{
    uint32_t h = strpool_hash(s, len);
    if (p->tcap) {
        for (size_t j = h & (p->tcap - 1); p->table[j]; j = (j + 1) & (p->tcap - 1)) {
            uint32_t id = p->table[j] - 1;
            if (p->hashes[id] == h && strncmp(p->strs[id], s, len) == 0 && p->strs[id][len] == '\0')
                return id;
        }
    }
    if ((p->n + 1) * 2 > p->tcap && pool_grow_table(p) < 0)
        return -1;
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 256;
        const char **ns = realloc(p->strs, nc * sizeof *ns);
        if (!ns)
            return -1;
        p->strs = ns;
        uint32_t *nh = realloc(p->hashes, nc * sizeof *nh);
        if (!nh)
            return -1;
        p->hashes = nh;
        uint8_t *nf = realloc(p->flags, nc);
        if (!nf)
            return -1;
        p->flags = nf;
        uint32_t *nl = realloc(p->lens, nc * sizeof *nl);
        if (!nl)
            return -1;
        p->lens = nl;
        p->bytes += (nc - p->cap) * (sizeof *ns + sizeof *nh + sizeof *nl + 1);
        p->cap = nc;
    }
    char *dst = pool_alloc(p, len);
    if (!dst)
        return -1;
    memcpy(dst, s, len);
    dst[len] = '\0';
    size_t id = p->n++;
    p->strs[id] = dst;
    p->hashes[id] = h;
    p->lens[id] = (uint32_t)len;
    p->flags[id] = 0;
    size_t j = h & (p->tcap - 1);
    while (p->table[j])
        j = (j + 1) & (p->tcap - 1);
    p->table[j] = (uint32_t)id + 1;
    return (int64_t)id;
}
