"""Build steps become images: a changed directory tree becomes a layer, a config a new image.

The classic builder commits every step as an image whose parent is the previous step's
image; the cache points at these images, so they keep their layers alive.  With a
SOURCE_DATE_EPOCH the step's files get mtimes clamped to the epoch before the layer tar
is written and the config carries the epoch as its times, so the same inputs give the same
digests.  A step's own snapshot becomes the layer's snapshot: its tar is never extracted.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dockling.content.store import BlobInfo
from dockling.diff.compare import Settling, has_changes, write_settled_layer
from dockling.ids import ChainID, DiffID, generate_id
from dockling.images.store import UNCOMPRESSED_LAYER, Image, ImageService
from dockling.mount import mount_all, unmount

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def timestamp(epoch: int | None) -> str:
    """RFC 3339 time of `epoch` (now when None), as image configs write it."""
    if epoch is None:
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def empty_config(epoch: int | None) -> dict[str, Any]:
    """The config of `FROM scratch`: no layers, no history."""
    machine = platform.machine()
    return {
        "architecture": _ARCH.get(machine, machine),
        "os": "linux",
        "config": {},
        "created": timestamp(epoch if epoch is not None else 0),
        "history": [],
        "rootfs": {"type": "layers", "diff_ids": []},
    }


@dataclass(frozen=True)
class NewLayer:
    """A layer stored in the content store and as a snapshot on its parent."""

    chain: ChainID
    diff_id: DiffID
    blob: BlobInfo
    media_type: str


@dataclass(frozen=True)
class WrittenLayer:
    """A step's layer tar, stored; its snapshot is not yet settled nor committed."""

    key: str
    blob: BlobInfo
    settling: Settling


def write_step_layer(
    images: ImageService,
    key: str,
    held: list[str],
    epoch: int | None,
    stubs: Sequence[str] = (),
) -> WrittenLayer | None:
    """Store the tar of what the active snapshot `key` changes over its parent (held by
    `held`); None if nothing changed.  Only reads the snapshot: it may still be mounted,
    so a RUN's tar is written while its container's rootfs is being unmounted.  `stubs`:
    see `write_settled_layer` (RUN --mount's mount points)."""
    snapshots = images.snapshotter()
    upper = snapshots.fs_path(key)
    if not has_changes(upper, snapshots.parent_paths(key)):
        return None
    with images.content().writer() as writer:
        settling = write_settled_layer(upper, writer, epoch, stubs)  # type: ignore[arg-type]
        images.hold(held, writer.digest())
        blob = writer.commit()
    return WrittenLayer(key, blob, settling)


def keep_step_layer(
    images: ImageService, written: WrittenLayer, parent_chain: str | None, held: list[str]
) -> NewLayer:
    """Settle the snapshot of `written` (no longer mounted) to what its tar holds and keep
    it as the layer's snapshot: no second extraction.  When the layer is new the active
    snapshot is gone afterwards; otherwise it is left for the caller to remove."""
    written.settling.apply()
    parent = ChainID(parent_chain) if parent_chain else None
    diff_id = DiffID(written.blob.digest)
    chain, _size = images.commit_layer(written.key, parent, diff_id, held)
    return NewLayer(chain, diff_id, written.blob, UNCOMPRESSED_LAYER)


def store_layer(
    images: ImageService,
    key: str,
    parent_chain: str | None,
    held: list[str],
    epoch: int | None,
    *,
    mounted_at: str | None = None,
) -> NewLayer | None:
    """Keep what the active snapshot `key` changes over `parent_chain` as a layer; None if
    nothing changed (`write_step_layer` then `keep_step_layer`).  `mounted_at`, where the
    snapshot is mounted, is unmounted once the tar is written: an upper dir is not changed
    under a live overlay."""
    written = write_step_layer(images, key, held, epoch)
    if mounted_at is not None:
        unmount(mounted_at, detach=True)
    if written is None:
        return None
    return keep_step_layer(images, written, parent_chain, held)


def commit_image(
    images: ImageService,
    parent: Image,
    runtime_config: dict[str, Any],
    history: dict[str, Any],
    layer: NewLayer | None,
    *,
    epoch: int | None,
    author: str | None = None,
) -> Image:
    """Register the image `parent` + `layer` with `runtime_config` and one more history row."""
    parent_config = parent.config
    parent_chains = parent.chain_ids
    created = timestamp(epoch)
    diff_ids = list(parent_config.get("rootfs", {}).get("diff_ids", []))
    layers: list[tuple[ChainID, DiffID, BlobInfo | None, str]] = [
        (ChainID(c), DiffID(d), None, "") for c, d in zip(parent_chains, diff_ids, strict=True)
    ]
    row = {"created": created, **history}
    if layer is None:
        row["empty_layer"] = True
    else:
        layers.append((layer.chain, layer.diff_id, layer.blob, layer.media_type))
        diff_ids.append(layer.diff_id)
    config: dict[str, Any] = json.loads(json.dumps(parent_config))
    config.pop("container", None)
    config.update(
        {
            "config": runtime_config,
            "created": created,
            "history": [*(config.get("history") or []), row],
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    )
    if author is not None:
        config["author"] = author
    raw = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
    image, _ = images.register_pulled(raw, layers, [], parent=parent.id)
    return image


@contextlib.contextmanager
def mounted_snapshot(
    images: ImageService, parent_chain: str | None, *, writable: bool
) -> Iterator[tuple[str, str]]:
    """Mount a fresh snapshot on `parent_chain` at a temporary dir; yield (key, path).

    The snapshot is removed on exit unless the caller committed it; the mount is always
    undone first.
    """
    snapshots = images.snapshotter()
    key = f"build-{generate_id()}"
    tmp = images.data_root / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    target = tempfile.mkdtemp(prefix="build-", dir=tmp)
    try:
        mounts = (
            snapshots.prepare(key, parent_chain) if writable else snapshots.view(key, parent_chain)
        )
        mount_all(mounts, target)
        try:
            yield key, target
        finally:
            unmount(target, detach=True)
    finally:
        os.rmdir(target)
        if snapshots.exists(key):
            snapshots.remove(key)
