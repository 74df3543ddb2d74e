/* libFuzzer target: the text-format writer (textfmt_write, what the
 * Pushgateway sender and the /metrics endpoint send) read back by the
 * text-format parser (textparse). Fuzzer-built samples (sample_gen.h:
 * hostile names, label values, help text, NaN, +-Inf, -0, any double)
 * go into a series buffer; what the writer renders must parse, and give
 * back exactly what the buffer holds, in order: names, labels (name and
 * value, in order), values bit for bit (any NaN for a NaN), and each
 * sample's family, type and help (but trailing carriage returns, which
 * the writer leaves out). Staleness markers are not written. */
#include <stdio.h>
#include <stdlib.h>

#include "sample_gen.h"
#include "textfmt.h"
#include "textparse.h"

struct check {
    const struct series_buf *sb;
    const struct sb_sample *v;
    size_t n, i; /* expected samples, next one */
    const char *text;
};

static void fail(const struct check *c, const char *what)
{
    fprintf(stderr, "fuzz_textfmt: sample %zu: %s\n--- written:\n%s---\n", c->i, what, c->text);
    abort();
}

static enum tp_type tp_of(enum metric_type t)
{
    switch (t) {
    case MT_COUNTER:
        return TP_COUNTER;
    case MT_GAUGE:
    case MT_INFO:
        return TP_GAUGE;
    case MT_HISTOGRAM:
        return TP_HISTOGRAM;
    default:
        return TP_UNTYPED;
    }
}

static int on_sample(void *ud, const struct tp_sample *s, struct err *e)
{
    (void)e;
    struct check *c = ud;
    while (c->i < c->n && is_stale_nan(c->v[c->i].value))
        c->i++;
    if (c->i >= c->n)
        fail(c, "more samples read than written");
    uint32_t series = c->v[c->i].series;
    double want = c->v[c->i].value;
    size_t k = sb_series_nlabels(c->sb, series), got = 0;
    const char *name = NULL;
    for (size_t j = 0; j < k; j++) {
        const char *ln, *lv;
        sb_series_label(c->sb, series, j, &ln, &lv);
        if (strcmp(ln, "__name__") == 0) {
            name = lv;
            continue;
        }
        if (got >= s->n_labels || strcmp(s->labels[2 * got], ln) != 0)
            fail(c, "label names differ");
        if (strcmp(s->labels[2 * got + 1], lv) != 0)
            fail(c, "label values differ");
        got++;
    }
    if (got != s->n_labels)
        fail(c, "label count differs");
    if (!name || strcmp(name, s->name) != 0)
        fail(c, "name differs");
    uint64_t a, b;
    memcpy(&a, &want, sizeof a);
    memcpy(&b, &s->value, sizeof b);
    if (isnan(want) ? !isnan(s->value) : a != b)
        fail(c, "value differs");
    if (s->has_ts)
        fail(c, "a timestamp was written");
    const struct metric_desc *d = sb_series_family(c->sb, series);
    if (strcmp(s->family, d->name) != 0)
        fail(c, "family differs");
    if (s->type != tp_of(d->type))
        fail(c, "type differs");
    size_t hl = strlen(d->help);
    while (hl && d->help[hl - 1] == '\r') /* not written (textfmt.h) */
        hl--;
    if (strlen(s->help) != hl || memcmp(s->help, d->help, hl) != 0)
        fail(c, "help differs");
    c->i++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    struct sg_reader r = {data, data + size};
    struct sg g;
    sg_header(&r, &g);
    struct series_buf *sb = sg_buffer(&g);
    if (!sb)
        return 0;
    sb_begin_cycle(sb, 1704067200000);
    sb_txn_begin(sb, "fuzz");
    sg_samples(&r, &g, sb, 64);
    sb_txn_commit(sb);
    struct sb_sample *v;
    size_t n;
    if (sb_snapshot(sb, true, &v, &n) == 0) {
        struct buf txt;
        buf_init(&txt, 0);
        if (textfmt_write(sb, v, n, &txt) < 0 || !buf_cstr(&txt))
            abort();
        struct check c = {sb, v, n, 0, txt.data};
        struct tp_limits lim = {.max_labels =
                                    64}; /* lines: 64 KiB, more than 8 KiB of input makes */
        struct err e;
        if (tp_parse(txt.data, txt.len, &lim, on_sample, &c, &e) < 0) {
            fprintf(stderr, "fuzz_textfmt: the written text does not parse: %s\n", e.msg);
            fail(&c, "parse error");
        }
        while (c.i < n && is_stale_nan(v[c.i].value))
            c.i++;
        if (c.i != n)
            fail(&c, "fewer samples read than written");
        buf_free(&txt);
        free(v);
    }
    sb_free(sb);
    return 0;
}
