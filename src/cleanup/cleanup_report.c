/* The plan/result of a cleanup run as text (one line per tag, then the
 * deletions and a summary) or as one JSON document (cleanup.h:
 * cleanup_format_text, cleanup_format_json). */
#include <stdio.h>
#include <time.h>

#include <json-c/json.h>

#include "cleanup.h"

static void fmt_time(int64_t ms, char *out, size_t n)
{
    if (ms <= 0) {
        snprintf(out, n, "unknown");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Why a tag is deleted (older, or an unknown date when those are not kept)
 * or kept. */
static const char *tag_reason(const struct cl_tag *t)
{
    if (t->reason == CL_REASON_DELETE)
        return t->created_ms > 0 ? "older_than_days_to_keep" : "unknown_date";
    return cl_reason_name(t->reason);
}

static const char *m_kind(const struct cl_manifest *m)
{
    return m->is_index ? "index" : m->child_only ? "index-child" : "image";
}

int cleanup_format_text(const struct cleanup_result *r, struct buf *out)
{
    buf_printf(out, "# registry cleanup of %s%s\n", r->registry ? r->registry : "?",
               r->dry_run ? " (dry run: nothing deleted)" : "");
    for (size_t i = 0; i < r->n_repos; i++) {
        const struct cl_repo *rp = &r->repos[i];
        if (rp->error[0])
            buf_printf(out, "repository %s error %s\n", rp->name, rp->error);
        for (size_t k = 0; k < rp->n_tags; k++) {
            const struct cl_tag *t = &rp->tags[k];
            char c[32];
            fmt_time(t->created_ms, c, sizeof c);
            buf_printf(out, "tag %s:%s %s %s digest=%s created=%s", rp->name, t->tag,
                       t->reason == CL_REASON_DELETE ? "delete" : "keep", tag_reason(t),
                       t->digest ? t->digest : "-", c);
            if (t->kept_by)
                buf_printf(out, " kept_by=%s", t->kept_by);
            if (t->error[0])
                buf_printf(out, " error=\"%s\"", t->error);
            buf_puts(out, "\n");
        }
    }
    for (size_t i = 0; i < r->n_repos; i++) {
        const struct cl_repo *rp = &r->repos[i];
        for (size_t k = 0; k < rp->n_m; k++) {
            const struct cl_manifest *m = &rp->m[k];
            if (!m->delete)
                continue;
            buf_printf(out, "manifest %s@%s delete %s", rp->name, m->digest, m_kind(m));
            if (m->result[0])
                buf_printf(out, " result=\"%s\"", m->result);
            buf_puts(out, "\n");
        }
    }
    buf_printf(out,
               "summary status=%s repositories=%zu tags=%llu tags_to_delete=%llu "
               "tags_deleted=%llu manifests_to_delete=%llu manifests_deleted=%llu "
               "manifests_gone=%llu errors=%llu blob_bytes=%llu",
               cl_status_name(r->status), r->n_repos, (unsigned long long)r->tags_scanned,
               (unsigned long long)r->tags_to_delete, (unsigned long long)r->tags_deleted,
               (unsigned long long)r->manifests_to_delete, (unsigned long long)r->manifests_deleted,
               (unsigned long long)r->manifests_gone, (unsigned long long)r->errors,
               (unsigned long long)r->blob_bytes);
    if (r->du_before >= 0 && r->du_after >= 0)
        buf_printf(out, " storage_du_before=%lld storage_du_after=%lld storage_du_freed=%lld",
                   (long long)r->du_before, (long long)r->du_after,
                   (long long)(r->du_before - r->du_after));
    if (r->gc_ran)
        buf_printf(out, " gc_exit=%d", r->gc_exit);
    else if (r->gc_none)
        buf_puts(out, " gc=none");
    buf_printf(out, " duration=%.3fs\n", (double)(r->finished_ms - r->started_ms) / 1000.0);
    for (int i = 1; i < CL_NREASONS; i++)
        if (r->kept[i])
            buf_printf(out, "kept %s %llu\n", cl_reason_name(i), (unsigned long long)r->kept[i]);
    if (r->message[0])
        buf_printf(out, "message %s\n", r->message);
    return buf_cstr(out) ? 0 : -1;
}

static json_object *jstr(const char *s)
{
    return s ? json_object_new_string(s) : json_object_new_null();
}

int cleanup_format_json(const struct cleanup_result *r, struct buf *out)
{
    json_object *root = json_object_new_object();
    if (!root)
        return -1;
    json_object_object_add(root, "registry", jstr(r->registry));
    json_object_object_add(root, "dry_run", json_object_new_boolean(r->dry_run));
    json_object_object_add(root, "status", jstr(cl_status_name(r->status)));
    json_object_object_add(root, "message", jstr(r->message));
    json_object *repos = json_object_new_array();
    for (size_t i = 0; i < r->n_repos; i++) {
        const struct cl_repo *rp = &r->repos[i];
        json_object *jr = json_object_new_object(), *tags = json_object_new_array(),
                    *mans = json_object_new_array();
        json_object_object_add(jr, "name", jstr(rp->name));
        if (rp->error[0])
            json_object_object_add(jr, "error", jstr(rp->error));
        for (size_t k = 0; k < rp->n_tags; k++) {
            const struct cl_tag *t = &rp->tags[k];
            json_object *jt = json_object_new_object();
            char c[32];
            fmt_time(t->created_ms, c, sizeof c);
            json_object_object_add(jt, "tag", jstr(t->tag));
            json_object_object_add(jt, "digest", jstr(t->digest));
            json_object_object_add(jt, "created", t->created_ms > 0 ? jstr(c) : NULL);
            json_object_object_add(jt, "action",
                                   jstr(t->reason == CL_REASON_DELETE ? "delete" : "keep"));
            json_object_object_add(jt, "reason", jstr(tag_reason(t)));
            if (t->kept_by)
                json_object_object_add(jt, "kept_by", jstr(t->kept_by));
            if (t->error[0])
                json_object_object_add(jt, "error", jstr(t->error));
            json_object_array_add(tags, jt);
        }
        for (size_t k = 0; k < rp->n_m; k++) {
            const struct cl_manifest *m = &rp->m[k];
            json_object *jm = json_object_new_object();
            json_object_object_add(jm, "digest", jstr(m->digest));
            json_object_object_add(jm, "kind", jstr(m_kind(m)));
            json_object_object_add(jm, "media_type", jstr(m->media_type));
            json_object_object_add(jm, "action", jstr(m->delete ? "delete" : "keep"));
            if (!m->delete &&m->kept_by)
                json_object_object_add(jm, "kept_by", jstr(m->kept_by));
            if (m->result[0])
                json_object_object_add(jm, "result", jstr(m->result));
            json_object_array_add(mans, jm);
        }
        json_object_object_add(jr, "tags", tags);
        json_object_object_add(jr, "manifests", mans);
        json_object_array_add(repos, jr);
    }
    json_object_object_add(root, "repositories", repos);
    json_object *s = json_object_new_object(), *kept = json_object_new_object();
    json_object_object_add(s, "repositories", json_object_new_int64((int64_t)r->n_repos));
    json_object_object_add(s, "tags_scanned", json_object_new_int64((int64_t)r->tags_scanned));
    json_object_object_add(s, "tags_to_delete", json_object_new_int64((int64_t)r->tags_to_delete));
    json_object_object_add(s, "tags_deleted", json_object_new_int64((int64_t)r->tags_deleted));
    json_object_object_add(s, "manifests_to_delete",
                           json_object_new_int64((int64_t)r->manifests_to_delete));
    json_object_object_add(s, "manifests_deleted",
                           json_object_new_int64((int64_t)r->manifests_deleted));
    json_object_object_add(s, "manifests_already_gone",
                           json_object_new_int64((int64_t)r->manifests_gone));
    json_object_object_add(s, "errors", json_object_new_int64((int64_t)r->errors));
    json_object_object_add(s, "freed_bytes_blob_sum",
                           json_object_new_int64((int64_t)r->blob_bytes));
    if (r->du_before >= 0 && r->du_after >= 0)
        json_object_object_add(s, "freed_bytes_storage_du",
                               json_object_new_int64(r->du_before - r->du_after));
    json_object_object_add(
        s, "duration_seconds",
        json_object_new_double((double)(r->finished_ms - r->started_ms) / 1000.0));
    for (int i = 1; i < CL_NREASONS; i++)
        json_object_object_add(kept, cl_reason_name(i), json_object_new_int64((int64_t)r->kept[i]));
    json_object_object_add(s, "kept", kept);
    if (r->gc_none)
        json_object_object_add(s, "gc",
                               jstr("none: freed by the registry's own garbage collection"));
    if (r->gc_ran) {
        json_object_object_add(s, "gc_exit", json_object_new_int(r->gc_exit));
        json_object_object_add(s, "gc_summary", jstr(r->gc_summary));
    }
    json_object_object_add(root, "summary", s);
    const char *txt = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE);
    int rc = txt && buf_puts(out, txt) == 0 && buf_puts(out, "\n") == 0 ? 0 : -1;
    json_object_put(root);
    return rc;
}
