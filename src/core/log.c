#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static struct logger *cur; /* registered by main.c; see log.h */

static const char *const level_text[] = {"DEBUG", "INFO", "WARNING", "ERROR"};
static const char *const level_json[] = {"debug", "info", "warn", "error"};
static const char level_prio[] = {'7', '6', '4', '3'}; /* sd-daemon(3) */

#define MAX_FIELDS 32

/* True when JOURNAL_STREAM ("DEV:INODE", systemd.exec(5)) names the file
 * that fd 2 is: stderr is connected to the journal, not redirected by a
 * child or a shell. */
static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    if (!js || !*js)
        return false;
    char *end;
    errno = 0;
    uintmax_t dev = strtoumax(js, &end, 10);
    if (errno || end == js || *end != ':')
        return false;
    const char *p = end + 1;
    uintmax_t ino = strtoumax(p, &end, 10);
    if (errno || end == p || *end)
        return false;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) < 0)
        return false;
    return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

void logger_init(struct logger *lg)
{
    memset(lg, 0, sizeof *lg);
    const char *dbg = getenv("DEBUG");
    bool on = false;
    lg->level = (dbg && parse_bool(dbg, &on) == 0 && on) ? LOG_DEBUG : LOG_INFO;
    lg->complain_interval_ms = 3600 * 1000;
    lg->journal = stderr_is_journal();
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
    char *p = NULL;
    if (lg->file_path != path && !(p = strdup(path))) {
        fclose(f);
        errno = ENOMEM;
        return -1;
    }
    /* writers see the old file or the new one, never a closed one */
    pthread_mutex_lock(&lg->mu);
    FILE *old = lg->file;
    lg->file = f;
    if (p) {
        free(lg->file_path);
        lg->file_path = p;
    }
    pthread_mutex_unlock(&lg->mu);
    if (old)
        fclose(old);
    return 0;
}

void logger_close(struct logger *lg)
{
    if (!lg)
        return;
    pthread_mutex_lock(&lg->mu);
    FILE *old = lg->file;
    char *p = lg->file_path;
    lg->file = NULL;
    lg->file_path = NULL;
    pthread_mutex_unlock(&lg->mu);
    if (old)
        fclose(old);
    free(p);
}

void logger_set_level(struct logger *lg, enum log_level lvl)
{
    pthread_mutex_lock(&lg->mu);
    lg->level = lvl;
    pthread_mutex_unlock(&lg->mu);
}

