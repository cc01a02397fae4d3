"""Human-readable durations, sizes and timestamps, formatted like docker's go-units."""

from __future__ import annotations

import time


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: "Less than a second", "About a minute", "3 days"..."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def ago(timestamp: float, now: float | None = None) -> str:
    """ "N units ago" for a unix timestamp, as docker's CREATED columns."""
    now = time.time() if now is None else now
    return human_duration(max(0.0, now - timestamp)) + " ago"


def _custom_size(size: float, base: float, units: list[str], precision: int) -> str:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return f"{size:.{precision}g}{units[i]}"


_DECIMAL = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
_BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def human_size(size: float, precision: int = 4) -> str:
    """go-units HumanSizeWithPrecision: decimal units ("4.26MB" at precision 3)."""
    return _custom_size(float(size), 1000.0, _DECIMAL, precision)


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units with 4 significant digits ("1.5GiB")."""
    return _custom_size(float(size), 1024.0, _BINARY, 4)


def parse_api_time(text: str) -> float:
    """Unix time of an RFC 3339 timestamp with nanoseconds, as the API sends them."""
    from datetime import datetime

    if not text or text.startswith("0001-01-01"):
        return 0.0
    main, _, frac = text.partition(".")
    tz = ""
    if frac:
        digits = ""
        for k, ch in enumerate(frac):
            if not ch.isdigit():
                tz = frac[k:]
                break
            digits += ch
        fraction = float("0." + digits) if digits else 0.0
    else:
        fraction = 0.0
        if main.endswith("Z"):
            main, tz = main[:-1], "Z"
        elif len(main) > 19:
            main, tz = main[:19], main[19:]
    if tz in ("Z", ""):
        tz = "+00:00"
    stamp = datetime.fromisoformat(main[:19] + tz)
    return stamp.timestamp() + fraction


def go_time(timestamp: float) -> str:
    """Go's time.String() in local time, as `ps --format {{.CreatedAt}}` shows it."""
    from datetime import datetime

    local = datetime.fromtimestamp(timestamp).astimezone()
    offset = local.strftime("%z")
    return local.strftime("%Y-%m-%d %H:%M:%S ") + offset + " " + (local.tzname() or "UTC")


def rfc3339(timestamp: float) -> str:
    """UTC RFC 3339 with nanosecond padding, as `logs -t` and events show it."""
    from datetime import UTC, datetime

    whole = int(timestamp)
    nanos = round((timestamp - whole) * 1e9)
    base = datetime.fromtimestamp(whole, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"
