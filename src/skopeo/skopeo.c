/* skopeo: see skopeo.h. Depends on libc and json-c only (installed library). */
#include "skopeo.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "proc.h"

#define SK_LINE_MAX            65536
#define SK_DEFAULT_MAX_OUTPUT  (16u << 20)
#define SK_DEFAULT_GRACE_MS    5000
#define SK_MAX_CHILD_MANIFESTS 32
#define SK_MAX_ARGS            64

/* ---- small helpers ---------------------------------------------------- */


struct sbuf {
    char *d;
    size_t len, cap, max;
    bool truncated;
};

static int sbuf_add(struct sbuf *b, const char *p, size_t n)
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

static char *sk_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sk_printf(const char *fmt, ...)
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

static bool is_docker(const char *ref)
{
    return ref && strncmp(ref, "docker://", 9) == 0;
}

/* "docker://host:port/repo/x:tag" -> host ("docker.io" for Docker Hub names). */
static void docker_host(const char *ref, char *out, size_t n)
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
static char *docker_repo(const char *ref)
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
    if (!is_docker(ref))
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

/* ---- version and step table ------------------------------------------- */

static const struct skopeo_step steps_old[] = {
    {"getting_signatures", 10, true}, {"copying_blob", 50, true},
    {"copying_config", 75, true},     {"writing_manifest", 90, true},
    {"storing_signatures", 95, true},
};
static const struct skopeo_step steps_new[] = {
    {"getting_signatures", 10, true},  {"copying_blob", 50, true},
    {"copying_config", 75, true},      {"writing_manifest", 90, true},
    {"storing_signatures", 95, false},
};

const struct skopeo_step *skopeo_step_table(int major, int minor, size_t *n)
{
    *n = 5;
    if (major > 1 || (major == 1 && minor >= 13))
        return steps_new;
    return steps_old;
}

static double step_pct(const char *step)
{
    for (size_t i = 0; i < 5; i++)
        if (strcmp(steps_old[i].name, step) == 0)
            return steps_old[i].percentage;
    return 0;
}

/* ---- line parsing ----------------------------------------------------- */

static void strip_ansi(char *s)
{
    char *w = s;
    for (char *r = s; *r;) {
        if (*r == 0x1b) {
            r++;
            if (*r == '[') {
                r++;
                while (*r && !(*r >= 0x40 && *r <= 0x7e))
                    r++;
                if (*r)
                    r++;
            } else if (*r) {
                r++;
            }
            continue;
        }
        *w++ = *r++;
    }
    *w = '\0';
}

static void copy_digest(const char *p, char *out, size_t n)
{
    size_t l = 0;
    while (p[l] && (isalnum((unsigned char)p[l]) || p[l] == ':' || p[l] == '-' || p[l] == '_' ||
                    p[l] == '.' || p[l] == '+'))
        l++;
    if (l >= n)
        l = n - 1;
    memcpy(out, p, l);
    out[l] = '\0';
}

int skopeo_parse_line(const char *line, struct skopeo_line *o)
{
    memset(o, 0, sizeof *o);
    while (*line == ' ' || *line == '\t')
        line++;
    const char *p;
    if (!strncmp(line, "Getting image source signatures", 31) ||
        !strncmp(line, "Getting image list signatures", 29)) {
        o->step = "getting_signatures";
    } else if (!strncmp(line, "Copying blob ", 13) || !strncmp(line, "Copying config ", 15)) {
        bool cfg = line[8] == 'c';
        p = line + (cfg ? 15 : 13);
        o->step = cfg ? "copying_config" : "copying_blob";
        copy_digest(p, o->digest, sizeof o->digest);
        p += strlen(o->digest);
        if (strstr(p, "skipped") || strstr(p, "already exists"))
            o->status = "skipped";
        else if (strstr(p, "done"))
            o->status = "done";
        else
            o->status = "copying";
    } else if (!strncmp(line, "Copying image ", 14)) {
        /* "Copying image sha256:<d> (1/2)" */
        o->step = "copying_image";
        copy_digest(line + 14, o->digest, sizeof o->digest);
        if ((p = strrchr(line, '(')) &&
            (sscanf(p, "(%d/%d)", &o->image_index, &o->image_count) != 2 || o->image_index < 1 ||
             o->image_index > o->image_count))
            o->image_index = o->image_count = 0; /* not "(i/n)" with 1 <= i <= n */
    } else if (sscanf(line, "Copying %d of %d images in list", &o->image_index, &o->image_count) ==
               2) {
        o->step = "copying_list";
        o->image_index = 0;
        if (o->image_count < 0)
            o->image_count = 0;
    } else if (!strncmp(line, "Writing manifest list to image destination", 42)) {
        o->step = "writing_manifest_list";
    } else if (!strncmp(line, "Writing manifest to image destination", 37)) {
        o->step = "writing_manifest";
    } else if (!strncmp(line, "Storing list signatures", 23)) {
        o->step = "storing_list_signatures";
    } else if (!strncmp(line, "Storing signatures", 18)) {
        o->step = "storing_signatures";
    } else {
        return -1;
    }
    return 0;
}

