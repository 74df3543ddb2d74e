#!/bin/sh
# fake_skopeo.sh: a stand-in for the skopeo binary ([skopeo] binary = this
# file) that replays transcripts of other skopeo versions, or hangs.
#
# Environment (all optional):
#   FAKE_SKOPEO_VERSION     printed by --version (default 1.18.0)
#   FAKE_SKOPEO_RAW         file printed by `inspect --raw` (else: manifest unknown, exit 1)
#   FAKE_SKOPEO_RAW_DIR     `inspect --raw REF@sha256:HEX` prints DIR/HEX.json, other refs
#                           DIR/top.json (an index and its children)
#   FAKE_SKOPEO_TRANSCRIPT  file replayed byte-exact on stdout by `copy` (with its \r and
#                           escapes), in 7-byte pieces 5 ms apart: partial lines on the pipe
#   FAKE_SKOPEO_STDERR      file copied to stderr after the transcript
#   FAKE_SKOPEO_EXIT        exit status after the transcript (default 0)
#   FAKE_SKOPEO_HANG        seconds to sleep (in a child process) before exiting
#   FAKE_SKOPEO_IGNORE_TERM 1: ignore SIGTERM (the sleep inherits that): only SIGKILL ends it
#   FAKE_SKOPEO_PIDFILE     gets "<shell pid> <sleep pid>" when hanging
#   FAKE_SKOPEO_ARGV_LOG    gets one line per run: the arguments, NUL-separated cmdline shown
#                           with spaces
# shellcheck disable=SC2086
if [ -n "${FAKE_SKOPEO_ARGV_LOG:-}" ]; then
	tr '\0' ' ' </proc/$$/cmdline >>"$FAKE_SKOPEO_ARGV_LOG"
	echo >>"$FAKE_SKOPEO_ARGV_LOG"
fi
case "${1:-}" in
--version)
	echo "skopeo version ${FAKE_SKOPEO_VERSION:-1.18.0}"
	exit 0
	;;
inspect)
	for a in "$@"; do
		if [ "$a" = --raw ]; then
			ref=
			for r in "$@"; do ref=$r; done # the last argument
			if [ -n "${FAKE_SKOPEO_RAW_DIR:-}" ]; then
				case "$ref" in
				*@sha256:*) cat "$FAKE_SKOPEO_RAW_DIR/${ref##*@sha256:}.json" ;;
				*) cat "$FAKE_SKOPEO_RAW_DIR/top.json" ;;
				esac
				exit $?
			fi
			if [ -n "${FAKE_SKOPEO_RAW:-}" ]; then
				cat "$FAKE_SKOPEO_RAW"
				exit 0
			fi
			echo 'time="2024-01-01T00:00:00Z" level=fatal msg="Error parsing image name \"x\": reading manifest v1 in example/x: manifest unknown: manifest unknown"' >&2
			exit 1
		fi
	done
	;;
esac
if [ "${FAKE_SKOPEO_IGNORE_TERM:-}" = 1 ]; then
	trap '' TERM
fi
if [ -n "${FAKE_SKOPEO_TRANSCRIPT:-}" ]; then
	python3 -c '
import sys, time
data = open(sys.argv[1], "rb").read()
out = sys.stdout.buffer
for i in range(0, len(data), 7):
    out.write(data[i:i + 7])
    out.flush()
    time.sleep(0.005)
' "$FAKE_SKOPEO_TRANSCRIPT"
fi
if [ -n "${FAKE_SKOPEO_HANG:-}" ]; then
	sleep "$FAKE_SKOPEO_HANG" &
	[ -n "${FAKE_SKOPEO_PIDFILE:-}" ] && echo "$$ $!" >"$FAKE_SKOPEO_PIDFILE"
	while kill -0 $! 2>/dev/null; do wait $! ; done
fi
[ -n "${FAKE_SKOPEO_STDERR:-}" ] && cat "$FAKE_SKOPEO_STDERR" >&2
exit "${FAKE_SKOPEO_EXIT:-0}"
