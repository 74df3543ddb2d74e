#!/bin/bash
# test_skopeo.sh — `nexus-shipper skopeo` and libnexusskopeo against REAL
# skopeo 1.9 and a REAL docker-registry 2.8 (Debian packages), images built
# as OCI layouts on disk (mkoci.py), metrics read back from a real
# Pushgateway; other skopeo versions, hangs and TTY output come from
# tests/fakes/fake_skopeo.sh replaying transcripts.
#
# Asserts: copy progress events in order with the manifest's blob digests
# and sizes; the seed's --progress display; inspect; manifest-digest equal to
# the registry's Docker-Content-Digest (image and manifest file); delete
# (registry answers 202) then inspect fails with manifest_unknown; real
# error classes (closed port, https to http, uppercase reference, unknown
# tag); transcripts of 1.18 (no "Storing signatures"), a multi-arch list and
# TTY \r redraws; unknown sizes when the source manifest cannot be read;
# the timeout (SIGTERM, then SIGKILL after the grace, nothing left running);
# credentials never on a child's command line or in its environment;
# copy --from-file with bounded parallelism and a summary; the seed's
# skopeo_* metrics at the Pushgateway, accumulated across runs, and spooled
# while the Pushgateway is down; the example program of the library.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if ! command -v skopeo >/dev/null || ! command -v docker-registry >/dev/null; then
	echo "SKIP: skopeo or docker-registry not installed (deploy/install-deps.sh)"
	exit 77
fi
it_init skopeo

NS=${NEXUS_SHIPPER:-$IT_TOP/nexus-shipper}
BUILD=${top_builddir:-$(dirname "$NS")}
EXAMPLE=$BUILD/tests/skopeo_example
FAKE=$IT_TOP/tests/fakes/fake_skopeo.sh
TR=$IT_TOP/tests/fakes/skopeo_transcripts
MKOCI=$IT_TOP/tests/integration/mkoci.py

