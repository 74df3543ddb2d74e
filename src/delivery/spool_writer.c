/* The spool writer: appending records to this process's own log per
 * target (write, fdatasync, directory fsync for a new log, rotation),
 * spool_append/spool_append_nosync/spool_sync/spool_rotate. Contract:
 * spool.h ("Durability"), spool_int.h. */
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

/* ---- the writer ------------------------------------------------------------------- */

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
void writer_close(struct tgt *t)
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

int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
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
