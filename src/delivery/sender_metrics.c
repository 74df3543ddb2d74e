/* The sender's counters and status: the self-metrics (sender_metrics),
 * backlog and housekeeping of the spool gauges, per-target status for the
 * status page and healthcheck. */
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
