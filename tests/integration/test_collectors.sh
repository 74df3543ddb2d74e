#!/bin/bash
# The REST collectors end to end: `nexus-shipper once` against the Nexus
# simulator (tests/fakes/nexus_fake.py, also playing GitLab), TLS endpoints
# with certificates made here with the openssl CLI (tests/fakes/tls_fake.py),
# delivering to a real Prometheus and a real VictoriaMetrics; every family
# is queried back and asserted by exact labels and values.
#
#  1. healthy Nexus: status, health checks, blob stores + quota, repository
#     info/online/cleanup/probes/presence, docker ports (http + an https
#     connector), tasks (paged), certificates (valid, expired, wrong name,
#     self-signed, closed port; exact notAfter), sizes and docker tags over
#     /v1/components, stale tags against GitLab; `once --dry-run` passes
#     `promtool check metrics`.
#  2. unhealthy Nexus: 503s, failing checks with awkward messages, an
#     unavailable blob store, violated quotas, offline/blocked repositories,
#     a docker port answering 503 and one dropping connections, tasks
#     FAILED/INTERRUPTED/CANCELED, a missing expected repository.
#  3. edge cases: tasks in every state (duplicate names, 3 pages), a docker
#     port claimed twice, a 401 that is not a registry, a closed https
#     connector, 10,000 components over 100 pages, GitLab paging by Link
#     only over 2 pages of projects and branches, an image whose project is gone.
#  4. faults: malformed JSON, an HTML answer, wrong field types, 500s (with
#     retries that recover and retries that give up), a dropped connection,
#     answers slower than the collector deadline, bad credentials: the
#     collector concerned is down (nexus_shipper_collector_up 0) with the
#     endpoint and the JSON path in the log, nothing of it is shipped, and
#     the other collectors still ship.
#  5. certificates as Nexus sees them (source = nexus, /v1/security/ssl).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init collectors
getent hosts localhost >/dev/null || fail "localhost does not resolve here (no /etc/hosts?): the TLS endpoints are checked by name"
top_srcdir=${top_srcdir:-$IT_TOP}
top_builddir=${top_builddir:-$IT_TOP/_build}
BIN=${NEXUS_SHIPPER:-$top_builddir/nexus-shipper}
SCEN=$top_srcdir/tests/fakes/scenarios
PY=$IT_PY

# ---- certificates: a CA, a valid leaf, an expired one, a wrong name, a self-signed one
PKI=$IT_TMP/pki
mkdir -p "$PKI/newcerts"
: > "$PKI/index.txt"
echo 1001 > "$PKI/serial"
cat > "$PKI/ca.cnf" <<CNF
[ca]
default_ca = tca
[tca]
dir = $PKI
database = $PKI/index.txt
new_certs_dir = $PKI/newcerts
serial = $PKI/serial
default_md = sha256
policy = pol
copy_extensions = copy
unique_subject = no
[pol]
commonName = supplied
CNF
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
ossl() { openssl "$@" >>"$IT_LOGS/openssl.log" 2>&1 || fail "openssl $1 failed (see $IT_LOGS/openssl.log)"; }
ossl req -x509 "${ec[@]}" -keyout "$PKI/ca.key" -out "$PKI/ca.pem" -subj "/CN=Test Root CA" \
    -days 3650 -set_serial 1
leaf() { # name CN SAN start end [selfsign]
    ossl req "${ec[@]}" -keyout "$PKI/$1.key" -out "$PKI/$1.csr" -subj "/CN=$2" -addext "subjectAltName=$3"
    if [ "${6:-}" = selfsign ]; then
        ossl ca -batch -config "$PKI/ca.cnf" -selfsign -keyfile "$PKI/$1.key" -in "$PKI/$1.csr" \
            -out "$PKI/$1.pem" -startdate "$4" -enddate "$5" -notext
    else
        ossl ca -batch -config "$PKI/ca.cnf" -cert "$PKI/ca.pem" -keyfile "$PKI/ca.key" \
            -in "$PKI/$1.csr" -out "$PKI/$1.pem" -startdate "$4" -enddate "$5" -notext
    fi
}
leaf valid localhost "DNS:localhost,IP:127.0.0.1" 20240101000000Z 20991231235959Z        # serial 1001
leaf expired localhost "DNS:localhost,IP:127.0.0.1" 20200101000000Z 20210101000000Z      # 1002
leaf wrong wrong.example.org "DNS:wrong.example.org" 20240101000000Z 20350101000000Z     # 1003
leaf self localhost "DNS:localhost" 20240101000000Z 20300101000000Z selfsign             # 1004

