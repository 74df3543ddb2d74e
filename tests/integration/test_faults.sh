#!/bin/bash
# I/O faults (issue 10), each against `nexus-shipper run`:
#  1. EIO on spool writes and fsyncs (tests/fault/eio_shim.c, LD_PRELOAD,
#     armed by a flag file) while the receiver (VictoriaMetrics) is down:
#     the shipper logs the I/O error, keeps the batches in memory, spools
#     again once the fault clears, and every sample logged as stored
#     reaches VictoriaMetrics when it is back (counted exactly); then only
#     fsync failing: the same;
#  2. a receiver that answers one byte at a time: each attempt ends at
#     the remote_write timeout, the batch is retried, nothing is lost once
#     the receiver answers normally;
#  3. a receiver that sends an endless body (10 GiB, without and with
#     Content-Length): the shipper reads at most its response limit
#     (1 MiB), its memory stays flat, the batch is retried, nothing lost;
#  4. PostgreSQL killed while a database collector's query runs: the
#     collector is reported down with the database's error, the daemon
#     keeps shipping, and after the restart the next cycle reconnects;
#  5. under umask 022, every directory the spool, a quarantine (with its
#     .reason) and an import create is 0700 and every file 0600, the
#     export archive too; a world-readable configuration holding a secret
#     itself (a credentials header, a URL with a password) is warned
#     about, the same file at 0600 is not.
# Nexus answering HTML instead of JSON is covered by test_collectors_faults.sh
# (4a: the error names the endpoint and the Content-Type) and by the soak.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init faults
. "$IT_DIR/pg.sh"
PY=/usr/bin/python3
DELIVERED="$PY $top_srcdir/tests/fault/delivered.py"

start_victoriametrics
start_nexus_healthy "$IT_TMP/pw"
printf 'ro-secret\n' > "$IT_TMP/db-pw"
chmod 600 "$IT_TMP/db-pw"

conf() { # conf FILE INSTANCE URL [EXTRA remote_write lines]
    cat > "$1" <<CONF
[shipper]
interval = 1s
instance = $2
spool_dir = $IT_TMP/spool-$2
replay_rate = 0
shutdown_timeout = 3s
[remote_write]
url = $3
timeout = 2s
min_backoff = 100ms
max_backoff = 1s
${4:-}
$(nexus_conf)
CONF
}

# start_run NAME CONF [ENV...]: `run` in the background, log $IT_TMP/NAME.log
start_run() {
    local name=$1 c=$2
    shift 2
    env DEBUG=true "$@" "$BIN" -c "$c" run 2> "$IT_TMP/$name.log" &
    RUN_PID=$!
    _it_register "$RUN_PID" "shipper-$name"
}
# stop_run NAME: SIGTERM, exit 0 expected
stop_run() {
    kill -TERM "$RUN_PID"
    wait "$RUN_PID" || fail "$1: run did not exit 0 on SIGTERM (see $IT_TMP/$1.log)"
}

# ---------------------------------------------------------------- 1. EIO on the spool
SHIM=$IT_TMP/eio_shim.so
${CC:-cc} -shared -fPIC -O1 -o "$SHIM" "$top_srcdir/tests/fault/eio_shim.c" -ldl ||
    fail "cannot build the EIO shim"
