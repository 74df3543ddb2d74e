#!/bin/bash
# Durable delivery against real receivers:
#  1. a 20+ cycle outage of Prometheus and VictoriaMetrics: every sample
#     collected meanwhile arrives afterwards with its original timestamp
#     (counted exactly against the shipper's log of stored cycles);
#  2. an outage longer than Prometheus's head window (old timestamps via a
#     shifted clock): "out of bounds" is quarantined, counted under its own
#     reason and logged loudly; a Prometheus with out_of_order_time_window
#     and VictoriaMetrics accept the same replay;
#  3. a small spool_max_size: the oldest batches are dropped and the
#     counter tells exactly how many samples;
#  4. failed Pushgateway pushes are spooled, only the newest per group kept;
#  5. an upgrade with a full spool of the previous format (one .seg file per
#     batch): every batch is delivered, the files removed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init spool_outage
PY=/usr/bin/python3

# batches pending in a spool (from `spool ls`), targets starting with $3 (rw-)
start_prometheus
start_victoriametrics
start_nexus_healthy "$IT_TMP/pw"

logged_ts() { sed -n 's/.*cycle [0-9]* at \([0-9]*\): [0-9]* samples stored.*/\1/p' "$1" | sort -u; }
received_ts() { promq --range "$1" "nexus_up" | awk '{print $NF}' | sort -u; }

# ---- 1. outage of 20+ cycles -------------------------------------------
{
    printf '[shipper]\ninterval = 1s\ninstance = outage\nspool_dir = %s/spool1\nreplay_rate = 0\n' "$IT_TMP"
    printf '[remote_write prom]\nurl = %s/api/v1/write\nmin_backoff = 100ms\nmax_backoff = 1s\n' "$PROM_URL"
    printf '[remote_write vm]\nurl = %s/api/v1/write\nmin_backoff = 100ms\nmax_backoff = 1s\n' "$VM_URL"
    nexus_conf
} > "$IT_TMP/c1.conf"
DEBUG=true "$BIN" -c "$IT_TMP/c1.conf" run 2> "$IT_TMP/run1.log" &
SHIPPER=$!
wait_cycles "$IT_TMP/run1.log" 2 || fail "no cycles stored before the outage"
sleep 1
stop_server "$PROM_PID"
stop_server "$VM_PID"
it_log "receivers down"
sleep 22
restart_server prometheus
PROM_PID=$_IT_PID
restart_server victoriametrics
VM_PID=$_IT_PID
wait_for "[ \$(pending $IT_TMP/spool1 $IT_TMP/c1.conf) -eq 0 ]" 20 || fail "spool did not drain"
sleep 1.5
kill -TERM "$SHIPPER"
wait "$SHIPPER" || fail "run did not exit 0 on SIGTERM"
# a send the SIGTERM aborted stays queued (see left_at_stop): deliver it first
[ "$(left_at_stop "$IT_TMP/run1.log")" = 0 ] || "$BIN" -c "$IT_TMP/c1.conf" spool replay > /dev/null
logged=$(logged_ts "$IT_TMP/run1.log")
n=$(echo "$logged" | wc -l)
[ "$n" -ge 25 ] || fail "only $n cycles logged"
assert_eq "$logged" "$(received_ts "$PROM_URL")" "Prometheus has exactly the logged cycles ($n)"
vm_flush
assert_eq "$logged" "$(received_ts "$VM_URL")" "VictoriaMetrics has exactly the logged cycles ($n)"
assert_eq 0 "$(find "$IT_TMP/spool1/quarantine" -name '*.seg' | wc -l)" "nothing quarantined"
assert_contains "$(cat "$IT_TMP/run1.log")" "delivering again" "recovery logged"
it_log "outage: $n cycles, all delivered to both receivers"

# ---- 2. longer than Prometheus's head window ----------------------------
start_prometheus                      # prometheus-2: no out-of-order window
PROM2=$PROM_URL
PROM_CONFIG_EXTRA=$'storage:\n  tsdb:\n    out_of_order_time_window: 6h' start_prometheus
PROM3=$PROM_URL
rw_push "$PROM2/api/v1/write" 'head_marker{a="b"}' 1 "$(now_ms)" >/dev/null   # head is "now"
{
    printf '[shipper]\ninterval = 1s\ninstance = old\nspool_dir = %s/spool2\nspool_only = true\n' "$IT_TMP"
    nexus_conf
} > "$IT_TMP/c2.conf"
for i in 1 2 3; do   # three cycles stamped 3 hours ago, spooled (air-gapped style)
    NS_TEST_CLOCK_OFFSET_MS=$(( -3 * 3600 * 1000 - i * 60000 )) "$BIN" -c "$IT_TMP/c2.conf" once 2>/dev/null
