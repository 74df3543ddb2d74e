/* config_validate: the checks across keys once a file is parsed (required
 * keys, secrets, files that must be readable, targets' relabel rules),
 * each problem reported at the line of its key. Contract: config_table.h
 * (cfg_validate). */
#include "config_table.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* The line of `key` (NULL: the section header) of section instance sec,
 * else of the section header, 0 when neither came from the file. */
static int where(const struct config *cfg, const void *sec, const char *key)
{
    int l = key ? config_key_line(cfg, sec, key) : 0;
    return l ? l : cfg_keyline_get(cfg, sec, NULL);
}

/* A secret (a password, a token) is one line of printable bytes once its
 * trailing white space is trimmed: a NUL would cut it and a CR or LF would
 * end an HTTP header early. */
static int secret_bytes(const char *path, const char *s, size_t len, struct err *e)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            err_set(e, "%s: %s at byte %zu (a secret file holds one line of text)", path,
                    c == 0 ? "NUL byte" : c == '\n' || c == '\r' ? "line break" : "control byte",
                    i + 1);
            return -1;
        }
    }
    return 0;
}

/* "[remote_write NAME]" / "[nexus]" */
static void section_title(const struct section_desc *sd, const void *sec, char *out, size_t n)
{
    const char *nm = sd->kind == SEC_NAMED ? ((const struct cfg_remote_write *)sec)->name : "";
    snprintf(out, n, "[%s%s%s]", sd->name, *nm ? " " : "", nm);
}

/* A readable regular file (or a symlink to one): 0, else -1 with e. */
static int check_readable(const char *path, struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        err_set(e, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    int bad = fstat(fd, &st) < 0 || S_ISDIR(st.st_mode);
    close(fd);
    if (bad) {
        err_set(e, "%s is a directory, not a file", path);
        return -1;
    }
    return 0;
}

static int validate_section(struct config *cfg, struct diag *d, const struct section_desc *sd,
                            void *sec)
{
    int line = cfg_keyline_get(cfg, sec, NULL);
    char title[128];
    section_title(sd, sec, title, sizeof title);
    for (size_t i = 0; i < cfg_n_keys; i++) {
        const struct key_desc *k = &cfg_keys[i];
        if (strcmp(k->section, sd->name) != 0 || cfg_key_bad(cfg, sec, k))
            continue;
        int kline = cfg_keyline_get(cfg, sec, k);
        char *sv = (k->type == T_STRING || k->type == T_URL || k->type == T_FILE ||
                    k->type == T_PATH)
                       ? *(char **)cfg_field(sec, k->off)
                       : NULL;
        bool empty_list = (k->type == T_LIST || k->type == T_LABELS) &&
                          ((struct strlist *)cfg_field(sec, k->off))->n == 0;
        bool is_str = sv != NULL || k->type == T_STRING || k->type == T_URL ||
                      k->type == T_FILE || k->type == T_PATH;
        bool missing = is_str ? (!sv || !*sv) : empty_list;
        if ((k->flags & REQUIRED) && missing) {
            if (kline || line) {
                cfg_report(d, kline ? kline : line, "section [%s] needs \"%s\"", sd->name, k->key);
            } else {
                char us[64], un[128], uk[64];
                cfg_upper_copy(us, sizeof us, sd->name);
                cfg_upper_copy(uk, sizeof uk, k->key);
                const char *nm =
                    sd->kind == SEC_NAMED ? ((struct cfg_remote_write *)sec)->name : "";
                cfg_upper_copy(un, sizeof un, nm);
                cfg_report(d, -1, "environment: section [%s%s%s] needs NEXUS_SHIPPER_%s_%s%s%s",
                       sd->name, *nm ? " " : "", nm, us, un, *nm ? "_" : "", uk);
            }
            continue;
        }
        if ((k->type == T_FILE || k->type == T_PATH) && sv && *sv) {
            struct err e2;
            char *content = NULL;
            int rc;
            if (k->type == T_FILE) {
                size_t clen = 0;
                rc = read_file_n(sv, 64 * 1024, true, &content, &clen, &e2);
                if (rc == 0 && secret_bytes(sv, content, clen, &e2) < 0) {
                    free(content);
                    content = NULL;
                    rc = -1;
                }
            } else {
                rc = check_readable(sv, &e2);
            }
            if (rc < 0) {
                if (kline || line)
                    cfg_report(d, kline ? kline : line, "%s: %s", k->key, e2.msg);
                else
                    cfg_report(d, -1, "environment: %s %s: %s", title, k->key, e2.msg);
                continue;
            }
            if (k->type == T_PATH)
                continue;
            free(*(char **)cfg_field(sec, k->aux_off));
            *(char **)cfg_field(sec, k->aux_off) = content;
            struct stat st;
            if (stat(sv, &st) == 0 && (st.st_mode & S_IROTH))
                cfg->world_readable_secrets = true;
        }
    }
    return d->oom ? -1 : 0;
}

/* A URL with a password in its user info (scheme://user:password@host). */
static bool url_has_password(const char *url)
{
    const char *a = url ? strstr(url, "://") : NULL;
    if (!a)
        return false;
    a += 3;
    size_t n = strcspn(a, "/?#");
    const char *at = memchr(a, '@', n);
    return at && memchr(a, ':', (size_t)(at - a));
}

/* Where the configuration holds a secret itself rather than through a
 * *_file key, or NULL. */
const char *cfg_inline_secret(const struct config *cfg)
{
    static const char *const words[] = {"authorization", "token", "secret", "password", "key"};
    for (size_t i = 0; i < cfg->n_rw; i++) {
        const struct strlist *h = &cfg->rw[i]->headers;
        for (size_t k = 0; k < h->n; k++) {
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(h->v[k], ":"), h->v[k]);
            for (size_t w = 0; w < NS_ARRAY_LEN(words); w++)
                if (strcasestr(name, words[w]))
                    return "a [remote_write] header";
        }
        if (url_has_password(cfg->rw[i]->url))
            return "a [remote_write] url";
    }
    if (cfg->pushgateway && url_has_password(cfg->pushgateway->url))
        return "the [pushgateway] url";
    if (cfg->nexus && url_has_password(cfg->nexus->url))
        return "the [nexus] url";
    if (cfg->gitlab && url_has_password(cfg->gitlab->url))
        return "the [gitlab] url";
    if (cfg->database && cfg->database->conninfo &&
        (strcasestr(cfg->database->conninfo, "password") ||
         url_has_password(cfg->database->conninfo)))
        return "the [database] conninfo";
    return NULL;
}

