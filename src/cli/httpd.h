/* httpd: the optional `[shipper] listen` endpoint (libmicrohttpd).
 *
 *   GET /metrics  the last completed cycle's series (collectors and the
 *                 shipper's own) in Prometheus text format 0.0.4
 *   GET /healthz  200 "ok ..." while cycles complete (the last one within
 *                 2 x interval) and the spool directory is writable, else
 *                 503 with the reason on one line.
 *                 ?max_delivery_age=SECONDS also answers 503 when no
 *                 remote-write target (spool-only ones and the Pushgateway,
 *                 which gets no cycles, do not count) has delivered
 *                 for longer than that, measured from the newest delivery
 *                 published (httpd_publish_status) or, before any, from the
 *                 listener's start; naming each target, when it last
 *                 delivered and its current error
 *   GET /         the status page (HTML, rendered by status_page.c and
 *                 handed over by httpd_publish_status)
 *
 * Threads: libmicrohttpd answers in its own thread. The daemon loop calls
 * httpd_publish() after each cycle; it renders the text in the caller's
 * thread and swaps it into a mutex-protected copy, so the HTTP thread
 * never touches the live series buffer. Every function is safe to call
 * while requests are being served. */
#ifndef NS_HTTPD_H
#define NS_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "series.h"
#include "util.h"

struct httpd;

/* Parses `listen` ("host:port", "[v6addr]:port" or ":port" for every
 * interface; port 0 picks a free one, see httpd_address()) and starts
 * serving. Returns NULL with `e` set on a bad address or bind failure.
 * `interval_ms` and `spool_dir` (copied) are the health criteria. */
struct httpd *httpd_new(const char *listen, int64_t interval_ms, const char *spool_dir,
                        struct err *e);
/* Stops the server (waits for requests in flight) and frees; NULL is ok. */
void httpd_free(struct httpd *h);

/* The bound address, "host:port" with the real port (for logs, tests). */
const char *httpd_address(const struct httpd *h);

/* The `listen` string it was created with (to compare on reload). */
const char *httpd_listen(const struct httpd *h);

/* Health criteria after a configuration reload. -1 on OOM (old kept). */
int httpd_configure(struct httpd *h, int64_t interval_ms, const char *spool_dir);

/* End of a cycle: renders the buffer's current cycle for /metrics and, if
 * `completed` (the batch was stored), records the cycle as completed for
 * /healthz. Must be called from the thread that owns `sb`. Returns -1 if
 * the text could not be rendered (the previous text is kept). */
int httpd_publish(struct httpd *h, struct series_buf *sb, bool completed);

/* What /healthz?max_delivery_age checks (filled by status_page.c). */
struct httpd_delivery {
    size_t targets;    /* remote-write targets that deliver (not spool-only) */
    int64_t newest_ms; /* newest successful delivery of any of them (wall clock); 0 = none */
    char detail[768];  /* per target: last delivery and current error, for the reason */
};

/* End of a cycle: the status page for GET / (html is copied) and the
 * delivery figures. The newest delivery time only moves forward (a
 * reload's new sender starts with none). -1 on OOM (previous kept). */
int httpd_publish_status(struct httpd *h, const char *html, size_t len,
                         const struct httpd_delivery *d);

/* `nexus-shipper healthcheck`: GETs /healthz of the configured listen
 * address (or --url URL), prints the answer, returns the exit code: 0
 * healthy, 1 unhealthy or unreachable, 2 usage or configuration error.
 * --max-delivery-age DURATION asks /healthz?max_delivery_age=SECONDS. */
int httpd_healthcheck_main(const char *config_path, int argc, char **argv);

#endif
