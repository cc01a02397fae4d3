"""Client of dockling-shim, the small C monitor that holds each container's stdio.

One shim runs per container (and per exec'd process) in its own session, so
containers outlive the daemon.  It serves one unix socket, STATE/attach.sock,
where a client sends one command line:

    attach STDIN STDOUT STDERR CLOSE_STDIN   then Docker's multiplexed frames out, raw stdin in
    resize ROWS COLS                         -> "ok"
    start                                    -> "ok PID" | "error MESSAGE"   (exec mode)
    wait                                     -> "exit CODE FINISHED_AT" once the process exited
    ping                                     -> "ok"

When the process has exited the shim writes STATE/exit ("CODE FINISHED_AT") and
goes away; `read_exit` reads that file after a daemon restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from dockling.errors import RuntimeStartError, SystemError, Unavailable

ATTACH_SOCKET = "attach.sock"
EXIT_FILE = "exit"
SHIM_PID_FILE = "shim.pid"
SHIM_NAME = "dockling-shim"
_SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How a process ended: its code (128+signal when killed) and RFC 3339 UTC end time."""

    code: int
    finished_at: str


@dataclass(frozen=True, slots=True)
class ShimOptions:
    """Everything one shim needs; `exec_process` (a process.json path) selects exec mode."""

    shim_binary: str
    runtime_binary: str
    runtime_root: str
    container_id: str
    bundle: str
    state_dir: str
    tty: bool = False
    stdin: bool = False
    log_path: str = ""
    log_max_size: int = 0
    log_max_files: int = 1
    exec_process: str = ""


def _start_error(message: str) -> RuntimeStartError:
    """The runtime's message as the error whose kind picks Docker's exit code (127/126/125)."""
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        kind = "not-found"
    elif "permission denied" in lowered:
        kind = "not-executable"
    else:
        kind = "other"
    return RuntimeStartError(message, kind=kind)


def _command_line(opts: ShimOptions) -> list[str]:
    args = [
        opts.shim_binary,
        "--runtime",
        opts.runtime_binary,
        "--runtime-root",
        opts.runtime_root,
        "--id",
        opts.container_id,
        "--bundle",
        opts.bundle,
        "--state-dir",
        opts.state_dir,
    ]
    if opts.tty:
        args.append("--tty")
    if opts.stdin:
        args.append("--stdin")
    if opts.exec_process:
        args += ["--exec", opts.exec_process]
    elif opts.log_path:
        args += ["--log", opts.log_path]
        if opts.log_max_size > 0:
            args += ["--log-max-size", str(opts.log_max_size)]
            args += ["--log-max-files", str(max(1, opts.log_max_files))]
    return args


async def launch(opts: ShimOptions) -> int:
    """Start a shim for `opts` and return the pid it reports.

    Container mode: the container is created (runc state "created", not started)
    and the pid is its init's.  Exec mode: nothing runs yet (see `start_exec`) and
    the pid is the shim's.  On failure the shim has cleaned up after itself and
    this raises RuntimeStartError with the runtime's message.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *_command_line(opts),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as e:
        raise Unavailable(f"cannot run the shim {opts.shim_binary}: {e.strerror}") from e
    out, err = await proc.communicate()
    line = out.decode(errors="replace").strip()
    if line.startswith("ok "):
        try:
            return int(line[3:])
        except ValueError:
            pass
    if line.startswith("error "):
        raise _start_error(line[6:])
    detail = line or err.decode(errors="replace").strip() or f"exit status {proc.returncode}"
    raise SystemError(f"dockling-shim for {opts.container_id} failed: {detail}")


def _connect(state_dir: str) -> socket.socket:
    """A connected, non-blocking socket to the shim of `state_dir` (long paths included)."""
    path = os.path.join(state_dir, ATTACH_SOCKET)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if len(os.fsencode(path)) <= _SUN_PATH_MAX:
            sock.connect(path)
        else:
            # The shim bound a relative name; reach it through a short /proc alias.
            dir_fd = os.open(state_dir, os.O_PATH | os.O_DIRECTORY)
            try:
                sock.connect(f"/proc/self/fd/{dir_fd}/{ATTACH_SOCKET}")
            finally:
                os.close(dir_fd)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


async def _open(state_dir: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        sock = _connect(state_dir)
    except OSError as e:
        raise Unavailable(f"the shim of {state_dir} is not reachable: {e.strerror}") from e
    return await asyncio.open_unix_connection(sock=sock)


async def _request(state_dir: str, command: str) -> str:
    """Send one command, return the shim's one-line answer ("" if it closed without one)."""
    reader, writer = await _open(state_dir)
    try:
        writer.write(command.encode() + b"\n")
        await writer.drain()
        return (await reader.readline()).decode(errors="replace").strip()
    except OSError:
        # The shim exited between our connect and its accept: no answer.
        return ""
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def start_exec(state_dir: str) -> int:
    """Start the exec'd process of an exec-mode shim; return its pid or raise RuntimeStartError."""
    answer = await _request(state_dir, "start")
    if answer.startswith("ok "):
        return int(answer[3:])
    if answer.startswith("error "):
        raise _start_error(answer[6:])
    raise SystemError(f"the shim of {state_dir} gave no answer to start")


