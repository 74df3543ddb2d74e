#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "names.h"
#include "relabel.h"

enum cfg_type {
    T_STRING,
    T_URL,  /* http:// or https:// */
    T_FILE, /* a path whose content (a secret) is loaded into aux_offset */
    T_INT,  /* non-negative integer */
    T_BOOL,
    T_DURATION, /* 30s, 5m, 1h */
    T_SIZE,     /* 512MiB */
    T_LIST,     /* comma-separated */
    T_LABELS,   /* k=v,k=v with valid label names */
    T_REGEX,    /* POSIX extended regular expression */
    T_LEVEL,    /* debug|info|warning|error */
    T_CHOICE,   /* one of the words in `choices` */
    T_PATH,     /* a file that must exist and be readable (CA bundle, client cert) */
    T_SELECTOR, /* PromQL series selectors (relabel.h) */
    T_LABELNAMES, /* comma-separated label names */
    T_HEADER,   /* one `Name: value` header, appended; commas allowed */
};

#define REQUIRED           1u
#define REPEAT             2u /* may appear several times in a section; each one appends */
#define CFG_MIN_SIZE       1024u /* T_SIZE: a spool or buffer smaller than this holds no batch */
#define SPOOL_NAME_MAX_CFG 48 /* longest [remote_write NAME] created from the environment */

enum section_kind { SEC_ALWAYS, SEC_OPTIONAL, SEC_NAMED };

struct section_desc {
    const char *name;
    enum section_kind kind;
    size_t size; /* size of the section struct */
    size_t
        cfg_off; /* offset in struct config: struct (ALWAYS), pointer (OPTIONAL), array (NAMED) */
    size_t count_off; /* NAMED: offset of the size_t count */
    ssize_t line_off; /* offset of `int line` in the section struct, -1 if none */
    const char *help;
};

struct key_desc {
    const char *section;
    const char *key;
    enum cfg_type type;
    const char *def; /* default value as text, NULL = none */
    size_t off;      /* offset in the section struct */
    size_t aux_off;  /* T_FILE: offset of the loaded content */
    unsigned flags;
    const char *example; /* shown in the template when there is no default */
    const char *choices; /* T_CHOICE: "a|b|c" */
    const char *help;
};

#define SEC_ONE(n, field, type_, help_)                                                            \
    {                                                                                              \
        n, SEC_OPTIONAL, sizeof(type_), offsetof(struct config, field), 0, offsetof(type_, line),  \
            help_                                                                                  \
    }

