/* The apply step of a cleanup run (cleanup_int.h: cl_apply): the DELETEs,
 * `concurrency` at a time, then the optional garbage collection commands
 * (argv, no shell; proc.h) with du of storage_path before and after. */
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup_int.h"
#include "log.h"
#include "proc.h"
#include "progress.h"

/* post_gc_command after a stop: it may make the registry writable again */
#define POST_GC_STOPPED_MS 10000

/* The DELETEs of one pass, `concurrency` at a time; the next starts only
 * while no 405 was seen and no signal came. */
struct del_pass {
    struct reg *g;
    struct cleanup_result *res;
    const volatile sig_atomic_t *stop;
    int pass;
    size_t r, i; /* cursor: next repository, manifest */
    bool disabled;
    struct progress *pg; /* manifests answered, over the three passes */
    uint64_t *pg_done;
};

static void start_next_delete(struct del_pass *d);

/* DELETE of res->repos[q->a].m[q->b]: 202 deleted, 404 already gone,
 * 405 deletion disabled (the run stops), anything else an error. */
static void cb_delete(struct rm *c, struct rm_req *q)
{
    (void)c;
    struct del_pass *d = q->ud;
    struct cleanup_result *res = d->res;
    struct cl_repo *rp = &res->repos[q->a];
    struct cl_manifest *m = &rp->m[q->b];
    if (q->status == 202 || q->status == 200) {
        snprintf(m->result, sizeof m->result, "deleted");
        res->manifests_deleted++;
        log_info("%s@%s: deleted", rp->name, m->digest);
    } else if (q->status == 404) {
        snprintf(m->result, sizeof m->result, "already gone");
        res->manifests_gone++;
        log_info("%s@%s: already gone (404 on DELETE: deleted since the scan)", rp->name,
                 m->digest);
    } else if (q->status == 405) {
        snprintf(m->result, sizeof m->result, "delete disabled");
        d->disabled = true;
    } else {
        struct err e = {{0}};
        request_error(q, &e);
        if (q->status)
            snprintf(m->result, sizeof m->result, "error: HTTP %ld", q->status);
        else
            snprintf(m->result, sizeof m->result, "error: no answer");
        log_error("cleanup: %s", e.msg);
        res->errors++;
        res->status = CL_FAILED;
    }
    if (q->status == 202 || q->status == 200 || q->status == 404)
        for (size_t t = 0; t < rp->n_tags; t++)
            if (rp->tags[t].digest && rp->tags[t].reason == CL_REASON_DELETE &&
                strcmp(rp->tags[t].digest, m->digest) == 0)
                res->tags_deleted++;
    progress_update(d->pg, ++*d->pg_done, NULL);
    start_next_delete(d);
}

static void start_next_delete(struct del_pass *d)
{
    struct cleanup_result *res = d->res;
    if (d->disabled || (d->stop && *d->stop))
        return;
    for (; d->r < res->n_repos; d->r++, d->i = 0) {
        struct cl_repo *rp = &res->repos[d->r];
        for (; d->i < rp->n_m; d->i++) {
            struct cl_manifest *m = &rp->m[d->i];
            int want = m->child_only ? 2 : m->is_index ? 0 : 1;
            if (!m->delete || want != d->pass)
                continue;
            struct buf url, hint;
            buf_init(&url, 8192);
            buf_init(&hint, 1024);
            buf_printf(&url, "%s/v2/%s/manifests/%s", d->g->base, rp->name, m->digest);
            buf_printf(&hint, "repository:%s:delete", rp->name);
            int rc = buf_cstr(&url) && buf_cstr(&hint)
                         ? rm_submit(d->g->rm, "DELETE", url.data, hint.data, NULL, 0, cb_delete, d,
                                     d->r, d->i)
                         : -1;
            buf_free(&url);
            buf_free(&hint);
            if (rc < 0) {
                snprintf(m->result, sizeof m->result, "error: out of memory");
                res->errors++;
                res->status = CL_FAILED;
            }
            d->i++;
            return;
        }
    }
}

/* Deletes the plan: indexes first, then images, then the children of
 * deleted indexes. Returns -2 when the registry refuses deletes (405). */
int delete_plan(struct reg *g, struct cleanup_result *res, int64_t concurrency,
                const volatile sig_atomic_t *stop, FILE *progress)
{
    uint64_t done = 0;
    struct progress *pg =
        progress_new(progress, "cleanup: deleting", "manifests", res->manifests_to_delete);
    int rc = 0;
    for (int pass = 0; pass < 3 && !rc; pass++) {
        struct del_pass d = {
            .g = g, .res = res, .stop = stop, .pass = pass, .pg = pg, .pg_done = &done};
        for (int64_t k = 0; k < (concurrency > 0 ? concurrency : 1); k++)
            start_next_delete(&d);
        rm_run(g->rm);
        if (d.disabled)
            rc = -2;
        else if (stop && *stop)
            rc = -1;
    }
    progress_done(pg, rc == -2 ? "deletes refused (HTTP 405)" : rc ? "stopped" : NULL);
    return rc;
}

