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

struct mem_batch {
    struct mem_batch *next;
    struct seg_meta m;
    size_t len;
    char data[];
};

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
        t->relabel = cfg->rw[i]->relabel;
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

static void count_dropped(struct sender *s, struct target *t, enum drop_reason r, uint64_t samples)
{
    pthread_mutex_lock(&s->mu);
    t->samples_dropped[r] += samples;
    pthread_mutex_unlock(&s->mu);
}

static struct target *target_by_dir(struct sender *s, const char *dir)
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
static size_t make_room(struct sender *s, uint64_t need)
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

enum send_outcome sender_send_payload(struct http_client *c, const char *url, const void *p,
                                      size_t len, int64_t deadline_mono, struct http_response *r)
{
    size_t nh = 0;
    while (rw_headers[nh])
        nh++;
    if (http_request(c, "POST", url, rw_headers, nh, p, len, deadline_mono, r) < 0)
        return SEND_RETRY;
    return rw_classify(r->status);
}

static void count_request(struct target *t, long code)
{
    for (size_t i = 0; i < t->n_req; i++)
        if (t->req[i].code == code) {
            t->req[i].n++;
            return;
        }
    if (t->n_req < NS_ARRAY_LEN(t->req)) {
        t->req[t->n_req].code = code;
        t->req[t->n_req++].n = 1;
    } else { /* more distinct codes than slots: the last slot is "other" */
        t->req[t->n_req - 1].code = -1;
        t->req[t->n_req - 1].n++;
    }
}

/* Sends one batch to its target; classifies; updates counters. A send
 * aborted by the abort flag (shutdown) returns SEND_RETRY with *aborted
 * set: it is not a failed attempt (no counter, no backoff). */
