#!/bin/bash
# Per-target filtering (relabel.h) against real receivers: `once` collects
# from the Nexus simulator and delivers to two VictoriaMetrics, each a
# [remote_write NAME] with different filters; each receiver is queried back
# for exactly the series it should hold.
#   a: keep_metrics (family regex) + drop_series (label matcher)
#   b: keep_series (selectors ORed, metric{...}) + drop_labels, two of whose
#      series collide (the first is sent, a warning names the collision)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init relabel

start_victoriametrics
VM_A=$VM_URL
start_victoriametrics
VM_B=$VM_URL
start_nexus_healthy

cat > "$IT_TMP/ns.conf" <<CONF
$(it_conf instance="relabel-test" state_dir="$IT_TMP")
[remote_write a]
url = $VM_A/api/v1/write
keep_metrics = ^nexus_repository_size_bytes$
drop_series = {repository=~"maven-.*"}, {repository="npm-proxy"}
[remote_write b]
url = $VM_B/api/v1/write
keep_series = nexus_up, nexus_repository_size_bytes{repository=~"docker-.*"}
drop_labels = instance, repository, format
$(nexus_conf)
CONF
"$BIN" -c "$IT_TMP/ns.conf" check-config > /dev/null
"$BIN" -c "$IT_TMP/ns.conf" once 2> "$IT_TMP/once.log" || { cat "$IT_TMP/once.log" >&2; fail "once failed"; }

# what the simulator offers (the unfiltered truth, from a dry run)
"$BIN" -c "$IT_TMP/ns.conf" once --dry-run 2>/dev/null > "$IT_TMP/all.prom"
sizes=$(grep '^nexus_repository_size_bytes{' "$IT_TMP/all.prom" | sed 's/ [^ ]*$//' | sort)
assert_contains "$sizes" 'repository="maven-releases"' "the simulator has maven repositories (something to drop)"
assert_contains "$sizes" 'repository="npm-proxy"' "the simulator has npm-proxy"

# a: the size family only (self-metrics always go), without maven-* and npm-proxy
vm_flush "$VM_A"
got=$(promq --series "$VM_A" '{__name__=~"nexus_.*",__name__!~"nexus_shipper_.*"}')
want=$(grep -v -e 'repository="maven-' -e 'repository="npm-proxy"' <<<"$sizes")
[ "$(wc -l <<<"$want")" -ge 3 ] || fail "too few size series to compare: $want"
assert_eq "$want" "$got" "target a's series: the sizes without maven-* and npm-proxy"
assert_contains "$(promq --series "$VM_A" nexus_shipper_build_info)" 'nexus_shipper_build_info{instance="relabel-test"' \
    "target a still gets the self-metrics (keep_metrics spares them)"

# b: nexus_up and the docker sizes, without instance/repository: the two
# docker sizes collide, one is sent and the collision is logged
vm_flush "$VM_B"
got=$(promq --series "$VM_B" '{__name__=~".+"}')
assert_eq 'nexus_repository_size_bytes
nexus_up' "$got" "target b's series"
assert_eq "" "$(promq --series "$VM_B" '{repository!=""}')" "target b: no repository label left"
v=$(promq --range "$VM_B" nexus_repository_size_bytes | awk '{print $2}')
case "$v" in 7260 | 0) ;; *) fail "target b's merged size is $v, not one of the two docker sizes" ;; esac
assert_contains "$(cat "$IT_TMP/once.log")" "remote_write b: drop_labels made 1 series duplicates of others" \
    "the collision is logged"
assert_contains "$(promq --range "$VM_B" nexus_up)" "nexus_up 1 " "target b's nexus_up"
it_log ok
