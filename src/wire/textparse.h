/* textparse: a streaming parser for the Prometheus text exposition
 * format 0.0.4, for inputs that read other programs' /metrics (e.g. the
 * nexus_metrics collector forwarding /service/metrics/prometheus).
 *
 * Contract
 *  - Input is fed in chunks of any size (tp_feed), ended by tp_finish; a
 *    last line without '\n' is accepted. "\r\n" line ends are accepted.
 *  - `# HELP name text`: text escapes \\ and \n. `# TYPE name T` with T one
 *    of counter, gauge, histogram, summary, untyped. Other `#` lines and
 *    blank lines are ignored.
 *  - Sample: `name{l="v",...} value [timestamp]`. Names match
 *    [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*;
 *    label values escape \\ \" \n (any other escape is an error); a
 *    trailing comma and blanks around tokens inside the braces are
 *    allowed; `{}` is no labels. Values: decimal floats with exponents,
 *    NaN, +Inf, -Inf, Inf (case-insensitive); hex and "infinity" are
 *    refused. Timestamp: an integer (ms since the epoch), optional.
 *  - Families: HELP/TYPE describe the family named in them; the metadata
 *    kept is the one of the latest HELP/TYPE name (the format puts a
 *    family's samples together after its metadata). A sample belongs to
 *    that family when its name is the family name, or for a histogram
 *    name_bucket/_sum/_count, for a summary name_sum/_count, for a counter
 *    name_total; otherwise it is its own untyped family without help,
 *    and becomes the current family.
 *    A second TYPE for the current family is an error; a TYPE after the
 *    family's samples started is an error.
 *  - Errors: tp_feed/tp_finish return -1 with e->msg "line N: what is
 *    wrong", and the parser stays failed (later calls return -1). A
 *    callback returning -1 stops parsing; its e->msg is left as it set it.
 *  - Limits (hostile input): a line longer than max_line, more than
 *    max_labels labels in a sample, more than max_samples samples are
 *    errors. Memory is O(max_line + max_labels), whatever the input size.
 *  - Ownership: every pointer in a struct tp_sample is valid only during
 *    the callback. */
#ifndef NS_TEXTPARSE_H
#define NS_TEXTPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "series.h"
#include "util.h"

enum tp_type { TP_UNTYPED = 0, TP_COUNTER, TP_GAUGE, TP_HISTOGRAM, TP_SUMMARY };

struct tp_sample {
    const char *name;          /* full sample name, e.g. "x_bucket" */
    const char *family;        /* its family, e.g. "x" (== name when not a suffix) */
    const char *suffix;        /* name minus family: "", "_bucket", "_sum", "_count", "_total" */
    enum tp_type type;         /* the family's type */
    const char *help;          /* the family's help, unescaped; "" when none */
    const char *const *labels; /* name,value pairs, unescaped, in input order */
    size_t n_labels;
    double value;
    bool has_ts;
    int64_t ts_ms;
    size_t line; /* 1-based */
};

struct tp_limits {
    size_t max_line;    /* bytes without the '\n'; 0 = 64 KiB */
    size_t max_labels;  /* per sample; 0 = 64 */
    size_t max_samples; /* per input; 0 = 1,000,000 */
};

/* Return 0 to go on, -1 (with e->msg set) to stop. */
typedef int (*tp_sample_fn)(void *ud, const struct tp_sample *s, struct err *e);

struct textparse;

/* lim may be NULL (defaults). NULL when out of memory. */
struct textparse *tp_new(const struct tp_limits *lim, tp_sample_fn fn, void *ud);
void tp_free(struct textparse *p);
int tp_feed(struct textparse *p, const char *data, size_t len, struct err *e);
int tp_finish(struct textparse *p, struct err *e);
/* Samples delivered so far. */
size_t tp_samples(const struct textparse *p);

/* Parses a whole input in one call. */
int tp_parse(const char *data, size_t len, const struct tp_limits *lim, tp_sample_fn fn, void *ud,
             struct err *e);

const char *tp_type_name(enum tp_type t);
/* The series buffer's type for a parsed family: counter, gauge and
 * histogram map to theirs, untyped and summary to MT_UNKNOWN. */
enum metric_type tp_metric_type(enum tp_type t);

#endif