static enum send_outcome send_one(struct sender *s, struct target *t, const struct seg_meta *m,
                                  const void *p, size_t len, int64_t deadline_mono,
                                  struct buf *answer, enum drop_reason *why, bool *aborted)
{
    struct http_response r;
    http_response_init(&r);
    enum send_outcome o;
    int64_t t0 = mono_ms();
    *aborted = false;
    struct err ve;
    /* spooled and imported records are untrusted: a record that is not what
     * its target sends is refused (DROP: the caller quarantines it), never
     * sent with the target's credentials */
    if (spool_record_check(m, t->name, &ve) < 0) {
        buf_reset(answer);
        buf_printf(answer, "refused before sending: %s", ve.msg);
        *why = DROP_CORRUPT;
        count_dropped(s, t, *why, m->samples);
        pthread_mutex_lock(&s->mu);
        s->refused++;
        pthread_mutex_unlock(&s->mu);
        log_error("%s: %s", t->label, answer->data);
        return SEND_DROP;
    }
    if (t->kind == SEG_PUSHGATEWAY) {
        char method[16];
        const char *path;
        struct buf url;
        buf_init(&url, 0);
        if (pgw_extra_check(m->extra, method, sizeof method, &path, &ve) < 0 ||
            pgw_build_url(t->url, path, &url) < 0) {
            r.status = 0; /* not sent: kept for the next round */
            snprintf(r.error, sizeof r.error, "cannot build the push URL from %s", t->url);
            o = SEND_RETRY;
        } else {
            const char *hdr = "Content-Type: text/plain; version=0.0.4; charset=utf-8";
            if (http_request(t->http, method, url.data, &hdr, 1, p, len, deadline_mono, &r) < 0)
                o = SEND_RETRY;
            else
                o = rw_classify(r.status);
        }
        buf_free(&url);
    } else {
        o = sender_send_payload(t->http, t->url, p, len, deadline_mono, &r);
    }
    if (o == SEND_RETRY && !r.status && s->abort_flag && *s->abort_flag) {
        *aborted = true; /* stays queued for the final delivery */
        http_response_free(&r);
        return SEND_RETRY;
    }
    buf_reset(answer);
    if (r.status) {
        buf_printf(answer, "HTTP %ld: %.2000s", r.status, r.body.data ? r.body.data : "");
        while (answer->len &&
               (answer->data[answer->len - 1] == '\n' || answer->data[answer->len - 1] == '\r'))
            answer->data[--answer->len] = '\0';
    } else
        buf_printf(answer, "%s", r.error);
    pthread_mutex_lock(&s->mu);
    histogram_observe(&t->send_seconds, (double)(mono_ms() - t0) / 1000.0);
    count_request(t, r.status);
    t->last_status = r.status;
    if (o == SEND_OK)
        t->last_error[0] = '\0';
    else
        snprintf(t->last_error, sizeof t->last_error, "%s", answer->data ? answer->data : "");
    pthread_mutex_unlock(&s->mu);
    if (o == SEND_OK) {
        pthread_mutex_lock(&s->mu);
        t->samples_sent += m->samples;
        t->batches_sent++;
        t->bytes_sent += len;
        t->last_success_ms = now_ms();
        unsigned had_failures = t->failures;
        t->failures = 0;
        t->next_try_mono = 0;
        if (t->outage_since_mono) { /* recovered: count the replay until the backlog is gone */
            t->replay_since_mono = t->outage_since_mono;
            t->outage_since_mono = 0;
        }
        if (t->replay_since_mono) {
            t->replay_batches++;
            t->replay_samples += m->samples;
        }
        pthread_mutex_unlock(&s->mu);
        log_event(LOG_DEBUG, "batch delivered", LOG_S("target", t->label), LOG_URL("url", t->url),
                  LOG_I("status", r.status), LOG_I("samples", m->samples), LOG_I("bytes", len),
                  LOG_F("seconds", (double)(mono_ms() - t0) / 1000.0));
        if (had_failures)
            log_resolved_event(t->name, "delivering again", LOG_S("target", t->label),
                               LOG_URL("url", t->url), LOG_I("failures", had_failures));
    } else if (o == SEND_RETRY) {
        pthread_mutex_lock(&s->mu);
        t->samples_retried += m->samples;
        int64_t d = backoff_ms(t->failures, t->min_backoff_ms, t->max_backoff_ms, r.retry_after_ms,
                               &s->rng);
        t->failures++;
        t->next_try_mono = mono_ms() + d;
        if (!t->outage_since_mono) {
            t->outage_since_mono = mono_ms();
            t->outage_logged_mono = t->outage_since_mono;
        }
        pthread_mutex_unlock(&s->mu);
        log_complain_event(t->name, "send to receiver failed, will retry", LOG_S("target", t->label),
                           LOG_URL("url", t->url), LOG_INZ("status", r.status),
                           LOG_S("error", answer->data ? answer->data : "unknown"),
                           LOG_F("retry_in_s", (double)d / 1000.0), LOG_I("samples", m->samples));
    } else {
        const char *reason = rw_drop_reason(r.status, r.body.data);
        *why = DROP_REJECTED;
        for (int i = 0; i < DROP_NREASONS; i++)
            if (strcmp(drop_reason_names[i], reason) == 0)
                *why = (enum drop_reason)i;
        count_dropped(s, t, *why, m->samples);
        if (*why == DROP_OUT_OF_BOUNDS && answer->data &&
            (strcasestr(answer->data, "out of order") || strcasestr(answer->data, "duplicate")))
            log_event(LOG_ERROR,
                      "receiver refused samples older than (or at the time of) samples it already "
                      "has for the same series, dropped: a second writer of these series (another "
                      "shipper with the same instance and labels) or a clock that stepped back",
                      LOG_S("target", t->label), LOG_URL("url", t->url), LOG_I("status", r.status),
                      LOG_S("error", answer->data), LOG_I("samples", m->samples));
        else if (*why == DROP_OUT_OF_BOUNDS)
            log_event(LOG_ERROR,
                      "receiver refused the samples as too old, dropped. Prometheus keeps only its "
                      "head block (~1-3 h): set storage.tsdb.out_of_order_time_window on it to "
                      "accept replays of long outages",
                      LOG_S("target", t->label), LOG_URL("url", t->url), LOG_I("status", r.status),
                      LOG_S("error", answer->data), LOG_I("samples", m->samples));
        else
            log_event(LOG_ERROR, "receiver rejected a batch, not retrying",
                      LOG_S("target", t->label), LOG_URL("url", t->url), LOG_I("status", r.status),
                      LOG_S("error", answer->data), LOG_I("samples", m->samples));
    }
    http_response_free(&r);
    return o;
}

