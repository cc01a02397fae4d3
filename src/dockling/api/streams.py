"""Stream plumbing for hijacked connections: attach/exec pumps, detach keys, stdcopy frames."""

from __future__ import annotations

import asyncio
import contextlib
import struct

from dockling import errors

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q
FRAME_HEADER = struct.Struct(">BxxxI")


def frame(stream: int, payload: bytes) -> bytes:
    """Docker's multiplexed-stream frame: [stream, 0, 0, 0, len32] + payload."""
    return FRAME_HEADER.pack(stream, len(payload)) + payload


def parse_detach_keys(spec: str) -> bytes:
    """Docker's --detach-keys syntax: comma-separated "ctrl-<x>" or single characters."""
    if not spec:
        return DEFAULT_DETACH_KEYS
    keys = bytearray()
    for part in spec.split(","):
        part = part.strip()
        if part.startswith("ctrl-") and len(part) == 6:
            char = part[5].lower()
            codes = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if "a" <= char <= "z":
                keys.append(ord(char) - ord("a") + 1)
            elif char in codes:
                keys.append(codes[char])
            else:
                raise errors.InvalidParameter(f"Invalid detach keys ({spec}) provided")
        elif len(part) == 1:
            keys.append(ord(part))
        else:
            raise errors.InvalidParameter(f"Invalid detach keys ({spec}) provided")
    return bytes(keys)


class DetachScanner:
    """Finds the detach sequence in stdin; bytes of a partial match are held back."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Return (bytes to forward, detached?)."""
        out = bytearray()
        for byte in data:
            candidate = self.held + bytes([byte])
            if self.keys.startswith(candidate):
                if candidate == self.keys:
                    return bytes(out), True
                self.held = candidate
                continue
            out += candidate
            self.held = b""
        return bytes(out), False


async def pump(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    shim_reader: asyncio.StreamReader,
    shim_writer: asyncio.StreamWriter,
    *,
    tty: bool,
    stdin: bool,
    detach_keys: bytes,
) -> bool:
    """Relay until the container's output ends or the client detaches. Returns detached."""
    detached = asyncio.Event()

    async def output() -> None:
        while True:
            try:
                header = await shim_reader.readexactly(FRAME_HEADER.size)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            _stream, size = FRAME_HEADER.unpack(header)
            payload = await shim_reader.readexactly(size)
            client_writer.write(payload if tty else header + payload)
            try:
                await client_writer.drain()
            except ConnectionError:
                return

    async def input_() -> None:
        scanner = DetachScanner(detach_keys)
        while True:
            try:
                data = await client_reader.read(32 * 1024)
            except ConnectionError:
                data = b""
            if not data:
                # The client closed its side: the shim closes stdin if the container asked.
                with contextlib.suppress(OSError):
                    if shim_writer.can_write_eof():
                        shim_writer.write_eof()
                return
            forward, hit = scanner.feed(data)
            if forward:
                shim_writer.write(forward)
                await shim_writer.drain()
            if hit:
                detached.set()
                return

    out_task = asyncio.create_task(output())
    tasks = {out_task}
    in_task = asyncio.create_task(input_()) if stdin else None
    if in_task is not None:
        tasks.add(in_task)
    detach_wait = asyncio.create_task(detached.wait())
    try:
        await asyncio.wait({out_task, detach_wait}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (*tasks, detach_wait):
            task.cancel()
        for task in (*tasks, detach_wait):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        shim_writer.close()
        with contextlib.suppress(Exception):
            await client_writer.drain()
    return detached.is_set()
