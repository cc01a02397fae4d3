"""/images routes for history, save (get) and load."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from dockling import errors
from dockling.api.backend import Backend
from dockling.api.http import Request, Response, Router, StreamResponse, json_response
from dockling.api.piped import piped
from dockling.images import archive
from dockling.images.history import history


def register(router: Router, backend: Backend) -> None:
    images = backend.images
    spool_dir = backend.launcher.data_root / "tmp"

    async def history_(req: Request) -> Response:
        def build() -> list[dict[str, object]]:
            image = images.get(req.params["name"])
            return history(image, images.layer_sizes(image))

        return json_response(await asyncio.to_thread(build))

    async def save(names: list[str], fmt: str) -> StreamResponse:
        if fmt not in archive.FORMATS:
            raise errors.InvalidParameter(f"unknown save format {fmt!r}: use docker or oci")
        for name in names:
            # Unknown names answer 404 before the stream starts, named as the client wrote.
            try:
                await asyncio.to_thread(images.get, name)
            except errors.ImageNotFound:
                raise errors.ImageNotFound(name) from None

        def produce(out: BinaryIO) -> None:
            archive.save(images, names, out, fmt=fmt, spool_dir=spool_dir)

        for name in names:
            backend.events.publish("image", "save", name, {"name": name})
        return StreamResponse(piped(produce), content_type="application/x-tar")

    async def get_many(req: Request) -> StreamResponse:
        names = [n for n in req.query.get("names", []) if n]
        return await save(names, req.arg("format") or "docker")

    async def get_one(req: Request) -> StreamResponse:
        return await save([req.params["name"]], req.arg("format") or "docker")

    async def load(req: Request) -> StreamResponse:
        spool_dir.mkdir(parents=True, exist_ok=True)
        fd, spool = tempfile.mkstemp(dir=spool_dir, prefix="load-")
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in req.stream_body():
                    await asyncio.to_thread(out.write, chunk)
            lines = await asyncio.to_thread(archive.load, images, Path(spool))
        finally:
            os.unlink(spool)
        for line in lines:
            ref = line.split(": ", 1)[1]
            backend.events.publish("image", "load", ref, {"name": ref})

        async def body() -> AsyncIterator[bytes]:
            for line in lines:
                yield json.dumps({"stream": line + "\n"}).encode() + b"\r\n"

        return StreamResponse(body())

    router.add("GET", "/images/get", get_many)
    router.add("POST", "/images/load", load)
    router.add("GET", "/images/{name:path}/history", history_)
    router.add("GET", "/images/{name:path}/get", get_one)
