#!/bin/bash
# The status page at GET / of [shipper] listen, read in headless Chromium
# (issue 19), and `healthcheck --max-delivery-age`: a daemon delivering to a
# receiver fake that starts failing (its answer carries HTML, which the page
# must show as text), a Nexus fake whose blob store endpoint fails, a
# recorded cleanup run and skopeo operations in state_dir. The page must
# show the target with its current error, the spooled batches, the failing
# collector with its error, the last cleanup run and skopeo operation, the
# version and the configuration file; healthcheck exits 0 while the
# receiver accepts and 1 within the age after it starts failing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init status
BIN=${NEXUS_SHIPPER:-$top_builddir/nexus-shipper}
CHROMIUM=${CHROMIUM:-$(command -v chromium || true)}
[ -n "$CHROMIUM" ] ||
	fail "chromium is not installed: this test reads the status page in headless Chromium (apt-get install chromium; deploy/install-deps.sh lists it)"

start_fake NEXUS tests/fakes/nexus_fake.py --scenario "$top_srcdir/tests/fakes/scenarios/healthy.json"
curl -sf -X POST -d '{"faults": {"/service/rest/v1/blobstores": {"status": 500}}}' \
	"$NEXUS_URL/__control/scenario?merge=1" >/dev/null || fail "cannot break the Nexus fake"
# the receiver fails from the start (its answer is HTML: the page escapes it)
FAILING='{"status": 503, "body": "maintenance <b>window</b> & more"}'
start_fake RECV tests/fakes/receiver_fake.py --status 503 --body 'maintenance <b>window</b> & more'
printf 'metrics-secret\n' > "$IT_TMP/pw"
chmod 600 "$IT_TMP/pw"
PORT=$(free_port)
mkdir -p "$IT_TMP/state"
cat > "$IT_TMP/s.conf" <<CONF
[shipper]
interval = 1s
instance = status-test
listen = 127.0.0.1:$PORT
spool_dir = $IT_TMP/spool
state_dir = $IT_TMP/state
shutdown_timeout = 1s
[remote_write main]
url = $RECV_URL/api/v1/write
timeout = $(tdur 5s)
max_backoff = 1s
[nexus]
url = $NEXUS_URL
username = metrics
password_file = $IT_TMP/pw
CONF
# a recorded cleanup run and skopeo operations (the files `cleanup` and
# `skopeo` write; formats of cleanup_metrics.c and skopeo_metrics.c)
run_ms=$(( $(now_ms) - 3600000 ))
cat > "$IT_TMP/state/cleanup.state" <<STATE
runs failure 1
last_run_ms $run_ms
last_status failure
last_scanned 4242
last_repos 7
last_manifests_deleted 0
last_blob_bytes 0
last_du_freed -1
last_duration_s 12.5
STATE
printf 'ops copy success 3\nops copy error 1\nlast copy success %s\nlast copy error %s\n' \
	"$run_ms" "$(( run_ms + 60000 ))" > "$IT_TMP/state/skopeo-metrics.state"

DEBUG=true "$BIN" -c "$IT_TMP/s.conf" run 2> "$IT_TMP/run.log" &
pid=$!
it_on_exit "kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null"
wait_cycles "$IT_TMP/run.log" 2 || fail "two cycles not stored"

# ---- healthcheck --max-delivery-age ----------------------------------------
AGE=$(tdur 2s)                  # "2000ms" natively
AGE_S=$(( ${AGE%ms} / 1000 ))
hc() { # exit code also in hc.rc
	local rc=0
	"$BIN" -c "$IT_TMP/s.conf" healthcheck --max-delivery-age "$AGE" >"$IT_TMP/hc.out" 2>&1 || rc=$?
	echo "$rc" > "$IT_TMP/hc.rc"
	return "$rc"
}
wait_for "curl -sf http://127.0.0.1:$PORT/healthz >/dev/null" 3 ||
	fail "/healthz never healthy"
assert_eq 400 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz?max_delivery_age=soon")" \
	"a bad max_delivery_age is refused"
# no delivery yet: the age counts from the start
"$BIN" -c "$IT_TMP/s.conf" healthcheck --max-delivery-age 1h >"$IT_TMP/hc.out" 2>&1 ||
	fail "healthcheck --max-delivery-age 1h right after the start: $(cat "$IT_TMP/hc.out")"
assert_contains "$(cat "$IT_TMP/hc.out")" "no delivery yet, started" "before any delivery"
# within the age (2 s, scaled) plus a cycle and the healthcheck itself
# (another reason, a cycle late under valgrind, does not count)
wait_for "! hc && grep -q 'no target delivered' '$IT_TMP/hc.out'" 4 ||
	fail "healthcheck did not report the missing delivery since the start: $(cat "$IT_TMP/hc.out")"
assert_eq 1 "$(cat "$IT_TMP/hc.rc")" "healthcheck exit code with no delivery since the start"
assert_contains "$(cat "$IT_TMP/hc.out")" "no target delivered since the start at" "never delivered since the start"
assert_contains "$(cat "$IT_TMP/hc.out")" "main: last delivery never since start" "names the target"

