#!/usr/bin/env python3
"""An HTTPS endpoint with a given certificate, for certificate and docker
connector tests. Standard library only.

    tls_fake.py --cert PEM --key PEM [--chain PEM] [--host 127.0.0.1] [--port 0]
                [--port-file PATH]

Answers over TLS (the handshake runs in the connection's own thread, so a
client that connects and never speaks blocks nobody):

  GET /v2/   401 with WWW-Authenticate and Docker-Distribution-Api-Version:
             registry/2.0, like a healthy Nexus docker connector
  GET other  200 "ok"

A failed handshake (e.g. a client that rejects the certificate) is logged
and the fake keeps serving. SIGTERM/SIGINT stop it (exit 0).
"""

import os
import ssl
import sys
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakecommon  # noqa: E402

NEXUS_REALM = 'BASIC realm="Sonatype Nexus Repository Manager"'


class TLSServer(fakecommon.FakeServer):
    """FakeServer that wraps each accepted socket in TLS in the handler thread."""

    def __init__(self, addr, handler, context):
        self.context = context
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        try:
            request.settimeout(10)
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            sys.stderr.write("tls_fake: %s: handshake failed: %s\n" % (client_address[0], exc))
            sys.stderr.flush()
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


class Handler(fakecommon.Handler):
    fake_name = "tls_fake"
    server_version = "Nexus/3.68.1-02 (OSS)"

    def do_GET(self):
        self.read_body()
        if self.path.split("?")[0] in ("/v2/", "/v2"):
            body = ('{"errors":[{"code":"UNAUTHORIZED","message":"access to the requested '
                    'resource is not authorized","detail":null}]}')
            return self.send(401, body, "application/json",
                             {"WWW-Authenticate": NEXUS_REALM,
                              "Docker-Distribution-Api-Version": "registry/2.0"})
        return self.send(200, "ok\n", "text/plain")

    do_HEAD = do_GET


def main():
    parser = fakecommon.new_parser(__doc__)
    fakecommon.common_arguments(parser)
    parser.add_argument("--cert", required=True, help="server certificate (PEM)")
    parser.add_argument("--key", required=True, help="its private key (PEM)")
    parser.add_argument("--chain", help="intermediate certificates to send (PEM)")
    args = parser.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.chain:
        ctx.load_verify_locations(args.chain)
    try:
        server = TLSServer((args.host, args.port), Handler, ctx)
    except OSError as exc:
        sys.stderr.write("tls_fake: cannot listen: %s\n" % exc)
        return 1
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              daemon=True)
    thread.start()
    port = server.server_address[1]
    sys.stderr.write("tls_fake: listening on %s:%d\n" % (args.host, port))
    fakecommon.write_port_file(args.port_file, port)
    fakecommon.wait_for_signal("tls_fake")
    fakecommon.stop_server(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
