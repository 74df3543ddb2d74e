#!/bin/bash
# Credentials (issue 18):
#  1. a password in a URL (userinfo) and a token query parameter never
#     appear in stdout, stderr or the log_file of once, run, spool replay
#     (to a receiver answering 500, then 400), check-config and healthcheck;
#  2. log_file is created 0640 under umask 000; a 10 kB remote-write bearer
#     token and a 400-byte tenant (X-Scope-OrgID) are sent whole;
#  3. cleanup: a registry whose 401 names a token realm on another port
#     (plain http): the realm gets no Authorization header and the refusal
#     is logged; with the realm's host:port in [cleanup] token_realm_hosts it
#     gets the basic credentials (taken from registry_url's userinfo, which
#     no message shows); a realm on the registry's own origin gets them
#     unlisted; the realm's 10 kB bearer token reaches the registry whole.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init creds

PW=TopSecretPW QT=QueryTok3n
no_secret() { # FILE... : neither secret in any of them
	local f
	for f in "$@"; do
		[ -e "$f" ] || continue
		assert_not_contains "$(cat "$f")" "$PW" "the URL password is not in $f"
		assert_not_contains "$(cat "$f")" "$QT" "the token query value is not in $f"
	done
}

# ---- 1 + 2. remote-write to a receiver that answers 500
start_fake RECV tests/fakes/receiver_fake.py --status 500
URL="http://alice:$PW@127.0.0.1:$RECV_PORT/api/v1/write?token=$QT"
c=$IT_TMP/rw.conf
cat >"$c" <<CONF
$(it_conf interval="1s" state_dir="$IT_TMP/state" log_file="$IT_TMP/log/shipper.log")
[remote_write]
url = $URL
timeout = $(tscale 5)s
min_backoff = 100ms
max_backoff = 200ms
[remote_write big]
url = $RECV_URL/api/v1/write
bearer_token_file = $IT_TMP/token
tenant = $(head -c 400 /dev/zero | tr '\0' 'o')
timeout = $(tscale 5)s
CONF
head -c 10000 /dev/zero | tr '\0' 'b' >"$IT_TMP/token"
chmod 600 "$IT_TMP/token"
mkdir -p "$IT_TMP/log"
(umask 000 && "$BIN" -c "$c" once >"$IT_TMP/once.out" 2>"$IT_TMP/once.err") || true
assert_eq 640 "$(stat -c %a "$IT_TMP/log/shipper.log")" "log_file created 0640 under umask 000"
assert_contains "$(cat "$IT_TMP/once.err")" "REDACTED@127.0.0.1:$RECV_PORT/api/v1/write?token=REDACTED" \
	"once names the receiver without its secrets"
no_secret "$IT_TMP/once.out" "$IT_TMP/once.err" "$IT_TMP/log/shipper.log"
# a 10 kB bearer token and a 400-byte tenant arrive whole (were cut at ~4 kB / 285 bytes)
assert_eq "10007 400" "$(curl -fsS "$RECV_URL/__control/requests" | "$IT_PY" -c '
import json, sys
for r in json.load(sys.stdin):
    h = {k.lower(): v for k, v in r["headers"].items()}
    if h.get("authorization", "").startswith("Bearer "):
        print(len(h["authorization"]), len(h.get("x-scope-orgid", "")))' | sort -u)" \
	"bearer token and tenant header lengths at the receiver"

"$BIN" -c "$c" run >"$IT_TMP/run.out" 2>"$IT_TMP/run.err" &
RUN_PID=$!
it_on_exit "kill $RUN_PID 2>/dev/null"
wait_for "[ \$(grep -c 'send to' '$IT_TMP/run.err') -ge 1 ]" 15
kill -TERM "$RUN_PID"
wait "$RUN_PID" || true
no_secret "$IT_TMP/run.out" "$IT_TMP/run.err" "$IT_TMP/log/shipper.log"

rc=0
"$BIN" -c "$c" spool replay >"$IT_TMP/replay.out" 2>"$IT_TMP/replay.err" || rc=$?
assert_eq 1 "$rc" "replay to a receiver answering 500 fails"
assert_contains "$(cat "$IT_TMP/replay.err")" "unavailable (HTTP 500" "replay says why"
curl -fsS -X POST -d '{"status": 400, "body": "bad batch"}' "$RECV_URL/__control" >/dev/null
"$BIN" -c "$c" spool replay --url "http://bob:$PW@127.0.0.1:$RECV_PORT/api/v1/write?access_token=$QT" \
	>"$IT_TMP/replay2.out" 2>"$IT_TMP/replay2.err" || true
assert_contains "$(cat "$IT_TMP/replay2.err")" "rejected" "replay logs the 400"
no_secret "$IT_TMP"/replay*.out "$IT_TMP"/replay*.err "$IT_TMP/log/shipper.log"

printf '[remote_write]\nurl = ftp://alice:%s@127.0.0.1/x?token=%s\n' "$PW" "$QT" >"$IT_TMP/bad.conf"
"$BIN" -c "$IT_TMP/bad.conf" check-config >"$IT_TMP/check.out" 2>&1 && fail "check-config accepted ftp://"
assert_contains "$(cat "$IT_TMP/check.out")" "is not an http:// or https:// URL" "check-config names the bad URL"
"$BIN" healthcheck --url "http://alice:$PW@127.0.0.1:$(free_port)/healthz?token=$QT" >"$IT_TMP/hc.out" 2>&1 &&
	fail "healthcheck of a closed port succeeded"
