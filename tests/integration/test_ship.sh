#!/bin/bash
# A real shipping cycle: `nexus-shipper once` collects from the Nexus
# simulator and delivers to a real Prometheus and a real VictoriaMetrics
# (two [remote_write NAME] targets); both are queried back and the exact
# names, labels, values and timestamps asserted. Then Nexus turns
# unhealthy and the next cycle ships the change; then the Pushgateway path.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init ship

start_prometheus
start_victoriametrics
start_pushgateway
start_nexus_healthy

cat > "$IT_TMP/ns.conf" <<CONF
$(it_conf instance="nexus-test" external_labels="env=ci,dc=lab" state_dir="$IT_TMP")
[remote_write prom]
url = $PROM_URL/api/v1/write
[remote_write vm]
url = $VM_URL/api/v1/write
[pushgateway]
url = $PGW_URL
job = nexus-ci
$(nexus_conf)
CONF

"$BIN" -c "$IT_TMP/ns.conf" check-config
"$BIN" -c "$IT_TMP/ns.conf" once 2> "$IT_TMP/once1.log" || { cat "$IT_TMP/once1.log"; fail "once failed"; }
cat "$IT_TMP/once1.log" >&2
ts=$(sed -n 's/.*samples at timestamp \([0-9]*\) ms.*/\1/p' "$IT_TMP/once1.log")
[ -n "$ts" ] || fail "no cycle timestamp in the log"

lab='dc="lab",env="ci",instance="nexus-test"'
for url in "$PROM_URL" "$VM_URL"; do
    [ "$url" = "$VM_URL" ] && vm_flush
    assert_eq "nexus_up{$lab} 1 $ts" "$(promq --range "$url" nexus_up)" "nexus_up at $url"
    assert_eq "nexus_writable{$lab} 1 $ts" "$(promq --range "$url" nexus_writable)" "nexus_writable at $url"
    assert_eq "nexus_shipper_build_info{$lab,version=\"0.1.0\"} 1 $ts" \
        "$(promq --range "$url" nexus_shipper_build_info)" "build_info at $url"
    assert_eq "nexus_shipper_collector_up{collector=\"nexus_status\",$lab} 1 $ts" \
        "$(promq --range "$url" 'nexus_shipper_collector_up{collector="nexus_status"}')" "collector_up at $url"
done
# (Prometheus 2.42 ignores remote-write MetricMetadata; the unit test
# check_encode decodes it from our WriteRequest instead.)

# Nexus goes read-only: the next cycle ships nexus_writable 0
curl -s -X POST --data-binary @"$top_srcdir/tests/fakes/scenarios/unhealthy.json" \
    "$NEXUS_URL/__control/scenario" >/dev/null
sleep 0.01
"$BIN" -c "$IT_TMP/ns.conf" once 2> "$IT_TMP/once2.log" || { cat "$IT_TMP/once2.log"; fail "second once failed"; }
ts2=$(sed -n 's/.*samples at timestamp \([0-9]*\) ms.*/\1/p' "$IT_TMP/once2.log")
assert_eq "nexus_writable{$lab} 1 $ts
nexus_writable{$lab} 0 $ts2" "$(promq --range "$PROM_URL" nexus_writable)" "writable history in Prometheus"
vm_flush
assert_eq "nexus_up{$lab} 1 $ts
nexus_up{$lab} 0 $ts2" "$(promq --range "$VM_URL" nexus_up)" "nexus_up history in VictoriaMetrics"
# the delivery counters count what was sent in the first run
sent=$(promq "$PROM_URL" 'nexus_shipper_samples_total{outcome="sent",target="prom"}')
[ -n "$sent" ] || fail "no samples_total in Prometheus"

# nothing left behind in the spool
left=$(pending "$IT_TMP/spool" "$IT_TMP/ns.conf")
assert_eq 0 "$(find "$IT_TMP/spool" -path '*rw-*' -type f | wc -l)" "logs removed once delivered"
assert_eq 0 "$left" "spool empty after delivery"

# Pushgateway: once --pushgateway replaces the group job/nexus-ci/instance/nexus-test
"$BIN" -c "$IT_TMP/ns.conf" once --pushgateway 2> "$IT_TMP/once3.log" || { cat "$IT_TMP/once3.log"; fail "pushgateway once failed"; }
m=$(pgw_metrics)
assert_contains "$m" 'nexus_up{dc="lab",env="ci",instance="nexus-test",job="nexus-ci"} 0' "nexus_up at the Pushgateway"
assert_contains "$m" '# TYPE nexus_shipper_samples_total counter' "TYPE lines at the Pushgateway"
it_log "ok"
