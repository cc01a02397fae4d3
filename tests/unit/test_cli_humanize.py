"""go-units compatible durations and sizes."""

from __future__ import annotations

import pytest

from dockling.cli.humanize import ago, bytes_size, human_duration, human_size, parse_api_time


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "Less than a second"),
        (1, "1 second"),
        (42, "42 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (59 * 60, "59 minutes"),
        (3600, "About an hour"),
        (2 * 3600, "2 hours"),
        (47 * 3600, "47 hours"),
        (3 * 86400, "3 days"),
        (15 * 86400, "2 weeks"),
        (70 * 86400, "2 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_ago() -> None:
    assert ago(1000.0, now=1180.0) == "3 minutes ago"


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (999, "999B"),
        (1000, "1kB"),
        (4_260_000, "4.26MB"),
        (4_264_999, "4.26MB"),
        (1_234_567_890, "1.23GB"),
        (999_999, "1e+03kB"),
    ],
)
def test_human_size_precision_3(size: int, text: str) -> None:
    assert human_size(size, 3) == text


def test_bytes_size() -> None:
    assert bytes_size(1536) == "1.5KiB"
    assert bytes_size(2 * 1024**3) == "2GiB"


def test_parse_api_time() -> None:
    assert parse_api_time("1970-01-01T00:01:00.5Z") == 60.5
    assert parse_api_time("1970-01-01T00:01:00Z") == 60.0
    assert parse_api_time("0001-01-01T00:00:00Z") == 0.0