void logger_set_json(struct logger *lg, bool json)
{
    pthread_mutex_lock(&lg->mu);
    lg->json = json;
    pthread_mutex_unlock(&lg->mu);
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

/* ---- URL redaction ------------------------------------------------------ */

void log_redact_url(const char *url, char *out, size_t cap)
{
    if (cap)
        url_redact(url ? url : "", out, cap); /* util.h: the one redaction */
}

/* ---- rendering into a capped line ----------------------------------------
 * `room` keeps space for what closes the line (quote, brace, newline), so
 * a cut value still gives a complete line. */

struct line {
    char *p;
    size_t len, cap; /* cap excludes the reserve */
    bool cut;
};

#define RESERVE 8

static size_t avail(const struct line *l)
{
    return l->len < l->cap ? l->cap - l->len : 0;
}

static void put(struct line *l, const char *s, size_t n)
{
    if (l->cut)
        return;
    if (n > avail(l)) {
        n = avail(l);
        l->cut = true;
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, min = 0x10000;
    else
        return 0;
    unsigned cp = c & (0xFF >> (n + 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* Copies s, escaping for a JSON string (json) or for a text line (control
 * bytes as \n \r \t \xNN; `quote`: also " and \ inside a quoted value).
 * Invalid UTF-8 becomes U+FFFD in JSON and \xNN in text. A value is cut
 * only between whole characters. */
static void put_escaped(struct line *l, const char *s, bool json, bool quote)
{
    const unsigned char *u = (const unsigned char *)s;
    while (*u && !l->cut) {
        char tmp[8];
        const char *w = tmp;
        size_t n;
        unsigned c = *u;
        size_t adv = 1;
        if (c == '"' && (json || quote))
            w = "\\\"", n = 2;
        else if (c == '\\' && (json || quote))
            w = "\\\\", n = 2;
        else if (c == '\n')
            w = "\\n", n = 2;
        else if (c == '\r')
            w = "\\r", n = 2;
        else if (c == '\t')
            w = "\\t", n = 2;
        else if (c < 0x20 || c == 0x7F)
            n = (size_t)snprintf(tmp, sizeof tmp, json ? "\\u%04x" : "\\x%02x", c);
        else if (c < 0x80)
            w = (const char *)u, n = 1;
        else if ((adv = utf8_len(u)) > 0)
            w = (const char *)u, n = adv;
        else {
            adv = 1;
            if (json)
                w = "\\ufffd", n = 6;
            else
                n = (size_t)snprintf(tmp, sizeof tmp, "\\x%02x", c);
        }
        if (n > avail(l)) {
            l->cut = true;
            break;
        }
        put(l, w, n);
        u += adv;
    }
}

static bool needs_quotes(const char *s)
{
    if (!*s)
        return true;
    for (const unsigned char *u = (const unsigned char *)s; *u; u++)
        if (*u <= ' ' || *u == '=' || *u == '"' || *u == '\\' || *u == 0x7F)
            return true;
    return false;
}

static const char *field_str(const struct log_field *f, char *tmp, size_t cap)
{
    switch (f->type) {
    case LOG_F_INZ:
        if (!f->i)
            return NULL;
        /* fall through */
    case LOG_F_INT:
        snprintf(tmp, cap, "%lld", f->i);
        return tmp;
    case LOG_F_NUM:
        if (isnan(f->d) || isinf(f->d))
            return NULL; /* JSON null; text NaN/Inf below */
        snprintf(tmp, cap, "%.15g", f->d);
        return tmp;
    case LOG_F_URL:
        log_redact_url(f->s, tmp, cap);
        return tmp;
    default:
        return f->s;
    }
}

size_t log_render(char *out, size_t cap, bool json, int64_t ms, enum log_level lvl, const char *msg,
                  const struct log_field *f, size_t n)
{
    if (cap < RESERVE + 64) {
        if (cap)
            out[0] = '\0';
        return 0;
    }
    struct line l = {out, 0, cap - RESERVE, false};
    char ts[40];
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t tl = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof ts - tl, ".%03dZ", (int)(ms % 1000));
    if ((unsigned)lvl > LOG_ERROR)
        lvl = LOG_ERROR;
    const char *error = NULL;
    for (size_t i = 0; i < n; i++)
        if (f[i].type == LOG_F_STR && f[i].s && strcmp(f[i].key, "error") == 0)
            error = f[i].s;
    char tmp[2048];
    if (json) {
        puts_(&l, "{\"time\":\"");
        puts_(&l, ts);
        puts_(&l, "\",\"level\":\"");
        puts_(&l, level_json[lvl]);
        puts_(&l, "\",\"msg\":\"");
        put_escaped(&l, msg, true, true);
        puts_(&l, "\"");
        for (size_t i = 0; i < n && !l.cut; i++) {
            const char *v = field_str(&f[i], tmp, sizeof tmp);
            if (!v && f[i].type != LOG_F_NUM)
                continue; /* NULL string, zero LOG_INZ */
            /* a key cut in half would leave an invalid object: all or nothing */
            size_t need = strlen(f[i].key) + 8;
            if (need > avail(&l)) {
                l.cut = true;
                break;
            }
            puts_(&l, ",\"");
            put_escaped(&l, f[i].key, true, true);
            puts_(&l, "\":");
            if (!v)
                puts_(&l, "null");
            else if (f[i].type == LOG_F_INT || f[i].type == LOG_F_INZ || f[i].type == LOG_F_NUM)
                puts_(&l, v);
            else {
                puts_(&l, "\"");
                l.cap--; /* room for the closing quote */
                put_escaped(&l, v, true, true);
                l.cap++;
                puts_(&l, "\"");
            }
        }
        if (l.cut) {
            /* close an open string, if the cut left one */
            bool in_str = false;
            for (size_t i = 0; i < l.len; i++) {
                if (l.p[i] == '\\') {
                    i++;
                    continue;
                }
                if (l.p[i] == '"')
                    in_str = !in_str;
            }
            if (in_str)
                l.p[l.len++] = '"';
            else if (l.len && (l.p[l.len - 1] == ':' || l.p[l.len - 1] == ','))
                l.len--; /* cannot happen after the all-or-nothing key check */
        }
        l.p[l.len++] = '}';
    } else {
        puts_(&l, ts);
        puts_(&l, " [");
        puts_(&l, level_text[lvl]);
        puts_(&l, "] ");
        put_escaped(&l, msg, false, false);
        if (error) {
            puts_(&l, ": ");
            put_escaped(&l, error, false, false);
        }
        for (size_t i = 0; i < n && !l.cut; i++) {
            const char *v = field_str(&f[i], tmp, sizeof tmp);
            if ((f[i].type == LOG_F_STR && (!v || v == error)) || (f[i].type == LOG_F_INZ && !v))
                continue;
            if (!v)
                v = isnan(f[i].d) ? "NaN" : f[i].d > 0 ? "+Inf" : "-Inf";
            puts_(&l, " ");
            puts_(&l, f[i].key);
            puts_(&l, "=");
            if (needs_quotes(v)) {
                puts_(&l, "\"");
                l.cap--;
                put_escaped(&l, v, false, true);
                l.cap++;
                puts_(&l, "\"");
            } else {
                put_escaped(&l, v, false, false);
            }
        }
    }
    l.p[l.len++] = '\n';
    l.p[l.len] = '\0';
    return l.len;
}

/* ---- output ---------------------------------------------------------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Caller holds the lock (when a logger is registered). */
static bool enabled(enum log_level lvl)
{
    return lvl >= (cur ? cur->level : LOG_INFO);
}

bool log_enabled(enum log_level lvl)
{
    lock();
    bool on = enabled(lvl);
    unlock();
    return on;
}

/* Caller holds the lock. */
static void emit_fields(enum log_level lvl, const char *msg, const struct log_field *f, size_t n)
{
    char line[LOG_LINE_MAX];
    size_t len = log_render(line, sizeof line, cur && cur->json, wall_ms(), lvl, msg, f, n);
    if (!cur || !cur->quiet_stderr) {
        if (cur && cur->journal) {
            char pre[4] = {'<', level_prio[lvl], '>', '\0'};
            fputs(pre, stderr);
        }
        fwrite(line, 1, len, stderr);
    }
    if (cur && cur->file)
        fwrite(line, 1, len, cur->file);
}

static void emit(enum log_level lvl, const char *msg)
{
    emit_fields(lvl, msg, NULL, 0);
}

void log_fields(enum log_level lvl, const char *msg, const struct log_field *f, size_t n)
{
    lock();
    if (enabled(lvl))
        emit_fields(lvl, msg, f, n);
    unlock();
}

static void vlog(enum log_level lvl, const char *fmt, va_list ap)
{
    char msg[3072];
    vsnprintf(msg, sizeof msg, fmt, ap);
    log_fields(lvl, msg, NULL, 0);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(lvl, fmt, ap);
    va_end(ap);
}

void log_once(const char *key, enum log_level lvl, const char *fmt, ...)
{
    lock();
    if (cur) {
        size_t i;
        for (i = 0; i < LOG_MAX_ONCE && cur->once[i][0]; i++)
            if (strncmp(cur->once[i], key, sizeof cur->once[i] - 1) == 0)
                goto out;     /* seen */
        if (i < LOG_MAX_ONCE) /* a full table logs again rather than never */
            snprintf(cur->once[i], sizeof cur->once[i], "%s", key);
    }
    if (enabled(lvl)) {
        char msg[3072];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        emit(lvl, msg);
    }
out:
    unlock();
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

void log_complain_fields(const char *key, const char *msg, const struct log_field *f, size_t n)
{
    if (n > MAX_FIELDS)
        n = MAX_FIELDS;
    lock();
    struct log_complaint *c = find_complaint(key, true);
    int64_t now = mono_ms();
    if (!c) { /* table full or no logger: never lose the message */
        if (enabled(LOG_WARN))
            emit_fields(LOG_WARN, msg, f, n);
    } else if (!c->active) {
        c->active = true;
        c->last_ms = now;
        c->suppressed = 0;
        if (enabled(LOG_WARN))
            emit_fields(LOG_WARN, msg, f, n);
    } else if (now - c->last_ms >= cur->complain_interval_ms) {
        struct log_field all[MAX_FIELDS + 1];
        if (n)
            memcpy(all, f, n * sizeof *f);
        all[n] = LOG_I("repeated", c->suppressed);
        if (enabled(LOG_WARN))
            emit_fields(LOG_WARN, msg, all, n + 1);
        c->last_ms = now;
        c->suppressed = 0;
    } else {
        c->suppressed++;
        if (enabled(LOG_DEBUG))
            emit_fields(LOG_DEBUG, msg, f, n);
    }
    unlock();
}

void log_resolved_fields(const char *key, const char *msg, const struct log_field *f, size_t n)
{
    lock();
    struct log_complaint *c = find_complaint(key, false);
    if (c) {
        c->active = false;
        if (enabled(LOG_INFO))
            emit_fields(LOG_INFO, msg, f, n);
    }
    unlock();
}

void log_complain(const char *key, const char *fmt, ...)
{
    char msg[3072];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_complain_fields(key, msg, NULL, 0);
}

void log_resolved(const char *key, const char *fmt, ...)
{
    char msg[3072];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_resolved_fields(key, msg, NULL, 0);
}
