#!/bin/bash
# Builds the Debian package of nexus-shipper from this source tree.
#
#   deploy/build-deb.sh OUTDIR
#
# Leaves OUTDIR/nexus-shipper_<version>_<arch>.deb (and the
# nexus-shipper-dbgsym_<version>_<arch>.deb that debhelper makes) and prints
# their paths, one a line, on stdout. <version> is AC_INIT's in configure.ac,
# the one place the version lives: this script writes debian/changelog with
# it, the binary gets it from configure (`nexus-shipper version`).
#
# The top level of the repository is fixed, so the packaging lives in
# deploy/debian/: the source tree is copied to a scratch directory, with
# deploy/debian as its debian/, and dpkg-buildpackage (debhelper 13) builds
# there. Missing build dependencies (BUILD_PKGS of deploy/install-deps.sh
# plus dpkg-dev, debhelper) are installed with apt-get, as root or with
# sudo, like install-deps.sh does. Set KEEP_BUILD=1 to keep the scratch tree.
set -euo pipefail
DEPLOY=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$DEPLOY/.." && pwd)
OUTDIR=${1:?usage: deploy/build-deb.sh OUTDIR}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
say() { echo "build-deb: $*" >&2; }

VERSION=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' "$TOP/configure.ac")
[[ $VERSION =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || { say "no usable version in configure.ac's AC_INIT ('$VERSION')"; exit 1; }

# ---- build dependencies: install-deps.sh's BUILD_PKGS + the Debian tools
lists=$(sed -n '/^[A-Z_]*PKGS="/,/"$/p' "$DEPLOY/install-deps.sh")
# shellcheck disable=SC2086 # word splitting joins the list onto one line
BUILD_PKGS=$(eval "$lists"; echo $BUILD_PKGS)
# debian/control must ask for the same libraries and tools (gcc, make come
# with build-essential; check only serves the unit tests, not run here).
bdeps=$(sed -n '/^Build-Depends:/,/^[A-Z]/p' "$DEPLOY/debian/control" | sed 's/^Build-Depends://; s/([^)]*)//g' | tr ',' '\n' | tr -d ' \t')
for p in $BUILD_PKGS; do
    case $p in gcc | make | check) continue ;; esac
    grep -qx "$p" <<<"$bdeps" || { say "deploy/debian/control: Build-Depends lacks $p (BUILD_PKGS of install-deps.sh)"; exit 1; }
done
missing=$(for p in $BUILD_PKGS dpkg-dev debhelper fakeroot; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
if [ -n "$missing" ]; then
    missing=$(tr '\n' ' ' <<<"$missing")
    SUDO=
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { say "run as root (or install sudo): apt-get install -y $missing"; exit 1; }
        SUDO=sudo
    fi
    say "installing $missing"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q >&2
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -q --no-install-recommends $missing >&2
fi

# ---- scratch copy of the source tree, debian/ from deploy/debian
scratch=$(mktemp -d "${TMPDIR:-/tmp}/build-deb.XXXXXX")
if [ -n "${KEEP_BUILD:-}" ]; then say "scratch tree: $scratch"; else trap 'rm -rf "$scratch"' EXIT; fi
src=$scratch/nexus-shipper-$VERSION
mkdir -p "$src"
if git -C "$TOP" rev-parse --show-toplevel >/dev/null 2>&1 &&
    [ "$(git -C "$TOP" rev-parse --show-toplevel)" = "$TOP" ]; then
    # tracked and untracked-but-not-ignored files: what a commit would hold
    (cd "$TOP" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -C "$src" -xf -
else
    # not a git checkout (a release tarball): everything but build products
    tar -C "$TOP" --exclude=./.git --exclude='./_build*' --exclude=./autom4te.cache \
        --exclude='*.o' --exclude='*.lo' --exclude=./config.status --exclude=./Makefile -cf - . |
        tar -C "$src" -xf -
fi
rm -rf "$src/debian"
cp -r "$DEPLOY/debian" "$src/debian"
mkdir -p "$src/m4"
date=$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git -C "$TOP" log -1 --format=%ct 2>/dev/null || date +%s)}")
maint=$(sed -n 's/^Maintainer: //p' "$src/debian/control")
cat >"$src/debian/changelog" <<EOF
nexus-shipper ($VERSION) unstable; urgency=medium

  * Built from the source tree by deploy/build-deb.sh (version from
    configure.ac; see ChangeLog for the changes).

 -- $maint  $date
EOF

# ---- build (binary packages only, unsigned)
say "building nexus-shipper $VERSION in $src"
(cd "$src" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=$(nproc)}" \
    dpkg-buildpackage -b -us -uc >"$scratch/build.log" 2>&1) || {
    tail -60 "$scratch/build.log" >&2; say "dpkg-buildpackage failed (log above)"; exit 1; }
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
n=0
for deb in "$scratch"/nexus-shipper_"${VERSION}"_"$arch".deb "$scratch"/nexus-shipper-dbgsym_"${VERSION}"_"$arch".*deb; do
    [ -e "$deb" ] || continue
    cp "$deb" "$OUTDIR/"
    echo "$OUTDIR/$(basename "$deb")"
    n=$((n + 1))
done
[ -e "$OUTDIR/nexus-shipper_${VERSION}_$arch.deb" ] || { say "no nexus-shipper_${VERSION}_$arch.deb was built"; exit 1; }
say "$n package(s) in $OUTDIR"
