"""Registry authentication as a sans-I/O state machine: Bearer token and Basic.

The transport sends a request with `AuthFlow.authorization(scope)`; on a 401 it hands the
WWW-Authenticate header to `challenge`, which either sets a Basic header (retry at once)
or returns a `TokenRequest` for the transport to perform and feed back to `accept_token`.
No sockets here, so every branch is unit-testable.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass
from urllib.parse import urlencode

from dockling import errors

_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and password (or an identity token), as `docker login` stores them."""

    username: str = ""
    password: str = ""
    identity_token: str = ""

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.identity_token)


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lower case: "bearer" or "basic"
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A GET the transport performs against the token endpoint."""

    url: str
    headers: dict[str, str]
    scope: str


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a WWW-Authenticate value: `Bearer realm="...",service="...",scope="..."`."""
    result: list[Challenge] = []
    text = header.strip()
    while text:
        scheme, _, rest = text.partition(" ")
        params: dict[str, str] = {}
        pos = 0
        while pos < len(rest):
            m = _PARAM.match(rest, pos)
            if m is None or m.end() == pos:
                break
            value = m.group(2) if m.group(2) is not None else m.group(3)
            params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
            pos = m.end()
        result.append(Challenge(scheme.strip().lower(), params))
        text = rest[pos:].strip()
    return result


def basic_header(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


class AuthFlow:
    """Authorization state for one registry host and one set of credentials. Thread-safe.

    Tokens are cached per scope.  A second challenge for a scope that already has a
    token (or a Basic header) means the credentials were refused: `Unauthorized`.
    """

    def __init__(self, credentials: Credentials | None = None) -> None:
        self.credentials = credentials or Credentials()
        self._basic: str | None = None
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def authorization(self, scope: str) -> str | None:
        """The Authorization header value to send for `scope` now (None: send none)."""
        with self._lock:
            if self._basic is not None:
                return self._basic
            token = self._tokens.get(scope)
            return f"Bearer {token}" if token else None

    def challenge(self, www_authenticate: str, scope: str) -> TokenRequest | None:
        """React to a 401: None means "retry with `authorization`", else fetch a token.

        Raises Unauthorized when the challenge cannot be answered (Basic without
        credentials, a refused Basic header or token, an unknown scheme).
        """
        challenges = parse_challenges(www_authenticate)
        with self._lock:
            for ch in challenges:
                if ch.scheme == "bearer":
                    if scope in self._tokens:
                        del self._tokens[scope]
                        raise errors.Unauthorized(
                            "unauthorized: authentication required (token refused)"
                        )
                    realm = ch.params.get("realm", "")
                    if not realm.startswith(("http://", "https://")):
                        raise errors.Unauthorized(f"unauthorized: bad token realm {realm!r}")
                    query: list[tuple[str, str]] = []
                    if "service" in ch.params:
                        query.append(("service", ch.params["service"]))
                    parts = (scope or ch.params.get("scope", "")).split(" ")
                    query.extend(("scope", part) for part in parts if part)
                    if self.credentials.username:
                        query.append(("account", self.credentials.username))
                    headers: dict[str, str] = {}
                    if not self.credentials.anonymous and self.credentials.username:
                        headers["Authorization"] = basic_header(self.credentials)
                    sep = "&" if "?" in realm else "?"
                    url = realm + (sep + urlencode(query) if query else "")
                    return TokenRequest(url, headers, scope)
                if ch.scheme == "basic":
                    if self.credentials.anonymous:
                        raise errors.Unauthorized(
                            "unauthorized: authentication required: no basic auth credentials"
                        )
                    if self._basic is not None:
                        raise errors.Unauthorized("unauthorized: incorrect username or password")
                    self._basic = basic_header(self.credentials)
                    return None
        raise errors.Unauthorized(f"unauthorized: unsupported challenge {www_authenticate!r}")

    def accept_token(self, request: TokenRequest, status: int, body: bytes) -> None:
        """Record the token endpoint's answer to `request`; Unauthorized on a refusal."""
        if status in (401, 403):
            raise errors.Unauthorized("unauthorized: incorrect username or password")
        if status != 200:
            raise errors.Unavailable(f"token endpoint answered {status} for {request.url}")
        try:
            data = json.loads(body)
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise errors.Unauthorized("unauthorized: the token endpoint returned no token")
        with self._lock:
            self._tokens[request.scope] = token


def repository_scope(path: str, actions: str = "pull") -> str:
    """The token scope for a repository path: "repository:library/busybox:pull"."""
    return f"repository:{path}:{actions}"