assert_contains "$(cat "$IT_TMP/hc.out")" "healthcheck: http://REDACTED@" "healthcheck names the URL"
no_secret "$IT_TMP/check.out" "$IT_TMP/hc.out"
# a line break in a token would send the rest as another header
printf 'abc\nX-Injected: 1\n' >"$IT_TMP/badtoken"
chmod 600 "$IT_TMP/badtoken"
printf '[remote_write]\nurl = http://127.0.0.1:9/api/v1/write\nbearer_token_file = %s\n' "$IT_TMP/badtoken" >"$IT_TMP/bad.conf"
rc=0
"$BIN" -c "$IT_TMP/bad.conf" check-config >"$IT_TMP/check.out" 2>&1 || rc=$?
assert_eq 2 "$rc" "check-config refuses a token with a line break"
assert_contains "$(cat "$IT_TMP/check.out")" "line break" "and says why"

# ---- 3. token realms
start_fake REALM tests/integration/hostile_registry.py --token-bytes 10000
start_fake REG tests/integration/hostile_registry.py --realm "$REALM_URL/token"
printf '%s\n' "$PW" >"$IT_TMP/pw"
chmod 600 "$IT_TMP/pw"
cat >"$IT_TMP/cl.conf" <<CONF
[shipper]
state_dir = $IT_TMP/state-cl
spool_dir = $IT_TMP/spool-cl
[cleanup]
registry_url = $REG_URL
username = alice
password_file = $IT_TMP/pw
days_to_keep = 30
CONF
"$BIN" -c "$IT_TMP/cl.conf" cleanup --dry-run >"$IT_TMP/cl1.out" 2>"$IT_TMP/cl1.err" || true
realm=$(sed -n 's/^TOKENREQ //p' "$IT_LOGS/realm.log")
assert_contains "$realm" "auth=none" "the untrusted realm was asked"
assert_not_contains "$realm" "auth=Basic" "the untrusted realm never gets the credentials"
assert_contains "$(cat "$IT_TMP/cl1.err")" \
	"not sending the registry credentials to token realm $REALM_URL/token (plain http to 127.0.0.1:$REALM_PORT" \
	"the refusal is logged"
assert_eq 1 "$(grep -c 'not sending the registry credentials' "$IT_TMP/cl1.err")" "logged once per run"
bearer=$(sed -n 's/^BEARER //p' "$IT_LOGS/reg.log" | sort -u)
assert_eq "len=10000" "$bearer" "the 10 kB token reaches the registry whole"
no_secret "$IT_TMP/cl1.out" "$IT_TMP/cl1.err"

# trusted by name; the credentials come from registry_url's userinfo
cat >"$IT_TMP/cl2.conf" <<CONF
[shipper]
state_dir = $IT_TMP/state-cl
spool_dir = $IT_TMP/spool-cl
[cleanup]
registry_url = http://alice:$PW@127.0.0.1:$REG_PORT/
token_realm_hosts = example.org, 127.0.0.1:$REALM_PORT
days_to_keep = 30
CONF
: >"$IT_LOGS/realm.log"
"$BIN" -c "$IT_TMP/cl2.conf" cleanup --dry-run >"$IT_TMP/cl2.out" 2>"$IT_TMP/cl2.err" || true
basic=$(printf 'alice:%s' "$PW" | base64)
realm=$(sed -n 's/^TOKENREQ //p' "$IT_LOGS/realm.log" | sort -u)
assert_eq "auth=Basic $basic" "$realm" "a realm in token_realm_hosts gets the credentials of registry_url"
assert_not_contains "$(cat "$IT_TMP/cl2.err")" "not sending the registry credentials" "no refusal"
assert_contains "$(cat "$IT_TMP/cl2.err")" "GET http://127.0.0.1:$REG_PORT/v2/_catalog" "messages name the registry without userinfo"
no_secret "$IT_TMP/cl2.out" "$IT_TMP/cl2.err"

# a realm on the registry's own origin gets the credentials without being listed
start_fake SELF tests/integration/hostile_registry.py --realm self --token-bytes 100
sed "s|^registry_url = .*|registry_url = $SELF_URL|" "$IT_TMP/cl.conf" >"$IT_TMP/cl3.conf"
"$BIN" -c "$IT_TMP/cl3.conf" cleanup --dry-run >"$IT_TMP/cl3.out" 2>"$IT_TMP/cl3.err" || true
assert_eq "auth=Basic $basic" "$(sed -n 's/^TOKENREQ //p' "$IT_LOGS/self.log" | sort -u)" \
	"the registry's own realm gets the credentials"
assert_eq "len=100" "$(sed -n 's/^BEARER //p' "$IT_LOGS/self.log" | sort -u)" "and its token is used"
no_secret "$IT_TMP/cl3.out" "$IT_TMP/cl3.err"

it_log "URL secrets never printed, log_file 0640, token realms trusted only as configured, 10 kB tokens whole"
