/* The registry's answers, parsed (cleanup_manifest.h): catalog pages, tags
 * lists, manifests of the four media types, config blobs. */
#include "cleanup_manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cleanup_int.h"
#include "json_util.h"
#include "skopeo.h"

int64_t cl_parse_time(const char *s)
{
    int64_t ms;
    if (!s || parse_iso8601_ms(s, &ms) < 0)
        return -1;
    return ms;
}

int cl_strv_push(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return -1;
    *v = nv;
    if (!(nv[*n] = strdup(s)))
        return -1;
    (*n)++;
    return 0;
}

void cl_printable(const char *s, char *out, size_t n)
{
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && k + 4 < n; p++)
        out[k++] = *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\' ? (char)*p : '?';
    if (s && strlen(s) > k && n > 4) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[n ? k : 0] = '\0';
}

int cl_parse_names(const char *what, const char *body, size_t len, const char *ctype,
                   const char *key, char ***v, size_t *n, struct err *e)
{
    json_object *j = NULL, *arr = NULL;
    if (jd_parse(what, body, len, ctype, &j, e) < 0)
        return -1;
    int rc = 0;
    if (!json_object_is_type(j, json_type_object)) {
        err_set(e, "%s: answer is a JSON %s, not an object", what, jd_type_name(j));
        rc = -1;
    } else if (json_object_object_get_ex(j, key, &arr) &&
               !json_object_is_type(arr, json_type_null) &&
               !json_object_is_type(arr, json_type_array)) {
        err_set(e, "%s: \"%s\" is a JSON %s, not an array", what, key, jd_type_name(arr));
        rc = -1;
    }
    /* absent or null (a repository whose tags were all deleted): none */
    for (size_t i = 0; rc == 0 && arr && json_object_is_type(arr, json_type_array) &&
                       i < json_object_array_length(arr);
         i++) {
        json_object *s = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(s, json_type_string)) {
            err_set(e, "%s: \"%s\"[%zu] is a JSON %s, not a string", what, key, i, jd_type_name(s));
            rc = -1;
        } else if (cl_strv_push(v, n, json_object_get_string(s)) < 0) {
            err_set(e, "out of memory");
            rc = -1;
        }
    }
    json_object_put(j);
    return rc;
}

void cl_parsed_manifest_free(struct cl_parsed_manifest *pm)
{
    for (size_t i = 0; i < pm->n_blobs; i++)
        free(pm->blobs[i].digest);
    free(pm->blobs);
    strv_free(pm->children, pm->n_children);
    free(pm->child_sizes);
    memset(pm, 0, sizeof *pm);
}

int cl_blob_push(struct cl_blob **v, size_t *n, const char *digest, uint64_t size)
{
    struct cl_blob *nb = realloc(*v, (*n + 1) * sizeof *nb);
    if (!nb)
        return -1;
    *v = nb;
    if (!(nb[*n].digest = strdup(digest)))
        return -1;
    nb[(*n)++].size = size;
    return 0;
}

/* {"digest": "<algo:hex>", "size": N} -> digest (validated) and size. */
static int descriptor(const char *what, const char *where, json_object *o, const char **digest,
                      uint64_t *size, struct err *e)
{
    json_object *d = NULL, *s = NULL;
    char pb[120];
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "digest", &d) ||
        !json_object_is_type(d, json_type_string)) {
        err_set(e, "%s: %s has no \"digest\" string", what, where);
        return -1;
    }
    *digest = json_object_get_string(d);
    if (!skopeo_valid_digest(*digest)) {
        cl_printable(*digest, pb, sizeof pb);
        err_set(e, "%s: %s: \"%s\" is not a valid digest (algorithm:hex)", what, where, pb);
        return -1;
    }
    int64_t v = 0;
    if (json_object_object_get_ex(o, "size", &s) && json_object_is_type(s, json_type_int))
        v = json_object_get_int64(s);
    *size = v > 0 ? (uint64_t)v : 0;
    return 0;
}

