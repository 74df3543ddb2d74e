#!/bin/bash
# Logs (issue 19): `log_format = json` lines parsed by Python with their
# fields checked (RFC 3339 UTC time with milliseconds even under another
# TZ, level, msg, target, url with its password and token redacted,
# collector, status, error, retry_in_s, counts); text lines start with the
# same time; under systemd (JOURNAL_STREAM naming stderr) stderr lines carry
# <N> priorities and the log_file does not; the nexus_components REST note
# appears once per process (not again after a reload, never on
# check-config); SIGUSR1 reopens a rotated log_file, created 0640.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init logs
PY=/usr/bin/python3
umask 022

start_victoriametrics
start_fake NEXUS tests/fakes/nexus_fake.py --scenario "$top_srcdir/tests/fakes/scenarios/healthy.json"
# a wrong password: every nexus collector fails (collector failure events)
printf 'not-the-password\n' > "$IT_TMP/pw"
chmod 600 "$IT_TMP/pw"
down=$(free_port) # nothing listens there: transport failures, retried
conf() { # $1 = log_format, $2 = log_file
    cat <<CONF
[shipper]
interval = 1s
instance = logs
spool_dir = $IT_TMP/spool-$1
log_format = $1
log_file = $2
[remote_write]
url = $VM_URL/api/v1/write
[remote_write down]
url = http://alice:TopSecretPW@127.0.0.1:$down/api/v1/write?tenant=a&token=SECRETTOKEN
min_backoff = 100ms
max_backoff = 300ms
[nexus]
url = $NEXUS_URL
username = metrics
password_file = $IT_TMP/pw
CONF
}

# ---- check-config says nothing about nexus_components -------------------
conf json "$IT_TMP/json.log" > "$IT_TMP/json.conf"
"$BIN" -c "$IT_TMP/json.conf" check-config > "$IT_TMP/check.out" 2>&1 || fail "check-config refused the config"
assert_not_contains "$(cat "$IT_TMP/check.out")" "nexus_components" "check-config printed the REST note"

# ---- JSON, another time zone, a reload and a rotation ---------------------
# JOURNAL_STREAM naming another file: stderr is not the journal, no prefix
TZ=Asia/Tokyo JOURNAL_STREAM=1:1 DEBUG=true "$BIN" -c "$IT_TMP/json.conf" run 2> "$IT_TMP/json.err" &
pid=$!
_it_register "$pid" nexus-shipper-json # stopped by the EXIT trap if the test fails
wait_cycles "$IT_TMP/json.err" 2 || fail "no cycles stored (json)"
wait_for "grep -q 'send to receiver failed' '$IT_TMP/json.err'" 5 || fail "no send failure logged"
kill -HUP "$pid"
wait_for "grep -q 'configuration reloaded' '$IT_TMP/json.err'" 5 || fail "no reload"
n=$(stored_cycles "$IT_TMP/json.err")
wait_cycles "$IT_TMP/json.err" $((n + 1)) || fail "no cycle after the reload"
mv "$IT_TMP/json.log" "$IT_TMP/json.log.1"
kill -USR1 "$pid"
wait_for "[ -s '$IT_TMP/json.log' ]" 5 || fail "SIGUSR1: no new log_file"
n=$(stored_cycles "$IT_TMP/json.err")
wait_cycles "$IT_TMP/json.err" $((n + 1)) || fail "no cycle after the reopen"
kill -TERM "$pid"
wait "$pid" || fail "run exited non-zero (json)"
assert_eq 640 "$(stat -c %a "$IT_TMP/json.log")" "log_file mode"
[ "$(stored_cycles "$IT_TMP/json.log")" -ge 1 ] || fail "the reopened log_file got no cycle lines"

