/* The spool index: per target, the pending records in FIFO order, built by
 * scanning the logs (ensure/tgt_rebuild) and refreshed for logs other
 * processes write (tgt_refresh). Contract: spool.h ("Index", "Out of
 * memory"), spool_int.h. */
#include "spool_int.h"

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

/* ---- the index --------------------------------------------------------------- */

static int64_t name_ms(const char *name)
{
    unsigned long long us;
    return sscanf(name, "%16llx", &us) == 1 ? (int64_t)(us / 1000) : 0;
}

void ent_free(struct ent *e)
{
    free(e->extra);
    free(e->problem);
    e->extra = e->problem = NULL;
}

/* Room for k more entries: the next k entv_push calls cannot fail. -1
 * (errno ENOMEM) when out of memory, q unchanged. */
int entv_reserve(struct entv *q, size_t k)
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

struct ent *entv_push(struct entv *q)
{
    if (entv_reserve(q, 1) < 0)
        return NULL;
    struct ent *e = &q->v[q->n++];
    memset(e, 0, sizeof *e);
    return e;
}

void entv_free(struct entv *q)
{
    for (size_t i = q->head; i < q->n; i++)
        ent_free(&q->v[i]);
    free(q->v);
    memset(q, 0, sizeof *q);
}

void file_path(const struct tgt *t, const struct sfile *f, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", t->dir, f->name);
}

void sfile_unlink_free(struct tgt *t, struct sfile *f, bool unlink_it)
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
void ent_drop(struct tgt *t, struct ent *e, bool unlink_file)
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

void ent_publish(struct tgt *t, struct ent *e)
{
    if (e->f)
        e->f->refs++;
    if (!e->dmg) {
        t->bytes += e->len;
        t->count++;
    }
}

struct tgt *tgt_get(struct spool *sp, const char *name, bool create)
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
void index_fail(struct tgt *t, struct sfile *f)
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

int cmp_str(const void *a, const void *b)
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

/* A spool_dir entry that is a target's directory (not hidden, not
 * quarantine/, a name that fits SPOOL_NAME_MAX). */
bool is_target_dir(const struct spool *sp, const char *name)
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
int ensure(struct spool *sp)
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
int tgt_refresh(struct tgt *t)
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
