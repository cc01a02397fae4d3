"""`dockling run` and `dockling create`: create (pulling if needed), attach, start, wait."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading

from dockling.cli.commands.create_options import (
    CreateOptionError,
    add_container_flags,
    build_create,
)
from dockling.cli.context import CLIError, Context
from dockling.cli.flags import PROG, FlagSet
from dockling.client.api import EngineClient
from dockling.client.transport import (
    APIError,
    DaemonUnreachable,
    ProtocolError,
    Transport,
    quote_ref,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every CLI start a few ms: annotations only
    from typing import Any


def _flagset(display: str, *, run: bool) -> FlagSet:
    fs = FlagSet(
        display,
        "[OPTIONS] IMAGE [COMMAND] [ARG...]",
        "Create and run a new container from an image" if run else "Create a new container",
        interspersed=False,
        min_args=1,
    )
    add_container_flags(fs, run=run)
    return fs


def _fail(display: str, message: str, code: int = 125) -> CLIError:
    """docker's run/create error shape: `docker: MSG` plus the help hint."""
    return CLIError(
        f"{PROG}: {message}\n\nRun '{PROG} {display} --help' for more information", code
    )


def start_error_code(message: str) -> int:
    """Docker's exit code for a failed start: 127 not found, 126 not executable, else 125."""
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return 127
    if "permission denied" in lowered or "not executable" in lowered:
        return 126
    return 125


def split_reference(image: str) -> tuple[str, str | None]:
    """(repository, tag) of an image reference, tag defaulting to latest (digests kept)."""
    if "@" in image:
        return image, None
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1 :]
    return image, "latest"


def pull_image(client: EngineClient, image: str, platform: str | None, quiet: bool) -> None:
    """Pull `image`, printing docker-like status lines on stderr; errors raise APIError."""
    repo, tag = split_reference(image)
    for event in client.pull(repo, tag, platform=platform):
        if not isinstance(event, dict):
            continue
        if event.get("error"):
            message = event.get("errorDetail", {}).get("message") or event["error"]
            raise APIError(500, str(message))
        if quiet:
            continue
        status = event.get("status")
        if status and not event.get("progressDetail"):
            ident = event.get("id")
            sys.stderr.write(f"{ident}: {status}\n" if ident else f"{status}\n")


def _create(
    ctx: Context, display: str, values: dict[str, Any], body: dict[str, Any], image: str
) -> str:
    """Create the container, pulling the image once if the daemon lacks it."""
    client = ctx.client
    name = values["name"]
    try:
        if values["pull"] == "always":
            pull_image(client, image, values["platform"], bool(values.get("quiet")))
        try:
            created = client.create_container(body, name=name)
        except APIError as exc:
            if exc.status != 404 or values["pull"] == "never" or "image" not in exc.message.lower():
                raise
            repo, tag = split_reference(image)
            shown = f"{repo}:{tag}" if tag else repo
            sys.stderr.write(f"Unable to find image '{shown}' locally\n")
            pull_image(client, image, values["platform"], bool(values.get("quiet")))
            created = client.create_container(body, name=name)
    except APIError as exc:
        if not display.endswith("run"):
            # docker 28's create reports a daemon refusal plainly, with exit code 1
            raise CLIError(f"Error response from daemon: {exc.message}", 1) from None
        raise _fail(display, f"Error response from daemon: {exc.message}") from None
    except DaemonUnreachable as exc:
        raise _fail(display, str(exc)) from None
    for warning in created.get("Warnings") or []:
        sys.stderr.write(f"WARNING: {warning}\n")
    container_id: str = created["Id"]
    if values["cidfile"]:
        with open(values["cidfile"], "w", encoding="utf-8") as handle:
            handle.write(container_id)
    return container_id


