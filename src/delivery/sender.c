#include "sender.h"

#include <fcntl.h>

#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pushgateway.h"
#include "remote.pb-c.h"
#include "sender_int.h"
#include "textfmt.h"

const char *const drop_reason_names[DROP_NREASONS] = {
    "rejected", "out_of_bounds", "unauthorized", "too_large", "spool_full", "spool_age", "corrupt",
};

#define MEM_QUEUE_MAX (64u << 20)

static const double send_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

static uint32_t rng_next(uint32_t *s)
{
    uint32_t x = *s ? *s : 2463534242u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

int64_t backoff_ms(unsigned failures, int64_t min_ms, int64_t max_ms, int64_t retry_after_ms,
                   uint32_t *rng)
{
    int64_t cap = min_ms > 0 ? min_ms : 1;
    for (unsigned i = 0; i < failures && cap < max_ms; i++)
        cap *= 2;
    if (cap > max_ms)
        cap = max_ms;
    int64_t d = (int64_t)(rng_next(rng) % (uint64_t)(cap + 1)); /* full jitter */
    if (retry_after_ms > d) {
        int64_t lim = max_ms * 10;
        d = retry_after_ms < lim ? retry_after_ms : lim;
    }
    return d;
}

static void target_free(struct target *t)
{
    if (!t)
        return;
    http_client_free(t->http);
    relabel_free(t->relabel);
    free(t->url);
    while (t->mem_head) {
        struct mem_batch *m = t->mem_head;
        t->mem_head = m->next;
        free(m);
    }
    free(t);
}

static struct target *target_new(const char *dir, const char *label, enum seg_kind kind,
                                 const char *url, const struct http_opts *ho)
{
    struct target *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    snprintf(t->name, sizeof t->name, "%s", dir);
    snprintf(t->label, sizeof t->label, "%s", label);
    t->kind = kind;
    t->send_seconds.bounds = send_bounds;
    t->send_seconds.n = NS_ARRAY_LEN(send_bounds);
    t->min_backoff_ms = 500;
    t->max_backoff_ms = 60000;
    t->max_samples = 2000;
    if (!(t->url = strdup(url ? url : "")) || !(t->http = http_client_new(ho))) {
        target_free(t);
        return NULL;
    }
    return t;
}

static int add_target(struct sender *s, struct target *t)
{
    struct target **nt = realloc(s->t, (s->n + 1) * sizeof *nt);
    if (!nt)
        return -1;
    s->t = nt;
    s->t[s->n++] = t;
    return 0;
}

/* A target for one [remote_write] section; `url` overrides its url. */
static struct target *rw_target(const struct cfg_remote_write *rw, const char *url)
{
    struct http_opts ho = {
        .timeout_ms = rw->timeout_ms,
        .user = rw->basic_auth_user,
        .password = rw->basic_auth_password,
        .bearer_token = rw->bearer_token,
        .ca_file = rw->ca_file,
        .cert_file = rw->cert_file,
        .key_file = rw->key_file,
        .insecure = rw->insecure_skip_verify,
        .max_response = 1 << 20,
    };
    const char *hdrs[66];
    size_t nh = 0;
    for (size_t h = 0; h < rw->headers.n && nh < 64; h++)
        hdrs[nh++] = rw->headers.v[h];
    struct buf tenant; /* any length: the client copies its headers */
    buf_init(&tenant, 0);
    if (rw->tenant[0]) {
        if (buf_printf(&tenant, "X-Scope-OrgID: %s", rw->tenant) < 0)
            return NULL;
        hdrs[nh++] = tenant.data;
    }
    ho.headers = hdrs;
    ho.n_headers = nh;
    char dir[SPOOL_NAME_MAX];
    snprintf(dir, sizeof dir, "rw-%s", rw->name[0] ? rw->name : "default");
    struct target *t = target_new(dir, rw->name[0] ? rw->name : "default", SEG_REMOTE_WRITE,
                                  url ? url : rw->url, &ho);
    buf_free(&tenant);
    if (!t)
        return NULL;
    /* per-target filters: the values were checked by config_load, so only
     * memory can fail here */
    struct relabel_spec spec = {.keep_metrics = rw->keep_metrics,
                                .drop_metrics = rw->drop_metrics,
                                .keep_series = rw->keep_series,
                                .drop_series = rw->drop_series,
                                .drop_labels = (const char *const *)rw->drop_labels.v,
                                .n_drop_labels = rw->drop_labels.n};
    struct err re;
    if (!(t->relabel = relabel_new(&spec, &re))) {
        log_error("remote_write %s: %s", t->label, re.msg);
        target_free(t);
        return NULL;
    }
    t->max_samples = rw->max_samples_per_send;
    t->min_backoff_ms = rw->min_backoff_ms;
    t->max_backoff_ms = rw->max_backoff_ms;
    return t;
}

static struct target *pg_target(const struct cfg_pushgateway *pg)
{
    struct http_opts ho = {
        .timeout_ms = pg->timeout_ms,
        .user = pg->basic_auth_user,
        .password = pg->basic_auth_password,
        .ca_file = pg->ca_file,
        .insecure = pg->insecure_skip_verify,
        .max_response = 1 << 20,
    };
    return target_new("pushgateway", "pushgateway", SEG_PUSHGATEWAY, pg->url, &ho);
}

static struct sender *sender_alloc(const struct config *cfg)
{
    struct sender *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = cfg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->rng = (uint32_t)getpid() ^ (uint32_t)now_ms();
    if (!(s->enc = rw_encoder_new())) {
        sender_free(s);
        return NULL;
    }
    return s;
}

static void open_spool(struct sender *s)
{
    const struct config *cfg = s->cfg;
    struct err e2;
    s->spool = spool_open(cfg->shipper.spool_dir, &e2);
    if (!s->spool)
        log_error("spool unavailable, batches are kept in memory only: %s", e2.msg);
    else /* a log per 1/16 of the cap: disk full frees at most that much at once */
        spool_set_rotate(s->spool, cfg->shipper.spool_max_size / 16 < SPOOL_ROTATE
                                       ? cfg->shipper.spool_max_size / 16
                                       : SPOOL_ROTATE);
}

struct sender *sender_new(const struct config *cfg, struct err *e)
{
    struct sender *s = sender_alloc(cfg);
    if (!s) {
        err_set(e, "out of memory");
        return NULL;
    }
    s->spool_only = cfg->shipper.spool_only;
    for (size_t i = 0; i < cfg->n_rw; i++) {
        struct target *t = rw_target(cfg->rw[i], NULL);
        if (!t || add_target(s, t) < 0) {
            target_free(t);
            goto oom;
        }
        if (cfg->rw[i]->insecure_skip_verify)
            log_warn("remote_write %s: TLS certificate verification is OFF (insecure_skip_verify)",
                     t->label);
    }
    if (cfg->n_rw == 0) {
        /* No receiver configured: everything goes to the spool for a later
         * `spool export` / `spool replay` (air-gapped sites). */
        struct http_opts ho = {0};
        struct target *t = target_new("rw-default", "default", SEG_REMOTE_WRITE, "", &ho);
        if (!t || add_target(s, t) < 0) {
            target_free(t);
            goto oom;
        }
        t->spool_only = true; /* only this target: a [pushgateway] still delivers */
    }
    if (cfg->pushgateway) {
        struct target *t = pg_target(cfg->pushgateway);
        if (!t || add_target(s, t) < 0) {
            target_free(t);
            goto oom;
        }
    }
    open_spool(s);
    return s;
oom:
    err_set(e, "out of memory");
    sender_free(s);
    return NULL;
}

struct sender *sender_new_replay(const struct config *cfg, const char *url, const char *only,
                                 struct err *e)
{
    struct sender *s = sender_alloc(cfg);
    char **names = NULL;
    size_t nn = 0;
    if (!s)
        goto oom;
    open_spool(s);
    if (!s->spool) {
        err_set(e, "cannot open the spool %s", cfg->shipper.spool_dir);
        sender_free(s);
        return NULL;
    }
    if (only) {
        if (!(names = calloc(1, sizeof *names)) || !(names[0] = strdup(only)))
            goto oom;
        nn = 1;
    } else if (spool_targets(s->spool, &names, &nn) < 0) {
        err_set(e, "cannot list the targets in %s: %s", cfg->shipper.spool_dir, strerror(errno));
        sender_free(s);
        return NULL;
    }
    for (size_t i = 0; i < nn; i++) {
        struct target *t = NULL;
        if (strcmp(names[i], "pushgateway") == 0) {
            if (cfg->pushgateway)
                t = pg_target(cfg->pushgateway);
            else {
                struct http_opts ho = {0};
                if ((t = target_new(names[i], "pushgateway", SEG_PUSHGATEWAY, "", &ho)))
                    t->spool_only = true; /* no [pushgateway]: not replayable here */
            }
        } else if (strncmp(names[i], "rw-", 3) == 0) {
            const struct cfg_remote_write *rw = NULL;
            for (size_t k = 0; k < cfg->n_rw; k++) {
                const char *nm = cfg->rw[k]->name[0] ? cfg->rw[k]->name : "default";
                if (strcmp(nm, names[i] + 3) == 0)
                    rw = cfg->rw[k];
            }
            if (rw)
                t = rw_target(rw, url);
            else if (url && cfg->n_rw) /* another site's target: the first one's credentials */
                t = rw_target(cfg->rw[0], url);
            else {
                struct http_opts ho = {.timeout_ms = 30000, .max_response = 1 << 20};
                t = target_new(names[i], names[i] + 3, SEG_REMOTE_WRITE, url ? url : "", &ho);
                if (t && !url)
                    t->spool_only = true; /* no url known: `--url` needed */
            }
            if (t) { /* the spool directory, whatever the section is called */
                snprintf(t->name, sizeof t->name, "%s", names[i]);
                snprintf(t->label, sizeof t->label, "%s", names[i] + 3);
            }
        } else {
            continue; /* not a target directory */
        }
        if (!t || add_target(s, t) < 0) {
            target_free(t);
            goto oom;
        }
    }
    strv_free(names, nn);
    return s;
oom:
    strv_free(names, nn);
    err_set(e, "out of memory");
    sender_free(s);
    return NULL;
}

void sender_free(struct sender *s)
{
    if (!s)
        return;
    sender_stop(s);
    for (size_t i = 0; i < s->n; i++)
        target_free(s->t[i]);
    free(s->t);
    spool_close(s->spool);
    rw_encoder_free(s->enc);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s);
}

