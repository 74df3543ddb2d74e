#include "pushgateway.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>

/* base64url with padding (OpenSSL's base64, then '+' -> '-', '/' -> '_') */
static int b64url(const char *s, struct buf *out)
{
    size_t n = strlen(s);
    if (n == 0)
        return buf_puts(out, "="); /* an empty value is spelled "=" */
    if (n > INT_MAX / 2)
        return -1;
    unsigned char *enc = malloc(4 * ((n + 2) / 3) + 1);
    if (!enc)
        return -1;
    int l = EVP_EncodeBlock(enc, (const unsigned char *)s, (int)n);
    for (int i = 0; i < l; i++)
        if (enc[i] == '+')
            enc[i] = '-';
        else if (enc[i] == '/')
            enc[i] = '_';
    int rc = buf_append(out, enc, (size_t)l);
    free(enc);
    return rc;
}

/* Percent-encodes everything but ALPHA DIGIT - . _ ~ (libcurl's escaper:
 * uppercase %XX, as http.c's url_escape); appends to out. */
static int escape_value(const char *value, struct buf *out)
{
    char *esc = curl_easy_escape(NULL, value, 0);
    int rc = esc ? buf_puts(out, esc) : -1;
    curl_free(esc);
    return rc;
}

static int segment(const char *name, const char *value, struct buf *out)
{
    if (buf_printf(out, "/%s", name) < 0)
        return -1;
    /* "." and ".." would be dot segments: URL normalisation removes them */
    if (!*value || strchr(value, '/') || strcmp(value, ".") == 0 || strcmp(value, "..") == 0)
        return buf_puts(out, "@base64/") < 0 ? -1 : b64url(value, out);
    return buf_puts(out, "/") < 0 ? -1 : escape_value(value, out);
}

int pgw_group_path(const char *job, const char *const *grouping, size_t n_grouping, struct buf *out)
{
    if (buf_puts(out, "/metrics") < 0 || segment("job", job, out) < 0)
        return -1;
    for (size_t i = 0; i < n_grouping; i++)
        if (segment(grouping[2 * i], grouping[2 * i + 1], out) < 0)
            return -1;
    return 0;
}

static bool unreserved(int c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* one path segment [p, p+n): a label name, optionally "@base64" */
static int check_name(const char *p, size_t n, bool *b64, size_t pos, struct err *e)
{
    *b64 = n > 7 && memcmp(p + n - 7, "@base64", 7) == 0;
    if (*b64)
        n -= 7;
    bool ok = n > 0 && (isalpha((unsigned char)p[0]) || p[0] == '_') &&
              !(n >= 2 && p[0] == '_' && p[1] == '_');
    for (size_t i = 1; ok && i < n; i++)
        ok = isalnum((unsigned char)p[i]) || p[i] == '_';
    if (!ok) {
        err_set(e, "bad label name \"%.*s\" at byte %zu of the group path", (int)(n > 64 ? 64 : n),
                p, pos);
        return -1;
    }
    return 0;
}

static int check_value(const char *p, size_t n, bool b64, size_t pos, struct err *e)
{
    if (n == 0) {
        err_set(e, "empty label value at byte %zu of the group path", pos);
        return -1;
    }
    if (b64) {
        /* base64url, '=' padding only at the end ("=" alone: empty value) */
        size_t pad = 0;
        while (pad < n && p[n - 1 - pad] == '=')
            pad++;
        bool ok = pad <= 2 && (n == 1 ? pad == 1 : n % 4 == 0 || pad == 0);
        for (size_t i = 0; ok && i < n - pad; i++)
            ok = isalnum((unsigned char)p[i]) || p[i] == '-' || p[i] == '_';
        if (!ok) {
            err_set(e, "bad base64url value at byte %zu of the group path", pos);
            return -1;
        }
        return 0;
    }
    if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
        err_set(e, "dot segment \"%.*s\" at byte %zu of the group path", (int)n, p, pos);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (unreserved((unsigned char)p[i]))
            continue;
        if (p[i] == '%' && i + 2 < n) {
            int h = hexval((unsigned char)p[i + 1]), l = hexval((unsigned char)p[i + 2]);
            int c = h < 0 || l < 0 ? -1 : h * 16 + l;
            /* only what url_escape writes: an escaped reserved byte, never NUL or '/' */
            if (c > 0 && c != '/' && !unreserved(c)) {
                i += 2;
                continue;
            }
        }
        err_set(e, "bad character 0x%02x at byte %zu of the group path", (unsigned char)p[i],
                pos + i);
        return -1;
    }
    return 0;
}

