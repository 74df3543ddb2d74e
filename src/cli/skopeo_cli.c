/* skopeo_cli: see skopeo_cli.h. */
#include "skopeo_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"
#include "log.h"
#include "progress.h"
#include "pushgateway.h"
#include "sender.h"
#include "series.h"
#include "ship.h"
#include "json_bound.h"
#include "skopeo.h"
#include "skopeo_metrics.h"
#include "textfmt.h"
#include "util.h"

#include "exitcodes.h"

#define MAX_TYPES 32

/* The one piece of process-wide state: set by SIGINT/SIGTERM, it stops the
 * skopeo runs in flight (their process groups get SIGTERM, then SIGKILL). */
static volatile sig_atomic_t g_sk_cancel;

static void on_cancel(int sig)
{
    (void)sig;
    g_sk_cancel = 1;
}

/* ---- metrics ----------------------------------------------------------- */

/* Records the run in state_dir, then ships (ship.h: the daemon when one
 * runs, else this process) and writes --metrics-file. */
static void metrics_ship(const struct config *cfg, const struct sk_metrics *run,
                         const char *metrics_file)
{
    struct sk_metrics total;
    sk_metrics_accumulate(cfg ? cfg->shipper.state_dir : NULL, run, &total);
    if (metrics_file) {
        struct series_buf *sb = cfg ? ship_sb_new(cfg) : sb_new(&(struct sb_opts){0});
        struct sb_sample *v = NULL;
        size_t n = 0;
        struct buf body;
        buf_init(&body, 0);
        struct err e = {{0}};
        int rc = -1;
        if (sb) {
            sb_begin_cycle(sb, now_ms());
            sb_txn_begin(sb, "skopeo");
            sk_metrics_render(&total, sb);
            sb_txn_commit(sb);
            if (sb_snapshot(sb, true, &v, &n) == 0 && textfmt_write(sb, v, n, &body) == 0)
                rc = durable_write_file(metrics_file, body.data ? body.data : "", body.len, 0644,
                                        &e); /* read by node_exporter */
        }
        if (rc < 0)
            log_error("skopeo metrics: cannot write %s: %s", metrics_file,
                      e.msg[0] ? e.msg : "out of memory");
        free(v);
        buf_free(&body);
        sb_free(sb);
    }
    if (cfg)
        ship_run(cfg, &skopeo_run_job, &g_sk_cancel);
}

/* ---- output ------------------------------------------------------------ */

struct out_ctx {
    pthread_mutex_t *mu;
    bool json, progress;
    int job; /* 0 = single operation, else 1-based job number */
    const char *src, *dst;
    bool bytes_pg;       /* a single copy in human mode: live bytes on stderr */
    struct progress *pg; /* made at the first event that knows the sizes */
};

static json_object *blob_json(const struct skopeo_blob_info *b)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "sha256", json_object_new_string(b->sha256));
    json_object_object_add(o, "size", b->size >= 0 ? json_object_new_int64(b->size) : NULL);
    json_object_object_add(o, "status", json_object_new_string(b->status ? b->status : ""));
    json_object_object_add(o, "is_config", json_object_new_boolean(b->is_config));
    return o;
}

/* A double printed with 3 decimals (durations), not with 17 digits. */
static json_object *json_double3(double v)
{
    char s[64];
    snprintf(s, sizeof s, "%.3f", v);
    return json_object_new_double_s(v, s);
}

