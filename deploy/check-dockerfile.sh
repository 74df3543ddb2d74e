#!/bin/bash
# Static checks of deploy/Dockerfile, for CI without a Docker engine.
#
#   deploy/check-dockerfile.sh [--binary PATH] [--build] [--dockerfile PATH]
#
#  1. every COPY/ADD source (not --from=) exists in the build context (the
#     top of the source tree) and is not excluded by Dockerfile.dockerignore,
#     and every top-level file Makefile.am or configure.ac builds from is
#     copied into the build stage;
#  2. the build stage installs exactly BUILD_PKGS and the runtime stage
#     exactly RUNTIME_PKGS + IMAGE_PKGS of deploy/install-deps.sh;
#  3. every Debian package configure.ac asks for ("install the Debian
#     package X") is in BUILD_PKGS;
#  4. both stages are FROM debian:12-slim, the last stage runs as a non-root
#     USER, declares the spool VOLUME, and its HEALTHCHECK runs the binary
#     itself (`nexus-shipper healthcheck`), no curl/wget; its ENTRYPOINT is
#     the binary and it installs what the subcommands run (skopeo for
#     `skopeo`, docker-registry for cleanup's gc_command without docker exec);
#  5. with --binary: every shared library the binary links directly
#     (ELF NEEDED) comes from a package in RUNTIME_PKGS (or libc6);
#  6. with --build: copies exactly the COPY sources to a scratch directory
#     and runs the build stage's commands there (minus apt-get and with
#     DESTDIR under the scratch directory), so a file the build needs but no
#     COPY brings in fails here rather than in `docker build`.
# Exit 0 when everything holds; otherwise one line per problem and exit 1.
set -euo pipefail
DEPLOY=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$DEPLOY/.." && pwd)
BINARY= BUILD= DOCKERFILE=$DEPLOY/Dockerfile
while [ $# -gt 0 ]; do
    case $1 in
    --binary) BINARY=$2; shift 2 ;;
    --build) BUILD=1; shift ;;
    --dockerfile) DOCKERFILE=$2; shift 2 ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check-dockerfile: unknown argument $1" >&2; exit 2 ;;
    esac
done

# The package lists, exactly as install-deps.sh defines them.
lists=$(sed -n '/^[A-Z_]*PKGS="/,/"$/p' "$DEPLOY/install-deps.sh")
BUILD_PKGS=$(eval "$lists"; echo $BUILD_PKGS)
RUNTIME_PKGS=$(eval "$lists"; echo ${RUNTIME_PKGS:-})
IMAGE_PKGS=$(eval "$lists"; echo ${IMAGE_PKGS:-})
[ -n "$BUILD_PKGS" ] || { echo "check-dockerfile: no BUILD_PKGS in install-deps.sh" >&2; exit 1; }
[ -n "$RUNTIME_PKGS" ] || { echo "check-dockerfile: no RUNTIME_PKGS in install-deps.sh" >&2; exit 1; }

needed=
if [ -n "$BINARY" ]; then
    [ -x "$BINARY" ] || { echo "check-dockerfile: $BINARY is not an executable" >&2; exit 2; }
    for lib in $(readelf -d "$BINARY" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        case $lib in libasan.so* | libubsan.so* | liblsan.so* | libtsan.so*)
            continue ;; # a sanitizer build, not what the image ships
        esac
        # the path the loader really uses (not a multilib copy), as dpkg knows it
        path=$(ldd "$BINARY" | awk -v l="$lib" '$1 == l && $3 ~ /^\// {print $3; exit}')
        pkg=
        for p in "$path" "$(readlink -f "$path" 2>/dev/null)" "${path#/usr}" "/usr$path"; do
            [ -n "$p" ] || continue
            pkg=$(dpkg -S "$p" 2>/dev/null | grep -v '^diversion' | head -n 1 | cut -d: -f1 || true)
            [ -n "$pkg" ] && break
        done
        needed="$needed $lib=${pkg:-?}"
    done