/* ---- the runner ------------------------------------------------------- */

struct linebuf {
    char b[SK_LINE_MAX + 1];
    size_t len;
};

struct run;
typedef void (*line_fn)(struct run *r, int stream, char *line);

struct run {
    const struct skopeo_options *o;
    int64_t deadline; /* monotonic ms, 0 = none */
    int64_t timeout_ms;
    struct sbuf out, err;
    struct linebuf lb[2];
    line_fn on_line;
    void *ctx;
    int exit_status, term_signal;
    bool timed_out, cancelled, started;
    int exec_errno;
};

static void lb_emit(struct run *r, int stream)
{
    struct linebuf *l = &r->lb[stream];
    if (!l->len)
        return;
    l->b[l->len] = '\0';
    strip_ansi(l->b);
    if (r->on_line && l->b[0])
        r->on_line(r, stream, l->b);
    l->len = 0;
}

static void lb_feed(struct run *r, int stream, const char *p, size_t n)
{
    struct linebuf *l = &r->lb[stream];
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' || p[i] == '\r') {
            lb_emit(r, stream);
        } else {
            if (l->len == SK_LINE_MAX) /* an endless line: deliver it in pieces */
                lb_emit(r, stream);
            l->b[l->len++] = p[i];
        }
    }
}

static void run_output(void *ctx, int stream, const char *p, size_t n)
{
    struct run *r = ctx;
    sbuf_add(stream == 0 ? &r->out : &r->err, p, n);
    lb_feed(r, stream, p, n);
}

/* Runs argv (proc.h); fills r (status, output); returns 0 when it ran
 * (whatever the exit status), -1 when it could not be started
 * (r->exec_errno). */
static int run_argv(struct run *r, char *const argv[])
{
    struct proc_spec ps = {.deadline = r->deadline,
                           .grace_ms = r->o->grace_ms > 0 ? r->o->grace_ms : SK_DEFAULT_GRACE_MS,
                           .cancel = r->o->cancel,
                           .on_output = run_output,
                           .ctx = r};
    struct proc_result pr;
    int rc = proc_run(argv, &ps, &pr);
    lb_emit(r, 0);
    lb_emit(r, 1);
    r->exit_status = pr.exit_status;
    r->term_signal = pr.term_signal;
    r->timed_out = pr.timed_out;
    r->cancelled = pr.cancelled;
    r->started = pr.started;
    r->exec_errno = pr.exec_errno;
    return rc;
}

/* ---- version ---------------------------------------------------------- */

static void run_init(struct run *r, const struct skopeo_options *o, int64_t deadline)
{
    memset(r, 0, sizeof *r);
    r->o = o;
    r->deadline = deadline;
    size_t mx = o->max_output ? o->max_output : SK_DEFAULT_MAX_OUTPUT;
    r->out.max = r->err.max = mx;
}

static void run_free(struct run *r)
{
    free(r->out.d);
    free(r->err.d);
}

int skopeo_version(const char *binary, int *major, int *minor, int *patch)
{
    struct skopeo_options o;
    skopeo_options_init(&o);
    o.grace_ms = 1000;
    struct run r;
    run_init(&r, &o, proc_mono_ms() + 15000);
    char *argv[] = {(char *)(binary ? binary : "skopeo"), "--version", NULL};
    int rc = -1;
    *major = *minor = *patch = 0;
    if (run_argv(&r, argv) == 0 && r.exit_status == 0 && r.out.d) {
        const char *v = strstr(r.out.d, "version ");
        if (v && sscanf(v + 8, "%d.%d.%d", major, minor, patch) >= 2)
            rc = 0;
    }
    run_free(&r);
    return rc;
}

