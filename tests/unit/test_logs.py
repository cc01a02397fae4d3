"""json-file log reading: timestamps, rotation order, tail/since/until/stream filters, follow."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from dockling.errors import DataCorrupted
from dockling.runtime.logs import (
    LogEntry,
    follow_logs,
    log_files,
    parse_line,
    parse_time_ns,
    read_logs,
    seconds_to_ns,
)

BASE = "2026-11-27T23:40:01"
EPOCH_BASE = 1795822801  # BASE as a Unix time


def record(text: str, stream: str = "stdout", time: str = f"{BASE}.000000000Z") -> str:
    return json.dumps({"log": text, "stream": stream, "time": time}) + "\n"


def at(i: int) -> str:
    """A time i milliseconds after BASE."""
    return f"2026-11-27T23:40:{1 + i // 1000:02d}.{(i % 1000) * 1_000_000:09d}Z"


def write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(lines))


def append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def every(path: Path, **kw: object) -> list[LogEntry]:
    args: dict[str, object] = {
        "tail": None,
        "since": None,
        "until": None,
        "stdout": True,
        "stderr": True,
    }
    args.update(kw)
    return list(read_logs(str(path), **args))  # type: ignore[arg-type]


def test_parse_time_keeps_nanoseconds_and_ordering() -> None:
    assert parse_time_ns(f"{BASE}Z") == EPOCH_BASE * 10**9
    assert parse_time_ns(f"{BASE}.123456789Z") == EPOCH_BASE * 10**9 + 123456789
    assert parse_time_ns(f"{BASE}.1Z") == EPOCH_BASE * 10**9 + 100_000_000
    # Docker trims trailing zeros: .1 is later than .09, though shorter
    assert parse_time_ns(f"{BASE}.1Z") > parse_time_ns(f"{BASE}.09Z")
    assert parse_time_ns(f"{BASE}.5+01:00") == (EPOCH_BASE - 3600) * 10**9 + 500_000_000
    with pytest.raises(DataCorrupted):
        parse_time_ns("yesterday")


def test_seconds_to_ns_is_exact() -> None:
    assert seconds_to_ns(1795822801.000000001) == seconds_to_ns(1795822801.0)  # float limit
    assert seconds_to_ns(1795822801.25) == 1795822801_250_000_000


def test_parse_line() -> None:
    entry = parse_line(record("é\n", "stderr").encode())
    assert entry == LogEntry(stream="stderr", time=f"{BASE}.000000000Z", data="é\n".encode())
    assert parse_line(b'{"log": "x"}') is None
    assert parse_line(b'{"log": "x", "stre') is None


def test_rotated_files_are_read_oldest_first(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    write(Path(f"{log}.2"), [record("a\n", time=at(1)), record("b\n", time=at(2))])
    write(Path(f"{log}.1"), [record("c\n", time=at(3))])
    write(log, [record("d\n", time=at(4)), "not json\n", record("e", time=at(5))])
    assert log_files(str(log)) == [f"{log}.2", f"{log}.1", str(log)]
    assert [e.data for e in every(log)] == [b"a\n", b"b\n", b"c\n", b"d\n", b"e"]


def test_tail_counts_across_files_and_after_stream_filter(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    write(Path(f"{log}.1"), [record("1\n", time=at(1)), record("2\n", "stderr", at(2))])
    write(log, [record("3\n", time=at(3)), record("4\n", "stderr", at(4))])
    assert [e.data for e in every(log, tail=3)] == [b"2\n", b"3\n", b"4\n"]
    assert [e.data for e in every(log, tail=2, stderr=False)] == [b"1\n", b"3\n"]
    assert every(log, tail=0) == []
    assert [e.stream for e in every(log, stdout=False)] == ["stderr", "stderr"]


def test_since_and_until_are_inclusive(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    write(log, [record(f"{i}\n", time=at(i * 250)) for i in range(8)])  # every 0.25 s
    since, until = EPOCH_BASE + 0.5, EPOCH_BASE + 1.25
    assert [e.data for e in every(log, since=since, until=until)] == [
        b"2\n",
        b"3\n",
        b"4\n",
        b"5\n",
    ]
    assert [e.data for e in every(log, since=since, until=until, tail=1)] == [b"5\n"]
    assert len(every(log, since=0, until=0)) == 8  # 0 means no bound, as in Docker's API


def test_missing_log_reads_empty(tmp_path: Path) -> None:
    assert every(tmp_path / "none.log") == []


def test_follow_sees_appends_rotation_and_truncation(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    write(log, [record("old-1\n", time=at(1)), record("old-2\n", time=at(2))])
    running = True

    async def writer() -> None:
        nonlocal running
        await asyncio.sleep(0.15)
        append(log, record("new-3\n", time=at(3)) + record("par")[:20])  # "par" in two parts
        await asyncio.sleep(0.15)
        append(log, record("par")[20:])
        # rotate: the live file becomes c.log.1 and a new c.log starts
        os.rename(log, f"{log}.1")
        write(log, [record("after-rotate\n", time=at(5))])
        await asyncio.sleep(0.25)
        # restart in place (max-file 1)
        write(log, [record("after-truncate\n", time=at(6))])
        await asyncio.sleep(0.25)
        running = False

    async def reader() -> list[bytes]:
        return [
            entry.data
            async for entry in follow_logs(
                str(log),
                tail=1,
                since=None,
                until=None,
                stdout=True,
                stderr=True,
                is_running=lambda: running,
                poll_interval=0.02,
            )
        ]

    async def both() -> list[bytes]:
        got, _ = await asyncio.wait_for(asyncio.gather(reader(), writer()), 10)
        return got

    assert asyncio.run(both()) == [
        b"old-2\n",
        b"new-3\n",
        b"par",
        b"after-rotate\n",
        b"after-truncate\n",
    ]


def test_follow_ends_when_stopped_and_drained(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    write(log, [record("x\n", time=at(1)), record("y\n", time=at(2))])

    async def collect() -> list[bytes]:
        return [
            e.data
            async for e in follow_logs(
                str(log),
                tail=None,
                since=None,
                until=None,
                stdout=True,
                stderr=True,
                is_running=lambda: False,
            )
        ]

    assert asyncio.run(asyncio.wait_for(collect(), 5)) == [b"x\n", b"y\n"]
