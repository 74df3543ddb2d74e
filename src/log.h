/* log: `YYYY-MM-DD HH:MM:SS [LEVEL] message` lines (the seed's format) to
 * stderr and optionally to a log file, or one JSON object per line.
 *
 * The logger object lives in main.c and is registered with log_use(); this
 * module keeps only that pointer (the one piece of process-wide state, set
 * once at start-up and on reload). Without a registered logger, messages
 * of level INFO and above go to stderr.
 *
 * Repeated complaints: log_complain(key, ...) logs the first occurrence at
 * WARN, then at most once per `complain_interval` with a count of the
 * suppressed repeats; log_resolved(key, ...) logs one INFO line when a key
 * that was complaining stops. */
#ifndef NS_LOG_H
#define NS_LOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

#define LOG_MAX_COMPLAINTS 64

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
    int64_t complain_interval_ms;
    struct log_complaint complaints[LOG_MAX_COMPLAINTS];
    pthread_mutex_t mu; /* collection and delivery threads both log */
};

/* Initialises `lg` (level from DEBUG=true in the environment or INFO). */
void logger_init(struct logger *lg);
/* Opens (or reopens, for logrotate) the log file; -1 and errno on failure. */
int logger_open_file(struct logger *lg, const char *path);
void logger_close(struct logger *lg);
int log_level_parse(const char *s, enum log_level *out);
void log_use(struct logger *lg);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

void log_complain(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_resolved(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
