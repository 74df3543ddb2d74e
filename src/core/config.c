#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_table.h"
#include "log.h"

#define SPOOL_NAME_MAX_CFG 48 /* longest [remote_write NAME] created from the environment */

/* ---- parsing --------------------------------------------------------- */

struct parse_state {
    struct config *cfg;
    const char *file;
    struct diag *d;
    /* keys already set in the current section, to reject duplicates */
    const struct section_desc *sd; /* NULL: no section, or a bad header (keys skipped) */
    bool skipping;                 /* after a bad header: its keys are not checked */
    void *sec;
    unsigned char seen[CFG_KEYS_MAX];
    int seen_line[CFG_KEYS_MAX];
    int shipper_line; /* where [shipper] (the one SEC_ALWAYS section) was opened */
};

static const struct section_desc *find_section(const char *name, size_t len)
{
    for (size_t i = 0; i < cfg_n_sections; i++)
        if (strlen(cfg_sections[i].name) == len && strncasecmp(cfg_sections[i].name, name, len) == 0)
            return &cfg_sections[i];
    return NULL;
}

static const struct key_desc *find_key(const char *section, const char *key, size_t klen)
{
    for (size_t i = 0; i < cfg_n_keys; i++)
        if (strcmp(cfg_keys[i].section, section) == 0 && strlen(cfg_keys[i].key) == klen &&
            strncasecmp(cfg_keys[i].key, key, klen) == 0)
            return &cfg_keys[i];
    return NULL;
}

static int apply_defaults(const struct section_desc *sd, void *sec, struct err *e)
{
    for (size_t i = 0; i < cfg_n_keys; i++) {
        const struct key_desc *k = &cfg_keys[i];
        if (strcmp(k->section, sd->name) != 0 || !k->def)
            continue;
        if (cfg_set_value(k, sec, k->def, e) < 0)
            return -1;
    }
    return 0;
}

/* Creates (or finds, for ALWAYS) the section instance; NULL on error. */
static void *open_section(struct config *cfg, const struct section_desc *sd, const char *name,
                          int line, struct err *e)
{
    void *slot = (char *)cfg + sd->cfg_off;
    if (sd->kind == SEC_ALWAYS) {
        if (name && *name) {
            err_set(e, "section [%s] takes no name", sd->name);
            return NULL;
        }
        return slot;
    }
    if (sd->kind == SEC_OPTIONAL && name && *name) {
        err_set(e, "section [%s] takes no name", sd->name);
        return NULL;
    }
    if (sd->kind == SEC_OPTIONAL && *(void **)slot) {
        err_set(e, "section [%s] appears twice (first on line %d)", sd->name,
                *(int *)cfg_field(*(void **)slot, (size_t)sd->line_off));
        return NULL;
    }
    void *sec = calloc(1, sd->size);
    if (!sec) {
        err_set(e, "out of memory");
        return NULL;
    }
    if (sd->line_off >= 0)
        *(int *)cfg_field(sec, (size_t)sd->line_off) = line;
    if (apply_defaults(sd, sec, e) < 0) {
        cfg_free_section_values(sd, sec);
        free(sec);
        return NULL;
    }
    if (sd->kind == SEC_OPTIONAL) {
        *(void **)slot = sec;
        return sec;
    }
    /* SEC_NAMED */
    struct cfg_remote_write ***arr = slot;
    size_t *count = (size_t *)((char *)cfg + sd->count_off);
    for (size_t i = 0; i < *count; i++) {
        if (strcmp((*arr)[i]->name, name ? name : "") == 0) {
            err_set(e, "section [%s%s%s] appears twice (first on line %d)", sd->name,
                    name && *name ? " " : "", name ? name : "", (*arr)[i]->line);
            goto fail;
        }
    }
    struct cfg_remote_write *rw = sec;
    if (!(rw->name = strdup(name ? name : "")))
        goto oom;
    for (const char *p = rw->name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') {
            err_set(e, "section name \"%s\" may only hold letters, digits, '-' and '_'", rw->name);
            goto fail;
        }
    struct cfg_remote_write **na = realloc(*arr, (*count + 1) * sizeof **arr);
    if (!na)
        goto oom;
    *arr = na;
    na[(*count)++] = rw;
    return sec;
oom:
    err_set(e, "out of memory");
fail:
    cfg_free_section_values(sd, sec);
    free(sec);
    return NULL;
}

