#!/usr/bin/env python3
"""Remote-write receiver and Pushgateway stand-in for nexus-shipper tests.

Standard library only. Real receivers (Prometheus, VictoriaMetrics,
Pushgateway) are used for the happy path; this fake exists for the answers
they will not give on demand: 400/429/5xx, Retry-After, a sequence of
failures followed by success, slow answers, dropped connections.

    receiver_fake.py [--host 127.0.0.1] [--port 0] [--port-file PATH]
                     [--status N] [--body TEXT] [--sequence 503,503,204]
                     [--retry-after SECONDS] [--delay SECONDS]

Writes accepted
  POST /api/v1/write, /api/v1/push, /api/prom/push, /receive   (remote-write)
  PUT/POST/DELETE /metrics/job/<job>[/<label>/<value>...]       (Pushgateway)
Every write is recorded (headers, body length, status answered) and
remote-write bodies are decoded (snappy + prompb WriteRequest) with a
pure-Python decoder, or the `snappy` module when it is installed.

Control (never recorded)
  GET    /__control/requests[?since=N]   recorded requests, JSON list
  DELETE /__control/requests             forget them
  GET    /__control/requests/<i>/body    raw body of request i
  GET    /__control/samples[?name=M]     samples of all 2xx remote-writes, flattened
  GET    /__control/config               current behaviour
  POST   /__control  (or /__control/config)  replace behaviour:
         {"status": 400, "body": "out of bounds", "sequence": [503, 204],
          "retry_after": 2, "delay": 0.5, "mode": "drip", "drip_interval": 0.5,
          "huge_bytes": 10737418240, "huge_length": false}

Modes for writes (--mode, or "mode" in the control config); the request is
recorded with its status as null (never counted as delivered):
  drip   the whole answer (status line, headers, body of 64 KiB) one byte
         every drip_interval seconds, until the client hangs up; records
         drip_seconds (how long the client listened) and drip_bytes
  huge   200 and a body of huge_bytes (default 10 GiB) streamed as fast as
         the client reads, without Content-Length (huge_length: with it);
         records huge_sent (bytes written before the client hung up)
"""

import base64
import gzip
import json
import os
import re
import struct
import sys
import threading
import time
from urllib.parse import parse_qs, unquote, urlsplit

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakecommon  # noqa: E402

try:  # optional: python-snappy, if the interpreter has it
    import snappy as _snappy_module
except ImportError:  # the pure-Python decoder below is always enough
    _snappy_module = None

REMOTE_WRITE_PATHS = ("/api/v1/write", "/api/v1/push", "/api/prom/push", "/receive")
MAX_UNCOMPRESSED = 256 * 1024 * 1024   # never trust a length field beyond this
MAX_RECORDED_REQUESTS = 10000
METRIC_TYPES = ["UNKNOWN", "COUNTER", "GAUGE", "HISTOGRAM", "GAUGEHISTOGRAM", "SUMMARY",
                "INFO", "STATESET"]


# ---------------------------------------------------------------------------
# Snappy (raw block format, as remote-write uses) and protobuf decoding
# ---------------------------------------------------------------------------

