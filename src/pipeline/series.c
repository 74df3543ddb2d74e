#include "series.h"
#include "series_int.h"
#include "strpool.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the buffer --------------------------------------------------------- */

double stale_nan(void)
{
    uint64_t bits = STALE_NAN_BITS;
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

bool is_stale_nan(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits == STALE_NAN_BITS;
}

static size_t sb_bytes(const struct series_buf *sb)
{
    return sizeof *sb + sb->pool.bytes + sb->cap * sizeof *sb->s + sb->labcap * sizeof *sb->lab +
           sb->tcap * sizeof *sb->table + sb->famcap * sizeof *sb->fam +
           sb->famtcap * sizeof *sb->famtab + sb->pendcap * sizeof *sb->pend;
}

struct series_buf *sb_new(const struct sb_opts *o)
{
    struct series_buf *sb = calloc(1, sizeof *sb);
    if (!sb)
        return NULL;
    sb->o = *o;
    sb->o.ext_labels = NULL;
    sb->gen = 1;
    if (o->n_ext) {
        sb->ext = calloc(o->n_ext * 2, sizeof *sb->ext);
        if (!sb->ext)
            goto fail;
        for (size_t i = 0; i < o->n_ext; i++) {
            const char *nm = o->ext_labels[2 * i], *v = o->ext_labels[2 * i + 1];
            if (!label_name_valid(nm) || !v || !*v)
                goto fail;
            int64_t a = strpool_intern(&sb->pool, nm, strlen(nm));
            int64_t b = strpool_intern(&sb->pool, v, strlen(v));
            if (a < 0 || b < 0)
                goto fail;
            /* insertion sort by name; a repeated name keeps the first */
            size_t j = sb->n_ext;
            bool dup = false;
            for (size_t k = 0; k < sb->n_ext; k++)
                dup |= sb->ext[2 * k] == (uint32_t)a;
            if (dup)
                continue;
            while (j > 0 && strcmp(sb->pool.strs[sb->ext[2 * (j - 1)]], nm) > 0) {
                sb->ext[2 * j] = sb->ext[2 * (j - 1)];
                sb->ext[2 * j + 1] = sb->ext[2 * (j - 1) + 1];
                j--;
            }
            sb->ext[2 * j] = (uint32_t)a;
            sb->ext[2 * j + 1] = (uint32_t)b;
            sb->n_ext++;
        }
    }
    return sb;
fail:
    sb_free(sb);
    return NULL;
}

void sb_free(struct series_buf *sb)
{
    if (!sb)
        return;
    strpool_free(&sb->pool);
    free(sb->ext);
    free(sb->s);
    free(sb->lab);
    free(sb->table);
    free(sb->fam);
    free(sb->famtab);
    free(sb->pend);
    free(sb);
}

void sb_begin_cycle(struct series_buf *sb, int64_t ts_ms)
{
    sb->gen++;
    sb->ts = ts_ms;
    sb->npend = 0;
}

int64_t sb_cycle_ts(const struct series_buf *sb)
{
    return sb->ts;
}

void sb_txn_begin_owner(struct series_buf *sb, const char *owner, uint8_t owner_id)
{
    sb_txn_begin(sb, owner);
    sb->owner_id = owner_id;
}

size_t sb_txn_size(const struct series_buf *sb)
{
    return sb->npend;
}

size_t sb_carry(struct series_buf *sb, uint8_t owner_id)
{
    size_t n = 0;
    for (size_t i = 0; i < sb->n; i++) {
        struct series *x = &sb->s[i];
        if (x->owner == owner_id && x->gen + 1 == sb->gen) {
            x->gen = sb->gen;
            n++;
        }
    }
    return n;
}

void sb_txn_begin(struct series_buf *sb, const char *owner)
{
    sb->owner_id = 0;
    sb->npend = 0;
    sb->owner = owner;
}

void sb_txn_commit(struct series_buf *sb)
{
    for (size_t i = 0; i < sb->npend; i++)
        sb->s[sb->pend[i].series].value = sb->pend[i].value;
    sb->npend = 0;
}

void sb_txn_rollback(struct series_buf *sb)
{
    for (size_t i = sb->npend; i-- > 0;)
        sb->s[sb->pend[i].series].gen = sb->pend[i].prev_gen;
    sb->npend = 0;
}

/* Finds or creates the family for name `d->name`; -1 on OOM. */
static int64_t family_get(struct series_buf *sb, const struct metric_desc *d)
{
    int64_t nid = strpool_intern(&sb->pool, d->name, strlen(d->name));
    if (nid < 0)
        return -1;
    uint32_t h = sb->pool.hashes[nid];
    if (sb->famtcap)
        for (size_t j = h & (sb->famtcap - 1); sb->famtab[j]; j = (j + 1) & (sb->famtcap - 1))
            if (sb->fam[sb->famtab[j] - 1].name_id == (uint32_t)nid)
                return sb->famtab[j] - 1;
    if (sb->nfam >= UINT16_MAX)
        return -1;
    if ((sb->nfam + 1) * 2 > sb->famtcap) {
        size_t nc = sb->famtcap ? sb->famtcap * 2 : 64;
        uint32_t *t = calloc(nc, sizeof *t);
        if (!t)
            return -1;
        for (size_t i = 0; i < sb->nfam; i++) {
            size_t j = sb->pool.hashes[sb->fam[i].name_id] & (nc - 1);
            while (t[j])
                j = (j + 1) & (nc - 1);
            t[j] = (uint32_t)i + 1;
        }
        free(sb->famtab);
        sb->famtab = t;
        sb->famtcap = nc;
    }
    struct family *nf = array_grow(sb->fam, &sb->famcap, sb->nfam, sizeof *nf, 32);
    if (!nf)
        return -1;
    sb->fam = nf;
    int64_t hid = strpool_intern(&sb->pool, d->help ? d->help : "", d->help ? strlen(d->help) : 0);
    int64_t uid = strpool_intern(&sb->pool, d->unit ? d->unit : "", d->unit ? strlen(d->unit) : 0);
    if (hid < 0 || uid < 0)
        return -1;
    struct family *f = &sb->fam[sb->nfam];
    f->name_id = (uint32_t)nid;
    f->d.name = sb->pool.strs[nid];
    f->d.type = d->type;
    f->d.help = sb->pool.strs[hid];
    f->d.unit = sb->pool.strs[uid];
    f->dropped = false;
    if (!str_has_prefix(d->name, "nexus_shipper_") && !str_has_prefix(d->name, "process_")) {
        if (sb->o.drop_re && regexec(sb->o.drop_re, d->name, 0, NULL, 0) == 0)
            f->dropped = true;
        if (sb->o.keep_re && regexec(sb->o.keep_re, d->name, 0, NULL, 0) != 0)
            f->dropped = true;
    }
    size_t j = h & (sb->famtcap - 1);
    while (sb->famtab[j])
        j = (j + 1) & (sb->famtcap - 1);
    sb->famtab[j] = (uint32_t)sb->nfam + 1;
    return (int64_t)sb->nfam++;
}

/* Replaces bytes that are not valid UTF-8 with '?', so a receiver never
 * rejects a whole batch for one bad label value. Returns true if changed. */
static bool utf8_sanitize(char *s)
{
    bool changed = false;
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n;
        if (*p < 0x80)
            n = 1;
        else if ((*p & 0xe0) == 0xc0 && *p >= 0xc2)
            n = 2;
        else if ((*p & 0xf0) == 0xe0)
            n = 3;
        else if ((*p & 0xf8) == 0xf0 && *p <= 0xf4)
            n = 4;
        else
            n = 0;
        for (size_t k = 1; k < n; k++)
            if ((p[k] & 0xc0) != 0x80)
                n = 0;
        /* overlong forms, UTF-16 surrogates and code points past U+10FFFF
         * are invalid too (Go's utf8.ValidString, which receivers use) */
        if ((n == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f))) ||
            (n == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))))
            n = 0;
        if (!n) {
            *p++ = '?';
            changed = true;
        } else {
            p += n;
        }
    }
    return changed;
}

