#!/bin/bash
# Registry cleanup at scale (issue 7): a real docker-registry 2.8 with
# REPOS (100) repositories x TAGS (100) tags, side by side in the same run:
#  - (a) `nexus-shipper cleanup --dry-run` ([cleanup] days_to_keep = 30,
#    concurrency = CONC), wall time, in three ways:
#      cold: everything over HTTP, the digest cache removed before the run
#            (manifest GET per tag + config blob GET per distinct image);
#      warm: everything over HTTP with the digest cache of the previous run
#            (STATE_DIR/cleanup-cache: config digest -> created), so one
#            manifest GET per tag;
#      host: on the registry host with storage_path set (the seed's
#            host_storage): config blobs read from disk, verified by
#            digest, --no-cache;
#  - (b) the floor: one manifest GET per tag (REPOS x TAGS) with the Accept
#    header the cleanup sends (the four manifest media types), CONC at a
#    time, in ONE curl process (curl --parallel --parallel-max CONC -K cfg);
#  - (c) for information: (b) plus one config blob GET per distinct image in
#    the same curl (what any HTTP client must fetch to learn `created`);
#  - the HTTP requests each made (counted from the registry's access log).
# Target: (a) <= 1.5 x (b), medians of RUNS repetitions (alternating order);
# a verdict per way.
#
# The data set: one image is pushed with skopeo (bench/r000:t000) so the
# layer blob is real; then the repositories, tags, image configs and
# manifests are written straight into the registry's filesystem storage
# (registry 2.8 layout: blobs/sha256/xx/<hex>/data, repositories/<repo>/
# _layers/sha256/<hex>/link, _manifests/revisions/sha256/<hex>/link,
# _manifests/tags/<tag>/{current/link,index/sha256/<hex>/link}), and checked
# over HTTP (catalog, tags/list, a manifest GET by tag, a config blob GET).
# Each repository has DISTINCT (default TAGS: every tag its own image)
# distinct images, tag j -> image j % DISTINCT, image k created k*2 days ago
# (so about 15% are younger than days_to_keep). Every image has its own config
# blob, which the cleanup must GET to learn the `created` date: with
# DISTINCT = TAGS the cleanup needs 2 requests per tag where the floor needs 1.
#
# Usage (from the build dir, or set BUILD_DIR):  bash ../tests/bench/cleanup_bench.sh
# Variables: REPOS (100), TAGS (100), DISTINCT (= TAGS), CONC (4), RUNS (3),
# MODES ("cold warm host"), KEEP=1 keeps the registry directory.
# Needs docker-registry, skopeo, curl (>= 7.66 for --parallel), python3.
# Reports; does not gate: exit 0 unless something could not run.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$PWD}
BIN=$BUILD_DIR/nexus-shipper
[ -x "$BIN" ] || { echo "cleanup_bench: $BIN not built" >&2; exit 1; }
for t in docker-registry skopeo curl; do
	command -v "$t" >/dev/null || { echo "cleanup_bench: SKIP ($t not installed)"; exit 0; }
done
[ -n "${KEEP:-}" ] && export IT_KEEP=1
. "$SRC/tests/integration/lib.sh"
it_init cleanupbench
REPOS=${REPOS:-100} TAGS=${TAGS:-100} CONC=${CONC:-4} RUNS=${RUNS:-3}
DISTINCT=${DISTINCT:-$TAGS}

# ---- registry: deletion on (as in production), access log on (to count)
DATA=$IT_TMP/registry/data
mkdir -p "$DATA"
cat >"$IT_TMP/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $DATA
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
EOF
_it_start registry /v2/ 30 env REGISTRY_HTTP_ADDR=127.0.0.1:@PORT@ docker-registry serve "$IT_TMP/registry/config.yml"
RURL=http://127.0.0.1:$_IT_PORT
ALOG=$IT_LOGS/registry.log

# ---- one real push, then the rest written into the storage
"$IT_PY" "$SRC/tests/integration/oci_image.py" "$IT_TMP/oci" base --created 2020-01-01T00:00:00Z --size 2000 >/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$IT_TMP/oci:base" "docker://127.0.0.1:$_IT_PORT/bench/r000:t000" ||
	fail "skopeo push"
t0=$(date +%s%N)
"$IT_PY" - "$IT_TMP/oci" "$DATA/docker/registry/v2" "$REPOS" "$TAGS" "$DISTINCT" "$RURL" "$IT_TMP/config-urls.cfg" <<'EOF' || fail "generating the storage"
import datetime, hashlib, json, os, shutil, sys
oci, root, nrepos, ntags, ndist, rurl, cfgout = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
idx = json.load(open(os.path.join(oci, "index.json")))
mdig = idx["manifests"][0]["digest"].split(":")[1]
base = json.load(open(os.path.join(oci, "blobs", "sha256", mdig)))
layer = base["layers"][0]
lhex = layer["digest"].split(":")[1]
assert os.path.exists(os.path.join(root, "blobs", "sha256", lhex[:2], lhex, "data")), "pushed layer not in storage"
basecfg = json.load(open(os.path.join(oci, "blobs", "sha256", base["config"]["digest"].split(":")[1])))

