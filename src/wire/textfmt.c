#include "textfmt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *metric_type_name(enum metric_type t)
{
    switch (t) {
    case MT_COUNTER:
        return "counter";
    case MT_GAUGE:
        return "gauge";
    case MT_HISTOGRAM:
        return "histogram";
    case MT_INFO: /* 0.0.4 has no info type: an info metric is a gauge of 1 */
        return "gauge";
    default:
        return "untyped";
    }
}

/* Appends [v, end) with \\ and newline escaped, and " too when quote. */
static int escape_text(const char *v, const char *end, bool quote, struct buf *out)
{
    for (const char *p = v; p < end; p++) {
        int rc;
        if (*p == '\\')
            rc = buf_append(out, "\\\\", 2);
        else if (quote && *p == '"')
            rc = buf_append(out, "\\\"", 2);
        else if (*p == '\n')
            rc = buf_append(out, "\\n", 2);
        else
            rc = buf_append(out, p, 1);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int textfmt_escape_label(const char *v, struct buf *out)
{
    return escape_text(v, v + strlen(v), true, out);
}

/* HELP text: \\ and \n escaped. The format has no escape for a carriage
 * return, and a reader that accepts CRLF line ends (textparse does) would
 * take one that ends the text for part of the line end: trailing CRs are
 * left out. */
static int escape_help(const char *v, struct buf *out)
{
    const char *end = v + strlen(v);
    while (end > v && end[-1] == '\r')
        end--;
    return escape_text(v, end, false, out);
}

void textfmt_value(double v, char *out, size_t n)
{
    if (isnan(v))
        snprintf(out, n, "NaN");
    else if (isinf(v))
        snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
    else if (v == 0)
        snprintf(out, n, signbit(v) ? "-0" : "0");      /* as Go's FormatFloat: -0 stays -0 */
    else if (fabs(v) < 1e15 && v == (double)(int64_t)v) /* range first: casting a huge v is UB */
        snprintf(out, n, "%lld", (long long)v);
    else
        format_double(v, out, n);
}

int textfmt_write(const struct series_buf *sb, const struct sb_sample *s, size_t n, struct buf *out)
{
    const struct metric_desc *cur = NULL;
    for (size_t i = 0; i < n; i++) {
        if (is_stale_nan(s[i].value))
            continue;
        const struct metric_desc *d = sb_series_family(sb, s[i].series);
        if (d != cur) {
            cur = d;
            if (d->help && *d->help) {
                if (buf_printf(out, "# HELP %s ", d->name) < 0 || escape_help(d->help, out) < 0 ||
                    buf_puts(out, "\n") < 0)
                    return -1;
            }
            if (buf_printf(out, "# TYPE %s %s\n", d->name, metric_type_name(d->type)) < 0)
                return -1;
        }
        size_t k = sb_series_nlabels(sb, s[i].series);
        const char *name = "";
        for (size_t j = 0; j < k; j++) {
            const char *ln, *lv;
            sb_series_label(sb, s[i].series, j, &ln, &lv);
            if (strcmp(ln, "__name__") == 0)
                name = lv;
        }
        if (buf_puts(out, name) < 0)
            return -1;
        bool first = true;
        for (size_t j = 0; j < k; j++) {
            const char *ln, *lv;
            sb_series_label(sb, s[i].series, j, &ln, &lv);
            if (strcmp(ln, "__name__") == 0)
                continue;
            if (buf_printf(out, "%s%s=\"", first ? "{" : ",", ln) < 0 ||
                textfmt_escape_label(lv, out) < 0 || buf_puts(out, "\"") < 0)
                return -1;
            first = false;
        }
        char val[64];
        textfmt_value(s[i].value, val, sizeof val);
        if (buf_printf(out, "%s %s\n", first ? "" : "}", val) < 0)
            return -1;
    }
    return 0;
}