int pgw_group_path_check(const char *path, struct err *e)
{
    size_t len = strnlen(path, PGW_PATH_MAX + 1);
    if (len > PGW_PATH_MAX) {
        err_set(e, "group path longer than %d bytes", PGW_PATH_MAX);
        return -1;
    }
    if (strncmp(path, "/metrics/", 9) != 0) {
        err_set(e, "group path \"%.64s\" does not start with /metrics/", path);
        return -1;
    }
    const char *p = path + 8; /* at the '/' before the first name */
    size_t pairs = 0;
    while (*p) {
        /* p at '/': name '/' value, then '/' or the end */
        const char *name = p + 1, *sl = strchr(name, '/');
        if (!sl) {
            err_set(e, "label \"%.64s\" without a value in the group path", name);
            return -1;
        }
        bool b64;
        if (check_name(name, (size_t)(sl - name), &b64, (size_t)(name - path), e) < 0)
            return -1;
        size_t nl = (size_t)(sl - name) - (b64 ? 7 : 0);
        if (pairs == 0 && !(nl == 3 && memcmp(name, "job", 3) == 0)) {
            err_set(e, "group path must start with /metrics/job/");
            return -1;
        }
        if (pairs > 0 && nl == 3 && memcmp(name, "job", 3) == 0) {
            err_set(e, "a second job label in the group path");
            return -1;
        }
        const char *val = sl + 1, *next = strchr(val, '/');
        size_t vl = next ? (size_t)(next - val) : strlen(val);
        if (check_value(val, vl, b64, (size_t)(val - path), e) < 0)
            return -1;
        pairs++;
        p = val + vl;
    }
    return 0;
}

bool pgw_method_ok(const char *method)
{
    /* every producer pushes with PUT (main.c, cleanup_cli.c, skopeo_cli.c);
     * POST (replace metrics of the same names only) is part of
     * sender_submit_push's API. Never DELETE: the shipper deletes no group. */
    static const char *const methods[] = {"PUT", "POST"};
    for (size_t i = 0; i < NS_ARRAY_LEN(methods); i++)
        if (strcmp(method, methods[i]) == 0)
            return true;
    return false;
}

int pgw_extra_check(const char *extra, char *method, size_t method_n, const char **path,
                    struct err *e)
{
    const char *sp = strchr(extra, ' ');
    size_t ml = sp ? (size_t)(sp - extra) : 0;
    char m[16];
    if (!sp || ml == 0 || ml >= sizeof m) {
        err_set(e, "push without \"METHOD /metrics/job/...\" (\"%.64s\")", extra);
        return -1;
    }
    memcpy(m, extra, ml);
    m[ml] = '\0';
    if (!pgw_method_ok(m)) {
        err_set(e, "push method \"%.15s\" is not one the shipper writes (PUT, POST)", m);
        return -1;
    }
    if (pgw_group_path_check(sp + 1, e) < 0)
        return -1;
    if (method)
        snprintf(method, method_n, "%s", m);
    if (path)
        *path = sp + 1;
    return 0;
}

int pgw_build_url(const char *base, const char *group_path, struct buf *out)
{
    int rc = -1;
    struct err e;
    char *bpath = NULL, *url = NULL, *host0 = NULL, *host1 = NULL;
    struct buf path;
    buf_init(&path, 4096);
    CURLU *u = curl_url();
    if (!u || pgw_group_path_check(group_path, &e) < 0 ||
        curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host0, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &bpath, 0) != CURLUE_OK)
        goto out;
    size_t bl = strlen(bpath);
    while (bl && bpath[bl - 1] == '/')
        bl--;
    if (buf_append(&path, bpath, bl) < 0 || buf_puts(&path, group_path) < 0 ||
        curl_url_set(u, CURLUPART_PATH, path.data, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK)
        goto out;
    /* the result parses back to the base's host: nothing in the path moved it */
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host1, 0) != CURLUE_OK || strcmp(host0, host1) != 0)
        goto out;
    buf_reset(out);
    if (buf_puts(out, url) < 0)
        goto out;
    rc = 0;
out:
    curl_free(bpath);
    curl_free(url);
    curl_free(host0);
    curl_free(host1);
    curl_url_cleanup(u);
    buf_free(&path);
    return rc;
}

int pgw_url(const char *base, const char *job, const char *const *grouping, size_t n_grouping,
            struct buf *out)
{
    struct buf path;
    buf_init(&path, PGW_PATH_MAX);
    int rc = pgw_group_path(job, grouping, n_grouping, &path) < 0 || !buf_cstr(&path)
                 ? -1
                 : pgw_build_url(base, path.data, out);
    buf_free(&path);
    return rc;
}
