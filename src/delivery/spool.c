#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "pushgateway.h"

#define MAGIC      "NXSHSPL1"
#define DEAD       "NXSHDEAD" /* a quarantined damaged region starts with this */
#define VERSION    1
#define FIXED_LEN  56
#define MAX_HEADER (64 * 1024)
#define STATE_OFF  11
#define MIN_ROTATE (64u << 10)

enum dmg { DMG_NONE, DMG_REGION, DMG_TAIL, DMG_FILE };

struct sfile { /* a log or .seg file of a target known to the index */
    struct sfile *next;
    char name[64];
    uint64_t end; /* scanned up to here */
    size_t refs;  /* index entries in it */
    bool legacy;  /* *.seg: one record, done = unlink */
    bool live;    /* another live process appends to it */
    bool partial; /* not all of it is indexed (out of memory): never unlinked */
};

struct ent { /* an index entry */
    struct sfile *f;
    uint64_t off, len;
    int64_t created_ms, min_ts, max_ts;
    uint32_t series, samples;
    uint8_t kind;
    uint8_t dmg;
    bool gone;
    char *extra;   /* pushgateway: "<METHOD> <group>" */
    char *problem; /* damaged */
};

struct entv {
    struct ent *v;
    size_t head, n, cap;
};

struct spool;

struct tgt {
    struct tgt *next;
    struct spool *sp;
    char name[SPOOL_NAME_MAX];
    char dir[PATH_MAX];
    struct sfile *files;
    struct entv q;         /* durable entries, FIFO from q.head */
    uint64_t bytes, count; /* pending records (damaged excluded) */
    struct timespec mtime; /* of dir at the last listing */
    bool listed;
    /* our writer */
    struct sfile *wf;
    int wfd;
    uint64_t wend, wsynced;
    bool wdir_unsynced; /* the log's directory entry is not fsync'd yet */
    struct entv u;      /* appended, not yet fdatasync'd */
    uint64_t ubytes, ucount;
};

struct spool {
    char *dir;
    int lock_fd;
    bool stale; /* index must be (re)built */
    int ierr;   /* why the last build or refresh was incomplete (errno) */
    uint64_t rotate;
    pthread_mutex_t mu;
    struct tgt *t;
};

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* ---- segment encoding ----------------------------------------------------- */

/* Header CRC: over the header without its CRC, the state byte taken as 0
 * (so marking a record done in place keeps its header valid). */
static uint32_t header_crc(const unsigned char *h, uint32_t hl)
{
    static const unsigned char zero = 0;
    uint32_t c = crc32c(0, h, STATE_OFF);
    c = crc32c(c, &zero, 1);
    return crc32c(c, h + STATE_OFF + 1, hl - 4 - STATE_OFF - 1);
}

/* Checks a header in h[0..avail): magic, version, lengths, CRC, kind.
 * Fills *hl, *pl and (if m) the meta; -1 with why. The payload is not
 * looked at. */
static int header_check(const unsigned char *h, size_t avail, uint32_t *hl_out, uint32_t *pl_out,
                        struct seg_meta *m, char *why, size_t whyn)
{
    if (avail < FIXED_LEN + 8) {
        snprintf(why, whyn,
                 avail ? "truncated (%zu bytes, shorter than a header)" : "empty file (%zu bytes)",
                 avail);
        return -1;
    }
    if (memcmp(h, MAGIC, 8) != 0) {
        snprintf(why, whyn, "not a spool segment (bad magic)");
        return -1;
    }
    if (get16(h + 8) != VERSION) {
        snprintf(why, whyn, "unsupported segment version %u", get16(h + 8));
        return -1;
    }
    uint32_t hl = get32(h + 12);
    if (hl < FIXED_LEN + 8 || hl > MAX_HEADER || hl > avail) {
        snprintf(why, whyn, "truncated or corrupt header (header length %u, %zu bytes there)", hl,
                 avail);
        return -1;
    }
    if (header_crc(h, hl) != get32(h + hl - 4)) {
        snprintf(why, whyn, "header CRC mismatch");
        return -1;
    }
    uint16_t tl = get16(h + 56);
    if ((size_t)58 + tl + 2 + 4 > hl || tl >= SPOOL_NAME_MAX) {
        snprintf(why, whyn, "corrupt header (target length %u)", tl);
        return -1;
    }
    uint16_t xl = get16(h + 58 + tl);
    if ((size_t)60 + tl + xl + 4 != hl || xl >= sizeof m->extra) {
        snprintf(why, whyn, "corrupt header (extra length %u)", xl);
        return -1;
    }
    if (h[10] != SEG_REMOTE_WRITE && h[10] != SEG_PUSHGATEWAY) {
        snprintf(why, whyn, "unknown segment kind %u", h[10]);
        return -1;
    }
    uint32_t pl = get32(h + 48);
    if (pl > SPOOL_MAX_PAYLOAD) {
        snprintf(why, whyn, "corrupt header (payload length %u)", pl);
        return -1;
    }
    if (m) {
        memset(m, 0, sizeof *m);
        m->kind = (enum seg_kind)h[10];
        m->created_ms = (int64_t)get64(h + 16);
        m->series = get32(h + 24);
        m->samples = get32(h + 28);
        m->min_ts = (int64_t)get64(h + 32);
        m->max_ts = (int64_t)get64(h + 40);
        memcpy(m->target, h + 58, tl);
        memcpy(m->extra, h + 60 + tl, xl);
    }
    *hl_out = hl;
    *pl_out = pl;
    return 0;
}

/* Writes the header of a segment holding `len` payload bytes into out. */
static int encode_header(const struct seg_meta *m, const void *payload, size_t len, struct buf *out)
{
    size_t tl = strnlen(m->target, sizeof m->target);
    size_t xl = strnlen(m->extra, sizeof m->extra);
    size_t hl = FIXED_LEN + 2 + tl + 2 + xl + 4;
    if (len > SPOOL_MAX_PAYLOAD || tl >= SPOOL_NAME_MAX || xl >= sizeof m->extra)
        return -1;
    buf_reset(out);
    if (buf_reserve(out, hl + len) < 0)
        return -1;
    unsigned char *h = (unsigned char *)out->data;
    memset(h, 0, hl);
    memcpy(h, MAGIC, 8);
    put16(h + 8, VERSION);
    h[10] = (unsigned char)m->kind;
    put32(h + 12, (uint32_t)hl);
    put64(h + 16, (uint64_t)m->created_ms);
    put32(h + 24, m->series);
    put32(h + 28, m->samples);
    put64(h + 32, (uint64_t)m->min_ts);
    put64(h + 40, (uint64_t)m->max_ts);
    put32(h + 48, (uint32_t)len);
    put32(h + 52, crc32c(0, payload, len));
    put16(h + 56, (uint16_t)tl);
    memcpy(h + 58, m->target, tl);
    put16(h + 58 + tl, (uint16_t)xl);
    memcpy(h + 60 + tl, m->extra, xl);
    put32(h + hl - 4, header_crc(h, (uint32_t)hl));
    out->len = hl;
    out->data[out->len] = '\0';
    return 0;
}

int spool_encode(const struct seg_meta *m, const void *payload, size_t len, struct buf *out)
{
    if (encode_header(m, payload, len, out) < 0)
        return -1;
    return buf_append(out, payload, len);
}

