#!/bin/bash
# `nexus-shipper cleanup` against real docker-registry 2.8 instances, with
# images built as OCI layouts on disk (oci_image.py) and pushed by skopeo:
#  - the exact dry-run plan (text and JSON): age, exact and substring
#    protection, keep_last, a shared digest kept by a protected tag, a
#    multi-arch index deleted whole, epoch-zero and missing `created`, a
#    repository whose tags are null, a catalog of more than one page;
#    a dry run changes nothing
#  - max_deletions aborts with nothing deleted; a second concurrent run
#    refuses (lock)
#  - the real run: what remains (tags, digests, index children), kept
#    images (and the kept index) still copy out completely after a real
#    `docker-registry garbage-collect`, whose du decrease is reported
#  - metrics read back from a real Pushgateway; counters accumulate
#  - 405 on a registry with deletion disabled: clear message, exit 1,
#    nothing lost
#  - bearer-token auth (a token server + registry auth.token) through the
#    seed's config.json (--legacy-json); wrong password fails cleanly
#  - basic auth (htpasswd) through [cleanup] username/password_file, with
#    blob GETs redirected to another server (S3/CDN-style storage)
#  - the digest cache (STATE_DIR/cleanup-cache): a second dry run makes one
#    request per tag (plus catalog and tags lists) and plans the same; a
#    damaged cache file is skipped line by line
#  - DELETE answering 404 (the manifest deleted behind the cleanup's back
#    between plan and delete, NS_TEST_CLEANUP_PAUSE): "already gone",
#    counted, not an error; one config GET for an image in 3 repositories
#  - a hostile registry (hostile_registry.py): bad repository names, tags
#    and digests never reach a URL, each is named in an error, a repository
#    with a bad tag is left untouched
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init cleanup
for t in docker-registry skopeo prometheus-pushgateway; do
	command -v "$t" >/dev/null || { it_log "SKIP: $t not installed (deploy/install-deps.sh)"; exit 77; }
done
OCI="$IT_DIR/oci_image.py"
mkimg() { "$IT_PY" "$OCI" "$IT_TMP/oci" "$@" >/dev/null; }
NOW=$(date -u +%FT%TZ)
DAYAGO=$(date -u -d '1 day ago' +%FT%TZ)

# start_cleanup_registry NAME DELETE_ENABLED [EXTRA_YAML]: a registry (unlike lib.sh's
# start_registry: named, deletes on or off, extra YAML) with its
# storage in $IT_TMP/NAME/data; sets REG_PORT, REG_CFG, REG_DATA.
start_cleanup_registry() {
	local name=$1 del=$2 extra=${3:-} dir=$IT_TMP/$1
	mkdir -p "$dir/data"
	cat >"$dir/config.yml" <<-EOF
	version: 0.1
	log:
	  level: warn
	accesslog:
	  disabled: true
	storage:
	  filesystem:
	    rootdirectory: $dir/data
	  delete:
	    enabled: $del
	http:
	  addr: 127.0.0.1:5000
	$extra
	EOF
	REG_CFG=$dir/config.yml REG_DATA=$dir/data
	if [[ $extra == *auth:* ]]; then # /v2/ answers 401: wait for that
		local port pid i
		port=$(free_port)
		REGISTRY_HTTP_ADDR=127.0.0.1:$port docker-registry serve "$REG_CFG" >>"$IT_LOGS/$name.log" 2>&1 </dev/null &
		pid=$!
		_it_register "$pid" "$name"
		for ((i = 0; i < 200; i++)); do
			[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/")" = 401 ] && break
			kill -0 "$pid" 2>/dev/null || fail "$name exited (see $IT_LOGS/$name.log)"
			sleep 0.05
		done
		REG_PORT=$port REG_PID=$pid
	else
		_it_start "$name" /v2/ 30 env REGISTRY_HTTP_ADDR=127.0.0.1:@PORT@ docker-registry serve "$REG_CFG"
		REG_PORT=$_IT_PORT REG_PID=$_IT_PID
	fi
}

push() { registry_push "$IT_TMP/oci:$1" "$2/$3" "${@:4}"; } # push LAYOUT_TAG HOST_PORT REPO:TAG [skopeo args]

tags_of() { # tags_of URL REPO [curl args]: sorted tags, one line
	local u=$1 r=$2
	shift 2
	curl -fsS "$@" "$u/v2/$r/tags/list" | "$IT_PY" -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)["tags"] or [])))'
}

