"""/containers/{id}/exec and /exec/* routes."""

from __future__ import annotations

import asyncio
import contextlib

from dockling import errors
from dockling.api import streams
from dockling.api.backend import Backend
from dockling.api.http import Hijack, Request, Response, Router, json_response
from dockling.containers.execs import ExecConfig, ExecSetupFailed


def register(router: Router, backend: Backend) -> None:
    routes = ExecRoutes(backend)
    router.add("POST", "/containers/{id}/exec", routes.create)
    router.add("POST", "/exec/{id}/start", routes.start)
    router.add("POST", "/exec/{id}/resize", routes.resize)
    router.add("GET", "/exec/{id}/json", routes.inspect)


def _strs(value: object, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise errors.InvalidParameter(f"{field} must be a list of strings")


class ExecRoutes:
    def __init__(self, backend: Backend) -> None:
        self.b = backend

    async def create(self, req: Request) -> Response:
        body = await req.json() or {}
        config = ExecConfig(
            cmd=_strs(body.get("Cmd"), "Cmd"),
            tty=bool(body.get("Tty")),
            attach_stdin=bool(body.get("AttachStdin")),
            attach_stdout=bool(body.get("AttachStdout", True)),
            attach_stderr=bool(body.get("AttachStderr", True)),
            env=_strs(body.get("Env"), "Env"),
            user=body.get("User") or "",
            working_dir=body.get("WorkingDir") or "",
            privileged=bool(body.get("Privileged")),
            detach_keys=body.get("DetachKeys") or "",
        )
        instance = self.b.execs.create(req.params["id"], config)
        return json_response({"Id": instance.id}, status=201)

    async def start(self, req: Request) -> Response | Hijack:
        body = await req.json() or {}
        execs = self.b.execs
        try:
            instance, container = await execs.prepare(req.params["id"])
        except ExecSetupFailed as exc:
            if body.get("Detach"):
                raise
            return _failed_on_stream(exc.message, tty=bool(body.get("Tty")))
        if body.get("Detach"):
            await execs.begin(instance, container)
            return Response(status=200, body=b"", content_type="text/plain")
        config = instance.config
        tty = config.tty
        keys = streams.parse_detach_keys(config.detach_keys or self.b.detach_keys)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            from dockling.runtime import shim

            shim_reader, shim_writer = await shim.attach(
                execs.state_dir(instance.id),
                stdin=config.attach_stdin,
                stdout=config.attach_stdout,
                stderr=config.attach_stderr,
                close_stdin=config.attach_stdin and not tty,
            )
            try:
                await execs.begin(instance, container)
            except errors.DocklingError as exc:
                # dockerd's text ends with containerd's gRPC code, "unknown"
                message = f"OCI runtime exec failed: {exc.message}: unknown\r\n".encode()
                writer.write(message if tty else streams.frame(1, message))  # as dockerd
                shim_writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
                writer.close()
                return
            await streams.pump(
                reader,
                writer,
                shim_reader,
                shim_writer,
                tty=tty,
                stdin=config.attach_stdin,
                detach_keys=keys,
            )
            # The client reads the exit code right after the stream ends: record it first.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(instance.done.wait(), 10)
            writer.close()

        content_type = (
            "application/vnd.docker.raw-stream"
            if tty
            else "application/vnd.docker.multiplexed-stream"
        )
        return Hijack(handle, content_type=content_type)

    async def resize(self, req: Request) -> Response:
        await self.b.execs.resize(
            req.params["id"], height=req.int_arg("h", 0), width=req.int_arg("w", 0)
        )
        return Response(status=200, body=b"", content_type="text/plain")

    async def inspect(self, req: Request) -> Response:
        instance = self.b.execs.get(req.params["id"])
        config = instance.config
        return json_response(
            {
                "ID": instance.id,
                "Running": instance.running,
                "ExitCode": instance.exit_code,
                "ProcessConfig": {
                    "tty": config.tty,
                    "entrypoint": config.cmd[0],
                    "arguments": list(config.cmd[1:]),
                    "privileged": config.privileged,
                    "user": config.user,
                },
                "OpenStdin": config.attach_stdin,
                "OpenStderr": config.attach_stderr,
                "OpenStdout": config.attach_stdout,
                "CanRemove": False,
                "ContainerID": instance.container_id,
                "DetachKeys": config.detach_keys,
                "Pid": instance.pid,
            }
        )


def _failed_on_stream(message: str, *, tty: bool) -> Hijack:
    """An exec that cannot start: the message on its stream (stdout, as dockerd writes it)
    and the connection closed; the client then reads exit code 126."""

    async def handle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = f"{message}\r\n".encode()
        writer.write(data if tty else streams.frame(1, data))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    content_type = (
        "application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream"
    )
    return Hijack(handle, content_type)
