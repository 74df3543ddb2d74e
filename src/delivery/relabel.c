#include "relabel.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct relabel {
    regex_t keep_re, drop_re;
    bool has_keep, has_drop;
    struct relabel_selectors *keep_series, *drop_series;
    char **drop_labels;
    size_t n_drop_labels;
    struct series_buf *own; /* drop_labels: the relabeled series, across calls */
    const struct series_buf *last_src; /* the input buffer of the previous call */
};

/* ---- the relabel ---------------------------------------------------------- */

void relabel_free(struct relabel *r)
{
    if (!r)
        return;
    if (r->has_keep)
        regfree(&r->keep_re);
    if (r->has_drop)
        regfree(&r->drop_re);
    relabel_selectors_free(r->keep_series);
    relabel_selectors_free(r->drop_series);
    strv_free(r->drop_labels, r->n_drop_labels);
    sb_free(r->own);
    free(r);
}

bool relabel_active(const struct relabel *r)
{
    return r &&
           (r->has_keep || r->has_drop || r->keep_series || r->drop_series || r->n_drop_labels);
}

static int compile_name_re(const char *key, const char *text, regex_t *re, bool *has, struct err *e)
{
    if (!text || !*text)
        return 0;
    int rc = regcomp(re, text, REG_EXTENDED | REG_NOSUB);
    if (rc) {
        char m[160];
        regerror(rc, re, m, sizeof m);
        err_set(e, "%s: bad regular expression \"%s\": %s", key, text, m);
        return -1;
    }
    *has = true;
    return 0;
}

struct relabel *relabel_new(const struct relabel_spec *s, struct err *e)
{
    struct relabel *r = calloc(1, sizeof *r);
    if (!r) {
        err_set(e, "out of memory");
        return NULL;
    }
    struct err e2;
    if (compile_name_re("keep_metrics", s->keep_metrics, &r->keep_re, &r->has_keep, e) < 0 ||
        compile_name_re("drop_metrics", s->drop_metrics, &r->drop_re, &r->has_drop, e) < 0)
        goto fail;
    if (s->keep_series && *s->keep_series &&
        relabel_selectors_parse(s->keep_series, &r->keep_series, &e2) < 0) {
        err_set(e, "keep_series: %s", e2.msg);
        goto fail;
    }
    if (s->drop_series && *s->drop_series &&
        relabel_selectors_parse(s->drop_series, &r->drop_series, &e2) < 0) {
        err_set(e, "drop_series: %s", e2.msg);
        goto fail;
    }
    if (s->n_drop_labels) {
        if (!(r->drop_labels = calloc(s->n_drop_labels, sizeof *r->drop_labels)))
            goto oom;
        for (size_t i = 0; i < s->n_drop_labels; i++) {
            const char *l = s->drop_labels[i];
            if (strcmp(l, "__name__") == 0 || !label_name_valid(l)) {
                err_set(e, "drop_labels: \"%s\" is not a label that can be dropped", l);
                goto fail;
            }
            if (!(r->drop_labels[r->n_drop_labels] = strdup(l)))
                goto oom;
            r->n_drop_labels++;
        }
    }
    return r;
oom:
    err_set(e, "out of memory");
fail:
    relabel_free(r);
    return NULL;
}

static bool is_dropped_label(const struct relabel *r, const char *name)
{
    for (size_t i = 0; i < r->n_drop_labels; i++)
        if (strcmp(r->drop_labels[i], name) == 0)
            return true;
    return false;
}

/* Every label of a series as name,value pairs; returns the count. */
static size_t series_labels(const struct series_buf *sb, uint32_t s, const char **pairs,
                            size_t max_pairs)
{
    size_t n = sb_series_nlabels(sb, s);
    if (n > max_pairs)
        n = max_pairs;
    for (size_t i = 0; i < n; i++)
        sb_series_label(sb, s, i, &pairs[2 * i], &pairs[2 * i + 1]);
    return n;
}

#define MAX_PAIRS 256

/* keep_metrics / drop_metrics decide per family: `fam` caches the answer
 * per family index (0 = not yet, 1 = keep, 2 = drop; NULL = no cache). */
static bool keep_sample(const struct relabel *r, const struct series_buf *sb, uint32_t s,
                        uint8_t *fam)
{
    uint32_t fi = sb_series_family_index(sb, s);
    if (fam && fam[fi] == 2)
        return false;
    if (!fam || !fam[fi]) {
        const struct metric_desc *d = sb_series_family(sb, s);
        bool keep = true;
        /* the self-metrics, spared as by [shipper] keep/drop_metrics (series.c) */
        if (!str_has_prefix(d->name, "nexus_shipper_") && !str_has_prefix(d->name, "process_")) {
            if (r->has_keep && regexec(&r->keep_re, d->name, 0, NULL, 0) != 0)
                keep = false;
            if (r->has_drop && regexec(&r->drop_re, d->name, 0, NULL, 0) == 0)
                keep = false;
        }
        if (fam)
            fam[fi] = keep ? 1 : 2;
        if (!keep)
            return false;
    }
    if (r->keep_series || r->drop_series) {
        const char *pairs[2 * MAX_PAIRS];
        size_t n = series_labels(sb, s, pairs, MAX_PAIRS);
        if (r->keep_series && !relabel_selectors_match(r->keep_series, pairs, n))
            return false;
        if (r->drop_series && relabel_selectors_match(r->drop_series, pairs, n))
            return false;
    }
    return true;
}