/* Test hook (integration tests only): with NS_TEST_CLEANUP_PAUSE=PATH set,
 * a real run creates PATH.ready after its plan and waits (at most 120 s)
 * until PATH exists, so a test can change the registry between the plan
 * and the deletes (a manifest deleted behind the cleanup's back). */
static void test_pause(const volatile sig_atomic_t *stop)
{
    const char *p = getenv("NS_TEST_CLEANUP_PAUSE");
    if (!p || !*p)
        return;
    char ready[4200];
    snprintf(ready, sizeof ready, "%s.ready", p);
    int fd = open(ready, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    log_info("cleanup: NS_TEST_CLEANUP_PAUSE: waiting for %s", p);
    int64_t until = mono_ms() + 120000;
    while (access(p, F_OK) != 0 && mono_ms() < until && !(stop && *stop))
        sleep_until_mono(mono_ms() + 50);
}

/* Splits a command line on blanks and substitutes {container}, {config}
 * and {storage} inside each word. No shell, no quoting. */
static char **build_argv(const char *cmd, const struct cl_run *run, size_t *argc)
{
    char **items = NULL;
    size_t n = 0;
    const char *p = cmd;
    *argc = 0;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        size_t l = strcspn(p, " \t");
        struct buf w;
        buf_init(&w, 8192);
        for (size_t i = 0; i < l;) {
            static const char *const names[] = {"{container}", "{config}", "{storage}"};
            const char *vals[] = {cl_opt(run->ov->container, run->cc->container),
                                  cl_opt(run->ov->registry_config, run->cc->registry_config),
                                  cl_opt(run->ov->storage_path, run->cc->storage_path)};
            bool done = false;
            for (size_t k = 0; k < 3 && !done; k++) {
                size_t nl = strlen(names[k]);
                if (l - i >= nl && strncmp(p + i, names[k], nl) == 0) {
                    buf_puts(&w, vals[k] ? vals[k] : "");
                    i += nl;
                    done = true;
                }
            }
            if (!done)
                buf_append(&w, p + i++, 1);
        }
        const char *s = buf_cstr(&w);
        char **nv = s ? realloc(items, (n + 2) * sizeof *nv) : NULL;
        if (!nv || !(nv[n] = strdup(s))) {
            buf_free(&w);
            if (nv)
                items = nv;
            strv_free(items, n);
            return NULL;
        }
        items = nv;
        items[++n] = NULL;
        buf_free(&w);
        p += l;
    }
    *argc = n;
    return items;
}

struct cmd_out {
    const char *what;
    char *summary;
    size_t sn;
    char line[2048];
    size_t len;
};

static void cmd_line(struct cmd_out *c)
{
    if (!c->len)
        return;
    c->line[c->len] = '\0';
    c->len = 0;
    log_info("cleanup: %s: %s", c->what, c->line);
    if (c->summary && strstr(c->line, "eligible for deletion"))
        snprintf(c->summary, c->sn, "%s", c->line);
}

/* stdout and stderr share one line buffer: the GC tools write one stream */
static void cmd_output(void *ctx, int stream, const char *p, size_t n)
{
    struct cmd_out *c = ctx;
    (void)stream;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' || p[i] == '\r') {
            cmd_line(c);
        } else {
            if (c->len == sizeof c->line - 1)
                cmd_line(c);
            c->line[c->len++] = p[i];
        }
    }
}

/* Runs a command (execvp, no shell; proc.h: own process group, no
 * inherited descriptors), logging its output line by line, for at most
 * `timeout_ms` (0 = no limit) and until *stop (may be NULL) is set: then
 * the group gets SIGTERM and, a second later, SIGKILL. Returns the exit
 * status, 128 + signal when a signal ended it, -1 if it could not run.
 * `summary` gets the last line mentioning "eligible for deletion". */
static int run_command(const char *what, const char *cmd, const struct cl_run *run, char *summary,
                       size_t sn, int64_t timeout_ms, const volatile sig_atomic_t *stop)
{
    size_t argc;
    char **argv = build_argv(cmd, run, &argc);
    if (!argv || !argc) {
        strv_free(argv, argc);
        log_error("cleanup: %s: empty command", what);
        return -1;
    }
    log_info("cleanup: %s: running %s", what, cmd);
    struct cmd_out co = {.what = what, .summary = summary, .sn = sn};
    struct proc_spec ps = {.deadline = timeout_ms > 0 ? proc_mono_ms() + timeout_ms : 0,
                           .grace_ms = 1000,
                           .cancel = stop,
                           .on_output = cmd_output,
                           .ctx = &co};
    struct proc_result pr;
    int rc = proc_run(argv, &ps, &pr);
    cmd_line(&co);
    int code;
    if (rc < 0) {
        log_error("cleanup: %s: cannot run %s: %s", what, argv[0], strerror(pr.exec_errno));
        code = -1;
    } else {
        code = pr.term_signal ? 128 + pr.term_signal : pr.exit_status;
        if (pr.timed_out)
            log_error("cleanup: %s: still running after %.1f s: stopped (SIGTERM, then SIGKILL "
                      "to its process group)",
                      what, (double)timeout_ms / 1000.0);
        else if (pr.cancelled)
            log_error("cleanup: %s: stopped by a signal", what);
        if (code != 0)
            log_error("cleanup: %s exited with status %d", what, code);
    }
    strv_free(argv, argc);
    return code;
}

