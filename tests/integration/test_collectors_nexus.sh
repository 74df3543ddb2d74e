#!/bin/bash
# The Nexus REST collectors end to end: `nexus-shipper once` against the
# Nexus simulator (tests/fakes/nexus_fake.py), delivering to a real
# Prometheus and a real VictoriaMetrics; every family is queried back and
# asserted by exact labels and values (setup: collectors_lib.sh).
#
#  1. healthy Nexus: status, health checks, blob stores + quota, repository
#     info/online/cleanup/probes/presence, docker ports (http + an https
#     connector), tasks (paged), sizes and docker tags over /v1/components;
#     `once --dry-run` passes `promtool check metrics`.
#  2. unhealthy Nexus: 503s, failing checks with awkward messages, an
#     unavailable blob store, violated quotas, offline/blocked repositories,
#     a docker port answering 503 and one dropping connections, tasks
#     FAILED/INTERRUPTED/CANCELED, a missing expected repository.
#  3. edge cases: tasks in every state (duplicate names, 3 pages), a docker
#     port claimed twice, a 401 that is not a registry, a closed https
#     connector, 10,000 components over 100 pages, tag ages.
#  4. connections are reused across requests and cycles (the daemon).
# Certificates: test_collectors_certs.sh; GitLab stale tags:
# test_collectors_gitlab.sh; faults: test_collectors_faults.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init collectors_nexus
. "$IT_DIR/collectors_lib.sh"

# =====================================================================
# 1. healthy
# =====================================================================
healthy_cycle
expect '{__name__=~"nexus_up|nexus_writable"}' "status" <<EOF
nexus_up 1
nexus_writable 1
EOF
checks=$($PY -c 'import json,sys; print("\n".join("nexus_health_check{check=\"%s\"} 1" % k for k in json.load(open(sys.argv[1]))["checks"]))' "$SCEN/healthy.json")
expect nexus_health_check "healthy checks" <<< "$checks"
assert_eq "" "$(q nexus_health_check_info)" "no check info when healthy"

expect '{__name__=~"nexus_blobstore_.*"}' "blob stores" <<'EOF'
nexus_blobstore_available_bytes{blobstore="default",type="File"} 107374182400
nexus_blobstore_available_bytes{blobstore="docker-store",type="File"} 53687091200
nexus_blobstore_available{blobstore="default",type="File"} 1
nexus_blobstore_available{blobstore="docker-store",type="File"} 1
nexus_blobstore_blobs{blobstore="default",type="File"} 12345
nexus_blobstore_blobs{blobstore="docker-store",type="File"} 4321
nexus_blobstore_quota_limit_bytes{blobstore="docker-store",type="File"} 10737418240
nexus_blobstore_quota_violation{blobstore="docker-store",type="File"} 0
nexus_blobstore_size_bytes{blobstore="default",type="File"} 9876543210
nexus_blobstore_size_bytes{blobstore="docker-store",type="File"} 53687091200
EOF
same_in_vm '{__name__=~"nexus_blobstore_.*"}'

expect '{__name__=~"nexus_repository_(info|online|cleanup_policies|present)"}' "repositories" <<'EOF'
nexus_repository_cleanup_policies{repository="docker-group"} 0
nexus_repository_cleanup_policies{repository="docker-hosted"} 2
nexus_repository_cleanup_policies{repository="docker-proxy"} 0
nexus_repository_cleanup_policies{repository="maven-central"} 0
nexus_repository_cleanup_policies{repository="maven-public"} 0
nexus_repository_cleanup_policies{repository="maven-releases"} 1
nexus_repository_cleanup_policies{repository="npm-proxy"} 0
nexus_repository_cleanup_policies{repository="raw-hosted"} 0
nexus_repository_info{blobstore="default",format="maven2",repository="maven-central",type="proxy"} 1
nexus_repository_info{blobstore="default",format="maven2",repository="maven-public",type="group"} 1
nexus_repository_info{blobstore="default",format="maven2",repository="maven-releases",type="hosted"} 1
nexus_repository_info{blobstore="default",format="npm",repository="npm-proxy",type="proxy"} 1
nexus_repository_info{blobstore="default",format="raw",repository="raw-hosted",type="hosted"} 1
nexus_repository_info{blobstore="docker-store",format="docker",repository="docker-group",type="group"} 1
nexus_repository_info{blobstore="docker-store",format="docker",repository="docker-hosted",type="hosted"} 1
nexus_repository_info{blobstore="docker-store",format="docker",repository="docker-proxy",type="proxy"} 1
nexus_repository_online{repository="docker-group"} 1
nexus_repository_online{repository="docker-hosted"} 1
nexus_repository_online{repository="docker-proxy"} 1
nexus_repository_online{repository="maven-central"} 1
nexus_repository_online{repository="maven-public"} 1
nexus_repository_online{repository="maven-releases"} 1
nexus_repository_online{repository="npm-proxy"} 1
nexus_repository_online{repository="raw-hosted"} 1
nexus_repository_present{repository="docker-hosted"} 1
nexus_repository_present{repository="maven-public"} 1
nexus_repository_present{repository="maven-releases"} 1
nexus_repository_present{repository="npm-proxy"} 1
EOF
same_in_vm '{__name__=~"nexus_repository_(info|online|cleanup_policies|present)"}'
repos="docker-group docker-hosted docker-proxy maven-central maven-public maven-releases npm-proxy raw-hosted"
want_up='' want_code='' want_dur=''
for r in $repos; do
    want_up+="nexus_repository_up{repository=\"$r\"} 1"$'\n'
    want_code+="nexus_repository_probe_status_code{repository=\"$r\"} 200"$'\n'
    want_dur+="nexus_repository_probe_duration_seconds{repository=\"$r\"}"$'\n'
