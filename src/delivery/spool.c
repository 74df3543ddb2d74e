/* The spool: open/close, listing and reading records, the spool lock,
 * usage; the format, index, writer and quarantine are in spool_record.c,
 * spool_index.c, spool_writer.c and spool_quarantine.c (spool_int.h).
 * Contract: spool.h. */
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

/* ---- the public API ------------------------------------------------------------- */

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

/* Takes sp->mu and ensure()s the index; on failure releases the lock
 * (errno as ensure left it) and returns -1. */
static int lock_ensured(struct spool *sp)
{
    pthread_mutex_lock(&sp->mu);
    if (ensure(sp) < 0) {
        int saved = errno;
        pthread_mutex_unlock(&sp->mu);
        errno = saved;
        return -1;
    }
    return 0;
}

int spool_peek(struct spool *sp, const char *target, struct seg_info *out)
{
    if (lock_ensured(sp) < 0)
        return -1;
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
int read_at(const char *path, uint64_t off, uint64_t len, struct buf *b, struct err *e)
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

/* Decodes the record read into payload and leaves only its payload there
 * (NUL-terminated); on a bad record empties payload and says why in e2. */
static int decode_in_place(struct buf *payload, struct seg_meta *m, struct err *e2)
{
    const void *p;
    size_t pl;
    if (spool_decode(payload->data, payload->len, m, &p, &pl, e2) < 0) {
        buf_reset(payload);
        return -1;
    }
    memmove(payload->data, p, pl);
    payload->len = pl;
    payload->data[pl] = '\0';
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
    struct err e2;
    if (decode_in_place(payload, m, &e2) < 0) {
        err_set(e, "%s at offset %llu: %s", si->path, (unsigned long long)si->offset, e2.msg);
        return -1;
    }
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
    struct err e2;
    if (decode_in_place(payload, m, &e2) < 0) {
        err_set(e, "%s: %s", path, e2.msg);
        return -1;
    }
    return 0;
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
    if (lock_ensured(sp) < 0)
        return -1;
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
