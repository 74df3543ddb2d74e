#!/bin/bash
# Hostile JSON answers (issue 18): a Nexus answering /v1/repositories with
# (and /v1/repositorySettings) with a JSON bomb ([[],[],...] or
# [{},{},...]: json-c turns 3 bytes into
# hundreds). `once` stays below 150 MiB peak RSS for every answer and
# reports the collector failed with a message saying why:
#  - 16 MiB of [] (at the Nexus answer cap): refused before parsing
#  - 63 MiB of [] with Content-Length, and without (read until the cap)
#  - 4 MiB of {}: refused before parsing
#  - 220 kB of {} (just under the parse limit): parsed, then refused by
#    shape, still within the bound
#  - meanwhile /v1/status/check answers 2 MiB: more than that endpoint's
#    cap (1 MiB), refused while reading
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init json_bomb
[ -x /usr/bin/time ] || { it_log "SKIP: /usr/bin/time not installed"; exit 77; }
echo '{}' >"$IT_TMP/scenario.json"
start_fake NEXUS tests/fakes/nexus_fake.py --scenario "$IT_TMP/scenario.json"
printf 'secret\n' >"$IT_TMP/pw"
chmod 600 "$IT_TMP/pw"
cat >"$IT_TMP/ns.conf" <<EOF
$(it_conf instance="bomb" state_dir="$IT_TMP/state" collector_timeout="$(tdur 60s)")
[nexus]
url = $NEXUS_URL
username = metrics
password_file = $IT_TMP/pw
timeout = $(tdur 60s)
EOF
# RSS is judged natively only: valgrind's and ASan's are their own
measure_rss=1
[ -z "${NS_REAL_BINARY:-}${NS_VALGRIND:-}" ] || measure_rss=0
# (an ASan build: the binary, or the library it was linked with, names the runtime)
if grep -qa "__asan_init\|AddressSanitizer" "$BIN" 2>/dev/null ||
	{ [ -f "$(dirname "$BIN")/config.log" ] && grep -q "enable-sanitizers" "$(dirname "$BIN")/config.log"; }; then
	measure_rss=0
fi
[ "$measure_rss" = 1 ] || it_log "RSS bound not checked (valgrind or ASan: RSS is the tool's)"

# bomb NAME UNIT SIZE NO_LENGTH WANT: serve the bomb on /v1/repositories,
# run `once --dry-run`, check the peak RSS, the collector down, the reason
bomb() {
	local name=$1 unit=$2 size=$3 nolen=$4 want=$5 rc=0 kb
	curl -fsS -X POST --data-binary @- "$NEXUS_URL/__control/scenario" >/dev/null <<-EOF
	{"faults": {"/service/rest/v1/repositor*": {"bomb": {"unit": "$unit", "size": $size, "no_length": $nolen}},
	            "/service/rest/v1/status/check": {"bomb": {"unit": "[]", "size": 2097152}}}}
	EOF
	/usr/bin/time -f '%M' -o "$IT_TMP/$name.rss" "$BIN" -c "$IT_TMP/ns.conf" once --dry-run \
		>"$IT_TMP/$name.prom" 2>"$IT_TMP/$name.log" || rc=$?
	kb=$(tail -n 1 "$IT_TMP/$name.rss")
	assert_eq 0 "$rc" "$name: once --dry-run exit code ($(tail -3 "$IT_TMP/$name.log"))"
	assert_contains "$(cat "$IT_TMP/$name.prom")" 'nexus_shipper_collector_up{collector="nexus_repositories",instance="bomb"} 0' "$name: nexus_repositories is down"
	assert_contains "$(grep 'collector nexus_repositories failed' "$IT_TMP/$name.log")" "$want" "$name: the reason"
	assert_contains "$(cat "$IT_TMP/$name.prom")" 'nexus_shipper_collector_up{collector="nexus_components",instance="bomb"} 0' "$name: nexus_components (/v1/repositories) is down"
	assert_contains "$(grep 'collector nexus_health failed' "$IT_TMP/$name.log")" "GET /service/rest/v1/status/check: answer larger than 1048576 bytes" "$name: /v1/status/check is capped at 1 MiB"
	it_log "$name: peak RSS $((kb / 1024)) MiB; $(grep -o 'collector nexus_repositories failed.*' "$IT_TMP/$name.log" | cut -c1-200)"
	if [ "$measure_rss" = 1 ]; then
		[ "$kb" -lt $((150 * 1024)) ] || fail "$name: peak RSS $kb kB (limit 150 MiB)"
	fi
}
bomb arrays16 '[]' $((16 << 20)) false "GET /service/rest/v1/repositorySettings: answer refused: 16777216 bytes of JSON"
bomb arrays63 '[]' $((63 << 20)) false "GET /service/rest/v1/repositorySettings: answer larger than 16777216 bytes"
bomb arrays63-nolength '[]' $((63 << 20)) true "GET /service/rest/v1/repositorySettings: answer larger than 16777216 bytes"
bomb objects4 '{}' $((4 << 20)) false "would take about"
bomb objects-under-limit '{}' 220000 false "GET /service/rest/v1/repositorySettings: [0]"

# a registry's answer through skopeo (a sibling of the above): `skopeo
# inspect --json` of a manifest that is a JSON bomb (the fake skopeo prints
# 12 MiB of [[],...], under skopeo's 16 MiB output cap): refused before
# parsing, the peak RSS bounded, the reason in the result
cat >"$IT_TMP/skopeo-bomb" <<'SH'
#!/bin/sh
case "$*" in
*--version*) echo "skopeo version 1.9.3"; exit 0 ;;
esac
/usr/bin/python3 -c 'import sys; sys.stdout.write("[" + ",".join(["[]"] * (12 << 18)) + "]")'
SH
chmod +x "$IT_TMP/skopeo-bomb"
cat >"$IT_TMP/sk.conf" <<EOF2
$(it_conf instance="bomb" state_dir="$IT_TMP/state")
[skopeo]
binary = $IT_TMP/skopeo-bomb
EOF2
rc=0
/usr/bin/time -f '%M' -o "$IT_TMP/skopeo.rss" "$BIN" -c "$IT_TMP/sk.conf" skopeo inspect --json \
	docker://registry.example/x/y:v1 >"$IT_TMP/skopeo.json" 2>"$IT_TMP/skopeo.err" || rc=$?
kb=$(tail -n 1 "$IT_TMP/skopeo.rss")
assert_eq 0 "$rc" "skopeo inspect of a bomb: exit code ($(tail -3 "$IT_TMP/skopeo.err"))"
assert_contains "$(cat "$IT_TMP/skopeo.json")" "would take about" "the bomb is refused with a reason"
it_log "skopeo inspect bomb: peak RSS $((kb / 1024)) MiB"
if [ "$measure_rss" = 1 ]; then
	[ "$kb" -lt $((150 * 1024)) ] || fail "skopeo inspect bomb: peak RSS $kb kB (limit 150 MiB)"
fi