static int describe(const struct series_buf *sb, const char *name, const uint32_t *pairs, size_t n,
                    char *out, size_t outn)
{
    int w = snprintf(out, outn, "%s{", name);
    bool first = true;
    for (size_t i = 0; i < n && w > 0 && (size_t)w < outn; i++) {
        const char *ln = sb->pool.strs[pairs[2 * i]];
        if (strcmp(ln, "__name__") == 0)
            continue;
        w += snprintf(out + w, outn - (size_t)w, "%s%s=\"%s\"", first ? "" : ",", ln,
                      sb->pool.strs[pairs[2 * i + 1]]);
        first = false;
    }
    if (w > 0 && (size_t)w < outn)
        snprintf(out + w, outn - (size_t)w, "}");
    return 0;
}

#define MAX_LABELS 64
/* Memory a new series of np label pairs is expected to need. */
#define SERIES_NEED(np) (sizeof(struct series) * 2 + 4 * (np) * sizeof(uint32_t) + 16)

/* Interns a string of a sample; past the memory cap (`full`) strings are
 * only looked up, so refused series never grow the pool: -2 when absent. */
static int64_t intern_or_find(struct series_buf *sb, bool full, const char *s, size_t len)
{
    int64_t id = strpool_find(&sb->pool, s, len);
    if (id >= 0)
        return id;
    return full ? -2 : strpool_intern(&sb->pool, s, len);
}

