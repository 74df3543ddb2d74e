#!/bin/bash
# Builds the libFuzzer targets with clang (ASan + UBSan + fuzzer
# instrumentation over the whole core) and replays each seed corpus, then
# fuzzes each target for FUZZ_SECONDS (default 15; `make fuzz-smoke`).
# Every tests/fuzz/fuzz_NAME.c is a target (corpus in tests/fuzz/corpus/NAME/);
# FUZZ_TARGETS="a b" runs only those. A long run: FUZZ_SECONDS=3600 bash tests/fuzz/run.sh
# Targets, their input formats, the seed generator and the long runs done:
# tests/fuzz/README.md.
# Crashes are written to $OUT/<target>/crash-*; keep each as a regression
# input in tests/fuzz/corpus/<target>/ once fixed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
OUT=${FUZZ_OUT:-${TMPDIR:-/tmp}/nexus-shipper-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-15}
CC=${FUZZ_CC:-clang}
command -v "$CC" >/dev/null || { echo "fuzz: $CC not found (apt-get install clang libclang-rt-14-dev)"; exit 1; }
mkdir -p "$OUT/proto"
protoc-c --c_out="$OUT/proto" -I"$SRC/proto" "$SRC/proto/types.proto" "$SRC/proto/remote.proto"
printf '#define PACKAGE_NAME "nexus-shipper"\n#define PACKAGE_VERSION "fuzz"\n' > "$OUT/nsconfig.h"
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
INC="-I$OUT -I$OUT/proto"
# every source folder is on the include path (headers by bare name, src/README.md),
# ahead of the libraries' folders: json-c's include folder has a json_util.h too
for d in ${FUZZ_SRC_DIRS:-src src/core src/pipeline src/collectors src/wire src/delivery src/clients src/cleanup src/skopeo src/cli}; do
    INC="$INC -I$SRC/$d"
done
INC="$INC $(pkg-config --cflags libcurl libprotobuf-c json-c libpq openssl)"
LIBS="$(pkg-config --libs libcurl libprotobuf-c json-c libpq openssl libmicrohttpd 2>/dev/null || pkg-config --libs libcurl libprotobuf-c json-c libpq openssl) -lsnappy -lm -lpthread"
mkdir -p "$OUT/obj"
objs=()
# FUZZ_SOURCES (from `make fuzz-smoke`): the core library's sources, relative to the top
if [ -n "${FUZZ_SOURCES:-}" ]; then
    srcs=()
    for f in $FUZZ_SOURCES; do case "$f" in *.c) srcs+=("$SRC/$f");; esac; done
else
    srcs=()
    for f in "$SRC"/src/*.c "$SRC"/src/*/*.c; do [ -e "$f" ] && srcs+=("$f"); done
fi
# tests-only sources (tests/lib: the protobuf-c reference encoder)
INC="$INC -I$SRC/tests/lib"
srcs+=("$SRC"/tests/lib/*.c)
for f in "${srcs[@]}" "$OUT"/proto/*.pb-c.c; do
    case "$f" in */main.c) continue;; esac
    o="$OUT/obj/$(basename "${f%.c}").o"
    $CC $CFLAGS $INC -c "$f" -o "$o"
    objs+=("$o")
done
status=0
targets=()
for f in "$HERE"/fuzz_*.c; do t=$(basename "${f%.c}"); targets+=("${t#fuzz_}"); done
for t in ${FUZZ_TARGETS:-${targets[*]}}; do
    bin="$OUT/fuzz_$t"
    $CC $CFLAGS -fsanitize=fuzzer $INC "$HERE/fuzz_$t.c" "${objs[@]}" $LIBS -o "$bin"
    mkdir -p "$OUT/$t" "$OUT/$t-new"
    echo "== fuzz_$t: corpus replay + ${SECONDS_EACH}s"
    if ! (cd "$OUT/$t" && "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=0 "$OUT/$t-new" "$HERE/corpus/$t" 2>&1 | tail -5); then
        status=1
    fi
    if ls "$OUT/$t"/crash-* "$OUT/$t"/leak-* "$OUT/$t"/timeout-* >/dev/null 2>&1; then
        echo "fuzz_$t: FOUND A CRASH: $(ls "$OUT/$t"/crash-* "$OUT/$t"/leak-* "$OUT/$t"/timeout-* 2>/dev/null)"
        status=1
    fi
done
exit $status
