/* bench_encode: CPU and memory figures of the series buffer, the
 * remote-write encoder and the spool writer, on one core.
 *
 *   bench_encode [--series N] [--batch N] [--reps N] [--spool-dir DIR] [--spool-reps N]
 *
 * It fills a series buffer with N series x 1 sample of typical Nexus label
 * sets (five repository families, 4-5 labels each, plus the external
 * labels instance and env), then measures:
 *   (a) rw_encode() of the snapshot in batches of --batch samples (encode +
 *       snappy, what sender_submit() does per batch), samples/s;
 *   (b) the floor: snappy_compress() alone on the same batches' raw
 *       protobuf bytes (obtained once by uncompressing (a)'s output);
 *       the verdict is on time(a) / time(b) <= 3;
 *   (c) wire bytes per sample (compressed), and raw protobuf bytes;
 *   (d) buffer memory per series: RSS delta over the fill, and sb_stats();
 *       the verdict is on the RSS delta (<= 200 bytes per series);
 *   (e) spool write throughput, against a plain sequential write of the
 *       same bytes into one new file with the same durability points:
 *       - per batch: spool_append() of every batch (append to the log +
 *         fdatasync; the new log's directory fsync'd once) vs write +
 *         fdatasync per batch (the new file's directory fsync'd once);
 *       - per cycle (the production path, sender_submit):
 *         spool_append_nosync() of every batch + one spool_sync() vs all
 *         writes + one fdatasync (and the directory fsync'd once);
 *       the verdict is on both ratios >= 0.8. For information, the plain
 *       writes without the directory fsync and with fsync instead of
 *       fdatasync.
 * Timings are repeated --reps times; best and median are printed, ratios
 * use medians. Exit status: 0 unless something failed to run (the bench
 * reports, it does not gate); the last line is the overall verdict. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <snappy-c.h>

#include "remote_write.h"
#include "series.h"
#include "spool.h"
#include "util.h"

#define TARGET_ENCODE_RATIO     3.0
#define TARGET_BYTES_PER_SERIES 200.0
#define TARGET_SPOOL_RATIO      0.8

static const struct metric_desc fam[] = {
    {"nexus_repository_size_bytes", MT_GAUGE,
     "Total size of the blobs of a repository, as reported by its blob store.", "bytes"},
    {"nexus_repository_component_count", MT_GAUGE, "Components stored in a repository.", ""},
    {"nexus_repository_asset_count", MT_GAUGE, "Assets stored in a repository.", ""},
    {"nexus_repository_online", MT_GAUGE, "1 if the repository is online.", ""},
    {"nexus_repository_last_download_timestamp_seconds", MT_GAUGE,
     "Time of the last download from a repository.", "seconds"},
};
#define NFAM (sizeof fam / sizeof fam[0])

static const char *const formats[] = {"docker", "maven2", "npm", "raw", "pypi"};
static const char *const types[] = {"hosted", "proxy", "group"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double best(const double *v, size_t n)
{
    double b = v[0];
    for (size_t i = 1; i < n; i++)
        if (v[i] < b)
            b = v[i];
    return b;
}

/* Sets series i of the fill (cycle c): repository i / NFAM, family i % NFAM. */
static int set_one(struct series_buf *sb, size_t i, unsigned c, struct err *e)
{
    size_t r = i / NFAM, f = i % NFAM;
    char repo[64], store[32];
    const char *fmt = formats[r % 5], *type = types[(r / 5) % 3];
    snprintf(repo, sizeof repo, "%s-%s-%05zu", fmt, type, r);
    snprintf(store, sizeof store, "store-%zu", r % 8);
    uint64_t h = mix(((uint64_t)i << 8) ^ c);
    double v;
    switch (f) {
    case 0:
        v = (double)(h % 200000000000ULL);
        break;
    case 1:
        v = (double)(h % 50000);
        break;
    case 2:
        v = (double)(h % 400000);
        break;
    case 3:
        v = 1;
        break;
    default:
        v = 1.7e9 + (double)(h % 10000000);
        break;
    }
    const char *l[8];
    size_t n = 0;
    if (f <= 2) {
        l[2 * n] = "blobstore";
        l[2 * n + 1] = store;
        n++;
    }
    l[2 * n] = "format";
    l[2 * n + 1] = fmt;
    n++;
    l[2 * n] = "repository";
    l[2 * n + 1] = repo;
    n++;
    l[2 * n] = "type";
    l[2 * n + 1] = type;
    n++;
    return sb_setv(sb, &fam[f], NULL, v, l, n, e);
}

