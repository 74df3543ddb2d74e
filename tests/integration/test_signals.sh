#!/bin/bash
# Signals of `run`: SIGTERM while the receiver hangs exits 0 within
# shutdown_timeout and keeps the undelivered batches in the spool (the next
# start delivers them); SIGHUP reloads the configuration, and an invalid
# configuration is refused while the old one keeps running.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init signals
PY=/usr/bin/python3

start_nexus_healthy "$IT_TMP/pw"
start_fake RECV tests/fakes/receiver_fake.py --delay 30
write_conf() { # $1 = instance
    cat > "$IT_TMP/s.conf" <<CONF
$(it_conf interval="1s" instance="$1" shutdown_timeout="2s")
[remote_write]
url = $RECV_URL/api/v1/write
timeout = 60s
$(nexus_conf)
CONF
}

# ---- SIGTERM with a hanging receiver ------------------------------------
write_conf before
DEBUG=true "$BIN" -c "$IT_TMP/s.conf" run 2> "$IT_TMP/run1.log" &
pid=$!
wait_cycles "$IT_TMP/run1.log" 2 || fail "two cycles not stored"
sleep 0.5
t0=$(date +%s%N)
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
assert_eq 0 "$rc" "exit code after SIGTERM"
# shutdown_timeout plus a scaled allowance for the exit itself
[ "$ms" -lt $((2000 + $(tscale_ms 2000))) ] || fail "SIGTERM took $ms ms with shutdown_timeout = 2s"
queued=$(pending "$IT_TMP/spool" "$IT_TMP/s.conf")
[ "$queued" -ge 2 ] || fail "expected the undelivered batches in the spool, found $queued"
it_log "SIGTERM: exit 0 in $ms ms, $queued batches kept"

# the next start delivers them, oldest first, then the new ones
curl -s -X POST -d '{"status": 204}' "$RECV_URL/__control" >/dev/null
curl -s -X DELETE "$RECV_URL/__control/requests" >/dev/null
DEBUG=true "$BIN" -c "$IT_TMP/s.conf" run 2> "$IT_TMP/run2.log" &
pid=$!
wait_cycles "$IT_TMP/run2.log" 1 || fail "the restarted run stored no cycle"
sleep 0.5
# ---- SIGHUP: valid reload ----------------------------------------------
write_conf after
kill -HUP "$pid"
wait_for "grep -q 'configuration reloaded' '$IT_TMP/run2.log'" 2 || fail "SIGHUP: no reload logged"
n=$(stored_cycles "$IT_TMP/run2.log")
wait_cycles "$IT_TMP/run2.log" $((n + 2)) 4 || fail "no cycles after the reload"
# ---- SIGHUP: invalid configuration keeps the running one -----------------
printf '[shipper]\ninterval = never\n' > "$IT_TMP/s.conf"
kill -HUP "$pid"
wait_for "grep -q 'reload refused' '$IT_TMP/run2.log'" 2 || fail "SIGHUP: the invalid reload was not refused"
n=$(stored_cycles "$IT_TMP/run2.log")
wait_cycles "$IT_TMP/run2.log" $((n + 2)) 4 || fail "no cycles after the refused reload"
kill -0 "$pid" || fail "shipper died on an invalid reload"
kill -TERM "$pid"
wait "$pid" || fail "run did not exit 0"
assert_contains "$(cat "$IT_TMP/run2.log")" "configuration reloaded" "reload logged"
assert_contains "$(cat "$IT_TMP/run2.log")" "reload refused, keeping the running configuration: $IT_TMP/s.conf:2: interval" "invalid reload refused with FILE:LINE"
curl -s "$RECV_URL/__control/requests" > "$IT_TMP/req.json"
$PY - "$IT_TMP/req.json" "$queued" <<'PY' || fail "delivery after restart and reload"
import json, sys
reqs = [r for r in json.load(open(sys.argv[1])) if r.get("kind") == "remote_write" and r["status"] == 204]
inst = []
for r in reqs:
    i = {ts["labels"].get("instance") for ts in r["timeseries"]}
    assert len(i) == 1, i
    inst.append((r["timeseries"][0]["samples"][0][1], i.pop()))
stamps = [t for t, _ in inst]
assert stamps == sorted(stamps), "not oldest first"
names = [i for _, i in inst]
q = int(sys.argv[2])
assert names[:q] == ["before"] * q, names
assert "after" in names, names
# once "after" appears (reload), every later cycle stays "after" (the invalid reload changed nothing)
k = names.index("after")
assert all(n == "after" for n in names[k:]), names
print("delivered:", names)
PY
it_log ok
