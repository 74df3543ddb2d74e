#!/bin/bash
# A short soak (tests/bench/soak.sh, which `make soak` runs for 10 minutes):
# `run` with a 1 s interval for 80 s while VictoriaMetrics goes down and up
# every 10 s and the Nexus fake flips between healthy and broken answers
# every 5 s. No sample lost (counted exactly), RSS within 5 % of the figure
# after 20 s (not judged under ASan), no file descriptor growth.
set -euo pipefail
export SOAK_SECONDS=${SOAK_SHORT_SECONDS:-80} SOAK_WARMUP=20 SOAK_FLAP=10 SOAK_NEXUS_FLAP=5
exec bash "$top_srcdir/tests/bench/soak.sh"
