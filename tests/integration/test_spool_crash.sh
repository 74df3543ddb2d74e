#!/bin/bash
# Crash safety and damaged spools:
#  1. 100 SIGKILLs at random moments of `run` (collection, spool writes,
#     sends), each followed by a restart: afterwards every cycle the shipper
#     logged as stored is at VictoriaMetrics for every series (duplicates
#     only from in-flight batches), and no segment is left unreadable;
#  2. a truncated segment, a flipped byte, a zero-length file and a foreign
#     file: each is quarantined with a log line naming it, the rest delivered.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init spool_crash
BIN=${NEXUS_SHIPPER:-$top_builddir/nexus-shipper}
PY=/usr/bin/python3
KILLS=${CRASH_KILLS:-100}

start_victoriametrics
start_fake NEXUS tests/fakes/nexus_fake.py --scenario "$top_srcdir/tests/fakes/scenarios/healthy.json"
printf 'metrics-secret\n' > "$IT_TMP/pw"
chmod 600 "$IT_TMP/pw"
nexus_conf() {
    printf '[nexus]\nurl = %s\nusername = metrics\npassword_file = %s\n' "$NEXUS_URL" "$IT_TMP/pw"
}

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
    # 0 to 1.5 s: sometimes before the first cycle is stored, often mid-send
    # or mid-write, sometimes after a second cycle
    sleep "$(( RANDOM % 1500 / 1000 )).$(printf '%03d' $(( RANDOM % 1000 )))"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done
it_log "$KILLS SIGKILLs done; final clean run"
DEBUG=true "$BIN" -c "$IT_TMP/c1.conf" run 2>> "$IT_TMP/crash.log" &
pid=$!
sleep 3
kill -TERM "$pid"
wait "$pid" || fail "final run did not exit 0"
left=$(find "$IT_TMP/spool1" -name '[0-9a-f]*.seg' -path '*rw-*' | wc -l)
assert_eq 0 "$left" "spool drained after the crash loop"
assert_eq 0 "$(find "$IT_TMP/spool1/quarantine" -name '*.seg' | wc -l)" "no segment left unreadable"
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
for k, ts in series.items():
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
it_log "temp files of interrupted writes left (ignored, removed after 10 min): $tmp_left"

# ---- 2. damaged spool ----------------------------------------------------------
{
    printf '[shipper]\ninterval = 1s\ninstance = damage\nspool_dir = %s/spool2\nspool_only = true\n' "$IT_TMP"
    printf '[remote_write]\nurl = %s/api/v1/write\n' "$VM_URL"
    nexus_conf
} > "$IT_TMP/c2.conf"
for i in 1 2 3 4 5 6; do "$BIN" -c "$IT_TMP/c2.conf" once 2>/dev/null; sleep 0.02; done
d=$IT_TMP/spool2/rw-default
mapfile -t segs < <(ls "$d" | sort)
assert_eq 6 "${#segs[@]}" "six segments spooled"
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
    [ -e "$IT_TMP/spool2/quarantine/rw-default__$f" ] || fail "$f not in quarantine"
done
vm_flush
got=$(promq --range "$VM_URL" 'nexus_up{instance="damage"}' | wc -l)
assert_eq 5 "$got" "4 intact old cycles + the new one delivered"
assert_eq 0 "$(find "$d" -name '*.seg' | wc -l)" "nothing left behind"
it_log ok
