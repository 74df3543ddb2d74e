/* config_check: `check-config`'s host checks (contract: config.h,
 * config_check_paths): directories that must be creatable and writable,
 * files that must be writable, as the user running it. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* `dir` exists as a writable directory, or can be created: its nearest
 * existing ancestor is a writable directory. 0, or -1 with e. */
static int check_dir(const char *dir, struct err *e)
{
    char p[PATH_MAX];
    if (!*dir || snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) {
        err_set(e, "bad directory name \"%s\"", dir);
        return -1;
    }
    for (;;) {
        struct stat st;
        if (stat(p, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                err_set(e, "%s is not a directory", p);
                return -1;
            }
            if (access(p, W_OK | X_OK) < 0) {
                err_set(e, "%s%s%s is not writable by this user: %s", strcmp(p, dir) ? dir : "",
                        strcmp(p, dir) ? " cannot be created: " : "", p, strerror(errno));
                return -1;
            }
            return 0;
        }
        if (errno != ENOENT) {
            err_set(e, "cannot use %s: %s", p, strerror(errno));
            return -1;
        }
        char *sl = strrchr(p, '/');
        if (!sl) { /* relative: the working directory */
            snprintf(p, sizeof p, ".");
        } else if (sl == p) {
            p[1] = '\0';
        } else {
            *sl = '\0';
        }
    }
}

static int check_file_writable(const char *path, struct err *e)
{
    if (access(path, F_OK) == 0) {
        if (access(path, W_OK) < 0) {
            err_set(e, "cannot write %s: %s", path, strerror(errno));
            return -1;
        }
        return 0;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *sl = strrchr(dir, '/');
    if (!sl)
        snprintf(dir, sizeof dir, ".");
    else if (sl == dir)
        dir[1] = '\0';
    else
        *sl = '\0';
    return check_dir(dir, e);
}

static void add_problem(struct strlist *l, size_t *n, const struct config *c, const void *sec,
                        const char *key, const char *msg)
{
    char m[1024];
    int line = config_key_line(c, sec, key);
    if (line)
        snprintf(m, sizeof m, "%s:%d: %s: %s", c->path, line, key, msg);
    else
        snprintf(m, sizeof m, "%s: [shipper] %s (default or environment): %s", c->path, key, msg);
    char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
    if (!nv)
        return;
    l->v = nv;
    if ((l->v[l->n] = strdup(m))) {
        l->n++;
        (*n)++;
    }
}

size_t config_check_paths(const struct config *c, struct strlist *problems)
{
    size_t n = 0;
    struct err e;
    const struct cfg_shipper *sh = &c->shipper;
    if (!sh->spool_only || sh->spool_dir[0])
        if (check_dir(sh->spool_dir, &e) < 0)
            add_problem(problems, &n, c, sh, "spool_dir", e.msg);
    if (check_dir(sh->state_dir, &e) < 0)
        add_problem(problems, &n, c, sh, "state_dir", e.msg);
    if (sh->log_file[0] && check_file_writable(sh->log_file, &e) < 0)
        add_problem(problems, &n, c, sh, "log_file", e.msg);
    return n;
}