done
expect nexus_repository_up "repository probes" <<< "${want_up%$'\n'}"
expect nexus_repository_probe_status_code "repository probe status" <<< "${want_code%$'\n'}"
assert_eq "$(LC_ALL=C sort <<< "${want_dur%$'\n'}")" "$(labels nexus_repository_probe_duration_seconds)" \
    "repository probe durations"
q nexus_repository_probe_duration_seconds | awk -v max="$(tscale 10)" '$2 <= 0 || $2 > max { exit 1 }' ||
    fail "probe durations out of range: $(q nexus_repository_probe_duration_seconds)"
# probes carry no credentials (repository URLs may point elsewhere)
reqs=$(curl -fsS "$NEXUS_URL/__control/requests")
$PY - "$reqs" <<'PY' || fail "repository probes sent credentials, or REST calls did not"
import json, sys
r = json.loads(sys.argv[1])
probes = [x for x in r if x["path"].startswith("/repository/")]
rest = [x for x in r if x["path"].startswith("/service/rest/")]
assert len(probes) == 8 and not any(x["has_auth"] for x in probes), probes
assert rest and all(x["user"] == "metrics" for x in rest), rest
PY

expect '{__name__=~"nexus_docker_port_(up|conflict|probe_status_code)"}' "docker ports" <<EOF
nexus_docker_port_conflict{port="$D0",repository="docker-hosted",scheme="http"} 0
nexus_docker_port_conflict{port="$D1",repository="docker-proxy",scheme="http"} 0
nexus_docker_port_conflict{port="$OK",repository="docker-hosted",scheme="https"} 0
nexus_docker_port_probe_status_code{port="$D0",repository="docker-hosted",scheme="http"} 401
nexus_docker_port_probe_status_code{port="$D1",repository="docker-proxy",scheme="http"} 401
nexus_docker_port_probe_status_code{port="$OK",repository="docker-hosted",scheme="https"} 401
nexus_docker_port_up{port="$D0",repository="docker-hosted",scheme="http"} 1
nexus_docker_port_up{port="$D1",repository="docker-proxy",scheme="http"} 1
nexus_docker_port_up{port="$OK",repository="docker-hosted",scheme="https"} 1
EOF
assert_eq "$(printf '%s\n' \
    "nexus_docker_port_probe_duration_seconds{port=\"$D0\",repository=\"docker-hosted\",scheme=\"http\"}" \
    "nexus_docker_port_probe_duration_seconds{port=\"$D1\",repository=\"docker-proxy\",scheme=\"http\"}" \
    "nexus_docker_port_probe_duration_seconds{port=\"$OK\",repository=\"docker-hosted\",scheme=\"https\"}" |
    LC_ALL=C sort)" "$(labels nexus_docker_port_probe_duration_seconds)" "docker probe durations"