static void print_json(json_object *o)
{
    fputs(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
        stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

static const char *step_icon(const char *step)
{
    if (!strcmp(step, "getting_signatures") || !strcmp(step, "running"))
        return "\xF0\x9F\x94\x8D"; /* magnifying glass */
    if (!strcmp(step, "copying_blob") || !strcmp(step, "copying_config") ||
        !strcmp(step, "copying_image"))
        return "\xF0\x9F\x93\xA6"; /* package */
    if (!strcmp(step, "writing_manifest"))
        return "\xF0\x9F\x93\x9D"; /* memo */
    if (!strcmp(step, "storing_signatures"))
        return "\xF0\x9F\x94\x90"; /* lock */
    return "*";
}

static void on_progress(const struct skopeo_progress *p, void *ud)
{
    struct out_ctx *c = ud;
    if (c->bytes_pg && p->bytes_total > 0) {
        if (!c->pg)
            c->pg = progress_new(stderr, "skopeo copy", "bytes", (uint64_t)p->bytes_total);
        progress_update(c->pg, (uint64_t)p->bytes_done, NULL);
    }
    if (!c->json && !c->progress)
        return;
    pthread_mutex_lock(c->mu);
    if (c->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "event", json_object_new_string("progress"));
        if (c->job)
            json_object_object_add(o, "job", json_object_new_int(c->job));
        json_object_object_add(o, "operation", json_object_new_string(p->operation_name));
        json_object_object_add(o, "current_step", json_object_new_string(p->current_step));
        json_object_object_add(o, "percentage", json_object_new_double(p->percentage));
        json_object_object_add(o, "current_blob",
                               p->current_blob ? blob_json(p->current_blob) : NULL);
        json_object_object_add(o, "manifest_written", json_object_new_boolean(p->manifest_written));
        json_object_object_add(o, "signatures_stored",
                               json_object_new_boolean(p->signatures_stored));
        json_object_object_add(o, "error", p->error ? json_object_new_string(p->error) : NULL);
        json_object_object_add(o, "completed", json_object_new_boolean(p->completed));
        if (p->image_count) {
            json_object_object_add(o, "image_index", json_object_new_int(p->image_index));
            json_object_object_add(o, "image_count", json_object_new_int(p->image_count));
        }
        print_json(o);
        json_object_put(o);
    } else if (strcmp(p->current_step, "completed") != 0 &&
               strcmp(p->current_step, "failed") != 0) {
        char pre[32] = "";
        if (c->job)
            snprintf(pre, sizeof pre, "[job %d] ", c->job);
        if (p->image_count && !strcmp(p->current_step, "copying_image"))
            printf("%s%s copying_image %d/%d: %.1f%%\n", pre, step_icon(p->current_step),
                   p->image_index, p->image_count, p->percentage);
        else
            printf("%s%s %s: %.1f%%\n", pre, step_icon(p->current_step), p->current_step,
                   p->percentage);
        const struct skopeo_blob_info *b = p->current_blob;
        if (b) {
            const char *hex = strchr(b->sha256, ':');
            hex = hex ? hex + 1 : b->sha256;
            if (b->size >= 0)
                printf("%s   (%s: %.12s... %lld bytes)\n", pre, b->is_config ? "config" : "blob",
                       hex, (long long)b->size);
            else
                printf("%s   (%s: %.12s... size unknown)\n", pre, b->is_config ? "config" : "blob",
                       hex);
        }
        fflush(stdout);
    }
    pthread_mutex_unlock(c->mu);
}

static json_object *result_json(const char *opname, const struct out_ctx *c,
                                const struct skopeo_result *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "event", json_object_new_string("result"));
    if (c->job)
        json_object_object_add(o, "job", json_object_new_int(c->job));
    json_object_object_add(o, "operation", json_object_new_string(opname));
    if (c->src)
        json_object_object_add(o, c->dst ? "source" : "image", json_object_new_string(c->src));
    if (c->dst)
        json_object_object_add(o, "destination", json_object_new_string(c->dst));
    json_object_object_add(o, "success", json_object_new_boolean(r->ok));
    json_object_object_add(o, "exit_status", json_object_new_int(r->exit_status));
    json_object_object_add(o, "error_type",
                           r->ok ? NULL
                                 : json_object_new_string(skopeo_error_type_name(r->error_type)));
    json_object_object_add(o, "error", r->error ? json_object_new_string(r->error) : NULL);
    json_object_object_add(o, "timed_out", json_object_new_boolean(r->timed_out));
    json_object_object_add(o, "duration_seconds", json_double3(r->duration_s));
    json_object_object_add(o, "digest", r->digest ? json_object_new_string(r->digest) : NULL);
    if (r->version_major) {
        char v[48];
        snprintf(v, sizeof v, "%d.%d.%d", r->version_major, r->version_minor, r->version_patch);
        json_object_object_add(o, "skopeo_version", json_object_new_string(v));
    }
    if (!strcmp(opname, "copy")) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < r->n_blobs; i++) {
            const struct skopeo_blob *b = &r->blobs[i];
            if (!b->copied && !b->skipped)
                continue;
            json_object *bo = json_object_new_object();
            json_object_object_add(bo, "digest", json_object_new_string(b->digest));
            json_object_object_add(bo, "size",
                                   b->size >= 0 ? json_object_new_int64(b->size) : NULL);
            json_object_object_add(bo, "is_config", json_object_new_boolean(b->is_config));
            json_object_object_add(bo, "status",
                                   json_object_new_string(b->skipped ? "skipped" : "copied"));
            json_object_array_add(a, bo);
        }
        json_object_object_add(o, "blobs", a);
        json_object_object_add(o, "bytes",
                               r->bytes_total >= 0 ? json_object_new_int64(r->bytes_total) : NULL);
        json_object_object_add(o, "sizes_known", json_object_new_boolean(r->sizes_known));
        json_object_object_add(o, "manifest_written", json_object_new_boolean(r->manifest_written));
        json_object_object_add(o, "signatures_stored",
                               json_object_new_boolean(r->signatures_stored));
        if (r->image_count)
            json_object_object_add(o, "image_count", json_object_new_int(r->image_count));
    }
    return o;
}

