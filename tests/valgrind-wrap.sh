#!/bin/bash
# Runs nexus-shipper under valgrind for the integration tests
# (`make check NS_VALGRIND=1`, see Makefile.am): any memory error or
# definite leak makes the process exit 99, and every report is kept in
# $NS_VALGRIND_LOGDIR/vg.<pid>.log, which .ci/run requires to be empty.
exec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --log-file="${NS_VALGRIND_LOGDIR:-/tmp}/vg.%p.log" \
    "$NS_REAL_BINARY" "$@"