size_t sender_deliver(struct sender *s, int64_t deadline_mono, size_t max_batches,
                      unsigned flags)
{
    bool final = flags & SENDER_FINAL;
    s->send_deadline_mono = final ? deadline_mono : 0;
    size_t sent = 0;
    struct seg_info *si = malloc(sizeof *si);
    if (!si)
        return sender_backlog(s);
    struct buf payload, answer;
    buf_init(&payload, 0);
    buf_init(&answer, 8192);
    bool locked = true;
    if (s->spool) {
        int lr = spool_lock(s->spool);
        if (lr == 1)
            log_complain("spool-lock", "spool %s is being replayed by another process; waiting",
                         spool_dir(s->spool));
        else if (lr == 0)
            log_resolved("spool-lock", "spool lock acquired");
        locked = lr == 0;
    }
    for (size_t ti = 0; ti < s->n && !s->spool_only; ti++) {
        struct target *t = s->t[ti];
        if (t->spool_only)
            continue;
        pthread_mutex_lock(&s->mu);
        int64_t next_try = t->next_try_mono;
        pthread_mutex_unlock(&s->mu);
        if (next_try && mono_ms() < next_try && !final)
            continue; /* final: one attempt whatever the backoff */
        bool stop = false;
        if (s->spool && locked)
            spool_refresh(s->spool, t->name); /* logs other processes wrote */
        while (s->spool && locked && !stop) {
            if ((max_batches && sent >= max_batches) ||
                (deadline_mono && mono_ms() >= deadline_mono) || atomic_load(&s->quit)) {
                stop = true;
                break;
            }
            int pr = spool_peek(s->spool, t->name, si);
            if (pr < 0) { /* the index is incomplete: the next round rebuilds it */
                log_complain(t->name, "%s: cannot index the spool: %s; will retry", t->label,
                             strerror(errno));
                stop = true;
                break;
            }
            if (pr != 0)
                break;
            struct seg_meta m;
            struct err e;
            errno = 0;
            int rr = spool_read_rec(si, &m, &payload, &e);
            if (rr == 1) { /* delivered or dropped by another process meanwhile */
                spool_remove(s->spool, si);
                continue;
            }
            if (rr < 0 && si->meta_ok && errno == ENOMEM) { /* not the batch's fault */
                log_complain(t->name, "%s: %s; will retry", t->label, e.msg);
                stop = true;
                break;
            }
            if (rr < 0) {
                const char *why = si->meta_ok ? e.msg : si->problem;
                log_error("spool: quarantining %s at offset %llu (%llu bytes): %s", si->path,
                          (unsigned long long)si->offset, (unsigned long long)si->file_size, why);
                if (spool_quarantine(s->spool, si, why, NULL) < 0) {
                    if (errno == ENOMEM) { /* kept: quarantined next round */
                        stop = true;
                        break;
                    }
                    spool_remove(s->spool, si); /* never stuck on it */
                }
                if (si->m.samples)
                    count_dropped(s, t, DROP_CORRUPT, si->m.samples);
                pthread_mutex_lock(&s->mu);
                s->quarantined++;
                pthread_mutex_unlock(&s->mu);
                continue;
            }
            enum drop_reason why = DROP_REJECTED;
            bool aborted;
            enum send_outcome o = send_one(s, t, &m, payload.data, payload.len,
                                           s->send_deadline_mono, &answer, &why, &aborted);
            sent++;
            if (aborted) {
                stop = true;
                break;
            }
            if (o == SEND_OK)
                spool_remove(s->spool, si);
            else if (o == SEND_RETRY)
                stop = true;
            else if (spool_quarantine(s->spool, si, drop_reason_names[why], answer.data) < 0) {
                if (errno == ENOMEM)
                    stop = true; /* kept: sent (and rejected) again next round */
                else
                    spool_remove(s->spool, si);
            } else {
                pthread_mutex_lock(&s->mu);
                s->quarantined++;
                pthread_mutex_unlock(&s->mu);
            }
        }
        for (;;) {
            if (stop || (max_batches && sent >= max_batches) ||
                (deadline_mono && mono_ms() >= deadline_mono) || atomic_load(&s->quit))
                break;
            pthread_mutex_lock(&s->mu);
            struct mem_batch *mb = t->mem_head; /* only this thread pops: stays valid */
            pthread_mutex_unlock(&s->mu);
            if (!mb)
                break;
            enum drop_reason why = DROP_REJECTED;
            bool aborted;
            enum send_outcome o = send_one(s, t, &mb->m, mb->data, mb->len, s->send_deadline_mono,
                                           &answer, &why, &aborted);
            sent++;
            if (o == SEND_RETRY)
                break;
            pthread_mutex_lock(&s->mu);
            t->mem_head = mb->next;
            if (!t->mem_head)
                t->mem_tail = NULL;
            t->mem_bytes -= mb->len;
            pthread_mutex_unlock(&s->mu);
            free(mb);
        }
    }
    buf_free(&payload);
    buf_free(&answer);
    free(si);
    return sender_backlog(s);
}

