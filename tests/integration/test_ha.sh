#!/bin/bash
# An HA pair on one Nexus into VictoriaMetrics with deduplication (README
# "Running at scale"): two `nexus-shipper run` with identical labels
# (instance, external_labels) and the same 1 s interval, started half an
# interval apart, push to one real VictoriaMetrics started with
# -dedup.minScrapeInterval=1s; the Nexus fake is their source.
#
#  1. After dedup, VictoriaMetrics keeps one sample per series per interval:
#     exactly the last of the two shippers' samples in each 1 s window
#     (computed from the cycle timestamps both shippers log), while both
#     shippers delivered one sample per interval each (twice as many).
#  2. SIGTERM to the shipper whose samples VictoriaMetrics keeps (the later
#     phase in the window): the series goes on, from the other one's cycles,
#     without a gap longer than one interval plus the survivor's own
#     measured wake-up lateness (the run loop has no deliberate jitter:
#     cycles start on a fixed monotonic schedule and are stamped with the
#     wall clock when the loop wakes up).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init ha

start_victoriametrics -dedup.minScrapeInterval=1s
start_nexus_healthy
SERIES='nexus_blobstore_available{blobstore="default"}'

conf() { # NAME: the same labels and interval for both, a spool of its own
    cat >"$IT_TMP/$1.conf" <<CONF
[shipper]
interval = 1s
instance = nexus-ha
external_labels = site=a,cluster=nexus-ha
spool_dir = $IT_TMP/$1/spool
state_dir = $IT_TMP/$1
[remote_write vm]
url = $VM_URL/api/v1/write
min_backoff = 100ms
max_backoff = 1s
$(nexus_conf)
probe_repositories = false
probe_docker_ports = false
CONF
}
conf a
conf b
# cycles LOG: the wall-clock timestamps (ms) of the cycles that run stored
cycles() { sed -n 's/.*cycle [0-9]* at \([0-9]*\): [0-9]* samples stored.*/\1/p' "$1"; }
# wait_phase MS: sleep until the wall clock is MS (0-999) into a second
wait_phase() {
    local now
    now=$(( $(now_ms) % 1000 ))
    sleep "$(printf '0.%03d' $(( (${1:?} - now + 1000) % 1000 )))"
}
# circular distance of two phases (ms within the 1 s interval)
pdist() { local d=$(( (${1:?} - ${2:?} + 1000) % 1000 )); echo $(( d < 500 ? d : 1000 - d )); }

# ---- start A about 0.2 s into a second, B half an interval later
wait_phase 200
DEBUG=true "$BIN" -c "$IT_TMP/a.conf" run 2>"$IT_TMP/a.log" &
A_PID=$!
it_on_exit "stop_server $A_PID"
wait_cycles "$IT_TMP/a.log" 1 || fail "shipper A stored no cycle"
A_PHASE=$(( $(cycles "$IT_TMP/a.log" | head -n 1) % 1000 ))
# B's phase must differ from A's and stay clear of the 1 s dedup window's
# edges (where its own wake-up lateness would move a sample into the next
# window); a start lands wherever the process start-up puts it, so try again.
B_PID='' B_PHASE=''
for try in 1 2 3 4; do
    [ -n "$B_PID" ] && { stop_server "$B_PID"; rm -rf "${IT_TMP:?}/b"; }
    wait_phase $(( (A_PHASE + 500) % 1000 ))
    DEBUG=true "$BIN" -c "$IT_TMP/b.conf" run 2>"$IT_TMP/b.log" &
    B_PID=$!
    it_on_exit "stop_server $B_PID"
    wait_cycles "$IT_TMP/b.log" 1 || fail "shipper B stored no cycle"
    B_PHASE=$(( $(cycles "$IT_TMP/b.log" | head -n 1) % 1000 ))
    it_log "try $try: phases A ${A_PHASE} ms, B ${B_PHASE} ms into the second"
    [ "$(pdist "$A_PHASE" "$B_PHASE")" -ge 200 ] && [ "$(pdist "$B_PHASE" 0)" -ge 150 ] && break
    [ "$try" = 4 ] && fail "could not start B half an interval after A (phases $A_PHASE, $B_PHASE ms)"
done

# ---- both run for a few intervals, then the one whose samples are kept stops
sleep 4
if [ "$A_PHASE" -gt "$B_PHASE" ]; then
    STOP=a STOP_PID=$A_PID KEEP=b KEEP_PID=$B_PID
else
    STOP=b STOP_PID=$B_PID KEEP=a KEEP_PID=$A_PID
