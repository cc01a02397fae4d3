"""Who may do what: anonymous access, htpasswd Basic auth, or Bearer tokens.

Three authorizers share one method, `authorize(authorization, scopes, base_url)`, which
returns a `Grant` or raises UNAUTHORIZED (401, with the challenge to answer) or DENIED (403):

- `OpenAccess`: everyone may do everything (the default, for 127.0.0.1).
- `BasicAuth`: htpasswd users (bcrypt entries as `htpasswd -B` writes them), optionally
  limited by access rules.
- `TokenAuth`: Bearer JWTs from a token service (`tokens.py`), whose `access` claim says
  what the holder may do.  Requests without one get Docker Hub's challenge:
  `Bearer realm="...",service="...",scope="repository:NAME:pull,push"`.

`TokenService` is the token endpoint (`GET /token?service=&scope=`): it checks Basic
credentials (or none, for anonymous) and signs the actions the access rules allow.

bcrypt costs tens of milliseconds by design and clients send credentials with every request,
so `PasswordChecker` runs it in a thread (the event loop keeps serving) and remembers
successful checks by a hash of (user, password, stored hash): a changed file or password
never matches a remembered entry.  bcrypt comes from the optional `bcrypt` package
(`pip install dockling[registry]`); without it a server with --htpasswd refuses to start.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockling import errors
from dockling.registry.access import AccessRules
from dockling.registry.errors import RegistryError
from dockling.registry.tokens import Scope, TokenInvalid, TokenSigner, granted_actions

REALM = "dockling-registry"
CACHE_ENTRIES = 1024


def load_htpasswd(path: Path) -> dict[str, str]:
    """user -> bcrypt hash; InvalidParameter for entries that are not bcrypt."""
    users: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not hashed.startswith(("$2y$", "$2a$", "$2b$")):
            raise errors.InvalidParameter(
                f"{path}:{lineno}: only bcrypt entries are supported (htpasswd -B)"
            )
        users[user] = hashed
    return users


def _bcrypt_check(password: str, hashed: str) -> bool:
    import bcrypt

    # Apache writes $2y$; the bcrypt package reads $2b$, the same algorithm.
    stored = ("$2b$" + hashed[4:]) if hashed.startswith("$2y$") else hashed
    try:
        return bool(bcrypt.checkpw(password.encode(), stored.encode()))
    except ValueError:
        return False


class PasswordChecker:
    """Verifies htpasswd passwords off the event loop, remembering the successes."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._pending: dict[bytes, asyncio.Future[bool]] = {}
        self.bcrypt_calls = 0
        try:
            import bcrypt  # noqa: F401 - fail at start, not at the first request
        except ImportError:
            raise errors.Unavailable(
                "htpasswd auth needs the bcrypt package: pip install 'dockling[registry]'"
            ) from None

    async def check(self, user: str, password: str) -> bool:
        """True when `password` is `user`'s; unknown users are simply refused."""
        hashed = self.users.get(user)
        if hashed is None:
            return False
        key = hashlib.sha256(f"{user}\0{password}\0{hashed}".encode()).digest()
        if key in self._verified:
            self._verified.move_to_end(key)
            return True
        # Concurrent requests with the same new credentials share one bcrypt run.
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            self.bcrypt_calls += 1
            ok = await asyncio.to_thread(_bcrypt_check, password, hashed)
            future.set_result(ok)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, nobody logs "never retrieved"
            raise
        finally:
            del self._pending[key]
        if ok:
            self._verified[key] = None
            if len(self._verified) > CACHE_ENTRIES:
                self._verified.popitem(last=False)
        return ok


