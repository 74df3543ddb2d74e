/* progress: live progress of long CLI work (spool replay/export/import,
 * cleanup, skopeo copy) on a stream, normally stderr (stdout stays for
 * results: plans, JSON, summaries).
 *
 * Two forms, chosen once by progress_new():
 *  - terminal (isatty(fileno(out)) and TERM is not "dumb"): one line
 *    redrawn in place ("\r", text, "\033[K", "\r"), at most 10 times a
 *    second, cut to the terminal's width; the cursor is left at column 0
 *    so a log line printed meanwhile overwrites it instead of being glued
 *    to it. The first update draws at once.
 *  - anything else (pipe, file, journald): a plain line at most every
 *    NS_PROGRESS_INTERVAL seconds (default 5; 0 = at every
 *    update), the first one only after that interval: a run shorter than
 *    the interval prints nothing, so cron mails stay as they were.
 * Either way progress_done() ends with a final line (elapsed time and
 * average rate) only when a line was shown before.
 * NS_PROGRESS=off shows nothing, =plain forces the plain form. (Not
 * NEXUS_SHIPPER_*: that prefix is reserved for configuration keys.)
 *
 * A line: "WHAT: DONE/TOTAL UNIT (PCT%), RATE/s, ETA 1m05s[, EXTRA]";
 * total 0 = unknown (no percentage, no ETA); unit "bytes" prints human
 * units (KiB, MiB, GiB: 1024-based).
 *
 * Ownership: progress_new() copies what/unit; the stream is borrowed and
 * must outlive the object. progress_done() prints the final line and frees;
 * progress_free() frees silently; both accept NULL, and so does
 * progress_update() (callers need no "if"). Every call takes the object's
 * own mutex: threads may share one. progress_new() returns NULL when
 * progress is off, out is NULL or memory is short: that is not an error. */
#ifndef NS_PROGRESS_H
#define NS_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct progress;

struct progress *progress_new(FILE *out, const char *what, const char *unit, uint64_t total);
/* A total learnt later (0 = unknown). */
void progress_set_total(struct progress *p, uint64_t total);
/* done so far; extra (may be NULL) is appended to the line. */
void progress_update(struct progress *p, uint64_t done, const char *extra);
/* Final line ("WHAT: DONE[/TOTAL] UNIT in 3.2s (RATE/s)[; msg]") if a line
 * was shown, then frees. msg may be NULL. */
void progress_done(struct progress *p, const char *msg);
void progress_free(struct progress *p);

/* ---- formatting (pure; unit-tested) ---- */
/* "512 B", "1.5 KiB", "12.3 MiB", "2.00 GiB" */
void progress_fmt_bytes(double v, char *out, size_t n);
/* ETA/elapsed: "7s", "3m05s", "1h02m", "3d04h"; "-" when s < 0 */
void progress_fmt_duration(double s, char *out, size_t n);
/* The progress line (without control characters) for done of total after
 * elapsed_s seconds. */
void progress_fmt_line(char *out, size_t n, const char *what, const char *unit, uint64_t done,
                       uint64_t total, double elapsed_s, const char *extra);

#endif
