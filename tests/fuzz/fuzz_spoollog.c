/* libFuzzer target: the spool log scanner on arbitrary bytes, as a log
 * damaged on disk (flipped bytes, torn writes, foreign data) would be.
 * In memory (spool_scan_mem): the regions must tile the input in order
 * and every record reported must decode at least up to its payload CRC.
 * On disk: the same bytes as a dead writer's log in a spool directory go
 * through spool_open's scanner, spool_list and spool_read_rec. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"

struct walk {
    const uint8_t *data;
    size_t size;
    uint64_t next; /* where the next region must start */
};

static void region(void *arg, int kind, uint64_t off, uint64_t len, const struct seg_meta *m,
                   const char *problem)
{
    struct walk *w = arg;
    if (off != w->next || len == 0 || off + len > w->size || kind < 0 || kind > 4)
        abort();
    w->next = off + len;
    if (kind == 0 || kind == 1) {
        struct seg_meta m2;
        const void *p;
        size_t pl;
        struct err e;
        if (!m || problem)
            abort();
        /* a record's header verified and its length fits: decoding it can
         * fail only on the payload CRC */
        if (spool_decode(w->data + off, (size_t)len, &m2, &p, &pl, &e) < 0 &&
            strcmp(e.msg, "payload CRC mismatch") != 0)
            abort();
    } else if (!problem) {
        abort();
    }
}

static char dir[64];

static int cmp_span(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

static void rm_rf(const char *d)
{
    DIR *dh = opendir(d);
    if (!dh)
        return;
    struct dirent *de;
    while ((de = readdir(dh))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", d, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_rf(p);
        else
            unlink(p);
    }
    closedir(dh);
    rmdir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct walk w = {data, size, 0};
    uint64_t tail = spool_scan_mem(data, size, region, &w);
    if (tail > size || (tail < size && w.next != size) || (size && w.next != size))
        abort();

    if (!dir[0])
        snprintf(dir, sizeof dir, "%s/fuzz_spoollog.%d",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
    mkdir(dir, 0700); /* removed at the end of every run */
    char tdir[128], path[192];
    snprintf(tdir, sizeof tdir, "%s/rw-a", dir);
    mkdir(tdir, 0700);
    snprintf(path, sizeof path, "%s/0000000000000001-00000001.log", tdir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        abort(); /* the on-disk half would silently test nothing */
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    close(fd);
    struct err e;
    struct spool *sp = spool_open(dir, &e);
    if (sp) {
        struct seg_info *v;
        size_t n;
        if (spool_list(sp, "rw-a", true, &v, &n) == 0) {
            /* FIFO is by creation time; by offset the entries must not
             * overlap and must lie inside the file */
            uint64_t(*span)[2] = calloc(n ? n : 1, sizeof *span);
            if (!span)
                abort();
            for (size_t i = 0; i < n; i++) {
                span[i][0] = v[i].offset;
                span[i][1] = v[i].offset + v[i].file_size;
                if (span[i][1] > size || (span[i][1] == span[i][0] && size))
                    abort();
            }
            qsort(span, n, sizeof *span, cmp_span);
            for (size_t i = 1; i < n; i++)
                if (span[i][0] < span[i - 1][1])
                    abort();
            free(span);
            struct buf p;
            buf_init(&p, 0);
            for (size_t i = 0; i < n; i++) {
                struct seg_meta m;
                if (spool_read_rec(&v[i], &m, &p, &e) == 0 && p.len > SPOOL_MAX_PAYLOAD)
                    abort();
            }
            buf_free(&p);
            free(v);
        }
        struct spool_usage u;
        spool_usage(sp, NULL, &u);
        spool_close(sp);
    }
    rm_rf(dir);
    return 0;
}
