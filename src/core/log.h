/* log: one line per event to stderr and optionally to a log file, as text
 * or (log_format = json) as one JSON object per line.
 *
 *   text: 2026-12-07T23:12:32.123Z [WARNING] send failed: HTTP 503: busy target=remote_write
 * url=http://REDACTED@h/w status=503 retry_in_s=1.5 json:
 * {"time":"2026-12-07T23:12:32.123Z","level":"warn","msg":"send failed","error":"HTTP 503:
 * busy","target":"remote_write",...}
 *
 * The time is RFC 3339 UTC with milliseconds. Text lines are the message,
 * then ": " and the `error` field when there is one (the reason reads as it
 * always did), then the other fields as logfmt `key=value` (values quoted
 * with \" and \\ escapes when they hold a space, `=`, a quote or nothing).
 * Control bytes are escaped in both formats, so a value (a receiver's
 * answer, say) can never start a line of its own. Numbers are JSON numbers.
 * A field of type LOG_F_URL is shown with its userinfo replaced by
 * "REDACTED" and the values of credential-looking query parameters too
 * (url_redact's convention). Lines are capped at LOG_LINE_MAX bytes
 * (values are cut, the line stays valid JSON).
 *
 * Under systemd (JOURNAL_STREAM names the device:inode of stderr, see
 * sd-daemon(3) and systemd.exec(5)) every stderr line starts with the
 * kernel-style priority prefix <3> error, <4> warning, <6> info, <7> debug,
 * which journald strips and stores as the priority; log_file lines never
 * carry it.
 *
 * The logger object lives in main.c and is registered with log_use(); this
 * module keeps only that pointer (the one piece of process-wide state, set
 * once at start-up before any thread exists). Without a registered logger,
 * messages of level INFO and above go to stderr as text.
 *
 * Threads: every function below may be called from any thread. The
 * logger's mutex covers everything a writer reads (file, level, format,
 * complaint table): logger_open_file swaps the file under it, so a line is
 * written either to the old file or to the new one, never to a closed one.
 *
 * Repeated complaints: log_complain(key, ...) logs the first occurrence at
 * WARN, then at most once per `complain_interval` with a `repeated` field
 * counting the suppressed repeats (those show at DEBUG); log_resolved(key,
 * ...) logs one INFO line when a key that was complaining stops.
 * log_once(key, ...) logs the first time a key is seen in this process
 * (the logger outlives reloads) and never again. */
#ifndef NS_LOG_H
#define NS_LOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

#define LOG_MAX_COMPLAINTS 64
#define LOG_MAX_ONCE       16
#define LOG_LINE_MAX       8192

struct log_complaint {
    char key[96];
    int64_t last_ms;     /* last time it was printed */
    uint64_t suppressed; /* repeats since then */
    bool active;
};

struct logger {
    enum log_level level;
    FILE *file;      /* optional log_file, owned */
    char *file_path; /* owned */
    bool json;
    bool quiet_stderr; /* true: only the file gets lines */
    bool journal;      /* stderr is the journal: <N> prefixes (set by logger_init) */
    int64_t complain_interval_ms;
    struct log_complaint complaints[LOG_MAX_COMPLAINTS];
    char once[LOG_MAX_ONCE][64]; /* keys log_once has seen */
    pthread_mutex_t mu;          /* guards all of the above once threads run */
};

/* Initialises `lg` (level from DEBUG=true in the environment or INFO; the
 * journal prefix from JOURNAL_STREAM matching stderr). */
void logger_init(struct logger *lg);
/* Opens (or reopens, for logrotate) the log file, created 0640, and swaps
 * it in atomically for writers; -1 and errno on failure (the old file
 * stays). `path` may be lg->file_path itself. */
int logger_open_file(struct logger *lg, const char *path);
/* Closes the log file (under the mutex); lines go to stderr only. */
void logger_close(struct logger *lg);
/* Setters for a running logger (reload), under its mutex. */
void logger_set_level(struct logger *lg, enum log_level lvl);
void logger_set_json(struct logger *lg, bool json);
int log_level_parse(const char *s, enum log_level *out);
void log_use(struct logger *lg);

/* printf-style: the formatted text is the message (JSON: msg only). */
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Would a line of this level be written? (to skip building debug detail) */
bool log_enabled(enum log_level lvl);
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

void log_complain(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_resolved(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_once(const char *key, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- structured events: a constant message plus typed fields ----------
 *
 *   log_event(LOG_WARN, "send failed", LOG_S("target", t->label),
 *             LOG_URL("url", t->url), LOG_I("status", 503),
 *             LOG_S("error", why), LOG_F("retry_in_s", 1.5));
 *
 * Fields are borrowed for the call only; a NULL string field is left out.
 * Conventional keys: target, url, collector, status, error, retry_in_s,
 * samples, batches, bytes, seconds. */
enum log_field_type { LOG_F_STR, LOG_F_INT, LOG_F_INZ, LOG_F_NUM, LOG_F_URL };

struct log_field {
    const char *key;
    enum log_field_type type;
    const char *s;
    long long i;
    double d;
};

#define LOG_S(k, v)   ((struct log_field){.key = (k), .type = LOG_F_STR, .s = (v)})
#define LOG_URL(k, v) ((struct log_field){.key = (k), .type = LOG_F_URL, .s = (v)})
#define LOG_I(k, v)   ((struct log_field){.key = (k), .type = LOG_F_INT, .i = (long long)(v)})
/* an integer left out when 0 (an HTTP status of a transport failure) */
#define LOG_INZ(k, v) ((struct log_field){.key = (k), .type = LOG_F_INZ, .i = (long long)(v)})
#define LOG_F(k, v)   ((struct log_field){.key = (k), .type = LOG_F_NUM, .d = (double)(v)})

#define LOG_FIELDS_(...)                                                                           \
    (const struct log_field[]){__VA_ARGS__},                                                       \
        sizeof((const struct log_field[]){__VA_ARGS__}) / sizeof(struct log_field)

void log_fields(enum log_level lvl, const char *msg, const struct log_field *f, size_t n);
void log_complain_fields(const char *key, const char *msg, const struct log_field *f, size_t n);
void log_resolved_fields(const char *key, const char *msg, const struct log_field *f, size_t n);

#define log_event(lvl, msg, ...) log_fields((lvl), (msg), LOG_FIELDS_(__VA_ARGS__))
#define log_complain_event(key, msg, ...)                                                          \
    log_complain_fields((key), (msg), LOG_FIELDS_(__VA_ARGS__))
#define log_resolved_event(key, msg, ...)                                                          \
    log_resolved_fields((key), (msg), LOG_FIELDS_(__VA_ARGS__))

/* Renders one line (without the journal prefix, with the newline) into
 * out[cap] as the logger `json` says, at wall-clock time `ms` (epoch ms);
 * returns its length. For tests. */
size_t log_render(char *out, size_t cap, bool json, int64_t ms, enum log_level lvl, const char *msg,
                  const struct log_field *f, size_t n);
/* Writes `url` with its userinfo and the values of credential-looking
 * query parameters replaced by "REDACTED" into out[cap] (truncated,
 * NUL-terminated; NULL gives ""). */
void log_redact_url(const char *url, char *out, size_t cap);

#endif
