/* cleanup_metrics: see cleanup_metrics.h. */
#include "cleanup_metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define MAX_STATE_REPOS 4096

void cleanup_state_free(struct cleanup_state *s)
{
    strv_free(s->repo, s->n);
    free(s->deleted);
    s->repo = NULL;
    s->deleted = NULL;
    s->n = 0;
}

static int state_add_repo(struct cleanup_state *s, const char *name, uint64_t v)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->repo[i], name) == 0) {
            s->deleted[i] += v;
            return 0;
        }
    if (s->n >= MAX_STATE_REPOS)
        return -1;
    char **nr = realloc(s->repo, (s->n + 1) * sizeof *nr);
    if (!nr)
        return -1;
    s->repo = nr;
    uint64_t *nd = realloc(s->deleted, (s->n + 1) * sizeof *nd);
    if (!nd)
        return -1;
    s->deleted = nd;
    if (!(nr[s->n] = strdup(name)))
        return -1;
    nd[s->n++] = v;
    return 0;
}

void cleanup_state_load(const char *path, struct cleanup_state *s)
{
    memset(s, 0, sizeof *s);
    s->last_status = -1;
    s->last_du_freed = -1;
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[1024], a[512];
    unsigned long long v;
    long long ms;
    double d;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "runs %511s %llu", a, &v) == 2) {
            for (int i = 0; i < 4; i++)
                if (strcmp(a, cl_status_name((enum cl_status)i)) == 0)
                    s->runs[i] = v;
        } else if (sscanf(line, "errors %llu", &v) == 1) {
            s->errors = v;
        } else if (sscanf(line, "last_success_ms %lld", &ms) == 1) {
            s->last_success_ms = ms;
        } else if (sscanf(line, "deleted %511s %llu", a, &v) == 2) {
            state_add_repo(s, a, v);
        } else if (sscanf(line, "last_run_ms %lld", &ms) == 1) {
            s->last_run_ms = ms;
        } else if (sscanf(line, "last_status %511s", a) == 1) {
            for (int i = 0; i < 4; i++)
                if (strcmp(a, cl_status_name((enum cl_status)i)) == 0)
                    s->last_status = i;
        } else if (sscanf(line, "last_scanned %llu", &v) == 1) {
            s->last_scanned = v;
        } else if (sscanf(line, "last_repos %llu", &v) == 1) {
            s->last_repos = v;
        } else if (sscanf(line, "last_manifests_deleted %llu", &v) == 1) {
            s->last_manifests_deleted = v;
        } else if (sscanf(line, "last_blob_bytes %llu", &v) == 1) {
            s->last_blob_bytes = v;
        } else if (sscanf(line, "last_du_freed %lld", &ms) == 1) {
            s->last_du_freed = ms;
        } else if (sscanf(line, "last_duration_s %lf", &d) == 1) {
            s->last_duration_s = d;
        } else if (sscanf(line, "last_kept %511s %llu", a, &v) == 2) {
            for (int i = 1; i < CL_NREASONS; i++)
                if (strcmp(a, cl_reason_name(i)) == 0)
                    s->last_kept[i] = v;
        }
    }
    fclose(f);
}

int cleanup_state_save(const char *dir, const struct cleanup_state *s, struct err *e)
{
    struct buf f;
    buf_init(&f, 0);
    buf_puts(&f, "# nexus-shipper cleanup counters (kept across runs)\n");
    for (int i = 0; i < 4; i++)
        buf_printf(&f, "runs %s %llu\n", cl_status_name((enum cl_status)i),
                   (unsigned long long)s->runs[i]);
    buf_printf(&f, "errors %llu\nlast_success_ms %lld\n", (unsigned long long)s->errors,
               (long long)s->last_success_ms);
    for (size_t i = 0; i < s->n; i++)
        buf_printf(&f, "deleted %s %llu\n", s->repo[i], (unsigned long long)s->deleted[i]);
    if (s->last_status >= 0) {
        buf_printf(&f,
                   "last_run_ms %lld\nlast_status %s\nlast_scanned %llu\nlast_repos %llu\n"
                   "last_manifests_deleted %llu\nlast_blob_bytes %llu\nlast_du_freed %lld\n"
                   "last_duration_s %.17g\n",
                   (long long)s->last_run_ms, cl_status_name((enum cl_status)s->last_status),
                   (unsigned long long)s->last_scanned, (unsigned long long)s->last_repos,
                   (unsigned long long)s->last_manifests_deleted,
                   (unsigned long long)s->last_blob_bytes, (long long)s->last_du_freed,
                   s->last_duration_s);
        for (int i = 1; i < CL_NREASONS; i++)
            buf_printf(&f, "last_kept %s %llu\n", cl_reason_name(i),
                       (unsigned long long)s->last_kept[i]);
    }
    int rc = -1;
    if (!buf_cstr(&f))
        err_set(e, "out of memory");
    else {
        char path[4200];
        snprintf(path, sizeof path, "%s/cleanup.state", dir);
        rc = durable_write_file(path, f.data, f.len, 0600, e);
    }
    buf_free(&f);
    return rc;
}

