/* The plan of a cleanup run (cleanup_int.h: cl_plan): cleanup_decide() per
 * tag (cleanup_rules.h), then per digest (deleted only when every tag
 * pointing at it is deletable and no kept index lists it), indexes deleted
 * whole, the final reason per tag and the bytes of blobs no kept manifest
 * references. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup_int.h"
#include "log.h"

struct cl_manifest *cl_find_m(struct cl_repo *rp, const char *digest)
{
    for (size_t i = 0; i < rp->n_m; i++)
        if (strcmp(rp->m[i].digest, digest) == 0)
            return &rp->m[i];
    return NULL;
}

struct cl_manifest *cl_add_m(struct cl_repo *rp, const char *digest)
{
    struct cl_manifest *nm = realloc(rp->m, (rp->n_m + 1) * sizeof *nm);
    if (!nm)
        return NULL;
    rp->m = nm;
    struct cl_manifest *m = &nm[rp->n_m];
    memset(m, 0, sizeof *m);
    if (!(m->digest = strdup(digest)))
        return NULL;
    rp->n_m++;
    return m;
}

static int cmp_rank(const void *a, const void *b)
{
    const struct cl_tag *x = *(const struct cl_tag *const *)a,
                        *y = *(const struct cl_tag *const *)b;
    int64_t cx = x->created_ms > 0 ? x->created_ms : 0, cy = y->created_ms > 0 ? y->created_ms : 0;
    if (cx != cy)
        return cx > cy ? -1 : 1;
    return strcmp(x->tag, y->tag);
}

static bool child_of_kept_index(struct cl_repo *rp, const char *digest, const char **by)
{
    for (size_t i = 0; i < rp->n_m; i++) {
        struct cl_manifest *m = &rp->m[i];
        if (!m->is_index || m->delete)
            continue;
        for (size_t k = 0; k < m->n_children; k++)
            if (strcmp(m->children[k], digest) == 0) {
                *by = m->kept_by ? m->kept_by : m->digest;
                return true;
            }
    }
    return false;
}

static int plan_repo(const struct cleanup_rules *rules, struct cl_repo *rp, int64_t now,
                     struct cleanup_result *res)
{
    bool broken = rp->error[0] != '\0';
    /* rank: newest first, unknown dates last */
    struct cl_tag **order = calloc(rp->n_tags ? rp->n_tags : 1, sizeof *order);
    if (!order)
        return -1;
    for (size_t i = 0; i < rp->n_tags; i++) {
        struct cl_tag *t = &rp->tags[i];
        struct cl_manifest *m = t->digest ? cl_find_m(rp, t->digest) : NULL;
        t->created_ms = m ? m->created_ms : 0;
        order[i] = t;
        if (!t->digest || (m && m->result[0] == '!'))
            broken = true;
    }
    qsort(order, rp->n_tags, sizeof *order, cmp_rank);
    for (size_t i = 0; i < rp->n_tags; i++)
        order[i]->rule = cleanup_decide(rules, order[i]->tag, order[i]->created_ms, i, now);
    free(order);
    /* per digest: deleted only when every tag pointing at it is deletable */
    for (size_t i = 0; i < rp->n_m; i++) {
        struct cl_manifest *m = &rp->m[i];
        m->delete = !broken && m->result[0] != '!';
        enum keep_reason best = KEEP_NONE;
        for (size_t k = 0; k < rp->n_tags; k++) {
            struct cl_tag *t = &rp->tags[k];
            if (!t->digest || strcmp(t->digest, m->digest) != 0)
                continue;
            if (t->rule != KEEP_NONE && (best == KEEP_NONE || t->rule < best)) {
                best = t->rule;
                m->kept_by = t->tag;
            }
        }
        if (best != KEEP_NONE)
            m->delete = false;
    }
    /* a child of a kept index is kept (deleting it breaks the index) */
    for (size_t i = 0; i < rp->n_m; i++) {
        const char *by;
        if (rp->m[i].delete &&child_of_kept_index(rp, rp->m[i].digest, &by)) {
            rp->m[i].delete = false;
            rp->m[i].kept_by = by;
            rp->m[i].kept_by_index = true;
        }
    }
    /* an index is deleted whole: its children too, unless something kept uses them */
    size_t n_before = rp->n_m;
    for (size_t i = 0; i < n_before; i++) {
        if (!rp->m[i].is_index || !rp->m[i].delete)
            continue;
        for (size_t k = 0; k < rp->m[i].n_children; k++) {
            const char *cd = rp->m[i].children[k], *by;
            if (cl_find_m(rp, cd) || child_of_kept_index(rp, cd, &by))
                continue;
            struct cl_manifest *c = cl_add_m(rp, cd);
            if (!c)
                return -1;
            c->delete = true;
            c->child_only = true;
            c->media_type = strdup("index child");
        }
    }
    /* final reason per tag */
    for (size_t k = 0; k < rp->n_tags; k++) {
        struct cl_tag *t = &rp->tags[k];
        struct cl_manifest *m = t->digest ? cl_find_m(rp, t->digest) : NULL;
        res->tags_scanned++;
        if (!m || m->result[0] == '!') {
            t->reason = CL_REASON_ERROR;
        } else if (t->rule != KEEP_NONE) {
            t->reason = (int)t->rule;
        } else if (m->delete) {
            t->reason = CL_REASON_DELETE;
        } else if (broken) {
            t->reason = CL_REASON_ERROR;
        } else if (m->kept_by_index) {
            t->reason = CL_REASON_INDEX_CHILD;
            t->kept_by = m->kept_by;
        } else {
            t->reason = CL_REASON_SHARED;
            t->kept_by = m->kept_by;
        }
        if (t->reason == CL_REASON_DELETE)
            res->tags_to_delete++;
        else
            res->kept[t->reason]++;
        char c[32] = "unknown";
        if (t->created_ms > 0) {
            time_t tt = (time_t)(t->created_ms / 1000);
            struct tm tm;
            gmtime_r(&tt, &tm);
            strftime(c, sizeof c, "%Y-%m-%d %H:%M:%S", &tm);
        }
        if (t->reason == CL_REASON_DELETE)
            log_info("%s:%s: delete (%s, created %s)", rp->name, t->tag, t->digest, c);
        else if (t->kept_by)
            log_info("%s:%s: keep (%s: kept by tag %s)", rp->name, t->tag,
                     cl_reason_name(t->reason), t->kept_by);
        else
            log_info("%s:%s: keep (%s)", rp->name, t->tag, cl_reason_name(t->reason));
    }
    for (size_t i = 0; i < rp->n_m; i++) /* every DELETE request, index children included */
        if (rp->m[i].delete)
            res->manifests_to_delete++;
    if (broken && rp->n_tags)
        log_warn("%s: some tags could not be read: nothing is deleted in this repository",
                 rp->name);
    return 0;
}

