#!/bin/bash
# Forwarding Nexus's own metrics ([nexus] forward_metrics = true, the
# nexus_metrics collector): `nexus-shipper once` against the Nexus
# simulator's /service/metrics/prometheus (a Dropwizard-exporter payload
# with a gauge with escaped label values, counters, a summary and a
# histogram), delivered to a real VictoriaMetrics, every forwarded series
# queried back and asserted exactly (names, labels incl. instance and the
# external labels the shipper adds, values).
#
#  1. off by default: no request to /service/metrics/prometheus, no
#     nexus_metrics collector.
#  2. on: every sample forwarded as it came; `once --dry-run` keeps the
#     families' TYPE/HELP (histogram as one family) and passes promtool.
#  3. duplicate series in the answer: skipped and counted, the rest ships.
#  4. malformed answer: nexus_metrics down (collector_up 0) with the line
#     number in the log, none of its samples shipped, the other collectors
#     still ship.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init forward
SCEN=$top_srcdir/tests/fakes/scenarios
PY=$IT_PY

start_victoriametrics
start_nexus_healthy

conf() { # NAME FORWARD(true|false|"")
    cat > "$IT_TMP/$1.conf" <<CONF
$(it_conf instance="ci" external_labels="env=test,dc=eu1" state_dir="$IT_TMP")
[remote_write vm]
url = $VM_URL/api/v1/write
$(nexus_conf)
probe_repositories = false
probe_docker_ports = false
${2:+forward_metrics = $2}
CONF
}

scenario_merge() { # JSON: replace top-level keys of the fake's scenario
    curl -fsS -X POST --data-binary "$1" "$NEXUS_URL/__control/scenario?merge=1" >/dev/null ||
        fail "cannot merge scenario $1"
    curl -fsS -X DELETE "$NEXUS_URL/__control/requests" >/dev/null
}

TS=
LOG=
run_once() { # NAME CONF
    # --allow-partial: a failing collector is what several scenarios are about
    "$BIN" -c "$2" once --allow-partial > "$IT_TMP/$1.out" 2> "$IT_TMP/$1.log" || { cat "$IT_TMP/$1.log" >&2; fail "once ($1) failed"; }
    LOG=$(cat "$IT_TMP/$1.log")
    TS=$(sed -n 's/.*samples at timestamp \([0-9]*\) ms.*/\1/p' "$IT_TMP/$1.log")
    [ -n "$TS" ] || fail "no cycle timestamp in $IT_TMP/$1.log"
    it_log "$1: cycle at $TS"
}
# q SELECTOR: this cycle's samples in VictoriaMetrics as 'name{labels} value' (sorted)
q() {
    vm_flush
    promq --range "$VM_URL" "$1" --start "${TS}ms" --end "${TS}ms" | sed -e "s/ $TS\$//" | LC_ALL=C sort
}
expect() { # SELECTOR MSG <<< EXPECTED
    local want
    want=$(LC_ALL=C sort)
    assert_eq "$want" "$(q "$1")" "$2"
}
FWD='{__name__=~"jvm_.*|org_eclipse_.*|nexus_request_duration_seconds.*"}'
prom_requests() {
    curl -fsS "$NEXUS_URL/__control/requests" |
        $PY -c 'import json,sys; r=json.load(sys.stdin); print(len([x for x in r if x["path"] == "/service/metrics/prometheus"]))'
}
L='dc="eu1",env="test",instance="ci"'

# ---- 1. off by default
conf off ""
curl -fsS -X DELETE "$NEXUS_URL/__control/requests" >/dev/null
run_once off "$IT_TMP/off.conf"
assert_eq 0 "$(prom_requests)" "forward_metrics off: /service/metrics/prometheus never asked"
assert_eq "" "$(q 'nexus_shipper_collector_up{collector="nexus_metrics"}')" "off: no nexus_metrics collector"
assert_eq "nexus_shipper_collector_up{collector=\"nexus_status\",$L} 1" \
    "$(q 'nexus_shipper_collector_up{collector="nexus_status"}')" "off: other collectors ship"
