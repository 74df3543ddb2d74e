#!/bin/bash
# One pipeline for every producer (ship.h): the daemon at a 1 s interval with
# external labels, skopeo and cleanup runs during it (the daemon ships them)
# and after it (each run ships itself), all into a REAL Prometheus 2.42
# without an out-of-order window and a REAL Pushgateway:
#  - Prometheus ends with exactly the number of runs in
#    skopeo_operations_total and registry_cleanup_runs_total, every series
#    with the external labels and none without, no out-of-order sample, no
#    4xx from the write endpoint, an empty quarantine;
#  - the run events (registry_cleanup_last_run_timestamp_seconds,
#    skopeo_last_operation_timestamp_seconds) and the Pushgateway groups
#    carry the same identity;
#  - skopeo_active_operations is 1 at the daemon's /metrics while an inspect
#    hangs, 0 after, and a SIGKILLed run does not leave it stuck;
#  - [textfile]: a good file ships with the external labels, a malformed
#    one sets nexus_shipper_textfile_scrape_error and the others still ship;
#  - a cleanup on a spool_only site: its metrics are in the spool (and in
#    `spool export`), then in a receiver after `spool replay`;
#  - SIGTERM during a send to a receiver that answers after 3 s: delivered
#    before exit, nothing left in the spool;
#  - self-metrics are current: a healthy steady state reads 0 spooled
#    batches, last_send_timestamp_seconds is never 0.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init pipeline
if ! command -v skopeo >/dev/null || ! command -v docker-registry >/dev/null; then
	echo "SKIP: skopeo or docker-registry not installed (deploy/install-deps.sh)"
	exit 77
fi

start_prometheus
start_pushgateway
start_registry
start_nexus_healthy "$IT_TMP/pw"
registry_push "$IT_TMP/img:v1" "$REG/demo/app:v1"

LPORT=$(free_port)
TEXTDIR=$IT_TMP/textfile
mkdir -p "$TEXTDIR"
CONF=$IT_TMP/ns.conf
cat >"$CONF" <<EOF
$(it_conf interval="1s" instance="pipe-it" external_labels="env=ci,site=lab" state_dir="$IT_TMP/state" listen="127.0.0.1:$LPORT" shutdown_timeout="$(tdur 15s)")
[remote_write]
url = $PROM_URL/api/v1/write
[pushgateway]
url = $PGW_URL
$(nexus_conf)
[cleanup]
registry_url = $REG_URL
days_to_keep = 3650
[skopeo]
tls_verify = false
timeout = $(tdur 60s)
[textfile]
directory = $TEXTDIR
EOF
ns() { "$BIN" -c "$CONF" "$@"; }
last() { # last VALUE of an instant query at Prometheus (empty when none)
	promq "$PROM_URL" "$1" | awk '{print $NF}' | tail -1
}

# ---- textfiles: one good, one malformed -----------------------------------
printf '# HELP batch_job_last_success_seconds Last success.\n# TYPE batch_job_last_success_seconds gauge\nbatch_job_last_success_seconds{job_name="backup"} 1700000000\n' \
	>"$TEXTDIR/backup.prom"
printf 'broken_metric{a="1" 3\n' >"$TEXTDIR/broken.prom"

# ---- phase 1: the daemon ships everything -----------------------------------
DEBUG=true "$BIN" -c "$CONF" run 2>"$IT_TMP/run1.log" &
DPID=$!
wait_cycles "$IT_TMP/run1.log" 2 || fail "the daemon stored no cycles"
runs=0 cleanups=0
for i in $(seq 1 22); do
	if [ $((i % 4)) -eq 0 ]; then # two runs at once now and then
		ns skopeo inspect "docker://$REG/demo/app:v1" >/dev/null 2>>"$IT_TMP/sk1.log" &
		ns skopeo inspect "docker://$REG/demo/app:v1" >/dev/null 2>>"$IT_TMP/sk1.log" ||
			fail "skopeo inspect $i"
		wait $! || fail "skopeo inspect $i (concurrent)"
		runs=$((runs + 2))
	else
		ns skopeo inspect "docker://$REG/demo/app:v1" >/dev/null 2>>"$IT_TMP/sk1.log" ||
			fail "skopeo inspect $i"
		runs=$((runs + 1))
	fi
	if [ $((i % 8)) -eq 0 ]; then
		ns cleanup >/dev/null 2>>"$IT_TMP/cl1.log" || fail "cleanup during the daemon"
		cleanups=$((cleanups + 1))
	fi
