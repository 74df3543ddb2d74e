#include "cleanup_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC     "nexus-shipper-cleanup-cache 1"
#define MAX_BLOBS 4096 /* per entry */
#define MAX_FILE  (256u << 20)

struct cl_cache {
    char *path; /* NULL: memory only */
    size_t max;
    struct cc_entry *v;
    size_t n, cap;
    size_t *slot; /* open addressing: index + 1, 0 = empty */
    size_t nslot;
    uint64_t run; /* this run's stamp: the highest in the file + 1 */
    size_t skipped;
    uint64_t hits, misses;
};

bool cl_sha256_digest(const char *s)
{
    if (!s || strncmp(s, "sha256:", 7) != 0)
        return false;
    size_t i = 0;
    for (const char *p = s + 7; *p; p++, i++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return i == 64;
}

static size_t hash(const char *digest)
{
    size_t h = 1469598103934665603u;
    for (const char *p = digest + 7; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211u;
    return h;
}

static size_t *find_slot(const struct cl_cache *c, const char *digest)
{
    size_t i = hash(digest) & (c->nslot - 1);
    for (;;) {
        size_t *s = &c->slot[i];
        if (!*s || strcmp(c->v[*s - 1].digest, digest) == 0)
            return s;
        i = (i + 1) & (c->nslot - 1);
    }
}

static int rehash(struct cl_cache *c, size_t nslot)
{
    size_t *ns = calloc(nslot, sizeof *ns);
    if (!ns)
        return -1;
    free(c->slot);
    c->slot = ns;
    c->nslot = nslot;
    for (size_t i = 0; i < c->n; i++)
        *find_slot(c, c->v[i].digest) = i + 1;
    return 0;
}

struct cl_cache *cl_cache_open(const char *path, size_t max_entries)
{
    struct cl_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->max = max_entries ? max_entries : 1;
    c->run = 1;
    if (rehash(c, 1024) < 0 || (path && *path && !(c->path = strdup(path)))) {
        cl_cache_free(c);
        return NULL;
    }
    if (c->path) {
        char *text = NULL;
        struct err e;
        struct stat st;
        if (stat(c->path, &st) == 0 && st.st_size <= (off_t)MAX_FILE &&
            read_file(c->path, MAX_FILE, false, &text, &e) == 0) {
            cl_cache_parse(c, text, (size_t)st.st_size);
            free(text);
        }
    }
    return c;
}

void cl_cache_free(struct cl_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].blobs);
    free(c->v);
    free(c->slot);
    free(c->path);
    free(c);
}

const struct cc_entry *cl_cache_get(struct cl_cache *c, const char *digest)
{
    if (!cl_sha256_digest(digest)) {
        c->misses++;
        return NULL;
    }
    size_t *s = find_slot(c, digest);
    if (!*s) {
        c->misses++;
        return NULL;
    }
    c->hits++;
    c->v[*s - 1].run = c->run;
    return &c->v[*s - 1];
}

static int put_run(struct cl_cache *c, const char *digest, int64_t created_ms,
                   const struct cc_blob *blobs, size_t n_blobs, uint64_t run)
{
    if (!cl_sha256_digest(digest) || n_blobs > MAX_BLOBS)
        return -1;
    if ((c->n + 1) * 2 > c->nslot && rehash(c, c->nslot * 2) < 0)
        return -1;
    struct cc_blob *nb = NULL;
    if (n_blobs) {
        if (!(nb = malloc(n_blobs * sizeof *nb)))
            return -1;
        memcpy(nb, blobs, n_blobs * sizeof *nb);
    }
    size_t *s = find_slot(c, digest);
    struct cc_entry *e;
    if (*s) {
        e = &c->v[*s - 1];
        free(e->blobs);
    } else {
        if (c->n == c->cap) {
            size_t nc = c->cap ? c->cap * 2 : 256;
            struct cc_entry *nv = realloc(c->v, nc * sizeof *nv);
            if (!nv) {
                free(nb);
                return -1;
            }
            c->v = nv;
            c->cap = nc;
        }
        e = &c->v[c->n++];
        memset(e, 0, sizeof *e);
        snprintf(e->digest, sizeof e->digest, "%s", digest);
        *s = c->n;
    }
    e->created_ms = created_ms > 0 ? created_ms : 0;
    e->run = run;
    e->blobs = nb;
    e->n_blobs = n_blobs;
    return 0;
}

int cl_cache_put(struct cl_cache *c, const char *digest, int64_t created_ms,
                 const struct cc_blob *blobs, size_t n_blobs)
{
    return put_run(c, digest, created_ms, blobs, n_blobs, c->run);
}

