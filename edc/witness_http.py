"""The witness's HTTP interface (c2sp.org/tlog-witness), a small server of its own.

``POST /add-checkpoint`` is the protocol's call. ``GET /checkpoint/<origin>`` (the monitoring
prefix) returns the checkpoint the witness last cosigned for that log, with the log's signature
and the witness's cosignature, for ``edc audit verify --witness``. Standard library only: the
witness runs on a machine of its own with nothing of the EDC's but this package.
"""

from __future__ import annotations

import logging
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from audit_trail.witness import Witness, WitnessError

MAX_BODY = 64 * 1024
log = logging.getLogger(__name__)


def make_server(directory: Path, host: str, port: int) -> ThreadingHTTPServer:
    witness = Witness(directory)

    class Handler(BaseHTTPRequestHandler):
        server_version = "edc-witness"
        sys_version = ""

        def _reply(self, status: int, body: str, ctype: str = "text/plain; charset=utf-8"
                   ) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") != "/add-checkpoint":
                self._reply(404, "not found\n")
                return
            length = self.headers.get("Content-Length", "")
            if not length.isdigit() or int(length) > MAX_BODY:
                self._reply(400, f"a Content-Length of at most {MAX_BODY} bytes is required\n")
                return
            body = self.rfile.read(int(length))
            try:
                line = witness.add_checkpoint(body)
            except WitnessError as exc:
                if exc.status == 409 and exc.size is not None:
                    self._reply(409, f"{exc.size}\n", "text/x.tlog.size")
                else:
                    self._reply(exc.status, exc.message + "\n")
                return
            self._reply(200, line)

        def do_GET(self) -> None:  # noqa: N802
            prefix = "/checkpoint/"
            if not self.path.startswith(prefix):
                self._reply(404, "not found\n")
                return
            origin = urllib.parse.unquote(self.path[len(prefix):])
            if origin not in witness.logs:
                self._reply(404, f"this witness does not witness the log {origin!r}\n")
                return
            latest = witness.latest(origin)
            if latest is None:
                self._reply(404, "this witness has cosigned no checkpoint of this log yet\n")
                return
            self._reply(200, latest)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log.info("%s %s", self.address_string(), format % args)

    return ThreadingHTTPServer((host, port), Handler)
