/* The table of built-in collectors: adding one touches its own file in
 * collectors/ and this list, nothing else. Order = run order in a cycle:
 * the cheap status checks first, the listings that page last. */
#include "collector.h"

extern const struct collector collector_nexus_status;
extern const struct collector collector_nexus_health;
extern const struct collector collector_nexus_blobstores;
extern const struct collector collector_nexus_repositories;
extern const struct collector collector_nexus_docker_ports;
extern const struct collector collector_nexus_tasks;
extern const struct collector collector_nexus_certificates;
extern const struct collector collector_nexus_components;
extern const struct collector collector_gitlab_stale_tags;
extern const struct collector collector_skopeo_runs;
extern const struct collector collector_db_repositories;
extern const struct collector collector_db_blobstores;
extern const struct collector collector_db_docker;
extern const struct collector collector_db_cleanup_estimate;
extern const struct collector collector_nexus_metrics;
extern const struct collector collector_cleanup_runs;
extern const struct collector collector_textfile;
extern const struct collector collector_process;

const struct collector *const builtin_collectors[] = {
    &collector_nexus_status,       &collector_nexus_health,
    &collector_nexus_blobstores,   &collector_nexus_repositories,
    &collector_nexus_docker_ports, &collector_nexus_tasks,
    &collector_nexus_certificates, &collector_nexus_components,
    &collector_gitlab_stale_tags,  &collector_skopeo_runs,
    &collector_db_repositories,    &collector_db_blobstores,
    &collector_db_docker,          &collector_db_cleanup_estimate,
    &collector_nexus_metrics,      &collector_cleanup_runs,
    &collector_textfile,           &collector_process,
};
const size_t n_builtin_collectors = NS_ARRAY_LEN(builtin_collectors);
