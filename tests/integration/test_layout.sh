#!/bin/bash
# The source tree keeps the layout src/README.md describes (issue 21):
# include directions between subsystem folders, headers by bare name, no
# source file over ~800 lines. The checker must also catch a violation.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init layout
CHECK=$top_srcdir/tests/layout/check_layout.py
"$IT_PY" "$CHECK" "$top_srcdir/src" > "$IT_TMP/layout.out" || { cat "$IT_TMP/layout.out" >&2; fail "layout rules broken"; }
# a planted violation is reported: a copy of the tree where core includes delivery
cp -r "$top_srcdir/src" "$IT_TMP/src"
printf '#include "sender.h"\n' >> "$IT_TMP/src/core/util.c"
rc=0; "$IT_PY" "$CHECK" "$IT_TMP/src" > "$IT_TMP/planted.out" || rc=$?
assert_eq 1 "$rc" "the checker fails on a planted violation"
assert_contains "$(cat "$IT_TMP/planted.out")" "core/util.c: includes delivery/sender.h" "and names it"
it_log "$(tail -1 "$IT_TMP/layout.out")"