int spool_decode(const void *data, size_t len, struct seg_meta *m, const void **payload,
                 size_t *plen, struct err *e)
{
    const unsigned char *h = data;
    uint32_t hl, pl;
    char why[160];
    if (header_check(h, len, &hl, &pl, m, why, sizeof why) < 0) {
        err_set(e, "%s", why);
        return -1;
    }
    if ((uint64_t)hl + pl != len) {
        err_set(e, "truncated: header says %u payload bytes, %zu there", pl, len - hl);
        return -1;
    }
    if (crc32c(0, h + hl, pl) != get32(h + 52)) {
        err_set(e, "payload CRC mismatch");
        return -1;
    }
    *payload = h + hl;
    *plen = pl;
    return 0;
}

/* ---- the log scanner ------------------------------------------------------- */

struct rd { /* a file (pread) or memory */
    int fd;
    const unsigned char *mem;
};

static size_t rd_read(const struct rd *r, uint64_t off, void *buf, size_t n, uint64_t size)
{
    if (off >= size)
        return 0;
    if (n > size - off)
        n = (size_t)(size - off);
    if (r->mem) {
        memcpy(buf, r->mem + off, n);
        return n;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(r->fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    return got;
}

/* The next offset >= from where a header verifies, or size. */
static uint64_t resync(const struct rd *r, uint64_t from, uint64_t size)
{
    unsigned char chunk[65536], h[4096];
    for (uint64_t p = from; p < size;) {
        size_t n = rd_read(r, p, chunk, sizeof chunk, size);
        if (n < 8)
            break;
        for (size_t i = 0; i + 8 <= n; i++) {
            unsigned char *q = memchr(chunk + i, 'N', n - 8 - i + 1);
            if (!q)
                break;
            i = (size_t)(q - chunk);
            if (memcmp(q, MAGIC, 8) != 0)
                continue;
            size_t hn = rd_read(r, p + i, h, sizeof h, size);
            uint32_t hl, pl;
            char why[160];
            if (header_check(h, hn, &hl, &pl, NULL, why, sizeof why) == 0)
                return p + i;
        }
        p += n - 7;
    }
    return size;
}

/* Walks [off, size): regions to cb; returns where an incomplete tail
 * starts, or size. */
static uint64_t scan_core(const struct rd *r, uint64_t off, uint64_t size, spool_scan_cb cb,
                          void *arg)
{
    unsigned char h[4096];
    struct seg_meta m;
    while (off < size) {
        size_t n = rd_read(r, off, h, sizeof h, size);
        char why[160];
        uint32_t hl, pl;
        if (n >= 8 && memcmp(h, DEAD, 8) == 0) {
            uint64_t q = resync(r, off + 8, size);
            cb(arg, 4, off, q - off, NULL, "quarantined before");
            off = q;
            continue;
        }
        if (n < size - off && n < sizeof h) { /* a read error: stop here */
            cb(arg, 3, off, size - off, NULL, "read error");
            return off;
        }
        if (header_check(h, n, &hl, &pl, &m, why, sizeof why) == 0) {
            if ((uint64_t)hl + pl > size - off) {
                snprintf(why, sizeof why,
                         "incomplete record: header says %llu bytes, %llu there (a torn write)",
                         (unsigned long long)hl + pl, (unsigned long long)(size - off));
                cb(arg, 3, off, size - off, &m, why);
                return off;
            }
            cb(arg, h[STATE_OFF] ? 1 : 0, off, (uint64_t)hl + pl, &m, NULL);
            off += (uint64_t)hl + pl;
            continue;
        }
        uint64_t q = resync(r, off + 1, size);
        if (q >= size) {
            char w2[200];
            snprintf(w2, sizeof w2, "incomplete or damaged last record: %s", why);
            cb(arg, 3, off, size - off, NULL, w2);
            return off;
        }
        cb(arg, 2, off, q - off, NULL, why);
        off = q;
    }
    return size;
}

uint64_t spool_scan_mem(const void *data, size_t len, spool_scan_cb cb, void *arg)
{
    struct rd r = {.fd = -1, .mem = data};
    return scan_core(&r, 0, len, cb, arg);
}

/* ---- the index --------------------------------------------------------------- */

static int64_t name_ms(const char *name)
{
    unsigned long long us;
    return sscanf(name, "%16llx", &us) == 1 ? (int64_t)(us / 1000) : 0;
}

static void ent_free(struct ent *e)
{
    free(e->extra);
    free(e->problem);
    e->extra = e->problem = NULL;
}

/* Room for k more entries: the next k entv_push calls cannot fail. -1
 * (errno ENOMEM) when out of memory, q unchanged. */
static int entv_reserve(struct entv *q, size_t k)
{
    if (q->head && q->head == q->n) /* empty: start over */
        q->head = q->n = 0;
    if (q->n + k <= q->cap)
        return 0;
    if (q->head > q->cap / 2 && q->n - q->head + k <= q->cap) { /* compact before growing */
        memmove(q->v, q->v + q->head, (q->n - q->head) * sizeof *q->v);
        q->n -= q->head;
        q->head = 0;
        return 0;
    }
    size_t nc = q->cap ? q->cap * 2 : 64;
    if (nc < q->n + k)
        nc = q->n + k;
    struct ent *nv = realloc(q->v, nc * sizeof *nv);
    if (!nv) {
        errno = ENOMEM;
        return -1;
    }
    q->v = nv;
    q->cap = nc;
    return 0;
}

static struct ent *entv_push(struct entv *q)
{
    if (entv_reserve(q, 1) < 0)
        return NULL;
    struct ent *e = &q->v[q->n++];
    memset(e, 0, sizeof *e);
    return e;
}

static void entv_free(struct entv *q)
{
    for (size_t i = q->head; i < q->n; i++)
        ent_free(&q->v[i]);
    free(q->v);
    memset(q, 0, sizeof *q);
}

static void index_fail(struct tgt *t, struct sfile *f);

static void file_path(const struct tgt *t, const struct sfile *f, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", t->dir, f->name);
}

static void sfile_unlink_free(struct tgt *t, struct sfile *f, bool unlink_it)
{
    if (unlink_it) {
        char p[PATH_MAX];
        file_path(t, f, p, sizeof p);
        unlink(p); /* no directory fsync: a resurrected file only holds done records */
    }
    for (struct sfile **pp = &t->files; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    free(f);
}

/* An entry left the index: counts, head, and its file if nothing is left. */
static void ent_drop(struct tgt *t, struct ent *e, bool unlink_file)
{
    struct sfile *f = e->f;
    if (!e->dmg) {
        t->bytes -= e->len;
        t->count--;
    }
    ent_free(e);
    e->gone = true;
    e->f = NULL; /* the file may go now: a gone entry refers to nothing */
    while (t->q.head < t->q.n && t->q.v[t->q.head].gone)
        t->q.head++;
    if (f && --f->refs == 0 && f != t->wf && !f->live && !f->partial)
        sfile_unlink_free(t, f, unlink_file);
}

static void ent_publish(struct tgt *t, struct ent *e)
{
    if (e->f)
        e->f->refs++;
    if (!e->dmg) {
        t->bytes += e->len;
        t->count++;
    }
}

static struct tgt *tgt_get(struct spool *sp, const char *name, bool create)
{
    for (struct tgt *t = sp->t; t; t = t->next)
        if (strcmp(t->name, name) == 0)
            return t;
    if (!create)
        return NULL;
    struct tgt *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->dir, sizeof t->dir, "%s/%s", sp->dir, name);
    t->sp = sp;
    t->wfd = -1;
    t->next = sp->t;
    sp->t = t;
    return t;
}

/* The index of t may be incomplete (out of memory): it is rebuilt by the
 * next call instead of being trusted, and f (if any) is never unlinked on
 * the strength of its index entries. */
static void index_fail(struct tgt *t, struct sfile *f)
{
    t->sp->ierr = errno && errno != ENOENT ? errno : ENOMEM;
    t->sp->stale = true;
    if (f)
        f->partial = true;
}

struct scan_ctx {
    struct tgt *t;
    struct sfile *f;
    bool settled; /* no live writer: an incomplete tail is a torn write */
    int err;
    int64_t last_ms; /* of the record before: damage keeps its place in FIFO */
};

static void add_cb(void *arg, int kind, uint64_t off, uint64_t len, const struct seg_meta *m,
                   const char *problem)
{
    struct scan_ctx *c = arg;
    if (m && (kind == 0 || kind == 1))
        c->last_ms = m->created_ms;
    if (kind == 1 || kind == 4 || (kind == 3 && !c->settled))
        return;
    struct ent *e = entv_push(&c->t->q);
    if (!e) {
        c->err = ENOMEM;
        return;
    }
    e->f = c->f;
    e->off = off;
    e->len = len;
    if (kind == 0) {
        e->kind = (uint8_t)m->kind;
        e->created_ms = m->created_ms;
        e->series = m->series;
        e->samples = m->samples;
        e->min_ts = m->min_ts;
        e->max_ts = m->max_ts;
        if (m->extra[0] && !(e->extra = strdup(m->extra)))
            c->err = ENOMEM;
    } else {
        e->dmg = kind == 3 ? DMG_TAIL : DMG_REGION;
        e->created_ms = m ? m->created_ms : c->last_ms ? c->last_ms : name_ms(c->f->name);
        if (!(e->problem = strdup(problem ? problem : "damaged")))
            c->err = ENOMEM;
        if (m) {
            e->samples = m->samples;
            e->kind = (uint8_t)m->kind;
        }
    }
    ent_publish(c->t, e);
}

/* -1 (errno ENOMEM) when it could not be indexed. */
static int add_file_damage(struct tgt *t, struct sfile *f, uint64_t size, const char *why,
                           const struct seg_meta *m)
{
    struct ent *e = entv_push(&t->q);
    if (!e)
        return -1;
    e->f = f;
    e->len = size;
    e->dmg = DMG_FILE;
    e->created_ms = m ? m->created_ms : name_ms(f->name);
    e->samples = m ? m->samples : 0;
    e->problem = strdup(why);
    ent_publish(t, e);
    return e->problem ? 0 : -1;
}

/* Scans a file of t from f->end. own: our writer's log, up to wsynced.
 * -1 when it could not be read or an entry could not be indexed (out of
 * memory): the file is marked partial and the index stale, and the file
 * must not be taken for an empty one. */
static int scan_file(struct tgt *t, struct sfile *f)
{
    char p[PATH_MAX];
    file_path(t, f, p, sizeof p);
    bool own = f == t->wf;
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int why = fd < 0 ? errno : 0;
        if (fd >= 0)
            close(fd);
        if (why == EMFILE || why == ENFILE || why == ENOMEM || why == EINTR || why == EIO) {
            index_fail(t, f); /* a passing shortage: try again */
            errno = why;
            return -1;
        }
        if (why && why != ENOENT)
            f->partial = true; /* unreadable (EACCES...): kept, not taken for empty */
        return 0;
    }
    uint64_t size = own ? t->wsynced : (uint64_t)st.st_size;
    int err = 0;
    if (f->legacy) {
        unsigned char h[4096];
        struct rd r = {.fd = fd};
        size_t n = rd_read(&r, 0, h, sizeof h, size);
        uint32_t hl, pl;
        char why[200];
        struct seg_meta m;
        if (header_check(h, n, &hl, &pl, &m, why, sizeof why) < 0) {
            err = add_file_damage(t, f, size, why, NULL);
        } else if ((uint64_t)hl + pl != size) {
            snprintf(why, sizeof why, "truncated: %llu bytes, header says %llu",
                     (unsigned long long)size, (unsigned long long)hl + pl);
            err = add_file_damage(t, f, size, why, &m);
        } else {
            struct scan_ctx c = {t, f, true, 0, 0};
            add_cb(&c, 0, 0, size, &m, NULL);
            err = c.err ? -1 : 0;
        }
        f->end = size;
    } else if (!str_has_suffix(f->name, ".log")) {
        err = add_file_damage(t, f, size, "foreign file (not a spool log or segment)", NULL);
        f->end = size;
    } else {
        f->live = false;
        if (!own) {
            if (flock(fd, LOCK_SH | LOCK_NB) < 0)
                f->live = errno == EWOULDBLOCK;
            else
                flock(fd, LOCK_UN);
        }
        if (size == 0 && !own && !f->live) {
            err = add_file_damage(t, f, 0, "empty file (0 bytes)", NULL);
        } else {
            struct rd r = {.fd = fd};
            struct scan_ctx c = {t, f, !own && !f->live, 0, 0};
            uint64_t tail = scan_core(&r, f->end, size, add_cb, &c);
            f->end = c.settled ? size : tail;
            err = c.err ? -1 : 0;
        }
    }
    close(fd);
    if (err) {
        errno = ENOMEM; /* only an allocation fails above */
        index_fail(t, f);
    }
    return err;
}

static int cmp_ent(const void *a, const void *b)
{
    const struct ent *x = a, *y = b;
    if (x->created_ms != y->created_ms)
        return x->created_ms < y->created_ms ? -1 : 1;
    if (!x->f || !y->f) /* gone entries: anywhere among their equals */
        return (x->f != NULL) - (y->f != NULL);
    int c = strcmp(x->f->name, y->f->name);
    if (c)
        return c;
    return x->off < y->off ? -1 : x->off > y->off;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists t's directory and scans files not known yet; *added: how many
 * entries. -1 when the directory could not be read or something could not
 * be indexed (out of memory): the index is then stale. */
static int scan_new_files(struct tgt *t, size_t *added)
{
    DIR *d = opendir(t->dir);
    struct stat st;
    if (!d) {
        if (errno == ENOENT)
            return 0;
        index_fail(t, NULL);
        return -1;
    }
    if (fstat(dirfd(d), &st) == 0) {
        t->mtime = st.st_mtim;
        t->listed = true;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof t->files->name)
            continue; /* ., .., .tmp-* */
        bool known = false;
        for (struct sfile *f = t->files; f && !known; f = f->next)
            known = strcmp(f->name, de->d_name) == 0;
        if (known)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **nv = realloc(names, nc * sizeof *nv);
            if (!nv) {
                rc = -1;
                index_fail(t, NULL);
                break;
            }
            names = nv;
            cap = nc;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = -1;
            index_fail(t, NULL);
            break;
        }
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    struct sfile **tail = &t->files;
    while (*tail)
        tail = &(*tail)->next;
    for (size_t i = 0; i < n; i++) {
        struct sfile *f = calloc(1, sizeof *f);
        if (!f) {
            rc = -1;
            index_fail(t, NULL);
            break;
        }
        snprintf(f->name, sizeof f->name, "%s", names[i]);
        f->legacy = str_has_suffix(f->name, ".seg");
        *tail = f;
        tail = &f->next;
        size_t before = t->q.n;
        int serr = scan_file(t, f);
        *added += t->q.n - before;
        if (serr < 0)
            rc = -1;
        else if (!f->refs && !f->live && !f->partial && t->q.n == before) {
            /* nothing pending in it: a finished log, or not a regular file */
            char p[PATH_MAX];
            file_path(t, f, p, sizeof p);
            bool reg = lstat(p, &st) == 0 && S_ISREG(st.st_mode);
            sfile_unlink_free(t, f, reg && str_has_suffix(f->name, ".log"));
            tail = &t->files;
            while (*tail)
                tail = &(*tail)->next;
        }
    }
    strv_free(names, n);
    if (rc < 0)
        t->listed = false; /* list it again (index_fail made the index stale) */
    return rc;
}

static void sort_queue(struct tgt *t)
{
    if (t->q.n - t->q.head > 1)
        qsort(t->q.v + t->q.head, t->q.n - t->q.head, sizeof *t->q.v, cmp_ent);
}

/* Drops every entry and file except our writer's; rescans the directory.
 * -1: incomplete (out of memory), the index stays stale. */
static int tgt_rebuild(struct tgt *t)
{
    entv_free(&t->q);
    t->bytes = t->count = 0;
    for (struct sfile *f = t->files, *nx; f; f = nx) {
        nx = f->next;
        if (f != t->wf)
            free(f);
    }
    t->files = t->wf;
    int rc = 0;
    if (t->wf) {
        t->wf->next = NULL;
        t->wf->refs = 0;
        t->wf->end = 0;
        t->wf->partial = false;
        rc = scan_file(t, t->wf);
    }
    size_t added = 0;
    if (scan_new_files(t, &added) < 0)
        rc = -1;
    sort_queue(t);
    return rc;
}

enum seg_kind spool_target_kind(const char *target)
{
    if (strcmp(target, "pushgateway") == 0)
        return SEG_PUSHGATEWAY;
    if (!str_has_prefix(target, "rw-") || !target[3] || strlen(target) >= SPOOL_NAME_MAX)
        return 0;
    for (const char *p = target + 3; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return 0;
    return SEG_REMOTE_WRITE;
}

int spool_record_check(const struct seg_meta *m, const char *dir, struct err *e)
{
    if (dir && strcmp(m->target, dir) != 0) {
        err_set(e, "record for target \"%.63s\" found in %.63s/", m->target, dir);
        return -1;
    }
    enum seg_kind want = spool_target_kind(m->target);
    if (!want) {
        err_set(e, "unknown target \"%.63s\" (not pushgateway or rw-NAME)", m->target);
        return -1;
    }
    if (m->kind != want) {
        err_set(e, "a %s record in target %s, which holds %s records",
                m->kind == SEG_PUSHGATEWAY    ? "Pushgateway"
                : m->kind == SEG_REMOTE_WRITE ? "remote-write"
                                              : "unknown-kind",
                m->target, want == SEG_PUSHGATEWAY ? "Pushgateway" : "remote-write");
        return -1;
    }
    if (m->kind == SEG_PUSHGATEWAY) {
        struct err e2;
        if (pgw_extra_check(m->extra, NULL, 0, NULL, &e2) < 0) {
            err_set(e, "Pushgateway push refused: %s", e2.msg);
            return -1;
        }
    }
    return 0;
}

/* A spool_dir entry that is a target's directory (not hidden, not
 * quarantine/, a name that fits SPOOL_NAME_MAX). */
static bool is_target_dir(const struct spool *sp, const char *name)
{
    if (name[0] == '.' || strcmp(name, "quarantine") == 0 || strlen(name) >= SPOOL_NAME_MAX)
        return false;
    char p[PATH_MAX];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", sp->dir, name);
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Builds the index if it is stale. -1 (errno ENOMEM or the directory's
 * error) when it could not be built completely: it stays stale, and
 * nothing may be unlinked, marked done or reported on its strength. */
static int ensure(struct spool *sp)
{
    if (!sp->stale)
        return 0;
    sp->stale = false;
    int rc = 0;
    DIR *d = opendir(sp->dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (is_target_dir(sp, de->d_name) && !tgt_get(sp, de->d_name, true)) {
                sp->ierr = ENOMEM;
                rc = -1;
            }
        }
        closedir(d);
    } else {
        sp->ierr = errno;
        rc = -1;
    }
    for (struct tgt *t = sp->t; t; t = t->next)
        if (tgt_rebuild(t) < 0)
            rc = -1;
    if (rc < 0) {
        sp->stale = true;
        errno = sp->ierr;
    }
    return rc;
}

/* Logs other processes created or appended to since the last look. -1
 * when something could not be indexed (the index is then stale). */
static int tgt_refresh(struct tgt *t)
{
    struct stat st;
    size_t added = 0;
    int rc = 0;
    /* file times are coarse (a clock tick): a file created in the same tick
     * as the last listing leaves the mtime as it was, so a directory
     * changed within the last 2 s is listed again */
    if (stat(t->dir, &st) == 0 &&
        (!t->listed || st.st_mtim.tv_sec != t->mtime.tv_sec ||
         st.st_mtim.tv_nsec != t->mtime.tv_nsec || time(NULL) <= st.st_mtim.tv_sec + 2))
        rc = scan_new_files(t, &added);
    for (struct sfile *f = t->files, *nx; f; f = nx) {
        nx = f->next;
        if (!f->live)
            continue;
        size_t before = t->q.n;
        if (scan_file(t, f) < 0) /* from f->end; notices the writer's exit */
            rc = -1;
        added += t->q.n - before;
        if (!f->live && !f->refs && !f->partial)
            sfile_unlink_free(t, f, true);
    }
    if (added)
        sort_queue(t);
    return rc;
}

/* ---- the writer ------------------------------------------------------------------- */

static int fsync_dir(const char *dir);

static int write_iov(int fd, struct iovec *iov, int iovcnt, off_t off)
{
    int first = 0;
    while (first < iovcnt) {
        ssize_t w = off < 0 ? writev(fd, iov + first, iovcnt - first)
                            : pwritev(fd, iov + first, iovcnt - first, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        if (off >= 0)
            off += w;
        while (first < iovcnt && (size_t)w >= iov[first].iov_len) {
            w -= (ssize_t)iov[first].iov_len;
            first++;
        }
        if (first < iovcnt) {
            iov[first].iov_base = (char *)iov[first].iov_base + w;
            iov[first].iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Publishes the unsynced entries (after an fdatasync). Out of memory
 * (callers reserve room first, so only writer_close's fallback): they are
 * on disk, the log is kept and the next rebuild finds them. */
static void publish_unsynced(struct tgt *t)
{
    for (size_t i = t->u.head; i < t->u.n; i++) {
        struct ent *e = entv_push(&t->q);
        if (!e) {
            index_fail(t, t->wf);
            for (; i < t->u.n; i++)
                ent_free(&t->u.v[i]);
            break;
        }
        *e = t->u.v[i];
        ent_publish(t, e);
        t->u.v[i].extra = NULL;
    }
    t->u.head = t->u.n = 0;
    t->ubytes = t->ucount = 0;
    t->wsynced = t->wend;
}

static int tgt_sync(struct tgt *t)
{
    if (t->wfd < 0 || (t->wend == t->wsynced && !t->wdir_unsynced))
        return 0;
    if (entv_reserve(&t->q, t->u.n - t->u.head) < 0) /* ENOMEM: nothing published yet */
        return -1;
    if (fdatasync(t->wfd) < 0 || (t->wdir_unsynced && fsync_dir(t->dir) < 0))
        return -1;
    t->wdir_unsynced = false;
    publish_unsynced(t);
    return 0;
}

/* Closes our log (its records stay; unlinked if nothing is pending). */
static void writer_close(struct tgt *t)
{
    if (t->wfd < 0)
        return;
    if (tgt_sync(t) < 0)
        publish_unsynced(t); /* written, maybe not durable: still deliverable */
    close(t->wfd);
    t->wfd = -1;
    struct sfile *f = t->wf;
    t->wf = NULL;
    t->wend = t->wsynced = 0;
    t->wdir_unsynced = false;
    if (f && !f->refs && !f->partial)
        sfile_unlink_free(t, f, true);
}

/* A new log holding the first record: unnamed, locked, written, linked;
 * with sync its data and directory entry are made durable here, else by
 * the next tgt_sync (the same durability points as any new file). */
static int writer_open(struct tgt *t, struct iovec *iov, int iovcnt, bool sync, struct err *e)
{
    char tmp[PATH_MAX] = "";
    int fd = open(t->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    bool anon = fd >= 0;
    if (fd < 0) {
        static unsigned n;
        snprintf(tmp, sizeof tmp, "%s/.tmp-%08x-%u.log", t->dir, (unsigned)getpid(), n++);
        fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        err_set(e, "cannot create a log in %s: %s", t->dir, strerror(errno));
        return -1;
    }
    char name[64], dst[PATH_MAX + 64];
    if (flock(fd, LOCK_EX) < 0 || write_iov(fd, iov, iovcnt, -1) < 0 || (sync && fdatasync(fd) < 0))
        goto fail;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    for (int attempt = 0;; attempt++, us++) {
        snprintf(name, sizeof name, "%016llx-%08x.log", (unsigned long long)us, (unsigned)getpid());
        snprintf(dst, sizeof dst, "%s/%s", t->dir, name);
        int rc;
        if (anon) {
            char proc[64];
            snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
            rc = linkat(AT_FDCWD, proc, AT_FDCWD, dst, AT_SYMLINK_FOLLOW);
        } else {
            rc = link(tmp, dst);
        }
        if (rc == 0)
            break;
        if (errno != EEXIST || attempt > 100)
            goto fail;
    }
    if (!anon)
        unlink(tmp);
    if (sync && fsync_dir(t->dir) < 0) {
        int saved = errno;
        unlink(dst);
        errno = saved;
        goto fail;
    }
    struct sfile *f = calloc(1, sizeof *f);
    if (!f) {
        unlink(dst);
        errno = ENOMEM;
        goto fail;
    }
    snprintf(f->name, sizeof f->name, "%s", name);
    struct sfile **pp = &t->files;
    while (*pp)
        pp = &(*pp)->next;
    *pp = f;
    t->wf = f;
    t->wfd = fd;
    t->wdir_unsynced = !sync;
    return 0;
fail:;
    int saved = errno;
    err_set(e, "cannot write a new log in %s: %s", t->dir, strerror(saved));
    close(fd);
    if (!anon)
        unlink(tmp);
    errno = saved;
    return -1;
}

static int append(struct spool *sp, const struct seg_meta *m, const void *payload, size_t len,
                  bool sync, char *name_out, size_t name_n, struct err *e)
{
    if (!m->target[0] || strchr(m->target, '/') || m->target[0] == '.' ||
        strcmp(m->target, "quarantine") == 0 || strlen(m->target) >= SPOOL_NAME_MAX) {
        err_set(e, "bad spool target name \"%s\"", m->target);
        errno = EINVAL;
        return -1;
    }
    struct buf h;
    buf_init(&h, 0);
    if (len > SPOOL_MAX_PAYLOAD || encode_header(m, payload, len, &h) < 0) {
        err_set(e, "cannot encode segment (%zu bytes)", len);
        buf_free(&h);
        errno = ENOMEM;
        return -1;
    }
    uint64_t rl = h.len + len;
    int rc = -1, saved = 0;
    char *extra = NULL;
    pthread_mutex_lock(&sp->mu);
    struct tgt *t = tgt_get(sp, m->target, true);
    /* the index's room first: a record on disk is always indexed */
    if (!t || (m->extra[0] && !(extra = strdup(m->extra))) || entv_reserve(&t->u, 1) < 0 ||
        (sync && entv_reserve(&t->q, t->u.n - t->u.head + 1) < 0)) {
        err_set(e, "cannot index a record for %s: out of memory", m->target);
        saved = ENOMEM;
        goto out;
    }
    if (t->wfd >= 0 && t->wend && t->wend + rl > sp->rotate) {
        writer_close(t);
        if (sync && entv_reserve(&t->q, 1) < 0) { /* writer_close may have used the room */
            err_set(e, "cannot index a record for %s: out of memory", m->target);
            saved = ENOMEM;
            goto out;
        }
    }
    if (t->wfd < 0 && mkdir(t->dir, 0700) < 0 && errno != EEXIST) {
        saved = errno;
        err_set(e, "cannot create %s: %s", t->dir, strerror(saved));
        goto out;
    }
    struct iovec iov[2] = {{h.data, h.len}, {(void *)payload, len}};
    int iovcnt = len ? 2 : 1;
    struct ent *en;
    uint64_t off;
    if (t->wfd < 0) {
        if (writer_open(t, iov, iovcnt, sync, e) < 0) {
            saved = errno;
            goto out;
        }
        off = 0;
        t->wend = rl;
        t->wsynced = sync ? rl : 0;
        en = entv_push(sync ? &t->q : &t->u);
    } else {
        off = t->wend;
        if (write_iov(t->wfd, iov, iovcnt, (off_t)off) < 0 || (sync && fdatasync(t->wfd) < 0)) {
            saved = errno;
            err_set(e, "cannot append to %s/%s: %s", t->dir, t->wf->name, strerror(saved));
            if (ftruncate(t->wfd, (off_t)off) < 0 || saved == EIO)
                writer_close(t); /* the end is unknown: start a new log */
            goto out;
        }
        t->wend += rl;
        if (sync) {
            publish_unsynced(t); /* earlier unsynced records: just made durable too */
            en = entv_push(&t->q);
        } else {
            en = entv_push(&t->u);
        }
    }
    if (!en) { /* cannot happen (reserved): keep the log and rebuild */
        index_fail(t, t->wf);
    } else {
        en->f = t->wf;
        en->off = off;
        en->len = rl;
        en->kind = (uint8_t)m->kind;
        en->created_ms = m->created_ms;
        en->series = m->series;
        en->samples = m->samples;
        en->min_ts = m->min_ts;
        en->max_ts = m->max_ts;
        en->extra = extra;
        extra = NULL;
        if (sync) {
            ent_publish(t, en);
        } else {
            t->ubytes += rl;
            t->ucount++;
        }
    }
    if (name_out) {
        char stem[64];
        snprintf(stem, sizeof stem, "%.*s", (int)strlen(t->wf->name) - 4, t->wf->name);
        snprintf(name_out, name_n, "%s+%llu.seg", stem, (unsigned long long)off);
    }
    rc = 0;
out:
    pthread_mutex_unlock(&sp->mu);
    free(extra);
    buf_free(&h);
    errno = saved;
    return rc;
}

/* ---- the public API ------------------------------------------------------------- */

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Temp files of writes interrupted by a crash (filesystems without
 * O_TMPFILE): removed once older than any write in progress could be. */
static void remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name);
        DIR *d2 = opendir(sub);
        if (!d2)
            continue;
        struct dirent *e2;
        while ((e2 = readdir(d2))) {
            if (!str_has_prefix(e2->d_name, ".tmp-"))
                continue;
            char p[PATH_MAX + 256];
            struct stat st;
            snprintf(p, sizeof p, "%s/%s", sub, e2->d_name);
            if (stat(p, &st) == 0 && time(NULL) - st.st_mtime > 600)
                unlink(p);
        }
        closedir(d2);
    }
    closedir(d);
}

struct spool *spool_open(const char *dir, struct err *e)
{
    struct spool *sp = calloc(1, sizeof *sp);
    if (!sp || !(sp->dir = strdup(dir))) {
        free(sp);
        err_set(e, "out of memory");
        return NULL;
    }
    sp->lock_fd = -1;
    sp->stale = true;
    sp->rotate = SPOOL_ROTATE;
    pthread_mutex_init(&sp->mu, NULL);
    char q[PATH_MAX];
    snprintf(q, sizeof q, "%s/quarantine", dir);
    if (mkdir_p(dir) < 0 || mkdir_p(q) < 0) {
        err_set(e, "cannot create spool directory %s: %s", dir, strerror(errno));
        spool_close(sp);
        return NULL;
    }
    remove_stale_temps(dir);
    if (access(dir, W_OK) < 0) {
        err_set(e, "spool directory %s is not writable: %s", dir, strerror(errno));
        spool_close(sp);
        return NULL;
    }
    return sp;
}

void spool_close(struct spool *sp)
{
    if (!sp)
        return;
    pthread_mutex_lock(&sp->mu);
    for (struct tgt *t = sp->t, *nx; t; t = nx) {
        nx = t->next;
        writer_close(t);
        entv_free(&t->q);
        entv_free(&t->u);
        for (struct sfile *f = t->files, *fn; f; f = fn) {
            fn = f->next;
            free(f);
        }
        free(t);
    }
    sp->t = NULL;
    pthread_mutex_unlock(&sp->mu);
    spool_unlock(sp);
    pthread_mutex_destroy(&sp->mu);
    free(sp->dir);
    free(sp);
}

const char *spool_dir(const struct spool *sp)
{
    return sp->dir;
}

void spool_set_rotate(struct spool *sp, uint64_t bytes)
{
    pthread_mutex_lock(&sp->mu);
    sp->rotate = bytes < MIN_ROTATE ? MIN_ROTATE : bytes;
    pthread_mutex_unlock(&sp->mu);
}

int spool_append(struct spool *sp, const struct seg_meta *m, const void *payload, size_t len,
                 char *name_out, size_t name_n, struct err *e)
{
    return append(sp, m, payload, len, true, name_out, name_n, e);
}

int spool_append_nosync(struct spool *sp, const struct seg_meta *m, const void *payload, size_t len,
                        struct err *e)
{
    return append(sp, m, payload, len, false, NULL, 0, e);
}

int spool_sync(struct spool *sp, const char *target)
{
    int rc = 0;
    pthread_mutex_lock(&sp->mu);
    for (struct tgt *t = sp->t; t; t = t->next)
        if ((!target || strcmp(t->name, target) == 0) && tgt_sync(t) < 0)
            rc = -1;
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

void spool_rotate(struct spool *sp, const char *target)
{
    pthread_mutex_lock(&sp->mu);
    for (struct tgt *t = sp->t; t; t = t->next)
        if (!target || strcmp(t->name, target) == 0)
            writer_close(t);
    pthread_mutex_unlock(&sp->mu);
}

int spool_refresh(struct spool *sp, const char *target)
{
    int rc = 0;
    pthread_mutex_lock(&sp->mu);
    if (sp->stale) {
        rc = ensure(sp);
    } else {
        if (!target) { /* target directories made by other processes */
            char **names;
            size_t n;
            pthread_mutex_unlock(&sp->mu);
            int lr = spool_targets(sp, &names, &n);
            pthread_mutex_lock(&sp->mu);
            if (lr < 0) {
                sp->ierr = errno ? errno : ENOMEM;
                rc = -1;
            }
            for (size_t i = 0; lr == 0 && i < n; i++)
                if (!tgt_get(sp, names[i], false)) {
                    struct tgt *t = tgt_get(sp, names[i], true);
                    if (t) {
                        t->listed = false;
                    } else {
                        sp->ierr = ENOMEM;
                        rc = -1;
                    }
                }
            if (lr == 0)
                strv_free(names, n);
        }
        if (target && !tgt_get(sp, target, false)) { /* made by another process */
            char d[PATH_MAX];
            struct stat st;
            snprintf(d, sizeof d, "%s/%s", sp->dir, target);
            if (stat(d, &st) == 0 && S_ISDIR(st.st_mode) && !tgt_get(sp, target, true)) {
                sp->ierr = ENOMEM;
                rc = -1;
            }
        }
        for (struct tgt *t = sp->t; t; t = t->next)
            if ((!target || strcmp(t->name, target) == 0) && tgt_refresh(t) < 0)
                rc = -1;
        if (rc < 0) { /* a target or file may be missing: rebuild next time */
            sp->stale = true;
            errno = sp->ierr;
        }
    }
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

static void fill_info(const struct tgt *t, const struct ent *e, struct seg_info *si)
{
    memset(si, 0, sizeof *si);
    file_path(t, e->f, si->path, sizeof si->path);
    if (e->f->legacy || e->dmg == DMG_FILE || !str_has_suffix(e->f->name, ".log"))
        snprintf(si->name, sizeof si->name, "%s", e->f->name);
    else
        snprintf(si->name, sizeof si->name, "%.*s+%llu.seg", (int)strlen(e->f->name) - 4,
                 e->f->name, (unsigned long long)e->off);
    snprintf(si->target, sizeof si->target, "%s", t->name);
    si->offset = e->off;
    si->file_size = e->len;
    si->m.kind = (enum seg_kind)e->kind;
    snprintf(si->m.target, sizeof si->m.target, "%s", t->name);
    si->m.created_ms = e->created_ms;
    si->m.series = e->series;
    si->m.samples = e->samples;
    si->m.min_ts = e->min_ts;
    si->m.max_ts = e->max_ts;
    if (e->extra)
        snprintf(si->m.extra, sizeof si->m.extra, "%s", e->extra);
    si->meta_ok = !e->dmg;
    if (e->problem)
        snprintf(si->problem, sizeof si->problem, "%s", e->problem);
}

static const struct ent *first_pending(const struct tgt *t, bool skip_damaged)
{
    for (size_t i = t->q.head; i < t->q.n; i++)
        if (!t->q.v[i].gone && (!skip_damaged || !t->q.v[i].dmg))
            return &t->q.v[i];
    return NULL;
}

int spool_peek(struct spool *sp, const char *target, struct seg_info *out)
{
    pthread_mutex_lock(&sp->mu);
    if (ensure(sp) < 0) {
        int saved = errno;
        pthread_mutex_unlock(&sp->mu);
        errno = saved;
        return -1;
    }
    const struct ent *best = NULL;
    const struct tgt *bt = NULL;
    for (const struct tgt *t = sp->t; t; t = t->next) {
        if (target && strcmp(t->name, target) != 0)
            continue;
        const struct ent *e = first_pending(t, !target);
        if (e && (!best || e->created_ms < best->created_ms)) {
            best = e;
            bt = t;
        }
    }
    if (best)
        fill_info(bt, best, out);
    pthread_mutex_unlock(&sp->mu);
    return best ? 0 : 1;
}

int spool_list(struct spool *sp, const char *target, bool with_meta, struct seg_info **out,
               size_t *n)
{
    (void)with_meta;
    if (spool_refresh(sp, target) < 0)
        return -1;
    pthread_mutex_lock(&sp->mu);
    size_t cnt = 0;
    for (const struct tgt *t = sp->t; t; t = t->next)
        if (!target || strcmp(t->name, target) == 0)
            for (size_t i = t->q.head; i < t->q.n; i++)
                cnt += !t->q.v[i].gone;
    struct seg_info *v = calloc(cnt ? cnt : 1, sizeof *v);
    if (!v) {
        pthread_mutex_unlock(&sp->mu);
        errno = ENOMEM;
        return -1;
    }
    size_t k = 0;
    for (const struct tgt *t = sp->t; t; t = t->next)
        if (!target || strcmp(t->name, target) == 0)
            for (size_t i = t->q.head; i < t->q.n; i++)
                if (!t->q.v[i].gone)
                    fill_info(t, &t->q.v[i], &v[k++]);
    pthread_mutex_unlock(&sp->mu);
    *out = v;
    *n = k;
    return 0;
}

int spool_targets(struct spool *sp, char ***names, size_t *n)
{
    DIR *d = opendir(sp->dir);
    *names = NULL;
    *n = 0;
    if (!d)
        return -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_target_dir(sp, de->d_name))
            continue;
        char **nv = realloc(*names, (*n + 1) * sizeof *nv);
        if (!nv)
            goto fail;
        *names = nv;
        if (!(nv[*n] = strdup(de->d_name)))
            goto fail;
        (*n)++;
    }
    closedir(d);
    if (*n > 1)
        qsort(*names, *n, sizeof **names, cmp_str);
    return 0;
fail:
    closedir(d);
    strv_free(*names, *n);
    *names = NULL;
    *n = 0;
    return -1;
}

/* Reads `len` bytes at `off` of path into b (exactly; -1 with why). */
static int read_at(const char *path, uint64_t off, uint64_t len, struct buf *b, struct err *e)
{
    buf_reset(b);
    if (len > (uint64_t)SPOOL_MAX_PAYLOAD + MAX_HEADER) {
        err_set(e, "%s at offset %llu: %llu bytes, larger than any record", path,
                (unsigned long long)off, (unsigned long long)len);
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int saved = errno;
        err_set(e, "%s: %s", path, strerror(saved));
        errno = saved;
        return -1;
    }
    if (buf_reserve(b, (size_t)len + 1) < 0) {
        close(fd);
        err_set(e, "%s: out of memory", path);
        errno = ENOMEM;
        return -1;
    }
    struct rd r = {.fd = fd};
    size_t got = rd_read(&r, off, b->data, (size_t)len, off + len);
    close(fd);
    b->len = got;
    b->data[got] = '\0';
    if (got != len) {
        err_set(e, "%s at offset %llu: truncated (%zu of %llu bytes there)", path,
                (unsigned long long)off, got, (unsigned long long)len);
        return -1;
    }
    return 0;
}

int spool_read_rec(const struct seg_info *si, struct seg_meta *m, struct buf *payload,
                   struct err *e)
{
    if (!si->meta_ok) {
        err_set(e, "%s: %s", si->path, si->problem);
        return -1;
    }
    errno = 0;
    if (read_at(si->path, si->offset, si->file_size, payload, e) < 0) {
        bool gone = errno == ENOENT;
        buf_reset(payload);
        return gone ? 1 : -1;
    }
    if (payload->len > STATE_OFF && payload->data[STATE_OFF] && str_has_suffix(si->path, ".log")) {
        buf_reset(payload); /* marked done by another process meanwhile */
        return 1;
    }
    const void *p;
    size_t pl;
    struct err e2;
    if (spool_decode(payload->data, payload->len, m, &p, &pl, &e2) < 0) {
        err_set(e, "%s at offset %llu: %s", si->path, (unsigned long long)si->offset, e2.msg);
        buf_reset(payload);
        return -1;
    }
    memmove(payload->data, p, pl);
    payload->len = pl;
    payload->data[pl] = '\0';
    return 0;
}

int spool_read(const char *path, struct seg_meta *m, struct buf *payload, struct err *e)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        err_set(e, "%s: %s", path, strerror(errno));
        buf_reset(payload);
        return -1;
    }
    if ((uint64_t)st.st_size > (uint64_t)SPOOL_MAX_PAYLOAD + MAX_HEADER) {
        err_set(e, "%s: %lld bytes, larger than any segment", path, (long long)st.st_size);
        buf_reset(payload);
        return -1;
    }
    struct seg_info si;
    memset(&si, 0, sizeof si);
    snprintf(si.path, sizeof si.path, "%s", path);
    si.file_size = (uint64_t)st.st_size + 1; /* one more: a file that grew is noticed */
    si.meta_ok = true;
    if (read_at(path, 0, si.file_size, payload, e) < 0 && payload->len != (size_t)st.st_size) {
        buf_reset(payload);
        return -1;
    }
    const void *p;
    size_t pl;
    struct err e2;
    if (spool_decode(payload->data, payload->len, m, &p, &pl, &e2) < 0) {
        err_set(e, "%s: %s", path, e2.msg);
        buf_reset(payload);
        return -1;
    }
    memmove(payload->data, p, pl);
    payload->len = pl;
    payload->data[pl] = '\0';
    return 0;
}

static struct ent *find_ent(struct spool *sp, const struct seg_info *si, struct tgt **tout)
{
    struct tgt *t = tgt_get(sp, si->target[0] ? si->target : si->m.target, false);
    const char *base = strrchr(si->path, '/');
    base = base ? base + 1 : si->path;
    *tout = t;
    if (!t)
        return NULL;
    for (size_t i = t->q.head; i < t->q.n; i++) {
        struct ent *e = &t->q.v[i];
        if (!e->gone && e->off == si->offset && strcmp(e->f->name, base) == 0)
            return e;
    }
    return NULL;
}

static int pwrite_sync(const char *path, const void *b, size_t n, uint64_t off, bool sync)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    int rc = pwrite(fd, b, n, (off_t)off) == (ssize_t)n ? 0 : -1;
    if (rc == 0 && sync)
        rc = fdatasync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* Marks e done on disk (state byte, dead marker, truncation or unlink) and
 * drops it from the index. */
static int mark_done(struct tgt *t, struct ent *e)
{
    char p[PATH_MAX];
    file_path(t, e->f, p, sizeof p);
    int rc = 0;
    /* the file goes right after: its records need not be synced as done */
    bool last = e->f->refs == 1 && e->f != t->wf && !e->f->live && !e->f->partial;
    if (e->f->legacy || e->dmg == DMG_FILE) {
        if (unlink(p) < 0 && errno != ENOENT)
            rc = -1;
    } else if (e->dmg == DMG_TAIL) {
        int fd = open(p, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            rc = ftruncate(fd, (off_t)e->off) == 0 && fdatasync(fd) == 0 ? 0 : -1;
            close(fd);
        }
    } else if (e->dmg == DMG_REGION) {
        size_t n = e->len < 8 ? (size_t)e->len : 8;
        rc = pwrite_sync(p, DEAD, n, e->off, !last);
    } else {
        static const unsigned char done = 1;
        rc = pwrite_sync(p, &done, 1, e->off + STATE_OFF, !last);
    }
    ent_drop(t, e, true);
    return rc;
}

int spool_remove(struct spool *sp, const struct seg_info *si)
{
    pthread_mutex_lock(&sp->mu);
    int rc;
    if (ensure(sp) < 0) {
        /* the index is incomplete: nothing is unlinked on its strength; a
         * record is marked done in place (its log stays), anything else is
         * left for later */
        int saved = errno;
        rc = -1;
        if (si->meta_ok && str_has_suffix(si->path, ".log")) {
            static const unsigned char done = 1;
            rc = pwrite_sync(si->path, &done, 1, si->offset + STATE_OFF, true);
            saved = errno;
        }
        pthread_mutex_unlock(&sp->mu);
        errno = saved;
        return rc;
    }
    struct tgt *t;
    struct ent *e = find_ent(sp, si, &t);
    rc = e ? mark_done(t, e) : 0;
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

/* durable_write_file: a planted symlink at the .reason name is replaced,
 * never followed; best effort (the record itself is what matters) */
static void write_reason(const char *qfile, const struct seg_info *si, const char *reason,
                         const char *answer)
{
    char why[PATH_MAX + 16];
    snprintf(why, sizeof why, "%s.reason", qfile);
    struct buf b;
    buf_init(&b, 0);
    struct err e;
    if (buf_printf(&b, "file: %s\noffset: %llu\nlength: %llu\nreason: %s\n", si->path,
                   (unsigned long long)si->offset, (unsigned long long)si->file_size,
                   reason ? reason : "") == 0 &&
        (!answer || !*answer || buf_printf(&b, "answer:\n%s\n", answer) == 0))
        durable_write_file(why, b.data, b.len, 0600, &e);
    buf_free(&b);
}

int spool_quarantine(struct spool *sp, const struct seg_info *si, const char *reason,
                     const char *answer)
{
    char qdir[PATH_MAX], dst[PATH_MAX];
    snprintf(qdir, sizeof qdir, "%s/quarantine", sp->dir);
    mkdir(qdir, 0700);
    const char *tname = si->target[0] ? si->target : si->m.target;
    if (!tname[0]) { /* a path only: the parent directory's name */
        const char *slash = strrchr(si->path, '/');
        static __thread char parent[SPOOL_NAME_MAX];
        parent[0] = '\0';
        if (slash) {
            const char *p = slash;
            while (p > si->path && p[-1] != '/')
                p--;
            snprintf(parent, sizeof parent, "%.*s", (int)(slash - p), p);
        }
        tname = parent;
    }
    snprintf(dst, sizeof dst, "%s/%s__%s", qdir, tname, si->name);
    pthread_mutex_lock(&sp->mu);
    if (ensure(sp) < 0) { /* ENOMEM: the caller keeps the entry for later */
        int saved = errno;
        pthread_mutex_unlock(&sp->mu);
        errno = saved;
        return -1;
    }
    struct tgt *t;
    struct ent *e = find_ent(sp, si, &t);
    int rc = 0;
    /* an entry gone meanwhile (dropped by a cap): nothing to do, unless a
     * caller names a whole file (a .seg or foreign file) by its path */
    bool whole = e ? e->f->legacy || e->dmg == DMG_FILE : !str_has_suffix(si->path, ".log");
    if (!e && !whole) {
        pthread_mutex_unlock(&sp->mu);
        return 0;
    }
    if (whole) {
        if (rename(si->path, dst) < 0)
            rc = -1;
        else if (e)
            ent_drop(t, e, false);
    } else {
        struct buf b;
        struct err er;
        buf_init(&b, 0);
        char base[PATH_MAX];
        const char *slash = strrchr(dst, '/');
        snprintf(base, sizeof base, "%s", slash + 1);
        errno = 0;
        if (read_at(si->path, si->offset, si->file_size, &b, &er) < 0 && b.len == 0) {
            if (errno == ENOMEM) /* not the region's fault: keep it for later */
                rc = -1;
            buf_reset(&b); /* an unreadable region: the .reason file still says what it was */
        }
        if (rc == 0 &&
            write_file_durable(qdir, base, b.data ? b.data : "", b.len, NULL, 0, &er) < 0)
            rc = -1;
        buf_free(&b);
        if (rc == 0)
            rc = mark_done(t, e);
    }
    pthread_mutex_unlock(&sp->mu);
    if (rc == 0) {
        write_reason(dst, si, reason, answer);
        fsync_dir(qdir);
    }
    return rc;
}

int spool_lock(struct spool *sp)
{
    if (sp->lock_fd >= 0)
        return 0;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/.lock", sp->dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int busy = errno == EWOULDBLOCK;
        close(fd);
        return busy ? 1 : -1;
    }
    sp->lock_fd = fd;
    /* whoever held it may have delivered: rebuild the index */
    pthread_mutex_lock(&sp->mu);
    sp->stale = true;
    pthread_mutex_unlock(&sp->mu);
    return 0;
}

int spool_lock_note(struct spool *sp, const char *note)
{
    if (sp->lock_fd < 0) {
        errno = EBADF;
        return -1;
    }
    size_t len = strlen(note);
    if (ftruncate(sp->lock_fd, 0) < 0 || pwrite(sp->lock_fd, note, len, 0) != (ssize_t)len)
        return -1;
    return 0;
}

int spool_lock_holder(const struct spool *sp, char *note, size_t cap)
{
    if (cap)
        note[0] = '\0';
    if (sp->lock_fd >= 0)
        return 0; /* this process holds it */
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/.lock", sp->dir);
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    int held = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK) {
            close(fd);
            return -1;
        }
        held = 1;
        ssize_t r = cap ? pread(fd, note, cap - 1, 0) : 0;
        if (r > 0)
            note[r] = '\0';
    }
    close(fd);
    return held;
}

void spool_unlock(struct spool *sp)
{
    if (sp->lock_fd >= 0) {
        flock(sp->lock_fd, LOCK_UN);
        close(sp->lock_fd);
        sp->lock_fd = -1;
    }
}

int spool_usage(struct spool *sp, const char *target, struct spool_usage *u)
{
    memset(u, 0, sizeof *u);
    pthread_mutex_lock(&sp->mu);
    if (ensure(sp) < 0) {
        int saved = errno;
        pthread_mutex_unlock(&sp->mu);
        errno = saved;
        return -1;
    }
    for (const struct tgt *t = sp->t; t; t = t->next) {
        if (target && strcmp(t->name, target) != 0)
            continue;
        u->bytes += t->bytes + t->ubytes;
        u->segments += t->count + t->ucount;
        const struct ent *e = first_pending(t, true);
        if (e && (!u->oldest_ms || e->created_ms < u->oldest_ms))
            u->oldest_ms = e->created_ms;
    }
    pthread_mutex_unlock(&sp->mu);
    return 0;
}

/* util's durable writer: a random O_EXCL|O_NOFOLLOW temp name, never a
 * predictable one that a planted symlink could redirect */
int write_file_durable(const char *dir, const char *name, const void *a, size_t alen, const void *b,
                       size_t blen, struct err *e)
{
    char dst[PATH_MAX];
    if (snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst) {
        err_set(e, "cannot write %s/%s: path too long", dir, name);
        errno = ENAMETOOLONG;
        return -1;
    }
    struct durable_file *f = durable_open(dst, 0600, e);
    if (!f)
        return -1;
    if (durable_write(f, a, alen, e) < 0 || (blen && durable_write(f, b, blen, e) < 0)) {
        int saved = errno;
        durable_abort(f);
        errno = saved;
        return -1;
    }
    return durable_commit(f, e);
}
