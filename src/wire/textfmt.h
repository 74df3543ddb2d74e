/* textfmt: Prometheus text exposition format 0.0.4.
 *
 * textfmt_write() renders sorted samples (sb_snapshot(..., sorted=true))
 * with one `# HELP` / `# TYPE` block per family, label values escaped
 * (\\, \", \n) and HELP text escaped (\\, \n; trailing carriage returns
 * left out: no escape exists for them, and CRLF readers would drop them).
 * Staleness markers are skipped. No timestamps (Pushgateway rejects them). */
#ifndef NS_TEXTFMT_H
#define NS_TEXTFMT_H

#include "series.h"
#include "util.h"

int textfmt_write(const struct series_buf *sb, const struct sb_sample *s, size_t n,
                  struct buf *out);
/* Appends `v` escaped as a label value (without quotes). */
int textfmt_escape_label(const char *v, struct buf *out);
/* Formats a sample value the way Prometheus prints it (NaN, +Inf, -Inf, -0),
 * shortest text that reads back to the same double. */
void textfmt_value(double v, char *out, size_t n);
const char *metric_type_name(enum metric_type t);

#endif
