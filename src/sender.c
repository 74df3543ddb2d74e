#include "sender.h"

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

struct sender *sender_new(const struct config *cfg, struct err *e)
{
    struct sender *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->rng = (uint32_t)getpid() ^ (uint32_t)now_ms();
    s->spool_only = cfg->shipper.spool_only;
    if (!(s->enc = rw_encoder_new()))
        goto oom;
    for (size_t i = 0; i < cfg->n_rw; i++) {
        const struct cfg_remote_write *rw = cfg->rw[i];
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
        char tenant[300];
        if (rw->tenant[0]) {
            snprintf(tenant, sizeof tenant, "X-Scope-OrgID: %s", rw->tenant);
            hdrs[nh++] = tenant;
        }
        ho.headers = hdrs;
        ho.n_headers = nh;
        char dir[SPOOL_NAME_MAX];
        snprintf(dir, sizeof dir, "rw-%s", rw->name[0] ? rw->name : "default");
        struct target *t =
            target_new(dir, rw->name[0] ? rw->name : "default", SEG_REMOTE_WRITE, rw->url, &ho);
        if (!t || add_target(s, t) < 0) {
            target_free(t);
            goto oom;
        }
        t->max_samples = rw->max_samples_per_send;
        t->min_backoff_ms = rw->min_backoff_ms;
        t->max_backoff_ms = rw->max_backoff_ms;
        if (rw->insecure_skip_verify)
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
        const struct cfg_pushgateway *pg = cfg->pushgateway;
        struct http_opts ho = {
            .timeout_ms = pg->timeout_ms,
            .user = pg->basic_auth_user,
            .password = pg->basic_auth_password,
            .ca_file = pg->ca_file,
            .insecure = pg->insecure_skip_verify,
            .max_response = 1 << 20,
        };
        struct target *t = target_new("pushgateway", "pushgateway", SEG_PUSHGATEWAY, pg->url, &ho);
        if (!t || add_target(s, t) < 0) {
            target_free(t);
            goto oom;
        }
    }
    struct err e2;
    s->spool = spool_open(cfg->shipper.spool_dir, &e2);
    if (!s->spool)
        log_error("spool unavailable, batches are kept in memory only: %s", e2.msg);
    else /* a log per 1/16 of the cap: disk full frees at most that much at once */
        spool_set_rotate(s->spool, cfg->shipper.spool_max_size / 16 < SPOOL_ROTATE
                                       ? cfg->shipper.spool_max_size / 16
                                       : SPOOL_ROTATE);
    return s;
oom:
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
        log_error("spool: dropped %s/%s (%u samples, %llu bytes): %s", si->target, si->name,
                  si->m.samples, (unsigned long long)si->file_size,
                  need == UINT64_MAX ? "disk full" : "spool_max_size reached");
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
        log_error("%s: batch of %u samples lost: spool unwritable and memory queue full", t->label,
                  m->samples);
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
        for (size_t off = 0; off < n; off += (size_t)t->max_samples) {
            size_t k = n - off < (size_t)t->max_samples ? n - off : (size_t)t->max_samples;
            struct err e;
            if (rw_encode(s->enc, sb, v + off, k, ts, &out, &e) < 0) {
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

/* Sends one batch to its target; classifies; updates counters. */
static enum send_outcome send_one(struct sender *s, struct target *t, const struct seg_meta *m,
                                  const void *p, size_t len, int64_t deadline_mono,
                                  struct buf *answer, enum drop_reason *why)
{
    struct http_response r;
    http_response_init(&r);
    enum send_outcome o;
    int64_t t0 = mono_ms();
    struct err ve;
    /* spooled and imported records are untrusted: a record that is not what
     * its target sends is refused (DROP: the caller quarantines it), never
     * sent with the target's credentials */
    if (spool_record_check(m, t->name, &ve) < 0) {
        buf_reset(answer);
        buf_printf(answer, "refused before sending: %s", ve.msg);
        *why = DROP_CORRUPT;
        count_dropped(s, t, *why, m->samples);
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
    pthread_mutex_lock(&s->mu);
    histogram_observe(&t->send_seconds, (double)(mono_ms() - t0) / 1000.0);
    pthread_mutex_unlock(&s->mu);
    buf_reset(answer);
    if (r.status) {
        buf_printf(answer, "HTTP %ld: %.2000s", r.status, r.body.data ? r.body.data : "");
        while (answer->len &&
               (answer->data[answer->len - 1] == '\n' || answer->data[answer->len - 1] == '\r'))
            answer->data[--answer->len] = '\0';
    } else
        buf_printf(answer, "%s", r.error);
    if (o == SEND_OK) {
        pthread_mutex_lock(&s->mu);
        t->samples_sent += m->samples;
        t->batches_sent++;
        t->bytes_sent += len;
        t->last_success_ms = now_ms();
        unsigned had_failures = t->failures;
        t->failures = 0;
        t->next_try_mono = 0;
        pthread_mutex_unlock(&s->mu);
        if (had_failures)
            log_resolved(t->name, "%s: delivering again to %s", t->label, t->url);
    } else if (o == SEND_RETRY) {
        pthread_mutex_lock(&s->mu);
        t->samples_retried += m->samples;
        int64_t d = backoff_ms(t->failures, t->min_backoff_ms, t->max_backoff_ms, r.retry_after_ms,
                               &s->rng);
        t->failures++;
        t->next_try_mono = mono_ms() + d;
        pthread_mutex_unlock(&s->mu);
        log_complain(t->name, "%s: send to %s failed (%s), will retry in %lld ms", t->label, t->url,
                     answer->data ? answer->data : "", (long long)d);
    } else {
        const char *reason = rw_drop_reason(r.status, r.body.data);
        *why = DROP_REJECTED;
        for (int i = 0; i < DROP_NREASONS; i++)
            if (strcmp(drop_reason_names[i], reason) == 0)
                *why = (enum drop_reason)i;
        count_dropped(s, t, *why, m->samples);
        if (*why == DROP_OUT_OF_BOUNDS)
            log_error("%s: receiver refused %u samples as too old (%s). Prometheus keeps only its "
                      "head block (~1-3 h): set storage.tsdb.out_of_order_time_window on it to "
                      "accept replays of long outages",
                      t->label, m->samples, answer->data ? answer->data : "");
        else
            log_error("%s: receiver rejected a batch of %u samples, not retrying: %s", t->label,
                      m->samples, answer->data ? answer->data : "");
    }
    http_response_free(&r);
    return o;
}

size_t sender_deliver(struct sender *s, int64_t deadline_mono, size_t max_batches)
{
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
        if (next_try && mono_ms() < next_try)
            continue;
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
                continue;
            }
            enum drop_reason why = DROP_REJECTED;
            enum send_outcome o =
                send_one(s, t, &m, payload.data, payload.len, s->send_deadline_mono, &answer, &why);
            sent++;
            if (o == SEND_OK)
                spool_remove(s->spool, si);
            else if (o == SEND_RETRY)
                stop = true;
            else if (spool_quarantine(s->spool, si, drop_reason_names[why], answer.data) < 0) {
                if (errno == ENOMEM)
                    stop = true; /* kept: sent (and rejected) again next round */
                else
                    spool_remove(s->spool, si);
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
            enum send_outcome o =
                send_one(s, t, &mb->m, mb->data, mb->len, s->send_deadline_mono, &answer, &why);
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
        log_error("spool: dropped %s/%s (%u samples): older than spool_max_age", si->target,
                  si->name, si->m.samples);
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
        "Samples by delivery outcome: sent, retried (a failed attempt), dropped (with reason).",
        ""};
    static const struct metric_desc batches = {"nexus_shipper_batches_sent_total", MT_COUNTER,
                                               "Batches delivered.", ""};
    static const struct metric_desc bytes = {"nexus_shipper_sent_bytes_total", MT_COUNTER,
                                             "Compressed payload bytes delivered.", "bytes"};
    static const struct metric_desc last = {"nexus_shipper_last_send_timestamp_seconds", MT_GAUGE,
                                            "Time of the last successful delivery.", "seconds"};
    static const struct metric_desc dur = {"nexus_shipper_send_duration_seconds", MT_HISTOGRAM,
                                           "Duration of one send attempt.", "seconds"};
    static const struct metric_desc sbytes = {"nexus_shipper_spool_bytes", MT_GAUGE,
                                              "Bytes waiting in the disk spool.", "bytes"};
    static const struct metric_desc ssegs = {"nexus_shipper_spool_segments", MT_GAUGE,
                                             "Batches waiting in the disk spool.", ""};
    static const struct metric_desc sold = {
        "nexus_shipper_spool_oldest_timestamp_seconds", MT_GAUGE,
        "Creation time of the oldest spooled batch (0 when empty).", "seconds"};
    static const struct metric_desc mem = {"nexus_shipper_memory_queue_bytes", MT_GAUGE,
                                           "Bytes of batches held in memory (spool unwritable).",
                                           "bytes"};
    struct err e;
    for (size_t ti = 0; ti < s->n; ti++) {
        struct target copy;
        pthread_mutex_lock(&s->mu);
        copy = *s->t[ti];
        pthread_mutex_unlock(&s->mu);
        const struct target *t = &copy;
        const char *tl = t->label;
        sb_set(sb, &samples, (double)t->samples_sent, "target", tl, "outcome", "sent", NULL);
        sb_set(sb, &samples, (double)t->samples_retried, "target", tl, "outcome", "retried", NULL);
        for (int r = 0; r < DROP_NREASONS; r++)
            sb_set(sb, &samples, (double)t->samples_dropped[r], "target", tl, "outcome", "dropped",
                   "reason", drop_reason_names[r], NULL);
        sb_set(sb, &batches, (double)t->batches_sent, "target", tl, NULL);
        sb_set(sb, &bytes, (double)t->bytes_sent, "target", tl, NULL);
        sb_set(sb, &last, (double)t->last_success_ms / 1000.0, "target", tl, NULL);
        const char *lab[] = {"target", tl};
        sb_histogram(sb, &dur, &t->send_seconds, lab, 1, &e);
        sb_set(sb, &sbytes, (double)t->spool_bytes, "target", tl, NULL);
        sb_set(sb, &ssegs, (double)t->spool_segments, "target", tl, NULL);
        sb_set(sb, &sold, (double)t->spool_oldest_ms / 1000.0, "target", tl, NULL);
        sb_set(sb, &mem, (double)t->mem_bytes, "target", tl, NULL);
    }
}

/* ---- the delivery thread ------------------------------------------------ */

static void *delivery_main(void *arg)
{
    struct sender *s = arg;
    while (!atomic_load(&s->quit)) {
        int64_t t0 = mono_ms();
        size_t left = sender_deliver(s, t0 + 1000, s->rate);
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
    if (pthread_create(&s->thread, NULL, delivery_main, s) != 0)
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
