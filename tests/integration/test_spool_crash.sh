#!/bin/bash
# Crash safety and damaged spools:
#  1. 100 SIGKILLs at random moments of `run` (collection, spool writes,
#     sends), each followed by a restart: afterwards every cycle the shipper
#     logged as stored is at VictoriaMetrics for every series (duplicates
#     only from in-flight batches); the only records quarantined are torn
#     tails (a kill mid-write: never acknowledged as stored);
#  2. a truncated log (torn tail), a flipped payload byte, a zero-length
#     file and a foreign file: each is quarantined with a log line naming
#     it, the rest delivered.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init spool_crash
PY=/usr/bin/python3
# Under a time scale (valgrind) each run lives NS_TIME_SCALE times longer
# before its SIGKILL, so 100 / NS_TIME_SCALE kills keep the stage's duration.
KILLS=${CRASH_KILLS:-$(( (100 + NS_TIME_SCALE - 1) / NS_TIME_SCALE ))}
[ "$NS_TIME_SCALE" -eq 1 ] || echo "NS_TIME_SCALE=$NS_TIME_SCALE: $KILLS SIGKILLs, each after 0 to $(tscale 1.5) s" >&2

start_victoriametrics
start_nexus_healthy "$IT_TMP/pw"

# ---- 1. the SIGKILL loop ----------------------------------------------------
{
    printf '[shipper]\ninterval = 1s\ninstance = crash\nspool_dir = %s/spool1\nreplay_rate = 0\n' "$IT_TMP"
    # small batches: one cycle is several segments, more moments to die in
    printf '[remote_write]\nurl = %s/api/v1/write\nmax_samples_per_send = 7\nmin_backoff = 50ms\nmax_backoff = 200ms\n' "$VM_URL"
    nexus_conf
} > "$IT_TMP/c1.conf"
RANDOM=42
for i in $(seq 1 "$KILLS"); do
    DEBUG=true "$BIN" -c "$IT_TMP/c1.conf" run 2>> "$IT_TMP/crash.log" &
    pid=$!
    # 0 to 1.5 s (scaled): sometimes before the first cycle is stored, often
    # mid-send or mid-write, sometimes after a second cycle
    ms=$(( ((RANDOM % 1500 / 1000) * 1000 + RANDOM % 1000) * NS_TIME_SCALE ))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done