def put(data):
    h = hashlib.sha256(data).hexdigest()
    d = os.path.join(root, "blobs", "sha256", h[:2], h)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "data"), "wb") as f:
        f.write(data)
    return h, len(data)

def link(path, h):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "link"), "w") as f:
        f.write("sha256:" + h)

now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
repos = os.path.join(root, "repositories", "bench")
shutil.rmtree(os.path.join(repos, "r000"))  # the pushed one: rewritten like the others
cfgurls = open(cfgout, "w")
for r in range(nrepos):
    rd = os.path.join(repos, "r%03d" % r)
    imgs = []  # (config hex, manifest hex): every repository its own images
    for k in range(ndist):
        cfg = dict(basecfg, created=(now - datetime.timedelta(days=2 * k)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        cfg["config"] = {"Labels": {"bench.image": "r%03d-%d" % (r, k)}}
        ch, cl = put(json.dumps(cfg, sort_keys=True).encode())
        man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + ch, "size": cl},
               "layers": [layer]}
        mh, _ = put(json.dumps(man, sort_keys=True).encode())
        imgs.append((ch, mh))
        cfgurls.write('url = "%s/v2/bench/r%03d/blobs/sha256:%s"\noutput = "/dev/null"\n' % (rurl, r, ch))
    link(os.path.join(rd, "_layers", "sha256", lhex), lhex)
    for ch, mh in imgs:
        link(os.path.join(rd, "_layers", "sha256", ch), ch)
        link(os.path.join(rd, "_manifests", "revisions", "sha256", mh), mh)
    for t in range(ntags):
        mh = imgs[t % ndist][1]
        td = os.path.join(rd, "_manifests", "tags", "t%03d" % t)
        link(os.path.join(td, "current"), mh)
        link(os.path.join(td, "index", "sha256", mh), mh)
cfgurls.close()
EOF
gen_ms=$(( ($(date +%s%N) - t0) / 1000000 ))

# ---- check the data set over HTTP
ACCEPT='Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json'
n=$(curl -fsS "$RURL/v2/_catalog?n=1000" | "$IT_PY" -c 'import json,sys; print(len(json.load(sys.stdin)["repositories"]))')
assert_eq "$REPOS" "$n" "the catalog lists every repository"
mid=$(printf 'bench/r%03d' $((REPOS * 42 / 100)))
n=$(curl -fsS "$RURL/v2/$mid/tags/list" | "$IT_PY" -c 'import json,sys; print(len(json.load(sys.stdin)["tags"]))')
assert_eq "$TAGS" "$n" "$mid lists every tag"
cfgd=$(curl -fsS -H "$ACCEPT" "$RURL/v2/$mid/manifests/t001" | "$IT_PY" -c 'import json,sys; print(json.load(sys.stdin)["config"]["digest"])') ||
	fail "manifest GET by tag"
curl -fsS "$RURL/v2/$mid/blobs/$cfgd" | grep -q '"created"' || fail "config blob GET"
echo "data set: $REPOS repositories x $TAGS tags, $DISTINCT distinct images per repository, written in $gen_ms ms"

# ---- (a) the cleanup's dry run: HTTP only (cold / warm cache), or on the host
mkdir -p "$IT_TMP/state"
CONF=$IT_TMP/ns.conf
cat >"$CONF" <<EOF
[shipper]
instance = cleanup-bench
state_dir = $IT_TMP/state
spool_dir = $IT_TMP/spool
[cleanup]
registry_url = $RURL
days_to_keep = 30
concurrency = $CONC
EOF
HCONF=$IT_TMP/ns-host.conf
{ cat "$CONF"; echo "storage_path = $DATA"; } >"$HCONF"
MODES=${MODES:-cold warm host}

# ---- (b) the floor: one manifest GET per tag, one curl process
CURLCFG=$IT_TMP/urls.cfg
{
	printf 'silent\nheader = "%s"\n' "$ACCEPT"
	printf 'write-out = "%%{http_code}\\n"\n'
	for ((r = 0; r < REPOS; r++)); do
		for ((t = 0; t < TAGS; t++)); do
			printf 'url = "%s/v2/bench/r%03d/manifests/t%03d"\noutput = "/dev/null"\n' "$RURL" "$r" "$t"
		done
	done
} >"$CURLCFG"
# ---- (c) the floor for any client that reads `created` over HTTP: (b) plus
# one config blob GET per distinct image, same curl, same concurrency
CFG_C=$IT_TMP/urls-configs.cfg
cat "$CURLCFG" "$IT_TMP/config-urls.cfg" >"$CFG_C"
N_C=$(( REPOS * TAGS + $(grep -c '^url' "$IT_TMP/config-urls.cfg") ))

