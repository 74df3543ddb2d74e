/* libFuzzer target: the remote-write encoder round trip. Fuzzer-built
 * samples (sample_gen.h: hostile names, label values, help, unit, NaN,
 * +-Inf, -0, the staleness marker, any double) go into a series buffer;
 * the direct encoder (rw_encode) must produce exactly the bytes of the
 * protobuf-c reference encoder (rw_encode_reference), and decoding them
 * (rw_decode) must give back what the buffer holds: one TimeSeries per
 * sample in snapshot order with the same labels in the same order, one
 * sample each with the value bit for bit (-0 comes back as 0: proto3
 * omits a zero double) and the timestamp, and one
 * MetricMetadata per family present (type, name, help, unit). With
 * SG_F_CYCLE2 a second cycle stores part of the samples again and is
 * checked the same way (staleness markers, the encoder's cached sizes). */
#include <stdio.h>
#include <stdlib.h>

#include "remote.pb-c.h"
#include "remote_write.h"
#include "rw_reference.h"
#include "sample_gen.h"

static void fail(const char *what, size_t i)
{
    fprintf(stderr, "fuzz_rwencode: %s (item %zu)\n", what, i);
    abort();
}

static void check(struct rw_encoder *enc, struct series_buf *sb, bool sorted, int64_t ts)
{
    struct sb_sample *v;
    size_t n;
    if (sb_snapshot(sb, sorted, &v, &n) < 0)
        return;
    struct buf direct, ref;
    buf_init(&direct, 0);
    buf_init(&ref, 0);
    struct err e;
    if (rw_encode(enc, sb, v, n, ts, &direct, &e) < 0)
        fail(e.msg, 0);
    if (rw_encode_reference(sb, v, n, ts, &ref, &e) < 0)
        fail(e.msg, 0);
    if (direct.len != ref.len || (direct.len && memcmp(direct.data, ref.data, direct.len) != 0))
        fail("the direct encoder's bytes differ from protobuf-c's", 0);
    Prometheus__WriteRequest *wr = rw_decode(direct.data, direct.len, &e);
    if (!wr)
        fail(e.msg, 0);
    if (wr->n_timeseries != n)
        fail("series count differs", wr->n_timeseries);
    size_t nfam = sb_family_count(sb);
    bool seen[SG_MAX_FAM + 1] = {false};
    for (size_t i = 0; i < n; i++) {
        const Prometheus__TimeSeries *t = wr->timeseries[i];
        size_t k = sb_series_nlabels(sb, v[i].series);
        if (t->n_labels != k)
            fail("label count differs", i);
        for (size_t j = 0; j < k; j++) {
            const char *ln, *lv;
            sb_series_label(sb, v[i].series, j, &ln, &lv);
            if (strcmp(t->labels[j]->name, ln) != 0 || strcmp(t->labels[j]->value, lv) != 0)
                fail("label differs", i);
        }
        if (t->n_samples != 1)
            fail("not one sample", i);
        uint64_t a, b;
        memcpy(&a, &v[i].value, sizeof a);
        memcpy(&b, &t->samples[0]->value, sizeof b);
        if (a != b && !(v[i].value == 0 && b == 0)) /* -0 is sent as 0 (remote_write.h) */
            fail("value bits differ", i);
        if (t->samples[0]->timestamp != ts)
            fail("timestamp differs", i);
        uint32_t fi = sb_series_family_index(sb, v[i].series);
        if (fi < nfam && fi <= SG_MAX_FAM)
            seen[fi] = true;
    }
    size_t want_md = 0;
    for (size_t fi = 0; fi < nfam && fi <= SG_MAX_FAM; fi++)
        want_md += seen[fi];
    if (wr->n_metadata != want_md)
        fail("metadata count differs", wr->n_metadata);
    for (size_t m = 0, fi = 0; m < wr->n_metadata; m++, fi++) {
        while (!seen[fi])
            fi++;
        const struct metric_desc *d = sb_family(sb, fi);
        const Prometheus__MetricMetadata *md = wr->metadata[m];
        if ((int)md->type != (int)d->type || strcmp(md->metric_family_name, d->name) != 0 ||
            strcmp(md->help, d->help) != 0 || strcmp(md->unit, d->unit) != 0)
            fail("metadata differs", m);
    }
    rw_decoded_free(wr);
    buf_free(&direct);
    buf_free(&ref);
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8 || size > 8192)
        return 0;
    int64_t ts;
    memcpy(&ts, data, sizeof ts);
    struct sg_reader r = {data + 8, data + size};
    struct sg g;
    sg_header(&r, &g);
    struct series_buf *sb = sg_buffer(&g);
    struct rw_encoder *enc = rw_encoder_new();
    if (sb && enc) {
        bool sorted = g.flags & SG_F_SORTED;
        sb_begin_cycle(sb, 1704067200000);
        sb_txn_begin(sb, "fuzz");
        /* with a second cycle, a count byte splits the samples in two */
        sg_samples(&r, &g, sb, g.flags & SG_F_CYCLE2 ? sg_byte(&r) % 32 : 48);
        sb_txn_commit(sb);
        check(enc, sb, sorted, ts);
        if (g.flags & SG_F_CYCLE2) {
            /* the rest of the input is the second cycle's samples */
            sb_begin_cycle(sb, 1704067260000);
            sb_txn_begin(sb, "fuzz");
            sg_samples(&r, &g, sb, 48);
            sb_txn_commit(sb);
            check(enc, sb, sorted, ts);
        }
    }
    rw_encoder_free(enc);
    sb_free(sb);
    return 0;
}
