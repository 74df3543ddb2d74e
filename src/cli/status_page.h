/* status_page: the HTML page served at `GET /` of [shipper] listen, and
 * the delivery figures behind `/healthz?max_delivery_age=SECONDS`.
 *
 * Rendered by the daemon loop once a cycle (in its own thread, from the
 * sender's, the scheduler's and state_dir's state as they are then) and
 * handed to the listener as a finished string (httpd_publish_status), so
 * httpd never sees the sender or the scheduler. The page is one
 * self-contained HTML document: no scripts, no external assets, a meta
 * refresh; every text that comes from outside (receiver answers, Nexus
 * errors, target and collector names, paths) is HTML-escaped.
 *
 * Shown: per target the last success, the current error, the backoff
 * (retry in), spooled batches / bytes and the oldest spooled batch's age;
 * per collector up, last duration, last error and series; the last
 * registry cleanup run (<state_dir>/cleanup.state) and the last skopeo
 * operations (<state_dir>/skopeo-metrics.state); version, configuration
 * file, instance and start time. */
#ifndef NS_STATUS_PAGE_H
#define NS_STATUS_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "httpd.h"
#include "scheduler.h"

/* The page caps its size (many targets, long errors): past it, the rest
 * is cut with a note. */
#define STATUS_PAGE_MAX (4u << 20)

struct status_page {
    char *html; /* NUL-terminated, owned */
    size_t len;
    struct httpd_delivery delivery; /* for /healthz?max_delivery_age */
};

/* Renders the page at wall clock now_ms. config_path is the file the
 * daemon reads (shown as given and, when it resolves, absolute);
 * start_ms is when the daemon started. Returns NULL on allocation
 * failure (nothing else fails: unreadable state files are shown as
 * such). */
struct status_page *status_page_new(const struct scheduler *s, const struct config *cfg,
                                    const char *config_path, int64_t start_ms, int64_t now_ms);
void status_page_free(struct status_page *p);

/* Renders the page now and publishes it (and the delivery figures) to
 * web; logs and keeps the previous page when it cannot be rendered. */
void status_page_publish(struct httpd *web, const struct scheduler *s, const struct config *cfg,
                         const char *config_path, int64_t start_ms);

/* Appends s to b with &, <, >, " and ' escaped and control bytes shown
 * as U+FFFD (for tests). 0, or -1 when b is full. */
int status_html_escape(struct buf *b, const char *s);

#endif