it_log "$KILLS SIGKILLs done; final clean run"
n=$(stored_cycles "$IT_TMP/crash.log")
DEBUG=true "$BIN" -c "$IT_TMP/c1.conf" run 2>> "$IT_TMP/crash.log" &
pid=$!
wait_cycles "$IT_TMP/crash.log" $((n + 1)) || fail "the final run stored no cycle"
wait_for "[ \$(pending $IT_TMP/spool1 $IT_TMP/c1.conf) -eq 0 ]" 2 || fail "the spool did not drain after the crash loop"
sleep 1
kill -TERM "$pid"
wait "$pid" || fail "final run did not exit 0"
# a send the SIGTERM aborted stays queued (see left_at_stop): deliver it
[ "$(left_at_stop "$IT_TMP/crash.log")" = 0 ] || "$BIN" -c "$IT_TMP/c1.conf" spool replay > /dev/null
assert_eq 0 "$(pending "$IT_TMP/spool1" "$IT_TMP/c1.conf")" "spool drained after the crash loop"
assert_eq 0 "$(find "$IT_TMP/spool1/rw-default" -type f | wc -l)" "every log finished and removed"
# a kill mid-write leaves a torn tail: quarantined (it was never reported
# stored); anything else in quarantine would be a record the spool broke
torn=$(find "$IT_TMP/spool1/quarantine" -name '*.reason' | wc -l)
other=0
for r in "$IT_TMP"/spool1/quarantine/*.reason; do
    [ -e "$r" ] || continue
    grep -q "incomplete" "$r" || { other=$((other + 1)); cat "$r" >&2; }
done
assert_eq 0 "$other" "only torn tails quarantined ($torn)"
it_log "torn tails quarantined after $KILLS kills: $torn"
vm_flush
vm_export '{instance="crash"}' > "$IT_TMP/export.json"
$PY - "$IT_TMP/crash.log" "$IT_TMP/export.json" "$KILLS" <<'PY' || fail "samples lost in the crash loop"
import json, re, sys
logged = sorted({int(m) for m in re.findall(r"cycle \d+ at (\d+): \d+ samples stored",
                                            open(sys.argv[1]).read())})
series = {}
dups = 0
for line in open(sys.argv[2]):
    j = json.loads(line)
    key = json.dumps(j["metric"], sort_keys=True)
    ts = j["timestamps"]
    dups += len(ts) - len(set(ts))
    series.setdefault(key, set()).update(ts)
assert len(logged) >= int(sys.argv[3]) // 2, f"only {len(logged)} cycles stored in {sys.argv[3]} runs"
up = [k for k in series if '"__name__": "nexus_up"' in k]
assert up, "nexus_up never arrived"
missing_total = 0
# present only once this process has sent (each restart begins without them)
per_process = ('"nexus_shipper_last_send_timestamp_seconds"', '"nexus_shipper_requests_total"')
for k, ts in series.items():
    if any(n in k for n in per_process):
        continue
    # every series is produced every cycle: it must have every logged cycle
    # (the self-metrics of a cycle may be missing only if the series did not exist yet)
    first = min(ts)
    miss = [t for t in logged if t >= first and t not in ts]
    if miss:
        missing_total += len(miss)
        print("MISSING", k, miss[:5], file=sys.stderr)
up_ts = series[up[0]]
miss_up = [t for t in logged if t not in up_ts]
assert not miss_up, f"nexus_up lacks {len(miss_up)} logged cycles: {miss_up[:5]}"
assert missing_total == 0, f"{missing_total} samples lost"
print(f"crash loop: {len(logged)} cycles stored and all delivered for {len(series)} series; "
      f"{dups} duplicate samples from in-flight batches")
PY
tmp_left=$(find "$IT_TMP/spool1" -name '.tmp-*' | wc -l)
assert_eq 0 "$tmp_left" "no temp files (logs are created unnamed)"

# ---- 2. damaged spool ----------------------------------------------------------
{
    printf '[shipper]\ninterval = 1s\ninstance = damage\nspool_dir = %s/spool2\nspool_only = true\n' "$IT_TMP"
    printf '[remote_write]\nurl = %s/api/v1/write\n' "$VM_URL"
    nexus_conf
} > "$IT_TMP/c2.conf"
for i in 1 2 3 4 5 6; do "$BIN" -c "$IT_TMP/c2.conf" once 2>/dev/null; sleep 0.02; done
d=$IT_TMP/spool2/rw-default
mapfile -t segs < <(ls "$d" | sort)
assert_eq 6 "${#segs[@]}" "six logs spooled (one per process)"
assert_eq 6 "$(pending "$IT_TMP/spool2" "$IT_TMP/c2.conf")" "six batches pending"
truncate -s -10 "$d/${segs[1]}"                                   # truncated
b=$(od -An -tu1 -j200 -N1 "$d/${segs[3]}")                      # flipped byte (inverted,
printf "$(printf '\\%03o' $(( b ^ 0xff )))" |                  # so it always changes)
    dd of="$d/${segs[3]}" bs=1 seek=200 conv=notrunc status=none
: > "$d/0000000000000000-00000000-0000.seg"                     # zero-length, sorts first
echo "hello" > "$d/notes.txt"                                    # foreign file
NEXUS_SHIPPER_SHIPPER_SPOOL_ONLY=false "$BIN" -c "$IT_TMP/c2.conf" once 2> "$IT_TMP/damage.log"
cat "$IT_TMP/damage.log" >&2
for f in "${segs[1]}" "${segs[3]}" 0000000000000000-00000000-0000.seg notes.txt; do
    assert_contains "$(cat "$IT_TMP/damage.log")" "quarantining $d/$f" "log names $f"
    q=$IT_TMP/spool2/quarantine/rw-default__$f
    case $f in *.log) q=$IT_TMP/spool2/quarantine/rw-default__${f%.log}+0.seg ;; esac
    [ -e "$q" ] || fail "$f not in quarantine"
    assert_contains "$(cat "$q.reason")" "file: $d/$f" "reason names $f"
done
assert_contains "$(cat "$IT_TMP/spool2/quarantine/rw-default__${segs[1]%.log}+0.seg.reason")" "incomplete" "truncated log: a torn tail"
assert_contains "$(cat "$IT_TMP/spool2/quarantine/rw-default__${segs[3]%.log}+0.seg.reason")" "payload CRC mismatch" "flipped byte found"
vm_flush
got=$(promq --range "$VM_URL" 'nexus_up{instance="damage"}' | wc -l)
assert_eq 5 "$got" "4 intact old cycles + the new one delivered"
assert_eq 0 "$(find "$d" -type f | wc -l)" "nothing left behind"
it_log ok
