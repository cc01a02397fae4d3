"""RUN: the command in a container made from the step's image by the engine's own
ContainerService (same runtime, mounts and network as `dockling run`), its output
streamed, its writes committed as a layer, the container removed whatever happens.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dockling import errors
from dockling.containers.model import Container
from dockling.containers.service import ContainerService
from dockling.containers.spec import ContainerSpec, MountSpec

Output = Callable[[str], Awaitable[None]]


class CommandFailed(errors.InvalidParameter):
    """A RUN command exited non-zero (Docker's message; the build ends)."""

    def __init__(self, command: list[str], code: int) -> None:
        super().__init__(f"The command '{' '.join(command)}' returned a non-zero code: {code}")
        self.code = code


@dataclass(frozen=True)
class RunRequest:
    image_id: str
    command: list[str]  # the full argv (shell prepended for shell form)
    env: list[str]
    user: str
    workdir: str
    network: str  # "default" | "none" | "host" | a network name
    hostname: str = ""  # "" for the container id's prefix (fixed for reproducible builds)
    mounts: tuple[MountSpec, ...] = ()  # RUN --mount: bound in, never part of the layer


async def _pump(reader: asyncio.StreamReader, output: Output) -> None:
    """Relay the shim's multiplexed frames (8-byte header) as text."""
    while True:
        try:
            header = await reader.readexactly(8)
        except asyncio.IncompleteReadError:
            return
        (size,) = struct.unpack(">I", header[4:])
        try:
            payload = await reader.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            payload = exc.partial
        if payload:
            await output(payload.decode("utf-8", "replace"))


Commit = Callable[[Container, Awaitable[int]], Awaitable[str]]


async def run_step(
    service: ContainerService, request: RunRequest, output: Output, commit: Commit
) -> str:
    """Run `request` in a new container; on exit 0 call `commit(container, torn_down)`
    (which makes the layer and returns the new image id) as soon as the process has
    exited: `torn_down` completes once the container's rootfs is unmounted, and until then
    its snapshot may only be read.  The container is removed in every case."""
    spec = ContainerSpec(
        image=request.image_id,
        cmd=tuple(request.command),
        entrypoint=(),
        env=tuple(request.env),
        user=request.user,
        working_dir=request.workdir,
        network_mode=request.network or "default",
        hostname=request.hostname,
        mounts=request.mounts,
        attach_stdout=True,
        attach_stderr=True,
    )
    container = await service.create(spec)
    try:
        await output(f" ---> Running in {container.id[:12]}\n")
        attach = service.reserve_attach(container.id, stdin=False, stdout=True, stderr=True)
        try:
            await service.start(container.id)
        except errors.RuntimeStartError as exc:
            service.cancel_attach(attach)
            code = {"not-found": 127, "not-executable": 126}.get(exc.kind, 128)
            await output(exc.message.rstrip("\n") + "\n")
            raise CommandFailed(request.command, code) from None
        except BaseException:
            service.cancel_attach(attach)
            raise
        reader, writer = await service.connect_attach(attach)
        try:
            await _pump(reader, output)
        finally:
            writer.close()
        code = await service.wait_process_exit(container.id)
        if code != 0:
            await service.wait(container.id)
            raise CommandFailed(request.command, code)
        return await commit(container, service.wait(container.id))
    finally:
        try:
            await service.remove(container.id, force=True, volumes=True)
        except errors.NotFound:
            pass
        await output(f"Removing intermediate container {container.id[:12]}\n")
