#!/bin/bash
# Spool archives cross a trust boundary (issue 18): air-gapped sites carry
# them by hand. A crafted archive must not make the shipper send the
# Pushgateway's credentials to another host or delete a group; records
# are checked on import AND before sending; archive_key_file signs and
# checks archives; an archive still being written is read by the length
# read; the import ledger works past its old 64 MiB limit, fails loudly
# and is locked; a planted symlink at the export's temp name is not
# followed; a kind/target mismatch is quarantined by replay (exit 1).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init spool_trust
MK="$IT_PY $top_srcdir/tests/integration/mkarchive.py"
pending() { # pending SPOOL TARGET-PREFIX
    NEXUS_SHIPPER_SHIPPER_SPOOL_DIR=$1 "$BIN" -c "$IT_TMP/s.conf" spool ls |
        awk -v p="$2" '$1 != "quarantine:" && (p == "" || index($1, p) == 1) {s += $2} END {print s + 0}'
}

start_pushgateway
start_fake OTHER tests/fakes/receiver_fake.py # the attacker's host: must see nothing
printf 'PgwTopSecret42\n' > "$IT_TMP/pgw.pw"
printf 'shared-archive-key-0123456789abcdef\n' > "$IT_TMP/key"
printf 'another-key-0123456789abcdef0123\n' > "$IT_TMP/key2"
chmod 600 "$IT_TMP/pgw.pw" "$IT_TMP/key" "$IT_TMP/key2"
conf() { # conf FILE SPOOL [KEYFILE]
    {
        printf '[shipper]\ninstance = trust\nspool_dir = %s\n' "$2"
        [ -z "${3:-}" ] || printf 'archive_key_file = %s\n' "$3"
        printf '[pushgateway]\nurl = %s\njob = trust\ntimeout = 5s\n' "$PGW_URL"
        printf 'basic_auth_user = pgw\nbasic_auth_password_file = %s\n' "$IT_TMP/pgw.pw"
    } > "$1"
}
conf "$IT_TMP/s.conf" "$IT_TMP/spool"
# a production group that must survive
printf 'prod_metric 1\n' | curl -fsS -X PUT --data-binary @- "$PGW_URL/metrics/job/production-job" >/dev/null

# ---- 1. crafted Pushgateway records: refused at import -----------------------
n=0
for spec in \
    "{\"kind\":2,\"target\":\"pushgateway\",\"extra\":\"PUT @127.0.0.1:$OTHER_PORT/stolen\",\"payload\":\"x 1\\n\"}" \
    '{"kind":2,"target":"pushgateway","extra":"DELETE /metrics/job/production-job"}' \
    '{"kind":2,"target":"pushgateway","extra":"PUT /metrics/job/a/../../../api/v1/admin/wipe"}' \
    '{"kind":2,"target":"pushgateway","extra":"PUT /metrics/job/a?x=@127.0.0.1"}' \
    '{"kind":2,"target":"pushgateway","extra":"PUT http://127.0.0.1:1/metrics/job/a"}' \
    '{"kind":1,"target":"pushgateway","extra":"PUT /metrics/job/a"}' \
    '{"kind":2,"target":"rw-default","extra":"PUT /metrics/job/a"}' \
    '{"kind":1,"target":"evil","payload":"x"}'; do
    n=$((n + 1))
    $MK archive "$IT_TMP/evil$n.nxs" "$spec"
    rc=0; "$BIN" -c "$IT_TMP/s.conf" spool import "$IT_TMP/evil$n.nxs" 2> "$IT_TMP/evil$n.err" || rc=$?
    assert_eq 1 "$rc" "crafted archive $n refused: $spec"
    assert_contains "$(cat "$IT_TMP/evil$n.err")" "evil$n.nxs" "the message names the file"
done
assert_contains "$(cat "$IT_TMP/evil1.err")" "group path" "the reason says what is wrong"
assert_contains "$(cat "$IT_TMP/evil6.err")" "Pushgateway" "a kind mismatch says so"
assert_eq 0 "$(pending "$IT_TMP/spool" "")" "refused archives wrote nothing"