loglines() { wc -l <"$ALOG"; }
# reqs FROM: the access-log lines after line FROM, by kind
reqs() {
	tail -n +"$(($1 + 1))" "$ALOG" | awk '
		/"(GET|HEAD|DELETE|PUT|POST) \/v2\// { n++
			if ($0 ~ /\/manifests\//) m++; else if ($0 ~ /\/blobs\//) b++
			else if ($0 ~ /\/tags\/list/) t++; else if ($0 ~ /_catalog/) c++; else o++ }
		END { printf "%d (manifests %d, blobs %d, tags/list %d, catalog %d, other %d)\n", n, m, b, t, c, o }'
}
# run_a MODE: one dry run; appends its time to A_MS_<MODE>, sets A_REQ_<MODE>
run_a() {
	local mode=$1 t0 ms rc=0 from conf=$CONF args=()
	case "$mode" in
	cold) rm -f "$IT_TMP/state/cleanup-cache" ;;
	warm) [ -s "$IT_TMP/state/cleanup-cache" ] || fail "warm run without a cache file" ;;
	host) conf=$HCONF args=(--no-cache) ;;
	esac
	from=$(loglines)
	t0=$(date +%s%N)
	"$BIN" -c "$conf" cleanup --dry-run "${args[@]}" >"$IT_TMP/plan-$mode.txt" 2>"$IT_TMP/plan-$mode.log" || rc=$?
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	[ "$rc" = 0 ] || fail "cleanup --dry-run ($mode) exit $rc ($(tail -3 "$IT_TMP/plan-$mode.log"))"
	sleep 0.2 # the access log is written after the response
	printf -v "A_REQ_$mode" '%s' "$(reqs "$from")"
	eval "A_MS_$mode+=(\"\$ms\")"
}
# run_curl CFG N: the requests of CFG in one curl, CONC at a time; sets MS, REQ
run_curl() {
	local t0 ok from
	from=$(loglines)
	t0=$(date +%s%N)
	curl -s --parallel --parallel-max "$CONC" -K "$1" >"$IT_TMP/codes.txt" 2>"$IT_TMP/curl.err" || true
	MS=$(( ($(date +%s%N) - t0) / 1000000 ))
	ok=$(grep -c '^200$' "$IT_TMP/codes.txt" || true)
	assert_eq "$2" "$ok" "curl: every GET of $1 answered 200"
	sleep 0.2
	REQ=$(reqs "$from")
}
run_b() { run_curl "$CURLCFG" $((REPOS * TAGS)); B_MS+=("$MS") B_REQ=$REQ; }
run_c() { run_curl "$CFG_C" "$N_C"; C_MS+=("$MS") C_REQ=$REQ; }
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }

# warm-up (page cache, registry's first requests; fills the digest cache), not counted
"$BIN" -c "$CONF" cleanup --dry-run >/dev/null 2>&1 || true
curl -s --parallel --parallel-max "$CONC" -K "$CURLCFG" >/dev/null 2>&1 || true
B_MS=() C_MS=()
for m in $MODES; do eval "A_MS_$m=()"; done
first=${MODES%% *}
for ((i = 0; i < RUNS; i++)); do
	line="run $((i + 1)):"
	if ((i % 2)); then
		run_c
		run_b
		for m in $(printf '%s\n' $MODES | tac); do run_a "$m"; done
	else
		for m in $MODES; do run_a "$m"; done
		run_b
		run_c
	fi
	for m in $MODES; do eval "line+=\" cleanup $m \${A_MS_$m[-1]} ms,\""; done
	echo "$line floor ${B_MS[-1]} ms, floor+configs ${C_MS[-1]} ms"
done
b=$(median "${B_MS[@]}") c=$(median "${C_MS[@]}")
summary=$(grep '^summary ' "$IT_TMP/plan-$first.txt" || true)
echo "plan: ${summary#summary }"
for m in $MODES; do
	cmp -s <(grep '^tag ' "$IT_TMP/plan-$m.txt") <(grep '^tag ' "$IT_TMP/plan-$first.txt") ||
		fail "the $m plan differs from the $first one"
done
echo "(b) floor, curl --parallel-max $CONC, 1 manifest GET per tag: median $b ms (runs: ${B_MS[*]}), HTTP requests: $B_REQ"
echo "(c) floor + 1 config blob GET per distinct image, same curl: median $c ms (runs: ${C_MS[*]}), HTTP requests: $C_REQ"
for m in $MODES; do
	eval "runs=(\"\${A_MS_$m[@]}\")"
	eval "req=\$A_REQ_$m"
	a=$(median "${runs[@]}")
	echo "(a) cleanup --dry-run $m, concurrency $CONC: median $a ms (runs: ${runs[*]}), HTTP requests: $req"
	echo "info cleanup_${m}_vs_floor_with_configs ratio=$(awk -v a="$a" -v c="$c" 'BEGIN {printf "%.2f", (c > 0) ? a / c : 0}')"
	ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')
	if awk -v r="$ratio" 'BEGIN {exit !(r <= 1.5)}'; then v=PASS; else v=FAIL; fi
	echo "verdict cleanup_dry_run_${m}_vs_floor ratio=${ratio} target<=1.5 $v"
done