def _parse(display: str, args: list[str], *, run: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    fs = _flagset(display, run=run)
    values, positionals = fs.parse(args)
    try:
        body = build_create(values, positionals, run=run)
    except CreateOptionError as exc:
        raise _fail(display, str(exc)) from None
    except ValueError as exc:
        raise _fail(display, str(exc)) from None
    return values, body


def cmd_create(ctx: Context, args: list[str], display: str) -> int:
    """docker create: print the new container's full id."""
    values, body = _parse(display, args, run=False)
    container_id = _create(ctx, display, values, body, body["Image"])
    sys.stdout.write(container_id + "\n")
    return 0


class _Waiter(threading.Thread):
    """Reads the answer of a POST /wait sent before start: the exit status."""

    def __init__(self, transport: Transport, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.transport = transport
        self.sock = sock
        self.status: int | None = None
        self.error: str | None = None

    def run(self) -> None:
        try:
            resp = self.transport.receive(self.sock)
            doc = json.loads(resp.read() or b"{}")
            resp.close()
            self.status = int(doc.get("StatusCode", 0))
            err = doc.get("Error") or {}
            if isinstance(err, dict) and err.get("Message"):
                self.error = str(err["Message"])
        except APIError as exc:
            self.error = exc.message
        except (OSError, ValueError, ProtocolError) as exc:
            self.error = str(exc)


def _send_wait(ctx: Context, container_id: str, condition: str) -> _Waiter:
    """Send POST /wait now (so it is registered before start) and read it in a thread."""
    transport = ctx.client.transport
    sock = transport.send(
        "POST", f"/containers/{quote_ref(container_id)}/wait", query={"condition": condition}
    )
    waiter = _Waiter(transport, sock)
    waiter.start()
    return waiter


def _forward_signals(ctx: Context, container_id: str) -> None:
    """--sig-proxy: relay SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/2 to the container."""

    def relay(signum: int, _frame: Any) -> None:
        try:
            ctx.client.kill(container_id, signal=signal.Signals(signum).name)
        except (APIError, DaemonUnreachable, OSError):
            pass

    for sig in (
        signal.SIGINT,
        signal.SIGTERM,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
    ):
        signal.signal(sig, relay)


def cmd_run(ctx: Context, args: list[str], display: str) -> int:
    """docker run: the container's exit code, or 125/126/127 for failures to run it."""
    values, body = _parse(display, args, run=True)
    detach = bool(values["detach"])
    tty = bool(values["tty"])
    interactive = bool(values["interactive"])
    if tty and interactive and not os.isatty(0):
        raise CLIError("the input device is not a TTY", 1)
    container_id = _create(ctx, display, values, body, body["Image"])
    client = ctx.client

    if detach:
        try:
            client.start(container_id)
        except APIError as exc:
            raise _fail(
                display, f"Error response from daemon: {exc.message}", start_error_code(exc.message)
            ) from None
        sys.stdout.write(container_id + "\n")
        return 0

    from dockling.cli.commands.streams import pump, raw_terminal, watch_resize

    query: dict[str, str | int | bool | None] = {
        "stream": True,
        "stdin": bool(body["AttachStdin"]),
        "stdout": bool(body["AttachStdout"]),
        "stderr": bool(body["AttachStderr"]),
        "detachKeys": values["detach_keys"],
    }
    try:
        stream = client.attach(container_id, query)
        condition = "removed" if values["rm"] else "next-exit"
        waiter = _send_wait(ctx, container_id, condition)
    except APIError as exc:
        raise _fail(display, f"Error response from daemon: {exc.message}") from None

    with raw_terminal(0, tty and interactive):
        try:
            client.start(container_id)
        except APIError as exc:
            stream.close()
            raise _fail(
                display, f"Error response from daemon: {exc.message}", start_error_code(exc.message)
            ) from None
        if tty:
            watch_resize(lambda h, w: client.resize(container_id, height=h, width=w))
        elif values["sig_proxy"]:
            _forward_signals(ctx, container_id)
        detached = pump(
            stream, tty=tty, stdin=bool(body["AttachStdin"]), detach_keys=values["detach_keys"]
        )
    if detached:
        return 0  # docker 28's run says nothing on a detach
    waiter.join()
    if waiter.status is None:
        if waiter.error:
            raise CLIError(f"Error response from daemon: {waiter.error}", 125)
        return 125
    return waiter.status
