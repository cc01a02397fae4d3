"""Read a container's cgroup statistics the way `docker stats` wants them, and clean up.

`cgroup_path` is the OCI spec's cgroupsPath (e.g. "/dockling/<id>").  On a v1 or
hybrid host each controller lives at <root>/<controller>/<cgroup_path>; on a pure v2
host (a cgroup.controllers file at the root) everything is at <root>/<cgroup_path>.
Missing files read as zero: a container that just exited has no cgroup left.
"""

from __future__ import annotations

import datetime
import errno
import os
import time
from typing import Any

from dockling.errors import SystemError

CGROUP_ROOT = "/sys/fs/cgroup"
NANO = 1_000_000_000
# v1 blkio byte counters, in runc's order of preference: CFQ, then BFQ, then throttle
# (the throttle files count I/O even when no proportional scheduler is active).
_BLKIO_FILES = (
    "blkio.io_service_bytes_recursive",
    "blkio.bfq.io_service_bytes_recursive",
    "blkio.throttle.io_service_bytes_recursive",
)


def is_unified(root: str = CGROUP_ROOT) -> bool:
    """True when `root` is a pure cgroup v2 mount."""
    return os.path.exists(os.path.join(root, "cgroup.controllers"))


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _int(path: str) -> int:
    text = _read(path).strip()
    return int(text) if text.lstrip("-").isdigit() else 0


