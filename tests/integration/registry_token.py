#!/usr/bin/env python3
"""A Docker registry token server for tests (the bearer-token dance).

  registry_token.py --port 0 --port-file F --cert-file CERT.pem
                    --user U --password P [--issuer I]

Writes a self-signed EC P-256 certificate to CERT.pem (the registry's
auth.token.rootcertbundle), then answers GET /token?service=S&scope=...
for clients presenting basic auth U:P with an ES256 JWT granting every
requested action (header `kid` = the libtrust key id the registry looks
up in the bundle). Wrong or missing credentials: 401. Each grant is
printed as `TOKEN scope=... account=...` to stdout (the test log).
"""
import argparse
import base64
import datetime
import hashlib
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def libtrust_kid(pub):
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    s = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--cert-file", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--issuer", default="test-issuer")
    a = ap.parse_args()

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registry-token-test")])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=10))
            .sign(key, hashes.SHA256()))
    with open(a.cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    kid = libtrust_kid(key.public_key())
    want = "Basic " + base64.b64encode(f"{a.user}:{a.password}".encode()).decode()

    class H(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            pass

        def do_GET(self):
            u = urlparse(self.path)
            if u.path != "/token":
                self.send_response(404)
                self.end_headers()
                return
            if self.headers.get("Authorization") != want:
                print("TOKEN refused (bad credentials)", flush=True)
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="token"')
                self.end_headers()
                return
            q = parse_qs(u.query)
            access = []
            for sc in q.get("scope", []):
                for one in sc.split(" "):
                    parts = one.split(":")
                    if len(parts) >= 3:
                        access.append({"type": parts[0], "name": ":".join(parts[1:-1]),
                                       "actions": parts[-1].split(",")})
            t = int(time.time())
            claims = {"iss": a.issuer, "sub": a.user, "aud": q.get("service", [""])[0],
                      "exp": t + 300, "nbf": t - 10, "iat": t, "jti": os.urandom(8).hex(),
                      "access": access}
            hdr = {"typ": "JWT", "alg": "ES256", "kid": kid}
            signing = b64url(json.dumps(hdr).encode()) + "." + b64url(json.dumps(claims).encode())
            der = key.sign(signing.encode(), ec.ECDSA(hashes.SHA256()))
            r, s = decode_dss_signature(der)
            tok = signing + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
            print(f"TOKEN scope={' '.join(q.get('scope', []))} account={a.user}", flush=True)
            body = json.dumps({"token": tok, "access_token": tok, "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", a.port), H)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
