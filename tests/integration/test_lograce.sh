#!/bin/bash
# The log file is reopened (SIGUSR1, logrotate) and replaced (SIGHUP reload)
# while the delivery thread writes lines (issue 18: helgrind saw
# logger_open_file swap the FILE without the logger's mutex while emit()
# wrote to it). `run` under helgrind, 1 s interval, delivering to a real
# VictoriaMetrics and failing against a closed port (the delivery thread
# logs every batch and every retry at debug), /metrics scraped meanwhile;
# three rotations and two reloads. Asserts: no helgrind report with a frame
# in log.c, every rotated file and the last one hold lines.
#
# Scope: only reports that involve log.c fail the test. The rest of the
# report is printed for information: today it holds the signal flags
# (written by a handler that the kernel runs on whichever thread, read by
# main and by libcurl's progress callback: volatile sig_atomic_t, which
# helgrind cannot see as such) and libmicrohttpd's own shutdown, neither of
# which this test is about; a whole-report gate belongs with whoever owns
# main.c's signal handling.
#
# helgrind runs the real binary itself (it cannot run inside the memcheck
# wrapper of `make check NS_VALGRIND=1`); it is the slow-down that
# NS_TIME_SCALE describes, so waits are scaled by at least 10.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init lograce
REAL=${NS_REAL_BINARY:-${NEXUS_SHIPPER:-$top_builddir/nexus-shipper}}
command -v valgrind > /dev/null || { it_log "SKIP: no valgrind"; exit 77; }
# helgrind cannot run an AddressSanitizer build (CI's ASan stage): the plain
# and valgrind stages run this test
if grep -qa "__asan_init" "$BIN" 2>/dev/null; then
    it_log "SKIP: an ASan build (helgrind cannot run it; the plain build is checked)"
    exit 77
fi
[ "$NS_TIME_SCALE" -ge 10 ] || NS_TIME_SCALE=10
umask 022

start_victoriametrics
down=$(free_port)
cat > "$IT_TMP/c.conf" <<CONF
$(it_conf interval="1s" instance="lograce" log_file="$IT_TMP/ship.log" listen="127.0.0.1:0" shutdown_timeout="2s")
[remote_write]
url = $VM_URL/api/v1/write
[remote_write down]
url = http://127.0.0.1:$down/api/v1/write
min_backoff = 100ms
max_backoff = 200ms
CONF

# lines of the delivery thread in FILE so far
# ("batch delivered" at debug level is new; "send to ... failed" is older)
delivered() { grep -c 'batch delivered\|send to .* failed' "$1" 2> /dev/null || true; }

DEBUG=true valgrind --tool=helgrind --log-file="$IT_TMP/helgrind.log" \
    "$REAL" -c "$IT_TMP/c.conf" run 2> "$IT_TMP/run.log" &
pid=$!
_it_register "$pid" nexus-shipper # stopped by the EXIT trap if the test fails
wait_for "grep -q 'serving /metrics' '$IT_TMP/run.log'" 3 || fail "run did not start (see run.log)"
metrics=$(sed -n 's|.*serving /metrics and /healthz on \(http://[^ ]*\).*|\1/metrics|p' "$IT_TMP/run.log" | tail -n 1)
wait_for "[ \$(delivered '$IT_TMP/ship.log') -ge 2 ]" 3 || fail "the delivery thread logged nothing"
for i in 1 2 3; do
    mv "$IT_TMP/ship.log" "$IT_TMP/ship.log.$i"
    kill -USR1 "$pid"
    wait_for "[ \$(delivered '$IT_TMP/ship.log') -ge 2 ]" 3 || fail "rotation $i: no delivery lines in the new file"
    curl -s -o /dev/null --max-time 10 "$metrics" || true
    if [ "$i" -lt 3 ]; then
        kill -HUP "$pid"
        wait_for "[ \$(grep -c 'configuration reloaded' '$IT_TMP/run.log') -ge $i ]" 3 || fail "reload $i not logged"
    fi
done
kill -TERM "$pid"
wait "$pid" || true # helgrind's exit code is the program's; reports are judged below
for i in 1 2 3; do
    [ "$(delivered "$IT_TMP/ship.log.$i")" -ge 2 ] || fail "ship.log.$i lost the delivery lines"
done
grep -q 'ERROR SUMMARY' "$IT_TMP/helgrind.log" || fail "helgrind did not finish (see helgrind.log)"

/usr/bin/python3 - "$IT_TMP/helgrind.log" <<'PY' || fail "helgrind reports in log.c (see $IT_TMP/helgrind.log)"
import re, sys
text = open(sys.argv[1]).read()
# errors are separated by "==PID== ----" lines; thread announcements are not errors
blocks = re.split(r"^==\d+== -{20,}\s*$", text, flags=re.M)
errs = [b for b in blocks
        if re.search(r"Possible data race|lock order|unlocked|not locked|deallocation|pthread_\w+ error", b)]
ours = [b for b in errs if re.search(r"\(log\.c:\d+\)", b)]
summary = re.findall(r"ERROR SUMMARY: (\d+) errors", text)
print("helgrind: %s error(s) in all, %d involving log.c" % (summary[-1] if summary else "?", len(ours)))
for b in ours[:3]:
    print(b.strip()[:3000])
sys.exit(1 if ours else 0)
PY
it_log ok