struct blob_ref {
    const char *digest;
    uint64_t size;
    bool kept;
};

static int cmp_blob(const void *a, const void *b)
{
    return strcmp(((const struct blob_ref *)a)->digest, ((const struct blob_ref *)b)->digest);
}

/* Sum of the sizes of blobs referenced by deleted manifests and by no kept one. */
static uint64_t unreferenced_bytes(const struct cleanup_result *res)
{
    size_t n = 0;
    for (size_t r = 0; r < res->n_repos; r++)
        for (size_t i = 0; i < res->repos[r].n_m; i++)
            n += res->repos[r].m[i].n_blobs;
    struct blob_ref *v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return 0;
    size_t k = 0;
    for (size_t r = 0; r < res->n_repos; r++)
        for (size_t i = 0; i < res->repos[r].n_m; i++) {
            const struct cl_manifest *m = &res->repos[r].m[i];
            for (size_t b = 0; b < m->n_blobs; b++)
                v[k++] = (struct blob_ref){m->blobs[b].digest, m->blobs[b].size, !m->delete};
        }
    qsort(v, n, sizeof *v, cmp_blob);
    uint64_t sum = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        bool kept = false;
        while (j < n && strcmp(v[j].digest, v[i].digest) == 0)
            kept |= v[j++].kept;
        if (!kept)
            sum += v[i].size;
        i = j;
    }
    free(v);
    return sum;
}

int cl_plan(struct cl_run *run)
{
    struct cleanup_result *res = run->res;
    int64_t now = now_ms();
    for (size_t r = 0; r < res->n_repos; r++)
        if (plan_repo(&run->rules, &res->repos[r], now, res) < 0)
            return -1;
    res->blob_bytes = unreferenced_bytes(res);
    log_info("cleanup: plan: %zu repositories, %llu tags, %llu tags and %llu manifests to delete, "
             "%llu bytes of blobs no longer referenced",
             res->n_repos, (unsigned long long)res->tags_scanned,
             (unsigned long long)res->tags_to_delete, (unsigned long long)res->manifests_to_delete,
             (unsigned long long)res->blob_bytes);
    if (res->errors)
        res->status = CL_FAILED;
    int64_t max_deletions =
        run->ov->max_deletions >= 0 ? run->ov->max_deletions : run->cc->max_deletions;
    if (max_deletions > 0 && res->manifests_to_delete > (uint64_t)max_deletions) {
        res->status = CL_ABORTED_MAX;
        snprintf(res->message, sizeof res->message,
                 "the plan deletes %llu manifests, more than max_deletions=%lld: nothing deleted",
                 (unsigned long long)res->manifests_to_delete, (long long)max_deletions);
        log_error("cleanup: %s", res->message);
    }
    return 0;
}
