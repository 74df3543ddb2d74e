#!/bin/bash
# The [shipper] listen endpoint against slow clients (issue 18):
#  - 100 slowloris connections from loopback (one header line a second,
#    never a complete request): /healthz (curl) and `nexus-shipper
#    healthcheck` still answer within 1 s; every slow connection is closed
#    once its request head is late (5 s), none is refused on loopback
#  - from a non-loopback address, 16 connections per client: the 17th and
#    later are closed at once, and loopback keeps answering
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init httpd_slow
SLOW="$IT_DIR/slowloris.py"
PORT=$(free_port)
cat >"$IT_TMP/ns.conf" <<EOF
$(it_conf interval="1s" instance="slow" state_dir="$IT_TMP/state" spool_only="true" listen="0.0.0.0:$PORT")
EOF
"$BIN" -c "$IT_TMP/ns.conf" run 2>"$IT_LOGS/shipper.log" &
_it_register $! shipper
H=http://127.0.0.1:$PORT
wait_for "curl -fsS $H/healthz" 10 || fail "/healthz never answered 200"

# took_ms CMD...: runs CMD, prints how long it took (ms); fails if CMD fails
took_ms() {
	local t0 rc=0
	t0=$(now_ms)
	"$@" >/dev/null 2>>"$IT_TMP/took.err" || rc=$?
	[ "$rc" = 0 ] || fail "$* exited $rc while slow clients are connected ($(tail -2 "$IT_TMP/took.err"))"
	echo $(( $(now_ms) - t0 ))
}

# ---- 1. 100 slow clients on loopback
hold_ms=$(( 5000 + $(tscale_ms 3000) ))
"$IT_PY" "$SLOW" 127.0.0.1 "$PORT" 100 "$IT_TMP/ready1" --hold "$((hold_ms / 1000)).$((hold_ms % 1000))" \
	>"$IT_TMP/slow1.json" &
slow=$!
wait_for "[ -s $IT_TMP/ready1 ]" 10 || fail "the slow clients connected"
assert_eq 100 "$(cat "$IT_TMP/ready1")" "100 slow connections open"
limit=$(tscale_ms 1000)
for i in 1 2 3; do
	ms=$(took_ms curl -fsS -m 5 "$H/healthz")
	it_log "GET /healthz with 100 slow clients: ${ms} ms"
	[ "$ms" -lt "$limit" ] || fail "GET /healthz took ${ms} ms (limit ${limit} ms) with 100 slow clients"
	ms=$(took_ms "$BIN" -c "$IT_TMP/ns.conf" healthcheck --timeout 5)
	it_log "healthcheck with 100 slow clients: ${ms} ms"
	[ "$ms" -lt "$limit" ] || fail "healthcheck took ${ms} ms (limit ${limit} ms) with 100 slow clients"
done
wait "$slow" || fail "slowloris.py"
"$IT_PY" - "$IT_TMP/slow1.json" <<'EOF' || fail "slow clients: $(cat "$IT_TMP/slow1.json")"
import json, sys
r = json.load(open(sys.argv[1]))
c = r["closed_at"]
assert r["connected"] == 100 and r["open_at_end"] == 0, "every slow connection closed: %r" % r
assert min(c) >= 4.5, "none refused or closed before the 5 s head deadline: %r" % c
print("slow clients closed after %.1f .. %.1f s" % (min(c), max(c)), file=sys.stderr)
EOF

# ---- 2. per-client limit for a non-loopback address
SRC=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9.]+$' | grep -v '^127\.' | head -n 1 || true)
if [ -z "$SRC" ]; then
	it_log "no non-loopback IPv4 address: per-client limit not tested"
	exit 0
fi
hold=3
[ "$NS_TIME_SCALE" = 1 ] || hold=4.5
"$IT_PY" "$SLOW" "$SRC" "$PORT" 30 "$IT_TMP/ready2" --src "$SRC" --hold "$hold" >"$IT_TMP/slow2.json" &
slow=$!
wait_for "[ -s $IT_TMP/ready2 ]" 10 || fail "the remote slow clients connected"
ms=$(took_ms curl -fsS -m 5 "$H/healthz")
[ "$ms" -lt "$limit" ] || fail "GET /healthz took ${ms} ms with a client at its limit"
wait "$slow" || fail "slowloris.py (remote)"
"$IT_PY" - "$IT_TMP/slow2.json" <<'EOF' || fail "per-client limit: $(cat "$IT_TMP/slow2.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["open_at_end"] == 16 and len(r["closed_at"]) == 14, "16 kept, 14 closed: %r" % r
EOF
it_log "per-client limit: 16 of 30 connections from $SRC kept"
