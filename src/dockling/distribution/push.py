"""Push one tagged image: skip blobs the registry has (HEAD), mount layers from another
repository of the same registry, upload the rest (one PUT, or PATCH chunks then PUT),
then put the manifest.  Blobs are streamed from the content store, never held in memory.
"""

from __future__ import annotations

import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlencode, urlsplit

from dockling import errors
from dockling.content.store import BlobInfo, ContentStore
from dockling.distribution.auth import Credentials, repository_scope
from dockling.distribution.client import RegistryClient, registry_error
from dockling.distribution.progress import Progress, ProgressSink, discard
from dockling.distribution.resolver import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_LAYER_TAR,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
)
from dockling.distribution.settings import RegistrySettings
from dockling.ids import Digest, sha256_digest, short_id
from dockling.images.store import ImageService
from dockling.reference import Reference, parse_normalized

_REPORT_EVERY = 0.1
_DOCKER_TYPES = {
    OCI_LAYER: DOCKER_LAYER_TAR,
    OCI_LAYER + "+gzip": DOCKER_LAYER_GZIP,
    DOCKER_LAYER_TAR: DOCKER_LAYER_TAR,
    DOCKER_LAYER_GZIP: DOCKER_LAYER_GZIP,
}
_OCI_TYPES = {
    DOCKER_LAYER_TAR: OCI_LAYER,
    DOCKER_LAYER_GZIP: OCI_LAYER + "+gzip",
}


@dataclass(frozen=True, slots=True)
class PushResult:
    tag: str
    digest: Digest
    size: int


class _Counting(io.RawIOBase):
    """Reads at most `length` bytes of `inner` from its current position, reporting progress."""

    def __init__(self, inner: BinaryIO, length: int, report: Any) -> None:
        super().__init__()
        self._inner = inner
        self._left = length
        self._report = report

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size < 0 else min(size, self._left)
        data = self._inner.read(want)
        self._left -= len(data)
        self._report(len(data))
        return data


def manifest_for(config: BlobInfo, layers: list[tuple[BlobInfo, str]]) -> tuple[bytes, str]:
    """The manifest JSON and its media type: Docker schema2 unless a layer needs OCI (zstd)."""
    docker = all(media_type in _DOCKER_TYPES for _, media_type in layers)
    if docker:
        media_type, config_type = DOCKER_MANIFEST, DOCKER_CONFIG
        layer_types = [_DOCKER_TYPES[t] for _, t in layers]
    else:
        media_type, config_type = OCI_MANIFEST, OCI_CONFIG
        layer_types = [_OCI_TYPES.get(t, t) for _, t in layers]
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "size": config.size, "digest": config.digest},
        "layers": [
            {"mediaType": t, "size": blob.size, "digest": blob.digest}
            for (blob, _), t in zip(layers, layer_types, strict=True)
        ],
    }
    return json.dumps(body, indent=3).encode(), media_type


