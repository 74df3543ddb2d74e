#include "remote_write.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <snappy-c.h>

#include "remote.pb-c.h"

const char *const rw_headers[] = {
    "Content-Type: application/x-protobuf",
    "Content-Encoding: snappy",
    "X-Prometheus-Remote-Write-Version: 0.1.0",
    NULL,
};

const char *send_outcome_name(enum send_outcome o)
{
    static const char *n[] = {"sent", "retried", "dropped"};
    return n[o];
}

enum send_outcome rw_classify(long status)
{
    if (status >= 200 && status <= 299)
        return SEND_OK;
    if (status == 0 || status >= 500 || status == 429 || status == 408)
        return SEND_RETRY;
    return SEND_DROP;
}

enum drop_reason rw_drop_reason(long status, const char *body)
{
    if (status == 400 && body &&
        (strcasestr(body, "out of bounds") || strcasestr(body, "too old") ||
         strcasestr(body, "out of order") || strcasestr(body, "out-of-order")))
        return DROP_OUT_OF_BOUNDS;
    if (status == 401 || status == 403)
        return DROP_UNAUTHORIZED;
    if (status == 413)
        return DROP_TOO_LARGE;
    return DROP_REJECTED;
}

struct rw_encoder {
    uint32_t *tssize; /* direct encoder: size of every TimeSeries message */
    size_t tssizecap;
    uint32_t *labsz; /* per series index: bytes of its encoded labels (0 = not yet) */
    size_t labszcap;
    uint32_t layout; /* sb_layout() the labsz cache belongs to */
    const struct series_buf *labsb;
    uint8_t *seen; /* per family: already has metadata in this request */
    size_t seencap;
    struct buf raw;
};

struct rw_encoder *rw_encoder_new(void)
{
    struct rw_encoder *enc = calloc(1, sizeof *enc);
    if (enc)
        buf_init(&enc->raw, 0);
    return enc;
}

void rw_encoder_free(struct rw_encoder *enc)
{
    if (!enc)
        return;
    free(enc->seen);
    free(enc->tssize);
    free(enc->labsz);
    buf_free(&enc->raw);
    free(enc);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *n = realloc(*p, nc * elem);
    if (!n)
        return -1;
    *p = n;
    *cap = nc;
    return 0;
}

/* Snappy-compresses enc->raw (block format) into out. */
static int compress_raw(struct rw_encoder *enc, struct buf *out, size_t n, struct err *e)
{
    size_t clen = snappy_max_compressed_length(enc->raw.len);
    buf_reset(out);
    if (buf_reserve(out, clen) < 0) {
        err_set(e, "out of memory encoding %zu samples", n);
        return -1;
    }
    if (snappy_compress(enc->raw.data, enc->raw.len, out->data, &clen) != SNAPPY_OK) {
        err_set(e, "snappy compression failed");
        return -1;
    }
    out->len = clen;
    return 0;
}

/* ---- the direct encoder ------------------------------------------------
 * Writes the same bytes protobuf-c's prometheus__write_request__pack()
 * would (proto3: zero scalars and empty strings omitted, fields in number
 * order; check_encode compares the two byte for byte), straight from the
 * interned strings, without building a message tree: two passes (sizes,
 * then bytes), no reflection. */

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Size of a length-delimited field holding `len` bytes (0 if omitted). */
static size_t str_field_len(size_t len)
{
    return len ? 1 + varint_len(len) + len : 0;
}

static uint8_t *put_str_field(uint8_t *p, unsigned field, const char *s, size_t len)
{
    if (!len)
        return p;
    *p++ = (uint8_t)(field << 3 | 2);
    p = put_varint(p, len);
    memcpy(p, s, len);
    return p + len;
}

/* Whether Sample.value is written: protobuf-c (proto3) omits a double
 * equal to 0, -0 included (so does Prometheus's own encoder). */
static bool value_present(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return (bits << 1) != 0; /* neither +0 nor -0 */
}

static size_t sample_len(double v, int64_t ts)
{
    return (value_present(v) ? 9 : 0) + (ts ? 1 + varint_len((uint64_t)ts) : 0);
}

static size_t metadata_len(const struct metric_desc *d)
{
    size_t n = d->type ? 1 + varint_len((uint64_t)d->type) : 0;
    return n + str_field_len(strlen(d->name)) + str_field_len(strlen(d->help)) +
           str_field_len(strlen(d->unit));
}

