/* ship: see ship.h. */
#include "ship.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "textfmt.h"
#include "util.h"

const char **ship_identity_new(const struct config *cfg, size_t *n)
{
    size_t next = cfg->shipper.external_labels.n;
    const char **ext = calloc(2 * (next + 1), sizeof *ext);
    if (!ext)
        return NULL;
    /* instance first: external_labels may not override it (duplicates keep the first) */
    ext[0] = "instance";
    ext[1] = cfg->shipper.instance;
    for (size_t i = 0; i < next; i++) {
        const char *kv = cfg->shipper.external_labels.v[i];
        const char *eq = strchr(kv, '=');
        char *name = eq ? strndup(kv, (size_t)(eq - kv)) : NULL;
        if (!name) {
            ship_identity_free(ext, i + 1);
            return NULL;
        }
        ext[2 * (i + 1)] = name;
        ext[2 * (i + 1) + 1] = eq + 1;
    }
    *n = next + 1;
    return ext;
}

void ship_identity_free(const char **ext, size_t n)
{
    if (!ext)
        return;
    for (size_t i = 1; i < n; i++)
        free((char *)ext[2 * i]);
    free(ext);
}

struct series_buf *ship_sb_new(const struct config *cfg)
{
    size_t n;
    const char **ext = ship_identity_new(cfg, &n);
    if (!ext)
        return NULL;
    struct sb_opts o = {
        .max_bytes = cfg->shipper.buffer_max_size,
        .ext_labels = ext,
        .n_ext = n,
        .drop_re = cfg->has_drop_re ? &cfg->drop_re : NULL,
        .keep_re = cfg->has_keep_re ? &cfg->keep_re : NULL,
    };
    struct series_buf *sb = sb_new(&o); /* copies the labels */
    ship_identity_free(ext, n);
    return sb;
}

int64_t ship_budget_ms(const struct config *cfg)
{
    int64_t budget = 1000;
    for (size_t i = 0; i < cfg->n_rw; i++)
        budget += cfg->rw[i]->timeout_ms;
    if (cfg->pushgateway)
        budget += cfg->pushgateway->timeout_ms;
    return budget;
}

void ship_wake_daemon(long pid)
{
    if (pid > 1 && kill((pid_t)pid, SIGUSR2) < 0)
        log_info("cannot wake the daemon (pid %ld): %s; it ships the run at its next cycle", pid,
                 strerror(errno));
}

/* Renders the job's state into a new buffer at a timestamp after every
 * one rendered before (the caller holds the writer lock). */
static struct series_buf *render_job(const struct config *cfg, const struct run_job *job,
                                     struct sb_sample **v, size_t *n)
{
    struct series_buf *sb = ship_sb_new(cfg);
    *v = NULL;
    *n = 0;
    if (!sb)
        return NULL;
    /* the previous holder rendered before it released the lock: one
     * millisecond later is strictly later than anything it sent */
    int64_t t = now_ms();
    while (now_ms() <= t)
        sleep_until_mono(mono_ms() + 1);
    sb_begin_cycle(sb, now_ms());
    sb_txn_begin(sb, job->job);
    int rc = job->publish(cfg->shipper.state_dir, sb);
    sb_txn_commit(sb);
    if (rc < 0)
        log_warn("%s: some run metrics could not be read from %s", job->job,
                 cfg->shipper.state_dir);
    if (sb_snapshot(sb, true, v, n) < 0) {
        sb_free(sb);
        return NULL;
    }
    return sb;
}

