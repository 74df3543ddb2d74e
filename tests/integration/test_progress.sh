#!/bin/bash
# Live progress of long CLI work (issue 19, src/progress.h), through the
# real binary:
#  - under a pseudo-terminal (util-linux `script`): one line redrawn with
#    "\r" ... "\033[K" showing done/total, percentage, rate and ETA, then a
#    final line; for `spool replay` (12 batches at --rate 4 into a real
#    VictoriaMetrics), `cleanup` (3 repositories, 6 tags, 2 config GETs,
#    6 manifests deleted in a real docker-registry), `skopeo copy --from-file` (3 jobs,
#    --parallel 2) and a single `skopeo copy` (bytes of the source
#    manifest's blobs);
#  - with stderr in a file: plain lines (no "\r", no escape sequences)
#    every NS_PROGRESS_INTERVAL seconds (0 here: every update),
#    and with the default interval (5 s) a short run adds no line at all;
#  - spool export/import: segments, in the plain form;
#  - stdout keeps only the results (the plan, the summaries, --json).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init progress
BIN=${NEXUS_SHIPPER:-$top_builddir/nexus-shipper}
for t in script docker-registry skopeo; do
	command -v "$t" >/dev/null || { it_log "SKIP: $t not installed"; exit 77; }
done
unset NS_PROGRESS NS_PROGRESS_INTERVAL

# pty OUT CMD...: CMD under a pseudo-terminal (stdout and stderr both on it),
# everything it wrote in OUT; sets PTY_RC
pty() {
	local out=$1 cmd
	shift
	cmd=$(printf '%q ' "$@")
	PTY_RC=0
	TERM=xterm script -qfec "$cmd" /dev/null >"$out" 2>&1 </dev/null || PTY_RC=$?
}
# has OUT ERE WHAT: OUT (control characters kept) matches the ERE
has() { grep -aqE -- "$2" "$1" || fail "$3: no /$2/ in $(cat -A "$1" | head -c 3000)"; }
hasnt() { ! grep -aqE -- "$2" "$1" || fail "$3: /$2/ in $(cat -A "$1" | head -c 3000)"; }
CR=$'\r' ESC=$'\033'

# ---- 1. spool replay ---------------------------------------------------------
cat >"$IT_TMP/a.conf" <<CONF
[shipper]
instance = progress
spool_dir = $IT_TMP/spool
spool_only = true
CONF
for i in $(seq 1 12); do "$BIN" -c "$IT_TMP/a.conf" once >/dev/null 2>&1; done
cp -a "$IT_TMP/spool" "$IT_TMP/spool2"
# export / import with stderr in a file, a line per segment
NS_PROGRESS_INTERVAL=0 "$BIN" -c "$IT_TMP/a.conf" spool export --to "$IT_TMP/carry.nxs" \
	>"$IT_TMP/export.out" 2>"$IT_TMP/export.err"
has "$IT_TMP/export.err" "^spool export: [0-9]+/12 segments \([0-9]+%\)" "export: a progress line"
has "$IT_TMP/export.err" "^spool export: 12/12 segments in " "export: the final line"
has "$IT_TMP/export.out" "exported 12 segment" "export: the result"
NS_PROGRESS_INTERVAL=0 NEXUS_SHIPPER_SHIPPER_SPOOL_DIR=$IT_TMP/spool-imp "$BIN" -c "$IT_TMP/a.conf" \
	spool import "$IT_TMP/carry.nxs" >"$IT_TMP/import.out" 2>"$IT_TMP/import.err"
has "$IT_TMP/import.err" "^spool import: [0-9]+ segments" "import: a progress line"
has "$IT_TMP/import.err" "^spool import: 12 segments in " "import: the final line"
has "$IT_TMP/import.out" "imported 12 segment" "import: the result"
cp -a "$IT_TMP/spool" "$IT_TMP/spool3"
start_victoriametrics
cat >"$IT_TMP/b.conf" <<CONF
[shipper]
instance = progress
spool_dir = $IT_TMP/spool
CONF
pty "$IT_TMP/replay.tty" "$BIN" -c "$IT_TMP/b.conf" spool replay --url "$VM_URL/api/v1/write" --rate 4
assert_eq 0 "$PTY_RC" "replay under a terminal ($(cat -A "$IT_TMP/replay.tty" | head -c 2000))"
has "$IT_TMP/replay.tty" "${CR}spool replay: [0-9]+/12 batches \([0-9]+%\), [0-9.]+/s, ETA [0-9]+s${ESC}\[K${CR}" \
	"replay: a redrawn line with done/total, percentage, rate and ETA"
