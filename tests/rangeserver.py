"""A loopback HTTP server for a folder that honours ``Range: bytes=a-b`` and counts what it serves.

:class:`RangeServer` serves the files under a folder on ``127.0.0.1`` (a free port) from a
thread: ``HEAD`` answers the size, ``GET`` with one byte range answers ``206 Partial Content``
with exactly those bytes, ``GET`` without a range the whole file; a missing file is 404 and a
path in :attr:`RangeServer.deny` is 403. Every request is logged (:attr:`RangeServer.log`) so
tests and benchmarks can count requests and bytes served per file. Nothing leaves loopback.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"bytes=(\d*)-(\d*)\Z")


@dataclass(frozen=True)
class Served:
    """One request: method, path (below the served folder), Range header, status, body bytes."""

    method: str
    path: str
    range: str | None
    status: int
    nbytes: int


class RangeServer:
    """Serve ``root`` on ``http://127.0.0.1:PORT/`` (a context manager; see the module doc)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.log: list[Served] = []
        self.deny: set[str] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The server's base URL (no trailing slash)."""
        assert self._server is not None, "start the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> RangeServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> RangeServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def record(self, entry: Served) -> None:
        with self._lock:
            self.log.append(entry)

    def reset(self) -> None:
        """Forget the requests served so far."""
        with self._lock:
            self.log.clear()

    def requests(self, path: str | None = None) -> list[Served]:
        """Requests served (for one path below the root when given)."""
        with self._lock:
            return [e for e in self.log if path is None or e.path == path]

    def bytes_served(self, path: str | None = None) -> int:
        """Body bytes served (for one path when given)."""
        return sum(e.nbytes for e in self.requests(path))


def _handler(server: RangeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

        def _file(self) -> tuple[str, Path | None]:
            rel = unquote(urlsplit(self.path).path).lstrip("/")
            path = (server.root / rel).resolve()
            if server.root not in path.parents or not path.is_file():
                return rel, None
            return rel, path

        def _reply(self, status: int, body: bytes, headers: dict[str, str], head: bool) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            rel = unquote(urlsplit(self.path).path).lstrip("/")
            rng = self.headers.get("Range")
            server.record(Served(self.command, rel, rng, status, 0 if head else len(body)))

        def _serve(self, head: bool) -> None:
            rel, path = self._file()
            if rel in server.deny:
                return self._reply(403, b"forbidden", {}, head)
            if path is None:
                return self._reply(404, b"not found", {}, head)
            data = path.read_bytes()
            size = len(data)
            rng = self.headers.get("Range")
            base = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
            if rng is None or head:
                return self._reply(200, data, base, head)
            m = _RANGE.match(rng.strip())
            if m is None or (not m.group(1) and not m.group(2)):
                return self._reply(416, b"", {"Content-Range": f"bytes */{size}"}, head)
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:  # suffix range: the last N bytes
                start, end = max(size - int(m.group(2)), 0), size - 1
            if start >= size or end < start:
                return self._reply(416, b"", {"Content-Range": f"bytes */{size}"}, head)
            headers = {**base, "Content-Range": f"bytes {start}-{end}/{size}"}
            return self._reply(206, data[start : end + 1], headers, head)

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's names
            self._serve(head=True)

        def do_GET(self) -> None:  # noqa: N802
            self._serve(head=False)

    return Handler
