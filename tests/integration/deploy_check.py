#!/usr/bin/env python3
"""Checks of deploy/ that need no server: Grafana dashboards and alert rules.

  deploy_check.py TOP_SRCDIR OUTDIR

 - every deploy/grafana/*.json is valid JSON with a `datasource` variable
   (type datasource) and an `instance` variable, and every query panel uses
   the ${datasource} variable;
 - every PromQL expression of every dashboard (Grafana variables replaced)
   is written to OUTDIR/dashboard-exprs.yml as a recording rule, for
   `promtool check rules` to parse;
 - every metric name used by a dashboard or deploy/prometheus/alerts.yml is
   one the program emits: a string literal in src/, or listed in
   deploy/event-metrics.txt (skopeo_*, registry_cleanup_*); once src/ has
   any metric of such a prefix, every listed name of it must be in src/.
Prints one line per problem and exits 1, or exits 0.
"""
import glob, json, os, re, sys

top, outdir = sys.argv[1], sys.argv[2]
problems = []
PREFIXES = ("nexus_shipper_", "nexus_", "registry_cleanup_", "skopeo_")
NAME_RE = re.compile(r"(?<![\w:\"])((?:nexus|registry_cleanup|skopeo)_[a-zA-Z0-9_]*)(?![\w\"])")

# ---- names the code emits: string literals in src/ ----
code = set()
for path in glob.glob(os.path.join(top, "src", "**", "*.[ch]"), recursive=True):
    text = open(path, encoding="utf-8", errors="replace").read()
    code.update(re.findall(r'"((?:nexus|registry_cleanup|skopeo)_[a-z0-9_]+)"', text))

documented = {}
for line in open(os.path.join(top, "deploy", "event-metrics.txt")):
    line = line.strip()
    if line and not line.startswith("#"):
        documented[line.split()[0]] = line

def family(name, known):
    if name in known:
        return name
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and name[: -len(suf)] in known:
            return name[: -len(suf)]
    return None

def check_name(name, where):
    if family(name, code):
        return
    if family(name, documented):
        return
    problems.append("%s: metric %s is not emitted by the program (not in src/, not in deploy/event-metrics.txt)" % (where, name))

# documented names of a prefix that src/ already emits must exist there
for prefix in ("skopeo_", "registry_cleanup_"):
    if any(c.startswith(prefix) for c in code):
        for name in documented:
            if name.startswith(prefix) and name not in code:
                problems.append("deploy/event-metrics.txt: %s is documented but src/ does not emit it "
                                "(renamed? update the dashboards, rules and this list)" % name)

def strip_strings(expr):
    """Drops quoted label values so their contents are not taken for names."""
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)

def grafana_to_promql(expr):
    for var, val in (("$__rate_interval", "5m"), ("$__interval", "1m"), ("$__range", "1d"),
                     ("${__range}", "1d"), ("$__range_s", "86400")):
        expr = expr.replace(var, val)
    return re.sub(r"\$\{?\w+\}?", "x", expr)

# ---- dashboards ----
rules = []
dashboards = sorted(glob.glob(os.path.join(top, "deploy", "grafana", "*.json")))
if not dashboards:
    problems.append("deploy/grafana: no dashboards")
uids = set()
for path in dashboards:
    rel = os.path.relpath(path, top)
    try:
        d = json.load(open(path))
    except ValueError as e:
        problems.append("%s: invalid JSON: %s" % (rel, e))
        continue
    if d.get("uid") in uids:
        problems.append("%s: duplicate uid %s" % (rel, d.get("uid")))
    uids.add(d.get("uid"))
    tv = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    if tv.get("datasource", {}).get("type") != "datasource":
        problems.append("%s: no `datasource` variable of type datasource" % rel)
    inst = tv.get("instance")
    if not inst:
        problems.append("%s: no `instance` variable" % rel)
    else:
        q = inst.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.match(r"label_values\((\w+),\s*instance\)", q or "")
        if not m:
            problems.append("%s: the instance variable is not label_values(METRIC, instance)" % rel)
        else:
            check_name(m.group(1), rel + " (instance variable)")
    panels = []
    def walk(ps):
        for p in ps:
            panels.append(p)
            walk(p.get("panels", []))
    walk(d.get("panels", []))
    n = 0
    for p in panels:
        for t in p.get("targets", []):
            expr = t.get("expr")
            if not expr:
                continue
            n += 1
            where = "%s: panel \"%s\"" % (rel, p.get("title"))
            for ds in (p.get("datasource"), t.get("datasource")):
                if not isinstance(ds, dict) or ds.get("uid") != "${datasource}":
                    problems.append("%s: datasource is not ${datasource}" % where)
                    break
            if 'instance=~"$instance"' not in expr:
                problems.append("%s: query does not filter on instance=~\"$instance\": %s" % (where, expr))
            for name in set(NAME_RE.findall(strip_strings(expr))):
                check_name(name, where)
            rules.append((where, grafana_to_promql(expr)))
    if n == 0:
        problems.append("%s: no queries" % rel)

with open(os.path.join(outdir, "dashboard-exprs.yml"), "w") as f:
    f.write("# generated by deploy_check.py: every dashboard query as a recording rule\ngroups:\n  - name: dashboards\n    rules:\n")
    for i, (where, expr) in enumerate(rules):
        f.write("      # %s\n      - record: dashboard:expr:%d\n        expr: %s\n" % (where.replace("\n", " "), i, json.dumps(expr)))

# ---- alert rules (the expressions, as text: promtool parses them) ----
alerts = os.path.join(top, "deploy", "prometheus", "alerts.yml")
text = open(alerts).read()
exprs = re.findall(r"^\s*expr:\s*\|\n((?:\s{10,}.*\n)+)|^\s*expr:\s*(.+)$", text, re.M)
names_in_rules = 0
for block, single in exprs:
    e = block or single
    for name in set(NAME_RE.findall(strip_strings(e))):
        names_in_rules += 1
        check_name(name, "deploy/prometheus/alerts.yml")
for alert in ("SkopeoHighErrorRate", "NexusDown", "NexusNotWritable", "NexusHealthCheckFailing",
              "BlobStoreQuotaViolation", "BlobStoreNearlyFull", "CertificateExpiresSoon",
              "CertificateExpired", "NexusTaskFailed", "DockerPortDown", "RegistryCleanupFailed",
              "RegistryCleanupNotRunRecently", "ShipperSpoolBacklog", "ShipperNotSending",
              "ShipperDroppingSamples"):
    if not re.search(r"^\s*- alert: %s$" % alert, text, re.M):
        problems.append("deploy/prometheus/alerts.yml: alert %s is missing" % alert)
    test = open(os.path.join(top, "deploy", "prometheus", "alerts_test.yml")).read()
    if not re.search(r"alertname: %s$" % alert, test, re.M):
        problems.append("deploy/prometheus/alerts_test.yml: no unit test for %s" % alert)

for p in problems:
    print("deploy_check: " + p)
print("deploy_check: %d dashboards, %d queries, %d rule expressions, %d metric names in src/, %d documented"
      % (len(dashboards), len(rules), len(exprs), len(code), len(documented)), file=sys.stderr)
sys.exit(1 if problems else 0)
