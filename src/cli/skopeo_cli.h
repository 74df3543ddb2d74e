/* skopeo_cli: `nexus-shipper skopeo copy|inspect|delete|manifest-digest`.
 *
 * Drives the skopeo module (skopeo.h) for the command line: the seed's
 * progress display (--progress) or one JSON object per event (--json),
 * mirroring lists (copy --from-file) with bounded parallelism, and the
 * seed's skopeo_* metrics: each run is recorded in state_dir
 * (skopeo_metrics.h) and shipped to every target under the one-writer
 * rule (ship.h); --metrics-file writes the text format for
 * node_exporter's textfile collector.
 *
 * Exit codes: 0 success, 1 skopeo failed (any job of a list), 2 usage or
 * configuration error. */
#ifndef NS_SKOPEO_CLI_H
#define NS_SKOPEO_CLI_H

/* argv[0] == "skopeo". The configuration file is optional: when
 * `config_path` does not exist, defaults apply and no metrics are pushed. */
int skopeo_cli(const char *config_path, int argc, char **argv);
/* The usage text (`skopeo --help`), for cli_args. */
extern const char *const skopeo_cli_usage;

#endif
