#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAGIC      "NXSHSPL1"
#define VERSION    1
#define FIXED_LEN  56
#define MAX_HEADER (64 * 1024)

struct spool {
    char *dir;
    int lock_fd;
    unsigned counter;
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
            if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Temp files of writes interrupted by a crash: removed once they are older
 * than any write in progress could be. */
static void remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "quarantine") == 0)
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
            char p[PATH_MAX];
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
    spool_unlock(sp);
    free(sp->dir);
    free(sp);
}

const char *spool_dir(const struct spool *sp)
{
    return sp->dir;
}

/* Writes the header of a segment holding `len` payload bytes into out. */
static int encode_header(const struct seg_meta *m, const void *payload, size_t len, struct buf *out)
{
    size_t tl = strnlen(m->target, sizeof m->target);
    size_t xl = strnlen(m->extra, sizeof m->extra);
    size_t hl = FIXED_LEN + 2 + tl + 2 + xl + 4;
    if (len > SPOOL_MAX_PAYLOAD)
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
    put32(h + hl - 4, crc32c(0, h, hl - 4));
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
    if (len < FIXED_LEN + 8) {
        err_set(e, len ? "truncated (%zu bytes, shorter than a header)" : "empty file (%zu bytes)",
                len);
        return -1;
    }
    if (memcmp(h, MAGIC, 8) != 0) {
        err_set(e, "not a spool segment (bad magic)");
        return -1;
    }
    if (get16(h + 8) != VERSION) {
        err_set(e, "unsupported segment version %u", get16(h + 8));
        return -1;
    }
    uint32_t hl = get32(h + 12);
    if (hl < FIXED_LEN + 8 || hl > MAX_HEADER || hl > len) {
        err_set(e, "truncated or corrupt header (header length %u, file %zu bytes)", hl, len);
        return -1;
    }
    if (crc32c(0, h, hl - 4) != get32(h + hl - 4)) {
        err_set(e, "header CRC mismatch");
        return -1;
    }
    uint16_t tl = get16(h + 56);
    if ((size_t)58 + tl + 2 + 4 > hl || tl >= sizeof m->target) {
        err_set(e, "corrupt header (target length %u)", tl);
        return -1;
    }
    uint16_t xl = get16(h + 58 + tl);
    if ((size_t)60 + tl + xl + 4 != hl || xl >= sizeof m->extra) {
        err_set(e, "corrupt header (extra length %u)", xl);
        return -1;
    }
    uint32_t pl = get32(h + 48);
    if ((uint64_t)hl + pl != len) {
        err_set(e, "truncated: header says %u payload bytes, file holds %zu", pl, len - hl);
        return -1;
    }
    if (crc32c(0, h + hl, pl) != get32(h + 52)) {
        err_set(e, "payload CRC mismatch");
        return -1;
    }
    memset(m, 0, sizeof *m);
    m->kind = (enum seg_kind)h[10];
    if (m->kind != SEG_REMOTE_WRITE && m->kind != SEG_PUSHGATEWAY) {
        err_set(e, "unknown segment kind %u", h[10]);
        return -1;
    }
    m->created_ms = (int64_t)get64(h + 16);
    m->series = get32(h + 24);
    m->samples = get32(h + 28);
    m->min_ts = (int64_t)get64(h + 32);
    m->max_ts = (int64_t)get64(h + 40);
    memcpy(m->target, h + 58, tl);
    memcpy(m->extra, h + 60 + tl, xl);
    *payload = h + hl;
    *plen = pl;
    return 0;
}