/* A string never seen: the series is new, and there is no room for it. */
static int refuse_new_series(struct series_buf *sb, const char *name, const char *const *labels,
                             size_t n_labels, struct err *e)
{
    char desc[512];
    int w = snprintf(desc, sizeof desc, "%s{", name);
    for (size_t i = 0; i < n_labels && w > 0 && (size_t)w < sizeof desc; i++)
        if (labels[2 * i + 1] && *labels[2 * i + 1])
            w += snprintf(desc + w, sizeof desc - (size_t)w, "%s%s=\"%s\"",
                          desc[w - 1] == '{' ? "" : ",", labels[2 * i] ? labels[2 * i] : "",
                          labels[2 * i + 1]);
    if (w > 0 && (size_t)w < sizeof desc)
        snprintf(desc + w, sizeof desc - (size_t)w, "}");
    err_set(e, "series buffer full (%zu bytes): refused %s", sb->o.max_bytes, desc);
    sb->refused++;
    return -1;
}

/* sb_setv's steps report what went wrong with these (besides -1: refused,
 * e->msg set and the counter bumped): */
#define SET_REFUSE_NEW (-2) /* a string never seen, and the buffer is full */
#define SET_OOM        (-3)

/* Interns a label value (invalid UTF-8 replaced, as the receivers would
 * refuse it); -2 when full and unknown, -1 on OOM. */
static int64_t intern_label_value(struct series_buf *sb, bool full, const char *lv)
{
    int64_t b;
    size_t lvl = strlen(lv);
    char tmp[1024];
    if (lvl < sizeof tmp) {
        memcpy(tmp, lv, lvl + 1);
        utf8_sanitize(tmp);
        b = intern_or_find(sb, full, tmp, lvl);
    } else {
        char *big = strdup(lv);
        if (!big)
            return -1;
        utf8_sanitize(big);
        b = intern_or_find(sb, full, big, lvl);
        free(big);
    }
    return b;
}

/* Step 1: the series' own labels as sorted (name id, value id) pairs,
 * __name__ first in the sort. 0, -1 (refused), SET_REFUSE_NEW or SET_OOM. */
