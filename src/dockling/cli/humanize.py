"""Human-readable durations, sizes and timestamps, formatted like docker's go-units.

`human_duration` lives in `dockling.humanize`, shared with the daemon's STATUS texts.
"""

from __future__ import annotations

import time

from dockling.humanize import human_duration


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


def go_time_text(text: str) -> str:
    """An API time (RFC 3339, up to nanoseconds) as Go's time.String() prints the parsed
    value: "2026-11-28 04:00:34.91378 +0000 UTC", trailing zeros of the fraction dropped.
    Text that is not such a time is returned as it is."""
    import re

    match = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    if match is None:
        return text
    day, clock, fraction, zone = match.groups()
    fraction = (fraction or "").rstrip("0").rstrip(".")
    if zone == "Z":
        zone_text = "+0000 UTC"
    else:
        # A numeric offset has no zone name; Go prints the offset twice.
        offset = zone.replace(":", "")
        zone_text = f"{offset} {offset}"
    return f"{day} {clock}{fraction} {zone_text}"


def rfc3339(timestamp: float) -> str:
    """UTC RFC 3339 with nanosecond padding, as `logs -t` and events show it."""
    from datetime import UTC, datetime

    whole = int(timestamp)
    nanos = round((timestamp - whole) * 1e9)
    base = datetime.fromtimestamp(whole, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"
