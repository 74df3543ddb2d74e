#!/usr/bin/env bash
# Outage-then-replay benchmark: nexus-shipper side by side with vmagent.
#
# Both shippers take the same 1,000,000 samples (100k series x 10 cycles,
# replay_gen.py = the vmagent harness' gen.py) while their remote-write
# receiver is down, keep retrying through an outage of OUTAGE_S seconds,
# then a fresh VictoriaMetrics starts and we time the replay:
#   resume_s    from the receiver's /health answering to the first row
#               received (vm_rows_inserted_total > 0)
#   drain_s     from the first row to the last one
#   cpu_per_1M  the shipper's CPU seconds from the receiver's return to the
#               last row, per million samples
#   B/sample    bytes on disk in the shipper's queue/spool before the replay
#               (du -sb) / samples
#   peak_MiB    the shipper's peak RSS over the replay (VmHWM, reset when
#               the receiver starts)
#   delivered   samples stored by the receiver (/api/v1/export after
#               /internal/force_flush): must be 1,000,000
# Each contender gets its own fresh VictoriaMetrics, one after the other,
# so they never compete for the 2 cores.
#
# nexus-shipper: bench_spoolfill (compiled here against libnexusshipper.la)
# fills the spool through series buffer -> sender_submit -> spool_append
# (one segment of max_samples_per_send samples per batch), then
# `nexus-shipper run` starts against the dead port and replays.
#   variant "tuned":    min_backoff 100ms, max_backoff 1s, replay_rate 0
#   variant "defaults": the shipped defaults (500ms, 1m, replay_rate 50)
#   variant "batch10k": tuned + max_samples_per_send 10000 (vmagent's block
#                       size; an experiment, not in the default set)
# vmagent: -remoteWrite.tmpDataPath queue, loaded through
# /api/v1/import/prometheus, as in ../shared/bench/vmagent-replay.
#   mode "graceful": SIGINT + restart after the load (its queue goes to disk;
#                    what the B/sample figure needs)
#   mode "live":     no restart (everything stays in its RAM: 0 B on disk)
#
# usage: replay.sh            (from the build directory, or set BUILD_DIR)
# env:   BUILD_DIR (default: $PWD)  NEXUS_SHIPPER (default: $BUILD_DIR/nexus-shipper)
#        SERIES (100000) CYCLES (10) STEP (15 s between cycles) OUTAGE_S (60)
#        TIMEOUT_S (240: give up on a replay after this long)
#        NS_VARIANTS ("tuned defaults")  VMAGENT_MODES ("graceful"; "graceful live" for both;
#        an empty value skips that shipper)
#        NS_FILL_ARGS (extra bench_spoolfill arguments; default --sorted, the order sched_cycle batches in)
#        KEEP=1 keep the work directory
# Needs: victoria-metrics (Debian package; ships vmagent too), curl, python3.
# Exit 0 with the verdicts printed (the bench reports, it does not gate);
# non-zero only if the harness itself failed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD_DIR=$(cd "${BUILD_DIR:-$PWD}" && pwd)
BIN=${NEXUS_SHIPPER:-$BUILD_DIR/nexus-shipper}
SERIES=${SERIES:-100000}; CYCLES=${CYCLES:-10}; STEP=${STEP:-15}
OUTAGE_S=${OUTAGE_S:-60}; TIMEOUT_S=${TIMEOUT_S:-240}
NS_VARIANTS=${NS_VARIANTS-tuned defaults}
VMAGENT_MODES=${VMAGENT_MODES-graceful}
N=$((SERIES * CYCLES))
TCK=$(getconf CLK_TCK)
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3

