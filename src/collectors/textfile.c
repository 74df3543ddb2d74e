/* textfile: local batch jobs as producers ([textfile] directory = DIR).
 *
 * Every cycle, every regular file DIR/NAME.prom (node_exporter's textfile
 * collector convention: Prometheus text format 0.0.4, no timestamps,
 * written to a temporary name and renamed into place) is parsed and its
 * samples shipped with the instance and external labels like every other
 * series. A file that does not parse, carries timestamps or is larger than
 * MAX_FILE is skipped whole and named in the log; the others still ship.
 *
 *   nexus_shipper_textfile_mtime_seconds{file}  modification time per file
 *   nexus_shipper_textfile_scrape_error         1 when any file failed
 *
 * State: the directory path, borrowed from the configuration. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "collector.h"
#include "log.h"
#include "nexus_api.h" /* coll_set */
#include "textparse.h"

#define MAX_FILE  (16u << 20)
#define MAX_FILES 1000

static const struct metric_desc m_mtime = {
    "nexus_shipper_textfile_mtime_seconds", MT_GAUGE,
    "Modification time of each textfile collector file that was read.", "seconds"};
static const struct metric_desc m_error = {
    "nexus_shipper_textfile_scrape_error", MT_GAUGE,
    "1 if a textfile collector file could not be read or parsed (named in the log).", ""};

static bool enabled(const struct config *cfg)
{
    return cfg->textfile != NULL;
}

static int init(const struct config *cfg, void **state, struct err *e)
{
    (void)e;
    *state = cfg->textfile->directory;
    return 0;
}

struct pass {
    struct series_buf *sb; /* NULL: the checking pass */
    size_t stored, skipped;
    char first_skip[300];
};

static int on_sample(void *ud, const struct tp_sample *s, struct err *e)
{
    struct pass *p = ud;
    if (s->has_ts) {
        err_set(e, "line %zu: %s has a timestamp (textfiles carry none)", s->line, s->name);
        return -1;
    }
    if (!p->sb)
        return 0;
    struct metric_desc d = {s->name, tp_metric_type(s->type), s->help, ""};
    const char *suffix = NULL;
    if (s->type == TP_HISTOGRAM && *s->suffix) {
        d.name = s->family;
        suffix = s->suffix;
    }
    struct err se = {{0}};
    if (sb_setv(p->sb, &d, suffix, s->value, s->labels, s->n_labels, &se) < 0) {
        if (!p->skipped++)
            snprintf(p->first_skip, sizeof p->first_skip, "line %zu: %s", s->line, se.msg);
    } else {
        p->stored++;
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Ships one file; false when it failed (logged, nothing of it shipped). */
static bool one_file(const char *dir, const char *name, struct collect_ctx *ctx)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    char *data = NULL;
    struct err e = {{0}};
    bool ok = false;
    char key[300];
    snprintf(key, sizeof key, "textfile-%s", name);
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
        err_set(&e, "not a regular file");
        goto out;
    }
    if (read_file(path, MAX_FILE, false, &data, &e) < 0)
        goto out;
    struct pass check = {0};
    struct tp_limits lim = {.max_samples = 200000};
    if (tp_parse(data, strlen(data), &lim, on_sample, &check, &e) < 0)
        goto out;
    struct pass store = {.sb = ctx->sb};
    if (tp_parse(data, strlen(data), &lim, on_sample, &store, &e) < 0)
        goto out;
    if (store.skipped) {
        err_set(&e, "%zu of %zu samples refused (first: %s)", store.skipped,
                store.skipped + store.stored, store.first_skip);
        goto out; /* what was stored ships; the file is reported failed */
    }
    ok = true;
out:
    if (ok || data) /* read: its time is known */
        coll_set(ctx, &m_mtime, (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9,
                 "file", name, NULL);
    if (ok)
        log_resolved(key, "textfile %s: parses again", path);
    else
        log_complain(key, "textfile %s: skipped: %s", path, e.msg);
    free(data);
    return ok;
}

static int collect(void *state, struct collect_ctx *ctx)
{
    const char *dir = state;
    DIR *d = opendir(dir);
    if (!d) {
        err_set(ctx->e, "cannot read directory %s: %s", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    bool error = false;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".prom") != 0)
            continue;
        if (n >= MAX_FILES) {
            log_complain("textfile-many", "textfile %s: more than %d *.prom files, the rest skipped",
                         dir, MAX_FILES);
            error = true;
            break;
        }
        char **nn = realloc(names, (n + 1) * sizeof *nn);
        if (!nn || !(nn[n] = strdup(de->d_name))) {
            names = nn ? nn : names;
            closedir(d);
            strv_free(names, n);
            err_set(ctx->e, "out of memory");
            return -1;
        }
        names = nn;
        n++;
    }
    closedir(d);
    if (n) /* an empty directory has no array: qsort(NULL) is undefined */
        qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++)
        if (!one_file(dir, names[i], ctx))
            error = true;
    strv_free(names, n);
    return coll_set(ctx, &m_error, error ? 1 : 0, NULL);
}

const struct collector collector_textfile = {
    .name = "textfile",
    .enabled = enabled,
    .init = init,
    .collect = collect,
    .destroy = NULL,
};