int spool_read(const char *path, struct seg_meta *m, struct buf *payload, struct err *e)
{
    /* decode exactly the bytes read (the file may change under us: never
     * trust the size stat reported); the caller's buffer is reused */
    int rc = -1;
    buf_reset(payload);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        err_set(e, "%s: %s", path, strerror(errno));
        goto out;
    }
    if ((uint64_t)st.st_size > SPOOL_MAX_PAYLOAD + MAX_HEADER) {
        err_set(e, "%s: %lld bytes, larger than any segment", path, (long long)st.st_size);
        goto out;
    }
    /* one byte more than stat said, so a file that grew is noticed */
    size_t want = (size_t)st.st_size + 1;
    if (buf_reserve(payload, want) < 0) {
        err_set(e, "%s: out of memory", path);
        goto out;
    }
    while (payload->len < want) {
        ssize_t n = read(fd, payload->data + payload->len, want - payload->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err_set(e, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        payload->len += (size_t)n;
    }
    const void *p;
    size_t pl;
    struct err e2;
    if (spool_decode(payload->data, payload->len, m, &p, &pl, &e2) < 0) {
        err_set(e, "%s: %s", path, e2.msg);
        goto out;
    }
    memmove(payload->data, p, pl);
    payload->len = pl;
    payload->data[pl] = '\0';
    rc = 0;
out:
    if (rc < 0)
        buf_reset(payload);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int write_durable(const char *dir, const char *name, const void *a, size_t alen,
                         const void *b, size_t blen, bool sync_dir, bool noreplace, struct err *e);

int write_file_durable(const char *dir, const char *name, const void *a, size_t alen, const void *b,
                       size_t blen, struct err *e)
{
    return write_durable(dir, name, a, alen, b, blen, true, false, e);
}

/* temp file, write, fsync, rename; then the directory is fsync'd unless the
 * caller batches that (spool_sync). With noreplace an existing file is
 * never replaced (EEXIST): segments get new names instead. */
static int write_durable(const char *dir, const char *name, const void *a, size_t alen,
                         const void *b, size_t blen, bool sync_dir, bool noreplace, struct err *e)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/.tmp-%s", dir, name);
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    /* noreplace: an unnamed file (O_TMPFILE) linked into place once it is
     * complete: no temp name to create and remove, and linkat() never
     * replaces. Filesystems without O_TMPFILE take the temp + link path. */
    bool anon = false;
    int fd = -1;
    if (noreplace) {
        fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
        anon = fd >= 0;
    }
    if (fd < 0)
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        err_set(e, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    /* header and payload in one writev (short writes resumed) */
    struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
    int iovcnt = blen ? 2 : 1, first = 0;
    while (first < iovcnt) {
        ssize_t w = writev(fd, iov + first, iovcnt - first);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        while (first < iovcnt && (size_t)w >= iov[first].iov_len) {
            w -= (ssize_t)iov[first].iov_len;
            first++;
        }
        if (first < iovcnt) {
            iov[first].iov_base = (char *)iov[first].iov_base + w;
            iov[first].iov_len -= (size_t)w;
        }
    }
    if (fsync(fd) < 0)
        goto fail;
    if (anon) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, dst, AT_SYMLINK_FOLLOW) < 0)
            goto fail;
        close(fd);
        fd = -1;
        if (sync_dir && fsync_dir(dir) < 0)
            goto fail;
        return 0;
    }
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (noreplace) {
        if (link(tmp, dst) < 0) /* unlike rename, never overwrites */
            goto fail;
        unlink(tmp);
    } else if (rename(tmp, dst) < 0) {
        goto fail;
    }
    if (sync_dir && fsync_dir(dir) < 0)
        goto fail;
    return 0;
fail:;
    int saved = errno;
    err_set(e, "cannot write %s: %s", dst, strerror(saved));
    if (fd >= 0)
        close(fd);
    if (!anon)
        unlink(tmp);
    errno = saved;
    return -1;
}

