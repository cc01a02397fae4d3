"""Fetch blobs into the content store: streamed to disk, verified by digest and size,
resumed with HTTP Range from the bytes already written.

A download cut off (network drop, registry down, the client gone) leaves its ingest
*suspended* in `Downloads`; the next fetch of the same digest, in this pull or a later
one, continues from `writer.offset` with `Range: bytes=N-`.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Iterator

from dockling import errors
from dockling.content.store import BlobInfo, ContentStore, IngestWriter
from dockling.distribution.auth import repository_scope
from dockling.distribution.client import RegistryClient, registry_error
from dockling.distribution.progress import Progress, ProgressSink
from dockling.distribution.resolver import Descriptor
from dockling.ids import hex_of, short_id

_CHUNK = 1 << 20
_REPORT_EVERY = 0.1  # seconds between Downloading events
_INGEST_PREFIX = "pull-"


class Cancelled(errors.Unavailable):
    """The pull was cancelled (the client went away); its downloads stay resumable."""


class Downloads:
    """Suspended ingests, kept across pulls for resume, and one fetch per digest at a time."""

    def __init__(self, content: ContentStore) -> None:
        self.content = content
        self._suspended: dict[str, IngestWriter] = {}
        self._busy: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def exclusive(self, digest: str) -> Iterator[None]:
        """Serialise fetches of one digest (a second pull waits, then finds the blob)."""
        with self._lock:
            lock = self._busy.setdefault(digest, threading.Lock())
        with lock:
            yield

    def take(self, digest: str) -> IngestWriter:
        """The suspended writer for `digest`, or a new (possibly resumed) one."""
        with self._lock:
            writer = self._suspended.pop(digest, None)
        return writer or self.content.writer(_INGEST_PREFIX + hex_of(digest))

    def suspend(self, digest: str, writer: IngestWriter) -> None:
        with self._lock:
            self._suspended[digest] = writer

    def offset(self, digest: str) -> int:
        """Bytes of `digest` already on disk from an interrupted fetch (0 if none)."""
        with self._lock:
            writer = self._suspended.get(digest)
            return writer.offset if writer is not None else 0


def fetch_blob(
    client: RegistryClient,
    repo_path: str,
    desc: Descriptor,
    downloads: Downloads,
    sink: ProgressSink,
    *,
    attempts: int = 5,
    cancel: threading.Event | None = None,
) -> BlobInfo:
    """Make sure the blob `desc` is in the content store; download what is missing.

    Raises DataCorrupted (naming the layer) when the bytes do not match: the partial data
    is dropped, so the next pull fetches the blob again.  Raises Unavailable after
    `attempts` failed connections; what arrived stays for the next attempt.
    """
    layer = short_id(desc.digest)
    with downloads.exclusive(desc.digest):
        if downloads.content.exists(desc.digest):
            return downloads.content.info(desc.digest)
        writer = downloads.take(desc.digest)
        failures = 0
        while True:
            try:
                writer = _download(client, repo_path, desc, writer, downloads, sink, cancel)
                break
            except (OSError, http.client.HTTPException, errors.Unavailable) as exc:
                downloads.suspend(desc.digest, writer)
                failures += 1
                if isinstance(exc, Cancelled) or failures >= max(attempts, 1):
                    if isinstance(exc, errors.Unavailable):
                        raise
                    raise errors.Unavailable(
                        f"downloading layer {layer}: {exc or type(exc).__name__} "
                        f"({writer.offset} of {desc.size} bytes kept for the next pull)"
                    ) from exc
                sink(Progress(f"Retrying in {failures} second", layer))
                time.sleep(min(failures, 3) * 0.2)
                writer = downloads.take(desc.digest)
            except BaseException:
                writer.abort()
                raise
        sink(Progress("Verifying Checksum", layer))
        try:
            info = writer.commit(expected_digest=desc.digest, expected_size=desc.size)
        except errors.DataCorrupted as exc:
            raise errors.DataCorrupted(f"layer {desc.digest}: {exc}") from exc
        sink(Progress("Download complete", layer))
        return info


def _download(
    client: RegistryClient,
    repo_path: str,
    desc: Descriptor,
    writer: IngestWriter,
    downloads: Downloads,
    sink: ProgressSink,
    cancel: threading.Event | None,
) -> IngestWriter:
    """Append the missing bytes of `desc` to `writer`; return the writer holding them."""
    layer = short_id(desc.digest)
    if writer.offset > desc.size:
        writer.abort()
        writer = downloads.content.writer(_INGEST_PREFIX + hex_of(desc.digest))
    if writer.offset == desc.size:
        return writer
    headers = {"Range": f"bytes={writer.offset}-"} if writer.offset else {}
    resp = client.request(
        "GET",
        f"/v2/{repo_path}/blobs/{desc.digest}",
        scope=repository_scope(repo_path),
        headers=headers,
    )
    with resp:
        if resp.status == 200 and writer.offset:
            # The server ignored Range: start over.
            writer.abort()
            writer = downloads.content.writer(_INGEST_PREFIX + hex_of(desc.digest))
        elif resp.status == 206:
            start = resp.header("Content-Range").removeprefix("bytes ").split("-")[0]
            if start.strip() != str(writer.offset):
                raise errors.Unavailable(
                    f"layer {layer}: registry answered range {resp.header('Content-Range')!r} "
                    f"for bytes={writer.offset}-"
                )
        elif resp.status != 200:
            err = registry_error(resp)
            text = f"{err.code.lower()}: {err.message}" if err.code else f"HTTP {err.status}"
            if resp.status >= 500:
                raise errors.Unavailable(f"downloading layer {layer}: {text}")
            raise errors.NotFound(f"downloading layer {desc.digest}: {text}")
        last_report = 0.0
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"pull cancelled while downloading layer {layer}")
            # One byte past the expected end, to notice a registry sending too much.
            want = min(_CHUNK, desc.size - writer.offset + 1)
            chunk = resp.read(want)
            if not chunk:
                break
            writer.write(chunk)
            if writer.offset > desc.size:
                writer.abort()
                raise errors.DataCorrupted(
                    f"layer {desc.digest}: registry sent more than the {desc.size} bytes expected"
                )
            now = time.monotonic()
            if now - last_report >= _REPORT_EVERY or writer.offset == desc.size:
                last_report = now
                sink(Progress("Downloading", layer, writer.offset, desc.size))
        if writer.offset < desc.size:
            raise ConnectionError(f"connection closed after {writer.offset} of {desc.size} bytes")
    return writer
