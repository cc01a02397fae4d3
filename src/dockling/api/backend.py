"""What the API layer needs from the daemon: the services, wired by `daemon.wiring`.

The API never imports `daemon`; the daemon builds this value and hands it over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockling.containers.execs import ExecService
from dockling.containers.launcher import Launcher
from dockling.containers.model import Container
from dockling.containers.service import ContainerService
from dockling.distribution.service import DistributionService
from dockling.events.bus import EventBus
from dockling.images.store import ImageService
from dockling.network.service import NetworkService
from dockling.volumes.local import LocalVolumeStore


@dataclass
class Backend:
    containers: ContainerService
    execs: ExecService
    images: ImageService
    volumes: LocalVolumeStore
    events: EventBus
    launcher: Launcher
    distribution: DistributionService
    networks: NetworkService
    info: Callable[[], dict[str, Any]]
    version: Callable[[], dict[str, Any]]
    detach_keys: str = ""

    def mounts_json(self, container: Container) -> list[dict[str, Any]]:
        from dockling.containers import mounts as mount_parsing

        return mount_parsing.inspect_mounts(container.mounts, self.containers.volume_path)

    def graph_data(self, container: Container) -> dict[str, str]:
        rootfs = str(self.launcher.rootfs(container.id))
        data = {"MergedDir": rootfs}
        try:
            for mount in self.launcher.snapshotter.mounts(container.id):
                for option in mount.options:
                    key, _, value = option.partition("=")
                    if key == "lowerdir":
                        data["LowerDir"] = value
                    elif key == "upperdir":
                        data["UpperDir"] = value
                    elif key == "workdir":
                        data["WorkDir"] = value
        except Exception:
            pass
        return data
