/* config_value: typed values of the configuration table (config_table.h):
 * parsing one value into its field, freeing a section's values. */
#include "config_table.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "names.h"
#include "selector.h"

void cfg_free_section_values(const struct section_desc *sd, void *sec)
{
    if (!sec)
        return;
    for (size_t i = 0; i < cfg_n_keys; i++) {
        const struct key_desc *k = &cfg_keys[i];
        if (strcmp(k->section, sd->name) != 0)
            continue;
        switch (k->type) {
        case T_LIST:
        case T_LABELS:
        case T_LABELNAMES:
        case T_HEADER: {
            struct strlist *l = cfg_field(sec, k->off);
            strv_free(l->v, l->n);
            l->v = NULL;
            l->n = 0;
            break;
        }
        case T_FILE:
            free(*(char **)cfg_field(sec, k->aux_off));
            /* fall through */
        case T_STRING:
        case T_URL:
        case T_REGEX:
        case T_LEVEL:
        case T_CHOICE:
        case T_PATH:
        case T_SELECTOR:
            free(*(char **)cfg_field(sec, k->off));
            *(char **)cfg_field(sec, k->off) = NULL;
            break;
        default:
            break;
        }
    }
    if (strcmp(sd->name, "remote_write") == 0) {
        free(((struct cfg_remote_write *)sec)->name);
    }
}