static const struct section_desc sections[] = {
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

static const struct key_desc keys[] = {
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

/* ---- value storage -------------------------------------------------- */

static void *field(void *sec, size_t off)
{
    return (char *)sec + off;
}

static void free_section_values(const struct section_desc *sd, void *sec)
{
    if (!sec)
        return;
    for (size_t i = 0; i < NS_ARRAY_LEN(keys); i++) {
        const struct key_desc *k = &keys[i];
        if (strcmp(k->section, sd->name) != 0)
            continue;
        switch (k->type) {
        case T_LIST:
        case T_LABELS:
        case T_LABELNAMES:
        case T_HEADER: {
            struct strlist *l = field(sec, k->off);
            strv_free(l->v, l->n);
            l->v = NULL;
            l->n = 0;
            break;
        }
        case T_FILE:
            free(*(char **)field(sec, k->aux_off));
            /* fall through */
        case T_STRING:
        case T_URL:
        case T_REGEX:
        case T_LEVEL:
        case T_CHOICE:
        case T_PATH:
        case T_SELECTOR:
            free(*(char **)field(sec, k->off));
            *(char **)field(sec, k->off) = NULL;
            break;
        default:
            break;
        }
    }
    if (strcmp(sd->name, "remote_write") == 0) {
        free(((struct cfg_remote_write *)sec)->name);
        relabel_free(((struct cfg_remote_write *)sec)->relabel);
        ((struct cfg_remote_write *)sec)->relabel = NULL;
    }
}

/* Parses `val` into the field of key `k`; -1 with e->msg (no location). */
static int set_value(const struct key_desc *k, void *sec, const char *val, struct err *e)
{
    /* the file is checked as a whole; this catches ${ENV} and overrides */
    for (const char *p = val; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f) {
            err_set(e, "%s: the value holds control byte 0x%02x (from the environment?)", k->key,
                    (unsigned char)*p);
            return -1;
        }
    switch (k->type) {
    case T_URL:
        if (*val && !str_has_prefix(val, "http://") && !str_has_prefix(val, "https://")) {
            char shown[URL_REDACT_MAX];
            err_set(e, "%s: \"%s\" is not an http:// or https:// URL", k->key,
                    url_redact(val, shown, sizeof shown));
            return -1;
        }
        /* fall through */
    case T_SELECTOR:
        if (k->type == T_SELECTOR && *val) { /* kept as text; relabel_new() parses again */
            struct relabel_selectors *rs;
            struct err e2;
            if (relabel_selectors_parse(val, &rs, &e2) < 0) {
                err_set(e, "%s: %s", k->key, e2.msg);
                return -1;
            }
            relabel_selectors_free(rs);
        }
        /* fall through */
    case T_STRING:
    case T_PATH: /* existence and access: validate_section() */
    case T_FILE: {
        char *s = strdup(val);
        if (!s)
            goto oom;
        free(*(char **)field(sec, k->off));
        *(char **)field(sec, k->off) = s;
        return 0;
    }
    case T_REGEX: {
        if (*val) {
            regex_t re;
            int rc = regcomp(&re, val, REG_EXTENDED | REG_NOSUB);
            if (rc) {
                char m[200];
                regerror(rc, &re, m, sizeof m);
                err_set(e, "%s: bad regular expression \"%s\": %s", k->key, val, m);
                return -1;
            }
            regfree(&re);
        }
        char *s = strdup(val);
        if (!s)
            goto oom;
        free(*(char **)field(sec, k->off));
        *(char **)field(sec, k->off) = s;
        return 0;
    }
    case T_LEVEL:
    case T_CHOICE: {
        bool ok = false;
        if (k->type == T_LEVEL) {
            enum log_level l;
            ok = log_level_parse(val, &l) == 0;
        } else {
            size_t n = strlen(val);
            for (const char *c = k->choices; c && *c;) {
                const char *bar = strchr(c, '|');
                size_t cl = bar ? (size_t)(bar - c) : strlen(c);
                if (cl == n && strncmp(c, val, n) == 0)
                    ok = true;
                c = bar ? bar + 1 : c + cl;
            }
        }
        if (!ok) {
            err_set(e, "%s: \"%s\" is not one of %s", k->key, val,
                    k->type == T_LEVEL ? "debug|info|warning|error" : k->choices);
            return -1;
        }
        char *s = strdup(val);
        if (!s)
            goto oom;
        free(*(char **)field(sec, k->off));
        *(char **)field(sec, k->off) = s;
        return 0;
    }
    case T_INT: {
        int64_t v;
        if (parse_int64(val, &v) < 0 || v < 0) {
            err_set(e, "%s: \"%s\" is not a non-negative integer", k->key, val);
            return -1;
        }
        *(int64_t *)field(sec, k->off) = v;
        return 0;
    }
    case T_BOOL:
        if (parse_bool(val, (bool *)field(sec, k->off)) < 0) {
            err_set(e, "%s: \"%s\" is not a boolean (true/false)", k->key, val);
            return -1;
        }
        return 0;
    case T_DURATION:
        /* a bare number is refused (as by Prometheus): is "500" ms or s? */
        if (*val && strspn(val, "0123456789") == strlen(val) && strspn(val, "0") != strlen(val)) {
            err_set(e, "%s: \"%s\" has no unit: write %ss (or %sms, %sm)", k->key, val, val, val,
                    val);
            return -1;
        }
        if (parse_duration_ms(val, (int64_t *)field(sec, k->off)) < 0) {
            err_set(e, "%s: \"%s\" is not a duration (e.g. 30s, 5m, 1h)", k->key, val);
            return -1;
        }
        return 0;
    case T_SIZE:
        if (parse_size(val, (uint64_t *)field(sec, k->off)) < 0) {
            err_set(e, "%s: \"%s\" is not a size (e.g. 512MiB, 1GiB)", k->key, val);
            return -1;
        }
        if (*(uint64_t *)field(sec, k->off) < CFG_MIN_SIZE) {
            err_set(e, "%s: %s is too small to hold one batch (at least 1KiB)", k->key, val);
            return -1;
        }
        return 0;
    case T_HEADER: {
        const char *colon = strchr(val, ':');
        size_t nl = colon ? (size_t)(colon - val) : 0;
        while (nl && isspace((unsigned char)val[nl - 1]))
            nl--;
        if (!colon || !nl || strcspn(val, " \t") < nl) {
            err_set(e, "%s: \"%s\" is not `Name: value`", k->key, val);
            return -1;
        }
        struct strlist *dst = field(sec, k->off);
        char **nv = realloc(dst->v, (dst->n + 1) * sizeof *nv);
        if (!nv)
            goto oom;
        dst->v = nv;
        if (!(dst->v[dst->n] = strdup(val)))
            goto oom;
        dst->n++;
        return 0;
    }
    case T_LIST:
    case T_LABELS:
    case T_LABELNAMES: {
        struct strlist l = {0};
        if (split_list(val, &l.v, &l.n) < 0)
            goto oom;
        if (k->type == T_LABELS) {
            for (size_t i = 0; i < l.n; i++) {
                char *eq = strchr(l.v[i], '=');
                if (!eq) {
                    err_set(e, "%s: \"%s\" is not name=value", k->key, l.v[i]);
                    strv_free(l.v, l.n);
                    return -1;
                }
                *eq = '\0';
                char *name = str_trim(l.v[i]);
                char *value = str_trim(eq + 1);
                /* reserved "__" names are refused, but for Mimir's HA
                 * tracker's default replica label */
                if (!label_name_valid(name) || !*value ||
                    (name[0] == '_' && strcmp(name, "__replica__") != 0)) {
                    err_set(e, "%s: \"%s\" is not a valid label name=value", k->key, name);
                    strv_free(l.v, l.n);
                    return -1;
                }
                size_t nl = strlen(name), vl = strlen(value);
                memmove(l.v[i], name, nl);
                l.v[i][nl] = '=';
                memmove(l.v[i] + nl + 1, value, vl + 1);
            }
        }
        for (size_t i = 0; k->type == T_LABELNAMES && i < l.n; i++)
            if (!label_name_valid(l.v[i]) || strcmp(l.v[i], "__name__") == 0) {
                err_set(e, "%s: \"%s\" is not a label name that can be dropped", k->key, l.v[i]);
                strv_free(l.v, l.n);
                return -1;
            }
        struct strlist *dst = field(sec, k->off);
        strv_free(dst->v, dst->n);
        *dst = l;
        return 0;
    }
    }
    return 0;
oom:
    err_set(e, "out of memory");
    return -1;
}

/* ---- problems: every one found, with where ------------------------------ */

struct cfg_keyline {
    const void *sec;        /* the section instance */
    const struct key_desc *k; /* NULL: the section header */
    int line;
    bool bad; /* its value was refused (reported): no further checks of it */
};

struct problem {
    int line; /* sort key: file line; environment ones last */
    char *msg;
};

struct diag {
    const char *file;
    struct problem *v;
    size_t n, cap;
    bool oom;
};

/* line > 0: "FILE:LINE: msg"; line == 0: "FILE: msg"; line < 0: msg as is
 * (environment), reported after the file's problems. */
static void report(struct diag *d, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report(struct diag *d, int line, const char *fmt, ...)
{
    char m[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    struct buf b;
    buf_init(&b, 0);
    if (line > 0)
        buf_printf(&b, "%s:%d: %s", d->file, line, m);
    else if (line == 0)
        buf_printf(&b, "%s: %s", d->file, m);
    else
        buf_puts(&b, m);
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 8;
        struct problem *nv = realloc(d->v, nc * sizeof *nv);
        if (!nv) {
            buf_free(&b);
            d->oom = true;
            return;
        }
        d->v = nv;
        d->cap = nc;
    }
    const char *t = buf_cstr(&b);
    char *msg = t ? strdup(t) : NULL;
    buf_free(&b);
    if (!msg) {
        d->oom = true;
        return;
    }
    d->v[d->n++] = (struct problem){line < 0 ? INT_MAX : line, msg};
}

static void diag_free(struct diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].msg);
    free(d->v);
}

static int keyline_set(struct config *cfg, const void *sec, const struct key_desc *k, int line)
{
    for (size_t i = 0; i < cfg->n_keylines; i++)
        if (cfg->keylines[i].sec == sec && cfg->keylines[i].k == k) {
            cfg->keylines[i].line = line;
            return 0;
        }
    if (cfg->n_keylines == cfg->cap_keylines) {
        size_t nc = cfg->cap_keylines ? cfg->cap_keylines * 2 : 32;
        struct cfg_keyline *nv = realloc(cfg->keylines, nc * sizeof *nv);
        if (!nv)
            return -1;
        cfg->keylines = nv;
        cfg->cap_keylines = nc;
    }
    cfg->keylines[cfg->n_keylines++] = (struct cfg_keyline){sec, k, line, false};
    return 0;
}

static void keyline_bad(struct config *cfg, const void *sec, const struct key_desc *k)
{
    for (size_t i = 0; i < cfg->n_keylines; i++)
        if (cfg->keylines[i].sec == sec && cfg->keylines[i].k == k)
            cfg->keylines[i].bad = true;
}

static bool key_bad(const struct config *cfg, const void *sec, const struct key_desc *k)
{
    for (size_t i = 0; i < cfg->n_keylines; i++)
        if (cfg->keylines[i].sec == sec && cfg->keylines[i].k == k)
            return cfg->keylines[i].bad;
    return false;
}

static int keyline_get(const struct config *cfg, const void *sec, const struct key_desc *k)
{
    for (size_t i = 0; i < cfg->n_keylines; i++)
        if (cfg->keylines[i].sec == sec && cfg->keylines[i].k == k)
            return cfg->keylines[i].line;
    return 0;
}

int config_key_line(const struct config *c, const void *sec, const char *key)
{
    for (size_t i = 0; i < c->n_keylines; i++)
        if (c->keylines[i].sec == sec && c->keylines[i].k &&
            strcmp(c->keylines[i].k->key, key) == 0)
            return c->keylines[i].line;
    return 0;
}

/* ---- unknown keys: suggestions ------------------------------------------ */

/* Prometheus remote_write (and global) spellings, and where their meaning
 * lives here. */
static const struct {
    const char *section, *key, *hint;
} foreign_keys[] = {
    {"remote_write", "remote_timeout", "this is `timeout`"},
    {"remote_write", "basic_auth", "use basic_auth_user and basic_auth_password_file"},
    {"remote_write", "username", "this is `basic_auth_user`"},
    {"remote_write", "password", "put the password in a file named by basic_auth_password_file"},
    {"remote_write", "password_file", "this is `basic_auth_password_file`"},
    {"remote_write", "tls_config",
     "TLS settings are keys of the section: ca_file, cert_file, key_file, insecure_skip_verify"},
    {"remote_write", "ca", "this is `ca_file`"},
    {"remote_write", "cert", "this is `cert_file`"},
    {"remote_write", "key", "this is `key_file`"},
    {"remote_write", "server_name", "not configurable: the host of `url` is verified"},
    {"remote_write", "bearer_token", "put the token in a file named by bearer_token_file"},
    {"remote_write", "authorization",
     "use bearer_token_file (Authorization: Bearer), or `header = Authorization: ...`"},
    {"remote_write", "write_relabel_configs",
     "use keep_metrics, drop_metrics, keep_series, drop_series and drop_labels"},
    {"remote_write", "relabel_configs",
     "use keep_metrics, drop_metrics, keep_series, drop_series and drop_labels"},
    {"remote_write", "queue_config",
     "use max_samples_per_send, min_backoff and max_backoff (batches wait in the disk "
     "spool, not in a memory queue)"},
    {"remote_write", "capacity", "batches wait in the disk spool: see [shipper] spool_max_size"},
    {"remote_write", "max_shards", "one request at a time per target: not configurable"},
    {"remote_write", "batch_send_deadline", "one batch per `interval`: not configurable"},
    {"remote_write", "name", "the name goes in the section header: [remote_write NAME]"},
    {"remote_write", "send_exemplars", "not supported: nexus-shipper has no exemplars"},
    {"remote_write", "send_native_histograms", "not supported: histograms are classic ones"},
    {"remote_write", "metadata_config", "metadata is always sent with every batch"},
    {"remote_write", "proxy_url", "use the https_proxy / http_proxy environment variables"},
    {"remote_write", "oauth2", "not supported: use bearer_token_file or a header"},
    {"remote_write", "sigv4", "not supported: use bearer_token_file or a header"},
    {"remote_write", "azuread", "not supported: use bearer_token_file or a header"},
    {"remote_write", "follow_redirects", "not configurable: redirects are not followed"},
    {"remote_write", "enable_http2", "not configurable"},
    {"remote_write", "tenant_id", "this is `tenant` (X-Scope-OrgID)"},
    {"remote_write", "x-scope-orgid", "this is `tenant`"},
    {"shipper", "scrape_interval", "this is `interval`"},
    {"shipper", "evaluation_interval", "this is `interval`"},
};

/* Levenshtein distance, case-insensitive, of short strings (capped). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 64;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* "; did you mean ...?" or a hint for a key of another program, or "". */
static void suggest(const char *section, const char *key, char *out, size_t n)
{
    out[0] = '\0';
    for (size_t i = 0; i < NS_ARRAY_LEN(foreign_keys); i++)
        if (strcmp(foreign_keys[i].section, section) == 0 &&
            strcasecmp(foreign_keys[i].key, key) == 0) {
            snprintf(out, n, " (Prometheus's \"%s\": %s)", key, foreign_keys[i].hint);
            return;
        }
    const char *best = NULL;
    size_t bd = SIZE_MAX, kl = strlen(key);
    for (size_t i = 0; i < NS_ARRAY_LEN(keys); i++) {
        if (strcmp(keys[i].section, section) != 0)
            continue;
        size_t d = edit_distance(key, keys[i].key);
        size_t ol = strlen(keys[i].key);
        /* a prefix (basic_auth_password of basic_auth_password_file) is close */
        if (kl >= 4 && ol > kl && strncasecmp(keys[i].key, key, kl) == 0 && d > 2)
            d = 2;
        if (d < bd) {
            bd = d;
            best = keys[i].key;
        }
    }
    size_t limit = kl / 3 > 2 ? kl / 3 : 2;
    if (best && bd <= limit) {
        snprintf(out, n, "; did you mean \"%s\"?", best);
        return;
    }
    for (size_t i = 0; i < NS_ARRAY_LEN(keys); i++)
        if (strcasecmp(keys[i].key, key) == 0) {
            snprintf(out, n, " (\"%s\" is a key of [%s])", keys[i].key, keys[i].section);
            return;
        }
}

/* ---- parsing --------------------------------------------------------- */

struct parse_state {
    struct config *cfg;
    const char *file;
    struct diag *d;
    /* keys already set in the current section, to reject duplicates */
    const struct section_desc *sd; /* NULL: no section, or a bad header (keys skipped) */
    bool skipping;                 /* after a bad header: its keys are not checked */
    void *sec;
    unsigned char seen[NS_ARRAY_LEN(keys)];
    int seen_line[NS_ARRAY_LEN(keys)];
    int shipper_line; /* where [shipper] (the one SEC_ALWAYS section) was opened */
};

static const struct section_desc *find_section(const char *name, size_t len)
{
    for (size_t i = 0; i < NS_ARRAY_LEN(sections); i++)
        if (strlen(sections[i].name) == len && strncasecmp(sections[i].name, name, len) == 0)
            return &sections[i];
    return NULL;
}

static const struct key_desc *find_key(const char *section, const char *key, size_t klen)
{
    for (size_t i = 0; i < NS_ARRAY_LEN(keys); i++)
        if (strcmp(keys[i].section, section) == 0 && strlen(keys[i].key) == klen &&
            strncasecmp(keys[i].key, key, klen) == 0)
            return &keys[i];
    return NULL;
}

static int apply_defaults(const struct section_desc *sd, void *sec, struct err *e)
{
    for (size_t i = 0; i < NS_ARRAY_LEN(keys); i++) {
        const struct key_desc *k = &keys[i];
        if (strcmp(k->section, sd->name) != 0 || !k->def)
            continue;
        if (set_value(k, sec, k->def, e) < 0)
            return -1;
    }
    return 0;
}

/* Creates (or finds, for ALWAYS) the section instance; NULL on error. */
static void *open_section(struct config *cfg, const struct section_desc *sd, const char *name,
                          int line, struct err *e)
{
    void *slot = (char *)cfg + sd->cfg_off;
    if (sd->kind == SEC_ALWAYS) {
        if (name && *name) {
            err_set(e, "section [%s] takes no name", sd->name);
            return NULL;
        }
        return slot;
    }
    if (sd->kind == SEC_OPTIONAL && name && *name) {
        err_set(e, "section [%s] takes no name", sd->name);
        return NULL;
    }
    if (sd->kind == SEC_OPTIONAL && *(void **)slot) {
        err_set(e, "section [%s] appears twice (first on line %d)", sd->name,
                *(int *)field(*(void **)slot, (size_t)sd->line_off));
        return NULL;
    }
    void *sec = calloc(1, sd->size);
    if (!sec) {
        err_set(e, "out of memory");
        return NULL;
    }
    if (sd->line_off >= 0)
        *(int *)field(sec, (size_t)sd->line_off) = line;
    if (apply_defaults(sd, sec, e) < 0) {
        free_section_values(sd, sec);
        free(sec);
        return NULL;
    }
    if (sd->kind == SEC_OPTIONAL) {
        *(void **)slot = sec;
        return sec;
    }
    /* SEC_NAMED */
    struct cfg_remote_write ***arr = slot;
    size_t *count = (size_t *)((char *)cfg + sd->count_off);
    for (size_t i = 0; i < *count; i++) {
        if (strcmp((*arr)[i]->name, name ? name : "") == 0) {
            err_set(e, "section [%s%s%s] appears twice (first on line %d)", sd->name,
                    name && *name ? " " : "", name ? name : "", (*arr)[i]->line);
            goto fail;
        }
    }
    struct cfg_remote_write *rw = sec;
    if (!(rw->name = strdup(name ? name : "")))
        goto oom;
    for (const char *p = rw->name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') {
            err_set(e, "section name \"%s\" may only hold letters, digits, '-' and '_'", rw->name);
            goto fail;
        }
    struct cfg_remote_write **na = realloc(*arr, (*count + 1) * sizeof **arr);
    if (!na)
        goto oom;
    *arr = na;
    na[(*count)++] = rw;
    return sec;
oom:
    err_set(e, "out of memory");
fail:
    free_section_values(sd, sec);
    free(sec);
    return NULL;
}

/* Expands ${VAR} and ${VAR:-default}; "$$" is a literal '$'. */
static int expand_env(const char *in, char **out, struct err *e)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    for (const char *p = in; *p;) {
        if (p[0] == '$' && p[1] == '$') {
            buf_append(&b, "$", 1);
            p += 2;
            continue;
        }
        if (p[0] == '$' && p[1] == '{') {
            const char *end = strchr(p, '}');
            if (!end) {
                err_set(e, "unterminated ${ in \"%s\"", in);
                goto fail;
            }
            char name[256];
            size_t n = (size_t)(end - p - 2);
            if (n >= sizeof name || n == 0) {
                err_set(e, "bad variable reference in \"%s\"", in);
                goto fail;
            }
            memcpy(name, p + 2, n);
            name[n] = '\0';
            const char *def = NULL;
            char *colon = strstr(name, ":-");
            if (colon) {
                *colon = '\0';
                def = colon + 2;
            }
            const char *v = getenv(name);
            if (!v || (!*v && def))
                v = def;
            if (!v) {
                err_set(e, "environment variable %s is not set (use ${%s:-default})", name, name);
                goto fail;
            }
            if (buf_puts(&b, v) < 0)
                goto oom;
            p = end + 1;
            continue;
        }
        if (buf_append(&b, p, 1) < 0)
            goto oom;
        p++;
    }
    if (!buf_cstr(&b))
        goto oom;
    *out = b.data;
    return 0;
oom:
    err_set(e, "out of memory");
fail:
    buf_free(&b);
    return -1;
}