done
old_n=$(pending "$IT_TMP/spool2" "$IT_TMP/c2.conf")
assert_eq 3 "$old_n" "three old batches spooled"
cp -a "$IT_TMP/spool2" "$IT_TMP/spool2b"
cp -a "$IT_TMP/spool2" "$IT_TMP/spool2c"
# into Prometheus without the window: refused as too old, quarantined, counted, logged
{
    printf '[shipper]\ninterval = 1s\ninstance = old\nspool_dir = %s/spool2\n' "$IT_TMP"
    printf '[remote_write]\nurl = %s/api/v1/write\n' "$PROM2"
    nexus_conf
} > "$IT_TMP/c2p.conf"
"$BIN" -c "$IT_TMP/c2p.conf" run 2> "$IT_TMP/run2.log" &
SHIPPER=$!
wait_for "[ \$(find '$IT_TMP/spool2/quarantine' -name '*.seg' 2>/dev/null | wc -l) -ge 3 ]" 2.5 ||
    fail "the old batches were not quarantined"
olds=$($PY - "$IT_TMP/spool2/quarantine" <<'PY'
import os, struct, sys
d = sys.argv[1]
print(sum(struct.unpack_from("<I", open(os.path.join(d, f), "rb").read(), 28)[0]
          for f in os.listdir(d) if f.endswith(".seg")))
PY
)
# the counter ships with a later cycle
dropped_oob() { promq "$PROM2" 'max(nexus_shipper_samples_total{outcome="dropped",reason="out_of_bounds"})' | awk '{print $2}'; }
# shellcheck disable=SC2016 # (evaluated by wait_for)
wait_for '[ "$(dropped_oob)" = "$olds" ]' 2.5 || true
kill -TERM "$SHIPPER"
wait "$SHIPPER"
assert_contains "$(cat "$IT_TMP/run2.log")" "out_of_order_time_window" "out-of-bounds logged loudly with the fix"
assert_eq 3 "$(find "$IT_TMP/spool2/quarantine" -name '*.seg' | wc -l)" "old batches quarantined"
assert_contains "$(grep -h "^reason:" "$IT_TMP"/spool2/quarantine/*.reason)" "out_of_bounds" "reason recorded"
assert_eq "$olds" "$(dropped_oob)" "dropped{reason=out_of_bounds} counts the refused samples exactly"
# into Prometheus with out_of_order_time_window and into VictoriaMetrics: accepted
for pair in "$PROM3 spool2b" "$VM_URL spool2c"; do
    url=${pair% *}; sp=${pair#* }
    NEXUS_SHIPPER_SHIPPER_SPOOL_DIR=$IT_TMP/$sp "$BIN" -c "$IT_TMP/c2.conf" spool replay --url "$url/api/v1/write" > "$IT_TMP/replay.out"
    assert_contains "$(cat "$IT_TMP/replay.out")" "replayed 3 segment(s)" "old replay into $url"
done
vm_flush
for url in "$PROM3" "$VM_URL"; do
    c=$(promq --range "$url" 'nexus_up{instance="old"}' | wc -l)
    assert_eq 3 "$c" "3 old samples of nexus_up in $url"
done
it_log "long outage: out-of-bounds handled"

# ---- 3. spool_max_size: oldest dropped, counted exactly --------------------
start_victoriametrics                 # victoriametrics-2, then taken down
VM2=$VM_URL
VM2_PID=$VM_PID
{
    printf '[shipper]\ninterval = 1s\ninstance = caps\nspool_dir = %s/spool3\nspool_max_size = 12KiB\nreplay_rate = 0\n' "$IT_TMP"
    printf '[remote_write]\nurl = %s/api/v1/write\nmin_backoff = 100ms\nmax_backoff = 500ms\n' "$VM2"
    nexus_conf
} > "$IT_TMP/c3.conf"
stop_server "$VM2_PID"
DEBUG=true "$BIN" -c "$IT_TMP/c3.conf" run 2> "$IT_TMP/run3.log" &
SHIPPER=$!
wait_cycles "$IT_TMP/run3.log" 1 || fail "caps: no cycle stored"
sleep 7
restart_server victoriametrics-2
# (what is still spooled at SIGTERM would count as neither delivered nor dropped)
wait_for "[ \$(pending $IT_TMP/spool3 $IT_TMP/c3.conf) -eq 0 ]" 3 || fail "caps: spool did not drain"
sleep 1
kill -TERM "$SHIPPER"
wait "$SHIPPER"
[ "$(left_at_stop "$IT_TMP/run3.log")" = 0 ] || "$BIN" -c "$IT_TMP/c3.conf" spool replay > /dev/null
dropped_lines=$(grep -c "spool_max_size reached" "$IT_TMP/run3.log" || true)
[ "$dropped_lines" -ge 1 ] || fail "the cap never dropped anything"
vm_flush "$VM2"
recv=$(promq --range "$VM2" 'nexus_up{instance="caps"}' | awk '{print $NF}' | sort -u)
expect=$($PY - "$IT_TMP/run3.log" "$recv" <<'PY'
import re, sys
logged = {int(m.group(1)): int(m.group(2)) for m in
          re.finditer(r"cycle \d+ at (\d+): (\d+) samples stored", open(sys.argv[1]).read())}
recv = {int(x) for x in sys.argv[2].split()}
assert recv <= set(logged), "received a cycle that was never logged"
print(sum(n for ts, n in logged.items() if ts not in recv))
PY
)
got=$(promq "$VM2" 'max(nexus_shipper_samples_total{instance="caps",outcome="dropped",reason="spool_full"})' | awk '{print $2}')
[ "$expect" -gt 0 ] || fail "nothing was missing: the cap test proves nothing"
assert_eq "$expect" "$got" "spool_full counter = samples of the dropped cycles"
it_log "caps: $expect samples dropped and counted"

# ---- 4. Pushgateway pushes spooled, newest per group wins ---------------------
start_pushgateway
PGW_URL_SAVED=$PGW_URL
stop_server "$PGW_PID"
{
    printf '[shipper]\ninstance = pgw\nspool_dir = %s/spool4\n' "$IT_TMP"
    printf '[remote_write]\nurl = %s/api/v1/write\n' "$VM_URL"
    printf '[pushgateway]\nurl = %s\njob = batch\ntimeout = 2s\n' "$PGW_URL_SAVED"
    nexus_conf
} > "$IT_TMP/c4.conf"
"$BIN" -c "$IT_TMP/c4.conf" once --pushgateway 2>/dev/null || true
curl -s -X POST --data-binary @"$top_srcdir/tests/fakes/scenarios/unhealthy.json" "$NEXUS_URL/__control/scenario" >/dev/null
"$BIN" -c "$IT_TMP/c4.conf" once --pushgateway 2>/dev/null || true
assert_eq 1 "$(pending "$IT_TMP/spool4" "$IT_TMP/c4.conf" pushgateway)" "one spooled push per group"
restart_server pushgateway
"$BIN" -c "$IT_TMP/c4.conf" once 2>/dev/null      # next run replays the push
assert_contains "$(pgw_metrics "$PGW_URL_SAVED")" 'nexus_up{instance="pgw",job="batch"} 0' "newest push delivered"
assert_eq 0 "$(pending "$IT_TMP/spool4" "$IT_TMP/c4.conf" pushgateway)" "push removed after delivery"
assert_eq 0 "$(find "$IT_TMP/spool4/pushgateway" -type f | wc -l)" "its log removed too"
it_log "pushgateway ok"

# ---- 5. upgrade: a spool of the previous one-file-per-batch format ------------
# A log holding one record at offset 0 is byte for byte a segment file of
# the previous format; renamed to the old <µs>-<pid>-<n>.seg names, the
# spool is what an upgrade finds.
{
    printf '[shipper]\ninterval = 1s\ninstance = upgrade\nspool_dir = %s/spool5\nspool_only = true\n' "$IT_TMP"
    printf '[remote_write]\nurl = %s/api/v1/write\n' "$VM_URL"
    nexus_conf
} > "$IT_TMP/c5.conf"
for i in 1 2 3; do "$BIN" -c "$IT_TMP/c5.conf" once 2>/dev/null; sleep 0.02; done
n=0
for f in $(ls "$IT_TMP/spool5/rw-default" | sort); do
    mv "$IT_TMP/spool5/rw-default/$f" "$IT_TMP/spool5/rw-default/${f%.log}-$(printf '%04x' $n).seg"
    n=$((n + 1))
done
assert_eq 3 "$(find "$IT_TMP/spool5/rw-default" -name '*.seg' | wc -l)" "three old-format segment files"
assert_eq 3 "$(pending "$IT_TMP/spool5" "$IT_TMP/c5.conf")" "the new version reads them"
NEXUS_SHIPPER_SHIPPER_SPOOL_ONLY=false "$BIN" -c "$IT_TMP/c5.conf" once 2> "$IT_TMP/upgrade.log" || { cat "$IT_TMP/upgrade.log"; fail "once after the upgrade failed"; }
vm_flush
assert_eq 4 "$(promq --range "$VM_URL" 'nexus_up{instance="upgrade"}' | wc -l)" "3 old cycles + the new one delivered"
assert_eq 0 "$(find "$IT_TMP/spool5/rw-default" -type f | wc -l)" "old segment files removed once delivered"
assert_eq 0 "$(find "$IT_TMP/spool5/quarantine" -type f | wc -l)" "nothing quarantined"
it_log ok
