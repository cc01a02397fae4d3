"""HTTP to one registry (standard library `http.client`, called from worker threads).

`RegistryClient.request` picks the endpoint (mirrors, HTTPS, HTTP fallback for insecure
registries), answers auth challenges through `AuthFlow`, follows redirects and turns
registry error bodies into dockling errors.  Responses stream: nothing buffers a blob.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

from dockling import errors
from dockling.distribution.auth import AuthFlow, Credentials, TokenRequest
from dockling.distribution.settings import (
    Endpoint,
    RegistrySettings,
    endpoints,
    is_insecure,
    proxy_for,
    tls_context,
)

log = logging.getLogger(__name__)

TIMEOUT = 60.0
_MAX_REDIRECTS = 5
_MAX_ERROR_BODY = 64 * 1024
USER_AGENT = "dockling/0.1 (distribution client)"


class Response:
    """An open answer; read the body with `read`, then `close` (also a context manager)."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, url: str):
        self._conn = conn
        self._resp = resp
        self.status = resp.status
        self.url = url

    def header(self, name: str, default: str = "") -> str:
        return self._resp.getheader(name, default) or default

    def read(self, size: int = -1) -> bytes:
        return self._resp.read(size) if size >= 0 else self._resp.read()

    def read_limited(self, limit: int) -> bytes:
        """The whole body, refused with DataCorrupted when longer than `limit`."""
        data = self._resp.read(limit + 1)
        if len(data) > limit:
            raise errors.DataCorrupted(f"response from {self.url} is larger than {limit} bytes")
        return data

    def close(self) -> None:
        self._resp.close()
        self._conn.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class RegistryError:
    status: int
    code: str
    message: str


def registry_error(resp: Response) -> RegistryError:
    """The first error of a registry's JSON error body (or the HTTP reason)."""
    try:
        data = json.loads(resp.read_limited(_MAX_ERROR_BODY) or b"{}")
        first = (data.get("errors") or [{}])[0]
        return RegistryError(resp.status, str(first.get("code", "")), str(first.get("message", "")))
    except (ValueError, AttributeError, IndexError, errors.DataCorrupted, OSError):
        return RegistryError(resp.status, "", http.client.responses.get(resp.status, ""))


def _connection(
    settings: RegistrySettings, endpoint: Endpoint, timeout: float
) -> tuple[http.client.HTTPConnection, bool]:
    """A connection for `endpoint` (through the proxy if one applies); True if via an HTTP proxy."""
    proxy = proxy_for(settings, endpoint)
    if proxy is not None:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        proxy_host, proxy_port = parts.hostname or "", parts.port or 80
        if endpoint.scheme == "https":
            # CONNECT through the proxy, then TLS to the registry inside the tunnel.
            tunnel = http.client.HTTPSConnection(
                proxy_host, proxy_port, timeout=timeout, context=tls_context(settings, endpoint)
            )
            tunnel.set_tunnel(endpoint.host, endpoint.port)
            return tunnel, False
        return http.client.HTTPConnection(proxy_host, proxy_port, timeout=timeout), True
    if endpoint.scheme == "https":
        return (
            http.client.HTTPSConnection(
                endpoint.host,
                endpoint.port,
                timeout=timeout,
                context=tls_context(settings, endpoint),
            ),
            False,
        )
    return http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=timeout), False


