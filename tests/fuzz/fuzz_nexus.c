/* libFuzzer target: the Nexus REST collectors on hostile answers (status,
 * status/check, blob stores and quota-status, repositories,
 * repositorySettings, tasks, components, security/ssl, the forwarded
 * /service/metrics/prometheus), with their paging and probes. Byte 0
 * picks the collector, byte 1 the configuration; the rest are the
 * server's answers (format and checks: rest_fuzz.h). */
#include "rest_fuzz.h"

static const char *const collectors[] = {
    "nexus_status",       "nexus_health",       "nexus_blobstores",
    "nexus_repositories", "nexus_tasks",        "nexus_components",
    "nexus_docker_ports", "nexus_certificates", "nexus_metrics",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > (1u << 20))
        return 0;
    size_t n = sizeof collectors / sizeof *collectors;
    rest_fuzz_run(collectors[data[0] % n], data[1], data + 2, size - 2);
    return 0;
}
