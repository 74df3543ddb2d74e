/* httpd: the optional `[shipper] listen` endpoint (libmicrohttpd).
 *
 *   GET /metrics  the last completed cycle's series (collectors and the
 *                 shipper's own) in Prometheus text format 0.0.4
 *   GET /healthz  200 "ok ..." while cycles complete (the last one within
 *                 2 x interval) and the spool directory is writable, else
 *                 503 with the reason on one line
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

/* `nexus-shipper healthcheck`: GETs /healthz of the configured listen
 * address (or --url URL), prints the answer, returns the exit code: 0
 * healthy, 1 unhealthy or unreachable, 2 usage or configuration error. */
int httpd_healthcheck_main(const char *config_path, int argc, char **argv);

#endif
