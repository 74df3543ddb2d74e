#!/bin/bash
# The whole test suite: build in _build/ and run `make check` (Check unit
# tests, then integration tests against real Prometheus, VictoriaMetrics
# and Pushgateway started on random loopback ports). Installs missing
# Debian packages first when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh   # installs what is missing (with sudo when not root)
mkdir -p m4
autoreconf -fi
mkdir -p _build
cd _build
[ -f Makefile ] || ../configure
make -j"$(nproc)"
if ! make -j"$(nproc)" check; then
    for f in $(find tests -name '*.log' ! -name test-suite.log); do
        grep -q '^:test-result: FAIL' "${f%.log}.trs" 2>/dev/null && { echo "===== $f"; tail -80 "$f"; }
    done
    exit 1
fi
