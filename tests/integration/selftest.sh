#!/bin/bash
# selftest.sh — proves the integration harness (lib.sh, promq.py, rw_push.py)
# against the real Prometheus, VictoriaMetrics and Pushgateway, without
# nexus-shipper: push with rw_push.py / curl, read back with promq.py and
# assert exact names, labels, values and timestamps.
# shellcheck disable=SC2119  # helpers called without optional args
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init selftest

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

start_prometheus
start_victoriametrics
start_pushgateway

# --- free_port / now_ms ------------------------------------------------------
p=$(free_port)
if ! [[ $p =~ ^[0-9]+$ ]] || [ "$p" -eq 0 ]; then fail "free_port printed '$p'"; fi

# --- remote write round trip: exact name, labels, value, timestamp ------------
ts=$(now_ms)
t1=$((ts + 1000)) t2=$((ts + 2000))
series='it_selftest_total{zone="a b",instance="h1",job="selftest",path="/x\"y\\z"}'
want_labels='{instance="h1",job="selftest",path="/x\"y\\z",zone="a b"}'
gauge='it_selftest_gauge{k="v"}'

for rx in prom vm; do
	if [ $rx = prom ]; then url=$PROM_URL; else url=$VM_URL; fi
	t0=$(date +%s%N)
	out=$(rw_push "$url/api/v1/write" "$series" 42.5 "$ts" "$gauge" 0.125 "$ts" "$gauge" -3 "$t1" "$gauge" 1e6 "$t2")
	assert_eq 204 "$out" "$rx: remote write status"
	[ $rx = vm ] && vm_flush
	got=$(promq --range "$url" it_selftest_total)
	vis=$(ms "$t0")
	assert_eq "it_selftest_total$want_labels 42.5 $ts" "$got" "$rx: raw sample round trip"
	assert_eq "it_selftest_gauge{k=\"v\"} 0.125 $ts
it_selftest_gauge{k=\"v\"} -3 $t1
it_selftest_gauge{k=\"v\"} 1000000 $t2" "$(promq --range "$url" it_selftest_gauge)" "$rx: several samples, one series"
	assert_eq "it_selftest_gauge{k=\"v\"} -3 $t1" \
		"$(promq --range "$url" 'it_selftest_gauge{k="v"}' --start "${t1}ms" --end "${t1}ms")" "$rx: --start/--end inclusive"
	assert_eq "it_selftest_total$want_labels 42.5" "$(promq "$url" it_selftest_total --time "${ts}ms")" "$rx: instant query"
	assert_eq "it_selftest_total$want_labels" "$(promq --series "$url" '{__name__=~"it_selftest_total"}')" "$rx: series"
	it_log "$rx: write -> query-back took ${vis} ms (including flush for vm)"
done

# count_over_time checks that the receivers did not invent samples.
for url in "$PROM_URL" "$VM_URL"; do
	assert_eq '{k="v"} 3' "$(promq "$url" 'count_over_time(it_selftest_gauge[1h])' --time "${t2}ms")" \
		"count_over_time at $url"
done

# --- staleness marker visibility ---------------------------------------------
rw_push "$PROM_URL/api/v1/write" 'it_stale{a="1"}' 1 "$((t2 + 1000))" 'it_stale{a="1"}' stale "$((t2 + 2000))" >/dev/null
rw_push "$VM_URL/api/v1/write" 'it_stale{a="1"}' 1 "$((t2 + 1000))" 'it_stale{a="1"}' stale "$((t2 + 2000))" >/dev/null
vm_flush
assert_eq "it_stale{a=\"1\"} 1 $((t2 + 1000))" "$(promq --range "$PROM_URL" it_stale)" "prom hides the staleness marker"
assert_eq "it_stale{a=\"1\"} 1 $((t2 + 1000))
it_stale{a=\"1\"} NaN $((t2 + 2000))" "$(promq --range "$VM_URL" it_stale)" "vm shows the staleness marker as NaN in range selectors"

out=$(vm_export it_stale)
[[ $out =~ \"values\":\[1,(null|NaN)\],\"timestamps\":\[$((t2 + 1000)),$((t2 + 2000))\] ]] ||
	fail "vm_export should show the staleness marker as null/NaN: $out"

# --- wait_for + vm_promq (flushes on each try) ----------------------------------
rw_push "$VM_URL/api/v1/write" 'it_late{a="1"}' 5 "$((t2 + 3000))" >/dev/null
wait_for "vm_promq --range \$VM_URL it_late | grep -q ' 5 $((t2 + 3000))\$'" 5

# --- Prometheus rejects out-of-order samples with 400 ------------------------
out=$(rw_push --expect-status 400 "$PROM_URL/api/v1/write" "$gauge" 9 "$ts")
assert_contains "$out" "400" "prom: out-of-order sample refused"

# --- Pushgateway ---------------------------------------------------------------
t0=$(date +%s%N)
curl -fsS -X PUT --data-binary @- "$PGW_URL/metrics/job/selftest/instance/h1" <<'TXT'
# HELP it_pgw_runs_total Runs.
# TYPE it_pgw_runs_total counter
it_pgw_runs_total{result="ok"} 7
TXT
m=$(pgw_metrics)
assert_contains "$m" 'it_pgw_runs_total{instance="h1",job="selftest",result="ok"} 7' "pushgateway round trip"
assert_contains "$m" 'push_time_seconds{instance="h1",job="selftest"}' "pushgateway push_time_seconds"
it_log "pushgateway: PUT -> /metrics took $(ms "$t0") ms"
code=$(printf 'it_pgw_ts 1 1000\n' | curl -sS -o /dev/null -w '%{http_code}' -X PUT --data-binary @- "$PGW_URL/metrics/job/ts")
assert_eq 400 "$code" "pushgateway refuses samples with timestamps"

# --- start_fake contract, wait_for, stop_server --------------------------------
cat >"$IT_TMP/demo_fake.py" <<'PY'
import argparse, http.server
ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--port-file")
ap.add_argument("--greeting", default="hi")
a = ap.parse_args()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = a.greeting.encode()
        self.send_response(200); self.send_header("Content-Length", str(len(b))); self.end_headers()
        self.wfile.write(b)
    def log_message(self, *args): pass
srv = http.server.HTTPServer(("127.0.0.1", a.port), H)
with open(a.port_file + ".tmp", "w") as f:
    f.write("%d\n" % srv.server_address[1])
import os; os.rename(a.port_file + ".tmp", a.port_file)
srv.serve_forever()
PY
start_fake DEMO "$IT_TMP/demo_fake.py" --greeting hello
assert_eq hello "$(curl -fsS "$DEMO_URL/")" "start_fake: fake answers at DEMO_URL"
wait_for "curl -fsS $DEMO_URL/ | grep -q hello" 5
stop_server "$DEMO_PID"
kill -0 "$DEMO_PID" 2>/dev/null && fail "stop_server left pid $DEMO_PID running"
if wait_for "curl -fsS $DEMO_URL/" 0.3 2>/dev/null; then fail "wait_for should have timed out"; fi

# --- assertion helpers fail as they should (in subshells) ------------------------
(assert_eq a b "expected failure") 2>/dev/null && fail "assert_eq did not fail"
(assert_contains abc x "expected failure") 2>/dev/null && fail "assert_contains did not fail"
assert_contains "abc" "b" "assert_contains positive"
it_log "all checks passed"
