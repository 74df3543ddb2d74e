#!/bin/bash
# The certificates collector end to end (setup: collectors_lib.sh):
#  1. source = tls: the endpoints of [certificates] and Nexus's https docker
#     connector, served by tests/fakes/tls_fake.py with certificates made
#     with the openssl CLI: valid, expired, wrong name, self-signed, closed
#     port; exact notAfter and seconds left, each problem in the log.
#  2. source = nexus: the certificates as Nexus sees them (/v1/security/ssl).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_init collectors_certs
. "$IT_DIR/collectors_lib.sh"

# =====================================================================
# 1. source = tls (the healthy scenario)
# =====================================================================
healthy_cycle

expect '{__name__=~"nexus_certificate_(up|valid|expiry_timestamp_seconds)"}' "certificates (tls)" <<EOF
nexus_certificate_expiry_timestamp_seconds{host="127.0.0.1",issuer="Test Root CA",port="$OK",repository="docker-hosted",serial="1001",subject="localhost"} 4102444799
nexus_certificate_expiry_timestamp_seconds{host="localhost",issuer="Test Root CA",port="$EXP",serial="1002",subject="localhost"} 1609459200
nexus_certificate_expiry_timestamp_seconds{host="localhost",issuer="Test Root CA",port="$OK",serial="1001",subject="localhost"} 4102444799
nexus_certificate_expiry_timestamp_seconds{host="localhost",issuer="Test Root CA",port="$WRONG",serial="1003",subject="wrong.example.org"} 2051222400
nexus_certificate_expiry_timestamp_seconds{host="localhost",issuer="localhost",port="$SELF",serial="1004",subject="localhost"} 1893456000
nexus_certificate_up{host="127.0.0.1",port="$CLOSED"} 0
nexus_certificate_up{host="127.0.0.1",port="$OK",repository="docker-hosted"} 1
nexus_certificate_up{host="localhost",port="$EXP"} 1
nexus_certificate_up{host="localhost",port="$OK"} 1
nexus_certificate_up{host="localhost",port="$SELF"} 1
nexus_certificate_up{host="localhost",port="$WRONG"} 1
nexus_certificate_valid{host="127.0.0.1",port="$OK",repository="docker-hosted"} 1
nexus_certificate_valid{host="localhost",port="$EXP"} 0
nexus_certificate_valid{host="localhost",port="$OK"} 1
nexus_certificate_valid{host="localhost",port="$SELF"} 0
nexus_certificate_valid{host="localhost",port="$WRONG"} 0
EOF
same_in_vm '{__name__=~"nexus_certificate_(up|valid|expiry_timestamp_seconds)"}'
# the exact notAfter, as openssl reads it from the certificate files
for c in valid:$OK expired:$EXP wrong:$WRONG self:$SELF; do
    end=$(openssl x509 -in "$PKI/${c%:*}.pem" -noout -enddate | sed 's/notAfter=//')
    want=$(date -u -d "$end" +%s)
    got=$(q "nexus_certificate_expiry_timestamp_seconds{host=\"localhost\",port=\"${c#*:}\"}" | sed 's/.* //')
    assert_eq "$want" "$got" "notAfter of ${c%:*}"
done
expect nexus_certificate_expires_in_seconds "certificates: seconds left" <<EOF
nexus_certificate_expires_in_seconds{host="127.0.0.1",port="$OK",repository="docker-hosted"} $(pyval "4102444799 - $TS / 1000")
nexus_certificate_expires_in_seconds{host="localhost",port="$EXP"} $(pyval "1609459200 - $TS / 1000")
nexus_certificate_expires_in_seconds{host="localhost",port="$OK"} $(pyval "4102444799 - $TS / 1000")
nexus_certificate_expires_in_seconds{host="localhost",port="$SELF"} $(pyval "1893456000 - $TS / 1000")
nexus_certificate_expires_in_seconds{host="localhost",port="$WRONG"} $(pyval "2051222400 - $TS / 1000")
EOF
log_has "localhost:$EXP: certificate not valid: certificate has expired" "expired certificate logged"
log_has "localhost:$WRONG: certificate not valid: hostname mismatch" "wrong name logged"
log_has "localhost:$SELF: certificate not valid: self-signed certificate" "self-signed logged"
log_has "certificate of 127.0.0.1:$CLOSED: connect to 127.0.0.1:$CLOSED: Connection refused" "closed port logged"

# =====================================================================
# 2. source = nexus: certificates as Nexus sees them
# =====================================================================
conf nexus_certs "" nexus "static.example.org:443, unknown.example.org:8443"
run_once nexus_certs "$IT_TMP/nexus_certs.conf"
serial=$($PY -c 'import hashlib; print(int(hashlib.sha1(b"static.example.org:443").hexdigest().upper()[:12], 16))')
expect '{__name__=~"nexus_certificate_.*"}' "certificates (source = nexus)" <<EOF
nexus_certificate_expires_in_seconds{host="static.example.org",port="443"} $(pyval "1735689600 - $TS / 1000")
nexus_certificate_expiry_timestamp_seconds{host="static.example.org",issuer="Fake Test CA",port="443",serial="$serial",subject="static.example.org"} 1735689600
nexus_certificate_up{host="127.0.0.1",port="$OK",repository="docker-hosted"} 0
nexus_certificate_up{host="static.example.org",port="443"} 1
nexus_certificate_up{host="unknown.example.org",port="8443"} 0
EOF
assert_contains "$(curl -fsS "$NEXUS_URL/__control/requests")" '"query": "host=static.example.org&port=443"' \
    "asked Nexus with host and port"


it_log "ok"
