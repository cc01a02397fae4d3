"""/volumes routes."""

from __future__ import annotations

from collections.abc import Mapping

from dockling import errors
from dockling.api.backend import Backend
from dockling.api.filters import VOLUME_FILTERS, VOLUME_PRUNE_FILTERS, parse_filters
from dockling.api.http import Request, Response, Router, json_response
from dockling.volumes.local import to_api


def register(router: Router, backend: Backend) -> None:
    volumes = backend.volumes
    events = backend.events

    async def create(req: Request) -> Response:
        body = await req.json() or {}
        driver = body.get("Driver") or "local"
        if driver != "local":
            name = body.get("Name") or ""
            raise errors.NotFound(
                f"create {name}: error looking up volume plugin {driver}: "
                f'plugin "{driver}" not found'
            )
        volume = volumes.create(
            body.get("Name") or None,
            labels=dict(body.get("Labels") or {}),
            options=dict(body.get("DriverOpts") or {}),
        )
        events.publish("volume", "create", volume.name, {"driver": "local"})
        return json_response(to_api(volume), status=201)

    async def list_(req: Request) -> Response:
        filters = parse_filters(req.arg("filters"), VOLUME_FILTERS)
        result = []
        for volume in volumes.list():
            if "name" in filters and not any(n in volume.name for n in filters["name"]):
                continue
            if "dangling" in filters:
                dangling = filters["dangling"][0] in ("true", "1")
                if dangling == bool(volumes.users(volume.name)):
                    continue
            if "label" in filters and not all(
                _label_match(volume.labels, sel) for sel in filters["label"]
            ):
                continue
            result.append(to_api(volume))
        return json_response({"Volumes": result, "Warnings": []})

    async def inspect(req: Request) -> Response:
        return json_response(to_api(volumes.get(req.params["name"])))

    async def remove(req: Request) -> Response:
        name = req.params["name"]
        volumes.remove(name, force=req.flag("force"))
        events.publish("volume", "destroy", name, {"driver": "local"})
        return Response(status=204, body=b"")

    async def prune(req: Request) -> Response:
        filters = parse_filters(req.arg("filters"), VOLUME_PRUNE_FILTERS)
        prune_all = filters.get("all", ["false"])[0] in ("true", "1")
        labels = filters.get("label", [])
        deleted, reclaimed = volumes.prune(labels=labels, all=prune_all)
        for name in deleted:
            events.publish("volume", "destroy", name, {"driver": "local"})
        return json_response({"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    router.add("POST", "/volumes/create", create)
    router.add("GET", "/volumes", list_)
    router.add("POST", "/volumes/prune", prune)
    router.add("GET", "/volumes/{name}", inspect)
    router.add("DELETE", "/volumes/{name}", remove)


def _label_match(labels: Mapping[str, str], selector: str) -> bool:
    key, sep, value = selector.partition("=")
    return key in labels and (not sep or labels[key] == value)