fi

scratch=
if [ -n "$BUILD" ]; then
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/check-dockerfile.XXXXXX")
    trap 'rm -rf "$scratch"' EXIT
fi

python3 - "$TOP" "$DOCKERFILE" "$BUILD_PKGS" "$RUNTIME_PKGS" "$needed" "$scratch" "$IMAGE_PKGS" <<'PY'
import fnmatch, glob, json, os, re, shlex, shutil, subprocess, sys

top, dockerfile, build_pkgs, runtime_pkgs, needed, scratch, image_pkgs = sys.argv[1:8]
build_pkgs, runtime_pkgs = set(build_pkgs.split()), set(runtime_pkgs.split())
image_pkgs = set(image_pkgs.split())
problems = []
def bad(msg):
    problems.append(msg)

# ---- parse: join continuation lines, drop comments
lines, cur, start = [], "", 0
for no, raw in enumerate(open(dockerfile), 1):
    s = raw.rstrip("\n")
    if not cur and (not s.strip() or s.lstrip().startswith("#")):
        continue
    if cur and s.lstrip().startswith("#"):
        continue
    if not cur:
        start = no
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    cur += s
    lines.append((start, cur.strip()))
    cur = ""
if cur:
    lines.append((start, cur.strip()))

stages = []  # {"name", "from", "instr": [(line, KEYWORD, args)]}
for no, text in lines:
    kw, _, args = text.partition(" ")
    kw = kw.upper()
    if kw == "FROM":
        m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.I)
        stages.append({"from": m.group(1), "name": m.group(2) or str(len(stages)), "instr": []})
        continue
    if not stages:
        if kw != "ARG":
            bad("%s:%d: %s before the first FROM" % (dockerfile, no, kw))
        continue
    stages[-1]["instr"].append((no, kw, args.strip()))

if len(stages) < 2:
    bad("%s: expected a multi-stage build (build + runtime), found %d stage(s)" % (dockerfile, len(stages)))
for st in stages:
    if st["from"] != "debian:12-slim":
        bad("%s: stage %s is FROM %s, expected debian:12-slim" % (dockerfile, st["name"], st["from"]))

# ---- dockerignore patterns (simplified: ** matches any depth)
ignore = []
di = dockerfile + ".dockerignore"
if os.path.exists(di):
    for l in open(di):
        l = l.strip()
        if l and not l.startswith("#"):
            ignore.append(l)
def ignored(rel):
    for p in ignore:
        pat = p[3:] if p.startswith("**/") else p
        parts = rel.split("/")
        for i in range(len(parts)):
            if fnmatch.fnmatch("/".join(parts[i:] if p.startswith("**/") else parts[:i + 1]), pat):
                return True
    return False

def words(args):
    args = args.strip()
    if args.startswith("["):
        return json.loads(args)
    return shlex.split(args)

# ---- 1. COPY/ADD sources
copies = []  # (stage, srcs, dest)
for st in stages:
    for no, kw, args in st["instr"]:
        if kw not in ("COPY", "ADD"):
            continue
        w = words(args)
        flags = [x for x in w if x.startswith("--")]
        rest = [x for x in w if not x.startswith("--")]
        if any(f.startswith("--from=") for f in flags):
            continue
        if len(rest) < 2:
            bad("%s:%d: %s needs a source and a destination" % (dockerfile, no, kw))
            continue
        srcs, dest = rest[:-1], rest[-1]
        for src in srcs:
            if re.match(r"https?://", src):
                bad("%s:%d: %s of a URL: the build must not download" % (dockerfile, no, kw))
                continue
            rel = os.path.normpath(src.rstrip("/") or ".")
            if rel.startswith(".."):
                bad("%s:%d: COPY source %s is outside the build context" % (dockerfile, no, src))
                continue
            hits = glob.glob(os.path.join(top, rel))
            if not hits:
                bad("%s:%d: COPY source %s does not exist in %s" % (dockerfile, no, src, top))
            elif rel != "." and ignored(rel):
                bad("%s:%d: COPY source %s is excluded by %s" % (dockerfile, no, src, os.path.basename(di)))
        copies.append((st["name"], srcs, dest))

