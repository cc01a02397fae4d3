"""Running the registry: listen (optionally TLS), serve, shut down gracefully on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from dataclasses import dataclass
from pathlib import Path

from dockling import errors
from dockling.registry.access import AccessRules
from dockling.registry.app import RegistryApp
from dockling.registry.auth import (
    Authorizer,
    BasicAuth,
    OpenAccess,
    PasswordChecker,
    TokenAuth,
    TokenService,
    load_htpasswd,
)
from dockling.registry.http import STREAM_LIMIT, HttpServer
from dockling.registry.storage import RegistryStorage
from dockling.registry.token_keys import Key, load_keys
from dockling.registry.tokens import TokenSigner, generate_key

log = logging.getLogger(__name__)
SHUTDOWN_GRACE_SECONDS = 30.0
DEFAULT_UPLOAD_MAX_AGE = 7 * 24 * 3600.0  # Distribution's default: a week
MAX_PURGE_INTERVAL = 3600.0


@dataclass(frozen=True, slots=True)
class ServeOptions:
    root: Path
    host: str = "127.0.0.1"
    port: int = 5000
    htpasswd: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    read_only: bool = False
    auth: str = ""  # "none", "basic" or "token"; "" picks from the other options
    access: Path | None = None
    token_realm: str | None = None
    token_key: Path | None = None
    token_service: str = "dockling-registry"
    upload_max_age: float = DEFAULT_UPLOAD_MAX_AGE

    @property
    def auth_mode(self) -> str:
        if self.auth:
            return self.auth
        if self.token_realm is not None:
            return "token"
        return "basic" if self.htpasswd is not None else "none"


def parse_addr(addr: str) -> tuple[str, int]:
    """ "HOST:PORT" (or ":PORT", all interfaces) -> (host, port); InvalidParameter otherwise."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise errors.InvalidParameter(f"invalid --addr {addr!r}: expected HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def _authorizer(options: ServeOptions) -> tuple[Authorizer, TokenService | None]:
    """The authorizer for the mode asked for, and the token service when this server is one."""
    mode = options.auth_mode
    checker = PasswordChecker(load_htpasswd(options.htpasswd)) if options.htpasswd else None
    rules = AccessRules.load(options.access) if options.access is not None else None
    if mode == "none":
        if checker is not None or rules is not None:
            raise errors.InvalidParameter("--auth none takes no --htpasswd or --access")
        return OpenAccess(), None
    if mode == "basic":
        if checker is None:
            raise errors.InvalidParameter("--auth basic needs --htpasswd")
        return BasicAuth(checker, rules), None
    if mode != "token":
        raise errors.InvalidParameter(f"unknown --auth {mode!r}: none, basic or token")
    if rules is None and options.token_realm is None:
        raise errors.InvalidParameter(
            "--auth token needs --access (this server issues tokens) "
            "or --token-realm with --token-key (an outside token service)"
        )
    if options.token_key is not None:
        key: bytes | list[Key] = load_keys(options.token_key)
    elif options.token_realm is None:
        key = generate_key()  # combined mode: this process alone signs and verifies
    else:
        raise errors.InvalidParameter(
            "--token-realm needs --token-key (the shared secret or the service's certificates)"
        )
    signer = TokenSigner(key, options.token_service)
    if rules is not None and not signer.can_issue:
        raise errors.InvalidParameter(
            f"{options.token_key}: issuing tokens (--access) needs a secret or a private key, "
            "not only certificates"
        )
    service = TokenService(signer, rules, checker) if rules is not None else None
    return TokenAuth(signer, options.token_realm), service


def build_app(options: ServeOptions) -> RegistryApp:
    auth, token_service = _authorizer(options)
    storage = RegistryStorage(options.root)
    return RegistryApp(
        storage,
        auth,
        read_only=options.read_only,
        token_service=token_service,
        scheme="https" if options.tls_cert else "http",
    )


async def _purge_uploads(app: RegistryApp, max_age: float) -> None:
    """Purge stale upload sessions now and then every `max_age / 4` (at most hourly)."""
    interval = min(max(max_age / 4, 1.0), MAX_PURGE_INTERVAL)
    while True:
        purged = await asyncio.to_thread(app.uploads.purge_stale, max_age)
        if purged:
            log.info("purged %d stale upload session(s)", len(purged))
        await asyncio.sleep(interval)


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
    purger = asyncio.create_task(_purge_uploads(app, options.upload_max_age))
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
    purger.cancel()
    server.close()
    try:
        await asyncio.wait_for(http.idle.wait(), SHUTDOWN_GRACE_SECONDS)
    except TimeoutError:
        log.warning("requests still in flight after %.0fs; stopping", SHUTDOWN_GRACE_SECONDS)
