"""Dataset roots in object storage or on a web server: URLs where a folder is expected.

A dataset root (``data.root``, ``--root``) may be a URL, ``https://``, ``http://``, ``s3://`` or
``gs://``, or a GDAL virtual file system path (``/vsicurl/URL``, ``/vsis3/BUCKET/KEY``,
``/vsigs/BUCKET/KEY``). :func:`as_location` turns a root or file name into a local
:class:`~pathlib.Path` or a :class:`RemotePath`, which joins (``root / "s1/1.tif"``), names and
reads files like a Path does:

- rasters are opened through GDAL's virtual file systems (:meth:`RemotePath.vsi`:
  ``/vsicurl/``, ``/vsis3/``, ``/vsigs/``) inside :func:`gdal_env` (:data:`GDAL_OPTIONS`), so a
  windowed read of a Cloud-Optimized GeoTIFF fetches only the tiles it needs;
- small files (split and index CSVs, label and metadata JSON) are read whole, with
  :mod:`urllib` for http(s) and :mod:`pyarrow.fs` for s3 and gs;
- what needs a folder listing (``glob``: discovering ids without a split file or index table,
  guessing a preset from the layout) needs a local root and says so in one line.

Credentials come only from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``/``AWS_S3_ENDPOINT``,
``AWS_NO_SIGN_REQUEST``, ``GOOGLE_APPLICATION_CREDENTIALS``, ``GS_*``, ``GDAL_HTTP_*``): a
credential-looking key in a spec or config is refused (:func:`refuse_credentials`), as is a URL
with a user name or password in it. A missing file, a refused request or an unreachable host is
a one-line :class:`~modalens.errors.DataError` with the URL and a fix.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow.fs as pafs
import rasterio

from ..errors import DataError, SpecError

#: URL schemes a dataset root may use
SCHEMES = ("http", "https", "s3", "gs")

#: GDAL virtual file system prefix of each scheme
VSI_PREFIX = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/", "gs": "/vsigs/"}

#: GDAL options set (in :func:`gdal_env`) while a remote raster is opened or read; a variable of
#: the same name in the environment wins. See docs/scaling.md, "Data in object storage".
GDAL_OPTIONS: dict[str, str] = {
    # opening a file must not list its folder (one request per folder, slow on big buckets)
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    # /vsicurl/ probes for side-car files (.aux.xml, .ovr, .msk) only with these extensions
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF",
    # adjacent tiles of one crop in one range request
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    # HTTP/2 multiplexing where the server speaks it
    "GDAL_HTTP_MULTIPLEX": "YES",
    # the first GET of a file takes its header in one go (COG headers sit at the start)
    "GDAL_INGESTED_BYTES_AT_OPEN": "32768",
    # downloaded blocks shared by every open file of the process (GDAL's default: 16 MB)
    "CPL_VSIL_CURL_CACHE_SIZE": str(128 * 2**20),
    # a transient 429/5xx is retried
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "1",
    "GDAL_HTTP_TIMEOUT": "60",
}

#: seconds before a small-file request (CSV, JSON) gives up
HTTP_TIMEOUT = 60.0

_CREDENTIAL_KEY = re.compile(
    r"(secret|password|passwd|token|credential|access_key|accesskey|api_key|apikey|"
    r"private_key|session_key|userpwd|aws_|google_application)",
    re.IGNORECASE,
)

_ENV_HINT = (
    "set credentials in the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
    "GOOGLE_APPLICATION_CREDENTIALS, or AWS_NO_SIGN_REQUEST=YES for a public bucket)"
)


def is_remote(path: Any) -> bool:
    """True for a URL (:data:`SCHEMES`), a GDAL ``/vsi...`` path or a :class:`RemotePath`."""
    if isinstance(path, RemotePath):
        return True
    text = str(path)
    return text.startswith("/vsi") or text.split("://", 1)[0].lower() in SCHEMES


def as_location(path: str | os.PathLike[str] | RemotePath) -> Path | RemotePath:
    """A local :class:`~pathlib.Path` or a :class:`RemotePath` for a URL or ``/vsi...`` path."""
    if isinstance(path, RemotePath):
        return path
    if is_remote(path):
        return RemotePath(_canonical_url(str(path)))
    return Path(path)


def resolve_root(root: str | os.PathLike[str], base: Path | None = None) -> str:
    """A dataset root as a config holds it: a URL unchanged, a local folder absolute (relative
    to ``base``, default the working directory)."""
    if is_remote(root):
        return str(as_location(root))
    p = Path(str(root)).expanduser()
    return str(p if p.is_absolute() else ((base or Path.cwd()) / p).resolve())


def _canonical_url(text: str) -> str:
    """``scheme://netloc/path`` of a URL or GDAL ``/vsi...`` path (no trailing slash)."""
    for scheme, prefix in (("s3", "/vsis3/"), ("gs", "/vsigs/")):
        if text.startswith(prefix):
            text = f"{scheme}://{text[len(prefix) :]}"
    if text.startswith("/vsicurl/"):
        text = text[len("/vsicurl/") :]
    if text.startswith("/vsi"):
        raise SpecError(
            f"unsupported GDAL virtual file system in {text!r}",
            None,
            "use an https://, s3:// or gs:// URL (or /vsicurl/, /vsis3/, /vsigs/)",
        )
    parts = urllib.parse.urlsplit(text)
    if parts.username or parts.password:
        raise SpecError(
            f"the URL {parts.scheme}://...@{parts.hostname} holds a user name or password",
            None,
            "remove it and " + _ENV_HINT.replace("set", "set the", 1),
        )
    if parts.scheme.lower() not in SCHEMES or not parts.netloc:
        raise SpecError(
            f"not a dataset URL: {text!r}", None, "use https://HOST/PATH, s3://BUCKET/PATH or gs://"
        )
    return f"{parts.scheme.lower()}://{parts.netloc}{parts.path.rstrip('/')}" + (
        f"?{parts.query}" if parts.query else ""
    )


