/* config: nexus-shipper.conf (INI style) driven by one declarative table.
 *
 * The table in config.c lists every section and key with its type,
 * default, example and help text. From it come parsing, validation,
 * environment overrides (NEXUS_SHIPPER_<SECTION>_<KEY>, and
 * NEXUS_SHIPPER_<SECTION>_<NAME>_<KEY> for named sections), `${VAR}` /
 * `${VAR:-default}` expansion, loading of `*_file` secrets, and the
 * annotated default file printed by config_write_template().
 *
 * config_load() returns a fully validated configuration or NULL with
 * e->msg = "FILE:LINE: message" (or "environment NAME: message"), the
 * first problem in line order; config_load_all() also returns every other
 * one (parsing goes on after a bad line; a bad section header skips its
 * keys). The caller owns the result and frees it with config_free().
 *
 * Per-target filters: the [remote_write] keys keep_metrics, drop_metrics,
 * keep_series, drop_series and drop_labels are checked here (regexes,
 * selector.h) and kept as text; the sender builds each target's relabel
 * (delivery/relabel.h) from them. */
#ifndef NS_CONFIG_H
#define NS_CONFIG_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

struct cfg_keyline;

struct strlist {
    char **v;
    size_t n;
};

struct cfg_shipper {
    int64_t interval_ms;
    char *instance;
    struct strlist external_labels; /* "k=v" items, validated */
    char *spool_dir;
    uint64_t spool_max_size;
    int64_t spool_max_age_ms;
    bool spool_only;
    int64_t replay_rate; /* batches per second during replay, 0 = unlimited */
    int64_t shutdown_timeout_ms;
    int64_t outage_log_interval_ms; /* a failing target is summarised this often */
    char *state_dir;
    char *log_file;
    char *log_level;
    char *log_format;
    int64_t collector_timeout_ms;
    uint64_t buffer_max_size;
    char *drop_metrics;
    char *keep_metrics;
    struct strlist collector_intervals;     /* "collector=duration" items */
    int64_t collector_max_series;           /* default series limit of one collector */
    struct strlist collector_series_limits; /* "collector=N" items */
    struct strlist collector_timeouts;      /* "collector=duration" items */
    char *listen;
    char *archive_key_file; /* shared secret signing spool export archives */
    char *archive_key;      /* loaded from the file ("" when not set) */
};

struct cfg_remote_write {
    char *name; /* "" for the unnamed [remote_write] */
    int line;
    char *url;
    int64_t timeout_ms;
    char *basic_auth_user;
    char *basic_auth_password_file;
    char *basic_auth_password; /* loaded from the file */
    char *bearer_token_file;
    char *bearer_token; /* loaded from the file */
    char *tenant;
    char *ca_file;
    char *cert_file;
    char *key_file;
    bool insecure_skip_verify;
    struct strlist headers;      /* "Name: value" items (headers, then every header line) */
    struct strlist header_lines; /* `header = Name: value` lines, merged into headers */
    int64_t max_samples_per_send;
    int64_t min_backoff_ms;
    int64_t max_backoff_ms;
    /* per-target filtering: the sender builds a relabel (relabel.h) from these */
    char *keep_metrics;
    char *drop_metrics;
    char *keep_series;
    char *drop_series;
    struct strlist drop_labels;
};

struct cfg_pushgateway {
    int line;
    char *url;
    char *job;
    int64_t timeout_ms;
    char *basic_auth_user;
    char *basic_auth_password_file;
    char *basic_auth_password;
    char *ca_file;
    bool insecure_skip_verify;
};

struct cfg_nexus {
    int line;
    char *url;
    char *username;
    char *password_file;
    char *password;
    int64_t timeout_ms;
    char *ca_file;
    bool insecure_skip_verify;
    struct strlist expected_repositories;
    bool probe_repositories;
    bool probe_docker_ports;
    char *docker_host;    /* host of the docker connector ports (default: the url's host) */
    bool forward_metrics; /* forward /service/metrics/prometheus */
    int64_t components_max_pages;
};

struct cfg_certificates {
    int line;
    struct strlist endpoints; /* host:port items */
    char *source;             /* "tls" (connect with OpenSSL) or "nexus" (/v1/security/ssl) */
    int64_t timeout_ms;
    int64_t warn_days;
};