def _keyed(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def system_cpu_usage() -> int:
    """Host CPU time in nanoseconds since boot (all CPUs), from /proc/stat."""
    for line in _read("/proc/stat").splitlines():
        if line.startswith("cpu "):
            # user nice system idle iowait irq softirq: Docker sums these seven.
            ticks = sum(int(v) for v in line.split()[1:8])
            return ticks * NANO // _clock_ticks()
    return 0


def _host_memory() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _now() -> str:
    now = time.time_ns()
    stamp = datetime.datetime.fromtimestamp(now // NANO, tz=datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{now % NANO:09d}Z"


def read_stats(cgroup_path: str, *, root: str = CGROUP_ROOT) -> dict[str, Any]:
    """Docker's stats object (without precpu_stats) for the cgroup at `cgroup_path`."""
    stats = _read_v2(root, cgroup_path) if is_unified(root) else _read_v1(root, cgroup_path)
    stats["read"] = _now()
    stats["cpu_stats"]["system_cpu_usage"] = system_cpu_usage()
    stats["cpu_stats"]["online_cpus"] = os.sysconf("SC_NPROCESSORS_ONLN")
    host_memory = _host_memory()
    limit = stats["memory_stats"].get("limit", 0)
    # An unlimited cgroup reports a huge number; Docker shows the host's memory.
    if host_memory and (limit == 0 or limit > host_memory):
        stats["memory_stats"]["limit"] = host_memory
    return stats


def _read_v1(root: str, cgroup_path: str) -> dict[str, Any]:
    rel = cgroup_path.lstrip("/")

    def at(controller: str, name: str) -> str:
        return os.path.join(root, controller, rel, name)

    ticks = _clock_ticks()
    acct = _keyed(at("cpuacct", "cpuacct.stat"))
    percpu = [int(v) for v in _read(at("cpuacct", "cpuacct.usage_percpu")).split()]
    throttling = _keyed(at("cpu", "cpu.stat"))
    cpu_stats = {
        "cpu_usage": {
            "total_usage": _int(at("cpuacct", "cpuacct.usage")),
            "usage_in_kernelmode": acct.get("system", 0) * NANO // ticks,
            "usage_in_usermode": acct.get("user", 0) * NANO // ticks,
            "percpu_usage": percpu,
        },
        "throttling_data": {
            "periods": throttling.get("nr_periods", 0),
            "throttled_periods": throttling.get("nr_throttled", 0),
            "throttled_time": throttling.get("throttled_time", 0),
        },
    }
    memory_stats = {
        "usage": _int(at("memory", "memory.usage_in_bytes")),
        "max_usage": _int(at("memory", "memory.max_usage_in_bytes")),
        "failcnt": _int(at("memory", "memory.failcnt")),
        "limit": _int(at("memory", "memory.limit_in_bytes")),
        "stats": _keyed(at("memory", "memory.stat")),
    }
    pids_stats: dict[str, int] = {"current": _int(at("pids", "pids.current"))}
    pids_max = _read(at("pids", "pids.max")).strip()
    if pids_max.isdigit():
        pids_stats["limit"] = int(pids_max)
    entries: list[dict[str, Any]] = []
    for name in _BLKIO_FILES:
        entries = _blkio_v1(_read(at("blkio", name)))
        if entries:
            break
    return {
        "cpu_stats": cpu_stats,
        "memory_stats": memory_stats,
        "pids_stats": pids_stats,
        "blkio_stats": {"io_service_bytes_recursive": entries},
    }


def _blkio_v1(text: str) -> list[dict[str, Any]]:
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 3 or ":" not in fields[0]:
            continue  # the trailing "Total N" line
        major, _, minor = fields[0].partition(":")
        entries.append(
            {"major": int(major), "minor": int(minor), "op": fields[1], "value": int(fields[2])}
        )
    return entries


def _read_v2(root: str, cgroup_path: str) -> dict[str, Any]:
    base = os.path.join(root, cgroup_path.lstrip("/"))
    cpu = _keyed(os.path.join(base, "cpu.stat"))
    cpu_stats = {
        "cpu_usage": {
            "total_usage": cpu.get("usage_usec", 0) * 1000,
            "usage_in_kernelmode": cpu.get("system_usec", 0) * 1000,
            "usage_in_usermode": cpu.get("user_usec", 0) * 1000,
            "percpu_usage": [],
        },
        "throttling_data": {
            "periods": cpu.get("nr_periods", 0),
            "throttled_periods": cpu.get("nr_throttled", 0),
            "throttled_time": cpu.get("throttled_usec", 0) * 1000,
        },
    }
    memory_stats = {
        "usage": _int(os.path.join(base, "memory.current")),
        "max_usage": _int(os.path.join(base, "memory.peak")),
        "limit": _int(os.path.join(base, "memory.max")),
        "stats": _keyed(os.path.join(base, "memory.stat")),
    }
    pids_stats: dict[str, int] = {"current": _int(os.path.join(base, "pids.current"))}
    pids_max = _read(os.path.join(base, "pids.max")).strip()
    if pids_max.isdigit():
        pids_stats["limit"] = int(pids_max)
    entries: list[dict[str, Any]] = []
    for line in _read(os.path.join(base, "io.stat")).splitlines():
        device, *pairs = line.split()
        major, _, minor = device.partition(":")
        values = dict(p.split("=", 1) for p in pairs if "=" in p)
        for key, op in (("rbytes", "read"), ("wbytes", "write")):
            if key in values:
                entries.append(
                    {"major": int(major), "minor": int(minor), "op": op, "value": int(values[key])}
                )
    return {
        "cpu_stats": cpu_stats,
        "memory_stats": memory_stats,
        "pids_stats": pids_stats,
        "blkio_stats": {"io_service_bytes_recursive": entries},
    }


def freezer_state(cgroup_path: str, *, root: str = CGROUP_ROOT) -> str:
    """ "FROZEN", "FREEZING" or "THAWED"; "" when the cgroup does not exist."""
    rel = cgroup_path.lstrip("/")
    if is_unified(root):
        value = _read(os.path.join(root, rel, "cgroup.freeze")).strip()
        return {"1": "FROZEN", "0": "THAWED"}.get(value, "")
    return _read(os.path.join(root, "freezer", rel, "freezer.state")).strip()


def cgroup_dirs(cgroup_path: str, *, root: str = CGROUP_ROOT) -> list[str]:
    """Every existing directory of this cgroup, one per hierarchy."""
    rel = cgroup_path.lstrip("/")
    if is_unified(root):
        candidates = [os.path.join(root, rel)]
    else:
        candidates = []
        for entry in sorted(os.listdir(root)):
            hierarchy = os.path.join(root, entry)
            # cpu -> cpu,cpuacct style links name a hierarchy already listed.
            if os.path.islink(hierarchy) or not os.path.isdir(hierarchy):
                continue
            candidates.append(os.path.join(hierarchy, rel))
    return [c for c in candidates if os.path.isdir(c)]


def remove_cgroups(cgroup_path: str, *, root: str = CGROUP_ROOT, timeout: float = 2.0) -> None:
    """rmdir the cgroup (and any child cgroups) in every hierarchy.

    Retries while the kernel still reports EBUSY (processes that are exiting), then
    raises SystemError.  A cgroup that is already gone is fine.
    """
    deadline = time.monotonic() + timeout
    for top in cgroup_dirs(cgroup_path, root=root):
        # Children first: a cgroup directory with sub-cgroups cannot be removed.
        dirs = [d for d, _, _ in os.walk(top)]
        for d in sorted(dirs, key=len, reverse=True):
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise SystemError(f"removing cgroup {d}: {e.strerror}") from e
                    time.sleep(0.02)


def is_hybrid(root: str = CGROUP_ROOT) -> bool:
    """True on hosts with v1 controllers plus a cgroup2 tree at <root>/unified."""
    return not is_unified(root) and os.path.exists(os.path.join(root, "unified", "cgroup.procs"))
