/* util: small building blocks shared by every module.
 *
 * struct buf is a growable byte buffer with a hard maximum (every buffer
 * that grows from outside input has one): appends that would grow it past
 * `max` fail with -1 and leave it intact. All functions return 0 on
 * success and -1 on failure unless noted. */
#ifndef NS_UTIL_H
#define NS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/types.h>

#define NS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct buf {
    char *data; /* NUL-terminated when len > 0 or after buf_cstr() */
    size_t len;
    size_t cap;
    size_t max; /* 0 = SIZE_MAX */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Returns a NUL-terminated view ("" for an empty buffer); NULL on OOM. */
const char *buf_cstr(struct buf *b);

/* Error message holder passed down call chains: the callee writes a
 * human-readable message naming what and where; the caller prints it. */
struct err {
    char msg[512];
};
void err_set(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "30s", "5m", "1h", "250ms", "1d", a bare number = seconds. */
int parse_duration_ms(const char *s, int64_t *out);
/* "512MiB", "1GiB", "64KiB", "1000", "10MB" (decimal), a bare number = bytes. */
int parse_size(const char *s, uint64_t *out);
int parse_bool(const char *s, bool *out);
int parse_int64(const char *s, int64_t *out);
/* Shortest "%g" form that reads back as the same double (0.005, not 0.0050000000000000001). */
void format_double(double v, char *out, size_t n);
/* Formats a duration / size the way the parsers read it back. */
void format_duration(int64_t ms, char *out, size_t n);

/* Reads a whole (small) file; strips trailing whitespace when trim is set.
 * *out is malloc'd and owned by the caller. */
int read_file(const char *path, size_t max, bool trim, char **out, struct err *e);
/* read_file() that also gives the length (*len): the text may hold NUL
 * bytes, which a caller checking the content must see. */
int read_file_n(const char *path, size_t max, bool trim, char **out, size_t *len, struct err *e);

/* Durable file writes (temp, fsync, rename, fsync the directory) for
 * state files, archives and anything else replaced whole: a temp file with a random name in the
 * same directory, created with O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC (a
 * planted symlink or file is never followed, truncated or reused) and
 * given exactly `mode` (0 = 0600; fchmod, so the umask does not matter),
 * written whole, fsync'd, renamed over `path` (a symlink at `path` is
 * replaced, never followed), then the directory is fsync'd. Readers see
 * the old file or the new one, never a part. 0, or -1 with errno kept
 * and e->msg naming the file and the failing step; on failure nothing is
 * left behind and `path` is untouched. */
int durable_write_file(const char *path, const void *data, size_t len, mode_t mode, struct err *e);

/* The same, streamed (a file too big to build in memory first):
 * durable_open creates the temp file, durable_write appends to it,
 * durable_commit makes it `path` and frees the handle (also on failure);
 * durable_abort removes the temp file and frees (NULL is fine). The
 * handle is owned by the caller until commit or abort. */
struct durable_file;
struct durable_file *durable_open(const char *path, mode_t mode, struct err *e);
int durable_write(struct durable_file *f, const void *data, size_t len, struct err *e);
int durable_commit(struct durable_file *f, struct err *e);
void durable_abort(struct durable_file *f);
/* The temp file's name (for messages and tests). */
const char *durable_tmp_path(const struct durable_file *f);

/* Wall clock in milliseconds since the epoch, and a monotonic clock. */
int64_t now_ms(void);
int64_t mono_ms(void);
/* Sleeps until mono_ms() >= deadline or a signal interrupts (returns early). */
void sleep_until_mono(int64_t deadline_ms);

/* CRC32C (Castagnoli), as used by the spool segment format. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
/* The portable table version (crc32c uses SSE4.2 when the CPU has it). */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);

char *str_trim(char *s);
/* Splits a comma-separated list, trimming each item; empty items skipped.
 * *items is a malloc'd array of malloc'd strings; free with strv_free. */
int split_list(const char *s, char ***items, size_t *n);
void strv_free(char **v, size_t n);
bool str_has_prefix(const char *s, const char *prefix);
bool str_has_suffix(const char *s, const char *suffix);

/* Makes room for one more element in a malloc'd array v of *cap elements
 * of elem bytes, n of them used: when n == *cap it reallocs to twice *cap
 * (first when *cap is 0) and updates *cap. Returns the array to use from
 * now on (v itself when there was room), or NULL when memory runs out or
 * the size would overflow; v and *cap are then unchanged and v still
 * owns its elements. */
void *array_grow(void *v, size_t *cap, size_t n, size_t elem, size_t first);

/* ---- url_redact: URLs as they may be logged or printed ----
 * Writes into out (outlen bytes, truncated, always NUL-terminated) a copy
 * of url without its secrets: userinfo (user, password, login options)
 * becomes "REDACTED@", and the value of every query parameter whose name
 * looks like a credential (token, access_token, private_token, password,
 * secret, apikey, api_key, key, sig, signature, auth, ... compared without
 * case; see util.c) becomes "REDACTED". A URL without such parts is copied
 * unchanged. A URL libcurl cannot parse becomes "<unparseable url>" (shown
 * as written when it has neither "@" nor "?", so nothing to hide); NULL
 * becomes "". Returns out (so it can be an argument of a log call).
 * Every message that shows a URL shows url_redact's copy of it. */
#define URL_REDACT_MAX 1024 /* a good size for out */
const char *url_redact(const char *url, char *out, size_t outlen);
/* ---- end url_redact ---- */

#endif
