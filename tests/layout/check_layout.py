#!/usr/bin/env python3
"""The source tree's layout rules (src/README.md), checked.

    check_layout.py SRC_DIR

- Include directions: core includes nothing above it; wire includes neither
  the HTTP clients nor delivery; collectors include neither commands nor
  delivery; delivery includes no collector and no command; the cleanup
  engine includes no command; libnexusskopeo (src/skopeo/ but for
  skopeo_metrics, which renders runs into the series buffer) stands alone
  on core.
- Headers are included by their bare name (every folder is on the include
  path): no "../" and no folder in an include.
- No source file over MAX_LINES lines (one job per file).
Prints every violation with FILE and the include; exits 1 if any.
Standard library only.
"""
import os
import re
import sys

MAX_LINES = 850
FORBIDDEN = {
    "core": {"pipeline", "collectors", "wire", "delivery", "clients", "cleanup", "skopeo", "cli"},
    "wire": {"clients", "delivery", "cli", "collectors", "cleanup", "skopeo"},
    "collectors": {"cli", "delivery"},
    "delivery": {"collectors", "cli"},
    "cleanup": {"cli"},
    "clients": {"cli", "delivery", "collectors"},
    "pipeline": {"cli", "collectors"},  # the scheduler hands its batch to the sender
    "skopeo": {"pipeline", "collectors", "wire", "delivery", "clients", "cleanup", "cli"},
}
EXEMPT = {"skopeo/skopeo_metrics.c", "skopeo/skopeo_metrics.h"}  # not in the library


def main(src):
    where, files = {}, []
    for d, _, fs in os.walk(src):
        for f in fs:
            if f.endswith((".c", ".h")):
                rel = os.path.relpath(os.path.join(d, f), src)
                files.append(rel)
                if f.endswith(".h"):
                    if f in where:
                        print(f"two headers named {f}: {where[f]}/{f} and {rel}")
                    where[f] = os.path.dirname(rel) or "."
    bad = 0
    for rel in sorted(files):
        folder = os.path.dirname(rel) or "."
        text = open(os.path.join(src, rel), encoding="utf-8", errors="replace").read()
        n = text.count("\n")
        if n > MAX_LINES:
            print(f"{rel}: {n} lines (more than {MAX_LINES}: split it)")
            bad += 1
        for m in re.finditer(r'^#include "([^"]+)"', text, re.M):
            inc = m.group(1)
            if "/" in inc and not inc.endswith(".pb-c.h"):
                print(f"{rel}: #include \"{inc}\" (include headers by their bare name)")
                bad += 1
                continue
            w = where.get(os.path.basename(inc))
            if w and rel not in EXEMPT and w in FORBIDDEN.get(folder, set()):
                print(f"{rel}: includes {w}/{inc} ({folder} may not include {w})")
                bad += 1
    print(f"layout: {len(files)} files, {bad} violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "src"))
