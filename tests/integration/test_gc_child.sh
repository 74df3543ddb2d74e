#!/bin/bash
# The cleanup's gc_command runs as a well-behaved child (issue 18):
#  - it inherits no descriptor of the shipper beyond 0-2 (no libcurl
#    socket, no pipe, no lock file)
#  - SIGTERM to `cleanup` while a GC hangs: the GC's whole process group
#    is stopped, `cleanup` exits within about a second and releases
#    cleanup.lock (the next run takes it)
#  - [cleanup] gc_timeout stops a hanging GC (and its children) and the
#    run fails with a message naming the timeout
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init gc_child
for t in docker-registry skopeo; do
	command -v "$t" >/dev/null || { it_log "SKIP: $t not installed (deploy/install-deps.sh)"; exit 77; }
done
mkimg() { "$IT_PY" "$IT_DIR/oci_image.py" "$IT_TMP/oci" "$@" >/dev/null; }
mkimg old1 --created 2020-01-01T00:00:00Z --size 1000
mkimg old2 --created 2020-02-01T00:00:00Z --size 1000
mkimg new1 --created "$(date -u +%FT%TZ)" --size 1000
start_registry
R=$REG
push() { registry_push "$IT_TMP/oci:$1" "$R/app:$1"; }
push old1
push new1

# the GC: hangs with a child (whose descriptors are checked from outside)
cat >"$IT_TMP/gc.sh" <<EOF
#!/bin/sh
echo \$\$ >>"$IT_TMP/gc-shells"
echo "garbage-collect: pretending to mark blobs"
sleep 300 &
echo \$! >"$IT_TMP/gc-sleep.pid"
wait
EOF
chmod +x "$IT_TMP/gc.sh"
# a failed assertion must not leave a GC (or its sleep) behind
it_on_exit 'for g in $(cat "$IT_TMP/gc-shells" 2>/dev/null); do kill -KILL -- "-$g" 2>/dev/null; done'
CONF=$IT_TMP/ns.conf
cat >"$CONF" <<EOF
$(it_conf state_dir="$IT_TMP/state")
[cleanup]
registry_url = http://$R
days_to_keep = 30
gc_command = $IT_TMP/gc.sh
EOF

# ---- 1. SIGTERM while the GC hangs
"$BIN" -c "$CONF" cleanup >"$IT_TMP/run1.out" 2>"$IT_TMP/run1.log" &
pid=$!
it_on_exit "kill -KILL $pid 2>/dev/null"
wait_for "[ -s $IT_TMP/gc-sleep.pid ]" 30 || fail "the GC started ($(tail -5 "$IT_TMP/run1.log"))"
sleep_pid=$(cat "$IT_TMP/gc-sleep.pid")
fds=$(ls -l "/proc/$sleep_pid/fd" | awk '$(NF-1) == "->" {print $(NF-2), $NF}')
assert_eq "0 1 2" "$(awk '{print $1}' <<<"$fds" | sort -n | xargs)" "the GC inherits no descriptor beyond 0-2 (all: $(tr '\n' ';' <<<"$fds"))"
t0=$(now_ms)
kill -TERM "$pid"
rc=0
wait_within "! kill -0 $pid" "$(tscale 2)" || rc=1
took=$(( $(now_ms) - t0 ))
it_log "cleanup exited ${took} ms after SIGTERM"
[ "$rc" = 0 ] || { kill -KILL "$pid" 2>/dev/null; fail "cleanup still running ${took} ms after SIGTERM ($(tail -3 "$IT_TMP/run1.log"))"; }
rc=0
wait "$pid" || rc=$?
assert_eq 1 "$rc" "a stopped run exits 1"
assert_contains "$(cat "$IT_TMP/run1.log")" "garbage-collect: stopped by a signal" "the GC stop is logged"
assert_contains "$(cat "$IT_TMP/run1.log")" "garbage-collect: garbage-collect: pretending" "the GC's output is logged"
wait_for "! kill -0 $sleep_pid 2>/dev/null" 2 || { kill "$sleep_pid"; fail "the GC's child was stopped with its group"; }
# the lock is free: a dry run takes it
rc=0
"$BIN" -c "$CONF" cleanup --dry-run >/dev/null 2>"$IT_TMP/dry.log" || rc=$?
assert_eq 0 "$rc" "the next run takes the lock ($(tail -3 "$IT_TMP/dry.log"))"

# ---- 2. gc_timeout stops a hanging GC
push old2
rm -f "$IT_TMP/gc-sleep.pid"
echo "gc_timeout = $(tdur 1s)" >>"$CONF"
t0=$(now_ms)
rc=0
"$BIN" -c "$CONF" cleanup >"$IT_TMP/run2.out" 2>"$IT_TMP/run2.log" || rc=$?
took=$(( $(now_ms) - t0 ))
it_log "cleanup with gc_timeout $(tdur 1s) took ${took} ms"
assert_eq 1 "$rc" "a GC past gc_timeout fails the run ($(tail -3 "$IT_TMP/run2.log"))"
[ "$took" -lt "$(tscale_ms 10000)" ] || fail "gc_timeout: the run took ${took} ms"
assert_contains "$(cat "$IT_TMP/run2.log")" "garbage-collect: still running after" "the timeout is logged"
assert_contains "$(grep '^summary ' "$IT_TMP/run2.out")" "status=failure" "summary: failure"
sleep_pid=$(cat "$IT_TMP/gc-sleep.pid")
wait_for "! kill -0 $sleep_pid 2>/dev/null" 2 || { kill "$sleep_pid"; fail "the timed-out GC's child was stopped with its group"; }
