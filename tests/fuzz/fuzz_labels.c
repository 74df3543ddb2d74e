/* libFuzzer target: the series buffer and both encoders on hostile label
 * names and values (what collectors copy from Nexus, GitLab and registry
 * answers). Input: NUL-separated name/value strings. Every accepted
 * series must survive the remote-write round trip unchanged and render in
 * the text format. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "remote.pb-c.h"
#include "remote_write.h"
#include "series.h"
#include "textfmt.h"

static const struct metric_desc d = {"fuzz_metric", MT_GAUGE, "help \\ with\nnewline", ""};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    const char *labels[16];
    size_t n = 0;
    for (char *p = copy; p < copy + size && n < 16; p += strlen(p) + 1)
        labels[n++] = p;
    n &= ~(size_t)1;
    struct sb_opts o = {.max_bytes = 1 << 20};
    struct series_buf *sb = sb_new(&o);
    struct rw_encoder *enc = rw_encoder_new();
    struct buf out, txt;
    buf_init(&out, 0);
    buf_init(&txt, 0);
    if (sb && enc) {
        sb_begin_cycle(sb, 1700000000000);
        sb_txn_begin(sb, "fuzz");
        struct err e;
        sb_setv(sb, &d, NULL, 1.5, labels, n / 2, &e);
        sb_txn_commit(sb);
        struct sb_sample *v;
        size_t k;
        if (sb_snapshot(sb, true, &v, &k) == 0) {
            textfmt_write(sb, v, k, &txt);
            if (k && rw_encode(enc, sb, v, k, 1700000000000, &out, &e) == 0) {
                Prometheus__WriteRequest *wr = rw_decode(out.data, out.len, &e);
                if (!wr || wr->n_timeseries != k)
                    abort();
                for (size_t i = 0; i < k; i++) {
                    Prometheus__TimeSeries *t = wr->timeseries[i];
                    if (t->n_labels != sb_series_nlabels(sb, v[i].series))
                        abort();
                    for (size_t j = 0; j < t->n_labels; j++) {
                        const char *nm, *val;
                        sb_series_label(sb, v[i].series, j, &nm, &val);
                        if (strcmp(nm, t->labels[j]->name) || strcmp(val, t->labels[j]->value))
                            abort();
                        if (j && strcmp(t->labels[j - 1]->name, t->labels[j]->name) >= 0)
                            abort(); /* sorted, no duplicates */
                    }
                }
                rw_decoded_free(wr);
            }
            free(v);
        }
    }
    buf_free(&out);
    buf_free(&txt);
    rw_encoder_free(enc);
    sb_free(sb);
    free(copy);
    return 0;
}