assert_eq "" "$(q "$FWD")" "off: nothing forwarded"

# ---- 2. on: the default Dropwizard payload, exactly
conf on true
run_once on "$IT_TMP/on.conf"
assert_eq 1 "$(prom_requests)" "one GET of /service/metrics/prometheus per cycle"
curl -fsS "$NEXUS_URL/__control/requests" | $PY -c '
import json, sys
r = [x for x in json.load(sys.stdin) if x["path"] == "/service/metrics/prometheus"]
assert r and all(x["user"] == "metrics" for x in r), r' || fail "metrics GET without the [nexus] credentials"
# VictoriaMetrics may answer the selector empty for a while after the
# "off" query above found nothing (lib.sh's findings), vm_flush or not
# shellcheck disable=SC2016 # (evaluated by wait_for)
wait_for '[ -n "$(q "$FWD")" ]' 15 || true # asserted exactly below
expect "$FWD" "forwarded series" <<EOF
jvm_info{dc="eu1",env="test",home="C:\\\\nexus\\\\jdk",instance="ci",runtime="OpenJDK Runtime Environment",vendor="Eclipse \\"Temurin\\"",version="17.0.9+9"} 1
jvm_memory_bytes_used{area="heap",$L} 438124544
jvm_memory_bytes_used{area="nonheap",$L} 230918712
jvm_threads_current{$L} 187
nexus_request_duration_seconds_bucket{$L,le="+Inf"} 140
nexus_request_duration_seconds_bucket{$L,le="0.1"} 120
nexus_request_duration_seconds_bucket{$L,le="1.0"} 135
nexus_request_duration_seconds_count{$L} 140
nexus_request_duration_seconds_sum{$L} 42.5
org_eclipse_jetty_webapp_WebAppContext_2xx_responses_total{$L} 15243
org_eclipse_jetty_webapp_WebAppContext_5xx_responses_total{$L} 2
org_eclipse_jetty_webapp_WebAppContext_requests_count{$L} 15282
org_eclipse_jetty_webapp_WebAppContext_requests{$L,quantile="0.5"} 0.0025
org_eclipse_jetty_webapp_WebAppContext_requests{$L,quantile="0.99"} 0.125
EOF
expect '{__name__=~"nexus_shipper_(forwarded|forward_skipped)_samples"}' "forward counts" <<EOF
nexus_shipper_forward_skipped_samples{collector="nexus_metrics",$L} 0
nexus_shipper_forwarded_samples{collector="nexus_metrics",$L} 14
EOF
assert_eq "nexus_shipper_collector_up{collector=\"nexus_metrics\",$L} 1" \
    "$(q 'nexus_shipper_collector_up{collector="nexus_metrics"}')" "on: nexus_metrics up"

# the text format keeps the families: histogram as one, HELP unescaped and re-escaped
"$BIN" -c "$IT_TMP/on.conf" once --dry-run > "$IT_TMP/on.prom" 2> "$IT_TMP/on-dry.log" ||
    fail "once --dry-run failed"
# promtool's only complaint may be the camelCase of Nexus's own Dropwizard
# names (org_eclipse_jetty_webapp_WebAppContext_*): they are forwarded as they are
promtool check metrics < "$IT_TMP/on.prom" >"$IT_TMP/promtool.out" 2>&1 || true
if grep -v "^org_eclipse_jetty_webapp_WebAppContext_[a-z0-9_]* metric names should be written in 'snake_case' not 'camelCase'\$" \
        "$IT_TMP/promtool.out" | grep -q .; then
    cat "$IT_TMP/promtool.out" >&2
    fail "promtool check metrics"
