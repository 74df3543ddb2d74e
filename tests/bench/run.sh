#!/bin/sh
# tests/bench/run.sh: every benchmark of nexus-shipper, in order:
#   1. bench_encode  (series buffer memory, encode vs snappy floor, wire bytes,
#                     spool write throughput; a few seconds)
#   2. replay.sh     (outage-then-replay side by side with vmagent; several
#                     minutes: each contender sits through OUTAGE_S of outage)
# `make bench` runs it from the build directory. By hand:
#   cd _build && make tests/bench/bench_encode nexus-shipper && sh ../tests/bench/run.sh
# env: BUILD_DIR (default: $PWD), BENCH_SKIP_REPLAY=1 (only bench_encode),
#      BENCH_ENCODE_ARGS (e.g. "--reps 15"), and replay.sh's variables
#      (OUTAGE_S, NS_VARIANTS, VMAGENT_MODES, SERIES, CYCLES, KEEP).
# Prints the figures and the verdicts; exits 0 unless a bench could not run
# (a missed target is reported, not fatal: the bench does not gate CI).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD_DIR=$(cd "${BUILD_DIR:-$PWD}" && pwd)
export BUILD_DIR
rc=0
LOG=$(mktemp "${TMPDIR:-/tmp}/ns-bench.XXXXXX")
trap 'rm -f "$LOG"' EXIT

ENC=$BUILD_DIR/tests/bench/bench_encode
echo "== bench_encode ($(date -u '+%Y-%m-%d %H:%M:%SZ'), $(nproc) cores)"
if [ -x "$ENC" ]; then
	# shellcheck disable=SC2086
	"$ENC" ${BENCH_ENCODE_ARGS:-} | tee -a "$LOG" || rc=1
else
	echo "bench_encode: $ENC not built (make tests/bench/bench_encode)" >&2
	rc=1
fi

echo
if [ "${BENCH_SKIP_REPLAY:-0}" = 1 ]; then
	echo "== replay: skipped (BENCH_SKIP_REPLAY=1)"
elif ! command -v bash >/dev/null; then
	echo "== replay: skipped (needs bash)"
else
	echo "== replay (outage ${OUTAGE_S:-60}s per contender; several minutes)"
	bash "$HERE/replay.sh" | tee -a "$LOG" || rc=1
fi

echo
echo "== summary"
grep -E '^(verdict|bench_encode: (PASS|FAIL)|replay: SKIP)' "$LOG" || echo "(no verdicts: see the errors above)"
exit "$rc"
