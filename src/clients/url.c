#include "url.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

/* u <- url parsed; returns the handle or NULL. */
static CURLU *parse(const char *url)
{
    CURLU *u = curl_url();
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        u = NULL;
    }
    return u;
}

int url_split(const char *url, bool *https, char *host, size_t hostlen, int *port)
{
    char *scheme = NULL, *h = NULL, *p = NULL;
    int rc = -1;
    CURLU *u = parse(url);
    if (!u || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto out;
    const char *hs = h;
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        hs++;
        hl -= 2;
    }
    if (!hl || (host && hl >= hostlen))
        goto out;
    char *end;
    long pt = strtol(p, &end, 10);
    if (*end || pt < 1 || pt > 65535)
        goto out;
    if (host) {
        memcpy(host, hs, hl);
        host[hl] = '\0';
    }
    if (https)
        *https = strcasecmp(scheme, "https") == 0;
    if (port)
        *port = (int)pt;
    rc = 0;
out:
    curl_free(scheme);
    curl_free(h);
    curl_free(p);
    curl_url_cleanup(u);
    return rc;
}

int url_origin(const char *url, char *out, size_t n)
{
    char *scheme = NULL, *h = NULL, *p = NULL;
    int rc = -1;
    if (n)
        out[0] = '\0';
    CURLU *u = parse(url);
    if (!u || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK || !*h)
        goto out;
    CURLUcode pc = curl_url_get(u, CURLUPART_PORT, &p, 0); /* only a port the URL names */
    if (pc != CURLUE_OK && pc != CURLUE_NO_PORT)
        goto out;
    int l = snprintf(out, n, "%s://%s%s%s", scheme, h, p ? ":" : "", p ? p : "");
    if (l < 0 || (size_t)l >= n) {
        if (n)
            out[0] = '\0';
        goto out;
    }
    rc = 0;
out:
    curl_free(scheme);
    curl_free(h);
    curl_free(p);
    curl_url_cleanup(u);
    return rc;
}

bool link_next(const char *link, char *out, size_t n)
{
    /* <url>; rel="next", <url>; rel="first" ... */
    for (const char *p = link; (p = strchr(p, '<'));) {
        const char *end = strchr(p, '>');
        if (!end)
            break;
        const char *rel = strstr(end, "rel=\"next\"");
        const char *comma = strchr(end, ',');
        if (rel && (!comma || rel < comma)) {
            size_t l = (size_t)(end - p - 1);
            if (l >= n)
                return false;
            memcpy(out, p + 1, l);
            out[l] = '\0';
            return true;
        }
        p = end + 1;
    }
    return false;
}

int url_escape(const char *s, struct buf *out)
{
    size_t n = strlen(s);
    if (!n)
        return 0;
    if (n > INT_MAX)
        return -1;
    char *enc = curl_easy_escape(NULL, s, (int)n);
    if (!enc)
        return -1;
    int rc = buf_puts(out, enc);
    curl_free(enc);
    return rc;
}
