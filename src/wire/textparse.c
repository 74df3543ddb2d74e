#include "textparse.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "names.h"

#define DEF_MAX_LINE    (64u << 10)
#define DEF_MAX_LABELS  64u
#define DEF_MAX_SAMPLES 1000000u

struct textparse {
    struct tp_limits lim;
    tp_sample_fn fn;
    void *ud;
    char *line; /* max_line + 1 */
    size_t len;
    bool overlong; /* the current line passed max_line */
    size_t lineno; /* lines completed */
    bool failed;
    size_t samples;
    /* the current family (latest HELP/TYPE) */
    char *fam;  /* max_line + 1 */
    char *help; /* max_line + 1 */
    enum tp_type type;
    bool has_type, has_help, fam_samples;
    /* scratch for one sample: unescaped strings and label pointers */
    char *scratch; /* max_line + 1 */
    const char **labels;
};

const char *tp_type_name(enum tp_type t)
{
    switch (t) {
    case TP_COUNTER:
        return "counter";
    case TP_GAUGE:
        return "gauge";
    case TP_HISTOGRAM:
        return "histogram";
    case TP_SUMMARY:
        return "summary";
    default:
        return "untyped";
    }
}

struct textparse *tp_new(const struct tp_limits *lim, tp_sample_fn fn, void *ud)
{
    struct textparse *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (lim)
        p->lim = *lim;
    if (!p->lim.max_line)
        p->lim.max_line = DEF_MAX_LINE;
    if (!p->lim.max_labels)
        p->lim.max_labels = DEF_MAX_LABELS;
    if (!p->lim.max_samples)
        p->lim.max_samples = DEF_MAX_SAMPLES;
    p->fn = fn;
    p->ud = ud;
    size_t n = p->lim.max_line + 1;
    p->line = malloc(n);
    p->fam = calloc(1, n);
    p->help = calloc(1, n);
    p->scratch = malloc(n);
    p->labels = calloc(2 * p->lim.max_labels, sizeof *p->labels);
    if (!p->line || !p->fam || !p->help || !p->scratch || !p->labels) {
        tp_free(p);
        return NULL;
    }
    return p;
}

void tp_free(struct textparse *p)
{
    if (!p)
        return;
    free(p->line);
    free(p->fam);
    free(p->help);
    free(p->scratch);
    free(p->labels);
    free(p);
}

size_t tp_samples(const struct textparse *p)
{
    return p->samples;
}

