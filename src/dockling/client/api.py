"""A thin Engine API client: one method per endpoint the CLI uses.

Methods return decoded JSON (`Any`: the shapes are the Docker Engine API's) and
raise `APIError` for error statuses and `DaemonUnreachable` when nobody listens.
"""

from __future__ import annotations

from dockling.client.transport import Transport, quote_ref

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from dockling.client.transport import Hijacked, Query, Response


def _filters(filters: dict[str, list[str]] | None) -> str | None:
    if not filters:
        return None
    import json

    return json.dumps(filters)


class EngineClient:
    """The Docker Engine API as Python calls, over a `Transport`."""

    def __init__(self, host: str | None = None) -> None:
        self.transport = Transport(host)

    @property
    def host(self) -> str:
        return self.transport.host

    # -- system --------------------------------------------------------------------

    def version(self) -> Any:
        return self.transport.call("GET", "/version")

    def info(self) -> Any:
        return self.transport.call("GET", "/info")

    def ping(self) -> Any:
        return self.transport.call("GET", "/_ping")

    def events(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        filters: dict[str, list[str]] | None = None,
    ) -> Iterator[Any]:
        query: Query = {"since": since, "until": until, "filters": _filters(filters)}
        return self.transport.json_stream("GET", "/events", query=query)

    # -- containers ----------------------------------------------------------------

    def create_container(self, body: dict[str, Any], *, name: str | None = None) -> Any:
        query: Query = {"name": name or None}
        return self.transport.call("POST", "/containers/create", query=query, body=body)

    def list_containers(
        self,
        *,
        all: bool = False,
        limit: int | None = None,
        size: bool = False,
        filters: dict[str, list[str]] | None = None,
    ) -> Any:
        query: Query = {
            "all": all or None,
            "limit": limit,
            "size": size or None,
            "filters": _filters(filters),
        }
        return self.transport.call("GET", "/containers/json", query=query)

    def inspect_container(self, ref: str, *, size: bool = False) -> Any:
        query: Query = {"size": size or None}
        return self.transport.call("GET", f"/containers/{quote_ref(ref)}/json", query=query)

    def start(self, ref: str, *, detach_keys: str | None = None) -> None:
        query: Query = {"detachKeys": detach_keys}
        self.transport.call("POST", f"/containers/{quote_ref(ref)}/start", query=query)

    def stop(self, ref: str, *, timeout: int | None = None, signal: str | None = None) -> None:
        query: Query = {"t": timeout, "signal": signal}
        self.transport.call("POST", f"/containers/{quote_ref(ref)}/stop", query=query)

    def restart(self, ref: str, *, timeout: int | None = None, signal: str | None = None) -> None:
        query: Query = {"t": timeout, "signal": signal}
        self.transport.call("POST", f"/containers/{quote_ref(ref)}/restart", query=query)

    def kill(self, ref: str, *, signal: str | None = None) -> None:
        query: Query = {"signal": signal}
        self.transport.call("POST", f"/containers/{quote_ref(ref)}/kill", query=query)

    def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        query: Query = {"force": force or None, "v": volumes or None}
        self.transport.call("DELETE", f"/containers/{quote_ref(ref)}", query=query)

    def pause(self, ref: str) -> None:
        self.transport.call("POST", f"/containers/{quote_ref(ref)}/pause")

    def unpause(self, ref: str) -> None:
        self.transport.call("POST", f"/containers/{quote_ref(ref)}/unpause")

    def rename(self, ref: str, new_name: str) -> None:
        query: Query = {"name": new_name}
        self.transport.call("POST", f"/containers/{quote_ref(ref)}/rename", query=query)

    def update(self, ref: str, changes: dict[str, Any]) -> Any:
        return self.transport.call("POST", f"/containers/{quote_ref(ref)}/update", body=changes)

    def top(self, ref: str, *, ps_args: str | None = None) -> Any:
        query: Query = {"ps_args": ps_args}
        return self.transport.call("GET", f"/containers/{quote_ref(ref)}/top", query=query)

    def resize(self, ref: str, *, height: int, width: int, exec_id: bool = False) -> None:
        kind = "exec" if exec_id else "containers"
        query: Query = {"h": height, "w": width}
        self.transport.call("POST", f"/{kind}/{quote_ref(ref)}/resize", query=query)

    def wait_response(self, ref: str, *, condition: str | None = None) -> Response:
        """Open POST /wait; the caller reads `{"StatusCode": N}` once the container exits."""
        query: Query = {"condition": condition}
        return self.transport.request("POST", f"/containers/{quote_ref(ref)}/wait", query=query)

    def logs(self, ref: str, query: Query) -> Response:
        return self.transport.request("GET", f"/containers/{quote_ref(ref)}/logs", query=query)

    def stats(self, ref: str, *, stream: bool) -> Iterator[Any]:
        query: Query = {"stream": stream}
        return self.transport.json_stream("GET", f"/containers/{quote_ref(ref)}/stats", query=query)

    def attach(self, ref: str, query: Query) -> Hijacked:
        return self.transport.hijack(f"/containers/{quote_ref(ref)}/attach", query=query)

    def prune_containers(self, filters: dict[str, list[str]] | None = None) -> Any:
        query: Query = {"filters": _filters(filters)}
        return self.transport.call("POST", "/containers/prune", query=query)

    # -- exec ----------------------------------------------------------------------

    def exec_create(self, ref: str, body: dict[str, Any]) -> Any:
        return self.transport.call("POST", f"/containers/{quote_ref(ref)}/exec", body=body)

    def exec_start_hijacked(self, exec_id: str, *, tty: bool) -> Hijacked:
        body = {"Detach": False, "Tty": tty}
        return self.transport.hijack(f"/exec/{quote_ref(exec_id)}/start", body=body)

    def exec_start_detached(self, exec_id: str) -> None:
        body = {"Detach": True, "Tty": False}
        self.transport.call("POST", f"/exec/{quote_ref(exec_id)}/start", body=body)

    def exec_inspect(self, exec_id: str) -> Any:
        return self.transport.call("GET", f"/exec/{quote_ref(exec_id)}/json")

    # -- images --------------------------------------------------------------------

    def list_images(
        self,
        *,
        all: bool = False,
        filters: dict[str, list[str]] | None = None,
    ) -> Any:
        query: Query = {"all": all or None, "filters": _filters(filters)}
        return self.transport.call("GET", "/images/json", query=query)

    def inspect_image(self, ref: str) -> Any:
        return self.transport.call("GET", f"/images/{quote_ref(ref)}/json")

    def remove_image(self, ref: str, *, force: bool = False, noprune: bool = False) -> Any:
        query: Query = {"force": force or None, "noprune": noprune or None}
        return self.transport.call("DELETE", f"/images/{quote_ref(ref)}", query=query)

    def tag_image(self, ref: str, repo: str, tag: str | None) -> None:
        query: Query = {"repo": repo, "tag": tag}
        self.transport.call("POST", f"/images/{quote_ref(ref)}/tag", query=query)

    def pull(self, image: str, tag: str | None, *, platform: str | None = None) -> Iterator[Any]:
        query: Query = {"fromImage": image, "tag": tag, "platform": platform}
        return self.transport.json_stream("POST", "/images/create", query=query)

    def import_image(self, query: Query, data: Any) -> Iterator[Any]:
        return self.transport.json_stream("POST", "/images/create", query=query, data=data)

    def prune_images(self, filters: dict[str, list[str]] | None = None) -> Any:
        query: Query = {"filters": _filters(filters)}
        return self.transport.call("POST", "/images/prune", query=query)

    # -- volumes -------------------------------------------------------------------

    def create_volume(self, body: dict[str, Any]) -> Any:
        return self.transport.call("POST", "/volumes/create", body=body)

    def list_volumes(self, filters: dict[str, list[str]] | None = None) -> Any:
        query: Query = {"filters": _filters(filters)}
        return self.transport.call("GET", "/volumes", query=query)

    def inspect_volume(self, name: str) -> Any:
        return self.transport.call("GET", f"/volumes/{quote_ref(name)}")

    def remove_volume(self, name: str, *, force: bool = False) -> None:
        query: Query = {"force": force or None}
        self.transport.call("DELETE", f"/volumes/{quote_ref(name)}", query=query)

    def prune_volumes(self, filters: dict[str, list[str]] | None = None) -> Any:
        query: Query = {"filters": _filters(filters)}
        return self.transport.call("POST", "/volumes/prune", query=query)