digest_of() { # digest_of URL REPO TAG
	curl -fsS -o /dev/null -D - -H 'Accept: application/vnd.oci.image.index.v1+json' \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' "$1/v2/$2/manifests/$3" |
		tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" {print $2}'
}

status_of() { # status_of URL REPO REF: HTTP status of GET manifest
	curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.index.v1+json' \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' "$1/v2/$2/manifests/$3"
}

# ---- images (OCI layouts on disk)
mkimg old1 --created 2020-01-01T00:00:00Z --size 3000
mkimg old2 --created 2020-02-01T00:00:00Z --size 3000
mkimg new1 --created "$NOW" --size 1000
mkimg new2 --created "$DAYAGO" --size 1000
mkimg shared --created 2020-03-01T00:00:00Z --size 2000
mkimg devbuild --created 2020-01-05T00:00:00Z
mkimg epoch --created 1970-01-01T00:00:00Z
mkimg nodate --created none
mkimg oldidx --platforms amd64,arm64 --created 2020-01-01T00:00:00Z --size 4000
mkimg newidx --platforms amd64,arm64 --created "$NOW"
mkimg v1 --created 2020-01-01T00:00:00Z
mkimg v2 --created 2020-02-01T00:00:00Z
mkimg v3 --created 2020-03-01T00:00:00Z
mkimg gone --created 2020-01-01T00:00:00Z

# ---- the main registry: deletion on, catalog pages of 2 repositories
start_cleanup_registry registry true $'catalog:\n  maxentries: 2'
R=127.0.0.1:$REG_PORT RURL=http://127.0.0.1:$REG_PORT RCFG=$REG_CFG RDATA=$REG_DATA RPID=$REG_PID
for t in old1 old2 new1 new2 epoch nodate; do push "$t" "$R" "app:$t"; done
push shared "$R" app:latest
push shared "$R" app:old-shared
push devbuild "$R" app:my-develop-build
push oldidx "$R" multi:old-index --all
push newidx "$R" multi:new-index --all
for t in v1 v2 v3; do push "$t" "$R" "lastn:$t"; done
push gone "$R" gone:x
d=$(digest_of "$RURL" gone x)
assert_eq 202 "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$RURL/v2/gone/manifests/$d")" "delete gone:x"
assert_contains "$(curl -fsS "$RURL/v2/gone/tags/list")" '"tags":null' "a repository whose tags are null"
assert_contains "$(curl -fsS -D - "$RURL/v2/_catalog" -o /dev/null)" 'rel="next"' "the catalog has more than one page"
assert_eq "$(digest_of "$RURL" app latest)" "$(digest_of "$RURL" app old-shared)" "latest and old-shared share a digest"
OLDIDX=$(digest_of "$RURL" multi old-index) NEWIDX=$(digest_of "$RURL" multi new-index)
children() { curl -fsS -H 'Accept: application/vnd.oci.image.index.v1+json' "$RURL/v2/multi/manifests/$1" |
	"$IT_PY" -c 'import json,sys; print(" ".join(m["digest"] for m in json.load(sys.stdin)["manifests"]))'; }
OLDKIDS=$(children "$OLDIDX") NEWKIDS=$(children "$NEWIDX")
[ "$(wc -w <<<"$OLDKIDS")" = 2 ] || fail "old-index has two platform manifests"
OLD1=$(digest_of "$RURL" app old1)

start_pushgateway
mkdir -p "$IT_TMP/state"
CONF=$IT_TMP/ns.conf
cat >"$CONF" <<EOF
$(it_conf instance="cleanup-test" state_dir="$IT_TMP/state")
[pushgateway]
url = $PGW_URL
[cleanup]
registry_url = $RURL
days_to_keep = 30
protected_tags = latest,prod-stable
protected_patterns = develop,release
keep_last = 1
EOF
before=$(for r in app gone lastn multi; do echo "$r: $(tags_of "$RURL" $r)"; done)