/* Parses one line; a problem is reported and parsing goes on. -1 only
 * when out of memory. */
static int parse_line(struct parse_state *ps, char *line, int lineno)
{
    struct diag *d = ps->d;
    char *s = str_trim(line);
    if (!*s || *s == '#' || *s == ';')
        return 0;
    if (*s == '[') {
        ps->sd = NULL;
        ps->skipping = true; /* until a good header */
        char *end = strchr(s, ']');
        if (!end || str_trim(end + 1)[0] != '\0') {
            report(d, lineno, "malformed section header \"%s\"", s);
            return 0;
        }
        *end = '\0';
        char *inner = str_trim(s + 1);
        char *sp = inner;
        while (*sp && !isspace((unsigned char)*sp))
            sp++;
        size_t nlen = (size_t)(sp - inner);
        char *name = str_trim(sp);
        const struct section_desc *sd = find_section(inner, nlen);
        if (!sd) {
            const char *best = NULL;
            size_t bd = SIZE_MAX;
            char nm[64];
            snprintf(nm, sizeof nm, "%.*s", (int)nlen, inner);
            for (size_t i = 0; i < NS_ARRAY_LEN(sections); i++) {
                size_t dd = edit_distance(nm, sections[i].name);
                if (dd < bd) {
                    bd = dd;
                    best = sections[i].name;
                }
            }
            if (best && bd <= 2 && nlen)
                report(d, lineno, "unknown section [%.*s]; did you mean [%s]?", (int)nlen, inner,
                       best);
            else
                report(d, lineno, "unknown section [%.*s]", (int)nlen, inner);
            return 0;
        }
        struct err e2;
        if (sd->kind == SEC_ALWAYS && ps->shipper_line) {
            report(d, lineno, "section [%s] appears twice (first on line %d)", sd->name,
                   ps->shipper_line);
            return 0;
        }
        void *sec = open_section(ps->cfg, sd, name, lineno, &e2);
        if (!sec) {
            report(d, lineno, "%s", e2.msg);
            return 0;
        }
        if (keyline_set(ps->cfg, sec, NULL, lineno) < 0)
            return -1;
        ps->sd = sd;
        ps->sec = sec;
        ps->skipping = false;
        if (sd->kind == SEC_ALWAYS)
            ps->shipper_line = lineno;
        memset(ps->seen, 0, sizeof ps->seen);
        return 0;
    }
    char *eq = strchr(s, '=');
    if (!eq) {
        report(d, lineno, "expected `key = value`, got \"%s\"", s);
        return 0;
    }
    if (!ps->sd) {
        if (!ps->skipping)
            report(d, lineno, "key outside of any section (start with [shipper])");
        return 0;
    }
    *eq = '\0';
    char *key = str_trim(s);
    char *val = str_trim(eq + 1);
    /* Values may be quoted to keep leading/trailing spaces or a '#'. */
    size_t vl = strlen(val);
    if (vl >= 2 &&
        ((val[0] == '"' && val[vl - 1] == '"') || (val[0] == '\'' && val[vl - 1] == '\''))) {
        val[vl - 1] = '\0';
        val++;
    }
    const struct key_desc *k = find_key(ps->sd->name, key, strlen(key));
    if (!k) {
        char hint[256];
        suggest(ps->sd->name, key, hint, sizeof hint);
        report(d, lineno, "unknown key \"%s\" in section [%s]%s", key, ps->sd->name, hint);
        return 0;
    }
    size_t ki = (size_t)(k - keys);
    if (ps->seen[ki] && !(k->flags & REPEAT)) {
        report(d, lineno, "key \"%s\" already set on line %d", key, ps->seen_line[ki]);
        return 0;
    }
    if (!ps->seen[ki] && keyline_set(ps->cfg, ps->sec, k, lineno) < 0)
        return -1;
    ps->seen[ki] = 1;
    ps->seen_line[ki] = lineno;
    char *exp = NULL;
    struct err e2;
    if (expand_env(val, &exp, &e2) < 0 || set_value(k, ps->sec, exp, &e2) < 0) {
        report(d, lineno, "%s", e2.msg);
        keyline_bad(ps->cfg, ps->sec, k);
    }
    free(exp);
    return 0;
}

