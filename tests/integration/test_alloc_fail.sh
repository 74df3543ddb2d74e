#!/bin/bash
# Allocation-failure injection over the core paths (issue 10):
# tests/fault/alloc_torture makes the N-th allocation of our own code fail,
# for N = 1, 2, ... until a run completes without an injected failure, in
# a forked child per N. Paths: load of a full configuration (every section
# of config-template), one collection cycle of every collector (REST,
# certificates and GitLab against the Nexus fake, the database collectors
# against a real PostgreSQL with the Nexus schema), the remote-write
# encoder, spool write (sender_submit), delivery from the spool to a
# receiver (sender_deliver), `spool replay`, `spool export` + `spool import`. Every run must return an error or succeed where the
# failure is tolerated (a collector down, a batch kept for later), never
# crash, leak nothing (tracked in the wrappers; LeakSanitizer too in the
# ASan build) and lose no sample (delivered, still spooled, or counted as
# dropped): every scenario, the spool's in-memory index included (an
# allocation failing while it is built or refreshed makes the call fail and
# the index stale; replay/export exit non-zero and lose nothing).
# ALLOC_TORTURE_STEP=K tests every K-th N only.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init alloc_fail
. "$IT_DIR/pg.sh"
TORTURE=$top_builddir/tests/fault/alloc_torture
[ -x "$TORTURE" ] || fail "$TORTURE not built (make check builds it)"
# Under valgrind (make check NS_VALGRIND=1) the torture runs under it too:
# a memory error or definite leak in any forked child goes to
# $NS_VALGRIND_LOGDIR and makes that child exit 99, a failure.
# Every N costs ~20x more there (config: 265 runs in 46 s, cycle: 292 in
# 259 s), so under a time scale only every NS_TIME_SCALE-th N is tested
# (ALLOC_TORTURE_STEP overrides); the native and ASan runs test every N.
TORTURE_RUN=("$TORTURE")
if [ -n "${NS_VALGRIND_LOGDIR:-}" ]; then
    TORTURE_RUN=(env NS_REAL_BINARY="$TORTURE" "$top_srcdir/tests/valgrind-wrap.sh")
fi
if [ -z "${ALLOC_TORTURE_STEP:-}" ] && [ "$NS_TIME_SCALE" -gt 1 ]; then
    export ALLOC_TORTURE_STEP=$NS_TIME_SCALE
    echo "NS_TIME_SCALE=$NS_TIME_SCALE: testing every ${ALLOC_TORTURE_STEP}th allocation only" >&2
fi

start_fake NEXUS tests/fakes/nexus_fake.py --scenario "$top_srcdir/tests/fakes/scenarios/healthy.json"
start_fake RECV tests/fakes/receiver_fake.py
start_postgres
pg_psql -d postgres -c "CREATE DATABASE nexus"
pg_psql -d nexus -f "$top_srcdir/tests/fixtures/nexus_schema.sql"
pg_psql -d nexus -v repos=2 -v comps=5 -v apc=2 -v images=2 -f "$top_srcdir/tests/fixtures/nexus_data.sql"
pg_psql -d nexus -c "CREATE ROLE nexus_ro LOGIN PASSWORD 'metrics-secret';
    GRANT SELECT ON ALL TABLES IN SCHEMA public TO nexus_ro"
for f in rw-password nexus-password gitlab-token db-password registry-password; do
    printf 'metrics-secret\n' > "$IT_TMP/$f"