# ---- servers
start_prometheus
start_victoriametrics
start_fake TLSOK tests/fakes/tls_fake.py --cert "$PKI/valid.pem" --key "$PKI/valid.key"
start_fake TLSEXP tests/fakes/tls_fake.py --cert "$PKI/expired.pem" --key "$PKI/expired.key"
start_fake TLSWRONG tests/fakes/tls_fake.py --cert "$PKI/wrong.pem" --key "$PKI/wrong.key"
start_fake TLSSELF tests/fakes/tls_fake.py --cert "$PKI/self.pem" --key "$PKI/self.key"
CLOSED=$(free_port) # nothing listens there
start_fake NEXUS tests/fakes/nexus_fake.py --scenario "$SCEN/healthy.json"
ports=$(curl -fsS "$NEXUS_URL/__control/ports")
D0=$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["docker"][0])' "$ports")
D1=$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["docker"][1])' "$ports")
OK=$TLSOK_PORT EXP=$TLSEXP_PORT WRONG=$TLSWRONG_PORT SELF=$TLSSELF_PORT

# ---- scenarios (derived from the ready-made ones)
$PY - "$SCEN" "$IT_TMP" "$OK" "$CLOSED" <<'PY'
import copy, json, sys
scen, out, ok, closed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
healthy = json.load(open(scen + "/healthy.json"))
unhealthy = json.load(open(scen + "/unhealthy.json"))
def repo(s, name):
    return next(r for r in s["repositories"] if r["name"] == name)
def dump(name, s):
    json.dump(s, open("%s/%s.json" % (out, name), "w"), indent=1)

# 1. healthy, with an https connector served by tls_fake (valid certificate)
h = copy.deepcopy(healthy)
repo(h, "docker-hosted")["docker"]["httpsPort"] = ok
dump("s_healthy", h)
dump("s_unhealthy", unhealthy)

# 3. edge cases
e = copy.deepcopy(h)
e["page_sizes"] = {"tasks": 2, "components": 100}
e["tasks"] = [
    {"id": "t1", "name": "Cleanup service", "type": "repository.cleanup", "currentState": "WAITING",
     "lastRunResult": "OK", "lastRun": "2024-01-01T01:00:00.000+00:00",
     "nextRun": "2024-01-02T01:00:00.000Z"},
    {"id": "t2", "name": "Compact docker-store", "type": "blobstore.compact", "currentState": "RUNNING",
     "lastRunResult": "FAILED", "lastRun": "2024-01-01T03:30:00.500+02:00"},
    {"id": "t3", "name": "Rebuild index", "type": "repository.rebuild-index", "currentState": "DONE",
     "lastRunResult": "CANCELED"},
    {"id": "t4", "name": "Reconcile", "type": "blobstore.reconcile", "currentState": "WAITING",
     "lastRunResult": "INTERRUPTED"},
    {"id": "t5", "name": "Cleanup service", "type": "repository.cleanup", "currentState": "WAITING",
     "lastRunResult": None},
]
repo(e, "docker-hosted")["docker"] = {"httpPort": "$DOCKER0"}
repo(e, "docker-proxy")["docker"] = {"httpPort": "$DOCKER0"}               # same port: conflict
repo(e, "docker-group")["docker"] = {"httpPort": "$DOCKER1", "httpsPort": closed}
e["docker_listeners"] = [{"port": 0, "status": 401},
                         {"port": 0, "status": 401, "headers": {"Docker-Distribution-Api-Version": None}}]
e["generate"] = {"components": {"maven-releases": 10000}, "gitlab_projects": 150}
dh = e["components"]["docker-hosted"]
for tag in ("1.1.0", "b-149-0123456789abcdef", "feature-login-abcdef0"):
    dh.append({"name": "team/app", "version": tag,
               "assets": [{"path": "v2/team/app/manifests/" + tag, "fileSize": 100,
                           "blobCreated": "2024-02-01T00:00:00.000+00:00"}]})
for tag in ("main-abcdef1", "latest"):
    dh.append({"name": "team/removed", "version": tag,
               "assets": [{"path": "v2/team/removed/manifests/" + tag, "fileSize": 10}]})
