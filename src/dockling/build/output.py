"""A build's output in Dockerfile order while its stages build concurrently.

Docker's classic builder runs stages one after the other, so its output reads stage by
stage.  Here independent stages run at the same time; each writes to its own channel
(numbered in Dockerfile order).  The lowest open channel writes straight through, later
ones are held until every earlier channel has closed, then released in one piece: the
stream is the one a sequential build would have printed, only sooner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Emit = Callable[[dict[str, Any]], Awaitable[None]]


class OrderedOutput:
    """`count` channels over `emit`; see the module docstring."""

    def __init__(self, emit: Emit, count: int) -> None:
        self._emit = emit
        self._held: list[list[dict[str, Any]]] = [[] for _ in range(count)]
        self._closed = [False] * count
        self._head = 0

    async def write(self, channel: int, message: dict[str, Any]) -> None:
        """Send `message` now if `channel` is the head, else hold it for its turn."""
        if channel == self._head:
            await self._emit(message)
        else:
            self._held[channel].append(message)

    async def close(self, channel: int) -> None:
        """`channel` is done: pass the head on, releasing what the next channels hold."""
        self._closed[channel] = True
        while self._head < len(self._closed) and self._closed[self._head]:
            following = self._head + 1
            if following < len(self._held):
                # Drain before moving the head: writes landing meanwhile join the queue.
                await self._drain(following)
            self._head = following

    async def release(self, channel: int) -> None:
        """Send what `channel` holds now, out of turn (its stage failed: show why)."""
        await self._drain(channel)

    async def _drain(self, channel: int) -> None:
        held = self._held[channel]
        while held:
            await self._emit(held.pop(0))
