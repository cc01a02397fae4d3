"""The build cache: a content-addressed key per step -> the image that step produced.

Keys hash the parent image id, the instruction with its arguments expanded, the build
args in effect, the checksums of the files COPY/ADD read and the SOURCE_DATE_EPOCH.
Entries are small files in DATA_ROOT/build-cache (one per key, written atomically), so
the cache survives daemon restarts; an entry whose image is gone is a miss.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from dockling.build import instructions as ins


def instruction_text(instruction: ins.Instruction) -> str:
    """The instruction's fields (not its location) as canonical JSON."""
    fields = dataclasses.asdict(instruction)
    fields.pop("location", None)
    fields.pop("original", None)
    return json.dumps([type(instruction).__name__, fields], sort_keys=True, default=str)


def step_key(parent_id: str, instruction: ins.Instruction, *extra: Any) -> str:
    """The cache key of running `instruction` on `parent_id` with `extra` inputs."""
    payload = json.dumps([parent_id, instruction_text(instruction), *extra], default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class BuildCache:
    """Cache entries under `root` (DATA_ROOT/build-cache)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, key: str) -> str | None:
        try:
            data = json.loads((self.root / key).read_text())
        except (OSError, ValueError):
            return None
        image = data.get("image") if isinstance(data, dict) else None
        return image if isinstance(image, str) else None

    def put(self, key: str, image_id: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        temp = self.root / f".{key}.tmp"
        temp.write_text(json.dumps({"image": image_id}))
        os.replace(temp, self.root / key)

    def prune(self) -> int:
        """Forget every entry and every RUN --mount=type=cache dir (`mounts/`); returns how
        many there were."""
        count = 0
        if self.root.is_dir():
            for entry in self.root.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    count += sum(1 for _ in entry.iterdir()) if entry.name == "mounts" else 1
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                    count += 1
        return count