/* Expands ${VAR} and ${VAR:-default}; "$$" is a literal '$'. */
static int expand_env(const char *in, char **out, struct err *e)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    for (const char *p = in; *p;) {
        if (p[0] == '$' && p[1] == '$') {
            buf_append(&b, "$", 1);
            p += 2;
            continue;
        }
        if (p[0] == '$' && p[1] == '{') {
            const char *end = strchr(p, '}');
            if (!end) {
                err_set(e, "unterminated ${ in \"%s\"", in);
                goto fail;
            }
            char name[256];
            size_t n = (size_t)(end - p - 2);
            if (n >= sizeof name || n == 0) {
                err_set(e, "bad variable reference in \"%s\"", in);
                goto fail;
            }
            memcpy(name, p + 2, n);
            name[n] = '\0';
            const char *def = NULL;
            char *colon = strstr(name, ":-");
            if (colon) {
                *colon = '\0';
                def = colon + 2;
            }
            const char *v = getenv(name);
            if (!v || (!*v && def))
                v = def;
            if (!v) {
                err_set(e, "environment variable %s is not set (use ${%s:-default})", name, name);
                goto fail;
            }
            if (buf_puts(&b, v) < 0)
                goto oom;
            p = end + 1;
            continue;
        }
        if (buf_append(&b, p, 1) < 0)
            goto oom;
        p++;
    }
    if (!buf_cstr(&b))
        goto oom;
    *out = b.data;
    return 0;
oom:
    err_set(e, "out of memory");
fail:
    buf_free(&b);
    return -1;
}

/* Parses one line; a problem is reported and parsing goes on. -1 only
 * when out of memory. */
static int parse_line(struct parse_state *ps, char *line, int lineno)
{
    struct diag *d = ps->d;
    char *s = str_trim(line);
    if (!*s || *s == '#' || *s == ';')
        return 0;
    if (*s == '[') {
        ps->sd = NULL;
        ps->skipping = true; /* until a good header */
        char *end = strchr(s, ']');
        if (!end || str_trim(end + 1)[0] != '\0') {
            cfg_report(d, lineno, "malformed section header \"%s\"", s);
            return 0;
        }
        *end = '\0';
        char *inner = str_trim(s + 1);
        char *sp = inner;
        while (*sp && !isspace((unsigned char)*sp))
            sp++;
        size_t nlen = (size_t)(sp - inner);
        char *name = str_trim(sp);
        const struct section_desc *sd = find_section(inner, nlen);
        if (!sd) {
            const char *best = NULL;
            size_t bd = SIZE_MAX;
            char nm[64];
            snprintf(nm, sizeof nm, "%.*s", (int)nlen, inner);
            for (size_t i = 0; i < cfg_n_sections; i++) {
                size_t dd = cfg_edit_distance(nm, cfg_sections[i].name);
                if (dd < bd) {
                    bd = dd;
                    best = cfg_sections[i].name;
                }
            }
            if (best && bd <= 2 && nlen)
                cfg_report(d, lineno, "unknown section [%.*s]; did you mean [%s]?", (int)nlen, inner,
                       best);
            else
                cfg_report(d, lineno, "unknown section [%.*s]", (int)nlen, inner);
            return 0;
        }
        struct err e2;
        if (sd->kind == SEC_ALWAYS && ps->shipper_line) {
            cfg_report(d, lineno, "section [%s] appears twice (first on line %d)", sd->name,
                   ps->shipper_line);
            return 0;
        }
        void *sec = open_section(ps->cfg, sd, name, lineno, &e2);
        if (!sec) {
            cfg_report(d, lineno, "%s", e2.msg);
            return 0;
        }
        if (cfg_keyline_set(ps->cfg, sec, NULL, lineno) < 0)
            return -1;
        ps->sd = sd;
        ps->sec = sec;
        ps->skipping = false;
        if (sd->kind == SEC_ALWAYS)
            ps->shipper_line = lineno;
        memset(ps->seen, 0, sizeof ps->seen);
        return 0;
    }
    char *eq = strchr(s, '=');
    if (!eq) {
        cfg_report(d, lineno, "expected `key = value`, got \"%s\"", s);
        return 0;
    }
    if (!ps->sd) {
        if (!ps->skipping)
            cfg_report(d, lineno, "key outside of any section (start with [shipper])");
        return 0;
    }
    *eq = '\0';
    char *key = str_trim(s);
    char *val = str_trim(eq + 1);
    /* Values may be quoted to keep leading/trailing spaces or a '#'. */
    size_t vl = strlen(val);
    if (vl >= 2 &&
        ((val[0] == '"' && val[vl - 1] == '"') || (val[0] == '\'' && val[vl - 1] == '\''))) {
        val[vl - 1] = '\0';
        val++;
    }
    const struct key_desc *k = find_key(ps->sd->name, key, strlen(key));
    if (!k) {
        char hint[256];
        cfg_suggest(ps->sd->name, key, hint, sizeof hint);
        cfg_report(d, lineno, "unknown key \"%s\" in section [%s]%s", key, ps->sd->name, hint);
        return 0;
    }
    size_t ki = (size_t)(k - cfg_keys);
    if (ps->seen[ki] && !(k->flags & REPEAT)) {
        cfg_report(d, lineno, "key \"%s\" already set on line %d", key, ps->seen_line[ki]);
        return 0;
    }
    if (!ps->seen[ki] && cfg_keyline_set(ps->cfg, ps->sec, k, lineno) < 0)
        return -1;
    ps->seen[ki] = 1;
    ps->seen_line[ki] = lineno;
    char *exp = NULL;
    struct err e2;
    if (expand_env(val, &exp, &e2) < 0 || cfg_set_value(k, ps->sec, exp, &e2) < 0) {
        cfg_report(d, lineno, "%s", e2.msg);
        cfg_keyline_bad(ps->cfg, ps->sec, k);
    }
    free(exp);
    return 0;
}

