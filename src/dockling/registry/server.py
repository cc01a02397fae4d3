"""Running the registry: listen (optionally TLS), serve, shut down gracefully on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from dataclasses import dataclass
from pathlib import Path

from dockling import errors
from dockling.registry.app import RegistryApp
from dockling.registry.auth import Authenticator, load_htpasswd
from dockling.registry.http import STREAM_LIMIT, HttpServer
from dockling.registry.storage import RegistryStorage

log = logging.getLogger(__name__)
SHUTDOWN_GRACE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class ServeOptions:
    root: Path
    host: str = "127.0.0.1"
    port: int = 5000
    htpasswd: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    read_only: bool = False


def parse_addr(addr: str) -> tuple[str, int]:
    """ "HOST:PORT" (or ":PORT", all interfaces) -> (host, port); InvalidParameter otherwise."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise errors.InvalidParameter(f"invalid --addr {addr!r}: expected HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def build_app(options: ServeOptions) -> RegistryApp:
    users = load_htpasswd(options.htpasswd) if options.htpasswd is not None else None
    storage = RegistryStorage(options.root)
    return RegistryApp(storage, Authenticator(users), read_only=options.read_only)


def _tls_context(options: ServeOptions) -> ssl.SSLContext | None:
    if options.tls_cert is None and options.tls_key is None:
        return None
    if options.tls_cert is None or options.tls_key is None:
        raise errors.InvalidParameter("--tls-cert and --tls-key go together")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(options.tls_cert, options.tls_key)
    return ctx


async def serve(options: ServeOptions, *, ready: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then let requests in flight finish (up to a grace period)."""
    app = build_app(options)
    http = HttpServer(app.handle, app.error_response, server_header="dockling-registry")
    server = await asyncio.start_server(
        http.serve_connection,
        options.host,
        options.port,
        ssl=_tls_context(options),
        limit=STREAM_LIMIT,
        reuse_address=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    scheme = "https" if options.tls_cert else "http"
    log.info("listening on %s://%s:%d, root %s", scheme, options.host, options.port, options.root)
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("shutting down: waiting for %d request(s) in flight", http.in_flight)
    # Stop listening and stop reading new requests on kept-alive connections; idle connections
    # are cancelled when the loop ends.
    http.closing = True
    server.close()
    try:
        await asyncio.wait_for(http.idle.wait(), SHUTDOWN_GRACE_SECONDS)
    except TimeoutError:
        log.warning("requests still in flight after %.0fs; stopping", SHUTDOWN_GRACE_SECONDS)
