#!/bin/bash
# Database collectors at the scale of a big Nexus (issue 6): a real
# PostgreSQL 15 filled by tests/fixtures/nexus_data.sql with ~1,000,000
# assets, ~200,000 components, 52 repositories (maven2, npm, raw, docker),
# then, side by side in the same run:
#  - the floor: one `SELECT repository_id, sum(asset_blob_size) ... GROUP BY
#    repository_id` per format over the same tables (warm cache);
#  - the whole DB collection: `nexus-shipper once --dry-run` with only
#    [database] + [cleanup] (every db_* collector), its per-query times
#    (DEBUG log) and per-collector durations, and its peak RSS;
#  - the REST path's request count for the same data (components pages of
#    100 per repository + the repositories listing);
#  - EXPLAIN (ANALYZE, BUFFERS) of every collector query (auto_explain) in
#    $OUT/postgres.log.
# Targets: whole collection <= 3x the floor; peak RSS < 50 MiB.
#
# Usage (from the build dir, or set BUILD_DIR):  bash ../tests/bench/db_bench.sh
# Variables: REPOS (12 per format), COMPS (4000), APC (6), IMAGES (900),
# RUNS (3: best of), KEEP=1 keeps the cluster directory, BASE_BIN=<another
# nexus-shipper> also times that binary in every run, right after this one
# (an A/B under the same load; its ratio is printed as "baseline").
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$PWD}
BIN=$BUILD_DIR/nexus-shipper
[ -x "$BIN" ] || { echo "db_bench: $BIN not built" >&2; exit 1; }
[ -x /usr/lib/postgresql/15/bin/postgres ] || { echo "db_bench: SKIP (no PostgreSQL 15)"; exit 0; }
[ -n "${KEEP:-}" ] && export IT_KEEP=1
. "$SRC/tests/integration/lib.sh"
it_init dbbench
. "$SRC/tests/integration/pg.sh"
REPOS=${REPOS:-12} COMPS=${COMPS:-4000} APC=${APC:-6} IMAGES=${IMAGES:-900} RUNS=${RUNS:-3}

start_postgres -c shared_buffers=256MB -c max_wal_size=4GB -c log_min_messages=info
pg_psql -d postgres -c "CREATE DATABASE nexus"
pg_psql -d nexus -f "$SRC/tests/fixtures/nexus_schema.sql"
t0=$(date +%s%N)
pg_psql -d nexus \
	-v repos="$REPOS" -v comps="$COMPS" -v apc="$APC" -v images="$IMAGES" \
	-f "$SRC/tests/fixtures/nexus_data.sql" 2>&1 | grep -v '^SET$' || true
