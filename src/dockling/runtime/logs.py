"""Reading the json-file logs that dockling-shim writes, as Docker's json-file driver does.

A log is PATH plus rotated files PATH.1 (newer) ... PATH.N (oldest), one JSON
object per line: {"log": "hello\\n", "stream": "stdout", "time": RFC 3339 nanos}.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import json
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from dockling.errors import DataCorrupted

_HEAD = 96  # bytes compared to notice that a log file was restarted in place
_BATCH = 512  # entries handed from the reading thread to the event loop at once


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One record: "stdout" or "stderr", its RFC 3339 time as written, and the bytes."""

    stream: str
    time: str
    data: bytes

    @property
    def time_ns(self) -> int:
        """The time as integer nanoseconds since the epoch (exact, so ordering is kept)."""
        return parse_time_ns(self.time)


def parse_time_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time with 0 to 9 fraction digits."""
    try:
        date, _, clock = text.partition("T")
        zone_at = max(clock.rfind("Z"), clock.rfind("+"), clock.rfind("-"))
        if zone_at < 0:
            raise ValueError("no time zone")
        whole, _, fraction = clock[:zone_at].partition(".")
        zone = clock[zone_at:]
        if zone == "Z":
            zone = "+00:00"
        if not fraction.isdigit() and fraction:
            raise ValueError("bad fraction")
        seconds = int(datetime.fromisoformat(f"{date}T{whole}{zone}").timestamp())
        return seconds * 1_000_000_000 + int((fraction + "000000000")[:9])
    except ValueError as e:
        raise DataCorrupted(f"invalid log timestamp {text!r}") from e


def seconds_to_ns(seconds: float) -> int:
    """A Unix time in (fractional) seconds as nanoseconds, without float rounding drift."""
    return int(Decimal(repr(seconds)) * 1_000_000_000)


def log_files(path: str) -> list[str]:
    """The existing files of a log, oldest first: PATH.N ... PATH.1, PATH."""
    rotated: list[str] = []
    n = 1
    while os.path.exists(f"{path}.{n}"):
        rotated.append(f"{path}.{n}")
        n += 1
    rotated.reverse()
    if os.path.exists(path):
        rotated.append(path)
    return rotated


def parse_line(line: bytes) -> LogEntry | None:
    """The entry of one JSON line, or None for a line that is not a log record."""
    try:
        record = json.loads(line)
        return LogEntry(
            stream=str(record["stream"]),
            time=str(record["time"]),
            data=str(record["log"]).encode("utf-8", errors="replace"),
        )
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class _Filter:
    stdout: bool
    stderr: bool
    since_ns: int | None
    until_ns: int | None

    def wanted(self, entry: LogEntry) -> bool:
        if not (self.stdout if entry.stream == "stdout" else self.stderr):
            return False
        if self.since_ns is None:
            return True
        return entry.time_ns >= self.since_ns

    def past_until(self, entry: LogEntry) -> bool:
        return self.until_ns is not None and entry.time_ns > self.until_ns


def _make_filter(since: float | None, until: float | None, stdout: bool, stderr: bool) -> _Filter:
    return _Filter(
        stdout=stdout,
        stderr=stderr,
        since_ns=seconds_to_ns(since) if since else None,
        until_ns=seconds_to_ns(until) if until else None,
    )


def _entries_of(lines: Iterable[bytes]) -> Iterator[LogEntry]:
    for line in lines:
        entry = parse_line(line)
        if entry is not None:
            yield entry


def _file_entries(path: str) -> Iterator[LogEntry]:
    try:
        with open(path, "rb") as f:
            yield from _entries_of(f)
    except FileNotFoundError:
        return  # rotated away while we were getting to it


def _select(entries: Iterable[LogEntry], flt: _Filter, tail: int | None) -> Iterator[LogEntry]:
    """Entries passing the filter, stopping past `until`, keeping only the last `tail`."""
    if tail is not None and tail >= 0:
        last: collections.deque[LogEntry] = collections.deque(maxlen=tail)
        for entry in entries:
            if flt.past_until(entry):
                break
            if flt.wanted(entry):
                last.append(entry)
        yield from last
        return
    for entry in entries:
        if flt.past_until(entry):
            return
        if flt.wanted(entry):
            yield entry


def read_logs(
    path: str,
    *,
    tail: int | None,
    since: float | None,
    until: float | None,
    stdout: bool,
    stderr: bool,
) -> Iterator[LogEntry]:
    """The log's entries in order, oldest file first.

    `since`/`until` are Unix times in seconds (0 or None: no bound; both bounds
    inclusive); `tail` keeps the last N entries that pass the other filters
    (None or negative: all).  Lines that are not records are skipped.
    """
    flt = _make_filter(since, until, stdout, stderr)

    def everything() -> Iterator[LogEntry]:
        for name in log_files(path):
            yield from _file_entries(name)

    return _select(everything(), flt, tail)


class _Tailer:
    """Reads complete new lines of the live file PATH, following rotation and truncation."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.file: io.BufferedReader | None = None
        self.partial = b""
        self.head = b""  # the first bytes of the file, to notice an in-place restart
        self.open_current()

    def open_current(self) -> None:
        if self.file is not None:
            self.file.close()
        self.partial = b""
        self.head = b""
        try:
            self.file = open(self.path, "rb")  # noqa: SIM115 - kept open across polls
        except FileNotFoundError:
            self.file = None

    def lines(self) -> list[bytes]:
        """Complete lines appended since the last call."""
        if self.file is None:
            self.open_current()
            if self.file is None:
                return []
        fd = self.file.fileno()
        size = os.fstat(fd).st_size
        if size < self.file.tell() or (self.head and os.pread(fd, len(self.head), 0) != self.head):
            # max-file 1: the writer restarted the file in place.  A new first record
            # (its timestamp makes it unique) tells even when the file grew past us again.
            self.file.seek(0)
            self.partial = b""
            self.head = b""
        data = self.partial + self.file.read()
        if not self.head:
            self.head = os.pread(fd, _HEAD, 0)
        complete, _, self.partial = data.rpartition(b"\n")
        return complete.split(b"\n") if complete else []

    def identity(self) -> tuple[int, int] | None:
        """(inode, device) of the file held open, if any."""
        if self.file is None:
            return None
        st = os.fstat(self.file.fileno())
        return st.st_ino, st.st_dev

    def rotated(self) -> bool:
        """True if PATH is no longer the file we hold open."""
        if self.file is None:
            return os.path.exists(self.path)
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(self.file.fileno())
        return (now.st_ino, now.st_dev) != (held.st_ino, held.st_dev)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _next_batch(entries: Iterator[LogEntry]) -> list[LogEntry]:
    batch: list[LogEntry] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) >= _BATCH:
            break
    return batch