# ---- 1. the dry-run plan, exactly
rc=0
"$BIN" -c "$CONF" cleanup --dry-run >"$IT_TMP/plan.txt" 2>"$IT_TMP/plan.log" || rc=$?
assert_eq 0 "$rc" "dry run exit code ($(cat "$IT_TMP/plan.log"))"
assert_eq "app:epoch keep unknown_date
app:latest keep protected_tag
app:my-develop-build keep protected_pattern
app:new1 keep keep_last
app:new2 keep younger_than_days_to_keep
app:nodate keep unknown_date
app:old-shared keep shared_digest
app:old1 delete older_than_days_to_keep
app:old2 delete older_than_days_to_keep
lastn:v1 delete older_than_days_to_keep
lastn:v2 delete older_than_days_to_keep
lastn:v3 keep keep_last
multi:new-index keep keep_last
multi:old-index delete older_than_days_to_keep" "$(awk '$1 == "tag" {print $2, $3, $4}' "$IT_TMP/plan.txt")" "the plan per tag"
assert_contains "$(grep '^tag app:old-shared ' "$IT_TMP/plan.txt")" "kept_by=latest" "the shared digest says which tag keeps it"
assert_contains "$(cat "$IT_TMP/plan.log")" "app:old-shared: keep (shared_digest: kept by tag latest)" "logged reason"
assert_contains "$(cat "$IT_TMP/plan.log")" "app:my-develop-build: keep (protected_pattern)" "logged reason"
want_m=$(printf '%s\n' "app@$OLD1 delete image" "app@$(digest_of "$RURL" app old2) delete image" \
	"lastn@$(digest_of "$RURL" lastn v1) delete image" "lastn@$(digest_of "$RURL" lastn v2) delete image" \
	"multi@$OLDIDX delete index"; for k in $OLDKIDS; do echo "multi@$k delete index-child"; done)
assert_eq "$(sort <<<"$want_m")" "$(awk '$1 == "manifest" {print $2, $3, $4}' "$IT_TMP/plan.txt" | sort)" \
	"manifests deleted: whole index with its children, never a kept digest"
assert_contains "$(cat "$IT_TMP/plan.txt")" "summary status=success repositories=4 tags=14 tags_to_delete=5 tags_deleted=0 manifests_to_delete=7 manifests_deleted=0" "dry-run summary"
# the first run filled the digest cache; the next one needs only the catalog,
# the tags lists and one manifest GET per tag: 2 catalog requests (n=100
# refused with 400, then the 2-entry pages: 2) ... counted from the log line
cold=$(sed -n 's/.*cleanup: scan: \([0-9]*\) HTTP requests; created dates: \([0-9]*\) from the cache.*/\1 \2/p' "$IT_TMP/plan.log")
assert_eq 0 "${cold#* }" "cold run: no date from the cache ($cold)"
[ -s "$IT_TMP/state/cleanup-cache" ] || fail "the cache file was written"
"$BIN" -c "$CONF" cleanup --dry-run >"$IT_TMP/plan2.txt" 2>"$IT_TMP/plan2.log" || fail "second dry run"
warm=$(sed -n 's/.*cleanup: scan: \([0-9]*\) HTTP requests; created dates: \([0-9]*\) from the cache.*/\1 \2/p' "$IT_TMP/plan2.log")
# 14 tags: 8 distinct app images, 3 lastn images, 2 indexes x 2 children
assert_eq "15" "${warm#* }" "warm run: every date from the cache ($warm)"
# cold: 11 config GETs + 4 child manifest GETs + 4 child config GETs more than warm
assert_eq "$(( ${cold% *} - 19 ))" "${warm% *}" "warm run: one request per tag plus listings (cold $cold, warm $warm)"
assert_eq "$(grep -v '^summary' "$IT_TMP/plan.txt")" "$(grep -v '^summary' "$IT_TMP/plan2.txt")" "the same plan from the cache"
printf 'garbage line\nsha256:%s 1 1\nsha256:zz 1 1\n' "$(printf 'f%.0s' {1..63})" >>"$IT_TMP/state/cleanup-cache"
"$BIN" -c "$CONF" cleanup --dry-run >"$IT_TMP/plan3.txt" 2>"$IT_TMP/plan3.log" || fail "dry run with a damaged cache"
assert_eq "$(grep -v '^summary' "$IT_TMP/plan.txt")" "$(grep -v '^summary' "$IT_TMP/plan3.txt")" "a damaged cache: bad lines skipped, same plan"
assert_contains "$(cat "$IT_TMP/plan3.log")" "bad lines skipped" "a damaged cache is reported"