$PY - "$down" "$IT_TMP/json.err" "$IT_TMP/json.log.1" "$IT_TMP/json.log" <<'PY' || fail "JSON lines"
import calendar, json, re, sys, time
down = sys.argv[1]
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ev = []
for path in sys.argv[2:]:
    raw = open(path, "rb").read()
    assert b"TopSecretPW" not in raw and b"SECRETTOKEN" not in raw, path + ": a secret in the log"
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        try:
            o = json.loads(line)
        except ValueError as e:
            raise SystemExit("%s:%d: not JSON (%s): %r" % (path, n, e, line))
        assert TIME.match(o["time"]), o
        t = calendar.timegm(time.strptime(o["time"][:19], "%Y-%m-%dT%H:%M:%S"))
        assert abs(t - time.time()) < 600, ("not UTC", o["time"])
        assert o["level"] in ("debug", "info", "warn", "error"), o
        assert isinstance(o["msg"], str) and o["msg"], o
        o["_file"] = path
        ev.append(o)
def find(msg, **kw):
    r = [o for o in ev if o["msg"] == msg and all(o.get(k) == v for k, v in kw.items())]
    assert r, "no %r %r among %d events" % (msg, kw, len(ev))
    return r
url = "http://REDACTED@127.0.0.1:%s/api/v1/write?tenant=a&token=REDACTED" % down
f = find("send to receiver failed, will retry", target="down", url=url)[0]
assert f["level"] in ("warn", "debug"), f
assert "status" not in f, f  # a transport failure has no HTTP status
assert isinstance(f["error"], str) and f["error"], f
assert isinstance(f["retry_in_s"], (int, float)) and 0 <= f["retry_in_s"] <= 30, f
assert isinstance(f["samples"], int) and f["samples"] > 0, f
assert [o for o in ev if o["msg"] == f["msg"] and o["level"] == "warn"], "first failure not a warning"
d = find("batch delivered", target="default", status=204)[0]
assert d["level"] == "debug" and isinstance(d["bytes"], int) and isinstance(d["seconds"], (int, float)), d
c = find("collector nexus_health failed", collector="nexus_health")[0]
assert "HTTP 401" in c["error"], c
note = [o for o in ev if o["msg"].startswith("nexus_components: repository sizes")]
assert len(note) == 2, note  # one line, written to stderr and to the log_file
assert len({o["_file"] for o in note}) == 2, note
assert note[0]["level"] == "warn", note
find("configuration reloaded from " + sys.argv[2].rsplit("/", 1)[0] + "/json.conf", level="info")
print("%d JSON events checked" % len(ev))
PY

# ---- text under systemd ---------------------------------------------------
conf text "$IT_TMP/text.log" > "$IT_TMP/text.conf"
: > "$IT_TMP/text.err"
js=$(stat -c '%d:%i' "$IT_TMP/text.err")
JOURNAL_STREAM=$js "$BIN" -c "$IT_TMP/text.conf" run 2>> "$IT_TMP/text.err" &
pid=$!
_it_register "$pid" nexus-shipper-text
wait_for "grep -q 'send to receiver failed' '$IT_TMP/text.err'" 10 || fail "no send failure logged (text)"
kill -TERM "$pid"
wait "$pid" || fail "run exited non-zero (text)"
T='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
bad=$(grep -Ev "^<[3467]>$T \[(DEBUG|INFO|WARNING|ERROR)\] " "$IT_TMP/text.err" || true)
[ -z "$bad" ] || fail "stderr lines without <N> and an RFC 3339 time: $bad"
bad=$(grep -Ev "^$T \[(DEBUG|INFO|WARNING|ERROR)\] " "$IT_TMP/text.log" || true)
[ -z "$bad" ] || fail "log_file lines not starting with an RFC 3339 time (or with a prefix): $bad"
grep -q '^<4>.* \[WARNING\] send to receiver failed, will retry: .* target=down url="\?http://REDACTED@127' "$IT_TMP/text.err" ||
    fail "no <4> warning for the failing target"
grep -q '^<6>.* \[INFO\] nexus-shipper .* started' "$IT_TMP/text.err" || fail "no <6> info line"
grep -q '^<4>.* \[WARNING\] collector nexus_health failed: GET .*HTTP 401.* collector=nexus_health' "$IT_TMP/text.err" ||
    fail "no collector failure warning"
assert_eq 1 "$(grep -c 'nexus_components: repository sizes' "$IT_TMP/text.err")" "REST note once"
if grep -q 'TopSecretPW\|SECRETTOKEN' "$IT_TMP/text.err" "$IT_TMP/text.log"; then fail "a secret in the text log"; fi
it_log ok
