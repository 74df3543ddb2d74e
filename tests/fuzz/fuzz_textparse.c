/* libFuzzer target: the Prometheus text-format parser (textparse) on
 * hostile input, the way nexus_metrics uses it. The input is parsed twice:
 * in one piece and in chunks whose size comes from the first byte; both
 * runs must agree exactly (samples, values, labels, error message). Every
 * sample is then stored in a series buffer as the collector does and the
 * buffer is rendered in the text format. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"
#include "textfmt.h"
#include "textparse.h"

struct run {
    struct buf out;
    struct series_buf *sb;
};

static int on_sample(void *ud, const struct tp_sample *s, struct err *e)
{
    (void)e;
    struct run *r = ud;
    uint64_t bits;
    memcpy(&bits, &s->value, sizeof bits);
    if (isnan(s->value))
        bits = 1; /* any NaN is the same NaN */
    buf_printf(&r->out, "%s|%s|%s|%d|%s|%zu|%llx|%d|%lld|%zu", s->name, s->family, s->suffix,
               (int)s->type, s->help, s->n_labels, (unsigned long long)bits, (int)s->has_ts,
               (long long)s->ts_ms, s->line);
    for (size_t i = 0; i < 2 * s->n_labels; i++)
        buf_printf(&r->out, "|%s", s->labels[i]);
    buf_puts(&r->out, "\n");
    if (strncmp(s->name, s->family, strlen(s->family)) != 0 ||
        strcmp(s->name + strlen(s->family), s->suffix) != 0)
        abort(); /* name = family + suffix */
    if (r->sb) {
        struct metric_desc d = {s->name, MT_UNKNOWN, s->help, ""};
        const char *suffix = NULL;
        if (s->type == TP_HISTOGRAM && *s->suffix) {
            d.name = s->family;
            d.type = MT_HISTOGRAM;
            suffix = s->suffix;
        }
        struct err se;
        sb_setv(r->sb, &d, suffix, s->value, s->labels, s->n_labels, &se);
    }
    return 0;
}

static int run_once(const char *data, size_t size, size_t chunk, struct run *r, struct err *e)
{
    struct tp_limits lim = {.max_line = 2048, .max_labels = 16, .max_samples = 500};
    struct textparse *p = tp_new(&lim, on_sample, r);
    if (!p)
        return -2;
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += chunk)
        rc = tp_feed(p, data + off, size - off < chunk ? size - off : chunk, e);
    if (rc == 0)
        rc = tp_finish(p, e);
    tp_free(p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    size_t chunk = (size_t)data[0] % 17 + 1;
    const char *in = (const char *)data + 1;
    size--;
    struct run a = {0}, b = {0};
    buf_init(&a.out, 0);
    buf_init(&b.out, 0);
    struct sb_opts o = {.max_bytes = 1 << 20};
    a.sb = sb_new(&o);
    if (a.sb) {
        sb_begin_cycle(a.sb, 1700000000000);
        sb_txn_begin(a.sb, "fuzz");
    }
    struct err ea = {{0}}, eb = {{0}};
    int ra = run_once(in, size, size ? size : 1, &a, &ea);
    int rb = run_once(in, size, chunk, &b, &eb);
    if (ra != -2 && rb != -2) {
        if (ra != rb)
            abort();
        if (a.out.len != b.out.len || (a.out.len && memcmp(a.out.data, b.out.data, a.out.len)))
            abort();
        if (ra < 0 && strcmp(ea.msg, eb.msg) != 0)
            abort();
        if (ra < 0 && strncmp(ea.msg, "line ", 5) != 0)
            abort(); /* every parse error names its line */
    }
    if (a.sb) {
        sb_txn_commit(a.sb);
        struct sb_sample *v;
        size_t k;
        if (sb_snapshot(a.sb, true, &v, &k) == 0) {
            struct buf txt;
            buf_init(&txt, 0);
            textfmt_write(a.sb, v, k, &txt);
            buf_free(&txt);
            free(v);
        }
        sb_free(a.sb);
    }
    buf_free(&a.out);
    buf_free(&b.out);
    return 0;
}
