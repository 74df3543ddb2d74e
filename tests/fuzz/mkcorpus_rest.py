#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_nexus and fuzz_gitlab from the fakes.

Starts tests/fakes/nexus_fake.py with each scenario of tests/fakes/scenarios,
asks it what each collector would ask (the same paths and queries, paging
included), and writes one seed per collector and scenario in the format of
tests/fuzz/rest_fuzz.h: selector byte, flags byte, then the answers as
"STATUS KEY[\\tHeader: value]...\\nBODY" records separated by 0x1e.

    python3 tests/fuzz/mkcorpus_rest.py [OUTDIR]   (default tests/fuzz/corpus)

The seeds are committed; rerun this only when the fakes' answers change.
Standard library only."""
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
SCENARIOS = os.path.join(TOP, "tests", "fakes", "scenarios")
KEEP_HEADERS = ("content-type", "x-next-page", "link", "retry-after",
                "docker-distribution-api-version")
MAX_SEED = 48 * 1024  # bytes per seed: bigger seeds slow every mutation down

# rest_fuzz.h flags
F_PROBE_REPOS, F_PROBE_DOCKER, F_EXPECTED, F_PROJECTS = 0x01, 0x02, 0x04, 0x08
F_HTTPS = 0x80
# fuzz_nexus.c selectors
SEL = {name: i for i, name in enumerate([
    "nexus_status", "nexus_health", "nexus_blobstores", "nexus_repositories", "nexus_tasks",
    "nexus_components", "nexus_docker_ports", "nexus_certificates", "nexus_metrics"])}


def esc(s):
    """The collectors' url_escape: everything but [A-Za-z0-9._~-] percent-encoded."""
    return urllib.parse.quote(s, safe="-_.~")


class Fake:
    def __init__(self, scenario):
        self.tmp = tempfile.mkdtemp(prefix="mkcorpus-")
        portfile = os.path.join(self.tmp, "port")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(TOP, "tests", "fakes", "nexus_fake.py"),
             "--scenario", scenario, "--port-file", portfile],
            stderr=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(portfile):
                break
            time.sleep(0.05)
        self.port = int(open(portfile).read())
        with open(scenario) as f:
            self.scen = json.load(f)
        auth = self.scen.get("auth")
        self.auth = None
        if auth:
            cred = "%s:%s" % (auth["username"], auth["password"])
            self.auth = "Basic " + base64.b64encode(cred.encode()).decode()
        self.token = (self.scen.get("gitlab") or {}).get("token")
        self.records = {}

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()

    def get(self, key, port=None):
        """GET key (path + query) and remember the answer under key."""
        if key in self.records:
            return self.records[key]
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (port or self.port, key))
        if self.auth and key.startswith("/service/"):
            req.add_header("Authorization", self.auth)
        if self.token and key.startswith("/api/v4/"):
            req.add_header("PRIVATE-TOKEN", self.token)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, headers, body = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, headers, body = e.code, e.headers, e.read()
        kept = ["%s: %s" % (k, v) for k, v in headers.items() if k.lower() in KEEP_HEADERS]
        rec = (status, kept, body)
        self.records[key] = rec
        return rec

    def json(self, key):
        status, _, body = self.get(key)
        return json.loads(body) if status == 200 and body else None

    def nexus_pages(self, path):
        token = None
        for _ in range(50):
            key = path if token is None else "%s%scontinuationToken=%s" % (
                path, "&" if "?" in path else "?", esc(token))
            page = self.json(key)
            if not page or not page.get("items") or not page.get("continuationToken"):
                return
            token = page["continuationToken"]

    def gitlab_pages(self, path):
        page = 1
        for _ in range(20):
            key = "/api/v4%s%sper_page=100&page=%d" % (path, "&" if "?" in path else "?", page)
            status, headers, body = self.get(key)
            nxt = [h.split(":", 1)[1].strip() for h in headers
                   if h.lower().startswith("x-next-page:")]
            if status != 200 or not nxt or not nxt[0]:
                return
            page = int(nxt[0])


def record_bytes(key, rec):
    status, headers, body = rec
    head = "\t".join(["%d %s" % (status, key)] + headers)
    return head.encode() + b"\n" + body


