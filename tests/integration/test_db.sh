#!/bin/bash
# The database collectors against a REAL PostgreSQL 15 holding the Nexus
# schema (tests/fixtures/nexus_schema.sql) filled by the deterministic
# generator (tests/fixtures/nexus_data.sql), shipped by `nexus-shipper
# once` into a real VictoriaMetrics and queried back:
#  1. every series of db_repositories, db_blobstores, db_docker and
#     db_cleanup_estimate equals an independent computation (correlated
#     subqueries written apart from the collectors' GROUP BY queries, and
#     closed-form totals of the generator), nothing more, nothing less;
#     the docker connector ports of the database are compared with the
#     REST view of the Nexus fake (one pair agrees, one does not);
#     the REST nexus_components is off (no duplicate size series); the
#     half-present pypi format is skipped quietly;
#  2. the session is read-only: a view that INSERTs (into a table the role
#     MAY write, proven by a direct insert) fails the collector with
#     "read-only transaction", and nothing was written;
#  3. statement_timeout bounds a slow query (a pg_sleep view): that
#     collector is down with the query named, the others ship;
#  4. `run`: PostgreSQL is SIGKILLed mid-run -> collectors down while the
#     REST collectors keep shipping; restarted -> the next cycles reconnect;
#  5. cleanup_decide() and cleanup_rules_sql() agree on a tag set evaluated
#     by this PostgreSQL (tests/unit/check_cleanup_rules with NS_TEST_PGCONN).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init db
. "$IT_DIR/pg.sh"
FIX=$top_srcdir/tests/fixtures

REPOS=3 COMPS=20 APC=2 IMAGES=4 TOP=3 STALE=60

start_victoriametrics
start_nexus_healthy
start_postgres
pg_psql -d postgres -c "CREATE DATABASE nexus"
pg_psql -d nexus -f "$FIX/nexus_schema.sql"
pg_psql -d nexus -v repos=$REPOS -v comps=$COMPS -v apc=$APC -v images=$IMAGES -f "$FIX/nexus_data.sql"
pg_psql -d nexus <<'SQL'
CREATE ROLE nexus_ro LOGIN PASSWORD 'ro-secret';
GRANT SELECT ON ALL TABLES IN SCHEMA public TO nexus_ro;
-- a table the role may write: only the read-only session stops a write
CREATE TABLE ro_probe (note text);
GRANT SELECT, INSERT, DELETE ON ro_probe TO nexus_ro;
SQL
q() { pg_psql -d nexus -At "$@"; }
# an image whose tags tie on date (and two with epoch dates), so the rank
# order of the cleanup estimate (ties by tag name, byte order) matters:
# with keep_last = 2, "A-1" and "a-2" are kept, "b-3" and the epoch tags go
pg_psql -d nexus <<'SQL'
INSERT INTO docker_component (repository_id, name, kind, version, created, last_updated)
SELECT cr.repository_id, 'ties/app', 'image', v, d, d
FROM docker_content_repository cr JOIN repository r ON r.id = cr.config_repository_id AND r.name = 'docker-hosted-1',
     (VALUES ('b-3', now() - interval '100 days 12 hours'), ('a-2', now() - interval '100 days 12 hours'),
             ('A-1', now() - interval '100 days 12 hours'), ('z-0', 'epoch'), ('y-0', 'epoch')) t(v, d);
