"""Pull one image: resolve, fetch the config and the missing layers concurrently, unpack
them in order as they arrive, verify every diff id, then register the image in one step.

Layers whose chain is already unpacked are neither fetched nor unpacked ("Already
exists").  Until the final registration nothing is visible: a failure leaves blobs that
the image store's collector (or the next pull) deals with.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from dockling import errors
from dockling.content.store import BlobInfo
from dockling.distribution.auth import Credentials
from dockling.distribution.client import RegistryClient
from dockling.distribution.fetch import Downloads, fetch_blob
from dockling.distribution.progress import Progress, ProgressSink, discard
from dockling.distribution.resolver import Platform, resolve
from dockling.distribution.settings import RegistrySettings
from dockling.ids import ChainID, DiffID, Digest, chain_ids, short_id
from dockling.images.store import Image, ImageService
from dockling.reference import Reference

MAX_CONFIG = 8 << 20


@dataclass(frozen=True, slots=True)
class PullResult:
    image: Image
    digest: Digest  # what RepoDigests records
    changed: bool  # False: "Image is up to date"


def _diff_ids(config_raw: bytes, layer_count: int) -> list[DiffID]:
    try:
        config: Any = json.loads(config_raw)
        diff_ids = config["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.InvalidParameter(f"invalid image config: {exc}") from None
    if not isinstance(diff_ids, list) or len(diff_ids) != layer_count:
        raise errors.InvalidParameter(
            f"invalid image: the manifest has {layer_count} layers, the config "
            f"{len(diff_ids) if isinstance(diff_ids, list) else 0} diff ids"
        )
    return [DiffID(str(d)) for d in diff_ids]


def pull_image(
    images: ImageService,
    downloads: Downloads,
    settings: RegistrySettings,
    ref: Reference,
    platform: Platform,
    *,
    credentials: Credentials | None = None,
    sink: ProgressSink = discard,
    cancel: threading.Event | None = None,
) -> PullResult:
    """Pull `ref` (tag or digest) for `platform` into `images`; report through `sink`."""
    cancel = cancel or threading.Event()
    client = RegistryClient(settings, ref.domain, credentials)
    resolved = resolve(client, ref, platform)
    # After resolving, as Docker: a missing image fails before any progress is streamed.
    sink(Progress(f"Pulling from {ref.path}", ref.digest or ref.tag or "latest"))
    config_info = fetch_blob(
        client,
        ref.path,
        resolved.config,
        downloads,
        discard,
        attempts=settings.max_download_attempts,
        cancel=cancel,
    )
    if config_info.size > MAX_CONFIG:
        raise errors.InvalidParameter(f"image config {resolved.config.digest} is too large")
    with images.lease() as held:
        images.hold(held, resolved.config.digest)
        config_raw = images.content().read(resolved.config.digest)
        diff_ids = _diff_ids(config_raw, len(resolved.layers))
        chains = chain_ids(diff_ids)
        present = [images.has_layer(c) for c in chains]
        for desc, chain, here in zip(resolved.layers, chains, present, strict=True):
            images.hold(held, chain if here else desc.digest)
            sink(Progress("Already exists" if here else "Pulling fs layer", short_id(desc.digest)))
        pool = ThreadPoolExecutor(max(settings.max_concurrent_downloads, 1), "pull")
        futures: list[Future[BlobInfo] | None] = []
        try:
            for index, (desc, here) in enumerate(zip(resolved.layers, present, strict=True)):
                if here:
                    futures.append(None)
                    continue
                if index >= settings.max_concurrent_downloads:
                    sink(Progress("Waiting", short_id(desc.digest)))
                futures.append(
                    pool.submit(
                        fetch_blob,
                        client,
                        ref.path,
                        desc,
                        downloads,
                        sink,
                        attempts=settings.max_download_attempts,
                        cancel=cancel,
                    )
                )
            layers: list[tuple[ChainID, DiffID, BlobInfo | None, str]] = []
            parent: ChainID | None = None
            for index, future in enumerate(futures):
                desc = resolved.layers[index]
                if future is None:
                    layers.append((chains[index], diff_ids[index], None, desc.media_type))
                    parent = chains[index]
                    continue
                blob = future.result()
                layer = short_id(desc.digest)
                sink(Progress("Extracting", layer, 0, blob.size))
                try:
                    diff_id, _size, media_type = images.unpack_blob(blob.digest, parent, held)
                except errors.InvalidParameter as exc:
                    # A malicious or broken tar: say which layer, as for a bad digest.
                    raise errors.InvalidParameter(f"layer {desc.digest}: {exc}") from exc
                if diff_id != diff_ids[index]:
                    raise errors.DataCorrupted(
                        f"layer {desc.digest}: its content has diff id {diff_id}, "
                        f"the image config says {diff_ids[index]}"
                    )
                sink(Progress("Extracting", layer, blob.size, blob.size))
                sink(Progress("Pull complete", layer))
                layers.append((chains[index], diff_id, blob, media_type))
                parent = chains[index]
        except BaseException:
            cancel.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        references = [Reference(ref.domain, ref.path, None, resolved.digest)]
        if ref.digest is None:
            references.insert(0, ref.with_default_tag())
        image, changed = images.register_pulled(config_raw, layers, references)
    sink(Progress(f"Digest: {resolved.digest}"))
    shown = ref.familiar() if ref.digest else ref.with_default_tag().familiar()
    status = "Downloaded newer image for" if changed else "Image is up to date for"
    sink(Progress(f"Status: {status} {shown}"))
    return PullResult(image, resolved.digest, changed)
