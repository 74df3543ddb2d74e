/* sample_gen.h: fuzzer-built samples in a series buffer, shared by the
 * round-trip targets fuzz_textfmt.c and fuzz_rwencode.c (included by one
 * target each; not a library).
 *
 * The input is read as a little program:
 *   byte     flags (SG_F_*)
 *   byte     number of families (1..4), then per family:
 *            name (string), type (byte % 5: untyped, counter, gauge,
 *            histogram, info), help (string), unit (string)
 *   then, while input lasts, one sample:
 *            byte  family index; for a histogram the high bits pick a
 *                  suffix ("", _bucket, _sum, _count)
 *            byte  value kind: NaN, +Inf, -Inf, -0, the staleness marker,
 *                  a small integer, or 8 raw bytes of a double
 *            byte  number of labels (0..7), then name, value strings each
 *   string = one length byte, then that many bytes (cut at a NUL: C strings).
 * Everything the series buffer refuses (bad names, duplicates) is simply
 * not there; the targets compare what the buffer holds. */
#ifndef SAMPLE_GEN_H
#define SAMPLE_GEN_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "series.h"

#define SG_F_EXT_LABEL 0x01u /* an external label site="..." on every series */
#define SG_F_SORTED    0x02u /* rwencode: sorted snapshot (the text writer always sorts) */
#define SG_F_CYCLE2    0x04u /* rwencode: a second cycle (staleness markers, cached sizes) */

#define SG_MAX_FAM 4
#define SG_STR     256

struct sg_reader {
    const uint8_t *p, *end;
};

static unsigned sg_byte(struct sg_reader *r)
{
    return r->p < r->end ? *r->p++ : 0;
}

static void sg_string(struct sg_reader *r, char *out)
{
    size_t n = sg_byte(r);
    if (n > (size_t)(r->end - r->p))
        n = (size_t)(r->end - r->p);
    memcpy(out, r->p, n);
    out[n] = '\0';
    r->p += n;
}

struct sg_family {
    char name[SG_STR], help[SG_STR], unit[SG_STR];
    struct metric_desc d;
};

struct sg {
    struct sg_family fam[SG_MAX_FAM];
    size_t nfam;
    unsigned flags;
    char ext_value[SG_STR];
    const char *ext[2];
};

static const enum metric_type sg_types[] = {MT_UNKNOWN, MT_COUNTER, MT_GAUGE, MT_HISTOGRAM,
                                            MT_INFO};

/* Reads the header (flags, families); fills g. */
static void sg_header(struct sg_reader *r, struct sg *g)
{
    memset(g, 0, sizeof *g);
    g->flags = sg_byte(r);
    if (g->flags & SG_F_EXT_LABEL)
        sg_string(r, g->ext_value);
    if (!g->ext_value[0]) /* external labels have values (the config checks) */
        strcpy(g->ext_value, "x");
    g->ext[0] = "site";
    g->ext[1] = g->ext_value;
    g->nfam = sg_byte(r) % SG_MAX_FAM + 1;
    for (size_t i = 0; i < g->nfam; i++) {
        struct sg_family *f = &g->fam[i];
        sg_string(r, f->name);
        unsigned t = sg_byte(r) % 5;
        sg_string(r, f->help);
        sg_string(r, f->unit);
        f->d = (struct metric_desc){f->name, sg_types[t], f->help, f->unit};
    }
}

/* Stores samples until the input ends (or `max` samples were tried). */
static void sg_samples(struct sg_reader *r, struct sg *g, struct series_buf *sb, size_t max)
{
    static const char *const suffixes[] = {"", "_bucket", "_sum", "_count"};
    for (size_t s = 0; s < max && r->p < r->end; s++) {
        unsigned fb = sg_byte(r);
        struct sg_family *f = &g->fam[fb % g->nfam];
        const char *suffix = NULL;
        /* suffixes are for histograms (sb_histogram, forwarded histograms),
         * whose family names are valid metric names */
        if (f->d.type == MT_HISTOGRAM && metric_name_valid(f->name))
            suffix = suffixes[(fb >> 4) % 4];
        double v;
        unsigned kind = sg_byte(r) % 8;
        uint64_t bits = 0;
        switch (kind) {
        case 0:
            v = NAN;
            break;
        case 1:
            v = INFINITY;
            break;
        case 2:
            v = -INFINITY;
            break;
        case 3:
            v = -0.0;
            break;
        case 4:
            v = stale_nan();
            break;
        case 5:
            v = (double)(int8_t)sg_byte(r);
            break;
        default:
            for (int b = 0; b < 8; b++)
                bits |= (uint64_t)sg_byte(r) << (8 * b);
            memcpy(&v, &bits, sizeof v);
            break;
        }
        char names[7][SG_STR], values[7][SG_STR];
        const char *labels[14];
        size_t nl = sg_byte(r) % 8;
        for (size_t i = 0; i < nl; i++) {
            sg_string(r, names[i]);
            sg_string(r, values[i]);
            labels[2 * i] = names[i];
            labels[2 * i + 1] = values[i];
        }
        struct err e;
        sb_setv(sb, &f->d, suffix, v, labels, nl, &e);
    }
}

/* A series buffer with g's options; NULL when out of memory. */
static struct series_buf *sg_buffer(const struct sg *g)
{
    struct sb_opts o = {.max_bytes = 1u << 20};
    if (g->flags & SG_F_EXT_LABEL) {
        o.ext_labels = g->ext;
        o.n_ext = 1;
    }
    return sb_new(&o);
}

#endif
