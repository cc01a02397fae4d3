"""The live side of a container: its lock, its exit watcher and the waiters on its state.

Kept apart from the persisted record (model.py) on purpose: the record is data on disk, this
is what exists only while the daemon runs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from dockling.runtime import shim
from dockling.runtime.shim import ExitStatus

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


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

    async def open(self, state_dir: str) -> Connection:
        """Connect to the shim of `state_dir` with this attach's streams."""
        return await shim.attach(
            state_dir,
            stdin=self.stdin,
            stdout=self.stdout,
            stderr=self.stderr,
            close_stdin=self.close_stdin,
        )

    async def connect_for_start(self, state_dir: str) -> None:
        """Connect on behalf of the waiting client (start does this before `runc start`)."""
        try:
            conn = await self.open(state_dir)
        except OSError as exc:
            if not self.connected.done():
                self.connected.set_exception(exc)
            return
        if self.connected.done():
            conn[1].close()  # the attaching client went away meanwhile
        else:
            self.connected.set_result(conn)

    def cancel(self) -> None:
        """The client is gone: close what start may have connected for it."""
        if not self.connected.done():
            self.connected.cancel()
        elif not self.connected.cancelled() and self.connected.exception() is None:
            self.connected.result()[1].close()


@dataclass
class Live:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    watcher: asyncio.Task[None] | None = None
    exit_waiters: list[asyncio.Future[ExitStatus]] = field(default_factory=list)
    # The process's exit as the monitor reported it, before the teardown (None while it
    # runs); and who waits for that rather than for the whole exit.
    process_exit: ExitStatus | None = None
    process_exit_waiters: list[asyncio.Future[ExitStatus]] = field(default_factory=list)
    removed_waiters: list[asyncio.Future[None]] = field(default_factory=list)
    pending_attaches: list[PendingAttach] = field(default_factory=list)
    restart_task: asyncio.Task[None] | None = None
    stopping: bool = False

    def notify_exit(self, status: ExitStatus) -> None:
        for fut in self.exit_waiters:
            if not fut.done():
                fut.set_result(status)
        self.exit_waiters.clear()

    def notify_process_exit(self, status: ExitStatus) -> None:
        self.process_exit = status
        for fut in self.process_exit_waiters:
            if not fut.done():
                fut.set_result(status)
        self.process_exit_waiters.clear()

    def notify_removed(self) -> None:
        for fut in self.removed_waiters:
            if not fut.done():
                fut.set_result(None)
        self.removed_waiters.clear()
