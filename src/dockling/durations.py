"""Go's duration syntax ("1m30s", "500ms"), which Docker's flags and HEALTHCHECK use.

A module of its own, standard library only: `dockling run --health-interval` and the
Dockerfile parser both need it, and the CLI must not import the builder to get it.
"""

from __future__ import annotations

import re

from dockling.errors import InvalidParameter

_DURATION_PART = re.compile(r"(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def parse_go_duration(text: str) -> int:
    """Go's time.ParseDuration ("1m30s", "500ms", "0"), in nanoseconds."""
    original = text
    sign = 1
    if text[:1] in "+-" and text:
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise InvalidParameter(f'time: invalid duration "{original}"')
    total = 0.0
    pos = 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None or match.group(1) in ("", "."):
            if match is None and re.match(r"[\d.]+$", text[pos:]):
                raise InvalidParameter(f'time: missing unit in duration "{original}"')
            raise InvalidParameter(f'time: invalid duration "{original}"')
        total += float(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    return sign * round(total)