done
# (DPID is the shell that runs the binary, maybe under valgrind: match any pid)
grep -qE "the running daemon \(pid [0-9]+\) ships it" "$IT_TMP/sk1.log" ||
	fail "skopeo runs do not hand their metrics to the daemon: $(tail -3 "$IT_TMP/sk1.log")"
assert_not_contains "$(cat "$IT_TMP/sk1.log")" "samples delivered" "no run shipped itself"
grep -qE "the running daemon \(pid [0-9]+\) ships it" "$IT_TMP/cl1.log" ||
	fail "cleanup runs do not hand their metrics to the daemon: $(tail -3 "$IT_TMP/cl1.log")"
# `once` beside a daemon is not a second writer: it wakes the daemon
out=$(ns once 2>&1) || fail "once beside the daemon: $out"
[[ $out =~ a\ daemon\ \(pid\ [0-9]+\)\ ships\ from ]] || fail "once does not defer to the daemon: $out"
wait_for "[ \"\$(last 'sum(skopeo_operations_total{instance=\"pipe-it\",operation=\"inspect\"})')\" = $runs ]" 15 ||
	fail "Prometheus has $(last 'sum(skopeo_operations_total{operation="inspect"})') inspect runs, expected $runs"

# the daemon's /metrics and the textfiles
M=http://127.0.0.1:$LPORT/metrics
curl -fsS "$M" >"$IT_TMP/m1.prom"
assert_contains "$(cat "$IT_TMP/m1.prom")" 'batch_job_last_success_seconds{env="ci",instance="pipe-it",job_name="backup",site="lab"} 1700000000' \
	"the good textfile ships with the external labels"
grep -q '^nexus_shipper_textfile_scrape_error{.*} 1$' "$IT_TMP/m1.prom" || fail "scrape_error is not 1 with a malformed file"
grep -q '^nexus_shipper_textfile_mtime_seconds{.*file="backup.prom".*}' "$IT_TMP/m1.prom" || fail "no mtime for backup.prom"
assert_contains "$(cat "$IT_TMP/run1.log")" "broken.prom: skipped" "the malformed file is named in the log"
wait_for "[ \"\$(last 'batch_job_last_success_seconds{env=\"ci\",site=\"lab\",job_name=\"backup\"}')\" = 1700000000 ]" 10 ||
	fail "the textfile sample did not reach Prometheus"
rm "$TEXTDIR/broken.prom"
wait_for "curl -fsS '$M' | grep -q '^nexus_shipper_textfile_scrape_error{.*} 0$'" 10 ||
	fail "scrape_error did not go back to 0"

# self-metrics are current: healthy steady state, nothing spooled, a real last send
grep -q '^nexus_shipper_last_send_timestamp_seconds{.*target="default".*} 0$' "$IT_TMP/m1.prom" &&
	fail "last_send_timestamp_seconds shipped as 0"
wait_for "[ \"\$(last 'max_over_time(nexus_shipper_spool_segments{instance=\"pipe-it\",target=\"default\"}[3s])')\" = 0 ]" 10 ||
	fail "a healthy steady state does not read 0 spooled batches: $(promq --range "$PROM_URL" 'nexus_shipper_spool_segments{target="default"}' | tail -5)"
[ -n "$(last 'nexus_shipper_requests_total{instance="pipe-it",target="default",code="204"}')" ] ||
	fail "nexus_shipper_requests_total{code=\"204\"} missing"

