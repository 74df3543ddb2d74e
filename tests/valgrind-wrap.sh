#!/bin/bash
# Runs $NS_REAL_BINARY (nexus-shipper; test_alloc_fail.sh sets it to its
# torture binary) under valgrind for the integration tests
# (`make check NS_VALGRIND=1`, see Makefile.am): any memory error or
# definite leak makes the process exit 99, and every report is kept in
# $NS_VALGRIND_LOGDIR/vg.<pid>.log (a forked child gets its own), which
# .ci/run requires to be empty. The tests scale their deadlines by
# NS_TIME_SCALE meanwhile (tests/integration/lib.sh).
exec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --log-file="${NS_VALGRIND_LOGDIR:-/tmp}/vg.%p.log" \
    "$NS_REAL_BINARY" "$@"
