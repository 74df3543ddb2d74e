/* The configuration table: every section and key of nexus-shipper.conf
 * (contract: config_table.h). Parsing, validation, environment overrides,
 * the template and the man page are all driven by these rows. */
#include "config_table.h"

#include <stddef.h>

#define SEC_ONE(n, field, type_, help_)                                                            \
    {                                                                                              \
        n, SEC_OPTIONAL, sizeof(type_), offsetof(struct config, field), 0, offsetof(type_, line),  \
            help_                                                                                  \
    }

const struct section_desc cfg_sections[] = {
    {"shipper", SEC_ALWAYS, sizeof(struct cfg_shipper), offsetof(struct config, shipper), 0, -1,
     "The daemon itself: cadence, identity, spool, logging, buffer limits."},
    {"remote_write", SEC_NAMED, sizeof(struct cfg_remote_write), offsetof(struct config, rw),
     offsetof(struct config, n_rw), offsetof(struct cfg_remote_write, line),
     "A Prometheus remote-write 1.0 receiver (Prometheus, VictoriaMetrics, Mimir, vmagent).\n"
     "Repeat as [remote_write NAME] for several targets; each is delivered independently."},
    SEC_ONE("pushgateway", pushgateway, struct cfg_pushgateway,
            "A Prometheus Pushgateway for batch runs (cleanup, skopeo) and `once --pushgateway`."),
    SEC_ONE("nexus", nexus, struct cfg_nexus,
            "The Sonatype Nexus Repository to monitor over its REST API."),
    SEC_ONE("certificates", certificates, struct cfg_certificates,
            "TLS certificates to watch for expiry (Nexus and registry endpoints)."),
    SEC_ONE("gitlab", gitlab, struct cfg_gitlab,
            "GitLab, to tell image tags of live branches from those of deleted ones."),
    SEC_ONE("database", database, struct cfg_database,
            "The Nexus PostgreSQL database, read-only: sizes and docker tags at scale."),
    SEC_ONE("cleanup", cleanup, struct cfg_cleanup,
            "Docker registry cleanup rules (`nexus-shipper cleanup`, and the database's\n"
            "reclaimable-space estimate)."),
    SEC_ONE("skopeo", skopeo, struct cfg_skopeo,
            "The skopeo wrapper (`nexus-shipper skopeo ...`)."),
    SEC_ONE("textfile", textfile, struct cfg_textfile,
            "Local batch jobs: every *.prom file of a directory is shipped each cycle\n"
            "(node_exporter's textfile collector convention)."),
};

#define SH(f) offsetof(struct cfg_shipper, f)
#define RW(f) offsetof(struct cfg_remote_write, f)
#define PG(f) offsetof(struct cfg_pushgateway, f)
#define NX(f) offsetof(struct cfg_nexus, f)
#define CE(f) offsetof(struct cfg_certificates, f)
#define GL(f) offsetof(struct cfg_gitlab, f)
#define DB(f) offsetof(struct cfg_database, f)
#define CL(f) offsetof(struct cfg_cleanup, f)
#define SK(f) offsetof(struct cfg_skopeo, f)
#define TF(f) offsetof(struct cfg_textfile, f)

