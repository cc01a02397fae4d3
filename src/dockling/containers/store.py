"""Persistence of container records: one JSON file per container, replaced atomically."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from dockling.containers.model import Container

log = logging.getLogger(__name__)


class ContainerStore:
    """Owns DATA_ROOT/containers/<id>/: config.json plus the container's files (logs, hosts)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def dir(self, container_id: str) -> Path:
        return self.root / container_id

    def save(self, container: Container) -> None:
        directory = self.dir(container.id)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / "config.json.tmp"
        data = json.dumps(container.to_dict(), separators=(",", ":")).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, directory / "config.json")

    def load_all(self) -> list[Container]:
        containers = []
        for entry in sorted(self.root.iterdir()):
            config = entry / "config.json"
            if not config.exists():
                # A create that died before its first save: nothing refers to it.
                shutil.rmtree(entry, ignore_errors=True)
                continue
            try:
                containers.append(Container.from_dict(json.loads(config.read_bytes())))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("skipping unreadable container record %s: %s", config, exc)
        return containers

    def delete(self, container_id: str) -> None:
        shutil.rmtree(self.dir(container_id), ignore_errors=True)