# the receiver accepts: healthy
curl -sf -X POST -d '{"status": 204}' "$RECV_URL/__control" >/dev/null || fail "cannot make the receiver accept"
wait_for hc 5 || fail "healthcheck --max-delivery-age $AGE failed while the receiver accepts: $(cat "$IT_TMP/hc.out")"
assert_contains "$(cat "$IT_TMP/hc.out")" "last delivery" "healthy answer says when the last delivery was"

# the receiver fails again
curl -sf -X POST -d "$FAILING" "$RECV_URL/__control" >/dev/null || fail "cannot make the receiver fail"
t0=$(now_ms)
# unhealthy within the age (2 s, scaled), plus a cycle and the healthcheck itself
wait_for "! hc && grep -q 'no target delivered for' '$IT_TMP/hc.out' && grep -q maintenance '$IT_TMP/hc.out'" 6 ||
	fail "healthcheck did not report the missing delivery $(( $(now_ms) - t0 )) ms after the receiver started failing: $(cat "$IT_TMP/hc.out")"
assert_eq 1 "$(cat "$IT_TMP/hc.rc")" "healthcheck exit code once no target delivered for $AGE"
out=$(cat "$IT_TMP/hc.out")
assert_contains "$out" "max_delivery_age $AGE_S s" "the message names the age"
assert_contains "$out" "main: last delivery 20" "the message names the target and since when"
assert_contains "$out" "maintenance" "the message carries the current error"
it_log "healthcheck: exit 1 after $(( $(now_ms) - t0 )) ms: $out"

# ---- the status page in Chromium -------------------------------------------
# wait until batches are spooled for the failing target
wait_for "curl -sf http://127.0.0.1:$PORT/ | grep -q 'HTTP 503'" 5 || fail "the page never showed the 503"
chrome() {
	local prof
	prof=$(mktemp -d "$IT_TMP/chrome.XXXXXX")
	timeout "$(tscale 30)" "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic \
		--no-first-run --disable-background-networking --disable-component-update \
		--disable-sync --user-data-dir="$prof" "$@" 2>>"$IT_LOGS/chromium.log"
}
chrome --screenshot="$IT_TMP/status.png" --window-size=1280,1600 "http://127.0.0.1:$PORT/" >/dev/null ||
	fail "chromium could not take a screenshot (see $IT_LOGS/chromium.log)"
[ -s "$IT_TMP/status.png" ] || fail "no screenshot written"
chrome --dump-dom "http://127.0.0.1:$PORT/" > "$IT_TMP/dom.html" ||
	fail "chromium could not render the page (see $IT_LOGS/chromium.log)"
# the rendered text, one table row per line
/usr/bin/python3 - "$IT_TMP/dom.html" > "$IT_TMP/page.txt" <<'PY'
import html.parser, sys
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.out = []; self.skip = False
    def handle_starttag(self, t, a):
        if t in ("style", "script", "title"): self.skip = True
        if t in ("tr", "p", "h1", "h2", "dt", "br"): self.out.append("\n")
        if t in ("td", "th", "dd"): self.out.append(" | ")
    def handle_endtag(self, t):
        if t in ("style", "script", "title"): self.skip = False
    def handle_data(self, d):
        if not self.skip: self.out.append(d)
p = P(); p.feed(open(sys.argv[1]).read())
print("".join(p.out))
PY
page=$(cat "$IT_TMP/page.txt")
row() { grep -m1 "$1" "$IT_TMP/page.txt" || true; }
assert_contains "$(row '| main |')" "HTTP 503" "target row: last status"
assert_contains "$(row '| main |')" "maintenance <b>window</b> & more" "target row: the receiver's answer as text"
assert_not_contains "$(cat "$IT_TMP/dom.html")" "<b>window</b>" "the receiver's HTML is escaped, not rendered"
spooled=$(row '| main |' | awk -F' \\| ' '{print $9}' | tr -d ' ')
[[ $spooled =~ ^[0-9]+$ ]] && [ "$spooled" -gt 0 ] || fail "spooled batches not > 0: '$spooled' in: $(row '| main |')"
assert_contains "$(row '| main |')" " ago" "target row: last success and oldest spooled age"
assert_contains "$(row 'nexus_blobstores')" "down" "failing collector shown down"
assert_contains "$(row 'nexus_blobstores')" "500" "failing collector's error"
assert_contains "$(row 'nexus_status')" "up" "a working collector shown up"
assert_contains "$(row 'failure')" "4242" "last cleanup run (status and tags scanned)"
assert_contains "$(row '| copy |')" "ago" "last skopeo operations"
version=$("$BIN" --version | awk '{print $2}')
assert_contains "$page" "Version | $version" "version"
assert_contains "$page" "Configuration file | $IT_TMP/s.conf" "configuration file"
assert_contains "$page" "nexus-shipper status-test" "instance in the heading"
it_log "page: $(wc -c < "$IT_TMP/dom.html") bytes, $spooled batches spooled; screenshot $(wc -c < "$IT_TMP/status.png") bytes"
kill -TERM "$pid"
wait "$pid" || fail "run did not exit 0"
it_log ok