static int fail(struct textparse *p, struct err *e, const char *what, const char *detail)
{
    p->failed = true;
    if (detail)
        err_set(e, "line %zu: %s: %.120s", p->lineno, what, detail);
    else
        err_set(e, "line %zu: %s", p->lineno, what);
    return -1;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

static const char *skip_blank(const char *s)
{
    while (blank(*s))
        s++;
    return s;
}

/* Length of the metric (colon) or label name at s; 0 when none (the
 * grammar of names.h). */
static size_t name_len(const char *s, bool colon)
{
    if (!names_char_ok(*s, true, colon))
        return 0;
    size_t n = 1;
    while (names_char_ok(s[n], false, colon))
        n++;
    return n;
}

/* Copies a token of length n into tmp (cap bytes) as a C string; false
 * when it is empty or does not fit. */
static bool token_copy(const char *s, size_t n, char *tmp, size_t cap)
{
    if (n == 0 || n >= cap)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return true;
}

/* Parses a value token of length n; true when valid. */
static bool parse_value(const char *s, size_t n, double *out)
{
    char tmp[64];
    if (!token_copy(s, n, tmp, sizeof tmp))
        return false;
    const char *t = tmp;
    int sign = 1;
    if (*t == '+' || *t == '-') {
        sign = *t == '-' ? -1 : 1;
        t++;
    }
    if (strcasecmp(t, "inf") == 0) {
        *out = sign * INFINITY;
        return true;
    }
    if (strcasecmp(t, "nan") == 0 && t == tmp) {
        *out = NAN;
        return true;
    }
    for (const char *c = t; *c; c++)
        if (!((*c >= '0' && *c <= '9') || *c == '.' || *c == 'e' || *c == 'E' || *c == '+' ||
              *c == '-'))
            return false;
    char *end;
    errno = 0;
    double v = strtod(tmp, &end);
    if (end == tmp || *end)
        return false;
    *out = v; /* overflow gives +-HUGE_VAL (= Inf), as Go's ParseFloat */
    return true;
}

static bool parse_ts(const char *s, size_t n, int64_t *out)
{
    char tmp[32];
    if (!token_copy(s, n, tmp, sizeof tmp))
        return false;
    size_t i = tmp[0] == '-' || tmp[0] == '+';
    if (!tmp[i])
        return false;
    for (size_t k = i; tmp[k]; k++)
        if (tmp[k] < '0' || tmp[k] > '9')
            return false;
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* `# HELP name text` / `# TYPE name type`; other comments ignored. */
static int comment(struct textparse *p, const char *s, struct err *e)
{
    s = skip_blank(s + 1);
    bool is_help = strncmp(s, "HELP", 4) == 0 && (blank(s[4]) || !s[4]);
    bool is_type = strncmp(s, "TYPE", 4) == 0 && (blank(s[4]) || !s[4]);
    if (!is_help && !is_type)
        return 0;
    const char *kw = is_help ? "HELP" : "TYPE";
    s = skip_blank(s + 4);
    size_t n = name_len(s, true);
    if (!n) {
        char what[64];
        snprintf(what, sizeof what, "# %s without a valid metric name", kw);
        return fail(p, e, what, *s ? s : NULL);
    }
    if (s[n] && !blank(s[n]))
        return fail(p, e, "invalid metric name in comment", s);
    bool same = strlen(p->fam) == n && memcmp(p->fam, s, n) == 0;
    if (!same) {
        memcpy(p->fam, s, n);
        p->fam[n] = '\0';
        p->help[0] = '\0';
        p->type = TP_UNTYPED;
        p->has_type = p->has_help = p->fam_samples = false;
    }
    const char *rest = s + n;
    if (*rest)
        rest++; /* the one blank after the name */
    if (is_help) {
        if (p->has_help)
            return fail(p, e, "second HELP line for metric", p->fam);
        char *o = p->help;
        for (const char *c = rest; *c; c++) {
            if (*c == '\\') {
                if (c[1] == '\\')
                    *o++ = '\\';
                else if (c[1] == 'n')
                    *o++ = '\n';
                else
                    return fail(p, e, "invalid escape in HELP text (only \\\\ and \\n)", c);
                c++;
            } else {
                *o++ = *c;
            }
        }
        *o = '\0';
        p->has_help = true;
        return 0;
    }
    if (p->has_type)
        return fail(p, e, "second TYPE line for metric", p->fam);
    if (p->fam_samples)
        return fail(p, e, "TYPE line after samples of metric", p->fam);
    rest = skip_blank(rest);
    size_t tl = strcspn(rest, " \t");
    if (*skip_blank(rest + tl))
        return fail(p, e, "unexpected text after the type", rest);
    static const char *const names[] = {"untyped", "counter", "gauge", "histogram", "summary"};
    for (size_t i = 0; i < 5; i++)
        if (tl == strlen(names[i]) && strncmp(rest, names[i], tl) == 0) {
            p->type = (enum tp_type)i;
            p->has_type = true;
            return 0;
        }
    return fail(p, e, "unknown metric type", *rest ? rest : "(none)");
}

/* The family of sample `name` (length n) given the current metadata. */
static const char *family_suffix(const struct textparse *p, const char *name, size_t n)
{
    size_t fl = strlen(p->fam);
    if (!fl || n < fl || memcmp(name, p->fam, fl) != 0)
        return NULL;
    const char *suf = name + fl;
    if (!*suf)
        return suf;
    switch (p->type) {
    case TP_HISTOGRAM:
        if (!strcmp(suf, "_bucket") || !strcmp(suf, "_sum") || !strcmp(suf, "_count"))
            return suf;
        break;
    case TP_SUMMARY:
        if (!strcmp(suf, "_sum") || !strcmp(suf, "_count"))
            return suf;
        break;
    case TP_COUNTER:
        if (!strcmp(suf, "_total"))
            return suf;
        break;
    default:
        break;
    }
    return NULL;
}

static int sample(struct textparse *p, const char *s, struct err *e)
{
    size_t n = name_len(s, true);
    if (!n)
        return fail(p, e, "expected a metric name", s);
    char *o = p->scratch; /* name, then label names and values, NUL-separated */
    memcpy(o, s, n);
    o[n] = '\0';
    const char *name = o;
    o += n + 1;
    const char *c = s + n;
    size_t nl = 0;
    if (*c == '{') {
        c = skip_blank(c + 1);
        while (*c != '}') {
            size_t ln = name_len(c, false);
            if (!ln)
                return fail(p, e, "expected a label name or '}'", *c ? c : "end of line");
            if (nl >= p->lim.max_labels) {
                char what[64];
                snprintf(what, sizeof what, "more than %zu labels", p->lim.max_labels);
                return fail(p, e, what, name);
            }
            memcpy(o, c, ln);
            o[ln] = '\0';
            for (size_t k = 0; k < nl; k++)
                if (!strcmp(p->labels[2 * k], o))
                    return fail(p, e, "duplicate label name", o);
            p->labels[2 * nl] = o;
            o += ln + 1;
            c = skip_blank(c + ln);
            if (*c != '=')
                return fail(p, e, "expected '=' after label name", p->labels[2 * nl]);
            c = skip_blank(c + 1);
            if (*c != '"')
                return fail(p, e, "expected '\"' to start the value of label", p->labels[2 * nl]);
            c++;
            p->labels[2 * nl + 1] = o;
            for (;; c++) {
                if (!*c)
                    return fail(p, e, "unterminated label value of label", p->labels[2 * nl]);
                if (*c == '"')
                    break;
                if (*c == '\\') {
                    c++;
                    if (*c == '\\' || *c == '"')
                        *o++ = *c;
                    else if (*c == 'n')
                        *o++ = '\n';
                    else
                        return fail(p, e, "invalid escape in label value (only \\\\, \\\" and \\n)",
                                    c - 1);
                } else {
                    *o++ = *c;
                }
            }
            *o++ = '\0';
            nl++;
            c = skip_blank(c + 1);
            if (*c == ',')
                c = skip_blank(c + 1);
            else if (*c != '}')
                return fail(p, e, "expected ',' or '}' after label value", *c ? c : "end of line");
        }
        c++;
    }
    if (!blank(*c))
        return fail(p, e, *c ? "expected a blank before the value" : "missing value", name);
    c = skip_blank(c);
    size_t vl = strcspn(c, " \t");
    struct tp_sample smp = {.name = name, .labels = p->labels, .n_labels = nl, .line = p->lineno};
    if (!vl)
        return fail(p, e, "missing value", name);
    if (!parse_value(c, vl, &smp.value)) {
        char tok[40];
        snprintf(tok, sizeof tok, "%.*s", (int)(vl < 32 ? vl : 32), c);
        return fail(p, e, "invalid value", tok);
    }
    c = skip_blank(c + vl);
    if (*c) {
        size_t tl = strcspn(c, " \t");
        if (!parse_ts(c, tl, &smp.ts_ms)) {
            char tok[40];
            snprintf(tok, sizeof tok, "%.*s", (int)(tl < 32 ? tl : 32), c);
            return fail(p, e, "invalid timestamp", tok);
        }
        smp.has_ts = true;
        if (*skip_blank(c + tl))
            return fail(p, e, "unexpected text after the timestamp", skip_blank(c + tl));
    }
    if (p->samples >= p->lim.max_samples) {
        char what[64];
        snprintf(what, sizeof what, "more than %zu samples", p->lim.max_samples);
        return fail(p, e, what, NULL);
    }
    const char *suf = family_suffix(p, name, n);
    if (suf) {
        p->fam_samples = true;
        smp.family = p->fam;
        smp.suffix = suf;
        smp.type = p->type;
        smp.help = p->help;
    } else {
        /* a family of its own, without metadata: it becomes the current
         * one, so a TYPE line for it after this sample is caught */
        memcpy(p->fam, name, n + 1);
        p->help[0] = '\0';
        p->type = TP_UNTYPED;
        p->has_type = p->has_help = false;
        p->fam_samples = true;
        smp.family = p->fam;
        smp.suffix = "";
        smp.type = TP_UNTYPED;
        smp.help = p->help;
    }
    p->samples++;
    if (p->fn && p->fn(p->ud, &smp, e) < 0) {
        p->failed = true;
        return -1;
    }
    return 0;
}

static int do_line(struct textparse *p, struct err *e)
{
    p->lineno++;
    if (p->overlong) {
        char what[64];
        snprintf(what, sizeof what, "line longer than %zu bytes", p->lim.max_line);
        return fail(p, e, what, NULL);
    }
    if (p->len && p->line[p->len - 1] == '\r')
        p->len--;
    p->line[p->len] = '\0';
    if (memchr(p->line, '\0', p->len))
        return fail(p, e, "NUL byte in line", NULL);
    const char *s = skip_blank(p->line);
    if (!*s)
        return 0;
    if (*s == '#')
        return comment(p, s, e);
    return sample(p, s, e);
}

int tp_feed(struct textparse *p, const char *data, size_t len, struct err *e)
{
    if (p->failed) {
        err_set(e, "line %zu: parser already failed", p->lineno);
        return -1;
    }
    while (len) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (!p->overlong) {
            if (p->len + take > p->lim.max_line) {
                p->overlong = true;
            } else {
                memcpy(p->line + p->len, data, take);
                p->len += take;
            }
        }
        data += take;
        len -= take;
        if (nl) {
            data++;
            len--;
            int rc = do_line(p, e);
            p->len = 0;
            p->overlong = false;
            if (rc < 0)
                return -1;
        } else if (p->overlong) {
            /* fail early: no need to read the rest of a hostile line */
            p->lineno++;
            char what[64];
            snprintf(what, sizeof what, "line longer than %zu bytes", p->lim.max_line);
            return fail(p, e, what, NULL);
        }
    }
    return 0;
}

int tp_finish(struct textparse *p, struct err *e)
{
    if (p->failed) {
        err_set(e, "line %zu: parser already failed", p->lineno);
        return -1;
    }
    if (p->len || p->overlong) {
        int rc = do_line(p, e);
        p->len = 0;
        if (rc < 0)
            return -1;
    }
    return 0;
}

int tp_parse(const char *data, size_t len, const struct tp_limits *lim, tp_sample_fn fn, void *ud,
             struct err *e)
{
    struct textparse *p = tp_new(lim, fn, ud);
    if (!p) {
        err_set(e, "out of memory");
        return -1;
    }
    int rc = tp_feed(p, data, len, e) < 0 || tp_finish(p, e) < 0 ? -1 : 0;
    tp_free(p);
    return rc;
}

enum metric_type tp_metric_type(enum tp_type t)
{
    switch (t) {
    case TP_COUNTER:
        return MT_COUNTER;
    case TP_GAUGE:
        return MT_GAUGE;
    case TP_HISTOGRAM:
        return MT_HISTOGRAM;
    default:
        return MT_UNKNOWN;
    }
}