state_sets "healthy tasks"
expect_ones '{__name__=~"nexus_task_.*"}' "tasks (3 tasks in pages of 2)" <<'EOF'
nexus_task_last_run_result{result="FAILED",task="Compact docker-store",type="blobstore.compact"} 1
nexus_task_last_run_result{result="OK",task="Cleanup service",type="repository.cleanup"} 1
nexus_task_last_run_result{result="never",task="Docker - Delete unused manifests and images",type="repository.docker.gc"} 1
nexus_task_last_run_timestamp_seconds{task="Cleanup service",type="repository.cleanup"} 1704070800.101
nexus_task_last_run_timestamp_seconds{task="Compact docker-store",type="blobstore.compact"} 1704074400
nexus_task_next_run_timestamp_seconds{task="Cleanup service",type="repository.cleanup"} 1704157200
nexus_task_next_run_timestamp_seconds{task="Compact docker-store",type="blobstore.compact"} 1704160800
nexus_task_next_run_timestamp_seconds{task="Docker - Delete unused manifests and images",type="repository.docker.gc"} 1704596400
nexus_task_state{state="WAITING",task="Cleanup service",type="repository.cleanup"} 1
nexus_task_state{state="WAITING",task="Compact docker-store",type="blobstore.compact"} 1
nexus_task_state{state="WAITING",task="Docker - Delete unused manifests and images",type="repository.docker.gc"} 1
EOF
assert_eq 2 "$($PY -c 'import json,sys; print(sum(1 for x in json.loads(sys.argv[1]) if x["path"] == "/service/rest/v1/tasks"))' "$reqs")" \
    "tasks read in 2 pages"


age=$(pyval "($TS - 1704103200000) / 1000") # every asset's blobCreated: 2024-01-01T10:00:00Z
expect '{__name__=~"nexus_repository_(components|assets|size_bytes|listing_truncated)|nexus_docker_tags|nexus_docker_image_.*_age_seconds"}' \
    "sizes and docker tags over REST" <<EOF
nexus_docker_image_newest_tag_age_seconds{image="team/app",repository="docker-hosted"} $age
nexus_docker_image_newest_tag_age_seconds{image="team/web",repository="docker-hosted"} $age
nexus_docker_image_oldest_tag_age_seconds{image="team/app",repository="docker-hosted"} $age
nexus_docker_image_oldest_tag_age_seconds{image="team/web",repository="docker-hosted"} $age
nexus_docker_tags{image="team/app",repository="docker-hosted"} 4
nexus_docker_tags{image="team/web",repository="docker-hosted"} 1
nexus_repository_assets{format="docker",repository="docker-hosted"} 5
nexus_repository_assets{format="docker",repository="docker-proxy"} 0
nexus_repository_assets{format="maven2",repository="maven-central"} 0
nexus_repository_assets{format="maven2",repository="maven-releases"} 4
nexus_repository_assets{format="npm",repository="npm-proxy"} 0
nexus_repository_assets{format="raw",repository="raw-hosted"} 1
nexus_repository_components{format="docker",repository="docker-hosted"} 5
nexus_repository_components{format="docker",repository="docker-proxy"} 0
nexus_repository_components{format="maven2",repository="maven-central"} 0
nexus_repository_components{format="maven2",repository="maven-releases"} 3
nexus_repository_components{format="npm",repository="npm-proxy"} 0
nexus_repository_components{format="raw",repository="raw-hosted"} 1
nexus_repository_listing_truncated{repository="docker-hosted"} 0
nexus_repository_listing_truncated{repository="docker-proxy"} 0
nexus_repository_listing_truncated{repository="maven-central"} 0
nexus_repository_listing_truncated{repository="maven-releases"} 0
nexus_repository_listing_truncated{repository="npm-proxy"} 0
nexus_repository_listing_truncated{repository="raw-hosted"} 0
nexus_repository_size_bytes{format="docker",repository="docker-hosted"} 7260
nexus_repository_size_bytes{format="docker",repository="docker-proxy"} 0
nexus_repository_size_bytes{format="maven2",repository="maven-central"} 0
nexus_repository_size_bytes{format="maven2",repository="maven-releases"} 268653
nexus_repository_size_bytes{format="npm",repository="npm-proxy"} 0
nexus_repository_size_bytes{format="raw",repository="raw-hosted"} 2097152
EOF
log_has "database collector is the scalable path" "REST size warning"


# the text format of the same data passes promtool
"$BIN" -c "$IT_TMP/healthy.conf" once --dry-run > "$IT_TMP/healthy.prom" 2> "$IT_TMP/healthy-dry.log" ||
    fail "once --dry-run failed"
promtool check metrics < "$IT_TMP/healthy.prom" || fail "promtool check metrics (healthy)"
assert_contains "$(cat "$IT_TMP/healthy.prom")" "# TYPE nexus_blobstore_size_bytes gauge" "dry-run TYPE line"