"$BIN" -c "$CONF" cleanup --dry-run --json >"$IT_TMP/plan.json" 2>/dev/null
"$IT_PY" - "$IT_TMP/plan.json" <<'EOF' || fail "JSON plan"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["dry_run"] is True and p["status"] == "success", p["status"]
s = p["summary"]
assert s["manifests_to_delete"] == 7 and s["tags_to_delete"] == 5 and s["manifests_deleted"] == 0, s
assert s["kept"]["shared_digest"] == 1 and s["kept"]["unknown_date"] == 2 and s["kept"]["keep_last"] == 3, s
assert s["freed_bytes_blob_sum"] > 10000, s
app = next(r for r in p["repositories"] if r["name"] == "app")
t = {x["tag"]: x for x in app["tags"]}
assert t["old-shared"]["kept_by"] == "latest" and t["old-shared"]["action"] == "keep", t["old-shared"]
assert t["old1"]["action"] == "delete" and t["old1"]["created"] == "2020-01-01T00:00:00Z", t["old1"]
assert t["nodate"]["created"] is None and t["epoch"]["reason"] == "unknown_date", t["epoch"]
gone = next(r for r in p["repositories"] if r["name"] == "gone")
assert gone["tags"] == [] and "error" not in gone, gone
EOF
"$BIN" -c "$CONF" cleanup --dry-run --exclude '^(lastn|gone)$' --include '^(app|lastn|multi)$' \
	>"$IT_TMP/incl.txt" 2>/dev/null || fail "dry run with --include/--exclude"
assert_eq "app multi" "$(awk '$1 == "tag" {split($2, a, ":"); print a[1]}' "$IT_TMP/incl.txt" | sort -u | xargs)" \
	"include/exclude repositories"
after=$(for r in app gone lastn multi; do echo "$r: $(tags_of "$RURL" $r)"; done)
assert_eq "$before" "$after" "a dry run changes nothing"

# ---- 2. max_deletions: abort before deleting anything
rc=0
"$BIN" -c "$CONF" cleanup --max-deletions 6 >"$IT_TMP/max.out" 2>"$IT_TMP/max.err" || rc=$?
assert_eq 1 "$rc" "max_deletions exceeded: exit 1"
assert_contains "$(cat "$IT_TMP/max.err")" "the plan deletes 7 manifests, more than max_deletions=6: nothing deleted" "max_deletions message"
assert_eq "$before" "$(for r in app gone lastn multi; do echo "$r: $(tags_of "$RURL" $r)"; done)" "max_deletions: nothing deleted"
# the [cleanup] key, and --max-deletions 0 (no limit) over it ([cleanup] is the last section)
{ cat "$CONF"; echo "max_deletions = 6"; } >"$IT_TMP/max.conf"
rc=0
"$BIN" -c "$IT_TMP/max.conf" cleanup --dry-run >/dev/null 2>"$IT_TMP/max6.err" || rc=$?
assert_eq 1 "$rc" "[cleanup] max_deletions = 6 exceeded: exit 1"
rc=0
"$BIN" -c "$IT_TMP/max.conf" cleanup --dry-run --max-deletions 0 >/dev/null 2>"$IT_TMP/max0.err" || rc=$?
assert_eq 0 "$rc" "--max-deletions 0 overrides [cleanup] max_deletions ($(tail -2 "$IT_TMP/max0.err"))"

# ---- 3. the lock: a second run while one is in progress refuses
kill -STOP "$RPID" # the first run hangs on its first request
"$BIN" -c "$CONF" cleanup --dry-run >"$IT_TMP/lock1.out" 2>&1 &
first=$!
wait_for "[ \"\$(cat $IT_TMP/state/cleanup.lock 2>/dev/null)\" = $first ]" 10 || { kill -CONT "$RPID"; fail "first run took the lock"; }
rc=0
"$BIN" -c "$CONF" cleanup --dry-run >"$IT_TMP/lock2.out" 2>&1 || rc=$?
kill -CONT "$RPID"
assert_eq 1 "$rc" "a second concurrent run exits 1"
assert_contains "$(cat "$IT_TMP/lock2.out")" "another cleanup run is in progress (lock $IT_TMP/state/cleanup.lock held by pid $first)" "lock message"
rc=0
wait "$first" || rc=$?
assert_eq 0 "$rc" "the first run completes ($(tail -3 "$IT_TMP/lock1.out"))"

# ---- 4. the real run, with a real garbage collection
rc=0
"$BIN" -c "$CONF" cleanup --gc-command "docker-registry garbage-collect {config}" \
	--registry-config "$RCFG" --storage-path "$RDATA" >"$IT_TMP/run.txt" 2>"$IT_TMP/run.log" || rc=$?
