#!/bin/bash
# The Debian package, end to end, in a bare Debian 12 root (CI stage; needs
# root, debootstrap, lintian and the apt mirror; not part of `make check`).
#
#   tests/deb/test_deb.sh [DEB]
#
#  1. deploy/build-deb.sh builds nexus-shipper_<version>_<arch>.deb (unless
#     DEB is given); its version is configure.ac's AC_INIT; lintian reports
#     no error; skopeo is a Recommends.
#  2. debootstrap --variant=minbase bookworm from the mirror of
#     /etc/apt/sources.list.d/debian.sources (MIRROR overrides), then in a
#     chroot `apt-get install ./nexus-shipper_*.deb` pulls in the runtime
#     dependencies and skopeo (Recommends); the system user, /var/lib/nexus-shipper (0700), the
#     conffiles, /etc/default read by the units, the units (not enabled), man
#     pages, dashboards and rules are there.
#  3. As the nexus-shipper user: `check-config` of the installed config
#     passes, `version` says the configure.ac version, `once --dry-run`
#     collects from the Nexus fake (tests/fakes/nexus_fake.py, on the host's
#     loopback, which the chroot shares).
#  4. Upgrade to a newer version (the same package repacked as
#     <version>+upgrade1) keeps a modified conffile and the spool; remove
#     keeps the spool; purge removes it and the configuration.
# Everything is made anew in a temporary directory (nothing cached across
# runs) and removed at the end (KEEP=1 keeps it). Prints the time it took.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
t0=$(date +%s)
say() { echo "[test_deb $(( $(date +%s) - t0 ))s] $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, chroot)"
for c in debootstrap lintian dpkg-deb python3; do
    command -v "$c" >/dev/null || fail "$c is not installed (deploy/install-deps.sh installs it)"
done

work=$(mktemp -d /tmp/test-deb.XXXXXX)
root=$work/root
fake_pid=
cleanup() {
    local rc=$?
    [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
    mountpoint -q "$root/proc" && umount "$root/proc"
    if [ $rc -ne 0 ] || [ -n "${KEEP:-}" ]; then
        say "kept $work"
        [ -s "$work/fake.log" ] && tail -20 "$work/fake.log" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# ---- 1. build, version, lintian
VERSION=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' "$TOP/configure.ac")
if [ $# -ge 1 ]; then
    deb=$1
else
    say "building the package (deploy/build-deb.sh)"
    bash "$TOP/deploy/build-deb.sh" "$work/out" >"$work/built" || fail "deploy/build-deb.sh"
    deb=$(grep '/nexus-shipper_[^/]*\.deb$' "$work/built")
fi
arch=$(dpkg --print-architecture)
[ "$(basename "$deb")" = "nexus-shipper_${VERSION}_$arch.deb" ] ||
    fail "package is $(basename "$deb"), expected nexus-shipper_${VERSION}_$arch.deb"
[ "$(dpkg-deb -f "$deb" Version)" = "$VERSION" ] || fail "package version is not configure.ac's $VERSION"
[ "$(dpkg-deb -f "$deb" Recommends)" = "skopeo" ] || fail "Recommends is '$(dpkg-deb -f "$deb" Recommends)', not skopeo"
say "lintian"
lintian --fail-on error "$deb" >"$work/lintian.out" 2>&1 || { cat "$work/lintian.out" >&2; fail "lintian reports errors"; }
grep -E '^[EW]:' "$work/lintian.out" >&2 || true

# ---- 2. a bare Debian 12 root
MIRROR=${MIRROR:-$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
say "debootstrap --variant=minbase bookworm from $MIRROR"
debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    # the host's suites (updates, security) too: the package was built against them
    cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
    rm -f "$root/etc/apt/sources.list"
fi
mount -t proc proc "$root/proc"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
as_user() { chroot --userspec=nexus-shipper:nexus-shipper "$root" env -i PATH=/usr/bin:/bin HOME=/var/lib/nexus-shipper "$@"; }
apt_in_root() { in_root apt-get -q -y -o Dpkg::Use-Pty=0 "$@" >>"$work/apt.log" 2>&1 || {
    tail -30 "$work/apt.log" >&2; fail "apt-get $*"; }; }

say "apt-get install ./$(basename "$deb") in the root"
cp "$deb" "$root/tmp/"
apt_in_root update
in_root dpkg-query -W libcurl4 >/dev/null 2>&1 && fail "the bare root already has libcurl4: it would not show the dependencies"
# as an operator would: with the Recommends (skopeo)
apt_in_root install "./tmp/$(basename "$deb")"
for p in nexus-shipper libcurl4 libpq5 libprotobuf-c1 libsnappy1v5 libjson-c5 libmicrohttpd12 libssl3 adduser skopeo; do
    in_root dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "ok installed" || fail "$p is not installed"
done

# ---- what the package installed
pw=$(in_root getent passwd nexus-shipper) || fail "no nexus-shipper user"
IFS=: read -r _ _ uid _ _ home shell <<<"$pw"
[ "$uid" -lt 1000 ] || fail "nexus-shipper is not a system user (uid $uid)"
[ "$home" = /var/lib/nexus-shipper ] || fail "nexus-shipper's home is $home"
[ "$shell" = /usr/sbin/nologin ] || fail "nexus-shipper's shell is $shell"
in_root getent group nexus-shipper >/dev/null || fail "no nexus-shipper group"
[ "$(in_root stat -c '%a %U:%G' /var/lib/nexus-shipper)" = "700 nexus-shipper:nexus-shipper" ] ||
    fail "/var/lib/nexus-shipper is $(in_root stat -c '%a %U:%G' /var/lib/nexus-shipper), not 700 nexus-shipper"
conffiles=$(in_root dpkg-query -W -f='${Conffiles}\n' nexus-shipper)
for f in /etc/nexus-shipper/nexus-shipper.conf /etc/default/nexus-shipper /etc/logrotate.d/nexus-shipper; do
    grep -q "^ $f " <<<"$conffiles" || fail "$f is not a conffile"
done
for u in nexus-shipper.service nexus-shipper-cleanup.service; do
    grep -qx 'EnvironmentFile=-/etc/default/nexus-shipper' "$root/lib/systemd/system/$u" ||
        fail "$u does not read /etc/default/nexus-shipper"
done
[ -f "$root/lib/systemd/system/nexus-shipper-cleanup.timer" ] || fail "no cleanup timer"
if find "$root/etc/systemd/system" -name 'nexus-shipper*' 2>/dev/null | grep -q .; then
    fail "postinst enabled a unit: $(find "$root/etc/systemd/system" -name 'nexus-shipper*')"
fi
for f in usr/share/man/man1/nexus-shipper.1.gz usr/share/man/man5/nexus-shipper.conf.5.gz \
    usr/share/nexus-shipper/grafana/nexus-overview.json usr/share/nexus-shipper/grafana/shipper-health.json \
    usr/share/nexus-shipper/prometheus/alerts.yml usr/share/doc/nexus-shipper/copyright; do
    [ -f "$root/$f" ] || fail "/$f is not installed"
done

# ---- 3. the program, as the system user
say "check-config, version, once --dry-run as the nexus-shipper user"
as_user nexus-shipper check-config >"$work/check.out" 2>&1 || { cat "$work/check.out" >&2; fail "check-config of the installed config"; }
[ "$(as_user nexus-shipper version | cut -d' ' -f1-2)" = "nexus-shipper $VERSION" ] ||
    fail "nexus-shipper version says '$(as_user nexus-shipper version)', configure.ac says $VERSION"
python3 "$TOP/tests/fakes/nexus_fake.py" --scenario "$TOP/tests/fakes/scenarios/healthy.json" \
    --port 0 --port-file "$work/fake.port" >"$work/fake.log" 2>&1 &
fake_pid=$!
for _ in $(seq 100); do [ -s "$work/fake.port" ] && break; sleep 0.1; done
port=$(cat "$work/fake.port") || fail "the Nexus fake did not start"
# the secret as an operator keeps it: readable by the user only
printf 'metrics-secret\n' >"$root/etc/nexus-shipper/nexus-password"
in_root chown nexus-shipper:nexus-shipper /etc/nexus-shipper/nexus-password
chmod 0400 "$root/etc/nexus-shipper/nexus-password"
as_user NEXUS_SHIPPER_NEXUS_URL="http://127.0.0.1:$port" NEXUS_SHIPPER_NEXUS_USERNAME=metrics \
    NEXUS_SHIPPER_NEXUS_PASSWORD_FILE=/etc/nexus-shipper/nexus-password \
    nexus-shipper once --dry-run >"$work/once.out" 2>"$work/once.err" || {
    cat "$work/once.err" >&2; fail "once --dry-run as the nexus-shipper user"; }
grep -q '^nexus_shipper_collector_up{collector="nexus_status",[^}]*} 1$' "$work/once.out" || {
    cat "$work/once.err" >&2; fail "once --dry-run did not collect nexus_status from the fake"; }
grep -q '^nexus_' "$work/once.out" || fail "once --dry-run printed no nexus_ series"
rm -f "$root/etc/nexus-shipper/nexus-password"

# ---- 4. upgrade, remove, purge
say "upgrade keeps a modified conffile and the spool"
echo '# local edit by the operator' >>"$root/etc/nexus-shipper/nexus-shipper.conf"
as_user mkdir -p /var/lib/nexus-shipper/spool
as_user touch /var/lib/nexus-shipper/spool/marker
up=$work/up
dpkg-deb -R "$deb" "$up"
sed -i "s/^Version: .*/Version: $VERSION+upgrade1/" "$up/DEBIAN/control"
dpkg-deb --root-owner-group -b "$up" "$root/tmp/nexus-shipper_${VERSION}+upgrade1_$arch.deb" >/dev/null
apt_in_root install --no-install-recommends "./tmp/nexus-shipper_${VERSION}+upgrade1_$arch.deb"
[ "$(in_root dpkg-query -W -f='${Version}' nexus-shipper)" = "$VERSION+upgrade1" ] || fail "upgrade did not install"
grep -q '^# local edit by the operator$' "$root/etc/nexus-shipper/nexus-shipper.conf" ||
    fail "upgrade replaced the modified /etc/nexus-shipper/nexus-shipper.conf"
[ -e "$root/var/lib/nexus-shipper/spool/marker" ] || fail "upgrade lost the spool"
[ "$(in_root stat -c '%a' /var/lib/nexus-shipper)" = 700 ] || fail "upgrade changed the mode of /var/lib/nexus-shipper"

say "remove keeps the spool"
apt_in_root remove nexus-shipper
[ ! -e "$root/usr/bin/nexus-shipper" ] || fail "remove left the binary"
[ -e "$root/var/lib/nexus-shipper/spool/marker" ] || fail "remove deleted the spool"
[ -e "$root/etc/nexus-shipper/nexus-shipper.conf" ] || fail "remove deleted the conffile"

say "purge removes the spool and the configuration"
apt_in_root purge nexus-shipper
[ ! -e "$root/var/lib/nexus-shipper" ] || fail "purge left /var/lib/nexus-shipper"
[ ! -e "$root/etc/nexus-shipper/nexus-shipper.conf" ] || fail "purge left the configuration"
[ ! -e "$root/etc/default/nexus-shipper" ] || fail "purge left /etc/default/nexus-shipper"
if in_root dpkg-query -W -f='${Status}\n' nexus-shipper 2>/dev/null | grep -Eq 'ok installed|config-files'; then
    fail "nexus-shipper is still known to dpkg after purge"
fi
say "PASS in $(( $(date +%s) - t0 )) s"
