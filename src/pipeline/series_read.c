/* series_read: reading the series buffer (contract: series.h): the
 * snapshot of a cycle (with staleness markers, optionally sorted: see
 * sb_snapshot) and the accessors the encoders use. */
#include "series.h"
#include "series_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading ------------------------------------------------------------ */

/* Values of "le", "quantile" (and nexus_docker_tags_by_age's "le_days")
 * in numeric order ("+Inf" parses as infinity); a value that is not a
 * number sorts after the numbers, by bytes. */
static bool numeric_label(const char *name)
{
    return !strcmp(name, "le") || !strcmp(name, "quantile") || !strcmp(name, "le_days");
}

static int cmp_numeric(const char *a, const char *b)
{
    char *ea, *eb;
    double x = strtod(a, &ea), y = strtod(b, &eb);
    bool na = ea != a && !*ea && !isnan(x), nb = eb != b && !*eb && !isnan(y);
    if (na && nb && x != y)
        return x < y ? -1 : 1;
    if (na != nb)
        return na ? -1 : 1;
    return strcmp(a, b);
}

/* Labels compared after the others: the metric name and "le". */
static bool late_label(const char *name)
{
    return (name[0] == '_' && !strcmp(name, "__name__")) || (name[0] == 'l' && !strcmp(name, "le"));
}

/* The value of label `name` of series s, or NULL. */
static const char *label_value(const struct series_buf *sb, const struct series *s,
                               const char *name)
{
    for (size_t i = 0; i < s->nlab; i++)
        if (!strcmp(sb->pool.strs[sb->lab[s->lab + 2 * i]], name))
            return sb->pool.strs[sb->lab[s->lab + 2 * i + 1]];
    return NULL;
}

/* A histogram's series in the order of the text format's writers: per
 * label set, _bucket (by le), _sum, _count. */
static int suffix_rank(const char *name, const char *family)
{
    const char *suf = name + strlen(family);
    if (strncmp(name, family, strlen(family)) != 0 || !*suf)
        return 0;
    return !strcmp(suf, "_bucket") ? 1 : !strcmp(suf, "_sum") ? 2 : !strcmp(suf, "_count") ? 3 : 4;
}

/* Text-format order: family; then the labels but __name__ and le, pair
 * by pair (names, then values: numeric_label ones as numbers); then the
 * histogram suffix (_bucket, _sum, _count); then le as a number. So a
 * histogram's buckets of one label set come together, ascending, +Inf
 * last, followed by its _sum and _count. */
static int cmp_series(const void *a, const void *b, void *ctx)
{
    const struct series_buf *sb = ctx;
    const struct series *x = &sb->s[((const struct sb_sample *)a)->series];
    const struct series *y = &sb->s[((const struct sb_sample *)b)->series];
    const char *fam = sb->fam[x->family].d.name;
    if (x->family != y->family) {
        int c = strcmp(fam, sb->fam[y->family].d.name);
        if (c)
            return c;
    }
    size_t i = 0, j = 0;
    for (;;) {
        while (i < x->nlab && late_label(sb->pool.strs[sb->lab[x->lab + 2 * i]]))
            i++;
        while (j < y->nlab && late_label(sb->pool.strs[sb->lab[y->lab + 2 * j]]))
            j++;
        if (i == x->nlab || j == y->nlab) {
            if (i != x->nlab || j != y->nlab)
                return i == x->nlab ? -1 : 1; /* fewer labels first */
            break;
        }
        uint32_t na = sb->lab[x->lab + 2 * i], nb = sb->lab[y->lab + 2 * j];
        if (na != nb) {
            int c = strcmp(sb->pool.strs[na], sb->pool.strs[nb]);
            if (c)
                return c;
        }
        uint32_t va = sb->lab[x->lab + 2 * i + 1], vb = sb->lab[y->lab + 2 * j + 1];
        if (va != vb) {
            int c = numeric_label(sb->pool.strs[na])
                        ? cmp_numeric(sb->pool.strs[va], sb->pool.strs[vb])
                        : strcmp(sb->pool.strs[va], sb->pool.strs[vb]);
            if (c)
                return c;
        }
        i++;
        j++;
    }
    const char *xn = label_value(sb, x, "__name__"), *yn = label_value(sb, y, "__name__");
    if (xn && yn && xn != yn) {
        int rx = suffix_rank(xn, fam), ry = suffix_rank(yn, fam);
        if (rx != ry)
            return rx < ry ? -1 : 1;
        int c = strcmp(xn, yn);
        if (c)
            return c;
    }
    const char *xl = label_value(sb, x, "le"), *yl = label_value(sb, y, "le");
    if (xl && yl)
        return xl == yl ? 0 : cmp_numeric(xl, yl);
    return xl ? 1 : yl ? -1 : 0;
}

int sb_snapshot(struct series_buf *sb, bool sorted, struct sb_sample **out, size_t *n)
{
    size_t cnt = 0;
    for (size_t i = 0; i < sb->n; i++)
        if (sb->s[i].gen == sb->gen || sb->s[i].gen + 1 == sb->gen)
            cnt++;
    struct sb_sample *v = malloc((cnt ? cnt : 1) * sizeof *v);
    if (!v)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < sb->n; i++) {
        const struct series *s = &sb->s[i];
        if (s->gen == sb->gen)
            v[k++] = (struct sb_sample){(uint32_t)i, s->value};
        else if (s->gen + 1 == sb->gen && sb->snap_gen + 1 == sb->gen)
            v[k++] = (struct sb_sample){(uint32_t)i, stale_nan()};
    }
    if (sorted)
        qsort_r(v, k, sizeof *v, cmp_series, sb); /* qsort_r: the buffer as context, no global */
    sb->snap_gen = sb->gen;
    *out = v;
    *n = k;
    return 0;
}

size_t sb_series_nlabels(const struct series_buf *sb, uint32_t series)
{
    return sb->s[series].nlab;
}

void sb_series_label(const struct series_buf *sb, uint32_t series, size_t i, const char **name,
                     const char **value)
{
    const struct series *s = &sb->s[series];
    *name = sb->pool.strs[sb->lab[s->lab + 2 * i]];
    *value = sb->pool.strs[sb->lab[s->lab + 2 * i + 1]];
}

uint32_t sb_layout(const struct series_buf *sb)
{
    return sb->layout;
}

size_t sb_series_count(const struct series_buf *sb)
{
    return sb->n;
}

void sb_series_label_len(const struct series_buf *sb, uint32_t series, size_t i, const char **name,
                         size_t *name_len, const char **value, size_t *value_len)
{
    const struct series *s = &sb->s[series];
    uint32_t a = sb->lab[s->lab + 2 * i], b = sb->lab[s->lab + 2 * i + 1];
    *name = sb->pool.strs[a];
    *name_len = sb->pool.lens[a];
    *value = sb->pool.strs[b];
    *value_len = sb->pool.lens[b];
}

const struct metric_desc *sb_series_family(const struct series_buf *sb, uint32_t series)
{
    return &sb->fam[sb->s[series].family].d;
}

uint32_t sb_series_family_index(const struct series_buf *sb, uint32_t series)
{
    return sb->s[series].family;
}

size_t sb_family_count(const struct series_buf *sb)
{
    return sb->nfam;
}

const struct metric_desc *sb_family(const struct series_buf *sb, size_t i)
{
    return &sb->fam[i].d;
}