size_t sender_backlog(struct sender *s)
{
    size_t total = 0;
    for (size_t ti = 0; ti < s->n; ti++) {
        struct target *t = s->t[ti];
        struct spool_usage u;
        if (s->spool && spool_usage(s->spool, t->name, &u) == 0)
            total += u.segments;
        else if (s->spool)
            total++; /* the index could not be built: not known to be empty */
        pthread_mutex_lock(&s->mu);
        for (struct mem_batch *m = t->mem_head; m; m = m->next)
            total++;
        pthread_mutex_unlock(&s->mu);
    }
    return total;
}

void sender_housekeeping(struct sender *s)
{
    if (!s->spool)
        return;
    int64_t max_age = s->cfg->shipper.spool_max_age_ms;
    struct seg_info *si = malloc(sizeof *si);
    int64_t now = now_ms();
    /* oldest first, across targets: stops at the first young enough */
    while (si && max_age > 0 && spool_peek(s->spool, NULL, si) == 0 &&
           now - si->m.created_ms > max_age) {
        spool_remove(s->spool, si);
        struct target *t = target_by_dir(s, si->target);
        if (t)
            count_dropped(s, t, DROP_SPOOL_AGE, si->m.samples);
        log_event(LOG_ERROR, "spool: batch dropped", LOG_S("target", t ? t->label : si->target),
                  LOG_S("batch", si->name), LOG_I("samples", si->m.samples),
                  LOG_S("error", "older than spool_max_age"));
    }
    free(si);
    struct spool_usage u;
    if (spool_usage(s->spool, NULL, &u) == 0 && u.bytes > s->cfg->shipper.spool_max_size)
        make_room(s, 0);
    for (size_t ti = 0; ti < s->n; ti++) {
        struct target *t = s->t[ti];
        if (spool_usage(s->spool, t->name, &u) == 0) {
            pthread_mutex_lock(&s->mu);
            t->spool_bytes = u.bytes;
            t->spool_segments = u.segments;
            t->spool_oldest_ms = u.oldest_ms;
            pthread_mutex_unlock(&s->mu);
        }
    }
}