# top-level files the build reads (Makefile.am outside EXTRA_DIST/LINT_FILES, configure.ac)
def covered(rel):
    for st, srcs, dest in copies:
        if st != stages[0]["name"]:
            continue
        for src in srcs:
            s = os.path.normpath(src.rstrip("/") or ".")
            if s == "." or rel == s or rel.startswith(s + "/") or fnmatch.fnmatch(rel, s):
                return True
    return False
if stages:
    am = re.sub(r"\\\n", " ", open(os.path.join(top, "Makefile.am")).read())
    tokens = set()
    for line in am.split("\n"):
        m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\+?=", line)
        if m and m.group(1) in ("EXTRA_DIST", "LINT_FILES", "CLEANFILES"):
            continue
        tokens.update(re.findall(r"[\w.+-]+", line.replace("$(top_srcdir)/", " ").replace("$(srcdir)/", " ")))
    tokens.update(["configure.ac", "Makefile.am"])
    for t in sorted(tokens):
        path = os.path.join(top, t)
        if "/" not in t and os.path.isfile(path) and not t.startswith(".") and not covered(t):
            bad("%s: the build stage does not COPY %s, which Makefile.am builds from" % (dockerfile, t))

# ---- 2. package lists per stage
def apt_packages(st):
    pk = set()
    for no, kw, args in st["instr"]:
        if kw != "RUN":
            continue
        for cmd in re.split(r"&&|;|\|\|", args):
            w = cmd.split()
            if "apt-get" in w and "install" in w:
                for x in w[w.index("install") + 1:]:
                    if not x.startswith("-"):
                        pk.add(x)
    return pk
if len(stages) >= 2:
    b, r = apt_packages(stages[0]), apt_packages(stages[-1])
    for name, got, want, var in (("build", b, build_pkgs, "BUILD_PKGS"),
                                 ("runtime", r, runtime_pkgs | image_pkgs, "RUNTIME_PKGS or IMAGE_PKGS")):
        for p in sorted(want - got):
            bad("%s: %s stage does not install %s (in %s of deploy/install-deps.sh)" % (dockerfile, name, p, var))
        for p in sorted(got - want):
            bad("%s: %s stage installs %s, which is not in %s of deploy/install-deps.sh" % (dockerfile, name, p, var))

# ---- 3. configure.ac's packages
ac = open(os.path.join(top, "configure.ac")).read()
wanted = set(re.findall(r"NS_DEP\(\[\w+\],\s*\[[^]]*\],\s*\[([\w.+-]+)\]\)", ac))
wanted |= set(re.findall(r"install the Debian package ([a-z0-9][\w.+-]*[a-z0-9])", ac))
for p in sorted(wanted - build_pkgs):
    bad("configure.ac needs the Debian package %s; it is not in BUILD_PKGS of deploy/install-deps.sh" % p)

