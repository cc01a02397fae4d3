"""`dockling stats`: resource usage computed from stats samples as docker does."""

from __future__ import annotations

import sys
import threading
import time

from dockling.cli.context import CLIError, Context
from dockling.cli.flags import FlagSet
from dockling.cli.humanize import bytes_size, human_size
from dockling.client.transport import APIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every CLI start a few ms: annotations only
    from typing import Any

DEFAULT_FORMAT = (
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}"
    "\t{{.BlockIO}}\t{{.PIDs}}"
)
HEADERS = {
    "Container": "CONTAINER",
    "ID": "CONTAINER ID",
    "Name": "NAME",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}


def cpu_percent(sample: dict[str, Any]) -> float:
    """CPU % from the sample and its precpu_stats (docker's calculateCPUPercentUnix)."""
    cpu = sample.get("cpu_stats") or {}
    pre = sample.get("precpu_stats") or {}
    usage = (cpu.get("cpu_usage") or {}).get("total_usage") or 0
    pre_usage = (pre.get("cpu_usage") or {}).get("total_usage") or 0
    system = cpu.get("system_cpu_usage") or 0
    pre_system = pre.get("system_cpu_usage") or 0
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [])
    cpu_delta = usage - pre_usage
    system_delta = system - pre_system
    if system_delta > 0 and cpu_delta > 0:
        return cpu_delta / system_delta * (online or 1) * 100.0
    return 0.0


def memory_usage(sample: dict[str, Any]) -> tuple[float, float]:
    """(used bytes without page cache, limit) like docker's calculateMemUsageUnixNoCache."""
    mem = sample.get("memory_stats") or {}
    usage = float(mem.get("usage") or 0)
    stats = mem.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):
        value = stats.get(key)
        if value is not None and value < usage:
            return usage - value, float(mem.get("limit") or 0)
    return usage, float(mem.get("limit") or 0)


def io_totals(sample: dict[str, Any]) -> tuple[tuple[int, int], tuple[int, int]]:
    """((net rx, net tx), (block read, block write)) byte totals."""
    rx = tx = 0
    for net in (sample.get("networks") or {}).values():
        rx += net.get("rx_bytes") or 0
        tx += net.get("tx_bytes") or 0
    read = write = 0
    blkio = (sample.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    for entry in blkio:
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read += entry.get("value") or 0
        elif op == "write":
            write += entry.get("value") or 0
    return (rx, tx), (read, write)


class StatsRow:
    """One container's latest sample as docker's stats template context."""

    def __init__(self, ref: str, sample: dict[str, Any] | None) -> None:
        self.ref = ref
        self.sample = sample or {}

    def template_field(self, name: str) -> Any:
        s = self.sample
        if name == "Container":
            return self.ref
        if name == "ID":
            return str(s.get("id") or self.ref)[:12]
        if name == "Name":
            return str(s.get("name") or "--").lstrip("/")
        if not s:
            return {"CPUPerc": "--", "MemPerc": "--", "PIDs": "--"}.get(name, "-- / --")
        if name == "CPUPerc":
            return f"{cpu_percent(s):.2f}%"
        if name in ("MemUsage", "MemPerc"):
            used, limit = memory_usage(s)
            if name == "MemPerc":
                return f"{(used / limit * 100.0) if limit else 0.0:.2f}%"
            return f"{bytes_size(used)} / {bytes_size(limit)}"
        if name in ("NetIO", "BlockIO"):
            net, block = io_totals(s)
            a, b = net if name == "NetIO" else block
            return f"{human_size(a, 3)} / {human_size(b, 3)}"
        if name == "PIDs":
            return str((s.get("pids_stats") or {}).get("current") or 0)
        from dockling.cli.template import TemplateError

        raise TemplateError(f"can't evaluate field {name} in type *container.statsContext")

    def template_json(self) -> dict[str, str]:
        return {key: str(self.template_field(key)) for key in sorted(HEADERS)}


def cmd_stats(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display,
        "[OPTIONS] [CONTAINER...]",
        "Display a live stream of container(s) resource usage statistics",
    )
    fs.bool("all", "a", "Show all containers (default shows just running)")
    fs.value("format", None, "Format output using a custom template")
    fs.bool("no-stream", None, "Disable streaming stats and only pull the first result")
    fs.bool("no-trunc", None, "Do not truncate output")
    values, refs = fs.parse(args)
    client = ctx.client
    if not refs:
        listing = client.list_containers(all=bool(values["all"])) or []
        refs = [c["Id"][:12] for c in listing]
    fmt = values["format"] or DEFAULT_FORMAT
    from dockling.cli.table import write_listing

    if values["no_stream"]:
        rows: list[StatsRow] = []
        failed = False
        for ref in refs:
            try:
                sample = next(iter(client.stats(ref, stream=False)), None)
            except APIError as exc:
                sys.stderr.write(f"Error response from daemon: {exc.message}\n")
                failed = True
                continue
            rows.append(StatsRow(ref, sample))
        if not failed:  # docker prints no table when any container was missing
            write_listing(fmt, rows, HEADERS)
        return 1 if failed else 0

    latest: dict[str, Any] = {}
    errors: list[str] = []

    def follow(ref: str) -> None:
        try:
            for sample in client.stats(ref, stream=True):
                latest[ref] = sample
        except APIError as exc:
            errors.append(exc.message)

    for ref in refs:
        threading.Thread(target=follow, args=(ref,), daemon=True).start()
    try:
        while True:
            time.sleep(1.0)
            if errors and not latest:
                raise CLIError(f"Error response from daemon: {errors[0]}", 1)
            sys.stdout.write("\033[2J\033[H")
            write_listing(fmt, [StatsRow(ref, latest.get(ref)) for ref in refs], HEADERS)
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
