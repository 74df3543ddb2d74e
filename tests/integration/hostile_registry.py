#!/usr/bin/env python3
"""A hostile Docker registry for tests: names and digests that must never
reach a URL (standard library only).

  hostile_registry.py --port 0 --port-file F [--realm URL] [--token-bytes N]

Catalog: "../../v2", "a?b", "x y", "-flag", "UPPER", a 300-character name,
and four real-looking repositories:
  ok/repo       tag v1 -> an old image (deletable)
  bad/tags      tags v1 (old image) plus "../x", "-flag", "x y", "a?b" and a
                300-character tag: the repository must be left untouched
  bad/config    tag v1 -> a manifest whose config digest is "sha256:../../x"
  bad/header    tag v1 -> Docker-Content-Digest "sha256:../../../v2/x"
A second catalog page is announced by a Link to another host (ignored).
Every request is printed as `REQ METHOD RAW-PATH` to stdout (the test log);
DELETE answers 202.

--realm URL: a request without "Authorization: Bearer" is answered 401
with `WWW-Authenticate: Bearer realm="URL",service="hostile"`; one with a
bearer token is printed as `BEARER len=N` (the token's length) and served.
`--realm self` names this server's own /token.
--token-bytes N: GET /token... is a token endpoint answering {"token": N
bytes}, printed as `TOKENREQ auth=<the Authorization header or none>`.
"""
import argparse
import hashlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LONG = "a" * 300
CONFIG = json.dumps({"created": "2020-01-01T00:00:00Z", "architecture": "amd64", "os": "linux"}).encode()
CONFIG_D = "sha256:" + hashlib.sha256(CONFIG).hexdigest()


def manifest(config_digest):
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": len(CONFIG)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": "sha256:" + "1" * 64, "size": 1000}],
    }).encode()


GOOD = manifest(CONFIG_D)
GOOD_D = "sha256:" + hashlib.sha256(GOOD).hexdigest()
BADCFG = manifest("sha256:../../x")
BADCFG_D = "sha256:" + hashlib.sha256(BADCFG).hexdigest()

CATALOG = ["../../v2", "a?b", "x y", "-flag", "UPPER", LONG, "ok/repo", "bad/tags", "bad/config", "bad/header"]
TAGS = {
    "ok/repo": ["v1"],
    "bad/tags": ["v1", "../x", "-flag", "x y", "a?b", LONG],
    "bad/config": ["v1"],
    "bad/header": ["v1"],
}


LOCK = threading.Lock()


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, code, body=b"", ctype="application/json", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def say(self, line):
        with LOCK:  # one whole line per request, whatever the threads
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def route(self):
        self.say("REQ %s %s" % (self.command, self.path))
        p = self.path
        auth = self.headers.get("Authorization")
        if ARGS.token_bytes and p.startswith("/token"):
            self.say("TOKENREQ auth=%s" % (auth or "none"))
            return self.send(200, json.dumps({"token": "t" * ARGS.token_bytes}).encode())
        if ARGS.realm:
            if not auth or not auth.startswith("Bearer "):
                return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', headers=[
                    ("WWW-Authenticate", 'Bearer realm="%s",service="hostile"' % ARGS.realm)])
            self.say("BEARER len=%d" % (len(auth) - len("Bearer ")))
        if p == "/v2/":
            return self.send(200, b"{}")
        if p.startswith("/v2/_catalog"):
            return self.send(200, json.dumps({"repositories": CATALOG}).encode(),
                             headers=[("Link", '<http://evil.example:1/v2/_catalog?last=x&n=100>; rel="next"')])
        for repo, tags in TAGS.items():
            base = "/v2/" + repo + "/"
            if not p.startswith(base):
                continue
            rest = p[len(base):]
            if rest == "tags/list":
                return self.send(200, json.dumps({"name": repo, "tags": tags}).encode())
            if rest.startswith("manifests/") and self.command == "DELETE":
                return self.send(202)
            if rest == "manifests/v1" or rest.startswith("manifests/sha256:"):
                body, dig = (BADCFG, BADCFG_D) if repo == "bad/config" else (GOOD, GOOD_D)
                if repo == "bad/header":
                    dig = "sha256:../../../v2/x"
                return self.send(200, body, "application/vnd.oci.image.manifest.v1+json",
                                 [("Docker-Content-Digest", dig)])
            if rest == "blobs/" + CONFIG_D:
                return self.send(200, CONFIG, "application/octet-stream")
        return self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')

    do_GET = do_HEAD = do_DELETE = route


ARGS = None


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--realm")
    ap.add_argument("--token-bytes", type=int, default=0)
    a = ARGS = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), H)
    if a.realm == "self":
        a.realm = "http://127.0.0.1:%d/token" % srv.server_address[1]
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(srv.server_address[1]))
        os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