# ---- 2. the same records planted in the spool: refused before sending ----------
mkdir -p "$IT_TMP/spool/pushgateway"
$MK segment "$IT_TMP/spool/pushgateway/0001.seg" \
    "{\"kind\":2,\"target\":\"pushgateway\",\"extra\":\"PUT @127.0.0.1:$OTHER_PORT/stolen\",\"payload\":\"x 1\\n\"}"
$MK segment "$IT_TMP/spool/pushgateway/0002.seg" \
    '{"kind":2,"target":"pushgateway","extra":"DELETE /metrics/job/production-job"}'
$MK segment "$IT_TMP/spool/pushgateway/0003.seg" \
    '{"kind":2,"target":"pushgateway","extra":"PUT /metrics/job/trust-ok","payload":"trust_ok 1\n"}'
"$BIN" -c "$IT_TMP/s.conf" once > /dev/null 2> "$IT_TMP/once.err" || true
assert_eq 0 "$(curl -fsS "$OTHER_URL/__control/requests" | $IT_PY -c 'import json,sys; print(len(json.load(sys.stdin)))')" \
    "no request reached the other host"
pg=$(pgw_metrics "$PGW_URL")
assert_contains "$pg" 'prod_metric{instance="",job="production-job"} 1' "the production group survives"
assert_contains "$pg" 'trust_ok{instance="",job="trust-ok"} 1' "a valid spooled push is still delivered"
assert_eq 2 "$(find "$IT_TMP/spool/quarantine" -name '*.reason' | wc -l)" "both planted pushes quarantined"
assert_contains "$(cat "$IT_TMP"/spool/quarantine/*.reason)" "refused before sending" "with the reason"
assert_not_contains "$(cat "$IT_TMP/once.err")" "PgwTopSecret42" "no password in the log"
assert_eq 0 "$(pending "$IT_TMP/spool" pushgateway)" "nothing left stuck"

# ---- 3. replay: a kind/target mismatch in a target's log is quarantined -------
conf "$IT_TMP/r.conf" "$IT_TMP/spool-r"
mkdir -p "$IT_TMP/spool-r/rw-default"
$MK segment "$IT_TMP/spool-r/rw-default/0001.seg" \
    '{"kind":2,"target":"rw-default","extra":"PUT /metrics/job/a","payload":"a 1\n"}'
rc=0; "$BIN" -c "$IT_TMP/r.conf" spool replay --url "$OTHER_URL/api/v1/write" > "$IT_TMP/rp.out" 2> "$IT_TMP/rp.err" || rc=$?
assert_eq 1 "$rc" "replay exits non-zero when a record was refused"
assert_contains "$(cat "$IT_TMP/rp.err")" "quarantine" "and says where it went"
assert_eq 0 "$(pending "$IT_TMP/spool-r" rw-)" "the mismatched record no longer blocks the target"
assert_eq 1 "$(find "$IT_TMP/spool-r/quarantine" -name '*.reason' | wc -l)" "it is in quarantine"
rc=0; "$BIN" -c "$IT_TMP/r.conf" spool replay --url "$OTHER_URL/api/v1/write" > /dev/null 2>&1 || rc=$?
assert_eq 0 "$rc" "the next replay has nothing left"
assert_eq 0 "$(curl -fsS "$OTHER_URL/__control/requests" | $IT_PY -c 'import json,sys; print(len(json.load(sys.stdin)))')" \
    "replay sent nothing of it"

# ---- 4. signed archives --------------------------------------------------------
good=()
for i in 1 2 3; do
    good+=("{\"kind\":1,\"target\":\"rw-default\",\"name\":\"g$i.seg\",\"payload\":\"rw$i\"}")