/* ---- spool write throughput -------------------------------------------- */

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Plain sequential write of the segments' bytes into one file. per_batch:
 * fsync after every segment; else once at the end. Returns seconds, <0 on error. */
/* A plain durable writer of the same bytes: a new file, written
 * sequentially, fdatasync'd after every batch (per_batch) or once at the
 * end, its directory fsync'd once after the first sync (a new file is not
 * durable without it) unless !dir_sync; full_fsync: fsync, not fdatasync. */
static double plain_write(const char *dir, struct buf *segs, size_t nseg, int per_batch,
                          int dir_sync, int full_fsync)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/plain.dat", dir);
    double t0 = now_s();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    for (size_t i = 0; i < nseg; i++) {
        if (write_all(fd, segs[i].data, segs[i].len) < 0)
            goto fail;
        if (per_batch || i + 1 == nseg) {
            if ((full_fsync ? fsync(fd) : fdatasync(fd)) < 0)
                goto fail;
            if (dir_sync && (i == 0 || !per_batch)) {
                int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0 || fsync(dfd) < 0) {
                    if (dfd >= 0)
                        close(dfd);
                    goto fail;
                }
                close(dfd);
            }
        }
    }
    close(fd);
    double t = now_s() - t0;
    unlink(path);
    return t;
fail:
    close(fd);
    return -1;
}

static void rm_spool(const char *dir)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_encode: could not remove %s\n", dir);
}

/* The spool side of (e): a new spool, every batch appended (per_batch:
 * spool_append; else spool_append_nosync + one spool_sync). Seconds, or -1. */
static double spool_run(const char *tmpl, int r, int per_batch, struct seg_meta *m,
                        const struct buf *wire, size_t nb, size_t batch, size_t n)
{
    char sdir[PATH_MAX + 16];
    struct err e;
    snprintf(sdir, sizeof sdir, "%s/spool%d-%d", tmpl, r, per_batch);
    struct spool *sp = spool_open(sdir, &e);
    if (!sp) {
        fprintf(stderr, "bench_encode: %s\n", e.msg);
        return -1;
    }
    double t0 = now_s();
    for (size_t b = 0; b < nb; b++) {
        m->samples = m->series = (uint32_t)(b + 1 < nb ? batch : n - b * batch);
        int rc = per_batch ? spool_append(sp, m, wire[b].data, wire[b].len, NULL, 0, &e)
                           : spool_append_nosync(sp, m, wire[b].data, wire[b].len, &e);
        if (rc < 0) {
            fprintf(stderr, "bench_encode: spool_append: %s\n", e.msg);
            spool_close(sp);
            return -1;
        }
    }
    if (!per_batch && spool_sync(sp, m->target) < 0) {
        fprintf(stderr, "bench_encode: spool_sync: %s\n", strerror(errno));
        spool_close(sp);
        return -1;
    }
    double t = now_s() - t0;
    spool_close(sp);
    rm_spool(sdir);
    return t;
}