# =====================================================================
# 2. unhealthy
# =====================================================================
scenario "$IT_TMP/s_unhealthy.json"
run_once unhealthy "$IT_TMP/healthy.conf"
all_up "unhealthy: every collector still works"
expect '{__name__=~"nexus_up|nexus_writable"}' "status 503" <<EOF
nexus_up 0
nexus_writable 0
EOF
expect nexus_health_check "unhealthy checks" <<'EOF'
nexus_health_check{check="Available CPUs"} 1
nexus_health_check{check="Blob Stores Quota"} 0
nexus_health_check{check="Blob Stores Ready"} 0
nexus_health_check{check="Default Admin Credentials"} 1
nexus_health_check{check="File Blob Stores Path"} 1
nexus_health_check{check="File Descriptors"} 1
nexus_health_check{check="Lifecycle Phase"} 1
nexus_health_check{check="Read-Only Detector"} 0
nexus_health_check{check="Scheduler"} 1
nexus_health_check{check="Thread Deadlock Detector"} 1
nexus_health_check{check="Transactions"} 1
EOF
# no series from free text: the messages (quotes, newlines, tabs, backslashes,
# non-ASCII) are in the log, one line each, control characters as spaces
assert_eq "" "$(q '{__name__=~"nexus_health_check_.+"}')" "no nexus_health_check_info"
$PY - "$IT_TMP/unhealthy.log" "$SCEN/unhealthy.json" <<'PY' || fail "health check messages in the log"
import json, re, sys
log = open(sys.argv[1], encoding="utf-8").read()
n = 0
for name, c in json.load(open(sys.argv[2]))["checks"].items():
    line = 'nexus_health: Nexus health check "%s" is ' % name
    if c.get("healthy", True) is False:
        msg = c.get("message") or (c.get("error") or {}).get("message") or "no message"
        msg = re.sub(r"[\x00-\x1f\x7f]", " ", msg)
        assert (line + "unhealthy: " + msg + "\n") in log, (name, msg)
        n += 1
    else:
        assert line not in log, name
assert n >= 2, n
PY
expect '{__name__=~"nexus_blobstore_(available|quota_violation|quota_limit_bytes)"}' "blob stores: unavailable, quotas violated" <<'EOF'
nexus_blobstore_available{blobstore="default",type="File"} 0
nexus_blobstore_available{blobstore="docker-store",type="File"} 1
nexus_blobstore_available{blobstore="s3-store",type="S3"} 1
nexus_blobstore_quota_limit_bytes{blobstore="docker-store",type="File"} 10737418240
nexus_blobstore_quota_limit_bytes{blobstore="s3-store",type="S3"} 1000
nexus_blobstore_quota_violation{blobstore="docker-store",type="File"} 1
nexus_blobstore_quota_violation{blobstore="s3-store",type="S3"} 1
EOF
expect '{__name__=~"nexus_repository_(up|online|probe_status_code|present)"}' "repositories: offline, blocked, missing" <<'EOF'
nexus_repository_online{repository="docker-hosted"} 1
nexus_repository_online{repository="docker-proxy"} 1
nexus_repository_online{repository="maven-releases"} 0
nexus_repository_online{repository="npm-proxy"} 1
nexus_repository_online{repository="raw-hosted"} 1
nexus_repository_present{repository="docker-hosted"} 1
nexus_repository_present{repository="maven-public"} 0
nexus_repository_present{repository="maven-releases"} 1
nexus_repository_present{repository="npm-proxy"} 1
nexus_repository_probe_status_code{repository="docker-hosted"} 200
nexus_repository_probe_status_code{repository="docker-proxy"} 200
nexus_repository_probe_status_code{repository="maven-releases"} 503
nexus_repository_probe_status_code{repository="npm-proxy"} 502
nexus_repository_probe_status_code{repository="raw-hosted"} 200
nexus_repository_up{repository="docker-hosted"} 1
nexus_repository_up{repository="docker-proxy"} 1
nexus_repository_up{repository="maven-releases"} 0
nexus_repository_up{repository="npm-proxy"} 0
nexus_repository_up{repository="raw-hosted"} 1
EOF
log_has "expected repository maven-public is missing in Nexus"
expect '{__name__=~"nexus_docker_port_(up|probe_status_code|conflict)"}' "docker ports: 503 and dropped" <<EOF
nexus_docker_port_conflict{port="$D0",repository="docker-hosted",scheme="http"} 0
nexus_docker_port_conflict{port="$D1",repository="docker-proxy",scheme="http"} 0
nexus_docker_port_probe_status_code{port="$D0",repository="docker-hosted",scheme="http"} 503
nexus_docker_port_probe_status_code{port="$D1",repository="docker-proxy",scheme="http"} 0
nexus_docker_port_up{port="$D0",repository="docker-hosted",scheme="http"} 0
nexus_docker_port_up{port="$D1",repository="docker-proxy",scheme="http"} 0
EOF
state_sets "unhealthy tasks"
expect_ones '{__name__=~"nexus_task_.*"}' "tasks: failed, interrupted, canceled" <<'EOF'
nexus_task_last_run_result{result="CANCELED",task="Rebuild index",type="repository.rebuild-index"} 1
nexus_task_last_run_result{result="FAILED",task="Cleanup service",type="repository.cleanup"} 1
nexus_task_last_run_result{result="INTERRUPTED",task="Compact blob store",type="blobstore.compact"} 1
nexus_task_last_run_timestamp_seconds{task="Cleanup service",type="repository.cleanup"} 1704070800.101
nexus_task_last_run_timestamp_seconds{task="Compact blob store",type="blobstore.compact"} 1704074400
nexus_task_next_run_timestamp_seconds{task="Cleanup service",type="repository.cleanup"} 1704157200
nexus_task_state{state="RUNNING",task="Compact blob store",type="blobstore.compact"} 1
nexus_task_state{state="WAITING",task="Cleanup service",type="repository.cleanup"} 1
nexus_task_state{state="WAITING",task="Rebuild index",type="repository.rebuild-index"} 1
EOF
same_in_vm '{__name__=~"nexus_task_state|nexus_repository_up|nexus_docker_port_up|nexus_blobstore_available"}'
assert_eq "" "$(q '{__name__=~"nexus_gitlab_stale_tags|nexus_docker_tags"}')" "no docker tags, no stale tags"
"$BIN" -c "$IT_TMP/healthy.conf" once --dry-run > "$IT_TMP/unhealthy.prom" 2>/dev/null ||
    fail "once --dry-run (unhealthy) failed"
