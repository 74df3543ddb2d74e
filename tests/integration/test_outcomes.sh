#!/bin/bash
# The three outcomes of a send, against a receiver stand-in that answers
# on demand: 400 -> dropped (quarantined with the receiver's answer, later
# batches flow, counted under reason="rejected"), 503 -> retried and
# delivered later in order (Retry-After honoured), headers and auth as the
# remote-write spec and the config say.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init outcomes
PY=/usr/bin/python3

start_nexus_healthy
start_fake RECV tests/fakes/receiver_fake.py --sequence 400,204 --body 'bad labels: something is wrong'
printf 'rw-secret\n' > "$IT_TMP/rw-password"
chmod 600 "$IT_TMP"/*-password

conf() { # $1 = spool dir, $2 = extra remote_write lines
    cat <<CONF
[shipper]
interval = 1s
instance = outcomes
spool_dir = $1
[remote_write]
url = $RECV_URL/api/v1/write
min_backoff = 100ms
max_backoff = 1s
$2
$(nexus_conf)
CONF
}

run_for() { # $1 = config, $2 = seconds after the first stored cycle, $3 = log
    DEBUG=true "$BIN" -c "$1" run 2> "$3" &
    local pid=$!
    wait_cycles "$3" 1 || fail "no cycle stored (see $3)"
    sleep "$2"
    kill -TERM "$pid"
    wait "$pid" || fail "run exited non-zero after SIGTERM (see $3)"
}

# ---- 400: dropped, quarantined with the answer, the rest flows ----------
conf "$IT_TMP/spool1" "basic_auth_user = shipper
basic_auth_password_file = $IT_TMP/rw-password
tenant = team-a
headers = X-Team: nexus, X-Env: ci" > "$IT_TMP/c1.conf"
run_for "$IT_TMP/c1.conf" 3.5 "$IT_TMP/run1.log"
curl -s "$RECV_URL/__control/requests" > "$IT_TMP/req1.json"
$PY - "$IT_TMP/req1.json" <<'PY' || fail "400 scenario"
import json, sys, base64
reqs = [r for r in json.load(open(sys.argv[1])) if r.get("kind") == "remote_write"]
assert len(reqs) >= 3, f"expected >= 3 writes, got {len(reqs)}"
assert reqs[0]["status"] == 400 and all(r["status"] == 204 for r in reqs[1:]), [r["status"] for r in reqs]
h = {k.lower(): v for k, v in reqs[0]["headers"].items()}
assert h["content-encoding"] == "snappy", h
assert h["content-type"] == "application/x-protobuf", h
assert h["x-prometheus-remote-write-version"] == "0.1.0", h
assert h["user-agent"].startswith("nexus-shipper/"), h
assert h["x-scope-orgid"] == "team-a", h
assert h["x-team"] == "nexus" and h["x-env"] == "ci", h
assert h["authorization"] == "Basic " + base64.b64encode(b"shipper:rw-secret").decode(), h
first = len(reqs[0]["timeseries"])
# a later batch reports the drop, with the exact number of samples
found = None
for r in reqs[1:]:
    for ts in r["timeseries"]:
        l = ts["labels"]
        if l["__name__"] == "nexus_shipper_samples_total" and l.get("outcome") == "dropped" \
                and l.get("reason") == "rejected":
            found = ts["samples"][0][0]
assert found == first, f"dropped counter {found} != samples in the rejected batch {first}"
# timestamps strictly increase across the accepted batches (FIFO)
stamps = [r["timeseries"][0]["samples"][0][1] for r in reqs[1:]]
assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), stamps
print(f"400 scenario ok: {first} samples dropped, {len(reqs)-1} later batches delivered")
PY
q=$(find "$IT_TMP/spool1/quarantine" -name '*.seg' | wc -l)
assert_eq 1 "$q" "one quarantined segment"
assert_contains "$(cat "$IT_TMP"/spool1/quarantine/*.reason)" "bad labels: something is wrong" "receiver answer kept"
assert_contains "$(cat "$IT_TMP/run1.log")" "rejected a batch" "drop logged"
assert_eq "$(left_at_stop "$IT_TMP/run1.log")" "$(pending "$IT_TMP/spool1" "$IT_TMP/c1.conf")" \
    "nothing left to send but what the stop reported (the rejected batch is not kept)"

# ---- 503 then 204: retried, then everything delivered in order ------------
curl -s -X DELETE "$RECV_URL/__control/requests" >/dev/null
curl -s -X POST -d '{"sequence": [503, 503, 204], "retry_after": 1, "body": "overloaded"}' \
    "$RECV_URL/__control" >/dev/null
conf "$IT_TMP/spool2" "" > "$IT_TMP/c2.conf"
run_for "$IT_TMP/c2.conf" 5 "$IT_TMP/run2.log"
curl -s "$RECV_URL/__control/requests" > "$IT_TMP/req2.json"
$PY - "$IT_TMP/req2.json" <<'PY' || fail "503 scenario"
import json, sys
reqs = [r for r in json.load(open(sys.argv[1])) if r.get("kind") == "remote_write"]
st = [r["status"] for r in reqs]
assert st[:2] == [503, 503] and all(s == 204 for s in st[2:]) and len(st) >= 4, st
# Retry-After: 1 was honoured between attempts
gaps = [reqs[i + 1]["time"] - reqs[i]["time"] for i in range(2)]
assert all(g >= 0.95 for g in gaps), gaps
# the first batch was re-sent (same timestamp) and arrived before later ones
t = [r["timeseries"][0]["samples"][0][1] for r in reqs]
assert t[0] == t[1] == t[2], t
ok = [x for x, s in zip(t, st) if s == 204]
assert ok == sorted(ok) and len(set(ok)) == len(ok), ok
retried = None
for r in reqs:
    if r["status"] != 204:
        continue
    for ts in r["timeseries"]:
        l = ts["labels"]
        if l["__name__"] == "nexus_shipper_samples_total" and l.get("outcome") == "retried":
            retried = ts["samples"][0][0]
n0 = len(reqs[0]["timeseries"])
assert retried == 2 * n0, f"retried={retried}, expected {2*n0}"
print(f"503 scenario ok: statuses {st}")
PY
assert_eq 0 "$(find "$IT_TMP/spool2/quarantine" -name '*.seg' | wc -l)" "nothing quarantined on 503"
assert_contains "$(cat "$IT_TMP/run2.log")" "will retry" "retry logged"
assert_contains "$(cat "$IT_TMP/run2.log")" "delivering again" "recovery logged"
# ---- connection reset without an answer: retried, then delivered -----------
curl -s -X DELETE "$RECV_URL/__control/requests" >/dev/null
curl -s -X POST -d '{"sequence": [0, 0, 204]}' "$RECV_URL/__control" >/dev/null
conf "$IT_TMP/spool3" "" > "$IT_TMP/c3.conf"
run_for "$IT_TMP/c3.conf" 3 "$IT_TMP/run3.log"
curl -s "$RECV_URL/__control/requests" > "$IT_TMP/req3.json"
$PY - "$IT_TMP/req3.json" <<'PY' || fail "reset scenario"
import json, sys
reqs = [r for r in json.load(open(sys.argv[1])) if r.get("kind") == "remote_write"]
st = [r["status"] for r in reqs]
assert st[:2] == [None, None] and st[2:] and all(s == 204 for s in st[2:]), st
t = [r["timeseries"][0]["samples"][0][1] for r in reqs]
assert t[0] == t[1] == t[2], t   # the same batch, re-sent after the resets
print(f"reset scenario ok: statuses {st}")
PY
assert_eq "$(left_at_stop "$IT_TMP/run3.log")" "$(pending "$IT_TMP/spool3" "$IT_TMP/c3.conf")" \
    "all delivered after resets (but what the stop reported)"
it_log ok