static int label_pairs(struct series_buf *sb, int64_t fi, const struct metric_desc *d,
                       const char *name, const char *const *labels, size_t n_labels, bool full,
                       uint32_t *pairs, size_t *npp, struct err *e)
{
    int64_t nid = name == d->name ? (int64_t)sb->fam[fi].name_id
                                  : intern_or_find(sb, full, name, strlen(name));
    int64_t kid = strpool_intern(&sb->pool, "__name__", 8);
    if (nid == -2)
        return SET_REFUSE_NEW;
    if (nid < 0 || kid < 0)
        return SET_OOM;
    pairs[0] = (uint32_t)kid;
    pairs[1] = (uint32_t)nid;
    size_t np = 1;
    for (size_t i = 0; i < n_labels; i++) {
        const char *ln = labels[2 * i], *lv = labels[2 * i + 1];
        if (!lv || !*lv)
            continue; /* empty value = label absent */
        if (!ln || (full && strpool_find(&sb->pool, ln, strlen(ln)) < 0 &&
                    (!label_name_valid(ln) || str_has_prefix(ln, "__")))) {
            err_set(e, "%s: invalid label name \"%s\"", name, ln ? ln : "(null)");
            sb->rejected++;
            return -1;
        }
        int64_t a = intern_or_find(sb, full, ln, strlen(ln));
        if (a == -2)
            return SET_REFUSE_NEW;
        if (a < 0)
            return SET_OOM;
        uint8_t *fl = &sb->pool.flags[a];
        if (!(*fl & 1))
            *fl |= 1 | (label_name_valid(ln) && !str_has_prefix(ln, "__") ? 2 : 0);
        if (!(*fl & 2)) {
            err_set(e, "%s: invalid label name \"%s\"", name, ln ? ln : "(null)");
            sb->rejected++;
            return -1;
        }
        int64_t b = intern_label_value(sb, full, lv);
        if (b == -2)
            return SET_REFUSE_NEW;
        if (b < 0)
            return SET_OOM;
        /* insertion sort by name string */
        size_t j = np;
        while (j > 0 && strcmp(sb->pool.strs[pairs[2 * (j - 1)]], ln) > 0) {
            pairs[2 * j] = pairs[2 * (j - 1)];
            pairs[2 * j + 1] = pairs[2 * (j - 1) + 1];
            j--;
        }
        if (j > 0 && pairs[2 * (j - 1)] == (uint32_t)a) {
            err_set(e, "%s: label \"%s\" given twice", name, ln);
            sb->rejected++;
            return -1;
        }
        pairs[2 * j] = (uint32_t)a;
        pairs[2 * j + 1] = (uint32_t)b;
        np++;
    }
    *npp = np;
    return 0;
}

/* Step 2: merges the external labels into the sorted pairs (a series' own
 * label of the same name wins); returns the new count. */
static size_t merge_ext_labels(const struct series_buf *sb, uint32_t *pairs, size_t np)
{
    for (size_t x = 0; x < sb->n_ext; x++) {
        uint32_t en = sb->ext[2 * x];
        const char *es = sb->pool.strs[en];
        size_t j = np;
        bool present = false;
        for (size_t k = 0; k < np; k++)
            present |= pairs[2 * k] == en;
        if (present)
            continue;
        while (j > 0 && strcmp(sb->pool.strs[pairs[2 * (j - 1)]], es) > 0) {
            pairs[2 * j] = pairs[2 * (j - 1)];
            pairs[2 * j + 1] = pairs[2 * (j - 1) + 1];
            j--;
        }
        pairs[2 * j] = en;
        pairs[2 * j + 1] = sb->ext[2 * x + 1];
        np++;
    }
    return np;
}

/* Step 3: the index of the series with exactly these pairs, or -1. */
static int64_t series_find(const struct series_buf *sb, uint32_t h, const uint32_t *pairs,
                           size_t np)
{
    if (sb->tcap)
        for (size_t j = h & (sb->tcap - 1); sb->table[j]; j = (j + 1) & (sb->tcap - 1)) {
            struct series *s = &sb->s[sb->table[j] - 1];
            if (s->hash == h && s->nlab == np &&
                memcmp(&sb->lab[s->lab], pairs, np * 2 * sizeof *pairs) == 0)
                return sb->table[j] - 1;
        }
    return -1;
}

