"""/containers/* routes of the Engine API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from dockling import errors
from dockling.api import streams
from dockling.api.backend import Backend
from dockling.api.filters import CONTAINER_FILTERS, CONTAINER_PRUNE_FILTERS, parse_filters
from dockling.api.http import (
    Hijack,
    Request,
    Response,
    Router,
    StreamResponse,
    json_response,
)
from dockling.api.schemas import containers as schema
from dockling.containers.health import HealthState
from dockling.containers.model import Container, Status
from dockling.containers.service import ContainerService
from dockling.network.service import NetworkService
from dockling.runtime import logs as log_reader
from dockling.runtime.cgroups import read_stats
from dockling.timestamps import parse_timestamp


def register(router: Router, backend: Backend) -> None:
    routes = ContainerRoutes(backend)
    router.add("POST", "/containers/create", routes.create)
    router.add("GET", "/containers/json", routes.list)
    router.add("POST", "/containers/prune", routes.prune)
    router.add("GET", "/containers/{id}/json", routes.inspect)
    router.add("POST", "/containers/{id}/start", routes.start)
    router.add("POST", "/containers/{id}/stop", routes.stop)
    router.add("POST", "/containers/{id}/kill", routes.kill)
    router.add("POST", "/containers/{id}/restart", routes.restart)
    router.add("POST", "/containers/{id}/wait", routes.wait)
    router.add("POST", "/containers/{id}/attach", routes.attach)
    router.add("GET", "/containers/{id}/logs", routes.logs)
    router.add("GET", "/containers/{id}/top", routes.top)
    router.add("GET", "/containers/{id}/stats", routes.stats)
    router.add("POST", "/containers/{id}/rename", routes.rename)
    router.add("POST", "/containers/{id}/update", routes.update)
    router.add("POST", "/containers/{id}/pause", routes.pause)
    router.add("POST", "/containers/{id}/unpause", routes.unpause)
    router.add("POST", "/containers/{id}/resize", routes.resize)
    router.add("DELETE", "/containers/{id}", routes.delete)


def _no_content() -> Response:
    return Response(status=204, body=b"")


# How long a wait answer may be held back for attach streams still flushing the output.
ATTACH_FLUSH_TIMEOUT = 2.0


class ContainerRoutes:
    def __init__(self, backend: Backend) -> None:
        self.b = backend
        # Attach streams relaying output, per container id; each event is set when the
        # client has been sent everything.  dockerd likewise lets a wait answer only after
        # the attached streams are done, so `docker run` never exits before printing.
        self._streaming: dict[str, set[asyncio.Event]] = {}

    @property
    def svc(self) -> ContainerService:
        return self.b.containers

    async def create(self, req: Request) -> Response:
        body = await req.json()
        spec = schema.spec_from_create(body or {})
        if spec.runtime and spec.runtime not in self.b.launcher.runtimes:
            raise errors.InvalidParameter(f"unknown or invalid runtime name: {spec.runtime}")
        container = await self.svc.create(spec, name=req.arg("name"))
        return json_response({"Id": container.id, "Warnings": []}, status=201)

    async def list(self, req: Request) -> Response:
        filters = parse_filters(req.arg("filters"), CONTAINER_FILTERS)
        limit = req.int_arg("limit", -1)
        # `ps -n N` / `ps -l`: the last created, whatever their state, as dockerd.
        show_all = req.flag("all") or limit > 0
        want_size = req.flag("size")
        result = []
        for container in self.svc.list():
            if (
                not show_all
                and not container.state.running
                and not filters
                and container.state.status is not Status.RESTARTING
            ):
                continue
            if not _matches(container, filters, show_all, self.b.networks):
                continue
            if "health" in filters and not _health_matches(
                self.svc.health.state(container.id), filters["health"]
            ):
                continue
            size = self._sizes(container) if want_size else None
            result.append(
                schema.summary(
                    container,
                    self.b.mounts_json(container),
                    size,
                    networks=self.b.networks,
                    health=self.svc.health.state(container.id),
                )
            )
        if limit > 0:
            result = result[:limit]
        return json_response(result)

    async def prune(self, req: Request) -> Response:
        filters = parse_filters(req.arg("filters"), CONTAINER_PRUNE_FILTERS)
        until = None
        if filters.get("until"):
            until = parse_timestamp(filters["until"][0].strip())
        labels = {}
        for item in filters.get("label", ()):
            key, _, value = item.partition("=")
            labels[key] = value
        deleted, reclaimed = await self.svc.prune(until=until, labels=labels)
        self.b.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
        return json_response({"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    async def inspect(self, req: Request) -> Response:
        container = self.svc.get(req.params["id"])
        launcher = self.b.launcher
        data = schema.inspect(
            container,
            mounts_json=self.b.mounts_json(container),
            log_path=launcher.log_path(container.id),
            data_dir=str(launcher.container_dir(container.id)),
            graph=self.b.graph_data(container),
            networks=self.b.networks,
            health=self.svc.health.state(container.id),
        )
        if req.flag("size"):
            data["SizeRw"], data["SizeRootFs"] = self._sizes(container)
        return json_response(data)

    def _sizes(self, container: Container) -> tuple[int, int]:
        """(SizeRw, SizeRootFs): the container's own files, and those plus its image's."""
        rw = self.b.launcher.rootfs_usage(container.id)
        try:
            image_size = self.b.images.get(container.image_id).size
        except errors.NotFound:
            image_size = 0
        return rw, rw + image_size

    async def start(self, req: Request) -> Response:
        try:
            await self.svc.start(req.params["id"])
        except errors.NotModified:
            return Response(status=304, body=b"")
        return _no_content()

    async def stop(self, req: Request) -> Response:
        timeout = req.arg("t") or req.arg("timeout")
        try:
            await self.svc.stop(
                req.params["id"],
                timeout=int(timeout) if timeout else None,
                signal=req.arg("signal"),
            )
        except errors.NotModified:
            return Response(status=304, body=b"")
        return _no_content()

    async def kill(self, req: Request) -> Response:
        ref = req.params["id"]
        try:
            await self.svc.kill(ref, signal=req.arg("signal"))
        except errors.ContainerNotFound as exc:
            raise errors.NotFound(f"Cannot kill container: {ref}: {exc.message}") from None
        except errors.ContainerNotRunning as exc:
            raise errors.ContainerNotRunning(
                f"Cannot kill container: {ref}: {exc.message}"
            ) from None
        return _no_content()

    async def restart(self, req: Request) -> Response:
        timeout = req.arg("t") or req.arg("timeout")
        await self.svc.restart(req.params["id"], timeout=int(timeout) if timeout else None)
        return _no_content()

    async def wait(self, req: Request) -> StreamResponse:
        # Resolve now so that an unknown container is a 404, not a 200 with an error body.
        container = self.svc.get(req.params["id"])
        condition = req.arg("condition", "not-running")
        waiting = asyncio.ensure_future(self.svc.wait(container.id, condition=condition))
        await asyncio.sleep(0)

        async def body() -> AsyncIterator[bytes]:
            try:
                code = await waiting
            except errors.DocklingError as exc:
                yield json.dumps({"StatusCode": -1, "Error": {"Message": exc.message}}).encode()
                return
            await self._streams_flushed(container.id)
            result: dict[str, Any] = {"StatusCode": code}
            error = container.state.error
            # A start failure reaches `run --rm` as the start's own error; for the removal
            # it waited on Docker reports no second one.
            if error and condition != "removed":
                result["Error"] = {"Message": error}
            yield json.dumps(result).encode() + b"\n"

        if waiting.done():
            failure = waiting.exception()
            if failure is not None:
                raise failure
        return StreamResponse(body())

    async def attach(self, req: Request) -> Hijack:
        container = self.svc.get(req.params["id"])
        if container.state.status is Status.PAUSED:
            raise errors.Conflict("You cannot attach to a paused container, unpause it first")
        if container.state.status in (Status.EXITED,) and container.spec.auto_remove:
            raise errors.Conflict("You cannot attach to a stopped container, start it first")
        stdin = req.flag("stdin")
        stdout = req.flag("stdout")
        stderr = req.flag("stderr")
        detach_keys = streams.parse_detach_keys(req.arg("detachKeys") or self.b.detach_keys)
        tty = container.spec.tty
        content_type = (
            "application/vnd.docker.raw-stream"
            if tty
            else "application/vnd.docker.multiplexed-stream"
        )

        # Registered before the 101 answer goes out: the client starts the container as
        # soon as it has that answer.
        reservation = self.svc.reserve_attach(
            container.id, stdin=stdin, stdout=stdout, stderr=stderr
        )

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # A client without stdin half-closes its side at once: that is not a hang-up,
            # so the attach waits for the start regardless.
            try:
                shim_reader, shim_writer = await self.svc.connect_attach(reservation)
            except BaseException:
                self.svc.cancel_attach(reservation)
                raise
            flushed = asyncio.Event()
            self._streaming.setdefault(container.id, set()).add(flushed)
            try:
                detached = await streams.pump(
                    reader,
                    writer,
                    shim_reader,
                    shim_writer,
                    tty=tty,
                    stdin=stdin,
                    detach_keys=detach_keys,
                )
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
            finally:
                flushed.set()
                waiting = self._streaming.get(container.id, set())
                waiting.discard(flushed)
                if not waiting:
                    self._streaming.pop(container.id, None)
            if detached:
                self.b.events.publish(
                    "container",
                    "detach",
                    container.id,
                    {"image": container.image_ref, "name": container.name},
                )
            writer.close()

        return Hijack(handle, content_type=content_type)

    async def _streams_flushed(self, container_id: str) -> None:
        """Return once the container's attach streams have sent all output (bounded)."""
        pending = [asyncio.create_task(e.wait()) for e in self._streaming.get(container_id, ())]
        if not pending:
            return
        _done, late = await asyncio.wait(pending, timeout=ATTACH_FLUSH_TIMEOUT)
        for task in late:
            task.cancel()

    async def logs(self, req: Request) -> StreamResponse:
        container = self.svc.get(req.params["id"])
        stdout = req.flag("stdout")
        stderr = req.flag("stderr")
        if not stdout and not stderr:
            raise errors.InvalidParameter("Bad parameters: you must choose at least one stream")
        if container.spec.log_config_type == "none":
            raise errors.NotImplementedFeature("configured logging driver does not support reading")
        tail_arg = req.arg("tail", "all")
        # Docker reads a tail that is not a number as "all".
        tail = int(tail_arg) if tail_arg.lstrip("-").isdigit() and int(tail_arg) >= 0 else None
        since = parse_timestamp(req.arg("since")) if req.arg("since") not in ("", "0") else None
        until = parse_timestamp(req.arg("until")) if req.arg("until") not in ("", "0") else None
        timestamps = req.flag("timestamps")
        follow = req.flag("follow")
        tty = container.spec.tty
        path = self.b.launcher.log_path(container.id)
        svc = self.svc

        def running() -> bool:
            return svc.is_running(container.id)

        async def body() -> AsyncIterator[bytes]:
            entries: Any
            if follow and running():
                entries = log_reader.follow_logs(
                    path,
                    tail=tail,
                    since=since,
                    until=until,
                    stdout=stdout,
                    stderr=stderr,
                    is_running=running,
                )
            else:
                entries = _aiter(
                    log_reader.read_logs(
                        path, tail=tail, since=since, until=until, stdout=stdout, stderr=stderr
                    )
                )
            async for entry in entries:
                data = entry.data
                if timestamps:
                    # docker prints them with all nine fraction digits (RFC3339NanoFixed)
                    data = _fixed_time(entry.time_ns).encode() + b" " + data
                stream = 2 if entry.stream == "stderr" else 1
                yield data if tty else streams.frame(stream, data)

        content_type = (
            "application/vnd.docker.raw-stream"
            if tty
            else "application/vnd.docker.multiplexed-stream"
        )
        return StreamResponse(body(), content_type=content_type)

    async def top(self, req: Request) -> Response:
        container = self.svc.get(req.params["id"])
        if not container.state.running:
            raise errors.ContainerNotRunning(f"Container {container.id} is not running")
        pids = await self.b.launcher.runtime_for(container).pids(container.id)
        titles, rows = await _ps(req.arg("ps_args") or "-ef", pids)
        return json_response({"Titles": titles, "Processes": rows})

    async def stats(self, req: Request) -> StreamResponse:
        container = self.svc.get(req.params["id"])
        stream = req.flag("stream", True) and not req.flag("one-shot")
        cgroup = f"/dockling/{container.id}"
        name = f"/{container.name}"

        async def body() -> AsyncIterator[bytes]:
            previous: dict[str, Any] | None = None
            while True:
                current = _sample(container, cgroup)
                current["name"] = name
                current["id"] = container.id
                current["precpu_stats"] = (previous or {}).get("cpu_stats", {"cpu_usage": {}})
                current["preread"] = (previous or {}).get("read", "0001-01-01T00:00:00Z")
                yield json.dumps(current).encode() + b"\n"
                if not stream:
                    return
                previous = current
                await asyncio.sleep(1)

        return StreamResponse(body())

    async def rename(self, req: Request) -> Response:
        name = req.arg("name")
        if not name:
            raise errors.InvalidParameter("Neither old nor new names may be empty")
        await self.svc.rename(req.params["id"], name)
        return _no_content()

    async def update(self, req: Request) -> Response:
        changes, restart = schema.update_from_body(await req.json() or {})
        warnings = await self.svc.update(req.params["id"], resources=changes, restart=restart)
        return json_response({"Warnings": warnings})

    async def pause(self, req: Request) -> Response:
        await self.svc.pause(req.params["id"])
        return _no_content()

    async def unpause(self, req: Request) -> Response:
        await self.svc.unpause(req.params["id"])
        return _no_content()

    async def resize(self, req: Request) -> Response:
        await self.svc.resize(
            req.params["id"], height=req.int_arg("h", 0), width=req.int_arg("w", 0)
        )
        return Response(status=200, body=b"", content_type="text/plain")

    async def delete(self, req: Request) -> Response:
        container = self.svc.get(req.params["id"])
        await self.svc.remove(container.id, force=req.flag("force"), volumes=req.flag("v"))
        self.b.execs.forget_container(container.id)
        return _no_content()


