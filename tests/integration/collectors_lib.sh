# tests/integration/collectors_lib.sh — the setup the test_collectors_*.sh
# scripts share (sourced after lib.sh and it_init): a test PKI made with the
# openssl CLI (a CA; valid, expired, wrong-name and self-signed leaves, each
# served by tests/fakes/tls_fake.py), a real Prometheus and VictoriaMetrics,
# the Nexus simulator (also playing GitLab) with the scenarios derived from
# the ready-made ones ($IT_TMP/s_healthy.json, s_unhealthy, s_edge,
# s_fault1, s_fault2), the credential files, and the helpers:
#   conf NAME [...]        write $IT_TMP/NAME.conf (every collector on)
#   scenario FILE          switch the fake's scenario, forget its requests
#   run_once NAME CONF     one `once --allow-partial` cycle; sets TS and LOG
#   q / qv / expect / expect_ones / labels / same_in_vm / ones   query this cycle
#   state_sets, up_list, collectors_up, all_up, log_has, pyval
#   healthy_cycle          the healthy scenario, one cycle, every collector up
# shellcheck shell=bash
# shellcheck disable=SC2034
getent hosts localhost >/dev/null || fail "localhost does not resolve here (no /etc/hosts?): the TLS endpoints are checked by name"
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
start_fakes TLSOK tests/fakes/tls_fake.py --cert "$PKI/valid.pem" --key "$PKI/valid.key" \
    -- TLSEXP tests/fakes/tls_fake.py --cert "$PKI/expired.pem" --key "$PKI/expired.key" \
    -- TLSWRONG tests/fakes/tls_fake.py --cert "$PKI/wrong.pem" --key "$PKI/wrong.key" \
    -- TLSSELF tests/fakes/tls_fake.py --cert "$PKI/self.pem" --key "$PKI/self.key" \
    -- NEXUS tests/fakes/nexus_fake.py --scenario "$SCEN/healthy.json"
CLOSED=$(free_port) # nothing listens there
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
$(it_conf instance="ci" state_dir="$IT_TMP" collector_timeout="${7:-20s}")
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
# all_up MSG: every collector of this cycle is up
all_up() {
    assert_eq "$(up_list cleanup_runs=1 gitlab_stale_tags=1 nexus_blobstores=1 nexus_certificates=1 nexus_components=1 \
        nexus_docker_ports=1 nexus_health=1 nexus_repositories=1 nexus_status=1 nexus_tasks=1 process=1 skopeo_runs=1)" \
        "$(collectors_up)" "$1"
}
# healthy_cycle: the healthy scenario, $IT_TMP/healthy.conf (checked with
# check-config), one cycle (TS, LOG) with every collector up
healthy_cycle() {
    scenario "$IT_TMP/s_healthy.json"
    conf healthy
    "$BIN" -c "$IT_TMP/healthy.conf" check-config >/dev/null
    run_once healthy "$IT_TMP/healthy.conf"
    all_up "healthy: every collector up"
}