done
$MK archive "$IT_TMP/good.nxs" "${good[@]}"
conf "$IT_TMP/a.conf" "$IT_TMP/spool-a" "$IT_TMP/key"
"$BIN" -c "$IT_TMP/a.conf" spool import "$IT_TMP/good.nxs" 2>/dev/null && fail "an unsigned archive was accepted with a key set"
conf "$IT_TMP/a0.conf" "$IT_TMP/spool-a"
"$BIN" -c "$IT_TMP/a0.conf" spool import "$IT_TMP/good.nxs" > /dev/null   # no key: old archives still read
"$BIN" -c "$IT_TMP/a.conf" spool export --to "$IT_TMP/signed.nxs" > "$IT_TMP/exp.out"
assert_contains "$(cat "$IT_TMP/exp.out")" "(signed)" "export signs with archive_key_file"
"$BIN" -c "$IT_TMP/a0.conf" spool export --to "$IT_TMP/unsigned.nxs" > /dev/null
# the signature is a plain HMAC-SHA256 of everything before its line
head -c -77 "$IT_TMP/signed.nxs" > "$IT_TMP/signed.body"
assert_eq "HMAC-SHA256 $($MK hmac "$IT_TMP/key" "$IT_TMP/signed.body")" "$(tail -n 1 "$IT_TMP/signed.nxs")" \
    "signature line = HMAC-SHA256 of the archive with the key"
conf "$IT_TMP/b.conf" "$IT_TMP/spool-b" "$IT_TMP/key"
conf "$IT_TMP/bw.conf" "$IT_TMP/spool-b" "$IT_TMP/key2"
rc=0; "$BIN" -c "$IT_TMP/b.conf" spool import "$IT_TMP/unsigned.nxs" 2> "$IT_TMP/e1" || rc=$?
assert_eq 1 "$rc" "unsigned archive refused when a key is configured"
assert_contains "$(cat "$IT_TMP/e1")" "unsigned.nxs: not signed" "message names the file"
rc=0; "$BIN" -c "$IT_TMP/bw.conf" spool import "$IT_TMP/signed.nxs" 2> "$IT_TMP/e2" || rc=$?
assert_eq 1 "$rc" "archive signed with another key refused"
assert_contains "$(cat "$IT_TMP/e2")" "signed.nxs: signature does not match" "message names the file"
cp "$IT_TMP/signed.nxs" "$IT_TMP/tampered.nxs"
printf 'X' | dd of="$IT_TMP/tampered.nxs" bs=1 seek=12 conv=notrunc status=none
rc=0; "$BIN" -c "$IT_TMP/b.conf" spool import "$IT_TMP/tampered.nxs" 2> /dev/null || rc=$?
assert_eq 1 "$rc" "modified signed archive refused"
# a crafted archive signed with a stolen key is still checked record by record
$MK archive "$IT_TMP/evilsigned.nxs" --key "$IT_TMP/key" \
    '{"kind":2,"target":"pushgateway","extra":"DELETE /metrics/job/production-job"}'
rc=0; "$BIN" -c "$IT_TMP/b.conf" spool import "$IT_TMP/evilsigned.nxs" 2> /dev/null || rc=$?
assert_eq 1 "$rc" "a signed archive with a forged record is refused too"
assert_eq 0 "$(pending "$IT_TMP/spool-b" "")" "nothing imported so far"
"$BIN" -c "$IT_TMP/b.conf" spool import "$IT_TMP/signed.nxs" > "$IT_TMP/i.out"
assert_contains "$(cat "$IT_TMP/i.out")" "imported 3 segment(s)" "the signed archive with the right key"
assert_contains "$(cat "$IT_TMP/i.out")" "signature verified" "says so"

# ---- 5. an archive still being written (a FIFO: stat says 0 bytes) ------------
rm -rf "$IT_TMP/spool-c"
conf "$IT_TMP/c.conf" "$IT_TMP/spool-c"
mkfifo "$IT_TMP/grow.nxs"
(head -c 100 "$IT_TMP/good.nxs"; sleep 0.3; tail -c +101 "$IT_TMP/good.nxs") > "$IT_TMP/grow.nxs" &
writer=$!
"$BIN" -c "$IT_TMP/c.conf" spool import "$IT_TMP/grow.nxs" > "$IT_TMP/g.out"
wait "$writer"
assert_contains "$(cat "$IT_TMP/g.out")" "imported 3 segment(s)" "the length read is the length used"

# ---- 6. the ledger past its old 64 MiB limit, unreadable, locked ----------------
$IT_PY - "$IT_TMP/spool-c/.imported" <<'PY'
import sys
line = ("rw-default/" + "x" * 180 + "-%08d.seg\n")
with open(sys.argv[1], "ab") as f:   # the 3 real entries are already in it
    f.write(b"".join((line % i).encode() for i in range(360000)))
