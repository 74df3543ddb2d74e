/* proc: runs one child process (argv, no shell) under a deadline, with
 * its own process group, and feeds its output to a callback.
 *
 * Used by the skopeo wrapper and the cleanup's GC commands. Depends on
 * libc only (it is linked into the installed libnexusskopeo as well).
 *
 * The child: empty signal mask, SIGPIPE/SIGTERM/SIGINT at their defaults,
 * its own process group, stdin /dev/null, stdout and stderr pipes, and no
 * other file descriptor of the parent (everything above 2 is closed before
 * exec, whatever its close-on-exec flag: libcurl's sockets included).
 *
 * Stopping: when the deadline passes or *cancel becomes non-zero, the
 * whole group gets SIGTERM, then SIGKILL `grace_ms` later; the cancel flag
 * is checked at least every 50 ms. Once the child has exited, leftovers of
 * its group are killed and a grandchild that keeps the pipes open holds the
 * caller for at most 500 ms. */
#ifndef NS_PROC_H
#define NS_PROC_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Called with each chunk read from the child's stdout (stream 0) or
 * stderr (stream 1); `p` is only valid during the call. */
typedef void (*proc_output_fn)(void *ctx, int stream, const char *p, size_t n);

struct proc_spec {
    int64_t deadline;                    /* proc_mono_ms() value, 0 = none */
    int64_t grace_ms;                    /* SIGTERM -> SIGKILL; <= 0: 5000 */
    const volatile sig_atomic_t *cancel; /* optional: non-zero stops the child */
    proc_output_fn on_output;            /* optional */
    void *ctx;
};

struct proc_result {
    int exit_status; /* exit code, -1 when killed by a signal or not run */
    int term_signal; /* the signal that ended it, 0 if it exited */
    bool started;    /* exec succeeded */
    bool timed_out;  /* the deadline passed: it was signalled */
    bool cancelled;  /* *cancel was set: it was signalled */
    int exec_errno;  /* why it could not be started (proc_run returned -1) */
};

/* Runs argv[0] (PATH search) to completion. Returns 0 when it ran (the
 * status is in *r, whatever it is), -1 when it could not be started
 * (r->exec_errno). */
int proc_run(char *const argv[], const struct proc_spec *s, struct proc_result *r);

/* CLOCK_MONOTONIC in milliseconds (the clock of proc_spec.deadline). */
int64_t proc_mono_ms(void);

#endif