INSERT INTO docker_asset (repository_id, path, kind, component_id, last_downloaded, asset_blob_size)
SELECT c.repository_id, '/v2/ties/app/manifests/' || c.version, 'MANIFEST', c.component_id, NULL, 1000 + ascii(c.version)
FROM docker_component c WHERE c.name = 'ties/app';
SQL
# the REST view of the docker connector ports ("repo scheme port" lines);
# the database gets the first one with the same port (so one pair agrees)
# and the second one with another port (so one pair disagrees)
rest_ports=$(curl -fsS -u metrics:metrics-secret "$NEXUS_URL/service/rest/v1/repositorySettings" |
	"$IT_PY" -c 'import json, sys
for r in json.load(sys.stdin):
    d = r.get("docker") or {}
    for k, s in (("httpPort", "http"), ("httpsPort", "https")):
        if d.get(k):
            print(r["name"], s, d[k])')
[ "$(wc -l <<<"$rest_ports")" -ge 2 ] || fail "the Nexus fake has fewer than two docker connector ports"
read -r r1 s1 p1 < <(sed -n 1p <<<"$rest_ports")
read -r r2 s2 p2 < <(sed -n 2p <<<"$rest_ports")
pg_psql -d nexus -c "INSERT INTO repository (id, name, recipe_name, attributes) VALUES
	(md5('$r1')::uuid, '$r1', 'docker-hosted', jsonb_build_object('docker', jsonb_build_object('${s1}Port', $p1))),
	(md5('$r2')::uuid, '$r2', 'docker-hosted', jsonb_build_object('docker', jsonb_build_object('${s2}Port', $p2 + 1)))
	ON CONFLICT (name) DO NOTHING"

printf 'ro-secret\n' >"$IT_TMP/db-password"
chmod 600 "$IT_TMP/db-password"
conf() { # conf FILE STATEMENT_TIMEOUT [INTERVAL]
	cat >"$1" <<CONF
$(it_conf instance="db-test" interval="${3:-30s}" state_dir="$IT_TMP")
[remote_write vm]
url = $VM_URL/api/v1/write
$(nexus_conf)
[database]
conninfo = host=127.0.0.1 port=$PG_PORT dbname=nexus user=nexus_ro sslmode=disable
password_file = $IT_TMP/db-password
statement_timeout = $2
connect_timeout = 3s
top_images = $TOP
stale_days = $STALE
[cleanup]
days_to_keep = 90
protected_tags = latest
protected_patterns = release
keep_last = 2
keep_unknown_dates = false
exclude_repositories = ^team2/
CONF
}
conf "$IT_TMP/ns.conf" 10s
"$BIN" -c "$IT_TMP/ns.conf" check-config

# once_run NAME CONF: one cycle; sets TS (the cycle's timestamp) and LOG.
once_run() {
	LOG=$IT_TMP/$1.log
	# --allow-partial: some scenarios make a collector fail on purpose
	"$BIN" -c "$2" once --allow-partial >"$LOG.out" 2>"$LOG" || { cat "$LOG" >&2; fail "$1: once failed"; }
	TS=$(sed -n 's/.*samples at timestamp \([0-9]*\) ms.*/\1/p' "$LOG")
	[ -n "$TS" ] || { cat "$LOG" >&2; fail "$1: no cycle timestamp in the log"; }
}
# at SELECTOR TS: the samples of SELECTOR at exactly TS in VictoriaMetrics
at() { vm_flush && promq --range "$VM_URL" "$1" --start "${2}ms" --end "${2}ms" | LC_ALL=C sort; }
# expect SQL TS: the psql lines "series value" + " TS", sorted
expect() { q -c "$1" | sed "s/\$/ $2/" | LC_ALL=C sort; }
up_line() { echo "nexus_shipper_collector_up{collector=\"$1\",instance=\"db-test\"} $2 $3"; }

# ---------------------------------------------------------------- 1. exact values
DEBUG=true once_run once1 "$IT_TMP/ns.conf"
cat "$LOG" >&2
TS1=$TS
# the docker query went out on the second (read-only) connection while
# db_repositories ran, and db_docker/db_cleanup_estimate used its rows
assert_contains "$(cat "$LOG")" "connected (prefetch connection) (backend pid" "a prefetch connection was made"
grep -q "database query docker_inventory\[0/2\]: [0-9]* rows in [0-9]* ms (prefetched [0-9]* ms earlier)" "$LOG" ||
	fail "part 0 of docker_inventory was not read from the prefetch"
assert_eq 2 "$(grep -c 'database query docker_inventory\[[01]/2\]: [0-9]* rows in' "$LOG")" \
	"each part of docker_inventory asked once"
# both parts hold rows (the fixture's docker repositories fall on both sides)
for k in 0 1; do
	grep -q "database query docker_inventory\[$k/2\]: [1-9][0-9]* rows in" "$LOG" ||
		fail "part $k of docker_inventory returned no rows"
done
for c in db_repositories db_blobstores db_docker db_cleanup_estimate; do
	assert_eq "$(up_line $c 1 "$TS1")" "$(at "nexus_shipper_collector_up{collector=\"$c\"}" "$TS1")" "$c up"
done
assert_not_contains "$(cat "$LOG")" "pypi" "the incomplete pypi format is skipped quietly"
assert_eq "" "$(at '{__name__=~"nexus_repository_(size_bytes|assets|components|last_download_timestamp_seconds)",format=""}' "$TS1")" \
	"no REST (format-less) repository series: nexus_components is off with [database]"
assert_eq "" "$(at '{format="pypi"}' "$TS1")" "nothing for pypi"

# per-format repository families, by correlated subqueries
sql=
for f in maven2 npm raw docker; do
	[ -n "$sql" ] && sql+=" UNION ALL "
	sql+="SELECT '$f' AS f, r.name,
	  (SELECT coalesce(sum(a.asset_blob_size), 0) FROM ${f}_asset a WHERE a.repository_id = cr.repository_id) AS bytes,
	  (SELECT count(*) FROM ${f}_asset a WHERE a.repository_id = cr.repository_id) AS assets,
	  (SELECT count(*) FROM ${f}_component c WHERE c.repository_id = cr.repository_id) AS comps,
	  (SELECT floor(extract(epoch FROM max(a.last_downloaded))) FROM ${f}_asset a WHERE a.repository_id = cr.repository_id) AS dl
	  FROM repository r JOIN ${f}_content_repository cr ON cr.config_repository_id = r.id"
done
L='instance="db-test"'
for fam in size_bytes:bytes assets:assets components:comps last_download_timestamp_seconds:dl; do
	m=nexus_repository_${fam%%:*} col=${fam#*:}
	assert_eq "$(expect "SELECT format('$m{format=\"%s\",$L,repository=\"%s\"} %s', f, name, $col) FROM ($sql) s WHERE $col IS NOT NULL" "$TS1")" \
		"$(at "$m" "$TS1")" "$m"
done
# closed-form totals of the generator (independent of SQL altogether)
for i in $(seq 1 $REPOS); do
	n=$((COMPS + 3 * i))
	assert_eq "nexus_repository_components{format=\"maven2\",$L,repository=\"maven2-hosted-$i\"} $n $TS1" \
		"$(at "nexus_repository_components{repository=\"maven2-hosted-$i\"}" "$TS1")" "maven2-hosted-$i components"
	assert_eq "nexus_repository_assets{format=\"npm\",$L,repository=\"npm-hosted-$i\"} $((n * APC + 1)) $TS1" \
		"$(at "nexus_repository_assets{repository=\"npm-hosted-$i\"}" "$TS1")" "npm-hosted-$i assets"
	tags=0 imgs=$((IMAGES + i))
	for j in $(seq 1 $imgs); do tags=$((tags + 1 + (7 * j + i) % 9)); done
	[ "$i" -eq 1 ] && tags=$((tags + 5)) imgs=$((imgs + 1)) # ties/app
	assert_eq "nexus_docker_tags_by_age{$L,le_days=\"+Inf\",repository=\"docker-hosted-$i\"} $tags $TS1" \
		"$(at "nexus_docker_tags_by_age{repository=\"docker-hosted-$i\",le_days=\"+Inf\"}" "$TS1")" "docker-hosted-$i tags"
	assert_eq "nexus_docker_images{$L,repository=\"docker-hosted-$i\"} $imgs $TS1" \
		"$(at "nexus_docker_images{repository=\"docker-hosted-$i\"}" "$TS1")" "docker-hosted-$i images"
done

# blob stores
assert_eq "nexus_blobstore_db_blobs{blobstore=\"default\",$L,type=\"File\"} 4321 $TS1
nexus_blobstore_db_blobs{blobstore=\"orphan-store\",$L} 1 $TS1
nexus_blobstore_db_blobs{blobstore=\"s3-store\",$L,type=\"S3\"} 77 $TS1" \
	"$(at nexus_blobstore_db_blobs "$TS1")" "blob counts"
assert_eq "nexus_blobstore_db_size_bytes{blobstore=\"default\",$L,type=\"File\"} 123456789012 $TS1
nexus_blobstore_db_size_bytes{blobstore=\"orphan-store\",$L} 5 $TS1
nexus_blobstore_db_size_bytes{blobstore=\"s3-store\",$L,type=\"S3\"} 987654321 $TS1" \
	"$(at nexus_blobstore_db_size_bytes "$TS1")" "blob store sizes"

# docker, per repository
DREPO="repository r JOIN docker_content_repository cr ON cr.config_repository_id = r.id"
assert_eq "$(expect "SELECT format('nexus_docker_images{$L,repository=\"%s\"} %s', r.name,
	(SELECT count(*) FROM (SELECT DISTINCT name FROM docker_component c WHERE c.repository_id = cr.repository_id) x)) FROM $DREPO" "$TS1")" \
	"$(at nexus_docker_images "$TS1")" "docker images"
byage=
for d in 30 90 180 365; do
	byage+="SELECT format('nexus_docker_tags_by_age{$L,le_days=\"$d\",repository=\"%s\"} %s', r.name,
	  (SELECT count(*) FROM docker_component c WHERE c.repository_id = cr.repository_id AND now() - c.created <= interval '$d days')) FROM $DREPO UNION ALL "
done
byage+="SELECT format('nexus_docker_tags_by_age{$L,le_days=\"+Inf\",repository=\"%s\"} %s', r.name,
	  (SELECT count(*) FROM docker_component c WHERE c.repository_id = cr.repository_id)) FROM $DREPO"
assert_eq "$(expect "$byage" "$TS1")" "$(at nexus_docker_tags_by_age "$TS1")" "tags by age"
assert_eq "$(expect "SELECT format('nexus_docker_stale_tags{$L,reason=\"never_downloaded\",repository=\"%s\"} %s', r.name,
	  (SELECT count(*) FROM docker_component c WHERE c.repository_id = cr.repository_id AND NOT EXISTS
	    (SELECT 1 FROM docker_asset a WHERE a.component_id = c.component_id AND a.last_downloaded IS NOT NULL))) FROM $DREPO
	UNION ALL SELECT format('nexus_docker_stale_tags{$L,reason=\"not_downloaded_recently\",repository=\"%s\"} %s', r.name,
	  (SELECT count(*) FROM docker_component c WHERE c.repository_id = cr.repository_id AND
	    (SELECT max(a.last_downloaded) FROM docker_asset a WHERE a.component_id = c.component_id) < now() - interval '$STALE days')) FROM $DREPO" "$TS1")" \
	"$(at nexus_docker_stale_tags "$TS1")" "stale tags"
assert_eq "$(expect "SELECT format('nexus_docker_connector_port{$L,repository=\"%s\",scheme=\"http\"} %s', name, attributes->'docker'->>'httpPort')
	  FROM repository WHERE attributes->'docker'->'httpPort' IS NOT NULL AND jsonb_typeof(attributes->'docker'->'httpPort') = 'number'
	UNION ALL SELECT format('nexus_docker_connector_port{$L,repository=\"%s\",scheme=\"https\"} %s', name, attributes->'docker'->>'httpsPort')
	  FROM repository WHERE jsonb_typeof(attributes->'docker'->'httpsPort') = 'number'" "$TS1")" \
	"$(at nexus_docker_connector_port "$TS1")" "connector ports"
# the REST view of the same ports still ships next to it, and the two are compared
[ -n "$(at nexus_docker_port_up "$TS1")" ] || fail "REST nexus_docker_port_up missing"
db_ports=$(q -F' ' -c "SELECT name, 'http', attributes->'docker'->>'httpPort' FROM repository WHERE jsonb_typeof(attributes->'docker'->'httpPort') = 'number'
	UNION ALL SELECT name, 'https', attributes->'docker'->>'httpsPort' FROM repository WHERE jsonb_typeof(attributes->'docker'->'httpsPort') = 'number'")
want=$({ sed 's/^/db /' <<<"$db_ports"; sed 's/^/rest /' <<<"$rest_ports"; } | awk -v ts="$TS1" -v L="$L" '
	{ k = $2 " " $3; if ($1 == "db") db[k] = $4; else rest[k] = $4; all[k] = 1 }
	END { for (k in all) { split(k, a, " "); m = (k in db && k in rest && db[k] == rest[k]) ? 0 : 1
		printf "nexus_docker_connector_port_mismatch{%s,repository=\"%s\",scheme=\"%s\"} %d %s\n", L, a[1], a[2], m, ts } }' | LC_ALL=C sort)
assert_eq "$want" "$(at nexus_docker_connector_port_mismatch "$TS1")" "database vs REST connector ports"
assert_contains "$want" "repository=\"$r1\",scheme=\"$s1\"} 0" "one pair agrees"
assert_contains "$want" "repository=\"$r2\",scheme=\"$s2\"} 1" "one pair disagrees"

# docker, per image: size = manifests + distinct layers they list; top $TOP by size, rest "_other"
IMG="WITH img AS (SELECT DISTINCT repository_id, name FROM docker_component),
 sz AS (SELECT i.repository_id, i.name,
   (SELECT count(*) FROM docker_component c WHERE c.repository_id = i.repository_id AND c.name = i.name) AS tags,
   (SELECT sum(a.asset_blob_size) FROM docker_asset a JOIN docker_component c ON c.component_id = a.component_id
      WHERE c.repository_id = i.repository_id AND c.name = i.name)
   + (SELECT coalesce(sum(l.asset_blob_size), 0) FROM docker_asset l WHERE l.repository_id = i.repository_id
      AND l.component_id IS NULL AND EXISTS (SELECT 1 FROM docker_asset m JOIN docker_component c ON c.component_id = m.component_id
        WHERE c.repository_id = i.repository_id AND c.name = i.name
        AND m.attributes->'docker'->'layers' ? substr(l.path, length('/v2/-/blobs/') + 1))) AS bytes,
   (SELECT floor(extract(epoch FROM max(created))) FROM docker_component c WHERE c.repository_id = i.repository_id AND c.name = i.name) AS newest,
   (SELECT floor(extract(epoch FROM min(created))) FROM docker_component c WHERE c.repository_id = i.repository_id AND c.name = i.name) AS oldest
   FROM img i),
 lab AS (SELECT s.*, CASE WHEN (SELECT count(*) FROM sz o WHERE o.repository_id = s.repository_id
     AND (o.bytes > s.bytes OR (o.bytes = s.bytes AND o.name < s.name))) < $TOP THEN s.name ELSE '_other' END AS image FROM sz s),
 g AS (SELECT r.name AS repo, image, sum(tags) AS tags, sum(bytes) AS bytes, max(newest) AS newest, min(oldest) AS oldest
   FROM lab JOIN docker_content_repository cr ON cr.repository_id = lab.repository_id JOIN repository r ON r.id = cr.config_repository_id
   GROUP BY 1, 2)"
now_s=$((TS1 / 1000))
assert_eq "$(expect "$IMG SELECT format('nexus_docker_tags{image=\"%s\",$L,repository=\"%s\"} %s', image, repo, tags) FROM g" "$TS1")" \
	"$(at nexus_docker_tags "$TS1")" "docker tags per image"
assert_eq "$(expect "$IMG SELECT format('nexus_docker_image_size_bytes{image=\"%s\",$L,repository=\"%s\"} %s', image, repo, bytes) FROM g" "$TS1")" \
	"$(at nexus_docker_image_size_bytes "$TS1")" "docker image sizes"
assert_eq "$(expect "$IMG SELECT format('nexus_docker_image_newest_tag_age_seconds{image=\"%s\",$L,repository=\"%s\"} %s', image, repo, $now_s - newest) FROM g" "$TS1")" \
	"$(at nexus_docker_image_newest_tag_age_seconds "$TS1")" "newest tag ages"
assert_eq "$(expect "$IMG SELECT format('nexus_docker_image_oldest_tag_age_seconds{image=\"%s\",$L,repository=\"%s\"} %s', image, repo, $now_s - oldest) FROM g" "$TS1")" \
	"$(at nexus_docker_image_oldest_tag_age_seconds "$TS1")" "oldest tag ages"
n_other=$(at 'nexus_docker_tags{image="_other"}' "$TS1" | wc -l)
[ "$n_other" -eq "$REPOS" ] || fail "expected an _other series per docker repository, got $n_other"

# cleanup estimate, the rules written out by hand for this config:
# image not excluded (^team2/), tag not "latest", no "release" inside, not
# among the 2 newest tags of its image (as `cleanup` ranks: newest first,
# unknown/epoch dates last, ties by tag name in byte order), created 90+
# days ago (epoch dates count as old: keep_unknown_dates = false)
EFF="CASE WHEN %s.created > 'epoch' THEN %s.created ELSE 'epoch' END"
# shellcheck disable=SC2059
EO=$(printf "$EFF" o o) EC=$(printf "$EFF" c c)
DEL="c.name !~ '^team2/' AND c.version <> 'latest' AND strpos(c.version, 'release') = 0
 AND (SELECT count(*) FROM docker_component o WHERE o.repository_id = c.repository_id AND o.name = c.name
      AND ($EO > $EC OR ($EO = $EC AND o.version COLLATE \"C\" < c.version COLLATE \"C\"))) >= 2
 AND c.created <= now() - interval '90 days'"
assert_eq "$(expect "SELECT format('nexus_cleanup_reclaimable_tags{$L,repository=\"%s\"} %s', r.name,
	(SELECT count(*) FROM docker_component c WHERE c.repository_id = cr.repository_id AND $DEL)) FROM $DREPO" "$TS1")" \
	"$(at nexus_cleanup_reclaimable_tags "$TS1")" "reclaimable tags"
assert_eq "$(expect "SELECT format('nexus_cleanup_reclaimable_bytes{$L,repository=\"%s\"} %s', r.name,
	(SELECT coalesce(sum(a.asset_blob_size), 0) FROM docker_asset a JOIN docker_component c ON c.component_id = a.component_id
	   WHERE c.repository_id = cr.repository_id AND $DEL)
	+ (SELECT coalesce(sum(l.asset_blob_size), 0) FROM docker_asset l WHERE l.repository_id = cr.repository_id AND l.component_id IS NULL
	   AND EXISTS (SELECT 1 FROM docker_asset a JOIN docker_component c ON c.component_id = a.component_id
	     WHERE c.repository_id = cr.repository_id AND $DEL AND a.attributes->'docker'->'layers' ? substr(l.path, 13))
	   AND NOT EXISTS (SELECT 1 FROM docker_asset a JOIN docker_component c ON c.component_id = a.component_id
	     WHERE c.repository_id = cr.repository_id AND NOT ($DEL) AND a.attributes->'docker'->'layers' ? substr(l.path, 13))))
	FROM $DREPO" "$TS1")" \
	"$(at nexus_cleanup_reclaimable_bytes "$TS1")" "reclaimable bytes (shared layers excluded)"
# sanity of the fixture: some tags deletable, and shared base layers never counted
[ "$(q -c "SELECT count(*) FROM docker_component c WHERE $DEL")" -gt 0 ] || fail "fixture has no deletable tag"
assert_eq "b-3,y-0,z-0" "$(q -c "SELECT string_agg(version, ',' ORDER BY version) FROM docker_component c WHERE name = 'ties/app' AND $DEL")" \
	"tied dates: the two first by byte order are kept"
it_log "1. exact values: ok"

# ---------------------------------------------------------------- 1b. one family, one label set
# the families REST (nexus_components, without [database]) and the database
# both fill carry the same label names: a site adding [database] keeps its dashboards
sed '/^\[database\]/,$d' "$IT_TMP/ns.conf" >"$IT_TMP/rest.conf"
"$BIN" -c "$IT_TMP/rest.conf" once --dry-run >"$IT_TMP/rest.prom" 2>"$IT_TMP/rest.log" ||
	{ cat "$IT_TMP/rest.log" >&2; fail "once --dry-run without [database]"; }
"$BIN" -c "$IT_TMP/ns.conf" once --dry-run >"$IT_TMP/db.prom" 2>"$IT_TMP/db-dry.log" ||
	{ cat "$IT_TMP/db-dry.log" >&2; fail "once --dry-run with [database]"; }
"$IT_PY" - "$IT_TMP/rest.prom" "$IT_TMP/db.prom" <<'PY' || fail "a family has other labels from REST than from the database"
import re, sys
FAMS = ["nexus_repository_size_bytes", "nexus_repository_assets", "nexus_repository_components",
        "nexus_docker_tags", "nexus_docker_image_newest_tag_age_seconds",
        "nexus_docker_image_oldest_tag_age_seconds"]
def label_sets(path):
    out, helps = {}, {}
    for line in open(path):
        if line.startswith("# HELP "):
            name, _, text = line[7:].rstrip("\n").partition(" ")
            helps[name] = text
            continue
        m = re.match(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? \S+$", line.rstrip("\n"))
        if m and m.group(1) in FAMS:
            names = tuple(sorted(re.findall(r'(\w+)="(?:[^"\\]|\\.)*"', m.group(2) or "")))
            out.setdefault(m.group(1), set()).add(names)
    return out, helps
rest, rhelp = label_sets(sys.argv[1])
db, dhelp = label_sets(sys.argv[2])
for f in FAMS:
    assert f in rest and f in db, (f, f in rest, f in db)
    assert len(rest[f]) == 1 and rest[f] == db[f], (f, rest[f], db[f])
    assert rhelp[f] == dhelp[f], (f, rhelp[f], dhelp[f])
    print(f, sorted(rest[f])[0])
PY
it_log "1b. same label names and HELP from REST and from the database"

# ---------------------------------------------------------------- 2. read-only session
pg_psql -d nexus <<'SQL'
ALTER TABLE blob_store_metrics RENAME TO blob_store_metrics_real;
CREATE FUNCTION probe_write() RETURNS SETOF blob_store_metrics_real LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ro_probe VALUES ('written by ' || current_user);
    RETURN QUERY SELECT * FROM blob_store_metrics_real;
END $$;
CREATE VIEW blob_store_metrics AS SELECT * FROM probe_write();
GRANT SELECT ON blob_store_metrics, blob_store_metrics_real TO nexus_ro;
SQL
# the role itself may write ro_probe: only the session's read-only default stops it
PGPASSWORD=ro-secret "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U nexus_ro -d nexus \
	-c "INSERT INTO ro_probe VALUES ('direct'); DELETE FROM ro_probe" || fail "nexus_ro cannot write ro_probe directly"
once_run once2 "$IT_TMP/ns.conf"
TS2=$TS
assert_eq "$(up_line db_blobstores 0 "$TS2")" "$(at 'nexus_shipper_collector_up{collector="db_blobstores"}' "$TS2")" "db_blobstores down"
assert_contains "$(cat "$LOG")" "database query blob_store_metrics: cannot execute INSERT in a read-only transaction (SQLSTATE 25006)" \
	"the write attempt is refused and reported with the query named"
assert_eq 0 "$(q -c 'SELECT count(*) FROM ro_probe')" "nothing written"
assert_eq "$(up_line db_repositories 1 "$TS2")" "$(at 'nexus_shipper_collector_up{collector="db_repositories"}' "$TS2")" "others ship"
assert_eq "" "$(at nexus_blobstore_db_blobs "$TS2")" "a failed collector ships nothing half-done"
it_log "2. read-only: ok"

# ---------------------------------------------------------------- 3. statement_timeout
pg_psql -d nexus -c "DROP VIEW blob_store_metrics; DROP FUNCTION probe_write();
	CREATE VIEW blob_store_metrics AS SELECT m.* FROM blob_store_metrics_real m, pg_sleep(30) s;
	GRANT SELECT ON blob_store_metrics TO nexus_ro"
conf "$IT_TMP/ns-slow.conf" 1s
t0=$(date +%s%N)
once_run once3 "$IT_TMP/ns-slow.conf"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
TS3=$TS
# (the 1 s timeout plus a scaled allowance for the rest of the cycle)
[ "$ms" -lt $((1000 + $(tscale_ms 9000))) ] || fail "once took $ms ms with a 1 s statement_timeout"
assert_contains "$(cat "$LOG")" "database query blob_store_metrics: canceling statement due to statement timeout (SQLSTATE 57014)" \
	"the timeout is reported with the query named"
assert_eq "$(up_line db_blobstores 0 "$TS3")" "$(at 'nexus_shipper_collector_up{collector="db_blobstores"}' "$TS3")" "slow collector down"
for c in db_repositories db_docker db_cleanup_estimate nexus_status; do
	assert_eq "$(up_line $c 1 "$TS3")" "$(at "nexus_shipper_collector_up{collector=\"$c\"}" "$TS3")" "$c still up"
done
[ -n "$(at nexus_repository_size_bytes "$TS3")" ] || fail "repository sizes not shipped next to the timeout"
pg_psql -d nexus -c "DROP VIEW blob_store_metrics; ALTER TABLE blob_store_metrics_real RENAME TO blob_store_metrics"
it_log "3. statement_timeout: ok (once took $ms ms)"

# ---------------------------------------------------------------- 4. PostgreSQL killed mid-run
conf "$IT_TMP/ns-run.conf" 5s 1s
"$BIN" -c "$IT_TMP/ns-run.conf" run >"$IT_LOGS/shipper-run.log" 2>&1 &
RUN_PID=$!
_it_register "$RUN_PID" shipper-run
latest() { vm_promq "$VM_URL" "last_over_time(nexus_shipper_collector_up{collector=\"$1\"}[3s])" | awk '{print $2}'; }
wait_for '[ "$(latest db_repositories)" = 1 ] && [ "$(latest db_blobstores)" = 1 ]' 20 || fail "run: db collectors never up"
# two sessions (main + prefetch), both named; the read-only check of each is in the setup
assert_eq 2 "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'nexus-shipper' AND usename = 'nexus_ro'")" \
	"two named sessions in run mode"
kill_postgres
wait_for '[ "$(latest db_repositories)" = 0 ] && [ "$(latest db_docker)" = 0 ]' 20 || fail "run: db collectors not reported down"
[ "$(latest nexus_status)" = 1 ] || fail "run: REST collectors stopped shipping while the database is down"
restart_postgres
wait_for '[ "$(latest db_repositories)" = 1 ] && [ "$(latest db_docker)" = 1 ] && [ "$(latest db_cleanup_estimate)" = 1 ]' 30 ||
	fail "run: db collectors did not come back after the restart"
stop_server "$RUN_PID"
grep -q "collector db_repositories failed: database" "$IT_LOGS/shipper-run.log" || fail "run: the outage was not logged"
grep -q "collector db_repositories: working again" "$IT_LOGS/shipper-run.log" || fail "run: the recovery was not logged"
it_log "4. kill + restart: ok"

# ---------------------------------------------------------------- 5. C rules == SQL rules
CHK=$top_builddir/tests/unit/check_cleanup_rules
if [ -x "$CHK" ]; then
	NS_TEST_PGCONN="host=$PG_SOCK port=$PG_PORT dbname=nexus user=admin" CK_VERBOSITY=normal "$CHK" >&2 ||
		fail "cleanup_decide and cleanup_rules_sql disagree"
	it_log "5. cleanup rules agree in C and SQL: ok"
else
	it_log "5. SKIP: $CHK not built (Check missing)"
fi
it_log "ok"