static int append(struct spool *sp, const struct seg_meta *m, const void *payload, size_t len,
                  bool sync_dir, char *name_out, size_t name_n, struct err *e)
{
    char tdir[PATH_MAX];
    if (!m->target[0] || strchr(m->target, '/') || m->target[0] == '.') {
        err_set(e, "bad spool target name \"%s\"", m->target);
        errno = EINVAL;
        return -1;
    }
    snprintf(tdir, sizeof tdir, "%s/%s", sp->dir, m->target);
    if (mkdir(tdir, 0750) < 0 && errno != EEXIST) {
        err_set(e, "cannot create %s: %s", tdir, strerror(errno));
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
    int rc = -1;
    char name[64];
    for (int attempt = 0; attempt < 4; attempt++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
        snprintf(name, sizeof name, "%016llx-%08x-%04x.seg", (unsigned long long)us,
                 (unsigned)getpid(), (sp->counter++) & 0xffff);
        rc = write_durable(tdir, name, h.data, h.len, payload, len, sync_dir, true, e);
        if (rc == 0 || errno != EEXIST)
            break;
    }
    int saved = errno;
    buf_free(&h);
    if (rc == 0 && name_out)
        snprintf(name_out, name_n, "%s", name);
    errno = saved;
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
    char tdir[PATH_MAX];
    snprintf(tdir, sizeof tdir, "%s/%s", sp->dir, target);
    return fsync_dir(tdir);
}

static int cmp_info(const void *a, const void *b)
{
    const struct seg_info *x = a, *y = b;
    return strcmp(x->name, y->name);
}

static int read_header(struct seg_info *si)
{
    unsigned char h[4096]; /* headers are ~100 bytes + target + extra (< 1.2 KiB) */
    int fd = open(si->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(si->problem, sizeof si->problem, "%s", strerror(errno));
        return -1;
    }
    ssize_t n = pread(fd, h, sizeof h, 0);
    close(fd);
    if (n < FIXED_LEN + 8) {
        snprintf(si->problem, sizeof si->problem, "truncated (%zd bytes)", n < 0 ? 0 : n);
        return -1;
    }
    if (memcmp(h, MAGIC, 8) != 0 || get16(h + 8) != VERSION) {
        snprintf(si->problem, sizeof si->problem, "not a spool segment (bad magic)");
        return -1;
    }
    uint32_t hl = get32(h + 12);
    if (hl < FIXED_LEN + 8 || hl > (uint32_t)n || crc32c(0, h, hl - 4) != get32(h + hl - 4)) {
        snprintf(si->problem, sizeof si->problem, "header CRC mismatch or truncated header");
        return -1;
    }
    uint16_t tl = get16(h + 56);
    uint16_t xl = (size_t)58 + tl + 2 <= hl ? get16(h + 58 + tl) : 0xffff;
    if ((size_t)60 + tl + xl + 4 != hl || tl >= SPOOL_NAME_MAX || xl >= sizeof si->m.extra) {
        snprintf(si->problem, sizeof si->problem, "corrupt header");
        return -1;
    }
    if ((uint64_t)hl + get32(h + 48) != si->file_size) {
        snprintf(si->problem, sizeof si->problem, "truncated: %llu bytes, header says %llu",
                 (unsigned long long)si->file_size, (unsigned long long)hl + get32(h + 48));
        return -1;
    }
    memset(&si->m, 0, sizeof si->m);
    si->m.kind = (enum seg_kind)h[10];
    si->m.created_ms = (int64_t)get64(h + 16);
    si->m.series = get32(h + 24);
    si->m.samples = get32(h + 28);
    si->m.min_ts = (int64_t)get64(h + 32);
    si->m.max_ts = (int64_t)get64(h + 40);
    memcpy(si->m.target, h + 58, tl);
    memcpy(si->m.extra, h + 60 + tl, xl);
    si->meta_ok = true;
    return 0;
}

static int list_dir(const char *dir, bool with_meta, struct seg_info **v, size_t *n, size_t *cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue; /* ., .., and .tmp-* partial writes */
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            struct seg_info *nv = realloc(*v, nc * sizeof *nv);
            if (!nv) {
                closedir(d);
                return -1;
            }
            *v = nv;
            *cap = nc;
        }
        struct seg_info *si = &(*v)[*n];
        memset(si, 0, sizeof *si);
        snprintf(si->name, sizeof si->name, "%.63s", de->d_name);
        snprintf(si->path, sizeof si->path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(si->path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        si->file_size = (uint64_t)st.st_size;
        if (!str_has_suffix(de->d_name, ".seg") || strlen(de->d_name) >= sizeof si->name)
            snprintf(si->problem, sizeof si->problem, "foreign file (not a .seg segment)");
        else if (with_meta)
            read_header(si);
        (*n)++;
    }
    closedir(d);
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
        if (de->d_name[0] == '.' || strcmp(de->d_name, "quarantine") == 0)
            continue;
        char p[PATH_MAX];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", sp->dir, de->d_name);
        if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
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
    return 0;
fail:
    closedir(d);
    strv_free(*names, *n);
    *names = NULL;
    *n = 0;
    return -1;
}

int spool_list(struct spool *sp, const char *target, bool with_meta, struct seg_info **out,
               size_t *n)
{
    struct seg_info *v = NULL;
    size_t cnt = 0, cap = 0;
    char dir[PATH_MAX];
    if (target) {
        snprintf(dir, sizeof dir, "%s/%s", sp->dir, target);
        if (list_dir(dir, with_meta, &v, &cnt, &cap) < 0)
            goto fail;
    } else {
        char **t;
        size_t nt;
        if (spool_targets(sp, &t, &nt) < 0)
            goto fail;
        for (size_t i = 0; i < nt; i++) {
            snprintf(dir, sizeof dir, "%s/%s", sp->dir, t[i]);
            if (list_dir(dir, with_meta, &v, &cnt, &cap) < 0) {
                strv_free(t, nt);
                goto fail;
            }
        }
        strv_free(t, nt);
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_info);
    *out = v;
    *n = cnt;
    return 0;
fail:
    free(v);
    return -1;
}

int spool_remove(struct spool *sp, const struct seg_info *si)
{
    (void)sp;
    if (unlink(si->path) < 0 && errno != ENOENT)
        return -1;
    return 0;
}

int spool_quarantine(struct spool *sp, const struct seg_info *si, const char *reason,
                     const char *answer)
{
    char qdir[PATH_MAX], dst[PATH_MAX + 80], why[PATH_MAX + 90];
    snprintf(qdir, sizeof qdir, "%s/quarantine", sp->dir);
    mkdir(qdir, 0750);
    /* prefix with the target so names stay unique across targets */
    const char *slash = strrchr(si->path, '/');
    char parent[SPOOL_NAME_MAX + 1] = "";
    if (slash) {
        const char *p = slash;
        while (p > si->path && p[-1] != '/')
            p--;
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - p), p);
    }
    snprintf(dst, sizeof dst, "%s/%s__%s", qdir, parent, si->name);
    if (rename(si->path, dst) < 0)
        return -1;
    snprintf(why, sizeof why, "%s.reason", dst);
    FILE *f = fopen(why, "we");
    if (f) {
        fprintf(f, "reason: %s\n", reason ? reason : "");
        if (answer && *answer)
            fprintf(f, "answer:\n%s\n", answer);
        fflush(f);
        fsync(fileno(f));
        fclose(f);
    }
    fsync_dir(qdir);
    return 0;
}

int spool_lock(struct spool *sp)
{
    if (sp->lock_fd >= 0)
        return 0;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/.lock", sp->dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int busy = errno == EWOULDBLOCK;
        close(fd);
        return busy ? 1 : -1;
    }
    sp->lock_fd = fd;
    return 0;
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
    struct seg_info *v;
    size_t n;
    if (spool_list(sp, target, false, &v, &n) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i].problem[0])
            continue;
        u->bytes += v[i].file_size;
        u->segments++;
        unsigned long long us;
        if (!u->oldest_ms && sscanf(v[i].name, "%16llx", &us) == 1)
            u->oldest_ms = (int64_t)(us / 1000);
    }
    free(v);
    return 0;
}
