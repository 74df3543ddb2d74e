/* skopeo_run: one run of the skopeo binary (skopeo_int.h: struct run).
 * The child process itself is proc.h's; this file captures its output
 * into capped buffers, splits it into lines for the operation's line
 * handler, and turns the outcome into a struct skopeo_result with a
 * classified error. Also skopeo_version(). libc only. */
#include "skopeo.h"
#include "skopeo_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"

/* ---- the runner ------------------------------------------------------- */

static void strip_ansi(char *s)
{
    char *w = s;
    for (char *r = s; *r;) {
        if (*r == 0x1b) {
            r++;
            if (*r == '[') {
                r++;
                while (*r && !(*r >= 0x40 && *r <= 0x7e))
                    r++;
                if (*r)
                    r++;
            } else if (*r) {
                r++;
            }
            continue;
        }
        *w++ = *r++;
    }
    *w = '\0';
}

static void lb_emit(struct run *r, int stream)
{
    struct linebuf *l = &r->lb[stream];
    if (!l->len)
        return;
    l->b[l->len] = '\0';
    strip_ansi(l->b);
    if (r->on_line && l->b[0])
        r->on_line(r, stream, l->b);
    l->len = 0;
}

static void lb_feed(struct run *r, int stream, const char *p, size_t n)
{
    struct linebuf *l = &r->lb[stream];
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' || p[i] == '\r') {
            lb_emit(r, stream);
        } else {
            if (l->len == SK_LINE_MAX) /* an endless line: deliver it in pieces */
                lb_emit(r, stream);
            l->b[l->len++] = p[i];
        }
    }
}

static void run_output(void *ctx, int stream, const char *p, size_t n)
{
    struct run *r = ctx;
    sk_sbuf_add(stream == 0 ? &r->out : &r->err, p, n);
    lb_feed(r, stream, p, n);
}

/* Runs argv (proc.h); fills r (status, output); returns 0 when it ran
 * (whatever the exit status), -1 when it could not be started
 * (r->exec_errno). */
int sk_run_argv(struct run *r, char *const argv[])
{
    struct proc_spec ps = {.deadline = r->deadline,
                           .grace_ms = r->o->grace_ms > 0 ? r->o->grace_ms : SK_DEFAULT_GRACE_MS,
                           .cancel = r->o->cancel,
                           .on_output = run_output,
                           .ctx = r};
    struct proc_result pr;
    int rc = proc_run(argv, &ps, &pr);
    lb_emit(r, 0);
    lb_emit(r, 1);
    r->exit_status = pr.exit_status;
    r->term_signal = pr.term_signal;
    r->timed_out = pr.timed_out;
    r->cancelled = pr.cancelled;
    r->started = pr.started;
    r->exec_errno = pr.exec_errno;
    return rc;
}

/* ---- version ---------------------------------------------------------- */

void sk_run_init(struct run *r, const struct skopeo_options *o, int64_t deadline)
{
    memset(r, 0, sizeof *r);
    r->o = o;
    r->deadline = deadline;
    size_t mx = o->max_output ? o->max_output : SK_DEFAULT_MAX_OUTPUT;
    r->out.max = r->err.max = mx;
}

void sk_run_free(struct run *r)
{
    free(r->out.d);
    free(r->err.d);
}

int skopeo_version(const char *binary, int *major, int *minor, int *patch)
{
    struct skopeo_options o;
    skopeo_options_init(&o);
    o.grace_ms = 1000;
    struct run r;
    sk_run_init(&r, &o, proc_mono_ms() + 15000);
    char *argv[] = {(char *)(binary ? binary : "skopeo"), "--version", NULL};
    int rc = -1;
    *major = *minor = *patch = 0;
    if (sk_run_argv(&r, argv) == 0 && r.exit_status == 0 && r.out.d) {
        const char *v = strstr(r.out.d, "version ");
        if (v && sscanf(v + 8, "%d.%d.%d", major, minor, patch) >= 2)
            rc = 0;
    }
    sk_run_free(&r);
    return rc;
}

/* ---- the result ------------------------------------------------------- */

/* The message of skopeo's last fatal line: msg="..." unquoted, else the
 * last non-empty stderr line. */
static char *error_message(const char *err)
{
    if (!err)
        return NULL;
    const char *m = NULL, *p = err;
    while ((p = strstr(p, "msg=\""))) {
        m = p + 5;
        p += 5;
    }
    if (m) {
        struct sbuf b = {0};
        for (const char *q = m; *q && *q != '\n'; q++) {
            if (*q == '\\' && q[1]) {
                q++;
                sk_sbuf_add(&b, q, 1);
            } else if (*q == '"') {
                break;
            } else {
                sk_sbuf_add(&b, q, 1);
            }
        }
        return b.d;
    }
    const char *end = err + strlen(err);
    while (end > err && isspace((unsigned char)end[-1]))
        end--;
    const char *start = end;
    while (start > err && start[-1] != '\n' && start[-1] != '\r')
        start--;
    if (start == end)
        return NULL;
    return strndup(start, (size_t)(end - start));
}

void sk_fill_result(struct skopeo_result *res, struct run *run, int start_rc, int64_t t0,
                    const struct skopeo_options *o)
{
    res->out = run->out.d ? run->out.d : strdup("");
    res->out_len = run->out.len;
    res->err_out = run->err.d ? run->err.d : strdup("");
    res->err_len = run->err.len;
    run->out.d = run->err.d = NULL;
    res->exit_status = run->exit_status;
    res->term_signal = run->term_signal;
    res->timed_out = run->timed_out;
    res->cancelled = run->cancelled;
    res->duration_s = (double)(proc_mono_ms() - t0) / 1000.0;
    free(res->error);
    res->error = NULL;
    if (start_rc < 0) {
        res->error_type = run->exec_errno == ENOENT ? SKOPEO_ERR_NOT_FOUND : SKOPEO_ERR_OTHER;
        res->error = sk_printf("cannot run %s: %s", o->binary ? o->binary : "skopeo",
                               strerror(run->exec_errno));
    } else if (run->timed_out) {
        res->error_type = SKOPEO_ERR_TIMEOUT;
        long long s = (run->timeout_ms + 999) / 1000;
        res->error = sk_printf("timed out after %lld s", s);
    } else if (run->cancelled) {
        res->error_type = SKOPEO_ERR_OTHER;
        res->error = strdup("cancelled");
    } else if (run->exit_status != 0) {
        res->error_type = skopeo_classify_error(res->err_out[0] ? res->err_out : res->out);
        res->error = error_message(res->err_out);
        if (!res->error) {
            if (run->term_signal)
                res->error = sk_printf("skopeo killed by signal %d", run->term_signal);
            else
                res->error = sk_printf("skopeo exited with status %d", run->exit_status);
        }
    } else {
        res->error_type = SKOPEO_ERR_NONE;
        res->ok = true;
    }
}
