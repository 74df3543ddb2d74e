#!/usr/bin/env python3
"""Slow HTTP clients (slowloris): opens COUNT connections to HOST:PORT,
sends a request line, then one more header line every EVERY seconds on
each, never finishing the head. Writes READY_FILE once every connection is
open, then runs until HOLD seconds passed or the server closed them all.
Prints one JSON line: connected, failed (connect errors), closed_at (seconds
after the first connect at which the server closed each closed one),
open_at_end. --src binds the client side to an address. stdlib only."""
import argparse
import json
import select
import socket
import time

ap = argparse.ArgumentParser()
ap.add_argument("host")
ap.add_argument("port", type=int)
ap.add_argument("count", type=int)
ap.add_argument("ready_file")
ap.add_argument("--hold", type=float, default=10.0)
ap.add_argument("--every", type=float, default=1.0)
ap.add_argument("--src", default=None)
a = ap.parse_args()

t0 = time.monotonic()
socks, failed = [], 0
for i in range(a.count):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if a.src:
            s.bind((a.src, 0))
        s.settimeout(5)
        s.connect((a.host, a.port))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: slow\r\n")
        s.setblocking(False)
        socks.append(s)
    except OSError:
        failed += 1
with open(a.ready_file, "w") as f:
    f.write("%d\n" % len(socks))

closed_at = []
open_ = {s.fileno(): s for s in socks}
last_send = time.monotonic()
n = 0
while open_ and time.monotonic() - t0 < a.hold:
    r, _, _ = select.select(list(open_.values()), [], [], 0.1)
    for s in r:
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:  # closed (an answer would also end the slow request)
            closed_at.append(round(time.monotonic() - t0, 3))
            del open_[s.fileno()]
            s.close()
    if time.monotonic() - last_send >= a.every:
        last_send = time.monotonic()
        n += 1
        for fd, s in list(open_.items()):
            try:
                s.send(b"X-Slow-%d: y\r\n" % n)
            except OSError:
                closed_at.append(round(time.monotonic() - t0, 3))
                del open_[fd]
                s.close()
print(json.dumps({"connected": len(socks), "failed": failed, "closed_at": sorted(closed_at),
                  "open_at_end": len(open_)}))
for s in open_.values():
    s.close()
