"""`system df`: disk usage of images, containers, volumes and build cache."""

from __future__ import annotations

import sys

from dockling.cli.context import Context
from dockling.cli.flags import FlagSet
from dockling.cli.humanize import human_size
from dockling.cli.table import tabwrite

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every CLI start a few ms: annotations only
    from typing import Any


def _reclaimable(reclaimable: int, total: int) -> str:
    if total <= 0:
        return human_size(reclaimable)
    return f"{human_size(reclaimable)} ({int(100 * reclaimable / total)}%)"


def summary_rows(data: dict[str, Any]) -> list[list[str]]:
    """Docker's four rows: TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE."""
    images = data.get("Images") or []
    containers = data.get("Containers") or []
    volumes = data.get("Volumes") or []
    layers = int(data.get("LayersSize") or 0)
    active_images = [i for i in images if int(i.get("Containers") or 0) > 0]
    used = 0
    for image in active_images:
        used += int(image.get("Size") or 0) - max(int(image.get("SharedSize") or 0), 0)
    shared = max((int(i.get("SharedSize") or 0) for i in active_images), default=0)
    image_reclaim = max(layers - used - shared, 0) if active_images else layers
    running = [c for c in containers if c.get("State") in ("running", "paused", "restarting")]
    container_size = sum(int(c.get("SizeRw") or 0) for c in containers)
    container_reclaim = sum(int(c.get("SizeRw") or 0) for c in containers if c not in running)
    volume_size = sum(int((v.get("UsageData") or {}).get("Size") or 0) for v in volumes)
    active_volumes = [v for v in volumes if int((v.get("UsageData") or {}).get("RefCount") or 0)]
    volume_reclaim = sum(
        int((v.get("UsageData") or {}).get("Size") or 0) for v in volumes if v not in active_volumes
    )
    cache = data.get("BuildCache") or []
    return [
        ["Images", str(len(images)), str(len(active_images)), human_size(layers),
         _reclaimable(image_reclaim, layers)],
        ["Containers", str(len(containers)), str(len(running)), human_size(container_size),
         _reclaimable(container_reclaim, container_size)],
        ["Local Volumes", str(len(volumes)), str(len(active_volumes)), human_size(volume_size),
         _reclaimable(volume_reclaim, volume_size)],
        ["Build Cache", str(len(cache)), "0", human_size(0), human_size(0)],
    ]  # fmt: skip


def cmd_system_df(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "[OPTIONS]", "Show docker disk usage", max_args=0)
    fs.value("format", None, "Format output using a custom template")
    fs.bool("verbose", "v", "Show detailed information on space usage")
    fs.parse(args)
    data = ctx.client.transport.call("GET", "/system/df") or {}
    lines = ["TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE"]
    lines += ["\t".join(row) for row in summary_rows(data)]
    sys.stdout.write(tabwrite(lines))
    return 0
