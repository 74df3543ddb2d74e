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
# dropped). ALLOC_TORTURE_STEP=K tests every K-th N only.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init alloc_fail
. "$IT_DIR/pg.sh"
BIN=${NEXUS_SHIPPER:-$top_builddir/nexus-shipper}
TORTURE=$top_builddir/tests/fault/alloc_torture
[ -x "$TORTURE" ] || fail "$TORTURE not built (make check builds it)"

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
chmod 600 "$IT_TMP"/*-password "$IT_TMP"/*-token
printf '{"auths": {}}\n' > "$IT_TMP/auth.json"

# every key of the template set (bearer_token_file excludes basic auth)
"$BIN" config-template | sed -e 's/^#\(\[[a-z_ A-Z]*\]\)/\1/' -e 's/^#\([a-z_]* = \)/\1/' \
    -e "s|/etc/nexus-shipper/|$IT_TMP/|g" -e "s|/var/lib/nexus-shipper|$IT_TMP/var|g" \
    -e "s|/var/log/|$IT_TMP/|g" -e '/^bearer_token_file/d' > "$IT_TMP/full.conf"
"$BIN" -c "$IT_TMP/full.conf" check-config >&2 || fail "the full configuration does not load"
[ "$(grep -c '^\[' "$IT_TMP/full.conf")" -ge 8 ] || fail "the full configuration lacks sections"

cat > "$IT_TMP/cycle.conf" <<CONF
[shipper]
interval = 1s
instance = torture
spool_dir = $IT_TMP/unused
external_labels = env=ci,dc=torture
collector_timeout = 10s
[remote_write]
url = $RECV_URL/api/v1/write
max_samples_per_send = 500
min_backoff = 100ms
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
[database]
conninfo = host=127.0.0.1 port=$PG_PORT dbname=nexus user=nexus_ro sslmode=disable
password_file = $IT_TMP/db-password
[cleanup]
days_to_keep = 30
keep_last = 1
CONF
"$BIN" -c "$IT_TMP/cycle.conf" once --dry-run 2> "$IT_TMP/dry.err" > "$IT_TMP/dry.out"
for m in nexus_up nexus_repository_size_bytes nexus_blobstore_db_blobs nexus_certificate_up \
    nexus_cleanup_reclaimable_tags; do
    grep -q "^$m{" "$IT_TMP/dry.out" || fail "the cycle does not produce $m (see $IT_TMP/dry.err)"
done

failed=0
for s in config cycle encode spool deliver replay export; do
    conf=$IT_TMP/cycle.conf
    [ "$s" = config ] && conf=$IT_TMP/full.conf
    if ! "$TORTURE" "$s" "$conf" "$RECV_URL/api/v1/write" > "$IT_TMP/$s.out" 2> "$IT_TMP/$s.err"; then
        cat "$IT_TMP/$s.err" >&2
        failed=1
    fi
    cat "$IT_TMP/$s.out" >&2
    grep -q " 0 failures$" "$IT_TMP/$s.out" || failed=1
    # the iteration must have injected something (a test that can fail)
    runs=$(awk '{print $2}' "$IT_TMP/$s.out")
    [ "${runs:-0}" -ge 5 ] || { it_log "$s: only ${runs:-0} runs"; failed=1; }
done
[ "$failed" -eq 0 ] || fail "allocation failures crashed, leaked or lost samples (see above)"
it_log ok
