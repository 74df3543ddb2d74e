/* cleanup_cli: the `nexus-shipper cleanup` command - options, the seed's
 * config.json (--legacy-json), the run lock, the counters kept across
 * runs; the engine it drives is cleanup.h (which includes no command).
 *
 * `nexus-shipper cleanup [--dry-run] [--json] [--legacy-json FILE] ...`
 * argv[0] is "cleanup". Logs through `lg` (the caller's
 * logger; its log file is opened here). Returns the process exit code:
 * 0 success, 1 runtime failure (errors, 405, max_deletions, lock held),
 * 2 usage or configuration error. */
#ifndef NS_CLEANUP_CLI_H
#define NS_CLEANUP_CLI_H

#include <signal.h>

struct logger;
/* Its usage text (`cleanup --help`), for cli_args. */
extern const char *const cleanup_cli_usage;
int cleanup_cli(const char *config_path, int argc, char **argv, struct logger *lg,
                const volatile sig_atomic_t *stop);

#endif
