/* The spool record format: segment header encoding and checks (CRC32C over
 * header and payload), spool_encode/spool_decode, the log scanner that
 * resynchronises past damage, and what a target may hold
 * (spool_target_kind, spool_record_check). Contract: spool.h, spool_int.h. */
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

#include "pushgateway.h"

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
int header_check(const unsigned char *h, size_t avail, uint32_t *hl_out, uint32_t *pl_out,
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
int encode_header(const struct seg_meta *m, const void *payload, size_t len, struct buf *out)
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

size_t rd_read(const struct rd *r, uint64_t off, void *buf, size_t n, uint64_t size)
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
uint64_t scan_core(const struct rd *r, uint64_t off, uint64_t size, spool_scan_cb cb, void *arg)
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
