/* sdnotify: the systemd notification protocol (sd_notify(3)) without
 * libsystemd: one datagram per message to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace).
 *
 * Stateless: every call reads the environment, so nothing here is
 * process-wide mutable state (DESIGN rule 7). Safe from any thread. */
#ifndef NS_SDNOTIFY_H
#define NS_SDNOTIFY_H

#include <stdint.h>

/* Sends `msg` (e.g. "READY=1", "WATCHDOG=1", "STOPPING=1",
 * "STATUS=..."; several may be joined with '\n'). Returns 1 when sent, 0
 * when $NOTIFY_SOCKET is unset or empty (not started by systemd), -1 with
 * errno set when the socket name is invalid or the send failed. */
int sdnotify_send(const char *msg);

/* printf-style sdnotify_send(); messages longer than 1 KiB are truncated. */
int sdnotify_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog period systemd expects pings within, in milliseconds, from
 * $WATCHDOG_USEC (honouring $WATCHDOG_PID when set); 0 when the watchdog
 * is off or the variables are malformed. Ping at half this period. */
int64_t sdnotify_watchdog_ms(void);

#endif