def seed(sel, flags, fake, keys):
    out = bytes([sel, flags])
    first = True
    for k in keys:
        r = record_bytes(k, fake.records[k])
        if not first and len(out) + len(r) + 1 > MAX_SEED:
            break
        out += (b"" if first else b"\x1e") + r
        first = False
    return out


def collect(fake):
    """Asks what the collectors ask; returns {collector: (flags, [keys])}."""
    rs = "/service/rest/v1"
    before = set()

    def since():
        nonlocal before
        new = [k for k in fake.records if k not in before]
        before = set(fake.records)
        return new

    seeds = {}
    fake.get(rs + "/status")
    fake.get(rs + "/status/writable")
    seeds["nexus_status"] = (0, since())
    fake.get(rs + "/status/check")
    seeds["nexus_health"] = (0, since())
    for b in fake.json(rs + "/blobstores") or []:
        if b.get("softQuota"):
            fake.get("%s/blobstores/%s/quota-status" % (rs, esc(b["name"])))
    seeds["nexus_blobstores"] = (0, since())
    settings = fake.json(rs + "/repositorySettings") or []
    settings_keys = since()
    for r in settings[:20]:
        url = r.get("url") or ""
        path = urllib.parse.urlsplit(url).path if url else "/repository/%s" % esc(r["name"])
        fake.get(path.rstrip("/") + "/")
    seeds["nexus_repositories"] = (F_PROBE_REPOS | F_EXPECTED, settings_keys + since())
    ports = json.loads(fake.get("/__control/ports")[2]).get("docker") or []
    fake.records.pop("/__control/ports")
    before = set(fake.records)
    if ports:
        fake.get("/v2/", port=ports[0])
    seeds["nexus_docker_ports"] = (F_PROBE_DOCKER, settings_keys + since())
    fake.nexus_pages(rs + "/tasks")
    seeds["nexus_tasks"] = (0, since())
    repos = fake.json(rs + "/repositories") or []
    repos_keys = since()
    for r in repos[:20]:
        if r.get("type") != "group":
            fake.nexus_pages("%s/components?repository=%s" % (rs, esc(r["name"])))
    seeds["nexus_components"] = (0, repos_keys + since())
    for hp in ["nexus.example.org:443"] + ["registry.example.org:8443", "static.example.org:443"]:
        h, p = hp.rsplit(":", 1)
        fake.get("%s/security/ssl?host=%s&port=%s" % (rs, esc(h), p))
    seeds["nexus_certificates"] = (F_HTTPS, since())
    fake.get("/service/metrics/prometheus")
    seeds["nexus_metrics"] = (0, since())
    # gitlab_stale_tags: hosted docker components, then GitLab
    gl = []
    for r in repos[:20]:
        if r.get("format") == "docker" and r.get("type") == "hosted":
            k = "%s/components?repository=%s" % (rs, esc(r["name"]))
            gl += [x for x in fake.records if x.startswith(k)]
    fake.gitlab_pages("/projects?simple=true")
    every = since()
    for want in ["team/app", "102", "gone/project"]:
        fake.get("/api/v4/projects/%s" % esc(want))
    listed = since()
    ids = [p["id"] for p in fake.json("/api/v4/projects?simple=true&per_page=100&page=1") or []]
    for pid in ids[:10]:
        for kind in ("branches", "tags"):
            fake.gitlab_pages("/projects/%d/repository/%s" % (pid, kind))
    refs = since()
    seeds["gitlab_all"] = (0, repos_keys + gl + every + refs)
    seeds["gitlab_listed"] = (F_PROJECTS, repos_keys + gl + listed + refs)
    return seeds


def rec(status, key, body, *headers):
    head = "\t".join(["%d %s" % (status, key)] + list(headers))
    return head.encode() + b"\n" + (body.encode() if isinstance(body, str) else body)


