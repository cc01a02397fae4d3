"""Docker's since/until values: a Go duration back from now ("10m", "2h30m"), a date or
RFC 3339 time (local time when it names no zone), or unix seconds ("1700000000.5").

Standard library only: the CLI (logs, events) and the daemon (prune and event filters)
both read them, and the CLI must stay light.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone

from dockling.durations import parse_go_duration
from dockling.errors import InvalidParameter

_UNIX = re.compile(r"\d+(\.\d{1,9})?")
_DATE_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)"  # date
    r"(?:T(\d\d)(?::(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?)?"  # hour[:minute[:second[.frac]]]
    r"(Z|z|[+-]\d\d:\d\d)?"  # zone; none means local time
)


def get_timestamp(value: str, now: float | None = None) -> str:
    """`value` as the unix-seconds text the Engine API takes ("SECONDS[.NANOS]")."""
    reference = time.time() if now is None else now
    if value != "0":
        try:
            nanos = parse_go_duration(value)
        except InvalidParameter:
            pass
        else:
            return str(int(reference - nanos / 1e9))
    match = _DATE_TIME.fullmatch(value)
    if match is not None:
        return _from_parts(match)
    if _UNIX.fullmatch(value):
        return value
    raise InvalidParameter(f'failed to parse value as time or duration: "{value}"')


def parse_timestamp(value: str, now: float | None = None) -> float:
    """`value` as unix seconds (see get_timestamp)."""
    return float(get_timestamp(value, now))


def _from_parts(match: re.Match[str]) -> str:
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        stamp = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:
        message = f'failed to parse value as time or duration: "{match.string}"'
        raise InvalidParameter(message) from None
    if zone is None:
        stamp = stamp.astimezone()  # naive: the local zone
    elif zone in ("Z", "z"):
        stamp = stamp.replace(tzinfo=UTC)
    else:
        sign = -1 if zone[0] == "-" else 1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        stamp = stamp.replace(tzinfo=timezone(sign * offset))
    nanos = int((fraction or "0").ljust(9, "0"))
    return f"{int(stamp.timestamp())}.{nanos:09d}"
