"""A tiny HTTP service for the demo stack, on the Python standard library only.

    python3 demo_service.py NAME PORT [--boot SECONDS] [--needs URL ...]

It waits ``--boot`` seconds (a stand-in for a database loading its data), checks
that every ``--needs`` URL answers (its dependencies really are ready), then serves
``/health`` (200) and ``/`` (a JSON description of itself and its environment).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("port", type=int)
    ap.add_argument("--boot", type=float, default=0.0)
    ap.add_argument("--needs", nargs="*", default=[])
    opts = ap.parse_args()
    time.sleep(opts.boot)
    for url in opts.needs:
        try:
            urllib.request.urlopen(url, timeout=2).read()
        except OSError as exc:
            print(f"{opts.name}: dependency {url} is not ready: {exc}", flush=True)
            return 1
    started = time.time()
    info = {"service": opts.name, "port": opts.port,
            "env": {k: v for k, v in os.environ.items() if k.startswith("DEMO_")}}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"ok\n" if self.path == "/health" else json.dumps(
                {**info, "uptime_s": round(time.time() - started, 3)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain" if self.path == "/health" else "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", opts.port), Handler)
    print(f"{opts.name}: serving on http://127.0.0.1:{opts.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
