/* skopeo_ops: the operations of skopeo.h (copy, inspect, delete,
 * manifest digest): checks of the references and arguments, the argv,
 * the true blob sizes read from the source manifest(s) before a copy, and
 * the run (skopeo_run.c) with the operation's line handler. libc and
 * json-c. */
#include "skopeo.h"
#include "json_bound.h"
#include "skopeo_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "proc.h"

/* ---- argv ------------------------------------------------------------- */

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

/* ---- the operations --------------------------------------------------- */

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
        if (sk_is_secret_arg(o->extra_args[i])) {
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
        if (sk_tmpdir_make(&pp->td) < 0) {
            res->error_type = SKOPEO_ERR_OTHER;
            res->error = sk_printf("cannot create a temporary directory: %s", strerror(errno));
            return -1;
        }
    }
    if (o->username && o->password) {
        if (sk_write_authfile(pp->td.auth, o, ref1, ref2) < 0) {
            res->error_type = SKOPEO_ERR_OTHER;
            res->error = sk_printf("cannot write the temporary authfile: %s", strerror(errno));
            sk_tmpdir_remove(&pp->td);
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
    if (o->tls_verify >= 0 && sk_is_docker(image))
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
    sk_run_init(&run, o, pp->deadline);
    run.timeout_ms = o->timeout_ms;
    run.on_line = fn;
    run.ctx = c;
    int rc = -1;
    if (pp->av.overflow) {
        res->error_type = SKOPEO_ERR_OTHER;
        res->error = strdup("too many skopeo arguments");
        goto out;
    }
    rc = sk_run_argv(&run, pp->av.v);
    sk_fill_result(res, &run, rc, pp->t0, o);
out:
    sk_run_free(&run);
    return res->ok ? 0 : -1;
}

static void finish(struct op_ctx *c)
{
    struct skopeo_result *r = c->res;
    c->has_cur = false;
    c->p.error = r->ok ? NULL : r->error;
    c->p.completed = r->ok;
    sk_emit(c, r->ok ? "completed" : "failed", r->ok ? 100 : 0, "");
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
        if (sk_sbuf_add(&b, chunk, n) < 0 || b.truncated)
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
        char why[200];
        /* a registry's answer, through skopeo: bounded like every JSON from outside */
        json_object *m = json_parse_bounded(ir.out, strlen(ir.out), SKOPEO_MAX_JSON_COST, why,
                                            sizeof why);
        if (!m) {
            all = false;
            skopeo_result_free(&ir);
            free(ref);
            continue;
        }
        json_object *layers = NULL, *cfg = NULL, *mans = NULL, *v = NULL;
        if (m && json_object_object_get_ex(m, "manifests", &mans) &&
            json_object_is_type(mans, json_type_array)) {
            /* an index: its children are addressable by digest on docker://,
             * and are files of the layout for oci: */
            char *repo = sk_is_docker(ref) ? sk_docker_repo(ref) : NULL;
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
                    sk_add_blob(res, json_object_get_string(d), json_object_get_int64(s), false);
            }
            json_object *d, *s;
            if (json_object_object_get_ex(m, "config", &cfg) &&
                json_object_object_get_ex(cfg, "digest", &d) &&
                json_object_object_get_ex(cfg, "size", &s))
                sk_add_blob(res, json_object_get_string(d), json_object_get_int64(s), true);
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
    if (o->tls_verify >= 0 && sk_is_docker(src))
        av_add(&pp.av, o->tls_verify ? "--src-tls-verify=true" : "--src-tls-verify=false");
    if (o->tls_verify >= 0 && sk_is_docker(dst))
        av_add(&pp.av, o->tls_verify ? "--dest-tls-verify=true" : "--dest-tls-verify=false");
    if (pp.td.dir[0]) {
        av_add(&pp.av, "--digestfile");
        av_add(&pp.av, pp.td.digest);
    }
    add_extra(&pp, o);
    av_add(&pp.av, src);
    av_add(&pp.av, dst);
    rc = prep_run(&pp, &c, o, res, sk_copy_on_line);
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
    sk_tmpdir_remove(&pp.td);
    finish(&c);
    return rc;
fail_early:
    sk_tmpdir_remove(&pp.td);
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
        sk_tmpdir_remove(&pp.td);
        finish(&c);
        return -1;
    }
    if (o->progress)
        sk_emit(&c, "running", 10, "");
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
        if (!pp.td.dir[0] && sk_tmpdir_make(&pp.td) < 0) {
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
    sk_tmpdir_remove(&pp.td);
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