void cleanup_state_add_run(struct cleanup_state *st, const struct cleanup_result *res)
{
    st->runs[res->status]++;
    st->errors += res->errors;
    if (res->status == CL_OK)
        st->last_success_ms = res->finished_ms;
    for (size_t i = 0; i < res->n_repos; i++) {
        uint64_t d = 0;
        const struct cl_repo *rp = &res->repos[i];
        for (size_t k = 0; k < rp->n_tags; k++) {
            if (rp->tags[k].reason != CL_REASON_DELETE)
                continue;
            for (size_t m = 0; m < rp->n_m; m++)
                if (strcmp(rp->m[m].digest, rp->tags[k].digest) == 0 &&
                    (strcmp(rp->m[m].result, "deleted") == 0 ||
                     strcmp(rp->m[m].result, "already gone") == 0))
                    d++;
        }
        if ((d || res->status == CL_OK) && state_add_repo(st, rp->name, d) < 0)
            log_warn("cleanup: too many repositories in the counters (%d), %s not counted",
                     MAX_STATE_REPOS, rp->name);
    }
    st->last_run_ms = res->finished_ms;
    st->last_status = (int)res->status;
    st->last_scanned = res->tags_scanned;
    st->last_repos = res->n_repos;
    st->last_manifests_deleted = res->manifests_deleted;
    st->last_blob_bytes = res->blob_bytes;
    st->last_du_freed = res->du_before >= 0 && res->du_after >= 0
                            ? res->du_before - res->du_after
                            : -1;
    st->last_duration_s = (double)(res->finished_ms - res->started_ms) / 1000.0;
    for (int i = 1; i < CL_NREASONS; i++)
        st->last_kept[i] = res->kept[i];
}

/* ---- metrics ---------------------------------------------------------- */

static const struct metric_desc m_runs = {"registry_cleanup_runs_total", MT_COUNTER,
                                          "Registry cleanup runs by outcome.", ""};
static const struct metric_desc m_deleted = {
    "registry_cleanup_tags_deleted_total", MT_COUNTER,
    "Tags deleted by registry cleanup runs (their manifests deleted), per repository.", ""};
static const struct metric_desc m_errors = {"registry_cleanup_errors_total", MT_COUNTER,
                                            "Errors during registry cleanup runs.", ""};
static const struct metric_desc m_scanned = {"registry_cleanup_tags_scanned", MT_GAUGE,
                                             "Tags examined by the last cleanup run.", ""};
static const struct metric_desc m_repos = {"registry_cleanup_repositories_scanned", MT_GAUGE,
                                           "Repositories examined by the last cleanup run.", ""};
static const struct metric_desc m_kept = {"registry_cleanup_tags_kept", MT_GAUGE,
                                          "Tags kept by the last cleanup run, by reason.", ""};
static const struct metric_desc m_mdel = {"registry_cleanup_manifests_deleted", MT_GAUGE,
                                          "Manifests deleted by the last cleanup run.", ""};
static const struct metric_desc m_freed = {
    "registry_cleanup_freed_bytes", MT_GAUGE,
    "Space freed by the last cleanup run: storage_du = storage_path before minus after the "
    "GC, blob_sum = sizes of the blobs no kept manifest references.",
    "bytes"};
static const struct metric_desc m_duration = {"registry_cleanup_duration_seconds", MT_GAUGE,
                                              "Duration of the last cleanup run.", "seconds"};
static const struct metric_desc m_last_ok = {
    "registry_cleanup_last_success_timestamp_seconds", MT_GAUGE,
    "When a cleanup run last succeeded (Unix time).", "seconds"};

static const struct metric_desc m_last_run = {
    "registry_cleanup_last_run_timestamp_seconds", MT_GAUGE,
    "When the last cleanup run (not a dry run) finished, whatever its outcome (Unix time).",
    "seconds"};

static int render(struct series_buf *sb, const struct cleanup_state *st)
{
    int rc = 0;
    for (int i = 0; i < 4; i++)
        rc |= sb_set(sb, &m_runs, (double)st->runs[i], "status", cl_status_name((enum cl_status)i),
                     (const char *)NULL);
    for (size_t i = 0; i < st->n; i++)
        rc |= sb_set(sb, &m_deleted, (double)st->deleted[i], "repository", st->repo[i],
                     (const char *)NULL);
    rc |= sb_set(sb, &m_errors, (double)st->errors, (const char *)NULL);
    if (st->last_success_ms > 0)
        rc |= sb_set(sb, &m_last_ok, (double)st->last_success_ms / 1000.0, (const char *)NULL);
    if (st->last_status < 0)
        return rc ? -1 : 0;
    rc |= sb_set(sb, &m_last_run, (double)st->last_run_ms / 1000.0, (const char *)NULL);
    rc |= sb_set(sb, &m_scanned, (double)st->last_scanned, (const char *)NULL);
    rc |= sb_set(sb, &m_repos, (double)st->last_repos, (const char *)NULL);
    for (int i = 1; i < CL_NREASONS; i++)
        rc |= sb_set(sb, &m_kept, (double)st->last_kept[i], "reason", cl_reason_name(i),
                     (const char *)NULL);
    rc |= sb_set(sb, &m_mdel, (double)st->last_manifests_deleted, (const char *)NULL);
    rc |= sb_set(sb, &m_freed, (double)st->last_blob_bytes, "method", "blob_sum",
                 (const char *)NULL);
    if (st->last_du_freed >= 0)
        rc |= sb_set(sb, &m_freed, (double)st->last_du_freed, "method", "storage_du",
                     (const char *)NULL);
    rc |= sb_set(sb, &m_duration, st->last_duration_s, (const char *)NULL);
    return rc ? -1 : 0;
}

int cleanup_metrics_publish(const char *state_dir, struct series_buf *sb)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/cleanup.state", state_dir);
    struct cleanup_state st;
    cleanup_state_load(path, &st); /* written by rename: always whole */
    int rc = render(sb, &st);
    cleanup_state_free(&st);
    return rc;
}

const struct run_job cleanup_run_job = {.job = "registry_cleanup",
                                        .publish = cleanup_metrics_publish};
