#!/usr/bin/env python3
"""Sonatype Nexus Repository 3 (and GitLab API v4) simulator for nexus-shipper tests.

Standard library only; runs with any Python >= 3.8 (tested with 3.11).

    nexus_fake.py --scenario FILE [--host 127.0.0.1] [--port 0] [--port-file PATH]
                  [--generate-repos N]

Answers with the JSON shapes documented in shared/reference/nexus.md, filled
from a JSON scenario file (see README.md in this directory for the format).
The scenario can be replaced at runtime with POST /__control/scenario.

Served paths
  /service/rest/v1/status, /status/writable, /status/check
  /service/rest/v1/blobstores, /blobstores/{name}/quota-status
  /service/rest/v1/repositories, /repositorySettings
  /service/rest/v1/tasks                    (continuationToken pagination)
  /service/rest/v1/components?repository=R  (continuationToken pagination)
  /service/rest/v1/security/ssl?host=H&port=P
  /service/metrics/prometheus               (text format 0.0.4, scenario "prometheus_metrics")
  /repository/<name>/...                    (reachability probes)
  /api/v4/projects, /api/v4/projects/:id[/repository/branches|tags]   (GitLab)
  /__control/...                            (test control, never faulted/authenticated)
Docker connector listeners (scenario "docker_listeners") answer GET /v2/.
"""

import base64
import binascii
import copy
import datetime
import fnmatch
import functools
import hashlib
import json
import os
import re
import sys
import threading
import time
import uuid
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakecommon  # noqa: E402  (needs the path tweak above)

NEXUS_REALM = 'BASIC realm="Sonatype Nexus Repository Manager"'
NEXUS_SERVER = "Nexus/3.68.1-02 (OSS)"

# The checks a stock Nexus 3.6x reports on /v1/status/check.
DEFAULT_CHECKS = [
    "Available CPUs", "Blob Stores Quota", "Blob Stores Ready", "Default Admin Credentials",
    "File Blob Stores Path", "File Descriptors", "Lifecycle Phase", "Read-Only Detector",
    "Scheduler", "Thread Deadlock Detector", "Transactions",
]

MAX_RECORDED_REQUESTS = 10000

# What /service/metrics/prometheus answers without a scenario
# "prometheus_metrics": the shape of Nexus 3's Dropwizard exporter
# (simpleclient: trailing commas in label sets, Java's Double.toString
# values such as 4.38124544E8, counters TYPE'd without their _total), plus
# a histogram and escapes in HELP text and label values.
DEFAULT_PROMETHEUS_METRICS = r"""# HELP jvm_memory_bytes_used Used bytes of a given JVM memory area.
# TYPE jvm_memory_bytes_used gauge
jvm_memory_bytes_used{area="heap",} 4.38124544E8
jvm_memory_bytes_used{area="nonheap",} 2.30918712E8
# HELP jvm_threads_current Current thread count of a JVM
# TYPE jvm_threads_current gauge
jvm_threads_current 187.0
# HELP jvm_info VM version info
# TYPE jvm_info gauge
jvm_info{runtime="OpenJDK Runtime Environment",vendor="Eclipse \"Temurin\"",version="17.0.9+9",home="C:\\nexus\\jdk",} 1.0
# HELP org_eclipse_jetty_webapp_WebAppContext_2xx_responses Generated from Dropwizard metric import (metric=org.eclipse.jetty.webapp.WebAppContext.2xx-responses, type=com.codahale.metrics.Meter)
# TYPE org_eclipse_jetty_webapp_WebAppContext_2xx_responses counter
org_eclipse_jetty_webapp_WebAppContext_2xx_responses_total 15243.0
# HELP org_eclipse_jetty_webapp_WebAppContext_5xx_responses Generated from Dropwizard metric import (metric=org.eclipse.jetty.webapp.WebAppContext.5xx-responses, type=com.codahale.metrics.Meter)
# TYPE org_eclipse_jetty_webapp_WebAppContext_5xx_responses counter
org_eclipse_jetty_webapp_WebAppContext_5xx_responses_total 2.0
# HELP org_eclipse_jetty_webapp_WebAppContext_requests Generated from Dropwizard metric import (metric=org.eclipse.jetty.webapp.WebAppContext.requests, type=com.codahale.metrics.Timer)
# TYPE org_eclipse_jetty_webapp_WebAppContext_requests summary
org_eclipse_jetty_webapp_WebAppContext_requests{quantile="0.5",} 0.0025
org_eclipse_jetty_webapp_WebAppContext_requests{quantile="0.99",} 0.125
org_eclipse_jetty_webapp_WebAppContext_requests_count 15282.0
# HELP nexus_request_duration_seconds Request duration.\nBuckets in seconds; C:\\ paths escaped.
# TYPE nexus_request_duration_seconds histogram
nexus_request_duration_seconds_bucket{le="0.1",} 120.0
nexus_request_duration_seconds_bucket{le="1.0",} 135.0
nexus_request_duration_seconds_bucket{le="+Inf",} 140.0
nexus_request_duration_seconds_sum 42.5
nexus_request_duration_seconds_count 140.0
"""


# ---------------------------------------------------------------------------
# JSON output
# ---------------------------------------------------------------------------

def jackson_json(obj, level=0):
    """Serialise like Jackson's DefaultPrettyPrinter, which Nexus uses.

    Objects put one field per line, indented 2 spaces per enclosing object,
    with " : " between name and value; arrays stay on one line as "[ a, b ]"
    and do not add indentation; empty containers are "{ }" and "[ ]".
    """
    if isinstance(obj, dict):
        if not obj:
            return "{ }"
        pad = "\n" + "  " * (level + 1)
        fields = [json.dumps(str(k), ensure_ascii=False) + " : " + jackson_json(v, level + 1)
                  for k, v in obj.items()]
        return "{" + pad + ("," + pad).join(fields) + "\n" + "  " * level + "}"
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[ ]"
        return "[ " + ", ".join(jackson_json(v, level) for v in obj) + " ]"
    return json.dumps(obj, ensure_ascii=False)