app = next(p for p in e["gitlab"]["projects"] if p["path_with_namespace"] == "team/app")
app["branches"] = app["branches"] + ["b-%d" % i for i in range(150)]      # 153 branches: 2 pages
e["gitlab"]["link_only"] = True
dump("s_edge", e)

# 4. faults, first set: malformed JSON, HTML, wrong types, 500s that retries get through
f = copy.deepcopy(h)
f["blobstores"][1]["totalSizeInBytes"] = "lots"
f["tasks"].append({"name": "Broken", "type": "x", "lastRun": 17})
f["faults"] = {
    "/service/rest/v1/status/check": {"malformed": True},
    "/service/rest/v1/repositorySettings": {"body": "<html><body>Proxy error</body></html>",
                                            "content_type": "text/html"},
    "/service/rest/v1/repositories": {"fail_first_n": 2},
}
dump("s_fault1", f)
# second set: a permanent 500, a dropped connection, an answer past the deadline
f = copy.deepcopy(h)
f["faults"] = {
    "/service/rest/v1/blobstores": {"status": 500},
    "/service/rest/v1/status/check": {"close": True},
    "/service/rest/v1/tasks": {"delay": 4},
}
dump("s_fault2", f)
PY

printf 'metrics-secret\n' > "$IT_TMP/nexus-password"
printf 'wrong-secret\n' > "$IT_TMP/bad-password"
printf 'glpat-test-token\n' > "$IT_TMP/gitlab-token"
printf 'glpat-wrong\n' > "$IT_TMP/bad-token"
chmod 600 "$IT_TMP"/*-password "$IT_TMP"/*-token

# conf NAME [extra lines for [nexus]] [[certificates] source] [gitlab token file] [gitlab projects] [collector_timeout]
conf() {
    cat > "$IT_TMP/$1.conf" <<CONF
[shipper]
instance = ci
spool_dir = $IT_TMP/spool
state_dir = $IT_TMP
collector_timeout = ${7:-20s}
[remote_write prom]
url = $PROM_URL/api/v1/write
[remote_write vm]
url = $VM_URL/api/v1/write
[nexus]
url = $NEXUS_URL
username = metrics
password_file = ${2:-$IT_TMP/nexus-password}
ca_file = $PKI/ca.pem
expected_repositories = maven-releases, docker-hosted, npm-proxy, maven-public
[certificates]
source = ${3:-tls}
endpoints = ${4:-localhost:$OK, localhost:$EXP, localhost:$WRONG, localhost:$SELF, 127.0.0.1:$CLOSED}
[gitlab]
url = $NEXUS_URL
token_file = ${5:-$IT_TMP/gitlab-token}
projects = ${6:-}
CONF
}

scenario() { # FILE: replace the fake's scenario
    curl -fsS -X POST --data-binary @"$1" "$NEXUS_URL/__control/scenario" >/dev/null ||
        fail "cannot set scenario $1"
    curl -fsS -X DELETE "$NEXUS_URL/__control/requests" >/dev/null
}

TS=
LOG=
run_once() { # NAME CONF: one cycle; sets TS (the cycle's timestamp) and LOG
    # --allow-partial: a failing collector is what several scenarios are about
    "$BIN" -c "$2" once --allow-partial > "$IT_TMP/$1.out" 2> "$IT_TMP/$1.log" || { cat "$IT_TMP/$1.log" >&2; fail "once ($1) failed"; }
    LOG=$(cat "$IT_TMP/$1.log")
    TS=$(sed -n 's/.*samples at timestamp \([0-9]*\) ms.*/\1/p' "$IT_TMP/$1.log")
    [ -n "$TS" ] || fail "no cycle timestamp in $IT_TMP/$1.log"
    it_log "$1: cycle at $TS"
}

