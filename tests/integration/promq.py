#!/usr/bin/env python3
"""Query a Prometheus-compatible HTTP API (Prometheus, VictoriaMetrics) and
print results as stable, sorted text lines for shell assertions. Stdlib only.

Usage:
  promq.py URL QUERY [--time T]
      /api/v1/query at T (default now). Instant vector  -> 'name{k="v",...} VALUE' per series.
                     Range selector  -> 'name{k="v",...} VALUE TS_MS' per raw sample.
                     Scalar/string   -> 'VALUE'.
  promq.py --range URL SELECTOR [--start S] [--end E]
      Every raw sample of SELECTOR (e.g. 'up{job="x"}') with start <= TS <= end,
      one 'name{labels} VALUE TS_MS' line each. Implemented as the instant
      query 'SELECTOR[<end-start+1>ms]' at time=end (raw samples in both
      Prometheus and VictoriaMetrics), filtered to [start, end] client-side.
      Defaults: all time (--start 1ms --end now+1d).
  promq.py --series URL MATCH [--start S] [--end E]
      /api/v1/series: 'name{labels}' per series (default range: all time,
      --start 1ms --end now+1d).

Times T/S/E: 'now', 'now-30s' / 'now+5m' / 'now-1h' / 'now-2d', unix seconds
(e.g. 1700000000.5), or integer milliseconds with an 'ms' suffix
(e.g. 1700000000500ms).

Output format: labels sorted by name, '__name__' printed in front (omitted if
absent), values escaped as in the text format (\\\\, \\", \\n), no braces when
there are no labels. VALUE: integral values (|v| < 2^63) without a decimal point,
other finite floats as Python repr (shortest round-trip), NaN, +Inf, -Inf.
TS_MS: integer milliseconds. Lines are sorted (series, then time).

Exit status: 0 (also when the result is empty), 2 on HTTP/API errors (message
on stderr).
"""
import decimal
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

D = decimal.Decimal


def parse_time_ms(s):
    s = s.strip()
    if s.startswith("now"):
        now = int(time.time() * 1000)
        rest = s[3:]
        if not rest:
            return now
        m = re.fullmatch(r"([+-])(\d+(?:\.\d+)?)(ms|s|m|h|d)", rest)
        if not m:
            raise ValueError("bad time %r" % s)
        mult = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}[m.group(3)]
        delta = int(D(m.group(2)) * mult)
        return now + delta if m.group(1) == "+" else now - delta
    if s.endswith("ms"):
        return int(s[:-2])
    return int((D(s) * 1000).to_integral_value(rounding=decimal.ROUND_HALF_EVEN))


def ms_to_param(ms):
    # Seconds with exactly 3 decimals: accepted by Prometheus and VM.
    return "%d.%03d" % divmod(ms, 1000) if ms >= 0 else str(D(ms) / 1000)


def fmt_value(s):
    """Canonical text for a sample value given as the API's string."""
    try:
        v = float(s)
    except ValueError:
        return s
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 2 ** 63:
        return "%d" % int(v)
    return repr(v)


def fmt_ts(t):
    # The API gives seconds as a JSON number (parsed as Decimal: exact).
    return int((D(t) * 1000).to_integral_value(rounding=decimal.ROUND_HALF_EVEN))


def esc(v):
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def fmt_metric(m):
    name = m.get("__name__", "")
    labels = ",".join('%s="%s"' % (k, esc(m[k])) for k in sorted(m) if k != "__name__")
    if labels:
        return "%s{%s}" % (name, labels)
    return name if name else "{}"


def api(url, path, params):
    full = url.rstrip("/") + path
    # VictoriaMetrics: nocache=1 turns off the response cache and the
    # latency-offset shift for this request; without it an instant query at
    # "now" misses samples of the last second or so. Prometheus ignores it.
    params = dict(params, nocache="1")
    data = urllib.parse.urlencode(params, doseq=True).encode()
    req = urllib.request.Request(full, data=data, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
    except urllib.error.HTTPError as e:
        sys.stderr.write("promq.py: %s: HTTP %d: %s\n" % (full, e.code, e.read().decode(errors="replace")))
        sys.exit(2)
    except (urllib.error.URLError, OSError) as e:
        sys.stderr.write("promq.py: %s: %s\n" % (full, e))
        sys.exit(2)
    doc = json.loads(body, parse_float=D, parse_int=D)
    if doc.get("status") != "success":
        sys.stderr.write("promq.py: %s: %s\n" % (full, body.decode(errors="replace")))
        sys.exit(2)
    return doc["data"]


def result_lines(data, start=None, end=None):
    """Lines for a query result; (sort key, text) tuples."""
    rt = data["resultType"]
    res = data["result"]
    out = []
    if rt == "vector":
        for s in res:
            out.append(((fmt_metric(s["metric"]), 0), "%s %s" % (fmt_metric(s["metric"]), fmt_value(s["value"][1]))))
    elif rt == "matrix":
        for s in res:
            m = fmt_metric(s["metric"])
            for t, v in s.get("values", []):
                ts = fmt_ts(t)
                if start is not None and ts < start:
                    continue
                if end is not None and ts > end:
                    continue
                out.append(((m, ts), "%s %s %d" % (m, fmt_value(v), ts)))
    elif rt in ("scalar", "string"):
        out.append((("", 0), fmt_value(res[1]) if rt == "scalar" else str(res[1])))
    else:
        raise SystemExit("promq.py: unknown resultType %r" % rt)
    return [line for _, line in sorted(out)]


def main(argv):
    mode = "query"
    opts = {}
    pos = []
    it = iter(argv)
    for a in it:
        if a in ("--range", "--series"):
            mode = a[2:]
        elif a in ("--time", "--start", "--end"):
            opts[a[2:]] = next(it)
        elif a.startswith("--") and "=" in a and a.split("=", 1)[0] in ("--time", "--start", "--end"):
            k, v = a[2:].split("=", 1)
            opts[k] = v
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            pos.append(a)
    if len(pos) != 2:
        sys.stderr.write(__doc__)
        return 2
    url, q = pos

    if mode == "query":
        # Always send an explicit time: VM evaluates a time-less query at a
        # rounded-down "now" and would miss samples of the last second.
        params = {"query": q, "time": ms_to_param(parse_time_ms(opts.get("time", "now")))}
        lines = result_lines(api(url, "/api/v1/query", params))
    elif mode == "range":
        start = parse_time_ms(opts.get("start", "1ms"))
        end = parse_time_ms(opts.get("end", "now+1d"))
        if end < start:
            raise SystemExit("promq.py: --end before --start")
        # Prometheus 2.x range selectors are [t-d, t], VM's are (t-d, t]:
        # widen by 1 ms and filter exactly here.
        query = "%s[%dms]" % (q, end - start + 1)
        data = api(url, "/api/v1/query", {"query": query, "time": ms_to_param(end)})
        lines = result_lines(data, start, end)
    else:
        # Explicit range: VM's default is only the last 5 minutes, and VM
        # treats start=0 as "not given", hence 1 ms.
        params = {"match[]": q,
                  "start": ms_to_param(max(1, parse_time_ms(opts.get("start", "1ms")))),
                  "end": ms_to_param(parse_time_ms(opts.get("end", "now+1d")))}
        data = api(url, "/api/v1/series", params)
        lines = sorted(fmt_metric(m) for m in data)
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
