"""Stream what blocking code writes (a tar being built) as a chunked response body."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from typing import BinaryIO

log = logging.getLogger(__name__)
_CHUNK = 1 << 16


async def piped(produce: Callable[[BinaryIO], None]) -> AsyncIterator[bytes]:
    """Run `produce(out)` in its own thread and yield the bytes it writes to `out`.

    The producer gets its own thread (not the shared pool): it blocks on a full pipe
    for as long as the client reads slowly.  When the client goes away the read end is
    closed, so the producer's next write fails (BrokenPipeError) and it ends, running
    its own cleanup.  A producer error ends the stream early: the client sees a
    truncated body, as with Docker.
    """
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def run() -> None:
        out = os.fdopen(write_fd, "wb", buffering=_CHUNK)
        try:
            produce(out)
            out.flush()
        except BrokenPipeError:
            pass
        except BaseException as exc:  # reported after the stream ends
            failure.append(exc)
        finally:
            with contextlib.suppress(OSError):
                out.close()

    thread = threading.Thread(target=run, name="piped-producer", daemon=True)
    thread.start()
    reader = os.fdopen(read_fd, "rb", buffering=0)
    try:
        while chunk := await asyncio.to_thread(reader.read, _CHUNK):
            yield chunk
    finally:
        reader.close()
        await asyncio.to_thread(thread.join)
    if failure:
        log.warning("stream producer failed: %s", failure[0])
        raise failure[0]
