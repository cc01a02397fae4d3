"""docklingd: parse flags, take the data-root lock, restore state, serve the Engine API."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import grp
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from dockling import __version__, errors
from dockling.daemon import config as daemon_config
from dockling.daemon.config import DaemonConfig

log = logging.getLogger("docklingd")
ConnectionHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}


class DataRootLock:
    """An flock on DATA_ROOT/docklingd.lock: one daemon per data root."""

    def __init__(self, data_root: Path) -> None:
        self.path = data_root / "docklingd.lock"
        self.fd = -1

    def acquire(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(self.fd, 32).decode().strip() or "unknown"
            os.close(self.fd)
            raise errors.Conflict(
                f"another docklingd (pid {owner}) is already using data root "
                f"{self.path.parent}: stop it first, or start this one with another --data-root"
            ) from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())


def ensure_group(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        subprocess.run(["groupadd", "--system", name], check=True, capture_output=True)
        return grp.getgrnam(name).gr_gid


async def listen(host: str, handler: ConnectionHandler, group: str) -> asyncio.Server:
    url = urlsplit(host if "://" in host else f"unix://{host}")
    if url.scheme == "unix":
        path = url.path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if os.path.exists(path):
            probe = socket.socket(socket.AF_UNIX)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # stale socket of a daemon that died
            else:
                probe.close()
                raise errors.Conflict(f"{path} is in use by another daemon")
        server = await asyncio.start_unix_server(handler, path=path, limit=1 << 20)
        gid = ensure_group(group)
        os.chown(path, 0, gid)
        os.chmod(path, 0o660)
        return server
    if url.scheme == "tcp":
        return await asyncio.start_server(
            handler,
            host=url.hostname or "127.0.0.1",
            port=url.port or 2375,
            limit=1 << 20,
        )
    raise errors.InvalidParameter(f"unsupported host {host!r}: use unix:///path or tcp://host:port")


async def runtime_versions(config: DaemonConfig) -> dict[str, str]:
    from dockling.daemon.wiring import build_runtimes

    result = {}
    for name, runtime in build_runtimes(config).items():
        result[name] = await runtime.version()
    return result


async def serve(config: DaemonConfig) -> None:
    from dockling.daemon.wiring import build

    versions = await runtime_versions(config)
    server, backend = build(config, versions)
    await backend.containers.restore()
    servers = [await listen(h, server.serve_connection, config.group) for h in config.hosts]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("docklingd %s listening on %s", __version__, ", ".join(config.hosts))
    try:
        await stop.wait()
    finally:
        # Containers keep running (live restore): the next daemon adopts them.
        for srv in servers:
            srv.close()
        for host in config.hosts:
            url = urlsplit(host if "://" in host else f"unix://{host}")
            if url.scheme == "unix":
                with contextlib.suppress(OSError):
                    os.unlink(url.path)


def main(argv: list[str] | None = None) -> None:
    args = daemon_config.parse_args(argv)
    if args.version:
        print(f"docklingd version {__version__}")
        return
    try:
        config = daemon_config.load(args)
    except errors.DocklingError as exc:
        print(f"docklingd: {exc}", file=sys.stderr)
        sys.exit(1)
    logging.basicConfig(
        level=LOG_LEVELS.get(config.log_level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if os.geteuid() != 0:
        print("docklingd: must run as root (it mounts filesystems and runs runc)", file=sys.stderr)
        sys.exit(1)
    try:
        config.data_root.mkdir(parents=True, exist_ok=True)
        config.exec_root.mkdir(parents=True, exist_ok=True)
        lock = DataRootLock(config.data_root)
        lock.acquire()
        config.pid_path.write_text(f"{os.getpid()}\n")
        try:
            asyncio.run(serve(config))
        finally:
            with contextlib.suppress(OSError):
                config.pid_path.unlink()
    except errors.DocklingError as exc:
        print(f"docklingd: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
