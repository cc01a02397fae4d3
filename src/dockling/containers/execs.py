"""Exec instances: a second process in a running container (`docker exec`).

Like Docker, exec instances live in memory only; each started one has its own shim in
exec mode, so its exit code is recorded even if nobody is attached.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path

from dockling import errors
from dockling.containers.model import Container
from dockling.containers.process import merge_env
from dockling.containers.service import ContainerService
from dockling.ids import generate_id
from dockling.runtime import ocispec, shim
from dockling.runtime.users import resolve_groups, resolve_user

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExecConfig:
    cmd: tuple[str, ...]
    tty: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = True
    attach_stderr: bool = True
    env: tuple[str, ...] = ()
    user: str = ""
    working_dir: str = ""
    privileged: bool = False
    detach_keys: str = ""


@dataclass
class ExecInstance:
    id: str
    container_id: str
    config: ExecConfig
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    started: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class ExecSetupFailed(errors.InvalidParameter):
    """The exec's process could not be set up (its user, say): reported on its stream."""


class ExecService:
    def __init__(self, containers: ContainerService, exec_root: Path) -> None:
        self.containers = containers
        self.root = exec_root / "exec"
        self._execs: dict[str, ExecInstance] = {}
        self._watchers: set[asyncio.Task[None]] = set()

    def state_dir(self, exec_id: str) -> str:
        return str(self.root / exec_id)

    def get(self, exec_id: str) -> ExecInstance:
        instance = self._execs.get(exec_id)
        if instance is None:
            raise errors.ExecNotFound(exec_id)
        return instance

    def create(self, ref: str, config: ExecConfig) -> ExecInstance:
        container = self.containers.get(ref)
        if container.state.status.value == "paused":
            raise errors.Conflict(f"Container {ref} is paused, unpause the container before exec")
        if not container.state.running:
            raise errors.ContainerNotRunning(f"Container {container.id} is not running")
        if not config.cmd:
            raise errors.InvalidParameter("No exec command specified")
        instance = ExecInstance(generate_id(), container.id, config)
        self._execs[instance.id] = instance
        container.exec_ids.append(instance.id)
        self.containers.publish(
            container, f"exec_create: {' '.join(config.cmd)}", execID=instance.id
        )
        return instance

    async def prepare(self, exec_id: str) -> tuple[ExecInstance, Container]:
        """Launch the exec shim (the process waits for `begin`)."""
        instance = self.get(exec_id)
        if instance.started:
            raise errors.Conflict(f"Error: Exec command {exec_id} has already run")
        container = self.containers.get(instance.container_id)
        if not container.state.running:
            raise errors.ContainerNotRunning(f"Container {container.id} is not running")
        instance.started = True
        state_dir = Path(self.state_dir(exec_id))
        state_dir.mkdir(parents=True, exist_ok=True)
        process_path = state_dir / "process.json"
        try:
            process = self._process(container, instance.config)
        except errors.DocklingError as exc:
            # Docker answers this (an unknown user, say) on the exec's stream, exit 126.
            instance.exit_code = 126
            instance.done.set()
            shutil.rmtree(state_dir, ignore_errors=True)
            raise ExecSetupFailed(exc.message) from None
        process_path.write_text(json.dumps(process))
        launcher = self.containers.launcher
        runtime = launcher.runtime_for(container)
        opts = shim.ShimOptions(
            shim_binary=launcher.shim_binary,
            runtime_binary=runtime.binary,
            runtime_root=runtime.root,
            container_id=container.id,
            bundle=str(launcher.bundle(container.id)),
            state_dir=str(state_dir),
            tty=instance.config.tty,
            stdin=instance.config.attach_stdin,
            exec_process=str(process_path),
        )
        try:
            await shim.launch(opts)
        except BaseException:
            instance.exit_code = 126
            instance.done.set()
            shutil.rmtree(state_dir, ignore_errors=True)
            raise
        return instance, container

    async def begin(self, instance: ExecInstance, container: Container) -> None:
        """Start the prepared process; record its exit when it ends."""
        try:
            instance.pid = await shim.start_exec(self.state_dir(instance.id))
        except errors.RuntimeStartError:
            instance.exit_code = 126
            instance.done.set()
            await asyncio.to_thread(shutil.rmtree, self.state_dir(instance.id), True)
            raise
        instance.running = True
        self.containers.publish(
            container, f"exec_start: {' '.join(instance.config.cmd)}", execID=instance.id
        )
        task = asyncio.create_task(self._watch(instance, container))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _watch(self, instance: ExecInstance, container: Container) -> None:
        try:
            status = await shim.wait_exit(self.state_dir(instance.id))
            instance.exit_code = status.code
        except errors.DocklingError as exc:
            log.warning("exec %s lost: %s", instance.id[:12], exc)
            instance.exit_code = 126
        instance.running = False
        instance.pid = 0
        instance.done.set()
        self.containers.publish(
            container, "exec_die", execID=instance.id, exitCode=str(instance.exit_code)
        )
        await asyncio.to_thread(shutil.rmtree, self.state_dir(instance.id), True)

    async def resize(self, exec_id: str, *, height: int, width: int) -> None:
        instance = self.get(exec_id)
        if not instance.running:
            raise errors.Conflict(f"Exec {exec_id} is not running")
        await shim.resize(self.state_dir(exec_id), height, width)

    def _process(self, container: Container, config: ExecConfig) -> dict[str, object]:
        rootfs = str(self.containers.launcher.rootfs(container.id))
        uid, gid, groups = resolve_user(config.user or container.process.user, rootfs)
        extra = resolve_groups(container.spec.group_add, rootfs)
        groups = tuple(dict.fromkeys((*groups, *extra)))
        spec = container.spec
        return ocispec.build_exec_process(
            args=config.cmd,
            env=tuple(merge_env(tuple(container.process.env), config.env)),
            cwd=config.working_dir or container.process.cwd,
            uid=uid,
            gid=gid,
            additional_gids=groups,
            terminal=config.tty,
            privileged=config.privileged or spec.privileged,
            cap_add=spec.cap_add,
            cap_drop=spec.cap_drop,
            no_new_privileges=any(
                opt.startswith("no-new-privileges") and not opt.endswith("false")
                for opt in spec.security_opt
            ),
            ulimits=spec.ulimits,
        )

    def abandon(self, instance: ExecInstance) -> None:
        """Stop an exec shim that was prepared but will never be started (the client left)."""
        if instance.running or instance.done.is_set():
            return
        state_dir = self.state_dir(instance.id)
        if shim.shim_alive(state_dir):
            try:
                pid = int((Path(state_dir) / shim.SHIM_PID_FILE).read_text().strip())
                os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
        instance.exit_code = 126
        instance.done.set()
        shutil.rmtree(state_dir, ignore_errors=True)

    def forget_container(self, container_id: str) -> None:
        for exec_id in [e for e, inst in self._execs.items() if inst.container_id == container_id]:
            self.abandon(self._execs.pop(exec_id))
            shutil.rmtree(self.state_dir(exec_id), ignore_errors=True)
