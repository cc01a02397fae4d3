"""Registry routes: the pull half of POST /images/create, POST /images/{name}/push and
POST /auth, streaming Docker's JSON progress messages.

An error before the first progress message is an HTTP error status (as dockerd: "manifest
unknown" is a 404); once streaming, it is an in-stream {"errorDetail":..., "error":...}.
A client that goes away cancels the pull; its partial downloads stay for the next one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from dockling import errors
from dockling.api.backend import Backend
from dockling.api.http import Request, Response, Router, StreamResponse, json_response
from dockling.distribution.auth import Credentials
from dockling.distribution.progress import Progress, error_message, to_message
from dockling.distribution.service import DistributionService

_DONE = object()


def service_for(backend: Backend) -> DistributionService:
    """The daemon's distribution service (built by the wiring with its registry settings)."""
    return backend.distribution


def decode_registry_auth(header: str) -> Credentials | None:
    """Docker's X-Registry-Auth: base64url JSON {"username","password","identitytoken"}."""
    text = header.strip()
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = json.loads(raw)
    except (ValueError, binascii.Error):
        raise errors.InvalidParameter("invalid X-Registry-Auth header") from None
    if not isinstance(data, dict):
        return None
    return Credentials(
        str(data.get("username") or ""),
        str(data.get("password") or ""),
        str(data.get("identitytoken") or ""),
    )


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\r\n"


async def _stream(
    work: Callable[[Callable[[Progress], None], threading.Event], Any],
) -> StreamResponse:
    """Run `work(sink, cancel)` in a thread and stream its progress as JSON lines."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    cancel = threading.Event()

    def sink(event: Progress) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, event)

    def run() -> None:
        try:
            result = work(sink, cancel)
            loop.call_soon_threadsafe(queue.put_nowait, (_DONE, result))
        except BaseException as exc:
            loop.call_soon_threadsafe(queue.put_nowait, exc)

    task = asyncio.create_task(asyncio.to_thread(run))
    first = await queue.get()
    if isinstance(first, BaseException):
        await task
        raise first

    async def body() -> AsyncIterator[bytes]:
        item = first
        try:
            while True:
                if isinstance(item, BaseException):
                    text = str(item) if isinstance(item, errors.DocklingError) else repr(item)
                    yield _line(error_message(text))
                    return
                if isinstance(item, tuple) and item and item[0] is _DONE:
                    extra = item[1]
                    if isinstance(extra, dict):
                        yield _line(extra)
                    return
                yield _line(to_message(item))
                item = await queue.get()
        finally:
            cancel.set()
            await task

    return StreamResponse(body())


async def pull(req: Request, backend: Backend) -> StreamResponse:
    """POST /images/create?fromImage=NAME&tag=TAG&platform=P (X-Registry-Auth)."""
    image = req.arg("fromImage")
    tag = req.arg("tag")
    reference = image
    if tag:
        reference = f"{image}@{tag}" if tag.startswith("sha256:") else f"{image}:{tag}"
    credentials = decode_registry_auth(req.headers.get("x-registry-auth", ""))
    service = service_for(backend)
    platform = req.arg("platform")

    def work(sink: Callable[[Progress], None], cancel: threading.Event) -> None:
        result = service.pull(
            reference, platform=platform, credentials=credentials, sink=sink, cancel=cancel
        )
        backend.events.publish("image", "pull", reference, {"name": reference})
        del result

    return await _stream(work)


def register(router: Router, backend: Backend) -> None:
    service = service_for(backend)

    async def push(req: Request) -> StreamResponse:
        name = req.params["name"]
        tag = req.arg("tag")
        reference = f"{name}:{tag}" if tag else name
        credentials = decode_registry_auth(req.headers.get("x-registry-auth", ""))

        def work(sink: Callable[[Progress], None], _cancel: threading.Event) -> dict[str, Any]:
            result = service.push(reference, credentials=credentials, sink=sink)
            backend.events.publish("image", "push", reference, {"name": reference})
            return {
                "progressDetail": {},
                "aux": {"Tag": result.tag, "Digest": result.digest, "Size": result.size},
            }

        return await _stream(work)

    async def auth(req: Request) -> Response:
        body = await req.json() or {}
        if not isinstance(body, dict):
            raise errors.InvalidParameter("invalid auth configuration")
        credentials = Credentials(
            str(body.get("username") or ""),
            str(body.get("password") or ""),
            str(body.get("identitytoken") or ""),
        )
        server = str(body.get("serveraddress") or "")
        status = await asyncio.to_thread(service.login, server, credentials)
        return json_response({"Status": status, "IdentityToken": ""})

    router.add("POST", "/images/{name:path}/push", push)
    router.add("POST", "/auth", auth)