assert_eq 0 "$rc" "real run exit code ($(tail -5 "$IT_TMP/run.log"))"
summary=$(grep '^summary ' "$IT_TMP/run.txt")
assert_contains "$summary" "status=success repositories=4 tags=14 tags_to_delete=5 tags_deleted=5 manifests_to_delete=7 manifests_deleted=7 manifests_gone=0 errors=0" "run summary"
assert_contains "$summary" "gc_exit=0" "GC ran"
assert_contains "$(cat "$IT_TMP/run.log")" "blobs marked" "GC output in the log"
du_after=$(sed -n 's/.* storage_du_after=\([0-9]*\).*/\1/p' <<<"$summary")
du_freed=$(sed -n 's/.* storage_du_freed=\([0-9]*\).*/\1/p' <<<"$summary")
blob_sum=$(sed -n 's/.* blob_bytes=\([0-9]*\).*/\1/p' <<<"$summary")
assert_eq "$(du -sb "$RDATA" | cut -f1)" "$du_after" "storage_du_after is du -sb of the storage after GC"
[ "$du_freed" -ge "$blob_sum" ] && [ "$blob_sum" -gt 10000 ] ||
	fail "freed by du ($du_freed) covers the unreferenced blobs ($blob_sum)"
assert_eq "app: epoch latest my-develop-build new1 new2 nodate old-shared
gone: 
lastn: v3
multi: new-index" "$(for r in app gone lastn multi; do echo "$r: $(tags_of "$RURL" $r)"; done)" "tags left"
assert_eq 404 "$(status_of "$RURL" app "$OLD1")" "old1's digest is gone"
assert_eq 404 "$(status_of "$RURL" multi "$OLDIDX")" "the old index is gone"
for k in $OLDKIDS; do assert_eq 404 "$(status_of "$RURL" multi "$k")" "old index child $k deleted with it"; done
for k in $NEWKIDS; do assert_eq 200 "$(status_of "$RURL" multi "$k")" "kept index child $k"; done
# restart the registry (GC makes its blob descriptor cache stale), then pull the kept images
stop_server "$RPID"
restart_server registry
RPID=$_IT_PID
skopeo copy -q --all --src-tls-verify=false "docker://$R/multi:new-index" "oci:$IT_TMP/out:idx" || fail "the kept index still copies out"
for t in latest old-shared new1 my-develop-build nodate; do
	skopeo copy -q --src-tls-verify=false "docker://$R/app:$t" "oci:$IT_TMP/out:$t" || fail "app:$t still copies out after GC"
done

# ---- 5. metrics in the Pushgateway; counters accumulate across runs
m=$(pgw_metrics)
g='instance="cleanup-test",job="registry_cleanup"'
for want in \
	"registry_cleanup_runs_total{${g},status=\"success\"} 1" \
	"registry_cleanup_runs_total{${g},status=\"aborted_max_deletions\"} 1" \
	"registry_cleanup_tags_deleted_total{${g},repository=\"app\"} 2" \
	"registry_cleanup_tags_deleted_total{${g},repository=\"lastn\"} 2" \
	"registry_cleanup_tags_deleted_total{${g},repository=\"multi\"} 1" \
	"registry_cleanup_tags_kept{${g},reason=\"shared_digest\"} 1" \
	"registry_cleanup_tags_kept{${g},reason=\"protected_tag\"} 1" \
	"registry_cleanup_manifests_deleted{${g}} 7" \
	"registry_cleanup_freed_bytes{${g},method=\"blob_sum\"} $blob_sum" \
	"registry_cleanup_freed_bytes{${g},method=\"storage_du\"} $du_freed" \
	"registry_cleanup_tags_scanned{${g}} 14"; do
	assert_contains "$m" "$want" "pushgateway: $want"
done
assert_contains "$m" "registry_cleanup_last_success_timestamp_seconds{${g}} " "last success timestamp"
rc=0
"$BIN" -c "$CONF" cleanup >"$IT_TMP/run2.txt" 2>"$IT_TMP/run2.log" || rc=$?
assert_eq 0 "$rc" "second run ($(tail -3 "$IT_TMP/run2.log"))"
assert_contains "$(cat "$IT_TMP/run2.txt")" "tags_to_delete=0 tags_deleted=0 manifests_to_delete=0" "nothing left to delete"
m=$(pgw_metrics)
assert_contains "$m" "registry_cleanup_runs_total{${g},status=\"success\"} 2" "runs_total counts runs"
assert_contains "$m" "registry_cleanup_tags_deleted_total{${g},repository=\"app\"} 2" "deleted total kept across runs"
assert_contains "$m" "registry_cleanup_manifests_deleted{${g}} 0" "last-run gauge"