int main(int argc, char **argv)
{
    size_t nseries = 100000, batch = 2000;
    int reps = 7, spool_reps = 5;
    const char *spool_parent = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--series") == 0)
            nseries = strtoul(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--batch") == 0)
            batch = strtoul(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--spool-reps") == 0)
            spool_reps = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--spool-dir") == 0)
            spool_parent = argv[++i];
        else {
            fprintf(stderr,
                    "usage: bench_encode [--series N] [--batch N] [--reps N] [--spool-dir DIR] "
                    "[--spool-reps N]\n");
            return 2;
        }
    }
    if (nseries < NFAM || batch < 1 || reps < 1 || spool_reps < 1) {
        fprintf(stderr, "bench_encode: bad arguments\n");
        return 2;
    }
    /* one core: stay where we are */
    int cpu = sched_getcpu();
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) < 0)
            cpu = -1;
    }
    printf("bench_encode: %zu series x 1 sample, %zu families, batches of %zu, %d reps, %s\n",
           nseries, NFAM, batch, reps, cpu >= 0 ? "pinned to one core" : "not pinned");

    /* ---- (d) fill: memory per series ---- */
    static const char *const ext[] = {"instance", "nexus-prod-01", "env", "production"};
    struct sb_opts o = {.max_bytes = 0, .ext_labels = ext, .n_ext = 2};
    malloc_trim(0);
    size_t rss0 = rss_bytes();
    struct series_buf *sb = sb_new(&o);
    if (!sb) {
        fprintf(stderr, "bench_encode: sb_new failed\n");
        return 1;
    }
    int64_t ts = (int64_t)time(NULL) * 1000;
    struct err e;
    double t0 = now_s();
    sb_begin_cycle(sb, ts);
    sb_txn_begin(sb, "bench");
    for (size_t i = 0; i < nseries; i++)
        if (set_one(sb, i, 0, &e) < 0) {
            fprintf(stderr, "bench_encode: sb_setv: %s\n", e.msg);
            return 1;
        }
    sb_txn_commit(sb);
    double t_fill = now_s() - t0;
    size_t rss1 = rss_bytes();
    malloc_trim(0);
    size_t rss1t = rss_bytes();
    struct sb_stats st;
    sb_stats(sb, &st);
    /* a second cycle updates every series in place (steady state) */
    t0 = now_s();
    sb_begin_cycle(sb, ts + 30000);
    sb_txn_begin(sb, "bench");
    for (size_t i = 0; i < nseries; i++)
        if (set_one(sb, i, 1, &e) < 0) {
            fprintf(stderr, "bench_encode: sb_setv (cycle 2): %s\n", e.msg);
            return 1;
        }
    sb_txn_commit(sb);
    double t_fill2 = now_s() - t0;
    size_t rss2 = rss_bytes();

    struct sb_sample *v;
    size_t n;
    if (sb_snapshot(sb, false, &v, &n) < 0 || n != nseries) {
        fprintf(stderr, "bench_encode: snapshot gave %zu samples, want %zu\n", n, nseries);
        return 1;
    }
    ts += 30000;
    size_t nb = (n + batch - 1) / batch;

    /* ---- (a) encode + compress ---- */
    struct rw_encoder *enc = rw_encoder_new();
    struct buf out;
    buf_init(&out, 0);
    struct buf *raw = calloc(nb, sizeof *raw);
    struct buf *wire = calloc(nb, sizeof *wire);
    double *ta = calloc((size_t)reps, sizeof *ta), *tb = calloc((size_t)reps, sizeof *tb);
    if (!enc || !raw || !wire || !ta || !tb) {
        fprintf(stderr, "bench_encode: out of memory\n");
        return 1;
    }
    uint64_t wire_bytes = 0, raw_bytes = 0;
    for (size_t b = 0; b < nb; b++) { /* warm-up pass, also keeps the outputs */
        size_t off = b * batch, k = n - off < batch ? n - off : batch;
        if (rw_encode(enc, sb, v + off, k, ts, &out, &e) < 0) {
            fprintf(stderr, "bench_encode: rw_encode: %s\n", e.msg);
            return 1;
        }
        buf_init(&wire[b], 0);
        buf_append(&wire[b], out.data, out.len);
        wire_bytes += out.len;
        size_t rl;
        if (snappy_uncompressed_length(out.data, out.len, &rl) != SNAPPY_OK) {
            fprintf(stderr, "bench_encode: output is not snappy\n");
            return 1;
        }
        buf_init(&raw[b], 0);
        if (buf_reserve(&raw[b], rl) < 0 ||
            snappy_uncompress(out.data, out.len, raw[b].data, &rl) != SNAPPY_OK) {
            fprintf(stderr, "bench_encode: cannot uncompress batch %zu\n", b);
            return 1;
        }
        raw[b].len = rl;
        raw_bytes += rl;
    }
    for (int r = 0; r < reps; r++) {
        t0 = now_s();
        for (size_t b = 0; b < nb; b++) {
            size_t off = b * batch, k = n - off < batch ? n - off : batch;
            if (rw_encode(enc, sb, v + off, k, ts, &out, &e) < 0) {
                fprintf(stderr, "bench_encode: rw_encode: %s\n", e.msg);
                return 1;
            }
        }
        ta[r] = now_s() - t0;
    }

    /* ---- (b) the floor: snappy alone on the same raw bytes ---- */
    size_t maxraw = 0;
    for (size_t b = 0; b < nb; b++)
        if (raw[b].len > maxraw)
            maxraw = raw[b].len;
    size_t cap = snappy_max_compressed_length(maxraw);
    char *dst = malloc(cap);
    if (!dst)
        return 1;
    for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
        t0 = now_s();
        for (size_t b = 0; b < nb; b++) {
            size_t cl = cap;
            if (snappy_compress(raw[b].data, raw[b].len, dst, &cl) != SNAPPY_OK)
                return 1;
        }
        if (r >= 0)
            tb[r] = now_s() - t0;
    }
    double ta_best = best(ta, (size_t)reps), tb_best = best(tb, (size_t)reps);
    double ta_med = median(ta, (size_t)reps), tb_med = median(tb, (size_t)reps);
    double enc_ratio = ta_med / tb_med;

    printf("\n(a) encode+compress (rw_encode, %zu batches of %zu)\n", nb, batch);
    printf("    median %.2f ms per %zu samples = %.0f samples/s (best %.0f samples/s)\n",
           ta_med * 1e3, n, (double)n / ta_med, (double)n / ta_best);
    printf("    %.1f ns per sample, %.1f MB/s of raw protobuf produced\n", ta_med * 1e9 / (double)n,
           (double)raw_bytes / ta_med / 1e6);
    printf("(b) floor: snappy_compress alone on the same raw protobuf bytes\n");
    printf("    median %.2f ms = %.0f samples/s (best %.0f), %.0f MB/s\n", tb_med * 1e3,
           (double)n / tb_med, (double)n / tb_best, (double)raw_bytes / tb_med / 1e6);
    printf("    encode / floor = %.2fx (median), %.2fx (best)   target <= %.1fx\n", enc_ratio,
           ta_best / tb_best, TARGET_ENCODE_RATIO);
    printf("(c) wire bytes: %.2f B/sample compressed, %.2f B/sample raw protobuf (snappy %.2fx)\n",
           (double)wire_bytes / (double)n, (double)raw_bytes / (double)n,
           (double)raw_bytes / (double)wire_bytes);
    /* (c') the same samples in sb_snapshot(sorted=true) order (by family,
     * then labels): how much the batching order alone changes the bytes */
    uint64_t wire_sorted = 0;
    double t_sort[5];
    struct sb_sample *vs = NULL;
    for (int r = 0; r < 5; r++) {
        free(vs);
        t0 = now_s();
        if (sb_snapshot(sb, true, &vs, &n) < 0 || n != nseries) {
            fprintf(stderr, "bench_encode: sorted snapshot failed\n");
            return 1;
        }
        t_sort[r] = now_s() - t0;
    }
    for (size_t b = 0; b < nb; b++) {
        size_t off = b * batch, k = n - off < batch ? n - off : batch;
        if (rw_encode(enc, sb, vs + off, k, ts, &out, &e) < 0) {
            fprintf(stderr, "bench_encode: rw_encode: %s\n", e.msg);
            return 1;
        }
        wire_sorted += out.len;
    }
    /* and grouped by family only (a stable counting sort, O(n)) */
    uint64_t wire_grouped = 0;
    size_t nfam = sb_family_count(sb);
    size_t *start = calloc(nfam + 1, sizeof *start);
    struct sb_sample *vg = malloc(n * sizeof *vg);
    if (!start || !vg)
        return 1;
    t0 = now_s();
    for (size_t i = 0; i < n; i++)
        start[sb_series_family_index(sb, v[i].series) + 1]++;
    for (size_t f = 0; f < nfam; f++)
        start[f + 1] += start[f];
    for (size_t i = 0; i < n; i++)
        vg[start[sb_series_family_index(sb, v[i].series)]++] = v[i];
    double t_group = now_s() - t0;
    for (size_t b = 0; b < nb; b++) {
        size_t off = b * batch, k = n - off < batch ? n - off : batch;
        if (rw_encode(enc, sb, vg + off, k, ts, &out, &e) < 0) {
            fprintf(stderr, "bench_encode: rw_encode: %s\n", e.msg);
            return 1;
        }
        wire_grouped += out.len;
    }
    free(vg);
    free(start);
    free(vs);
    printf("    same samples grouped by family (creation order within): %.2f B/sample (%+.1f%%); "
           "the grouping costs %.2f ms\n",
           (double)wire_grouped / (double)n,
           100.0 * ((double)wire_grouped - (double)wire_bytes) / (double)wire_bytes, t_group * 1e3);
    printf("    same samples batched in sb_snapshot(sorted=true) order: %.2f B/sample (%+.1f%%); "
           "the sort costs %.1f ms per %zu series\n",
           (double)wire_sorted / (double)n,
           100.0 * ((double)wire_sorted - (double)wire_bytes) / (double)wire_bytes,
           median(t_sort, 5) * 1e3, n);
    double rss_ps = ((double)rss1 - (double)rss0) / (double)nseries;
    double rsst_ps = ((double)rss1t - (double)rss0) / (double)nseries;
    double sb_ps = (double)st.bytes / (double)nseries;
    printf("(d) buffer memory: RSS %+.1f B/series (%.1f MiB for %zu series; %.1f B/series after "
           "malloc_trim), sb_stats %.1f B/series (%zu bytes)   target <= %.0f\n",
           rss_ps, ((double)rss1 - (double)rss0) / 1048576.0, nseries, rsst_ps, sb_ps, st.bytes,
           TARGET_BYTES_PER_SERIES);
    printf("    fill: first cycle %.0f ns/series (new series), second cycle %.0f ns/series "
           "(updates), RSS after cycle 2 %+.1f B/series\n",
           t_fill * 1e9 / (double)nseries, t_fill2 * 1e9 / (double)nseries,
           ((double)rss2 - (double)rss0) / (double)nseries);

    /* ---- (e) spool write throughput ---- */
    char tmpl[PATH_MAX];
    const char *parent = spool_parent ? spool_parent : getenv("TMPDIR");
    snprintf(tmpl, sizeof tmpl, "%s/bench_spool.XXXXXX", parent && *parent ? parent : "/tmp");
    double spool_ratio = NAN, spool_ratio1 = NAN;
    if (!mkdtemp(tmpl)) {
        fprintf(stderr, "bench_encode: mkdtemp %s: %s\n", tmpl, strerror(errno));
        return 1;
    }
    struct seg_meta m = {.kind = SEG_REMOTE_WRITE, .created_ms = ts, .min_ts = ts, .max_ts = ts};
    snprintf(m.target, sizeof m.target, "rw-default");
    struct buf *segs = calloc(nb, sizeof *segs);
    uint64_t seg_bytes = 0;
    for (size_t b = 0; b < nb; b++) {
        buf_init(&segs[b], 0);
        m.samples = m.series = (uint32_t)(b + 1 < nb ? batch : n - b * batch);
        if (spool_encode(&m, wire[b].data, wire[b].len, &segs[b]) < 0)
            return 1;
        seg_bytes += segs[b].len;
    }
    /* per repetition: spool per cycle (cy), spool per batch (pb), plain per
     * cycle (p1), plain per batch (pn), plain per batch without the
     * directory fsync (pnd), plain per batch with fsync (pnf) */
    size_t R = (size_t)spool_reps;
    double *ts_cy = calloc(R, sizeof(double)), *ts_pb = calloc(R, sizeof(double));
    double *ts_p1 = calloc(R, sizeof(double)), *ts_pn = calloc(R, sizeof(double));
    double *ts_pnd = calloc(R, sizeof(double)), *ts_pnf = calloc(R, sizeof(double));
    if (!ts_cy || !ts_pb || !ts_p1 || !ts_pn || !ts_pnd || !ts_pnf)
        return 1;
    for (int r = 0; r < spool_reps; r++) {
        /* each spool run next to its plain counterpart, the order
         * alternating, so that a noisy neighbour hits both alike */
        for (int per_batch = 0; per_batch < 2; per_batch++) {
            for (int k = 0; k < 2; k++) {
                if ((k + r) % 2 == 0) {
                    double t = spool_run(tmpl, r, per_batch, &m, wire, nb, batch, n);
                    if (t < 0)
                        return 1;
                    (per_batch ? ts_pb : ts_cy)[r] = t;
                } else {
                    double t = plain_write(tmpl, segs, nb, per_batch, 1, 0);
                    if (t < 0) {
                        fprintf(stderr, "bench_encode: plain write in %s: %s\n", tmpl,
                                strerror(errno));
                        return 1;
                    }
                    (per_batch ? ts_pn : ts_p1)[r] = t;
                }
            }
        }
        ts_pnd[r] = plain_write(tmpl, segs, nb, 1, 0, 0);
        ts_pnf[r] = plain_write(tmpl, segs, nb, 1, 1, 1);
        if (ts_pnd[r] < 0 || ts_pnf[r] < 0) {
            fprintf(stderr, "bench_encode: plain write in %s: %s\n", tmpl, strerror(errno));
            return 1;
        }
    }
    rm_spool(tmpl);
    double cy = median(ts_cy, R), pb = median(ts_pb, R), p1 = median(ts_p1, R),
           pn = median(ts_pn, R), pnd = median(ts_pnd, R), pnf = median(ts_pnf, R);
    spool_ratio = pn / pb;
    spool_ratio1 = p1 / cy;
    printf("(e) spool write, %zu batches, %.1f MB, in %s (median of %d)\n", nb,
           (double)seg_bytes / 1e6, parent && *parent ? parent : "/tmp", spool_reps);
    printf(
        "    per batch: spool_append (append + fdatasync)   %.1f ms = %.1f MB/s, %.2f ms/batch\n",
        pb * 1e3, (double)seg_bytes / pb / 1e6, pb * 1e3 / (double)nb);
    printf("               plain write + fdatasync per batch   %.1f ms = %.1f MB/s   ratio %.2f   "
           "target >= %.1f\n",
           pn * 1e3, (double)seg_bytes / pn / 1e6, spool_ratio, TARGET_SPOOL_RATIO);
    printf(
        "    per cycle: spool_append_nosync + spool_sync    %.1f ms = %.1f MB/s, %.0f samples/s\n",
        cy * 1e3, (double)seg_bytes / cy / 1e6, (double)n / cy);
    printf("               plain writes + one fdatasync        %.1f ms = %.1f MB/s   ratio %.2f   "
           "target >= %.1f\n",
           p1 * 1e3, (double)seg_bytes / p1 / 1e6, spool_ratio1, TARGET_SPOOL_RATIO);
    printf("    information: per batch vs plain without the directory fsync %.2f, vs plain with "
           "fsync %.2f\n",
           pnd / pb, pnf / pb);

    int ok_enc = enc_ratio <= TARGET_ENCODE_RATIO;
    int ok_mem = rss_ps <= TARGET_BYTES_PER_SERIES;
    int ok_sbm = sb_ps <= TARGET_BYTES_PER_SERIES;
    int ok_sp = spool_ratio >= TARGET_SPOOL_RATIO && spool_ratio1 >= TARGET_SPOOL_RATIO;
    printf("\nverdict encode:  %s  encode+compress %.2fx the snappy-only floor (target <= %.1fx)\n",
           ok_enc ? "PASS" : "FAIL", enc_ratio, TARGET_ENCODE_RATIO);
    printf("verdict memory:  %s  %.1f B/series RSS, %.1f B/series sb_stats (target <= %.0f)%s\n",
           ok_mem && ok_sbm ? "PASS" : "FAIL", rss_ps, sb_ps, TARGET_BYTES_PER_SERIES,
           ok_mem != ok_sbm ? " (the two figures disagree)" : "");
    printf("verdict spool:   %s  spool write %.2f of a plain write fdatasync'd per batch, %.2f of "
           "one fdatasync'd per cycle (target >= %.1f each)\n",
           ok_sp ? "PASS" : "FAIL", spool_ratio, spool_ratio1, TARGET_SPOOL_RATIO);
    printf("bench_encode: %s (encode %s, memory %s, spool %s)\n",
           ok_enc && ok_mem && ok_sbm && ok_sp ? "PASS" : "FAIL", ok_enc ? "PASS" : "FAIL",
           ok_mem && ok_sbm ? "PASS" : "FAIL", ok_sp ? "PASS" : "FAIL");

    for (size_t b = 0; b < nb; b++) {
        buf_free(&raw[b]);
        buf_free(&wire[b]);
        buf_free(&segs[b]);
    }
    free(raw);
    free(wire);
    free(segs);
    free(dst);
    free(ta);
    free(tb);
    free(ts_cy);
    free(ts_pb);
    free(ts_p1);
    free(ts_pn);
    free(ts_pnd);
    free(ts_pnf);
    free(v);
    buf_free(&out);
    rw_encoder_free(enc);
    sb_free(sb);
    return 0;
}
