/* exitcodes: the process exit codes of every subcommand, defined once.
 *
 *   EXIT_OK     0  success
 *   EXIT_FAIL   1  runtime failure (nothing delivered or spooled, skopeo
 *                  failed, cleanup errors, unhealthy daemon, ...)
 *   EXIT_USAGE  2  usage or configuration error: nothing was started
 *
 * Documented in `nexus-shipper --help`, nexus-shipper(1) and README.md;
 * scripts and systemd units rely on them. EXIT_CONFIG is the same code,
 * named for configuration errors. */
#ifndef NS_EXITCODES_H
#define NS_EXITCODES_H

#include <stdlib.h> /* EXIT_SUCCESS / EXIT_FAILURE agree with 0 / 1 */

#define EXIT_OK     0
#define EXIT_FAIL   1
#define EXIT_USAGE  2
#define EXIT_CONFIG EXIT_USAGE

#endif