# q SELECTOR [URL]: this cycle's samples of SELECTOR as 'name{labels} value',
# instance="ci" left out, sorted (byte order).
q() {
    promq --range "${2:-$PROM_URL}" "$1" --start "${TS}ms" --end "${TS}ms" |
        sed -e "s/ $TS\$//" -e 's/,instance="ci"//' -e 's/{instance="ci",/{/' -e 's/{instance="ci"}//' |
        LC_ALL=C sort
}
# qv SELECTOR: like q, on VictoriaMetrics (flushed first)
qv() { vm_flush; q "$1" "$VM_URL"; }
# expect SELECTOR MSG <<< EXPECTED: exact comparison (both sides sorted)
expect() {
    local want
    want=$(LC_ALL=C sort)
    assert_eq "$want" "$(q "$1")" "$2"
}
# labels SELECTOR: the series of this cycle without their values
labels() { q "$1" | sed 's/ [^ ]*$//'; }
# same_in_vm SELECTOR: VictoriaMetrics got exactly what Prometheus got
same_in_vm() { assert_eq "$(q "$1")" "$(qv "$1")" "$1: VictoriaMetrics = Prometheus"; }
# pyval EXPR: a float computed the way the shipper does, printed as promq prints it
pyval() { $PY -c "v = $1; print('%d' % v if v == int(v) else repr(v))"; }
collectors_up() { q nexus_shipper_collector_up; }
# ones SELECTOR: like q, without the 0-valued series (the rest of a state set)
ones() { q "$1" | grep -v ' 0$' || true; }
expect_ones() {
    local want
    want=$(LC_ALL=C sort)
    assert_eq "$want" "$(ones "$1")" "$2"
}
TASK_STATES="WAITING RUNNING RUNNING_STARTING RUNNING_BLOCKED RUNNING_CANCELED DONE unknown"
TASK_RESULTS="OK FAILED CANCELED INTERRUPTED never unknown"
# state_sets MSG: nexus_task_state and nexus_task_last_run_result of this
# cycle are state sets: every task has one series per known value, exactly one of them 1
state_sets() {
    $PY - "$(q nexus_task_state)" "$(q nexus_task_last_run_result)" "$TASK_STATES" "$TASK_RESULTS" <<'PY' ||
import re, sys
for text, key, values in ((sys.argv[1], "state", sys.argv[3].split()), (sys.argv[2], "result", sys.argv[4].split())):
    tasks = {}
    for line in text.splitlines():
        m = re.match(r'(\w+)\{(.*)\} (\S+)$', line)
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        t = (labels.pop("task"), labels.pop("type"))
        v = labels.pop(key)
        assert not labels, labels
        tasks.setdefault(t, {})[v] = m.group(3)
    assert tasks, "no tasks"
    for t, vals in tasks.items():
        assert sorted(vals) == sorted(values), (t, sorted(vals))
        assert sorted(vals.values()) == ["0"] * (len(values) - 1) + ["1"], (t, vals)
print("%d tasks" % len(tasks))
PY
        fail "$1: not state sets"
}
up_list() { # "name=0|1 ..." -> expected collector_up lines
    local a
    for a in "$@"; do printf 'nexus_shipper_collector_up{collector="%s"} %s\n' "${a%=*}" "${a#*=}"; done
}
log_has() { assert_contains "$LOG" "$1" "${2:-log}"; }

# =====================================================================
# 1. healthy
# =====================================================================
scenario "$IT_TMP/s_healthy.json"
conf healthy
"$BIN" -c "$IT_TMP/healthy.conf" check-config >/dev/null
run_once healthy "$IT_TMP/healthy.conf"

assert_eq "$(up_list cleanup_runs=1 gitlab_stale_tags=1 nexus_blobstores=1 nexus_certificates=1 nexus_components=1 \
    nexus_docker_ports=1 nexus_health=1 nexus_repositories=1 nexus_status=1 nexus_tasks=1 process=1 skopeo_runs=1)" \
    "$(collectors_up)" "healthy: every collector up"
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

