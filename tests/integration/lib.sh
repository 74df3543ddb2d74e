# tests/integration/lib.sh — harness for integration tests with REAL servers.
# shellcheck shell=bash
# Globals are set for the sourcing test; optional args are optional:
# shellcheck disable=SC2034,SC2119,SC2120
#
# Source it from a bash test script, then call it_init first:
#
#   #!/bin/bash
#   set -euo pipefail
#   . "$(dirname "$0")/lib.sh"
#   it_init mytest
#   start_prometheus
#   start_victoriametrics
#   ts=$(now_ms)
#   rw_push "$PROM_URL/api/v1/write" 'm{a="b"}' 1 "$ts"    # prints 204
#   assert_eq "m{a=\"b\"} 1 $ts" "$(promq --range "$PROM_URL" m)" "round trip"
#   rw_push "$VM_URL/api/v1/write" 'm{a="b"}' 1 "$ts"
#   vm_flush     # always, before querying VictoriaMetrics
#   assert_eq "m{a=\"b\"} 1 $ts" "$(promq --range "$VM_URL" m)" "round trip"
#
# Every server runs from the Debian binaries directly (no systemd), on a
# random 127.0.0.1 port, with its state and log under $IT_TMP. The EXIT trap
# stops each one by PID (SIGTERM, up to 5 s, then SIGKILL). On failure it
# prints the tail of every server log and keeps $IT_TMP; on success it
# removes $IT_TMP (set IT_KEEP=1 to keep it anyway).
#
# Conventions: functions that "set" variables must be called in the test's
# own shell (not inside $(...)), because they assign globals. fail/assert_*
# exit the *current* shell: inside $(...) or a pipeline that is a subshell,
# so call them at top level. Informational output goes to stderr.
#
# ---------------------------------------------------------------------------
# Findings about the receivers (Debian 12 packages, measured with the
# scratch experiments behind selftest.sh; all "immediately" below means: the
# first query issued after the write returned):
#
# Prometheus 2.42 (start_prometheus)
#  - Receiver flag: --web.enable-remote-write-receiver (the older
#    --enable-feature=remote-write-receiver is deprecated). Endpoint
#    POST $PROM_URL/api/v1/write, success = 204.
#  - Visibility: IMMEDIATE. The append is committed to the head before the
#    204; no flush, no flag.
#  - Separate requests: an older sample than the series' last one -> 400
#    "out of order sample"; another value at an existing timestamp -> 400
#    "duplicate sample for timestamp"; older than (head max time - 1 h) -> 400
#    "out of bounds". An exact re-send (same ts, same value) -> 204, ignored.
#  - Inside ONE request, out-of-order or duplicate samples of a series are
#    dropped SILENTLY (204). Query back, do not trust the status.
#  - Duplicate label names -> HTTP 500 ("label name "a" is not unique"), so a
#    spec-following sender would retry that bad batch forever.
#  - No validation of names: a metric name like "1bad", a series without
#    __name__, unsorted labels: all 204. Empty label values are dropped.
#  - A sample far in the future (e.g. now+3d) is accepted, and from then on
#    every "now" sample is "out of bounds". Never write future timestamps to a
#    Prometheus that other assertions use; start a second one.
#  - Fresh TSDB: keep timestamps within the last hour of the newest sample.
#    out_of_order_time_window (experimental) is off; enable it with
#    PROM_CONFIG_EXTRA if a test needs it.
#  - Staleness NaN (0x7ff0000000000002): stored but never returned by the
#    query API (range selectors end before it; instant queries after it are
#    empty). A plain NaN sample is returned as NaN. float64 values are exact.
#
# VictoriaMetrics 1.79 (start_victoriametrics)
#  - POST $VM_URL/api/v1/write, 204 for everything: out-of-order, duplicates,
#    old samples (retention 100y), bad names, unsorted/duplicate labels (last
#    wins). Samples more than 2 days in the future are dropped silently
#    (vm_rows_ignored_total{reason="big_timestamp"}). Plain NaN samples are
#    dropped at ingestion; staleness NaNs are stored.
#  - Visibility: rows sit in in-memory buffers that are flushed about once
#    per second. /internal/force_flush (vm_flush) makes them searchable at
#    once. TRAP: a query that runs before a NEW series was flushed caches the
#    empty answer for ~10 s; vm_flush clears it. So: vm_flush before every
#    query, and use vm_promq in wait_for loops.
#  - Instant queries near "now" are shifted back by -search.latencyOffset
#    (default 30 s) and go through a response cache: a plain selector at
#    time=now misses fresh samples even with -search.latencyOffset=0s unless
#    the request has nocache=1. promq.py always sends nocache=1 (Prometheus
#    ignores it). query_range hides the last -search.latencyOffset of data
#    even with nocache=1, hence -search.latencyOffset=0s.
#    -search.disableCache (rollup result cache off) is defensive, for
#    query_range over back-filled data.
#  - Range selectors (promq --range, i.e. 'm[d]' at an explicit time) are
#    served from raw storage: immediate after vm_flush, original timestamps,
#    (t-d, t] window.
#  - /api/v1/series and /api/v1/export treat a missing or zero start as "the
#    default range" (series: last 5 minutes only; export: lags ~1 s behind a
#    flush). promq.py and vm_export always pass start >= 1 ms and an end.
#  - Duplicates: without -dedup.minScrapeInterval (our default) every row is
#    kept and returned, so a re-sent sample shows up twice. With
#    -dedup.minScrapeInterval=1ms equal-timestamp rows collapse to one (the
#    last written, in our run) in queries and export: don't enable it when a
#    test asserts "nothing was sent twice".
#  - Staleness NaN: returned as NaN by range-selector queries (promq --range);
#    vm_export prints it as NaN, or as null when the series has other values
#    in the same block (the JSON is not consistent: match both).
#  - Values are stored as decimals: about 12 significant digits survive
#    (1/3 -> 0.333333333333, pi -> 3.141592653589), -0 -> 0, and values of one
#    series stored together share an exponent within int64 range: 0.001 next
#    to 1e18 comes back as 0. Assert exact values with short decimals
#    (42, 0.125, 1e6, 1.23456789e-10 are exact); test full float64 precision
#    against Prometheus.
#
# Pushgateway 1.5 (start_pushgateway)
#  - Debian's default --persistence.file is /var/lib/prometheus/pushgateway.data:
#    we pass --persistence.file= (no persistence). --web.enable-admin-api is on
#    (PUT $PGW_URL/api/v1/admin/wipe clears everything).
#  - A PUT/POST is visible at /metrics immediately, with job/instance labels
#    added and push_time_seconds / push_failure_time_seconds per group.
#    Samples carrying timestamps are refused with 400.
#
# Startup (this machine): each server is ready in ~10-80 ms; selftest.sh,
# which starts all three plus a fake, runs in about 2 s.
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# Time scale. NS_TIME_SCALE (a positive integer, default 1) says how many
# times slower than native the nexus-shipper under test runs. Under
# valgrind (`make check NS_VALGRIND=1`, which sets NS_REAL_BINARY) it
# defaults to 10: each process then spends ~1 s starting and ~0.5 s in the
# leak check at exit, and a cycle costs ~20x its CPU time. Set it to
# override. Every DEADLINE a test waits for or asserts is multiplied by it:
# wait_for's timeout and stop_server's grace do it themselves; tests use
# tscale/tscale_ms/tdur for "took less than N ms" bounds, fixed waits that
# stand for "long enough for the shipper to do X", and timeouts they write
# into generated configurations when the expiry is not what they test.
# What a test is ABOUT stays unscaled: intervals, the timeout whose expiry
# it measures, Retry-After. A scaled deadline is still a deadline.
if [ -z "${NS_TIME_SCALE:-}" ]; then
	if [ -n "${NS_REAL_BINARY:-}${NS_VALGRIND:-}" ]; then NS_TIME_SCALE=10; else NS_TIME_SCALE=1; fi
