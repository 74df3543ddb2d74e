/* relabel: per-target filtering of the samples one remote_write target
 * gets, the common uses of Prometheus's write_relabel_configs.
 *
 * A relabel holds, each optional:
 *   keep_metrics  POSIX ERE on the family name (unanchored, like the
 *   drop_metrics  [shipper] keys; a histogram's _bucket/_sum/_count go with
 *                 their family); the self-metrics (nexus_shipper_*, and
 *                 process_* where they exist) are never dropped by these
 *                 two, as with the [shipper] keys
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
 * logs them).
 *
 * drop_labels keeps state: the relabeled series live in a series buffer
 * inside the relabel, from one call to the next, so that a relabeled
 * series gets its own staleness marker when no input series maps to it
 * any more (the input's markers are not used: a marker of one input
 * series would mark a still live merged series stale), and so that their
 * indices stay valid for the encoder's per-series cache. Hence: call
 * relabel_apply() once per cycle with the whole cycle's samples, from
 * one thread per relabel (the sender's collecting thread). A call with
 * another input buffer than the previous call (another producer) makes no
 * staleness markers.
 *
 * Ownership: relabel_new() copies what it needs; the input buffer is
 * only read. */
#ifndef NS_RELABEL_H
#define NS_RELABEL_H

#include <stdbool.h>
#include <stddef.h>

#include "selector.h"
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

/* ---- applying ----------------------------------------------------------- */
struct relabel_out {
    const struct series_buf *sb; /* the buffer out->v refers to: the input, or own */
    const struct sb_sample *v;   /* the samples to send: `in` itself when nothing applies */
    size_t n;
    struct sb_sample *owned;     /* what v points to when it is not `in` */
    size_t filtered;             /* samples left out by keep/drop rules */
    size_t collisions;           /* samples left out because drop_labels made them duplicates */
    char collision_example[256]; /* one of them, for the log ("" when none) */
};

/* Filters in[0..n) of `sb` into out (r may be NULL: everything, no
 * copy). out->sb stays valid until the next call or relabel_free(). 0, or
 * -1 with e->msg (out of memory; out is then empty). Free out with relabel_out_free() either way.
 */
int relabel_apply(struct relabel *r, const struct series_buf *sb, const struct sb_sample *in,
                  size_t n, struct relabel_out *out, struct err *e);
void relabel_out_free(struct relabel_out *out);

#endif
