#!/usr/bin/env python3
"""Self-test of the fakes: start each on random loopback ports, drive every
endpoint, stop them by PID. Exit 0 when all checks pass, 1 otherwise.

    python3 tests/fakes/selftest.py [-v]

The fakes run under the same interpreter as this script (sys.executable),
so `/usr/bin/python3 selftest.py` tests that interpreter too.
"""

import http.client
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
SCEN = os.path.join(HERE, "scenarios")
VERBOSE = "-v" in sys.argv
AUTH = {"Authorization": "Basic bWV0cmljczptZXRyaWNzLXNlY3JldA=="}  # metrics:metrics-secret
TOKEN = {"PRIVATE-TOKEN": "glpat-test-token"}
failures = []


# -- plumbing ---------------------------------------------------------------

class Fake:
    """A fake started with --port 0 --port-file; stop() sends SIGTERM to its PID."""

    def __init__(self, script, *args):
        self.dir = tempfile.mkdtemp(prefix="fake-selftest.")
        port_file = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "log"), "w+")
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, script), "--port", "0",
                                      "--port-file", port_file] + list(args),
                                     stderr=self.log)
        deadline = time.time() + 10
        while not os.path.exists(port_file):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("%s did not start: %s" % (script, self.logtext()))
            time.sleep(0.05)
        with open(port_file) as f:
            text = f.read()
        check(text.strip().isdigit() and text.endswith("\n"), "port file is digits + newline")
        self.port = int(text)

    def logtext(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(10)
        check(rc == 0, "exit status 0 on SIGTERM (got %s)" % rc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def req(port, method, path, body=None, headers=None, timeout=10):
    """(status, headers dict, body bytes); status None if the connection was dropped."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    except (http.client.RemoteDisconnected, ConnectionResetError):
        return None, {}, b""
    finally:
        conn.close()


def get_json(port, path, headers=None, expect=200):
    status, hdrs, body = req(port, "GET", path, headers=headers)
    check(status == expect, "GET %s -> %s (want %s)" % (path, status, expect))
    return json.loads(body) if body else None, hdrs


def check(cond, what):
    if VERBOSE or not cond:
        print("%s %s" % ("ok  " if cond else "FAIL", what))
    if not cond:
        failures.append(what)
    return cond


def walk_nexus(port, path, headers=None):
    """Follow continuationToken; return (items, pages)."""
    items, pages, token = [], 0, None
    while True:
        sep = "&" if "?" in path else "?"
        url = path + ("%scontinuationToken=%s" % (sep, token) if token else "")
        data, _ = get_json(port, url, headers)
        items += data["items"]
        pages += 1
        token = data["continuationToken"]
        if not token or pages > 1000:
            return items, pages


def walk_gitlab(port, path, headers):
    items, page = [], "1"
    while page:
        sep = "&" if "?" in path else "?"
        data, hdrs = get_json(port, "%s%spage=%s" % (path, sep, page), headers)
        items += data
        page = hdrs.get("X-Next-Page", "")
    return items


# -- remote-write encoding, for feeding the receiver -------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_bytes(field, data):
    return varint(field << 3 | 2) + varint(len(data)) + data


def write_request(series, metadata=()):
    out = b""
    for labels, samples in series:
        ts = b"".join(pb_bytes(1, pb_bytes(1, k.encode()) + pb_bytes(2, v.encode()))
                      for k, v in labels)
        for value, stamp in samples:
            ts += pb_bytes(2, varint(1 << 3 | 1) + struct.pack("<d", value) +
                           varint(2 << 3 | 0) + varint(stamp & (2**64 - 1)))
        out += pb_bytes(1, ts)
    for mtype, name, help_text in metadata:
        out += pb_bytes(3, varint(1 << 3) + varint(mtype) + pb_bytes(2, name.encode()) +
                        pb_bytes(4, help_text.encode()))
    return out


def snappy_literal(data):
    """Valid snappy block made of literals only (enough to feed a decoder)."""
    out = bytearray(varint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2]) + n.to_bytes(2, "little")
        out += chunk
    return bytes(out)


# -- tests ------------------------------------------------------------------

def test_nexus_healthy():
    with open(os.path.join(SCEN, "healthy.json")) as f:
        healthy = json.load(f)
    nx = Fake("nexus_fake.py", "--scenario", os.path.join(SCEN, "healthy.json"))
    p = nx.port
    try:
        st, h, body = req(p, "GET", "/service/rest/v1/status")
        check(st == 401 and h.get("WWW-Authenticate") ==
              'BASIC realm="Sonatype Nexus Repository Manager"', "401 + realm without auth")
        st, _, _ = req(p, "GET", "/service/rest/v1/status",
                       headers={"Authorization": "Basic bWV0cmljczp3cm9uZw=="})
        check(st == 401, "401 with a wrong password")
        st, _, body = req(p, "GET", "/service/rest/v1/status", headers=AUTH)
        check(st == 200 and body == b"", "status 200, empty body")
        st, _, _ = req(p, "GET", "/service/rest/v1/status/writable", headers=AUTH)
        check(st == 200, "writable 200")

        st, _, _ = req(p, "GET", "/service/metrics/prometheus")
        check(st == 401, "metrics 401 without auth")
        st, h, body = req(p, "GET", "/service/metrics/prometheus", headers=AUTH)
        check(st == 200 and h.get("Content-Type") == "text/plain; version=0.0.4; charset=utf-8" and
              b'jvm_memory_bytes_used{area="heap",} 4.38124544E8\n' in body and
              b"# TYPE nexus_request_duration_seconds histogram\n" in body, "default prometheus metrics")
        req(p, "POST", "/__control/scenario?merge=1", json.dumps({"prometheus_metrics": "x 1\n"}))
        st, _, body = req(p, "GET", "/service/metrics/prometheus", headers=AUTH)
        check(st == 200 and body == b"x 1\n", "scenario prometheus_metrics")
        req(p, "POST", "/__control/scenario", json.dumps(healthy))

        checks, _ = get_json(p, "/service/rest/v1/status/check", AUTH)
        check(len(checks) == 11 and all(c["healthy"] for c in checks.values()), "11 healthy checks")
        check(all(list(c) == ["healthy", "message", "error", "details", "time", "duration",
                              "timestamp"] for c in checks.values()), "check fields")

        st, _, raw = req(p, "GET", "/service/rest/v1/blobstores", headers=AUTH)
        check(raw.startswith(b'[ {\n  "softQuota" : null,\n  "name" : "default"'), "Jackson layout")
        stores = json.loads(raw)
        check([list(b) for b in stores] == [["softQuota", "name", "type", "unavailable", "blobCount",
                                             "totalSizeInBytes", "availableSpaceInBytes"]] * 2,
              "blob store fields")
        q, _ = get_json(p, "/service/rest/v1/blobstores/docker-store/quota-status", AUTH)
        check(q["isViolation"] is False and q["blobStoreName"] == "docker-store", "quota ok")
        get_json(p, "/service/rest/v1/blobstores/nope/quota-status", AUTH, expect=404)

        ports, _ = get_json(p, "/__control/ports")
        check(ports["main"] == p and len(ports["docker"]) == 2, "control ports")
        repos, _ = get_json(p, "/service/rest/v1/repositories", AUTH)
        check(len(repos) == 8 and all(list(r) == ["name", "format", "type", "url", "attributes"]
                                      for r in repos), "repositories shape")
        settings, _ = get_json(p, "/service/rest/v1/repositorySettings", AUTH)
        by = {s["name"]: s for s in settings}
        check(by["docker-hosted"]["docker"]["httpPort"] == ports["docker"][0] and
              by["docker-proxy"]["docker"]["httpPort"] == ports["docker"][1], "$DOCKERn ports")
        check(by["docker-group"]["docker"]["httpPort"] is None, "null docker port")
        check(all(("writePolicy" in s["storage"]) == (s["type"] == "hosted") for s in settings),
              "writePolicy on hosted only")
        check(by["maven-public"]["group"]["memberNames"] == ["maven-releases", "maven-central"],
              "group members")
        check(by["maven-releases"]["url"] == "http://127.0.0.1:%d/repository/maven-releases" % p,
              "repository url")

        tasks, pages = walk_nexus(p, "/service/rest/v1/tasks", AUTH)
        check(pages == 2 and [t["lastRunResult"] for t in tasks] == ["OK", "FAILED", None],
              "tasks paginated")
        comps, pages = walk_nexus(p, "/service/rest/v1/components?repository=docker-hosted", AUTH)
        check(len(comps) == 5 and pages == 3, "components paginated (5 in 3 pages)")
        check(set(comps[0]["assets"][0]) >= {"downloadUrl", "path", "id", "repository", "format",
                                              "checksum", "contentType", "lastModified",
                                              "lastDownloaded", "uploader", "uploaderIp",
                                              "fileSize", "blobCreated"}, "asset fields")
        get_json(p, "/service/rest/v1/components?repository=docker-hosted&continuationToken=zz",
                 AUTH, expect=400)
        get_json(p, "/service/rest/v1/components", AUTH, expect=400)
        get_json(p, "/service/rest/v1/components?repository=nope", AUTH, expect=404)

        cert, _ = get_json(p, "/service/rest/v1/security/ssl?host=nexus.example.org&port=443", AUTH)
        days = (cert["expiresOn"] / 1000 - time.time()) / 86400
        check(isinstance(cert["expiresOn"], int) and 89 < days < 91, "ssl expiresOn epoch ms")
        get_json(p, "/service/rest/v1/security/ssl?host=x.example&port=1", AUTH, expect=400)

        check(req(p, "GET", "/repository/maven-releases/")[0] == 200, "repository probe 200")
        check(req(p, "GET", "/repository/nope/")[0] == 404, "repository probe 404")
        for dp in ports["docker"]:
            st, h, _ = req(dp, "GET", "/v2/")
            check(st == 401 and h.get("Docker-Distribution-Api-Version") == "registry/2.0" and
                  "Sonatype Nexus" in h.get("WWW-Authenticate", ""), "docker /v2/ 401")

        # GitLab
        st, _, _ = req(p, "GET", "/api/v4/projects")
        check(st == 401, "gitlab 401 without token")
        data, h = get_json(p, "/api/v4/projects?per_page=2&page=1", TOKEN)
        check(len(data) == 2 and h["X-Next-Page"] == "2" and h["X-Total-Pages"] == "2" and
              'rel="next"' in h["Link"], "gitlab pagination headers")
        projects = walk_gitlab(p, "/api/v4/projects?per_page=1", TOKEN)
        check([x["id"] for x in projects] == [101, 102, 103], "gitlab walk")
        branches = walk_gitlab(p, "/api/v4/projects/team%2Fapp/repository/branches?per_page=2", TOKEN)
        check([b["name"] for b in branches] == ["main", "develop", "feature-login"], "branches")
        tags, _ = get_json(p, "/api/v4/projects/101/repository/tags", TOKEN)
        check([t["name"] for t in tags] == ["v1.0.0", "v1.1.0"], "tags")
        get_json(p, "/api/v4/projects/999/repository/tags", TOKEN, expect=404)

        # Faults
        faults = {"faults": {
            "/service/rest/v1/blobstores": {"status": 500},
            "/service/rest/v1/repositories": {"body": "<html>oops</html>", "content_type": "text/html"},
            "/service/rest/v1/tasks": {"delay": 1.0},
            "/service/rest/v1/status/check": {"malformed": True},
            "/service/rest/v1/repositorySettings": {"fail_first_n": 2},
            "/repository/*": {"status": 502},
            "/service/rest/v1/status": {"close": True}}}
        st, _, _ = req(p, "POST", "/__control/scenario?merge=1", json.dumps(faults))
        check(st == 200, "merge faults")
        check(req(p, "GET", "/service/rest/v1/blobstores", headers=AUTH)[0] == 500, "fault 500")
        st, h, body = req(p, "GET", "/service/rest/v1/repositories", headers=AUTH)
        check(st == 200 and body == b"<html>oops</html>" and h["Content-Type"] == "text/html",
              "fault html body")
        t0 = time.time()
        check(req(p, "GET", "/service/rest/v1/tasks", headers=AUTH)[0] == 200 and
              time.time() - t0 >= 1.0, "fault delay")
        body = req(p, "GET", "/service/rest/v1/status/check", headers=AUTH)[2]
        try:
            json.loads(body)
            check(False, "fault malformed")
        except ValueError:
            check(True, "fault malformed")
        seq = [req(p, "GET", "/service/rest/v1/repositorySettings", headers=AUTH)[0] for _ in range(3)]
        check(seq == [500, 500, 200], "fail_first_n 2 -> %s" % seq)
        check(req(p, "GET", "/repository/raw-hosted/")[0] == 502, "fault pattern")
        check(req(p, "GET", "/service/rest/v1/status", headers=AUTH)[0] is None, "fault close")
        check(req(p, "GET", "/service/rest/v1/blobstores")[0] == 401, "auth before faults")
        req(p, "POST", "/__control/reset")
        seq = [req(p, "GET", "/service/rest/v1/repositorySettings", headers=AUTH)[0] for _ in range(3)]
        check(seq == [500, 500, 200], "reset restarts fault counters")

        # Recorded requests
        log, _ = get_json(p, "/__control/requests")
        check(len(log) == 3 and log[0]["has_auth"] and log[0]["user"] == "metrics" and
              log[0]["path"] == "/service/rest/v1/repositorySettings", "requests recorded")
        req(p, "DELETE", "/__control/requests")
        check(get_json(p, "/__control/requests")[0] == [], "requests cleared")

        # Flip to unhealthy at runtime; docker ports must not move
        with open(os.path.join(SCEN, "unhealthy.json"), "rb") as f:
            st, _, body = req(p, "POST", "/__control/scenario", f.read())
        with open(os.path.join(SCEN, "unhealthy.json")) as f:
            sick = json.load(f)
        check(st == 200 and json.loads(body)["docker"] == ports["docker"], "flip keeps docker ports")
        check(req(p, "GET", "/service/rest/v1/status", headers=AUTH)[0] == 503, "status 503")
        check(req(p, "GET", "/service/rest/v1/status/writable", headers=AUTH)[0] == 503, "writable 503")
        checks, _ = get_json(p, "/service/rest/v1/status/check", AUTH)
        for name in ("Blob Stores Quota", "Blob Stores Ready"):
            check(not checks[name]["healthy"] and
                  checks[name]["message"] == sick["checks"][name]["message"],
                  "escaped message round-trips: %s" % name)
        q, _ = get_json(p, "/service/rest/v1/blobstores/docker-store/quota-status", AUTH)
        check(q["isViolation"] is True, "quota violated")
        stores, _ = get_json(p, "/service/rest/v1/blobstores", AUTH)
        check(stores[0]["unavailable"] is True, "blob store unavailable")
        check(req(ports["docker"][0], "GET", "/v2/")[0] == 503, "docker listener flipped to 503")
        check(req(ports["docker"][1], "GET", "/v2/")[0] is None, "docker listener drops")
        check(req(p, "GET", "/repository/maven-releases/")[0] == 503, "offline repo probe 503")
        cert, _ = get_json(p, "/service/rest/v1/security/ssl?host=nexus.example.org", AUTH)
        check(cert["expiresOn"] < time.time() * 1000, "expired certificate")
        check(get_json(p, "/__control/scenario")[0] == sick, "control scenario GET")
        st, _, _ = req(p, "POST", "/__control/scenario", "{not json")
        check(st == 400, "bad scenario rejected")
        check(healthy["auth"] == sick["auth"], "scenarios share credentials")
    finally:
        nx.stop()


def test_nexus_large():
    nx = Fake("nexus_fake.py", "--scenario", os.path.join(SCEN, "large.json"))
    p = nx.port
    try:
        repos, _ = get_json(p, "/service/rest/v1/repositories")
        check(len(repos) == 2001, "large: 2001 repositories")
        comps, pages = walk_nexus(p, "/service/rest/v1/components?repository=maven-big")
        check(len(comps) == 1050 and pages == 11, "large: 1050 components in 11 pages")
        check(len({c["id"] for c in comps}) == 1050, "large: component ids unique")
        tasks, pages = walk_nexus(p, "/service/rest/v1/tasks")
        check(len(tasks) == 250 and pages == 3, "large: 250 tasks in 3 pages")
        projects = walk_gitlab(p, "/api/v4/projects?per_page=100", TOKEN)
        check(len(projects) == 450, "large: 450 gitlab projects")
    finally:
        nx.stop()
    nx = Fake("nexus_fake.py", "--generate-repos", "120")
    try:
        repos, _ = get_json(nx.port, "/service/rest/v1/repositories")
        check(len(repos) == 120, "--generate-repos 120")
    finally:
        nx.stop()


def test_gitlab_fake():
    gl = Fake("gitlab_fake.py", "--scenario", os.path.join(SCEN, "healthy.json"))
    try:
        data, _ = get_json(gl.port, "/api/v4/projects", TOKEN)
        check(len(data) == 3, "gitlab_fake projects")
    finally:
        gl.stop()


def test_additions():
    """gitlab link_only paging, null docker headers, tls_fake."""
    nx = Fake("nexus_fake.py", "--scenario", os.path.join(SCEN, "healthy.json"))
    try:
        p = nx.port
        with open(os.path.join(SCEN, "healthy.json")) as f:
            scen = json.load(f)
        scen["gitlab"]["link_only"] = True
        scen["docker_listeners"][1]["headers"] = {"Docker-Distribution-Api-Version": None}
        st, _, _ = req(p, "POST", "/__control/scenario", json.dumps(scen))
        check(st == 200, "scenario with link_only accepted")
        st, h, _ = req(p, "GET", "/api/v4/projects?per_page=2", headers=TOKEN)
        check(st == 200 and "X-Next-Page" not in h and 'rel="next"' in h.get("Link", ""),
              "link_only: Link without X-Next-Page")
        ports = get_json(p, "/__control/ports")[0]["docker"]
        st, h, _ = req(ports[1], "GET", "/v2/")
        check(st == 401 and "Docker-Distribution-Api-Version" not in h, "null header removed")
    finally:
        nx.stop()
    if not shutil.which("openssl"):
        print("selftest: no openssl CLI, tls_fake not tested")
        return
    import ssl
    d = tempfile.mkdtemp(prefix="tls-selftest.")
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", d + "/k.pem",
                        "-out", d + "/c.pem", "-subj", "/CN=localhost", "-days", "1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tls = Fake("tls_fake.py", "--cert", d + "/c.pem", "--key", d + "/k.pem")
        try:
            ctx = ssl.create_default_context(cafile=d + "/c.pem")
            conn = http.client.HTTPSConnection("localhost", tls.port, context=ctx, timeout=10)
            conn.request("GET", "/v2/")
            r = conn.getresponse()
            check(r.status == 401 and r.getheader("Docker-Distribution-Api-Version") == "registry/2.0",
                  "tls_fake answers /v2/ like a docker connector")
            conn.close()
            der = ssl.get_server_certificate(("127.0.0.1", tls.port))
            check("BEGIN CERTIFICATE" in der, "tls_fake serves its certificate")
        finally:
            tls.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_receiver():
    rw = Fake("receiver_fake.py")
    p = rw.port
    try:
        body = write_request(
            [([("__name__", "nexus_up"), ("instance", "n1")], [(1.0, 1700000000000)]),
             ([("__name__", "nexus_blob_bytes"), ("store", "default")], [(float("nan"), -5)])],
            [(2, "nexus_up", "Nexus answers")])
        hdrs = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                "X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "nexus-shipper/test",
                "Authorization": "Bearer abc", "X-Scope-OrgID": "team-a"}
        st, _, resp = req(p, "POST", "/api/v1/write", snappy_literal(body), hdrs)
        check(st == 204 and resp == b"", "remote-write 204")
        log, _ = get_json(p, "/__control/requests")
        r = log[0]
        check(all(r["headers"].get(k) == v for k, v in hdrs.items()), "headers recorded")
        check(r["body_length"] == len(snappy_literal(body)) and r["status"] == 204, "length/status")
        check(r.get("timeseries") and r["timeseries"][0]["labels"] ==
              {"__name__": "nexus_up", "instance": "n1"} and
              r["timeseries"][0]["samples"] == [[1.0, 1700000000000]] and
              r["timeseries"][1]["samples"] == [["NaN", -5]], "decoded series")
        check(r["metadata"] == [{"type": "GAUGE", "metric_family_name": "nexus_up",
                                 "help": "Nexus answers", "unit": ""}], "decoded metadata")
        raw = req(p, "GET", "/__control/requests/0/body")[2]
        check(raw == snappy_literal(body), "raw body endpoint")

        req(p, "POST", "/__control", json.dumps({"sequence": [503, 429, 204], "retry_after": 2,
                                                 "body": "busy"}))
        answers = []
        for _ in range(4):
            st, h, resp = req(p, "POST", "/api/v1/write", snappy_literal(body), hdrs)
            answers.append((st, h.get("Retry-After"), resp))
        check(answers == [(503, "2", b"busy"), (429, "2", b"busy"), (204, None, b""),
                          (204, None, b"")], "sequence + Retry-After: %s" % answers)
        samples, _ = get_json(p, "/__control/samples?name=nexus_up")
        check(len(samples) == 3 and samples[0]["value"] == 1.0, "samples of 2xx writes only")

        req(p, "POST", "/__control", json.dumps({"status": 400, "body": "out of bounds"}))
        st, _, resp = req(p, "POST", "/api/v1/write", b"garbage", {"Content-Encoding": "snappy"})
        check(st == 400 and resp == b"out of bounds", "fixed 400 with body")
        check("decode_error" in get_json(p, "/__control/requests")[0][-1], "garbage -> decode_error")
        req(p, "POST", "/__control", json.dumps({"sequence": "0,204", "delay": 0.3}))
        check(req(p, "POST", "/api/v1/write", b"")[0] is None, "status 0 drops the connection")
        t0 = time.time()
        check(req(p, "POST", "/api/v1/write", b"")[0] == 204 and time.time() - t0 >= 0.3, "delay")
        check(req(p, "POST", "/__control", '{"nope": 1}')[0] == 400, "unknown config key")
        req(p, "POST", "/__control", "{}")

        # Pushgateway
        text = '# TYPE skopeo_copy_total counter\nskopeo_copy_total{result="ok"} 3\n'
        check(req(p, "PUT", "/metrics/job/skopeo/instance/h1", text)[0] == 200, "push PUT 200")
        check(req(p, "POST", "/metrics/job@base64/cmVnaXN0cnkvY2xlYW51cA/path@base64/L3Zhci9saWI",
                  text)[0] == 200, "push POST base64")
        check(req(p, "DELETE", "/metrics/job/skopeo/instance/h1")[0] == 202, "push DELETE 202")
        check(req(p, "PUT", "/metrics/job/a/b", text)[0] == 400, "bad grouping 400")
        log, _ = get_json(p, "/__control/requests?since=1")
        check(log[0]["index"] == 1, "requests?since=")
        pushes = [x for x in log if x["kind"] == "pushgateway"]
        check(pushes[0]["job"] == "skopeo" and pushes[0]["grouping"] == {"instance": "h1"} and
              pushes[0]["body"] == text, "push recorded")
        check(pushes[1]["job"] == "registry/cleanup" and pushes[1]["grouping"] == {"path": "/var/lib"},
              "base64 grouping decoded")
        check(req(p, "POST", "/wrong")[0] == 404, "unknown path 404")
        check(req(p, "GET", "/-/healthy")[0] == 200, "healthy endpoint")
    finally:
        rw.stop()

    rw = Fake("receiver_fake.py", "--sequence", "503,204", "--retry-after", "1", "--body", "x")
    try:
        st, h, _ = req(rw.port, "POST", "/api/v1/write", b"")
        st2 = req(rw.port, "POST", "/api/v1/write", b"")[0]
        check(st == 503 and h.get("Retry-After") == "1" and st2 == 204, "CLI --sequence/--retry-after")
    finally:
        rw.stop()


def main():
    for test in (test_nexus_healthy, test_nexus_large, test_gitlab_fake, test_additions,
                 test_receiver):
        try:
            test()
        except Exception:  # report and carry on with the next group
            failures.append("%s raised" % test.__name__)
            traceback.print_exc()
    print("selftest (%s): %s" % (sys.executable,
                                 "OK" if not failures else "%d FAILED" % len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