/* One entry line (NUL-terminated, no newline); -1 when malformed. */
static int parse_line(struct cl_cache *c, char *line, uint64_t *max_run)
{
    char *save = NULL;
    char *dig = strtok_r(line, " ", &save), *cr = strtok_r(NULL, " ", &save),
         *run = strtok_r(NULL, " ", &save);
    if (!dig || !cr || !run || !cl_sha256_digest(dig))
        return -1;
    int64_t created, r;
    if (parse_int64(cr, &created) < 0 || created < 0 || parse_int64(run, &r) < 0 || r < 0)
        return -1;
    struct cc_blob *blobs = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    for (char *b; (b = strtok_r(NULL, " ", &save));) {
        char *eq = strchr(b, '=');
        int64_t sz;
        if (!eq || n >= MAX_BLOBS)
            goto out;
        *eq = '\0';
        if (!cl_sha256_digest(b) || parse_int64(eq + 1, &sz) < 0 || sz < 0)
            goto out;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct cc_blob *nb = realloc(blobs, ncap * sizeof *nb);
            if (!nb)
                goto out;
            blobs = nb;
            cap = ncap;
        }
        snprintf(blobs[n].digest, sizeof blobs[n].digest, "%s", b);
        blobs[n++].size = (uint64_t)sz;
    }
    rc = put_run(c, dig, created, blobs, n, (uint64_t)r);
    if (rc == 0 && (uint64_t)r > *max_run)
        *max_run = (uint64_t)r;
out:
    free(blobs);
    return rc;
}

int cl_cache_parse(struct cl_cache *c, const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    const char *nl = memchr(p, '\n', len);
    if (!nl || (size_t)(nl - p) != strlen(MAGIC) || memcmp(p, MAGIC, strlen(MAGIC)) != 0) {
        if (len)
            c->skipped++; /* another version or not a cache: start empty */
        return -1;
    }
    uint64_t max_run = 0;
    char *line = NULL;
    size_t lcap = 0;
    for (p = nl + 1; p < end;) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        size_t l = e ? (size_t)(e - p) : (size_t)(end - p);
        if (!e) { /* a torn last line cannot happen after rename; skip it */
            c->skipped++;
            break;
        }
        if (l + 1 > lcap) {
            char *nl2 = realloc(line, l + 1);
            if (!nl2)
                break;
            line = nl2;
            lcap = l + 1;
        }
        if (c->n >= c->max)
            break; /* the file is most recent first: the rest would be dropped */
        memcpy(line, p, l);
        line[l] = '\0';
        if (memchr(p, '\0', l) || parse_line(c, line, &max_run) < 0)
            c->skipped++;
        p = e + 1;
    }
    free(line);
    c->run = max_run + 1;
    return 0;
}

static int cmp_recent(const void *a, const void *b)
{
    const struct cc_entry *x = *(const struct cc_entry *const *)a,
                          *y = *(const struct cc_entry *const *)b;
    if (x->run != y->run)
        return x->run > y->run ? -1 : 1;
    return strcmp(x->digest, y->digest);
}

int cl_cache_save(struct cl_cache *c, struct err *e)
{
    if (!c->path)
        return 0;
    const struct cc_entry **order = calloc(c->n ? c->n : 1, sizeof *order);
    if (!order) {
        err_set(e, "cleanup cache %s: out of memory", c->path);
        return -1;
    }
    for (size_t i = 0; i < c->n; i++)
        order[i] = &c->v[i];
    qsort(order, c->n, sizeof *order, cmp_recent);
    size_t keep = c->n < c->max ? c->n : c->max;
    struct buf b;
    buf_init(&b, 0);
    int rc = buf_printf(&b, "%s\n", MAGIC);
    for (size_t i = 0; rc == 0 && i < keep; i++) {
        const struct cc_entry *x = order[i];
        rc = buf_printf(&b, "%s %lld %llu", x->digest, (long long)x->created_ms,
                        (unsigned long long)x->run);
        for (size_t k = 0; rc == 0 && k < x->n_blobs; k++)
            rc = buf_printf(&b, " %s=%llu", x->blobs[k].digest,
                            (unsigned long long)x->blobs[k].size);
        if (rc == 0)
            rc = buf_puts(&b, "\n");
    }
    free(order);
    if (rc < 0) {
        err_set(e, "cleanup cache %s: out of memory", c->path);
        buf_free(&b);
        return -1;
    }
    /* random O_EXCL|O_NOFOLLOW temp name, 0600, fsync, rename, dir fsync */
    struct err e2;
    rc = durable_write_file(c->path, b.data, b.len, 0600, &e2);
    buf_free(&b);
    if (rc < 0) {
        err_set(e, "cleanup cache: %s", e2.msg);
        return -1;
    }
    return 0;
}

void cl_cache_stats(const struct cl_cache *c, size_t *entries, size_t *skipped, uint64_t *hits,
                    uint64_t *misses)
{
    *entries = c->n;
    *skipped = c->skipped;
    *hits = c->hits;
    *misses = c->misses;
}