void sender_metrics(struct sender *s, struct series_buf *sb)
{
    static const struct metric_desc samples = {
        "nexus_shipper_samples_total", MT_COUNTER,
        "Samples by delivery outcome: sent (delivered, once each); retried (samples of "
        "send attempts that failed and will be retried: a batch that needs three "
        "attempts counts three times, so this can exceed sent); dropped (not delivered, "
        "with reason).",
        ""};
    static const struct metric_desc batches = {"nexus_shipper_batches_sent_total", MT_COUNTER,
                                               "Batches delivered.", ""};
    static const struct metric_desc bytes = {"nexus_shipper_sent_bytes_total", MT_COUNTER,
                                             "Compressed payload bytes delivered.", "bytes"};
    static const struct metric_desc requests = {
        "nexus_shipper_requests_total", MT_COUNTER,
        "Send attempts by HTTP status code (\"error\": no answer, a transport failure).", ""};
    static const struct metric_desc last = {
        "nexus_shipper_last_send_timestamp_seconds", MT_GAUGE,
        "Time of the last successful delivery (absent until one succeeded).", "seconds"};
    static const struct metric_desc dur = {"nexus_shipper_send_duration_seconds", MT_HISTOGRAM,
                                           "Duration of one send attempt.", "seconds"};
    static const struct metric_desc sbytes = {
        "nexus_shipper_spool_bytes", MT_GAUGE,
        "Bytes waiting in the disk spool (read before this batch was added).", "bytes"};
    static const struct metric_desc ssegs = {
        "nexus_shipper_spool_segments", MT_GAUGE,
        "Batches waiting in the disk spool (read before this batch was added).", ""};
    static const struct metric_desc sold = {
        "nexus_shipper_spool_oldest_timestamp_seconds", MT_GAUGE,
        "Creation time of the oldest spooled batch (0 when empty).", "seconds"};
    static const struct metric_desc mem = {"nexus_shipper_memory_queue_bytes", MT_GAUGE,
                                           "Bytes of batches held in memory (spool unwritable).",
                                           "bytes"};
    struct err e;
    for (size_t ti = 0; ti < s->n; ti++) {
        struct target *live = s->t[ti];
        struct spool_usage u;
        bool have_u = s->spool && spool_usage(s->spool, live->name, &u) == 0;
        struct target copy;
        pthread_mutex_lock(&s->mu);
        copy = *live;
        pthread_mutex_unlock(&s->mu);
        const struct target *t = &copy;
        if (!have_u) { /* the index cannot be read now: the last known values */
            u.bytes = t->spool_bytes;
            u.segments = t->spool_segments;
            u.oldest_ms = t->spool_oldest_ms;
        }
        const char *tl = t->label;
        sb_set(sb, &samples, (double)t->samples_sent, "target", tl, "outcome", "sent", NULL);
        sb_set(sb, &samples, (double)t->samples_retried, "target", tl, "outcome", "retried", NULL);
        for (int r = 0; r < DROP_NREASONS; r++)
            sb_set(sb, &samples, (double)t->samples_dropped[r], "target", tl, "outcome", "dropped",
                   "reason", drop_reason_names[r], NULL);
        sb_set(sb, &batches, (double)t->batches_sent, "target", tl, NULL);
        sb_set(sb, &bytes, (double)t->bytes_sent, "target", tl, NULL);
        for (size_t i = 0; i < t->n_req; i++) {
            char code[24];
            if (t->req[i].code > 0)
                snprintf(code, sizeof code, "%ld", t->req[i].code);
            else
                snprintf(code, sizeof code, "%s", t->req[i].code ? "other" : "error");
            sb_set(sb, &requests, (double)t->req[i].n, "target", tl, "code", code, NULL);
        }
        if (t->last_success_ms > 0)
            sb_set(sb, &last, (double)t->last_success_ms / 1000.0, "target", tl, NULL);
        const char *lab[] = {"target", tl};
        sb_histogram(sb, &dur, &t->send_seconds, lab, 1, &e);
        sb_set(sb, &sbytes, (double)u.bytes, "target", tl, NULL);
        sb_set(sb, &ssegs, (double)u.segments, "target", tl, NULL);
        sb_set(sb, &sold, (double)u.oldest_ms / 1000.0, "target", tl, NULL);
        sb_set(sb, &mem, (double)t->mem_bytes, "target", tl, NULL);
    }
}

size_t sender_n_targets(const struct sender *s)
{
    return s->n;
}

bool sender_has_spool(const struct sender *s)
{
    return s->spool != NULL;
}

bool sender_delivers(const struct sender *s)
{
    if (s->spool_only)
        return false;
    for (size_t i = 0; i < s->n; i++)
        if (!s->t[i]->spool_only)
            return true;
    return false;
}

uint64_t sender_refused(struct sender *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t r = s->refused;
    pthread_mutex_unlock(&s->mu);
    return r;
}

uint64_t sender_quarantined(struct sender *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t q = s->quarantined;
    pthread_mutex_unlock(&s->mu);
    return q;
}

