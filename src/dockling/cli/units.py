"""Docker's value parsers for flags: byte sizes, CPU counts, integers.

Each raises ValueError with the text docker prints after `invalid argument ... flag:`.
"""

from __future__ import annotations

_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str) -> int:
    """Parse a size like go-units RAMInBytes: "64m", "64MB", "1.5g", "512", "2KiB"."""
    sep = max(text.rfind(ch) for ch in "0123456789. ")
    if sep == -1:
        raise ValueError(f"invalid size: '{text}'")
    if text[sep] == " ":
        num, sfx = text[:sep], text[sep + 1 :]
    else:
        num, sfx = text[: sep + 1], text[sep + 1 :]
    size = parse_go_float(num)
    if size < 0:
        raise ValueError(f"invalid size: '{text}'")
    if not sfx:
        return int(size)
    low = sfx.lower()
    bad = ValueError(f"invalid suffix: '{low if len(sfx) <= 3 else sfx}'")
    if len(sfx) > 3:
        raise bad
    if low[0] == "b":
        if len(low) > 1:
            raise bad
        return int(size)
    mul = _BINARY.get(low[0])
    if mul is None:
        raise bad
    if (len(low) == 2 and low[1] != "b") or (len(low) == 3 and low[1:] != "ib"):
        raise bad
    return int(size * mul)


def parse_go_float(text: str) -> float:
    """float() with Go's strconv.ParseFloat error wording."""
    try:
        if not text or text.strip() != text or "_" in text:
            raise ValueError
        return float(text)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax') from None


def parse_go_int(text: str) -> int:
    """int() with Go's strconv.ParseInt error wording."""
    try:
        if not text or text.strip() != text or "_" in text:
            raise ValueError
        return int(text, 10)
    except ValueError:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None


def memory_swap(text: str) -> int:
    """--memory-swap: a size, or -1 for unlimited swap."""
    if text == "-1":
        return -1
    return ram_in_bytes(text)


def nano_cpus(text: str) -> int:
    """--cpus: a decimal number of CPUs as NanoCpus (1.5 -> 1500000000)."""
    from fractions import Fraction

    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"failed to parse {text} as a rational number") from None
    nano = value * 1_000_000_000
    if nano.denominator != 1:
        raise ValueError("value is too precise")
    return int(nano)  # a negative count is the daemon's to refuse, as with docker
