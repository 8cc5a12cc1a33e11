"""A stand-in for ``storykit serve``: answers GET /health with 200.

While the file given as --hang-file exists, requests are never answered (a hung server).
Without --port it binds a free port and writes $STORYKIT_DATA_DIR/server.json as storykit does.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--hang-file", type=Path)
args = parser.parse_args()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if args.hang_file is not None and args.hang_file.exists():
            time.sleep(3600)
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *a: object) -> None:
        pass


server = ThreadingHTTPServer((args.host, args.port), Handler)
server.daemon_threads = True
port = server.server_address[1]
if not args.port:
    state = Path(os.environ["STORYKIT_DATA_DIR"]) / "server.json"
    url = f"http://127.0.0.1:{port}"
    state.write_text(
        json.dumps({"pid": os.getpid(), "host": "127.0.0.1", "port": port, "url": url})
    )
print(f"listening on {port}", flush=True)
server.serve_forever()
