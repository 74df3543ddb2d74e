#!/usr/bin/env python3
"""Builds spool records, segment files and `spool export` archives by hand,
as an attacker (or a damaged copy) would, for the archive trust tests.
Standard library only.

    mkarchive.py segment OUT SPEC          one standalone segment file (.seg)
    mkarchive.py archive OUT [--key FILE] SPEC [SPEC...]
                                           an export archive (signed with the
                                           key file's content, trailing
                                           whitespace stripped, when given)
    mkarchive.py hmac KEYFILE FILE          HMAC-SHA256 of FILE (hex)

SPEC is a JSON object: {"kind": 1|2, "target": "rw-default", "name":
"x.seg", "extra": "PUT /metrics/job/j", "payload": "text", "samples": 1}
(kind defaults to 1, name to "<n>.seg", extra and payload to "").
Encodings follow src/delivery/spool.h (segment) and src/delivery/spool_archive.h (archive).
"""
import hashlib
import hmac
import json
import struct
import sys

_T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    _T.append(c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ _T[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


def segment(spec):
    kind = int(spec.get("kind", 1))
    target = spec.get("target", "rw-default").encode()
    extra = spec.get("extra", "").encode()
    payload = spec.get("payload", "").encode()
    samples = int(spec.get("samples", 1))
    ts = 1700000000000
    hl = 56 + 2 + len(target) + 2 + len(extra) + 4
    h = bytearray(hl)
    h[0:8] = b"NXSHSPL1"
    struct.pack_into("<HBBI", h, 8, 1, kind, 0, hl)
    struct.pack_into("<qIIqqII", h, 16, ts, samples, samples, ts, ts, len(payload), crc32c(payload))
    struct.pack_into("<H", h, 56, len(target))
    h[58:58 + len(target)] = target
    struct.pack_into("<H", h, 58 + len(target), len(extra))
    h[60 + len(target):60 + len(target) + len(extra)] = extra
    # header CRC: bytes before the state byte, a zero for it, the rest
    c = crc32c(bytes(h[0:11]))
    c = crc32c(b"\0", c)
    c = crc32c(bytes(h[12:hl - 4]), c)
    struct.pack_into("<I", h, hl - 4, c)
    return bytes(h) + payload


def archive(specs, key=None):
    segs, out = [], []
    for n, spec in enumerate(specs):
        data = segment(spec)
        out.append(data)
        segs.append({"target": spec.get("target", "rw-default"),
                     "name": spec.get("name", "%d.seg" % n), "size": len(data),
                     "crc32c": "%08x" % crc32c(data), "samples": int(spec.get("samples", 1)),
                     "min_ts": 1700000000000, "max_ts": 1700000000000})
    man = {"format": "nexus-shipper spool export 1", "created_ms": 1700000000000,
           "host": "crafted", "samples": len(specs), "segments": segs}
    body = b"NXSHEXP1\n" + json.dumps(man, separators=(",", ":")).encode() + b"\n" + b"".join(out)
    body += b"END %08x\n" % crc32c(body)
    if key is not None:
        body += b"HMAC-SHA256 " + hmac.new(key, body, hashlib.sha256).hexdigest().encode() + b"\n"
    return body


def read_key(path):
    with open(path, "rb") as f:
        return f.read().rstrip()


def main(argv):
    if len(argv) >= 3 and argv[0] == "segment":
        with open(argv[1], "wb") as f:
            f.write(segment(json.loads(argv[2])))
    elif len(argv) >= 2 and argv[0] == "archive":
        out, rest, key = argv[1], argv[2:], None
        if rest[:1] == ["--key"]:
            key, rest = read_key(rest[1]), rest[2:]
        with open(out, "wb") as f:
            f.write(archive([json.loads(s) for s in rest], key))
    elif len(argv) == 3 and argv[0] == "hmac":
        with open(argv[2], "rb") as f:
            print(hmac.new(read_key(argv[1]), f.read(), hashlib.sha256).hexdigest())
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
