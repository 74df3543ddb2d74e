/* skopeo_metrics: see skopeo_metrics.h. */
#include "skopeo_metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* ---- metrics (the seed's names) --------------------------------------- */

static const double dur_bounds[] = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
/* The seed's boundaries (1024, 10240, 1048576; its durations 0.1, 0.5,
 * 1), extended upward so that big blobs and long copies are not all +Inf. */
static const double size_bounds[] = {1024.0,      10240.0,      1048576.0,
                                     10485760.0,  104857600.0,  1073741824.0,
                                     10737418240.0};
/* Sizes of state files written before 0.5 (their "bsize" lines): an old
 * bucket's observations are counted in the smallest new bucket that
 * contains it (never below its real bound). */
static const double old_size_bounds[] = {1024.0,     4096.0,      16384.0,      65536.0,
                                         262144.0,   1048576.0,   4194304.0,    16777216.0,
                                         67108864.0, 268435456.0, 1073741824.0, 4294967296.0};
#define N_DUR  NS_ARRAY_LEN(dur_bounds)
#define N_SIZE NS_ARRAY_LEN(size_bounds)

static const struct metric_desc m_ops = {"skopeo_operations_total", MT_COUNTER,
                                         "Skopeo operations by type and status.", ""};
static const struct metric_desc m_dur = {"skopeo_operation_duration_seconds", MT_HISTOGRAM,
                                         "Duration of skopeo operations in seconds.", "seconds"};
static const struct metric_desc m_blobs = {"skopeo_blobs_processed_total", MT_COUNTER,
                                           "Blobs processed by skopeo operations.", ""};
static const struct metric_desc m_bsize = {
    "skopeo_blob_size_bytes", MT_HISTOGRAM,
    "Sizes of the processed blobs in bytes (from the "
    "source manifest; blobs of unknown size are not observed).",
    "bytes"};
static const struct metric_desc m_active = {"skopeo_active_operations", MT_GAUGE,
                                            "Skopeo operations running now.", ""};
static const struct metric_desc m_errors = {"skopeo_operation_errors_total", MT_COUNTER,
                                            "Failed skopeo operations by error type.", ""};
static const struct metric_desc m_src = {"skopeo_source_operations_total", MT_COUNTER,
                                         "Skopeo operations by source transport.", ""};
static const struct metric_desc m_dst = {"skopeo_destination_operations_total", MT_COUNTER,
                                         "Skopeo operations by destination transport.", ""};
static const struct metric_desc m_last = {
    "skopeo_last_operation_timestamp_seconds", MT_GAUGE,
    "When the last skopeo operation of this type and status ended (Unix time).", "seconds"};

static const char *const status_names[2] = {"success", "error"};

bool skopeo_metrics_enabled(const struct config *cfg)
{
    return cfg && (!cfg->skopeo || cfg->skopeo->enable_metrics);
}

void sk_metrics_init(struct sk_metrics *m)
{
    memset(m, 0, sizeof *m);
    for (int i = 0; i < SKOPEO_OP_COUNT; i++) {
        m->dur[i].bounds = dur_bounds;
        m->dur[i].n = N_DUR;
        m->bsize[i].bounds = size_bounds;
        m->bsize[i].n = N_SIZE;
    }
}

static int op_by_name(const char *s)
{
    for (int i = 0; i < SKOPEO_OP_COUNT; i++)
        if (!strcmp(skopeo_op_name((enum skopeo_op)i), s))
            return i;
    return -1;
}

static int err_by_name(const char *s)
{
    for (int i = 1; i < SKOPEO_ERR_COUNT; i++)
        if (!strcmp(skopeo_error_type_name((enum skopeo_error_type)i), s))
            return i;
    return -1;
}

static void typed_add(struct sk_typed_count *t, size_t *n, int op, const char *type, double v)
{
    for (size_t i = 0; i < *n; i++)
        if (t[i].op == op && !strcmp(t[i].type, type)) {
            t[i].v += v;
            return;
        }
    if (*n >= SK_MAX_TYPES)
        return;
    t[*n].op = op;
    snprintf(t[*n].type, sizeof t[*n].type, "%s", type);
    t[*n].v = v;
    (*n)++;
}