struct cfg_gitlab {
    int line;
    char *url;
    char *token_file;
    char *token;             /* loaded from the file */
    struct strlist projects; /* paths or ids; empty = every project the token sees */
    int64_t timeout_ms;
    char *ca_file;
    char *image_prefix; /* registry path prefix mapped to project paths */
};

struct cfg_database {
    int line;
    char *conninfo; /* libpq keyword/value string or URI */
    char *password_file;
    char *password; /* loaded from the file */
    int64_t statement_timeout_ms;
    int64_t connect_timeout_ms;
    int64_t top_images; /* docker images reported one by one; the rest summed as "_other" */
    int64_t stale_days; /* tags not downloaded for this long count as stale */
};

struct cfg_cleanup {
    int line;
    char *registry_url;
    char *username;
    char *password_file;
    char *password;
    int64_t days_to_keep;
    struct strlist protected_tags;     /* exact */
    struct strlist protected_patterns; /* plain substring match (strstr), not a glob */
    char *protected_regex;
    int64_t keep_last;
    bool keep_unknown_dates;
    char *container;
    char *registry_config;
    char *gc_command;
    char *pre_gc_command;
    char *post_gc_command;
    int64_t gc_timeout_ms; /* each gc command; 0 = no limit */
    char *storage_path;
    char *log_file;
    char *include_repositories;
    char *exclude_repositories;
    int64_t max_deletions;
    int64_t concurrency;
    int64_t timeout_ms;
    char *ca_file;
    bool insecure_skip_verify;
    struct strlist token_realm_hosts; /* plain-http token realms trusted with the credentials */
};

struct cfg_skopeo {
    int line;
    char *binary;
    int64_t timeout_ms;
    bool tls_verify;
    char *authfile;
    bool enable_metrics;
};

struct cfg_textfile {
    int line;
    char *directory; /* *.prom files (node_exporter's textfile convention) */
};

struct config {
    char *path;
    struct cfg_shipper shipper;   /* always present */
    struct cfg_remote_write **rw; /* [remote_write] / [remote_write NAME] */
    size_t n_rw;
    struct cfg_pushgateway *pushgateway; /* NULL when the section is absent */
    struct cfg_nexus *nexus;             /* NULL when the section is absent */
    struct cfg_certificates *certificates;
    struct cfg_gitlab *gitlab;
    struct cfg_database *database;
    struct cfg_cleanup *cleanup;
    struct cfg_skopeo *skopeo;
    struct cfg_textfile *textfile;
    /* derived */
    regex_t drop_re, keep_re;
    bool has_drop_re, has_keep_re;
    bool world_readable_secrets;
    /* the file is readable by every user and holds a secret itself (a
     * header, a URL or conninfo with a password): where, else "" */
    char world_readable_inline[48];
    /* where each key was set (FILE:LINE of later errors) */
    struct cfg_keyline *keylines;
    size_t n_keylines, cap_keylines;
};

struct config *config_load(const char *path, struct err *e);
/* The same, and every problem found (not only the first) is appended to
 * `problems` (may be NULL; the caller frees it with strv_free) as
 * "FILE:LINE: message" at the line of the key concerned (of the section
 * header for a missing key; "environment ..." for overrides), in line
 * order. An unknown key comes with a suggestion. */
struct config *config_load_all(const char *path, struct strlist *problems, struct err *e);
/* The line where `key` of section instance `sec` (&c->shipper, c->rw[i],
 * c->nexus, ...) was set, 0 if it was not set in the file. */
int config_key_line(const struct config *c, const void *sec, const char *key);
/* check-config's checks of the host: spool_dir and state_dir can be
 * created and written (nothing is created), log files can be written.
 * Appends "FILE:LINE: message" items to `problems`; returns how many. */
size_t config_check_paths(const struct config *c, struct strlist *problems);
void config_free(struct config *c);
/* Writes the annotated default configuration (every key, its help and
 * default) to `f`. */
void config_write_template(FILE *f);
/* Writes nexus-shipper.conf(5) in roff, from the same table. */
void config_write_manpage(FILE *f, const char *version);

#endif
