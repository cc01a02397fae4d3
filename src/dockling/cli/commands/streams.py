"""Copying between the local terminal and a hijacked attach/exec stream.

stdin is copied to the socket in a thread (half-closing the socket at EOF); the
socket is copied to stdout/stderr in the calling thread, demultiplexed unless the
stream is a TTY.  Detaching (ctrl-p ctrl-q by default) is performed by the daemon;
the client watches stdin for the same keys only to tell a detach from an exit.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dockling.client.multiplex import STDERR, FrameSplitter
from dockling.client.transport import Hijacked

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every CLI start a few ms: annotations only
    from typing import Any

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def detach_key_bytes(spec: str) -> bytes:
    """docker's detach-key syntax ("ctrl-p,ctrl-q", "a,ctrl-@") as bytes."""
    out = bytearray()
    for part in spec.split(","):
        key = part.strip()
        if key.lower().startswith("ctrl-") and len(key) == 6:
            ch = key[5].lower()
            if "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
            elif ch in "@[\\]^_":
                out.append({"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[ch])
            else:
                raise ValueError(f"invalid detach key: {key}")
        elif len(key) == 1:
            out.append(ord(key))
        else:
            raise ValueError(f"invalid detach key: {key}")
    return bytes(out)


@contextmanager
def raw_terminal(fd: int, enabled: bool) -> Iterator[None]:
    """Put terminal `fd` in raw mode for the duration (no-op unless enabled and a tty)."""
    if not enabled or not os.isatty(fd):
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_size() -> tuple[int, int] | None:
    """(rows, columns) of the local terminal, if stdout or stdin is one."""
    for fd in (1, 0, 2):
        try:
            size = os.get_terminal_size(fd)
        except OSError:
            continue
        return size.lines, size.columns
    return None


def watch_resize(resize: Callable[[int, int], None]) -> None:
    """Send the terminal size now and again on every SIGWINCH."""

    def send(*_: Any) -> None:
        size = terminal_size()
        if size is not None:
            try:
                resize(*size)
            except Exception:
                pass

    send()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGWINCH, send)


class StdinPump(threading.Thread):
    """Copy local stdin into the stream; remember whether the detach keys were typed."""

    def __init__(self, stream: Hijacked, detach_keys: bytes) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.detach_keys = detach_keys
        self.detached = False
        self._matched = 0

    def _watch(self, data: bytes) -> None:
        for byte in data:
            if self.detach_keys and byte == self.detach_keys[self._matched]:
                self._matched += 1
                if self._matched == len(self.detach_keys):
                    self.detached = True
                    self._matched = 0
            else:
                self._matched = 1 if self.detach_keys and byte == self.detach_keys[0] else 0

    def run(self) -> None:
        try:
            while True:
                try:
                    data = os.read(0, 4096)
                except OSError:
                    data = b""
                if not data:
                    self.stream.close_write()
                    return
                self._watch(data)
                self.stream.send(data)
                if self.detached:
                    return
        except OSError:
            return


def copy_output(stream: Hijacked, tty: bool) -> None:
    """Copy the stream to stdout (and stderr when multiplexed) until it ends."""
    copy_to_stdio(stream.recv, multiplexed=not tty)


def copy_to_stdio(read: Callable[[int], bytes], *, multiplexed: bool) -> None:
    """Copy what `read(size)` returns until b"": as is to stdout, or, if `multiplexed`,
    each frame's payload to stdout or stderr as its header says."""
    out = sys.stdout.buffer
    err = sys.stderr.buffer
    splitter = FrameSplitter()
    while True:
        data = read(65536)
        if not data:
            break
        if not multiplexed:
            out.write(data)
            out.flush()
            continue
        for kind, payload in splitter.feed(data):
            target = err if kind == STDERR else out
            target.write(payload)
            target.flush()


def pump(
    stream: Hijacked,
    *,
    tty: bool,
    stdin: bool,
    detach_keys: str | None,
) -> bool:
    """Run the two copies until the output ends; True if the user detached."""
    keys = detach_key_bytes(detach_keys or DEFAULT_DETACH_KEYS)
    feeder: StdinPump | None = None
    if stdin:
        feeder = StdinPump(stream, keys)
        feeder.start()
    try:
        copy_output(stream, tty)
    finally:
        stream.close()
    return bool(feeder and feeder.detached)
