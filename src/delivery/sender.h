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
 * The sender owns its targets, HTTP clients, spool and encoder. It is the
 * one way to ship: the daemon's cycle, `once`, cleanup and skopeo runs
 * (through ship.h) and `spool replay` all enqueue and deliver through this
 * API; struct sender is opaque (its layout is in sender_int.h, for
 * sender*.c and the tests only). */
#ifndef NS_SENDER_H
#define NS_SENDER_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "http.h"
#include "remote_write.h"
#include "series.h"
#include "spool.h"

/* enum drop_reason is remote_write.h's; its label values: */
extern const char *const drop_reason_names[DROP_NREASONS];

/* What a caller may know of one target (a copy, taken under the lock). */
struct sender_target_status {
    char name[SPOOL_NAME_MAX];  /* spool directory: rw-<name> or pushgateway */
    char label[SPOOL_NAME_MAX]; /* `target` label value */
    enum seg_kind kind;
    bool spool_only;
    uint64_t batches_sent, samples_sent, batches_left_at_stop;
    int64_t last_success_ms; /* 0: never this process */
    long last_status;        /* HTTP status of the last attempt, 0 = transport error / none */
    char last_error[256];    /* "" after a success */
    unsigned failures;       /* consecutive failed attempts */
    int64_t retry_in_ms;     /* > 0 while in backoff */
    uint64_t spool_bytes, spool_segments;
    int64_t spool_oldest_ms;
};

struct sender;

struct sender *sender_new(const struct config *cfg, struct err *e);
/* A sender for `spool replay`: one target per directory in the spool
 * (only `only` when given), remote-write ones sent to `url` when given,
 * else to the configured [remote_write] of the same name; Pushgateway
 * records to [pushgateway]. A target with no receiver is left alone. */
struct sender *sender_new_replay(const struct config *cfg, const char *url, const char *only,
                                 struct err *e);
/* Sends in progress are aborted (and kept for later, not counted as a
 * failed attempt) while *flag is set. */
void sender_set_abort(struct sender *s, const volatile sig_atomic_t *flag);
void sender_free(struct sender *s);

/* The spool's delivery lock makes its holder the one writer of every
 * series on this host (src/README.md, "One writer per series"). Takes it,
 * waiting up to wait_ms while another short-lived process holds it (0 =
 * try once), and stops waiting when *stop becomes set. daemon: mark the
 * lock as held by a daemon for its whole life. Returns WRITER_HELD,
 * WRITER_DAEMON (a daemon holds it; *daemon_pid set), WRITER_BUSY (still
 * held by another process at the end of the wait) or WRITER_NONE (no
 * usable spool: nobody can be the writer, the caller ships alone). */
enum writer_state { WRITER_HELD, WRITER_DAEMON, WRITER_BUSY, WRITER_NONE };
enum writer_state sender_take_writer(struct sender *s, bool daemon, int64_t wait_ms,
                                     const volatile sig_atomic_t *stop, long *daemon_pid);

/* Encodes the samples into batches for every remote-write target and
 * stores them (spool, or memory if the spool is unusable). Returns the
 * number of batches accepted, -1 if none could be stored anywhere. */
int sender_submit(struct sender *s, const struct series_buf *sb, const struct sb_sample *v,
                  size_t n);

/* Queues a Pushgateway push (method PUT or POST, a group path that
 * follows the grouping grammar: pgw_group_path_check). Only the newest
 * spooled push per group is kept. -1 for anything else. */
int sender_submit_push(struct sender *s, const char *method, const char *group_path,
                       const char *body, size_t len);

/* The producers' entry: the samples go to every remote-write target
 * (sender_submit; `to` has ENQ_REMOTE_WRITE) and, when `job` is given, `to`
 * has ENQ_PUSHGATEWAY and a [pushgateway] is configured, as one text-format
 * PUT of the group job/<job>/instance/<instance> (sender_submit_push).
 * Returns the number of batches accepted, 0 when there was nothing to
 * store, -1 when something could not be stored. */
#define ENQ_REMOTE_WRITE 1u
#define ENQ_PUSHGATEWAY  2u
#define ENQ_ALL          (ENQ_REMOTE_WRITE | ENQ_PUSHGATEWAY)
int sender_enqueue(struct sender *s, const struct series_buf *sb, const struct sb_sample *v,
                   size_t n, const char *job, unsigned to);

/* Delivers queued batches, oldest first, until everything is delivered,
 * a target must back off, `max_batches` were sent (0 = no limit) or the
 * monotonic deadline passes (no new send starts after it). With
 * SENDER_FINAL (shutdown, CLI runs): every target gets at least one
 * attempt whatever its backoff, and a send in flight ends at the deadline.
 * Returns the number of batches still queued. */
#define SENDER_FINAL 1u
size_t sender_deliver(struct sender *s, int64_t deadline_mono, size_t max_batches,
                      unsigned flags);

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

/* Targets, and a copy of one target's state (0, or -1 if i is out of
 * range). */
size_t sender_n_targets(const struct sender *s);
int sender_target_status(struct sender *s, size_t i, struct sender_target_status *out);
/* true when batches are written to a disk spool (not memory only). */
bool sender_has_spool(const struct sender *s);
/* false when nothing is ever sent ([shipper] spool_only, or no target
 * with a receiver): batches wait for `spool export` / `spool replay`. */
bool sender_delivers(const struct sender *s);
/* Batches quarantined by this sender (rejected, damaged or refused). */
uint64_t sender_quarantined(struct sender *s);
/* Records refused before sending: not what their target sends (a kind or
 * Pushgateway path that the shipper never writes: a crafted archive). */
uint64_t sender_refused(struct sender *s);

/* Publishes nexus_shipper_* delivery metrics into sb: the state after the
 * sends so far, read now (the batch that will carry them is not in it). */
void sender_metrics(struct sender *s, struct series_buf *sb);

/* Sends one spooled batch to `url` (remote-write). */
enum send_outcome sender_send_payload(struct http_client *c, const char *url, const void *p,
                                      size_t len, int64_t deadline_mono, struct http_response *r);

/* Backoff: random in [0, min(max, min * 2^failures)], at least Retry-After. */
int64_t backoff_ms(unsigned failures, int64_t min_ms, int64_t max_ms, int64_t retry_after_ms,
                   uint32_t *rng);

#endif
