/* sender_int: the layout of struct sender and struct target, and the few
 * functions the sender's files share (sender.c: construction, submit,
 * the writer lock; sender_deliver.c: delivery and its thread;
 * sender_metrics.c: counters and status). For those files and the unit
 * tests only; everything else uses the API in sender.h. The helpers below
 * are called without s->mu held (count_dropped and make_room take it). */
#ifndef NS_SENDER_INT_H
#define NS_SENDER_INT_H

#include "relabel.h"
#include "sender.h"

struct mem_batch {
    struct mem_batch *next;
    struct seg_meta m;
    size_t len;
    char data[];
};

struct target {
    char name[SPOOL_NAME_MAX];  /* spool directory name: rw-<name> or pushgateway */
    char label[SPOOL_NAME_MAX]; /* `target` label value: the section name or "default" */
    enum seg_kind kind;
    bool spool_only; /* no receiver configured: batches wait for export/replay */
    char *url;
    struct http_client *http;
    int64_t max_samples;
    int64_t min_backoff_ms, max_backoff_ms;
    struct relabel *relabel; /* per-target filters, owned (only sender_submit uses it) */
    /* delivery state */
    unsigned failures;
    int64_t next_try_mono;
    struct mem_batch *mem_head, *mem_tail; /* not spooled (spool unwritable) */
    size_t mem_bytes;
    /* counters since start */
    uint64_t samples_sent, samples_retried, samples_dropped[DROP_NREASONS];
    uint64_t batches_sent, bytes_sent;
    int64_t last_success_ms;
    struct histogram send_seconds;
    uint64_t spool_bytes, spool_segments;
    int64_t spool_oldest_ms;
    long last_status; /* of the last attempt; 0 = transport error */
    /* outage summaries (outage_report): when the failing started, when it
     * was last summarised; after a recovery, what the replay delivered */
    int64_t outage_since_mono, outage_logged_mono, replay_since_mono;
    uint64_t replay_batches, replay_samples;
    char last_error[256]; /* the last failure, "" after a success */
    /* requests by HTTP status (code 0 = transport error), for
     * nexus_shipper_requests_total{target,code} */
    struct {
        long code;
        uint64_t n;
    } req[16];
    size_t n_req;
};

struct sender {
    const struct config *cfg;
    struct target **t;
    size_t n;
    struct spool *spool; /* NULL if it could not be opened */
    struct rw_encoder *enc;
    bool spool_only;
    int64_t send_deadline_mono;              /* 0, or no send may run past it (SENDER_FINAL) */
    const volatile sig_atomic_t *abort_flag; /* set: sends in flight are aborted */
    uint64_t quarantined;                    /* batches quarantined */
    uint64_t refused; /* records refused before sending (not what their target sends) */
    /* delivery thread (run): the mutex guards every target's counters,
     * backoff state and memory queue; the collecting thread only submits */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t thread;
    bool thread_running;
    atomic_int quit;
    bool kicked;
    size_t rate; /* batches per second for the delivery thread, 0 = unlimited */
    uint32_t rng;
    /* the last delivery result, for `once` */
    uint64_t accepted_batches; /* delivered or spooled this process */
};

/* sender.c */
void count_dropped(struct sender *s, struct target *t, enum drop_reason r, uint64_t samples);
struct target *target_by_dir(struct sender *s, const char *dir);
size_t make_room(struct sender *s, uint64_t need);

#endif