# jq-less JSON access: pyj FILE EXPR (d = the parsed file)
# (a tuple prints space-separated)
pyj() { "$IT_PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(" ".join(map(str, v)) if isinstance(v, tuple) else v)' "$@"; }
# events FILE: the "current_step" of every progress event of a --json run, space-separated
events() { "$IT_PY" -c '
import json,sys
ev=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(" ".join(e["current_step"] for e in ev if e["event"]=="progress"))' "$1"; }
# result FILE EXPR: EXPR over the final "result" object r
result() { "$IT_PY" -c '
import json,sys
ev=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
r=[e for e in ev if e["event"]=="result"][-1]
v=eval(sys.argv[2])
print(" ".join(map(str, v)) if isinstance(v, tuple) else v)' "$@"; }

# ---- the registry ------------------------------------------------------
REG_DIR=$IT_TMP/registry
mkdir -p "$REG_DIR/data"
cat >"$REG_DIR/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $REG_DIR/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$(free_port)
EOF
# REGISTRY_HTTP_ADDR overrides http.addr so _it_start can retry on a taken port
_it_start registry /v2/ 30 env REGISTRY_HTTP_ADDR=127.0.0.1:@PORT@ \
	docker-registry serve "$REG_DIR/config.yml"
REG=127.0.0.1:$_IT_PORT
start_pushgateway

CONF=$IT_TMP/ns.conf
cat >"$CONF" <<EOF
$(it_conf instance="skopeo-it" state_dir="$IT_TMP/state")
[pushgateway]
url = $PGW_URL
[skopeo]
tls_verify = false
timeout = 2m
EOF
ns() { "$NS" -c "$CONF" skopeo "$@"; }

# ---- images --------------------------------------------------------------
"$IT_PY" "$MKOCI" "$IT_TMP/img" v1 >"$IT_TMP/v1.json"
MDIGEST=$(pyj "$IT_TMP/v1.json" 'd["manifest"]["digest"]')
MFILE=$(pyj "$IT_TMP/v1.json" 'd["manifest_file"]')
EXPECT_BLOBS=$(pyj "$IT_TMP/v1.json" '" ".join("%s=%d" % (b["digest"], b["size"]) for b in d["layers"] + [d["config"]])')
EXPECT_BYTES=$(pyj "$IT_TMP/v1.json" 'sum(b["size"] for b in d["layers"]) + d["config"]["size"]')

# ---- 1. copy with --json: events in order, true sizes -----------------------
ns copy --json "oci:$IT_TMP/img:v1" "docker://$REG/demo/app:v1" >"$IT_TMP/copy1.jsonl" ||
	fail "copy oci -> registry failed: $(cat "$IT_TMP/copy1.jsonl")"
assert_eq "getting_signatures copying_blob copying_blob copying_config writing_manifest storing_signatures completed" \
	"$(events "$IT_TMP/copy1.jsonl")" "skopeo 1.9 copy steps"
assert_eq "10.0 50.0 50.0 75.0 90.0 95.0 100.0" "$("$IT_PY" -c '
import json,sys
print(" ".join("%.1f" % e["percentage"] for e in map(json.loads, open(sys.argv[1])) if e["event"]=="progress"))' "$IT_TMP/copy1.jsonl")" \
	"the seed's percentages"
assert_eq "$EXPECT_BLOBS" "$("$IT_PY" -c '
import json,sys
ev=[json.loads(l) for l in open(sys.argv[1])]
print(" ".join("%s=%d" % (e["current_blob"]["sha256"], e["current_blob"]["size"]) for e in ev if e["event"]=="progress" and e["current_blob"]))' "$IT_TMP/copy1.jsonl")" \
	"progress events carry the manifest's blob digests and sizes"
assert_eq "True $EXPECT_BYTES $MDIGEST True 1.9.3" \
	"$(result "$IT_TMP/copy1.jsonl" 'r["success"], r["bytes"], r["digest"], r["sizes_known"], r["skopeo_version"]')" \
	"copy result: bytes = sum of the manifest's sizes, digest"
it_log "copy: events, sizes and digest as in the manifest"

# ---- 2. the seed's --progress display -----------------------------------------
out=$(ns copy --progress "oci:$IT_TMP/img:v1" "docker://$REG/demo/app:v2")
assert_contains "$out" "🔍 getting_signatures: 10.0%" "progress display"
L1=$(pyj "$IT_TMP/v1.json" 'd["layers"][0]["digest"][7:19] + "... " + str(d["layers"][0]["size"]) + " bytes"')
C1=$(pyj "$IT_TMP/v1.json" 'd["config"]["digest"][7:19] + "... " + str(d["config"]["size"]) + " bytes"')
assert_contains "$out" "📦 copying_blob: 50.0%
   (blob: $L1)" "blob line with 12 hex digits and its true size"
assert_contains "$out" "📦 copying_config: 75.0%
   (config: $C1)" "config line"
assert_contains "$out" "📝 writing_manifest: 90.0%" "progress display"
assert_contains "$out" "🔐 storing_signatures: 95.0%" "progress display"
assert_contains "$out" "✅ Operation completed successfully" "final line"

# ---- 3. registry -> registry: sizes read from the docker:// source -------------
ns copy --json "docker://$REG/demo/app:v1" "docker://$REG/mirror/app:v1" >"$IT_TMP/copy3.jsonl" ||
	fail "copy registry -> registry failed"
assert_eq "True $EXPECT_BYTES" "$(result "$IT_TMP/copy3.jsonl" 'r["sizes_known"], r["bytes"]')" \
	"sizes from the docker source's manifest"

# ---- 4. inspect ----------------------------------------------------------------
ns inspect "docker://$REG/demo/app:v1" >"$IT_TMP/inspect.json"
assert_eq "$MDIGEST v1,v2 amd64" "$(pyj "$IT_TMP/inspect.json" '" ".join([d["Digest"], ",".join(sorted(d["RepoTags"])), d["Architecture"]])')" \
	"inspect output"
ns inspect --json "docker://$REG/demo/app:v1" >"$IT_TMP/inspect.jsonl"
assert_eq "True $MDIGEST" "$(result "$IT_TMP/inspect.jsonl" 'r["success"], r["inspect"]["Digest"]')" "inspect --json"

# ---- 5. manifest-digest = the registry's Docker-Content-Digest ---------------------
ACCEPT='application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json'
dcd=$(curl -fsSI -H "Accept: $ACCEPT" "http://$REG/v2/demo/app/manifests/v1" | tr -d '\r' |
	sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
[ -n "$dcd" ] || fail "registry sent no Docker-Content-Digest"
assert_eq "$dcd" "$(ns manifest-digest "docker://$REG/demo/app:v1")" "manifest-digest IMAGE"
assert_eq "$dcd" "$(ns manifest-digest "$MFILE")" "manifest-digest FILE"
assert_eq "$MDIGEST" "$dcd" "digest of the pushed manifest"

# ---- 6. delete (202), then inspect fails with manifest_unknown ---------------------
assert_eq "deleted docker://$REG/demo/app:v1" "$(ns delete "docker://$REG/demo/app:v1")" "delete"
grep -q "\"DELETE /v2/demo/app/manifests/$MDIGEST HTTP/1.1\" 202" "$IT_LOGS/registry.log" ||
	fail "the registry did not answer DELETE with 202"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $ACCEPT" "http://$REG/v2/demo/app/manifests/v2")
assert_eq 404 "$code" "v2 shared the digest: gone too"
rc=0
ns inspect --json "docker://$REG/demo/app:v1" >"$IT_TMP/gone.jsonl" || rc=$?
assert_eq 1 "$rc" "inspect of a deleted image exits 1"
assert_eq "False manifest_unknown 1" "$(result "$IT_TMP/gone.jsonl" 'r["success"], r["error_type"], r["exit_status"]')" \
	"inspect after delete: manifest_unknown"

# ---- 6b. a real multi-arch index (skopeo copy --all) ---------------------------------
"$IT_PY" "$MKOCI" "$IT_TMP/multi" v1 --platforms amd64,arm64 --layers 1 >"$IT_TMP/multi.json"
IDIGEST=$(pyj "$IT_TMP/multi.json" 'd["manifest"]["digest"]')
ns copy --json "oci:$IT_TMP/multi:v1" "docker://$REG/multi/app:v1" -- --all >"$IT_TMP/mreal.jsonl" ||
	fail "multi-arch copy failed"
assert_eq "getting_signatures copying_image getting_signatures copying_blob copying_config writing_manifest storing_signatures copying_image getting_signatures copying_blob copying_config writing_manifest storing_signatures writing_manifest storing_signatures completed" \
	"$(events "$IT_TMP/mreal.jsonl")" "skopeo 1.9 multi-arch steps"
MBYTES=$(pyj "$IT_TMP/multi.json" 'sum(c["config"]["size"] + sum(l["size"] for l in c["layers"]) for c in d["children"])')
assert_eq "True 2 $MBYTES $IDIGEST" "$(result "$IT_TMP/mreal.jsonl" 'r["sizes_known"], r["image_count"], r["bytes"], r["digest"]')" \
	"multi-arch from an OCI layout: every child's true sizes"
ns copy --json "docker://$REG/multi/app:v1" "docker://$REG/multi/mirror:v1" -- --all >"$IT_TMP/mreal2.jsonl" ||
	fail "multi-arch registry copy failed"
assert_eq "True $MBYTES" "$(result "$IT_TMP/mreal2.jsonl" 'r["sizes_known"], r["bytes"]')" \
	"multi-arch from a registry: children read by digest"
dcd=$(curl -fsSI -H "Accept: $ACCEPT" "http://$REG/v2/multi/app/manifests/v1" | tr -d '\r' |
	sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
assert_eq "$IDIGEST $IDIGEST" "$dcd $(ns manifest-digest "docker://$REG/multi/app:v1")" \
	"manifest-digest of an index = the registry's digest of the index"

# ---- 7. error classes produced for real ---------------------------------------------
errclass() {
	local rc=0
	ns "$@" >"$IT_TMP/err.jsonl" 2>/dev/null || rc=$?
	[ "$rc" = 1 ] || fail "expected exit 1 from: skopeo $* (got $rc)"
	result "$IT_TMP/err.jsonl" 'r["error_type"]'
}
assert_eq connection_refused "$(errclass inspect --json "docker://127.0.0.1:$(free_port)/demo/app:v1")" "closed port"
assert_eq tls "$(errclass inspect --json --tls-verify true "docker://$REG/mirror/app:v1")" "https to an http registry"
assert_eq invalid_reference "$(errclass inspect --json "docker://$REG/Demo/App:v1")" "uppercase reference"
assert_eq manifest_unknown "$(errclass inspect --json "docker://$REG/mirror/app:nope")" "unknown tag"
assert_contains "$(result "$IT_TMP/err.jsonl" 'r["error"]')" "manifest unknown" "skopeo's message kept"
it_log "inspect, manifest-digest, delete and the real error classes: ok"

# ---- 8. transcripts of other versions (fake skopeo) ---------------------------------
FCONF=$IT_TMP/fake.conf
cat >"$FCONF" <<EOF
[shipper]
instance = skopeo-fake
state_dir = $IT_TMP/state-fake
spool_dir = $IT_TMP/spool-fake
[skopeo]
binary = $FAKE
tls_verify = false
enable_metrics = false
EOF
fns() { "$NS" -c "$FCONF" skopeo "$@"; }
A=$(printf 'a%.0s' {1..64}) B=$(printf 'b%.0s' {1..64}) C=$(printf 'c%.0s' {1..64})
D=$(printf 'd%.0s' {1..64}) E=$(printf 'e%.0s' {1..64})
I1=$(printf '1%.0s' {1..64}) I2=$(printf '2%.0s' {1..64})
mkdir -p "$IT_TMP/raw"
man() { # man CONFIG LAYER... (digest hex=size)
	local cfg=$1
	shift
	"$IT_PY" -c '
import json,sys
ls=[dict(mediaType="application/vnd.oci.image.layer.v1.tar+gzip", digest="sha256:"+a.split("=")[0], size=int(a.split("=")[1])) for a in sys.argv[2:]]
c=sys.argv[1].split("=")
print(json.dumps(dict(schemaVersion=2, mediaType="application/vnd.oci.image.manifest.v1+json",
  config=dict(mediaType="application/vnd.oci.image.config.v1+json", digest="sha256:"+c[0], size=int(c[1])), layers=ls)))' "$cfg" "$@"
}
man "$C=1234" "$A=150000" "$B=75000" >"$IT_TMP/raw/single.json"

# 1.18: no "Storing signatures"
FAKE_SKOPEO_RAW=$IT_TMP/raw/single.json FAKE_SKOPEO_TRANSCRIPT=$TR/copy-1.18.out \
	fns copy --json "docker://example.com/x:v1" "docker://$REG/x:v1" >"$IT_TMP/t118.jsonl"
assert_eq "getting_signatures copying_blob copying_blob copying_config writing_manifest completed" \
	"$(events "$IT_TMP/t118.jsonl")" "1.18 transcript steps (read in 7-byte pieces)"
assert_eq "True False 1.18.0 226234" \
	"$(result "$IT_TMP/t118.jsonl" 'r["success"], r["signatures_stored"], r["skopeo_version"], r["bytes"]')" \
	"1.18 result: no signatures stored, true sizes"

# unreachable source manifest: sizes unknown, never invented
FAKE_SKOPEO_TRANSCRIPT=$TR/copy-1.18.out fns copy --json "docker://example.com/x:v1" "docker://$REG/x:v1" >"$IT_TMP/nosize.jsonl"
assert_eq "False None None None" \
	"$(result "$IT_TMP/nosize.jsonl" 'r["sizes_known"], r["bytes"], r["blobs"][0]["size"], r["blobs"][2]["size"]')" \
	"sizes unknown when the source manifest cannot be read"
out=$(FAKE_SKOPEO_TRANSCRIPT=$TR/copy-1.18.out fns copy --progress "docker://example.com/x:v1" "docker://$REG/x:v1")
assert_contains "$out" "(blob: aaaaaaaaaaaa... size unknown)" "unknown size in the display"

# multi-arch list: an index whose children are read by digest
"$IT_PY" -c '
import json,sys
print(json.dumps(dict(schemaVersion=2, mediaType="application/vnd.oci.image.index.v1+json",
  manifests=[dict(mediaType="application/vnd.oci.image.manifest.v1+json", digest="sha256:"+d, size=500,
  platform=dict(architecture=a, os="linux")) for d, a in ((sys.argv[1], "amd64"), (sys.argv[2], "arm64"))])))' \
	"$I1" "$I2" >"$IT_TMP/raw/top.json"
man "$C=1111" "$A=4096" >"$IT_TMP/raw/$I1.json"
man "$E=2222" "$D=8192" >"$IT_TMP/raw/$I2.json"
FAKE_SKOPEO_RAW_DIR=$IT_TMP/raw FAKE_SKOPEO_TRANSCRIPT=$TR/copy-multiarch.out \
	fns copy --json "docker://example.com/multi:v1" "docker://$REG/multi:v1" -- --all >"$IT_TMP/multi.jsonl"
assert_eq "getting_signatures copying_image getting_signatures copying_blob copying_config writing_manifest storing_signatures copying_image getting_signatures copying_blob copying_config writing_manifest storing_signatures writing_manifest storing_signatures completed" \
	"$(events "$IT_TMP/multi.jsonl")" "multi-arch steps"
"$IT_PY" -c '
import json,sys
ev=[json.loads(l) for l in open(sys.argv[1])]
p=[e["percentage"] for e in ev if e["event"]=="progress"]
assert p==sorted(p), "percentages go back: %r" % p
assert p[-1]==100.0, p
im=[(e["image_index"],e["image_count"]) for e in ev if e["event"]=="progress" and e["current_step"]=="copying_image"]
assert im==[(1,2),(2,2)], im
r=ev[-1]
assert r["image_count"]==2 and r["bytes"]==1111+4096+2222+8192 and r["sizes_known"], r
' "$IT_TMP/multi.jsonl" || fail "multi-arch: percentages, image indexes or child sizes wrong"

# TTY output: \r redraws, ANSI escapes, 12-hex digests, done / skipped
FAKE_SKOPEO_RAW=$IT_TMP/raw/single.json FAKE_SKOPEO_TRANSCRIPT=$TR/copy-tty.out \
	fns copy --json "docker://example.com/x:v1" "docker://$REG/x:v1" >"$IT_TMP/tty.jsonl"
assert_eq "getting_signatures copying_blob copying_blob copying_blob copying_config writing_manifest storing_signatures completed" \
	"$(events "$IT_TMP/tty.jsonl")" "TTY transcript: one event per blob start and end, none per redraw"
assert_eq "sha256:$A:150000:copying sha256:$A:150000:done sha256:$B:75000:skipped sha256:$C:1234:done" "$("$IT_PY" -c '
import json,sys
ev=[json.loads(l) for l in open(sys.argv[1])]
print(" ".join("%s:%s:%s" % (e["current_blob"]["sha256"], e["current_blob"]["size"], e["current_blob"]["status"]) for e in ev if e["event"]=="progress" and e["current_blob"]))' "$IT_TMP/tty.jsonl")" \
	"TTY: short digests resolved to the manifest's, statuses"
# error classes that a local registry cannot produce: skopeo's messages replayed
while IFS='|' read -r class msg; do
	printf 'time="2024-01-01T00:00:00Z" level=fatal msg="%s"\n' "$msg" >"$IT_TMP/stderr.txt"
	rc=0
	FAKE_SKOPEO_STDERR=$IT_TMP/stderr.txt FAKE_SKOPEO_EXIT=1 \
		fns inspect --json "docker://registry.example.com/x:v1" >"$IT_TMP/cls.jsonl" 2>/dev/null || rc=$?
	assert_eq "1 $class" "$rc $(result "$IT_TMP/cls.jsonl" 'r["error_type"]')" "class of: $msg"
done <<'EOF'
unauthorized|Error parsing image name \"docker://r/x:v1\": reading manifest v1 in r/x: unauthorized: authentication required
denied|Error parsing image name \"docker://r/x:v1\": reading manifest v1 in r/x: denied: requested access to the resource is denied
rate_limited|Error parsing image name \"docker://r/x:v1\": reading manifest v1 in r/x: toomanyrequests: You have reached your pull rate limit
timeout|Error parsing image name \"docker://r/x:v1\": pinging container registry r: Get \"https://r/v2/\": dial tcp 10.0.0.1:443: i/o timeout
timeout|Error parsing image name \"docker://r/x:v1\": pinging container registry r: Get \"https://r/v2/\": context deadline exceeded
tls|Error parsing image name \"docker://r/x:v1\": pinging container registry r: Get \"https://r/v2/\": x509: certificate signed by unknown authority
not_found|Error parsing image name \"docker://r/x:v1\": pinging container registry r: Get \"https://r/v2/\": dial tcp: lookup r: no such host
not_found|writing blob: blob unknown: blob unknown to registry
no_space|writing blob: write /var/tmp/storage123: no space left on device
other|something nobody has seen before
EOF
it_log "transcripts 1.18, multi-arch, TTY, unknown sizes and replayed error classes: ok"

# ---- 8b. hostile names never reach skopeo's argv (issue 10) ---------------------------------
HLOG=$IT_TMP/argv-hostile.log
LONGTAG=$(printf 't%.0s' {1..300})
for ref in "docker://$REG/../../v2:x|not a valid repository name" "docker://$REG/a?b:v1|not a valid repository name" \
	"docker://$REG/x y:v1|not a valid repository name" "docker://$REG/x:$LONGTAG|not a valid tag" \
	"docker://$REG/x:-flag|not a valid tag" "docker://$REG/x@sha256:../../etc|not a valid digest" \
	"docker://bad_host!.example:5000/x:v1|not a valid registry host"; do
	rc=0
	FAKE_SKOPEO_ARGV_LOG=$HLOG fns inspect "${ref%%|*}" >"$IT_TMP/hostile.out" 2>&1 || rc=$?
	[ "$rc" != 0 ] || fail "inspect ${ref%%|*}: refused with a non-zero exit"
	assert_contains "$(cat "$IT_TMP/hostile.out")" "${ref#*|}" "inspect ${ref%%|*}: the error names the problem"
done
printf -- '-flag docker://%s/x:v1\ndocker://%s/x:v1 --dest-creds=a:b\n' "$REG" "$REG" >"$IT_TMP/hostile.jobs"
rc=0
FAKE_SKOPEO_ARGV_LOG=$HLOG fns copy --from-file "$IT_TMP/hostile.jobs" >"$IT_TMP/hostile.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "copy of references starting with '-': refused"
assert_contains "$(cat "$IT_TMP/hostile.out")" "image reference \"-flag\" starts with '-'" "'-flag' as a source is refused"
assert_contains "$(cat "$IT_TMP/hostile.out")" "image reference \"--dest-creds=a:b\" starts with '-'" "'--dest-creds=...' as a destination is refused"
ran=$(grep -v -- ' --version $' "$HLOG" 2>/dev/null || true)
assert_eq "" "$ran" "skopeo never ran with a hostile name (only --version)"
# names from a registry's answer: an index whose children are "../" paths and options
mkdir -p "$IT_TMP/hraw"
"$IT_PY" -c '
import json
print(json.dumps(dict(schemaVersion=2, mediaType="application/vnd.oci.image.index.v1+json",
  manifests=[dict(mediaType="application/vnd.oci.image.manifest.v1+json", digest=d, size=500)
             for d in ("sha256:../../../etc/passwd", "--output=/tmp/x", None, 7)])))' >"$IT_TMP/hraw/top.json"
FAKE_SKOPEO_ARGV_LOG=$HLOG FAKE_SKOPEO_RAW_DIR=$IT_TMP/hraw FAKE_SKOPEO_TRANSCRIPT=$TR/copy-1.18.out \
	fns copy --json "docker://example.com/multi:v1" "docker://$REG/multi:v1" >"$IT_TMP/hostile.jsonl" 2>&1 ||
	fail "copy with a hostile index still runs ($(tail -3 "$IT_TMP/hostile.jsonl"))"
assert_contains "$(cat "$HLOG")" "inspect --raw --tls-verify=false docker://example.com/multi:v1" "the index itself was read"
assert_not_contains "$(cat "$HLOG")" "../" "a child digest from the registry never reaches an argv"
assert_not_contains "$(cat "$HLOG")" "--output" "an option from the registry never reaches an argv"
assert_eq "False" "$(result "$IT_TMP/hostile.jsonl" 'r["sizes_known"]')" "sizes unknown when children are unreadable"
it_log "hostile names: refused before skopeo's argv, each with a clear error"

# ---- 9. timeout: SIGTERM to the group, SIGKILL after the grace -----------------------
# (the bounds are the timeout and grace plus a scaled allowance for the
# process's own start and exit: slow under valgrind)
t0=$(now_ms)
rc=0
FAKE_SKOPEO_HANG=60 FAKE_SKOPEO_PIDFILE=$IT_TMP/hang.pids \
	fns copy --json --timeout 1 "oci:$IT_TMP/img:v1" "docker://$REG/hang:v1" >"$IT_TMP/hang.jsonl" || rc=$?
el=$(($(now_ms) - t0))
assert_eq 1 "$rc" "a hanging skopeo fails"
assert_eq "timed out after 1 s timeout True" "$(result "$IT_TMP/hang.jsonl" 'r["error"], r["error_type"], r["timed_out"]')" \
	"timeout error"
[ "$el" -lt $((1000 + $(tscale_ms 3000))) ] || fail "SIGTERM should end it right after 1 s (took $el ms)"
# gone PID: no such process, or a zombie about to be reaped by init (an
# orphaned grandchild); kill -0 alone also succeeds on zombies
gone() { ! kill -0 "$1" 2>/dev/null || grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
read -r shpid sleeppid <"$IT_TMP/hang.pids"
wait_for "gone $shpid && gone $sleeppid" 2 || fail "the hung skopeo ($shpid) or its child ($sleeppid) survived"
t0=$(now_ms)
rc=0
FAKE_SKOPEO_HANG=60 FAKE_SKOPEO_IGNORE_TERM=1 FAKE_SKOPEO_PIDFILE=$IT_TMP/hang2.pids \
	fns copy --json --timeout 1 --kill-grace 1 "oci:$IT_TMP/img:v1" "docker://$REG/hang:v1" >"$IT_TMP/hang2.jsonl" || rc=$?
el=$(($(now_ms) - t0))
assert_eq "1 timed out after 1 s" "$rc $(result "$IT_TMP/hang2.jsonl" 'r["error"]')" "SIGTERM ignored: still ends"
[ "$el" -ge 1900 ] && [ "$el" -lt $((2000 + $(tscale_ms 3000))) ] || fail "SIGKILL should come 1 s after SIGTERM (took $el ms)"
read -r shpid sleeppid <"$IT_TMP/hang2.pids"
wait_for "gone $shpid && gone $sleeppid" 2 || fail "the hung skopeo ($shpid) or its child ($sleeppid) survived SIGKILL"
it_log "timeouts: killed in ${el} ms with the grace, nothing left"

# SIGTERM to nexus-shipper stops the skopeo in flight the same way
FAKE_SKOPEO_HANG=60 FAKE_SKOPEO_PIDFILE=$IT_TMP/hang3.pids \
	"$NS" -c "$FCONF" skopeo copy --json "oci:$IT_TMP/img:v1" "docker://$REG/hang:v1" >"$IT_TMP/hang3.jsonl" &
cli=$!
wait_for "test -s '$IT_TMP/hang3.pids'" 10 || fail "fake skopeo did not start"
t0=$(now_ms)
kill -TERM "$cli"
rc=0
wait "$cli" || rc=$?
el=$(($(now_ms) - t0))
assert_eq "1 cancelled" "$rc $(result "$IT_TMP/hang3.jsonl" 'r["error"]')" "SIGTERM cancels the run"
[ "$el" -lt "$(tscale_ms 3000)" ] || fail "cancelling took $el ms"
read -r shpid sleeppid <"$IT_TMP/hang3.pids"
wait_for "gone $shpid && gone $sleeppid" 2 || fail "the cancelled skopeo ($shpid/$sleeppid) survived"

# ---- 10. credentials never on a command line ---------------------------------------------
WRAP=$IT_TMP/wrap.sh
cat >"$WRAP" <<'EOF'
#!/bin/sh
# records the child's own /proc/<pid>/cmdline, its authfile and environment, then runs skopeo
{
	tr '\0' ' ' </proc/$$/cmdline
	echo
	prev=
	for a in "$@"; do
		if [ "$prev" = --authfile ]; then
			stat -c 'authfile-mode %a' "$a"
			cp "$a" "$WRAP_LOG.auth"
			echo "authfile-path $a"
		fi
		prev=$a
	done
	echo "password-in-env $(env | grep -c '^SKOPEO_PASSWORD=')"
} >>"$WRAP_LOG"
exec skopeo "$@"
EOF
chmod +x "$WRAP"
WCONF=$IT_TMP/wrap.conf
sed -e "s|^\[skopeo\]|[skopeo]\nbinary = $WRAP|" -e "s|state_dir = .*|state_dir = $IT_TMP/state-wrap|" "$CONF" >"$WCONF"
export WRAP_LOG=$IT_TMP/wrap.log
SECRET=s3cr3t-Zq9-pass
SKOPEO_USERNAME=robot SKOPEO_PASSWORD=$SECRET "$NS" -c "$WCONF" skopeo copy "oci:$IT_TMP/img:v1" "docker://$REG/secret/app:v1" >/dev/null ||
	fail "copy through the wrapper failed: $(cat "$WRAP_LOG")"
B64=$(printf 'robot:%s' "$SECRET" | base64)
log=$(cat "$WRAP_LOG")
assert_not_contains "$log" "$SECRET" "the password is on no command line"
assert_not_contains "$log" "$B64" "nor its base64"
assert_contains "$log" "--authfile" "credentials went through --authfile"
assert_contains "$log" "authfile-mode 600" "the temporary authfile is 0600"
assert_contains "$log" "password-in-env 0" "the password is not in skopeo's environment"
assert_contains "$(cat "$WRAP_LOG.auth")" "\"$REG\"" "authfile names the registry"
assert_contains "$(cat "$WRAP_LOG.auth")" "$B64" "authfile holds the credentials"
af=$(sed -n 's/^authfile-path //p' "$WRAP_LOG" | head -n1)
[ ! -e "$af" ] || fail "temporary authfile $af left behind"
rc=0
"$NS" -c "$WCONF" skopeo copy "oci:$IT_TMP/img:v1" "docker://$REG/secret/app:v2" -- --dest-creds=robot:$SECRET 2>"$IT_TMP/creds.err" || rc=$?
assert_eq 1 "$rc" "--dest-creds refused"
assert_contains "$(cat "$IT_TMP/creds.err")" "credentials must not be on the command line" "refusal message"
assert_not_contains "$(cat "$WRAP_LOG")" "dest-creds" "skopeo was never started with --dest-creds"
it_log "credentials: authfile 0600, removed, never on argv or in the environment"

# ---- 11. copy --from-file: bounded parallelism and a summary ---------------------------------
CONC=$IT_TMP/conc
mkdir -p "$CONC/run"
cat >"$IT_TMP/conc.sh" <<'EOF'
#!/bin/sh
# counts concurrent copies
if [ "$1" = copy ]; then
	touch "$CONC/run/$$"
	ls "$CONC/run" | wc -l >>"$CONC/concurrency.log"
	sleep 0.5
	skopeo "$@"
	rc=$?
	rm -f "$CONC/run/$$"
	exit $rc
fi
exec skopeo "$@"
EOF
chmod +x "$IT_TMP/conc.sh"
export CONC
CCONF=$IT_TMP/conc.conf
sed -e "s|^\[skopeo\]|[skopeo]\nbinary = $IT_TMP/conc.sh|" -e "s|state_dir = .*|state_dir = $IT_TMP/state-conc|" "$CONF" >"$CCONF"
{
	echo "# mirror list"
	for i in 1 2 3 4; do echo "oci:$IT_TMP/img:v1 docker://$REG/list/app$i:v1"; done
	echo ""
	echo "oci:$IT_TMP/no-such-layout:v1   docker://$REG/list/bad:v1"
} >"$IT_TMP/list.txt"
rc=0
"$NS" -c "$CCONF" skopeo copy --from-file "$IT_TMP/list.txt" --parallel 2 >"$IT_TMP/list.out" 2>"$IT_TMP/list.err" || rc=$?
assert_eq 1 "$rc" "one failed job makes the run fail"
assert_contains "$(cat "$IT_TMP/list.out")" "summary: 5 jobs, 4 succeeded, 1 failed (parallel 2" "summary"
assert_contains "$(cat "$IT_TMP/list.out")" "FAILED job 5: oci:$IT_TMP/no-such-layout:v1 -> docker://$REG/list/bad:v1" "failed job named"
maxc=$(sort -n "$CONC/concurrency.log" | tail -n1)
assert_eq 2 "$maxc" "at most (and here exactly) 2 copies at once"
for i in 1 2 3 4; do
	assert_eq "$MDIGEST" "$(ns manifest-digest "docker://$REG/list/app$i:v1")" "list job $i copied"
done
"$NS" -c "$CCONF" skopeo copy --json --from-file "$IT_TMP/list.txt" --parallel 3 >"$IT_TMP/list.jsonl" 2>/dev/null || true
assert_eq "5 4 1 3" "$("$IT_PY" -c '
import json,sys
ev=[json.loads(l) for l in open(sys.argv[1])]
s=ev[-1]; assert s["event"]=="summary"
assert sorted(e["job"] for e in ev if e["event"]=="result")==[1,2,3,4,5]
print(s["jobs"], s["succeeded"], s["failed"], s["parallel"])' "$IT_TMP/list.jsonl")" "JSON summary, one result per job"
it_log "--from-file: bounded parallelism ($maxc) and summary"

# ---- 12. metrics at the Pushgateway (the seed's names), accumulated and spooled ------------------
MCONF=$IT_TMP/metrics.conf
sed -e "s|instance = .*|instance = metrics-it|" -e "s|state_dir = .*|state_dir = $IT_TMP/state-m|" \
	-e "s|spool_dir = .*|spool_dir = $IT_TMP/spool-m|" "$CONF" >"$MCONF"
mns() { "$NS" -c "$MCONF" skopeo "$@"; }
mns copy "oci:$IT_TMP/img:v1" "docker://$REG/metrics/app:v1" >/dev/null
mns inspect "docker://$REG/metrics/app:v1" >/dev/null
mns delete "docker://$REG/metrics/app:v1" >/dev/null
mns inspect "docker://$REG/metrics/app:v1" >/dev/null 2>&1 && fail "inspect after delete succeeded"
# pgv NAME LABELS: the value of the series NAME whose labels include LABELS (k=v,...)
pgv() {
	pgw_metrics | "$IT_PY" -c '
import re,sys
name, want = sys.argv[1], dict(kv.split("=",1) for kv in sys.argv[2].split(",") if kv)
for line in sys.stdin:
    m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line.strip())
    if not m or m.group(1) != name: continue
    labels = dict(re.findall(r"(\w+)=\"((?:[^\"\\\\]|\\\\.)*)\"", m.group(2) or ""))
    if all(labels.get(k) == v for k, v in want.items()):
        print(m.group(3)); break' "$1" "$2"
}
G=job=skopeo,instance=metrics-it
assert_eq 1 "$(pgv skopeo_operations_total "$G,operation=copy,status=success")" "copy counted"
assert_eq 1 "$(pgv skopeo_operations_total "$G,operation=inspect,status=success")" "inspect counted"
assert_eq 1 "$(pgv skopeo_operations_total "$G,operation=inspect,status=error")" "failed inspect counted"
assert_eq 1 "$(pgv skopeo_operations_total "$G,operation=delete,status=success")" "delete counted"
assert_eq 1 "$(pgv skopeo_operation_errors_total "$G,operation=inspect,error_type=manifest_unknown")" "error type"
assert_eq 3 "$(pgv skopeo_blobs_processed_total "$G,operation=copy,status=success")" "blobs processed"
assert_eq 3 "$(pgv skopeo_blob_size_bytes_count "$G,operation=copy")" "blob size histogram count"
assert_eq "$EXPECT_BYTES" "$(pgv skopeo_blob_size_bytes_sum "$G,operation=copy")" "blob size histogram sum = true sizes"
assert_eq 3 "$(pgv skopeo_blob_size_bytes_bucket "$G,operation=copy,le=+Inf")" "blob size +Inf bucket"
assert_eq 1 "$(pgv skopeo_blob_size_bytes_bucket "$G,operation=copy,le=1024")" "the config is under 1 KiB"
assert_eq 1 "$(pgv skopeo_operation_duration_seconds_count "$G,operation=copy")" "duration histogram"
[ -n "$(pgv skopeo_operation_duration_seconds_bucket "$G,operation=copy,le=600")" ] || fail "duration bucket le=600 missing"
assert_eq 0 "$(pgv skopeo_active_operations "$G,operation=copy")" "active operations gauge"
assert_eq 1 "$(pgv skopeo_source_operations_total "$G,operation=copy,source_type=oci")" "source transport"
assert_eq 1 "$(pgv skopeo_destination_operations_total "$G,operation=copy,destination_type=docker")" "destination transport"
assert_eq 2 "$(pgv skopeo_source_operations_total "$G,operation=inspect,source_type=docker")" "inspect source transport"
# the daemon ships the same accumulated counters (collector skopeo_runs: /metrics, remote-write)
"$NS" -c "$MCONF" once --dry-run >"$IT_TMP/daemon.prom" 2>"$IT_TMP/daemon.err" || fail "once --dry-run with [skopeo]"
grep -q '^skopeo_operations_total{.*operation="copy".*status="success".*} 1$' "$IT_TMP/daemon.prom" ||
	fail "the daemon does not ship skopeo_operations_total from the state file"
grep -q '^nexus_shipper_collector_up{collector="skopeo_runs".*} 1$' "$IT_TMP/daemon.prom" ||
	fail "collector skopeo_runs not up"
# Pushgateway down: the run still succeeds, the push is spooled, the next run delivers the totals
stop_server "$PGW_PID"
mns manifest-digest "$MFILE" >/dev/null || fail "a run with the Pushgateway down must succeed"
ls "$IT_TMP/spool-m"/pushgateway/* >/dev/null 2>&1 || fail "the failed push was not spooled"
restart_server pushgateway
PGW_PID=$_IT_PID
mns manifest-digest "$MFILE" >/dev/null
assert_eq 2 "$(pgv skopeo_operations_total "$G,operation=manifest_digest,status=success")" \
	"the run during the outage is counted after it"
assert_eq 1 "$(pgv skopeo_operations_total "$G,operation=copy,status=success")" "earlier counts kept"
mns --metrics-file "$IT_TMP/skopeo.prom" --no-metrics inspect "docker://$REG/mirror/app:v1" >/dev/null
[ ! -e "$IT_TMP/skopeo.prom" ] || fail "--no-metrics wrote metrics"
mns --metrics-file "$IT_TMP/skopeo.prom" inspect "docker://$REG/mirror/app:v1" >/dev/null
assert_contains "$(cat "$IT_TMP/skopeo.prom")" "# TYPE skopeo_operation_duration_seconds histogram" "textfile"
assert_contains "$(cat "$IT_TMP/skopeo.prom")" 'skopeo_operations_total{instance="metrics-it",operation="inspect",status="success"} 2' "textfile counts"
it_log "metrics: the seed's names at the Pushgateway, cumulative, spooled during an outage"

# with [remote_write] the same counters are remote-written (here to a real Prometheus)
start_prometheus
RCONF=$IT_TMP/rw.conf
{
	sed -e "s|instance = .*|instance = rw-it|" -e "s|state_dir = .*|state_dir = $IT_TMP/state-rw|" \
		-e "s|spool_dir = .*|spool_dir = $IT_TMP/spool-rw|" "$CONF"
	printf '[remote_write]\nurl = %s/api/v1/write\n' "$PROM_URL"
} >"$RCONF"
"$NS" -c "$RCONF" skopeo manifest-digest "$MFILE" >/dev/null
"$NS" -c "$RCONF" skopeo manifest-digest "$MFILE" >/dev/null
wait_for "promq --range '$PROM_URL' 'skopeo_operations_total{instance=\"rw-it\",operation=\"manifest_digest\",status=\"success\"}' | grep -q ' 2 '" 10 ||
	fail "remote-written skopeo_operations_total not at 2: $(promq --range "$PROM_URL" 'skopeo_operations_total' || true)"
assert_eq 2 "$(pgv skopeo_operations_total "job=skopeo,instance=rw-it,operation=manifest_digest,status=success")" \
	"and pushed to the Pushgateway too"
it_log "metrics: remote-written to Prometheus as well"

# ---- 13. the library's example program ---------------------------------------------------------------
if [ -x "$EXAMPLE" ]; then
	"$EXAMPLE" --insecure "oci:$IT_TMP/img:v1" "docker://$REG/example/app:v1" >"$IT_TMP/example.out" ||
		fail "example program failed: $(cat "$IT_TMP/example.out")"
	ex=$(cat "$IT_TMP/example.out")
	L0=$(pyj "$IT_TMP/v1.json" 'd["layers"][0]["digest"] + " " + str(d["layers"][0]["size"])')
	assert_contains "$ex" "progress 10.0 getting_signatures" "example: first event"
	assert_contains "$ex" "progress 50.0 copying_blob $L0 copying" "example: blob with its true size"
	assert_contains "$ex" "progress 100.0 completed" "example: completion"
	assert_contains "$ex" "result ok $EXPECT_BYTES $MDIGEST (7 events, skopeo 1.9.3)" "example: result"
else
	fail "example program $EXAMPLE not built (make check builds it)"
fi
it_log "all skopeo assertions passed"