int cl_parse_manifest(const char *what, const char *body, size_t len, const char *ctype,
                      struct cl_parsed_manifest *pm, struct err *e)
{
    memset(pm, 0, sizeof *pm);
    json_object *j = NULL, *mt = NULL, *arr = NULL, *cfg = NULL;
    if (jd_parse(what, body, len, ctype, &j, e) < 0)
        return -1;
    int rc = -1;
    const char *d;
    uint64_t sz;
    if (!json_object_is_type(j, json_type_object)) {
        err_set(e, "%s: answer is a JSON %s, not an object", what, jd_type_name(j));
        goto out;
    }
    const char *s = ctype;
    if (json_object_object_get_ex(j, "mediaType", &mt) && json_object_is_type(mt, json_type_string))
        s = json_object_get_string(mt);
    snprintf(pm->media_type, sizeof pm->media_type, "%s", s ? s : "");
    pm->media_type[strcspn(pm->media_type, "; ")] = '\0';
    pm->is_index =
        strcmp(pm->media_type, "application/vnd.docker.distribution.manifest.list.v2+json") == 0 ||
        strcmp(pm->media_type, "application/vnd.oci.image.index.v1+json") == 0 ||
        (json_object_object_get_ex(j, "manifests", &arr) &&
         json_object_is_type(arr, json_type_array));
    if (pm->is_index) {
        if (!json_object_object_get_ex(j, "manifests", &arr) ||
            !json_object_is_type(arr, json_type_array)) {
            err_set(e, "%s: an index without a \"manifests\" array", what);
            goto out;
        }
        size_t n = json_object_array_length(arr);
        if (n > CL_MAX_CHILDREN) {
            err_set(e, "%s: an index of %zu manifests (more than %d)", what, n, CL_MAX_CHILDREN);
            goto out;
        }
        pm->child_sizes = calloc(n ? n : 1, sizeof *pm->child_sizes);
        if (!pm->child_sizes)
            goto oom;
        for (size_t i = 0; i < n; i++) {
            char where[48];
            snprintf(where, sizeof where, "manifests[%zu]", i);
            if (descriptor(what, where, json_object_array_get_idx(arr, i), &d, &sz, e) < 0)
                goto out;
            pm->child_sizes[pm->n_children] = sz;
            if (cl_strv_push(&pm->children, &pm->n_children, d) < 0)
                goto oom;
        }
        rc = 0;
        goto out;
    }
    if (json_object_object_get_ex(j, "config", &cfg)) {
        if (descriptor(what, "config", cfg, &d, &sz, e) < 0)
            goto out;
        snprintf(pm->config, sizeof pm->config, "%s", d);
        if (cl_blob_push(&pm->blobs, &pm->n_blobs, d, sz) < 0)
            goto oom;
    }
    if (json_object_object_get_ex(j, "layers", &arr) && json_object_is_type(arr, json_type_array)) {
        size_t n = json_object_array_length(arr);
        if (n > CL_MAX_LAYERS) {
            err_set(e, "%s: %zu layers (more than %d)", what, n, CL_MAX_LAYERS);
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            char where[48];
            snprintf(where, sizeof where, "layers[%zu]", i);
            if (descriptor(what, where, json_object_array_get_idx(arr, i), &d, &sz, e) < 0)
                goto out;
            if (cl_blob_push(&pm->blobs, &pm->n_blobs, d, sz) < 0)
                goto oom;
        }
    }
    rc = 0;
    goto out;
oom:
    err_set(e, "out of memory");
out:
    if (rc < 0)
        cl_parsed_manifest_free(pm);
    json_object_put(j);
    return rc;
}

int cl_parse_created(const char *what, const char *body, size_t len, const char *ctype,
                     int64_t *created, struct err *e)
{
    json_object *j = NULL, *c;
    *created = 0;
    if (jd_parse(what, body, len, ctype, &j, e) < 0)
        return -1;
    if (!json_object_is_type(j, json_type_object)) {
        err_set(e, "%s: answer is a JSON %s, not an object", what, jd_type_name(j));
        json_object_put(j);
        return -1;
    }
    /* absent, not a string or not a date: unknown (0), the rules decide */
    if (json_object_object_get_ex(j, "created", &c) && json_object_is_type(c, json_type_string)) {
        int64_t ms = cl_parse_time(json_object_get_string(c));
        *created = ms > 0 ? ms : 0;
    }
    json_object_put(j);
    return 0;
}
