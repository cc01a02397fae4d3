"""Health checks: the engine runs a container's HEALTHCHECK test while the container runs.

Docker's semantics: the first probe runs one interval after start (the start interval while
in the start period), each probe is a process exec'd in the container with a timeout, exit
code 0 is a success, anything else a failure.  The status begins `starting`, a success makes
it `healthy`, `retries` consecutive failures make it `unhealthy`; failures inside the start
period do not count while the status is still `starting`.  The last five probes are kept.

The state lives in memory with the monitor: after a daemon restart a running container's
probing starts again from `starting`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockling import errors
from dockling.containers.launcher import Launcher
from dockling.containers.model import Container, Status
from dockling.containers.spec import HealthcheckSpec
from dockling.runtime import ocispec
from dockling.runtime.users import resolve_user

log = logging.getLogger(__name__)

STARTING = "starting"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
NO_HEALTHCHECK = "none"

# Docker's defaults (daemon/health.go).
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_START_INTERVAL = 5.0
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096
SECOND_NS = 1_000_000_000


# ---- the healthcheck value ---------------------------------------------------------------


def healthcheck_from_docker(
    value: Any, *, field_name: str = "Healthcheck"
) -> HealthcheckSpec | None:
    """Docker's Healthcheck JSON object as a HealthcheckSpec (None when absent)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise errors.InvalidParameter(f"invalid {field_name}: {value!r}")
    test = value.get("Test") or ()
    if isinstance(test, str) or not all(isinstance(part, str) for part in test):
        raise errors.InvalidParameter(f"invalid {field_name}.Test: {test!r}")

    def duration(key: str) -> int:
        raw = value.get(key) or 0
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
            raise errors.InvalidParameter(f"{field_name}.{key} must not be negative")
        if 0 < raw < 1_000_000:  # Docker: "must be at least 1ms"
            raise errors.InvalidParameter(f"{field_name}.{key} must be at least 1ms")
        return int(raw)

    retries = value.get("Retries") or 0
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise errors.InvalidParameter(f"{field_name}.Retries must not be negative")
    spec = HealthcheckSpec(
        test=tuple(test),
        interval=duration("Interval"),
        timeout=duration("Timeout"),
        start_period=duration("StartPeriod"),
        start_interval=duration("StartInterval"),
        retries=retries,
    )
    if spec.test and spec.test[0] not in ("NONE", "CMD", "CMD-SHELL"):
        raise errors.InvalidParameter(f"unknown healthcheck type {spec.test[0]!r}")
    return spec


def healthcheck_to_docker(spec: HealthcheckSpec) -> dict[str, Any]:
    """The Healthcheck JSON object Docker shows in a container's Config."""
    numbers = {
        "Interval": spec.interval,
        "Timeout": spec.timeout,
        "StartPeriod": spec.start_period,
        "StartInterval": spec.start_interval,
        "Retries": spec.retries,
    }
    # Docker leaves zero values out (omitempty).
    data: dict[str, Any] = {"Test": list(spec.test)}
    data.update({key: number for key, number in numbers.items() if number})
    return data


def merge_healthcheck(
    user: HealthcheckSpec | None, image: HealthcheckSpec | None
) -> HealthcheckSpec | None:
    """Docker's merge at create: each field the user left empty comes from the image."""
    if user is None:
        return image
    if image is None:
        return user
    return HealthcheckSpec(
        test=user.test or image.test,
        interval=user.interval or image.interval,
        timeout=user.timeout or image.timeout,
        start_period=user.start_period or image.start_period,
        start_interval=user.start_interval or image.start_interval,
        retries=user.retries or image.retries,
    )


def probe_command(spec: HealthcheckSpec | None) -> tuple[str, ...] | None:
    """The argv a probe runs, or None when the container has no (enabled) health check."""
    if spec is None or not spec.test or spec.test[0] == "NONE":
        return None
    kind, args = spec.test[0], spec.test[1:]
    if kind == "CMD-SHELL":
        return ("/bin/sh", "-c", " ".join(args))
    return args or None


# ---- the live state ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProbeResult:
    start: str
    end: str
    exit_code: int
    output: str

    def to_docker(self) -> dict[str, Any]:
        return {
            "Start": self.start,
            "End": self.end,
            "ExitCode": self.exit_code,
            "Output": self.output,
        }


@dataclass
class HealthState:
    status: str = STARTING
    failing_streak: int = 0
    log: list[ProbeResult] = field(default_factory=list)

    def to_docker(self) -> dict[str, Any]:
        """State.Health as `docker inspect` shows it."""
        return {
            "Status": self.status,
            "FailingStreak": self.failing_streak,
            "Log": [entry.to_docker() for entry in self.log],
        }

    def record(self, result: ProbeResult, *, retries: int, in_start_period: bool) -> None:
        """Apply one probe's result to the status and the failing streak."""
        self.log = [*self.log, result][-MAX_LOG_ENTRIES:]
        if result.exit_code == 0:
            self.failing_streak = 0
            self.status = HEALTHY
            return
        if in_start_period and self.status == STARTING:
            return  # failures while the service boots do not count
        self.failing_streak += 1
        if self.failing_streak >= retries:
            self.status = UNHEALTHY


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seconds(ns: int, default: float) -> float:
    return ns / SECOND_NS if ns > 0 else default


def _format_go_duration(seconds: float) -> str:
    """Go's time.Duration text for the timeout message ("30s", "500ms")."""
    if seconds >= 1 and seconds == int(seconds):
        return f"{int(seconds)}s"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    return f"{seconds:g}s"


