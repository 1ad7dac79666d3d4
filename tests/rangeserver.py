"""A loopback HTTP server for a folder that honours ``Range: bytes=a-b`` and counts what it serves.

:class:`RangeServer` serves the files under a folder on ``127.0.0.1`` (a free port): ``HEAD``
answers the size, ``GET`` with one byte range answers ``206 Partial Content`` with exactly those
bytes, ``GET`` without a range the whole file; a missing file is 404 and a path given to
:meth:`RangeServer.deny` is 403. Every request is logged so tests and benchmarks can count
requests and bytes served per file (:meth:`~RangeServer.requests`,
:meth:`~RangeServer.bytes_served`). Nothing leaves loopback.

The :class:`~http.server.ThreadingHTTPServer` runs in a thread of a *child process*: GDAL calls
made through rasterio can hold the GIL while they wait for the network (e.g. a folder listing
during ``rasterio.open``), which would deadlock a server thread in the reading process. The
parent talks to the child through control paths under ``/__control__/`` (not logged).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"bytes=(\d*)-(\d*)\Z")
CONTROL = "__control__/"


@dataclass(frozen=True)
class Served:
    """One request: method, path (below the served folder), Range header, status, body bytes."""

    method: str
    path: str
    range: str | None
    status: int
    nbytes: int


class RangeServer:
    """Serve ``root`` on ``http://127.0.0.1:PORT`` from a child process (a context manager)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self._proc: subprocess.Popen[str] | None = None
        self._port = 0

    @property
    def url(self) -> str:
        """The server's base URL (no trailing slash)."""
        assert self._proc is not None, "start the server first"
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> RangeServer:
        self._proc = subprocess.Popen(
            [sys.executable, __file__, str(self.root)], stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        self._port = int(self._proc.stdout.readline())
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None

    def __enter__(self) -> RangeServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _control(self, what: str, arg: str = "") -> Any:
        query = "?" + urllib.parse.urlencode({"arg": arg}) if arg else ""
        with urllib.request.urlopen(f"{self.url}/{CONTROL}{what}{query}", timeout=10) as r:
            return json.loads(r.read())

    def reset(self) -> None:
        """Forget the requests served so far."""
        self._control("reset")

    def deny(self, path: str) -> None:
        """Answer 403 for ``path`` (below the root) from now on."""
        self._control("deny", path)

    def requests(self, path: str | None = None) -> list[Served]:
        """Requests served (for one path below the root when given)."""
        return [Served(*e) for e in self._control("log") if path is None or e[1] == path]

    def bytes_served(self, path: str | None = None) -> int:
        """Body bytes served (for one path when given)."""
        return sum(e.nbytes for e in self.requests(path))


def _handler(root: Path, log: list[Served], deny: set[str]) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

        def _reply(self, status: int, body: bytes, headers: dict[str, str], head: bool) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            rel = unquote(urlsplit(self.path).path).lstrip("/")
            if not rel.startswith(CONTROL):
                entry = Served(
                    self.command, rel, self.headers.get("Range"), status, 0 if head else len(body)
                )
                with lock:
                    log.append(entry)

        def _control(self, what: str) -> None:
            arg = urllib.parse.parse_qs(urlsplit(self.path).query).get("arg", [""])[0]
            with lock:
                if what == "reset":
                    log.clear()
                elif what == "deny":
                    deny.add(arg)
                body = json.dumps([list(e.__dict__.values()) for e in log]).encode()
            self._reply(200, body, {"Content-Type": "application/json"}, False)

        def _serve(self, head: bool) -> None:
            rel = unquote(urlsplit(self.path).path).lstrip("/")
            if rel.startswith(CONTROL):
                return self._control(rel[len(CONTROL) :])
            if rel in deny:
                return self._reply(403, b"forbidden", {}, head)
            path = (root / rel).resolve()
            if root not in path.parents or not path.is_file():
                return self._reply(404, b"not found", {}, head)
            size = path.stat().st_size
            rng = self.headers.get("Range")
            base = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
            if head:  # the size only (Content-Length of the whole file)
                return self._reply(200, b"", {**base, "Content-Length": str(size)}, head)
            if rng is None:
                return self._reply(200, path.read_bytes(), base, head)
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
            with path.open("rb") as f:  # only the range is read from disk
                f.seek(start)
                body = f.read(end - start + 1)
            return self._reply(206, body, headers, head)

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's names
            self._serve(head=True)

        def do_GET(self) -> None:  # noqa: N802
            self._serve(head=False)

    return Handler


def serve(root: str | Path) -> None:
    """Serve ``root`` until killed (the child process of :class:`RangeServer`): print the port,
    then answer requests in threads."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Path(root).resolve(), [], set()))
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1])
