/* skopeo_ref: image references (skopeo.h: skopeo_transport,
 * skopeo_check_reference and the registry's name grammar; skopeo_int.h:
 * the docker:// helpers). Pure functions on strings; libc only. */
#include "skopeo.h"
#include "skopeo_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void skopeo_transport(const char *ref, char *out, size_t n)
{
    static const char *const known[] = {
        "docker",        "oci", "dir",     "docker-archive", "oci-archive", "containers-storage",
        "docker-daemon", "sif", "tarball", "ostree"};
    const char *c = ref ? strchr(ref, ':') : NULL;
    snprintf(out, n, "unknown");
    if (!c)
        return;
    size_t l = (size_t)(c - ref);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i]) == l && strncmp(ref, known[i], l) == 0) {
            snprintf(out, n, "%s", known[i]);
            return;
        }
}

bool sk_is_docker(const char *ref)
{
    return ref && strncmp(ref, "docker://", 9) == 0;
}

/* "docker://host:port/repo/x:tag" -> host ("docker.io" for Docker Hub names). */
void sk_docker_host(const char *ref, char *out, size_t n)
{
    const char *p = ref + 9;
    const char *slash = strchr(p, '/');
    size_t l = slash ? (size_t)(slash - p) : 0;
    if (slash &&
        (memchr(p, '.', l) || memchr(p, ':', l) || (l == 9 && !strncmp(p, "localhost", 9))))
        snprintf(out, n, "%.*s", (int)l, p);
    else
        snprintf(out, n, "docker.io");
}

/* "docker://host/repo:tag" or "...@sha256:x" -> "docker://host/repo" (malloc'd). */
char *sk_docker_repo(const char *ref)
{
    const char *at = strchr(ref, '@');
    size_t l = at ? (size_t)(at - ref) : strlen(ref);
    const char *slash = memrchr(ref + 9, '/', l - 9);
    const char *colon = memrchr(ref + 9, ':', l - 9);
    if (colon && (!slash || colon > slash))
        l = (size_t)(colon - ref);
    char *s = malloc(l + 1);
    if (s) {
        memcpy(s, ref, l);
        s[l] = '\0';
    }
    return s;
}

/* ---- the registry's name grammar ------------------------------------- */

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)* over s[0..n) */
static bool valid_component(const char *s, size_t n)
{
    size_t i = 0;
    for (;;) {
        size_t st = i;
        while (i < n && is_lower_alnum(s[i]))
            i++;
        if (i == st)
            return false; /* a separator must be followed by [a-z0-9] */
        if (i == n)
            return true;
        if (s[i] == '.')
            i++;
        else if (s[i] == '_')
            i += i + 1 < n && s[i + 1] == '_' ? 2 : 1;
        else if (s[i] == '-')
            while (i < n && s[i] == '-')
                i++;
        else
            return false;
    }
}

bool skopeo_valid_repository(const char *name)
{
    if (!name)
        return false;
    size_t len = strlen(name);
    if (len == 0 || len > 255)
        return false;
    for (const char *p = name;;) {
        const char *sl = strchr(p, '/');
        size_t l = sl ? (size_t)(sl - p) : strlen(p);
        if (!valid_component(p, l))
            return false;
        if (!sl)
            return true;
        p = sl + 1;
    }
}

bool skopeo_valid_tag(const char *tag)
{
    if (!tag || !is_word(tag[0]))
        return false;
    size_t i = 1;
    for (; tag[i]; i++)
        if (i >= 128 || !(is_word(tag[i]) || tag[i] == '.' || tag[i] == '-'))
            return false;
    return true;
}

