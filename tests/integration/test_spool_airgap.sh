#!/bin/bash
# Air-gapped sites: a site without a reachable receiver spools everything
# (spool_only), exports it to one archive, the archive is carried across,
# imported (twice: the second adds nothing; a damaged copy is refused),
# and replayed into an empty VictoriaMetrics and Prometheus, with the
# replay interrupted halfway and resumed. Every sample arrives once, with
# its original timestamp.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init spool_airgap
PY=/usr/bin/python3

start_nexus_healthy "$IT_TMP/pw"

# ---- site A: no receiver at all, everything spooled ---------------------
cat > "$IT_TMP/a.conf" <<CONF
[shipper]
instance = airgap
spool_dir = $IT_TMP/spool-a
spool_only = true
$(nexus_conf)
CONF
: > "$IT_TMP/a.log"
for i in $(seq 1 12); do
    "$BIN" -c "$IT_TMP/a.conf" once 2>> "$IT_TMP/a.log"
    sleep 0.01
done
stamps=$(sed -n 's/.*samples at timestamp \([0-9]*\) ms.*/\1/p' "$IT_TMP/a.log" | sort -u)
assert_eq 12 "$(echo "$stamps" | wc -l)" "12 cycles collected on site A"
"$BIN" -c "$IT_TMP/a.conf" spool ls > "$IT_TMP/ls.out"
cat "$IT_TMP/ls.out" >&2
assert_contains "$(cat "$IT_TMP/ls.out")" "rw-default" "spool ls shows the target"
"$BIN" -c "$IT_TMP/a.conf" spool export --to "$IT_TMP/carry.nxs" > "$IT_TMP/export.out"
assert_contains "$(cat "$IT_TMP/export.out")" "exported 12 segment(s)" "export"

# ---- site B: import (refuse damaged copies, no duplicates), replay ---------
start_victoriametrics
start_prometheus
cat > "$IT_TMP/b.conf" <<CONF
[shipper]
instance = site-b
spool_dir = $IT_TMP/spool-b
CONF
cp "$IT_TMP/carry.nxs" "$IT_TMP/bad.nxs"
printf '\x00' | dd of="$IT_TMP/bad.nxs" bs=1 seek=400 conv=notrunc status=none
rc=0; "$BIN" -c "$IT_TMP/b.conf" spool import "$IT_TMP/bad.nxs" 2> "$IT_TMP/bad.err" || rc=$?
assert_eq 1 "$rc" "damaged archive refused"
assert_contains "$(cat "$IT_TMP/bad.err")" "damaged" "clear message for a damaged archive"
head -c 3000 "$IT_TMP/carry.nxs" > "$IT_TMP/short.nxs"
rc=0; "$BIN" -c "$IT_TMP/b.conf" spool import "$IT_TMP/short.nxs" 2> "$IT_TMP/short.err" || rc=$?
assert_eq 1 "$rc" "truncated archive refused"
assert_contains "$(cat "$IT_TMP/short.err")" "truncated" "clear message for a truncated archive"
[ ! -d "$IT_TMP/spool-b/rw-default" ] || [ -z "$(ls "$IT_TMP/spool-b/rw-default")" ] \
    || fail "a refused archive wrote segments"
"$BIN" -c "$IT_TMP/b.conf" spool import "$IT_TMP/carry.nxs" > "$IT_TMP/imp1.out"
assert_contains "$(cat "$IT_TMP/imp1.out")" "imported 12 segment(s)" "first import"
"$BIN" -c "$IT_TMP/b.conf" spool import "$IT_TMP/carry.nxs" > "$IT_TMP/imp2.out"
assert_contains "$(cat "$IT_TMP/imp2.out")" "imported 0 segment(s)" "second import adds nothing"
cp -a "$IT_TMP/spool-b" "$IT_TMP/spool-b2"

# replay into VictoriaMetrics at 4 batches/s, interrupted ~0.7 s after the
# first batch arrived (a fixed delay from the start would depend on how fast
# the process starts: slow under valgrind), then resumed
"$BIN" -c "$IT_TMP/b.conf" spool replay --url "$VM_URL/api/v1/write" --rate 4 > "$IT_TMP/r1.out" 2>&1 &
rp=$!
wait_for "vm_promq --range '$VM_URL' 'nexus_up{instance=\"airgap\"}' | grep -q ." 5 ||
    fail "the replay delivered nothing"
sleep 0.7
kill -TERM "$rp" 2>/dev/null || true
wait "$rp" || true
left=$(pending "$IT_TMP/spool-b" "$IT_TMP/b.conf")
[ "$left" -gt 0 ] && [ "$left" -lt 12 ] || fail "interruption not halfway: $left segments left"
it_log "replay interrupted with $left of 12 segments left"
# the import ledger stays: importing again after a partial replay adds nothing
"$BIN" -c "$IT_TMP/b.conf" spool import "$IT_TMP/carry.nxs" > "$IT_TMP/imp3.out"
assert_contains "$(cat "$IT_TMP/imp3.out")" "imported 0 segment(s)" "no re-import after partial replay"
"$BIN" -c "$IT_TMP/b.conf" spool replay --url "$VM_URL/api/v1/write" > "$IT_TMP/r2.out"
assert_contains "$(cat "$IT_TMP/r2.out")" "replayed $left segment(s)" "resumed replay"
vm_flush
assert_eq "$stamps" "$(promq --range "$VM_URL" 'nexus_up{instance="airgap"}' | awk '{print $NF}' | sort -u)" \
    "VictoriaMetrics has every cycle of site A"
dups=$(vm_export '{instance="airgap",__name__="nexus_up"}' | $PY -c 'import json,sys; t=json.loads(sys.stdin.readline())["timestamps"]; print(len(t)-len(set(t)))')
assert_eq 0 "$dups" "no duplicate samples after interrupt + resume"

# and the untouched copy straight into an empty Prometheus
NEXUS_SHIPPER_SHIPPER_SPOOL_DIR=$IT_TMP/spool-b2 "$BIN" -c "$IT_TMP/b.conf" spool replay \
    --url "$PROM_URL/api/v1/write" > "$IT_TMP/r3.out"
assert_eq "$stamps" "$(promq --range "$PROM_URL" 'nexus_up{instance="airgap"}' | awk '{print $NF}' | sort -u)" \
    "Prometheus has every cycle of site A"
"$BIN" -c "$IT_TMP/b.conf" spool purge > /dev/null
it_log ok
