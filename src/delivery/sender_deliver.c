/* Delivery: sending one batch (send_one, sender_send_payload), a round over
 * every target (sender_deliver), the outage summaries in the log and the
 * delivery thread (sender_start/kick/stop). Construction, submit and the
 * writer lock are in sender.c; counters and status in sender_metrics.c. */
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
        log_complain_event(t->name, "send to receiver failed, will retry",
                           LOG_S("target", t->label), LOG_URL("url", t->url),
                           LOG_INZ("status", r.status),
                           LOG_S("error", answer->data ? answer->data : "unknown"),
                           LOG_F("retry_in_s", (double)d / 1000.0), LOG_I("samples", m->samples));
    } else {
        *why = rw_drop_reason(r.status, r.body.data);
        count_dropped(s, t, *why, m->samples);
        const char *msg = "receiver rejected a batch, not retrying";
        if (*why == DROP_OUT_OF_BOUNDS && answer->data &&
            (strcasestr(answer->data, "out of order") || strcasestr(answer->data, "duplicate")))
            msg = "receiver refused samples older than (or at the time of) samples it already "
                  "has for the same series, dropped: a second writer of these series (another "
                  "shipper with the same instance and labels) or a clock that stepped back";
        else if (*why == DROP_OUT_OF_BOUNDS)
            msg = "receiver refused the samples as too old, dropped. Prometheus keeps only its "
                  "head block (~1-3 h): set storage.tsdb.out_of_order_time_window on it to "
                  "accept replays of long outages";
        log_event(LOG_ERROR, msg, LOG_S("target", t->label), LOG_URL("url", t->url),
                  LOG_I("status", r.status), LOG_S("error", answer->data),
                  LOG_I("samples", m->samples));
    }
    http_response_free(&r);
    return o;
}

size_t sender_deliver(struct sender *s, int64_t deadline_mono, size_t max_batches, unsigned flags)
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