# ---- 6. deletion disabled in the registry: 405, a clear message, nothing lost
start_cleanup_registry nodelete false
ND=127.0.0.1:$REG_PORT
push old1 "$ND" app:old1
push new1 "$ND" app:new1
sed "s|^registry_url = .*|registry_url = http://$ND|" "$CONF" >"$IT_TMP/nd.conf"
rc=0
"$BIN" -c "$IT_TMP/nd.conf" cleanup >"$IT_TMP/nd.out" 2>"$IT_TMP/nd.err" || rc=$?
assert_eq 1 "$rc" "405: exit 1"
assert_contains "$(cat "$IT_TMP/nd.err")" "the registry refuses deletes (HTTP 405 UNSUPPORTED): set storage.delete.enabled: true" "405 message"
assert_contains "$(cat "$IT_TMP/nd.out")" "status=delete_disabled" "405 status"
assert_eq "new1 old1" "$(tags_of "http://$ND" app)" "405: nothing lost"

# ---- 7. bearer tokens (token server + registry auth.token), via the seed's config.json
start_fake TOKEN tests/integration/registry_token.py --cert-file "$IT_TMP/token.pem" --user alice --password 's3cr"et'
start_cleanup_registry secure true "auth:
  token:
    realm: $TOKEN_URL/token
    service: test-registry
    issuer: test-issuer
    rootcertbundle: $IT_TMP/token.pem"
S=127.0.0.1:$REG_PORT SCFG=$REG_CFG SDATA=$REG_DATA
for t in old1 old2 new1; do push "$t" "$S" "team/app:$t" --dest-creds 'alice:s3cr"et'; done
push devbuild "$S" team/app:release-1 --dest-creds 'alice:s3cr"et'
cat >"$IT_TMP/config.json" <<EOF
{
  "registry": {
    "url": "http://$S",
    "user": "alice",
    "password": "s3cr\"et",
    "container": "registry"
  },
  "cleanup": {
    "days_to_keep": 30,
    "protected_tags": ["latest", "prod-stable", "dev-stable"],
    "protected_patterns": ["develop", "master", "main", "release"]
  },
  "paths": {
    "config": "$SCFG",
    "storage": "/var/lib/registry",
    "host_storage": "$SDATA"
  }
}
EOF
# the token server listens on another port over plain http: trusted by name
# (a [cleanup] key wins over paths.config: registry_config says the same)
printf '[shipper]\nstate_dir = %s/state2\nspool_dir = %s/spool2\n[cleanup]\ntoken_realm_hosts = 127.0.0.1:%s\nregistry_config = %s\n' \
	"$IT_TMP" "$IT_TMP" "$TOKEN_PORT" "$SCFG" >"$IT_TMP/min.conf"
"$BIN" -c "$IT_TMP/min.conf" cleanup --legacy-json "$IT_TMP/config.json" --dry-run >"$IT_TMP/leg.plan" 2>"$IT_TMP/leg.log" ||
	fail "legacy dry run ($(tail -3 "$IT_TMP/leg.log"))"
assert_eq "team/app:new1 keep younger_than_days_to_keep
team/app:old1 delete older_than_days_to_keep
team/app:old2 delete older_than_days_to_keep
team/app:release-1 keep protected_pattern" "$(awk '$1 == "tag" {print $2, $3, $4}' "$IT_TMP/leg.plan")" "legacy plan"
# the seed's GC command form, with {config} from paths.config, run for real
rc=0
"$BIN" -c "$IT_TMP/min.conf" cleanup --legacy-json "$IT_TMP/config.json" \
	--gc-command "docker-registry garbage-collect {config}" >"$IT_TMP/leg.out" 2>"$IT_TMP/leg.log" || rc=$?
assert_eq 0 "$rc" "legacy run ($(tail -3 "$IT_TMP/leg.log"))"
assert_contains "$(cat "$IT_TMP/leg.out")" "tags_deleted=2 manifests_to_delete=2 manifests_deleted=2" "legacy run deleted"
assert_contains "$(cat "$IT_TMP/leg.out")" "storage_du_freed=" "host_storage measured"
assert_eq "new1 release-1" "$(skopeo list-tags --tls-verify=false --creds 'alice:s3cr"et' "docker://$S/team/app" |
	"$IT_PY" -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)["Tags"])))')" "bearer: tags left"
