#include "pushgateway.h"

#include <string.h>

static int b64url(const char *s, struct buf *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    if (n == 0)
        return buf_puts(out, "="); /* an empty value is spelled "=" */
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        if (buf_append(out, q, 4) < 0)
            return -1;
    }
    return 0;
}

static int segment(const char *name, const char *value, struct buf *out)
{
    if (buf_printf(out, "/%s", name) < 0)
        return -1;
    if (!*value || strchr(value, '/'))
        return buf_puts(out, "@base64/") < 0 ? -1 : b64url(value, out);
    return buf_puts(out, "/") < 0 ? -1 : url_escape(value, out);
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

int pgw_url(const char *base, const char *job, const char *const *grouping, size_t n_grouping,
            struct buf *out)
{
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    if (buf_append(out, base, bl) < 0)
        return -1;
    return pgw_group_path(job, grouping, n_grouping, out);
}
enum send_outcome pgw_push(struct http_client *c, const char *method, const char *url,
                           const char *body, size_t len, struct http_response *r)
{
    const char *hdr = "Content-Type: text/plain; version=0.0.4; charset=utf-8";
    if (http_request(c, method, url, &hdr, 1, body, len, 0, r) < 0)
        return SEND_RETRY;
    return rw_classify(r->status);
}