/* Sets series `s` of `sb` into `own` without the dropped labels.
 * 1 = set, 0 = a duplicate of a series already set, -1 = out of memory.
 * *rejected: own's rejected count so far (sb_stats is O(series): read only
 * after a failure). */
static int copy_series(const struct relabel *r, const struct series_buf *sb, uint32_t s, double v,
                       struct series_buf *own, uint64_t *rejected, struct err *e)
{
    const struct metric_desc *d = sb_series_family(sb, s);
    const char *all[2 * MAX_PAIRS], *kept[2 * MAX_PAIRS];
    size_t n = series_labels(sb, s, all, MAX_PAIRS), k = 0;
    const char *suffix = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(all[2 * i], "__name__") == 0) {
            size_t fl = strlen(d->name);
            if (strncmp(all[2 * i + 1], d->name, fl) == 0 && all[2 * i + 1][fl])
                suffix = all[2 * i + 1] + fl; /* a histogram's _bucket, _sum, _count */
            continue;
        }
        if (is_dropped_label(r, all[2 * i]))
            continue;
        kept[2 * k] = all[2 * i];
        kept[2 * k + 1] = all[2 * i + 1];
        k++;
    }
    if (sb_setv(own, d, suffix, v, kept, k, e) == 0)
        return 1;
    struct sb_stats after;
    sb_stats(own, &after);
    bool dup = after.rejected > *rejected; /* the only rejection possible: a duplicate */
    *rejected = after.rejected;
    return dup ? 0 : -1;
}

void relabel_out_free(struct relabel_out *out)
{
    if (!out)
        return;
    free(out->owned);
    memset(out, 0, sizeof *out);
}

int relabel_apply(struct relabel *r, const struct series_buf *sb, const struct sb_sample *in,
                  size_t n, struct relabel_out *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    out->sb = sb;
    if (!relabel_active(r)) {
        out->v = in;
        out->n = n;
        return 0;
    }
    if (!(out->owned = malloc((n ? n : 1) * sizeof *out->owned)))
        goto oom;
    out->v = out->owned;
    /* without the cache (out of memory for it) every sample asks the regexes */
    uint8_t *fam = calloc(sb_family_count(sb) + 1, 1);
    for (size_t i = 0; i < n; i++) {
        if (!keep_sample(r, sb, in[i].series, fam)) {
            out->filtered++;
            continue;
        }
        out->owned[out->n++] = in[i];
    }
    free(fam);
    if (!r->n_drop_labels)
        return 0;
    /* drop_labels: the kept samples again, as series of the relabel's own buffer */
    if (!r->own) {
        struct sb_opts o = {0};
        if (!(r->own = sb_new(&o)))
            goto oom;
    }
    if (sb_compact(r->own) < 0) /* drops relabeled series gone for two cycles */
        goto oom;
    sb_begin_cycle(r->own, sb_cycle_ts(sb));
    sb_txn_begin(r->own, "drop_labels");
    struct sb_stats st;
    sb_stats(r->own, &st);
    uint64_t rejected = st.rejected;
    for (size_t i = 0; i < out->n; i++) {
        if (is_stale_nan(out->owned[i].value))
            continue; /* the buffer makes its own markers */
        struct err e2;
        int rc =
            copy_series(r, sb, out->owned[i].series, out->owned[i].value, r->own, &rejected, &e2);
        if (rc < 0) {
            sb_txn_rollback(r->own);
            err_set(e, "drop_labels: %s", e2.msg);
            goto fail;
        }
        if (rc == 0 && !out->collisions++)
            snprintf(out->collision_example, sizeof out->collision_example, "%s", e2.msg);
    }
    sb_txn_commit(r->own);
    free(out->owned);
    out->owned = NULL;
    out->v = NULL;
    out->n = 0;
    if (sb_snapshot(r->own, false, &out->owned, &out->n) < 0)
        goto oom;
    if (r->last_src != sb) {
        /* another producer's buffer: the series not set now are its
         * series, not gone ones; no staleness markers for them */
        size_t k = 0;
        for (size_t i = 0; i < out->n; i++)
            if (!is_stale_nan(out->owned[i].value))
                out->owned[k++] = out->owned[i];
        out->n = k;
        r->last_src = sb;
    }
    out->v = out->owned;
    out->sb = r->own;
    return 0;
oom:
    err_set(e, "out of memory filtering %zu samples", n);
fail:
    relabel_out_free(out);
    return -1;
}
