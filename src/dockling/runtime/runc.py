"""The OCI runtime driver: runc, or crun, called as a subprocess.

`create` is done by the shim (so the shim is the parent that reaps the container); this class
runs the other verbs.  runc's errors are translated here into dockling errors.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from dataclasses import dataclass

from dockling import errors

_MSG = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


def runtime_message(stderr: bytes) -> str:
    """The human part of runc's or crun's error output, on one line."""
    text = stderr.decode(errors="replace").strip()
    found: list[str] = _MSG.findall(text)
    if found:
        return found[-1].replace('\\"', '"').replace("\\\\", "\\")
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "unknown runtime error"


@dataclass(frozen=True, slots=True)
class RuntimeInfo:
    name: str
    path: str


class OciRuntime:
    """runc-compatible command line driver (runc and crun share these verbs)."""

    def __init__(self, name: str, binary: str, root: str) -> None:
        self.name = name
        self.binary = binary
        self.root = root

    @classmethod
    def find(cls, name: str, root: str, path: str = "") -> OciRuntime:
        binary = path or shutil.which(name)
        if not binary:
            raise errors.Unavailable(
                f"OCI runtime {name!r} not found in PATH: install it (apt-get install {name})"
            )
        return cls(name, binary, root)

    async def _run(self, *args: str, check: bool = True, input: bytes | None = None) -> bytes:
        proc = await asyncio.create_subprocess_exec(
            self.binary,
            "--root",
            self.root,
            *args,
            stdin=asyncio.subprocess.DEVNULL if input is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(input)
        if check and proc.returncode != 0:
            message = runtime_message(err)
            if "does not exist" in message or "not exist" in message:
                raise errors.ContainerNotRunning(message)
            if "not running" in message or "is stopped" in message:
                raise errors.ContainerNotRunning(message)
            raise errors.SystemError(f"{self.name} {args[0]} failed: {message}")
        return out

    def has_state(self, container_id: str) -> bool:
        """Whether the runtime still holds state for the container (a stat, no process)."""
        return os.path.exists(os.path.join(self.root, container_id))

    async def start(self, container_id: str) -> None:
        await self._run("start", container_id)

    async def kill(self, container_id: str, signal: int, *, all_processes: bool = False) -> None:
        args = ["kill"]
        if all_processes:
            args.append("--all")
        await self._run(*args, container_id, str(signal))

    async def delete(self, container_id: str, *, force: bool = True) -> None:
        args = ["delete"]
        if force:
            args.append("--force")
        out = await self._run(*args, container_id, check=False)
        del out

    async def update(self, container_id: str, resources: dict[str, object]) -> None:
        """Apply new OCI `linux.resources` to a created, running or paused container."""
        await self._run(
            "update", "--resources", "-", container_id, input=json.dumps(resources).encode()
        )

    async def pause(self, container_id: str) -> None:
        await self._run("pause", container_id)

    async def resume(self, container_id: str) -> None:
        await self._run("resume", container_id)

    async def state(self, container_id: str) -> dict[str, object] | None:
        proc = await asyncio.create_subprocess_exec(
            self.binary,
            "--root",
            self.root,
            "state",
            container_id,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            return None
        state: dict[str, object] = json.loads(out)
        return state

    async def pids(self, container_id: str) -> list[int]:
        out = await self._run("ps", "--format", "json", container_id)
        pids = json.loads(out or b"[]")
        return [int(p) for p in pids or []]

    async def version(self) -> str:
        proc = await asyncio.create_subprocess_exec(
            self.binary, "--version", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        first = out.decode(errors="replace").splitlines()
        return first[0] if first else self.name