class RemotePath:
    """A file or folder behind a URL, used where a local :class:`~pathlib.Path` is used.

    Joins with ``/``, has ``name``, ``parent``, ``suffix``, ``exists()``, ``read_bytes()``,
    ``read_text()``; :meth:`vsi` is the path GDAL opens. ``glob`` needs a listing and raises a
    one-line DataError asking for a local root.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.scheme = url.split("://", 1)[0]

    # ------------------------------------------------------------------ naming
    def __truediv__(self, other: str | os.PathLike[str]) -> RemotePath:
        rel = other.as_posix() if isinstance(other, PurePosixPath) else str(other)
        if is_remote(rel):
            return RemotePath(_canonical_url(rel))
        rel = urllib.parse.quote(rel.lstrip("/"), safe="/:@!$&'()*+,;=-._~")
        return RemotePath(f"{self.url.rstrip('/')}/{rel}")

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"RemotePath({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    @property
    def _path(self) -> PurePosixPath:
        return PurePosixPath(urllib.parse.urlsplit(self.url).path or "/")

    @property
    def name(self) -> str:
        """The file name (last path part, unquoted)."""
        return urllib.parse.unquote(self._path.name)

    @property
    def suffix(self) -> str:
        """The file extension, e.g. ``.tif``."""
        return self._path.suffix

    @property
    def stem(self) -> str:
        """The file name without its extension."""
        return urllib.parse.unquote(self._path.stem)

    @property
    def parent(self) -> RemotePath:
        """The URL one level up."""
        parts = urllib.parse.urlsplit(self.url)
        return RemotePath(f"{parts.scheme}://{parts.netloc}{str(self._path.parent).rstrip('/')}")

    def is_absolute(self) -> bool:
        """Always True: a URL names its file completely."""
        return True

    def as_posix(self) -> str:
        """The URL."""
        return self.url

    def relative_to(self, other: Any) -> PurePosixPath:
        """The part of this URL below ``other`` (ValueError when it is not below it)."""
        base = str(other).rstrip("/") + "/"
        if not self.url.startswith(base):
            raise ValueError(f"{self.url} is not below {other}")
        return PurePosixPath(urllib.parse.unquote(self.url[len(base) :]))

    def vsi(self) -> str:
        """The GDAL virtual file system path of this URL (``/vsicurl/``, ``/vsis3/``...)."""
        prefix = VSI_PREFIX[self.scheme]
        return prefix + (self.url if prefix == "/vsicurl/" else self.url.split("://", 1)[1])

    # ------------------------------------------------------------------ reading
    def exists(self) -> bool:
        """Whether the file exists (a HEAD request, or a stat on s3/gs); DataError when the
        server cannot be reached or refuses access."""
        if self.scheme in ("http", "https"):
            try:
                with _urlopen(self.url, "HEAD"):
                    return True
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return False
                raise http_error(self.url, exc) from None
            except (urllib.error.URLError, OSError) as exc:
                raise unreachable(self.url, exc) from None
        fs, key = _arrow(self)
        try:
            return fs.get_file_info(key).type != pafs.FileType.NotFound
        except OSError as exc:
            raise _storage_error(self.url, exc) from None

    def is_file(self) -> bool:
        """Same as :meth:`exists`."""
        return self.exists()

    def is_dir(self) -> bool:
        """True: a URL prefix is taken to be a folder (object stores have no folders)."""
        return True

    def read_bytes(self) -> bytes:
        """The whole file; DataError (with the URL) when it is missing or unreachable."""
        if self.scheme in ("http", "https"):
            try:
                with _urlopen(self.url, "GET") as resp:
                    return bytes(resp.read())
            except urllib.error.HTTPError as exc:
                raise http_error(self.url, exc) from None
            except (urllib.error.URLError, OSError) as exc:
                raise unreachable(self.url, exc) from None
        fs, key = _arrow(self)
        try:
            with fs.open_input_stream(key) as f:
                return bytes(f.read())
        except FileNotFoundError:
            raise not_found(self.url) from None
        except OSError as exc:
            raise _storage_error(self.url, exc) from None

    def read_text(self, encoding: str = "utf-8") -> str:
        """The whole file decoded as text."""
        return self.read_bytes().decode(encoding)

    def glob(self, pattern: str) -> Iterator[RemotePath]:
        """Listing a URL is not supported: a DataError that asks for a local root."""
        raise needs_local(f"listing files ({pattern!r})", self.url)


#: a dataset root or file: a local path or a URL
Location = Path | RemotePath


def needs_local(what: str, url: str) -> DataError:
    """The one-line error of an operation that needs a local dataset root."""
    return DataError(
        f"{what} needs a local dataset root, not a URL",
        url,
        "give the spec a split file (split.file) or an index table, or copy the data locally",
    )


def not_found(url: str) -> DataError:
    """DataError for a URL that does not exist (HTTP 404, no such object)."""
    return DataError("file not found (HTTP 404)", url, "check the dataset URL and path template")


def http_error(url: str, exc: urllib.error.HTTPError) -> DataError:
    """DataError for an HTTP error status (404, 401/403, others)."""
    if exc.code == 404:
        return not_found(url)
    if exc.code in (401, 403):
        return DataError(f"access denied (HTTP {exc.code})", url, _ENV_HINT)
    return DataError(f"the server answered HTTP {exc.code} {exc.reason}", url, "try again later")


def one_line(reason: object) -> str:
    """The whole text of an error on one line (never shortened: the end of a storage error,
    ``NETWORK_CONNECTION ... curlCode: 6``, is often what says what went wrong)."""
    return " ".join(str(reason).split())


def unreachable(url: str, exc: BaseException) -> DataError:
    """DataError for a host that cannot be reached (refused, unknown, timed out)."""
    text = one_line(getattr(exc, "reason", exc))
    return DataError(
        f"cannot reach the server ({text})", url, "check the host name, the port and the network"
    )


def _storage_error(url: str, exc: BaseException) -> DataError:
    text = one_line(exc)
    if "AccessDenied" in text or "403" in text or "Forbidden" in text:
        return DataError("access denied", url, _ENV_HINT)
    return DataError(f"cannot read from object storage ({text})", url, _ENV_HINT)


def raster_open_error(url: str, exc: BaseException) -> DataError:
    """DataError for a remote raster GDAL could not open (404, 403, unreachable, not a TIFF)."""
    text = one_line(exc)
    if re.search(r"\b404\b|does not exist|No such file", text):
        return not_found(url)
    if re.search(r"\b40[13]\b|AccessDenied|Forbidden|credentials", text):
        return DataError("access denied", url, _ENV_HINT)
    if re.search(r"connect|resolve|timed out|timeout|CURL error", text, re.IGNORECASE):
        return DataError(
            f"cannot reach the server ({text})",
            url,
            "check the host name, the port and the network",
        )
    return DataError(f"cannot open remote raster ({text})", url, "check that it is a GeoTIFF (COG)")


def _urlopen(url: str, method: str) -> Any:
    headers = {}
    bearer = os.environ.get("GDAL_HTTP_BEARER")
    userpwd = os.environ.get("GDAL_HTTP_USERPWD")
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    elif userpwd:
        headers["Authorization"] = "Basic " + base64.b64encode(userpwd.encode()).decode()
    req = urllib.request.Request(url, method=method, headers=headers)
    return urllib.request.urlopen(req, timeout=HTTP_TIMEOUT)  # noqa: S310 - http(s) only


_ARROW_FS: dict[str, Any] = {}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in ("YES", "TRUE", "ON", "1")


def _arrow(path: RemotePath) -> tuple[Any, str]:
    """(pyarrow file system, ``bucket/key``) of an s3:// or gs:// URL, credentials from the
    environment."""
    fs = _ARROW_FS.get(path.scheme)
    if fs is None:
        if path.scheme == "s3":
            kw: dict[str, Any] = {"anonymous": _flag("AWS_NO_SIGN_REQUEST")}
            region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            if region:
                kw["region"] = region
            endpoint = s3_endpoint()
            if endpoint is not None:
                kw["endpoint_override"], kw["scheme"] = endpoint
            fs = pafs.S3FileSystem(**kw)
        else:
            fs = pafs.GcsFileSystem(anonymous=_flag("GS_NO_SIGN_REQUEST"))
        _ARROW_FS[path.scheme] = fs
    return fs, urllib.parse.unquote(path.url.split("://", 1)[1])


def s3_endpoint() -> tuple[str, str] | None:
    """(host[:port], "http"|"https") of an S3-compatible endpoint from ``AWS_ENDPOINT_URL``
    (``http://minio:9000``) or GDAL's ``AWS_S3_ENDPOINT`` (+ ``AWS_HTTPS``); None for AWS."""
    url = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if url:
        parts = urllib.parse.urlsplit(url if "://" in url else f"https://{url}")
        return parts.netloc, parts.scheme
    host = os.environ.get("AWS_S3_ENDPOINT")
    if host:
        return host, "http" if os.environ.get("AWS_HTTPS", "YES").upper() == "NO" else "https"
    return None


def gdal_options() -> dict[str, str]:
    """The GDAL options of :func:`gdal_env`: :data:`GDAL_OPTIONS` less those set in the
    environment, plus GDAL's spelling of an ``AWS_ENDPOINT_URL`` endpoint."""
    opts = {k: v for k, v in GDAL_OPTIONS.items() if k not in os.environ}
    endpoint = s3_endpoint()
    if endpoint is not None and "AWS_S3_ENDPOINT" not in os.environ:
        opts["AWS_S3_ENDPOINT"] = endpoint[0]
        opts["AWS_HTTPS"] = "YES" if endpoint[1] == "https" else "NO"
        opts.setdefault("AWS_VIRTUAL_HOSTING", "FALSE")
    return opts


@contextlib.contextmanager
def gdal_env(path: Any = None) -> Iterator[None]:
    """A :class:`rasterio.Env` with :func:`gdal_options` when ``path`` is remote (or None);
    nothing for a local path (local reads stay as they are)."""
    if path is not None and not is_remote(path):
        yield
        return
    with rasterio.Env(**gdal_options()):
        yield


def refuse_credentials(data: Any, source: str | None = None, key: str = "") -> None:
    """Raise a SpecError when a spec or config mapping holds a credential-looking key.

    Credentials come from the environment only; ``key`` is the dotted path so far.
    """
    if isinstance(data, Mapping):
        for k, v in data.items():
            where = f"{key}.{k}" if key else str(k)
            if isinstance(k, str) and _CREDENTIAL_KEY.search(k):
                raise SpecError(
                    f"credentials do not belong in a config (key {where!r})",
                    f"{source}" if source else None,
                    "remove the key and " + _ENV_HINT,
                )
            refuse_credentials(v, source, where)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            refuse_credentials(v, source, f"{key}[{i}]")