has "$IT_TMP/replay.tty" "${CR}spool replay: 12/12 batches in [0-9.]+s \([0-9.]+/s\)${ESC}\[K" \
	"replay: the final line"
has "$IT_TMP/replay.tty" "replayed 12 segment\(s\)" "replay: the result"
[ "$(grep -aoE "${CR}spool replay: [0-9]+/12 batches \(" "$IT_TMP/replay.tty" | sort -u | wc -l)" -ge 2 ] ||
	fail "replay: the line was not updated ($(cat -A "$IT_TMP/replay.tty"))"

# stderr in a file, interval 0: plain lines, stdout untouched
NS_PROGRESS_INTERVAL=0 NEXUS_SHIPPER_SHIPPER_SPOOL_DIR=$IT_TMP/spool2 \
	"$BIN" -c "$IT_TMP/b.conf" spool replay --url "$VM_URL/api/v1/write" --rate 4 \
	>"$IT_TMP/replay.out" 2>"$IT_TMP/replay.err"
has "$IT_TMP/replay.err" "^spool replay: [0-9]+/12 batches \([0-9]+%\), [0-9.]+/s, ETA [0-9]+s$" \
	"replay, plain: a progress line"
has "$IT_TMP/replay.err" "^spool replay: 12/12 batches in [0-9.]+s" "replay, plain: the final line"
hasnt "$IT_TMP/replay.err" "[$CR$ESC]" "replay, plain: no terminal control characters"
hasnt "$IT_TMP/replay.out" "batches" "replay: no progress on stdout"
# default interval (5 s): a replay shorter than that stays silent (cron)
NEXUS_SHIPPER_SHIPPER_SPOOL_DIR=$IT_TMP/spool3 \
	"$BIN" -c "$IT_TMP/b.conf" spool replay --url "$VM_URL/api/v1/write" \
	>"$IT_TMP/replay3.out" 2>"$IT_TMP/replay3.err"
has "$IT_TMP/replay3.out" "replayed 12 segment\(s\)" "fast replay: the result"
hasnt "$IT_TMP/replay3.err" "batches" "fast replay: no progress lines by default"

# ---- 2. cleanup against a real registry --------------------------------------
mkimg() { "$IT_PY" "$IT_DIR/oci_image.py" "$IT_TMP/oci" "$@" >/dev/null; }
mkimg old-a --created 2020-01-01T00:00:00Z --content a --size 3000
mkimg old-b --created 2020-01-01T00:00:00Z --content b --size 3000
start_registry
for r in r1 r2 r3; do
	for t in old-a old-b; do
		skopeo copy -q --dest-tls-verify=false "oci:$IT_TMP/oci:$t" "docker://$REG/$r:$t" ||
			fail "push $r:$t"
	done
done
mkdir -p "$IT_TMP/state"
cat >"$IT_TMP/c.conf" <<CONF
[shipper]
instance = progress
state_dir = $IT_TMP/state
spool_dir = $IT_TMP/spool-c
[cleanup]
registry_url = $REG_URL
days_to_keep = 30
keep_last = 0
CONF
NS_PROGRESS_INTERVAL=0 "$BIN" -c "$IT_TMP/c.conf" cleanup --dry-run --no-cache \
	>"$IT_TMP/plan.out" 2>"$IT_TMP/plan.err" || fail "dry run ($(cat "$IT_TMP/plan.err"))"
has "$IT_TMP/plan.err" "^cleanup: listing tags: [0-9]/3 repositories \([0-9]+%\)" "cleanup, plain: repositories"
has "$IT_TMP/plan.err" "^cleanup: reading manifests: [0-9]/6 tags \([0-9]+%\)" "cleanup, plain: tags"
has "$IT_TMP/plan.err" "^cleanup: reading manifests: 6/6 tags in " "cleanup, plain: final line"
has "$IT_TMP/plan.err" "^cleanup: reading configs: [12]/2 requests \([0-9]+%\)" "cleanup, plain: config GETs"
hasnt "$IT_TMP/plan.err" "[$CR$ESC]" "cleanup, plain: no control characters"
has "$IT_TMP/plan.out" "r1:old-a delete" "cleanup: the plan on stdout"
hasnt "$IT_TMP/plan.out" "repositories \(|tags \(" "cleanup: no progress in the plan"
pty "$IT_TMP/cleanup.tty" "$BIN" -c "$IT_TMP/c.conf" cleanup --no-cache
assert_eq 0 "$PTY_RC" "cleanup under a terminal ($(cat -A "$IT_TMP/cleanup.tty" | head -c 3000))"
has "$IT_TMP/cleanup.tty" "${CR}cleanup: listing tags: [0-9]/3 repositories \([0-9]+%\)" "cleanup: repositories line"
has "$IT_TMP/cleanup.tty" "${CR}cleanup: reading manifests: [0-9]/6 tags \([0-9]+%\)" "cleanup: tags line"
has "$IT_TMP/cleanup.tty" "${CR}cleanup: deleting: [0-9]/6 manifests \([0-9]+%\)" "cleanup: deletes line"
has "$IT_TMP/cleanup.tty" "${CR}cleanup: deleting: 6/6 manifests in [0-9.]+s" "cleanup: deletes final line"
assert_eq "" "$(curl -fsS "$REG_URL/v2/r2/tags/list" | grep -o '"old-a"' || true)" "r2:old-a deleted"

# ---- 3. skopeo copy --from-file, and one copy's bytes ---------------------------
cat >"$IT_TMP/s.conf" <<CONF
[shipper]
instance = progress
state_dir = $IT_TMP/state
CONF
for i in 1 2 3; do echo "oci:$IT_TMP/oci:old-a dir:$IT_TMP/copy$i"; done >"$IT_TMP/jobs.txt"
pty "$IT_TMP/jobs.tty" "$BIN" -c "$IT_TMP/s.conf" skopeo copy --no-metrics --parallel 2 --from-file "$IT_TMP/jobs.txt"
assert_eq 0 "$PTY_RC" "from-file under a terminal ($(cat -A "$IT_TMP/jobs.tty" | head -c 3000))"
has "$IT_TMP/jobs.tty" "${CR}skopeo copy: [0-9]/3 jobs \([0-9]+%\)" "from-file: jobs line"
has "$IT_TMP/jobs.tty" "${CR}skopeo copy: 3/3 jobs in [0-9.]+s" "from-file: final line"
has "$IT_TMP/jobs.tty" "summary: 3 jobs, 3 succeeded" "from-file: the summary"
rm -rf "$IT_TMP"/copy?
NS_PROGRESS_INTERVAL=0 "$BIN" -c "$IT_TMP/s.conf" skopeo copy --no-metrics --parallel 2 \
	--from-file "$IT_TMP/jobs.txt" >"$IT_TMP/jobs.out" 2>"$IT_TMP/jobs.err"
has "$IT_TMP/jobs.err" "^skopeo copy: [0-9]/3 jobs \([0-9]+%\), [0-9.]+/s.*, [0-9.]+ KiB copied$" "from-file, plain"
hasnt "$IT_TMP/jobs.out" "jobs \(" "from-file: no progress on stdout"
rm -rf "$IT_TMP"/copy?
NS_PROGRESS_INTERVAL=0 "$BIN" -c "$IT_TMP/s.conf" skopeo copy --json --no-metrics \
	--from-file "$IT_TMP/jobs.txt" >"$IT_TMP/jobs.json" 2>"$IT_TMP/jobs-json.err"
hasnt "$IT_TMP/jobs-json.err" "jobs \(" "from-file --json: no progress lines"
"$IT_PY" -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$IT_TMP/jobs.json" ||
	fail "--json output is JSON lines"

mkimg big --created 2020-01-01T00:00:00Z --content big --size 3000000
pty "$IT_TMP/one.tty" "$BIN" -c "$IT_TMP/s.conf" skopeo copy --no-metrics "oci:$IT_TMP/oci:big" "dir:$IT_TMP/big"
assert_eq 0 "$PTY_RC" "one copy under a terminal ($(cat -A "$IT_TMP/one.tty" | head -c 3000))"
has "$IT_TMP/one.tty" "${CR}skopeo copy: [0-9.]+ (B|KiB|MiB)/2\.[0-9]+ MiB \([0-9]+%\)" "one copy: bytes of the total"
has "$IT_TMP/one.tty" "${CR}skopeo copy: 2\.[0-9]+ MiB/2\.[0-9]+ MiB in [0-9.]+s" "one copy: final line"
it_log ok
