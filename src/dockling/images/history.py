"""GET /images/{name}/history: one entry per history record, newest first (Docker's shape)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dockling.images.views import Image, unix_seconds

MISSING = "<missing>"


def history(image: Image, layer_sizes: Sequence[int]) -> list[dict[str, Any]]:
    """Docker's history entries of `image`; `layer_sizes` are its layers' sizes, bottom first.

    Records marked `empty_layer` have size 0; the others take the layers' sizes in order.
    Only the newest entry carries the image id and tags, the others are "<missing>",
    as for any image that was not built locally.
    """
    records = image.config.get("history") or []
    entries: list[dict[str, Any]] = []
    layer = 0
    for record in records:
        empty = bool(record.get("empty_layer"))
        size = 0
        if not empty:
            size = layer_sizes[layer] if layer < len(layer_sizes) else 0
            layer += 1
        entries.append(
            {
                "Id": MISSING,
                "Created": unix_seconds(str(record.get("created") or "")),
                "CreatedBy": str(record.get("created_by") or ""),
                "Tags": None,
                "Size": size,
                "Comment": str(record.get("comment") or ""),
            }
        )
    # Layers without a history record (hand-made configs) still show up, as Docker's do.
    entries.extend(
        {"Id": MISSING, "Created": 0, "CreatedBy": "", "Tags": None, "Size": s, "Comment": ""}
        for s in layer_sizes[layer:]
    )
    entries.reverse()
    if entries:
        entries[0]["Id"] = image.id
        entries[0]["Tags"] = list(image.repo_tags) or None
        if not records:
            entries[0]["Created"] = unix_seconds(image.created)
    return entries