/* ---- environment overrides ------------------------------------------ */

static void upper_copy(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < n; i++)
        dst[i] = (char)(src[i] == '-' ? '_' : toupper((unsigned char)src[i]));
    dst[i] = '\0';
}

extern char **environ;

/* Reports every bad override; -1 only when out of memory. */
static int apply_env(struct config *cfg, struct diag *d)
{
    static const char prefix[] = "NEXUS_SHIPPER_";
    for (char **ev = environ; ev && *ev; ev++) {
        if (!str_has_prefix(*ev, prefix))
            continue;
        const char *eqp = strchr(*ev, '=');
        if (!eqp)
            continue;
        char name[256];
        size_t nlen = (size_t)(eqp - *ev);
        if (nlen >= sizeof name)
            continue;
        memcpy(name, *ev, nlen);
        name[nlen] = '\0';
        const char *val = eqp + 1;
        const char *rest = name + sizeof prefix - 1;
        bool done = false;
        for (size_t si = 0; si < NS_ARRAY_LEN(sections) && !done; si++) {
            const struct section_desc *sd = &sections[si];
            char up[64];
            upper_copy(up, sizeof up, sd->name);
            size_t ul = strlen(up);
            if (strncmp(rest, up, ul) != 0 || rest[ul] != '_')
                continue;
            const char *tail = rest + ul + 1;
            const char *inst_name = NULL;
            char new_name[SPOOL_NAME_MAX_CFG];
            const struct key_desc *k = find_key(sd->name, tail, strlen(tail));
            void *sec = NULL;
            if (sd->kind == SEC_NAMED) {
                /* NEXUS_SHIPPER_REMOTE_WRITE_<NAME>_<KEY> for a named instance */
                size_t *count = (size_t *)((char *)cfg + sd->count_off);
                struct cfg_remote_write **arr =
                    *(struct cfg_remote_write ***)((char *)cfg + sd->cfg_off);
                for (size_t i = 0; i < *count && !sec; i++) {
                    char iu[128];
                    upper_copy(iu, sizeof iu, arr[i]->name);
                    size_t il = strlen(iu);
                    if (il && strncmp(tail, iu, il) == 0 && tail[il] == '_') {
                        const struct key_desc *k2 =
                            find_key(sd->name, tail + il + 1, strlen(tail + il + 1));
                        if (k2) {
                            k = k2;
                            sec = arr[i];
                        }
                    }
                }
                if (!sec && k) {
                    for (size_t i = 0; i < *count; i++)
                        if (!arr[i]->name[0])
                            sec = arr[i];
                    inst_name = "";
                }
                /* an instance the file does not have: <NAME>_<KEY>, the
                 * longest key that matches wins; the name is lower-cased */
                for (const char *u = strchr(tail, '_'); u && !k; u = strchr(u + 1, '_')) {
                    const struct key_desc *k2 = find_key(sd->name, u + 1, strlen(u + 1));
                    size_t nl = (size_t)(u - tail);
                    if (k2 && nl && nl < sizeof new_name) {
                        for (size_t c = 0; c < nl; c++)
                            new_name[c] = (char)tolower((unsigned char)tail[c]);
                        new_name[nl] = '\0';
                        k = k2;
                        inst_name = new_name;
                    }
                }
            } else if (k) {
                sec = sd->kind == SEC_ALWAYS ? (char *)cfg + sd->cfg_off
                                             : *(void **)((char *)cfg + sd->cfg_off);
            }
            if (!k)
                continue;
            if (!sec) {
                struct err e2;
                sec = open_section(cfg, sd, inst_name, 0, &e2);
                if (!sec) {
                    report(d, -1, "environment %s: %s", name, e2.msg);
                    done = true;
                    break;
                }
            }
            struct err e2;
            if (set_value(k, sec, val, &e2) < 0)
                report(d, -1, "environment %s: %s", name, e2.msg);
            else if (keyline_set(cfg, sec, k, 0) < 0) /* the file's line no longer applies */
                return -1;
            done = true;
        }
        if (!done)
            report(d, -1, "environment %s: no such configuration key", name);
    }
    return 0;
}