void sk_metrics_record(struct sk_metrics *m, enum skopeo_op op, const char *src, const char *dst,
                       const struct skopeo_result *r)
{
    int st = r->ok ? 0 : 1;
    char tr[32];
    m->used[op] = true;
    m->ops[op][st] += 1;
    m->last_ms[op][st] = (double)now_ms();
    histogram_observe(&m->dur[op], r->duration_s);
    if (!r->ok)
        m->errors[op][r->error_type ? r->error_type : SKOPEO_ERR_OTHER] += 1;
    for (size_t i = 0; i < r->n_blobs; i++) {
        const struct skopeo_blob *b = &r->blobs[i];
        if (!b->copied && !b->skipped)
            continue;
        m->blobs[op][st] += 1;
        if (b->size >= 0)
            histogram_observe(&m->bsize[op], (double)b->size);
    }
    skopeo_transport(src, tr, sizeof tr);
    typed_add(m->src, &m->nsrc, op, tr, 1);
    if (dst) {
        skopeo_transport(dst, tr, sizeof tr);
        typed_add(m->dst, &m->ndst, op, tr, 1);
    }
}

static void hist_write(struct buf *f, const char *kind, int op, const struct histogram *h)
{
    buf_printf(f, "%s %s %.17g %llu", kind, skopeo_op_name((enum skopeo_op)op), h->sum,
               (unsigned long long)h->count);
    for (size_t i = 0; i <= h->n; i++)
        buf_printf(f, " %llu", (unsigned long long)h->counts[i]);
    buf_puts(f, "\n");
}

static void hist_read(char *rest, struct histogram *h, const double *from, size_t nfrom)
{
    char *end;
    h->sum += strtod(rest, &end);
    h->count += strtoull(end, &end, 10);
    for (size_t i = 0; i <= nfrom; i++) {
        uint64_t c = strtoull(end, &end, 10);
        size_t k = h->n; /* +Inf */
        if (i < nfrom)
            for (k = 0; k < h->n && h->bounds[k] < from[i]; k++)
                ;
        h->counts[k] += c;
    }
}

/* Adds the counters stored in `path` to m. Unknown lines are ignored. */
static void metrics_load(struct sk_metrics *m, FILE *f)
{
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char kind[16], a[64], b[64];
        double v;
        int off = 0;
        if (sscanf(line, "%15s %63s %n", kind, a, &off) < 2)
            continue;
        int op = op_by_name(a);
        if (op < 0)
            continue;
        if (!strcmp(kind, "dur")) {
            hist_read(line + off, &m->dur[op], dur_bounds, N_DUR);
            m->used[op] = true;
            continue;
        }
        if (!strcmp(kind, "bsize") || !strcmp(kind, "bsize2")) { /* bsize: before 0.5 */
            bool old = kind[5] == '\0';
            hist_read(line + off, &m->bsize[op], old ? old_size_bounds : size_bounds,
                      old ? NS_ARRAY_LEN(old_size_bounds) : N_SIZE);
            m->used[op] = true;
            continue;
        }
        if (sscanf(line + off, "%63s %lf", b, &v) != 2)
            continue;
        m->used[op] = true;
        if (!strcmp(kind, "ops") || !strcmp(kind, "blobs")) {
            int st = !strcmp(b, "success") ? 0 : !strcmp(b, "error") ? 1 : -1;
            if (st >= 0)
                (kind[0] == 'o' ? m->ops : m->blobs)[op][st] += v;
        } else if (!strcmp(kind, "err")) {
            int et = err_by_name(b);
            if (et > 0)
                m->errors[op][et] += v;
        } else if (!strcmp(kind, "src")) {
            typed_add(m->src, &m->nsrc, op, b, v);
        } else if (!strcmp(kind, "dst")) {
            typed_add(m->dst, &m->ndst, op, b, v);
        } else if (!strcmp(kind, "last")) {
            int st = !strcmp(b, "success") ? 0 : !strcmp(b, "error") ? 1 : -1;
            if (st >= 0 && v > m->last_ms[op][st])
                m->last_ms[op][st] = v;
        }
    }
}