fi
[ "$(wc -l < "$IT_TMP/promtool.out")" -eq 4 ] || { cat "$IT_TMP/promtool.out" >&2; fail "promtool: expected the 4 camelCase notes"; }
dry=$(cat "$IT_TMP/on.prom")
assert_contains "$dry" "# TYPE nexus_request_duration_seconds histogram" "histogram family"
assert_contains "$dry" '# HELP nexus_request_duration_seconds Request duration.\nBuckets in seconds; C:\\ paths escaped.' "HELP escapes"
assert_contains "$dry" "# TYPE jvm_memory_bytes_used gauge" "gauge family"
assert_contains "$dry" "# TYPE org_eclipse_jetty_webapp_WebAppContext_2xx_responses_total counter" "counter family"
assert_contains "$dry" 'vendor="Eclipse \"Temurin\""' "label escapes"

# ---- 3. duplicate series in the answer: skipped and counted
scenario_merge '{"prometheus_metrics": "# TYPE a_gauge gauge\na_gauge{x=\"1\"} 1\na_gauge{x=\"1\"} 2\na_gauge{x=\"2\"} 3\n"}'
run_once dup "$IT_TMP/on.conf"
expect 'a_gauge' "duplicate: the first one ships" <<EOF
a_gauge{$L,x="1"} 1
a_gauge{$L,x="2"} 3
EOF
expect '{__name__=~"nexus_shipper_(forwarded|forward_skipped)_samples"}' "duplicate counted" <<EOF
nexus_shipper_forward_skipped_samples{collector="nexus_metrics",$L} 1
nexus_shipper_forwarded_samples{collector="nexus_metrics",$L} 2
EOF
assert_contains "$LOG" "nexus_metrics: skipped 1 of 3 samples of /service/metrics/prometheus (first: line 3: " "skip logged"

# ---- 4. malformed answer: the collector is down, the others ship
scenario_merge '{"prometheus_metrics": "# HELP jvm_threads_current Threads.\n# TYPE jvm_threads_current gauge\njvm_threads_current 187.0\njvm_memory_bytes_used{area=\"heap\" 1.0\n"}'
run_once bad "$IT_TMP/on.conf"
assert_eq "nexus_shipper_collector_up{collector=\"nexus_metrics\",$L} 0" \
    "$(q 'nexus_shipper_collector_up{collector="nexus_metrics"}')" "malformed: nexus_metrics down"
assert_eq "nexus_shipper_collector_up{collector=\"nexus_health\",$L} 1
nexus_shipper_collector_up{collector=\"nexus_status\",$L} 1" \
    "$(q 'nexus_shipper_collector_up{collector=~"nexus_status|nexus_health"}')" "malformed: the others ship"
assert_eq "nexus_up{$L} 1" "$(q nexus_up)" "malformed: nexus_up still shipped"
assert_contains "$LOG" "GET /service/metrics/prometheus: line 4: expected ',' or '}' after label value" \
    "malformed: the log names the line"
# `once` as a smoke test: a line per collector and per target; exit 1 when a
# collector failed unless --allow-partial
OUT=$(cat "$IT_TMP/bad.out")
[[ $OUT =~ collector\ nexus_metrics\ +FAILED\ +GET\ /service/metrics/prometheus:\ line\ 4 ]] ||
    fail "once does not name the failed collector and its reason: $OUT"
[[ $OUT =~ collector\ nexus_status\ +ok\ +[1-9][0-9]*\ series ]] || fail "once does not report nexus_status ok: $OUT"
[[ $OUT =~ target\ +vm\ +HTTP\ 204\ +[1-9][0-9]*\ batch(es)?\ delivered,\ 0\ left ]] ||
    fail "once does not report the target's delivery: $OUT"
rc=0
"$BIN" -c "$IT_TMP/on.conf" once > "$IT_TMP/bad2.out" 2> "$IT_TMP/bad2.log" || rc=$?
assert_eq 1 "$rc" "once exits 1 when a collector failed (no --allow-partial)"
assert_eq "" "$(q "$FWD" | grep -v ' NaN$' || true)" "malformed: nothing half-forwarded"
assert_eq "" "$(q '{__name__=~"nexus_shipper_(forwarded|forward_skipped)_samples"}' | grep -v ' NaN$' || true)" \
    "malformed: no forward counts"

it_log "forward: all assertions passed"