void count_dropped(struct sender *s, struct target *t, enum drop_reason r, uint64_t samples)
{
    pthread_mutex_lock(&s->mu);
    t->samples_dropped[r] += samples;
    pthread_mutex_unlock(&s->mu);
}

struct target *target_by_dir(struct sender *s, const char *dir)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->t[i]->name, dir) == 0)
            return s->t[i];
    return NULL;
}

/* Drops the oldest batches (every target) until `need` more bytes fit
 * under spool_max_size. need == UINT64_MAX (disk full): the logs are
 * rotated and every batch of the oldest file is dropped, so that the file
 * goes and its space is freed. Returns the number of batches dropped. */
size_t make_room(struct sender *s, uint64_t need)
{
    size_t removed = 0;
    if (!s->spool)
        return 0;
    struct seg_info *si = malloc(sizeof *si);
    char *first = malloc(PATH_MAX);
    if (!si || !first)
        goto out;
    first[0] = '\0';
    uint64_t cap = s->cfg->shipper.spool_max_size;
    if (need == UINT64_MAX)
        spool_rotate(s->spool, NULL);
    for (;;) {
        struct spool_usage u;
        if (need != UINT64_MAX && spool_usage(s->spool, NULL, &u) == 0 && u.bytes + need <= cap)
            break;
        if (spool_peek(s->spool, NULL, si) != 0)
            break;
        if (need == UINT64_MAX) {
            if (first[0] && strcmp(first, si->path) != 0)
                break;
            snprintf(first, PATH_MAX, "%s", si->path);
        }
        spool_remove(s->spool, si); /* leaves the index even if the disk write fails */
        removed++;
        struct target *t = target_by_dir(s, si->target);
        if (t)
            count_dropped(s, t, DROP_SPOOL_FULL, si->m.samples);
        log_event(LOG_ERROR, "spool: batch dropped", LOG_S("target", t ? t->label : si->target),
                  LOG_S("batch", si->name), LOG_I("samples", si->m.samples),
                  LOG_I("bytes", si->file_size),
                  LOG_S("error", need == UINT64_MAX ? "disk full" : "spool_max_size reached"));
    }
out:
    free(si);
    free(first);
    return removed;
}

