"""Docker's since/until values as unix seconds."""

from __future__ import annotations

from datetime import datetime

import pytest

from dockling.errors import InvalidParameter
from dockling.timestamps import get_timestamp

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10m", "1799999400"),
        ("2h30m", "1799991000"),
        ("1.5h", "1799994600"),
        ("0", "0"),
        ("1700000000", "1700000000"),
        ("1700000000.5", "1700000000.5"),
        ("2026-11-28T04:00:00Z", "1795838400.000000000"),
        ("2026-11-28T04:00:00.123+01:00", "1795834800.123000000"),
    ],
)
def test_values(value: str, expected: str) -> None:
    assert get_timestamp(value, NOW) == expected


def test_a_time_without_zone_is_local() -> None:
    local = datetime(2026, 11, 28, 4, 5).astimezone().timestamp()
    assert get_timestamp("2026-11-28T04:05", NOW) == f"{int(local)}.000000000"
    assert get_timestamp("2026-11-28", NOW) == f"{int(local) - 4 * 3600 - 300}.000000000"


@pytest.mark.parametrize("value", ["bogus", "2026-13-01", "10x", "", "-"])
def test_bad_values_are_refused_in_dockers_words(value: str) -> None:
    with pytest.raises(InvalidParameter, match="failed to parse value as time or duration"):
        get_timestamp(value, NOW)