int sender_target_status(struct sender *s, size_t i, struct sender_target_status *out)
{
    if (i >= s->n)
        return -1;
    struct target *t = s->t[i];
    memset(out, 0, sizeof *out);
    struct spool_usage u;
    bool have_u = s->spool && spool_usage(s->spool, t->name, &u) == 0;
    pthread_mutex_lock(&s->mu);
    snprintf(out->name, sizeof out->name, "%s", t->name);
    snprintf(out->label, sizeof out->label, "%s", t->label);
    out->kind = t->kind;
    out->spool_only = t->spool_only || s->spool_only;
    out->batches_sent = t->batches_sent;
    out->samples_sent = t->samples_sent;
    out->last_success_ms = t->last_success_ms;
    out->last_status = t->last_status;
    snprintf(out->last_error, sizeof out->last_error, "%s", t->last_error);
    out->failures = t->failures;
    int64_t now = mono_ms();
    out->retry_in_ms = t->next_try_mono > now ? t->next_try_mono - now : 0;
    out->spool_bytes = have_u ? u.bytes : t->spool_bytes;
    out->spool_segments = have_u ? u.segments : t->spool_segments;
    out->spool_oldest_ms = have_u ? u.oldest_ms : t->spool_oldest_ms;
    size_t mem = 0;
    for (struct mem_batch *m = t->mem_head; m; m = m->next)
        mem++;
    out->batches_left_at_stop = out->spool_segments + mem;
    pthread_mutex_unlock(&s->mu);
    return 0;
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

/* ---- outage summaries --------------------------------------------------- */

/* While a target fails: one line every outage_log_interval (how long, what
 * waits); when its backlog is gone after a recovery: what the replay
 * delivered and how long the whole episode took. Called by whoever
 * delivers, after a round. */
static void outage_report(struct sender *s)
{
    int64_t every = s->cfg->shipper.outage_log_interval_ms;
    for (size_t i = 0; i < s->n; i++) {
        struct target *t = s->t[i];
        struct spool_usage u = {0};
        bool have_u = s->spool && spool_usage(s->spool, t->name, &u) == 0;
        int64_t now = mono_ms();
        pthread_mutex_lock(&s->mu);
        size_t mem = 0;
        for (struct mem_batch *m = t->mem_head; m; m = m->next)
            mem++;
        bool failing = t->outage_since_mono && every > 0 && now - t->outage_logged_mono >= every;
        int64_t since = t->outage_since_mono, rsince = t->replay_since_mono;
        uint64_t rb = t->replay_batches, rs = t->replay_samples;
        bool replay_done = rsince && !t->outage_since_mono && have_u && !u.segments && !mem;
        if (failing)
            t->outage_logged_mono = now;
        if (replay_done) {
            t->replay_since_mono = 0;
            t->replay_batches = t->replay_samples = 0;
        }
        char err[256];
        snprintf(err, sizeof err, "%s", t->last_error);
        pthread_mutex_unlock(&s->mu);
        if (failing) {
            char dur[32], age[32];
            format_duration(now - since, dur, sizeof dur);
            format_duration(u.oldest_ms ? now_ms() - u.oldest_ms : 0, age, sizeof age);
            log_event(LOG_WARN, "target still failing", LOG_S("target", t->label),
                      LOG_URL("url", t->url), LOG_S("failing_for", dur),
                      LOG_I("batches_spooled", u.segments + mem), LOG_I("bytes_spooled", u.bytes),
                      LOG_S("oldest_age", age), LOG_S("error", err));
        }
        if (replay_done) {
            char dur[32];
            format_duration(now - rsince, dur, sizeof dur);
            log_event(LOG_INFO, "target caught up after an outage", LOG_S("target", t->label),
                      LOG_I("batches_replayed", rb), LOG_I("samples_replayed", rs),
                      LOG_S("outage_and_replay", dur));
        }
    }
}

/* ---- the delivery thread ------------------------------------------------ */

static void *delivery_main(void *arg)
{
    struct sender *s = arg;
    while (!atomic_load(&s->quit)) {
        int64_t t0 = mono_ms();
        size_t left = sender_deliver(s, t0 + 1000, s->rate, 0);
        outage_report(s);
        /* how long to wait: a kick (new batch), the end of this rate slice,
         * or the earliest backoff expiry */
        int64_t wait = left ? 1000 - (mono_ms() - t0) : 5000;
        pthread_mutex_lock(&s->mu);
        if (left && (!s->rate || wait < 0)) {
            int64_t soonest = INT64_MAX;
            for (size_t i = 0; i < s->n; i++)
                if (s->t[i]->next_try_mono && s->t[i]->next_try_mono < soonest)
                    soonest = s->t[i]->next_try_mono;
            wait = soonest == INT64_MAX ? 50 : soonest - mono_ms();
        }
        if (wait > 1000)
            wait = left ? 1000 : wait;
        if (wait < 20)
            wait = 20;
        if (!s->kicked && !atomic_load(&s->quit)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&s->cond, &s->mu, &ts);
        }
        s->kicked = false;
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

int sender_start(struct sender *s, size_t rate)
{
    if (s->thread_running)
        return 0;
    s->rate = rate;
    atomic_store(&s->quit, 0);
    /* the thread blocks every signal: they reach the main thread, whose
     * sleep they interrupt (SIGTERM, SIGHUP, SIGUSR1/2) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&s->thread, NULL, delivery_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -1;
    s->thread_running = true;
    return 0;
}

void sender_kick(struct sender *s)
{
    pthread_mutex_lock(&s->mu);
    s->kicked = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

void sender_stop(struct sender *s)
{
    if (!s->thread_running)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->quit, 1);
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->thread_running = false;
    atomic_store(&s->quit, 0);
}
