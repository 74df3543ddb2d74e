/* status_page: see status_page.h. */
#include "status_page.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup_metrics.h"
#include "log.h"
#include "nsconfig.h"
#include "sender.h"
#include "skopeo.h"
#include "skopeo_metrics.h"
#include "util.h"

int status_html_escape(struct buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int rc;
        switch (c) {
        case '&':
            rc = buf_puts(b, "&amp;");
            break;
        case '<':
            rc = buf_puts(b, "&lt;");
            break;
        case '>':
            rc = buf_puts(b, "&gt;");
            break;
        case '"':
            rc = buf_puts(b, "&quot;");
            break;
        case '\'':
            rc = buf_puts(b, "&#39;");
            break;
        default:
            if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
                rc = buf_puts(b, "\xef\xbf\xbd"); /* U+FFFD */
            else
                rc = buf_append(b, s, 1);
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* "2026-12-07T23:50:01Z", or "never" for 0 */
static void fmt_time(int64_t ms, char *out, size_t n)
{
    if (ms <= 0) {
        snprintf(out, n, "never");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "4.2 s", "5 min 3 s", "2 h 5 min", "3 d 4 h" */
static void fmt_age(int64_t ms, char *out, size_t n)
{
    if (ms < 0)
        ms = 0;
    int64_t s = ms / 1000;
    if (ms < 60000)
        snprintf(out, n, "%.1f s", (double)ms / 1000.0);
    else if (s < 3600)
        snprintf(out, n, "%lld min %lld s", (long long)(s / 60), (long long)(s % 60));
    else if (s < 86400)
        snprintf(out, n, "%lld h %lld min", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else
        snprintf(out, n, "%lld d %lld h", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}

/* "1.5 MiB" */
static void fmt_bytes(double v, char *out, size_t n)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < NS_ARRAY_LEN(unit)) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(out, n, "%.0f B", v);
    else
        snprintf(out, n, "%.1f %s", v, unit[u]);
}

/* A time cell: "2026-...Z (4.2 s ago)" or "never". */
static void put_when(struct buf *b, int64_t ms, int64_t now)
{
    char t[40], a[40];
    fmt_time(ms, t, sizeof t);
    if (ms <= 0) {
        buf_printf(b, "<td class=\"none\">never</td>");
        return;
    }
    fmt_age(now - ms, a, sizeof a);
    buf_printf(b, "<td><time datetime=\"%s\">%s</time> (%s ago)</td>", t, t, a);
}

/* <td>escaped</td>, with a class when given */
static void put_cell(struct buf *b, const char *cls, const char *text)
{
    if (cls)
        buf_printf(b, "<td class=\"%s\">", cls);
    else
        buf_puts(b, "<td>");
    status_html_escape(b, text);
    buf_puts(b, "</td>");
}

static const char style[] =
    "body{font-family:sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;margin-bottom:1.5em}"
    "th,td{border:1px solid #bbb;padding:.25em .6em;text-align:left;vertical-align:top}"
    "th{background:#eee}td.num{text-align:right}"
    ".ok{color:#176117;font-weight:bold}.bad{color:#a01515;font-weight:bold}"
    ".none{color:#777}.err{color:#a01515;max-width:40em;word-break:break-word}"
    "dt{font-weight:bold;float:left;clear:left;width:11em}dd{margin-left:12em}";

static void render_head(struct buf *b, const struct config *cfg, const char *config_path,
                        int64_t start_ms, int64_t now)
{
    int64_t refresh = cfg->shipper.interval_ms / 1000;
    if (refresh < 2)
        refresh = 2;
    if (refresh > 60)
        refresh = 60;
    buf_printf(b,
               "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta http-equiv=\"refresh\" content=\"%lld\">"
               "<meta name=\"viewport\" content=\"width=device-width\">"
               "<title>nexus-shipper ",
               (long long)refresh);
    status_html_escape(b, cfg->shipper.instance ? cfg->shipper.instance : "");
    buf_printf(b, "</title><style>%s</style></head><body>\n<h1>nexus-shipper ", style);
    status_html_escape(b, cfg->shipper.instance ? cfg->shipper.instance : "");
    buf_puts(b, "</h1>\n<dl>");
    buf_puts(b, "<dt>Version</dt><dd id=\"version\">");
    status_html_escape(b, PACKAGE_VERSION);
    buf_puts(b, "</dd><dt>Configuration file</dt><dd id=\"config\">");
    char real[PATH_MAX];
    if (config_path && realpath(config_path, real))
        status_html_escape(b, real);
    else
        status_html_escape(b, config_path ? config_path : "(none)");
    char t[40], a[40];
    fmt_time(start_ms, t, sizeof t);
    fmt_age(now - start_ms, a, sizeof a);
    buf_printf(b, "</dd><dt>Started</dt><dd>%s (up %s)</dd>", t, a);
    fmt_time(now, t, sizeof t);
    buf_printf(b, "<dt>Page rendered</dt><dd>%s (every cycle; refreshes every %lld s)</dd>", t,
               (long long)refresh);
    buf_puts(b, "<dt>Spool</dt><dd>");
    status_html_escape(b, cfg->shipper.spool_dir ? cfg->shipper.spool_dir : "");
    buf_puts(b, "</dd></dl>\n");
}

/* The targets' table; fills d. */
static void render_targets(struct buf *b, struct sender *snd, int64_t now, struct httpd_delivery *d)
{
    struct buf det;
    buf_init(&det, sizeof d->detail - 1);
    buf_puts(b, "<h2>Targets</h2>\n");
    size_t n = snd ? sender_n_targets(snd) : 0;
    if (!n) {
        buf_puts(b, "<p class=\"none\">No targets configured.</p>\n");
        buf_free(&det);
        return;
    }
    buf_puts(b, "<table id=\"targets\"><tr><th>Target</th><th>Kind</th><th>Last success</th>"
                "<th>Last status</th><th>Current error</th><th>Failures in a row</th>"
                "<th>Retry in</th><th>Spooled batches</th><th>Spooled bytes</th>"
                "<th>Oldest spooled</th><th>Batches sent</th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        struct sender_target_status st;
        if (sender_target_status(snd, i, &st) < 0)
            continue;
        char v[64], w[64];
        buf_puts(b, "<tr>");
        put_cell(b, NULL, st.label[0] ? st.label : st.name);
        put_cell(b, NULL,
                 st.kind == SEG_PUSHGATEWAY
                     ? (st.spool_only ? "pushgateway (spool only)" : "pushgateway")
                     : (st.spool_only ? "remote-write (spool only)" : "remote-write"));
        put_when(b, st.last_success_ms, now);
        if (st.last_status > 0)
            snprintf(v, sizeof v, "HTTP %ld", st.last_status);
        else
            snprintf(v, sizeof v, "%s", st.last_error[0] ? "transport error" : "-");
        put_cell(b, st.last_status >= 200 && st.last_status < 300 ? "ok" : NULL, v);
        if (st.last_error[0])
            put_cell(b, "err", st.last_error);
        else
            put_cell(b, "none", st.spool_only ? "(not sent: spool only)" : "none");
        buf_printf(b, "<td class=\"num\">%u</td>", st.failures);
        if (st.retry_in_ms > 0) {
            fmt_age(st.retry_in_ms, v, sizeof v);
            put_cell(b, "num", v);
        } else {
            put_cell(b, "none", "-");
        }
        buf_printf(b, "<td class=\"num\">%llu</td>", (unsigned long long)st.batches_left_at_stop);
        fmt_bytes((double)st.spool_bytes, v, sizeof v);
        put_cell(b, "num", v);
        if (st.spool_oldest_ms > 0 && st.batches_left_at_stop) {
            fmt_age(now - st.spool_oldest_ms, w, sizeof w);
            snprintf(v, sizeof v, "%s ago", w);
            put_cell(b, "num", v);
        } else {
            put_cell(b, "none", "-");
        }
        buf_printf(b, "<td class=\"num\">%llu</td></tr>\n", (unsigned long long)st.batches_sent);
        if (st.spool_only || st.kind != SEG_REMOTE_WRITE)
            continue;
        /* the delivery figures for /healthz: remote-write targets get every
         * cycle; a Pushgateway only gets a job's group when a run changed it */
        d->targets++;
        if (st.last_success_ms > d->newest_ms)
            d->newest_ms = st.last_success_ms;
        char t[40];
        fmt_time(st.last_success_ms, t, sizeof t);
        buf_printf(&det, "%s%s: last delivery %s", det.len ? "; " : "",
                   st.label[0] ? st.label : st.name,
                   st.last_success_ms > 0 ? t : "never since start");
        if (st.last_error[0])
            buf_printf(&det, ", now failing: %s", st.last_error);
    }
    buf_puts(b, "</table>\n");
    snprintf(d->detail, sizeof d->detail, "%s", det.len ? buf_cstr(&det) : "");
    buf_free(&det);
}

static void render_collectors(struct buf *b, const struct scheduler *s, int64_t now)
{
    buf_puts(b, "<h2>Collectors</h2>\n");
    if (!s->n) {
        buf_puts(b, "<p class=\"none\">No collectors enabled.</p>\n");
        return;
    }
    buf_puts(b, "<table id=\"collectors\"><tr><th>Collector</th><th>Up</th>"
                "<th>Last duration</th><th>Series</th><th>Last success</th>"
                "<th>Failures</th><th>Last error</th></tr>\n");
    for (size_t i = 0; i < s->n; i++) {
        const struct coll_inst *c = &s->ci[i];
        buf_puts(b, "<tr>");
        put_cell(b, NULL, c->c->name);
        if (!c->has_run && c->ready)
            put_cell(b, "none", "not run yet");
        else
            put_cell(b, c->up ? "ok" : "bad", c->up ? "up" : "down");
        buf_printf(b, "<td class=\"num\">%.3f s</td><td class=\"num\">%zu</td>", c->duration,
                   c->series);
        put_when(b, c->last_ok_ms, now);
        buf_printf(b, "<td class=\"num\">%llu</td>", (unsigned long long)c->failures);
        if (c->last_error[0])
            put_cell(b, "err", c->last_error);
        else
            put_cell(b, "none", "none");
        buf_puts(b, "</tr>\n");
    }
    buf_puts(b, "</table>\n");
}

static void render_cleanup(struct buf *b, const char *state_dir, int64_t now)
{
    buf_puts(b, "<h2>Last registry cleanup</h2>\n");
    char path[4200];
    snprintf(path, sizeof path, "%s/cleanup.state", state_dir);
    struct cleanup_state cs;
    cleanup_state_load(path, &cs);
    if (cs.last_status < 0 || cs.last_run_ms <= 0) {
        buf_puts(b, "<p class=\"none\" id=\"cleanup\">No cleanup run recorded in ");
        status_html_escape(b, path);
        buf_puts(b, ".</p>\n");
        cleanup_state_free(&cs);
        return;
    }
    uint64_t runs = 0;
    for (size_t i = 0; i < NS_ARRAY_LEN(cs.runs); i++)
        runs += cs.runs[i];
    char v[64];
    buf_puts(b, "<table id=\"cleanup\"><tr><th>Finished</th><th>Status</th><th>Duration</th>"
                "<th>Repositories</th><th>Tags scanned</th><th>Manifests deleted</th>"
                "<th>Blob bytes</th><th>Disk freed</th><th>Last success</th><th>Runs</th></tr>\n"
                "<tr>");
    put_when(b, cs.last_run_ms, now);
    put_cell(b, cs.last_status == CL_OK ? "ok" : "bad",
             cl_status_name((enum cl_status)cs.last_status));
    buf_printf(b,
               "<td class=\"num\">%.1f s</td><td class=\"num\">%llu</td>"
               "<td class=\"num\">%llu</td><td class=\"num\">%llu</td>",
               cs.last_duration_s, (unsigned long long)cs.last_repos,
               (unsigned long long)cs.last_scanned, (unsigned long long)cs.last_manifests_deleted);
    fmt_bytes((double)cs.last_blob_bytes, v, sizeof v);
    put_cell(b, "num", v);
    if (cs.last_du_freed >= 0) {
        fmt_bytes((double)cs.last_du_freed, v, sizeof v);
        put_cell(b, "num", v);
    } else {
        put_cell(b, "none", "not measured");
    }
    put_when(b, cs.last_success_ms, now);
    buf_printf(b, "<td class=\"num\">%llu</td></tr>\n</table>\n", (unsigned long long)runs);
    cleanup_state_free(&cs);
}

static void render_skopeo(struct buf *b, const char *state_dir, int64_t now)
{
    buf_puts(b, "<h2>Skopeo operations</h2>\n");
    struct sk_metrics m;
    if (sk_metrics_load(state_dir, &m) < 0) {
        buf_puts(b, "<p class=\"bad\" id=\"skopeo\">Cannot read ");
        status_html_escape(b, state_dir);
        buf_puts(b, "/skopeo-metrics.state.</p>\n");
        return;
    }
    bool any = false;
    for (int op = 0; op < SKOPEO_OP_COUNT; op++)
        any = any || m.used[op] || m.active[op] > 0;
    if (!any) {
        buf_puts(b, "<p class=\"none\" id=\"skopeo\">No skopeo operation recorded in ");
        status_html_escape(b, state_dir);
        buf_puts(b, ".</p>\n");
        return;
    }
    buf_puts(b, "<table id=\"skopeo\"><tr><th>Operation</th><th>Last success</th>"
                "<th>Last error</th><th>Succeeded</th><th>Failed</th><th>Running now</th></tr>\n");
    for (int op = 0; op < SKOPEO_OP_COUNT; op++) {
        if (!m.used[op] && m.active[op] <= 0)
            continue;
        buf_puts(b, "<tr>");
        put_cell(b, NULL, skopeo_op_name((enum skopeo_op)op));
        put_when(b, (int64_t)m.last_ms[op][0], now);
        put_when(b, (int64_t)m.last_ms[op][1], now);
        buf_printf(b,
                   "<td class=\"num\">%.0f</td><td class=\"num\">%.0f</td>"
                   "<td class=\"num\">%.0f</td></tr>\n",
                   m.ops[op][0], m.ops[op][1], m.active[op]);
    }
    buf_puts(b, "</table>\n");
}

struct status_page *status_page_new(const struct scheduler *s, const struct config *cfg,
                                    const char *config_path, int64_t start_ms, int64_t now_ms)
{
    struct status_page *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    struct buf b;
    buf_init(&b, STATUS_PAGE_MAX);
    render_head(&b, cfg, config_path, start_ms, now_ms);
    render_targets(&b, s->sender, now_ms, &p->delivery);
    render_collectors(&b, s, now_ms);
    const char *sd = cfg->shipper.state_dir;
    if (sd && sd[0]) {
        render_cleanup(&b, sd, now_ms);
        render_skopeo(&b, sd, now_ms);
    } else {
        buf_puts(&b, "<h2>Cleanup and skopeo runs</h2>\n"
                     "<p class=\"none\">No state_dir configured.</p>\n");
    }
    buf_puts(&b, "<p><a href=\"/metrics\">/metrics</a> &middot; "
                 "<a href=\"/healthz\">/healthz</a></p>\n</body></html>\n");
    if (b.len + 64 >= STATUS_PAGE_MAX) { /* buf refused an append: say so */
        b.max = SIZE_MAX;
        buf_puts(&b, "\n<p class=\"bad\">(page cut at its size limit)</p></body></html>\n");
    }
    if (!buf_cstr(&b)) {
        buf_free(&b);
        free(p);
        return NULL;
    }
    p->html = b.data;
    p->len = b.len;
    return p;
}

void status_page_free(struct status_page *p)
{
    if (!p)
        return;
    free(p->html);
    free(p);
}

void status_page_publish(struct httpd *web, const struct scheduler *s, const struct config *cfg,
                         const char *config_path, int64_t start_ms)
{
    struct status_page *p = status_page_new(s, cfg, config_path, start_ms, now_ms());
    if (!p || httpd_publish_status(web, p->html, p->len, &p->delivery) < 0)
        log_error("listen: out of memory rendering the status page; serving the previous one");
    status_page_free(p);
}
