#!/bin/bash
# Self-metrics and metric semantics through the real daemon (issue 19),
# read back from /metrics of `run` (listen) against the Nexus fake and a
# receiver fake:
#  1. process_* are there and plausible: RSS > 1 MB and < 1 GB, start time
#     within the last minute, open fds > 3 and <= max_fds, CPU time >= 0;
#     nexus_shipper_config_last_reload_successful 1 with its timestamp
#     within the last minute; per collector last success (recent) and
#     failures_total (0); `promtool check metrics` passes.
#  2. every histogram (nexus_shipper_send_duration_seconds here) is written
#     per label set with its buckets in ascending le order, +Inf last,
#     cumulative, then _sum and _count; task state sets have exactly one 1.
#  3. the fake breaks /v1/status/check: nexus_health's failures_total
#     grows every cycle, collector_up is 0, its last success stays put;
#     fixed: up again, last success moves on, the counter keeps its count.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init selfmetrics
SCEN=$top_srcdir/tests/fakes/scenarios

start_fake RECV tests/fakes/receiver_fake.py
start_nexus_healthy "$IT_TMP/pw"
PORT=$(free_port)
cat >"$IT_TMP/s.conf" <<CONF
$(it_conf interval="1s" instance="self" collector_timeout="20s" listen="127.0.0.1:$PORT")
[remote_write]
url = $RECV_URL/api/v1/write
$(nexus_conf)
CONF
H=http://127.0.0.1:$PORT

DEBUG=true "$BIN" -c "$IT_TMP/s.conf" run 2>"$IT_LOGS/shipper.log" &
SPID=$!
_it_register "$SPID" shipper
# two stored cycles: the second one carries the first send's histogram
wait_cycles "$IT_LOGS/shipper.log" 2 20 || fail "no 2 cycles stored"
wait_for "curl -fsS $H/metrics | grep -q '^nexus_shipper_send_duration_seconds_count{.*} [1-9]'" 10 ||
    fail "no send recorded in nexus_shipper_send_duration_seconds"
curl -fsS "$H/metrics" >"$IT_TMP/m1.txt" || fail "GET /metrics"
promtool check metrics <"$IT_TMP/m1.txt" >"$IT_TMP/lint.txt" 2>&1 || {
    cat "$IT_TMP/lint.txt" >&2; fail "promtool check metrics refuses /metrics"; }

# v FILE SERIES: the value of the exact series (labels as written, instance first)
v() { awk -v s="$2" '$1 == s { print $2 }' "$1"; }

# ---- 1. process_*, reload status, per-collector success and failures -------
now=$(date +%s)
"$IT_PY" - "$IT_TMP/m1.txt" "$now" <<'PY' || fail "process / self-metrics implausible"
import re, sys
now = float(sys.argv[2])
vals = {}
for line in open(sys.argv[1]):
    m = re.match(r'([a-z_]+)\{(.*)\} (\S+)$', line.rstrip("\n"))
    if m:
        vals[(m.group(1), m.group(2))] = float(m.group(3))
def one(name, labels='instance="self"'):
    assert (name, labels) in vals, "missing %s{%s}" % (name, labels)
    return vals[(name, labels)]
rss = one("process_resident_memory_bytes")
assert 1 << 20 < rss < 1 << 30, rss
assert one("process_virtual_memory_bytes") >= rss
start = one("process_start_time_seconds")
assert now - 60 < start <= now + 1, (start, now)
fds, maxfds = one("process_open_fds"), one("process_max_fds")
assert 3 < fds <= maxfds, (fds, maxfds)
assert one("process_cpu_seconds_total") >= 0
assert one("nexus_shipper_config_last_reload_successful") == 1
ts = one("nexus_shipper_config_last_reload_success_timestamp_seconds")
assert now - 60 < ts <= now + 1 and ts >= start - 1, (ts, start, now)
colls = [l for (n, l) in vals if n == "nexus_shipper_collector_up"]
assert len(colls) >= 8, colls
for l in colls:
    assert vals[("nexus_shipper_collector_up", l)] == 1, l
    last = one("nexus_shipper_collector_last_success_timestamp_seconds", l)
    assert now - 60 < last <= now + 1, (l, last)
    assert one("nexus_shipper_collector_failures_total", l) == 0, l
assert 'collector="process",instance="self"' in colls
print("process: rss %.1f MiB, %d fds of %d, started %.1f s ago; %d collectors" %
      (rss / 1048576, fds, maxfds, now - start, len(colls)))
PY
grep -q '^# TYPE nexus_shipper_collector_failures_total counter$' "$IT_TMP/m1.txt" || fail "failures_total is not a counter"
grep -q '^# TYPE process_cpu_seconds_total counter$' "$IT_TMP/m1.txt" || fail "process_cpu_seconds_total is not a counter"
it_log "1. process_*, reload status, collector success/failures: ok"

# ---- 2. histogram order, state sets ------------------------------------------
"$IT_PY" - "$IT_TMP/m1.txt" <<'PY' || fail "histogram or state-set layout"
import math, re, sys
lines = [l.rstrip("\n") for l in open(sys.argv[1])]
hists = [l.split()[2] for l in lines if l.startswith("# TYPE ") and l.endswith(" histogram")]
assert "nexus_shipper_send_duration_seconds" in hists, hists
def labels(s):
    return re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', s or "")
