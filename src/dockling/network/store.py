"""Network records and container sandboxes as JSON files under DATA_ROOT/network/."""

from __future__ import annotations

import json
import os
from pathlib import Path

from dockling.network.model import Network, Sandbox


class NetworkStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.networks_dir = root / "networks"
        self.sandboxes_dir = root / "containers"

    def _write(self, path: Path, data: object) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)

    def save_network(self, network: Network) -> None:
        self._write(self.networks_dir / f"{network.id}.json", network.to_dict())

    def delete_network(self, network_id: str) -> None:
        (self.networks_dir / f"{network_id}.json").unlink(missing_ok=True)

    def load_networks(self) -> list[Network]:
        if not self.networks_dir.is_dir():
            return []
        return [
            Network.from_dict(json.loads(p.read_text()))
            for p in sorted(self.networks_dir.glob("*.json"))
        ]

    def save_sandbox(self, sandbox: Sandbox) -> None:
        self._write(self.sandboxes_dir / f"{sandbox.container_id}.json", sandbox.to_dict())

    def delete_sandbox(self, container_id: str) -> None:
        (self.sandboxes_dir / f"{container_id}.json").unlink(missing_ok=True)

    def load_sandboxes(self) -> list[Sandbox]:
        if not self.sandboxes_dir.is_dir():
            return []
        return [
            Sandbox.from_dict(json.loads(p.read_text()))
            for p in sorted(self.sandboxes_dir.glob("*.json"))
        ]