def handmade():
    """Seeds no scenario gives: hostile servers. {path: bytes}."""
    rs = "/service/rest/v1"
    ct = "Content-Type: application/json"
    comp = '{"items":[{"name":"team/app","version":"%s","assets":[{"fileSize":1}]}],' \
           '"continuationToken":"%s"}'
    repos = '[{"name":"docker-hosted","format":"docker","type":"hosted"}]'
    loop = [rec(200, rs + "/repositories", repos, ct),
            rec(200, rs + "/components?repository=docker-hosted", comp % ("a", "A"), ct),
            rec(200, rs + "/components?repository=docker-hosted&continuationToken=A",
                comp % ("b", "B"), ct),
            rec(200, rs + "/components?repository=docker-hosted&continuationToken=B",
                comp % ("c", "A"), ct)]
    out = {
        # continuation tokens in a cycle A -> B -> A (no page limit)
        "nexus/hand-components-token-cycle":
            bytes([SEL["nexus_components"], 0x40]) + b"\x1e".join(loop),
        "gitlab/hand-components-token-cycle": bytes([ord("g"), 0]) + b"\x1e".join(loop),
        # 503 with Retry-After, then HTML instead of JSON
        "nexus/hand-retry-after":
            bytes([SEL["nexus_blobstores"], 0]) + rec(
                503, rs + "/blobstores", "busy", "Retry-After: 120", "Content-Type: text/plain"),
        "nexus/hand-retry-after-date":
            bytes([SEL["nexus_tasks"], 0]) + rec(
                503, rs + "/tasks", "", "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT"),
        "nexus/hand-html":
            bytes([SEL["nexus_health"], 0]) + rec(
                200, rs + "/status/check", "<html><body>Nexus is starting</body></html>",
                "Content-Type: text/html"),
        "nexus/hand-status-401":
            bytes([SEL["nexus_status"], 0]) + rec(401, rs + "/status", "",
                                                  "WWW-Authenticate: BASIC realm=\"x\""),
        "nexus/hand-no-answer":
            bytes([SEL["nexus_repositories"], 0x01]) + rec(0, rs + "/repositorySettings", ""),
        # GitLab paging by Link only, pages that go backwards
        "gitlab/hand-link-paging":
            bytes([ord("g"), 0]) + b"\x1e".join([
                rec(200, rs + "/repositories", repos, ct),
                rec(200, rs + "/components?repository=docker-hosted",
                    '{"items":[{"name":"team/app","version":"main-1a2b3c4"}],'
                    '"continuationToken":null}', ct),
                rec(200, "/api/v4/projects?simple=true&per_page=100&page=1",
                    '[{"id":1,"path_with_namespace":"team/app"}]', ct,
                    'Link: <http://gitlab.example.org/api/v4/projects?page=2&per_page=100>; '
                    'rel="next", <http://x/?page=1>; rel="first"'),
                rec(200, "/api/v4/projects?simple=true&per_page=100&page=2",
                    '[{"id":2,"path_with_namespace":"team/web"}]', ct, "X-Next-Page: 1"),
                rec(200, "/api/v4/projects/1/repository/branches",
                    '[{"name":"main"},{"name":"Feature/Ü-x"}]', ct, "X-Next-Page: "),
                rec(200, "/api/v4/projects/1/repository/tags", '[{"name":"v1.0.0"}]', ct)]),
    }
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
    for sub in ("nexus", "gitlab"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    for name, data in handmade().items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    for fn in sorted(os.listdir(SCENARIOS)):
        if not fn.endswith(".json"):
            continue
        scen = fn[:-5]
        fake = Fake(os.path.join(SCENARIOS, fn))
        try:
            seeds = collect(fake)
        finally:
            fake.stop()
        for name, (flags, keys) in seeds.items():
            if not keys:
                continue
            if name.startswith("gitlab"):
                path = os.path.join(out, "gitlab", "%s-%s" % (scen, name[7:]))
                data = seed(ord("g"), flags, fake, keys)
            else:
                path = os.path.join(out, "nexus", "%s-%s" % (scen, name[6:]))
                data = seed(SEL[name], flags, fake, keys)
            if len(data) > MAX_SEED:
                continue  # its first answer alone is too big (large.json's listings)
            with open(path, "wb") as f:
                f.write(data)
            print("%s: %d records, %d bytes" % (path, data.count(b"\x1e") + 1, len(data)))


if __name__ == "__main__":
    main()