/* ---- environment overrides ------------------------------------------ */


extern char **environ;

/* Reports every bad override; -1 only when out of memory. */
static int apply_env(struct config *cfg, struct diag *d)
{
    static const char prefix[] = "NEXUS_SHIPPER_";
    for (char **ev = environ; ev && *ev; ev++) {
        if (!str_has_prefix(*ev, prefix))
            continue;
        const char *eqp = strchr(*ev, '=');
        if (!eqp)
            continue;
        char name[256];
        size_t nlen = (size_t)(eqp - *ev);
        if (nlen >= sizeof name)
            continue;
        memcpy(name, *ev, nlen);
        name[nlen] = '\0';
        const char *val = eqp + 1;
        const char *rest = name + sizeof prefix - 1;
        bool done = false;
        for (size_t si = 0; si < cfg_n_sections && !done; si++) {
            const struct section_desc *sd = &cfg_sections[si];
            char up[64];
            cfg_upper_copy(up, sizeof up, sd->name);
            size_t ul = strlen(up);
            if (strncmp(rest, up, ul) != 0 || rest[ul] != '_')
                continue;
            const char *tail = rest + ul + 1;
            const char *inst_name = NULL;
            char new_name[SPOOL_NAME_MAX_CFG];
            const struct key_desc *k = find_key(sd->name, tail, strlen(tail));
            void *sec = NULL;
            if (sd->kind == SEC_NAMED) {
                /* NEXUS_SHIPPER_REMOTE_WRITE_<NAME>_<KEY> for a named instance */
                size_t *count = (size_t *)((char *)cfg + sd->count_off);
                struct cfg_remote_write **arr =
                    *(struct cfg_remote_write ***)((char *)cfg + sd->cfg_off);
                for (size_t i = 0; i < *count && !sec; i++) {
                    char iu[128];
                    cfg_upper_copy(iu, sizeof iu, arr[i]->name);
                    size_t il = strlen(iu);
                    if (il && strncmp(tail, iu, il) == 0 && tail[il] == '_') {
                        const struct key_desc *k2 =
                            find_key(sd->name, tail + il + 1, strlen(tail + il + 1));
                        if (k2) {
                            k = k2;
                            sec = arr[i];
                        }
                    }
                }
                if (!sec && k) {
                    for (size_t i = 0; i < *count; i++)
                        if (!arr[i]->name[0])
                            sec = arr[i];
                    inst_name = "";
                }
                /* an instance the file does not have: <NAME>_<KEY>, the
                 * longest key that matches wins; the name is lower-cased */
                for (const char *u = strchr(tail, '_'); u && !k; u = strchr(u + 1, '_')) {
                    const struct key_desc *k2 = find_key(sd->name, u + 1, strlen(u + 1));
                    size_t nl = (size_t)(u - tail);
                    if (k2 && nl && nl < sizeof new_name) {
                        for (size_t c = 0; c < nl; c++)
                            new_name[c] = (char)tolower((unsigned char)tail[c]);
                        new_name[nl] = '\0';
                        k = k2;
                        inst_name = new_name;
                    }
                }
            } else if (k) {
                sec = sd->kind == SEC_ALWAYS ? (char *)cfg + sd->cfg_off
                                             : *(void **)((char *)cfg + sd->cfg_off);
            }
            if (!k)
                continue;
            if (!sec) {
                struct err e2;
                sec = open_section(cfg, sd, inst_name, 0, &e2);
                if (!sec) {
                    cfg_report(d, -1, "environment %s: %s", name, e2.msg);
                    done = true;
                    break;
                }
            }
            struct err e2;
            if (cfg_set_value(k, sec, val, &e2) < 0)
                cfg_report(d, -1, "environment %s: %s", name, e2.msg);
            else if (cfg_keyline_set(cfg, sec, k, 0) < 0) /* the file's line no longer applies */
                return -1;
            done = true;
        }
        if (!done)
            cfg_report(d, -1, "environment %s: no such configuration key", name);
    }
    return 0;
}

