"""The seed scenario's workload: a tiny HTTP server that answers every request with the hostname of
the task serving it, so replicas behind the routing mesh can say who answered.

    python3 -m shoal.demo.web --port 80
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HostnameHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{socket.gethostname()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stdout.write(f"{self.address_string()} {format % args}\n")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="answer HTTP requests with this host's name")
    parser.add_argument("--port", type=int, default=80)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("0.0.0.0", args.port), HostnameHandler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"serving {socket.gethostname()} on :{args.port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