PY
[ "$(stat -c %s "$IT_TMP/spool-c/.imported")" -gt $((64 << 20)) ] || fail "ledger not past 64 MiB"
"$BIN" -c "$IT_TMP/c.conf" spool import "$IT_TMP/good.nxs" > "$IT_TMP/g2.out"
assert_contains "$(cat "$IT_TMP/g2.out")" "imported 0 segment(s)" "no duplicates past 64 MiB"
# entries after the 64 MiB mark count too
$MK archive "$IT_TMP/late.nxs" '{"kind":1,"target":"rw-default","name":"late.seg","payload":"l"}'
printf 'rw-default/late.seg\n' >> "$IT_TMP/spool-c/.imported"
"$BIN" -c "$IT_TMP/c.conf" spool import "$IT_TMP/late.nxs" > "$IT_TMP/g3.out"
assert_contains "$(cat "$IT_TMP/g3.out")" "imported 0 segment(s)" "an entry past 64 MiB is found"
assert_eq 3 "$(pending "$IT_TMP/spool-c" rw-)" "still 3 batches"
# an unreadable ledger is an error, not an empty ledger
rm -rf "$IT_TMP/spool-d"; mkdir -p "$IT_TMP/spool-d/.imported"
conf "$IT_TMP/d.conf" "$IT_TMP/spool-d"
rc=0; "$BIN" -c "$IT_TMP/d.conf" spool import "$IT_TMP/good.nxs" 2> "$IT_TMP/d.err" || rc=$?
assert_eq 1 "$rc" "an unreadable ledger refuses the import"
assert_contains "$(cat "$IT_TMP/d.err")" ".imported" "naming the ledger"
assert_eq 0 "$(pending "$IT_TMP/spool-d" rw-)" "nothing imported"
# concurrent imports wait for each other
rm -rf "$IT_TMP/spool-d"; mkdir -p "$IT_TMP/spool-d"; : > "$IT_TMP/spool-d/.imported"
$IT_PY -c 'import fcntl, sys, time
f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_EX); open(sys.argv[2], "w").close(); time.sleep(600)' \
    "$IT_TMP/spool-d/.imported" "$IT_TMP/locked" &
holder=$!
wait_for "[ -e '$IT_TMP/locked' ]" 10 || fail "the lock holder did not start"
"$BIN" -c "$IT_TMP/d.conf" spool import "$IT_TMP/good.nxs" > "$IT_TMP/w.out" 2> "$IT_TMP/w.err" &
imp=$!
wait_for "grep -q 'waiting for another import' '$IT_TMP/w.err'" 10 || fail "import did not wait for the lock"
assert_eq 0 "$(pending "$IT_TMP/spool-d" rw-)" "nothing imported while the lock is held"
kill "$holder"; wait "$holder" 2>/dev/null || true
wait "$imp" || fail "import after the lock was released failed"
assert_contains "$(cat "$IT_TMP/w.out")" "imported 3 segment(s)" "imported once the lock was free"

# ---- 7. export never follows a planted symlink -----------------------------------
printf 'precious\n' > "$IT_TMP/victim"
ln -s "$IT_TMP/victim" "$IT_TMP/out.nxs.partial"
ln -s "$IT_TMP/victim" "$IT_TMP/out2.nxs"
"$BIN" -c "$IT_TMP/c.conf" spool export --to "$IT_TMP/out.nxs" > /dev/null
"$BIN" -c "$IT_TMP/c.conf" spool export --to "$IT_TMP/out2.nxs" > /dev/null
assert_eq precious "$(cat "$IT_TMP/victim")" "the symlinks' target is untouched"
if [ ! -f "$IT_TMP/out.nxs" ] || [ -L "$IT_TMP/out2.nxs" ]; then fail "exports not written as files"; fi
assert_eq 600 "$(stat -c %a "$IT_TMP/out.nxs")" "archive mode 0600"
rm -rf "$IT_TMP/spool-e"; conf "$IT_TMP/e.conf" "$IT_TMP/spool-e"
"$BIN" -c "$IT_TMP/e.conf" spool import "$IT_TMP/out2.nxs" > "$IT_TMP/e.out"
assert_contains "$(cat "$IT_TMP/e.out")" "imported 3 segment(s)" "the export reads back"
it_log ok