promtool check metrics < "$IT_TMP/unhealthy.prom" || fail "promtool check metrics (unhealthy)"

# =====================================================================
# 3. edge cases
# =====================================================================
scenario "$IT_TMP/s_edge.json"
run_once edge "$IT_TMP/healthy.conf"
all_up "edge: every collector up"
state_sets "edge tasks"
expect_ones '{__name__=~"nexus_task_.*"}' "tasks in every state, a duplicate name, 3 pages" <<'EOF'
nexus_task_last_run_result{result="CANCELED",task="Rebuild index",type="repository.rebuild-index"} 1
nexus_task_last_run_result{result="FAILED",task="Compact docker-store",type="blobstore.compact"} 1
nexus_task_last_run_result{result="INTERRUPTED",task="Reconcile",type="blobstore.reconcile"} 1
nexus_task_last_run_result{result="OK",task="Cleanup service",type="repository.cleanup"} 1
nexus_task_last_run_result{result="never",task="Cleanup service (t5)",type="repository.cleanup"} 1
nexus_task_last_run_timestamp_seconds{task="Cleanup service",type="repository.cleanup"} 1704070800
nexus_task_last_run_timestamp_seconds{task="Compact docker-store",type="blobstore.compact"} 1704072600.5
nexus_task_next_run_timestamp_seconds{task="Cleanup service",type="repository.cleanup"} 1704157200
nexus_task_state{state="DONE",task="Rebuild index",type="repository.rebuild-index"} 1
nexus_task_state{state="RUNNING",task="Compact docker-store",type="blobstore.compact"} 1
nexus_task_state{state="WAITING",task="Cleanup service (t5)",type="repository.cleanup"} 1
nexus_task_state{state="WAITING",task="Cleanup service",type="repository.cleanup"} 1
nexus_task_state{state="WAITING",task="Reconcile",type="blobstore.reconcile"} 1
EOF
expect '{__name__=~"nexus_docker_port_(up|probe_status_code|conflict)"}' \
    "docker ports: a port claimed twice, a 401 that is not a registry, a closed https port" <<EOF
