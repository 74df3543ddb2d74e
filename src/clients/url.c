#include "url.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

/* The parts of url libcurl parses: scheme, host and port (with
 * port_flags: CURLU_DEFAULT_PORT, or 0 = only a port the URL names, *port
 * NULL when it names none). Returns 0, or -1 with nothing to free. */
static int parts(const char *url, char **scheme, char **host, char **port, unsigned port_flags)
{
    *scheme = *host = *port = NULL;
    CURLU *u = curl_url();
    CURLUcode pc = CURLUE_OK;
    int rc = -1;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, host, 0) == CURLUE_OK && **host &&
        ((pc = curl_url_get(u, CURLUPART_PORT, port, port_flags)) == CURLUE_OK ||
         pc == CURLUE_NO_PORT))
        rc = 0;
    curl_url_cleanup(u);
    if (rc < 0) {
        curl_free(*scheme);
        curl_free(*host);
        curl_free(*port);
        *scheme = *host = *port = NULL;
    }
    return rc;
}

int url_split(const char *url, bool *https, char *host, size_t hostlen, int *port)
{
    char *scheme, *h, *p;
    if (parts(url, &scheme, &h, &p, CURLU_DEFAULT_PORT) < 0)
        return -1;
    int rc = -1;
    const char *hs = h;
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        hs++;
        hl -= 2;
    }
    char *end;
    long pt = p ? strtol(p, &end, 10) : 0;
    if (!hl || (host && hl >= hostlen) || !p || *end || pt < 1 || pt > 65535)
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
    return rc;
}

int url_origin(const char *url, char *out, size_t n)
{
    char *scheme, *h, *p;
    if (n)
        out[0] = '\0';
    if (parts(url, &scheme, &h, &p, 0) < 0)
        return -1;
    int l = snprintf(out, n, "%s://%s%s%s", scheme, h, p ? ":" : "", p ? p : "");
    curl_free(scheme);
    curl_free(h);
    curl_free(p);
    if (l < 0 || (size_t)l >= n) {
        if (n)
            out[0] = '\0';
        return -1;
    }
    return 0;
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
