/* nexus_docker_ports: the docker connector ports (the old exporter's docker_ports).
 *
 * GET /service/rest/v1/repositorySettings gives each docker repository's
 * docker.httpPort / docker.httpsPort. With probe_docker_ports, each port
 * gets GET <scheme>://<docker_host>:<port>/v2/ (no credentials). Labels
 * {repository, port, scheme}:
 *
 *   nexus_docker_port_up                      1 if the registry API answered: 200, or 401
 *                                             with a Docker-Distribution-Api-Version header
 *   nexus_docker_port_probe_duration_seconds  time of that GET
 *   nexus_docker_port_probe_status_code       its HTTP status, 0 = no answer
 *   nexus_docker_port_conflict                1 if another repository (or the other
 *                                             scheme) claims the same port, else 0
 *
 * docker_host is [nexus] docker_host, default the host of [nexus] url.
 * https ports are verified with [nexus] ca_file / insecure_skip_verify, as
 * a docker client would. State: one nexus_api, owned. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "log.h"
#include "nexus_api.h"

static const struct metric_desc m_up = {
    "nexus_docker_port_up", MT_GAUGE,
    "1 if GET /v2/ on the docker connector port answered like a registry (200, or 401 with "
    "Docker-Distribution-Api-Version), else 0.",
    ""};
static const struct metric_desc m_dur = {"nexus_docker_port_probe_duration_seconds", MT_GAUGE,
                                         "Time the GET /v2/ probe of the connector port took.",
                                         "seconds"};
static const struct metric_desc m_code = {
    "nexus_docker_port_probe_status_code", MT_GAUGE,
    "HTTP status of the GET /v2/ probe of the connector port; 0 when there was no answer.", ""};
static const struct probe_descs m_probe = {&m_up, &m_dur, &m_code};
static const struct metric_desc m_conflict = {
    "nexus_docker_port_conflict", MT_GAUGE,
    "1 if the connector port is also claimed by another repository or scheme, else 0.", ""};

static int probe(struct nexus_api *a, struct collect_ctx *ctx, const struct docker_conn *c,
                 const char *port, const char *scheme)
{
    struct buf u;
    struct http_response r;
    buf_init(&u, 0);
    http_response_init(&r);
    int rc = -1;
    bool v6 = strchr(a->docker_host, ':') != NULL;
    if (buf_printf(&u, "%s://%s%s%s:%d/v2/", scheme, v6 ? "[" : "", a->docker_host, v6 ? "]" : "",
                   c->port) < 0) {
        err_set(ctx->e, "out of memory");
        goto out;
    }
    if (nexus_probe(a, u.data, ctx->deadline_mono, &r, ctx->e, "nexus_docker_ports",
                    "docker port %d of %s", c->port, c->repository) < 0)
        goto out;
    char ver[64];
    bool up =
        r.status == 200 ||
        (r.status == 401 && http_header(&r, "Docker-Distribution-Api-Version", ver, sizeof ver));
    if (!up)
        log_debug("nexus_docker_ports: %s port %d (%s): %s", c->repository, c->port, u.data,
                  r.status ? "not a registry answer" : r.error);
    if (coll_set_probe(ctx, &m_probe, up, r.seconds, r.status, "repository", c->repository, "port",
                       port, "scheme", scheme, NULL) < 0)
        goto out;
    rc = 0;
out:
    http_response_free(&r);
    buf_free(&u);
    return rc;
}

static int collect(void *state, struct collect_ctx *ctx)
{
    struct nexus_api *a = state;
    struct docker_conn *v = NULL;
    size_t n = 0;
    int rc = -1;
    if (nexus_docker_connectors(a, ctx->deadline_mono, &v, &n, ctx->e) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        bool conflict = false;
        for (size_t k = 0; k < n; k++)
            if (k != i && v[k].port == v[i].port) {
                conflict = true;
                log_complain("nexus-docker-port-conflict",
                             "docker port %d is claimed by both %s and %s", v[i].port,
                             v[i].repository, v[k].repository);
            }
        char port[16];
        snprintf(port, sizeof port, "%d", v[i].port);
        const char *scheme = v[i].https ? "https" : "http";
        if (coll_set(ctx, &m_conflict, conflict ? 1 : 0, "repository", v[i].repository, "port",
                     port, "scheme", scheme, NULL) < 0)
            goto out;
        if (a->cfg->probe_docker_ports && probe(a, ctx, &v[i], port, scheme) < 0)
            goto out;
    }
    rc = 0;
out:
    docker_conns_free(v, n);
    return rc;
}

const struct collector collector_nexus_docker_ports = {
    .name = "nexus_docker_ports",
    .enabled = nexus_collector_enabled,
    .init = nexus_collector_init,
    .collect = collect,
    .destroy = nexus_collector_destroy,
};
