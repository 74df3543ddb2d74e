/* spool_archive: the `spool export` archive format (what `spool export`
 * writes and `spool import` reads; the command itself is spool_cli.c).
 *
 * Export archive ("NXSHEXP1"): a first line with the magic, a second line
 * holding a one-line JSON manifest (segments with target, name, size,
 * CRC32C, samples, time range), the segment files concatenated in
 * manifest order, a trailer line "END <crc32c of all before>", and with
 * [shipper] archive_key_file a signature line (see below). The
 * format is the same whether the spool held .seg files or logs (a record
 * is exported as a standalone segment named "<log stem>+<offset>.seg").
 * Import verifies everything before writing anything, appends the records
 * to a log of its own, and records imported segment names in
 * spool_dir/.imported (the ledger below) so a second import adds nothing.
 *
 * Memory: the caller owns every struct here (on its stack) and frees it
 * with the matching _free/_close; nothing is kept between calls. Errors:
 * -1 with e->msg (or a->e.msg for the writer) saying what is wrong and
 * where; the ledger's append sets errno. */
#ifndef NS_SPOOL_ARCHIVE_H
#define NS_SPOOL_ARCHIVE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "spool.h"
#include "util.h"

/* Verifies an export archive (data[0..len)) whole: magic, trailer CRC,
 * manifest, every segment's size, CRC32C and encoding, names and targets;
 * then calls cb for each segment in order (cb < 0 stops). Returns the
 * number of segments, or -1 with e->msg saying what is wrong. */
typedef int (*spool_archive_cb)(void *arg, const char *name, const struct seg_meta *m,
                                const void *payload, size_t len);
int spool_archive_parse(const char *data, size_t len, spool_archive_cb cb, void *arg,
                        struct err *e);

/* Signed archives ([shipper] archive_key_file): the archive above followed
 * by one line "HMAC-SHA256 <64 hex>\n", the HMAC-SHA256 with the key of
 * every byte before that line. spool_archive_check_sig looks at
 * data[0..len): *inner is set to the length of the archive proper (to be
 * given to spool_archive_parse). Returns 0 unsigned and no key given
 * (accepted: old archives), 1 signed and the signature matches `key`, 2
 * signed but no key given (not checked), -1 refused (a key is given and
 * the signature is missing or wrong) with e->msg. spool_archive_sign
 * writes the HMAC in hex; 0 or -1. */
int spool_archive_check_sig(const char *data, size_t len, const char *key, size_t *inner,
                            struct err *e);
int spool_archive_sign(const char *key, const void *data, size_t len, char hex[65]);

/* Reads what the file holds now into `out` (NUL-terminated; out->max caps
 * it); the length is what was read (a file still being copied is refused
 * by the trailer check, never over-read). 0 or -1 with e->msg. */
int spool_archive_read(const char *file, struct buf *out, struct err *e);

/* Writing an archive: streamed into a durable temp file beside the
 * destination (the caller sets f = durable_open(to, ...): random name,
 * O_EXCL|O_NOFOLLOW, nothing planted is followed), CRC32C and HMAC kept as
 * it goes. Start with {.sign = key given}, then
 * spool_archive_out_hmac_init (when signing), _head (magic and manifest
 * line), _write per segment, _tail (trailer, signature line), then
 * durable_commit(f) (taking f out of the struct first); _free always (it
 * aborts an uncommitted file). Each returns 0 or -1 with a->e.msg. */
struct spool_hmac {
    struct evp_md_ctx_st *in, *out; /* OpenSSL's EVP_MD_CTX */
};
struct spool_archive_out {
    struct durable_file *f;
    uint32_t crc;
    struct spool_hmac h;
    bool sign;
    struct err e;
};
int spool_archive_out_hmac_init(struct spool_archive_out *a, const char *key);
int spool_archive_out_head(struct spool_archive_out *a, const char *manifest);
int spool_archive_out_write(struct spool_archive_out *a, const void *p, size_t n);
int spool_archive_out_tail(struct spool_archive_out *a);
void spool_archive_out_free(struct spool_archive_out *a);

/* The import ledger, spool_dir/.imported: one line "<target>/<segment
 * name>" per imported segment, appended (and fsync'd) once the segments
 * are durable. Loaded as a sorted array of 128-bit digests (16 bytes per
 * entry, however long the file): no size limit, a read error is an error.
 * flock(2) on it serialises imports into one spool.
 * spool_ledger_open opens, locks (waiting for another import, saying so on
 * stderr) and loads it: 0 or -1 with e->msg (l is then closed).
 * spool_ledger_has: whether "<target>/<name>" is in it. spool_ledger_append
 * writes `len` bytes of lines and fsyncs: 0, or -1 with errno.
 * spool_ledger_close releases the lock and frees (a closed ledger is fine). */
struct spool_digest;
struct spool_ledger {
    int fd;
    char path[PATH_MAX];
    struct spool_digest *d; /* sorted */
    size_t n, cap;
};
int spool_ledger_open(struct spool_ledger *l, const char *spool, struct err *e);
bool spool_ledger_has(const struct spool_ledger *l, const char *key);
int spool_ledger_append(struct spool_ledger *l, const char *data, size_t len);
void spool_ledger_close(struct spool_ledger *l);

#endif
