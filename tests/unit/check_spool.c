/* Unit tests for spool.c: segment files, FIFO listing, damage detection,
 * quarantine, the replay lock, usage numbers and durable writes. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spool.h"
#include "util.h"

/* basedir: made by main() and removed at the end even when a test fails
 * (a failing test exits before its teardown); tmpdir: one per test in it */
static char basedir[64];
static char tmpdir[PATH_MAX];

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/t-XXXXXX", basedir);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void meta_init(struct seg_meta *m, const char *target, uint32_t samples)
{
    memset(m, 0, sizeof *m);
    m->kind = SEG_REMOTE_WRITE;
    snprintf(m->target, sizeof m->target, "%s", target);
    m->created_ms = now_ms();
    m->series = samples;
    m->samples = samples;
    m->min_ts = 1700000000000 + samples;
    m->max_ts = 1700000000000 + samples * 2;
}

static size_t count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static void write_raw(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    if (n)
        ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static char *slurp(const char *path)
{
    char *s = NULL;
    struct err e;
    if (read_file(path, 1 << 20, false, &s, &e) < 0)
        return NULL;
    return s;
}

/* ---- round trip and FIFO order ------------------------------------------ */

START_TEST(test_append_list_read_fifo)
{
    struct err e;
    struct spool *sp = spool_open(tmpdir, &e);
    ck_assert_msg(sp != NULL, "%s", e.msg);
    ck_assert_str_eq(spool_dir(sp), tmpdir);
    char names[5][64];
    char payloads[5][100];
    for (int i = 0; i < 5; i++) {
        struct seg_meta m;
        meta_init(&m, "rw-a", (uint32_t)(10 + i));
        snprintf(m.extra, sizeof m.extra, "extra-%d", i);
        int len = snprintf(payloads[i], sizeof payloads[i], "payload number %d %s", i,
                           i % 2 ? "odd" : "even, somewhat longer");
        ck_assert_int_eq(
            spool_append(sp, &m, payloads[i], (size_t)len, names[i], sizeof names[i], &e), 0);
        ck_assert(str_has_suffix(names[i], ".seg"));
    }
    struct seg_info *v;
    size_t n;
    ck_assert_int_eq(spool_list(sp, "rw-a", true, &v, &n), 0);
    ck_assert_uint_eq(n, 5);
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_eq(v[i].name, names[i]); /* oldest first */
        ck_assert_msg(v[i].meta_ok, "%s: %s", v[i].name, v[i].problem);
        ck_assert_str_eq(v[i].problem, "");
        ck_assert_int_eq(v[i].m.kind, SEG_REMOTE_WRITE);
        ck_assert_str_eq(v[i].m.target, "rw-a");
        ck_assert_uint_eq(v[i].m.samples, 10 + i);
        ck_assert_uint_eq(v[i].m.series, 10 + i);
        ck_assert_int_eq(v[i].m.min_ts, 1700000000000 + (int64_t)(10 + i));
        ck_assert_int_eq(v[i].m.max_ts, 1700000000000 + (int64_t)(10 + i) * 2);
        char ex[32];
        snprintf(ex, sizeof ex, "extra-%zu", i);
        ck_assert_str_eq(v[i].m.extra, ex);
        struct stat st;
        ck_assert_int_eq(stat(v[i].path, &st), 0);
        ck_assert_uint_eq(v[i].file_size, (uint64_t)st.st_size);

        struct seg_meta m;
        struct buf p;
        buf_init(&p, 0);
        ck_assert_msg(spool_read(v[i].path, &m, &p, &e) == 0, "%s", e.msg);
        ck_assert_uint_eq(p.len, strlen(payloads[i]));
        ck_assert_mem_eq(p.data, payloads[i], p.len);
        ck_assert_uint_eq(m.samples, 10 + i);
        ck_assert_str_eq(m.extra, ex);
        ck_assert_str_eq(m.target, "rw-a");
        buf_free(&p);
    }
    free(v);
    /* another target: listed separately, and together in global FIFO order */
    struct seg_meta m;
    meta_init(&m, "pushgateway", 1);
    m.kind = SEG_PUSHGATEWAY;
    char last[64];
    ck_assert_int_eq(spool_append(sp, &m, "x", 1, last, sizeof last, &e), 0);
    ck_assert_int_eq(spool_list(sp, "pushgateway", false, &v, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert(!v[0].meta_ok); /* not asked for */
    free(v);
    ck_assert_int_eq(spool_list(sp, NULL, true, &v, &n), 0);
    ck_assert_uint_eq(n, 6);
    ck_assert_str_eq(v[5].name, last);
    ck_assert_int_eq(v[5].m.kind, SEG_PUSHGATEWAY);
    for (size_t i = 1; i < n; i++)
        ck_assert_int_lt(strcmp(v[i - 1].name, v[i].name), 0);
    free(v);
    char **t;
    size_t nt;
    ck_assert_int_eq(spool_targets(sp, &t, &nt), 0);
    ck_assert_uint_eq(nt, 2); /* quarantine/ is not a target */
    bool a = false, b = false;
    for (size_t i = 0; i < nt; i++) {
        a |= strcmp(t[i], "rw-a") == 0;
        b |= strcmp(t[i], "pushgateway") == 0;
    }
    ck_assert(a && b);
    strv_free(t, nt);
    /* an unknown target lists nothing */
    ck_assert_int_eq(spool_list(sp, "rw-none", true, &v, &n), 0);
    ck_assert_uint_eq(n, 0);
    free(v);
    spool_close(sp);
}
END_TEST

START_TEST(test_append_empty_payload_and_bad_target)
{
    struct err e;
    struct spool *sp = spool_open(tmpdir, &e);
    ck_assert_ptr_nonnull(sp);
    struct seg_meta m;
    meta_init(&m, "rw-a", 0);
    ck_assert_int_eq(spool_append(sp, &m, "", 0, NULL, 0, &e), 0);
    struct seg_info *v;
    size_t n;
    ck_assert_int_eq(spool_list(sp, "rw-a", true, &v, &n), 0);
    ck_assert_uint_eq(n, 1);
    struct buf p;
    buf_init(&p, 0);
    ck_assert_int_eq(spool_read(v[0].path, &m, &p, &e), 0);
    ck_assert_uint_eq(p.len, 0);
    buf_free(&p);
    free(v);
    static const char *bad[] = {"", "../escape", "a/b", ".hidden"};
    for (size_t i = 0; i < NS_ARRAY_LEN(bad); i++) {
        meta_init(&m, bad[i], 1);
        errno = 0;
        ck_assert_int_eq(spool_append(sp, &m, "x", 1, NULL, 0, &e), -1);
        ck_assert_int_eq(errno, EINVAL);
    }
    ck_assert_int_eq(count_entries(basedir, "escape"), 0);
    spool_close(sp);
}
END_TEST

/* ---- damage detection ----------------------------------------------------- */

static void encode_sample(struct buf *out, const char *payload)
{
    struct seg_meta m;
    meta_init(&m, "rw-a", 7);
    snprintf(m.extra, sizeof m.extra, "PUT /metrics/job/x");
    buf_init(out, 0);
    ck_assert_int_eq(spool_encode(&m, payload, strlen(payload), out), 0);
}

START_TEST(test_decode_ok)
{
    struct buf b;
    const char *pl = "hello, spool";
    encode_sample(&b, pl);
    struct seg_meta m;
    const void *p;
    size_t plen;
    struct err e;
    ck_assert_msg(spool_decode(b.data, b.len, &m, &p, &plen, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(plen, strlen(pl));
    ck_assert_mem_eq(p, pl, plen);
    ck_assert_uint_eq(m.samples, 7);
    ck_assert_str_eq(m.extra, "PUT /metrics/job/x");
    ck_assert_str_eq(m.target, "rw-a");
    buf_free(&b);
}
END_TEST

START_TEST(test_decode_truncated)
{
    struct buf b;
    encode_sample(&b, "some payload bytes");
    struct seg_meta m;
    const void *p;
    size_t plen;
    struct err e;
    /* every proper prefix is rejected */
    for (size_t len = 0; len < b.len; len++) {
        e.msg[0] = '\0';
        ck_assert_msg(spool_decode(b.data, len, &m, &p, &plen, &e) == -1, "prefix %zu accepted",
                      len);
        ck_assert_msg(e.msg[0] != '\0', "no message for prefix %zu", len);
    }
    ck_assert_int_eq(spool_decode(b.data, 0, &m, &p, &plen, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "empty"));
    ck_assert_int_eq(spool_decode(b.data, 10, &m, &p, &plen, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "truncated"));
    ck_assert_int_eq(spool_decode(b.data, b.len - 1, &m, &p, &plen, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "truncated"));
    /* one byte too many is as bad as one too few */
    struct buf longer;
    buf_init(&longer, 0);
    ck_assert_int_eq(buf_append(&longer, b.data, b.len), 0);
    ck_assert_int_eq(buf_append(&longer, "Z", 1), 0);
    ck_assert_int_eq(spool_decode(longer.data, longer.len, &m, &p, &plen, &e), -1);
    buf_free(&longer);
    buf_free(&b);
}
END_TEST

START_TEST(test_decode_flipped_bytes)
{
    struct buf b;
    encode_sample(&b, "payload whose every byte matters");
    uint32_t hl = (uint32_t)((unsigned char)b.data[12]) | (uint32_t)((unsigned char)b.data[13])
                                                              << 8;
    ck_assert_uint_lt(hl, b.len);
    struct seg_meta m;
    const void *p;
    size_t plen;
    struct err e;
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            b.data[i] ^= (char)(1 << bit);
            int rc = spool_decode(b.data, b.len, &m, &p, &plen, &e);
            b.data[i] ^= (char)(1 << bit);
            ck_assert_msg(rc == -1, "flip of byte %zu bit %d accepted", i, bit);
            if (i >= hl)
                ck_assert_str_eq(e.msg, "payload CRC mismatch");
        }
    }
    /* magic and version have their own messages */
    b.data[0] = 'X';
    ck_assert_int_eq(spool_decode(b.data, b.len, &m, &p, &plen, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "bad magic"));
    b.data[0] = 'N';
    b.data[8] = 2;
    ck_assert_int_eq(spool_decode(b.data, b.len, &m, &p, &plen, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "version"));
    b.data[8] = 1;
    /* a header byte flipped (created_ms) fails the header CRC */
    b.data[20] ^= 0x40;
    ck_assert_int_eq(spool_decode(b.data, b.len, &m, &p, &plen, &e), -1);
    ck_assert_str_eq(e.msg, "header CRC mismatch");
    b.data[20] ^= 0x40;
    ck_assert_int_eq(spool_decode(b.data, b.len, &m, &p, &plen, &e), 0);
    buf_free(&b);
}
END_TEST

START_TEST(test_read_damaged_files)
{
    struct err e;
    struct spool *sp = spool_open(tmpdir, &e);
    ck_assert_ptr_nonnull(sp);
    struct seg_meta m;
    meta_init(&m, "rw-a", 3);
    const char *pl = "0123456789abcdef";
    char good[64];
    ck_assert_int_eq(spool_append(sp, &m, pl, strlen(pl), good, sizeof good, &e), 0);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/rw-a/%s", tmpdir, good);
    struct buf whole;
    buf_init(&whole, 0);
    ck_assert_int_eq(spool_encode(&m, pl, strlen(pl), &whole), 0);

    char p2[PATH_MAX + 64];
    struct buf out;
    buf_init(&out, 0);
    /* zero-length */
    snprintf(p2, sizeof p2, "%s/rw-a/0000000000000001-00000000-0000.seg", tmpdir);
    write_raw(p2, "", 0);
    ck_assert_int_eq(spool_read(p2, &m, &out, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, p2));
    ck_assert_ptr_nonnull(strstr(e.msg, "empty"));
    /* truncated by one byte */
    snprintf(p2, sizeof p2, "%s/rw-a/0000000000000002-00000000-0000.seg", tmpdir);
    write_raw(p2, whole.data, whole.len - 1);
    ck_assert_int_eq(spool_read(p2, &m, &out, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "truncated"));
    /* payload byte flipped */
    snprintf(p2, sizeof p2, "%s/rw-a/0000000000000003-00000000-0000.seg", tmpdir);
    whole.data[whole.len - 2] ^= 1;
    write_raw(p2, whole.data, whole.len);
    whole.data[whole.len - 2] ^= 1;
    ck_assert_int_eq(spool_read(p2, &m, &out, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "payload CRC mismatch"));
    /* header byte flipped */
    snprintf(p2, sizeof p2, "%s/rw-a/0000000000000004-00000000-0000.seg", tmpdir);
    whole.data[30] ^= 1;
    write_raw(p2, whole.data, whole.len);
    whole.data[30] ^= 1;
    ck_assert_int_eq(spool_read(p2, &m, &out, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "header CRC mismatch"));
    /* wrong magic */
    snprintf(p2, sizeof p2, "%s/rw-a/0000000000000005-00000000-0000.seg", tmpdir);
    whole.data[3] = 'Q';
    write_raw(p2, whole.data, whole.len);
    ck_assert_int_eq(spool_read(p2, &m, &out, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "bad magic"));
    /* one byte appended */
    snprintf(p2, sizeof p2, "%s/rw-a/0000000000000006-00000000-0000.seg", tmpdir);
    whole.data[3] = 'H';
    ck_assert_int_eq(buf_append(&whole, "+", 1), 0);
    write_raw(p2, whole.data, whole.len);
    whole.len--;
    ck_assert_int_eq(spool_read(p2, &m, &out, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "truncated: header says"));
    /* foreign file */
    snprintf(p2, sizeof p2, "%s/rw-a/notes.txt", tmpdir);
    write_raw(p2, "hello", 5);
    /* a missing file */
    ck_assert_int_eq(spool_read("/nonexistent/x.seg", &m, &out, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent/x.seg"));

    struct seg_info *v;
    size_t n;
    ck_assert_int_eq(spool_list(sp, "rw-a", true, &v, &n), 0);
    ck_assert_uint_eq(n, 8);
    size_t bad = 0, foreign = 0, ok = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, "notes.txt") == 0) {
            foreign++;
            ck_assert_ptr_nonnull(strstr(v[i].problem, "foreign"));
            ck_assert(!v[i].meta_ok);
        } else if (strcmp(v[i].name, good) == 0) {
            ok++;
            ck_assert(v[i].meta_ok);
            ck_assert_str_eq(v[i].problem, "");
        } else if (v[i].problem[0]) {
            bad++;
            ck_assert(!v[i].meta_ok);
        }
    }
    /* zero-length, truncated, header flip, magic and the extra byte are seen
     * from the header; the payload flip only by spool_read (the listing
     * skips the payload CRC) */
    ck_assert_uint_eq(foreign, 1);
    ck_assert_uint_eq(ok, 1);
    ck_assert_uint_eq(bad, 5);
    free(v);
    buf_free(&out);
    buf_free(&whole);
    spool_close(sp);
}
END_TEST

/* ---- quarantine and remove ---------------------------------------------- */

START_TEST(test_quarantine_and_remove)
{
    struct err e;
    struct spool *sp = spool_open(tmpdir, &e);
    ck_assert_ptr_nonnull(sp);
    struct seg_meta m;
    meta_init(&m, "rw-a", 5);
    char n1[64], n2[64];
    ck_assert_int_eq(spool_append(sp, &m, "one", 3, n1, sizeof n1, &e), 0);
    ck_assert_int_eq(spool_append(sp, &m, "two", 3, n2, sizeof n2, &e), 0);
    struct seg_info *v;
    size_t n;
    ck_assert_int_eq(spool_list(sp, "rw-a", true, &v, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(spool_quarantine(sp, &v[0], "rejected", "HTTP 400: bad labels"), 0);
    ck_assert_int_eq(access(v[0].path, F_OK), -1);
    char q[PATH_MAX + 200];
    snprintf(q, sizeof q, "%s/quarantine/rw-a__%s", tmpdir, n1);
    ck_assert_int_eq(access(q, F_OK), 0);
    /* still a readable segment in quarantine */
    struct buf p;
    buf_init(&p, 0);
    ck_assert_int_eq(spool_read(q, &m, &p, &e), 0);
    ck_assert_str_eq(p.data, "one");
    buf_free(&p);
    strcat(q, ".reason");
    char *reason = slurp(q);
    ck_assert_ptr_nonnull(reason);
    ck_assert_str_eq(reason, "reason: rejected\nanswer:\nHTTP 400: bad labels\n");
    free(reason);
    ck_assert_int_eq(spool_remove(sp, &v[1]), 0);
    ck_assert_int_eq(access(v[1].path, F_OK), -1);
    ck_assert_int_eq(spool_remove(sp, &v[1]), 0); /* already gone: fine */
    free(v);
    ck_assert_int_eq(spool_list(sp, "rw-a", true, &v, &n), 0);
    ck_assert_uint_eq(n, 0);
    free(v);
    ck_assert_int_eq(spool_list(sp, NULL, true, &v, &n), 0);
    ck_assert_uint_eq(n, 0); /* quarantine is not replayed */
    free(v);
    spool_close(sp);
}
END_TEST

/* ---- lock ----------------------------------------------------------------- */

START_TEST(test_lock_two_opens)
{
    struct err e;
    struct spool *a = spool_open(tmpdir, &e), *b = spool_open(tmpdir, &e);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(spool_lock(a), 0);
    ck_assert_int_eq(spool_lock(a), 0); /* re-entrant for its holder */
    ck_assert_int_eq(spool_lock(b), 1);
    spool_unlock(a);
    ck_assert_int_eq(spool_lock(b), 0);
    ck_assert_int_eq(spool_lock(a), 1);
    spool_close(b); /* closing releases */
    ck_assert_int_eq(spool_lock(a), 0);
    spool_close(a);
}
END_TEST

/* file scope: still reachable (not leaked) in the forked children */
struct spool *volatile held_spool;

START_TEST(test_lock_other_process)
{
    struct err e;
    struct spool *a = held_spool = spool_open(tmpdir, &e);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(spool_lock(a), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct err e2;
        struct spool *c = spool_open(tmpdir, &e2);
        int rc = c ? spool_lock(c) : -1;
        spool_close(c);
        _exit(rc == 1 ? 0 : 10 + rc);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    spool_unlock(a);
    fflush(NULL);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct err e2;
        struct spool *c = spool_open(tmpdir, &e2);
        int rc = c ? spool_lock(c) : -1;
        spool_close(c);
        _exit(rc == 0 ? 0 : 10 + rc);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    spool_close(a);
    held_spool = NULL;
}
END_TEST

/* ---- usage ---------------------------------------------------------------- */

START_TEST(test_usage)
{
    struct err e;
    struct spool *sp = spool_open(tmpdir, &e);
    ck_assert_ptr_nonnull(sp);
    struct spool_usage u;
    ck_assert_int_eq(spool_usage(sp, NULL, &u), 0);
    ck_assert_uint_eq(u.bytes, 0);
    ck_assert_uint_eq(u.segments, 0);
    ck_assert_int_eq(u.oldest_ms, 0);
    int64_t t0 = now_ms();
    uint64_t total = 0, total_a = 0;
    char big[3000];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < 4; i++) {
        struct seg_meta m;
        meta_init(&m, i % 2 ? "rw-b" : "rw-a", 1);
        char name[64];
        size_t len = (size_t)(100 * (i + 1));
        ck_assert_int_eq(spool_append(sp, &m, big, len, name, sizeof name, &e), 0);
        char path[PATH_MAX + 100];
        snprintf(path, sizeof path, "%s/%s/%s", tmpdir, m.target, name);
        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        total += (uint64_t)st.st_size;
        if (i % 2 == 0)
            total_a += (uint64_t)st.st_size;
        ck_assert_uint_gt((uint64_t)st.st_size, len);
    }
    int64_t t1 = now_ms();
    /* a foreign file does not count */
    char fp[PATH_MAX + 64];
    snprintf(fp, sizeof fp, "%s/rw-a/README", tmpdir);
    write_raw(fp, "not a segment", 13);
    ck_assert_int_eq(spool_usage(sp, NULL, &u), 0);
    ck_assert_uint_eq(u.bytes, total);
    ck_assert_uint_eq(u.segments, 4);
    ck_assert_int_ge(u.oldest_ms, t0 - 1);
    ck_assert_int_le(u.oldest_ms, t1 + 1);
    ck_assert_int_eq(spool_usage(sp, "rw-a", &u), 0);
    ck_assert_uint_eq(u.bytes, total_a);
    ck_assert_uint_eq(u.segments, 2);
    ck_assert_int_eq(spool_usage(sp, "rw-zzz", &u), 0);
    ck_assert_uint_eq(u.segments, 0);
    spool_close(sp);
}
END_TEST

/* ---- durable writes --------------------------------------------------------- */

START_TEST(test_write_file_durable)
{
    struct err e;
    ck_assert_int_eq(write_file_durable(tmpdir, "f1", "abc", 3, "defg", 4, &e), 0);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/f1", tmpdir);
    char *s = slurp(p);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "abcdefg");
    free(s);
    /* replacing keeps only the new content */
    ck_assert_int_eq(write_file_durable(tmpdir, "f1", "Z", 1, NULL, 0, &e), 0);
    s = slurp(p);
    ck_assert_str_eq(s, "Z");
    free(s);
    ck_assert_uint_eq(count_entries(tmpdir, ".tmp"), 0);
    ck_assert_uint_eq(count_entries(tmpdir, "f1"), 1);
    /* a directory that does not exist: error, nothing left behind */
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof missing, "%s/nope", tmpdir);
    ck_assert_int_eq(write_file_durable(missing, "f2", "abc", 3, NULL, 0, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "nope"));
    /* the target name is a directory: rename fails, the temp file is removed */
    char d[PATH_MAX + 16];
    snprintf(d, sizeof d, "%s/dir", tmpdir);
    ck_assert_int_eq(mkdir(d, 0700), 0);
    snprintf(p, sizeof p, "%s/dir/x", tmpdir);
    write_raw(p, "x", 1);
    ck_assert_int_eq(write_file_durable(tmpdir, "dir", "abc", 3, NULL, 0, &e), -1);
    ck_assert_uint_eq(count_entries(tmpdir, ".tmp"), 0);
    /* segments too leave no temp files */
    struct spool *sp = spool_open(tmpdir, &e);
    ck_assert_ptr_nonnull(sp);
    struct seg_meta m;
    meta_init(&m, "rw-a", 1);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(spool_append(sp, &m, "x", 1, NULL, 0, &e), 0);
    char td[PATH_MAX + 16];
    snprintf(td, sizeof td, "%s/rw-a", tmpdir);
    ck_assert_uint_eq(count_entries(td, "."), 2); /* "." and ".." only */
    spool_close(sp);
}
END_TEST

START_TEST(test_open_errors)
{
    struct err e;
    char f[PATH_MAX + 16];
    snprintf(f, sizeof f, "%s/file", tmpdir);
    write_raw(f, "x", 1);
    char sub[PATH_MAX + 32];
    snprintf(sub, sizeof sub, "%s/file/spool", tmpdir);
    e.msg[0] = '\0';
    ck_assert_ptr_null(spool_open(sub, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, sub));
    /* nested directories are created */
    snprintf(sub, sizeof sub, "%s/a/b/c", tmpdir);
    struct spool *sp = spool_open(sub, &e);
    ck_assert_ptr_nonnull(sp);
    strcat(sub, "/quarantine");
    struct stat st;
    ck_assert_int_eq(stat(sub, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    spool_close(sp);
    spool_close(NULL);
}
END_TEST

static Suite *spool_suite(void)
{
    Suite *s = suite_create("spool");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_append_list_read_fifo);
    tcase_add_test(tc, test_append_empty_payload_and_bad_target);
    tcase_add_test(tc, test_decode_ok);
    tcase_add_test(tc, test_decode_truncated);
    tcase_add_test(tc, test_decode_flipped_bytes);
    tcase_add_test(tc, test_read_damaged_files);
    tcase_add_test(tc, test_quarantine_and_remove);
    tcase_add_test(tc, test_lock_two_opens);
    tcase_add_test(tc, test_lock_other_process);
    tcase_add_test(tc, test_usage);
    tcase_add_test(tc, test_write_file_durable);
    tcase_add_test(tc, test_open_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    snprintf(basedir, sizeof basedir, "/tmp/ns-check-spool-XXXXXX");
    if (!mkdtemp(basedir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(spool_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nftw(basedir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
