/* libFuzzer target: the registry answer parsers of the cleanup
 * (cleanup_manifest.h: cl_parse_names, cl_parse_manifest, cl_parse_created), its
 * digest cache file (cleanup_cache.h) and the name grammar that guards
 * every URL (skopeo.h: skopeo_valid_*).
 *
 * Input: the first byte picks the parser, the rest is the answer body:
 *   0 catalog page  1 tags list  2..6 a manifest with Content-Type
 *   "" / Docker v2 / Docker list / OCI manifest / OCI index
 *   7 config blob   8 cache file  9 names (one per line, every validator)
 * Invariants checked: every digest a manifest yields passes the digest
 * grammar (it goes into a URL), sizes of children are kept, a created
 * date is never negative, a cache entry's digest and blobs are sha256. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup_manifest.h"
#include "cleanup_cache.h"
#include "skopeo.h"

static const char *const ctypes[] = {
    "",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
};

static void names(const char *body, size_t len)
{
    char line[600];
    for (size_t i = 0; i < len;) {
        size_t l = 0;
        while (i + l < len && body[i + l] != '\n')
            l++;
        size_t n = l < sizeof line - 1 ? l : sizeof line - 1;
        memcpy(line, body + i, n);
        line[n] = '\0';
        char why[700];
        bool repo = skopeo_valid_repository(line), tag = skopeo_valid_tag(line),
             dig = skopeo_valid_digest(line);
        bool ref = skopeo_check_reference(line, why, sizeof why);
        size_t ll = strlen(line);
        if ((repo || tag || dig) &&
            (!ll || line[0] == '-' || line[0] == '.' || strpbrk(line, "?# %\\&\"'<>")))
            abort(); /* nothing a URL or an argv would misread passes */
        if (tag && (strchr(line, '/') || strchr(line, ':') || ll > 128))
            abort();
        if (dig && strchr(line, '/'))
            abort();
        if (repo && (strchr(line, ':') || ll > 255 || strstr(line, "//") || line[ll - 1] == '/' ||
                     strstr(line, "/.") || strstr(line, "./")))
            abort();
        if (ref && line[0] == '-')
            abort();
        char pb[64];
        cl_printable(line, pb, sizeof pb);
        for (const char *p = pb; *p; p++)
            if (*p < 0x20 || *p > 0x7e || *p == '"')
                abort();
        i += l + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    unsigned kind = data[0] % 10;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    struct err e = {{0}};
    if (kind <= 1) {
        char **v = NULL;
        size_t n = 0;
        cl_parse_names("fuzz", body, len, "application/json", kind ? "tags" : "repositories", &v,
                       &n, &e);
        for (size_t i = 0; i < n; i++)
            if (!v[i])
                abort();
        strv_free(v, n);
    } else if (kind <= 6) {
        struct cl_parsed_manifest pm;
        if (cl_parse_manifest("fuzz", body, len, ctypes[kind - 2], &pm, &e) == 0) {
            if (pm.config[0] && !skopeo_valid_digest(pm.config))
                abort();
            for (size_t i = 0; i < pm.n_blobs; i++)
                if (!skopeo_valid_digest(pm.blobs[i].digest))
                    abort();
            for (size_t i = 0; i < pm.n_children; i++)
                if (!skopeo_valid_digest(pm.children[i]))
                    abort();
            if (pm.is_index && (pm.n_blobs || pm.config[0]))
                abort();
            cl_parsed_manifest_free(&pm);
        } else if (!e.msg[0] || pm.n_blobs || pm.n_children) {
            abort(); /* an error says why and leaves nothing behind */
        }
    } else if (kind == 7) {
        int64_t created = -1;
        if (cl_parse_created("fuzz", body, len, "", &created, &e) == 0 && created < 0)
            abort();
    } else if (kind == 8) {
        struct cl_cache *c = cl_cache_open(NULL, 64);
        if (c) {
            cl_cache_parse(c, body, len);
            size_t ent, skipped;
            uint64_t h, m;
            cl_cache_stats(c, &ent, &skipped, &h, &m);
            if (ent > 64)
                abort(); /* bounded */
            const struct cc_entry *x = cl_cache_get(c, "sha256:"
                                                       "0000000000000000000000000000000000000000000"
                                                       "000000000000000000000");
            if (x && (x->created_ms < 0 || !cl_sha256_digest(x->digest)))
                abort();
            cl_cache_free(c);
        }
    } else {
        names(body, len);
    }
    return 0;
}