/* Makes room for one more series of np pairs (hash table, series array,
 * label array). 0, or -1 on OOM (nothing lost). */
static int series_reserve(struct series_buf *sb, size_t np)
{
    if ((sb->n + 1) * 2 > sb->tcap) {
        size_t nc = sb->tcap ? sb->tcap * 2 : 1024;
        uint32_t *t = calloc(nc, sizeof *t);
        if (!t)
            return -1;
        for (size_t i = 0; i < sb->n; i++) {
            size_t j = sb->s[i].hash & (nc - 1);
            while (t[j])
                j = (j + 1) & (nc - 1);
            t[j] = (uint32_t)i + 1;
        }
        free(sb->table);
        sb->table = t;
        sb->tcap = nc;
    }
    if (sb->n == sb->cap) {
        size_t nc = sb->cap ? sb->cap + sb->cap / 2 : 256;
        struct series *ns = realloc(sb->s, nc * sizeof *ns);
        if (!ns)
            return -1;
        sb->s = ns;
        sb->cap = nc;
    }
    if (sb->nlab + np * 2 > sb->labcap) {
        size_t nc = sb->labcap ? sb->labcap + sb->labcap / 2 : 2048;
        while (nc < sb->nlab + np * 2)
            nc *= 2;
        uint32_t *nl = realloc(sb->lab, nc * sizeof *nl);
        if (!nl)
            return -1;
        sb->lab = nl;
        sb->labcap = nc;
    }
    return 0;
}

/* Step 4: adds a new series (checking the memory cap against what it
 * would need). Its index, -1 (refused: buffer full) or SET_OOM. */
static int64_t series_add(struct series_buf *sb, int64_t fi, uint32_t h, const char *name,
                          const uint32_t *pairs, size_t np, struct err *e)
{
    if (sb->o.max_bytes && sb_bytes(sb) + SERIES_NEED(np) > sb->o.max_bytes) {
        char desc[512];
        describe(sb, name, pairs, np, desc, sizeof desc);
        err_set(e, "series buffer full (%zu bytes): refused %s", sb->o.max_bytes, desc);
        sb->refused++;
        return -1;
    }
    if (sb->n >= UINT32_MAX - 1 || sb->nlab + np * 2 > UINT32_MAX || series_reserve(sb, np) < 0)
        return SET_OOM;
    struct series *s = &sb->s[sb->n];
    s->lab = (uint32_t)sb->nlab;
    s->nlab = (uint8_t)np;
    s->family = (uint16_t)fi;
    s->hash = h;
    s->gen = 0;
    s->value = 0;
    memcpy(&sb->lab[sb->nlab], pairs, np * 2 * sizeof *pairs);
    sb->nlab += np * 2;
    size_t j = h & (sb->tcap - 1);
    while (sb->table[j])
        j = (j + 1) & (sb->tcap - 1);
    sb->table[j] = (uint32_t)sb->n + 1;
    return (int64_t)sb->n++;
}

/* Step 5: records the value as pending in the open transaction (a second
 * value for the series in one cycle is refused). 0, -1 or SET_OOM. */
static int series_store(struct series_buf *sb, int64_t idx, const char *name, const uint32_t *pairs,
                        size_t np, double v, struct err *e)
{
    struct series *s = &sb->s[idx];
    if (s->gen == sb->gen) {
        char desc[512];
        describe(sb, name, pairs, np, desc, sizeof desc);
        err_set(e, "duplicate series %s in one cycle%s%s", desc, sb->owner ? " from " : "",
                sb->owner ? sb->owner : "");
        sb->rejected++;
        return -1;
    }
    struct pending *np2 = array_grow(sb->pend, &sb->pendcap, sb->npend, sizeof *np2, 256);
    if (!np2)
        return SET_OOM;
    sb->pend = np2;
    sb->pend[sb->npend++] = (struct pending){(uint32_t)idx, s->gen, v};
    s->gen = sb->gen;
    s->owner = sb->owner_id;
    return 0;
}