/* Prints the final result of one operation. */
static void print_result(const char *opname, const struct out_ctx *c, const struct skopeo_result *r)
{
    pthread_mutex_lock(c->mu);
    char pre[32] = "";
    if (c->job)
        snprintf(pre, sizeof pre, "[job %d] ", c->job);
    if (c->json) {
        json_object *o = result_json(opname, c, r);
        if (!strcmp(opname, "inspect") && r->ok) {
            char why[200];
            json_object *ins = json_parse_bounded(r->out, strlen(r->out), SKOPEO_MAX_JSON_COST, why,
                                                  sizeof why);
            if (ins)
                json_object_object_add(o, "inspect", ins);
            else
                json_object_object_add(o, "inspect_error", json_object_new_string(why));
        }
        print_json(o);
        json_object_put(o);
    } else if (c->progress) {
        if (r->ok)
            printf("%s\xE2\x9C\x85 Operation completed successfully\n", pre);
        else
            printf("%s\xE2\x9D\x8C Error (%s): %s\n", pre, skopeo_error_type_name(r->error_type),
                   r->error ? r->error : "failed");
    }
    if (!c->json && !r->ok)
        fprintf(stderr, "%sskopeo %s failed (%s): %s\n", pre, opname,
                skopeo_error_type_name(r->error_type), r->error ? r->error : "failed");
    fflush(stdout);
    pthread_mutex_unlock(c->mu);
}

/* ---- commands ------------------------------------------------------------ */

struct cli {
    const struct config *cfg;
    struct skopeo_options o;
    bool json, progress, raw;
    const char *from_file, *metrics_file;
    long parallel;
    bool no_metrics;
    char *password; /* from SKOPEO_PASSWORD_FILE */
    pthread_mutex_t mu;
    struct sk_metrics m;
};

struct job {
    const char *src, *dst;
    int n;
    struct skopeo_result r;
};

struct pool {
    struct cli *c;
    struct job *jobs;
    size_t n, next;
    pthread_mutex_t mu;
    struct progress *pg; /* jobs finished (under c->mu) */
    size_t pg_done, pg_failed;
    int64_t pg_bytes;
};

