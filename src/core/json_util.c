#include "json_util.h"

#include "json_bound.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void jd_init(struct jdec *d, const char *what, struct err *e)
{
    d->what = what ? what : "JSON answer";
    d->e = e;
    d->path[0] = '\0';
    d->len = 0;
}

static bool ident(const char *k)
{
    if (!*k || !(isalpha((unsigned char)*k) || *k == '_' || *k == '@' || *k == '$'))
        return false;
    for (; *k; k++)
        if (!(isalnum((unsigned char)*k) || *k == '_' || *k == '-' || *k == '@' || *k == '$'))
            return false;
    return true;
}

/* Appends ".key" or ["key"] to `out` (of size n) at *len; clamps on overflow. */
static void append_key(char *out, size_t n, size_t *len, const char *key)
{
    int w;
    if (ident(key))
        w = snprintf(out + *len, n - *len, "%s%s", *len ? "." : "", key);
    else {
        char esc[128];
        size_t j = 0;
        for (const char *p = key; *p && j + 3 < sizeof esc; p++) {
            if (*p == '"' || *p == '\\')
                esc[j++] = '\\';
            esc[j++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
        }
        esc[j] = '\0';
        w = snprintf(out + *len, n - *len, "[\"%s\"]", esc);
    }
    if (w < 0)
        return;
    *len += (size_t)w;
    if (*len >= n)
        *len = n - 1;
}

size_t jd_push_key(struct jdec *d, const char *key)
{
    size_t mark = d->len;
    append_key(d->path, sizeof d->path, &d->len, key);
    return mark;
}

size_t jd_push_index(struct jdec *d, size_t i)
{
    size_t mark = d->len;
    int w = snprintf(d->path + d->len, sizeof d->path - d->len, "[%zu]", i);
    if (w > 0) {
        d->len += (size_t)w;
        if (d->len >= sizeof d->path)
            d->len = sizeof d->path - 1;
    }
    return mark;
}

void jd_pop(struct jdec *d, size_t mark)
{
    if (mark < sizeof d->path) {
        d->len = mark;
        d->path[mark] = '\0';
    }
}

int jd_fail(struct jdec *d, const char *key, const char *fmt, ...)
{
    char path[sizeof d->path];
    size_t len = d->len;
    memcpy(path, d->path, len + 1);
    if (key)
        append_key(path, sizeof path, &len, key);
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err_set(d->e, "%s: %s: %s", d->what, len ? path : "top level", msg);
    return -1;
}

const char *jd_type_name(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "boolean";
    case json_type_double:
    case json_type_int:
        return "number";
    case json_type_string:
        return "string";
    case json_type_object:
        return "object";
    case json_type_array:
        return "array";
    }
    return "something else";
}

/* Looks up `key` (or takes parent itself). Returns 1 with *v, 0 when
 * absent/null is allowed, -1 on a missing/null value that is not allowed
 * or a parent that is not an object. */
static int lookup(struct jdec *d, json_object *parent, const char *key, unsigned fl,
                  const char *want, json_object **v)
{
    if (key) {
        if (!json_object_is_type(parent, json_type_object)) {
            /* the caller checked the parent's type; be safe anyway */
            return jd_fail(d, NULL, "expected an object, got %s", jd_type_name(parent));
        }
        if (!json_object_object_get_ex(parent, key, v)) {
            if (fl & JD_OPTIONAL)
                return 0;
            return jd_fail(d, key, "missing (expected %s)", want);
        }
    } else {
        *v = parent;
    }
    if (!*v || json_object_is_type(*v, json_type_null)) {
        if (fl & JD_NULLABLE)
            return 0;
        return jd_fail(d, key, "expected %s, got null", want);
    }
    return 1;
}

static int typed(struct jdec *d, json_object *parent, const char *key, unsigned fl,
                 enum json_type t, const char *want, json_object **out)
{
    json_object *v = NULL;
    int rc = lookup(d, parent, key, fl, want, &v);
    if (rc <= 0)
        return rc;
    if (!json_object_is_type(v, t))
        return jd_fail(d, key, "expected %s, got %s", want, jd_type_name(v));
    *out = v;
    return 1;
}

int jd_object(struct jdec *d, json_object *parent, const char *key, unsigned fl, json_object **out)
{
    return typed(d, parent, key, fl, json_type_object, "an object", out);
}

int jd_array(struct jdec *d, json_object *parent, const char *key, unsigned fl, json_object **out,
             size_t *n)
{
    json_object *v = NULL;
    int rc = typed(d, parent, key, fl, json_type_array, "an array", &v);
    if (rc == 1) {
        *out = v;
        if (n)
            *n = json_object_array_length(v);
    }
    return rc;
}

int jd_string(struct jdec *d, json_object *parent, const char *key, unsigned fl, const char **out)
{
    json_object *v = NULL;
    int rc = typed(d, parent, key, fl, json_type_string, "a string", &v);
    if (rc == 1)
        *out = json_object_get_string(v);
    return rc;
}

int jd_bool(struct jdec *d, json_object *parent, const char *key, unsigned fl, bool *out)
{
    json_object *v = NULL;
    int rc = typed(d, parent, key, fl, json_type_boolean, "a boolean", &v);
    if (rc == 1)
        *out = json_object_get_boolean(v);
    return rc;
}

