"""/images routes, as far as import, list, inspect, tag and remove go."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import AsyncIterator
from typing import Any

from dockling import errors
from dockling.api.backend import Backend
from dockling.api.filters import IMAGE_FILTERS, IMAGE_PRUNE_FILTERS, parse_filters
from dockling.api.http import Request, Response, Router, StreamResponse, json_response
from dockling.api.routes import distribution
from dockling.images.store import summary


def register(router: Router, backend: Backend) -> None:
    images = backend.images
    events = backend.events
    spool_dir = backend.launcher.data_root / "tmp"

    async def create(req: Request) -> StreamResponse:
        if req.arg("fromImage"):
            return await distribution.pull(req, backend)
        source = req.arg("fromSrc")
        if source != "-":
            raise errors.InvalidParameter(
                "import from a URL is not supported: pass the tarball on stdin (fromSrc=-)"
            )
        repo = req.arg("repo")
        tag = req.arg("tag")
        reference = None
        if repo:
            reference = f"{repo}:{tag}" if tag and "@" not in repo else repo
        changes = req.query.get("changes", [])
        message = req.arg("message")
        spool_dir.mkdir(parents=True, exist_ok=True)
        fd, spool = tempfile.mkstemp(dir=spool_dir, prefix="import-")
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in req.stream_body():
                    await asyncio.to_thread(out.write, chunk)

            def run_import() -> Any:
                with open(spool, "rb") as stream:
                    return images.import_tarball(
                        stream, reference=reference, changes=changes, message=message
                    )

            image = await asyncio.to_thread(run_import)
        finally:
            os.unlink(spool)
        events.publish("image", "import", image.id, {"name": reference or ""})

        async def body() -> AsyncIterator[bytes]:
            yield json.dumps({"status": image.id}).encode() + b"\r\n"

        return StreamResponse(body())

    async def list_(req: Request) -> Response:
        filters = parse_filters(req.arg("filters"), IMAGE_FILTERS)
        bounds = {
            key: [summary(await asyncio.to_thread(images.get, ref))["Created"] for ref in refs]
            for key, refs in filters.items()
            if key in ("before", "since")
        }
        result = []
        parents = await asyncio.to_thread(images.parents)
        has_children = set(parents.values())
        show_all = req.flag("all")
        for image in await asyncio.to_thread(images.list):
            # Untagged images with children are build steps: Docker shows them with -a only.
            if not show_all and not image.repo_tags and image.id in has_children:
                continue
            data = summary(image)
            data["ParentId"] = parents.get(image.id, "")
            if any(data["Created"] >= b for b in bounds.get("before", [])):
                continue
            if any(data["Created"] <= b for b in bounds.get("since", [])):
                continue
            if "reference" in filters and not any(
                _ref_match(tag, pattern)
                for tag in image.repo_tags
                for pattern in filters["reference"]
            ):
                continue
            if "dangling" in filters:
                dangling = filters["dangling"][0] in ("true", "1")
                if dangling != (not image.repo_tags):
                    continue
            if "label" in filters:
                labels = data.get("Labels") or {}
                if not all(_label_match(labels, sel) for sel in filters["label"]):
                    continue
            data["Containers"] = sum(1 for c in backend.containers.list() if c.image_id == image.id)
            result.append(data)
        return json_response(result)

    async def inspect(req: Request) -> Response:
        return json_response(await asyncio.to_thread(images.inspect, req.params["name"]))

    async def remove(req: Request) -> Response:
        name = req.params["name"]
        force = req.flag("force")

        def in_use(image_id: str) -> str | None:
            return backend.containers.image_in_use(image_id)

        result = await asyncio.to_thread(images.remove, name, force=force, in_use_by=in_use)
        for item in result:
            for action, ref in item.items():
                events.publish(
                    "image",
                    action.lower().replace("deleted", "delete").replace("untagged", "untag"),
                    ref,
                    {"name": ref},
                )
        return json_response(result)

    async def tag(req: Request) -> Response:
        repo = req.arg("repo")
        if not repo:
            raise errors.InvalidParameter("repository name must have at least one component")
        target = f"{repo}:{req.arg('tag') or 'latest'}"
        await asyncio.to_thread(images.tag, req.params["name"], target)
        image = await asyncio.to_thread(images.get, target)
        events.publish("image", "tag", image.id, {"name": target})
        return Response(status=201, body=b"")

    async def prune(req: Request) -> Response:
        filters = parse_filters(req.arg("filters"), IMAGE_PRUNE_FILTERS)
        dangling_only = filters.get("dangling", ["true"])[0] in ("true", "1")
        until = [_until_seconds(v) for v in filters.get("until", [])]
        deleted: list[dict[str, str]] = []
        reclaimed = 0
        for image in await asyncio.to_thread(images.list):
            if dangling_only and image.repo_tags:
                continue
            created = summary(image)["Created"]
            if any(created >= limit for limit in until):
                continue
            labels = summary(image)["Labels"] or {}
            if not all(_label_match(labels, sel) for sel in filters.get("label", [])):
                continue
            if any(_label_match(labels, sel) for sel in filters.get("label!", [])):
                continue
            if backend.containers.image_in_use(image.id):
                continue
            try:
                result = await asyncio.to_thread(
                    images.remove, image.id, force=True, in_use_by=lambda _id: None
                )
            except errors.DocklingError:
                continue
            deleted.extend(result)
            reclaimed += image.size
        return json_response({"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    async def search(req: Request) -> Response:
        # Docker's search asks Docker Hub's v1 index, which is not a registry API.
        raise errors.NotImplementedFeature(
            "image search is not supported: it is Docker Hub's index, not the registry API "
            "(list a registry's repositories with GET /v2/_catalog)"
        )

    router.add("GET", "/images/search", search)
    router.add("POST", "/images/create", create)
    router.add("GET", "/images/json", list_)
    router.add("POST", "/images/prune", prune)
    router.add("GET", "/images/{name:path}/json", inspect)
    router.add("POST", "/images/{name:path}/tag", tag)
    router.add("DELETE", "/images/{name:path}", remove)


def _until_seconds(value: str) -> float:
    """Docker's `until` filter: a Unix timestamp, an RFC 3339 time or a Go duration ago."""
    import re
    import time
    from datetime import datetime

    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    duration = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if text and duration is not None:
        hours, minutes, seconds = (int(g or 0) for g in duration.groups())
        return time.time() - (hours * 3600 + minutes * 60 + seconds)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise errors.InvalidParameter(f"invalid until filter: {value!r}") from None


def _label_match(labels: dict[str, str], selector: str) -> bool:
    key, sep, value = selector.partition("=")
    return key in labels and (not sep or labels[key] == value)


def _ref_match(tag: str, pattern: str) -> bool:
    from fnmatch import fnmatch

    return fnmatch(tag, pattern) or fnmatch(tag, f"{pattern}:*")
