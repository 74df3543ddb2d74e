#include "rw_reference.h"

#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "remote.pb-c.h"

int rw_encode_reference(const struct series_buf *sb, const struct sb_sample *s, size_t n,
                        int64_t ts_ms, struct buf *out, struct err *e)
{
    int rc = -1;
    size_t nlab = 0;
    for (size_t i = 0; i < n; i++)
        nlab += sb_series_nlabels(sb, s[i].series);
    size_t nfam = sb_family_count(sb);
    size_t one = n ? n : 1, onel = nlab ? nlab : 1, onef = nfam ? nfam : 1;
    Prometheus__TimeSeries *ts = calloc(one, sizeof *ts);
    Prometheus__TimeSeries **tsp = calloc(one, sizeof *tsp);
    Prometheus__Sample *smp = calloc(one, sizeof *smp);
    Prometheus__Sample **smpp = calloc(one, sizeof *smpp);
    Prometheus__Label *lab = calloc(onel, sizeof *lab);
    Prometheus__Label **labp = calloc(onel, sizeof *labp);
    Prometheus__MetricMetadata *md = calloc(onef, sizeof *md);
    Prometheus__MetricMetadata **mdp = calloc(onef, sizeof *mdp);
    uint8_t *seen = calloc(onef, 1); /* per family: already has metadata in this request */
    struct buf raw;
    buf_init(&raw, 0);
    if (!ts || !tsp || !smp || !smpp || !lab || !labp || !md || !mdp || !seen)
        goto oom;
    size_t li = 0;
    for (size_t i = 0; i < n; i++) {
        Prometheus__TimeSeries *t = &ts[i];
        prometheus__time_series__init(t);
        size_t k = sb_series_nlabels(sb, s[i].series);
        t->n_labels = k;
        t->labels = &labp[li];
        for (size_t j = 0; j < k; j++) {
            Prometheus__Label *l = &lab[li];
            prometheus__label__init(l);
            const char *nm, *v;
            sb_series_label(sb, s[i].series, j, &nm, &v);
            l->name = (char *)nm;
            l->value = (char *)v;
            labp[li++] = l;
        }
        Prometheus__Sample *sm = &smp[i];
        prometheus__sample__init(sm);
        sm->value = s[i].value;
        sm->timestamp = ts_ms;
        smpp[i] = sm;
        t->n_samples = 1;
        t->samples = &smpp[i];
        tsp[i] = t;
        seen[sb_series_family_index(sb, s[i].series)] = 1;
    }
    size_t mi = 0;
    for (size_t fi = 0; fi < nfam; fi++) {
        if (!seen[fi])
            continue;
        const struct metric_desc *d = sb_family(sb, fi);
        Prometheus__MetricMetadata *m = &md[mi];
        prometheus__metric_metadata__init(m);
        m->type = (Prometheus__MetricMetadata__MetricType)d->type;
        m->metric_family_name = (char *)d->name;
        m->help = (char *)d->help;
        m->unit = (char *)d->unit;
        mdp[mi++] = m;
    }
    Prometheus__WriteRequest wr;
    prometheus__write_request__init(&wr);
    wr.n_timeseries = n;
    wr.timeseries = tsp;
    wr.n_metadata = mi;
    wr.metadata = mdp;
    size_t raw_len = prometheus__write_request__get_packed_size(&wr);
    if (buf_reserve(&raw, raw_len) < 0)
        goto oom;
    raw.len = prometheus__write_request__pack(&wr, (uint8_t *)raw.data);
    size_t clen = snappy_max_compressed_length(raw.len);
    buf_reset(out);
    if (buf_reserve(out, clen) < 0)
        goto oom;
    if (snappy_compress(raw.data, raw.len, out->data, &clen) != SNAPPY_OK) {
        err_set(e, "snappy compression failed");
        goto out;
    }
    out->len = clen;
    rc = 0;
    goto out;
oom:
    err_set(e, "out of memory encoding %zu samples", n);
out:
    free(ts);
    free(tsp);
    free(smp);
    free(smpp);
    free(lab);
    free(labp);
    free(md);
    free(mdp);
    free(seen);
    buf_free(&raw);
    return rc;
}