/* ---- argv, auth file -------------------------------------------------- */

struct argv_b {
    char *v[SK_MAX_ARGS + 1];
    size_t n;
    bool overflow;
};

static void av_add(struct argv_b *a, const char *s)
{
    if (a->n < SK_MAX_ARGS)
        a->v[a->n++] = (char *)s;
    else
        a->overflow = true;
    a->v[a->n] = NULL;
}

static bool is_secret_arg(const char *a)
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

/* A private 0700 directory for the temporary authfile and digest file. */
struct tmpdir {
    char dir[256];
    char auth[300];
    char digest[300];
};

static int tmpdir_make(struct tmpdir *t)
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

static void tmpdir_remove(struct tmpdir *t)
{
    if (!t->dir[0])
        return;
    unlink(t->auth);
    unlink(t->digest);
    rmdir(t->dir);
    t->dir[0] = '\0';
}

/* Writes {"auths":{host:{"auth":b64(user:pass)}}} for every docker ref. */
static int write_authfile(const char *path, const struct skopeo_options *o, const char *ref1,
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
        if (!is_docker(refs[i]))
            continue;
        char host[256];
        docker_host(refs[i], host, sizeof host);
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

/* ---- the operations --------------------------------------------------- */

struct op_ctx {
    enum skopeo_op op;
    const struct skopeo_options *o;
    struct skopeo_result *res;
    struct skopeo_progress p;
    struct skopeo_blob_info cur;
    bool has_cur;
    int image_index, image_count;
};

static void emit(struct op_ctx *c, const char *step, double pct, const char *line)
{
    c->p.operation = c->op;
    c->p.operation_name = skopeo_op_name(c->op);
    c->p.current_step = step;
    if (pct > c->p.percentage)
        c->p.percentage = pct;
    c->p.current_blob = c->has_cur ? &c->cur : NULL;
    c->p.line = line ? line : "";
    c->p.image_index = c->image_index;
    c->p.image_count = c->image_count;
    if (c->o->progress)
        c->o->progress(&c->p, c->o->userdata);
}

static struct skopeo_blob *find_blob(struct skopeo_result *r, const char *d)
{
    size_t l = strlen(d);
    if (!l)
        return NULL;
    for (size_t i = 0; i < r->n_blobs; i++) {
        const char *bd = r->blobs[i].digest;
        const char *hex = strchr(bd, ':');
        if (!strcmp(bd, d))
            return &r->blobs[i];
        /* a TTY prints the first 12 hex digits only */
        if (!strchr(d, ':') && hex && l >= 12 && !strncmp(hex + 1, d, l))
            return &r->blobs[i];
    }
    return NULL;
}

static struct skopeo_blob *add_blob(struct skopeo_result *r, const char *d, int64_t size,
                                    bool is_config)
{
    struct skopeo_blob *b = find_blob(r, d);
    if (b) {
        if (b->size < 0 && size >= 0)
            b->size = size;
        b->is_config |= is_config;
        return b;
    }
    struct skopeo_blob *nb = realloc(r->blobs, (r->n_blobs + 1) * sizeof *nb);
    if (!nb)
        return NULL;
    r->blobs = nb;
    b = &nb[r->n_blobs++];
    memset(b, 0, sizeof *b);
    snprintf(b->digest, sizeof b->digest, "%s", d);
    b->size = size;
    b->is_config = is_config;
    return b;
}

static void copy_on_line(struct run *run, int stream, char *line)
{
    struct op_ctx *c = run->ctx;
    struct skopeo_line pl;
    (void)stream;
    if (skopeo_parse_line(line, &pl) < 0)
        return;
    const char *st = pl.step;
    double pct;
    if (!strcmp(st, "copying_blob") || !strcmp(st, "copying_config")) {
        bool is_cfg = st[8] == 'c';
        struct skopeo_blob *b = find_blob(c->res, pl.digest);
        bool fresh = !b || !(b->copied || b->skipped);
        if (!b)
            b = add_blob(c->res, pl.digest, -1, is_cfg);
        if (!b)
            return;
        if (!strcmp(pl.status, "skipped"))
            b->skipped = true;
        else
            b->copied = true;
        /* a TTY redraws the same blob many times: report it when it starts
         * and when it finishes, not at every redraw */
        bool was_final = b->status && strcmp(b->status, "copying") != 0;
        if (!fresh && (was_final || !strcmp(pl.status, "copying")))
            return;
        b->status = pl.status;
        if (fresh)
            c->p.blobs_seen++;
        memset(&c->cur, 0, sizeof c->cur);
        snprintf(c->cur.sha256, sizeof c->cur.sha256, "%s", b->digest);
        c->cur.size = b->size;
        c->cur.status = pl.status;
        c->cur.is_config = is_cfg;
        c->has_cur = true;
        pct = step_pct(st);
    } else {
        c->has_cur = false;
        if (!strcmp(st, "copying_list")) {
            c->image_count = pl.image_count;
            c->res->image_count = pl.image_count;
            return;
        }
        if (!strcmp(st, "copying_image")) {
            c->image_index = pl.image_index;
            if (pl.image_count)
                c->image_count = c->res->image_count = pl.image_count;
            pct = c->image_count ? 100.0 * (c->image_index - 1) / c->image_count : 0;
            emit(c, st, pct, line);
            return;
        }
        if (!strcmp(st, "writing_manifest_list")) {
            c->p.manifest_written = c->res->manifest_written = true;
            emit(c, "writing_manifest", 98, line);
            return;
        }
        if (!strcmp(st, "storing_list_signatures")) {
            c->p.signatures_stored = c->res->signatures_stored = true;
            emit(c, "storing_signatures", 99, line);
            return;
        }
        if (!strcmp(st, "writing_manifest"))
            c->p.manifest_written = c->res->manifest_written = true;
        if (!strcmp(st, "storing_signatures"))
            c->p.signatures_stored = c->res->signatures_stored = true;
        pct = step_pct(st);
    }
    if (c->image_count > 0 && c->image_index > 0) /* multi-arch: scale into this image's share */
        pct = (100.0 * (c->image_index - 1) + pct) / c->image_count;
    emit(c, st, pct, line);
}

/* The message of skopeo's last fatal line: msg="..." unquoted, else the
 * last non-empty stderr line. */
static char *error_message(const char *err)
{
    if (!err)
        return NULL;
    const char *m = NULL, *p = err;
    while ((p = strstr(p, "msg=\""))) {
        m = p + 5;
        p += 5;
    }
    if (m) {
        struct sbuf b = {0};
        for (const char *q = m; *q && *q != '\n'; q++) {
            if (*q == '\\' && q[1]) {
                q++;
                sbuf_add(&b, q, 1);
            } else if (*q == '"') {
                break;
            } else {
                sbuf_add(&b, q, 1);
            }
        }
        return b.d;
    }
    const char *end = err + strlen(err);
    while (end > err && isspace((unsigned char)end[-1]))
        end--;
    const char *start = end;
    while (start > err && start[-1] != '\n' && start[-1] != '\r')
        start--;
    if (start == end)
        return NULL;
    return strndup(start, (size_t)(end - start));
}

static void fill_result(struct skopeo_result *res, struct run *run, int start_rc, int64_t t0,
                        const struct skopeo_options *o)
{
    res->out = run->out.d ? run->out.d : strdup("");
    res->out_len = run->out.len;
    res->err_out = run->err.d ? run->err.d : strdup("");
    res->err_len = run->err.len;
    run->out.d = run->err.d = NULL;
    res->exit_status = run->exit_status;
    res->term_signal = run->term_signal;
    res->timed_out = run->timed_out;
    res->cancelled = run->cancelled;
    res->duration_s = (double)(proc_mono_ms() - t0) / 1000.0;
    free(res->error);
    res->error = NULL;
    if (start_rc < 0) {
        res->error_type = run->exec_errno == ENOENT ? SKOPEO_ERR_NOT_FOUND : SKOPEO_ERR_OTHER;
        res->error = sk_printf("cannot run %s: %s", o->binary ? o->binary : "skopeo",
                               strerror(run->exec_errno));
    } else if (run->timed_out) {
        res->error_type = SKOPEO_ERR_TIMEOUT;
        long long s = (run->timeout_ms + 999) / 1000;
        res->error = sk_printf("timed out after %lld s", s);
    } else if (run->cancelled) {
        res->error_type = SKOPEO_ERR_OTHER;
        res->error = strdup("cancelled");
    } else if (run->exit_status != 0) {
        res->error_type = skopeo_classify_error(res->err_out[0] ? res->err_out : res->out);
        res->error = error_message(res->err_out);
        if (!res->error) {
            if (run->term_signal)
                res->error = sk_printf("skopeo killed by signal %d", run->term_signal);
            else
                res->error = sk_printf("skopeo exited with status %d", run->exit_status);
        }
    } else {
        res->error_type = SKOPEO_ERR_NONE;
        res->ok = true;
    }
}

struct prep {
    struct tmpdir td;
    const char *authfile;
    struct argv_b av;
    int64_t t0, deadline;
};

/* Common setup: version, temporary authfile, argv head. Returns 0 or -1
 * with res->error set. */
static int prep_begin(struct prep *pp, enum skopeo_op op, const struct skopeo_options *o,
                      struct skopeo_result *res, const char *ref1, const char *ref2)
{
    memset(pp, 0, sizeof *pp);
    memset(res, 0, sizeof *res);
    res->exit_status = -1;
    res->bytes_total = -1;
    pp->t0 = proc_mono_ms();
    pp->deadline = o->timeout_ms > 0 ? pp->t0 + o->timeout_ms : 0;
    pp->authfile = o->authfile && *o->authfile ? o->authfile : NULL;
    const char *refs[2] = {ref1, ref2};
    for (size_t i = 0; i < 2; i++) {
        char why[600];
        if ((i == 0 || refs[i]) && !skopeo_check_reference(refs[i], why, sizeof why)) {
            res->error_type = SKOPEO_ERR_INVALID_REFERENCE;
            res->error =
                sk_printf("refusing %s: %s", i == 0 ? "the image" : "the destination", why);
            return -1;
        }
    }
    for (size_t i = 0; i < o->n_extra; i++)
        if (is_secret_arg(o->extra_args[i])) {
            res->error_type = SKOPEO_ERR_INVALID_REFERENCE;
            res->error = sk_printf("refusing extra argument %s: credentials must not be on the "
                                   "command line (use an authfile or username/password)",
                                   o->extra_args[i]);
            return -1;
        }
    if (o->version_major) {
        res->version_major = o->version_major;
        res->version_minor = o->version_minor;
        res->version_patch = o->version_patch;
    } else if (op == SKOPEO_OP_COPY) {
        skopeo_version(o->binary, &res->version_major, &res->version_minor, &res->version_patch);
    }
    if ((o->username && o->password) || op == SKOPEO_OP_COPY) {
        if (tmpdir_make(&pp->td) < 0) {
            res->error_type = SKOPEO_ERR_OTHER;
            res->error = sk_printf("cannot create a temporary directory: %s", strerror(errno));
            return -1;
        }
    }
    if (o->username && o->password) {
        if (write_authfile(pp->td.auth, o, ref1, ref2) < 0) {
            res->error_type = SKOPEO_ERR_OTHER;
            res->error = sk_printf("cannot write the temporary authfile: %s", strerror(errno));
            tmpdir_remove(&pp->td);
            return -1;
        }
        pp->authfile = pp->td.auth;
    }
    return 0;
}

static void add_common(struct prep *pp, const struct skopeo_options *o, const char *image)
{
    if (pp->authfile) {
        av_add(&pp->av, "--authfile");
        av_add(&pp->av, pp->authfile);
    }
    if (o->tls_verify >= 0 && is_docker(image))
        av_add(&pp->av, o->tls_verify ? "--tls-verify=true" : "--tls-verify=false");
}

static void add_extra(struct prep *pp, const struct skopeo_options *o)
{
    for (size_t i = 0; i < o->n_extra; i++)
        av_add(&pp->av, o->extra_args[i]);
}

/* Runs pp->av with the op's line handler and fills res. */
static int prep_run(struct prep *pp, struct op_ctx *c, const struct skopeo_options *o,
                    struct skopeo_result *res, line_fn fn)
{
    struct run run;
    run_init(&run, o, pp->deadline);
    run.timeout_ms = o->timeout_ms;
    run.on_line = fn;
    run.ctx = c;
    int rc = -1;
    if (pp->av.overflow) {
        res->error_type = SKOPEO_ERR_OTHER;
        res->error = strdup("too many skopeo arguments");
        goto out;
    }
    rc = run_argv(&run, pp->av.v);
    fill_result(res, &run, rc, pp->t0, o);
out:
    run_free(&run);
    return res->ok ? 0 : -1;
}

static void finish(struct op_ctx *c)
{
    struct skopeo_result *r = c->res;
    c->has_cur = false;
    c->p.error = r->ok ? NULL : r->error;
    c->p.completed = r->ok;
    emit(c, r->ok ? "completed" : "failed", r->ok ? 100 : 0, "");
}

/* "oci:/path/dir:tag" -> "/path/dir" (malloc'd). */
static char *oci_layout_dir(const char *ref)
{
    const char *p = ref + 4;
    const char *slash = strrchr(p, '/');
    const char *colon = strrchr(p, ':');
    size_t l = colon && (!slash || colon > slash) ? (size_t)(colon - p) : strlen(p);
    return strndup(p, l);
}

/* Reads a whole file of at most max bytes; NULL on error. */
static char *read_small_file(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct sbuf b = {.max = max};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (sbuf_add(&b, chunk, n) < 0 || b.truncated)
            break;
    bool bad = ferror(f) || b.truncated || !b.d;
    fclose(f);
    if (bad) {
        free(b.d);
        return NULL;
    }
    return b.d;
}

/* Reads the source manifest(s) and records every blob with its size. */
static void read_sizes(const char *src, const struct skopeo_options *o, struct prep *pp,
                       struct skopeo_result *res)
{
    struct skopeo_options io = *o;
    io.progress = NULL;
    io.extra_args = NULL;
    io.n_extra = 0;
    io.username = io.password = NULL;
    io.authfile = pp->authfile;
    io.version_major = res->version_major ? res->version_major : 1;
    io.version_minor = res->version_minor;
    io.no_sizes = true;
    if (pp->deadline) {
        int64_t left = pp->deadline - proc_mono_ms();
        if (left <= 0)
            return;
        io.timeout_ms = left;
    }
    char *todo[SK_MAX_CHILD_MANIFESTS + 1];
    size_t n_todo = 0, done = 0;
    todo[n_todo++] = strdup(src);
    bool any = false, all = true;
    while (done < n_todo) {
        char *ref = todo[done++];
        struct skopeo_result ir;
        memset(&ir, 0, sizeof ir);
        if (ref && ref[0] == '\001') { /* a child of an OCI layout: read from disk */
            ir.out = read_small_file(ref + 1, 4u << 20);
            ir.ok = ir.out != NULL;
        } else if (ref) {
            skopeo_inspect(ref, true, &io, &ir);
        }
        if (!ir.ok) {
            all = false;
            skopeo_result_free(&ir);
            free(ref);
            continue;
        }
        json_object *m = json_tokener_parse(ir.out);
        json_object *layers = NULL, *cfg = NULL, *mans = NULL, *v = NULL;
        if (m && json_object_object_get_ex(m, "manifests", &mans) &&
            json_object_is_type(mans, json_type_array)) {
            /* an index: its children are addressable by digest on docker://,
             * and are files of the layout for oci: */
            char *repo = is_docker(ref) ? docker_repo(ref) : NULL;
            char *layout = !strncmp(ref, "oci:", 4) ? oci_layout_dir(ref) : NULL;
            for (size_t i = 0; (repo || layout) && i < json_object_array_length(mans); i++) {
                json_object *e = json_object_array_get_idx(mans, i);
                if (!json_object_object_get_ex(e, "digest", &v) || n_todo >= SK_MAX_CHILD_MANIFESTS)
                    continue;
                const char *dg = json_object_get_string(v);
                const char *colon = dg ? strchr(dg, ':') : NULL;
                if (!colon || !skopeo_valid_digest(dg)) {
                    all = false; /* a registry's answer: never into an argv or a path */
                    continue;
                }
                if (repo)
                    todo[n_todo++] = sk_printf("%s@%s", repo, dg);
                else if (colon && !strchr(colon + 1, '/') && !strstr(dg, ".."))
                    todo[n_todo++] =
                        sk_printf("\001%s/blobs/%.*s/%s", layout, (int)(colon - dg), dg, colon + 1);
            }
            if (!repo && !layout)
                all = false;
            free(repo);
            free(layout);
        } else if (m && json_object_object_get_ex(m, "layers", &layers) &&
                   json_object_is_type(layers, json_type_array)) {
            any = true;
            for (size_t i = 0; i < json_object_array_length(layers); i++) {
                json_object *l = json_object_array_get_idx(layers, i), *d, *s;
                if (json_object_object_get_ex(l, "digest", &d) &&
                    json_object_object_get_ex(l, "size", &s))
                    add_blob(res, json_object_get_string(d), json_object_get_int64(s), false);
            }
            json_object *d, *s;
            if (json_object_object_get_ex(m, "config", &cfg) &&
                json_object_object_get_ex(cfg, "digest", &d) &&
                json_object_object_get_ex(cfg, "size", &s))
                add_blob(res, json_object_get_string(d), json_object_get_int64(s), true);
        } else {
            all = false; /* schema 1 or unknown: no sizes */
        }
        json_object_put(m);
        skopeo_result_free(&ir);
        free(ref);
    }
    res->sizes_known = any && all;
    if (!any) /* keep nothing half-known */
        res->n_blobs = 0;
}

int skopeo_copy(const char *src, const char *dst, const struct skopeo_options *o,
                struct skopeo_result *res)
{
    struct prep pp;
    struct op_ctx c = {.op = SKOPEO_OP_COPY, .o = o, .res = res};
    int rc = -1;
    if (prep_begin(&pp, SKOPEO_OP_COPY, o, res, src, dst) < 0)
        goto fail_early;
    if (!o->no_sizes)
        read_sizes(src, o, &pp, res);
    /* blobs of the manifest that are never printed keep copied=false */
    av_add(&pp.av, o->binary ? o->binary : "skopeo");
    av_add(&pp.av, "copy");
    if (pp.authfile) {
        av_add(&pp.av, "--authfile");
        av_add(&pp.av, pp.authfile);
    }
    if (o->tls_verify >= 0 && is_docker(src))
        av_add(&pp.av, o->tls_verify ? "--src-tls-verify=true" : "--src-tls-verify=false");
    if (o->tls_verify >= 0 && is_docker(dst))
        av_add(&pp.av, o->tls_verify ? "--dest-tls-verify=true" : "--dest-tls-verify=false");
    if (pp.td.dir[0]) {
        av_add(&pp.av, "--digestfile");
        av_add(&pp.av, pp.td.digest);
    }
    add_extra(&pp, o);
    av_add(&pp.av, src);
    av_add(&pp.av, dst);
    rc = prep_run(&pp, &c, o, res, copy_on_line);
    if (res->ok && pp.td.dir[0]) {
        FILE *f = fopen(pp.td.digest, "r");
        char d[128];
        if (f && fgets(d, sizeof d, f)) {
            d[strcspn(d, "\r\n")] = '\0';
            if (d[0])
                res->digest = strdup(d);
        }
        if (f)
            fclose(f);
    }
    int64_t total = 0;
    bool known = false;
    for (size_t i = 0; i < res->n_blobs; i++)
        if ((res->blobs[i].copied || res->blobs[i].skipped) && res->blobs[i].size >= 0) {
            total += res->blobs[i].size;
            known = true;
        }
    res->bytes_total = known ? total : -1;
    tmpdir_remove(&pp.td);
    finish(&c);
    return rc;
fail_early:
    tmpdir_remove(&pp.td);
    res->duration_s = (double)(proc_mono_ms() - pp.t0) / 1000.0;
    finish(&c);
    return -1;
}

/* Writes len bytes to path (0600, new file). */
static int write_bytes(const char *path, const char *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = write(fd, p, len) == (ssize_t)len ? 0 : -1;
    if (close(fd) < 0)
        rc = -1;
    return rc;
}

/* inspect / delete / manifest-digest. With digest_of_raw, `image` is read
 * with `inspect --raw` and the exact bytes go through `skopeo
 * manifest-digest FILE`: the digest a registry reports as
 * Docker-Content-Digest, for an index too (`inspect --format {{.Digest}}`
 * would need an image of the local platform inside the index). */
static int simple_op(enum skopeo_op op, const char *cmd, const char *image, bool raw,
                     bool digest_of_raw, const struct skopeo_options *o, struct skopeo_result *res)
{
    struct prep pp;
    struct op_ctx c = {.op = op, .o = o, .res = res};
    int rc = -1;
    if (prep_begin(&pp, op, o, res, image, NULL) < 0) {
        tmpdir_remove(&pp.td);
        finish(&c);
        return -1;
    }
    if (o->progress)
        emit(&c, "running", 10, "");
    av_add(&pp.av, o->binary ? o->binary : "skopeo");
    av_add(&pp.av, cmd);
    if (raw)
        av_add(&pp.av, "--raw");
    if (strcmp(cmd, "manifest-digest") != 0)
        add_common(&pp, o, image);
    add_extra(&pp, o);
    av_add(&pp.av, image);
    rc = prep_run(&pp, &c, o, res, NULL);
    if (rc == 0 && digest_of_raw) {
        char path[320];
        if (!pp.td.dir[0] && tmpdir_make(&pp.td) < 0) {
            res->ok = false;
            res->error_type = SKOPEO_ERR_OTHER;
            res->error = sk_printf("cannot create a temporary directory: %s", strerror(errno));
            rc = -1;
        } else if (snprintf(path, sizeof path, "%s/manifest", pp.td.dir),
                   write_bytes(path, res->out, res->out_len) < 0) {
            res->ok = false;
            res->error_type = SKOPEO_ERR_OTHER;
            res->error = sk_printf("cannot write the manifest to %s: %s", path, strerror(errno));
            rc = -1;
        } else {
            struct skopeo_result dr;
            struct prep p2 = pp;
            memset(&p2.av, 0, sizeof p2.av);
            av_add(&p2.av, o->binary ? o->binary : "skopeo");
            av_add(&p2.av, "manifest-digest");
            av_add(&p2.av, path);
            memset(&dr, 0, sizeof dr);
            rc = prep_run(&p2, &c, o, &dr, NULL);
            unlink(path);
            dr.version_major = res->version_major;
            dr.version_minor = res->version_minor;
            dr.version_patch = res->version_patch;
            skopeo_result_free(res);
            *res = dr;
        }
    }
    tmpdir_remove(&pp.td);
    if (o->progress)
        finish(&c);
    return rc;
}

int skopeo_inspect(const char *image, bool raw, const struct skopeo_options *o,
                   struct skopeo_result *r)
{
    return simple_op(SKOPEO_OP_INSPECT, "inspect", image, raw, false, o, r);
}

int skopeo_delete(const char *image, const struct skopeo_options *o, struct skopeo_result *r)
{
    return simple_op(SKOPEO_OP_DELETE, "delete", image, false, false, o, r);
}

int skopeo_manifest_digest(const char *image_or_file, const struct skopeo_options *o,
                           struct skopeo_result *r)
{
    char tr[32];
    struct stat st;
    skopeo_transport(image_or_file, tr, sizeof tr);
    bool file =
        strcmp(tr, "unknown") == 0 || (stat(image_or_file, &st) == 0 && S_ISREG(st.st_mode));
    int rc = file
                 ? simple_op(SKOPEO_OP_MANIFEST_DIGEST, "manifest-digest", image_or_file, false,
                             false, o, r)
                 : simple_op(SKOPEO_OP_MANIFEST_DIGEST, "inspect", image_or_file, true, true, o, r);
    if (rc == 0) {
        char *d = strndup(r->out, strcspn(r->out, "\r\n"));
        if (!d || strncmp(d, "sha256:", 7) != 0) {
            free(d);
            r->ok = false;
            r->error_type = SKOPEO_ERR_OTHER;
            free(r->error);
            r->error = strdup("skopeo printed no digest");
            return -1;
        }
        r->digest = d;
    }
    return rc;
}