# an ASan binary wants its runtime first; the shim only wraps libc calls
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
eio_phase() { # eio_phase NAME OPS
    local name=$1 ops=$2 sp=$IT_TMP/spool-$1 flag=$IT_TMP/eio-$1.armed
    conf "$IT_TMP/$name.conf" "$name" "$VM_URL/api/v1/write"
    stop_server "$VM_PID"
    touch "$flag"
    start_run "$name" "$IT_TMP/$name.conf" LD_PRELOAD="$SHIM" EIO_SHIM_DIR="$sp" \
        EIO_SHIM_FLAG="$flag" EIO_SHIM_OPS="$ops"
    wait_for "grep -q 'samples stored' $IT_TMP/$name.log && [ -s $sp.eio_shim.count ]" 20 ||
        fail "$name: the fault was never hit"
    sleep 3
    kill -0 "$RUN_PID" || fail "$name: the shipper died on EIO"
    local failed
    failed=$(wc -l < "$sp.eio_shim.count")
    rm -f "$flag" # the disk heals
    # failed writes are complained about until one works (a failed fsync
    # may only be logged: nothing is lost as long as the count below holds)
    if [[ $ops == *write* ]]; then
        wait_for "grep -q 'writing works again' $IT_TMP/$name.log" 10 || fail "$name: no recovery logged"
    fi
    sleep 2
    restart_server victoriametrics
    VM_PID=$_IT_PID
    sleep 4
    stop_run "$name"
    "$BIN" -c "$IT_TMP/$name.conf" spool replay > /dev/null
    assert_contains "$(cat "$IT_TMP/$name.log")" "Input/output error" "$name: the I/O error is logged"
    vm_flush
    vm_export "{instance=\"$name\"}" > "$IT_TMP/$name.export"
    local r
    r=$($DELIVERED "$IT_TMP/$name.log" "$IT_TMP/$name.export") || fail "$name: samples lost: $r"
    it_log "1. $name: $failed calls failed with EIO; $r"
}
eio_phase eio write,fsync
eio_phase eiofsync fsync

# ---------------------------------------------------------------- 2. one byte at a time
start_fake RECV tests/fakes/receiver_fake.py --mode drip
conf "$IT_TMP/drip.conf" drip "$RECV_URL/api/v1/write"
start_run drip "$IT_TMP/drip.conf"
wait_cycles "$IT_TMP/drip.log" 1 || fail "drip: no cycle stored"
sleep 6
curl -fsS -X POST -d '{}' "$RECV_URL/__control" > /dev/null # answers normally again
wait_for "grep -q 'delivering again' $IT_TMP/drip.log" 15 || fail "drip: never delivered again"
sleep 2
stop_run drip
"$BIN" -c "$IT_TMP/drip.conf" spool replay > /dev/null
curl -fsS "$RECV_URL/__control/requests" > "$IT_TMP/drip.requests"
$PY - "$IT_TMP/drip.requests" <<'PY' || fail "drip: attempts not bounded by the timeout"
import json, sys
d = [r for r in json.load(open(sys.argv[1])) if r.get("mode") == "drip"]
assert len(d) >= 2, f"only {len(d)} drip attempts"
secs = [r.get("drip_seconds") for r in d if "drip_seconds" in r]
assert secs and max(secs) < 2 + 3, f"an attempt outlived timeout = 2s: {secs}"
print(f"drip: {len(d)} attempts, each ended after {min(secs):.1f}..{max(secs):.1f} s")
PY
curl -fsS "$RECV_URL/__control/samples" > "$IT_TMP/drip.samples"
r=$($DELIVERED "$IT_TMP/drip.log" "$IT_TMP/drip.samples") || fail "drip: samples lost: $r"
assert_contains "$(cat "$IT_TMP/drip.log")" "will retry" "drip: the timeout is logged as a retry"
it_log "2. drip: $r"