fi
if ! [[ $NS_TIME_SCALE =~ ^[1-9][0-9]{0,2}$ ]]; then
	echo "NS_TIME_SCALE must be an integer from 1 to 999, not '$NS_TIME_SCALE'" >&2
	exit 1
fi
export NS_TIME_SCALE

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IT_TOP=$(cd "$IT_DIR/../.." && pwd)

# Python: prefer Debian's /usr/bin/python3 (has python3-snappy and
# python3-protobuf); promq.py runs on any python3.
if [ -z "${IT_PY:-}" ]; then
	if [ -x /usr/bin/python3 ]; then IT_PY=/usr/bin/python3; else IT_PY=python3; fi
fi

IT_NAME=
IT_TMP=
IT_PIDS=()      # started servers, in start order
declare -A IT_PROC_NAME=()
IT_EXIT_HOOKS=()
IT_START_NS=

it_log() { printf '[%s] %s\n' "${IT_NAME:-it}" "$*" >&2; }

# fail MSG: print "FAIL: MSG" to stderr and exit 1 (the EXIT trap then
# prints server logs and keeps $IT_TMP).
fail() {
	printf '[%s] FAIL: %s\n' "${IT_NAME:-it}" "$*" >&2
	exit 1
}

# it_init NAME: create $IT_TMP (under ${TMPDIR:-/tmp}) with logs/ and install
# the EXIT trap. Also sets IT_LOGS. Must be called once, before starting servers.
it_init() {
	IT_NAME=${1:?it_init NAME}
	IT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/it-${IT_NAME}.XXXXXX")
	IT_LOGS=$IT_TMP/logs
	mkdir -p "$IT_LOGS"
	IT_START_NS=$(date +%s%N)
	IT_MAIN_PID=$BASHPID
	exec {IT_STDERR_FD}>&2   # the EXIT trap reports here even if fd 2 was redirected
	trap '_it_exit' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# it_on_exit CMD: run CMD (eval'd) from the EXIT trap before servers are
# stopped. Use it instead of replacing the EXIT trap.
it_on_exit() { IT_EXIT_HOOKS+=("$*"); }

_it_exit() {
	local rc=$? h pid i
	# Only the shell that called it_init cleans up (never a subshell).
	[ "$BASHPID" = "${IT_MAIN_PID:-}" ] || return "$rc"
	set +e
	exec 2>&"$IT_STDERR_FD"
	trap - EXIT INT TERM
	for h in "${IT_EXIT_HOOKS[@]}"; do eval "$h"; done
	for ((i = ${#IT_PIDS[@]} - 1; i >= 0; i--)); do
		pid=${IT_PIDS[i]}
		[ -n "$pid" ] && stop_server "$pid"
	done
	local secs
	secs=$(( ($(date +%s%N) - IT_START_NS) / 1000000 ))
	if [ "$rc" -ne 0 ]; then
		local f
		for f in "$IT_LOGS"/*.log; do
			[ -e "$f" ] || continue
			if grep -qiE 'error|fatal|panic' "$f"; then
				printf '\n----- %s (error lines) -----\n' "$f" >&2
				grep -iE 'error|fatal|panic' "$f" | tail -n 15 >&2
			fi
			printf '\n----- %s (last 40 lines) -----\n' "$f" >&2
			tail -n 40 "$f" >&2
		done
		it_log "FAILED (exit $rc) after ${secs} ms; files kept in $IT_TMP"
	else
		if [ -n "${IT_KEEP:-}" ]; then
			it_log "PASS in ${secs} ms; files kept in $IT_TMP (IT_KEEP)"
		else
			[ -n "$IT_TMP" ] && rm -rf "$IT_TMP"
			it_log "PASS in ${secs} ms"
		fi
	fi
	exit "$rc"
}

# free_port: print a TCP port that was free on 127.0.0.1 a moment ago (bind
# to port 0, read it, close). Racy by nature; start_* retry on EADDRINUSE.
free_port() {
	"$IT_PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# _it_ms SECONDS: "1.5" -> 1500 (integer milliseconds of a decimal number).
_it_ms() {
	local s=$1 i f=
	i=${s%%.*}
	[[ $s == *.* ]] && f=${s#*.}
	f=${f}000
	echo $(( ${i:-0} * 1000 + 10#${f:0:3} ))
}

# tscale_ms MS: MS x NS_TIME_SCALE (integer milliseconds).
tscale_ms() { echo $(( ${1:?tscale_ms MS} * NS_TIME_SCALE )); }

# tscale SECONDS: SECONDS (may be fractional) x NS_TIME_SCALE, as decimal
# seconds for sleep and wait_for ("2.5" -> "2.500" natively, "25.000" at 10).
tscale() {
	local ms
	ms=$(( $(_it_ms "${1:?tscale SECONDS}") * NS_TIME_SCALE ))
	printf '%d.%03d\n' $((ms / 1000)) $((ms % 1000))
}

# tdur DURATION: a configuration duration ("100ms", "2s", "1.5s", "1m")
# x NS_TIME_SCALE, in milliseconds ("2s" -> "2000ms" natively).
tdur() {
	local d=${1:?tdur DURATION} n u
	[[ $d =~ ^([0-9]+(\.[0-9]+)?)(ms|s|m)$ ]] || fail "tdur: cannot scale '$d'"
	n=${BASH_REMATCH[1]} u=${BASH_REMATCH[3]}
	case $u in
	ms) n=${n%%.*} ;;
	s) n=$(_it_ms "$n") ;;
	m) n=$(( $(_it_ms "$n") * 60 )) ;;
	esac
	echo "$(( n * NS_TIME_SCALE ))ms"
}

# now_ms: current time in integer milliseconds.
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# _it_instance BASE: print a name not used yet in this test: BASE, BASE-2,
# BASE-3... (so the same server can be started twice with separate dirs/logs).
_it_instance() {
	local n=$1 i=2
	while [ -e "$IT_LOGS/$n.log" ] || [ -e "$IT_TMP/$n" ]; do n=$1-$i; i=$((i + 1)); done
	printf '%s\n' "$n"
}

# _it_register PID NAME
_it_register() {
	IT_PIDS+=("$1")
	IT_PROC_NAME[$1]=$2
}

# stop_server PID: SIGTERM, wait up to 5 s (x NS_TIME_SCALE), then SIGKILL;
# reap it. Safe on an already-dead or unknown PID. Returns 0.
stop_server() {
	local pid=${1:?stop_server PID} i
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100 * NS_TIME_SCALE; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		if kill -0 "$pid" 2>/dev/null; then
			it_log "${IT_PROC_NAME[$pid]:-pid $pid} ignored SIGTERM for $((5 * NS_TIME_SCALE)) s; SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
	for i in "${!IT_PIDS[@]}"; do
		[ "${IT_PIDS[i]}" = "$pid" ] && IT_PIDS[i]=
	done
	return 0
}

# _it_wait_http PID URL TIMEOUT_S: poll URL until 2xx. Returns 0 when ready,
# 1 if PID died, 2 on timeout.
_it_wait_http() {
	local pid=$1 url=$2 timeout=$3 deadline
	deadline=$(( $(date +%s%N) + $(_it_ms "$timeout") * 1000000 ))
	while :; do
		if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || return 1
		[ "$(date +%s%N)" -lt "$deadline" ] || return 2
		sleep 0.05
	done
}

# _it_start NAME READY_PATH TIMEOUT_S CMD... : CMD contains the literal word
# @PORT@ where the port goes. Starts CMD in the background with output to
# $IT_LOGS/NAME.log, retries with a new port (up to 5 times) if the port was
# taken meanwhile. Sets _IT_PORT and _IT_PID; fails the test otherwise.
_it_start() {
	local name=$1 ready=$2 timeout=$3
	shift 3
	[ -n "$IT_TMP" ] || fail "call it_init before starting servers"
	local log=$IT_LOGS/$name.log port pid rc t0 a
	local -a cmd
	for _ in 1 2 3 4 5; do
		port=$(free_port)
		cmd=()
		for a in "$@"; do cmd+=("${a//@PORT@/$port}"); done
		t0=$(date +%s%N)
		echo "+ ${cmd[*]}" >>"$log"
		"${cmd[@]}" >>"$log" 2>&1 </dev/null &
		pid=$!
		_it_register "$pid" "$name"   # at once: the EXIT trap must see it
		rc=0
		_it_wait_http "$pid" "http://127.0.0.1:$port$ready" "$timeout" || rc=$?
		if [ "$rc" -eq 0 ]; then
			_IT_PORT=$port _IT_PID=$pid
			_IT_CMDS[$name]=$(printf '%q ' "${cmd[@]}")
			_IT_READY[$name]="http://127.0.0.1:$port$ready"
			it_log "$name ready at http://127.0.0.1:$port (pid $pid) in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
			return 0
		fi
		stop_server "$pid"
		if [ "$rc" -eq 1 ] && grep -qi 'address already in use' "$log"; then
			it_log "$name: port $port taken, retrying"
			continue
		fi
		[ "$rc" -eq 1 ] && fail "$name exited during startup (see $log)"
		fail "$name not ready at $ready within ${timeout}s (see $log)"
	done
	fail "$name: could not get a free port"
}

declare -gA _IT_CMDS=() _IT_READY=()

# restart_server NAME: start instance NAME (prometheus, victoriametrics,
# pushgateway, prometheus-2, ...) again with exactly the command, port and
# data directory of its first start, after it was stopped (outage tests).
# Sets _IT_PID to the new PID.
restart_server() {
	local name=$1 log=$IT_LOGS/$1.log pid
	[ -n "${_IT_CMDS[$name]:-}" ] || fail "restart_server: $name was never started"
	echo "+ (restart) ${_IT_CMDS[$name]}" >>"$log"
	eval "exec ${_IT_CMDS[$name]}" >>"$log" 2>&1 </dev/null &
	pid=$!
	_it_register "$pid" "$name"
	_it_wait_http "$pid" "${_IT_READY[$name]}" 30 || fail "$name did not come back (see $log)"
	_IT_PID=$pid
	it_log "$name restarted (pid $pid)"
}

# start_prometheus [EXTRA_ARGS...]: start Prometheus with a config without
# scrape jobs, config + TSDB in $IT_TMP/prometheus, remote-write receiver on. Sets PROM_URL,
# PROM_PORT, PROM_PID; remote write goes to $PROM_URL/api/v1/write. Waits up
# to 30 s for /-/ready. PROM_CONFIG_EXTRA (YAML, optional) is appended to the
# config, e.g. $'storage:\n  tsdb:\n    out_of_order_time_window: 1h'
# (don't pass --config.file or --storage.tsdb.path again: kingpin refuses
# repeated flags). A second call starts a second, independent instance
# (dir prometheus-2, ...) and overwrites the PROM_* variables.
start_prometheus() {
	local inst dir
	inst=$(_it_instance prometheus)
	dir=$IT_TMP/$inst
	mkdir -p "$dir/data"
	{
		printf 'global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n'
		printf 'scrape_configs: []\n'
		[ -z "${PROM_CONFIG_EXTRA:-}" ] || printf '%s\n' "$PROM_CONFIG_EXTRA"
	} >"$dir/prometheus.yml"
	_it_start "$inst" /-/ready 30 \
		prometheus \
		--config.file="$dir/prometheus.yml" \
		--storage.tsdb.path="$dir/data" \
		--web.listen-address=127.0.0.1:@PORT@ \
		--web.enable-remote-write-receiver \
		"$@"
	PROM_PORT=$_IT_PORT PROM_PID=$_IT_PID
	PROM_URL=http://127.0.0.1:$PROM_PORT
}

# start_victoriametrics [EXTRA_ARGS...]: single-node VM with data in
# $IT_TMP/victoriametrics, -retentionPeriod=100y, -search.latencyOffset=0s,
# -search.disableCache (see the findings above). Sets VM_URL, VM_PORT,
# VM_PID; remote write goes to $VM_URL/api/v1/write. Waits up to 30 s for
# /health. Call vm_flush after writing and before querying. Extra args
# override ours (Go flags: last one wins), e.g. -dedup.minScrapeInterval=1ms.
start_victoriametrics() {
	local inst dir
	inst=$(_it_instance victoriametrics)
	dir=$IT_TMP/$inst
	mkdir -p "$dir"
	_it_start "$inst" /health 30 \
		victoria-metrics \
		-storageDataPath="$dir" \
		-httpListenAddr=127.0.0.1:@PORT@ \
		-retentionPeriod=100y \
		-search.latencyOffset=0s \
		-search.disableCache \
		-loggerLevel=INFO \
		"$@"
	VM_PORT=$_IT_PORT VM_PID=$_IT_PID
	VM_URL=http://127.0.0.1:$VM_PORT
}

# vm_flush [URL]: make everything VM ingested so far searchable
# (/internal/force_flush). URL defaults to $VM_URL. Returns non-zero (with a
# message) if VM does not answer.
vm_flush() {
	curl -fsS -o /dev/null --max-time 10 "${1:-$VM_URL}/internal/force_flush" || {
		it_log "vm_flush: ${1:-$VM_URL}/internal/force_flush failed"
		return 1
	}
}

# vm_export SELECTOR [URL]: raw JSON lines from VM's /api/v1/export (all
# time), including staleness markers and duplicates that queries hide.
vm_export() {
	curl -fsS --max-time 30 "${2:-$VM_URL}/api/v1/export" \
		--data-urlencode "match[]=${1:?vm_export SELECTOR}" \
		-d start=1 -d end=$(( $(date +%s) + 86400 ))
}

# start_pushgateway [EXTRA_ARGS...]: Pushgateway without persistence, admin
# API on. Sets PGW_URL, PGW_PORT, PGW_PID; waits up to 30 s for /-/ready.
start_pushgateway() {
	_it_start "$(_it_instance pushgateway)" /-/ready 30 \
		prometheus-pushgateway \
		--web.listen-address=127.0.0.1:@PORT@ \
		--persistence.file= \
		--web.enable-admin-api \
		"$@"
	PGW_PORT=$_IT_PORT PGW_PID=$_IT_PID
	PGW_URL=http://127.0.0.1:$PGW_PORT
}

# start_registry: a docker-registry 2.8 with deletes enabled, its storage
# in $IT_TMP/registry (or registry-2, ...). Sets REG (127.0.0.1:PORT),
# REG_URL, REG_PID, REG_DIR; waits up to 30 s for /v2/.
start_registry() {
	local inst
	inst=$(_it_instance registry)
	REG_DIR=$IT_TMP/$inst
	mkdir -p "$REG_DIR/data"
	printf 'version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n' \
		"$REG_DIR/data" >"$REG_DIR/config.yml"
	# REGISTRY_HTTP_ADDR overrides http.addr so _it_start can retry on a taken port
	_it_start "$inst" /v2/ 30 env REGISTRY_HTTP_ADDR=127.0.0.1:@PORT@ \
		docker-registry serve "$REG_DIR/config.yml"
	REG=127.0.0.1:$_IT_PORT REG_PID=$_IT_PID
	REG_URL=http://$REG
}

# pgw_metrics [URL]: print the Pushgateway's /metrics (text format);
# non-zero if it does not answer.
pgw_metrics() {
	curl -fsS --max-time 10 "${1:-$PGW_URL}/metrics" || {
		it_log "pgw_metrics: GET ${1:-$PGW_URL}/metrics failed"
		return 1
	}
}

# start_fake NAME SCRIPT [ARGS...]: start a Python fake from tests/fakes (or
# any script; relative paths resolve against the repo top, then $PWD) as
#   $IT_PY SCRIPT --port 0 --port-file $IT_TMP/<name>.port ARGS...
# The fake must write its listening port (decimal, newline optional) to the
# port file once it accepts connections (write-then-rename is best; a plain
# write works too). Waits up to 15 s. Sets ${NAME}_URL
# (http://127.0.0.1:PORT), ${NAME}_PORT and ${NAME}_PID; log in
# $IT_LOGS/<name>.log. Set FAKE_PY to run the script with another interpreter.
start_fake() {
	_it_fake_launch "$@"
	_it_fake_wait "$1"
}

# start_fakes NAME SCRIPT [ARGS...] [-- NAME SCRIPT [ARGS...]]...: start_fake
# for several fakes at once: all are started, then each is waited for (same
# variables, logs and limits as start_fake; saves their start-up times).
start_fakes() {
	local -a one=() names=()
	while [ $# -gt 0 ]; do
		if [ "$1" = -- ]; then
			[ ${#one[@]} -eq 0 ] || { _it_fake_launch "${one[@]}"; names+=("${one[0]}"); }
			one=()
		else
			one+=("$1")
		fi
		shift
	done
	[ ${#one[@]} -eq 0 ] || { _it_fake_launch "${one[@]}"; names+=("${one[0]}"); }
	local n
	for n in "${names[@]}"; do _it_fake_wait "$n"; done
}

declare -gA _IT_FAKE_PF=() _IT_FAKE_LOG=() _IT_FAKE_T0=() _IT_FAKE_SCRIPT=()

# _it_fake_launch NAME SCRIPT [ARGS...]: start_fake's first half (start the
# process); _it_fake_wait NAME: its second half (wait for the port file).
_it_fake_launch() {
	local name=${1:?start_fake NAME SCRIPT [ARGS...]} script=${2:?start_fake NAME SCRIPT [ARGS...]}
	shift 2
	[ -n "$IT_TMP" ] || fail "call it_init before start_fake"
	[[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || fail "start_fake: bad NAME '$name'"
	if [ ! -e "$script" ] && [ -e "$IT_TOP/$script" ]; then script=$IT_TOP/$script; fi
	[ -e "$script" ] || fail "start_fake: no such script: $script"
	local lname
	lname=$(_it_instance "${name,,}")
	local log=$IT_LOGS/$lname.log pf=$IT_TMP/$lname.port
	rm -f "$pf"
	_IT_FAKE_T0[$name]=$(date +%s%N) _IT_FAKE_PF[$name]=$pf _IT_FAKE_LOG[$name]=$log _IT_FAKE_SCRIPT[$name]=$script
	echo "+ ${FAKE_PY:-$IT_PY} $script --port 0 --port-file $pf $*" >>"$log"
	"${FAKE_PY:-$IT_PY}" "$script" --port 0 --port-file "$pf" "$@" >>"$log" 2>&1 </dev/null &
	printf -v "${name}_PID" '%s' "$!"
	_it_register "$!" "$lname"
}

_it_fake_wait() {
	local name=$1 pf=${_IT_FAKE_PF[$1]} log=${_IT_FAKE_LOG[$1]} port="" i
	local pidvar=${name}_PID
	local pid=${!pidvar}
	# Accept the port once the file holds a number that is stable across two
	# reads (a writer may not be atomic) and a TCP connect to it succeeds.
	local prev=
	for ((i = 0; i < 300; i++)); do
		if [ -s "$pf" ]; then
			port=$(tr -d ' \r\n' <"$pf")
			if [[ $port =~ ^[0-9]+$ ]] && [ "$port" -gt 0 ] && [ "$port" = "$prev" ] &&
				(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
				break
			fi
			prev=$port
			port=
		fi
		kill -0 "$pid" 2>/dev/null || fail "fake $name (${_IT_FAKE_SCRIPT[$name]}) exited during startup (see $log)"
		sleep 0.05
	done
	[ -n "$port" ] || fail "fake $name did not write $pf within 15 s (see $log)"
	printf -v "${name}_URL" 'http://127.0.0.1:%s' "$port"
	printf -v "${name}_PORT" '%s' "$port"
	it_log "fake $name ready at http://127.0.0.1:$port (pid $pid) in $(( ($(date +%s%N) - ${_IT_FAKE_T0[$name]}) / 1000000 )) ms"
}

# promq ARGS...: tests/integration/promq.py (see its --help).
promq() { "$IT_PY" "$IT_DIR/promq.py" "$@"; }

# rw_push URL SERIES VALUE TS_MS [...]: tests/integration/rw_push.py under
# /usr/bin/python3 (needs python3-snappy).
rw_push() { /usr/bin/python3 "$IT_DIR/rw_push.py" "$@"; }

# vm_promq ARGS...: vm_flush (of $VM_URL), then promq ARGS. Use it inside
# wait_for loops against VictoriaMetrics: a query that runs before a new
# series is flushed caches an empty answer for ~10 s unless flushed again.
vm_promq() { vm_flush && promq "$@"; }

# assert_eq EXPECTED ACTUAL MSG: exact string comparison; on mismatch shows
# a unified diff and fails.
assert_eq() {
	if [ "$1" != "$2" ]; then
		printf '[%s] assert_eq failed: %s\n' "${IT_NAME:-it}" "${3:-}" >&2
		diff -u --label expected --label actual <(printf '%s\n' "$1") <(printf '%s\n' "$2") >&2 || true
		fail "${3:-values differ}"
	fi
}

# assert_contains HAYSTACK NEEDLE MSG: fixed-substring test.
assert_contains() {
	if [[ $1 != *"$2"* ]]; then
		printf '[%s] assert_contains failed: %s\n--- needle:\n%s\n--- haystack:\n%s\n' \
			"${IT_NAME:-it}" "${3:-}" "$2" "$1" >&2
		fail "${3:-needle not found}"
	fi
}

# assert_not_contains HAYSTACK NEEDLE MSG
assert_not_contains() {
	if [[ $1 == *"$2"* ]]; then
		printf '[%s] assert_not_contains failed: %s\n--- needle:\n%s\n--- haystack:\n%s\n' \
			"${IT_NAME:-it}" "${3:-}" "$2" "$1" >&2
		fail "${3:-unexpected needle found}"
	fi
}

# stored_cycles LOG: how many cycles a `DEBUG=true nexus-shipper run`
# writing its stderr to LOG has stored so far ("cycle N at TS: K samples
# stored" lines; 0 while LOG does not exist).
stored_cycles() {
	[ -e "${1:?stored_cycles LOG}" ] || { echo 0; return 0; }
	grep -c 'samples stored' "$1" || true
}

# left_at_stop LOG: how many batches a `run` stopped by SIGTERM said it
# left in the spool for the next start (0 if it said nothing). A SIGTERM
# that lands during a send aborts that send and the batch stays: rare
# natively, where a send takes milliseconds, frequent under valgrind.
left_at_stop() {
	sed -n 's/.*\] \([0-9]*\) batch.* stay in the spool for the next start.*/\1/p' "${1:?left_at_stop LOG}" |
		tail -n 1 | grep . || echo 0
}

# wait_cycles LOG N [TIMEOUT_S=10]: wait_for (scaled timeout) until that
# run has stored N cycles in all. Use it instead of a fixed sleep after
# starting `run` (a process starts ~1 s slower under valgrind; once it
# cycles it keeps a 1 s interval), then sleep for the cycles the test needs.
wait_cycles() {
	wait_for "[ \$(stored_cycles '${1:?wait_cycles LOG N}') -ge ${2:?wait_cycles LOG N} ]" "${3:-10}"
}

# wait_for CMD [TIMEOUT_S=10]: eval CMD (a string, in this shell; pipes
# allowed; output discarded) every 0.1 s until it succeeds. TIMEOUT may be
# fractional and is multiplied by NS_TIME_SCALE. Returns 0, or prints a
# message and returns 1 on timeout (which ends the test under set -e unless
# the call is tested with if/||).
# Example: wait_for "vm_promq --range \$VM_URL up | grep -q ' 1 '" 20
wait_for() { wait_within "${1:?wait_for CMD [TIMEOUT]}" "$(tscale "${2:-10}")"; }

# wait_within CMD TIMEOUT_S: wait_for with a timeout NOT scaled, for a
# limit that is itself what the test asserts (a ping period, a deadline
# that must pass before an interval does).
wait_within() {
	local wcmd=${1:?wait_within CMD TIMEOUT} timeout=${2:?wait_within CMD TIMEOUT} deadline
	deadline=$(( $(date +%s%N) + $(_it_ms "$timeout") * 1000000 ))
	while :; do
		if eval "$wcmd" >/dev/null 2>&1; then return 0; fi
		if [ "$(date +%s%N)" -ge "$deadline" ]; then
			it_log "wait_for timed out after ${timeout}s: $wcmd"
			return 1
		fi
		sleep 0.1
	done
}

# ---------------------------------------------------------------------------
# Setup the test scripts share (issue 21): the binary under test, the
# healthy Nexus fake, the config blocks, spool counts, registry pushes.

# top_srcdir / top_builddir come from `make check` (AM_TESTS_ENVIRONMENT);
# run by hand, they default to this checkout and its _build directory.
top_srcdir=${top_srcdir:-$IT_TOP}
top_builddir=${top_builddir:-${BUILD_DIR:-$IT_TOP/_build}} # the benches set BUILD_DIR
# BIN: the nexus-shipper under test. Every nexus-shipper a test starts goes
# through it: under `make check NS_VALGRIND=1` it is tests/valgrind-wrap.sh.
BIN=${NEXUS_SHIPPER:-$top_builddir/nexus-shipper}

# pending SPOOL_DIR CONF [PREFIX=rw-]: how many batches `spool ls` lists in
# SPOOL_DIR (read with CONF) for the targets whose name starts with PREFIX.
pending() {
	NEXUS_SHIPPER_SHIPPER_SPOOL_DIR=${1:?pending SPOOL CONF [PREFIX]} "$BIN" -c "${2:?pending SPOOL CONF [PREFIX]}" spool ls |
		awk -v p="${3:-rw-}" 'index($1, p) == 1 {s += $2} END {print s + 0}'
}

# start_nexus_healthy [PASSWORD_FILE=$IT_TMP/nexus-password]: the Nexus
# fake on tests/fakes/scenarios/healthy.json (sets NEXUS_URL, NEXUS_PORT,
# NEXUS_PID) and its password ("metrics-secret", user "metrics") in
# PASSWORD_FILE, mode 600; sets NEXUS_PW to that file. nexus_conf prints
# the [nexus] section that reads it.
start_nexus_healthy() {
	NEXUS_PW=${1:-$IT_TMP/nexus-password}
	start_fake NEXUS tests/fakes/nexus_fake.py --scenario "$top_srcdir/tests/fakes/scenarios/healthy.json"
	printf 'metrics-secret\n' >"$NEXUS_PW"
	chmod 600 "$NEXUS_PW"
}

# nexus_conf: print a [nexus] section for the fake of start_nexus_healthy
# (url, username, password_file). Use it inside a configuration heredoc:
#   cat >"$IT_TMP/ns.conf" <<CONF
#   $(it_conf instance=ci state_dir="$IT_TMP")
#   $(nexus_conf)
#   CONF
nexus_conf() {
	printf '[nexus]\nurl = %s\nusername = metrics\npassword_file = %s\n' \
		"${NEXUS_URL:?nexus_conf: start the Nexus fake first}" "${NEXUS_PW:-$IT_TMP/nexus-password}"
}

# it_conf [KEY=VALUE...]: print a [shipper] section: "KEY = VALUE" for
# each argument, in order (the first on line 2 of the section), then
# spool_dir = $IT_TMP/spool unless an argument set spool_dir. Values are
# taken as they are (quote the argument: key="$IT_TMP/x").
it_conf() {
	local kv spool=1
	printf '[shipper]\n'
	for kv in "$@"; do
		[[ $kv == *=* ]] || fail "it_conf: '$kv' is not KEY=VALUE"
		[ "${kv%%=*}" != spool_dir ] || spool=
		printf '%s = %s\n' "${kv%%=*}" "${kv#*=}"
	done
	[ -z "$spool" ] || printf 'spool_dir = %s\n' "$IT_TMP/spool"
}

# registry_push OCI_DIR:TAG DEST_REF [SKOPEO_ARGS...]: copy the image TAG
# of the OCI layout OCI_DIR to docker://DEST_REF ("$REG/demo/app:v1", plain
# http) with skopeo, quietly. When OCI_DIR holds no layout yet, mkoci.py
# builds a small one with TAG first. Fails the test if the copy fails.
registry_push() {
	local src=${1:?registry_push OCI_DIR:TAG DEST_REF} dst=${2:?registry_push OCI_DIR:TAG DEST_REF}
	shift 2
	[ -e "${src%:*}/oci-layout" ] || "$IT_PY" "$IT_DIR/mkoci.py" "${src%:*}" "${src##*:}" >/dev/null ||
		fail "mkoci.py could not build $src"
	skopeo copy -q "$@" --dest-tls-verify=false "oci:$src" "docker://$dst" >/dev/null ||
		fail "could not push oci:$src to $dst"
}
