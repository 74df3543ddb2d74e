#!/usr/bin/env python3
# Copied from ../shared/bench/vmagent-replay/gen.py (the harness that measured
# vmagent); bench_spoolfill.c produces the same samples for nexus-shipper.
"""Write a deterministic load for outage/replay benchmarks.

SERIES series x CYCLES cycles, Prometheus text exposition format with
explicit millisecond timestamps, one file per cycle (cycle-00.prom, ...).
Every series has __name__ plus 5 labels; values depend only on (series,
cycle), so two runs carry the same samples at different times.
"""
import argparse
import os
import time

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("outdir")
ap.add_argument("--series", type=int, default=100_000)
ap.add_argument("--cycles", type=int, default=10)
ap.add_argument("--step", type=int, default=15, help="seconds between cycles")
ap.add_argument("--start-ms", type=int, default=None,
                help="timestamp of cycle 0 (default: now - cycles*step)")
a = ap.parse_args()

start = a.start_ms if a.start_ms is not None else \
    int(time.time() * 1000) - a.cycles * a.step * 1000
formats = ["maven2", "npm", "docker", "pypi", "raw"]
os.makedirs(a.outdir, exist_ok=True)

# Label sets are fixed per series; build them once.
series = []
for i in range(a.series):
    series.append('nexus_bench_metric_%02d{job="nexus",instance="nx-%d",'
                  'repository="repo-%05d",format="%s",blob_store="bs-%d"}'
                  % (i % 20, i % 10, i // 20, formats[i % 5], i % 7))

for c in range(a.cycles):
    ts = start + c * a.step * 1000
    path = os.path.join(a.outdir, "cycle-%02d.prom" % c)
    with open(path, "w") as f:
        f.write("".join("%s %d %d\n" % (s, (i * 7919 + c * 104729) % 1000003, ts)
                        for i, s in enumerate(series)))
print("%d samples in %d files under %s" % (a.series * a.cycles, a.cycles, a.outdir))