/* one more job finished; the caller holds c->mu */
static void jobs_progress(struct pool *p, const struct job *j)
{
    char extra[96], b[32];
    p->pg_done++;
    p->pg_failed += !j->r.ok;
    p->pg_bytes += j->r.ok && j->r.bytes_total > 0 ? j->r.bytes_total : 0;
    progress_fmt_bytes((double)p->pg_bytes, b, sizeof b);
    if (p->pg_failed)
        snprintf(extra, sizeof extra, "%s copied, %zu failed", b, p->pg_failed);
    else
        snprintf(extra, sizeof extra, "%s copied", b);
    progress_update(p->pg, p->pg_done, extra);
}

static void *worker(void *arg)
{
    struct pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->next < p->n && !g_sk_cancel ? p->next++ : p->n;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n)
            return NULL;
        struct job *j = &p->jobs[i];
        struct out_ctx oc = {.mu = &p->c->mu,
                             .json = p->c->json,
                             .progress = p->c->progress,
                             .job = j->n,
                             .src = j->src,
                             .dst = j->dst};
        struct skopeo_options o = p->c->o;
        o.progress = on_progress;
        o.userdata = &oc;
        struct sk_active *act = p->c->no_metrics || !p->c->cfg
                                    ? NULL
                                    : sk_active_begin(p->c->cfg->shipper.state_dir, SKOPEO_OP_COPY);
        skopeo_copy(j->src, j->dst, &o, &j->r);
        sk_active_end(act);
        print_result("copy", &oc, &j->r);
        pthread_mutex_lock(&p->c->mu);
        sk_metrics_record(&p->c->m, SKOPEO_OP_COPY, j->src, j->dst, &j->r);
        jobs_progress(p, j);
        pthread_mutex_unlock(&p->c->mu);
    }
}

