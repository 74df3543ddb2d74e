/* skopeo_authfile: credentials (skopeo_int.h). Username and password go
 * to a 0600 auth file in a private 0700 temporary directory, never to a
 * command line; extra arguments that carry credentials are refused. The
 * encoded secret is wiped from memory once written. libc and json-c. */
#include "skopeo.h"
#include "skopeo_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

bool sk_is_secret_arg(const char *a)
{
    static const char *const bad[] = {
        "--creds",          "--src-creds",          "--dest-creds",
        "--password",       "--src-password",       "--dest-password",
        "--registry-token", "--src-registry-token", "--dest-registry-token",
        "--username",       "--src-username",       "--dest-username"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t l = strlen(bad[i]);
        if (!strncmp(a, bad[i], l) && (a[l] == '\0' || a[l] == '='))
            return true;
    }
    return false;
}

static char *b64(const char *s)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s), o = 0;
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (!out)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)u[i] << 16 | (i + 1 < n ? (unsigned)u[i + 1] << 8 : 0) |
                     (i + 2 < n ? u[i + 2] : 0);
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

int sk_tmpdir_make(struct tmpdir *t)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    snprintf(t->dir, sizeof t->dir, "%s/nexus-skopeo.XXXXXX", base);
    if (!mkdtemp(t->dir)) {
        t->dir[0] = '\0';
        return -1;
    }
    snprintf(t->auth, sizeof t->auth, "%s/auth.json", t->dir);
    snprintf(t->digest, sizeof t->digest, "%s/digest", t->dir);
    return 0;
}

void sk_tmpdir_remove(struct tmpdir *t)
{
    if (!t->dir[0])
        return;
    unlink(t->auth);
    unlink(t->digest);
    rmdir(t->dir);
    t->dir[0] = '\0';
}

/* Writes {"auths":{host:{"auth":b64(user:pass)}}} for every docker ref. */
int sk_write_authfile(const char *path, const struct skopeo_options *o, const char *ref1,
                      const char *ref2)
{
    int rc = -1;
    char *up = sk_printf("%s:%s", o->username, o->password);
    char *enc = up ? b64(up) : NULL;
    json_object *root = json_object_new_object(), *auths = json_object_new_object();
    if (!enc || !root || !auths)
        goto out;
    json_object_object_add(root, "auths", auths);
    const char *refs[2] = {ref1, ref2};
    for (int i = 0; i < 2; i++) {
        if (!sk_is_docker(refs[i]))
            continue;
        char host[256];
        sk_docker_host(refs[i], host, sizeof host);
        json_object *e = json_object_new_object();
        json_object_object_add(e, "auth", json_object_new_string(enc));
        json_object_object_add(auths, host, e);
    }
    const char *txt = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        goto out;
    size_t len = strlen(txt);
    rc = write(fd, txt, len) == (ssize_t)len ? 0 : -1;
    if (close(fd) < 0)
        rc = -1;
out:
    json_object_put(root);
    if (up)
        memset(up, 0, strlen(up));
    if (enc)
        memset(enc, 0, strlen(enc));
    free(up);
    free(enc);
    return rc;
}