fi
it_log "stopping $STOP (its samples are the ones kept), $KEEP goes on"
kill -TERM "$STOP_PID"
wait "$STOP_PID" || fail "shipper $STOP did not exit 0 on SIGTERM"
# a send the SIGTERM aborted stays queued (lib.sh left_at_stop): deliver it
[ "$(left_at_stop "$IT_TMP/$STOP.log")" = 0 ] || "$BIN" -c "$IT_TMP/$STOP.conf" spool replay >/dev/null
STOP_LAST=$(cycles "$IT_TMP/$STOP.log" | tail -n 1)
n=$(cycles "$IT_TMP/$KEEP.log" | wc -l)
wait_cycles "$IT_TMP/$KEEP.log" $((n + 4)) || fail "shipper $KEEP stopped cycling after $STOP stopped"
KEEP_LAST=$(cycles "$IT_TMP/$KEEP.log" | tail -n 1)
# shellcheck disable=SC2016 # (evaluated by wait_for)
wait_for 'vm_flush && vm_export "$SERIES" | grep -q "$KEEP_LAST"' 10 || fail "$KEEP's cycle at $KEEP_LAST did not arrive"
stop_server "$KEEP_PID"

vm_flush
vm_export "$SERIES" >"$IT_TMP/export.json"
cycles "$IT_TMP/$STOP.log" >"$IT_TMP/stopped.ts"
cycles "$IT_TMP/$KEEP.log" >"$IT_TMP/kept.ts"
"$IT_PY" - "$IT_TMP/export.json" "$IT_TMP/stopped.ts" "$IT_TMP/kept.ts" "$STOP_LAST" "$KEEP_LAST" \
    "$(tscale_ms 250)" >"$IT_TMP/check.out" 2>&1 <<'PY' || { cat "$IT_TMP/check.out" >&2; fail "dedup / failover"; }
import json, sys
# a: the shipper stopped (the one whose samples were kept), b: the survivor
export, a_file, b_file, a_last, b_last, max_late = sys.argv[1:7]
a_last, b_last, max_late = int(a_last), int(b_last), int(max_late)
rows = [json.loads(l) for l in open(export) if l.strip()]
assert len(rows) == 1, "expected one series (identical labels on both shippers), got %d: %s" % (
    len(rows), [r["metric"] for r in rows])
labels = rows[0]["metric"]
assert labels.get("instance") == "nexus-ha" and labels.get("site") == "a", labels
got = [t for t in rows[0]["timestamps"] if t <= b_last]
a = [int(x) for x in open(a_file).read().split()]
b = [int(x) for x in open(b_file).read().split() if int(x) <= b_last]
first = max(a[0], b[0])          # both running from here ...
# 1. VictoriaMetrics keeps the last sample of each 1 s window of A and B together
want = {}
for t in a + b:
    w = t // 1000
    want[w] = max(want.get(w, 0), t)
want = sorted(want.values())
assert got == want, "kept samples differ from the last of each 1 s window:\n got  %s\n want %s\n A %s\n B %s" % (
    got, want, a, b)
both = [t for t in got if first <= t <= a_last]
sent = [t for t in a + b if first <= t <= a_last]
span_s = (a_last - first) / 1000
assert len(both) <= span_s + 2, "%d kept samples in %.1f s with both running" % (len(both), span_s)
# (both shipped about one sample per interval each; a cycle skipped under
# valgrind is allowed for)
assert len(sent) >= 1.5 * len(both), "the shippers stored only %d cycles for %d kept samples" % (
    len(sent), len(both))
print("both running: %d cycles shipped, %d samples kept in %.1f s" % (len(sent), len(both), span_s))
# 2. after the stopped shipper's (A's) last cycle the series goes on from B
assert a_last in got, "the stopped shipper's last cycle %d was not the one kept: %s" % (a_last, got)
late = max(y - x for x, y in zip(b, b[1:])) - 1000   # B's own wake-up lateness
assert late <= max_late, "the survivor's cycles drift %d ms from the 1 s schedule" % late
after = [t for t in got if t >= a_last]
assert len(after) >= 4, "fewer than 3 samples after the kept shipper stopped: %s" % after
gap = max(y - x for x, y in zip(after, after[1:]))
assert gap <= 1000 + late, "a gap of %d ms after the kept shipper stopped (interval 1000 ms, survivor late by up to %d ms): %s" % (
    gap, late, after)
print("after the kept shipper stopped: %d samples, longest gap %d ms (survivor's lateness %d ms)" % (
    len(after) - 1, gap, late))
PY
it_log "$(tr '\n' ';' <"$IT_TMP/check.out")"
