"""Commit: a container's upper dir becomes a new layer on top of its image (`docker commit`)."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockling import errors
from dockling.content.store import BlobInfo
from dockling.diff.compare import has_changes, write_layer
from dockling.ids import ChainID, DiffID, chain_id
from dockling.images.changes import apply_changes
from dockling.images.store import Image, ImageService
from dockling.reference import Reference, parse_tagged

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


@dataclass(frozen=True, slots=True)
class CommitRequest:
    """What to commit: the container's upper dir and the config it ran with.

    `runtime_config` is the container's effective config (Env, Cmd, Entrypoint, ...)
    before `changes` (Dockerfile instructions) are applied.
    """

    upper: Path
    lowers: Sequence[Path]  # the image's unpacked layers, nearest first
    parent: Image
    container_id: str
    runtime_config: dict[str, Any]
    created_by: str = ""
    reference: str = ""
    comment: str = ""
    author: str = ""
    changes: Sequence[str] = field(default_factory=tuple)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def commit(images: ImageService, request: CommitRequest) -> Image:
    """Store the upper dir as a layer blob, unpack it once and register the new image.

    A container without changes adds a history record marked `empty_layer` and no layer, as
    Docker does.  The image becomes visible in one transaction; until then every blob
    and snapshot it creates is leased.
    """
    ref: Reference | None = parse_tagged(request.reference) if request.reference else None
    if ref is not None and ref.digest is not None:
        raise errors.InvalidParameter("refusing to create a tag with a digest reference")
    runtime_config = apply_changes(request.changes, request.runtime_config)
    parent = request.parent
    diff_ids = [DiffID(str(d)) for d in parent.config.get("rootfs", {}).get("diff_ids", [])]
    chains = [ChainID(c) for c in parent.chain_ids]
    layers: list[tuple[ChainID, DiffID, BlobInfo | None, str]] = [
        (c, d, None, "") for c, d in zip(chains, diff_ids, strict=True)
    ]
    empty = not has_changes(request.upper, request.lowers)
    with images.lease() as held:
        images.hold(held, parent.id, *chains)
        if not empty:
            with images.content().writer() as writer:
                write_layer(request.upper, writer)  # type: ignore[arg-type]
                images.hold(held, writer.digest())
                blob = writer.commit()
            top = chains[-1] if chains else None
            diff_id, _size, media_type = images.unpack_blob(blob.digest, top, held)
            chain = chain_id([top, diff_id]) if top else ChainID(diff_id)
            layers.append((chain, diff_id, blob, media_type))
            diff_ids.append(diff_id)
        created = _now()
        record: dict[str, Any] = {"created": created, "created_by": request.created_by}
        if request.author:
            record["author"] = request.author
        if request.comment:
            record["comment"] = request.comment
        if empty:
            record["empty_layer"] = True
        config: dict[str, Any] = json.loads(json.dumps(parent.config))
        config.update(
            {
                "architecture": config.get("architecture")
                or _ARCH.get(platform.machine(), platform.machine()),
                "os": config.get("os") or "linux",
                "config": runtime_config,
                "container": request.container_id,
                "created": created,
                "history": [*(config.get("history") or []), record],
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
        )
        for key, value in (("author", request.author), ("comment", request.comment)):
            if value:
                config[key] = value
            else:
                config.pop(key, None)
        raw = json.dumps(config, separators=(",", ":")).encode()
        image, _ = images.register_pulled(
            raw, layers, [ref] if ref is not None else [], parent=request.parent.id
        )
    return image