static int cmd_copy_list(struct cli *c)
{
    FILE *f = strcmp(c->from_file, "-") ? fopen(c->from_file, "r") : stdin;
    if (!f) {
        fprintf(stderr, "skopeo copy: cannot open %s: %s\n", c->from_file, strerror(errno));
        return EXIT_USAGE;
    }
    struct pool p = {.c = c};
    pthread_mutex_init(&p.mu, NULL);
    char line[8192];
    int lineno = 0, rc = EXIT_OK;
    char **strs = NULL;
    size_t nstr = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = str_trim(line);
        if (!*s || *s == '#')
            continue;
        char *sp = s + strcspn(s, " \t");
        if (!*sp) {
            fprintf(stderr, "%s:%d: expected \"SOURCE DESTINATION\"\n", c->from_file, lineno);
            rc = EXIT_USAGE;
            break;
        }
        *sp++ = '\0';
        char *dst = str_trim(sp);
        if (strcspn(dst, " \t") != strlen(dst)) {
            fprintf(stderr, "%s:%d: expected \"SOURCE DESTINATION\"\n", c->from_file, lineno);
            rc = EXIT_USAGE;
            break;
        }
        struct job *nj = realloc(p.jobs, (p.n + 1) * sizeof *nj);
        char **ns = realloc(strs, (nstr + 2) * sizeof *ns);
        if (ns)
            strs = ns;
        if (!nj || !ns) {
            free(nj ? nj : p.jobs);
            p.jobs = NULL;
            rc = EXIT_FAIL;
            break;
        }
        p.jobs = nj;
        strs[nstr++] = strdup(s);
        strs[nstr++] = strdup(dst);
        memset(&p.jobs[p.n], 0, sizeof p.jobs[p.n]);
        p.jobs[p.n].src = strs[nstr - 2];
        p.jobs[p.n].dst = strs[nstr - 1];
        p.jobs[p.n].n = (int)p.n + 1;
        p.n++;
    }
    if (f != stdin)
        fclose(f);
    if (rc == EXIT_OK && p.n == 0) {
        fprintf(stderr, "%s: no copy jobs\n", c->from_file);
        rc = EXIT_USAGE;
    }
    if (rc != EXIT_OK)
        goto out;
    size_t nw = (size_t)c->parallel;
    if (nw > p.n)
        nw = p.n;
    pthread_t th[64];
    size_t started = 0;
    int64_t t0 = mono_ms();
    p.pg = c->json ? NULL : progress_new(stderr, "skopeo copy", "jobs", p.n);
    for (; started < nw; started++)
        if (pthread_create(&th[started], NULL, worker, &p) != 0)
            break;
    if (started == 0)
        worker(&p);
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    progress_done(p.pg, g_sk_cancel ? "cancelled" : NULL);
    size_t ok = 0, failed = 0, notrun = 0;
    int64_t bytes = 0;
    for (size_t i = 0; i < p.n; i++) {
        if (!p.jobs[i].r.error && !p.jobs[i].r.ok && p.jobs[i].r.exit_status == 0) {
            notrun++; /* cancelled before it started */
            continue;
        }
        if (p.jobs[i].r.ok) {
            ok++;
            if (p.jobs[i].r.bytes_total > 0)
                bytes += p.jobs[i].r.bytes_total;
        } else {
            failed++;
        }
    }
    failed += notrun;
    double secs = (double)(mono_ms() - t0) / 1000.0;
    if (c->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "event", json_object_new_string("summary"));
        json_object_object_add(o, "jobs", json_object_new_int64((int64_t)p.n));
        json_object_object_add(o, "succeeded", json_object_new_int64((int64_t)ok));
        json_object_object_add(o, "failed", json_object_new_int64((int64_t)failed));
        json_object_object_add(o, "parallel", json_object_new_int64((int64_t)nw));
        json_object_object_add(o, "bytes", json_object_new_int64(bytes));
        json_object_object_add(o, "duration_seconds", json_double3(secs));
        print_json(o);
        json_object_put(o);
    } else {
        printf("summary: %zu jobs, %zu succeeded, %zu failed (parallel %zu, %lld bytes, %.2f s)\n",
               p.n, ok, failed, nw, (long long)bytes, secs);
        for (size_t i = 0; i < p.n; i++)
            printf("  %s job %d: %s -> %s%s%s\n", p.jobs[i].r.ok ? "ok    " : "FAILED", p.jobs[i].n,
                   p.jobs[i].src, p.jobs[i].dst, p.jobs[i].r.ok ? "" : ": ",
                   p.jobs[i].r.ok ? "" : (p.jobs[i].r.error ? p.jobs[i].r.error : "not run"));
    }
    rc = failed ? EXIT_FAIL : EXIT_OK;
out:
    for (size_t i = 0; i < p.n; i++)
        skopeo_result_free(&p.jobs[i].r);
    free(p.jobs);
    for (size_t i = 0; i < nstr; i++)
        free(strs[i]);
    free(strs);
    pthread_mutex_destroy(&p.mu);
    return rc;
}

