#!/bin/bash
# An outage is summarised, not silent (issue 19, Logs): while the receiver
# answers 503, `run` logs "target still failing" every outage_log_interval
# with how long, how many batches and bytes wait and the oldest's age; when
# the receiver is back and the backlog is replayed, one "target caught up
# after an outage" line says what the replay delivered; a stop ends with a
# "stopped" line (delivered, spooled). JSON log lines, parsed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init outage_log
BIN=${NEXUS_SHIPPER:-$top_builddir/nexus-shipper}

start_fake NEXUS tests/fakes/nexus_fake.py --scenario "$top_srcdir/tests/fakes/scenarios/healthy.json"
start_fake RECV tests/fakes/receiver_fake.py --status 503
printf 'metrics-secret\n' >"$IT_TMP/pw"
chmod 600 "$IT_TMP/pw"
cat >"$IT_TMP/o.conf" <<EOF
[shipper]
interval = 1s
instance = outage-it
spool_dir = $IT_TMP/spool
log_format = json
outage_log_interval = $(tdur 2s)
[remote_write]
url = $RECV_URL/api/v1/write
min_backoff = 100ms
max_backoff = 300ms
[nexus]
url = $NEXUS_URL
username = metrics
password_file = $IT_TMP/pw
EOF
# field MSG KEY: KEY of the last JSON line whose msg is MSG (empty if none)
field() {
	"$IT_PY" - "$IT_TMP/run.log" "$1" "$2" <<'PY'
import json, sys
v = ""
for line in open(sys.argv[1]):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if o.get("msg") == sys.argv[2] and sys.argv[3] in o:
        v = o[sys.argv[3]]
print(v)
PY
}
"$BIN" -c "$IT_TMP/o.conf" run 2>"$IT_TMP/run.log" &
pid=$!
wait_for "[ -n \"\$(field 'target still failing' failing_for)\" ]" 10 ||
	fail "no outage summary while the receiver answers 503: $(tail -5 "$IT_TMP/run.log")"
wait_for "[ \"\$(field 'target still failing' batches_spooled)\" -ge 3 ]" 10 ||
	fail "the summary does not count the waiting batches"
assert_eq "default" "$(field 'target still failing' target)" "summary names the target"
[ "$(field 'target still failing' bytes_spooled)" -gt 0 ] || fail "no bytes in the summary"
assert_contains "$(field 'target still failing' error)" "503" "summary carries the current error"
n=$(grep -c '"target still failing"' "$IT_TMP/run.log")
[ "$n" -le 4 ] || fail "$n summary lines in a few seconds: not rate-limited"
curl -s -X POST -d '{"status": 204}' "$RECV_URL/__control" >/dev/null
wait_for "[ -n \"\$(field 'target caught up after an outage' batches_replayed)\" ]" 15 ||
	fail "no replay summary after the receiver came back: $(tail -5 "$IT_TMP/run.log")"
[ "$(field 'target caught up after an outage' batches_replayed)" -ge 3 ] ||
	fail "the replay summary counts $(field 'target caught up after an outage' batches_replayed) batches"
[ "$(field 'target caught up after an outage' samples_replayed)" -gt 0 ] || fail "no samples in the replay summary"
kill -TERM "$pid"
wait "$pid" || fail "run did not exit 0"
[ "$(field stopped batches_delivered)" -ge 3 ] || fail "no final line with what was delivered"
assert_eq 0 "$(field stopped batches_spooled)" "the final line says nothing stays spooled"
it_log ok