gen_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
pg_psql -d nexus -c "VACUUM ANALYZE"
pg_psql -d nexus -c "CREATE ROLE nexus_ro LOGIN PASSWORD 'ro'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO nexus_ro"
read -r assets comps repos dbsize < <(pg_psql -d nexus -At -F' ' -c "SELECT (SELECT count(*) FROM maven2_asset) + (SELECT count(*) FROM npm_asset) + (SELECT count(*) FROM raw_asset) + (SELECT count(*) FROM docker_asset),
	(SELECT count(*) FROM maven2_component) + (SELECT count(*) FROM npm_component) + (SELECT count(*) FROM raw_component) + (SELECT count(*) FROM docker_component),
	(SELECT count(*) FROM repository WHERE recipe_name NOT LIKE 'pypi%'), pg_size_pretty(pg_database_size('nexus'))" | tail -1)
rest_requests=$(pg_psql -d nexus -At -c "SELECT 1 + sum(greatest(1, ceil(n / 100.0)))::bigint FROM (
	  SELECT (SELECT count(*) FROM maven2_component c WHERE c.repository_id = cr.repository_id) n FROM maven2_content_repository cr
	  UNION ALL SELECT (SELECT count(*) FROM npm_component c WHERE c.repository_id = cr.repository_id) FROM npm_content_repository cr
	  UNION ALL SELECT (SELECT count(*) FROM raw_component c WHERE c.repository_id = cr.repository_id) FROM raw_content_repository cr
	  UNION ALL SELECT (SELECT count(*) FROM docker_component c WHERE c.repository_id = cr.repository_id) FROM docker_content_repository cr) x" | tail -1)
echo "dataset: $assets assets, $comps components, $repos repositories, database $dbsize (generated in $gen_ms ms)"

floor_ms() { # one GROUP BY sum per format, wall time of the lot, over TCP like the shipper
	local t0 f
	t0=$(date +%s%N)
	for f in maven2 npm raw docker; do
		PGPASSWORD=ro "$PG_BIN/psql" -X -q -At -h 127.0.0.1 -p "$PG_PORT" -U nexus_ro -d nexus \
			-c "SELECT repository_id, sum(asset_blob_size) FROM ${f}_asset GROUP BY repository_id" >/dev/null
	done
	echo $(( ($(date +%s%N) - t0) / 1000000 ))
}
printf 'ro\n' >"$IT_TMP/pw"
cat >"$IT_TMP/ns.conf" <<CONF
[shipper]
instance = bench
spool_dir = $IT_TMP/spool
state_dir = $IT_TMP
collector_timeout = 120s
[remote_write]
url = http://127.0.0.1:9/api/v1/write
[database]
conninfo = host=127.0.0.1 port=$PG_PORT dbname=nexus user=nexus_ro sslmode=disable
password_file = $IT_TMP/pw
statement_timeout = 120s
[cleanup]
days_to_keep = 90
protected_tags = latest
protected_patterns = release
keep_last = 2
CONF
floor_ms >/dev/null # warm the cache
best_floor= best_once= best_rss= best_base=
for r in $(seq 1 "$RUNS"); do
	f=$(floor_ms)
	t0=$(date +%s%N)
	DEBUG=true /usr/bin/time -f '%M' -o "$IT_TMP/rss" "$BIN" -c "$IT_TMP/ns.conf" once --dry-run \
		>"$IT_TMP/out.prom" 2>"$IT_TMP/once.log"
	o=$(( ($(date +%s%N) - t0) / 1000000 ))
	rss=$(tail -1 "$IT_TMP/rss")
	echo "run $r: floor ${f} ms, whole DB collection ${o} ms, peak RSS ${rss} KiB"
	if [ -n "${BASE_BIN:-}" ]; then
		t0=$(date +%s%N)
		"$BASE_BIN" -c "$IT_TMP/ns.conf" once --dry-run >"$IT_TMP/base.prom" 2>/dev/null
		b=$(( ($(date +%s%N) - t0) / 1000000 ))
		echo "run $r: baseline $BASE_BIN ${b} ms"
		if [ -z "$best_base" ] || [ "$b" -lt "$best_base" ]; then best_base=$b; fi
	fi
	if [ -z "$best_floor" ] || [ "$f" -lt "$best_floor" ]; then best_floor=$f; fi
	if [ -z "$best_once" ] || [ "$o" -lt "$best_once" ]; then best_once=$o; cp "$IT_TMP/once.log" "$IT_TMP/best.log"; fi
	if [ -z "$best_rss" ] || [ "$rss" -gt "$best_rss" ]; then best_rss=$rss; fi
done
echo "per query (best run):"
grep -o 'database query [^:]*: [0-9]* rows in [0-9]* ms' "$IT_TMP/best.log" | sed 's/^/  /'
echo "per collector (last run):"
grep '^nexus_shipper_collector_duration_seconds' "$IT_TMP/out.prom" | sed 's/^/  /'
grep '^nexus_shipper_collector_up' "$IT_TMP/out.prom" | grep -v ' 1$' | sed 's/^/  DOWN: /' || true
series=$(grep -c '^nexus_' "$IT_TMP/out.prom" || true)
echo "series produced: $series"
echo "REST path for the same data: $rest_requests requests (GET /v1/components pages of 100 + /v1/repositories)"
ratio=$(awk -v a="$best_once" -v b="$best_floor" 'BEGIN { printf "%.2f", a / b }')
[ -n "$best_base" ] && echo "baseline whole-collection/floor = $(awk -v a="$best_base" -v b="$best_floor" 'BEGIN { printf "%.2f", a / b }') ($BASE_BIN)"
v1=FAIL v2=FAIL
awk -v r="$ratio" 'BEGIN { exit !(r <= 3) }' && v1=PASS
[ "$best_rss" -lt 51200 ] && v2=PASS
echo "verdict whole-collection/floor = $ratio (target <= 3) $v1"
echo "verdict peak RSS ${best_rss} KiB (target < 51200) $v2"
# the explain run: every collector query's plan with actual times into the server log
pg_psql -d nexus -c "ALTER ROLE nexus_ro SET session_preload_libraries = 'auto_explain'" \
	-c "ALTER ROLE nexus_ro SET auto_explain.log_min_duration = 0" \
	-c "ALTER ROLE nexus_ro SET auto_explain.log_analyze = on" \
	-c "ALTER ROLE nexus_ro SET auto_explain.log_buffers = on"
"$BIN" -c "$IT_TMP/ns.conf" once --dry-run >/dev/null 2>&1 || true
cp "$IT_LOGS/postgres.log" "${BENCH_OUT:-$BUILD_DIR}/db_bench_postgres.log" 2>/dev/null &&
	echo "plans (auto_explain): ${BENCH_OUT:-$BUILD_DIR}/db_bench_postgres.log"