async def _aiter(items: Any) -> AsyncIterator[Any]:
    for item in items:
        yield item


def _sample(container: Container, cgroup: str) -> dict[str, Any]:
    if not container.state.running:
        return {
            "read": "0001-01-01T00:00:00Z",
            "pids_stats": {},
            "blkio_stats": {},
            "cpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
            "memory_stats": {},
            "networks": {},
        }
    data = read_stats(cgroup)
    data.setdefault("networks", {})
    return data


def _fixed_time(ns: int) -> str:
    """RFC 3339 UTC with nine fraction digits, as `docker logs -t` shows a log time."""
    whole, fraction = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{stamp}.{fraction:09d}Z"


def _on_network(container: Container, values: list[str], networks: NetworkService) -> bool:
    """Docker's `network` filter: a network the container is attached to, by exact name or
    by id prefix."""
    sandbox = networks.sandbox(container.id)
    if sandbox is None:
        return False
    for attachment in sandbox.attachments:
        try:
            network = networks.get(attachment.network_id)
        except errors.NotFound:
            continue
        if any(v == network.name or network.id.startswith(v) for v in values if v):
            return True
    return False


def _health_matches(health: HealthState | None, values: list[str]) -> bool:
    """Docker's `health` filter: starting, healthy, unhealthy, or none (no health check)."""
    for value in values:
        if value not in ("starting", "healthy", "unhealthy", "none"):
            raise errors.InvalidParameter(f"Unrecognised filter value for health: {value}")
    return (health.status if health is not None else "none") in values


