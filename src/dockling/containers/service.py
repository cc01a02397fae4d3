"""ContainerService: the container lifecycle (create, start, stop, kill, remove, wait, ...).

Every state change goes through one method here, is saved with the record in one atomic
write and published as an event.  Runtime work (spec, shim, runc) is delegated to
`containers.launcher`, the network steps to `containers.networking`, stream plumbing to
`containers.live`.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
import signal as signals
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from dockling import errors
from dockling.containers import health as health_checks, mounts as mount_parsing, names
from dockling.containers.launcher import Launcher
from dockling.containers.live import Live, PendingAttach
from dockling.containers.model import ZERO_TIME, Container, Status
from dockling.containers.networking import ContainerNetworking
from dockling.containers.populate import populate_volumes
from dockling.containers.process import (
    image_defaults,
    merge_process,
    with_exposed_ports,
)
from dockling.containers.signals import parse_signal
from dockling.containers.spec import ContainerSpec, MountSpec, RestartPolicy
from dockling.containers.store import ContainerStore
from dockling.containers.timestamps import created_ts, now_rfc3339
from dockling.events.bus import EventBus
from dockling.ids import PrefixIndex, generate_id
from dockling.images.store import ImageService
from dockling.network.service import NetworkService
from dockling.runtime import defaults, ocispec, shim
from dockling.runtime.shim import ExitStatus
from dockling.volumes.local import LocalVolumeStore

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 10
RESTART_BACKOFF_START = 0.1
RESTART_BACKOFF_MAX = 60.0


class ContainerService:
    def __init__(
        self,
        *,
        store: ContainerStore,
        images: ImageService,
        volumes: LocalVolumeStore,
        launcher: Launcher,
        events: EventBus,
        networks: NetworkService | None = None,
    ) -> None:
        self.networking = ContainerNetworking(
            networks, lambda container_id: launcher.container_dir(container_id) / "hosts"
        )
        self.store = store
        self.images = images
        self.volumes = volumes
        self.launcher = launcher
        self.events = events
        self._containers: dict[str, Container] = {}
        self._live: dict[str, Live] = {}
        self._names: dict[str, str] = {}
        self._index = PrefixIndex(errors.ContainerNotFound)
        # Runs HEALTHCHECK probes of running containers; begun at start, ended at exit.
        self.health = health_checks.HealthMonitor(launcher, self.publish)

    # ---- lookup -------------------------------------------------------------------------

    def get(self, ref: str) -> Container:
        """By full id, name (with or without the leading slash) or unique id prefix."""
        if ref in self._containers:
            return self._containers[ref]
        by_name = self._names.get(ref.lstrip("/"))
        if by_name is not None:
            return self._containers[by_name]
        if not ref:
            raise errors.ContainerNotFound(ref)
        return self._containers[self._index.get(ref)]

    def is_running(self, container_id: str) -> bool:
        """Whether the container exists and runs (or is paused); False once removed."""
        container = self._containers.get(container_id)
        return container is not None and container.state.running

    def list(self) -> list[Container]:
        return sorted(self._containers.values(), key=lambda c: c.created, reverse=True)

    def image_in_use(self, image_id: str) -> str | None:
        for container in self._containers.values():
            if container.image_id == image_id:
                return container.id
        return None

    def _live_for(self, container_id: str) -> Live:
        return self._live.setdefault(container_id, Live())

    def publish(self, container: Container, action: str, **extra: str) -> None:
        """Publish a container event with Docker's attributes (image, name, labels)."""
        attributes = {"image": container.image_ref, "name": container.name}
        attributes.update(container.spec.labels)
        attributes.update(extra)
        self.events.publish("container", action, container.id, attributes)

    def _save(self, container: Container) -> None:
        self.store.save(container)

    # ---- restore -----------------------------------------------------------------------

    async def restore(self) -> None:
        """Load every record; re-attach to running containers, record exits that happened
        while the daemon was down, then apply restart policies."""
        await self.networking.restore()
        for container in await asyncio.to_thread(self.store.load_all):
            self._register(container)
        to_restart: list[Container] = []
        for container in list(self._containers.values()):
            status = container.state.status
            if status in (Status.RUNNING, Status.PAUSED):
                if shim.shim_alive(self.launcher.state_dir(container.id)):
                    self._watch(container)
                    self.health.begin(container)
                    continue
                exit_status = shim.read_exit(self.launcher.state_dir(container.id))
                if exit_status is None:
                    exit_status = ExitStatus(255, now_rfc3339())
                    container.state.error = "container monitor was lost while the daemon was down"
                await self._handle_exit(container, exit_status, restore=True)
            elif status is Status.RESTARTING:
                to_restart.append(container)
            elif status is Status.CREATED and shim.shim_alive(
                self.launcher.state_dir(container.id)
            ):
                # The daemon died between `runc create` and `runc start`.
                await self.launcher.teardown(container)
                await self.networking.release(container)
            elif status is Status.REMOVING:
                await self._finish_remove(container, remove_volumes=False)
        for container in self._containers.values():
            # Docker: "always" comes back with the daemon even after a manual stop;
            # "unless-stopped" only if it was not stopped by hand.
            policy = container.spec.restart_policy.name
            wanted = policy == "always" or (
                policy == "unless-stopped" and not container.manually_stopped
            )
            if container.state.status is Status.EXITED and wanted:
                to_restart.append(container)
        await asyncio.to_thread(self.volumes.reconcile, list(self._containers))
        await self.networking.reconcile(set(self._containers))
        for container in to_restart:
            try:
                await self.start(container.id)
            except errors.DocklingError as exc:
                log.error("restart of %s at daemon start failed: %s", container.short_id, exc)

    def _register(self, container: Container) -> None:
        self._containers[container.id] = container
        self._names[container.name] = container.id
        self._index.add(container.id)

    # ---- create ------------------------------------------------------------------------

    async def create(self, spec: ContainerSpec, *, name: str = "") -> Container:
        if name:
            name = names.validate(name)
            if name in self._names:
                owner = self._names[name]
                raise errors.NameInUse(
                    f'Conflict. The container name "/{name}" is already in use by container '
                    f'"{owner}". You have to remove (or rename) that container to be able to '
                    "reuse that name."
                )
        else:
            name = names.generate(set(self._names))
        self._validate(spec)
        image = await asyncio.to_thread(self.images.get, spec.image)
        defaults = image_defaults(image.config)
        spec = with_exposed_ports(spec, image.config)
        process = merge_process(spec, defaults)
        container_id = generate_id()
        # Reserve the name before the first await that can interleave with another create.
        self._names[name] = container_id
        try:
            specs = mount_parsing.merge_image_volumes(
                (*spec.mounts, *self._volumes_from(spec)), (*spec.volumes, *defaults.volumes)
            )
            spec = replace(
                spec,
                stop_signal=spec.stop_signal or defaults.stop_signal,
                healthcheck=health_checks.merge_healthcheck(spec.healthcheck, defaults.healthcheck),
            )
            container = Container(
                id=container_id,
                name=name,
                created=now_rfc3339(),
                spec=spec,
                image_id=image.id,
                image_ref=spec.image,
                process=process,
                hostname=spec.hostname
                or (os.uname().nodename if spec.uts_mode == "host" else container_id[:12]),
                runtime=spec.runtime or self.launcher.default_runtime,
            )
            container.mounts = await asyncio.to_thread(self._attach_volumes, container, specs)
            await asyncio.to_thread(
                populate_volumes, self.images, image.top_layer, container.mounts, self.volume_path
            )
            await asyncio.to_thread(self.launcher.prepare_rootfs, container_id, image.top_layer)
            await self.networking.register(container)
            self._save(container)
        except BaseException:
            self._names.pop(name, None)
            await asyncio.to_thread(self._undo_create, container_id)
            raise
        self._containers[container_id] = container
        self._index.add(container_id)
        self.publish(container, "create")
        return container

    def _validate(self, spec: ContainerSpec) -> None:
        """Reject at create what would only fail at start (Docker checks these early too)."""
        ocispec.validate_resources(spec.resources, host_cpus=os.cpu_count() or 1)
        ocispec.capabilities(
            privileged=spec.privileged,
            cap_add=spec.cap_add,
            cap_drop=spec.cap_drop,
            available=defaults.host_capabilities(),
        )
        ocispec.parse_security_opts(spec.security_opt)
        _validate_restart(spec.restart_policy)
        if spec.working_dir and not spec.working_dir.startswith("/"):
            raise errors.InvalidParameter(
                f"the working directory '{spec.working_dir}' is invalid, it needs to be an "
                "absolute path"
            )
        if spec.stop_signal:
            parse_signal(spec.stop_signal, default=signals.SIGTERM)
        for mode in (spec.ipc_mode, spec.pid_mode):
            if mode.startswith("container:"):
                self.get(mode.partition(":")[2])
        if spec.uts_mode == "host" and spec.hostname:
            raise errors.InvalidParameter("Conflicting options: hostname and the UTS mode")
        for device in spec.devices:
            ocispec.device_node(device)  # a missing host device fails the create, as Docker
        if spec.auto_remove and spec.restart_policy.name not in ("no", ""):
            raise errors.InvalidParameter(
                "conflicting options: cannot specify both --restart and --rm"
            )
        if spec.runtime and spec.runtime not in self.launcher.runtimes:
            raise errors.InvalidParameter(f"unknown or invalid runtime name: {spec.runtime}")
        self.networking.validate(spec, self.get)

    def _volumes_from(self, spec: ContainerSpec) -> builtins.list[MountSpec]:
        """--volumes-from NAME[:ro|rw]: that container's volumes and binds at the same
        paths (read-only with :ro, else as they are), unless this one mounts the path."""
        own = {m.target for m in spec.mounts}
        found: builtins.list[MountSpec] = []
        for item in spec.volumes_from:
            name, _, mode = item.partition(":")
            if mode not in ("", "ro", "rw"):
                raise errors.InvalidParameter(f"invalid mode for volumes-from: {item}")
            source = self.get(name)
            for mount in source.mounts:
                if mount.type not in ("volume", "bind") or mount.target in own:
                    continue
                read_only = mount.read_only if not mode else mode == "ro"
                found.append(replace(mount, read_only=read_only))
                own.add(mount.target)
        return found

    def _attach_volumes(
        self, container: Container, specs: tuple[MountSpec, ...]
    ) -> builtins.list[MountSpec]:
        """Create named volumes on demand, name anonymous ones, take a hold on each."""
        mount_parsing.prepare_bind_sources(specs)
        resolved = []
        for mount in specs:
            if mount.type == "volume":
                volume = self.volumes.create(mount.source or None)
                self.volumes.acquire(volume.name, container.id)
                mount = replace(mount, source=volume.name)
            resolved.append(mount)
        return resolved

    def _undo_create(self, container_id: str) -> None:
        for volume in self.volumes.list():
            if container_id in self.volumes.users(volume.name):
                self.volumes.release(volume.name, container_id)
        self.launcher.remove_rootfs(container_id)
        self.store.delete(container_id)
        self.networking.undo_register(container_id)

    # ---- start -------------------------------------------------------------------------

    async def start(self, ref: str) -> None:
        container = self.get(ref)
        live = self._live_for(container.id)
        async with live.lock:
            await self._start_locked(container, live)

    async def _start_locked(self, container: Container, live: Live) -> None:
        status = container.state.status
        if status is Status.PAUSED:
            raise errors.Conflict("cannot start a paused container, try unpause instead")
        if status is Status.RUNNING:
            raise errors.NotModified("container already started")
        if status in (Status.REMOVING, Status.DEAD):
            raise errors.Conflict(f"container {container.short_id} is marked for removal")
        container.manually_stopped = False
        try:
            pid = await self._launch(container, live)
        except errors.DocklingError as exc:
            await self._start_failed(container, exc)
            raise
        container.state.move(Status.RUNNING)
        container.state.pid = pid
        container.state.exit_code = 0
        container.state.error = ""
        container.state.started_at = now_rfc3339()
        container.state.finished_at = ZERO_TIME
        self._save(container)
        self.publish(container, "start")
        self._watch(container)
        self.health.begin(container)

    async def connect_network(
        self, ref: str, network: str, *, aliases: tuple[str, ...] = (), ipv4: str = ""
    ) -> None:
        container = self.get(ref)
        if not self.networking.enabled:
            raise errors.NotImplementedFeature("networking is disabled")
        async with self._live_for(container.id).lock:
            await self.networking.connect(container, network, aliases=aliases, ipv4=ipv4)

    async def disconnect_network(self, ref: str, network: str, *, force: bool = False) -> None:
        if not self.networking.enabled:
            raise errors.NotImplementedFeature("networking is disabled")
        try:
            container = self.get(ref)
        except errors.NotFound:
            if force:
                return
            raise
        async with self._live_for(container.id).lock:
            await self.networking.disconnect(container, network)

    async def _launch(self, container: Container, live: Live) -> int:
        """Network, runtime create, attaches, runtime start; everything undone on failure."""
        joins, ipc_donor = self._namespace_joins(container)
        network = await self.networking.config_for(container, self.get)
        try:
            pid = await self.launcher.launch(container, self.volume_path, network, joins, ipc_donor)
        except BaseException:
            await self.networking.release(container)
            raise
        try:
            await self._connect_pending_attaches(container, live)
            await self.launcher.runtime_for(container).start(container.id)
        except BaseException:
            await self.launcher.teardown(container)
            await self.networking.release(container)
            raise
        return pid

    async def _start_failed(self, container: Container, exc: errors.DocklingError) -> None:
        """Record a start that failed as Docker does (exit code 127, 126 or 128 and the
        error in the state, a `die` event); a `--rm` container is removed, so that whoever
        waits for its removal (`docker run --rm`) is answered."""
        kind = exc.kind if isinstance(exc, errors.RuntimeStartError) else ""
        container.state.exit_code = {"not-found": 127, "not-executable": 126}.get(kind, 128)
        container.state.error = exc.message
        self._save(container)
        self.publish(container, "die", exitCode=str(container.state.exit_code))
        if container.spec.auto_remove:
            await self._finish_remove(container, remove_volumes=True)

    def _namespace_joins(self, container: Container) -> tuple[dict[str, str], str | None]:
        """--ipc/--pid container:<name>: the other container's namespaces, as paths, and
        the id whose /dev/shm to share (the IPC donor, which must be shareable)."""
        joins: dict[str, str] = {}
        donor = None
        for kind, mode in (("ipc", container.spec.ipc_mode), ("pid", container.spec.pid_mode)):
            if not mode.startswith("container:"):
                continue
            target = self.get(mode.partition(":")[2])
            if not target.state.running or not target.state.pid:
                raise errors.Conflict(
                    f"cannot join {kind.upper()} of a non running container: {target.id}"
                )
            if kind == "ipc":
                if target.spec.ipc_mode != "shareable":
                    raise errors.Conflict(
                        f"container {target.id}: non-shareable IPC (hint: use IpcMode:shareable "
                        "for the donor container)"
                    )
                donor = target.id
            joins[kind] = f"/proc/{target.state.pid}/ns/{kind}"
        return joins, donor

    async def _connect_pending_attaches(self, container: Container, live: Live) -> None:
        """Attaches that came before start get their stream now, before the first output."""
        pending, live.pending_attaches = live.pending_attaches, []
        for attach in pending:
            await attach.connect_for_start(self.launcher.state_dir(container.id))

    def _watch(self, container: Container) -> None:
        live = self._live_for(container.id)
        live.process_exit = None
        live.watcher = asyncio.create_task(self._watch_exit(container))

    async def _watch_exit(self, container: Container) -> None:
        try:
            status = await shim.wait_exit(self.launcher.state_dir(container.id))
        except errors.DocklingError as exc:
            log.error("lost the monitor of %s: %s", container.short_id, exc)
            status = ExitStatus(255, now_rfc3339())
        self._live_for(container.id).notify_process_exit(status)
        async with self._live_for(container.id).lock:
            await self._handle_exit(container, status)

    async def _handle_exit(
        self, container: Container, status: ExitStatus, *, restore: bool = False
    ) -> None:
        live = self._live_for(container.id)
        live.watcher = None
        self.health.end(container.id)
        try:
            await self.launcher.teardown(container)
        except errors.DocklingError as exc:
            # The exit is still recorded and announced: waiters must not hang on a mount.
            log.error("teardown of %s after its exit: %s", container.short_id, exc)
        await self.networking.release(container)
        container.state.move(Status.EXITED)
        container.state.pid = 0
        container.state.exit_code = status.code
        container.state.finished_at = status.finished_at
        self._save(container)
        self.publish(container, "die", exitCode=str(status.code))
        live.notify_exit(status)
        if container.spec.auto_remove and not restore:
            await self._finish_remove(container, remove_volumes=True)
            return
        if self._should_restart(container):
            self._schedule_restart(container)

    def _should_restart(self, container: Container) -> bool:
        policy = container.spec.restart_policy
        if container.manually_stopped or self._live_for(container.id).stopping:
            return False
        if policy.name in ("always", "unless-stopped"):
            return True
        if policy.name == "on-failure" and container.state.exit_code != 0:
            limit = policy.maximum_retry_count
            return limit == 0 or container.restart_count < limit
        return False

    def _schedule_restart(self, container: Container) -> None:
        live = self._live_for(container.id)
        container.state.move(Status.RESTARTING)
        self._save(container)
        delay = min(RESTART_BACKOFF_START * (2**container.restart_count), RESTART_BACKOFF_MAX)

        async def restart_later() -> None:
            await asyncio.sleep(delay)
            async with live.lock:
                if container.state.status is not Status.RESTARTING:
                    return
                container.restart_count += 1
                try:
                    await self._start_locked(container, live)
                except errors.DocklingError as exc:
                    log.error("restart of %s failed: %s", container.short_id, exc)
                    container.state.move(Status.EXITED)
                    self._save(container)

        live.restart_task = asyncio.create_task(restart_later())

    # ---- stop / kill / restart ---------------------------------------------------------

    async def stop(self, ref: str, *, timeout: int | None = None, signal: str = "") -> None:
        container = self.get(ref)
        live = self._live_for(container.id)
        if container.state.status is Status.RESTARTING:
            self._cancel_restart(container)
            return
        if not container.state.running:
            raise errors.NotModified("container already stopped")
        container.manually_stopped = True
        self._save(container)
        stop_signal = parse_signal(signal or container.spec.stop_signal, default=signals.SIGTERM)
        if timeout is None:
            timeout = container.spec.stop_timeout
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT
        live.stopping = True
        try:
            exited = self._exit_future(container.id)
            if container.state.status is Status.PAUSED:
                await self.launcher.runtime_for(container).resume(container.id)
            await self._signal(container, stop_signal)
            try:
                if timeout < 0:
                    await asyncio.shield(exited)
                else:
                    await asyncio.wait_for(asyncio.shield(exited), timeout)
            except TimeoutError:
                await self._signal(container, signals.SIGKILL)
                await asyncio.shield(exited)
        finally:
            live.stopping = False
        self.publish(container, "stop")

    def _cancel_restart(self, container: Container) -> None:
        live = self._live_for(container.id)
        if live.restart_task is not None:
            live.restart_task.cancel()
            live.restart_task = None
        container.manually_stopped = True
        container.state.move(Status.EXITED)
        self._save(container)

    def _exit_future(self, container_id: str) -> asyncio.Future[ExitStatus]:
        fut: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        self._live_for(container_id).exit_waiters.append(fut)
        return fut

    async def _signal(self, container: Container, number: int) -> None:
        self.publish(container, "kill", signal=str(number))
        try:
            await self.launcher.runtime_for(container).kill(container.id, number)
        except errors.ContainerNotRunning:
            pass  # it exited between our check and the signal: the watcher records it

    async def kill(self, ref: str, *, signal: str = "") -> None:
        container = self.get(ref)
        if signal.strip().isdigit() and int(signal) > 64:
            raise errors.InvalidParameter(
                f"Cannot kill container: {ref}: The linux daemon does not support signal {signal}"
            )
        number = parse_signal(signal, default=signals.SIGKILL)
        if not container.state.running:
            raise errors.ContainerNotRunning(f"Container {container.id} is not running")
        if number in (signals.SIGKILL, signals.SIGTERM, signals.SIGINT):
            container.manually_stopped = True
            self._save(container)
        # Docker's kill returns once a SIGKILLed container is gone.
        exited = self._exit_future(container.id)
        await self._signal(container, number)
        if number == signals.SIGKILL and container.state.running:
            await asyncio.wait_for(exited, 30)

    async def restart(self, ref: str, *, timeout: int | None = None) -> None:
        container = self.get(ref)
        if container.state.running:
            await self.stop(ref, timeout=timeout)
        elif container.state.status is Status.RESTARTING:
            self._cancel_restart(container)
        await self.start(container.id)
        self.publish(container, "restart")

    async def pause(self, ref: str) -> None:
        container = self.get(ref)
        async with self._live_for(container.id).lock:
            if container.state.status is Status.PAUSED:
                raise errors.Conflict(f"Container {container.id} is already paused")
            if container.state.status is not Status.RUNNING:
                raise errors.ContainerNotRunning(f"Container {container.id} is not running")
            await self.launcher.runtime_for(container).pause(container.id)
            container.state.move(Status.PAUSED)
            self._save(container)
        self.publish(container, "pause")

    async def unpause(self, ref: str) -> None:
        container = self.get(ref)
        async with self._live_for(container.id).lock:
            if container.state.status is not Status.PAUSED:
                raise errors.Conflict(f"Container {container.id} is not paused")
            await self.launcher.runtime_for(container).resume(container.id)
            container.state.move(Status.RUNNING)
            self._save(container)
        self.publish(container, "unpause")

    # ---- update ------------------------------------------------------------------------

    async def update(
        self, ref: str, *, resources: Mapping[str, Any], restart: RestartPolicy | None
    ) -> builtins.list[str]:
        """`docker update`: new resource limits (the fields given; absent ones are kept) and
        restart policy, applied at once to a running or paused container and kept for its
        next starts.  Returns the warnings (none so far)."""
        container = self.get(ref)
        async with self._live_for(container.id).lock:
            try:
                spec = self._updated_spec(container, resources, restart)
                if container.state.status in (Status.RUNNING, Status.PAUSED):
                    runtime = self.launcher.runtime_for(container)
                    await runtime.update(container.id, ocispec.updated_resources(spec.resources))
            except errors.SystemError as exc:
                # The runtime's failure names the container; a refused value is said plainly.
                raise errors.SystemError(
                    f"Cannot update container {container.id}: {exc.message}"
                ) from None
            container.spec = spec
            self._save(container)
        self.publish(container, "update")
        return []

    def _updated_spec(
        self, container: Container, changes: Mapping[str, Any], restart: RestartPolicy | None
    ) -> ContainerSpec:
        old = container.spec.resources
        resources = replace(old, **changes)
        if (
            "memory" in changes
            and "memory_swap" not in changes
            and old.memory_swap > 0
            and resources.memory > old.memory_swap
        ):
            raise errors.InvalidParameter(
                "Memory limit should be smaller than already set memoryswap limit, update the "
                "memoryswap at the same time"
            )
        ocispec.validate_resources(resources, host_cpus=os.cpu_count() or 1)
        spec = replace(container.spec, resources=resources)
        if restart is not None:
            if container.spec.auto_remove and restart.name not in ("no", ""):
                raise errors.InvalidParameter(
                    "Restart policy cannot be updated because AutoRemove is enabled for the "
                    "container"
                )
            _validate_restart(restart)
            spec = replace(spec, restart_policy=restart)
        return spec

    # ---- wait / remove / rename ---------------------------------------------------------

    async def wait(self, ref: str, *, condition: str = "not-running") -> int:
        container = self.get(ref)
        live = self._live_for(container.id)
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise errors.InvalidParameter(f"invalid condition: {condition!r}")
        if condition == "removed":
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            live.removed_waiters.append(fut)
            exited = self._exit_future(container.id)
            if not container.state.running and container.id not in self._containers:
                return container.state.exit_code
            await fut
            return exited.result().code if exited.done() else container.state.exit_code
        if (
            condition in ("", "not-running")
            and not container.state.running
            and (container.state.status is not Status.RESTARTING)
        ):
            return container.state.exit_code
        status = await self._exit_future(container.id)
        return status.code

    async def wait_process_exit(self, ref: str) -> int:
        """The exit code of a started container's process as soon as it has exited, before
        its teardown: its rootfs may still be mounted (`wait` returns once it is not)."""
        container = self.get(ref)
        live = self._live_for(container.id)
        if live.process_exit is not None:
            return live.process_exit.code
        if not container.state.running:
            return container.state.exit_code
        fut: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        live.process_exit_waiters.append(fut)
        return (await fut).code

    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        container = self.get(ref)
        live = self._live_for(container.id)
        if container.state.status is Status.RESTARTING:
            if not force:
                raise errors.ContainerRunning(
                    f'cannot remove container "/{container.name}": container is restarting: '
                    "stop the container before removing or force remove"
                )
            self._cancel_restart(container)
        if container.state.running:
            if not force:
                raise errors.ContainerRunning(
                    f'cannot remove container "/{container.name}": container is running: '
                    "stop the container before removing or force remove"
                )
            container.manually_stopped = True
            live.stopping = True
            exited = self._exit_future(container.id)
            if container.state.status is Status.PAUSED:
                await self.launcher.runtime_for(container).resume(container.id)
            await self._signal(container, signals.SIGKILL)
            await asyncio.wait_for(asyncio.shield(exited), 30)
        if container.id not in self._containers:
            return  # --rm removed it while we waited
        async with live.lock:
            await self._finish_remove(container, remove_volumes=volumes)

    async def _finish_remove(self, container: Container, *, remove_volumes: bool) -> None:
        if container.id not in self._containers and container.state.status is Status.DEAD:
            return
        container.state.move(Status.REMOVING)
        self._save(container)
        await self.launcher.teardown(container)
        await self.networking.forget(container)
        await asyncio.to_thread(self.launcher.remove_rootfs, container.id)
        for mount in container.mounts:
            if mount.type != "volume":
                continue
            try:
                self.volumes.release(mount.source, container.id)
                if remove_volumes and self.volumes.get(mount.source).anonymous:
                    self.volumes.remove(mount.source)
            except errors.DocklingError as exc:
                log.warning("volume %s of %s: %s", mount.source, container.short_id, exc)
        await asyncio.to_thread(self.store.delete, container.id)
        # Layers of an image force-removed while this container used it are free now.
        await asyncio.to_thread(self.images.collect_garbage)
        container.state.move(Status.DEAD)
        self._containers.pop(container.id, None)
        if self._names.get(container.name) == container.id:
            del self._names[container.name]
        self._index.remove(container.id)
        self.health.forget(container.id)
        self.publish(container, "destroy")
        live = self._live.pop(container.id, None)
        if live is not None:
            live.notify_removed()

    async def rename(self, ref: str, new_name: str) -> None:
        container = self.get(ref)
        new_name = names.validate(new_name)
        if new_name == container.name:
            raise errors.InvalidParameter(
                "Renaming a container with the same name as its current name"
            )
        if new_name in self._names:
            raise errors.NameInUse(
                f'Conflict. The container name "/{new_name}" is already in use by container '
                f'"{self._names[new_name]}". You have to remove (or rename) that container to '
                "be able to reuse that name."
            )
        old = container.name
        del self._names[old]
        container.name = new_name
        self._names[new_name] = container.id
        self._save(container)
        self.networking.rename(container.id, new_name)
        self.publish(container, "rename", oldName=f"/{old}")

    async def prune(
        self, *, until: float | None, labels: Mapping[str, str]
    ) -> tuple[builtins.list[str], int]:
        deleted: builtins.list[str] = []
        reclaimed = 0
        for container in list(self._containers.values()):
            if container.state.running or container.state.status is Status.RESTARTING:
                continue
            if until is not None and created_ts(container.created) > until:
                continue
            if any(container.spec.labels.get(k) != v for k, v in labels.items() if v):
                continue
            if any(k not in container.spec.labels for k in labels):
                continue
            reclaimed += self.launcher.rootfs_usage(container.id)
            await self.remove(container.id)
            deleted.append(container.id)
        return deleted, reclaimed

    # ---- attach ------------------------------------------------------------------------

    def reserve_attach(self, ref: str, *, stdin: bool, stdout: bool, stderr: bool) -> PendingAttach:
        """Register an attach now, before its client is told it may go on.

        The docker CLI starts the container as soon as the attach answer arrives, so the
        registration must precede that answer or the first output could be missed.  For a
        container that is not running yet, `start` connects the attach before the process
        runs; for a running one, `connect_attach` connects at once.
        """
        container = self.get(ref)
        close_stdin = stdin and container.spec.stdin_once and not container.spec.tty
        stdin = stdin and container.spec.open_stdin
        fut: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.get_running_loop().create_future()
        )
        attach = PendingAttach(stdin, stdout, stderr, close_stdin, fut, container.id)
        if not container.state.running:
            # Decided once, here: `start` owns connecting it from now on.
            attach.deferred = True
            self._live_for(container.id).pending_attaches.append(attach)
        self.publish(container, "attach")
        return attach

    async def connect_attach(
        self, attach: PendingAttach
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The attach's stream: now for a running container, else once `start` connected it."""
        if not attach.deferred:
            return await attach.open(self.launcher.state_dir(attach.container_id))
        return await attach.connected

    def cancel_attach(self, attach: PendingAttach) -> None:
        live = self._live.get(attach.container_id)
        if live is not None and attach in live.pending_attaches:
            live.pending_attaches.remove(attach)
        attach.cancel()

    async def resize(self, ref: str, *, height: int, width: int) -> None:
        container = self.get(ref)
        if not container.state.running:
            raise errors.ContainerNotRunning(f"Container {container.id} is not running")
        await shim.resize(self.launcher.state_dir(container.id), height, width)

    def volume_path(self, name: str) -> str:
        return self.volumes.get(name).mountpoint


def _validate_restart(policy: RestartPolicy) -> None:
    if policy.name not in ("no", "", "always", "unless-stopped", "on-failure"):
        raise errors.InvalidParameter(f"invalid restart policy '{policy.name}'")
    if policy.maximum_retry_count and policy.name != "on-failure":
        raise errors.InvalidParameter(
            f"maximum retry count cannot be used with restart policy '{policy.name}'"
        )
    if policy.maximum_retry_count < 0:
        raise errors.InvalidParameter("maximum retry count cannot be negative")