expect '{__name__=~"nexus_certificate_(up|valid|expiry_timestamp_seconds)"}' "certificates (tls)" <<EOF
nexus_certificate_expiry_timestamp_seconds{host="127.0.0.1",issuer="Test Root CA",port="$OK",repository="docker-hosted",serial="1001",subject="localhost"} 4102444799
nexus_certificate_expiry_timestamp_seconds{host="localhost",issuer="Test Root CA",port="$EXP",serial="1002",subject="localhost"} 1609459200
nexus_certificate_expiry_timestamp_seconds{host="localhost",issuer="Test Root CA",port="$OK",serial="1001",subject="localhost"} 4102444799
nexus_certificate_expiry_timestamp_seconds{host="localhost",issuer="Test Root CA",port="$WRONG",serial="1003",subject="wrong.example.org"} 2051222400
nexus_certificate_expiry_timestamp_seconds{host="localhost",issuer="localhost",port="$SELF",serial="1004",subject="localhost"} 1893456000
nexus_certificate_up{host="127.0.0.1",port="$CLOSED"} 0
nexus_certificate_up{host="127.0.0.1",port="$OK",repository="docker-hosted"} 1
nexus_certificate_up{host="localhost",port="$EXP"} 1
nexus_certificate_up{host="localhost",port="$OK"} 1
nexus_certificate_up{host="localhost",port="$SELF"} 1
nexus_certificate_up{host="localhost",port="$WRONG"} 1
nexus_certificate_valid{host="127.0.0.1",port="$OK",repository="docker-hosted"} 1
nexus_certificate_valid{host="localhost",port="$EXP"} 0
nexus_certificate_valid{host="localhost",port="$OK"} 1
nexus_certificate_valid{host="localhost",port="$SELF"} 0
nexus_certificate_valid{host="localhost",port="$WRONG"} 0
EOF
same_in_vm '{__name__=~"nexus_certificate_(up|valid|expiry_timestamp_seconds)"}'
# the exact notAfter, as openssl reads it from the certificate files
for c in valid:$OK expired:$EXP wrong:$WRONG self:$SELF; do
    end=$(openssl x509 -in "$PKI/${c%:*}.pem" -noout -enddate | sed 's/notAfter=//')
    want=$(date -u -d "$end" +%s)
    got=$(q "nexus_certificate_expiry_timestamp_seconds{host=\"localhost\",port=\"${c#*:}\"}" | sed 's/.* //')
    assert_eq "$want" "$got" "notAfter of ${c%:*}"
done
expect nexus_certificate_expires_in_seconds "certificates: seconds left" <<EOF
nexus_certificate_expires_in_seconds{host="127.0.0.1",port="$OK",repository="docker-hosted"} $(pyval "4102444799 - $TS / 1000")
nexus_certificate_expires_in_seconds{host="localhost",port="$EXP"} $(pyval "1609459200 - $TS / 1000")
nexus_certificate_expires_in_seconds{host="localhost",port="$OK"} $(pyval "4102444799 - $TS / 1000")
nexus_certificate_expires_in_seconds{host="localhost",port="$SELF"} $(pyval "1893456000 - $TS / 1000")
nexus_certificate_expires_in_seconds{host="localhost",port="$WRONG"} $(pyval "2051222400 - $TS / 1000")
EOF
log_has "localhost:$EXP: certificate not valid: certificate has expired" "expired certificate logged"
log_has "localhost:$WRONG: certificate not valid: hostname mismatch" "wrong name logged"
log_has "localhost:$SELF: certificate not valid: self-signed certificate" "self-signed logged"
log_has "certificate of 127.0.0.1:$CLOSED: connect to 127.0.0.1:$CLOSED: Connection refused" "closed port logged"

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
expect '{__name__=~"nexus_gitlab_stale_tags|nexus_docker_image_gitlab_project_exists"}' "stale tags" <<'EOF'
nexus_docker_image_gitlab_project_exists{image="team/app",project="team/app",repository="docker-hosted"} 1
nexus_docker_image_gitlab_project_exists{image="team/web",project="team/web",repository="docker-hosted"} 1
nexus_gitlab_stale_tags{image="team/app",project="team/app",repository="docker-hosted"} 1
nexus_gitlab_stale_tags{image="team/web",project="team/web",repository="docker-hosted"} 0
EOF
same_in_vm '{__name__=~"nexus_gitlab_stale_tags|nexus_docker_tags|nexus_repository_size_bytes"}'
$PY - "$(curl -fsS "$NEXUS_URL/__control/requests")" <<'PY' || fail "GitLab requests"
import json, sys
r = [x for x in json.loads(sys.argv[1]) if x["path"].startswith("/api/v4/")]
assert r and all(x["has_token"] and not x["has_auth"] for x in r), r
paths = sorted(set(x["path"] for x in r))
# only the projects that have images: 101 (team/app) and 102 (team/web)
assert paths == ["/api/v4/projects", "/api/v4/projects/101/repository/branches",
                 "/api/v4/projects/101/repository/tags", "/api/v4/projects/102/repository/branches",
                 "/api/v4/projects/102/repository/tags"], paths
