"""Signal names and numbers as Docker accepts them (--signal, --stop-signal, kill -s)."""

from __future__ import annotations

import signal as signals

from dockling import errors


def parse_signal(value: str | int, *, default: int = signals.SIGKILL) -> int:
    """Docker accepts "SIGTERM", "TERM", "15" and "" (the default)."""
    if isinstance(value, int):
        return value
    text = value.strip().upper()
    if not text:
        return default
    if text.isdigit():
        number = int(text)
        if 0 < number < 65:
            return number
    else:
        name = text if text.startswith("SIG") else f"SIG{text}"
        member = getattr(signals.Signals, name, None)
        if member is not None:
            return int(member)
    raise errors.InvalidParameter(f"Invalid signal: {value}")