static int mem_enqueue(struct sender *s, struct target *t, const struct seg_meta *m, const void *p,
                       size_t len)
{
    struct mem_batch *mb = malloc(sizeof *mb + len);
    if (!mb)
        return -1;
    mb->next = NULL;
    mb->m = *m;
    mb->len = len;
    memcpy(mb->data, p, len);
    pthread_mutex_lock(&s->mu);
    if (t->mem_bytes + len > MEM_QUEUE_MAX) {
        pthread_mutex_unlock(&s->mu);
        free(mb);
        return -1;
    }
    if (t->mem_tail)
        t->mem_tail->next = mb;
    else
        t->mem_head = mb;
    t->mem_tail = mb;
    t->mem_bytes += len;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* Stores one batch durably, or in memory when the disk refuses. The
 * spool's size comes from its index (O(1)), so the cap is checked per
 * batch. */
static int store(struct sender *s, struct target *t, const struct seg_meta *m, const void *p,
                 size_t len, bool sync)
{
    struct err e;
    if (s->spool) {
        uint64_t cap = s->cfg->shipper.spool_max_size;
        struct spool_usage u;
        if (spool_usage(s->spool, NULL, &u) == 0 && u.bytes + len + 256 > cap)
            make_room(s, len + 256);
        for (int attempt = 0; attempt < 8; attempt++) {
            int rc = sync ? spool_append(s->spool, m, p, len, NULL, 0, &e)
                          : spool_append_nosync(s->spool, m, p, len, &e);
            if (rc == 0) {
                log_resolved("spool-write", "spool: writing works again");
                return 0;
            }
            if (errno != ENOSPC || !make_room(s, UINT64_MAX))
                break;
        }
        log_complain("spool-write", "spool: %s; keeping the batch in memory", e.msg);
    }
    if (mem_enqueue(s, t, m, p, len) < 0) {
        count_dropped(s, t, DROP_SPOOL_FULL, m->samples);
        log_event(LOG_ERROR, "batch lost", LOG_S("target", t->label), LOG_I("samples", m->samples),
                  LOG_S("error", "spool unwritable and memory queue full"));
        return -1;
    }
    return 0;
}

int sender_submit(struct sender *s, const struct series_buf *sb, const struct sb_sample *v,
                  size_t n)
{
    int accepted = 0, failed = 0;
    struct buf out;
    buf_init(&out, 0);
    int64_t ts = sb_cycle_ts(sb);
    for (size_t ti = 0; ti < s->n; ti++) {
        struct target *t = s->t[ti];
        if (t->kind != SEG_REMOTE_WRITE)
            continue;
        /* per-target filters (relabel.h): this target's samples, maybe relabeled */
        struct relabel_out ro;
        struct err re;
        if (relabel_apply(t->relabel, sb, v, n, &ro, &re) < 0) {
            log_error("%s: %s", t->label, re.msg);
            count_dropped(s, t, DROP_REJECTED, n);
            failed++;
            relabel_out_free(&ro);
            continue;
        }
        if (ro.collisions) { /* a key of its own: not rate-limited with send failures */
            char key[SPOOL_NAME_MAX + 16];
            snprintf(key, sizeof key, "%s/drop_labels", t->name);
            log_complain(key,
                         "remote_write %s: drop_labels made %zu series duplicates of others; "
                         "only the first of each is sent (%s)",
                         t->label, ro.collisions, ro.collision_example);
        }
        for (size_t off = 0; off < ro.n; off += (size_t)t->max_samples) {
            size_t k = ro.n - off < (size_t)t->max_samples ? ro.n - off : (size_t)t->max_samples;
            struct err e;
            if (rw_encode(s->enc, ro.sb, ro.v + off, k, ts, &out, &e) < 0) {
                log_error("%s: cannot encode a batch: %s", t->label, e.msg);
                count_dropped(s, t, DROP_REJECTED, k);
                failed++;
                continue;
            }
            struct seg_meta m = {.kind = SEG_REMOTE_WRITE,
                                 .created_ms = now_ms(),
                                 .series = (uint32_t)k,
                                 .samples = (uint32_t)k,
                                 .min_ts = ts,
                                 .max_ts = ts};
            snprintf(m.target, sizeof m.target, "%s", t->name);
            if (store(s, t, &m, out.data, out.len, false) == 0)
                accepted++;
            else
                failed++;
        }
        relabel_out_free(&ro);
        /* one fdatasync makes all of this cycle's batches durable */
        if (s->spool && spool_sync(s->spool, t->name) < 0)
            log_complain("spool-sync", "spool: cannot fsync %s/%s: %s", spool_dir(s->spool),
                         t->name, strerror(errno));
    }
    buf_free(&out);
    s->accepted_batches += (uint64_t)accepted;
    return failed && !accepted ? -1 : accepted;
}

int sender_submit_push(struct sender *s, const char *method, const char *group_path,
                       const char *body, size_t len)
{
    struct target *t = NULL;
    for (size_t i = 0; i < s->n; i++)
        if (s->t[i]->kind == SEG_PUSHGATEWAY)
            t = s->t[i];
    if (!t) {
        log_error("no [pushgateway] configured");
        return -1;
    }
    struct err ve;
    if (!pgw_method_ok(method) || pgw_group_path_check(group_path, &ve) < 0) {
        log_error("pushgateway: refusing to queue %s %s: %s", method, group_path,
                  pgw_method_ok(method) ? ve.msg : "not a method the shipper sends (PUT, POST)");
        return -1;
    }
    struct seg_meta m = {.kind = SEG_PUSHGATEWAY, .created_ms = now_ms()};
    snprintf(m.target, sizeof m.target, "%s", t->name);
    snprintf(m.extra, sizeof m.extra, "%s %s", method, group_path);
    /* a group is last-write-wins: older spooled pushes of it are obsolete */
    struct seg_info *v;
    size_t n;
    if (s->spool && spool_list(s->spool, t->name, true, &v, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            const char *sp = strchr(v[i].m.extra, ' ');
            if (v[i].meta_ok && sp && strcmp(sp + 1, group_path) == 0) {
                spool_remove(s->spool, &v[i]);
                log_info("pushgateway: superseded spooled push %s for %s", v[i].name, group_path);
            }
        }
        free(v);
    }
    if (store(s, t, &m, body, len, true) < 0)
        return -1;
    s->accepted_batches++;
    return 1;
}

void sender_set_abort(struct sender *s, const volatile sig_atomic_t *flag)
{
    s->abort_flag = flag;
    for (size_t i = 0; i < s->n; i++)
        http_client_set_abort(s->t[i]->http, flag);
}

int sender_enqueue(struct sender *s, const struct series_buf *sb, const struct sb_sample *v,
                   size_t n, const char *job, unsigned to)
{
    if (!n)
        return 0;
    int rc = (to & ENQ_REMOTE_WRITE) ? sender_submit(s, sb, v, n) : 0;
    if (rc < 0)
        return -1;
    bool has_pg = false;
    for (size_t i = 0; i < s->n; i++)
        has_pg |= s->t[i]->kind == SEG_PUSHGATEWAY;
    if (!job || !has_pg || !(to & ENQ_PUSHGATEWAY))
        return rc;
    struct buf body, group;
    buf_init(&body, 0);
    buf_init(&group, 0);
    const char *grouping[] = {"instance", s->cfg->shipper.instance};
    int pr = -1;
    if (textfmt_write(sb, v, n, &body) == 0 && pgw_group_path(job, grouping, 1, &group) == 0)
        pr = sender_submit_push(s, "PUT", group.data, body.data ? body.data : "", body.len);
    else
        log_error("%s: out of memory rendering the Pushgateway push", job);
    buf_free(&body);
    buf_free(&group);
    return pr < 0 ? -1 : rc + pr;
}

enum writer_state sender_take_writer(struct sender *s, bool daemon, int64_t wait_ms,
                                     const volatile sig_atomic_t *stop, long *daemon_pid)
{
    if (!s->spool)
        return WRITER_NONE;
    int64_t until = mono_ms() + wait_ms;
    bool said = false;
    for (;;) {
        int lr = spool_lock(s->spool);
        if (lr == 0) {
            char note[64];
            snprintf(note, sizeof note, "%s %ld\n", daemon ? "daemon" : "cli", (long)getpid());
            if (spool_lock_note(s->spool, note) < 0)
                log_debug("spool: cannot note the lock holder: %s", strerror(errno));
            return WRITER_HELD;
        }
        if (lr < 0) {
            log_error("spool %s: cannot take the delivery lock: %s", spool_dir(s->spool),
                      strerror(errno));
            return WRITER_NONE;
        }
        char note[64];
        long pid = 0;
        if (spool_lock_holder(s->spool, note, sizeof note) == 1 &&
            sscanf(note, "daemon %ld", &pid) == 1 && !daemon) {
            if (daemon_pid)
                *daemon_pid = pid;
            return WRITER_DAEMON;
        }
        if (mono_ms() >= until || (stop && *stop))
            return WRITER_BUSY;
        if (!said) {
            log_info("spool %s: another nexus-shipper (%s) is delivering; waiting up to %lld s",
                     spool_dir(s->spool), note[0] ? note : "?", (long long)(wait_ms / 1000));
            said = true;
        }
        sleep_until_mono(mono_ms() + 100);
    }
}