static int cmd_single(struct cli *c, enum skopeo_op op, const char *a, const char *b)
{
    struct out_ctx oc = {.mu = &c->mu,
                         .json = c->json,
                         .progress = c->progress,
                         .src = a,
                         .dst = b,
                         .bytes_pg = op == SKOPEO_OP_COPY && !c->json};
    struct skopeo_options o = c->o;
    o.progress = on_progress;
    o.userdata = &oc;
    struct skopeo_result r;
    struct sk_active *act =
        c->no_metrics || !c->cfg ? NULL : sk_active_begin(c->cfg->shipper.state_dir, op);
    switch (op) {
    case SKOPEO_OP_COPY:
        skopeo_copy(a, b, &o, &r);
        break;
    case SKOPEO_OP_INSPECT:
        skopeo_inspect(a, c->raw, &o, &r);
        break;
    case SKOPEO_OP_DELETE:
        skopeo_delete(a, &o, &r);
        break;
    default:
        skopeo_manifest_digest(a, &o, &r);
        break;
    }
    sk_active_end(act);
    progress_done(oc.pg, r.ok ? NULL : "failed");
    print_result(skopeo_op_name(op), &oc, &r);
    if (r.ok && !c->json) {
        if (op == SKOPEO_OP_COPY) {
            size_t nb = 0;
            for (size_t i = 0; i < r.n_blobs; i++)
                nb += r.blobs[i].copied || r.blobs[i].skipped;
            char bytes[32] = "size unknown";
            if (r.bytes_total >= 0)
                snprintf(bytes, sizeof bytes, "%lld bytes", (long long)r.bytes_total);
            printf("copied %s -> %s: %zu blobs, %s%s%s, %.2f s\n", a, b, nb, bytes,
                   r.digest ? ", digest " : "", r.digest ? r.digest : "", r.duration_s);
        } else if (op == SKOPEO_OP_INSPECT) {
            fputs(r.out, stdout);
        } else if (op == SKOPEO_OP_DELETE) {
            printf("deleted %s\n", a);
        } else {
            printf("%s\n", r.digest);
        }
    }
    sk_metrics_record(&c->m, op, a, b, &r);
    int rc = r.ok ? EXIT_OK : EXIT_FAIL;
    skopeo_result_free(&r);
    return rc;
}

static const char skopeo_usage[] =
    "Usage: nexus-shipper [-c FILE] skopeo COMMAND [OPTIONS] [-- SKOPEO_ARGS...]\n"
    "\n"
    "Commands:\n"
    "  copy SRC DST              copy an image (transport:reference, e.g. docker://host/repo:tag,\n"
    "                            oci:/dir:tag, dir:/path)\n"
    "  copy --from-file LIST     copy every \"SRC DST\" line of LIST ('-' = stdin; # comments)\n"
    "                            with bounded parallelism, then print a summary\n"
    "  inspect IMAGE [--raw]     skopeo inspect (the raw manifest with --raw)\n"
    "  delete IMAGE              delete the image's manifest (every tag on its digest)\n"
    "  manifest-digest IMAGE|FILE\n"
    "                            digest of an image, or of a manifest file\n"
    "\n"
    "Options:\n"
    "  --progress          step and percentage per line, blob digests and sizes\n"
    "  --json              one JSON object per progress event, then a result object\n"
    "  --timeout S         stop skopeo after S (SIGTERM to its process group, SIGKILL after\n"
    "                      --kill-grace, default 5s); default [skopeo] timeout\n"
    "  --kill-grace S      time between SIGTERM and SIGKILL\n"
    "  --tls-verify BOOL   override [skopeo] tls_verify\n"
    "  --authfile FILE     override [skopeo] authfile\n"
    "  --parallel N        copy --from-file: jobs at once (default 4, at most 64)\n"
    "  --metrics-file FILE also write the skopeo_* metrics in text format (textfile collector)\n"
    "  --no-metrics        do not record or push metrics for this run\n"
    "  -- ARGS             passed to skopeo before the image arguments\n"
    "\n"
    "Credentials never go on skopeo's command line: use [skopeo] authfile, REGISTRY_AUTH_FILE,\n"
    "or SKOPEO_USERNAME with SKOPEO_PASSWORD / SKOPEO_PASSWORD_FILE (written to a 0600\n"
    "temporary authfile for the run).\n"
    "Metrics (skopeo_* counters kept in <state_dir>/skopeo-metrics.state) are pushed to\n"
    "[pushgateway] as job \"skopeo\" and to [remote_write] targets when [skopeo] enable_metrics\n"
    "is on; what cannot be delivered is spooled.\n"
    "Exit codes: 0 success; 1 skopeo failed; 2 usage or configuration error.\n";

const char *const skopeo_cli_usage = skopeo_usage;

