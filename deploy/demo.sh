#!/bin/bash
# The main job, on this machine, with nothing configured by hand:
# installs the Debian packages, builds nexus-shipper, starts a real
# VictoriaMetrics and the Nexus simulator on random loopback ports, runs
# one real shipping cycle (`nexus-shipper once`) and prints the series
# that arrived at the receiver. Everything runs in a temp dir and stops
# at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash deploy/install-deps.sh   # installs what is missing (with sudo when not root)
[ -f configure ] || { mkdir -p m4 && autoreconf -fi; }
mkdir -p _build
(cd _build && { [ -f Makefile ] || ../configure; } && make -j"$(nproc)" nexus-shipper)
BIN=$ROOT/_build/nexus-shipper

top_srcdir=$ROOT
export top_srcdir
. tests/integration/lib.sh
it_init demo
start_victoriametrics
start_fake NEXUS tests/fakes/nexus_fake.py --scenario "$ROOT/tests/fakes/scenarios/healthy.json"
printf 'metrics-secret\n' > "$IT_TMP/nexus-password"
chmod 600 "$IT_TMP/nexus-password"
cat > "$IT_TMP/nexus-shipper.conf" <<CONF
[shipper]
instance = demo-nexus
external_labels = env=demo
spool_dir = $IT_TMP/spool
[remote_write victoriametrics]
url = $VM_URL/api/v1/write
[nexus]
url = $NEXUS_URL
username = metrics
password_file = $IT_TMP/nexus-password
CONF
echo
echo "== configuration ($IT_TMP/nexus-shipper.conf)"
cat "$IT_TMP/nexus-shipper.conf"
echo
echo "== nexus-shipper once"
"$BIN" -c "$IT_TMP/nexus-shipper.conf" once
vm_flush
echo
echo "== series that arrived at VictoriaMetrics ($VM_URL), with value and timestamp"
promq --range "$VM_URL" '{instance="demo-nexus"}'
n=$(promq --range "$VM_URL" '{instance="demo-nexus"}' | wc -l)
echo
echo "== $n samples delivered"
[ "$n" -gt 0 ]