static int metrics_save(const struct sk_metrics *m, struct buf *f)
{
    buf_puts(f, "# nexus-shipper skopeo counters (cumulative); edit only to reset\n");
    for (int op = 0; op < SKOPEO_OP_COUNT; op++) {
        if (!m->used[op])
            continue;
        const char *on = skopeo_op_name((enum skopeo_op)op);
        for (int s = 0; s < 2; s++) {
            buf_printf(f, "ops %s %s %.17g\n", on, status_names[s], m->ops[op][s]);
            buf_printf(f, "blobs %s %s %.17g\n", on, status_names[s], m->blobs[op][s]);
            if (m->last_ms[op][s] > 0)
                buf_printf(f, "last %s %s %.17g\n", on, status_names[s], m->last_ms[op][s]);
        }
        for (int e = 1; e < SKOPEO_ERR_COUNT; e++)
            if (m->errors[op][e] > 0)
                buf_printf(f, "err %s %s %.17g\n", on,
                           skopeo_error_type_name((enum skopeo_error_type)e), m->errors[op][e]);
        hist_write(f, "dur", op, &m->dur[op]);
        hist_write(f, "bsize2", op, &m->bsize[op]);
    }
    for (size_t i = 0; i < m->nsrc; i++)
        buf_printf(f, "src %s %s %.17g\n", skopeo_op_name((enum skopeo_op)m->src[i].op),
                   m->src[i].type, m->src[i].v);
    for (size_t i = 0; i < m->ndst; i++)
        buf_printf(f, "dst %s %s %.17g\n", skopeo_op_name((enum skopeo_op)m->dst[i].op),
                   m->dst[i].type, m->dst[i].v);
    return buf_cstr(f) ? 0 : -1;
}

int sk_metrics_accumulate(const char *state_dir, const struct sk_metrics *run,
                          struct sk_metrics *total)
{
    *total = *run;
    if (!state_dir || !*state_dir)
        return -1;
    char lock[4096], path[4096];
    snprintf(lock, sizeof lock, "%s/skopeo-metrics.lock", state_dir);
    snprintf(path, sizeof path, "%s/skopeo-metrics.state", state_dir);
    mkdir(state_dir, 0750);
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lfd < 0) {
        log_warn("skopeo metrics: cannot open %s: %s (counters of this run only)", lock,
                 strerror(errno));
        return -1;
    }
    int rc = -1;
    struct buf out;
    buf_init(&out, 0);
    struct err e = {{0}};
    if (flock(lfd, LOCK_EX) < 0) {
        err_set(&e, "cannot lock %s: %s", lock, strerror(errno));
        goto out;
    }
    FILE *f = fopen(path, "re");
    if (f) {
        metrics_load(total, f);
        fclose(f);
    }
    if (metrics_save(total, &out) < 0) {
        err_set(&e, "out of memory");
        goto out;
    }
    rc = durable_write_file(path, out.data, out.len, 0600, &e);
out:
    if (rc < 0)
        log_warn("skopeo metrics: cannot update %s: %s", path, e.msg);
    buf_free(&out);
    close(lfd);
    return rc;
}

