/* spool_cli: `nexus-shipper spool ls|replay|export|import|purge`. The
 * export archive's format, its signature and the import ledger are
 * spool_archive.h's. */
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

#endif