def _endpoint_of_url(settings: RegistrySettings, url: str) -> tuple[Endpoint, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.Unavailable(f"unsupported URL {url!r}")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return (
        Endpoint(parts.scheme, parts.netloc, verify_tls=not is_insecure(settings, parts.netloc)),
        target,
    )


def _send(
    settings: RegistrySettings,
    endpoint: Endpoint,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes | BinaryIO | None,
    timeout: float,
) -> Response:
    conn, absolute = _connection(settings, endpoint, timeout)
    url = f"{endpoint.scheme}://{endpoint.netloc}{target}"
    try:
        conn.request(method, url if absolute else target, body=body, headers=dict(headers))
        resp = conn.getresponse()
    except BaseException:
        conn.close()
        raise
    return Response(conn, resp, url)


class RegistryClient:
    """Requests to one registry (a reference's domain) with one set of credentials."""

    def __init__(
        self,
        settings: RegistrySettings,
        domain: str,
        credentials: Credentials | None = None,
        *,
        for_push: bool = False,
        timeout: float = TIMEOUT,
    ) -> None:
        self.settings = settings
        self.domain = domain
        self.timeout = timeout
        self._endpoints = endpoints(settings, domain, for_push=for_push)
        self._auth = AuthFlow(credentials)
        self._preferred = 0
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint that answered last (the first candidate before any request)."""
        return self._endpoints[self._preferred]

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | BinaryIO | None = None,
        fallback_statuses: tuple[int, ...] = (),
    ) -> Response:
        """Send `method path` (path starts with /v2/); return the final answer, any status.

        Connection failures move on to the next endpoint; so does a mirror's error
        status or one in `fallback_statuses`.  Unavailable names the last failure.
        """
        with self._lock:
            start = self._preferred
        order = list(range(start, len(self._endpoints))) + list(range(start))
        last_error: BaseException | None = None
        for index in order:
            endpoint = self._endpoints[index]
            try:
                resp = self._request_on(endpoint, method, path, scope, headers or {}, body)
            except (OSError, http.client.HTTPException) as exc:
                log.debug("registry %s: %s %s failed: %s", endpoint.base_url, method, path, exc)
                last_error = exc
                if hasattr(body, "seek"):
                    body.seek(0)  # type: ignore[union-attr]
                continue
            more = index != order[-1]
            if more and (
                (endpoint.mirror and resp.status >= 400) or resp.status in fallback_statuses
            ):
                resp.close()
                continue
            with self._lock:
                self._preferred = index
            return resp
        first = self._endpoints[order[-1]]
        raise errors.Unavailable(
            f'{method} "{first.base_url}{path}": {_describe(last_error)}'
        ) from last_error

    def _request_on(
        self,
        endpoint: Endpoint,
        method: str,
        path: str,
        scope: str,
        headers: Mapping[str, str],
        body: bytes | BinaryIO | None,
    ) -> Response:
        target = endpoint.path_prefix + path
        for _attempt in range(3):
            sent = {"User-Agent": USER_AGENT, **headers}
            authorization = self._auth.authorization(scope)
            if authorization:
                sent["Authorization"] = authorization
            resp = _send(self.settings, endpoint, method, target, sent, body, self.timeout)
            if resp.status == 401:
                challenge = resp.header("WWW-Authenticate")
                resp.close()
                if not challenge:
                    raise errors.Unauthorized("unauthorized: authentication required")
                token_request = self._auth.challenge(challenge, scope)
                if token_request is not None:
                    self._fetch_token(token_request)
                if hasattr(body, "seek"):
                    body.seek(0)  # type: ignore[union-attr]
                continue
            return self._follow(resp, method, headers)
        raise errors.Unauthorized("unauthorized: authentication required")

    def _follow(self, resp: Response, method: str, headers: Mapping[str, str]) -> Response:
        """Follow redirects of GET/HEAD (blob storage), without our Authorization."""
        for _ in range(_MAX_REDIRECTS):
            if method not in ("GET", "HEAD") or resp.status not in (301, 302, 303, 307, 308):
                return resp
            location = urljoin(resp.url, resp.header("Location"))
            resp.close()
            endpoint, target = _endpoint_of_url(self.settings, location)
            sent = {"User-Agent": USER_AGENT, **headers}
            resp = _send(self.settings, endpoint, method, target, sent, None, self.timeout)
        return resp

    def _fetch_token(self, request: TokenRequest) -> None:
        endpoint, target = _endpoint_of_url(self.settings, request.url)
        headers = {"User-Agent": USER_AGENT, **request.headers}
        try:
            resp = _send(self.settings, endpoint, "GET", target, headers, None, self.timeout)
        except (OSError, http.client.HTTPException) as exc:
            raise errors.Unavailable(f'Get "{request.url}": {_describe(exc)}') from exc
        with resp:
            self._auth.accept_token(request, resp.status, resp.read_limited(1 << 20))


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no endpoint answered"
    if isinstance(exc, ConnectionRefusedError):
        return "connect: connection refused"
    if isinstance(exc, TimeoutError):
        return "i/o timeout"
    return str(exc) or type(exc).__name__