/* ---- validation ------------------------------------------------------- */

/* The line of `key` (NULL: the section header) of section instance sec,
 * else of the section header, 0 when neither came from the file. */
static int where(const struct config *cfg, const void *sec, const char *key)
{
    int l = key ? config_key_line(cfg, sec, key) : 0;
    return l ? l : keyline_get(cfg, sec, NULL);
}

/* A secret (a password, a token) is one line of printable bytes once its
 * trailing white space is trimmed: a NUL would cut it and a CR or LF would
 * end an HTTP header early. */
static int secret_bytes(const char *path, const char *s, size_t len, struct err *e)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            err_set(e, "%s: %s at byte %zu (a secret file holds one line of text)", path,
                    c == 0 ? "NUL byte" : c == '\n' || c == '\r' ? "line break" : "control byte",
                    i + 1);
            return -1;
        }
    }
    return 0;
}

/* "[remote_write NAME]" / "[nexus]" */
static void section_title(const struct section_desc *sd, const void *sec, char *out, size_t n)
{
    const char *nm = sd->kind == SEC_NAMED ? ((const struct cfg_remote_write *)sec)->name : "";
    snprintf(out, n, "[%s%s%s]", sd->name, *nm ? " " : "", nm);
}

/* A readable regular file (or a symlink to one): 0, else -1 with e. */
static int check_readable(const char *path, struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        err_set(e, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    int bad = fstat(fd, &st) < 0 || S_ISDIR(st.st_mode);
    close(fd);
    if (bad) {
        err_set(e, "%s is a directory, not a file", path);
        return -1;
    }
    return 0;
}

static int validate_section(struct config *cfg, struct diag *d, const struct section_desc *sd,
                            void *sec)
{
    int line = keyline_get(cfg, sec, NULL);
    char title[128];
    section_title(sd, sec, title, sizeof title);
    for (size_t i = 0; i < NS_ARRAY_LEN(keys); i++) {
        const struct key_desc *k = &keys[i];
        if (strcmp(k->section, sd->name) != 0 || key_bad(cfg, sec, k))
            continue;
        int kline = keyline_get(cfg, sec, k);
        char *sv = (k->type == T_STRING || k->type == T_URL || k->type == T_FILE ||
                    k->type == T_PATH)
                       ? *(char **)field(sec, k->off)
                       : NULL;
        bool empty_list = (k->type == T_LIST || k->type == T_LABELS) &&
                          ((struct strlist *)field(sec, k->off))->n == 0;
        bool is_str = sv != NULL || k->type == T_STRING || k->type == T_URL ||
                      k->type == T_FILE || k->type == T_PATH;
        bool missing = is_str ? (!sv || !*sv) : empty_list;
        if ((k->flags & REQUIRED) && missing) {
            if (kline || line) {
                report(d, kline ? kline : line, "section [%s] needs \"%s\"", sd->name, k->key);
            } else {
                char us[64], un[128], uk[64];
                upper_copy(us, sizeof us, sd->name);
                upper_copy(uk, sizeof uk, k->key);
                const char *nm =
                    sd->kind == SEC_NAMED ? ((struct cfg_remote_write *)sec)->name : "";
                upper_copy(un, sizeof un, nm);
                report(d, -1, "environment: section [%s%s%s] needs NEXUS_SHIPPER_%s_%s%s%s",
                       sd->name, *nm ? " " : "", nm, us, un, *nm ? "_" : "", uk);
            }
            continue;
        }
        if ((k->type == T_FILE || k->type == T_PATH) && sv && *sv) {
            struct err e2;
            char *content = NULL;
            int rc;
            if (k->type == T_FILE) {
                size_t clen = 0;
                rc = read_file_n(sv, 64 * 1024, true, &content, &clen, &e2);
                if (rc == 0 && secret_bytes(sv, content, clen, &e2) < 0) {
                    free(content);
                    content = NULL;
                    rc = -1;
                }
            } else {
                rc = check_readable(sv, &e2);
            }
            if (rc < 0) {
                if (kline || line)
                    report(d, kline ? kline : line, "%s: %s", k->key, e2.msg);
                else
                    report(d, -1, "environment: %s %s: %s", title, k->key, e2.msg);
                continue;
            }
            if (k->type == T_PATH)
                continue;
            free(*(char **)field(sec, k->aux_off));
            *(char **)field(sec, k->aux_off) = content;
            struct stat st;
            if (stat(sv, &st) == 0 && (st.st_mode & S_IROTH))
                cfg->world_readable_secrets = true;
        }
    }
    return d->oom ? -1 : 0;
}

/* A URL with a password in its user info (scheme://user:password@host). */
static bool url_has_password(const char *url)
{
    const char *a = url ? strstr(url, "://") : NULL;
    if (!a)
        return false;
    a += 3;
    size_t n = strcspn(a, "/?#");
    const char *at = memchr(a, '@', n);
    return at && memchr(a, ':', (size_t)(at - a));
}

/* Where the configuration holds a secret itself rather than through a
 * *_file key, or NULL. */
static const char *inline_secret(const struct config *cfg)
{
    static const char *const words[] = {"authorization", "token", "secret", "password", "key"};
    for (size_t i = 0; i < cfg->n_rw; i++) {
        const struct strlist *h = &cfg->rw[i]->headers;
        for (size_t k = 0; k < h->n; k++) {
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(h->v[k], ":"), h->v[k]);
            for (size_t w = 0; w < NS_ARRAY_LEN(words); w++)
                if (strcasestr(name, words[w]))
                    return "a [remote_write] header";
        }
        if (url_has_password(cfg->rw[i]->url))
            return "a [remote_write] url";
    }
    if (cfg->pushgateway && url_has_password(cfg->pushgateway->url))
        return "the [pushgateway] url";
    if (cfg->nexus && url_has_password(cfg->nexus->url))
        return "the [nexus] url";
    if (cfg->gitlab && url_has_password(cfg->gitlab->url))
        return "the [gitlab] url";
    if (cfg->database && cfg->database->conninfo &&
        (strcasestr(cfg->database->conninfo, "password") ||
         url_has_password(cfg->database->conninfo)))
        return "the [database] conninfo";
    return NULL;
}