nexus_docker_port_conflict{port="$CLOSED",repository="docker-group",scheme="https"} 0
nexus_docker_port_conflict{port="$D0",repository="docker-hosted",scheme="http"} 1
nexus_docker_port_conflict{port="$D0",repository="docker-proxy",scheme="http"} 1
nexus_docker_port_conflict{port="$D1",repository="docker-group",scheme="http"} 0
nexus_docker_port_probe_status_code{port="$CLOSED",repository="docker-group",scheme="https"} 0
nexus_docker_port_probe_status_code{port="$D0",repository="docker-hosted",scheme="http"} 401
nexus_docker_port_probe_status_code{port="$D0",repository="docker-proxy",scheme="http"} 401
nexus_docker_port_probe_status_code{port="$D1",repository="docker-group",scheme="http"} 401
nexus_docker_port_up{port="$CLOSED",repository="docker-group",scheme="https"} 0
nexus_docker_port_up{port="$D0",repository="docker-hosted",scheme="http"} 1
nexus_docker_port_up{port="$D0",repository="docker-proxy",scheme="http"} 1
nexus_docker_port_up{port="$D1",repository="docker-group",scheme="http"} 0
EOF
log_has "docker port $D0 is claimed by both docker-hosted and docker-proxy"
expect 'nexus_certificate_up{repository!=""}' "the closed https connector has no certificate" <<EOF
nexus_certificate_up{host="127.0.0.1",port="$CLOSED",repository="docker-group"} 0
EOF
expect '{__name__=~"nexus_repository_(components|assets|size_bytes|listing_truncated)",repository="maven-releases"}' \
    "10,000 components over 100 pages" <<EOF
nexus_repository_assets{format="maven2",repository="maven-releases"} 10000
nexus_repository_components{format="maven2",repository="maven-releases"} 10000
nexus_repository_listing_truncated{repository="maven-releases"} 0
nexus_repository_size_bytes{format="maven2",repository="maven-releases"} $((2048 * 10000 + 9999 * 10000 / 2))
EOF
reqs=$(curl -fsS "$NEXUS_URL/__control/requests")
assert_eq 100 "$($PY -c 'import json,sys; print(sum(1 for x in json.loads(sys.argv[1]) if x["path"] == "/service/rest/v1/components" and "repository=maven-releases" in x["query"]))' "$reqs")" \
    "maven-releases read in 100 pages"
expect '{__name__=~"nexus_docker_image_(newest|oldest)_tag_age_seconds",image="team/app"}' "tag ages" <<EOF
nexus_docker_image_newest_tag_age_seconds{image="team/app",repository="docker-hosted"} $(pyval "($TS - 1706745600000) / 1000")
nexus_docker_image_oldest_tag_age_seconds{image="team/app",repository="docker-hosted"} $(pyval "($TS - 1704103200000) / 1000")
EOF

# =====================================================================
# 4. connections are reused across requests and cycles (the daemon)
# =====================================================================
scenario "$IT_TMP/s_healthy.json"
conf daemon
sed -i 's/^\[shipper\]$/[shipper]\ninterval = 1s/' "$IT_TMP/daemon.conf"
t0=$(date +%s.%N) # (a request still sleeping in the fake from 4b may be recorded late: ignore it)
"$BIN" -c "$IT_TMP/daemon.conf" run 2> "$IT_TMP/daemon.log" &
daemon=$!
wait_for "[ \$(curl -fsS '$NEXUS_URL/__control/requests' | grep -c '\"path\": \"/service/rest/v1/blobstores\"') -ge 3 ]" 20 ||
    { kill -TERM "$daemon"; fail "daemon did not run 3 cycles"; }
kill -TERM "$daemon"
wait "$daemon" || fail "run did not exit 0 on SIGTERM (see $IT_TMP/daemon.log)"
$PY - "$(curl -fsS "$NEXUS_URL/__control/requests")" "$t0" <<'PY' || fail "connections not reused"
import json, sys
r = [x for x in json.loads(sys.argv[1]) if x["time"] >= float(sys.argv[2])]
for path in ("/service/rest/v1/blobstores", "/service/rest/v1/tasks", "/service/rest/v1/status/check"):
    hits = [x for x in r if x["path"] == path]
    ports = {x["client_port"] for x in hits}
    assert len(hits) >= 3 and len(ports) == 1, (path, len(hits), ports)
# 3 cycles of 2 task pages, the 3 repository-settings readers: one connection each
ports = {x["client_port"] for x in r if x["path"] == "/service/rest/v1/repositorySettings"}
assert len(ports) == 3, ports
print("reuse ok")
PY

it_log "ok"