def dump_json(obj, style):
    """Serialise obj in the scenario's json_style: jackson (default), indent, compact."""
    if style == "compact":
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    if style == "indent":
        return json.dumps(obj, ensure_ascii=False, indent=2)
    return jackson_json(obj)


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

def iso_ms(epoch_ms, zulu=True):
    """Epoch ms -> "2023-11-14T22:13:20.000Z" (zulu) or "...000+00:00"."""
    dt = datetime.datetime.fromtimestamp(epoch_ms / 1000.0, tz=datetime.timezone.utc)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03d" % (epoch_ms % 1000)
    return text + ("Z" if zulu else "+00:00")


def deep_merge(base, override):
    """Return base with override merged in; dicts merge recursively, anything else replaces."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key in out and isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def public(obj):
    """Drop fake-only directives (keys starting with "_") from a dict, recursively."""
    if isinstance(obj, dict):
        return {k: public(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, list):
        return [public(v) for v in obj]
    return obj


def stable_id(*parts):
    """Deterministic id that looks like the uuids Nexus uses."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(str(p) for p in parts)))


def nexus_id(repo, *parts):
    """Component/asset id in Nexus 3's style: base64("<repo>:<md5>") without padding."""
    digest = hashlib.md5("/".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return base64.b64encode(("%s:%s" % (repo, digest)).encode("utf-8")).decode("ascii").rstrip("=")


def sha(text, algo="sha1"):
    return hashlib.new(algo, text.encode("utf-8")).hexdigest()


def make_token(kind, key, offset):
    """Opaque continuation token (hex) that still decodes without server state."""
    return binascii.hexlify(("%s|%s|%d" % (kind, key, offset)).encode("utf-8")).decode("ascii")


def parse_token(token, kind, key):
    """Return the offset in token, or None when it is not ours / not for this listing."""
    try:
        k, ky, off = binascii.unhexlify(token.encode("ascii")).decode("utf-8").rsplit("|", 2)
        if k == kind and ky == key and int(off) >= 0:
            return int(off)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        pass
    return None


class LazyList:
    """Read-only sequence of n items produced by fn(index) on demand (for big generated lists)."""

    def __init__(self, n, fn):
        self.n, self.fn = n, fn

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self.fn(i) for i in range(*index.indices(self.n))]
        if index < 0:
            index += self.n
        if not 0 <= index < self.n:
            raise IndexError(index)
        return self.fn(index)


# ---------------------------------------------------------------------------
# Scenario expansion (generators)
# ---------------------------------------------------------------------------

GEN_KINDS = [  # (format, type) cycled by the repository generator
    ("maven2", "hosted"), ("maven2", "proxy"), ("npm", "proxy"), ("raw", "hosted"),
    ("docker", "hosted"), ("pypi", "proxy"), ("npm", "hosted"), ("maven2", "group"),
]


def generated_repo(i, blobstores):
    fmt, typ = GEN_KINDS[i % len(GEN_KINDS)]
    repo = {
        "name": "gen-%s-%s-%05d" % (fmt, typ, i),
        "format": fmt, "type": typ,
        "storage": {"blobStoreName": blobstores[i % len(blobstores)]},
    }
    if typ == "proxy":
        repo["proxy"] = {"remoteUrl": "https://remote.example.org/%s/%d/" % (fmt, i)}
    if typ == "group":
        repo["group"] = {"memberNames": ["gen-maven2-hosted-%05d" % (i - 7 if i >= 7 else 0)]}
    if i % 13 == 5:
        repo["online"] = False
    return repo


