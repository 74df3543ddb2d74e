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

const char *rw_drop_reason(long status, const char *body)
{
    if (status == 400 && body &&
        (strcasestr(body, "out of bounds") || strcasestr(body, "too old") ||
         strcasestr(body, "out of order") || strcasestr(body, "out-of-order")))
        return "out_of_bounds";
    if (status == 401 || status == 403)
        return "unauthorized";
    if (status == 413)
        return "too_large";
    return "rejected";
}

struct rw_encoder {
    Prometheus__TimeSeries *ts;
    Prometheus__TimeSeries **tsp;
    Prometheus__Sample *smp;
    Prometheus__Sample **smpp;
    Prometheus__Label *lab;
    Prometheus__Label **labp;
    size_t cap, labcap;
    Prometheus__MetricMetadata *md;
    Prometheus__MetricMetadata **mdp;
    size_t mdcap, mdpcap;
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
    free(enc->ts);
    free(enc->tsp);
    free(enc->smp);
    free(enc->smpp);
    free(enc->lab);
    free(enc->labp);
    free(enc->md);
    free(enc->mdp);
    free(enc->seen);
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

int rw_encode(struct rw_encoder *enc, const struct series_buf *sb, const struct sb_sample *s,
              size_t n, int64_t ts_ms, struct buf *out, struct err *e)
{
    size_t nlab = 0;
    for (size_t i = 0; i < n; i++)
        nlab += sb_series_nlabels(sb, s[i].series);
    size_t c1 = enc->cap, c2 = enc->cap, c3 = enc->cap, c4 = enc->cap, l1 = enc->labcap,
           l2 = enc->labcap;
    if (grow((void **)&enc->ts, &c1, n, sizeof *enc->ts) < 0 ||
        grow((void **)&enc->tsp, &c2, n, sizeof *enc->tsp) < 0 ||
        grow((void **)&enc->smp, &c3, n, sizeof *enc->smp) < 0 ||
        grow((void **)&enc->smpp, &c4, n, sizeof *enc->smpp) < 0 ||
        grow((void **)&enc->lab, &l1, nlab, sizeof *enc->lab) < 0 ||
        grow((void **)&enc->labp, &l2, nlab, sizeof *enc->labp) < 0)
        goto oom;
    /* all four grew to the same capacity (or failed before any change) */
    enc->cap = c1 < c4 ? c1 : c4;
    enc->labcap = l1 < l2 ? l1 : l2;
    size_t nfam = sb_family_count(sb);
    if (grow((void **)&enc->seen, &enc->seencap, nfam ? nfam : 1, 1) < 0)
        goto oom;
    memset(enc->seen, 0, nfam);
    size_t nmd = 0;
    size_t li = 0;
    for (size_t i = 0; i < n; i++) {
        Prometheus__TimeSeries *t = &enc->ts[i];
        prometheus__time_series__init(t);
        size_t k = sb_series_nlabels(sb, s[i].series);
        t->n_labels = k;
        t->labels = &enc->labp[li];
        for (size_t j = 0; j < k; j++) {
            Prometheus__Label *l = &enc->lab[li];
            prometheus__label__init(l);
            const char *nm, *v;
            sb_series_label(sb, s[i].series, j, &nm, &v);
            l->name = (char *)nm;
            l->value = (char *)v;
            enc->labp[li++] = l;
        }
        Prometheus__Sample *sm = &enc->smp[i];
        prometheus__sample__init(sm);
        sm->value = s[i].value;
        sm->timestamp = ts_ms;
        enc->smpp[i] = sm;
        t->n_samples = 1;
        t->samples = &enc->smpp[i];
        enc->tsp[i] = t;
        uint32_t fi = sb_series_family_index(sb, s[i].series);
        if (!enc->seen[fi]) {
            enc->seen[fi] = 1;
            nmd++;
        }
    }
    if (grow((void **)&enc->md, &enc->mdcap, nmd ? nmd : 1, sizeof *enc->md) < 0)
        goto oom;
    if (grow((void **)&enc->mdp, &enc->mdpcap, nmd ? nmd : 1, sizeof *enc->mdp) < 0)
        goto oom;
    size_t mi = 0;
    for (size_t fi = 0; fi < nfam; fi++) {
        if (!enc->seen[fi])
            continue;
        const struct metric_desc *d = sb_family(sb, fi);
        Prometheus__MetricMetadata *m = &enc->md[mi];
        prometheus__metric_metadata__init(m);
        m->type = (Prometheus__MetricMetadata__MetricType)d->type;
        m->metric_family_name = (char *)d->name;
        m->help = (char *)d->help;
        m->unit = (char *)d->unit;
        enc->mdp[mi++] = m;
    }
    Prometheus__WriteRequest wr;
    prometheus__write_request__init(&wr);
    wr.n_timeseries = n;
    wr.timeseries = enc->tsp;
    wr.n_metadata = mi;
    wr.metadata = enc->mdp;
    size_t raw_len = prometheus__write_request__get_packed_size(&wr);
    buf_reset(&enc->raw);
    if (buf_reserve(&enc->raw, raw_len) < 0)
        goto oom;
    size_t packed = prometheus__write_request__pack(&wr, (uint8_t *)enc->raw.data);
    enc->raw.len = packed;
    size_t clen = snappy_max_compressed_length(packed);
    buf_reset(out);
    if (buf_reserve(out, clen) < 0)
        goto oom;
    if (snappy_compress(enc->raw.data, packed, out->data, &clen) != SNAPPY_OK) {
        err_set(e, "snappy compression failed");
        return -1;
    }
    out->len = clen;
    return 0;
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