/* Merges a target's `header` lines into `headers` (its five filter keys
 * were checked when set; the sender builds the relabel). -1 only when out
 * of memory. */
static int finish_remote_write(struct config *cfg, struct diag *d, struct cfg_remote_write *rw)
{
    for (size_t h = 0; h < rw->header_lines.n; h++) {
        char **nv = realloc(rw->headers.v, (rw->headers.n + 1) * sizeof *nv);
        if (!nv)
            return -1;
        rw->headers.v = nv;
        rw->headers.v[rw->headers.n++] = rw->header_lines.v[h];
        rw->header_lines.v[h] = NULL;
    }
    strv_free(rw->header_lines.v, rw->header_lines.n);
    rw->header_lines.v = NULL;
    rw->header_lines.n = 0;
    return 0;
}

/* Every check across keys; each problem is reported at the line of the key
 * concerned. -1 only when out of memory. */
int cfg_validate(struct config *cfg, struct diag *d)
{
    for (size_t si = 0; si < cfg_n_sections; si++) {
        const struct section_desc *sd = &cfg_sections[si];
        void *slot = (char *)cfg + sd->cfg_off;
        if (sd->kind == SEC_ALWAYS) {
            if (validate_section(cfg, d, sd, slot) < 0)
                return -1;
        } else if (sd->kind == SEC_OPTIONAL) {
            if (*(void **)slot && validate_section(cfg, d, sd, *(void **)slot) < 0)
                return -1;
        } else {
            size_t n = *(size_t *)((char *)cfg + sd->count_off);
            for (size_t i = 0; i < n; i++)
                if (validate_section(cfg, d, sd, (*(void ***)slot)[i]) < 0)
                    return -1;
        }
    }
    struct cfg_shipper *sh = &cfg->shipper;
    if (sh->interval_ms < 1000)
        cfg_report(d, where(cfg, sh, "interval"), "[shipper] interval must be at least 1s");
    if (sh->archive_key_file && sh->archive_key_file[0] &&
        (!sh->archive_key || strlen(sh->archive_key) < 16))
        cfg_report(d, where(cfg, sh, "archive_key_file"),
               "[shipper] archive_key_file %s holds fewer than 16 bytes of key",
               sh->archive_key_file);
    for (size_t i = 0; i < cfg->n_rw; i++) {
        struct cfg_remote_write *rw = cfg->rw[i];
        if (rw->max_samples_per_send < 1)
            cfg_report(d, where(cfg, rw, "max_samples_per_send"),
                   "max_samples_per_send must be at least 1");
        if (rw->min_backoff_ms > rw->max_backoff_ms)
            cfg_report(d, where(cfg, rw, "min_backoff"), "min_backoff is larger than max_backoff");
        if ((rw->cert_file[0] != 0) != (rw->key_file[0] != 0))
            cfg_report(d, where(cfg, rw, rw->cert_file[0] ? "cert_file" : "key_file"),
                   "cert_file and key_file go together");
        if (rw->basic_auth_user[0] && rw->bearer_token_file[0])
            cfg_report(d, where(cfg, rw, "bearer_token_file"),
                   "basic_auth_user and bearer_token_file exclude each other");
        if (rw->bearer_token && strpbrk(rw->bearer_token, "\r\n")) /* another header */
            cfg_report(d, where(cfg, rw, "bearer_token_file"),
                   "bearer_token_file %s: the token holds a line break", rw->bearer_token_file);
        for (size_t h = 0; h < rw->headers.n; h++)
            if (!strchr(rw->headers.v[h], ':'))
                cfg_report(d, where(cfg, rw, "headers"), "header \"%s\" is not `Name: value`",
                       rw->headers.v[h]);
        if (finish_remote_write(cfg, d, rw) < 0)
            return -1;
    }
    if (!sh->instance || !*sh->instance) {
        char host[256] = "localhost";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        free(sh->instance);
        if (!(sh->instance = strdup(host)))
            return -1;
    }
    /* the values were checked when set */
    if (sh->drop_metrics && sh->drop_metrics[0] &&
        regcomp(&cfg->drop_re, sh->drop_metrics, REG_EXTENDED | REG_NOSUB) == 0)
        cfg->has_drop_re = true;
    if (sh->keep_metrics && sh->keep_metrics[0] &&
        regcomp(&cfg->keep_re, sh->keep_metrics, REG_EXTENDED | REG_NOSUB) == 0)
        cfg->has_keep_re = true;
    return d->oom ? -1 : 0;
}