int cfg_set_value(const struct key_desc *k, void *sec, const char *val, struct err *e)
{
    /* the file is checked as a whole; this catches ${ENV} and overrides */
    for (const char *p = val; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f) {
            err_set(e, "%s: the value holds control byte 0x%02x (from the environment?)", k->key,
                    (unsigned char)*p);
            return -1;
        }
    switch (k->type) {
    case T_URL:
        if (*val && !str_has_prefix(val, "http://") && !str_has_prefix(val, "https://")) {
            char shown[URL_REDACT_MAX];
            err_set(e, "%s: \"%s\" is not an http:// or https:// URL", k->key,
                    url_redact(val, shown, sizeof shown));
            return -1;
        }
        /* fall through */
    case T_SELECTOR:
        if (k->type == T_SELECTOR && *val) { /* kept as text; relabel_new() parses again */
            struct relabel_selectors *rs;
            struct err e2;
            if (relabel_selectors_parse(val, &rs, &e2) < 0) {
                err_set(e, "%s: %s", k->key, e2.msg);
                return -1;
            }
            relabel_selectors_free(rs);
        }
        /* fall through */
    case T_STRING:
    case T_PATH: /* existence and access: validate_section() */
    case T_FILE: {
        char *s = strdup(val);
        if (!s)
            goto oom;
        free(*(char **)cfg_field(sec, k->off));
        *(char **)cfg_field(sec, k->off) = s;
        return 0;
    }
    case T_REGEX: {
        if (*val) {
            regex_t re;
            int rc = regcomp(&re, val, REG_EXTENDED | REG_NOSUB);
            if (rc) {
                char m[200];
                regerror(rc, &re, m, sizeof m);
                err_set(e, "%s: bad regular expression \"%s\": %s", k->key, val, m);
                return -1;
            }
            regfree(&re);
        }
        char *s = strdup(val);
        if (!s)
            goto oom;
        free(*(char **)cfg_field(sec, k->off));
        *(char **)cfg_field(sec, k->off) = s;
        return 0;
    }
    case T_LEVEL:
    case T_CHOICE: {
        bool ok = false;
        if (k->type == T_LEVEL) {
            enum log_level l;
            ok = log_level_parse(val, &l) == 0;
        } else {
            size_t n = strlen(val);
            for (const char *c = k->choices; c && *c;) {
                const char *bar = strchr(c, '|');
                size_t cl = bar ? (size_t)(bar - c) : strlen(c);
                if (cl == n && strncmp(c, val, n) == 0)
                    ok = true;
                c = bar ? bar + 1 : c + cl;
            }
        }
        if (!ok) {
            err_set(e, "%s: \"%s\" is not one of %s", k->key, val,
                    k->type == T_LEVEL ? "debug|info|warning|error" : k->choices);
            return -1;
        }
        char *s = strdup(val);
        if (!s)
            goto oom;
        free(*(char **)cfg_field(sec, k->off));
        *(char **)cfg_field(sec, k->off) = s;
        return 0;
    }
    case T_INT: {
        int64_t v;
        if (parse_int64(val, &v) < 0 || v < 0) {
            err_set(e, "%s: \"%s\" is not a non-negative integer", k->key, val);
            return -1;
        }
        *(int64_t *)cfg_field(sec, k->off) = v;
        return 0;
    }
    case T_BOOL:
        if (parse_bool(val, (bool *)cfg_field(sec, k->off)) < 0) {
            err_set(e, "%s: \"%s\" is not a boolean (true/false)", k->key, val);
            return -1;
        }
        return 0;
    case T_DURATION:
        /* a bare number is refused (as by Prometheus): is "500" ms or s? */
        if (*val && strspn(val, "0123456789") == strlen(val) && strspn(val, "0") != strlen(val)) {
            err_set(e, "%s: \"%s\" has no unit: write %ss (or %sms, %sm)", k->key, val, val, val,
                    val);
            return -1;
        }
        if (parse_duration_ms(val, (int64_t *)cfg_field(sec, k->off)) < 0) {
            err_set(e, "%s: \"%s\" is not a duration (e.g. 30s, 5m, 1h)", k->key, val);
            return -1;
        }
        return 0;
    case T_SIZE:
        if (parse_size(val, (uint64_t *)cfg_field(sec, k->off)) < 0) {
            err_set(e, "%s: \"%s\" is not a size (e.g. 512MiB, 1GiB)", k->key, val);
            return -1;
        }
        if (*(uint64_t *)cfg_field(sec, k->off) < CFG_MIN_SIZE) {
            err_set(e, "%s: %s is too small to hold one batch (at least 1KiB)", k->key, val);
            return -1;
        }
        return 0;
    case T_HEADER: {
        const char *colon = strchr(val, ':');
        size_t nl = colon ? (size_t)(colon - val) : 0;
        while (nl && isspace((unsigned char)val[nl - 1]))
            nl--;
        if (!colon || !nl || strcspn(val, " \t") < nl) {
            err_set(e, "%s: \"%s\" is not `Name: value`", k->key, val);
            return -1;
        }
        struct strlist *dst = cfg_field(sec, k->off);
        char **nv = realloc(dst->v, (dst->n + 1) * sizeof *nv);
        if (!nv)
            goto oom;
        dst->v = nv;
        if (!(dst->v[dst->n] = strdup(val)))
            goto oom;
        dst->n++;
        return 0;
    }
    case T_LIST:
    case T_LABELS:
    case T_LABELNAMES: {
        struct strlist l = {0};
        if (split_list(val, &l.v, &l.n) < 0)
            goto oom;
        if (k->type == T_LABELS) {
            for (size_t i = 0; i < l.n; i++) {
                char *eq = strchr(l.v[i], '=');
                if (!eq) {
                    err_set(e, "%s: \"%s\" is not name=value", k->key, l.v[i]);
                    strv_free(l.v, l.n);
                    return -1;
                }
                *eq = '\0';
                char *name = str_trim(l.v[i]);
                char *value = str_trim(eq + 1);
                /* reserved "__" names are refused, but for Mimir's HA
                 * tracker's default replica label */
                if (!label_name_valid(name) || !*value ||
                    (name[0] == '_' && strcmp(name, "__replica__") != 0)) {
                    err_set(e, "%s: \"%s\" is not a valid label name=value", k->key, name);
                    strv_free(l.v, l.n);
                    return -1;
                }
                size_t nl = strlen(name), vl = strlen(value);
                memmove(l.v[i], name, nl);
                l.v[i][nl] = '=';
                memmove(l.v[i] + nl + 1, value, vl + 1);
            }
        }
        for (size_t i = 0; k->type == T_LABELNAMES && i < l.n; i++)
            if (!label_name_valid(l.v[i]) || strcmp(l.v[i], "__name__") == 0) {
                err_set(e, "%s: \"%s\" is not a label name that can be dropped", k->key, l.v[i]);
                strv_free(l.v, l.n);
                return -1;
            }
        struct strlist *dst = cfg_field(sec, k->off);
        strv_free(dst->v, dst->n);
        *dst = l;
        return 0;
    }
    }
    return 0;
oom:
    err_set(e, "out of memory");
    return -1;
}