int skopeo_cli(const char *config_path, int argc, char **argv)
{
    struct cli c;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.mu, NULL);
    sk_metrics_init(&c.m);
    skopeo_options_init(&c.o);
    c.parallel = 4;
    int rc = EXIT_USAGE;
    struct config *cfg = NULL;
    const char *pos[3] = {NULL, NULL, NULL};
    size_t npos = 0;
    const char **extra = NULL;
    size_t nextra = 0;
    const char *timeout_s = NULL, *grace_s = NULL, *tls_s = NULL, *authfile = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
#define OPTVAL(name)                                                                               \
    (!strcmp(a, name)                                                                              \
         ? (i + 1 < argc ? (val = argv[++i], 1) : (val = NULL, 1))                                 \
         : (!strncmp(a, name "=", strlen(name) + 1) ? (val = a + strlen(name) + 1, 1) : 0))
        if (!strcmp(a, "--")) {
            extra = (const char **)argv + i + 1;
            nextra = (size_t)(argc - i - 1);
            break;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(skopeo_usage, stdout);
            rc = EXIT_OK;
            goto out;
        } else if (!strcmp(a, "--progress")) {
            c.progress = true;
        } else if (!strcmp(a, "--json")) {
            c.json = true;
        } else if (!strcmp(a, "--raw")) {
            c.raw = true;
        } else if (!strcmp(a, "--no-metrics")) {
            c.no_metrics = true;
        } else if (OPTVAL("--from-file")) {
            if (!(c.from_file = val))
                goto missing;
        } else if (OPTVAL("--metrics-file")) {
            if (!(c.metrics_file = val))
                goto missing;
        } else if (OPTVAL("--timeout")) {
            if (!(timeout_s = val))
                goto missing;
        } else if (OPTVAL("--kill-grace")) {
            if (!(grace_s = val))
                goto missing;
        } else if (OPTVAL("--tls-verify")) {
            if (!(tls_s = val))
                goto missing;
        } else if (OPTVAL("--authfile")) {
            if (!(authfile = val))
                goto missing;
        } else if (OPTVAL("--parallel")) {
            int64_t p;
            if (!val || parse_int64(val, &p) < 0 || p < 1 || p > 64) {
                fprintf(stderr, "skopeo: --parallel needs a number from 1 to 64\n");
                goto out;
            }
            c.parallel = (long)p;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "skopeo: unknown option %s (skopeo's own options go after --)\n\n%s", a,
                    skopeo_usage);
            goto out;
        } else if (npos < 3) {
            pos[npos++] = a;
        } else {
            fprintf(stderr, "skopeo: too many arguments\n");
            goto out;
        }
        continue;
    missing:
        fprintf(stderr, "skopeo: %s needs a value\n", a);
        goto out;
