"""Shared plumbing for the nexus-shipper test fakes (standard library only).

Every fake in this directory:
  * binds --host/--port (port 0 = a random free port chosen by the kernel),
  * writes the chosen port, digits + newline, to --port-file atomically
    (temp file + rename) once it is listening, so shell tests can poll for
    that file,
  * logs one line per request to stderr,
  * stops cleanly (exit 0) on SIGTERM or SIGINT.

Nothing here is specific to Nexus, GitLab or remote-write.
"""

import argparse
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that does not wait for stuck handlers on exit."""

    daemon_threads = True
    allow_reuse_address = True
    # Listen backlog: the shipper may open many connections at once.
    request_queue_size = 64


class Handler(BaseHTTPRequestHandler):
    """Base request handler: HTTP/1.1 keep-alive, one-line logging, helpers.

    Subclasses set `fake_name` (used as log prefix) and implement do_GET etc.
    Every response carries a Content-Length so keep-alive works with libcurl.
    """

    protocol_version = "HTTP/1.1"
    fake_name = "fake"
    server_version = "fake"
    sys_version = ""

    def version_string(self):
        return self.server_version

    def setup(self):
        """Turn Nagle off: headers and body go out in two writes, and with
        Nagle on the body would wait ~40 ms for the client's delayed ACK."""
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    # One line per request: "<name>: <client> "<request line>" <status> <size>".
    def log_request(self, code="-", size="-"):
        code = getattr(code, "value", code)
        sys.stderr.write("%s: %s \"%s\" %s %s\n" % (
            self.fake_name, self.client_address[0], self.requestline, code, size))
        sys.stderr.flush()

    def log_message(self, fmt, *args):
        sys.stderr.write("%s: %s %s\n" % (self.fake_name, self.client_address[0], fmt % args))
        sys.stderr.flush()

    def read_body(self):
        """Return the request body as bytes (Content-Length or chunked).

        Always call this before answering a request that may carry a body,
        otherwise the unread bytes poison the next request on a kept-alive
        connection.
        """
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # Trailer section: read until the empty line.
                    while True:
                        trailer = self.rfile.readline(65537)
                        if not trailer or trailer in (b"\r\n", b"\n"):
                            break
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)  # CRLF after each chunk
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send(self, status, body=b"", content_type=None, headers=None):
        """Send a complete response. `body` is str or bytes; returns nothing."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        no_body = status in (204, 304) or status < 200
        if no_body:
            body = b""  # these statuses must not carry a body (RFC 9110)
        # send_response() would log without the size; log here instead.
        self.send_response_only(status)
        self.send_header("Server", self.version_string())
        self.send_header("Date", self.date_time_string())
        self.log_request(status, len(body))
        if content_type and body:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            if isinstance(value, (list, tuple)):
                for v in value:
                    self.send_header(name, str(v))
            else:
                self.send_header(name, str(value))
        if not no_body:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def drop_connection(self):
        """Close the connection without sending any response (curl error 52)."""
        self.close_connection = True
        sys.stderr.write("%s: %s \"%s\" dropped\n" % (
            self.fake_name, self.client_address[0], self.requestline))
        sys.stderr.flush()


def common_arguments(parser):
    """Add the --host/--port/--port-file options every fake shares."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind, 0 = random free port (default)")
    parser.add_argument("--port-file", help="write the bound port here (atomically) once listening")


def write_port_file(path, port):
    """Write "<port>\\n" to path via temp file + rename, so readers never see a partial file."""
    if not path:
        return
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def start_server(host, port, handler_class, state=None):
    """Bind a FakeServer, attach `state` as server.state, serve it in a thread.

    Returns the server; its bound port is server.server_address[1].
    Raises OSError when the port cannot be bound.
    """
    server = FakeServer((host, port), handler_class)
    server.state = state
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="serve-%d" % server.server_address[1], daemon=True)
    thread.start()
    server.thread = thread
    return server


def stop_server(server):
    """Stop a server started by start_server and release its socket."""
    server.shutdown()
    server.server_close()


def wait_for_signal(name):
    """Block the main thread until SIGTERM or SIGINT arrives."""
    stop = threading.Event()

    def on_signal(signum, _frame):
        sys.stderr.write("%s: signal %d, shutting down\n" % (name, signum))
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # Event.wait with a timeout keeps the main thread responsive to signals.
    while not stop.wait(0.5):
        pass


def new_parser(description):
    return argparse.ArgumentParser(description=description,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def now_ms():
    return int(time.time() * 1000)