toklog=$(cat "$IT_LOGS/token.log")
assert_contains "$toklog" "TOKEN scope=registry:catalog:* account=alice" "catalog token"
assert_contains "$toklog" "TOKEN scope=repository:team/app:delete account=alice" "delete token"
assert_not_contains "$(cat "$IT_TMP/leg.log")" 's3cr"et' "the password never appears in the log"
sed 's/"password": .*/"password": "wrong",/' "$IT_TMP/config.json" >"$IT_TMP/bad.json"
rc=0
"$BIN" -c "$IT_TMP/min.conf" cleanup --legacy-json "$IT_TMP/bad.json" --dry-run >/dev/null 2>"$IT_TMP/bad.log" || rc=$?
assert_eq 1 "$rc" "wrong password: exit 1"
assert_contains "$(cat "$IT_TMP/bad.log")" "cannot list repositories" "wrong password: message"

# ---- 8. basic auth (htpasswd, bcrypt) with [cleanup] username + password_file
# blob GETs answered with a redirect to a plain file server (the registry's
# redirect middleware, as with S3/CDN storage): followed without credentials
mkdir -p "$IT_TMP/basic/data"
_it_start blobsrv / 30 "$IT_PY" -m http.server --bind 127.0.0.1 --directory "$IT_TMP/basic/data" @PORT@
BLOBSRV=http://127.0.0.1:$_IT_PORT
"$IT_PY" -W ignore -c 'import crypt, sys; print("bob:" + crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))' \
	'pa:ss w0rd' >"$IT_TMP/htpasswd"
start_cleanup_registry basic true "auth:
  htpasswd:
    realm: basic-realm
    path: $IT_TMP/htpasswd
middleware:
  storage:
    - name: redirect
      options:
        baseurl: $BLOBSRV/"
B=127.0.0.1:$REG_PORT
assert_contains "$(curl -s -D - -o /dev/null "http://$B/v2/")" 'Basic realm="basic-realm"' "basic challenge"
push old1 "$B" base/img:old1 --dest-creds 'bob:pa:ss w0rd'
push new1 "$B" base/img:new1 --dest-creds 'bob:pa:ss w0rd'
printf 'pa:ss w0rd\n' >"$IT_TMP/basic.pw"
chmod 600 "$IT_TMP/basic.pw"
printf '[shipper]\nstate_dir = %s/state3\nspool_dir = %s/spool3\n[cleanup]\nregistry_url = http://%s/\nusername = bob\npassword_file = %s\n' \
	"$IT_TMP" "$IT_TMP" "$B" "$IT_TMP/basic.pw" >"$IT_TMP/basic.conf"
rc=0
"$BIN" -c "$IT_TMP/basic.conf" cleanup >"$IT_TMP/basic.out" 2>"$IT_TMP/basic.log" || rc=$?
assert_eq 0 "$rc" "basic auth run ($(tail -3 "$IT_TMP/basic.log"))"
assert_eq "base/img:new1 keep younger_than_days_to_keep
base/img:old1 delete older_than_days_to_keep" "$(awk '$1 == "tag" {print $2, $3, $4}' "$IT_TMP/basic.out")" "basic auth plan"
assert_eq "new1" "$(tags_of "http://$B" base/img -u 'bob:pa:ss w0rd')" "basic auth: old1 deleted, new1 kept"
assert_contains "$(grep '^summary ' "$IT_TMP/basic.out")" " gc=none" "no gc_command: the report says the registry's own GC frees the blobs"
assert_not_contains "$(cat "$IT_TMP/basic.log")" 'pa:ss w0rd' "the password never appears in the log"
assert_contains "$(cat "$IT_LOGS/blobsrv.log")" '"GET /docker/registry/v2/blobs/sha256/' "config blobs were read through the redirect"