/* Builds a target's relabel from its five keys and merges its `header`
 * lines into `headers`. -1 only when out of memory. */
static int finish_remote_write(struct config *cfg, struct diag *d, struct cfg_remote_write *rw)
{
    for (size_t h = 0; h < rw->header_lines.n; h++) {
        char **nv = realloc(rw->headers.v, (rw->headers.n + 1) * sizeof *nv);
        if (!nv)
            return -1;
        rw->headers.v = nv;
        rw->headers.v[rw->headers.n++] = rw->header_lines.v[h];
        rw->header_lines.v[h] = NULL;
    }
    strv_free(rw->header_lines.v, rw->header_lines.n);
    rw->header_lines.v = NULL;
    rw->header_lines.n = 0;
    struct relabel_spec spec = {.keep_metrics = rw->keep_metrics,
                                .drop_metrics = rw->drop_metrics,
                                .keep_series = rw->keep_series,
                                .drop_series = rw->drop_series,
                                .drop_labels = (const char *const *)rw->drop_labels.v,
                                .n_drop_labels = rw->drop_labels.n};
    struct err e2;
    if (!(rw->relabel = relabel_new(&spec, &e2))) {
        /* the values were checked when set: only out of memory is left */
        report(d, where(cfg, rw, NULL), "%s", e2.msg);
        return -1;
    }
    return 0;
}

/* Every check across keys; each problem is reported at the line of the key
 * concerned. -1 only when out of memory. */
static int validate(struct config *cfg, struct diag *d)
{
    for (size_t si = 0; si < NS_ARRAY_LEN(sections); si++) {
        const struct section_desc *sd = &sections[si];
        void *slot = (char *)cfg + sd->cfg_off;
        if (sd->kind == SEC_ALWAYS) {
            if (validate_section(cfg, d, sd, slot) < 0)
                return -1;
        } else if (sd->kind == SEC_OPTIONAL) {
            if (*(void **)slot && validate_section(cfg, d, sd, *(void **)slot) < 0)
                return -1;
        } else {
            size_t n = *(size_t *)((char *)cfg + sd->count_off);
            for (size_t i = 0; i < n; i++)
                if (validate_section(cfg, d, sd, (*(void ***)slot)[i]) < 0)
                    return -1;
        }
    }
    struct cfg_shipper *sh = &cfg->shipper;
    if (sh->interval_ms < 1000)
        report(d, where(cfg, sh, "interval"), "[shipper] interval must be at least 1s");
    if (sh->archive_key_file && sh->archive_key_file[0] &&
        (!sh->archive_key || strlen(sh->archive_key) < 16))
        report(d, where(cfg, sh, "archive_key_file"),
               "[shipper] archive_key_file %s holds fewer than 16 bytes of key",
               sh->archive_key_file);
    for (size_t i = 0; i < cfg->n_rw; i++) {
        struct cfg_remote_write *rw = cfg->rw[i];
        if (rw->max_samples_per_send < 1)
            report(d, where(cfg, rw, "max_samples_per_send"),
                   "max_samples_per_send must be at least 1");
        if (rw->min_backoff_ms > rw->max_backoff_ms)
            report(d, where(cfg, rw, "min_backoff"), "min_backoff is larger than max_backoff");
        if ((rw->cert_file[0] != 0) != (rw->key_file[0] != 0))
            report(d, where(cfg, rw, rw->cert_file[0] ? "cert_file" : "key_file"),
                   "cert_file and key_file go together");
        if (rw->basic_auth_user[0] && rw->bearer_token_file[0])
            report(d, where(cfg, rw, "bearer_token_file"),
                   "basic_auth_user and bearer_token_file exclude each other");
        if (rw->bearer_token && strpbrk(rw->bearer_token, "\r\n")) /* another header */
            report(d, where(cfg, rw, "bearer_token_file"),
                   "bearer_token_file %s: the token holds a line break", rw->bearer_token_file);
        for (size_t h = 0; h < rw->headers.n; h++)
            if (!strchr(rw->headers.v[h], ':'))
                report(d, where(cfg, rw, "headers"), "header \"%s\" is not `Name: value`",
                       rw->headers.v[h]);
        if (finish_remote_write(cfg, d, rw) < 0)
            return -1;
    }
    if (!sh->instance || !*sh->instance) {
        char host[256] = "localhost";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        free(sh->instance);
        if (!(sh->instance = strdup(host)))
            return -1;
    }
    /* the values were checked when set */
    if (sh->drop_metrics && sh->drop_metrics[0] &&
        regcomp(&cfg->drop_re, sh->drop_metrics, REG_EXTENDED | REG_NOSUB) == 0)
        cfg->has_drop_re = true;
    if (sh->keep_metrics && sh->keep_metrics[0] &&
        regcomp(&cfg->keep_re, sh->keep_metrics, REG_EXTENDED | REG_NOSUB) == 0)
        cfg->has_keep_re = true;
    return d->oom ? -1 : 0;
}