def read_varint(data, pos):
    """Return (value, new_pos); raises ValueError on truncation or > 64 bits."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift >= 64:
            raise ValueError("varint too long")


def snappy_decompress_py(data):
    """Decompress one snappy block (not the framed format). Raises ValueError if corrupt."""
    length, pos = read_varint(data, 0)
    if length > MAX_UNCOMPRESSED:
        raise ValueError("uncompressed length %d too large" % length)
    out = bytearray()
    n = len(data)
    while pos < n:
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            size = tag >> 2
            if size >= 60:
                extra = size - 59
                if pos + extra > n:
                    raise ValueError("truncated literal length")
                size = int.from_bytes(data[pos:pos + extra], "little")
                pos += extra
            size += 1
            if pos + size > n:
                raise ValueError("truncated literal")
            out += data[pos:pos + size]
            pos += size
            continue
        if kind == 1:  # copy, 1-byte offset
            if pos + 1 > n:
                raise ValueError("truncated copy")
            size = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | data[pos]
            pos += 1
        else:  # copy, 2- or 4-byte offset
            width = 2 if kind == 2 else 4
            if pos + width > n:
                raise ValueError("truncated copy")
            size = (tag >> 2) + 1
            offset = int.from_bytes(data[pos:pos + width], "little")
            pos += width
        if offset == 0 or offset > len(out):
            raise ValueError("bad copy offset %d" % offset)
        start = len(out) - offset
        if offset >= size:
            out += out[start:start + size]
        else:  # overlapping copy repeats the pattern
            for i in range(size):
                out.append(out[start + i])
        if len(out) > length:
            raise ValueError("output exceeds declared length")
    if len(out) != length:
        raise ValueError("length mismatch: declared %d, got %d" % (length, len(out)))
    return bytes(out)


def snappy_decompress(data):
    if _snappy_module is not None:
        try:
            return _snappy_module.uncompress(data)
        except Exception as exc:  # the module raises its own exception types
            raise ValueError("snappy: %s" % exc)
    return snappy_decompress_py(data)


def pb_fields(data):
    """Yield (field_number, wire_type, value) of a protobuf message.

    value is an int for varint, bytes for length-delimited, raw 8/4 bytes for
    fixed64/fixed32. Raises ValueError on malformed input.
    """
    pos, n = 0, len(data)
    while pos < n:
        key, pos = read_varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(data, pos)
        elif wire == 1:
            if pos + 8 > n:
                raise ValueError("truncated fixed64")
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = read_varint(data, pos)
            if pos + size > n:
                raise ValueError("truncated length-delimited field")
            value, pos = data[pos:pos + size], pos + size
        elif wire == 5:
            if pos + 4 > n:
                raise ValueError("truncated fixed32")
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield field, wire, value


def to_int64(v):
    return v - (1 << 64) if v >= (1 << 63) else v


def decode_write_request(raw):
    """prompb.WriteRequest bytes -> {"timeseries": [...], "metadata": [...]}.

    Each series: {"labels": {name: value}, "label_names": [names in wire order],
    "samples": [[value, timestamp_ms], ...]}. NaN/Inf values become strings
    ("NaN", "+Inf", "-Inf") so the result stays valid JSON.
    """
    series, metadata = [], []
    for field, wire, value in pb_fields(raw):
        if field == 1 and wire == 2:
            labels, names, samples = {}, [], []
            for f, w, v in pb_fields(value):
                if f == 1 and w == 2:
                    name = val = ""
                    for lf, lw, lv in pb_fields(v):
                        if lf == 1 and lw == 2:
                            name = lv.decode("utf-8")
                        elif lf == 2 and lw == 2:
                            val = lv.decode("utf-8")
                    labels[name] = val
                    names.append(name)
                elif f == 2 and w == 2:
                    sval, ts = 0.0, 0
                    for sf, sw, sv in pb_fields(v):
                        if sf == 1 and sw == 1:
                            sval = struct.unpack("<d", sv)[0]
                        elif sf == 2 and sw == 0:
                            ts = to_int64(sv)
                    samples.append([json_float(sval), ts])
            series.append({"labels": labels, "label_names": names, "samples": samples})
        elif field == 3 and wire == 2:
            md = {"type": "UNKNOWN", "metric_family_name": "", "help": "", "unit": ""}
            for f, w, v in pb_fields(value):
                if f == 1 and w == 0:
                    md["type"] = METRIC_TYPES[v] if v < len(METRIC_TYPES) else str(v)
                elif f == 2 and w == 2:
                    md["metric_family_name"] = v.decode("utf-8")
                elif f == 4 and w == 2:
                    md["help"] = v.decode("utf-8")
                elif f == 5 and w == 2:
                    md["unit"] = v.decode("utf-8")
            metadata.append(md)
    return {"timeseries": series, "metadata": metadata}


def json_float(x):
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "+Inf" if x > 0 else "-Inf"
    return x


# ---------------------------------------------------------------------------
# Behaviour and state
# ---------------------------------------------------------------------------

def parse_grouping(path):
    """/metrics/job/<job>[/<label>/<value>...] -> (job, {label: value}) or None.

    Handles the "<label>@base64/<base64url value>" form Pushgateway accepts.
    """
    parts = path.split("/")[2:]  # drop "", "metrics"
    if len(parts) < 2 or len(parts) % 2 or parts[0] not in ("job", "job@base64"):
        return None
    pairs = {}
    for i in range(0, len(parts), 2):
        name, value = unquote(parts[i]), unquote(parts[i + 1])
        if name.endswith("@base64"):
            name = name[:-len("@base64")]
            value = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("utf-8")
        pairs[name] = value
    job = pairs.pop("job")
    return job, pairs


class State:
    def __init__(self, config):
        self.lock = threading.Lock()
        self.requests = []   # recorded entries (JSON-able)
        self.bodies = []     # raw bodies, same index as requests
        self.first_index = 0  # index of requests[0] after trimming
        self.set_config(config)

    def set_config(self, config):
        """Replace behaviour; the sequence restarts from its first status."""
        clean = {"status": None, "body": "", "sequence": [], "retry_after": None, "delay": 0.0,
                 "mode": "normal", "drip_interval": 0.5, "huge_bytes": 10 << 30,
                 "huge_length": False}
        for key, value in config.items():
            if key not in clean:
                raise ValueError("unknown config key %r" % key)
            clean[key] = value
        if clean["mode"] not in ("normal", "drip", "huge"):
            raise ValueError("mode must be normal, drip or huge")
        if isinstance(clean["sequence"], str):
            clean["sequence"] = [int(s) for s in clean["sequence"].split(",") if s.strip()]
        clean["sequence"] = [int(s) for s in clean["sequence"]]
        with self.lock:
            self.config = clean
            self.position = 0

    def mode(self):
        with self.lock:
            return dict(self.config)

    def next_answer(self, default_status):
        """(status, body, retry_after, delay) for the next write; advances the sequence."""
        with self.lock:
            c = self.config
            if c["sequence"]:
                status = c["sequence"][min(self.position, len(c["sequence"]) - 1)]
                self.position += 1
            else:
                status = c["status"] if c["status"] is not None else default_status
            return int(status), c["body"] or "", c["retry_after"], float(c["delay"] or 0)

    def record(self, entry, body):
        with self.lock:
            entry["index"] = self.first_index + len(self.requests)
            self.requests.append(entry)
            self.bodies.append(body)
            if len(self.requests) > MAX_RECORDED_REQUESTS:
                del self.requests[0]
                del self.bodies[0]
                self.first_index += 1


class ReceiverHandler(fakecommon.Handler):
    fake_name = "receiver_fake"
    server_version = "receiver_fake/1.0"

    def do_POST(self):
        self.dispatch()

    do_GET = do_PUT = do_DELETE = do_HEAD = do_POST

    def dispatch(self):
        body = self.read_body()
        state = self.server.state
        url = urlsplit(self.path)
        path = url.path
        if path == "/__control" or path.startswith("/__control/"):
            return self.control(state, path, url.query, body)
        if self.command == "GET" and path in ("/-/healthy", "/-/ready", "/health"):
            return self.send(200, "OK\n", "text/plain; charset=utf-8")

        entry = {"time": time.time(), "method": self.command, "path": path, "query": url.query,
                 "headers": {k: v for k, v in self.headers.items()}, "body_length": len(body)}
        if self.command == "POST" and path in REMOTE_WRITE_PATHS:
            entry["kind"] = "remote_write"
            self.decode_remote_write(entry, body)
            default = 204
        elif path.startswith("/metrics/") and self.command in ("PUT", "POST", "DELETE"):
            entry["kind"] = "pushgateway"
            default = self.decode_push(entry, body)
        else:
            entry["kind"] = "other"
            entry["status"] = 404
            state.record(entry, body)
            return self.send(404, "404 page not found\n", "text/plain; charset=utf-8")

        c = state.mode()
        if c["mode"] != "normal" and default < 400:
            entry["status"] = None
            entry["mode"] = c["mode"]
            state.record(entry, body)
            if c["mode"] == "drip":
                return self.drip(entry, state, float(c["drip_interval"]))
            return self.huge(entry, state, int(c["huge_bytes"]), bool(c["huge_length"]))
        if default >= 400:  # malformed grouping key: answer like Pushgateway, ignore config
            status, text, retry_after, delay = default, entry["error"], None, 0.0
        else:
            status, text, retry_after, delay = state.next_answer(default)
        if delay:
            time.sleep(delay)
        entry["status"] = status if status else None
        state.record(entry, body)
        if status == 0:  # status 0 = drop the connection without answering
            return self.drop_connection()
        headers = {}
        if retry_after is not None and status >= 300:
            headers["Retry-After"] = retry_after
        self.send(status, text, "text/plain; charset=utf-8", headers)

    def drip(self, entry, state, interval):
        """One byte of a complete answer every `interval` s until the client leaves."""
        answer = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 65536\r\n\r\n"
                  + b"x" * 65536)
        t0, sent = time.time(), 0
        try:
            for i in range(len(answer)):
                self.wfile.write(answer[i:i + 1])
                self.wfile.flush()
                sent += 1
                time.sleep(interval)
        except OSError:
            pass
        with state.lock:
            entry["drip_seconds"] = round(time.time() - t0, 3)
            entry["drip_bytes"] = sent
        sys.stderr.write("receiver_fake: drip ended after %.1f s, %d bytes\n"
                         % (time.time() - t0, sent))
        self.close_connection = True

    def huge(self, entry, state, total, with_length):
        """200 with `total` bytes of body, as fast as the client takes them."""
        head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        head += ("Content-Length: %d\r\n" % total) if with_length else "Connection: close\r\n"
        block = b"x" * 65536
        sent = 0
        try:
            self.wfile.write((head + "\r\n").encode("ascii"))
            while sent < total:
                n = min(len(block), total - sent)
                self.wfile.write(block[:n])
                sent += n
        except OSError:
            pass
        with state.lock:
            entry["huge_sent"] = sent
        sys.stderr.write("receiver_fake: huge body ended after %d bytes\n" % sent)
        self.close_connection = True

    def decode_remote_write(self, entry, body):
        """Add "timeseries"/"metadata" (or "decode_error") to entry."""
        try:
            raw = body
            if self.headers.get("Content-Encoding", "").lower() == "snappy":
                raw = snappy_decompress(body)
            entry.update(decode_write_request(raw))
        except (ValueError, UnicodeDecodeError, struct.error) as exc:
            entry["decode_error"] = str(exc)

    def decode_push(self, entry, body):
        """Fill the Pushgateway fields; return the default status (or 400 when malformed)."""
        grouping = parse_grouping(self.path.split("?", 1)[0])
        if grouping is None:
            entry["error"] = "bad grouping key in path %s\n" % self.path
            return 400
        entry["job"], entry["grouping"] = grouping
        if self.headers.get("Content-Encoding", "").lower() == "gzip" and body:
            try:
                body = gzip.decompress(body)
            except OSError as exc:
                entry["decode_error"] = str(exc)
        entry["body"] = body.decode("utf-8", errors="replace")
        return 202 if self.command == "DELETE" else 200

    def control(self, state, path, query, body):
        q = parse_qs(query)
        if path == "/__control/requests" and self.command == "GET":
            since = int(q.get("since", ["0"])[0])
            with state.lock:
                data = [r for r in state.requests if r["index"] >= since]
                text = json.dumps(data, indent=2)
            return self.send(200, text, "application/json")
        if path == "/__control/requests" and self.command == "DELETE":
            with state.lock:
                state.first_index += len(state.requests)
                state.requests, state.bodies = [], []
            return self.send(200, '{"ok": true}', "application/json")
        m = re.fullmatch(r"/__control/requests/(\d+)/body", path)
        if m and self.command == "GET":
            with state.lock:
                i = int(m.group(1)) - state.first_index
                raw = state.bodies[i] if 0 <= i < len(state.bodies) else None
            if raw is None:
                return self.send(404, '{"error": "no such request"}', "application/json")
            return self.send(200, raw, "application/octet-stream")
        if path == "/__control/samples" and self.command == "GET":
            name = q.get("name", [None])[0]
            out = []
            with state.lock:
                for r in state.requests:
                    if r.get("kind") != "remote_write" or not r.get("status") or \
                            not 200 <= r["status"] < 300:
                        continue
                    for ts in r.get("timeseries", []):
                        if name and ts["labels"].get("__name__") != name:
                            continue
                        for value, stamp in ts["samples"]:
                            out.append({"labels": ts["labels"], "value": value,
                                        "timestamp": stamp, "request": r["index"]})
            return self.send(200, json.dumps(out, indent=2), "application/json")
        if path in ("/__control", "/__control/config") and self.command == "GET":
            with state.lock:
                text = json.dumps(dict(state.config, position=state.position), indent=2)
            return self.send(200, text, "application/json")
        if path in ("/__control", "/__control/config") and self.command in ("POST", "PUT"):
            try:
                config = json.loads(body.decode("utf-8") or "{}")
                if not isinstance(config, dict):
                    raise ValueError("config must be a JSON object")
                state.set_config(config)
            except ValueError as exc:
                return self.send(400, json.dumps({"error": str(exc)}), "application/json")
            return self.send(200, '{"ok": true}', "application/json")
        return self.send(404, '{"error": "unknown control endpoint"}', "application/json")


def main(argv=None):
    parser = fakecommon.new_parser(__doc__)
    fakecommon.common_arguments(parser)
    parser.add_argument("--status", type=int, help="status for every write (default: 204 "
                        "remote-write, 200 push, 202 delete; 0 = drop the connection)")
    parser.add_argument("--body", default="", help="response body text for writes")
    parser.add_argument("--sequence", default="", help="comma-separated statuses, one per "
                        "write; the last one repeats (overrides --status)")
    parser.add_argument("--retry-after", help="send Retry-After: VALUE on non-2xx answers")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before answering")
    parser.add_argument("--mode", default="normal", choices=("normal", "drip", "huge"),
                        help="drip: the answer one byte at a time; huge: an endless body")
    args = parser.parse_args(argv)

    config = {"status": args.status, "body": args.body, "sequence": args.sequence,
              "retry_after": args.retry_after, "delay": args.delay, "mode": args.mode}
    try:
        state = State(config)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        server = fakecommon.start_server(args.host, args.port, ReceiverHandler, state)
    except OSError as exc:
        sys.stderr.write("receiver_fake: cannot listen: %s\n" % exc)
        return 1
    port = server.server_address[1]
    sys.stderr.write("receiver_fake: listening on %s:%d (snappy module: %s)\n"
                     % (args.host, port, "yes" if _snappy_module else "no, pure Python"))
    fakecommon.write_port_file(args.port_file, port)
    fakecommon.wait_for_signal("receiver_fake")
    fakecommon.stop_server(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