say()    { printf '[replay] %s\n' "$*" >&2; }
now()    { date +%s.%N; }
sub()    { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.4f", a-b}'; }
# CPU seconds of a process: the sum of its threads' schedstat run time (ns
# precision), or utime+stime in clock ticks (10 ms) if schedstat is missing.
cpu_s() {
	local ns
	ns=$(cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s+=$1} END{if (NR) printf "%.0f", s}')
	if [ -n "$ns" ]; then awk -v n="$ns" 'BEGIN{printf "%.4f", n/1e9}'
	else awk -v t="$TCK" '{printf "%.3f", ($14+$15)/t}' "/proc/$1/stat"; fi
}
kb()     { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status"; }
metric() { curl -fsS --max-time 5 "$1" 2>/dev/null | awk -v m="$2" '$1==m{v=$2} END{printf "%d", v+0}'; }
free_port() {
	"$PY" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
wait_http() {
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	say "no answer from $1"; return 1
}
# stop PID [SIGNAL]: signal, wait up to 10 s, then SIGKILL; reap.
stop() {
	local pid=$1 sig=${2:-TERM} i
	[ -n "$pid" ] || return 0
	kill -s "$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
}

for c in victoria-metrics curl; do
	command -v "$c" >/dev/null || { echo "replay: SKIP: $c not installed (apt-get install victoria-metrics curl)"; exit 0; }
done
[ -x "$BIN" ] || { echo "replay: $BIN not built (make nexus-shipper, or set BUILD_DIR)" >&2; exit 2; }
[ -f "$BUILD_DIR/libnexusshipper.la" ] || { echo "replay: no libnexusshipper.la in $BUILD_DIR" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ns-replay.XXXXXX")
CPID=; VPID=
cleanup() {
	local rc=$?
	set +e
	stop "$CPID" KILL
	stop "$VPID" TERM
	if [ -n "${KEEP:-}" ] || [ "$rc" -ne 0 ]; then say "work files kept in $WORK"; else rm -rf "$WORK"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- bench_spoolfill, compiled against the convenience library ----------
say "compiling bench_spoolfill against $BUILD_DIR/libnexusshipper.la"
# every source folder is on the include path (headers by bare name, src/README.md)
SRC_INC=()
for d in "$SRC"/src "$SRC"/src/*/; do SRC_INC+=("-I${d%/}"); done
# shellcheck disable=SC2046
"$BUILD_DIR/libtool" --quiet --mode=link --tag=CC "${CC:-gcc}" -std=c11 -D_GNU_SOURCE -O2 \
	-o "$WORK/bench_spoolfill" "$HERE/bench_spoolfill.c" \
	"${SRC_INC[@]}" -I"$BUILD_DIR" -I"$BUILD_DIR/proto" "$BUILD_DIR/libnexusshipper.la" \
	$(pkg-config --libs libcurl libprotobuf-c json-c libpq openssl) -lsnappy -lm \
	>"$WORK/cc.log" 2>&1 || { cat "$WORK/cc.log" >&2; exit 2; }

# ---- the replay measurement, common to both ------------------------------
# measure NAME QBYTES EXPECT: CPID is the shipper (already retrying against
# the dead port for OUTAGE_S). Starts a fresh VictoriaMetrics on VM_PORT,
# times the replay until vm_rows_inserted_total >= EXPECT, counts what was
# stored, appends one line to $WORK/results and prints it.
measure() {
	local name=$1 qbytes=$2 expect=$3 vdir c1 t_ret t_first='' t_done='' got=0 t vm_cpu='' i delivered=0
	echo 5 >"/proc/$CPID/clear_refs" 2>/dev/null || true   # reset VmHWM
	c1=$(cpu_s "$CPID")
	vdir=$WORK/vm-$name
	victoria-metrics -storageDataPath="$vdir" -httpListenAddr="127.0.0.1:$VM_PORT" \
		-retentionPeriod=100y -search.latencyOffset=0s -search.disableCache \
		-loggerLevel=ERROR >>"$WORK/vm-$name.log" 2>&1 &
	VPID=$!
	wait_http "http://127.0.0.1:$VM_PORT/health" 30
	t_ret=$(now)
	while :; do
		got=$(metric "http://127.0.0.1:$VM_PORT/metrics" 'vm_rows_inserted_total{type="promremotewrite"}')
		t=$(now)
		[ -z "$t_first" ] && [ "$got" -gt 0 ] && t_first=$t
		if [ "$got" -ge "$expect" ]; then t_done=$t; vm_cpu=$(cpu_s "$VPID"); break; fi
		[ "$(sub "$t" "$t_ret" | cut -d. -f1)" -ge "$TIMEOUT_S" ] && { say "$name: timeout, $got/$expect rows"; break; }
		kill -0 "$CPID" 2>/dev/null || { say "$name: the shipper died"; break; }
		sleep 0.05
	done
	local rcpu rkb
	rcpu=$(sub "$(cpu_s "$CPID")" "$c1")
	rkb=$(kb "$CPID" VmHWM)
	: "${vm_cpu:=$(cpu_s "$VPID")}"
	# received is not yet searchable: flush, then count every stored sample
	for ((i = 0; i < 20; i++)); do
		curl -fsS -o /dev/null "http://127.0.0.1:$VM_PORT/internal/force_flush" || true
		delivered=$(curl -fsS "http://127.0.0.1:$VM_PORT/api/v1/export" \
			--data-urlencode 'match[]={__name__=~"nexus_bench_.*"}' -d start=1 \
			-d end=$(($(date +%s) + 86400)) |
			"$PY" -c 'import sys, json; print(sum(len(json.loads(l)["values"]) for l in sys.stdin))')
		[ "$delivered" -ge "$N" ] && break
		sleep 0.5
	done
	stop "$VPID" TERM; VPID=
	local line
	line=$(awk -v nm="$name" -v qb="$qbytes" -v n="$N" -v tr="$t_ret" -v tf="${t_first:-}" \
		-v td="${t_done:-}" -v rc="$rcpu" -v rk="$rkb" -v vc="$vm_cpu" -v d="$delivered" 'BEGIN{
		printf "%s\t%s\t%s\t%.3f\t%.2f\t%.1f\t%d\t%s\n", nm,
			(tf=="" ? "never" : sprintf("%.2f", tf-tr)),
			(td=="" || tf=="" ? "never" : sprintf("%.2f", td-tf)),
			rc*1e6/n, qb/n, rk/1024, d, vc }')
	echo "$line" >>"$WORK/results"
	echo "$line" | awk -F'\t' '{printf "%s: resume_s=%s drain_s=%s cpu_s_per_1M=%s bytes_per_sample=%s replay_peak_mib=%s delivered=%s receiver_cpu_s=%s\n", $1,$2,$3,$4,$5,$6,$7,$8}'
}

# ---- vmagent --------------------------------------------------------------
run_vmagent() {
	local mode=$1
	local qdir=$WORK/vmagent-q-$mode want f agent_port idle_kb ingest_c0 ingest_cpu peak_kb qbytes
	command -v vmagent >/dev/null || { say "vmagent not installed: skipped"; return 0; }
	VM_PORT=$(free_port); agent_port=$(free_port)
	local url="http://127.0.0.1:$VM_PORT/api/v1/write"
	start_agent() {
		# shellcheck disable=SC2086
		vmagent -remoteWrite.url="$url" -remoteWrite.tmpDataPath="$qdir" \
			-httpListenAddr="127.0.0.1:$agent_port" -loggerLevel=ERROR \
			${VMAGENT_FLAGS:-} >>"$WORK/vmagent-$mode.log" 2>&1 &
		CPID=$!
		wait_http "http://127.0.0.1:$agent_port/health" 30
	}
	say "vmagent ($mode): loading $N samples with the receiver down"
	start_agent
	sleep 1
	idle_kb=$(kb "$CPID" VmRSS)
	ingest_c0=$(cpu_s "$CPID")
	for f in "$WORK"/data/cycle-*.prom; do
		curl -fsS --data-binary @"$f" "http://127.0.0.1:$agent_port/api/v1/import/prometheus"
	done
	want=$N
	until [ "$(metric "http://127.0.0.1:$agent_port/metrics" 'vmagent_rows_inserted_total{type="prometheus"}')" -ge "$want" ]; do
		sleep 0.05
	done
	sleep "${SETTLE_S:-2}"   # let its queue flush (-remoteWrite.flushInterval=1s)
	ingest_cpu=$(sub "$(cpu_s "$CPID")" "$ingest_c0")
	peak_kb=$(kb "$CPID" VmHWM)
	if [ "$mode" = graceful ]; then stop "$CPID" INT; start_agent; fi
	qbytes=$(du -sb "$qdir" | cut -f1)
	say "vmagent ($mode): outage of ${OUTAGE_S}s (it keeps retrying), then a fresh VictoriaMetrics"
	sleep "$OUTAGE_S"
	measure "vmagent-$mode" "$qbytes" "$N"
	printf 'vmagent-%s: idle_rss_mib=%.1f ingest_cpu_s_per_1M=%.2f ingest_peak_mib=%.1f\n' "$mode" \
		"$(awk -v k="$idle_kb" 'BEGIN{print k/1024}')" "$(awk -v c="$ingest_cpu" -v n="$N" 'BEGIN{print c*1e6/n}')" \
		"$(awk -v k="$peak_kb" 'BEGIN{print k/1024}')"
	stop "$CPID" INT; CPID=
}

# ---- nexus-shipper --------------------------------------------------------
run_nexus() {
	local variant=$1
	local d=$WORK/ns-$variant qbytes fill expect idle_kb extra rate
	VM_PORT=$(free_port)
	mkdir -p "$d"
	case $variant in
		tuned)    extra=$'min_backoff = 100ms\nmax_backoff = 1s'; rate=0 ;;
		defaults) extra=; rate=50 ;;
		batch10k) extra=$'min_backoff = 100ms\nmax_backoff = 1s\nmax_samples_per_send = 10000'; rate=0 ;;
		*) echo "unknown nexus-shipper variant $variant" >&2; exit 2 ;;
	esac
	cat >"$d/ns.conf" <<CONF
[shipper]
instance = bench
# one cycle (self-metrics) at start-up only
interval = 1h
spool_dir = $d/spool
state_dir = $d
spool_max_size = 10GiB
replay_rate = $rate
log_file = $d/ns.log
[remote_write]
url = http://127.0.0.1:$VM_PORT/api/v1/write
$extra
CONF
	"$BIN" -c "$d/ns.conf" check-config >/dev/null
	say "nexus-shipper ($variant): bench_spoolfill puts $N samples into the spool, receiver down"
	# shellcheck disable=SC2086
	fill=$("$WORK/bench_spoolfill" -c "$d/ns.conf" --series "$SERIES" --cycles "$CYCLES" --step "$STEP" \
		${NS_FILL_ARGS---sorted} 2>>"$d/fill.log")
	qbytes=$(du -sb "$d/spool" | cut -f1)
	"$BIN" -c "$d/ns.conf" run 2>>"$d/ns.stderr" &
	CPID=$!
	sleep 1
	kill -0 "$CPID" || { cat "$d/ns.stderr" >&2; echo "nexus-shipper run exited" >&2; exit 2; }
	idle_kb=$(kb "$CPID" VmRSS)
	# everything spooled (ours + its own first cycle of self-metrics), oldest first
	expect=$("$BIN" -c "$d/ns.conf" spool ls | awk '$1=="rw-default"{print $3}')
	: "${expect:=$N}"
	say "nexus-shipper ($variant): outage of ${OUTAGE_S}s (it keeps retrying), then a fresh VictoriaMetrics"
	sleep "$OUTAGE_S"
	measure "nexus-shipper-$variant" "$qbytes" "$expect"
	echo "nexus-shipper-$variant: idle_rss_mib=$(awk -v k="$idle_kb" 'BEGIN{printf "%.1f", k/1024}') fill: $fill" \
		"(bench_spoolfill: series buffer + encode + spool; spooled rows incl. self-metrics: $expect)"
	stop "$CPID" TERM; CPID=
}

say "work dir $WORK; $N samples ($SERIES series x $CYCLES cycles), outage ${OUTAGE_S}s, $(nproc) cores"
"$PY" "$HERE/replay_gen.py" "$WORK/data" --series "$SERIES" --cycles "$CYCLES" --step "$STEP" >/dev/null
: >"$WORK/results"
echo "# replay: $N samples ($SERIES series x $CYCLES cycles), outage ${OUTAGE_S}s, $(nproc) cores;" \
	"vmagent $(dpkg-query -W -f '${Version}' victoria-metrics 2>/dev/null || echo '?'), nexus-shipper $("$BIN" version 2>/dev/null | head -1)"
for m in $VMAGENT_MODES; do run_vmagent "$m"; done
for v in $NS_VARIANTS; do run_nexus "$v"; done

# ---- the table, ratios and verdicts ---------------------------------------
echo
awk -F'\t' -v n="$N" '
	{ name[NR]=$1; res[NR]=$2; dr[NR]=$3; cpu[NR]=$4; bps[NR]=$5; pk[NR]=$6; del[NR]=$7; vc[NR]=$8 }
	END {
		printf "%-24s %9s %8s %12s %9s %9s %10s %12s\n", "shipper", "resume_s", "drain_s", "CPU-s/1M", "B/sample", "peak_MiB", "delivered", "receiver_CPU"
		for (i = 1; i <= NR; i++)
			printf "%-24s %9s %8s %12s %9s %9s %10s %12s\n", name[i], res[i], dr[i], cpu[i], bps[i], pk[i], del[i], vc[i]
		# reference: the first vmagent row with bytes on disk, else the first vmagent row
		ref = 0
		for (i = 1; i <= NR; i++) if (name[i] ~ /^vmagent/ && bps[i] > 0 && !ref) ref = i
		for (i = 1; i <= NR; i++) if (name[i] ~ /^vmagent/ && !ref) ref = i
		print ""
		for (i = 1; i <= NR; i++) {
			if (name[i] !~ /^nexus-shipper/) continue
			ok_res = res[i] != "never" && res[i] + 0 <= 5
			ok_del = del[i] + 0 >= n
			line = sprintf("verdict %-22s resume %s s %s (target <= 5 s); delivered %d/%d %s", name[i], res[i], ok_res ? "PASS" : "FAIL", del[i], n, ok_del ? "PASS" : "FAIL")
			if (ref) {
				ok_cpu = cpu[i] + 0 <= cpu[ref] + 0
				ok_b = bps[i] + 0 <= bps[ref] + 0
				line = line sprintf("; CPU %s vs %s s/1M = %.2fx %s; bytes %s vs %s B/sample = %.2fx %s (vs %s)",
					cpu[i], cpu[ref], (cpu[ref] > 0 ? cpu[i] / cpu[ref] : 0), ok_cpu ? "PASS" : "FAIL",
					bps[i], bps[ref], (bps[ref] > 0 ? bps[i] / bps[ref] : 0), ok_b ? "PASS" : "FAIL", name[ref])
				if (res[ref] != "never" && res[i] != "never")
					line = line sprintf("; resume %.2fx, drain %.2fx, peak RSS %.2fx of vmagent", (res[ref] > 0 ? res[i] / res[ref] : 0), (dr[ref] > 0 ? dr[i] / dr[ref] : 0), (pk[ref] > 0 ? pk[i] / pk[ref] : 0))
			} else line = line "; no vmagent row to compare with"
			print line
		}
	}' "$WORK/results"