/* A configuration file is text: a NUL would silently end it (the rest
 * never parsed) and other control bytes hide in values. Tab, CR (CRLF
 * files) and LF are the only ones allowed. Returns -1 with e set to
 * "FILE:LINE: ..." at the first other one. */
static int control_byte(const char *path, const char *text, size_t len, struct err *e)
{
    int line = 1;
    size_t col = 1;
    for (size_t i = 0; i < len; i++, col++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') {
            line++;
            col = 0;
        } else if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
            if (c == 0)
                err_set(e, "%s:%d: NUL byte at column %zu (a configuration file is text; "
                        "nothing after it would be read)", path, line, col);
            else
                err_set(e, "%s:%d: control byte 0x%02x at column %zu (only tab, CR and LF "
                        "are allowed)", path, line, c, col);
            return -1;
        }
    }
    return 0;
}

static int cmp_problem(const void *a, const void *b)
{
    const struct problem *x = a, *y = b;
    return (x->line > y->line) - (x->line < y->line);
}

/* A problem that stops the loading (the file cannot be read) as the only
 * item of `problems` (may be NULL). */
static void only_problem(struct strlist *problems, const char *msg)
{
    if (problems && (problems->v = calloc(1, sizeof *problems->v)) &&
        (problems->v[0] = strdup(msg)))
        problems->n = 1;
}