PY

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
assert_eq "$(up_list cleanup_runs=1 gitlab_stale_tags=1 nexus_blobstores=1 nexus_certificates=1 nexus_components=1 \
    nexus_docker_ports=1 nexus_health=1 nexus_repositories=1 nexus_status=1 nexus_tasks=1 process=1 skopeo_runs=1)" \
    "$(collectors_up)" "unhealthy: every collector still works"
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
assert_eq "$(up_list cleanup_runs=1 gitlab_stale_tags=1 nexus_blobstores=1 nexus_certificates=1 nexus_components=1 \
    nexus_docker_ports=1 nexus_health=1 nexus_repositories=1 nexus_status=1 nexus_tasks=1 process=1 skopeo_runs=1)" \
    "$(collectors_up)" "edge: every collector up"
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
expect '{__name__=~"nexus_docker_tags|nexus_gitlab_stale_tags|nexus_docker_image_gitlab_project_exists"}' \
    "stale tags: Link-only paging, a branch on page 2, a project that is gone" <<'EOF'
nexus_docker_image_gitlab_project_exists{image="team/app",project="team/app",repository="docker-hosted"} 1
nexus_docker_image_gitlab_project_exists{image="team/removed",project="team/removed",repository="docker-hosted"} 0
nexus_docker_image_gitlab_project_exists{image="team/web",project="team/web",repository="docker-hosted"} 1
nexus_gitlab_stale_tags{image="team/app",project="team/app",repository="docker-hosted"} 1
nexus_gitlab_stale_tags{image="team/removed",project="team/removed",repository="docker-hosted"} 2
nexus_gitlab_stale_tags{image="team/web",project="team/web",repository="docker-hosted"} 0
nexus_docker_tags{image="team/app",repository="docker-hosted"} 7
nexus_docker_tags{image="team/removed",repository="docker-hosted"} 2
nexus_docker_tags{image="team/web",repository="docker-hosted"} 1
EOF
expect '{__name__=~"nexus_docker_image_(newest|oldest)_tag_age_seconds",image="team/app"}' "tag ages" <<EOF
nexus_docker_image_newest_tag_age_seconds{image="team/app",repository="docker-hosted"} $(pyval "($TS - 1706745600000) / 1000")
nexus_docker_image_oldest_tag_age_seconds{image="team/app",repository="docker-hosted"} $(pyval "($TS - 1704103200000) / 1000")
EOF
$PY - "$reqs" <<'PY' || fail "GitLab paging"
import json, sys
r = [x for x in json.loads(sys.argv[1]) if x["path"].startswith("/api/v4/")]
def pages(path):
    return sorted(x["query"] for x in r if x["path"] == path)
assert pages("/api/v4/projects") == ["simple=true&per_page=100&page=1",
                                     "simple=true&per_page=100&page=2"], pages("/api/v4/projects")
assert pages("/api/v4/projects/101/repository/branches") == ["per_page=100&page=1", "per_page=100&page=2"]
PY

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
# configured [gitlab] projects: team/app is judged, team/web (not listed) is not; a missing id is logged
expect nexus_gitlab_stale_tags "stale tags with configured projects" <<'EOF'
nexus_gitlab_stale_tags{image="team/app",project="team/app",repository="docker-hosted"} 1
EOF
log_has "gitlab: project 999 not found"

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

# =====================================================================
# 5. certificates as Nexus sees them
# =====================================================================
conf nexus_certs "" nexus "static.example.org:443, unknown.example.org:8443"
run_once nexus_certs "$IT_TMP/nexus_certs.conf"
serial=$($PY -c 'import hashlib; print(int(hashlib.sha1(b"static.example.org:443").hexdigest().upper()[:12], 16))')
expect '{__name__=~"nexus_certificate_.*"}' "certificates (source = nexus)" <<EOF
nexus_certificate_expires_in_seconds{host="static.example.org",port="443"} $(pyval "1735689600 - $TS / 1000")
nexus_certificate_expiry_timestamp_seconds{host="static.example.org",issuer="Fake Test CA",port="443",serial="$serial",subject="static.example.org"} 1735689600
nexus_certificate_up{host="127.0.0.1",port="$OK",repository="docker-hosted"} 0
nexus_certificate_up{host="static.example.org",port="443"} 1
nexus_certificate_up{host="unknown.example.org",port="8443"} 0
EOF
assert_contains "$(curl -fsS "$NEXUS_URL/__control/requests")" '"query": "host=static.example.org&port=443"' \
    "asked Nexus with host and port"

# =====================================================================
# 6. connections are reused across requests and cycles (the daemon)
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