async def follow_logs(
    path: str,
    *,
    tail: int | None,
    since: float | None,
    until: float | None,
    stdout: bool,
    stderr: bool,
    is_running: Callable[[], bool],
    poll_interval: float = 0.1,
) -> AsyncIterator[LogEntry]:
    """What `read_logs` gives, then each new entry as it is appended.

    Follows rotation (and in-place restarts with max-file 1) and ends once
    `is_running()` is false and the file holds nothing more, or past `until`.
    """
    flt = _make_filter(since, until, stdout, stderr)
    # Hold the live file first so that a rotation during the history read loses nothing.
    tailer = await asyncio.to_thread(_Tailer, path)
    try:

        def history() -> Iterator[LogEntry]:
            held = tailer.identity()
            for name in log_files(path):
                if name == path:
                    continue  # the live file is the tailer's
                try:
                    st = os.stat(name)
                except FileNotFoundError:
                    continue
                if (st.st_ino, st.st_dev) == held:
                    break  # rotated since we opened it; the tailer reads it
                yield from _file_entries(name)
            yield from _entries_of(tailer.lines())

        selected = _select(history(), flt, tail)
        while batch := await asyncio.to_thread(_next_batch, selected):
            for entry in batch:
                if flt.past_until(entry):
                    return
                yield entry

        while True:
            running = is_running()
            lines = await asyncio.to_thread(tailer.lines)
            if not lines and await asyncio.to_thread(tailer.rotated):
                # the old file is complete: take its last lines, then move on
                lines = await asyncio.to_thread(tailer.lines)
                await asyncio.to_thread(tailer.open_current)
                lines += await asyncio.to_thread(tailer.lines)
            for entry in _entries_of(lines):
                if flt.past_until(entry):
                    return
                if flt.wanted(entry):
                    yield entry
            if not lines:
                if not running:
                    return
                await asyncio.sleep(poll_interval)
    finally:
        with contextlib.suppress(OSError):
            tailer.close()