int sb_setv(struct series_buf *sb, const struct metric_desc *d, const char *suffix, double v,
            const char *const *labels, size_t n_labels, struct err *e)
{
    char fullname[256];
    const char *name = d->name;
    if (suffix && *suffix) {
        if ((size_t)snprintf(fullname, sizeof fullname, "%s%s", d->name, suffix) >= sizeof fullname)
            goto bad_name;
        name = fullname;
    }
    if (!metric_name_valid(name))
        goto bad_name;
    int64_t fi = family_get(sb, d);
    if (fi < 0)
        goto oom;
    if (sb->fam[fi].dropped)
        return 0;
    if (suffix && *suffix && sb->fam[fi].d.type != MT_HISTOGRAM) {
        /* one family, one type: a gauge "x" and a histogram "x" (a forwarded
         * page may declare both) cannot share the name; the first one wins */
        err_set(e, "%s: %s is not a histogram family", name, d->name);
        sb->rejected++;
        return -1;
    }
    if (n_labels + sb->n_ext + 1 > MAX_LABELS) {
        err_set(e, "%s: too many labels", name);
        sb->rejected++;
        return -1;
    }
    uint32_t pairs[2 * MAX_LABELS];
    size_t np = 0;
    bool full =
        sb->o.max_bytes && sb_bytes(sb) + SERIES_NEED(n_labels + sb->n_ext + 1) > sb->o.max_bytes;
    int rc = label_pairs(sb, fi, d, name, labels, n_labels, full, pairs, &np, e);
    if (rc == SET_REFUSE_NEW)
        return refuse_new_series(sb, name, labels, n_labels, e);
    if (rc == SET_OOM)
        goto oom;
    if (rc < 0)
        return -1;
    np = merge_ext_labels(sb, pairs, np);
    uint32_t h = strpool_hash(pairs, np * 2 * sizeof *pairs);
    int64_t idx = series_find(sb, h, pairs, np);
    if (idx < 0)
        idx = series_add(sb, fi, h, name, pairs, np, e);
    if (idx >= 0)
        rc = series_store(sb, idx, name, pairs, np, v, e);
    else
        rc = (int)idx;
    if (rc == SET_OOM)
        goto oom;
    return rc < 0 ? -1 : 0;
bad_name:
    err_set(e, "invalid metric name \"%s%s\"", d->name, suffix ? suffix : "");
    sb->rejected++;
    return -1;
oom:
    err_set(e, "out of memory adding %s", name);
    return -1;
}

int sb_vset(struct series_buf *sb, const struct metric_desc *d, double v, va_list ap,
            size_t max_pairs, struct err *e)
{
    const char *labels[2 * 32];
    size_t n = 0;
    if (max_pairs > 32)
        max_pairs = 32;
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *val = va_arg(ap, const char *);
        if (n >= max_pairs) {
            err_set(e, "%s: too many labels", d->name);
            sb->rejected++;
            return -1;
        }
        labels[2 * n] = k;
        labels[2 * n + 1] = val;
        n++;
    }
    return sb_setv(sb, d, NULL, v, labels, n, e);
}

int sb_set(struct series_buf *sb, const struct metric_desc *d, double v, ...)
{
    struct err e;
    va_list ap;
    va_start(ap, v);
    int rc = sb_vset(sb, d, v, ap, 32, &e);
    va_end(ap);
    return rc;
}

void histogram_observe(struct histogram *h, double v)
{
    size_t i = 0;
    while (i < h->n && v > h->bounds[i])
        i++;
    if (i < NS_ARRAY_LEN(h->counts))
        h->counts[i]++;
    h->sum += v;
    h->count++;
}

