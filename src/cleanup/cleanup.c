/* The registry cleanup run (cleanup.h), step by step: setup (rules,
 * include/exclude, registry URL and client), scan (cleanup_scan.c), plan
 * (cleanup_plan.c), apply (cleanup_apply.c); the report is
 * cleanup_report.c, the registry answers' parsers cleanup_manifest.c.
 * What the files share: cleanup_int.h. */
#include "cleanup.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup_int.h"
#include "log.h"

void cleanup_overrides_init(struct cleanup_overrides *ov)
{
    memset(ov, 0, sizeof *ov);
    ov->max_deletions = -1;
    ov->concurrency = -1;
}

const char *cl_opt(const char *ov, const char *cfg)
{
    return ov ? ov : cfg ? cfg : "";
}

int64_t cl_concurrency(const struct cfg_cleanup *cc, const struct cleanup_overrides *ov)
{
    if (ov->concurrency > 0)
        return ov->concurrency;
    return cc->concurrency >= 1 && cc->concurrency <= 64 ? cc->concurrency : 4;
}

const char *cl_status_name(enum cl_status s)
{
    switch (s) {
    case CL_OK:
        return "success";
    case CL_FAILED:
        return "failure";
    case CL_ABORTED_MAX:
        return "aborted_max_deletions";
    case CL_DELETE_DISABLED:
        return "delete_disabled";
    }
    return "?";
}

const char *cl_reason_name(int r)
{
    if (r == CL_REASON_DELETE)
        return "delete";
    if (r > 0 && r <= KEEP_YOUNG)
        return keep_reason_name((enum keep_reason)r);
    if (r == CL_REASON_SHARED)
        return "shared_digest";
    if (r == CL_REASON_INDEX_CHILD)
        return "index_child";
    if (r == CL_REASON_ERROR)
        return "error";
    return "?";
}

/* The [cleanup] keys and the overrides, checked: the rules, the
 * include/exclude expressions, the registry URL (credentials taken out of
 * it) and its client. -1 with e->msg. */
static int run_setup(struct cl_run *run, struct cfg_cleanup *cc_url, char **url_user,
                     char **url_password, struct err *e)
{
    const struct cfg_cleanup *cc = run->cc;
    const struct cleanup_overrides *ov = run->ov;
    struct cleanup_result *res = run->res;
    const char *include_repositories = cl_opt(ov->include_repositories, cc->include_repositories);
    const char *exclude_repositories = cl_opt(ov->exclude_repositories, cc->exclude_repositories);
    if (*include_repositories) {
        if (regcomp(&run->inc, include_repositories, REG_EXTENDED | REG_NOSUB) != 0) {
            err_set(e, "[cleanup] include_repositories: bad regular expression");
            return -1;
        }
        run->has_inc = true;
    }
    if (*exclude_repositories) {
        if (regcomp(&run->exc, exclude_repositories, REG_EXTENDED | REG_NOSUB) != 0) {
            err_set(e, "[cleanup] exclude_repositories: bad regular expression");
            return -1;
        }
        run->has_exc = true;
    }
    if (!cc->registry_url || !*cc->registry_url) {
        err_set(e, "[cleanup] registry_url is not set");
        return -1;
    }
    /* user:password@ in registry_url: the credentials (unless username is
     * set), never part of a URL that is requested or logged (issue 18) */
    if (!(res->registry = rm_url_take_userinfo(cc->registry_url, url_user, url_password)))
        goto oom;
    *cc_url = *cc;
    if (*url_user && !(cc->username && *cc->username)) {
        cc_url->username = *url_user;
        cc_url->password = *url_password;
    }
    size_t bl = strlen(res->registry);
    while (bl > 0 && res->registry[bl - 1] == '/')
        res->registry[--bl] = '\0';
    if (bl >= 3 && strcmp(res->registry + bl - 3, "/v2") == 0)
        res->registry[bl - 3] = '\0';
    run->cc = cc_url;
    if (!(run->g = reg_new(res->registry, cc_url, ov, run->stop)))
        goto oom;
    return 0;
oom:
    err_set(e, "out of memory");
    return -1;
}

/* The run: setup, scan, plan, apply (not in a dry run); the outcome in
 * res->status and res->message. */
int cleanup_run(const struct cfg_cleanup *cc, const struct cleanup_overrides *ov,
                const volatile sig_atomic_t *stop, struct cleanup_result *res, struct err *e)
{
    struct cleanup_overrides none;
    if (!ov) {
        cleanup_overrides_init(&none);
        ov = &none;
    }
    memset(res, 0, sizeof *res);
    res->dry_run = ov->dry_run;
    res->du_before = res->du_after = -1;
    res->started_ms = now_ms();
    struct cl_run run = {.cc = cc, .ov = ov, .stop = stop, .res = res};
    struct cfg_cleanup cc_url;
    char *url_user = NULL, *url_password = NULL;
    if (cleanup_rules_init(&run.rules, cc, e) < 0)
        return -1;
    int rc = -1;
    if (run_setup(&run, &cc_url, &url_user, &url_password, e) < 0)
        goto out;
    rc = 0; /* from here on, problems are the run's status, not a setup error */
    log_info("cleanup: %s%s: days_to_keep=%lld keep_last=%lld", res->registry,
             ov->dry_run ? " (dry run)" : "", (long long)cc->days_to_keep,
             (long long)cc->keep_last);

    int sr = cl_scan(&run);
    if (sr < 0)
        goto oom_run;
    if (sr > 0)
        goto done;
    if (stop && *stop) {
        res->status = CL_FAILED;
        snprintf(res->message, sizeof res->message, "stopped by a signal");
        goto done;
    }
    if (cl_plan(&run) < 0)
        goto oom_run;
    if (res->status == CL_ABORTED_MAX || ov->dry_run)
        goto done;
    cl_apply(&run);
done:
    if (res->status == CL_OK && res->errors)
        res->status = CL_FAILED;
    if (res->status == CL_FAILED && !res->message[0])
        snprintf(res->message, sizeof res->message, "%llu errors (see the log)",
                 (unsigned long long)res->errors);
    res->finished_ms = now_ms();
    goto out;
oom_run:
    res->status = CL_FAILED;
    res->errors++;
    snprintf(res->message, sizeof res->message, "out of memory");
    res->finished_ms = now_ms();
out:
    reg_free(run.g);
    free(url_user);
    free(url_password);
    if (run.has_inc)
        regfree(&run.inc);
    if (run.has_exc)
        regfree(&run.exc);
    cleanup_rules_free(&run.rules);
    return rc;
}

void cleanup_result_free(struct cleanup_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_repos; i++) {
        struct cl_repo *rp = &r->repos[i];
        for (size_t k = 0; k < rp->n_tags; k++) {
            free(rp->tags[k].tag);
            free(rp->tags[k].digest);
        }
        free(rp->tags);
        for (size_t k = 0; k < rp->n_m; k++) {
            struct cl_manifest *m = &rp->m[k];
            free(m->digest);
            free(m->media_type);
            strv_free(m->children, m->n_children);
            for (size_t b = 0; b < m->n_blobs; b++)
                free(m->blobs[b].digest);
            free(m->blobs);
        }
        free(rp->m);
        free(rp->name);
    }
    free(r->repos);
    free(r->registry);
    memset(r, 0, sizeof *r);
}