static int64_t du_sum;
static int du_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)p;
    (void)ftw;
    if (flag == FTW_F || flag == FTW_D || flag == FTW_DP || flag == FTW_SL)
        du_sum += st->st_size;
    return 0;
}

int64_t cl_du(const char *path)
{
    /* nftw has no user pointer: du_sum is only touched here, under this lock */
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mu);
    du_sum = 0;
    int rc = nftw(path, du_cb, 32, FTW_PHYS);
    int64_t v = rc == 0 ? du_sum : -1;
    pthread_mutex_unlock(&mu);
    return v;
}

/* After deletes: gc_command between pre_gc_command and post_gc_command,
 * du of storage_path around them; or none (the registry's own GC). */
static void garbage_collect(struct cl_run *run)
{
    struct cleanup_result *res = run->res;
    const volatile sig_atomic_t *stop = run->stop;
    const char *gc_command = cl_opt(run->ov->gc_command, run->cc->gc_command);
    const char *pre_gc_command = cl_opt(run->ov->pre_gc_command, run->cc->pre_gc_command);
    const char *post_gc_command = cl_opt(run->ov->post_gc_command, run->cc->post_gc_command);
    const char *storage_path = cl_opt(run->ov->storage_path, run->cc->storage_path);
    int64_t gc_timeout = run->cc->gc_timeout_ms;
    if (res->manifests_deleted > 0 && res->status != CL_DELETE_DISABLED) {
        if (*gc_command && stop && *stop) {
            log_warn("cleanup: stopped by a signal: garbage collection not run (the deleted "
                     "manifests' blobs stay until the next one)");
        } else if (*gc_command) {
            if (*storage_path)
                res->du_before = cl_du(storage_path);
            if (*pre_gc_command && run_command("pre_gc_command", pre_gc_command, run, NULL, 0,
                                               gc_timeout, stop) != 0) {
                res->errors++;
                res->status = CL_FAILED;
                snprintf(res->message, sizeof res->message, "pre_gc_command failed: no GC run");
            } else {
                res->gc_ran = true;
                res->gc_exit = run_command("garbage-collect", gc_command, run, res->gc_summary,
                                           sizeof res->gc_summary, gc_timeout, stop);
                if (res->gc_exit != 0) {
                    res->errors++;
                    res->status = CL_FAILED;
                    if (stop && *stop)
                        snprintf(res->message, sizeof res->message,
                                 "stopped by a signal during garbage collection");
                    else
                        snprintf(res->message, sizeof res->message,
                                 "garbage collection exited with status %d", res->gc_exit);
                }
                /* undoes pre_gc_command (a read-only registry): runs even after a
                 * stop, bounded by POST_GC_STOPPED_MS then */
                int64_t post_to = gc_timeout;
                if (stop && *stop && (!post_to || post_to > POST_GC_STOPPED_MS))
                    post_to = POST_GC_STOPPED_MS;
                if (*post_gc_command && run_command("post_gc_command", post_gc_command, run, NULL,
                                                    0, post_to, NULL) != 0) {
                    res->errors++;
                    res->status = CL_FAILED;
                    snprintf(res->message, sizeof res->message, "post_gc_command failed");
                }
            }
            if (*storage_path)
                res->du_after = cl_du(storage_path);
        } else {
            res->gc_none = true;
            log_info("cleanup: no gc_command: blobs are freed by the registry's own garbage "
                     "collection (Nexus: the \"Docker - Delete unused manifests and images\" and "
                     "\"Compact blob store\" tasks)");
        }
    }
}

void cl_apply(struct cl_run *run)
{
    struct cleanup_result *res = run->res;
    const volatile sig_atomic_t *stop = run->stop;
    test_pause(stop);
    int dr = delete_plan(run->g, res, cl_concurrency(run->cc, run->ov), stop, run->ov->progress);
    if (dr == -2) {
        res->status = CL_DELETE_DISABLED;
        snprintf(res->message, sizeof res->message,
                 "the registry refuses deletes (HTTP 405 UNSUPPORTED): set "
                 "storage.delete.enabled: true in its config.yml (or "
                 "REGISTRY_STORAGE_DELETE_ENABLED=true) and restart it; "
                 "nothing else was deleted");
        log_error("cleanup: %s", res->message);
    } else if (dr == -1) {
        res->status = CL_FAILED;
        snprintf(res->message, sizeof res->message, "stopped by a signal");
    }
    garbage_collect(run);
}