# ---- skopeo_active_operations: a hanging registry -----------------------------
HPORT=$(free_port)
"$IT_PY" - "$HPORT" >"$IT_LOGS/hang.log" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)   # accept, never answer
PY
HANG_PID=$!
_it_register "$HANG_PID" hang
wait_for "(exec 3<>/dev/tcp/127.0.0.1/$HPORT) 2>/dev/null" 5 || fail "hanging server did not start"
active() { curl -fsS "$M" | awk -F' ' '/^skopeo_active_operations\{.*operation="inspect"/ {print $2}'; }
ns skopeo inspect --timeout "$(tscale 6)" "docker://127.0.0.1:$HPORT/x/y:v1" >/dev/null 2>"$IT_TMP/hang1.log" &
HK=$!
wait_for "[ \"\$(active)\" = 1 ]" 5 || fail "skopeo_active_operations is not 1 while an inspect hangs: $(active)"
wait "$HK" && fail "the hanging inspect succeeded"
wait_for "[ \"\$(active)\" = 0 ]" 5 || fail "skopeo_active_operations stays at $(active) after the run"
# a SIGKILLed run does not leave it stuck
ns skopeo inspect --timeout "$(tscale 30)" "docker://127.0.0.1:$HPORT/x/y:v1" >/dev/null 2>&1 &
HK=$!
wait_for "[ \"\$(active)\" = 1 ]" 5 || fail "not 1 during the second hanging inspect"
kill -KILL "$HK"
wait "$HK" 2>/dev/null || true
pkill -KILL -f "skopeo.*127.0.0.1:$HPORT" 2>/dev/null || true
wait_for "[ \"\$(active)\" = 0 ]" 5 || fail "a SIGKILLed run left skopeo_active_operations at $(active)"
stop_server "$HANG_PID"

# ---- phase 2: no daemon, every run ships itself -------------------------------
kill -TERM "$DPID"
wait "$DPID" || fail "the daemon did not exit 0"
assert_contains "$(cat "$IT_TMP/run1.log")" "stopping" "daemon stop logged"
for i in 1 2 3; do
	ns skopeo inspect "docker://$REG/demo/app:v1" >/dev/null 2>>"$IT_TMP/sk2.log" &
	ns skopeo inspect "docker://$REG/demo/app:v1" >/dev/null 2>>"$IT_TMP/sk2.log" || fail "inspect (no daemon)"
	wait $! || fail "concurrent inspect (no daemon)"
	runs=$((runs + 2))
done
ns cleanup >/dev/null 2>>"$IT_TMP/cl2.log" &
ns cleanup >/dev/null 2>>"$IT_TMP/cl2.log" || true # one of the two may find the other's lock
wait $! || true
cleanups=$((cleanups + $(grep -c "cleanup: success:" "$IT_TMP/cl2.log" || true)))
assert_contains "$(cat "$IT_TMP/sk2.log")" "samples delivered" "runs without a daemon ship themselves"

# ---- what Prometheus holds -------------------------------------------------------
got=$(last 'sum(skopeo_operations_total{instance="pipe-it",operation="inspect",status="success"})')
assert_eq "$runs" "$got" "skopeo_operations_total = the number of successful inspect runs"
got=$(last 'sum(skopeo_operations_total{instance="pipe-it",operation="inspect",status="error"})')
assert_eq 1 "$got" "the timed-out inspect counted as an error (the SIGKILLed one never finished)"
got=$(last 'sum(registry_cleanup_runs_total{instance="pipe-it"})')
assert_eq "$cleanups" "$got" "registry_cleanup_runs_total = the number of cleanup runs"
assert_eq 0 "$(last 'count(skopeo_operations_total{env!="ci"}) or vector(0)')" "no skopeo series without the external labels"
assert_eq 0 "$(last 'count(registry_cleanup_runs_total{site!="lab"}) or vector(0)')" "no cleanup series without the external labels"
assert_eq 0 "$(last 'count({__name__=~"skopeo_.*|registry_cleanup_.*",instance=""}) or vector(0)')" "every run series has an instance"
[ -n "$(last 'registry_cleanup_last_run_timestamp_seconds{instance="pipe-it",env="ci"}')" ] ||
	fail "registry_cleanup_last_run_timestamp_seconds missing"