def _matches(
    container: Container,
    filters: dict[str, list[str]],
    show_all: bool,
    networks: NetworkService | None,
) -> bool:
    for key, values in filters.items():
        if key == "network" and (networks is None or not _on_network(container, values, networks)):
            return False
        if key == "status" and container.state.status.value not in values:
            return False
        if key == "name" and not any(v.lstrip("/") in container.name for v in values):
            return False
        if key == "id" and not any(container.id.startswith(v) for v in values):
            return False
        if key == "label":
            for selector in values:
                k, sep, v = selector.partition("=")
                if k not in container.spec.labels:
                    return False
                if sep and container.spec.labels[k] != v:
                    return False
        if key == "exited" and (
            container.state.status is not Status.EXITED
            or str(container.state.exit_code) not in values
        ):
            return False
        if (
            key == "ancestor"
            and container.image_ref not in values
            and not any(
                container.image_id.startswith(v) or container.image_id == f"sha256:{v}"
                for v in values
            )
        ):
            return False
    # Without -a a filter still only sees running containers, unless it asks by status.
    return not (
        filters and not show_all and "status" not in filters and not container.state.running
    )


async def _ps(args: str, pids: list[int]) -> tuple[list[str], list[list[str]]]:
    proc = await asyncio.create_subprocess_exec(
        "ps",
        *args.split(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        # ps's first line says what was wrong; the usage text after it is noise here.
        first = next((line for line in err.decode().splitlines() if line.strip()), "failed")
        raise errors.InvalidParameter(f"ps: {first.strip()}")
    lines = out.decode(errors="replace").splitlines()
    if not lines:
        return [], []
    titles = lines[0].split()
    try:
        pid_col = titles.index("PID")
    except ValueError:
        raise errors.InvalidParameter("Couldn't find PID field in ps output") from None
    wanted = {str(p) for p in pids}
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > pid_col and fields[pid_col] in wanted:
            rows.append(fields)
    return titles, rows
