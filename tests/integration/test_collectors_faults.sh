#!/bin/bash
# Faults of the Nexus and GitLab APIs (setup: collectors_lib.sh): malformed
# JSON, an HTML answer, wrong field types, 500s (with retries that recover
# and retries that give up), a dropped connection, answers slower than the
# collector deadline, bad credentials: the collector concerned is down
# (nexus_shipper_collector_up 0) with the endpoint and the JSON path in the
# log, nothing of it is shipped, and the other collectors still ship.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init collectors_faults
. "$IT_DIR/collectors_lib.sh"

# =====================================================================
# 4. faults
# =====================================================================
# 4a. malformed JSON, HTML, wrong types; 500s that the retries get through
scenario "$IT_TMP/s_fault1.json"
conf fault1 "" "" "" "" "team/app, 999"
run_once fault1 "$IT_TMP/fault1.conf"
assert_eq "$(up_list cleanup_runs=1 gitlab_stale_tags=1 nexus_blobstores=0 nexus_certificates=0 nexus_components=1 \
    nexus_docker_ports=0 nexus_health=0 nexus_repositories=0 nexus_status=1 nexus_tasks=0 process=1 skopeo_runs=1)" \
    "$(collectors_up)" "fault1: the collectors concerned are down, the others up"
log_has 'collector nexus_health failed: GET /service/rest/v1/status/check: answer is not JSON (truncated; Content-Type application/json;' \
    "malformed JSON names the endpoint"
log_has 'collector nexus_repositories failed: GET /service/rest/v1/repositorySettings: answer is not JSON (unexpected character; Content-Type text/html; starts with "<html><body>Proxy error' \
    "HTML answer names the endpoint"
log_has 'collector nexus_docker_ports failed: GET /service/rest/v1/repositorySettings: answer is not JSON'
log_has 'collector nexus_certificates failed: GET /service/rest/v1/repositorySettings: answer is not JSON'
log_has 'collector nexus_blobstores failed: GET /service/rest/v1/blobstores: [1].totalSizeInBytes: expected a number, got string' \
    "wrong type names endpoint and JSON path"
log_has 'collector nexus_tasks failed: GET /service/rest/v1/tasks (page 2): items[1].lastRun: expected a string, got number' \
    "wrong type on page 2 names the page and the path"
# nothing half-filled: store 0 was fine, store 1 broken -> no blob store sample at all
assert_eq "" "$(q '{__name__=~"nexus_blobstore_.*|nexus_health_.*|nexus_task_.*|nexus_repository_(info|up|online)"}')" \
    "failed collectors shipped nothing"
expect '{__name__=~"nexus_up|nexus_repository_components",repository=~"|maven-releases"}' "others still ship" <<'EOF'
nexus_repository_components{format="maven2",repository="maven-releases"} 3
nexus_up 1
EOF
assert_eq "$(printf '%s\n' 500 500 200 200)" \
    "$($PY -c 'import json,sys; [print(x["status"]) for x in json.loads(sys.argv[1]) if x["path"] == "/service/rest/v1/repositories"]' "$(curl -fsS "$NEXUS_URL/__control/requests")")" \
    "two 500s retried, then answered (nexus_components, then gitlab_stale_tags)"

# 4b. a permanent 500, a dropped connection, an answer past the deadline, a bad GitLab token
scenario "$IT_TMP/s_fault2.json"
conf fault2 "" "" "" "$IT_TMP/bad-token" "" 2s
run_once fault2 "$IT_TMP/fault2.conf"
assert_eq "$(up_list cleanup_runs=1 gitlab_stale_tags=0 nexus_blobstores=0 nexus_certificates=1 nexus_components=1 \
    nexus_docker_ports=1 nexus_health=0 nexus_repositories=1 nexus_status=1 nexus_tasks=0 process=1 skopeo_runs=1)" \
    "$(collectors_up)" "fault2: the collectors concerned are down, the others up"
log_has 'collector nexus_blobstores failed: GET /service/rest/v1/blobstores: HTTP 500 (after 3 tries)'
log_has 'collector nexus_health failed: GET /service/rest/v1/status/check: Server returned nothing (no headers, no data) (after 3 tries)'
log_has 'collector nexus_tasks failed: GET /service/rest/v1/tasks: Timeout was reached'
log_has 'collector gitlab_stale_tags failed: GET /api/v4/projects?simple=true&per_page=100&page=1: HTTP 401: check [gitlab] token_file'
tdur=$(q 'nexus_shipper_collector_duration_seconds{collector="nexus_tasks"}' | sed 's/.* //')
# (the 2 s deadline plus a scaled allowance)
awk -v d="$tdur" -v slack="$(tscale 1)" 'BEGIN { exit !(d >= 1.9 && d < 2 + slack) }' ||
    fail "nexus_tasks took $tdur s, not the 2 s deadline"
expect '{__name__=~"nexus_up|nexus_repository_present",repository=~"|maven-releases"}' "others still ship" <<'EOF'
nexus_repository_present{repository="maven-releases"} 1
nexus_up 1
EOF
assert_eq "" "$(q '{__name__=~"nexus_blobstore_.*|nexus_health_.*|nexus_task_.*|nexus_gitlab_stale_tags"}')" \
    "failed collectors shipped nothing"

# 4c. bad Nexus credentials: every Nexus collector down with a hint, the shipper still ships its own health
scenario "$IT_TMP/s_healthy.json"
conf fault3 "$IT_TMP/bad-password"
run_once fault3 "$IT_TMP/fault3.conf"
assert_eq "$(up_list cleanup_runs=1 gitlab_stale_tags=0 nexus_blobstores=0 nexus_certificates=0 nexus_components=0 \
    nexus_docker_ports=0 nexus_health=0 nexus_repositories=0 nexus_status=0 nexus_tasks=0 process=1 skopeo_runs=1)" \
    "$(collectors_up)" "fault3: bad credentials"
log_has 'collector nexus_blobstores failed: GET /service/rest/v1/blobstores: HTTP 401: check [nexus] username and password_file'
log_has 'collector nexus_status failed: GET '"$NEXUS_URL"'/service/rest/v1/status: HTTP 401: check [nexus] username and password_file'
assert_eq "" "$(q '{__name__=~"nexus_[^s].*"}')" "nothing but the shipper's own metrics"

it_log "ok"