/* A configuration file is text: a NUL would silently end it (the rest
 * never parsed) and other control bytes hide in values. Tab, CR (CRLF
 * files) and LF are the only ones allowed. Returns -1 with e set to
 * "FILE:LINE: ..." at the first other one. */
static int control_byte(const char *path, const char *text, size_t len, struct err *e)
{
    int line = 1;
    size_t col = 1;
    for (size_t i = 0; i < len; i++, col++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') {
            line++;
            col = 0;
        } else if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
            if (c == 0)
                err_set(e, "%s:%d: NUL byte at column %zu (a configuration file is text; "
                        "nothing after it would be read)", path, line, col);
            else
                err_set(e, "%s:%d: control byte 0x%02x at column %zu (only tab, CR and LF "
                        "are allowed)", path, line, c, col);
            return -1;
        }
    }
    return 0;
}

static int cmp_problem(const void *a, const void *b)
{
    const struct problem *x = a, *y = b;
    return (x->line > y->line) - (x->line < y->line);
}

/* A problem that stops the loading (the file cannot be read) as the only
 * item of `problems` (may be NULL). */
static void only_problem(struct strlist *problems, const char *msg)
{
    if (problems && (problems->v = calloc(1, sizeof *problems->v)) &&
        (problems->v[0] = strdup(msg)))
        problems->n = 1;
}

struct config *config_load_all(const char *path, struct strlist *problems, struct err *e)
{
    struct config *cfg = calloc(1, sizeof *cfg);
    struct diag d = {.file = path};
    char *text = NULL;
    if (!cfg || !(cfg->path = strdup(path)))
        goto oom;
    if (apply_defaults(&cfg_sections[0], &cfg->shipper, e) < 0)
        goto fail;
    struct err e2;
    size_t text_len = 0;
    if (read_file_n(path, 1 << 20, false, &text, &text_len, &e2) < 0) {
        err_set(e, "%s:0: %s", path, e2.msg);
        only_problem(problems, e->msg);
        goto fail;
    }
    if (control_byte(path, text, text_len, e) < 0) {
        only_problem(problems, e->msg);
        goto fail;
    }
    struct parse_state ps = {.cfg = cfg, .file = path, .d = &d};
    int lineno = 0;
    for (char *line = text; line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        if (parse_line(&ps, line, lineno) < 0)
            goto oom;
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    text = NULL;
    if (apply_env(cfg, &d) < 0 || cfg_validate(cfg, &d) < 0 || d.oom)
        goto oom;
    if (d.n) {
        /* in line order (a stable order for equal lines: insertion) */
        for (size_t i = 1; i < d.n; i++)
            for (size_t j = i; j > 0 && cmp_problem(&d.v[j - 1], &d.v[j]) > 0; j--) {
                struct problem t = d.v[j];
                d.v[j] = d.v[j - 1];
                d.v[j - 1] = t;
            }
        err_set(e, "%s", d.v[0].msg);
        if (problems) {
            problems->v = calloc(d.n, sizeof *problems->v);
            if (!problems->v)
                goto oom;
            for (size_t i = 0; i < d.n; i++) {
                problems->v[i] = d.v[i].msg;
                d.v[i].msg = NULL;
            }
            problems->n = d.n;
        }
        goto fail;
    }
    const char *w = cfg_inline_secret(cfg);
    struct stat st;
    if (w && stat(path, &st) == 0 && (st.st_mode & S_IROTH))
        snprintf(cfg->world_readable_inline, sizeof cfg->world_readable_inline, "%s", w);
    cfg_diag_free(&d);
    return cfg;
oom:
    err_set(e, "out of memory");
fail:
    cfg_diag_free(&d);
    free(text);
    config_free(cfg);
    return NULL;
}

struct config *config_load(const char *path, struct err *e)
{
    return config_load_all(path, NULL, e);
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    for (size_t si = 0; si < cfg_n_sections; si++) {
        const struct section_desc *sd = &cfg_sections[si];
        void *slot = (char *)cfg + sd->cfg_off;
        if (sd->kind == SEC_ALWAYS) {
            cfg_free_section_values(sd, slot);
        } else if (sd->kind == SEC_OPTIONAL) {
            cfg_free_section_values(sd, *(void **)slot);
            free(*(void **)slot);
        } else {
            size_t n = *(size_t *)((char *)cfg + sd->count_off);
            void **arr = *(void ***)slot;
            for (size_t i = 0; i < n; i++) {
                cfg_free_section_values(sd, arr[i]);
                free(arr[i]);
            }
            free(arr);
        }
    }
    if (cfg->has_drop_re)
        regfree(&cfg->drop_re);
    if (cfg->has_keep_re)
        regfree(&cfg->keep_re);
    free(cfg->keylines);
    free(cfg->path);
    free(cfg);
}
