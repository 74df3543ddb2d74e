/* selector: see selector.h. */
#include "selector.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mop { M_EQ, M_NE, M_RE, M_NRE };

struct matcher {
    char *name;
    char *value;
    enum mop op;
    regex_t re; /* M_RE / M_NRE */
};

struct selector {
    struct matcher *m;
    size_t n;
};

struct relabel_selectors {
    struct selector *s;
    size_t n;
};

/* ---- selectors ------------------------------------------------------------ */

static void matcher_free(struct matcher *m)
{
    free(m->name);
    free(m->value);
    if (m->op == M_RE || m->op == M_NRE)
        regfree(&m->re);
}

void relabel_selectors_free(struct relabel_selectors *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        for (size_t j = 0; j < s->s[i].n; j++)
            matcher_free(&s->s[i].m[j]);
        free(s->s[i].m);
    }
    free(s->s);
    free(s);
}

struct lexer {
    const char *text, *p;
    struct err *e;
};

static void skip_ws(struct lexer *lx)
{
    while (*lx->p && isspace((unsigned char)*lx->p))
        lx->p++;
}

static int fail(struct lexer *lx, const char *what)
{
    if (*lx->p)
        err_set(lx->e, "%s at character %zu of \"%s\"", what, (size_t)(lx->p - lx->text) + 1,
                lx->text);
    else
        err_set(lx->e, "%s at the end of \"%s\"", what, lx->text);
    return -1;
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* (metric names may hold ':'; label names not) */
static char *ident(struct lexer *lx, bool colon)
{
    const char *s = lx->p;
    if (!(isalpha((unsigned char)*s) || *s == '_' || (colon && *s == ':')))
        return NULL;
    while (isalnum((unsigned char)*lx->p) || *lx->p == '_' || (colon && *lx->p == ':'))
        lx->p++;
    return strndup(s, (size_t)(lx->p - s));
}

/* "..." or '...' with Go escapes \\ \" \' \n \t, or `raw` */
static int quoted(struct lexer *lx, char **out)
{
    char q = *lx->p;
    if (q != '"' && q != '\'' && q != '`')
        return fail(lx, "expected a quoted value");
    const char *start = lx->p++;
    struct buf b;
    buf_init(&b, 64 * 1024);
    while (*lx->p && *lx->p != q) {
        char c = *lx->p++;
        if (c == '\\' && q != '`') {
            c = *lx->p++;
            if (c == 'n')
                c = '\n';
            else if (c == 't')
                c = '\t';
            else if (c != '\\' && c != '"' && c != '\'') {
                lx->p--;
                buf_free(&b);
                return fail(lx, "unknown escape");
            }
        }
        if (buf_append(&b, &c, 1) < 0) {
            buf_free(&b);
            return fail(lx, "value too long or out of memory");
        }
    }
    if (*lx->p != q) {
        lx->p = start;
        buf_free(&b);
        return fail(lx, "unterminated quoted value");
    }
    lx->p++;
    const char *s = buf_cstr(&b);
    *out = s ? strdup(s) : NULL;
    buf_free(&b);
    if (!*out) {
        err_set(lx->e, "out of memory");
        return -1;
    }
    return 0;
}

static int add_matcher(struct selector *sel, struct lexer *lx, char *name, enum mop op, char *value)
{
    struct matcher *nm = name && value ? realloc(sel->m, (sel->n + 1) * sizeof *nm) : NULL;
    if (!nm) {
        free(name);
        free(value);
        err_set(lx->e, "out of memory");
        return -1;
    }
    sel->m = nm;
    struct matcher *m = &sel->m[sel->n];
    *m = (struct matcher){.name = name, .value = value, .op = op};
    if (op == M_RE || op == M_NRE) {
        size_t l = strlen(value);
        char *anch = malloc(l + 5);
        if (!anch) {
            free(name);
            free(value);
            err_set(lx->e, "out of memory");
            return -1;
        }
        snprintf(anch, l + 5, "^(%s)$", value);
        int rc = regcomp(&m->re, anch, REG_EXTENDED | REG_NOSUB);
        free(anch);
        if (rc) {
            char msg[160];
            regerror(rc, &m->re, msg, sizeof msg);
            err_set(lx->e, "bad regular expression \"%s\" for label %s: %s", value, name, msg);
            free(name);
            free(value);
            return -1;
        }
    }
    sel->n++;
    return 0;
}

static int parse_selector(struct lexer *lx, struct selector *sel)
{
    char *metric = ident(lx, true);
    if (metric && add_matcher(sel, lx, strdup("__name__"), M_EQ, metric) < 0)
        return -1;
    skip_ws(lx);
    if (*lx->p != '{') {
        if (metric)
            return 0;
        return fail(lx, "expected a selector such as {label=\"value\"}");
    }
    lx->p++;
    for (;;) {
        skip_ws(lx);
        if (*lx->p == '}') {
            lx->p++;
            break;
        }
        char *name = ident(lx, false);
        if (!name)
            return fail(lx, "expected a label name");
        skip_ws(lx);
        enum mop op;
        if (lx->p[0] == '=' && lx->p[1] == '~') {
            op = M_RE;
            lx->p += 2;
        } else if (lx->p[0] == '!' && lx->p[1] == '~') {
            op = M_NRE;
            lx->p += 2;
        } else if (lx->p[0] == '!' && lx->p[1] == '=') {
            op = M_NE;
            lx->p += 2;
        } else if (lx->p[0] == '=') {
            op = M_EQ;
            lx->p += 1;
        } else {
            free(name);
            return fail(lx, "expected =, !=, =~ or !~");
        }
        skip_ws(lx);
        char *value = NULL;
        if (quoted(lx, &value) < 0) {
            free(name);
            return -1;
        }
        if (add_matcher(sel, lx, name, op, value) < 0)
            return -1;
        skip_ws(lx);
        if (*lx->p == ',') {
            lx->p++;
            continue;
        }
        if (*lx->p != '}')
            return fail(lx, "expected ',' or '}'");
    }
    if (sel->n == 0)
        return fail(lx, "empty selector {} (it would match every series)");
    return 0;
}

int relabel_selectors_parse(const char *text, struct relabel_selectors **out, struct err *e)
{
    struct relabel_selectors *s = calloc(1, sizeof *s);
    struct lexer lx = {.text = text, .p = text, .e = e};
    *out = NULL;
    if (!s) {
        err_set(e, "out of memory");
        return -1;
    }
    for (;;) {
        skip_ws(&lx);
        if (!*lx.p)
            break;
        struct selector *ns = realloc(s->s, (s->n + 1) * sizeof *ns);
        if (!ns) {
            err_set(e, "out of memory");
            goto fail;
        }
        s->s = ns;
        s->s[s->n] = (struct selector){0};
        s->n++;
        if (parse_selector(&lx, &s->s[s->n - 1]) < 0)
            goto fail;
        skip_ws(&lx);
        if (*lx.p == ',') /* selectors may be separated by commas or blanks */
            lx.p++;
        else if (strncmp(lx.p, "or", 2) == 0 && !isalnum((unsigned char)lx.p[2]))
            lx.p += 2;
    }
    if (s->n == 0) {
        err_set(e, "no selector in \"%s\"", text);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    relabel_selectors_free(s);
    return -1;
}

static const char *label_value(const char *const *labels, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(labels[2 * i], name) == 0)
            return labels[2 * i + 1] ? labels[2 * i + 1] : "";
    return "";
}

bool relabel_selectors_match(const struct relabel_selectors *s, const char *const *labels, size_t n)
{
    for (size_t i = 0; s && i < s->n; i++) {
        bool all = true;
        for (size_t j = 0; all && j < s->s[i].n; j++) {
            const struct matcher *m = &s->s[i].m[j];
            const char *v = label_value(labels, n, m->name);
            switch (m->op) {
            case M_EQ:
                all = strcmp(v, m->value) == 0;
                break;
            case M_NE:
                all = strcmp(v, m->value) != 0;
                break;
            case M_RE:
                all = regexec(&m->re, v, 0, NULL, 0) == 0;
                break;
            case M_NRE:
                all = regexec(&m->re, v, 0, NULL, 0) != 0;
                break;
            }
        }
        if (all)
            return true;
    }
    return false;
}

