"""The live side of a container: its lock, its exit watcher and the waiters on its state.

Kept apart from the persisted record (model.py) on purpose: the record is data on disk, this
is what exists only while the daemon runs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from dockling.runtime.shim import ExitStatus


@dataclass(eq=False)
class PendingAttach:
    """An attach that arrived before start: start connects it before the process runs."""

    stdin: bool
    stdout: bool
    stderr: bool
    close_stdin: bool
    connected: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
    container_id: str = ""
    deferred: bool = False  # connected by `start` rather than by the attach itself


@dataclass
class Live:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    watcher: asyncio.Task[None] | None = None
    exit_waiters: list[asyncio.Future[ExitStatus]] = field(default_factory=list)
    removed_waiters: list[asyncio.Future[None]] = field(default_factory=list)
    pending_attaches: list[PendingAttach] = field(default_factory=list)
    restart_task: asyncio.Task[None] | None = None
    stopping: bool = False

    def notify_exit(self, status: ExitStatus) -> None:
        for fut in self.exit_waiters:
            if not fut.done():
                fut.set_result(status)
        self.exit_waiters.clear()

    def notify_removed(self) -> None:
        for fut in self.removed_waiters:
            if not fut.done():
                fut.set_result(None)
        self.removed_waiters.clear()
