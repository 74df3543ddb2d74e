#!/bin/bash
# Installs every Debian 12 package nexus-shipper needs to build, run and
# test. The one list of packages: .ci/run, deploy/demo.sh and tests/run.sh
# use it. Needs root (or sudo). Usage: deploy/install-deps.sh [--runtime-only]
set -euo pipefail

BUILD_PKGS="gcc make autoconf automake libtool pkg-config
  libcurl4-openssl-dev libprotobuf-c-dev protobuf-c-compiler libsnappy-dev
  libpq-dev libjson-c-dev libssl-dev libmicrohttpd-dev check"
TEST_PKGS="prometheus victoria-metrics prometheus-pushgateway skopeo docker-registry postgresql
  python3 python3-snappy python3-protobuf python3-cryptography curl ca-certificates procps
  valgrind cppcheck clang-format systemd chromium
  dpkg-dev debhelper fakeroot lintian debootstrap time"

# libFuzzer targets (make fuzz-smoke)
FUZZ_PKGS="clang libclang-rt-14-dev"

pkgs="$BUILD_PKGS $TEST_PKGS $FUZZ_PKGS"
# What the binary needs at run time, skopeo for `nexus-shipper skopeo` (the
# container's runtime stage installs exactly these; deploy/check-dockerfile.sh
# compares).
RUNTIME_PKGS="libcurl4 libssl3 libprotobuf-c1 libsnappy1v5 libpq5 libjson-c5 libmicrohttpd12
  ca-certificates skopeo"
# What only the container image adds to RUNTIME_PKGS: the registry's garbage
# collector for `[cleanup] gc_command = docker-registry garbage-collect
# {config}` in a container, where `docker exec` is not available.
IMAGE_PKGS="docker-registry"
[ "${1:-}" = "--runtime-only" ] && pkgs="$RUNTIME_PKGS"

missing=$(for p in $pkgs; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root (or install sudo): apt-get install -y" $missing; exit 1; }
    SUDO=sudo
fi
echo "install-deps: installing" $missing
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
# The prometheus packages start system services where systemd runs; the
# tests start their own instances on random ports and need none of them.