def parse_basic(authorization: str) -> tuple[str, str] | None:
    """(user, password) of a Basic header; None when there is no Basic header."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise RegistryError("UNAUTHORIZED", "malformed basic credentials") from None
    if not sep:
        raise RegistryError("UNAUTHORIZED", "malformed basic credentials")
    return user, password


@dataclass(frozen=True, slots=True)
class Grant:
    """The authenticated user ("-" when anonymous) and what they may do."""

    user: str
    actions: Callable[[str, str], frozenset[str]] | None = None  # (type, name); None: all

    def allows(self, scope: Scope) -> bool:
        if self.actions is None:
            return True
        granted = self.actions(scope.type, scope.name)
        return "*" in granted or all(a in granted for a in scope.actions)


def _rules_actions(rules: AccessRules, user: str | None) -> Callable[[str, str], frozenset[str]]:
    def actions(kind: str, name: str) -> frozenset[str]:
        if kind == "registry" and name == "catalog":
            return frozenset({"*"}) if rules.may_list_catalog(user) else frozenset()
        return rules.actions(user, name) if kind == "repository" else frozenset()

    return actions


def _deny(scopes: list[Scope], grant: Grant) -> None:
    for scope in scopes:
        if not grant.allows(scope):
            raise RegistryError("DENIED", f"{grant.user} may not {scope}")


class OpenAccess:
    """No authentication: everyone may do everything."""

    async def authorize(self, authorization: str, scopes: list[Scope], base_url: str) -> Grant:
        return Grant("-")


class BasicAuth:
    """htpasswd users; with `rules`, each user only what the rules allow (else DENIED)."""

    def __init__(self, checker: PasswordChecker, rules: AccessRules | None = None) -> None:
        self.checker = checker
        self.rules = rules
        self._challenge = {"WWW-Authenticate": f'Basic realm="{REALM}"'}

    async def authorize(self, authorization: str, scopes: list[Scope], base_url: str) -> Grant:
        try:
            creds = parse_basic(authorization)
        except RegistryError as exc:
            exc.headers.update(self._challenge)
            raise
        if creds is None:
            raise RegistryError(
                "UNAUTHORIZED", "basic credentials required", headers=self._challenge
            )
        if not await self.checker.check(*creds):
            raise RegistryError(
                "UNAUTHORIZED", "invalid username or password", headers=self._challenge
            )
        grant = Grant(creds[0])
        if self.rules is not None:
            grant = Grant(creds[0], _rules_actions(self.rules, creds[0]))
        _deny(scopes, grant)
        return grant


class TokenAuth:
    """Bearer tokens signed by `signer`; the realm defaults to this server's /token."""

    def __init__(self, signer: TokenSigner, realm: str | None = None) -> None:
        self.signer = signer
        self.realm = realm

    def challenge(self, scopes: list[Scope], base_url: str, error: str = "") -> dict[str, str]:
        realm = self.realm or f"{base_url}/token"
        value = f'Bearer realm="{realm}",service="{self.signer.service}"'
        if scopes:
            value += f',scope="{" ".join(str(s) for s in scopes)}"'
        if error:
            value += f',error="{error}"'
        return {"WWW-Authenticate": value}

    async def authorize(self, authorization: str, scopes: list[Scope], base_url: str) -> Grant:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise RegistryError(
                "UNAUTHORIZED", "bearer token required", headers=self.challenge(scopes, base_url)
            )
        try:
            claims = self.signer.verify(token.strip())
        except TokenInvalid as exc:
            raise RegistryError(
                "UNAUTHORIZED",
                f"invalid token: {exc}",
                headers=self.challenge(scopes, base_url, "invalid_token"),
            ) from None

        def actions(kind: str, name: str) -> frozenset[str]:
            return granted_actions(claims, kind, name)

        grant = Grant(str(claims.get("sub") or "-"), actions)
        _deny(scopes, grant)
        return grant


Authorizer = OpenAccess | BasicAuth | TokenAuth


class TokenService:
    """The token endpoint: Basic credentials (or none) in, a signed token out."""

    def __init__(
        self, signer: TokenSigner, rules: AccessRules, checker: PasswordChecker | None
    ) -> None:
        self.signer = signer
        self.rules = rules
        self.checker = checker

    async def issue(self, authorization: str, service: str | None, scopes: list[str]) -> Any:
        """The token answer (JSON) for the requested scopes, narrowed to what is allowed.

        Wrong credentials are UNAUTHORIZED; scopes the user may not have are left out of
        the token (the registry then answers DENIED), as Docker's token services do.
        """
        if service and service != self.signer.service:
            raise RegistryError("TOKEN_REQUEST_INVALID", f"unknown service {service!r}")
        user: str | None = None
        creds = parse_basic(authorization)
        if creds is not None:
            if self.checker is None or not await self.checker.check(*creds):
                raise RegistryError("UNAUTHORIZED", "invalid username or password")
            user = creds[0]
        actions_of = _rules_actions(self.rules, user)
        access: list[dict[str, Any]] = []
        for text in scopes:
            for part in text.split(" "):
                scope = Scope.parse(part)
                if scope is None:
                    if part:
                        raise RegistryError("TOKEN_REQUEST_INVALID", f"bad scope {part!r}")
                    continue
                allowed = actions_of(scope.type, scope.name)
                wanted = set(scope.actions)
                if "*" in wanted and scope.type == "repository":
                    wanted = {"pull", "push", "delete"}
                granted = sorted(a for a in wanted if a in allowed or "*" in allowed)
                access.append({"type": scope.type, "name": scope.name, "actions": granted})
        token, issued_at, expires_in = self.signer.issue(user or "", access)
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(issued_at))
        return {
            "token": token,
            "access_token": token,
            "expires_in": expires_in,
            "issued_at": when,
        }
