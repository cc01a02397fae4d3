"""`dockling exec` and `dockling attach`: hijacked streams into a running container."""

from __future__ import annotations

import contextlib
import json
import os
import sys

from dockling.cli.context import CLIError, Context
from dockling.cli.flags import FlagSet
from dockling.client.transport import APIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every CLI start a few ms: annotations only
    from typing import Any


def exec_body(values: dict[str, Any], command: list[str]) -> dict[str, Any]:
    """The POST /containers/{id}/exec body for parsed exec flags."""
    from dockling.cli.commands.create_options import environment

    env = environment(values)
    detach = bool(values["detach"])
    body: dict[str, Any] = {
        "User": values["user"] or "",
        "Privileged": bool(values["privileged"]),
        "Tty": bool(values["tty"]),
        "AttachStdin": bool(values["interactive"]) and not detach,
        "AttachStdout": not detach,
        "AttachStderr": not detach,
        "Env": env or None,
        "WorkingDir": values["workdir"] or "",
        "Cmd": command,
    }
    if values["detach_keys"]:
        body["DetachKeys"] = values["detach_keys"]
    return body


def cmd_exec(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display,
        "[OPTIONS] CONTAINER COMMAND [ARG...]",
        "Execute a command in a running container",
        interspersed=False,
        min_args=2,
    )
    fs.bool("detach", "d", "Detached mode: run command in the background")
    fs.value("detach-keys", None, "Override the key sequence for detaching a container")
    fs.list("env", "e", "Set environment variables")
    fs.list("env-file", None, "Read in a file of environment variables")
    fs.bool("interactive", "i", "Keep STDIN open even if not attached")
    fs.bool("privileged", None, "Give extended privileges to the command")
    fs.bool("tty", "t", "Allocate a pseudo-TTY")
    fs.value("user", "u", 'Username or UID (format: "<name|uid>[:<group|gid>]")')
    fs.value("workdir", "w", "Working directory inside the container")
    values, rest = fs.parse(args)
    ref, command = rest[0], rest[1:]
    from dockling.cli.commands.create_options import CreateOptionError

    try:
        body = exec_body(values, command)
    except CreateOptionError as exc:
        raise CLIError(str(exc), 125) from None
    tty = bool(values["tty"])
    stdin = bool(body["AttachStdin"])
    if tty and stdin and not os.isatty(0):
        raise CLIError("the input device is not a TTY", 1)
    client = ctx.client
    exec_id = client.exec_create(ref, body)["Id"]
    if values["detach"]:
        client.exec_start_detached(exec_id)
        return 0

    from dockling.cli.commands.streams import pump, raw_terminal, watch_resize

    try:
        stream = client.exec_start_hijacked(exec_id, tty=tty)
    except APIError as exc:
        from dockling.cli.commands.run import start_error_code

        code = start_error_code(exc.message)
        raise CLIError(
            f"Error response from daemon: {exc.message}", 1 if code == 125 else code
        ) from None
    with raw_terminal(0, tty and stdin):
        if tty:
            watch_resize(lambda h, w: client.resize(exec_id, height=h, width=w, exec_id=True))
        detached = pump(stream, tty=tty, stdin=stdin, detach_keys=values["detach_keys"])
    if detached:
        # docker 28: exec and attach report the detach as an error (exit 1); run and
        # start -a leave quietly.
        sys.stderr.write("read escape sequence\n")
        return 1
    info = client.exec_inspect(exec_id)
    code = info.get("ExitCode")
    # The exit code lands a moment after the stream ends; poll briefly for it.
    if info.get("Running") or code is None:
        import time

        for _ in range(100):
            time.sleep(0.02)
            info = client.exec_inspect(exec_id)
            if not info.get("Running") and info.get("ExitCode") is not None:
                break
        code = info.get("ExitCode")
    return int(code or 0)


def cmd_attach(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display,
        "[OPTIONS] CONTAINER",
        "Attach local standard input, output, and error streams to a running container",
        min_args=1,
        exact_args=True,
    )
    fs.value("detach-keys", None, "Override the key sequence for detaching a container")
    fs.bool("no-stdin", None, "Do not attach STDIN")
    fs.bool("sig-proxy", None, "Proxy all received signals to the process", default=True)
    values, (ref,) = fs.parse(args)
    client = ctx.client
    info = client.inspect_container(ref)
    state = info.get("State") or {}
    if not state.get("Running"):
        raise CLIError("You cannot attach to a stopped container, start it first", 1)
    if state.get("Paused"):
        raise CLIError("You cannot attach to a paused container, unpause it first", 1)
    container_id = info["Id"]
    config = info.get("Config") or {}
    tty = bool(config.get("Tty"))
    stdin = bool(config.get("OpenStdin")) and not values["no_stdin"]
    if tty and stdin and not os.isatty(0):
        raise CLIError("the input device is not a TTY", 1)
    from dockling.cli.commands.streams import pump, raw_terminal, terminal_size, watch_resize

    stream = client.attach(
        container_id,
        {
            "stream": True,
            "stdin": stdin,
            "stdout": True,
            "stderr": True,
            "detachKeys": values["detach_keys"],
        },
    )
    with raw_terminal(0, tty and stdin):
        if tty:
            # A shell redraws its prompt on a size change: one size bigger first, then the
            # real one, so a second attach shows the prompt without a keypress (as docker).
            size = terminal_size()
            if size is not None:
                with contextlib.suppress(APIError):
                    client.resize(container_id, height=size[0] + 1, width=size[1] + 1)
            watch_resize(lambda h, w: client.resize(container_id, height=h, width=w))
        elif values["sig_proxy"]:
            from dockling.cli.commands.run import _forward_signals

            _forward_signals(ctx, container_id)
        detached = pump(stream, tty=tty, stdin=stdin, detach_keys=values["detach_keys"])
    if detached:
        sys.stderr.write("read escape sequence\n")
        return 1
    resp = client.wait_response(container_id, condition="not-running")
    doc = json.loads(resp.read() or b"{}")
    return int(doc.get("StatusCode", 0))
