"""Process facts for the benchmark: memory of a process, finding processes, timing a command."""

from __future__ import annotations

import ctypes
import os
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

_libc = ctypes.CDLL(None, use_errno=True)
_MNT_DETACH = 2


@dataclass(frozen=True)
class Memory:
    """Resident (RSS) and proportional (PSS) set size of one or more processes, in KiB."""

    rss_kib: int
    pss_kib: int

    def __add__(self, other: Memory) -> Memory:
        return Memory(self.rss_kib + other.rss_kib, self.pss_kib + other.pss_kib)


def memory_of(pid: int) -> Memory:
    """RSS from /proc/PID/status and PSS from smaps_rollup; zero for a process that is gone."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return Memory(rss, pss)


def cmdline(pid: int) -> list[str]:
    """The argv of `pid`, or [] if it is gone or a kernel thread."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def parent_of(pid: int) -> int:
    """The parent pid of `pid`, or 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # The command name in field 2 may hold spaces and parentheses: parse after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[1])


def all_pids() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def children_of(pid: int) -> list[int]:
    return [p for p in all_pids() if parent_of(p) == pid]


def processes_named(basename: str, *, containing: str) -> list[int]:
    """Pids whose argv[0] has this basename and whose command line mentions `containing`.

    `containing` is a private temp path of this run, so that only processes this
    benchmark started (directly or through its daemons) are ever matched.
    """
    found = []
    for pid in all_pids():
        argv = cmdline(pid)
        if argv and os.path.basename(argv[0]) == basename and containing in " ".join(argv):
            found.append(pid)
    return found


def stop_pid(pid: int, *, timeout: float = 30.0) -> None:
    """SIGTERM `pid` (a child of this process), wait, then SIGKILL if it is still there."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        # Reap it if it is our child; a zombie counts as gone.
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def mount_overlay(target: Path, *, lower: Path, upper: Path, work: Path) -> None:
    """mount(2) an overlay directly: a `mount` process would cost ~8 ms of the floor we measure."""
    options = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    if _libc.mount(b"overlay", str(target).encode(), b"overlay", 0, options) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount overlay on {target}: {os.strerror(err)}")


def unmount(target: str, *, lazy: bool = False) -> None:
    if _libc.umount2(target.encode(), _MNT_DETACH if lazy else 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first (the order to unmount them)."""
    prefix = str(root)
    points = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def unmount_all_under(root: Path) -> list[str]:
    """Lazily unmount everything below `root`; returns what was unmounted (for the log)."""
    done = []
    for point in mounts_under(root):
        try:
            unmount(point, lazy=True)
            done.append(point)
        except OSError:
            pass
    return done


CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_dirs(relative: str) -> list[Path]:
    """`relative` (e.g. "docker") under every mounted cgroup hierarchy where it exists."""
    # Each entry of /sys/fs/cgroup is one hierarchy here (v1 controllers and "unified").
    return [h / relative for h in sorted(CGROUP_ROOT.iterdir()) if (h / relative).is_dir()]


def remove_empty_cgroups(top: Path) -> None:
    """rmdir `top` and its sub-cgroups, deepest first; a cgroup with processes stays."""
    for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass


class CommandFailed(RuntimeError):
    pass


def timed(argv: Sequence[str], *, env: dict[str, str] | None = None) -> float:
    """Run `argv` to completion and return its wall time in seconds; raise if it fails.

    Output goes to /dev/null (no pipe to drain); stderr is kept for the error message.
    """
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise CommandFailed(
            f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.decode()[-800:]}"
        )
    return elapsed


def output_of(
    argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 120
) -> str:
    """Run `argv` and return its stdout; raise CommandFailed with stderr if it fails."""
    proc = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise CommandFailed(
            f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.decode()[-800:]}"
        )
    return proc.stdout.decode(errors="replace")


@dataclass(frozen=True)
class Summary:
    """Order statistics of a sample of wall times, in milliseconds."""

    n: int
    median_ms: float
    p10_ms: float
    p90_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Summary:
        ms = sorted(s * 1000 for s in seconds)
        deciles = statistics.quantiles(ms, n=10, method="inclusive") if len(ms) > 1 else [ms[0]] * 9
        return cls(len(ms), statistics.median(ms), deciles[0], deciles[-1])