def generated_component(repo, fmt, i):
    name = "artifact-%d" % (i // 10)
    version = "1.%d.%d" % (i // 10, i % 10)
    if fmt == "docker":
        return {"name": "team/image-%d" % (i // 10), "version": "build-%d" % i,
                "assets": [{"path": "v2/team/image-%d/manifests/build-%d" % (i // 10, i),
                            "contentType": "application/vnd.docker.distribution.manifest.v2+json",
                            "fileSize": 1000 + i}]}
    if fmt == "maven2":
        return {"group": "org.example.gen", "name": name, "version": version,
                "assets": [{"path": "org/example/gen/%s/%s/%s-%s.jar" % (name, version, name, version),
                            "contentType": "application/java-archive", "fileSize": 2048 + i}]}
    return {"name": name, "version": version,
            "assets": [{"path": "%s/-/%s-%s.tgz" % (name, name, version), "fileSize": 512 + i}]}


def expand_scenario(raw, generate_repos=0):
    """Return the effective scenario: raw plus everything its "generate" block asks for.

    raw is not modified. Generated repositories get a lazy component list.
    """
    scen = copy.deepcopy(raw)
    gen = dict(scen.get("generate") or {})
    if generate_repos:
        gen["repositories"] = generate_repos
    blobstores = scen.setdefault("blobstores", [{"name": "default", "blobCount": 0,
                                                 "totalSizeInBytes": 0,
                                                 "availableSpaceInBytes": 100 * 2**30}])
    store_names = [b.get("name", "default") for b in blobstores] or ["default"]
    repos = scen.setdefault("repositories", [])
    comps = scen.setdefault("components", {})
    per_repo = int(gen.get("components_per_repo", 0))
    for i in range(int(gen.get("repositories", 0))):
        repo = generated_repo(i, store_names)
        repos.append(repo)
        if per_repo and repo["type"] != "group":
            fmt, name = repo["format"], repo["name"]
            comps[name] = LazyList(per_repo, lambda j, n=name, f=fmt: generated_component(n, f, j))
    for name, count in (gen.get("components") or {}).items():
        fmt = next((r.get("format", "raw") for r in repos if r.get("name") == name), "raw")
        comps[name] = LazyList(int(count), lambda j, n=name, f=fmt: generated_component(n, f, j))
    tasks = scen.setdefault("tasks", [])
    results = ["OK", "OK", "FAILED", None, "CANCELED", "INTERRUPTED"]
    for i in range(int(gen.get("tasks", 0))):
        tasks.append({"name": "Generated task %d" % i, "type": "repository.cleanup",
                      "lastRunResult": results[i % len(results)],
                      "currentState": "RUNNING" if i % 7 == 3 else "WAITING"})
    nproj = int(gen.get("gitlab_projects", 0))
    if nproj:
        gl = scen.setdefault("gitlab", {})
        projects = gl.setdefault("projects", [])
        start = len(projects)
        for i in range(nproj):
            projects.append({"id": 10000 + start + i, "path_with_namespace": "gen/project-%d" % i,
                             "branches": ["main", "develop", "feature-%d" % i],
                             "tags": ["v1.%d.0" % i]})
    return scen


# ---------------------------------------------------------------------------
# Server state
# ---------------------------------------------------------------------------

class State:
    """Everything the handlers share. Lock held only for short bookkeeping."""

    def __init__(self, raw_scenario, host, generate_repos):
        self.lock = threading.Lock()
        self.host = host
        self.generate_repos = generate_repos
        self.main_port = None
        self.requests = []
        self.fault_hits = {}
        self.docker_servers = []  # index -> FakeServer or None
        self.docker_lock = threading.Lock()  # serialises reconcile_docker()
        self.raw = raw_scenario
        self.scen = expand_scenario(raw_scenario, generate_repos)

    # -- scenario -----------------------------------------------------------
    def set_scenario(self, raw):
        """Replace the scenario; reset fault counters; reconcile docker listeners."""
        scen = expand_scenario(raw, self.generate_repos)
        with self.lock:
            self.raw, self.scen = raw, scen
            self.fault_hits = {}
        self.reconcile_docker()

    def reconcile_docker(self):
        """Start/stop/restart docker listeners so they match scenario docker_listeners.

        A listener whose scenario port is 0 (or unchanged) keeps its current port,
        so tests can flip a listener's status without its port moving.
        """
        with self.docker_lock:
            self._reconcile_docker(self.scen.get("docker_listeners") or [])

    def _reconcile_docker(self, wanted):
        for i in range(max(len(wanted), len(self.docker_servers))):
            current = self.docker_servers[i] if i < len(self.docker_servers) else None
            if i >= len(wanted):
                if current:
                    fakecommon.stop_server(current)
                self.docker_servers[i] = None
                continue
            port = int(wanted[i].get("port") or 0)
            if current and (port == 0 or port == current.server_address[1]):
                continue
            if current:
                fakecommon.stop_server(current)
            server = fakecommon.start_server(self.host, port, DockerHandler, (self, i))
            sys.stderr.write("%s: docker listener %d on port %d\n"
                             % (NexusHandler.fake_name, i, server.server_address[1]))
            if i < len(self.docker_servers):
                self.docker_servers[i] = server
            else:
                self.docker_servers.append(server)
        while self.docker_servers and self.docker_servers[-1] is None:
            self.docker_servers.pop()

    def docker_ports(self):
        return [s.server_address[1] if s else None for s in self.docker_servers]

    # -- bookkeeping --------------------------------------------------------
    def record(self, entry):
        with self.lock:
            self.requests.append(entry)
            if len(self.requests) > MAX_RECORDED_REQUESTS:
                del self.requests[0]

    def take_fault(self, scen, path):
        """Return the fault that applies to this request (counting it), or None.

        Keys of scenario "faults" are exact paths or fnmatch patterns; an exact
        key wins over patterns. With fail_first_n the fault applies to the first
        N matching requests only, then the endpoint answers normally.
        """
        faults = scen.get("faults") or {}
        key = path if path in faults else next(
            (k for k in faults if any(c in k for c in "*?[") and fnmatch.fnmatchcase(path, k)), None)
        if key is None:
            return None
        fault = faults[key]
        with self.lock:
            hits = self.fault_hits.get(key, 0) + 1
            self.fault_hits[key] = hits
        limit = fault.get("fail_first_n")
        if limit is not None and hits > int(limit):
            return None
        return fault

    # -- substitution -------------------------------------------------------
    def base_url(self, scen):
        return scen.get("base_url") or "http://%s:%d" % (self.host, self.main_port)

    def substitute(self, obj, scen):
        """Replace $BASE_URL, $HOST, $PORT and $DOCKERn placeholders in every string.

        A string that is exactly "$DOCKERn" becomes the integer port of docker
        listener n (null when there is no such listener).
        """
        ports = self.docker_ports()
        base = self.base_url(scen)

        def docker_port(match):
            n = int(match.group(1))
            return ports[n] if n < len(ports) else None

        def sub(value):
            if isinstance(value, dict):
                return {k: sub(v) for k, v in value.items()}
            if isinstance(value, list):
                return [sub(v) for v in value]
            if isinstance(value, str) and "$" in value:
                whole = re.fullmatch(r"\$DOCKER(\d+)", value)
                if whole:
                    return docker_port(whole)
                value = value.replace("$BASE_URL", base).replace("$HOST", self.host)
                value = value.replace("$PORT", str(self.main_port))
                return re.sub(r"\$DOCKER(\d+)", lambda m: str(docker_port(m)), value)
            return value

        return sub(obj)


# ---------------------------------------------------------------------------
# Nexus model: scenario entries -> documented shapes
# ---------------------------------------------------------------------------

def now_ms(scen):
    return int(scen.get("now_ms") or fakecommon.now_ms())


def build_checks(scen):
    checks = scen.get("checks")
    if checks is None:
        checks = {name: {} for name in DEFAULT_CHECKS}
    t = now_ms(scen)
    out = {}
    for name, c in checks.items():
        c = c or {}
        when = int(c.get("time", t))
        out[name] = {
            "healthy": c.get("healthy", True),
            "message": c.get("message"),
            "error": c.get("error"),
            "details": c.get("details"),
            "time": when,
            "duration": c.get("duration", 0),
            "timestamp": c.get("timestamp", iso_ms(when)),
        }
    return out


def build_blobstore(b):
    return {
        "softQuota": b.get("softQuota"),
        "name": b.get("name", "default"),
        "type": b.get("type", "File"),
        "unavailable": b.get("unavailable", False),
        "blobCount": b.get("blobCount", 0),
        "totalSizeInBytes": b.get("totalSizeInBytes", 0),
        "availableSpaceInBytes": b.get("availableSpaceInBytes", 0),
    }


def build_quota_status(b):
    """Quota status: scenario "_quota_status" wins; otherwise computed like Nexus does."""
    name = b.get("name", "default")
    quota = b.get("softQuota")
    if b.get("_quota_status") is not None:
        q = b["_quota_status"]
        return {"isViolation": q.get("isViolation", False), "message": q.get("message", ""),
                "blobStoreName": name}
    if not quota:
        return {"isViolation": False, "message": "Blob store %s has no quota" % name,
                "blobStoreName": name}
    limit = int(quota.get("limit", 0))
    if quota.get("type") == "spaceUsedQuota":
        used = int(b.get("totalSizeInBytes", 0))
        violation = used > limit
        msg = "Blob store %s is using %d bytes and has a limit of %d bytes" % (name, used, limit)
    else:
        avail = int(b.get("availableSpaceInBytes", 0))
        violation = avail < limit
        msg = "Blob store %s has %d bytes available and has a limit of %d bytes" % (name, avail, limit)
    if not violation:
        msg = "Blob store %s is not violating its %s quota" % (name, quota.get("type"))
    return {"isViolation": violation, "message": msg, "blobStoreName": name}


def default_settings(name, fmt, typ, base):
    """repositorySettings defaults for one repository, key order as Nexus answers."""
    s = {"name": name, "url": "%s/repository/%s" % (base, name), "online": True}
    storage = {"blobStoreName": "default", "strictContentTypeValidation": True}
    if typ == "hosted":
        storage["writePolicy"] = "ALLOW_ONCE" if fmt == "maven2" else "ALLOW"
    s["storage"] = storage
    s["cleanup"] = None
    if typ == "group":
        s["group"] = {"memberNames": []}
        if fmt == "docker":
            s["group"]["writableMember"] = None
    if typ == "proxy":
        s["proxy"] = {"remoteUrl": "https://remote.example.org/", "contentMaxAge": 1440,
                      "metadataMaxAge": 1440}
        s["negativeCache"] = {"enabled": True, "timeToLive": 1440}
        s["httpClient"] = {"blocked": False, "autoBlock": True, "connection": None,
                           "authentication": None}
        s["routingRuleName"] = None
    if fmt == "maven2":
        s["maven"] = {"versionPolicy": "RELEASE" if typ == "hosted" else "MIXED",
                      "layoutPolicy": "STRICT", "contentDisposition": "INLINE"}
    if fmt == "raw":
        s["raw"] = {"contentDisposition": "ATTACHMENT"}
    if fmt == "docker":
        s["docker"] = {"v1Enabled": False, "forceBasicAuth": True, "httpPort": None,
                       "httpsPort": None, "subdomain": None}
        if typ == "proxy":
            s["dockerProxy"] = {"indexType": "HUB", "indexUrl": None, "cacheForeignLayers": False,
                                "foreignLayerUrlWhitelist": []}
    if typ == "hosted":
        s["component"] = {"proprietaryComponents": False}
    s["format"] = fmt
    s["type"] = typ
    return s


def repo_settings(r, base):
    """Full settings dict (still holding "_" directives) for a scenario repository entry."""
    fmt, typ = r.get("format", "raw"), r.get("type", "hosted")
    entry = {k: v for k, v in r.items() if k != "attributes"}
    return deep_merge(default_settings(r["name"], fmt, typ, base), entry)


def repo_summary(r, base):
    """One /v1/repositories entry."""
    s = repo_settings(r, base)
    attrs = r.get("attributes")
    if attrs is None:
        attrs = {"proxy": {"remoteUrl": s["proxy"]["remoteUrl"]}} if s["type"] == "proxy" else {}
    return {"name": s["name"], "format": s["format"], "type": s["type"], "url": s["url"],
            "attributes": attrs}


def build_task(t, i):
    return {
        "id": t.get("id") or stable_id("task", t.get("name", i), i),
        "name": t.get("name", "Task %d" % i),
        "type": t.get("type", "repository.cleanup"),
        "message": t.get("message"),
        "currentState": t.get("currentState", "WAITING"),
        "lastRunResult": t.get("lastRunResult"),
        "nextRun": t.get("nextRun"),
        "lastRun": t.get("lastRun"),
    }


def build_component(c, repo, fmt, base):
    name, version, group = c.get("name", "component"), c.get("version"), c.get("group")
    cid = c.get("id") or nexus_id(repo, group, name, version)
    assets = []
    for a in c.get("assets", []):
        path = a.get("path", "%s/%s" % (name, version))
        created = a.get("blobCreated", "2024-01-01T10:00:00.000+00:00")
        asset = {
            "downloadUrl": "%s/repository/%s/%s" % (base, repo, path),
            "path": path,
            "id": nexus_id(repo, "asset", path),
            "repository": repo,
            "format": fmt,
            "checksum": {"sha1": sha(path), "sha256": sha(path, "sha256"), "md5": sha(path, "md5")},
            "contentType": "application/octet-stream",
            "lastModified": created,
            "lastDownloaded": None,
            "uploader": "admin" if c.get("_hosted", True) else None,
            "uploaderIp": "127.0.0.1",
            "fileSize": 0,
            "blobCreated": created,
        }
        asset.update(a)
        assets.append(asset)
    return {"id": cid, "repository": repo, "format": c.get("format", fmt), "group": group,
            "name": name, "version": version, "assets": assets}


def build_certificate(host, port, c, scen):
    """/v1/security/ssl answer; "_expires_in_days"/"_issued_days_ago" are relative to now."""
    t = now_ms(scen)
    day = 86400 * 1000
    expires = c.get("expiresOn")
    if expires is None:
        expires = t + int(c.get("_expires_in_days", 365) * day)
    issued = c.get("issuedOn")
    if issued is None:
        issued = t - int(c.get("_issued_days_ago", 30) * day)
    fp = sha("%s:%s" % (host, port)).upper()
    cert = {
        "expiresOn": expires,
        "fingerprint": ":".join(fp[i:i + 2] for i in range(0, len(fp), 2)),
        "id": fp,
        "issuedOn": issued,
        "issuerCommonName": "Fake Test CA",
        "issuerOrganization": "Example Org",
        "issuerOrganizationalUnit": "Test",
        "pem": "-----BEGIN CERTIFICATE-----\nMIIBfake%s\n-----END CERTIFICATE-----\n" % fp[:16],
        "serialNumber": str(int(fp[:12], 16)),
        "subjectCommonName": host,
        "subjectOrganization": "Example Org",
        "subjectOrganizationalUnit": "Ops",
    }
    cert.update({k: v for k, v in c.items() if not k.startswith("_")})
    return cert


def paginate(items, token, kind, key, page_size, quirk_empty_last):
    """Slice items at token -> (page, next_token) or None for a bad token.

    With quirk_empty_last a full page always carries a token, so the last
    request may return an empty page (older Nexus releases do this).
    """
    offset = 0
    if token:
        offset = parse_token(token, kind, key)
        if offset is None:
            return None
    page = list(items[offset:offset + page_size])
    end = offset + len(page)
    more = end < len(items) or (quirk_empty_last and len(page) == page_size)
    return page, (make_token(kind, key, end) if more else None)


@functools.lru_cache(maxsize=2)
def json_bomb(unit, size):
    """A JSON array of `unit` ("[]", "{}", "1", ...) repeated to exactly
    `size` bytes (padded with spaces): a few bytes that json parsers turn
    into hundreds."""
    unit = unit.encode("utf-8")
    k = max(1, (size - 2) // (len(unit) + 1))
    body = b"[" + b",".join([unit] * k) + b"]"
    return body + b" " * max(0, size - len(body))


def nexus_error(message):
    """Nexus validation error body."""
    return [{"id": "*", "message": message}]


def route_nexus(state, scen, path, query):
    """Answer a /service/rest request. Returns (status, payload) where payload is
    a JSON-able object, b"" for an empty body, or a str for plain text."""
    base = state.base_url(scen)
    quirks = scen.get("quirks") or {}
    page_sizes = scen.get("page_sizes") or {}
    q = {k: v[0] for k, v in query.items()}
    p = path[len("/service/rest"):]

    if p == "/v1/status":
        return int(scen.get("status", 200)), b""
    if p == "/v1/status/writable":
        return int(scen.get("writable", 200)), b""
    if p == "/v1/status/check":
        return 200, build_checks(scen)
    if p == "/v1/blobstores":
        return 200, [build_blobstore(b) for b in scen["blobstores"]]
    m = re.fullmatch(r"/v1/blobstores/([^/]+)/quota-status", p)
    if m:
        name = unquote(m.group(1))
        for b in scen["blobstores"]:
            if b.get("name", "default") == name:
                return 200, build_quota_status(b)
        return 404, nexus_error("Blob store %s not found" % name)
    if p == "/v1/repositories":
        return 200, [repo_summary(r, base) for r in scen["repositories"]]
    if p == "/v1/repositorySettings":
        return 200, [public(repo_settings(r, base)) for r in scen["repositories"]]
    if p == "/v1/tasks":
        tasks = [build_task(t, i) for i, t in enumerate(scen.get("tasks") or [])]
        if q.get("type"):
            tasks = [t for t in tasks if t["type"] == q["type"]]
        size = int(page_sizes.get("tasks") or max(len(tasks), 1))
        res = paginate(tasks, q.get("continuationToken"), "tasks", q.get("type", ""), size,
                       quirks.get("empty_last_page"))
        if res is None:
            return 400, nexus_error("Invalid continuation token")
        return 200, {"items": res[0], "continuationToken": res[1]}
    if p == "/v1/components":
        name = q.get("repository")
        if not name:
            return 400, nexus_error("repository: parameter is required")
        repo = next((r for r in scen["repositories"] if r.get("name") == name), None)
        if repo is None:
            return 404, nexus_error("Repository not found")
        fmt = repo.get("format", "raw")
        items = (scen.get("components") or {}).get(name) or []
        size = int(page_sizes.get("components") or 100)
        res = paginate(items, q.get("continuationToken"), "components", name, size,
                       quirks.get("empty_last_page"))
        if res is None:
            return 400, nexus_error("Invalid continuation token")
        hosted = repo.get("type", "hosted") == "hosted"
        page = [build_component(dict(c, _hosted=hosted), name, fmt, base) for c in res[0]]
        return 200, {"items": page, "continuationToken": res[1]}
    if p == "/v1/security/ssl":
        host = q.get("host")
        if not host:
            return 400, nexus_error("host: parameter is required")
        port = q.get("port", "443")
        certs = scen.get("ssl") or {}
        c = certs.get("%s:%s" % (host, port))
        if c is None:
            return 400, nexus_error("Unable to retrieve certificate from %s:%s" % (host, port))
        return 200, build_certificate(host, port, c, scen)
    return 404, b""


def route_repository(scen, path):
    """Reachability probe of /repository/<name>/...: "_http_status" or online -> 200/503."""
    parts = path.split("/")
    name = unquote(parts[2]) if len(parts) > 2 else ""
    repo = next((r for r in scen["repositories"] if r.get("name") == name), None)
    if repo is None:
        return 404, "Repository not found\n"
    status = repo.get("_http_status")
    if status is None:
        status = 200 if repo.get("online", True) else 503
    status = int(status)
    if status == 200:
        return 200, "<html><body><h1>Index of /%s/</h1></body></html>\n" % name
    return status, "Repository %s answered %d\n" % (name, status)


# ---------------------------------------------------------------------------
# GitLab API v4 model
# ---------------------------------------------------------------------------

def gl_commit(seed):
    sha1 = sha(seed)
    return {"id": sha1, "short_id": sha1[:8], "created_at": "2024-01-01T10:00:00.000+00:00",
            "parent_ids": [], "title": "Commit %s" % sha1[:8], "message": "Commit %s\n" % sha1[:8],
            "author_name": "Dev", "author_email": "dev@example.org",
            "authored_date": "2024-01-01T10:00:00.000+00:00", "committer_name": "Dev",
            "committer_email": "dev@example.org", "committed_date": "2024-01-01T10:00:00.000+00:00",
            "trailers": {}, "web_url": ""}


def gl_project(p, base):
    path_ns = p.get("path_with_namespace") or "group/%s" % p.get("path", "project-%s" % p.get("id"))
    ns, _, path = path_ns.rpartition("/")
    web = "%s/%s" % (base, path_ns)
    out = {
        "id": p.get("id"),
        "description": None,
        "name": path,
        "name_with_namespace": "%s / %s" % (ns, path),
        "path": path,
        "path_with_namespace": path_ns,
        "created_at": "2023-01-01T10:00:00.000Z",
        "default_branch": "main",
        "tag_list": [], "topics": [],
        "ssh_url_to_repo": "git@gitlab.example.org:%s.git" % path_ns,
        "http_url_to_repo": "%s.git" % web,
        "web_url": web,
        "readme_url": None, "avatar_url": None, "forks_count": 0, "star_count": 0,
        "last_activity_at": "2024-01-01T10:00:00.000Z",
        "namespace": {"id": int(sha(ns)[:5], 16), "name": ns, "path": ns.split("/")[-1],
                      "kind": "group", "full_path": ns, "parent_id": None, "avatar_url": None,
                      "web_url": "%s/groups/%s" % (base, ns)},
        "archived": False,
        "visibility": "private",
    }
    out.update({k: v for k, v in p.items() if k not in ("branches", "tags") and not k.startswith("_")})
    return out


def gl_branch(b, project):
    b = {"name": b} if isinstance(b, str) else b
    name = b["name"]
    default = name == project["default_branch"]
    out = {"name": name, "commit": gl_commit("%s:%s" % (project["id"], name)), "merged": False,
           "protected": default, "developers_can_push": False, "developers_can_merge": False,
           "can_push": True, "default": default,
           "web_url": "%s/-/tree/%s" % (project["web_url"], quote(name, safe=""))}
    out.update(b)
    return out


def gl_tag(t, project):
    t = {"name": t} if isinstance(t, str) else t
    commit = gl_commit("%s:tag:%s" % (project["id"], t["name"]))
    out = {"name": t["name"], "message": "", "target": commit["id"], "commit": commit,
           "release": None, "protected": False}
    out.update(t)
    return out


def gl_paginate(items, query, base_url, path, omit_totals, link_only=False):
    """GitLab offset pagination -> (page, headers) with X-* and Link headers.

    link_only keeps only the Link header (as some proxies in front of GitLab
    strip the X-* headers), so clients must page by rel="next".
    """
    def num(name, default, lo, hi):
        try:
            return max(lo, min(hi, int(query.get(name, [default])[0])))
        except ValueError:
            return default
    per_page = num("per_page", 20, 1, 100)
    page = num("page", 1, 1, 10**9)
    total = len(items)
    pages = max(1, (total + per_page - 1) // per_page)
    chunk = items[(page - 1) * per_page: page * per_page]

    def link(n):
        params = {k: v[0] for k, v in query.items()}
        params.update({"page": n, "per_page": per_page})
        return "<%s%s?%s>" % (base_url, path, urlencode(sorted(params.items())))

    headers = {"X-Page": page, "X-Per-Page": per_page,
               "X-Next-Page": page + 1 if page < pages else "",
               "X-Prev-Page": page - 1 if 1 < page <= pages else ""}
    links = []
    if headers["X-Prev-Page"]:
        links.append('%s; rel="prev"' % link(page - 1))
    if page < pages:
        links.append('%s; rel="next"' % link(page + 1))
    links.append('%s; rel="first"' % link(1))
    if not omit_totals:
        headers["X-Total"] = total
        headers["X-Total-Pages"] = pages
        links.append('%s; rel="last"' % link(pages))
    headers["Link"] = ", ".join(links)
    if link_only:
        headers = {"Link": headers["Link"]}
    return chunk, headers


def route_gitlab(state, scen, path, query, token):
    """Answer /api/v4/... -> (status, payload, extra headers)."""
    gl = scen.get("gitlab")
    if gl is None:
        return 404, {"message": "404 Not Found"}, {}
    want = gl.get("token")
    if want is not None and token != want:
        return 401, {"message": "401 Unauthorized"}, {}
    base = gl.get("base_url") or state.base_url(scen)
    projects = [gl_project(p, base) for p in gl.get("projects") or []]
    raw_projects = gl.get("projects") or []
    omit_totals = bool(gl.get("omit_totals"))
    link_only = bool(gl.get("link_only"))
    parts = [unquote(x) for x in path.split("/")[3:]]  # after /api/v4
    if parts == ["projects"]:
        q = {k: v[0] for k, v in query.items()}
        if q.get("search"):
            needle = q["search"].lower()
            projects = [p for p in projects if needle in p["path_with_namespace"].lower()]
        if q.get("archived") in ("true", "false"):
            projects = [p for p in projects if p["archived"] == (q["archived"] == "true")]
        page, headers = gl_paginate(projects, query, base, "/api/v4/projects", omit_totals,
                                    link_only)
        return 200, page, headers
    if len(parts) >= 2 and parts[0] == "projects":
        idx = next((i for i, p in enumerate(projects)
                    if str(p["id"]) == parts[1] or p["path_with_namespace"] == parts[1]), None)
        if idx is None:
            return 404, {"message": "404 Project Not Found"}, {}
        project = projects[idx]
        if len(parts) == 2:
            return 200, project, {}
        if len(parts) == 4 and parts[2] == "repository" and parts[3] in ("branches", "tags"):
            kind = parts[3]
            build = gl_branch if kind == "branches" else gl_tag
            items = [build(x, project) for x in raw_projects[idx].get(kind) or []]
            q = {k: v[0] for k, v in query.items()}
            if q.get("search"):
                items = [x for x in items if q["search"] in x["name"]]
            rel = "/api/v4/projects/%s/repository/%s" % (quote(parts[1], safe=""), kind)
            page, headers = gl_paginate(items, query, base, rel, omit_totals, link_only)
            return 200, page, headers
    return 404, {"message": "404 Not Found"}, {}


# ---------------------------------------------------------------------------
# HTTP handlers
# ---------------------------------------------------------------------------

def basic_user(header):
    """(user, password) from an Authorization: Basic header, or None."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
        return user, password
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return None


class NexusHandler(fakecommon.Handler):
    fake_name = "nexus_fake"
    server_version = NEXUS_SERVER

    def do_GET(self):
        self.dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def dispatch(self):
        body = self.read_body()
        state = self.server.state
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query, keep_blank_values=True)
        if path.startswith("/__control/"):
            return self.control(state, path, body)

        scen = state.scen  # one consistent snapshot for this request
        auth = self.headers.get("Authorization")
        token = self.headers.get("PRIVATE-TOKEN")
        entry = {"method": self.command, "path": path, "query": url.query,
                 "has_auth": auth is not None, "has_token": token is not None,
                 "user": (basic_user(auth) or (None,))[0], "time": time.time(),
                 "client_port": self.client_address[1]}
        json_style = scen.get("json_style", "jackson")
        headers = {}
        ctype = "application/json"

        # 1. authentication, 2. faults, 3. the endpoint itself.
        if path.startswith(("/service/rest/", "/service/metrics/")) and \
                not self.authorised(scen, path, auth):
            status, payload = 401, b""
            headers["WWW-Authenticate"] = NEXUS_REALM
        else:
            fault = state.take_fault(scen, path)
            if fault and fault.get("delay"):
                time.sleep(float(fault["delay"]))
            if fault and fault.get("close"):
                entry["status"] = None
                state.record(entry)
                return self.drop_connection()

            if self.command not in ("GET", "HEAD"):
                status, payload = 405, b""
            elif path.startswith("/service/rest/"):
                status, payload = route_nexus(state, scen, path, query)
            elif path == "/service/metrics/prometheus":
                status = 200
                payload = scen.get("prometheus_metrics", DEFAULT_PROMETHEUS_METRICS).encode("utf-8")
                ctype = "text/plain; version=0.0.4; charset=utf-8"
            elif path.startswith("/repository/"):
                status, payload = route_repository(scen, path)
            elif path.startswith("/api/v4/"):
                status, payload, headers = route_gitlab(state, scen, path, query, token)
                json_style = "compact"
            else:
                status, payload = 404, b""

            if fault:
                status, payload, ctype, headers = self.apply_fault(
                    fault, status, payload, ctype, headers, state, scen, json_style)

        if isinstance(payload, (bytes, str)):
            data = payload.encode("utf-8") if isinstance(payload, str) else payload
            if isinstance(payload, str) and ctype == "application/json":
                ctype = "text/plain; charset=utf-8" if not path.startswith("/repository/") \
                    else "text/html; charset=utf-8"
        else:
            data = dump_json(state.substitute(payload, scen), json_style).encode("utf-8")
        entry["status"] = status
        state.record(entry)
        if headers.pop("X-Fake-No-Length", None):
            return self.send_unsized(status, data, ctype, headers)
        self.send(status, data, ctype, headers)

    def send_unsized(self, status, data, ctype, headers):
        """An answer without Content-Length, ended by closing the connection:
        a client learns its size only while reading it."""
        self.send_response_only(status)
        self.send_header("Content-Type", ctype)
        for name, value in headers.items():
            self.send_header(name, str(value))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for i in range(0, len(data), 1 << 20):
                self.wfile.write(data[i:i + (1 << 20)])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what a capped client does

    def authorised(self, scen, path, auth):
        creds = scen.get("auth")
        if not creds:
            return True
        if path in (creds.get("anonymous_paths") or []):
            return True
        return basic_user(auth) == (creds.get("username"), creds.get("password"))

    def apply_fault(self, fault, status, payload, ctype, headers, state, scen, json_style):
        """Turn the normal answer into the faulty one the scenario asks for."""
        headers = dict(headers)
        headers.update(fault.get("headers") or {})
        if fault.get("malformed"):
            text = payload if isinstance(payload, (bytes, str)) else \
                dump_json(state.substitute(payload, scen), json_style)
            text = text.decode("utf-8") if isinstance(text, bytes) else text
            cut = text[: max(1, len(text) // 2)] if text else "{"
            return int(fault.get("status", 200)), cut.encode("utf-8"), "application/json", headers
        if "bomb" in fault:
            b = fault["bomb"]
            if b.get("no_length"):
                headers["X-Fake-No-Length"] = "1"
            return (int(fault.get("status", 200)), json_bomb(b.get("unit", "[]"), int(b["size"])),
                    "application/json", headers)
        if "body" in fault:
            return (int(fault.get("status", 200)), fault["body"].encode("utf-8"),
                    fault.get("content_type", "text/plain"), headers)
        if "status" in fault:
            return int(fault["status"]), b"", ctype, headers
        if "fail_first_n" in fault and "delay" not in fault:
            return 500, b"", ctype, headers
        return status, payload, ctype, headers

    def control(self, state, path, body):
        """Test control endpoints; never authenticated, faulted or recorded."""
        if path == "/__control/scenario" and self.command == "GET":
            return self.send(200, json.dumps(state.raw, indent=2), "application/json")
        if path == "/__control/scenario" and self.command in ("POST", "PUT"):
            try:
                new = json.loads(body.decode("utf-8") or "{}")
                if not isinstance(new, dict):
                    raise ValueError("scenario must be a JSON object")
                if "merge=1" in (urlsplit(self.path).query or ""):
                    new = dict(state.raw, **new)
                state.set_scenario(new)
            except (ValueError, OSError) as exc:
                return self.send(400, json.dumps({"error": str(exc)}), "application/json")
            return self.send(200, json.dumps({"ok": True, "docker": state.docker_ports()}),
                             "application/json")
        if path == "/__control/requests" and self.command == "GET":
            with state.lock:
                data = json.dumps(state.requests, indent=2)
            return self.send(200, data, "application/json")
        if path == "/__control/requests" and self.command == "DELETE":
            with state.lock:
                state.requests = []
            return self.send(200, '{"ok": true}', "application/json")
        if path == "/__control/reset" and self.command == "POST":
            with state.lock:
                state.requests = []
                state.fault_hits = {}
            return self.send(200, '{"ok": true}', "application/json")
        if path == "/__control/ports" and self.command == "GET":
            return self.send(200, json.dumps({"main": state.main_port, "docker": state.docker_ports()}),
                             "application/json")
        return self.send(404, '{"error": "unknown control endpoint"}', "application/json")


class DockerHandler(fakecommon.Handler):
    """A Nexus docker connector port: GET /v2/ answers per scenario docker_listeners[i]."""

    fake_name = "nexus_fake[docker]"
    server_version = NEXUS_SERVER

    def do_GET(self):
        self.read_body()
        state, index = self.server.state
        scen = state.scen
        listeners = scen.get("docker_listeners") or []
        conf = listeners[index] if index < len(listeners) else {}
        path = urlsplit(self.path).path
        entry = {"method": self.command, "path": path, "query": urlsplit(self.path).query,
                 "has_auth": "Authorization" in self.headers, "has_token": False,
                 "user": (basic_user(self.headers.get("Authorization")) or (None,))[0],
                 "listener": index, "time": time.time()}
        if conf.get("delay"):
            time.sleep(float(conf["delay"]))
        if conf.get("close"):
            entry["status"] = None
            state.record(entry)
            return self.drop_connection()
        status = int(conf.get("status", 401))
        headers = {"Docker-Distribution-Api-Version": "registry/2.0"}
        if path not in ("/v2/", "/v2"):
            status, body = 404, ""
        elif status == 401:
            headers["WWW-Authenticate"] = NEXUS_REALM
            body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message":
                               "access to the requested resource is not authorized", "detail": None}]})
        elif status == 200:
            body = "{}"
        else:
            headers = {}
            body = "Service Unavailable" if status == 503 else "error %d" % status
        headers.update(conf.get("headers") or {})
        headers = {k: v for k, v in headers.items() if v is not None}  # null removes a header
        entry["status"] = status
        state.record(entry)
        self.send(status, body, "application/json" if body.startswith("{") else "text/plain", headers)

    do_HEAD = do_GET


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def load_scenario(path):
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise SystemExit("%s: scenario must be a JSON object" % path)
    return data


def main(argv=None, name="nexus_fake", description=__doc__):
    parser = fakecommon.new_parser(description)
    fakecommon.common_arguments(parser)
    parser.add_argument("--scenario", help="JSON scenario file (default: empty = healthy defaults)")
    parser.add_argument("--generate-repos", type=int, default=0, metavar="N",
                        help="append N generated repositories (scale tests)")
    args = parser.parse_args(argv)

    NexusHandler.fake_name = name
    DockerHandler.fake_name = name + "[docker]"
    state = State(load_scenario(args.scenario), args.host, args.generate_repos)
    try:
        server = fakecommon.start_server(args.host, args.port, NexusHandler, state)
        state.main_port = server.server_address[1]
        state.reconcile_docker()
    except OSError as exc:
        sys.stderr.write("%s: cannot listen: %s\n" % (name, exc))
        return 1
    sys.stderr.write("%s: listening on %s:%d\n" % (name, args.host, state.main_port))
    fakecommon.write_port_file(args.port_file, state.main_port)

    fakecommon.wait_for_signal(name)
    for s in state.docker_servers:
        if s:
            fakecommon.stop_server(s)
    fakecommon.stop_server(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
