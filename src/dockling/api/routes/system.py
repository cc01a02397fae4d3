"""/_ping, /version, /info, /events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from dockling.api.backend import Backend
from dockling.api.filters import parse_filters
from dockling.api.http import Request, Response, Router, StreamResponse, json_response
from dockling.events.bus import EventFilter


def register(router: Router, backend: Backend) -> None:
    async def ping(req: Request) -> Response:
        return Response(
            body=b"OK",
            content_type="text/plain; charset=utf-8",
            headers={"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"},
        )

    async def version(req: Request) -> Response:
        return json_response(_with_engine_details(backend.version()))

    async def info(req: Request) -> Response:
        return json_response(backend.info())

    async def events(req: Request) -> StreamResponse:
        from dockling.timestamps import parse_timestamp

        filters = parse_filters(req.arg("filters"))
        since = req.arg("since")
        until = req.arg("until")
        since_ns = int(parse_timestamp(since) * 1e9) if since else None
        until_ns = int(parse_timestamp(until) * 1e9) if until else None
        event_filter = EventFilter({k: tuple(v) for k, v in filters.items()})

        async def body() -> AsyncIterator[bytes]:
            async for event in backend.events.subscribe(
                event_filter, since_ns=since_ns, until_ns=until_ns
            ):
                yield json.dumps(event.to_api()).encode() + b"\n"

        return StreamResponse(body())

    router.add("GET", "/_ping", ping)
    router.add("GET", "/version", version)
    router.add("GET", "/info", info)
    router.add("GET", "/events", events)


# The docker CLI prints the Engine's server section from the component's Details, not from
# the top-level fields: without these keys `docker version` shows "(minimum version )" and "/".
_ENGINE_DETAILS = (
    "ApiVersion",
    "MinAPIVersion",
    "GitCommit",
    "GoVersion",
    "Os",
    "Arch",
    "KernelVersion",
    "BuildTime",
)


def _with_engine_details(data: dict[str, Any]) -> dict[str, Any]:
    """GET /version's body with the Engine component's Details filled from the top level."""
    data.setdefault("Experimental", False)
    for component in data.get("Components") or []:
        if component.get("Name") != "Engine":
            continue
        details = component.setdefault("Details", {})
        for key in _ENGINE_DETAILS:
            if key in data:
                details.setdefault(key, data[key])
        details.setdefault("Experimental", str(data["Experimental"]).lower())
    return data