done
printf 'glpat-test-token\n' > "$IT_TMP/gitlab-token"   # healthy.json's GitLab token
printf 'alloc-fail-archive-key-0123456789\n' > "$IT_TMP/archive.key" # [shipper] archive_key_file
chmod 600 "$IT_TMP"/*-password "$IT_TMP"/*-token "$IT_TMP/archive.key"
printf '{"auths": {}}\n' > "$IT_TMP/auth.json"
cp /etc/ssl/certs/ca-certificates.crt "$IT_TMP/ca.pem"   # files named by the config must exist

# every key of the template set (bearer_token_file excludes basic auth)
"$BIN" config-template | sed -e 's/^#\(\[[a-z_ A-Z]*\]\)/\1/' -e 's/^#\([a-z_]* = \)/\1/' \
    -e "s|/etc/nexus-shipper/|$IT_TMP/|g" -e "s|/var/lib/nexus-shipper|$IT_TMP/var|g" \
    -e "s|/var/log/|$IT_TMP/|g" -e '/^bearer_token_file/d' > "$IT_TMP/full.conf"
"$BIN" -c "$IT_TMP/full.conf" check-config >&2 || fail "the full configuration does not load"
[ "$(grep -c '^\[' "$IT_TMP/full.conf")" -ge 8 ] || fail "the full configuration lacks sections"

# the REST, certificate and GitLab collectors (and the sender paths)
shipper() {
    printf '[shipper]\ninterval = 1s\ninstance = torture\nspool_dir = %s/unused\n' "$IT_TMP"
    printf 'external_labels = env=ci,dc=torture\ncollector_timeout = 10s\n'
    printf '[remote_write]\nurl = %s/api/v1/write\nmax_samples_per_send = 500\nmin_backoff = 100ms\n' "$RECV_URL"
    # per-target filters (relabel.c) on the submit path too
    printf 'drop_series = {repository="docker-proxy"}\ndrop_labels = dc\n'
}
{
    shipper
    cat <<CONF
[nexus]
url = $NEXUS_URL
username = metrics
password_file = $IT_TMP/nexus-password
[certificates]
source = nexus
endpoints = nexus.example.org:443, registry.example.org:8443, static.example.org:443
[gitlab]
url = $NEXUS_URL
token_file = $IT_TMP/gitlab-token
CONF
} > "$IT_TMP/cycle.conf"
# the database collectors alone (each run connects: kept apart, it is slow)
{
    shipper
    cat <<CONF
[database]
conninfo = host=127.0.0.1 port=$PG_PORT dbname=nexus user=nexus_ro sslmode=disable
password_file = $IT_TMP/db-password
[cleanup]
days_to_keep = 30
keep_last = 1
CONF
} > "$IT_TMP/db.conf"
for c in cycle db; do
    "$BIN" -c "$IT_TMP/$c.conf" once --dry-run 2> "$IT_TMP/dry.err" > "$IT_TMP/dry.out"
    for m in nexus_up nexus_certificate_up nexus_repository_size_bytes nexus_blobstore_db_blobs \
        nexus_cleanup_reclaimable_tags; do
        case $c:$m in cycle:nexus_up | cycle:nexus_certificate_up | db:*_db_* | db:nexus_repository_size_bytes | db:nexus_cleanup*) ;;
        *) continue ;;
        esac
        grep -q "^$m{" "$IT_TMP/dry.out" || fail "$c.conf does not produce $m (see $IT_TMP/dry.err)"
    done
done

# "addr2line -f -e BIN 0xOFF" in the torture's messages -> function file:line
resolve() {
    local l a
    while IFS= read -r l; do
        a=$(grep -o 'addr2line -f -e [^ ]* 0x[0-9a-f]*' <<<"$l" || true)
        # shellcheck disable=SC2086
        [ -z "$a" ] || l="$l -> $($a 2>/dev/null | tr '\n' ' ')"
        printf '%s\n' "$l"
    done
}
failed=0
for sc in config:full cycle:cycle cycle:db encode:cycle spool:cycle deliver:cycle replay:cycle export:cycle; do
    s=${sc%:*} conf=$IT_TMP/${sc#*:}.conf out=$IT_TMP/${sc/:/-}
    if ! "${TORTURE_RUN[@]}" "$s" "$conf" "$RECV_URL/api/v1/write" > "$out.out" 2> "$out.err"; then
        grep -v '^    | [0-9-]* [0-9:]* \[' "$out.err" | resolve >&2 # without the log lines
        failed=1
    fi
    printf '%-14s %s\n' "${sc#*:}.conf" "$(cat "$out.out")" >&2
    grep -q " 0 failures$" "$out.out" || failed=1
    # the iteration must have injected something (a test that can fail)
    # (with a step K, N runs 1, 1 + K, ...: judge the highest N reached)
    runs=$(sed -n 's/.*(N = 1\.\.\([0-9]*\) step.*/\1/p' "$out.out")
    [ "${runs:-0}" -ge 5 ] || { it_log "$sc: only ${runs:-0} allocations"; failed=1; }
done
[ "$failed" -eq 0 ] || fail "allocation failures crashed, leaked or lost samples (see above)"
it_log ok