#undef OPTVAL
    }
    if (npos == 0) {
        fputs(skopeo_usage, stderr);
        goto out;
    }
    const char *cmd = pos[0];
    enum skopeo_op op;
    size_t want;
    if (!strcmp(cmd, "copy")) {
        op = SKOPEO_OP_COPY;
        want = c.from_file ? 0 : 2;
    } else if (!strcmp(cmd, "inspect")) {
        op = SKOPEO_OP_INSPECT;
        want = 1;
    } else if (!strcmp(cmd, "delete")) {
        op = SKOPEO_OP_DELETE;
        want = 1;
    } else if (!strcmp(cmd, "manifest-digest")) {
        op = SKOPEO_OP_MANIFEST_DIGEST;
        want = 1;
    } else {
        fprintf(stderr, "skopeo: unknown command \"%s\"\n\n%s", cmd, skopeo_usage);
        goto out;
    }
    if (npos - 1 != want) {
        fprintf(stderr, "skopeo %s: expected %zu argument%s\n\n%s", cmd, want, want == 1 ? "" : "s",
                skopeo_usage);
        goto out;
    }
    if (c.from_file && op != SKOPEO_OP_COPY) {
        fprintf(stderr, "skopeo: --from-file is for copy\n");
        goto out;
    }

    /* configuration: optional */
    if (access(config_path, F_OK) == 0) {
        struct err e;
        if (!(cfg = config_load(config_path, &e))) {
            fprintf(stderr, "%s\n", e.msg);
            goto out;
        }
    } else {
        log_debug("skopeo: %s not found, using defaults (no metrics are pushed)", config_path);
    }
    c.cfg = cfg;
    if (!skopeo_metrics_enabled(cfg)) /* no configuration, or enable_metrics = false */
        c.no_metrics = true;
    const struct cfg_skopeo *sc = cfg ? cfg->skopeo : NULL;
    c.o.binary = sc && sc->binary && *sc->binary ? sc->binary : "skopeo";
    c.o.timeout_ms = sc ? sc->timeout_ms : 30 * 60 * 1000;
    c.o.tls_verify = sc ? (sc->tls_verify ? 1 : 0) : -1;
    c.o.authfile = sc && sc->authfile && *sc->authfile ? sc->authfile : NULL;
    if (timeout_s && (parse_duration_ms(timeout_s, &c.o.timeout_ms) < 0 || c.o.timeout_ms < 0)) {
        fprintf(stderr, "skopeo: bad --timeout \"%s\" (e.g. 30, 30s, 5m)\n", timeout_s);
        goto out;
    }
    if (grace_s && (parse_duration_ms(grace_s, &c.o.grace_ms) < 0 || c.o.grace_ms <= 0)) {
        fprintf(stderr, "skopeo: bad --kill-grace \"%s\"\n", grace_s);
        goto out;
    }
    if (tls_s) {
        bool b;
        if (parse_bool(tls_s, &b) < 0) {
            fprintf(stderr, "skopeo: bad --tls-verify \"%s\" (true or false)\n", tls_s);
            goto out;
        }
        c.o.tls_verify = b;
    }
    if (authfile)
        c.o.authfile = authfile;
    c.o.extra_args = extra;
    c.o.n_extra = nextra;
    const char *user = getenv("SKOPEO_USERNAME");
    const char *pass = getenv("SKOPEO_PASSWORD");
    const char *pfile = getenv("SKOPEO_PASSWORD_FILE");
    if (pass) { /* keep it out of skopeo's environment */
        if (!(c.password = strdup(pass))) {
            fprintf(stderr, "skopeo: out of memory\n");
            goto out;
        }
        unsetenv("SKOPEO_PASSWORD");
        pass = c.password;
    } else if (user && *user && pfile && *pfile) {
        struct err e;
        if (read_file(pfile, 4096, true, &c.password, &e) < 0) {
            fprintf(stderr, "skopeo: SKOPEO_PASSWORD_FILE: %s\n", e.msg);
            goto out;
        }
        pass = c.password;
    }
    if (user && *user && pass) {
        c.o.username = user;
        c.o.password = pass;
    }
    c.o.cancel = &g_sk_cancel;
    int maj, min, pat;
    if (skopeo_version(c.o.binary, &maj, &min, &pat) == 0) { /* once for every job */
        c.o.version_major = maj;
        c.o.version_minor = min;
        c.o.version_patch = pat;
    }

    struct sigaction sa = {.sa_handler = on_cancel}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    signal(SIGPIPE, SIG_IGN);
    if (c.from_file)
        rc = cmd_copy_list(&c);
    else
        rc = cmd_single(&c, op, pos[1], want == 2 ? pos[2] : NULL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (!c.no_metrics && rc != EXIT_USAGE)
        metrics_ship(cfg, &c.m, c.metrics_file);
out:
    if (c.password) {
        memset(c.password, 0, strlen(c.password));
        free(c.password);
    }
    config_free(cfg);
    pthread_mutex_destroy(&c.mu);
    return rc;
}