# ---------------------------------------------------------------- 3. an endless body
asan=0
if nm "$BIN" 2>/dev/null | grep __asan_init > /dev/null; then asan=1; fi
# Under valgrind the RSS is valgrind's, which keeps up to 20 MB of freed
# blocks (--freelist-vol) to catch use-after-free: allowed on top
rss_limit=8192
[ -z "${NS_REAL_BINARY:-}" ] || rss_limit=$((8192 + 20000000 / 1024))
for variant in false true; do
    name=huge$([ "$variant" = true ] && echo len || true)
    curl -fsS -X DELETE "$RECV_URL/__control/requests" > /dev/null
    curl -fsS -X POST -d "{\"mode\": \"huge\", \"huge_length\": $variant}" "$RECV_URL/__control" > /dev/null
    conf "$IT_TMP/$name.conf" "$name" "$RECV_URL/api/v1/write"
    start_run "$name" "$IT_TMP/$name.conf"
    wait_cycles "$IT_TMP/$name.log" 1 || fail "$name: no cycle stored"
    sleep 2
    rss0=$(awk '$1=="VmRSS:"{print $2}' "/proc/$RUN_PID/status")
    sleep 4
    hwm=$(awk '$1=="VmHWM:"{print $2}' "/proc/$RUN_PID/status")
    rss1=$(awk '$1=="VmRSS:"{print $2}' "/proc/$RUN_PID/status")
    curl -fsS -X POST -d '{}' "$RECV_URL/__control" > /dev/null
    wait_for "grep -q 'delivering again' $IT_TMP/$name.log" 15 || fail "$name: never delivered again"
    sleep 2
    stop_run "$name"
    "$BIN" -c "$IT_TMP/$name.conf" spool replay > /dev/null
    curl -fsS "$RECV_URL/__control/requests" > "$IT_TMP/$name.requests"
    sent=$($PY - "$IT_TMP/$name.requests" <<'PY'
import json, sys
h = [r for r in json.load(open(sys.argv[1])) if r.get("mode") == "huge"]
assert len(h) >= 2, f"only {len(h)} attempts"
print(max(r.get("huge_sent", 0) for r in h))
PY
) || fail "$name: too few attempts"
    # at most the 1 MiB limit plus what the sockets buffer (a few MiB)
    [ "$sent" -lt $((32 << 20)) ] || fail "$name: the shipper read $sent bytes of the endless body"
    # (ASan keeps freed memory in quarantine: RSS is judged without it)
    [ $((rss1 - rss0)) -lt "$rss_limit" ] || [ "$asan" = 1 ] ||
        fail "$name: RSS grew from $rss0 to $rss1 kB during the endless bodies"
    assert_contains "$(cat "$IT_TMP/$name.log")" "answer larger than 1048576 bytes" "$name: the limit is named"
    curl -fsS "$RECV_URL/__control/samples" > "$IT_TMP/$name.samples"
    r=$($DELIVERED "$IT_TMP/$name.log" "$IT_TMP/$name.samples") || fail "$name: samples lost: $r"
    it_log "3. $name: at most $sent bytes sent per answer; RSS $rss0 -> $rss1 kB (peak $hwm kB); $r"
done

# ---------------------------------------------------------------- 4. PostgreSQL killed mid-query
start_postgres
pg_psql -d postgres -c "CREATE DATABASE nexus"
pg_psql -d nexus -f "$top_srcdir/tests/fixtures/nexus_schema.sql"
pg_psql -d nexus -v repos=2 -v comps=5 -v apc=2 -v images=2 -f "$top_srcdir/tests/fixtures/nexus_data.sql"
pg_psql -d nexus <<'SQL'
CREATE ROLE nexus_ro LOGIN PASSWORD 'ro-secret';
GRANT SELECT ON ALL TABLES IN SCHEMA public TO nexus_ro;
ALTER TABLE blob_store_metrics RENAME TO blob_store_metrics_real;
CREATE VIEW blob_store_metrics AS SELECT m.* FROM blob_store_metrics_real m, pg_sleep(4) s;
GRANT SELECT ON blob_store_metrics TO nexus_ro;
SQL
conf "$IT_TMP/pg.conf" pg "$VM_URL/api/v1/write"
cat >> "$IT_TMP/pg.conf" <<CONF
[database]
conninfo = host=127.0.0.1 port=$PG_PORT dbname=nexus user=nexus_ro sslmode=disable
password_file = $IT_TMP/db-pw
statement_timeout = 30s
connect_timeout = 2s
CONF
sed -i 's/^interval = 1s/interval = 2s\ncollector_timeout = 20s/' "$IT_TMP/pg.conf"
start_run pg "$IT_TMP/pg.conf"
active() {
    pg_psql -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'nexus_ro'
        AND state = 'active' AND query LIKE '%blob_store_metrics%'"
}
wait_for '[ "$(active)" -ge 1 ]' 20 || fail "pg: the slow query never ran"
kill_postgres
wait_for "grep -q 'collector db_blobstores failed' $IT_TMP/pg.log" 15 || fail "pg: the failure was not reported"
# the query in flight is named with the server's error, then the reconnect fails
lost=$(grep -m1 'session lost (database query blob_store_metrics' "$IT_TMP/pg.log") ||
    fail "pg: the query killed in flight is not named"