class _Pusher:
    def __init__(
        self,
        client: RegistryClient,
        content: ContentStore,
        ref: Reference,
        sources: list[str],
        chunk_size: int,
        sink: ProgressSink,
    ) -> None:
        self.client = client
        self.content = content
        self.path = ref.path
        self.scope = repository_scope(ref.path, "pull,push")
        self.sources = sources
        self.chunk_size = chunk_size
        self.sink = sink

    def _target(self, location: str) -> str:
        parts = urlsplit(location)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def push_blob(self, blob: BlobInfo, *, show: bool) -> None:
        layer = short_id(blob.digest)
        resp = self.client.request("HEAD", f"/v2/{self.path}/blobs/{blob.digest}", scope=self.scope)
        resp.close()
        if resp.status == 200:
            if show:
                self.sink(Progress("Layer already exists", layer))
            return
        location = ""
        for source in self.sources:
            query = urlencode({"mount": blob.digest, "from": source})
            scope = f"{self.scope} {repository_scope(source)}"
            with self.client.request(
                "POST",
                f"/v2/{self.path}/blobs/uploads/?{query}",
                scope=scope,
                headers={"Content-Length": "0"},
            ) as resp:
                if resp.status == 201:
                    if show:
                        self.sink(Progress(f"Mounted from {source}", layer))
                    return
                if resp.status == 202:
                    location = resp.header("Location")
                    break
        if not location:
            location = self._start_upload()
        self._upload(location, blob, layer if show else "")
        if show:
            self.sink(Progress("Pushed", layer))

    def _start_upload(self) -> str:
        with self.client.request(
            "POST",
            f"/v2/{self.path}/blobs/uploads/",
            scope=self.scope,
            headers={"Content-Length": "0"},
        ) as resp:
            if resp.status != 202:
                raise _push_error(resp, self.path)
            return resp.header("Location")

    def _upload(self, location: str, blob: BlobInfo, layer: str) -> None:
        sent = 0
        last = 0.0

        def report(count: int) -> None:
            nonlocal sent, last
            sent += count
            now = time.monotonic()
            if layer and (now - last >= _REPORT_EVERY or sent == blob.size):
                last = now
                self.sink(Progress("Pushing", layer, sent, blob.size))

        with self.content.open(blob.digest) as f:
            if blob.size > self.chunk_size:
                offset = 0
                while offset < blob.size:
                    length = min(self.chunk_size, blob.size - offset)
                    headers = {
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(length),
                        "Content-Range": f"{offset}-{offset + length - 1}",
                    }
                    with self.client.request(
                        "PATCH",
                        self._target(location),
                        scope=self.scope,
                        headers=headers,
                        body=_Counting(f, length, report),  # type: ignore[arg-type]
                    ) as resp:
                        if resp.status != 202:
                            raise _push_error(resp, self.path)
                        location = resp.header("Location") or location
                    offset += length
                body: BinaryIO | bytes = b""
                length = 0
            else:
                body = _Counting(f, blob.size, report)  # type: ignore[assignment]
                length = blob.size
            sep = "&" if "?" in location else "?"
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
            with self.client.request(
                "PUT",
                f"{self._target(location)}{sep}digest={blob.digest}",
                scope=self.scope,
                headers=headers,
                body=body,
            ) as resp:
                if resp.status != 201:
                    raise _push_error(resp, self.path)


def _push_error(resp: Any, path: str) -> errors.DocklingError:
    err = registry_error(resp)
    text = f"{err.code.lower()}: {err.message}" if err.code else f"HTTP {err.status}"
    if resp.status in (401, 403):
        return errors.Unauthorized(f"denied: requested access to the resource is denied ({text})")
    if resp.status == 404:
        return errors.NotFound(f"{path}: {text}")
    return errors.Unavailable(f"pushing to {path}: {text}")


def push_image(
    images: ImageService,
    settings: RegistrySettings,
    ref: Reference,
    *,
    credentials: Credentials | None = None,
    sink: ProgressSink = discard,
) -> PushResult:
    """Push the image tagged `ref` to its registry; the pushed digest is recorded locally."""
    tagged = ref.with_default_tag()
    if tagged.tag is None:
        raise errors.InvalidParameter("push by digest is not supported: give a tag")
    image = images.get(str(tagged))
    sink(Progress(f"The push refers to repository [{tagged.name}]"))
    client = RegistryClient(settings, ref.domain, credentials, for_push=True)
    sources: list[str] = []
    for text in image.repo_digests:
        other = parse_normalized(text)
        if other.domain == ref.domain and other.path != ref.path and other.path not in sources:
            sources.append(other.path)
    config = images.content().info(image.id)
    layers = images.layer_blobs(image)
    pusher = _Pusher(client, images.content(), tagged, sources, settings.push_chunk_size, sink)
    for blob, _ in reversed(layers):
        sink(Progress("Preparing", short_id(blob.digest)))
    with ThreadPoolExecutor(max(settings.max_concurrent_uploads, 1), "push") as pool:
        futures = [pool.submit(pusher.push_blob, blob, show=True) for blob, _ in reversed(layers)]
        for future in futures:
            future.result()
    pusher.push_blob(config, show=False)
    raw, media_type = manifest_for(config, layers)
    with client.request(
        "PUT",
        f"/v2/{tagged.path}/manifests/{tagged.tag}",
        scope=pusher.scope,
        headers={"Content-Type": media_type, "Content-Length": str(len(raw))},
        body=raw,
    ) as resp:
        if resp.status != 201:
            raise _push_error(resp, tagged.path)
    digest = sha256_digest(raw)
    images.add_repo_digest(image.id, Reference(ref.domain, ref.path, None, digest))
    sink(Progress(f"{tagged.tag}: digest: {digest} size: {len(raw)}"))
    return PushResult(tagged.tag, digest, len(raw))


__all__ = ["PushResult", "manifest_for", "push_image"]
