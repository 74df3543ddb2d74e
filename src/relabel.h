/* relabel: per-target filtering of the samples one remote_write target
 * gets, the common uses of Prometheus's write_relabel_configs.
 *
 * A relabel holds, each optional:
 *   keep_metrics  POSIX ERE on the family name (unanchored, like the
 *   drop_metrics  [shipper] keys; a histogram's _bucket/_sum/_count go with
 *                 their family); nexus_shipper_* self-metrics are never
 *                 dropped by these two, as with the [shipper] keys
 *   keep_series   PromQL selectors: `{name="v", name!="v", name=~"re",
 *   drop_series   name!~"re"}` (matchers ANDed; several selectors ORed;
 *                 `metric{...}` or a bare metric name adds
 *                 __name__="metric"); regexes are POSIX ERE anchored at
 *                 both ends as in PromQL; an absent label has the value ""
 *   drop_labels   label names removed from every series
 * Applied in that order; the selectors see the original labels, before
 * drop_labels.
 *
 * Collisions: when drop_labels makes two series of one batch identical,
 * they are not merged: the first one (in the order given) is kept, the
 * others are dropped and counted in relabel_out.collisions (the caller
 * logs them). Staleness markers of series whose relabeled form is still
 * live are dropped silently (they would mark a live series stale).
 *
 * Ownership: relabel_new() copies what it needs; relabel_apply() is
 * read-only on the relabel and the input buffer and may be called from
 * any thread that owns the input buffer. */
#ifndef NS_RELABEL_H
#define NS_RELABEL_H

#include <stdbool.h>
#include <stddef.h>

#include "series.h"
#include "util.h"

struct relabel_spec {
    const char *keep_metrics; /* "" or NULL = not set */
    const char *drop_metrics;
    const char *keep_series;
    const char *drop_series;
    const char *const *drop_labels;
    size_t n_drop_labels;
};

struct relabel;

/* NULL with e->msg naming the key ("drop_series: ...") on a bad value or
 * out of memory. A spec with nothing set gives a relabel that keeps
 * everything (relabel_active() false). */
struct relabel *relabel_new(const struct relabel_spec *s, struct err *e);
void relabel_free(struct relabel *r);
bool relabel_active(const struct relabel *r);

/* ---- selectors, also for validating a configuration value ------------ */
struct relabel_selectors;
/* Parses one or more selectors. -1 with e->msg saying what and at which
 * character (1-based) on error. */
int relabel_selectors_parse(const char *text, struct relabel_selectors **out, struct err *e);
void relabel_selectors_free(struct relabel_selectors *s);
/* `labels`: name,value pairs (n pairs), __name__ included. */
bool relabel_selectors_match(const struct relabel_selectors *s, const char *const *labels,
                             size_t n);

/* ---- applying ----------------------------------------------------------- */
struct relabel_out {
    const struct series_buf *sb; /* the buffer out->v refers to: the input, or own */
    struct sb_sample *v;         /* malloc'd */
    size_t n;
    size_t filtered;   /* samples left out by keep/drop rules */
    size_t collisions; /* samples left out because drop_labels made them duplicates */
    char collision_example[256]; /* one of them, for the log ("" when none) */
    struct series_buf *own;      /* labels dropped: the relabeled series (freed with out) */
};

/* Filters in[0..n) of `sb` into out. 0, or -1 with e->msg (out of
 * memory; out is then empty). Free out with relabel_out_free() either way. */
int relabel_apply(const struct relabel *r, const struct series_buf *sb, const struct sb_sample *in,
                  size_t n, struct relabel_out *out, struct err *e);
void relabel_out_free(struct relabel_out *out);

#endif
