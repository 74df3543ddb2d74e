/* sender: batching, write-ahead spooling, delivery, retries and counters.
 *
 * Every batch is first written to the spool (write-ahead), then delivered
 * per target strictly oldest first; it is marked done only after a 2xx. A
 * retry (5xx, 429, timeouts, connection errors) stops that target until
 * its backoff (capped exponential, full jitter, Retry-After honoured)
 * passes; a drop (other 4xx) moves the batch to quarantine with the
 * receiver's answer. When the spool cannot be written (disk full after
 * freeing the oldest data, unwritable directory), batches are kept in a
 * bounded memory queue so they are still delivered.
 *
 * The sender owns its targets, HTTP clients, spool and encoder. */
#ifndef NS_SENDER_H
#define NS_SENDER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "http.h"
#include "remote_write.h"
#include "relabel.h"
#include "series.h"
#include "spool.h"

enum drop_reason {
    DROP_REJECTED,
    DROP_OUT_OF_BOUNDS,
    DROP_UNAUTHORIZED,
    DROP_TOO_LARGE,
    DROP_SPOOL_FULL,
    DROP_SPOOL_AGE,
    DROP_CORRUPT,
    DROP_NREASONS
};
extern const char *const drop_reason_names[DROP_NREASONS];

struct mem_batch;

struct target {
    char name[SPOOL_NAME_MAX];  /* spool directory name: rw-<name> or pushgateway */
    char label[SPOOL_NAME_MAX]; /* `target` label value: the section name or "default" */
    enum seg_kind kind;
    bool spool_only; /* no receiver configured: batches wait for export/replay */
    char *url;
    struct http_client *http;
    int64_t max_samples;
    int64_t min_backoff_ms, max_backoff_ms;
    struct relabel *relabel; /* per-target filters (the config's; only sender_submit uses it) */
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
};

struct sender {
    const struct config *cfg;
    struct target **t;
    size_t n;
    struct spool *spool; /* NULL if it could not be opened */
    struct rw_encoder *enc;
    bool spool_only;
    int64_t send_deadline_mono; /* 0, or no send may run past it (shutdown) */
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

struct sender *sender_new(const struct config *cfg, struct err *e);
/* Sends in progress are aborted (and kept for later) while *flag is set. */
void sender_set_abort(struct sender *s, const volatile sig_atomic_t *flag);
void sender_free(struct sender *s);

/* Encodes the samples into batches for every remote-write target and
 * stores them (spool, or memory if the spool is unusable). Returns the
 * number of batches accepted, -1 if none could be stored anywhere. */
int sender_submit(struct sender *s, const struct series_buf *sb, const struct sb_sample *v,
                  size_t n);

/* Queues a Pushgateway push (method PUT/POST/DELETE, group path after the
 * base URL). Only the newest spooled push per group is kept. */
int sender_submit_push(struct sender *s, const char *method, const char *group_path,
                       const char *body, size_t len);

/* Delivers queued batches, oldest first, until everything is delivered,
 * a target must back off, `max_batches` were sent (0 = no limit) or the
 * monotonic deadline passes (no new send starts after it; a send in
 * flight runs to its own timeout, or to s->send_deadline_mono when set).
 * Returns the number of batches still queued. */
size_t sender_deliver(struct sender *s, int64_t deadline_mono, size_t max_batches);

/* Starts the delivery thread: it delivers and replays (at most `rate`
 * batches a second) while the caller keeps collecting. */
int sender_start(struct sender *s, size_t rate);
/* Wakes the delivery thread (a new batch was submitted). */
void sender_kick(struct sender *s);
/* Stops and joins the delivery thread (a send in flight ends at its
 * timeout or when the abort flag is set). Safe when not started. */
void sender_stop(struct sender *s);

/* Applies spool_max_size / spool_max_age and refreshes the spool gauges. */
void sender_housekeeping(struct sender *s);

/* Batches still queued (spool + memory) for every target. */
size_t sender_backlog(struct sender *s);

/* Publishes nexus_shipper_* delivery metrics into sb. */
void sender_metrics(struct sender *s, struct series_buf *sb);

/* Sends one spooled batch to `url` (remote-write), for `spool replay`. */
enum send_outcome sender_send_payload(struct http_client *c, const char *url, const void *p,
                                      size_t len, int64_t deadline_mono, struct http_response *r);

/* Backoff: random in [0, min(max, min * 2^failures)], at least Retry-After. */
int64_t backoff_ms(unsigned failures, int64_t min_ms, int64_t max_ms, int64_t retry_after_ms,
                   uint32_t *rng);

#endif