assert_contains "$lost" "server closed the connection unexpectedly" "pg: the database's error is given"
line=$(grep -m1 'collector db_blobstores failed' "$IT_TMP/pg.log")
assert_contains "$line" "Connection refused" "pg: the collector reports the dead server"
sleep 3
kill -0 "$RUN_PID" || fail "pg: the shipper died with the database"
restart_postgres
# (fsync=off: whether the view survived the crash is up to recovery)
pg_psql -d nexus <<'SQL'
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_views WHERE viewname = 'blob_store_metrics') THEN
    DROP VIEW blob_store_metrics;
    ALTER TABLE blob_store_metrics_real RENAME TO blob_store_metrics;
  END IF;
END $$;
SQL
wait_for "grep -q 'collector db_blobstores: working again' $IT_TMP/pg.log" 20 || fail "pg: no reconnection"
sleep 3
stop_run pg
vm_flush
ups=$(promq --range "$VM_URL" 'nexus_shipper_collector_up{instance="pg",collector="db_blobstores"}' | awk '{print $(NF-1)}' | uniq | tr '\n' ' ')
[[ $ups == *"0 "*"1 "* ]] || fail "pg: collector_up did not go 0 then 1 at the receiver: $ups"
it_log "4. pg killed mid-query: \"${lost#*\] }\" then \"${line#*\] }\"; collector_up went: $ups"

# ---------------------------------------------------------------- 5. modes and secrets
umask 022
conf "$IT_TMP/perm.conf" perm "$RECV_URL/api/v1/write"
NEXUS_SHIPPER_SHIPPER_SPOOL_ONLY=true "$BIN" -c "$IT_TMP/perm.conf" once 2> /dev/null
NEXUS_SHIPPER_SHIPPER_SPOOL_ONLY=true "$BIN" -c "$IT_TMP/perm.conf" once 2> /dev/null
"$BIN" -c "$IT_TMP/perm.conf" spool export --to "$IT_TMP/perm.export" > /dev/null
NEXUS_SHIPPER_SHIPPER_SPOOL_DIR=$IT_TMP/spool-imported "$BIN" -c "$IT_TMP/perm.conf" \
    spool import "$IT_TMP/perm.export" > /dev/null
curl -fsS -X POST -d '{"status": 400, "body": "bad labels"}' "$RECV_URL/__control" > /dev/null
"$BIN" -c "$IT_TMP/perm.conf" spool replay > /dev/null 2>&1 || true
[ -n "$(find "$IT_TMP/spool-perm" -name '*.reason')" ] || fail "perm: nothing was quarantined"
for d in "$IT_TMP/spool-perm" "$IT_TMP/spool-imported"; do
    bad=$(find "$d" \( \( -type d ! -perm 0700 \) -o \( -type f ! -perm 0600 \) \) -printf '%m %p\n')
    assert_eq "" "$bad" "perm: everything under $d is 0700 / 0600"
done
assert_eq 600 "$(stat -c %a "$IT_TMP/perm.export")" "perm: the export archive is 0600"
secret_warning() { # secret_warning MODE LINE: stderr of a dry run
    conf "$IT_TMP/secret.conf" secret "$RECV_URL/api/v1/write" "$2"
    chmod "$1" "$IT_TMP/secret.conf"
    "$BIN" -c "$IT_TMP/secret.conf" once --dry-run 2>&1 > /dev/null
}
w=$(secret_warning 644 "headers = X-Team: a, Authorization: Bearer s3cr3t")
assert_contains "$w" "is readable by every user and holds a secret in a [remote_write] header" \
    "secret: a credentials header in a world-readable file is warned about"
assert_not_contains "$w" "s3cr3t" "secret: the warning does not show the secret"
assert_not_contains "$(secret_warning 600 "headers = Authorization: Bearer s3cr3t")" "readable by every user" \
    "secret: no warning at 0600"
assert_not_contains "$(secret_warning 644 "headers = X-Team: a")" "readable by every user" \
    "secret: no warning without a secret"
sed -i "0,/^url = http:/s|^url = http://|url = http://user:pw@|" "$IT_TMP/perm.conf"
chmod 644 "$IT_TMP/perm.conf"
assert_contains "$("$BIN" -c "$IT_TMP/perm.conf" once --dry-run 2>&1 > /dev/null)" \
    "holds a secret in a [remote_write] url" "secret: a URL with a password is warned about"
it_log "5. modes 0700/0600 and world-readable secrets: ok"
it_log ok