void sk_metrics_render(const struct sk_metrics *m, struct series_buf *sb)
{
    struct err e;
    for (int op = 0; op < SKOPEO_OP_COUNT; op++) {
        if (!m->used[op] && m->active[op] <= 0)
            continue;
        const char *on = skopeo_op_name((enum skopeo_op)op);
        sb_set(sb, &m_active, m->active[op], "operation", on, (char *)NULL);
        if (!m->used[op])
            continue;
        for (int s = 0; s < 2; s++) {
            sb_set(sb, &m_ops, m->ops[op][s], "operation", on, "status", status_names[s],
                   (char *)NULL);
            sb_set(sb, &m_blobs, m->blobs[op][s], "operation", on, "status", status_names[s],
                   (char *)NULL);
            if (m->last_ms[op][s] > 0)
                sb_set(sb, &m_last, m->last_ms[op][s] / 1000.0, "operation", on, "status",
                       status_names[s], (char *)NULL);
        }
        const char *lab[] = {"operation", on};
        sb_histogram(sb, &m_dur, &m->dur[op], lab, 1, &e);
        sb_histogram(sb, &m_bsize, &m->bsize[op], lab, 1, &e);
        for (int et = 1; et < SKOPEO_ERR_COUNT; et++)
            if (m->errors[op][et] > 0)
                sb_set(sb, &m_errors, m->errors[op][et], "operation", on, "error_type",
                       skopeo_error_type_name((enum skopeo_error_type)et), (char *)NULL);
    }
    for (size_t i = 0; i < m->nsrc; i++)
        sb_set(sb, &m_src, m->src[i].v, "operation", skopeo_op_name((enum skopeo_op)m->src[i].op),
               "source_type", m->src[i].type, (char *)NULL);
    for (size_t i = 0; i < m->ndst; i++)
        sb_set(sb, &m_dst, m->dst[i].v, "operation", skopeo_op_name((enum skopeo_op)m->dst[i].op),
               "destination_type", m->dst[i].type, (char *)NULL);
}

/* ---- operations running now ------------------------------------------- */

struct sk_active {
    int fd;
    char path[4200];
};

struct sk_active *sk_active_begin(const char *state_dir, enum skopeo_op op)
{
    static _Atomic unsigned seq;
    if (!state_dir || !*state_dir)
        return NULL;
    struct sk_active *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/skopeo-active", state_dir);
    mkdir(state_dir, 0750);
    mkdir(dir, 0700);
    snprintf(a->path, sizeof a->path, "%s/%ld-%u.%s", dir, (long)getpid(), seq++,
             skopeo_op_name(op));
    a->fd = open(a->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (a->fd < 0 || flock(a->fd, LOCK_EX) < 0) {
        log_debug("skopeo: cannot register the running operation in %s: %s", dir,
                  strerror(errno));
        if (a->fd >= 0) {
            unlink(a->path);
            close(a->fd);
        }
        free(a);
        return NULL;
    }
    return a;
}

void sk_active_end(struct sk_active *a)
{
    if (!a)
        return;
    unlink(a->path); /* before the lock goes: never counted as dead */
    close(a->fd);
    free(a);
}

/* Counts the running operations by type; removes the files of dead
 * processes (their lock is free). */
static void count_active(const char *state_dir, struct sk_metrics *m)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/skopeo-active", state_dir);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *dot = strrchr(de->d_name, '.');
        int op = dot ? op_by_name(dot + 1) : -1;
        if (op < 0)
            continue;
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_SH | LOCK_NB) == 0) /* nobody holds it: its process died */
            unlinkat(dirfd(d), de->d_name, 0);
        else
            m->active[op] += 1;
        close(fd);
    }
    closedir(d);
}

int sk_metrics_load(const char *state_dir, struct sk_metrics *m)
{
    char lock[4096], path[4096];
    sk_metrics_init(m);
    snprintf(lock, sizeof lock, "%s/skopeo-metrics.lock", state_dir);
    snprintf(path, sizeof path, "%s/skopeo-metrics.state", state_dir);
    int lfd = open(lock, O_RDONLY | O_CLOEXEC);
    if (lfd >= 0)
        flock(lfd, LOCK_SH);
    FILE *f = fopen(path, "re");
    int rc = f || errno == ENOENT ? 0 : -1;
    if (f) {
        metrics_load(m, f);
        fclose(f);
    }
    if (lfd >= 0)
        close(lfd);
    count_active(state_dir, m);
    return rc;
}

int skopeo_metrics_publish(const char *state_dir, struct series_buf *sb)
{
    struct sk_metrics m;
    int rc = sk_metrics_load(state_dir, &m);
    if (rc == 0)
        sk_metrics_render(&m, sb);
    return rc;
}

const struct run_job skopeo_run_job = {.job = "skopeo", .publish = skopeo_metrics_publish};
