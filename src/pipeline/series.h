/* series: the in-memory time-series buffer.
 *
 * Collectors add samples for the current cycle inside a transaction
 * (sb_txn_begin .. sb_txn_commit / sb_txn_rollback), so a collector that
 * fails half-way ships nothing half-filled. Label sets are interned
 * (strings stored once, series deduplicated by hash), sorted by name,
 * validated against the remote-write rules, and extended with the
 * external labels. A series that was produced last cycle and not this
 * one yields one staleness marker in the next snapshot.
 *
 * Memory is bounded by `max_bytes`: past it, new series are refused and
 * counted (series_refused), existing ones still update.
 *
 * Ownership: the buffer owns every string; pointers returned by
 * sb_series_label() stay valid until sb_free() or sb_compact(). */
#ifndef NS_SERIES_H
#define NS_SERIES_H

#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names.h"
#include "util.h"

/* Remote-write MetricMetadata.MetricType values. */
enum metric_type {
    MT_UNKNOWN = 0,
    MT_COUNTER = 1,
    MT_GAUGE = 2,
    MT_HISTOGRAM = 3,
    MT_INFO = 6,
};

/* A metric family, declared once (static const) by whoever produces it. */
struct metric_desc {
    const char *name;
    enum metric_type type;
    const char *help;
    const char *unit; /* "" or e.g. "bytes", "seconds" */
};

/* The staleness marker: a NaN with this exact bit pattern. */
#define STALE_NAN_BITS 0x7ff0000000000002ULL
double stale_nan(void);
bool is_stale_nan(double v);

/* metric_name_valid, label_name_valid: names.h */

struct sb_opts {
    size_t max_bytes;              /* 0 = unlimited */
    const char *const *ext_labels; /* name,value pairs */
    size_t n_ext;
    const regex_t *drop_re; /* optional: metric names not stored */
    const regex_t *keep_re; /* optional: only these stored (nexus_shipper_*, process_* always) */
};

struct series_buf;

struct series_buf *sb_new(const struct sb_opts *o);
void sb_free(struct series_buf *sb);

/* Starts a new cycle whose samples carry timestamp ts_ms. */
void sb_begin_cycle(struct series_buf *sb, int64_t ts_ms);
int64_t sb_cycle_ts(const struct series_buf *sb);

void sb_txn_begin(struct series_buf *sb, const char *owner);
/* The same, recording `owner_id` (1..255) on every series set in the
 * transaction, for sb_carry(). */
void sb_txn_begin_owner(struct series_buf *sb, const char *owner, uint8_t owner_id);
/* Samples set so far in the open transaction. */
size_t sb_txn_size(const struct series_buf *sb);
/* Ships the last values of `owner_id`'s series again this cycle (a
 * collector that runs less often than the cycle): every series it set in
 * the previous cycle counts as set in this one. Returns how many. */
size_t sb_carry(struct series_buf *sb, uint8_t owner_id);
void sb_txn_commit(struct series_buf *sb);
void sb_txn_rollback(struct series_buf *sb);

/* Sets one sample. `labels` are name,value pairs (n_labels pairs); an
 * empty value means "label absent". `suffix` (may be NULL) is appended to
 * the family name (histogram _bucket/_sum/_count). Returns 0, or -1 with
 * e->msg naming the series: invalid name, duplicate label, duplicate
 * series in this cycle, a suffix on a family that is not a histogram (the
 * family's type is the one it was first set with), refused by the memory
 * cap, out of memory.
 * A series dropped by drop_metrics/keep_metrics returns 0. */
int sb_setv(struct series_buf *sb, const struct metric_desc *d, const char *suffix, double v,
            const char *const *labels, size_t n_labels, struct err *e);
/* va_list form: name/value pairs up to a NULL, at most max_pairs (<= 32)
 * of them; more is an error ("too many labels", counted as rejected). */
int sb_vset(struct series_buf *sb, const struct metric_desc *d, double v, va_list ap,
            size_t max_pairs, struct err *e);
/* Variadic form: label name/value pairs terminated by NULL. */
int sb_set(struct series_buf *sb, const struct metric_desc *d, double v, ...)
    __attribute__((sentinel));

/* Fixed-bucket histogram kept by its producer and published with sb_histogram. */
struct histogram {
    const double *bounds; /* ascending upper bounds, +Inf implied */
    size_t n;
    uint64_t counts[16]; /* per bucket, non-cumulative; counts[n] = +Inf */
    double sum;
    uint64_t count;
};
void histogram_observe(struct histogram *h, double v);
int sb_histogram(struct series_buf *sb, const struct metric_desc *d, const struct histogram *h,
                 const char *const *labels, size_t n_labels, struct err *e);

/* ---- reading, for encoders ---- */

struct sb_sample {
    uint32_t series;
    double value; /* stale_nan() for staleness markers */
};

/* Fills `out` (malloc'd, caller frees) with this cycle's samples plus one
 * staleness marker per series gone since the last cycle; marks the cycle
 * as snapshotted. `sorted` orders them by family then labels (text
 * format): by family, then label set (values of "quantile" and "le_days"
 * compared as numbers, the rest as bytes), then a histogram's _bucket
 * series by le as a number (ascending, +Inf last, whatever the strings
 * sort as), _sum, _count; otherwise in creation order. */
int sb_snapshot(struct series_buf *sb, bool sorted, struct sb_sample **out, size_t *n);

size_t sb_series_nlabels(const struct series_buf *sb, uint32_t series);
void sb_series_label(const struct series_buf *sb, uint32_t series, size_t i, const char **name,
                     const char **value);
/* Series indices stay valid until sb_layout() changes (sb_compact);
 * consumers caching per-series data key it on this. */
uint32_t sb_layout(const struct series_buf *sb);
size_t sb_series_count(const struct series_buf *sb);
/* The same with the strings' lengths (kept by the buffer: no strlen). */
void sb_series_label_len(const struct series_buf *sb, uint32_t series, size_t i, const char **name,
                         size_t *name_len, const char **value, size_t *value_len);
/* The family of a series: its name (without suffix), type, help, unit. */
const struct metric_desc *sb_series_family(const struct series_buf *sb, uint32_t series);
size_t sb_family_count(const struct series_buf *sb);
const struct metric_desc *sb_family(const struct series_buf *sb, size_t i);
uint32_t sb_series_family_index(const struct series_buf *sb, uint32_t series);

struct sb_stats {
    size_t series;     /* stored (live and dead) */
    size_t live;       /* set in this or the previous cycle */
    size_t bytes;      /* memory held */
    uint64_t refused;  /* new series refused by the memory cap, since start */
    uint64_t rejected; /* invalid or duplicate samples, since start */
};
void sb_stats(const struct series_buf *sb, struct sb_stats *st);

/* Drops series not seen for two cycles and their strings, when worthwhile.
 * Invalidates label pointers obtained earlier. */
int sb_compact(struct series_buf *sb);

#endif
