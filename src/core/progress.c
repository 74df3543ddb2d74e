#include "progress.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util.h"

#define TTY_MIN_MS       100 /* at most 10 redraws a second */
#define PLAIN_DEFAULT_MS 5000

struct progress {
    pthread_mutex_t mu;
    FILE *out;
    char what[96], unit[32];
    uint64_t total, done;
    bool tty, shown;
    int64_t t0, last_ms, interval_ms;
};

void progress_fmt_bytes(double v, char *out, size_t n)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    size_t i = 0;
    if (v < 0)
        v = 0;
    while (v >= 1024 && i + 1 < sizeof u / sizeof u[0]) {
        v /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(out, n, "%.0f %s", v, u[i]);
    else
        snprintf(out, n, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, u[i]);
}

void progress_fmt_duration(double s, char *out, size_t n)
{
    if (s < 0 || s != s) {
        snprintf(out, n, "-");
        return;
    }
    uint64_t t = (uint64_t)(s + 0.5);
    if (t < 60)
        snprintf(out, n, "%" PRIu64 "s", t);
    else if (t < 3600)
        snprintf(out, n, "%" PRIu64 "m%02" PRIu64 "s", t / 60, t % 60);
    else if (t < 86400)
        snprintf(out, n, "%" PRIu64 "h%02" PRIu64 "m", t / 3600, t % 3600 / 60);
    else
        snprintf(out, n, "%" PRIu64 "d%02" PRIu64 "h", t / 86400, t % 86400 / 3600);
}

static bool is_bytes(const char *unit)
{
    return strcmp(unit, "bytes") == 0;
}

/* "12" or "1.50 MiB" */
static void fmt_count(const char *unit, uint64_t v, char *out, size_t n)
{
    if (is_bytes(unit))
        progress_fmt_bytes((double)v, out, n);
    else
        snprintf(out, n, "%" PRIu64, v);
}

static void fmt_rate(const char *unit, double r, char *out, size_t n)
{
    if (is_bytes(unit)) {
        char b[32];
        progress_fmt_bytes(r, b, sizeof b);
        snprintf(out, n, "%s/s", b);
    } else {
        snprintf(out, n, r < 100 ? "%.1f/s" : "%.0f/s", r);
    }
}

void progress_fmt_line(char *out, size_t n, const char *what, const char *unit, uint64_t done,
                       uint64_t total, double elapsed_s, const char *extra)
{
    char d[32], t[32], r[48], eta[32];
    struct buf b;
    buf_init(&b, n ? n - 1 : 0);
    fmt_count(unit, done, d, sizeof d);
    buf_printf(&b, "%s: %s", what, d);
    if (total) {
        fmt_count(unit, total, t, sizeof t);
        buf_printf(&b, "/%s", t);
    }
    if (!is_bytes(unit))
        buf_printf(&b, " %s", unit);
    if (total)
        buf_printf(&b, " (%d%%)",
                   (int)(done >= total ? 100 : 100.0 * (double)done / (double)total));
    double rate = elapsed_s >= 0.1 && done ? (double)done / elapsed_s : 0;
    if (rate > 0) {
        fmt_rate(unit, rate, r, sizeof r);
        buf_printf(&b, ", %s", r);
        if (total && done < total) {
            progress_fmt_duration((double)(total - done) / rate, eta, sizeof eta);
            buf_printf(&b, ", ETA %s", eta);
        }
    }
    if (extra && *extra)
        buf_printf(&b, ", %s", extra);
    snprintf(out, n, "%s", b.data ? b.data : what);
    buf_free(&b);
}

struct progress *progress_new(FILE *out, const char *what, const char *unit, uint64_t total)
{
    const char *mode = getenv("NS_PROGRESS");
    if (!out || (mode && strcmp(mode, "off") == 0))
        return NULL;
    struct progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    p->out = out;
    snprintf(p->what, sizeof p->what, "%s", what ? what : "");
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "");
    p->total = total;
    const char *term = getenv("TERM");
    p->tty = isatty(fileno(out)) && !(term && strcmp(term, "dumb") == 0) &&
             !(mode && strcmp(mode, "plain") == 0);
    p->interval_ms = PLAIN_DEFAULT_MS;
    const char *iv = getenv("NS_PROGRESS_INTERVAL");
    if (iv && *iv) {
        char *end;
        double s = strtod(iv, &end);
        if (!*end && s >= 0 && s < 86400)
            p->interval_ms = (int64_t)(s * 1000);
    }
    p->t0 = p->last_ms = mono_ms();
    return p;
}

void progress_set_total(struct progress *p, uint64_t total)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->total = total;
    pthread_mutex_unlock(&p->mu);
}

static size_t tty_width(FILE *out)
{
    struct winsize ws;
    if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
        return ws.ws_col;
    return 80;
}

void progress_update(struct progress *p, uint64_t done, const char *extra)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->done = done;
    int64_t now = mono_ms();
    bool due =
        p->tty ? !p->shown || now - p->last_ms >= TTY_MIN_MS : now - p->last_ms >= p->interval_ms;
    if (due) {
        char line[512];
        progress_fmt_line(line, sizeof line, p->what, p->unit, done, p->total,
                          (double)(now - p->t0) / 1000.0, extra);
        if (p->tty) {
            size_t w = tty_width(p->out) - 1;
            if (strlen(line) > w)
                line[w] = '\0';
            fprintf(p->out, "\r%s\033[K\r", line);
        } else {
            fprintf(p->out, "%s\n", line);
        }
        fflush(p->out);
        p->shown = true;
        p->last_ms = now;
    }
    pthread_mutex_unlock(&p->mu);
}

void progress_free(struct progress *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void progress_done(struct progress *p, const char *msg)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    if (p->shown) {
        double el = (double)(mono_ms() - p->t0) / 1000.0;
        char d[32], t[32] = "", e[32], r[48] = "";
        fmt_count(p->unit, p->done, d, sizeof d);
        if (p->total) {
            t[0] = '/';
            fmt_count(p->unit, p->total, t + 1, sizeof t - 1);
        }
        if (el >= 0.1 && p->done) {
            char rr[40];
            fmt_rate(p->unit, (double)p->done / el, rr, sizeof rr);
            snprintf(r, sizeof r, " (%s)", rr);
        }
        if (el < 60)
            snprintf(e, sizeof e, "%.1fs", el);
        else
            progress_fmt_duration(el, e, sizeof e);
        fprintf(p->out, "%s%s: %s%s%s%s in %s%s%s%s%s", p->tty ? "\r" : "", p->what, d, t,
                is_bytes(p->unit) ? "" : " ", is_bytes(p->unit) ? "" : p->unit, e, r,
                msg && *msg ? "; " : "", msg ? msg : "", p->tty ? "\033[K\n" : "\n");
        fflush(p->out);
    }
    pthread_mutex_unlock(&p->mu);
    progress_free(p);
}