int jd_number(struct jdec *d, json_object *parent, const char *key, unsigned fl, double *out)
{
    json_object *v = NULL;
    int rc = lookup(d, parent, key, fl, "a number", &v);
    if (rc <= 0)
        return rc;
    if (json_object_is_type(v, json_type_int)) {
        int64_t i = json_object_get_int64(v);
        if (i == INT64_MAX) /* json-c saturates: it may be a larger unsigned value */
            *out = (double)json_object_get_uint64(v);
        else
            *out = (double)i;
        return 1;
    }
    if (json_object_is_type(v, json_type_double)) {
        double x = json_object_get_double(v);
        if (!isfinite(x))
            return jd_fail(d, key, "expected a finite number");
        *out = x;
        return 1;
    }
    return jd_fail(d, key, "expected a number, got %s", jd_type_name(v));
}

int jd_int64(struct jdec *d, json_object *parent, const char *key, unsigned fl, int64_t *out)
{
    json_object *v = NULL;
    int rc = lookup(d, parent, key, fl, "an integer", &v);
    if (rc <= 0)
        return rc;
    if (json_object_is_type(v, json_type_int)) {
        int64_t i = json_object_get_int64(v);
        if (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
            return jd_fail(d, key, "integer out of range");
        *out = i;
        return 1;
    }
    if (json_object_is_type(v, json_type_double)) {
        double x = json_object_get_double(v);
        if (!isfinite(x) || x != floor(x) || x < -9.2e18 || x > 9.2e18)
            return jd_fail(d, key, "expected an integer, got %s", json_object_get_string(v));
        *out = (int64_t)x;
        return 1;
    }
    return jd_fail(d, key, "expected an integer, got %s", jd_type_name(v));
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

int parse_iso8601_ms(const char *s, int64_t *out)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
        return -1;
    int64_t ms = 0;
    int off_min = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
            return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec))
                return -1;
            if (*p == '.' || *p == ',') {
                p++;
                int64_t scale = 100;
                if (!isdigit((unsigned char)*p))
                    return -1;
                while (isdigit((unsigned char)*p)) {
                    ms += (*p - '0') * scale;
                    scale /= 10;
                    p++;
                }
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
            if (digits(&p, 2, &oh))
                return -1;
            if (*p == ':')
                p++;
            if (isdigit((unsigned char)*p) && digits(&p, 2, &om))
                return -1;
            if (oh > 23 || om > 59)
                return -1;
            off_min = sign * (oh * 60 + om);
        } else if (*p) {
            return -1;
        }
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 && !(y == 1969 && mo == 12 && d == 31))
        return -1;
    *out = ((int64_t)t - (int64_t)off_min * 60) * 1000 + ms;
    return 0;
}

int jd_time_ms(struct jdec *d, json_object *parent, const char *key, unsigned fl, int64_t *out)
{
    const char *s = NULL;
    int rc = jd_string(d, parent, key, fl, &s);
    if (rc <= 0)
        return rc;
    if (parse_iso8601_ms(s, out) < 0)
        return jd_fail(d, key, "expected an ISO-8601 date, got \"%.40s\"", s);
    return 1;
}

int jd_parse(const char *what, const char *body, size_t len, const char *content_type,
             json_object **out, struct err *e)
{
    *out = NULL;
    size_t objects, arrays, values;
    unsigned depth;
    size_t cost =
        json_parse_cost(body ? body : "", body ? len : 0, &objects, &arrays, &values, &depth);
    if (cost == SIZE_MAX) {
        err_set(e, "%s: answer refused: JSON nested %u deep (more than %d)", what, depth,
                JD_MAX_DEPTH);
        return -1;
    }
    if (cost > JD_MAX_PARSE_COST) {
        err_set(e,
                "%s: answer refused: %zu bytes of JSON with %zu objects, %zu arrays and %zu "
                "values would take about %zu MiB to parse (limit %u MiB)",
                what, len, objects, arrays, values, cost >> 20, JD_MAX_PARSE_COST >> 20);
        return -1;
    }
    json_tokener *tok = json_tokener_new_ex(JD_MAX_DEPTH);
    if (!tok) {
        err_set(e, "%s: out of memory", what);
        return -1;
    }
    json_object *j = json_tokener_parse_ex(tok, body ? body : "", (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    size_t consumed = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!j || je != json_tokener_success) {
        json_object_put(j);
        char snippet[48];
        size_t k = 0;
        for (size_t i = 0; body && i < len && k < 40; i++)
            snippet[k++] = (body[i] == '\n' || body[i] == '\r' || body[i] == '\t' ||
                            (unsigned char)body[i] < 0x20)
                               ? ' '
                               : body[i];
        snippet[k] = '\0';
        const char *why = len == 0                      ? "empty body"
                          : je == json_tokener_continue ? "truncated"
                                                        : json_tokener_error_desc(je);
        if (content_type && *content_type)
            err_set(e, "%s: answer is not JSON (%s; Content-Type %s; starts with \"%s\")", what,
                    why, content_type, snippet);
        else
            err_set(e, "%s: answer is not JSON (%s; starts with \"%s\")", what, why, snippet);
        return -1;
    }
    for (size_t i = consumed; i < len; i++)
        if (!isspace((unsigned char)body[i])) {
            json_object_put(j);
            err_set(e, "%s: answer is not JSON (trailing data at byte %zu)", what, i);
            return -1;
        }
    *out = j;
    return 0;
}
