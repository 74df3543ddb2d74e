/* spool_cli: `nexus-shipper spool ls|replay|export|import|purge`.
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
 * spool_dir/.imported so a second import adds nothing. */
#ifndef NS_SPOOL_CLI_H
#define NS_SPOOL_CLI_H

#include "config.h"
#include "spool.h"

#include <signal.h>

/* The usage text (`spool --help`), for cli_args. */
extern const char *const spool_cli_usage;

/* argv[0] == "spool". cfg may be NULL only for --help. `stop` (may be
 * NULL) is set by SIGTERM/SIGINT: replay stops after the batch in flight.
 * Returns an exit code. */
int spool_cli(const struct config *cfg, int argc, char **argv, const volatile sig_atomic_t *stop);

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

#endif
