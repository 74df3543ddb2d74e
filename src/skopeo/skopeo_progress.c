/* skopeo_progress: skopeo's progress lines (skopeo.h: the step table,
 * skopeo_parse_line) and the copy's progress state (skopeo_int.h: struct
 * op_ctx fed line by line by sk_copy_on_line, events sent by sk_emit to
 * the caller's callback; the blob list of the result). libc only. */
#include "skopeo.h"
#include "skopeo_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- the progress of a copy ------------------------------------------ */

void sk_emit(struct op_ctx *c, const char *step, double pct, const char *line)
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
    c->p.bytes_total = c->res->sizes_known ? 0 : -1;
    c->p.bytes_done = 0;
    for (size_t i = 0; c->res->sizes_known && i < c->res->n_blobs; i++) {
        const struct skopeo_blob *b = &c->res->blobs[i];
        c->p.bytes_total += b->size > 0 ? b->size : 0;
        if ((b->copied || b->skipped) && b->size > 0 &&
            !(c->has_cur && !strcmp(c->cur.sha256, b->digest) && b->status &&
              !strcmp(b->status, "copying")))
            c->p.bytes_done += b->size;
    }
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

struct skopeo_blob *sk_add_blob(struct skopeo_result *r, const char *d, int64_t size,
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

void sk_copy_on_line(struct run *run, int stream, char *line)
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
            b = sk_add_blob(c->res, pl.digest, -1, is_cfg);
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
            sk_emit(c, st, pct, line);
            return;
        }
        if (!strcmp(st, "writing_manifest_list")) {
            c->p.manifest_written = c->res->manifest_written = true;
            sk_emit(c, "writing_manifest", 98, line);
            return;
        }
        if (!strcmp(st, "storing_list_signatures")) {
            c->p.signatures_stored = c->res->signatures_stored = true;
            sk_emit(c, "storing_signatures", 99, line);
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
    sk_emit(c, st, pct, line);
}
