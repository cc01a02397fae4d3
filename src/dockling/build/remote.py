"""ADD <url>: download a remote file for a build step, verified with `--checksum`.

Docker's rules: the file is named after the URL path's last component, gets mode 0600 and
the server's Last-Modified time; it is never extracted.  The standard library does the HTTP.
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
        raise errors.InvalidParameter(f"failed to GET {url}: {exc}") from None
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
