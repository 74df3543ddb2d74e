#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static struct logger *cur; /* registered by main.c; see log.h */

static const char *level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};

void logger_init(struct logger *lg)
{
    memset(lg, 0, sizeof *lg);
    const char *dbg = getenv("DEBUG");
    bool on = false;
    lg->level = (dbg && parse_bool(dbg, &on) == 0 && on) ? LOG_DEBUG : LOG_INFO;
    lg->complain_interval_ms = 3600 * 1000;
    pthread_mutex_init(&lg->mu, NULL);
}

static void lock(void)
{
    if (cur)
        pthread_mutex_lock(&cur->mu);
}

static void unlock(void)
{
    if (cur)
        pthread_mutex_unlock(&cur->mu);
}

int logger_open_file(struct logger *lg, const char *path)
{
    /* 0640 whatever the umask: log lines name hosts, users and errors */
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "a");
    if (!f) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    if (lg->file)
        fclose(lg->file);
    lg->file = f;
    if (lg->file_path != path) {
        char *p = strdup(path);
        if (!p)
            return -1;
        free(lg->file_path);
        lg->file_path = p;
    }
    return 0;
}

void logger_close(struct logger *lg)
{
    if (!lg)
        return;
    if (lg->file)
        fclose(lg->file);
    lg->file = NULL;
    free(lg->file_path);
    lg->file_path = NULL;
}

int log_level_parse(const char *s, enum log_level *out)
{
    static const char *names[] = {"debug", "info", "warning", "error"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    if (strcasecmp(s, "warn") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -1;
}

void log_use(struct logger *lg)
{
    cur = lg;
}

static void json_escape(struct buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            buf_printf(b, "\\%c", c);
        else if (c == '\n')
            buf_puts(b, "\\n");
        else if (c < 0x20)
            buf_printf(b, "\\u%04x", c);
        else
            buf_append(b, s, 1);
    }
}

static void emit(enum log_level lvl, const char *msg)
{
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    char line[4096];
    if (cur && cur->json) {
        struct buf b;
        buf_init(&b, sizeof line - 2);
        buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, level_names[lvl]);
        json_escape(&b, msg);
        buf_puts(&b, "\"}");
        snprintf(line, sizeof line, "%s\n", b.data ? b.data : "");
        buf_free(&b);
    } else {
        snprintf(line, sizeof line, "%s [%s] %s\n", ts, level_names[lvl], msg);
    }
    if (!cur || !cur->quiet_stderr)
        fputs(line, stderr);
    if (cur && cur->file)
        fputs(line, cur->file);
}

static void vlog(enum log_level lvl, const char *fmt, va_list ap)
{
    enum log_level min = cur ? cur->level : LOG_INFO;
    if (lvl < min)
        return;
    char msg[3072];
    vsnprintf(msg, sizeof msg, fmt, ap);
    lock();
    emit(lvl, msg);
    unlock();
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(lvl, fmt, ap);
    va_end(ap);
}

static struct log_complaint *find_complaint(const char *key, bool create)
{
    if (!cur)
        return NULL;
    struct log_complaint *free_slot = NULL;
    for (int i = 0; i < LOG_MAX_COMPLAINTS; i++) {
        struct log_complaint *c = &cur->complaints[i];
        if (c->active && strcmp(c->key, key) == 0)
            return c;
        if (!c->active && !free_slot)
            free_slot = c;
    }
    if (!create || !free_slot)
        return NULL;
    memset(free_slot, 0, sizeof *free_slot);
    snprintf(free_slot->key, sizeof free_slot->key, "%s", key);
    return free_slot;
}

void log_complain(const char *key, const char *fmt, ...)
{
    char msg[3072];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lock();
    struct log_complaint *c = find_complaint(key, true);
    int64_t now = mono_ms();
    if (!c) { /* table full or no logger: never lose the message */
        emit(LOG_WARN, msg);
        unlock();
        return;
    }
    if (!c->active) {
        c->active = true;
        c->last_ms = now;
        emit(LOG_WARN, msg);
        unlock();
        return;
    }
    if (now - c->last_ms >= cur->complain_interval_ms) {
        char m2[3200];
        snprintf(m2, sizeof m2, "%s (repeated %llu times since last report)", msg,
                 (unsigned long long)c->suppressed);
        emit(LOG_WARN, m2);
        c->last_ms = now;
        c->suppressed = 0;
    } else {
        c->suppressed++;
        if (cur->level == LOG_DEBUG)
            emit(LOG_DEBUG, msg);
    }
    unlock();
}

void log_resolved(const char *key, const char *fmt, ...)
{
    lock();
    struct log_complaint *c = find_complaint(key, false);
    if (!c) {
        unlock();
        return;
    }
    char msg[3072];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->active = false;
    if (cur->level <= LOG_INFO)
        emit(LOG_INFO, msg);
    unlock();
}
