#!/usr/bin/env python3
"""Counts what arrived against what the shipper logged as stored.

    delivered.py RUN_LOG [RUN_LOG...] RECEIVED

RUN_LOG: stderr of `nexus-shipper run` with DEBUG=true, whose lines
"cycle N at TS: K samples stored" say that the cycle stamped TS produced K
samples. RECEIVED: either VictoriaMetrics' /api/v1/export (JSON lines of
{"metric", "values", "timestamps"}) or receiver_fake's /__control/samples
(a JSON list of {"labels", "timestamp", ...}). Per timestamp, distinct series
are counted (a re-sent duplicate is not a second sample).

Prints one line "collected C delivered D missing M unlogged U duplicates X
cycles N" and exits 0 when nothing is missing and nothing arrived that was
never logged, 1 otherwise. Standard library only.
"""
import json
import re
import sys


def logged_cycles(paths):
    out = {}
    pat = re.compile(r"cycle \d+ at (\d+): (\d+) samples stored")
    for p in paths:
        with open(p, encoding="utf-8", errors="replace") as f:
            for m in pat.finditer(f.read()):
                out[int(m.group(1))] = int(m.group(2))
    return out


def received(path):
    """{timestamp: set of series keys}, total rows"""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    pairs, rows = {}, 0
    if text.lstrip().startswith("["):
        for s in json.loads(text):
            rows += 1
            pairs.setdefault(s["timestamp"], set()).add(json.dumps(s["labels"], sort_keys=True))
        return pairs, rows
    for line in text.splitlines():
        if not line.strip():
            continue
        j = json.loads(line)
        key = json.dumps(j["metric"], sort_keys=True)
        for ts in j["timestamps"]:
            rows += 1
            pairs.setdefault(ts, set()).add(key)
    return pairs, rows


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    logged = logged_cycles(argv[1:-1])
    pairs, rows = received(argv[-1])
    have = {ts: len(s) for ts, s in pairs.items()}
    missing = sum(max(0, n - have.get(ts, 0)) for ts, n in logged.items())
    unlogged = len(set(have) - set(logged))
    collected = sum(logged.values())
    print("collected %d delivered %d missing %d unlogged %d duplicates %d cycles %d"
          % (collected, collected - missing, missing, unlogged, rows - sum(have.values()),
             len(logged)))
    return 0 if logged and not missing and not unlogged else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
