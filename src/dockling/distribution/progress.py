"""Progress events of pulls and pushes, and Docker's JSON-message rendering of them.

The distribution code calls a `ProgressSink` with `Progress` values and never prints;
the API turns each into one line of Docker's streaming JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")
BAR_WIDTH = 50


@dataclass(frozen=True, slots=True)
class Progress:
    """One status change: `id` is the 12-hex short layer id (or a tag, or empty)."""

    status: str
    id: str = ""
    current: int | None = None
    total: int | None = None


ProgressSink = Callable[[Progress], None]


def discard(_event: Progress) -> None:
    """A sink that drops every event."""


def human_size(size: float) -> str:
    """Docker's units.HumanSize: decimal units, four significant digits ("2.294MB")."""
    unit = 0
    while size >= 1000 and unit < len(_UNITS) - 1:
        size /= 1000
        unit += 1
    return f"{size:.4g}{_UNITS[unit]}"


def progress_text(current: int, total: int | None) -> str:
    """Docker's progress bar text: `[=====>        ]  1.049MB/2.294MB`."""
    if not total or total <= 0:
        return f"{human_size(current):>8}"
    shown = min(current, total)
    filled = int(shown / total * 100) // 2
    bar = f"[{'=' * filled}>{' ' * (BAR_WIDTH - filled)}] "
    return f"{bar}{human_size(current):>8}/{human_size(total)}"


def to_message(event: Progress) -> dict[str, Any]:
    """The JSON object Docker streams for `event`."""
    message: dict[str, Any] = {"status": event.status}
    if event.current is not None:
        detail: dict[str, Any] = {"current": event.current}
        if event.total:
            detail["total"] = event.total
        message["progressDetail"] = detail
        message["progress"] = progress_text(event.current, event.total)
    elif event.id:
        message["progressDetail"] = {}
    if event.id:
        message["id"] = event.id
    return message


def error_message(text: str) -> dict[str, Any]:
    """Docker's in-stream error object."""
    return {"errorDetail": {"message": text}, "error": text}
