/* Retiring spooled records: the done mark (spool_remove) and quarantine
 * (a copy with a .reason file, then the record marked done or a damaged
 * region overwritten with NXSHDEAD). Contract: spool.h ("Done",
 * "Damage"), spool_int.h. */
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
