/* skopeo: see skopeo.h (the installed library's API) and skopeo_int.h
 * (how the library is split). This file: the capped output buffer, the
 * operation and error-type names, the error classifier, options and
 * results. Depends on libc only. */
#include "skopeo.h"
#include "skopeo_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ---------------------------------------------------- */

int sk_sbuf_add(struct sbuf *b, const char *p, size_t n)
{
    if (b->max && b->len + n > b->max) {
        b->truncated = true;
        n = b->max > b->len ? b->max - b->len : 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *nd = realloc(b->d, nc);
        if (!nd)
            return -1;
        b->d = nd;
        b->cap = nc;
    }
    if (n)
        memcpy(b->d + b->len, p, n);
    b->len += n;
    b->d[b->len] = '\0';
    return 0;
}

char *sk_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

static bool ci_contains(const char *hay, const char *needle)
{
    return hay && strcasestr(hay, needle) != NULL;
}

const char *skopeo_op_name(enum skopeo_op op)
{
    static const char *const n[] = {"copy", "inspect", "delete", "manifest_digest"};
    return (unsigned)op < SKOPEO_OP_COUNT ? n[op] : "unknown";
}

const char *skopeo_error_type_name(enum skopeo_error_type t)
{
    static const char *const n[] = {"",
                                    "manifest_unknown",
                                    "unauthorized",
                                    "denied",
                                    "connection_refused",
                                    "tls",
                                    "timeout",
                                    "invalid_reference",
                                    "not_found",
                                    "rate_limited",
                                    "no_space",
                                    "other"};
    return (unsigned)t < SKOPEO_ERR_COUNT ? n[t] : "other";
}

enum skopeo_error_type skopeo_classify_error(const char *s)
{
    static const struct {
        const char *pat;
        enum skopeo_error_type t;
    } rules[] = {
        {"manifest unknown", SKOPEO_ERR_MANIFEST_UNKNOWN},
        {"http response to https client", SKOPEO_ERR_TLS},
        {"x509:", SKOPEO_ERR_TLS},
        {"tls:", SKOPEO_ERR_TLS},
        {"tls handshake", SKOPEO_ERR_TLS},
        {"certificate", SKOPEO_ERR_TLS},
        {"toomanyrequests", SKOPEO_ERR_RATE_LIMITED},
        {"too many requests", SKOPEO_ERR_RATE_LIMITED},
        {"unauthorized", SKOPEO_ERR_UNAUTHORIZED},
        {"authentication required", SKOPEO_ERR_UNAUTHORIZED},
        {"denied", SKOPEO_ERR_DENIED},
        {"no space left on device", SKOPEO_ERR_NO_SPACE},
        {"connection refused", SKOPEO_ERR_CONNECTION_REFUSED},
        {"i/o timeout", SKOPEO_ERR_TIMEOUT},
        {"context deadline exceeded", SKOPEO_ERR_TIMEOUT},
        {"timeout", SKOPEO_ERR_TIMEOUT},
        {"invalid reference format", SKOPEO_ERR_INVALID_REFERENCE},
        {"invalid image name", SKOPEO_ERR_INVALID_REFERENCE},
        {"invalid transport", SKOPEO_ERR_INVALID_REFERENCE},
        {"no such host", SKOPEO_ERR_NOT_FOUND},
        {"name unknown", SKOPEO_ERR_NOT_FOUND},
        {"blob unknown", SKOPEO_ERR_NOT_FOUND},
        {"not found", SKOPEO_ERR_NOT_FOUND},
        {"no such file or directory", SKOPEO_ERR_NOT_FOUND},
        {"no such image", SKOPEO_ERR_NOT_FOUND},
    };
    if (!s || !*s)
        return SKOPEO_ERR_OTHER;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (ci_contains(s, rules[i].pat))
            return rules[i].t;
    return SKOPEO_ERR_OTHER;
}

void skopeo_options_init(struct skopeo_options *o)
{
    memset(o, 0, sizeof *o);
    o->tls_verify = -1;
}

void skopeo_result_free(struct skopeo_result *r)
{
    if (!r)
        return;
    free(r->error);
    free(r->out);
    free(r->err_out);
    free(r->digest);
    free(r->blobs);
    memset(r, 0, sizeof *r);
}