int rw_encode(struct rw_encoder *enc, const struct series_buf *sb, const struct sb_sample *s,
              size_t n, int64_t ts_ms, struct buf *out, struct err *e)
{
    size_t nfam = sb_family_count(sb);
    if (grow((void **)&enc->tssize, &enc->tssizecap, n + 1, sizeof *enc->tssize) < 0 ||
        grow((void **)&enc->seen, &enc->seencap, nfam ? nfam : 1, 1) < 0)
        goto oom;
    memset(enc->seen, 0, nfam);
    /* the labels of a series never change: their encoded size is cached */
    size_t nseries = sb_series_count(sb);
    if (enc->labsb != sb || enc->layout != sb_layout(sb)) {
        if (enc->labsz)
            memset(enc->labsz, 0, enc->labszcap * sizeof *enc->labsz);
        enc->labsb = sb;
        enc->layout = sb_layout(sb);
    }
    if (nseries > enc->labszcap) {
        size_t old = enc->labszcap;
        if (grow((void **)&enc->labsz, &enc->labszcap, nseries, sizeof *enc->labsz) < 0)
            goto oom;
        memset(enc->labsz + old, 0, (enc->labszcap - old) * sizeof *enc->labsz);
    }
    /* pass 1: sizes */
    size_t total = 0;
    size_t slen = sample_len(0, ts_ms); /* recomputed per value below */
    for (size_t i = 0; i < n; i++) {
        size_t ts = enc->labsz[s[i].series];
        if (!ts) {
            size_t k = sb_series_nlabels(sb, s[i].series);
            for (size_t j = 0; j < k; j++) {
                const char *nm, *v;
                size_t a, b;
                sb_series_label_len(sb, s[i].series, j, &nm, &a, &v, &b);
                size_t lm = str_field_len(a) + str_field_len(b);
                ts += 1 + varint_len(lm) + lm;
            }
            if (ts > UINT32_MAX)
                goto oom;
            enc->labsz[s[i].series] = (uint32_t)ts;
        }
        slen = sample_len(s[i].value, ts_ms);
        ts += 1 + varint_len(slen) + slen;
        if (ts > UINT32_MAX)
            goto oom;
        enc->tssize[i] = (uint32_t)ts;
        total += 1 + varint_len(ts) + ts;
        enc->seen[sb_series_family_index(sb, s[i].series)] = 1;
    }
    for (size_t fi = 0; fi < nfam; fi++)
        if (enc->seen[fi]) {
            size_t m = metadata_len(sb_family(sb, fi));
            total += 1 + varint_len(m) + m;
        }
    /* pass 2: bytes */
    buf_reset(&enc->raw);
    if (buf_reserve(&enc->raw, total) < 0)
        goto oom;
    uint8_t *p = (uint8_t *)enc->raw.data;
    for (size_t i = 0; i < n; i++) {
        *p++ = 1 << 3 | 2; /* WriteRequest.timeseries */
        p = put_varint(p, enc->tssize[i]);
        size_t k = sb_series_nlabels(sb, s[i].series);
        for (size_t j = 0; j < k; j++) {
            const char *nm, *v;
            size_t a, b;
            sb_series_label_len(sb, s[i].series, j, &nm, &a, &v, &b);
            *p++ = 1 << 3 | 2; /* TimeSeries.labels */
            p = put_varint(p, str_field_len(a) + str_field_len(b));
            p = put_str_field(p, 1, nm, a);
            p = put_str_field(p, 2, v, b);
        }
        slen = sample_len(s[i].value, ts_ms);
        *p++ = 2 << 3 | 2; /* TimeSeries.samples */
        p = put_varint(p, slen);
        if (value_present(s[i].value)) {
            uint64_t bits;
            memcpy(&bits, &s[i].value, sizeof bits);
            *p++ = 1 << 3 | 1; /* Sample.value, fixed64 little endian */
            for (int b = 0; b < 8; b++)
                *p++ = (uint8_t)(bits >> (8 * b));
        }
        if (ts_ms) {
            *p++ = 2 << 3 | 0; /* Sample.timestamp */
            p = put_varint(p, (uint64_t)ts_ms);
        }
    }
    for (size_t fi = 0; fi < nfam; fi++) {
        if (!enc->seen[fi])
            continue;
        const struct metric_desc *d = sb_family(sb, fi);
        *p++ = 3 << 3 | 2; /* WriteRequest.metadata */
        p = put_varint(p, metadata_len(d));
        if (d->type) {
            *p++ = 1 << 3 | 0;
            p = put_varint(p, (uint64_t)d->type);
        }
        p = put_str_field(p, 2, d->name, strlen(d->name));
        p = put_str_field(p, 4, d->help, strlen(d->help));
        p = put_str_field(p, 5, d->unit, strlen(d->unit));
    }
    size_t raw = (size_t)(p - (uint8_t *)enc->raw.data);
    if (raw != total) {
        err_set(e, "internal error: encoded %zu bytes, sized %zu", raw, total);
        return -1;
    }
    enc->raw.len = raw;
    return compress_raw(enc, out, n, e);
oom:
    err_set(e, "out of memory encoding %zu samples", n);
    return -1;
}

Prometheus__WriteRequest *rw_decode(const void *payload, size_t len, struct err *e)
{
    size_t rawlen;
    if (snappy_uncompressed_length(payload, len, &rawlen) != SNAPPY_OK) {
        err_set(e, "payload is not snappy block data");
        return NULL;
    }
    if (rawlen > (size_t)512 << 20) {
        err_set(e, "payload claims %zu uncompressed bytes", rawlen);
        return NULL;
    }
    char *raw = malloc(rawlen ? rawlen : 1);
    if (!raw) {
        err_set(e, "out of memory");
        return NULL;
    }
    if (snappy_uncompress(payload, len, raw, &rawlen) != SNAPPY_OK) {
        free(raw);
        err_set(e, "payload does not decompress");
        return NULL;
    }
    Prometheus__WriteRequest *wr =
        prometheus__write_request__unpack(NULL, rawlen, (const uint8_t *)raw);
    free(raw);
    if (!wr)
        err_set(e, "payload is not a WriteRequest");
    return wr;
}

void rw_decoded_free(Prometheus__WriteRequest *wr)
{
    if (wr)
        prometheus__write_request__free_unpacked(wr, NULL);
}