for h in hists:
    seq = []  # (kind, labels without le, le)
    for l in lines:
        m = re.match(r'(%s)(_bucket|_sum|_count)(?:\{(.*)\})? (\S+)$' % re.escape(h), l)
        if m:
            ls = labels(m.group(3))
            le = [v for k, v in ls if k == "le"]
            rest = tuple((k, v) for k, v in ls if k != "le")
            seq.append((m.group(2), rest, le[0] if le else None, float(m.group(4))))
    assert seq, h
    i, keys = 0, []
    while i < len(seq):
        key = seq[i][1]
        block = []
        keys.append(key)
        while i < len(seq) and seq[i][1] == key:
            block.append(seq[i]); i += 1
        kinds = [k for k, _, _, _ in block]
        nb = kinds.count("_bucket")
        assert kinds == ["_bucket"] * nb + ["_sum", "_count"], (h, key, kinds)
        les = [float(le) for _, _, le, _ in block[:nb]]
        assert les == sorted(les) and len(set(les)) == nb and math.isinf(les[-1]), (h, key, les)
        counts = [v for _, _, _, v in block[:nb]]
        assert counts == sorted(counts) and counts[-1] == block[-1][3], (h, key, counts)
        print("%s%s: %d buckets ascending, +Inf last" % (h, dict(key), nb))
    assert len(keys) == len(set(keys)), (h, "a label set's series are not together", keys)
# state sets: exactly one 1 per task
for fam, key in (("nexus_task_state", "state"), ("nexus_task_last_run_result", "result")):
    per = {}
    for l in lines:
        m = re.match(r'%s\{(.*)\} (\S+)$' % fam, l)
        if m:
            d = dict(labels(m.group(1)))
            per.setdefault((d["task"], d["type"]), []).append(float(m.group(2)))
    assert per, fam
    for t, vs in per.items():
        assert sorted(vs) == [0.0] * (len(vs) - 1) + [1.0] and len(vs) >= 6, (fam, t, vs)
PY
it_log "2. histograms in ascending le order per label set, state sets: ok"

# ---- 3. a collector that fails: its failure counter grows ---------------------
last0=$(v "$IT_TMP/m1.txt" 'nexus_shipper_collector_last_success_timestamp_seconds{collector="nexus_health",instance="self"}')
scen=$(curl -fsS "$NEXUS_URL/__control/scenario")
"$IT_PY" -c 'import json,sys; s=json.loads(sys.argv[1]); s.setdefault("faults",{})["/service/rest/v1/status/check"]={"malformed":True}; print(json.dumps(s))' \
    "$scen" >"$IT_TMP/broken.json"
curl -fsS -X POST --data-binary @"$IT_TMP/broken.json" "$NEXUS_URL/__control/scenario" >/dev/null
F='nexus_shipper_collector_failures_total{collector="nexus_health",instance="self"}'
fails() { curl -fsS "$H/metrics" | awk -v s="$F" '$1 == s { print $2 }'; }
wait_for "[ \"\$(fails)\" -ge 1 ]" 10 || fail "failures_total did not count the broken health check"
wait_for "[ \"\$(fails)\" -ge 3 ]" 10 || fail "failures_total did not grow with every failing cycle: $(fails)"
curl -fsS "$H/metrics" >"$IT_TMP/m2.txt"
assert_eq 0 "$(v "$IT_TMP/m2.txt" 'nexus_shipper_collector_up{collector="nexus_health",instance="self"}')" "nexus_health down"
assert_eq "$last0" "$(v "$IT_TMP/m2.txt" 'nexus_shipper_collector_last_success_timestamp_seconds{collector="nexus_health",instance="self"}')" \
    "last success stays while failing"
assert_eq 0 "$(v "$IT_TMP/m2.txt" 'nexus_shipper_collector_failures_total{collector="nexus_status",instance="self"}')" \
    "the other collectors do not count failures"
n2=$(v "$IT_TMP/m2.txt" "$F")
printf '%s' "$scen" | curl -fsS -X POST --data-binary @- "$NEXUS_URL/__control/scenario" >/dev/null
wait_for "curl -fsS $H/metrics | grep -qx 'nexus_shipper_collector_up{collector=\"nexus_health\",instance=\"self\"} 1'" 10 ||
    fail "nexus_health not up again"
curl -fsS "$H/metrics" >"$IT_TMP/m3.txt"
last3=$(v "$IT_TMP/m3.txt" 'nexus_shipper_collector_last_success_timestamp_seconds{collector="nexus_health",instance="self"}')
awk -v a="$last0" -v b="$last3" 'BEGIN { exit !(b > a) }' || fail "last success did not move on ($last0 -> $last3)"
n3=$(v "$IT_TMP/m3.txt" "$F")
[ "$n3" -ge "$n2" ] || fail "failures_total went down: $n2 -> $n3"
kill -TERM "$SPID"
wait "$SPID" || fail "run did not exit 0 on SIGTERM"
it_log "3. failures_total of nexus_health: 0 -> $n2 while broken, $n3 after; last success $last0 -> $last3"