struct config *config_load_all(const char *path, struct strlist *problems, struct err *e)
{
    struct config *cfg = calloc(1, sizeof *cfg);
    struct diag d = {.file = path};
    char *text = NULL;
    if (!cfg || !(cfg->path = strdup(path)))
        goto oom;
    if (apply_defaults(&sections[0], &cfg->shipper, e) < 0)
        goto fail;
    struct err e2;
    size_t text_len = 0;
    if (read_file_n(path, 1 << 20, false, &text, &text_len, &e2) < 0) {
        err_set(e, "%s:0: %s", path, e2.msg);
        only_problem(problems, e->msg);
        goto fail;
    }
    if (control_byte(path, text, text_len, e) < 0) {
        only_problem(problems, e->msg);
        goto fail;
    }
    struct parse_state ps = {.cfg = cfg, .file = path, .d = &d};
    int lineno = 0;
    for (char *line = text; line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        if (parse_line(&ps, line, lineno) < 0)
            goto oom;
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    text = NULL;
    if (apply_env(cfg, &d) < 0 || validate(cfg, &d) < 0 || d.oom)
        goto oom;
    if (d.n) {
        /* in line order (a stable order for equal lines: insertion) */
        for (size_t i = 1; i < d.n; i++)
            for (size_t j = i; j > 0 && cmp_problem(&d.v[j - 1], &d.v[j]) > 0; j--) {
                struct problem t = d.v[j];
                d.v[j] = d.v[j - 1];
                d.v[j - 1] = t;
            }
        err_set(e, "%s", d.v[0].msg);
        if (problems) {
            problems->v = calloc(d.n, sizeof *problems->v);
            if (!problems->v)
                goto oom;
            for (size_t i = 0; i < d.n; i++) {
                problems->v[i] = d.v[i].msg;
                d.v[i].msg = NULL;
            }
            problems->n = d.n;
        }
        goto fail;
    }
    const char *w = inline_secret(cfg);
    struct stat st;
    if (w && stat(path, &st) == 0 && (st.st_mode & S_IROTH))
        snprintf(cfg->world_readable_inline, sizeof cfg->world_readable_inline, "%s", w);
    diag_free(&d);
    return cfg;
oom:
    err_set(e, "out of memory");
fail:
    diag_free(&d);
    free(text);
    config_free(cfg);
    return NULL;
}

struct config *config_load(const char *path, struct err *e)
{
    return config_load_all(path, NULL, e);
}

/* ---- check-config: the host ---------------------------------------------- */

/* `dir` exists as a writable directory, or can be created: its nearest
 * existing ancestor is a writable directory. 0, or -1 with e. */
static int check_dir(const char *dir, struct err *e)
{
    char p[PATH_MAX];
    if (!*dir || snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) {
        err_set(e, "bad directory name \"%s\"", dir);
        return -1;
    }
    for (;;) {
        struct stat st;
        if (stat(p, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                err_set(e, "%s is not a directory", p);
                return -1;
            }
            if (access(p, W_OK | X_OK) < 0) {
                err_set(e, "%s%s%s is not writable by this user: %s", strcmp(p, dir) ? dir : "",
                        strcmp(p, dir) ? " cannot be created: " : "", p, strerror(errno));
                return -1;
            }
            return 0;
        }
        if (errno != ENOENT) {
            err_set(e, "cannot use %s: %s", p, strerror(errno));
            return -1;
        }
        char *sl = strrchr(p, '/');
        if (!sl) { /* relative: the working directory */
            snprintf(p, sizeof p, ".");
        } else if (sl == p) {
            p[1] = '\0';
        } else {
            *sl = '\0';
        }
    }
}

static int check_file_writable(const char *path, struct err *e)
{
    if (access(path, F_OK) == 0) {
        if (access(path, W_OK) < 0) {
            err_set(e, "cannot write %s: %s", path, strerror(errno));
            return -1;
        }
        return 0;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *sl = strrchr(dir, '/');
    if (!sl)
        snprintf(dir, sizeof dir, ".");
    else if (sl == dir)
        dir[1] = '\0';
    else
        *sl = '\0';
    return check_dir(dir, e);
}

static void add_problem(struct strlist *l, size_t *n, const struct config *c, const void *sec,
                        const char *key, const char *msg)
{
    char m[1024];
    int line = config_key_line(c, sec, key);
    if (line)
        snprintf(m, sizeof m, "%s:%d: %s: %s", c->path, line, key, msg);
    else
        snprintf(m, sizeof m, "%s: [shipper] %s (default or environment): %s", c->path, key, msg);
    char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
    if (!nv)
        return;
    l->v = nv;
    if ((l->v[l->n] = strdup(m))) {
        l->n++;
        (*n)++;
    }
}

size_t config_check_paths(const struct config *c, struct strlist *problems)
{
    size_t n = 0;
    struct err e;
    const struct cfg_shipper *sh = &c->shipper;
    if (!sh->spool_only || sh->spool_dir[0])
        if (check_dir(sh->spool_dir, &e) < 0)
            add_problem(problems, &n, c, sh, "spool_dir", e.msg);
    if (check_dir(sh->state_dir, &e) < 0)
        add_problem(problems, &n, c, sh, "state_dir", e.msg);
    if (sh->log_file[0] && check_file_writable(sh->log_file, &e) < 0)
        add_problem(problems, &n, c, sh, "log_file", e.msg);
    return n;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    for (size_t si = 0; si < NS_ARRAY_LEN(sections); si++) {
        const struct section_desc *sd = &sections[si];
        void *slot = (char *)cfg + sd->cfg_off;
        if (sd->kind == SEC_ALWAYS) {
            free_section_values(sd, slot);
        } else if (sd->kind == SEC_OPTIONAL) {
            free_section_values(sd, *(void **)slot);
            free(*(void **)slot);
        } else {
            size_t n = *(size_t *)((char *)cfg + sd->count_off);
            void **arr = *(void ***)slot;
            for (size_t i = 0; i < n; i++) {
                free_section_values(sd, arr[i]);
                free(arr[i]);
            }
            free(arr);
        }
    }
    if (cfg->has_drop_re)
        regfree(&cfg->drop_re);
    if (cfg->has_keep_re)
        regfree(&cfg->keep_re);
    free(cfg->keylines);
    free(cfg->path);
    free(cfg);
}

static void write_help(FILE *f, const char *help)
{
    const char *p = help;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        fprintf(f, "# %.*s\n", (int)n, p);
        p += n + (nl ? 1 : 0);
    }
}

void config_write_template(FILE *f)
{
    fputs(
        "# nexus-shipper.conf: every key, its default and what it does.\n"
        "# Generated by `nexus-shipper config-template`; `nexus-shipper check-config` validates.\n"
        "# Values may use ${VAR} or ${VAR:-default}; any key can be overridden by the\n"
        "# environment as NEXUS_SHIPPER_<SECTION>_<KEY> (named sections:\n"
        "# NEXUS_SHIPPER_REMOTE_WRITE_<NAME>_<KEY>). Durations: 500ms, 30s, 5m, 1h, 7d;\n"
        "# a bare number other than 0 is refused (write 30s, not 30). Sizes: 64KiB,\n"
        "# 512MiB, 1GiB. Lists are comma-separated. A section that is absent\n"
        "# (commented out) switches its collectors or targets off.\n",
        f);
    /* Sections enabled in the shipped file: the ones a first run needs. */
    static const char *enabled[] = {"shipper", "remote_write", "nexus"};
    for (size_t si = 0; si < NS_ARRAY_LEN(sections); si++) {
        const struct section_desc *sd = &sections[si];
        bool on = false;
        for (size_t j = 0; j < NS_ARRAY_LEN(enabled); j++)
            on |= strcmp(enabled[j], sd->name) == 0;
        const char *c = on ? "" : "#";
        fputs("\n", f);
        write_help(f, sd->help);
        fprintf(f, "%s[%s]\n", c, sd->name);
        for (size_t i = 0; i < NS_ARRAY_LEN(keys); i++) {
            const struct key_desc *k = &keys[i];
            if (strcmp(k->section, sd->name) != 0)
                continue;
            fputs("\n", f);
            write_help(f, k->help);
            if (k->flags & REQUIRED)
                fprintf(f, "%s%s = %s\n", c, k->key, k->example ? k->example : "");
            else if (k->def && *k->def)
                fprintf(f, "#%s = %s\n", k->key, k->def);
            else
                fprintf(f, "#%s = %s\n", k->key, k->example ? k->example : "");
        }
    }
}

/* roff: backslashes doubled, a leading '.' or '\'' escaped */
static void roff_text(FILE *f, const char *t)
{
    bool bol = true;
    for (const char *p = t; *p; p++) {
        if (bol && (*p == '.' || *p == '\''))
            fputs("\\&", f);
        if (*p == '\\')
            fputs("\\e", f);
        else if (*p == '-')
            fputs("\\-", f);
        else
            fputc(*p, f);
        bol = *p == '\n';
    }
}

static const char *type_word(enum cfg_type t)
{
    switch (t) {
    case T_URL:
        return "URL";
    case T_FILE:
        return "file (its content is the secret)";
    case T_INT:
        return "integer";
    case T_BOOL:
        return "boolean";
    case T_DURATION:
        return "duration";
    case T_SIZE:
        return "size";
    case T_LIST:
        return "list";
    case T_LABELS:
        return "labels (name=value,...)";
    case T_REGEX:
        return "regular expression";
    case T_LEVEL:
        return "debug|info|warning|error";
    case T_CHOICE:
        return "choice";
    case T_PATH:
        return "file (must exist and be readable)";
    case T_SELECTOR:
        return "series selectors: {label=\"value\", label=~\"regex\"}, ...";
    case T_LABELNAMES:
        return "label names (a,b)";
    case T_HEADER:
        return "header (Name: value; repeatable)";
    default:
        return "string";
    }
}

void config_write_manpage(FILE *f, const char *version)
{
    fprintf(f, ".TH NEXUS\\-SHIPPER.CONF 5 \"\" \"nexus\\-shipper %s\" \"File Formats\"\n",
            version);
    fputs(".SH NAME\nnexus\\-shipper.conf \\- configuration of nexus\\-shipper\n"
          ".SH DESCRIPTION\n"
          "An INI file: \\fB[section]\\fR or \\fB[section NAME]\\fR headers, \\fBkey = value\\fR "
          "lines, comments starting with \\fB#\\fR or \\fB;\\fR.\n"
          "Values may use \\fB${VAR}\\fR and \\fB${VAR:\\-default}\\fR. Every key can be "
          "overridden by the environment as \\fBNEXUS_SHIPPER_\\fISECTION\\fB_\\fIKEY\\fR "
          "(\\fBNEXUS_SHIPPER_REMOTE_WRITE_\\fINAME\\fB_\\fIKEY\\fR for a named target).\n"
          "Durations: 500ms, 30s, 5m, 1h, 7d; a bare number other than 0 is refused "
          "(write 30s, not 30: Prometheus does the same). Sizes: 64KiB, 512MiB, 1GiB. Lists are "
          "comma\\-separated. A section that is absent switches its collectors or targets off.\n"
          "Errors are reported as \\fIFILE\\fB:\\fILINE\\fB: \\fImessage\\fR by "
          "\\fBnexus\\-shipper check\\-config\\fR (exit 2): every problem of the file, each at "
          "the line of its key, an unknown key with the nearest known one (or, for a key of "
          "Prometheus's remote_write configuration, the key that does its job here). Files named "
          "by the configuration (ca_file, cert_file, key_file, authfile, *_file secrets) must "
          "exist and be readable when it is loaded; check\\-config also checks that spool_dir "
          "and state_dir can be created and written and log_file written, as the user running "
          "it (run tolerates an unwritable spool by keeping batches in memory).\n"
          "This page is generated from the same table the parser uses.\n",
          f);
    for (size_t si = 0; si < NS_ARRAY_LEN(sections); si++) {
        const struct section_desc *sd = &sections[si];
        fprintf(f, ".SH [%s%s]\n", sd->name, sd->kind == SEC_NAMED ? " NAME" : "");
        roff_text(f, sd->help);
        fputs("\n", f);
        for (size_t i = 0; i < NS_ARRAY_LEN(keys); i++) {
            const struct key_desc *k = &keys[i];
            if (strcmp(k->section, sd->name) != 0)
                continue;
            fputs(".TP\n.B ", f);
            roff_text(f, k->key);
            fprintf(f, "\n(%s%s", type_word(k->type), k->flags & REQUIRED ? ", required" : "");
            if (k->def && *k->def) {
                fputs("; default \\fB", f);
                roff_text(f, k->def);
                fputs("\\fR", f);
            }
            if (k->type == T_CHOICE && k->choices) {
                fputs("; one of ", f);
                roff_text(f, k->choices);
            }
            fputs(")\n.br\n", f);
            roff_text(f, k->help);
            fputs("\n", f);
        }
    }
    fputs(".SH SEE ALSO\n.BR nexus\\-shipper (1)\n", f);
}