const struct key_desc cfg_keys[] = {
    /* [shipper] */
    {"shipper", "interval", T_DURATION, "30s", SH(interval_ms), 0, 0, NULL, NULL,
     "How often collectors run and samples are shipped."},
    {"shipper", "instance", T_STRING, NULL, SH(instance), 0, 0, "nexus-01", NULL,
     "Value of the `instance` label on every series (default: the host name)."},
    {"shipper", "external_labels", T_LABELS, "", SH(external_labels), 0, 0, "env=prod,dc=eu1", NULL,
     "Labels added to every series (k=v,k=v); a series' own label of the same name wins.\n"
     "Names starting with _ are reserved, except __replica__ (Mimir's HA tracker drops it\n"
     "on ingestion; remote-write only: a Pushgateway refuses it)."},
    {"shipper", "spool_dir", T_STRING, "/var/lib/nexus-shipper/spool", SH(spool_dir), 0, 0, NULL,
     NULL, "Directory of the disk spool that keeps batches not yet delivered."},
    {"shipper", "spool_max_size", T_SIZE, "1GiB", SH(spool_max_size), 0, 0, NULL, NULL,
     "Past this size the oldest spooled batches are dropped (and counted). At least 1KiB;\n"
     "a cycle of a real instance takes tens of KiB, so keep it in MiB or GiB."},
    {"shipper", "spool_max_age", T_DURATION, "7d", SH(spool_max_age_ms), 0, 0, NULL, NULL,
     "Spooled batches older than this are dropped (and counted)."},
    {"shipper", "spool_only", T_BOOL, "false", SH(spool_only), 0, 0, NULL, NULL,
     "Air-gapped sites: write every batch to the spool, send nothing."},
    {"shipper", "replay_rate", T_INT, "50", SH(replay_rate), 0, 0, NULL, NULL,
     "Batches per second replayed from the spool after an outage (0 = unlimited)."},
    {"shipper", "shutdown_timeout", T_DURATION, "10s", SH(shutdown_timeout_ms), 0, 0, NULL, NULL,
     "On SIGTERM, time allowed to deliver what is buffered before spooling it and exiting."},
    {"shipper", "outage_log_interval", T_DURATION, "1m", SH(outage_log_interval_ms), 0, 0, NULL,
     NULL,
     "While a target fails, a line this often says for how long and what waits in the\n"
     "spool (batches, bytes, age of the oldest); when it has caught up, one line says\n"
     "what the replay delivered. 0 turns the periodic line off."},
    {"shipper", "state_dir", T_STRING, "/var/lib/nexus-shipper", SH(state_dir), 0, 0, NULL, NULL,
     "Directory for lock files and small state."},
    {"shipper", "log_file", T_STRING, "", SH(log_file), 0, 0, "/var/log/nexus-shipper.log", NULL,
     "Also write log lines to this file (reopened on SIGUSR1)."},
    {"shipper", "log_level", T_LEVEL, "info", SH(log_level), 0, 0, NULL, NULL,
     "debug, info, warning or error. DEBUG=true in the environment forces debug."},
    {"shipper", "log_format", T_CHOICE, "text", SH(log_format), 0, 0, NULL, "text|json",
     "text: `TIME [LEVEL] message key=value ...` (TIME: RFC 3339 UTC, ms); json: one object "
     "per line."},
    {"shipper", "collector_timeout", T_DURATION, "20s", SH(collector_timeout_ms), 0, 0, NULL, NULL,
     "Deadline of one collector in one cycle; past it the collector is marked down."},
    {"shipper", "buffer_max_size", T_SIZE, "64MiB", SH(buffer_max_size), 0, 0, NULL, NULL,
     "Hard memory cap of the series buffer; new series past it are refused and counted\n"
     "(at least 1KiB)."},
    {"shipper", "drop_metrics", T_REGEX, "", SH(drop_metrics), 0, 0, "^nexus_repository_probe_.*$",
     NULL, "Series whose metric name matches this regex are not shipped."},
    {"shipper", "collector_intervals", T_LIST, "", SH(collector_intervals), 0, 0,
     "nexus_tasks=5m,nexus_certificates=1h", NULL,
     "Collectors that run less often than `interval` (collector=duration); between runs\n"
     "their last values are shipped again, so nothing goes stale."},
    {"shipper", "collector_timeouts", T_LIST, "", SH(collector_timeouts), 0, 0,
     "nexus_components=2m,nexus_certificates=30s", NULL,
     "Per-collector deadlines (collector=duration) instead of collector_timeout."},
    {"shipper", "collector_max_series", T_INT, "50000", SH(collector_max_series), 0, 0, NULL, NULL,
     "Series limit of one collector in one cycle; past it the collector is marked down."},
    {"shipper", "collector_series_limits", T_LIST, "", SH(collector_series_limits), 0, 0,
     "nexus_components=200000", NULL, "Per-collector series limits (collector=N)."},
    {"shipper", "listen", T_STRING, "", SH(listen), 0, 0, "127.0.0.1:9899", NULL,
     "Serve /metrics (last cycle + self-metrics) and /healthz on this host:port.\n"
     "Keep it on loopback: \":port\" serves every network, without authentication."},
    {"shipper", "archive_key_file", T_FILE, "", SH(archive_key_file), SH(archive_key), 0,
     "/etc/nexus-shipper/archive.key", NULL,
     "Shared secret (at least 16 bytes; e.g. `openssl rand -hex 32`) that signs spool\n"
     "archives: `spool export` appends an HMAC-SHA256 of the archive, and `spool import`\n"
     "refuses an archive whose signature is missing or does not match. Air-gapped sites:\n"
     "generate the key once, copy it to both sites on a separate, trusted medium (never\n"
     "alongside the archives), mode 0600, owned by the shipper's user; rotate it by\n"
     "replacing the file on both sides at once. Unset: archives are neither signed nor\n"
     "checked (old unsigned archives are read as before)."},
    {"shipper", "keep_metrics", T_REGEX, "", SH(keep_metrics), 0, 0, "^nexus_", NULL,
     "If set, only series whose metric name matches are shipped (self-metrics always are)."},

    /* [remote_write] */
    {"remote_write", "url", T_URL, NULL, RW(url), 0, REQUIRED, "http://127.0.0.1:8428/api/v1/write",
     NULL,
     "Remote-write endpoint (Prometheus: /api/v1/write with --web.enable-remote-write-receiver)."},
    {"remote_write", "timeout", T_DURATION, "30s", RW(timeout_ms), 0, 0, NULL, NULL,
     "Total time allowed for one send."},
    {"remote_write", "basic_auth_user", T_STRING, "", RW(basic_auth_user), 0, 0, NULL, NULL,
     "HTTP basic auth user."},
    {"remote_write", "basic_auth_password_file", T_FILE, "", RW(basic_auth_password_file),
     RW(basic_auth_password), 0, "/etc/nexus-shipper/rw-password", NULL,
     "File holding the basic auth password."},
    {"remote_write", "bearer_token_file", T_FILE, "", RW(bearer_token_file), RW(bearer_token), 0,
     "/etc/nexus-shipper/rw-token", NULL, "File holding a bearer token (Authorization: Bearer)."},
    {"remote_write", "tenant", T_STRING, "", RW(tenant), 0, 0, "team-a", NULL,
     "Sent as X-Scope-OrgID (Mimir, Cortex)."},
    {"remote_write", "ca_file", T_PATH, "", RW(ca_file), 0, 0, "/etc/nexus-shipper/ca.pem", NULL,
     "CA bundle to verify the receiver's certificate."},
    {"remote_write", "cert_file", T_PATH, "", RW(cert_file), 0, 0, NULL, NULL,
     "Client certificate (PEM) for mutual TLS."},
    {"remote_write", "key_file", T_PATH, "", RW(key_file), 0, 0, NULL, NULL,
     "Client key (PEM) for mutual TLS."},
    {"remote_write", "insecure_skip_verify", T_BOOL, "false", RW(insecure_skip_verify), 0, 0, NULL,
     NULL, "Do not verify the receiver's TLS certificate (logged at start-up)."},
    {"remote_write", "headers", T_LIST, "", RW(headers), 0, 0, "X-Team: nexus", NULL,
     "Extra HTTP headers, comma-separated `Name: value` items (see `header` for a value\n"
     "with a comma)."},
    {"remote_write", "header", T_HEADER, NULL, RW(header_lines), 0, REPEAT,
     "X-Scope-Tags: a,b", NULL,
     "One extra HTTP header `Name: value`; repeat the line for several. The value is\n"
     "taken whole, commas included. Adds to `headers`."},
    {"remote_write", "max_samples_per_send", T_INT, "10000", RW(max_samples_per_send), 0, 0, NULL,
     NULL,
     "Largest number of samples in one request (10000: vmagent's block size; fewer,\n"
     "larger requests cost the sender and the receiver less CPU)."},
    {"remote_write", "min_backoff", T_DURATION, "500ms", RW(min_backoff_ms), 0, 0, NULL, NULL,
     "First retry delay; doubles per failure with full jitter."},
    {"remote_write", "max_backoff", T_DURATION, "5s", RW(max_backoff_ms), 0, 0, NULL, NULL,
     "Cap of the retry delay (Retry-After from the receiver is honoured up to 10x this)."},
    {"remote_write", "keep_metrics", T_REGEX, "", RW(keep_metrics), 0, 0, "^nexus_", NULL,
     "If set, this target only gets series whose family name matches (extended regex,\n"
     "unanchored, like [shipper] keep_metrics; the self-metrics always)."},
    {"remote_write", "drop_metrics", T_REGEX, "", RW(drop_metrics), 0, 0, "^nexus_component", NULL,
     "This target does not get series whose family name matches (self-metrics always)."},
    {"remote_write", "keep_series", T_SELECTOR, "", RW(keep_series), 0, 0,
     "{repository=~\"docker-.*\"}, nexus_up", NULL,
     "If set, this target only gets series matching one of these PromQL selectors:\n"
     "{label=\"v\", label!=\"v\", label=~\"regex\", label!~\"regex\"}, matchers ANDed,\n"
     "selectors separated by commas ORed, metric{...} for __name__. Regexes are POSIX\n"
     "extended, anchored at both ends as in PromQL; a missing label matches \"\"."},
    {"remote_write", "drop_series", T_SELECTOR, "", RW(drop_series), 0, 0,
     "{repository=~\"tmp-.*\"}", NULL,
     "This target does not get series matching one of these selectors (as keep_series)."},
    {"remote_write", "drop_labels", T_LABELNAMES, "", RW(drop_labels), 0, 0, "instance,blobstore",
     NULL,
     "Labels removed from every series this target gets (after the filters above).\n"
     "Series that become identical are not merged: the first is sent, the others are\n"
     "dropped and logged as a warning."},

    /* [pushgateway] */
    {"pushgateway", "url", T_URL, NULL, PG(url), 0, REQUIRED, "http://127.0.0.1:9091", NULL,
     "Pushgateway base URL (without /metrics)."},
    {"pushgateway", "job", T_STRING, "nexus-shipper", PG(job), 0, 0, NULL, NULL,
     "The `job` grouping key."},
    {"pushgateway", "timeout", T_DURATION, "30s", PG(timeout_ms), 0, 0, NULL, NULL,
     "Total time allowed for one push."},
    {"pushgateway", "basic_auth_user", T_STRING, "", PG(basic_auth_user), 0, 0, NULL, NULL,
     "HTTP basic auth user."},
    {"pushgateway", "basic_auth_password_file", T_FILE, "", PG(basic_auth_password_file),
     PG(basic_auth_password), 0, NULL, NULL, "File holding the basic auth password."},
    {"pushgateway", "ca_file", T_PATH, "", PG(ca_file), 0, 0, NULL, NULL, "CA bundle."},
    {"pushgateway", "insecure_skip_verify", T_BOOL, "false", PG(insecure_skip_verify), 0, 0, NULL,
     NULL, "Do not verify the Pushgateway's TLS certificate."},

    /* [nexus] */
    {"nexus", "url", T_URL, NULL, NX(url), 0, REQUIRED, "http://127.0.0.1:8081", NULL,
     "Nexus base URL (the REST API is under /service/rest)."},
    {"nexus", "username", T_STRING, "", NX(username), 0, 0, "metrics", NULL,
     "Read-only user (nx-metrics-all and browse privileges)."},
    {"nexus", "password_file", T_FILE, "", NX(password_file), NX(password), 0,
     "/etc/nexus-shipper/nexus-password", NULL, "File holding that user's password."},
    {"nexus", "timeout", T_DURATION, "10s", NX(timeout_ms), 0, 0, NULL, NULL,
     "Total time allowed for one REST request."},
    {"nexus", "ca_file", T_PATH, "", NX(ca_file), 0, 0, NULL, NULL, "CA bundle for https Nexus."},
    {"nexus", "insecure_skip_verify", T_BOOL, "false", NX(insecure_skip_verify), 0, 0, NULL, NULL,
     "Do not verify Nexus's TLS certificate."},
    {"nexus", "expected_repositories", T_LIST, "", NX(expected_repositories), 0, 0,
     "docker-hosted,maven-releases", NULL,
     "Repositories that must exist: nexus_repository_present{repository} turns 0 when one is "
     "gone."},
    {"nexus", "probe_repositories", T_BOOL, "true", NX(probe_repositories), 0, 0, NULL, NULL,
     "Probe each repository URL (nexus_repository_up, probe duration and status code)."},
    {"nexus", "probe_docker_ports", T_BOOL, "true", NX(probe_docker_ports), 0, 0, NULL, NULL,
     "Probe GET /v2/ on every docker connector port (nexus_docker_port_up)."},
    {"nexus", "forward_metrics", T_BOOL, "false", NX(forward_metrics), 0, 0, NULL, NULL,
     "Forward Nexus's own /service/metrics/prometheus (JVM, Jetty, requests) through the\n"
     "pipeline, for sites where nothing can scrape Nexus."},
    {"nexus", "components_max_pages", T_INT, "200", NX(components_max_pages), 0, 0, NULL, NULL,
     "REST fallback for sizes (no [database]): at most this many /v1/components pages per\n"
     "repository; a longer listing is reported as truncated, not summed partially."},
    {"nexus", "docker_host", T_STRING, "", NX(docker_host), 0, 0, "nexus.example.com", NULL,
     "Host name of the docker connector ports (default: the host of url)."},

    /* [certificates] */
    {"certificates", "endpoints", T_LIST, NULL, CE(endpoints), 0, REQUIRED,
     "nexus.example.com:443,registry.example.com:5000", NULL,
     "host:port endpoints whose certificates are checked every cycle."},
    {"certificates", "source", T_CHOICE, "tls", CE(source), 0, 0, NULL, "tls|nexus",
     "tls: connect and read the certificate; nexus: ask Nexus (/v1/security/ssl)."},
    {"certificates", "timeout", T_DURATION, "10s", CE(timeout_ms), 0, 0, NULL, NULL,
     "Time allowed for one endpoint."},
    {"certificates", "warn_days", T_INT, "30", CE(warn_days), 0, 0, NULL, NULL,
     "Certificates expiring within this many days are logged as a warning."},

    /* [gitlab] */
    {"gitlab", "url", T_URL, NULL, GL(url), 0, REQUIRED, "https://gitlab.example.com", NULL,
     "GitLab base URL (the API is under /api/v4)."},
    {"gitlab", "token_file", T_FILE, "", GL(token_file), GL(token), 0,
     "/etc/nexus-shipper/gitlab-token", NULL, "File holding a read_api token (PRIVATE-TOKEN)."},
    {"gitlab", "projects", T_LIST, "", GL(projects), 0, 0, "group/app,group/lib", NULL,
     "Projects (paths or ids) to read; empty = every project the token can see."},
    {"gitlab", "timeout", T_DURATION, "10s", GL(timeout_ms), 0, 0, NULL, NULL,
     "Total time allowed for one request."},
    {"gitlab", "ca_file", T_PATH, "", GL(ca_file), 0, 0, NULL, NULL, "CA bundle for GitLab."},
    {"gitlab", "image_prefix", T_STRING, "", GL(image_prefix), 0, 0, "docker-hosted/", NULL,
     "Prefix stripped from image names before matching them to project paths."},

    /* [database] */
    {"database", "conninfo", T_STRING, NULL, DB(conninfo), 0, REQUIRED,
     "host=127.0.0.1 port=5432 dbname=nexus user=nexus_ro sslmode=prefer", NULL,
     "libpq connection string or URI (or .pgpass); two read-only sessions are held."},
    {"database", "password_file", T_FILE, "", DB(password_file), DB(password), 0,
     "/etc/nexus-shipper/db-password", NULL, "File holding the database password."},
    {"database", "statement_timeout", T_DURATION, "30s", DB(statement_timeout_ms), 0, 0, NULL, NULL,
     "statement_timeout of every session (queries are read-only and bounded)."},
    {"database", "connect_timeout", T_DURATION, "10s", DB(connect_timeout_ms), 0, 0, NULL, NULL,
     "Time allowed to connect."},
    {"database", "top_images", T_INT, "20", DB(top_images), 0, 0, NULL, NULL,
     "Docker images reported one by one per repository; the rest are summed as image=\"_other\"."},
    {"database", "stale_days", T_INT, "90", DB(stale_days), 0, 0, NULL, NULL,
     "Docker tags not downloaded for this many days count as stale."},

    /* [cleanup] */
    {"cleanup", "registry_url", T_URL, "", CL(registry_url), 0, 0, "http://127.0.0.1:5000", NULL,
     "Docker registry to clean (the v2 API root)."},
    {"cleanup", "username", T_STRING, "", CL(username), 0, 0, NULL, NULL, "Registry user."},
    {"cleanup", "password_file", T_FILE, "", CL(password_file), CL(password), 0, NULL, NULL,
     "File holding the registry password."},
    {"cleanup", "days_to_keep", T_INT, "30", CL(days_to_keep), 0, 0, NULL, NULL,
     "Tags younger than this many days are kept."},
    {"cleanup", "protected_tags", T_LIST, "latest", CL(protected_tags), 0, 0, "latest,stable", NULL,
     "Tags kept whatever their age (exact names)."},
    {"cleanup", "protected_patterns", T_LIST, "", CL(protected_patterns), 0, 0, "develop,release",
     NULL, "Tags containing one of these substrings are kept (`develop` keeps `my-develop-1`)."},
    {"cleanup", "protected_regex", T_REGEX, "", CL(protected_regex), 0, 0, "^v[0-9]+\\.", NULL,
     "Tags matching this extended regular expression are kept."},
    {"cleanup", "keep_last", T_INT, "0", CL(keep_last), 0, 0, NULL, NULL,
     "The newest N tags of every repository are kept."},
    {"cleanup", "keep_unknown_dates", T_BOOL, "true", CL(keep_unknown_dates), 0, 0, NULL, NULL,
     "Keep tags whose creation date is unknown or the epoch."},

    {"cleanup", "container", T_STRING, "registry", CL(container), 0, 0, NULL, NULL,
     "{container} in the gc commands (the registry's container name)."},
    {"cleanup", "registry_config", T_STRING, "/etc/docker/registry/config.yml", CL(registry_config),
     0, 0, NULL, NULL,
     "{config} in the gc commands (the registry's config as gc_command sees it)."},
    {"cleanup", "gc_command", T_STRING, "", CL(gc_command), 0, 0,
     "docker exec {container} registry garbage-collect {config}", NULL,
     "Run after deleting (an argv, no shell; {container} {config} {storage} substituted).\n"
     "Empty: no garbage collection (Nexus runs its own tasks)."},
    {"cleanup", "gc_timeout", T_DURATION, "2h", CL(gc_timeout_ms), 0, 0, NULL, NULL,
     "Longest run of each gc command: then its process group gets SIGTERM, and SIGKILL\n"
     "a second later (0 = no limit). A stop signal ends it the same way at once."},
    {"cleanup", "pre_gc_command", T_STRING, "", CL(pre_gc_command), 0, 0, NULL, NULL,
     "Run before the garbage collection (e.g. make the registry read-only)."},
    {"cleanup", "post_gc_command", T_STRING, "", CL(post_gc_command), 0, 0, NULL, NULL,
     "Run after the garbage collection (e.g. restart the registry)."},
    {"cleanup", "storage_path", T_STRING, "", CL(storage_path), 0, 0, "/srv/registry", NULL,
     "The registry's storage on this host: its size is measured before and after GC."},
    {"cleanup", "log_file", T_STRING, "", CL(log_file), 0, 0, "/var/log/nexus-shipper/cleanup.log",
     NULL, "Also write the cleanup's log lines to this file."},
    {"cleanup", "include_repositories", T_REGEX, "", CL(include_repositories), 0, 0, "^team-a/",
     NULL, "Only repositories matching this regular expression are cleaned."},
    {"cleanup", "exclude_repositories", T_REGEX, "", CL(exclude_repositories), 0, 0, "^base/", NULL,
     "Repositories matching this regular expression are never cleaned."},
    {"cleanup", "max_deletions", T_INT, "0", CL(max_deletions), 0, 0, NULL, NULL,
     "Abort before deleting anything when the plan has more deletions (0 = no limit)."},
    {"cleanup", "concurrency", T_INT, "4", CL(concurrency), 0, 0, NULL, NULL,
     "Parallel registry requests (1-64)."},
    {"cleanup", "timeout", T_DURATION, "30s", CL(timeout_ms), 0, 0, NULL, NULL,
     "Time allowed for one registry request."},
    {"cleanup", "ca_file", T_PATH, "", CL(ca_file), 0, 0, NULL, NULL,
     "CA bundle for an https registry."},
    {"cleanup", "insecure_skip_verify", T_BOOL, "false", CL(insecure_skip_verify), 0, 0, NULL, NULL,
     "Do not verify the registry's TLS certificate."},
    {"cleanup", "token_realm_hosts", T_LIST, "", CL(token_realm_hosts), 0, 0, "auth.example.com",
     NULL,
     "Hosts (host or host:port) that may receive the registry credentials as a bearer token\n"
     "realm over plain http. An https realm or one on the registry's own scheme, host and port\n"
     "always gets them; any other realm is asked for a token without them (and a warning is\n"
     "logged)."},

    /* [skopeo] */
    {"skopeo", "binary", T_STRING, "skopeo", SK(binary), 0, 0, NULL, NULL,
     "The skopeo executable (looked up in PATH)."},
    {"skopeo", "timeout", T_DURATION, "30m", SK(timeout_ms), 0, 0, NULL, NULL,
     "One skopeo run is stopped (SIGTERM, then SIGKILL) after this long."},
    {"skopeo", "tls_verify", T_BOOL, "true", SK(tls_verify), 0, 0, NULL, NULL,
     "Verify registries' TLS certificates."},
    {"skopeo", "authfile", T_PATH, "", SK(authfile), 0, 0, "/etc/nexus-shipper/auth.json", NULL,
     "Registry credentials file (containers-auth.json); never on the command line."},
    {"skopeo", "enable_metrics", T_BOOL, "true", SK(enable_metrics), 0, 0, NULL, NULL,
     "Record the skopeo_* metrics of each run in state_dir and ship them to every target\n"
     "(the Pushgateway as job \"skopeo\", and remote-write); `skopeo --no-metrics` turns\n"
     "them off for one run."},

    /* [textfile] */
    {"textfile", "directory", T_STRING, NULL, TF(directory), 0, REQUIRED,
     "/var/lib/nexus-shipper/textfile", NULL,
     "Every *.prom file here (Prometheus text format 0.0.4, no timestamps; write it to a\n"
     "temporary name and rename it into place) is shipped each cycle with the instance and\n"
     "external labels. A file that does not parse is skipped whole and named in the log\n"
     "(nexus_shipper_textfile_scrape_error = 1); the others still ship."},
};

const size_t cfg_n_sections = NS_ARRAY_LEN(cfg_sections);
const size_t cfg_n_keys = NS_ARRAY_LEN(cfg_keys);
_Static_assert(NS_ARRAY_LEN(cfg_keys) <= CFG_KEYS_MAX, "raise CFG_KEYS_MAX (config_table.h)");