bool skopeo_valid_digest(const char *d)
{
    if (!d)
        return false;
    const char *colon = strchr(d, ':');
    if (!colon || colon == d || strlen(d) > 255)
        return false;
    /* algorithm: [a-z0-9]+(?:[.+_-][a-z0-9]+)* */
    bool need = true;
    for (const char *p = d; p < colon; p++) {
        if (is_lower_alnum(*p))
            need = false;
        else if (!need && (*p == '.' || *p == '+' || *p == '_' || *p == '-'))
            need = true;
        else
            return false;
    }
    if (need)
        return false;
    size_t n = 0;
    for (const char *p = colon + 1; *p; p++, n++)
        if (!(is_word(*p) || *p == '=' || *p == '-'))
            return false;
    if (n < 32)
        return false;
    if ((size_t)(colon - d) == 6 && strncmp(d, "sha256", 6) == 0) {
        if (n != 64)
            return false;
        for (const char *p = colon + 1; *p; p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                return false;
    }
    return true;
}

/* host[:port]: dot-separated [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?, or [IPv6] */
static bool valid_host(const char *h, size_t n)
{
    size_t end = n;
    const char *colon = NULL;
    if (n && h[0] == '[') {
        const char *rb = memchr(h, ']', n);
        if (!rb || rb == h + 1)
            return false;
        for (const char *p = h + 1; p < rb; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':')
                return false;
        end = (size_t)(rb - h) + 1;
        if (end < n && h[end] != ':')
            return false;
        colon = end < n ? h + end : NULL;
    } else {
        colon = memchr(h, ':', n);
        end = colon ? (size_t)(colon - h) : n;
        if (end == 0)
            return false;
        size_t lab = 0;
        for (size_t i = 0; i < end; i++) {
            char c = h[i];
            if (c == '.') {
                if (lab == 0 || h[i - 1] == '-')
                    return false;
                lab = 0;
            } else if (isalnum((unsigned char)c) || (c == '-' && lab > 0)) {
                lab++;
            } else
                return false;
        }
        if (lab == 0 || h[end - 1] == '-')
            return false;
    }
    if (colon) {
        size_t pl = n - (size_t)(colon - h) - 1;
        if (pl == 0 || pl > 5)
            return false;
        for (const char *p = colon + 1; p < h + n; p++)
            if (!isdigit((unsigned char)*p))
                return false;
    }
    return true;
}

bool skopeo_check_reference(const char *ref, char *why, size_t n)
{
    if (!ref || !*ref) {
        snprintf(why, n, "empty image reference");
        return false;
    }
    if (ref[0] == '-') {
        snprintf(why, n, "image reference \"%.100s\" starts with '-' (it would be an option)", ref);
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)ref; *p; p++)
        if (*p < 0x20 || *p == 0x7f) {
            snprintf(why, n, "image reference contains a control character (byte %u)", *p);
            return false;
        }
    if (strlen(ref) > 4096) {
        snprintf(why, n, "image reference \"%.60s...\" is longer than 4096 bytes", ref);
        return false;
    }
    if (!sk_is_docker(ref))
        return true; /* local transports: paths, checked by skopeo */
    const char *p = ref + 9, *slash = strchr(p, '/');
    size_t hl = slash ? (size_t)(slash - p) : 0;
    /* the first component is a registry host when it looks like one */
    if (slash && (memchr(p, '.', hl) || memchr(p, ':', hl) || memchr(p, '[', hl) ||
                  (hl == 9 && !strncmp(p, "localhost", 9)))) {
        if (!valid_host(p, hl)) {
            snprintf(why, n, "image reference \"%.200s\": \"%.*s\" is not a valid registry host",
                     ref, (int)(hl < 100 ? hl : 100), p);
            return false;
        }
        p = slash + 1;
    }
    char name[512];
    const char *at = strchr(p, '@');
    size_t nl = at ? (size_t)(at - p) : strlen(p);
    if (nl >= sizeof name) {
        snprintf(why, n, "image reference \"%.200s...\": repository name too long", ref);
        return false;
    }
    memcpy(name, p, nl);
    name[nl] = '\0';
    char *tag = strrchr(name, ':');
    if (tag && strchr(tag, '/'))
        tag = NULL;
    if (tag)
        *tag++ = '\0';
    if (!skopeo_valid_repository(name)) {
        snprintf(why, n,
                 "image reference \"%.200s\": \"%.200s\" is not a valid repository name "
                 "(lowercase path components [a-z0-9]+([._]|__|-*)[a-z0-9]+ separated by /)",
                 ref, name);
        return false;
    }
    if (tag && !skopeo_valid_tag(tag)) {
        snprintf(why, n,
                 "image reference \"%.200s\": \"%.140s\" is not a valid tag "
                 "([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})",
                 ref, tag);
        return false;
    }
    if (at && !skopeo_valid_digest(at + 1)) {
        snprintf(why, n, "image reference \"%.200s\": \"%.140s\" is not a valid digest", ref,
                 at + 1);
        return false;
    }
    return true;
}