int sb_histogram(struct series_buf *sb, const struct metric_desc *d, const struct histogram *h,
                 const char *const *labels, size_t n_labels, struct err *e)
{
    const char *l[2 * (MAX_LABELS / 2)];
    if (n_labels + 1 > MAX_LABELS / 2) {
        err_set(e, "%s: too many labels", d->name);
        return -1;
    }
    memcpy(l, labels, n_labels * 2 * sizeof *l);
    uint64_t cum = 0;
    char le[64];
    l[2 * n_labels] = "le";
    l[2 * n_labels + 1] = le;
    for (size_t i = 0; i <= h->n && i < NS_ARRAY_LEN(h->counts); i++) {
        cum += h->counts[i];
        if (i < h->n)
            format_double(h->bounds[i], le, sizeof le);
        else
            snprintf(le, sizeof le, "+Inf");
        if (sb_setv(sb, d, "_bucket", (double)cum, l, n_labels + 1, e) < 0)
            return -1;
    }
    if (sb_setv(sb, d, "_sum", h->sum, labels, n_labels, e) < 0 ||
        sb_setv(sb, d, "_count", (double)h->count, labels, n_labels, e) < 0)
        return -1;
    return 0;
}

void sb_stats(const struct series_buf *sb, struct sb_stats *st)
{
    st->series = sb->n;
    st->live = 0;
    for (size_t i = 0; i < sb->n; i++)
        if (sb->s[i].gen + 1 >= sb->gen)
            st->live++;
    st->bytes = sb_bytes(sb);
    st->refused = sb->refused;
    st->rejected = sb->rejected;
}

int sb_compact(struct series_buf *sb)
{
    size_t live = 0;
    for (size_t i = 0; i < sb->n; i++)
        if (sb->s[i].gen + 1 >= sb->gen)
            live++;
    if (sb->n - live < 1024 || sb->n - live < live)
        return 0; /* not worth it */
    const char *ext[2 * MAX_LABELS];
    for (size_t i = 0; i < sb->n_ext && i < MAX_LABELS; i++) {
        ext[2 * i] = sb->pool.strs[sb->ext[2 * i]];
        ext[2 * i + 1] = sb->pool.strs[sb->ext[2 * i + 1]];
    }
    struct sb_opts o = sb->o;
    o.ext_labels = ext;
    o.n_ext = sb->n_ext;
    o.max_bytes = 0;
    struct series_buf *nb = sb_new(&o);
    if (!nb)
        return -1;
    nb->gen = sb->gen;
    nb->snap_gen = sb->snap_gen;
    nb->ts = sb->ts;
    nb->refused = sb->refused;
    nb->rejected = sb->rejected;
    for (size_t i = 0; i < sb->n; i++) {
        const struct series *s = &sb->s[i];
        if (s->gen + 1 < sb->gen)
            continue;
        const char *l[2 * MAX_LABELS];
        const char *nm = "";
        size_t nl = 0;
        for (size_t k = 0; k < s->nlab; k++) {
            const char *ln = sb->pool.strs[sb->lab[s->lab + 2 * k]];
            const char *lv = sb->pool.strs[sb->lab[s->lab + 2 * k + 1]];
            if (strcmp(ln, "__name__") == 0) {
                nm = lv;
                continue;
            }
            l[2 * nl] = ln;
            l[2 * nl + 1] = lv;
            nl++;
        }
        const struct metric_desc *d = &sb->fam[s->family].d;
        const char *suffix = nm + strlen(d->name);
        struct err e;
        uint32_t g = nb->gen;
        nb->gen = s->gen; /* re-create with the same generation and owner */
        nb->owner_id = s->owner;
        nb->npend = 0;
        int rc = sb_setv(nb, d, *suffix ? suffix : NULL, s->value, l, nl, &e);
        nb->gen = g;
        if (rc < 0) {
            sb_free(nb);
            return -1;
        }
        nb->s[nb->n - 1].value = s->value;
    }
    nb->npend = 0;
    nb->o.max_bytes = sb->o.max_bytes;
    nb->layout = sb->layout + 1;
    struct series_buf tmp = *sb;
    *sb = *nb;
    *nb = tmp;
    sb_free(nb);
    return 1;
}