# ---- 9. DELETE answering 404: deleted behind the cleanup's back after the plan
for t in v1 v2 v3; do push "$t" "$R" "race:$t"; done
RV1=$(digest_of "$RURL" race v1) RV2=$(digest_of "$RURL" race v2)
rm -f "$IT_TMP/go" "$IT_TMP/go.ready"
NS_TEST_CLEANUP_PAUSE=$IT_TMP/go "$BIN" -c "$CONF" cleanup --include '^race$' >"$IT_TMP/race.out" 2>"$IT_TMP/race.log" &
racer=$!
wait_for "[ -e $IT_TMP/go.ready ]" 30 || fail "the run paused after its plan ($(tail -3 "$IT_TMP/race.log"))"
assert_eq 202 "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$RURL/v2/race/manifests/$RV1")" "v1 deleted behind the cleanup's back"
touch "$IT_TMP/go"
rc=0
wait "$racer" || rc=$?
assert_eq 0 "$rc" "404 on DELETE is not an error ($(tail -3 "$IT_TMP/race.log"))"
assert_contains "$(grep '^summary ' "$IT_TMP/race.out")" "status=success repositories=1 tags=3 tags_to_delete=2 tags_deleted=2 manifests_to_delete=2 manifests_deleted=1 manifests_gone=1 errors=0" "404 counted as already gone"
assert_contains "$(cat "$IT_TMP/race.out")" "manifest race@$RV1 delete image result=\"already gone\"" "the plan says already gone"
assert_contains "$(cat "$IT_TMP/race.log")" "race@$RV1: already gone (404" "logged"
assert_eq 404 "$(status_of "$RURL" race "$RV2")" "v2 deleted"
assert_eq "v3" "$(tags_of "$RURL" race)" "race: v3 kept"
# the same image in three repositories: one config GET, the others wait for it
push v3 "$R" race2:v3
"$BIN" -c "$CONF" cleanup --dry-run --no-cache --include '^(lastn|race|race2)$' >/dev/null 2>"$IT_TMP/shared.log" ||
	fail "dry run over lastn, race, race2 ($(tail -3 "$IT_TMP/shared.log"))"
assert_contains "$(cat "$IT_TMP/shared.log")" "created dates: 0 from the cache, 0 from storage_path, 2 shared with another manifest's config GET" \
	"lastn:v3, race:v3 and race2:v3 share one config GET"

# ---- 10. a hostile registry: bad names and digests never reach a URL
start_fake HOSTILE tests/integration/hostile_registry.py
printf '[shipper]\nstate_dir = %s/state4\nspool_dir = %s/spool4\n[cleanup]\nregistry_url = %s\ndays_to_keep = 30\n' \
	"$IT_TMP" "$IT_TMP" "$HOSTILE_URL" >"$IT_TMP/hostile.conf"
rc=0
"$BIN" -c "$IT_TMP/hostile.conf" cleanup >"$IT_TMP/hostile.out" 2>"$IT_TMP/hostile.log" || rc=$?
assert_eq 1 "$rc" "hostile registry: errors, exit 1"
hl=$(cat "$IT_TMP/hostile.log")
for n in '../../v2' 'a?b' 'x y' '-flag' 'UPPER' 'aaaaaaaaaaaaaaaaaaaa'; do
	assert_contains "$hl" "GET $HOSTILE_URL/v2/_catalog?n=100: skipping repository \"$n" "bad repository name $n named with its source"
done
for n in '../x' '-flag' 'x y' 'a?b' 'aaaaaaaaaaaaaaaaaaaa'; do
	assert_contains "$hl" "GET $HOSTILE_URL/v2/bad/tags/tags/list: skipping tag \"$n" "bad tag $n named with its source"
done
assert_contains "$hl" "config: \"sha256:../../x\" is not a valid digest" "a bad config digest"
assert_contains "$hl" "Docker-Content-Digest \"sha256:../../../v2/x\" is not a valid digest" "a bad Docker-Content-Digest"
assert_contains "$hl" "ignoring a Link to another host" "a Link to another host"
reqs=$(sed -n 's/^REQ //p' "$IT_LOGS/hostile.log")
bad=$(grep -vE '^(GET /v2/_catalog\?n=100|GET /v2/(ok/repo|bad/tags|bad/config|bad/header)/(tags/list|manifests/v1|blobs/sha256:[0-9a-f]{64})|DELETE /v2/ok/repo/manifests/sha256:[0-9a-f]{64})$' <<<"$reqs" || true)
assert_eq "" "$bad" "every request path is one of the valid names (requests: $(wc -l <<<"$reqs"))"
assert_contains "$reqs" "DELETE /v2/ok/repo/manifests/sha256:" "the valid repository is cleaned"
assert_not_contains "$reqs" "DELETE /v2/bad/" "repositories with a bad tag or digest are left untouched"

it_log "cleanup: plan, safety, GC, metrics, 405, lock, bearer and basic auth, cache, 404, hostile names all as expected"