# ---- the monitor -------------------------------------------------------------------------


Publish = Callable[[Container, str], None]


class HealthMonitor:
    """Runs one probe loop per running container that has a health check."""

    def __init__(self, launcher: Launcher, publish: Publish) -> None:
        self.launcher = launcher
        self.publish = publish
        self._states: dict[str, HealthState] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def state(self, container_id: str) -> HealthState | None:
        """The container's health, or None when it has no health check."""
        return self._states.get(container_id)

    def begin(self, container: Container) -> None:
        """Start probing a container that has just started (or was found running)."""
        self.end(container.id)
        command = probe_command(container.spec.healthcheck)
        if command is None:
            self._states.pop(container.id, None)
            return
        health = HealthState()
        self._states[container.id] = health
        self._tasks[container.id] = asyncio.create_task(self._loop(container, command, health))

    def end(self, container_id: str) -> None:
        """Stop probing (the container stopped); the last state stays for inspect."""
        task = self._tasks.pop(container_id, None)
        if task is not None:
            task.cancel()

    def forget(self, container_id: str) -> None:
        """The container is removed: drop its state too."""
        self.end(container_id)
        self._states.pop(container_id, None)

    async def _loop(
        self, container: Container, command: tuple[str, ...], health: HealthState
    ) -> None:
        check = container.spec.healthcheck
        assert check is not None
        interval = _seconds(check.interval, DEFAULT_INTERVAL)
        timeout = _seconds(check.timeout, DEFAULT_TIMEOUT)
        start_period = _seconds(check.start_period, 0.0)
        start_interval = _seconds(check.start_interval, DEFAULT_START_INTERVAL)
        retries = check.retries or DEFAULT_RETRIES
        began = time.monotonic()
        while True:
            booting = time.monotonic() - began < start_period and health.status == STARTING
            await asyncio.sleep(start_interval if booting else interval)
            if container.state.status is Status.PAUSED:
                continue  # a frozen container cannot answer; Docker skips it as well
            if container.state.status is not Status.RUNNING:
                return
            try:
                result = await self._probe(container, command, timeout)
            except (errors.DocklingError, OSError) as exc:
                result = ProbeResult(_now(), _now(), -1, str(exc))
            if not _still_running(container):
                return  # the container died during the probe: its failure means nothing
            before = health.status
            health.record(
                result,
                retries=retries,
                in_start_period=time.monotonic() - began < start_period,
            )
            if health.status != before:
                self.publish(container, f"health_status: {health.status}")

    async def _probe(
        self, container: Container, command: tuple[str, ...], timeout: float
    ) -> ProbeResult:
        """Exec the test in the container with `runc exec`; its output, capped, and exit."""
        state_dir = Path(self.launcher.state_dir(container.id))
        process_path = state_dir / "health-process.json"
        pid_path = state_dir / "health.pid"
        process = await asyncio.to_thread(self._process, container, command)
        await asyncio.to_thread(process_path.write_text, json.dumps(process))
        pid_path.unlink(missing_ok=True)
        runtime = self.launcher.runtime_for(container)
        start = _now()
        try:
            proc = await asyncio.create_subprocess_exec(
                runtime.binary,
                "--root",
                runtime.root,
                "exec",
                "--process",
                str(process_path),
                "--pid-file",
                str(pid_path),
                container.id,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as exc:
            raise errors.SystemError(f"health check exec failed: {exc}") from exc
        assert proc.stdout is not None
        try:
            output = await asyncio.wait_for(_read_capped(proc.stdout), timeout)
            code = await proc.wait()
        except TimeoutError:
            await _kill_probe(proc, pid_path)
            return ProbeResult(
                start,
                _now(),
                -1,
                f"Health check exceeded timeout ({_format_go_duration(timeout)})",
            )
        except asyncio.CancelledError:
            await asyncio.shield(_kill_probe(proc, pid_path))
            raise
        return ProbeResult(start, _now(), code, output.decode(errors="replace"))

    def _process(self, container: Container, command: tuple[str, ...]) -> dict[str, Any]:
        rootfs = str(self.launcher.rootfs(container.id))
        uid, gid, groups = resolve_user(container.process.user, rootfs)
        spec = container.spec
        return ocispec.build_exec_process(
            args=command,
            env=tuple(container.process.env),
            cwd=container.process.cwd,
            uid=uid,
            gid=gid,
            additional_gids=groups,
            terminal=False,
            privileged=spec.privileged,
            cap_add=spec.cap_add,
            cap_drop=spec.cap_drop,
            no_new_privileges=any(
                opt.startswith("no-new-privileges") and not opt.endswith("false")
                for opt in spec.security_opt
            ),
            ulimits=spec.ulimits,
        )


def _still_running(container: Container) -> bool:
    # A function, so that the type checker does not carry the earlier narrowing over an await.
    return container.state.status is Status.RUNNING


async def _read_capped(stream: asyncio.StreamReader) -> bytes:
    """Read to EOF, keeping the first MAX_OUTPUT bytes (Docker truncates the same way)."""
    kept = bytearray()
    while chunk := await stream.read(65536):
        if len(kept) < MAX_OUTPUT:
            kept += chunk[: MAX_OUTPUT - len(kept)]
    return bytes(kept)


async def _kill_probe(proc: asyncio.subprocess.Process, pid_path: Path) -> None:
    """Kill the probe process in the container, then its `runc exec` parent."""
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(pid_path.read_text().strip()), signal.SIGKILL)
    try:
        await asyncio.wait_for(proc.wait(), 5)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
