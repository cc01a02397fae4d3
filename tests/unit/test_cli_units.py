"""Docker's size and CPU parsers."""

from __future__ import annotations

import pytest

from dockling.cli.units import memory_swap, nano_cpus, parse_go_int, ram_in_bytes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512", 512),
        ("64m", 64 << 20),
        ("64M", 64 << 20),
        ("64mb", 64 << 20),
        ("64MiB", 64 << 20),
        ("1g", 1 << 30),
        ("1.5g", 3 << 29),
        ("10k", 10240),
        ("2 KB", 2048),
        ("7b", 7),
        ("1t", 1 << 40),
        ("1p", 1 << 50),
    ],
)
def test_ram_in_bytes(text: str, expected: int) -> None:
    assert ram_in_bytes(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("12zz", "invalid suffix: 'zz'"),
        ("12z", "invalid suffix: 'z'"),
        ("-1", "invalid size: '-1'"),
        ("abc", "invalid size: 'abc'"),
        ("1.2.3", 'strconv.ParseFloat: parsing "1.2.3": invalid syntax'),
        ("1bb", "invalid suffix: 'bb'"),
        ("1mx", "invalid suffix: 'mx'"),
    ],
)
def test_ram_in_bytes_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.") + "$"):
        ram_in_bytes(text)


def test_memory_swap_accepts_minus_one() -> None:
    assert memory_swap("-1") == -1
    assert memory_swap("1g") == 1 << 30


def test_nano_cpus() -> None:
    assert nano_cpus("1.5") == 1_500_000_000
    assert nano_cpus("0.01") == 10_000_000
    with pytest.raises(ValueError, match="failed to parse abc as a rational number"):
        nano_cpus("abc")
    assert nano_cpus("-1") == -1_000_000_000  # the daemon refuses it, as with docker


def test_parse_go_int() -> None:
    assert parse_go_int("-1") == -1
    with pytest.raises(ValueError, match=r'strconv\.ParseInt: parsing "x": invalid syntax'):
        parse_go_int("x")