ts=$(last 'skopeo_last_operation_timestamp_seconds{instance="pipe-it",operation="inspect",status="success"}')
[ -n "$ts" ] && [ "${ts%.*}" -ge $(($(date +%s) - 300)) ] || fail "skopeo_last_operation_timestamp_seconds: '$ts'"
curl -fsS "$PROM_URL/metrics" >"$IT_TMP/prom.metrics"
ooo=$(awk '/^prometheus_tsdb_out_of_order_samples_total/ {s += $2} END {print s + 0}' "$IT_TMP/prom.metrics")
assert_eq 0 "$ooo" "prometheus_tsdb_out_of_order_samples_total"
bad=$(awk '/^prometheus_http_requests_total\{.*handler="\/api\/v1\/write"/ && /code="4/ {s += $2} END {print s + 0}' "$IT_TMP/prom.metrics")
assert_eq 0 "$bad" "4xx answers of the write endpoint"
q=$(find "$IT_TMP/spool/quarantine" -type f 2>/dev/null | wc -l)
assert_eq 0 "$q" "quarantine stays empty"
# the Pushgateway groups carry the same identity
pgw_metrics >"$IT_TMP/pgw.prom"
line=$(grep '^skopeo_operations_total{' "$IT_TMP/pgw.prom" | grep 'operation="inspect"' | grep 'status="success"' | head -1)
assert_contains "$line" 'env="ci"' "Pushgateway skopeo group has the external labels"
assert_contains "$line" 'job="skopeo"' "skopeo job group"
assert_eq "$runs" "${line##* }" "Pushgateway holds the cumulative count"
grep -q '^registry_cleanup_runs_total{.*env="ci".*job="registry_cleanup".*}' "$IT_TMP/pgw.prom" ||
	fail "no registry_cleanup group with the external labels at the Pushgateway"

# ---- a cleanup on a spool_only site ----------------------------------------------
SCONF=$IT_TMP/spoolonly.conf
cat >"$SCONF" <<EOF
[shipper]
instance = airgap-it
spool_dir = $IT_TMP/spool-air
state_dir = $IT_TMP/state-air
spool_only = true
[remote_write]
url = $PROM_URL/api/v1/write
[cleanup]
registry_url = $REG_URL
days_to_keep = 3650
EOF
"$BIN" -c "$SCONF" cleanup >/dev/null 2>"$IT_TMP/air.log" || fail "spool_only cleanup: $(cat "$IT_TMP/air.log")"
"$BIN" -c "$SCONF" spool ls >"$IT_TMP/air.ls"
awk 'index($1, "rw-") == 1 {s += $2} END {exit !(s >= 1)}' "$IT_TMP/air.ls" ||
	fail "the cleanup metrics are not in the spool: $(cat "$IT_TMP/air.ls")"
"$BIN" -c "$SCONF" spool export --to "$IT_TMP/air.nxs" >/dev/null || fail "spool export"
[ -s "$IT_TMP/air.nxs" ] || fail "empty export"
[ -z "$(last 'registry_cleanup_runs_total{instance="airgap-it"}')" ] || fail "spool_only sent something"
"$BIN" -c "$SCONF" spool replay --url "$PROM_URL/api/v1/write" >"$IT_TMP/air.replay" ||
	fail "spool replay: $(cat "$IT_TMP/air.replay")"
assert_eq 1 "$(last 'sum(registry_cleanup_runs_total{instance="airgap-it",status="success"})')" \
	"the spool_only cleanup reached Prometheus after spool replay"

# ---- SIGTERM during a send to a receiver that answers after 3 s ---------------------
start_fake RECV tests/fakes/receiver_fake.py
TCONF=$IT_TMP/term.conf
cat >"$TCONF" <<EOF
[shipper]
interval = 1s
instance = term-it
spool_dir = $IT_TMP/spool-term
state_dir = $IT_TMP/state-term
shutdown_timeout = $(tdur 20s)
[remote_write]
url = $RECV_URL/api/v1/write
timeout = $(tdur 30s)
$(nexus_conf)
EOF
curl -s -X POST -d '{"status": 204, "delay": 3}' "$RECV_URL/__control" >/dev/null
DEBUG=true "$BIN" -c "$TCONF" run 2>"$IT_TMP/term.log" &
TPID=$!
wait_cycles "$IT_TMP/term.log" 1 || fail "no cycle stored"
sleep 1 # the first send is in flight (each takes 3 s)
kill -TERM "$TPID"
wait "$TPID" || fail "exit code after SIGTERM"
assert_not_contains "$(cat "$IT_TMP/term.log")" "stay in the spool" "nothing left in the spool after SIGTERM"
left=$("$BIN" -c "$TCONF" spool ls | awk 'index($1, "rw-") == 1 {s += $2} END {print s + 0}')
assert_eq 0 "$left" "spool empty after SIGTERM during a 3 s send"
it_log ok
