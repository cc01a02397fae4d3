"""POST /build: the classic builder behind Docker's API, streaming its JSON messages.

The body is the build context as a tar (optionally compressed), or, with `remote=URL`,
the daemon downloads that tar.  It is spooled and
unpacked under DATA_ROOT/tmp, the Dockerfile parsed (errors there are a 400, as
dockerd's), then the build streams {"stream": ...} lines, {"aux": {"ID": ...}} and, on
failure, {"errorDetail": {...}, "error": ...}.  A client that goes away cancels the build.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from dockling import errors
from dockling.api.backend import Backend
from dockling.api.http import Request, Router, StreamResponse, json_response
from dockling.build.builder import Builder, BuildOptions
from dockling.build.context import new_context_dir, unpack_context
from dockling.build.remote import download_context, is_url
from dockling.build.runner import CommandFailed
from dockling.distribution.auth import Credentials

_DONE = object()


def _json_arg(req: Request, name: str) -> dict[str, Any]:
    raw = req.arg(name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise errors.InvalidParameter(f"invalid {name}: {raw!r}") from None
    if not isinstance(value, dict):
        raise errors.InvalidParameter(f"invalid {name}: {raw!r}")
    return value


def decode_registry_config(header: str) -> dict[str, Credentials]:
    """Docker's X-Registry-Config: base64url JSON of {server: {"username", "password",
    "identitytoken", ...}} for every registry the client has credentials for."""
    text = header.strip()
    if not text:
        return {}
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error):
        raise errors.InvalidParameter("invalid X-Registry-Config header") from None
    if not isinstance(data, dict):
        return {}
    return {
        str(server): Credentials(
            str(entry.get("username") or ""),
            str(entry.get("password") or ""),
            str(entry.get("identitytoken") or ""),
        )
        for server, entry in data.items()
        if isinstance(entry, dict)
    }


def _remote(req: Request) -> str | None:
    """The `remote` URL of a context to download, if any (only http(s) tars are built)."""
    remote = req.arg("remote")
    if not remote:
        return None
    if not is_url(remote):
        raise errors.NotImplementedFeature(
            f"remote context {remote!r}: only http:// and https:// URLs of tars are supported"
        )
    return remote


def _options(req: Request) -> BuildOptions:
    build_args = {
        str(k): None if v is None else str(v) for k, v in _json_arg(req, "buildargs").items()
    }
    return BuildOptions(
        dockerfile=req.arg("dockerfile") or "Dockerfile",
        tags=[t for t in req.query.get("t", []) if t],
        build_args=build_args,
        target=req.arg("target") or None,
        no_cache=req.flag("nocache"),
        labels={str(k): str(v) for k, v in _json_arg(req, "labels").items()},
        network=req.arg("networkmode") or "default",
        pull=req.flag("pull"),
        platform=req.arg("platform") or "",
        registry_auth=decode_registry_config(req.headers.get("x-registry-config", "")),
    )


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\r\n"


def register(router: Router, backend: Backend) -> None:
    data_root = backend.launcher.data_root
    builder = Builder(backend.containers, data_root / "build-cache", backend.distribution)

    async def build(req: Request) -> StreamResponse:
        options = _options(req)
        remote = _remote(req)
        context = new_context_dir(data_root)
        try:
            fd, spool = tempfile.mkstemp(dir=data_root / "tmp", prefix="build-upload-")
            try:
                with os.fdopen(fd, "wb") as out:
                    async for chunk in req.stream_body():
                        await asyncio.to_thread(out.write, chunk)
                if remote is not None:
                    await asyncio.to_thread(download_context, remote, Path(spool))
                if os.path.getsize(spool):
                    await asyncio.to_thread(unpack_context, Path(spool), context)
            finally:
                os.unlink(spool)
            prepared = await builder.prepare(context, options)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, context, True)
            raise
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def emit(message: dict[str, Any]) -> None:
            await queue.put(message)

        async def work() -> None:
            try:
                await builder.run(prepared, emit)
            except Exception as exc:
                code = exc.code if isinstance(exc, CommandFailed) else 1
                text = exc.message if isinstance(exc, errors.DocklingError) else str(exc)
                await queue.put({"errorDetail": {"code": code, "message": text}, "error": text})
            finally:
                await asyncio.to_thread(shutil.rmtree, context, True)
                await queue.put(_DONE)

        task = asyncio.create_task(work())
        quiet = req.flag("q")

        async def body() -> AsyncIterator[bytes]:
            try:
                while True:
                    message = await queue.get()
                    if message is _DONE:
                        break
                    if quiet and "stream" in message:
                        continue
                    yield _line(message)
            finally:
                if not task.done():
                    task.cancel()
                    try:
                        await task
                    except BaseException:
                        pass

        return StreamResponse(body())

    async def prune(req: Request) -> Any:
        count = await asyncio.to_thread(builder.cache.prune)
        return json_response({"CachesDeleted": [], "SpaceReclaimed": 0, "Count": count})

    router.add("POST", "/build", build)
    router.add("POST", "/build/prune", prune)