# ---- 4. the runtime stage
if stages:
    last = stages[-1]
    kws = {kw: args for no, kw, args in last["instr"]}
    user = kws.get("USER")
    if not user:
        bad("%s: the runtime stage has no USER (runs as root)" % dockerfile)
    elif user.split(":")[0] in ("root", "0"):
        bad("%s: the runtime stage runs as root (USER %s)" % (dockerfile, user))
    vol = kws.get("VOLUME", "")
    if "/var/lib/nexus-shipper" not in vol:
        bad("%s: no VOLUME for the spool (/var/lib/nexus-shipper)" % dockerfile)
    hc = kws.get("HEALTHCHECK", "")
    if "nexus-shipper" not in hc or "healthcheck" not in hc:
        bad("%s: HEALTHCHECK must run `nexus-shipper healthcheck`" % dockerfile)
    if re.search(r"\b(curl|wget)\b", hc):
        bad("%s: HEALTHCHECK uses curl/wget; the binary checks itself" % dockerfile)
    ep = kws.get("ENTRYPOINT", "")
    try:
        ep = words(ep)
    except ValueError:
        ep = []
    if ep != ["/usr/bin/nexus-shipper"]:
        bad("%s: ENTRYPOINT must be [\"/usr/bin/nexus-shipper\"] so that every subcommand runs "
            "as `docker run IMAGE SUBCOMMAND`" % dockerfile)
    # what the subcommands run besides the binary itself
    have = apt_packages(last)
    for sub, why, pkg in (("skopeo", "the wrapper runs the skopeo binary", "skopeo"),
                          ("cleanup", "gc_command = docker-registry garbage-collect {config}, "
                           "no docker exec in a container", "docker-registry")):
        if pkg not in have:
            bad("%s: the runtime stage does not install %s, which `nexus-shipper %s` needs (%s)"
                % (dockerfile, pkg, sub, why))

# ---- 5. shared libraries of the binary
for item in needed.split():
    lib, pkg = item.split("=", 1)
    if pkg == "?":
        bad("%s: no Debian package provides it here (dpkg -S)" % lib)
    elif pkg != "libc6" and pkg not in runtime_pkgs:
        bad("the binary links %s from %s, which is not in RUNTIME_PKGS" % (lib, pkg))

# ---- 6. the build stage's commands on exactly the COPY sources
if scratch and stages and not problems:
    ctx = os.path.join(scratch, "src")
    os.makedirs(ctx)
    workdir = ctx
    for no, kw, args in stages[0]["instr"]:
        if kw == "WORKDIR":
            continue  # everything happens in ctx
        if kw == "COPY":
            w = [x for x in words(args) if not x.startswith("--")]
            srcs, dest = w[:-1], w[-1]
            for src in srcs:
                for hit in glob.glob(os.path.join(top, os.path.normpath(src))):
                    target = os.path.join(ctx, dest)
                    if os.path.isdir(hit):
                        shutil.copytree(hit, os.path.join(ctx, dest.rstrip("/") or "."),
                                        dirs_exist_ok=True,
                                        ignore=lambda d, names: [n for n in names if ignored(
                                            os.path.relpath(os.path.join(d, n), top))])
                    else:
                        os.makedirs(target if dest.endswith("/") else os.path.dirname(target) or ctx,
                                    exist_ok=True)
                        shutil.copy2(hit, target if not dest.endswith("/") else os.path.join(target, os.path.basename(hit)))
        elif kw == "RUN":
            if "apt-get" in args:
                continue
            cmd = re.sub(r"(?<![\w.-])/out(?=[/\s]|$)", scratch + "/out", args)
            print("check-dockerfile: RUN %s" % args[:100], file=sys.stderr)
            rc = subprocess.run(["bash", "-c", "set -e; " + cmd], cwd=workdir,
                                stdout=open(os.path.join(scratch, "build.log"), "a"),
                                stderr=subprocess.STDOUT).returncode
            if rc != 0:
                log = open(os.path.join(scratch, "build.log")).read()[-3000:]
                bad("%s:%d: the build stage's RUN failed (exit %d) on the COPY sources only:\n%s"
                    % (dockerfile, no, rc, log))
                break

for p in problems:
    print("check-dockerfile: " + p)
if problems:
    sys.exit(1)
print("check-dockerfile: OK (%d stages, %d COPY, build %d packages, runtime %d packages%s%s)" % (
    len(stages), len(copies), len(build_pkgs), len(runtime_pkgs),
    ", %d linked libraries" % len(needed.split()) if needed else "",
    ", build stage ran" if scratch else ""))
PY
