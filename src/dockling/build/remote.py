"""Downloads for builds: ADD <url> (verified with `--checksum`) and a remote build context.

Docker's rules for ADD: the file is named after the URL path's last component, gets mode
0600 and the server's Last-Modified time; it is never extracted.  A remote context
(POST /build?remote=URL) must be a tar, optionally compressed, of at most
CONTEXT_LIMIT bytes.  The standard library does the HTTP.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import posixpath
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from dockling import errors
from dockling.build.copy import Source

CHUNK = 1 << 20
TIMEOUT = 60
CONTEXT_LIMIT = 2 << 30  # a remote context larger than this is refused, not filled to disk
_ARCHIVE_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ")


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def download(url: str, folder: Path, *, checksum: str | None = None) -> Source:
    """Fetch `url` into `folder`; the Source names it by the URL (so it is not extracted).

    Raises InvalidParameter when the server answers with an error or when the content's
    sha256 differs from `checksum` ("sha256:<hex>").
    """
    algorithm, _, expected = (checksum or "").partition(":")
    if checksum and (algorithm != "sha256" or len(expected) != 64):
        raise errors.InvalidParameter(f"unsupported checksum {checksum!r}: use sha256:<hex>")
    name = posixpath.basename(urllib.parse.urlsplit(url).path) or "download"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "dockling-builder"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response, open(path, "wb") as out:
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
            modified = response.headers.get("Last-Modified")
    except urllib.error.HTTPError as exc:
        raise errors.InvalidParameter(
            f"failed to GET {url} with status {exc.code}: {exc.reason}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        text = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason
        raise errors.InvalidParameter(f'ADD failed: Get "{url}": {str(text).lower()}') from None
    actual = f"sha256:{digest.hexdigest()}"
    if checksum and actual != checksum:
        raise errors.InvalidParameter(f"digest mismatch {actual}: expected {checksum} (ADD {url})")
    os.chmod(path, 0o600)
    if modified:
        try:
            stamp = email.utils.parsedate_to_datetime(modified).timestamp()
            os.utime(path, (stamp, stamp))
        except (TypeError, ValueError):
            pass
    return Source(str(path), url)


def download_context(url: str, path: Path, *, limit: int = CONTEXT_LIMIT) -> None:
    """Fetch the build context at `url` into the file `path`, checking it is a tar.

    Raises InvalidParameter with docker's "unable to prepare context: ..." text when the
    server answers with an error status, the download fails or exceeds `limit` bytes, or
    the content is neither a tar nor a compressed archive.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "dockling-builder"})
    size = 0
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response, open(path, "wb") as out:
            while chunk := response.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise errors.InvalidParameter(
                        f"unable to prepare context: remote context {url} is larger "
                        f"than the limit of {limit} bytes"
                    )
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        raise errors.InvalidParameter(
            f"unable to prepare context: downloading {url} returned status code "
            f"{exc.code}: {exc.reason}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise errors.InvalidParameter(
            f"unable to prepare context: unable to download remote context {url}: {reason}"
        ) from None
    with open(path, "rb") as handle:
        head = handle.read(512)
    if not (head[257:262] == b"ustar" or head.startswith(_ARCHIVE_MAGIC)):
        raise errors.InvalidParameter(
            f"unable to prepare context: remote context {url} is not a tar archive "
            f"({size} bytes; expected a tar, optionally gzip, bzip2 or xz compressed)"
        )