int ship_run(const struct config *cfg, const struct run_job *job, const volatile sig_atomic_t *stop)
{
    if (!cfg)
        return 0;
    struct err e;
    struct sender *snd = sender_new(cfg, &e);
    if (!snd) {
        log_error("%s metrics: %s", job->job, e.msg);
        return -1;
    }
    int64_t budget = ship_budget_ms(cfg);
    long pid = 0;
    int rc = 0;
    struct series_buf *sb = NULL;
    struct sb_sample *v = NULL;
    size_t n = 0;
    switch (sender_take_writer(snd, false, budget, stop, &pid)) {
    case WRITER_DAEMON:
        log_info("%s: run recorded in %s; the running daemon (pid %ld) ships it", job->job,
                 cfg->shipper.state_dir, pid);
        ship_wake_daemon(pid);
        goto out;
    case WRITER_BUSY:
        log_warn("%s: run recorded in %s; another nexus-shipper still holds the spool, the next "
                 "run or the daemon ships it",
                 job->job, cfg->shipper.state_dir);
        goto out;
    case WRITER_HELD:
    case WRITER_NONE:
        break;
    }
    if (!(sb = render_job(cfg, job, &v, &n))) {
        log_error("%s metrics: out of memory rendering them", job->job);
        rc = -1;
        goto out;
    }
    if (n && sender_enqueue(snd, sb, v, n, job->job, ENQ_ALL) < 0) {
        log_error("%s metrics: could not be stored (spool and memory refused them)", job->job);
        rc = -1;
    }
    size_t left = sender_deliver(snd, mono_ms() + budget, 0, SENDER_FINAL);
    if (left && sender_has_spool(snd) && !sender_delivers(snd))
        log_info("%s metrics: %zu batch%s in the spool %s for `spool export` / `spool replay` "
                 "(spool_only)",
                 job->job, left, left == 1 ? "" : "es", cfg->shipper.spool_dir);
    else if (left && sender_has_spool(snd))
        log_warn("%s metrics: %zu batch%s not delivered yet, kept in the spool %s", job->job, left,
                 left == 1 ? "" : "es", cfg->shipper.spool_dir);
    else if (left)
        log_error("%s metrics: %zu batch%s could be neither delivered nor spooled", job->job, left,
                  left == 1 ? "" : "es");
    else if (n)
        log_info("%s metrics: %zu samples delivered", job->job, n);
out:
    free(v);
    sb_free(sb);
    sender_free(snd);
    return rc;
}

/* ---- the daemon's Pushgateway pushes of run jobs ------------------------ */

struct job_pusher {
    const struct run_job *const *jobs;
    size_t n;
    uint64_t *last_hash; /* FNV-1a of the last pushed body, 0 = none yet */
};

struct job_pusher *job_pusher_new(const struct run_job *const *jobs, size_t n)
{
    struct job_pusher *p = calloc(1, sizeof *p);
    if (!p || !(p->last_hash = calloc(n ? n : 1, sizeof *p->last_hash))) {
        free(p);
        return NULL;
    }
    p->jobs = jobs;
    p->n = n;
    return p;
}

void job_pusher_free(struct job_pusher *p)
{
    if (!p)
        return;
    free(p->last_hash);
    free(p);
}

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

void job_pusher_run(struct job_pusher *p, const struct config *cfg, struct sender *s)
{
    if (!p || !cfg->pushgateway)
        return;
    for (size_t j = 0; j < p->n; j++) {
        const struct run_job *job = p->jobs[j];
        struct series_buf *sb = ship_sb_new(cfg);
        struct sb_sample *v = NULL;
        size_t n = 0;
        struct buf body;
        buf_init(&body, 0);
        if (!sb)
            continue;
        sb_begin_cycle(sb, now_ms());
        sb_txn_begin(sb, job->job);
        job->publish(cfg->shipper.state_dir, sb);
        sb_txn_commit(sb);
        if (sb_snapshot(sb, true, &v, &n) == 0 && n && textfmt_write(sb, v, n, &body) == 0) {
            uint64_t h = fnv1a(body.data ? body.data : "", body.len);
            if (h != p->last_hash[j] && sender_enqueue(s, sb, v, n, job->job, ENQ_PUSHGATEWAY) > 0)
                p->last_hash[j] = h;
        }
        buf_free(&body);
        free(v);
        sb_free(sb);
    }
}