def _parse_exit(text: str) -> ExitStatus | None:
    parts = text.split()
    if len(parts) != 2:
        return None
    try:
        return ExitStatus(code=int(parts[0]), finished_at=parts[1])
    except ValueError:
        return None


def read_exit(state_dir: str) -> ExitStatus | None:
    """The recorded exit of the process, or None while it has not exited (or never ran)."""
    try:
        text = Path(state_dir, EXIT_FILE).read_text()
    except FileNotFoundError:
        return None
    return _parse_exit(text)


async def wait_exit(state_dir: str) -> ExitStatus:
    """Wait until the process exits and return how it ended.

    Works whether the shim is still running (asks it) or already gone (reads
    STATE/exit); raises SystemError when neither tells anything.
    """
    try:
        answer = await _request(state_dir, "wait")
    except Unavailable:
        answer = ""
    if answer.startswith("exit "):
        status = _parse_exit(answer[5:])
        if status is not None:
            return status
    status = read_exit(state_dir)
    if status is None:
        raise SystemError(f"the shim of {state_dir} is gone and recorded no exit status")
    return status


async def attach(
    state_dir: str, *, stdin: bool, stdout: bool, stderr: bool, close_stdin: bool
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Attach to the container's stdio.

    The reader yields Docker's multiplexed frames (8-byte header: stream, 0, 0, 0,
    big-endian length; with a tty everything is stream 1) of the streams asked
    for, and ends when the process has exited.  Bytes written go to stdin; with
    `close_stdin`, closing the writer (or write_eof) closes the container's stdin.
    """
    reader, writer = await _open(state_dir)
    flags = " ".join("1" if f else "0" for f in (stdin, stdout, stderr, close_stdin))
    writer.write(f"attach {flags}\n".encode())
    await writer.drain()
    # Wait for the shim to register us: only then is no output produced after this lost.
    ack = await reader.readline()
    if ack != b"ok\n":
        writer.close()
        raise Unavailable(f"the monitor of {state_dir} refused the attach: {ack!r}")
    return reader, writer


async def resize(state_dir: str, rows: int, cols: int) -> None:
    """Set the window size of the container's tty (a no-op without one)."""
    answer = await _request(state_dir, f"resize {int(rows)} {int(cols)}")
    if answer != "ok":
        raise SystemError(f"resize of {state_dir} failed: {answer or 'no answer'}")


def shim_alive(state_dir: str) -> bool:
    """True if STATE/shim.pid names a live process that is a dockling-shim."""
    try:
        pid = int(Path(state_dir, SHIM_PID_FILE).read_text().strip())
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except (OSError, ValueError):
        return False
    return os.path.basename(argv0.decode(errors="replace")) == SHIM_NAME


def find_shim_binary() -> str:
    """Path of the dockling-shim binary.

    Looks at $DOCKLING_SHIM, then next to the interpreter (a venv's bin), then
    PATH, then the source tree's shim/ (built with `make -C shim`).
    """
    env = os.environ.get("DOCKLING_SHIM")
    if env:
        if os.access(env, os.X_OK):
            return env
        raise Unavailable(f"DOCKLING_SHIM={env} is not an executable file")
    candidates = [os.path.join(os.path.dirname(sys.executable), SHIM_NAME)]
    on_path = shutil.which(SHIM_NAME)
    if on_path:
        candidates.append(on_path)
    candidates.append(str(Path(__file__).resolve().parents[3] / "shim" / SHIM_NAME))
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise Unavailable(
        "dockling-shim not found: build it with `make -C shim` in the source tree, "
        "put it on PATH, or set DOCKLING_SHIM to its path"
    )
