#!/usr/bin/python3
"""Push samples to a Prometheus remote-write 1.0 receiver, independently of
nexus-shipper (used to prove the test harness and to seed receivers).

Usage:
  rw_push.py [--header 'K: V']... [--expect-status N] [--no-sort]
             URL SERIES VALUE TS_MS [SERIES VALUE TS_MS ...]

  SERIES   'name{a="b",c="d"}' or 'name' (label values may use \\\\ \\" \\n escapes)
  VALUE    a float, NaN, +Inf, -Inf, or 'stale' (the staleness NaN 0x7ff0000000000002)
  TS_MS    int64 milliseconds since the epoch

Triples naming the same SERIES become one TimeSeries with several samples,
in the order given. Labels are sorted by name unless --no-sort (for negative
tests). The WriteRequest protobuf is hand-encoded (no generated modules) and
compressed with the snappy *block* format (Debian python3-snappy, hence
/usr/bin/python3).

Prints the HTTP status code (and the body, if any) to stdout; status 0 means
no HTTP answer (connection refused, timeout). Exit 0 on 2xx (or when the
status equals --expect-status), 1 otherwise, 2 on usage errors.
"""
import struct
import sys
import urllib.error
import urllib.request

try:
    import snappy  # python3-snappy
except ImportError:  # pragma: no cover
    sys.stderr.write("rw_push.py: needs the 'snappy' module (Debian python3-snappy); "
                     "run it with /usr/bin/python3\n")
    sys.exit(2)

STALE_NAN_BITS = 0x7FF0000000000002


def varint(n):
    n &= 0xFFFFFFFFFFFFFFFF  # int64 -> two's complement, as protobuf does
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_len(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def field_varint(num, v):
    return varint(num << 3 | 0) + varint(v)


def field_fixed64(num, raw8):
    return varint(num << 3 | 1) + raw8


def encode_label(name, value):
    return field_len(1, name.encode()) + field_len(2, value.encode())


def encode_sample(value_bits, ts):
    # proto3 omits default values; receivers accept either, keep it canonical.
    out = b""
    if value_bits != 0:
        out += field_fixed64(1, struct.pack("<Q", value_bits))
    if ts != 0:
        out += field_varint(2, ts)
    return out


def parse_series(s):
    """'name{a="b"}' -> list of (name, value) pairs including __name__."""
    s = s.strip()
    brace = s.find("{")
    if brace < 0:
        return [("__name__", s)]
    name = s[:brace].strip()
    if not s.endswith("}"):
        raise ValueError("series must end with '}': %r" % s)
    body = s[brace + 1:-1]
    labels = []
    if name:
        labels.append(("__name__", name))
    i = 0
    while i < len(body):
        while i < len(body) and body[i] in " ,":
            i += 1
        if i >= len(body):
            break
        eq = body.index("=", i)
        lname = body[i:eq].strip()
        i = eq + 1
        if body[i] != '"':
            raise ValueError("label value must be quoted in %r" % s)
        i += 1
        val = []
        while body[i] != '"':
            if body[i] == "\\":
                i += 1
                val.append({"n": "\n", "\\": "\\", '"': '"'}.get(body[i], body[i]))
            else:
                val.append(body[i])
            i += 1
        i += 1
        labels.append((lname, "".join(val)))
    return labels


def value_bits(v):
    lv = v.lower()
    if lv == "stale":
        return STALE_NAN_BITS
    if lv == "nan":
        return 0x7FF8000000000001  # Prometheus' value.NormalNaN
    return struct.unpack("<Q", struct.pack("<d", float(v)))[0]


def main(argv):
    headers = {}
    expect = None
    sort = True
    args = []
    it = iter(argv)
    for a in it:
        if a == "--header":
            k, _, v = next(it).partition(":")
            headers[k.strip()] = v.strip()
        elif a == "--expect-status":
            expect = int(next(it))
        elif a == "--no-sort":
            sort = False
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            args.append(a)
    if len(args) < 4 or (len(args) - 1) % 3:
        sys.stderr.write(__doc__)
        return 2
    url = args[0]
    order = []
    series = {}
    for i in range(1, len(args), 3):
        key = args[i]
        if key not in series:
            series[key] = []
            order.append(key)
        series[key].append((value_bits(args[i + 1]), int(args[i + 2])))

    body = b""
    for key in order:
        labels = parse_series(key)
        if sort:
            labels.sort()
        ts = b"".join(field_len(1, encode_label(n, v)) for n, v in labels)
        ts += b"".join(field_len(2, encode_sample(b, t)) for b, t in series[key])
        body += field_len(1, ts)

    h = {
        "Content-Encoding": "snappy",
        "Content-Type": "application/x-protobuf",
        "X-Prometheus-Remote-Write-Version": "0.1.0",
        "User-Agent": "rw_push.py/1.0",
    }
    h.update(headers)
    req = urllib.request.Request(url, data=snappy.compress(body), headers=h, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, text = r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        status, text = 0, "connection error: %s" % getattr(e, "reason", e)
    print(status if not text.strip() else "%d %s" % (status, text.strip()))
    if expect is not None:
        return 0 if status == expect else 1
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
