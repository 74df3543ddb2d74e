/* spool_cli: `nexus-shipper spool ls|replay|export|import|purge`.
 *
 * Export archive ("NXSHEXP1"): a first line with the magic, a second line
 * holding a one-line JSON manifest (segments with target, name, size,
 * CRC32C, samples, time range), the segment files concatenated in
 * manifest order, and a trailer line "END <crc32c of all before>". Import
 * verifies everything before writing anything, and records imported
 * segment names in spool_dir/.imported so a second import adds nothing. */
#ifndef NS_SPOOL_CLI_H
#define NS_SPOOL_CLI_H

#include "config.h"

#include <signal.h>

/* argv[0] == "spool". cfg may be NULL only for --help. `stop` (may be
 * NULL) is set by SIGTERM/SIGINT: replay stops after the batch in flight.
 * Returns an exit code. */
int spool_cli(const struct config *cfg, int argc, char **argv, const volatile sig_atomic_t *stop);

#endif
