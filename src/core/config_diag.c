/* config_diag: the problems found while loading a configuration, each
 * with where (file line, or the environment), and the line of every key
 * set from the file. Contract: config_table.h (internal), config.h
 * (config_key_line). */
#include "config_table.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cfg_keyline {
    const void *sec;        /* the section instance */
    const struct key_desc *k; /* NULL: the section header */
    int line;
    bool bad; /* its value was refused (reported): no further checks of it */
};

/* line > 0: "FILE:LINE: msg"; line == 0: "FILE: msg"; line < 0: msg as is
 * (environment), reported after the file's problems. */
void cfg_report(struct diag *d, int line, const char *fmt, ...)
{
    char m[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    struct buf b;
    buf_init(&b, 0);
    if (line > 0)
        buf_printf(&b, "%s:%d: %s", d->file, line, m);
    else if (line == 0)
        buf_printf(&b, "%s: %s", d->file, m);
    else
        buf_puts(&b, m);
    struct problem *nv = array_grow(d->v, &d->cap, d->n, sizeof *nv, 8);
    if (!nv) {
        buf_free(&b);
        d->oom = true;
        return;
    }
    d->v = nv;
    const char *t = buf_cstr(&b);
    char *msg = t ? strdup(t) : NULL;
    buf_free(&b);
    if (!msg) {
        d->oom = true;
        return;
    }
    d->v[d->n++] = (struct problem){line < 0 ? INT_MAX : line, msg};
}

void cfg_diag_free(struct diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].msg);
    free(d->v);
}

int cfg_keyline_set(struct config *cfg, const void *sec, const struct key_desc *k, int line)
{
    for (size_t i = 0; i < cfg->n_keylines; i++)
        if (cfg->keylines[i].sec == sec && cfg->keylines[i].k == k) {
            cfg->keylines[i].line = line;
            return 0;
        }
    struct cfg_keyline *nv = array_grow(cfg->keylines, &cfg->cap_keylines, cfg->n_keylines,
                                        sizeof *nv, 32);
    if (!nv)
        return -1;
    cfg->keylines = nv;
    cfg->keylines[cfg->n_keylines++] = (struct cfg_keyline){sec, k, line, false};
    return 0;
}

void cfg_keyline_bad(struct config *cfg, const void *sec, const struct key_desc *k)
{
    for (size_t i = 0; i < cfg->n_keylines; i++)
        if (cfg->keylines[i].sec == sec && cfg->keylines[i].k == k)
            cfg->keylines[i].bad = true;
}

bool cfg_key_bad(const struct config *cfg, const void *sec, const struct key_desc *k)
{
    for (size_t i = 0; i < cfg->n_keylines; i++)
        if (cfg->keylines[i].sec == sec && cfg->keylines[i].k == k)
            return cfg->keylines[i].bad;
    return false;
}

int cfg_keyline_get(const struct config *cfg, const void *sec, const struct key_desc *k)
{
    for (size_t i = 0; i < cfg->n_keylines; i++)
        if (cfg->keylines[i].sec == sec && cfg->keylines[i].k == k)
            return cfg->keylines[i].line;
    return 0;
}

int config_key_line(const struct config *c, const void *sec, const char *key)
{
    for (size_t i = 0; i < c->n_keylines; i++)
        if (c->keylines[i].sec == sec && c->keylines[i].k &&
            strcmp(c->keylines[i].k->key, key) == 0)
            return c->keylines[i].line;
    return 0;
}

void cfg_upper_copy(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < n; i++)
        dst[i] = (char)(src[i] == '-' ? '_' : toupper((unsigned char)src[i]));
    dst[i] = '\0';
}
