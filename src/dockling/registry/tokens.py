"""Bearer tokens: JWTs signed with HS256 (HMAC-SHA256, standard library only).

A token carries Docker's token claims: `iss`, `sub` (the user, "" when anonymous), `aud`
(the registry's service name), `iat`/`nbf`/`exp`, `jti`, and `access`, a list of
`{"type": "repository", "name": NAME, "actions": [...]}` entries the registry enforces.
The registry and the token service share the key (`--token-key FILE`, or one generated at
start in the combined mode, where the registry is its own token service).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockling import errors

ISSUER = "dockling-registry-token"
TOKEN_TTL_SECONDS = 300
CLOCK_LEEWAY_SECONDS = 60
MIN_KEY_BYTES = 16


class TokenInvalid(Exception):
    """The token is malformed, badly signed, expired or meant for another service."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid("bad base64") from None


@dataclass(frozen=True, slots=True)
class Scope:
    """One `type:name:actions` scope, as in `repository:library/busybox:pull,push`."""

    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        """The scope, or None when `text` is not `type:name:actions`."""
        kind, sep, rest = text.partition(":")
        name, sep2, actions = rest.rpartition(":")
        if not (sep and sep2 and kind and name):
            return None
        return cls(kind, name, tuple(a for a in actions.split(",") if a))


def load_key(path: Path) -> bytes:
    """The HMAC key in `path` (its bytes, surrounding whitespace removed)."""
    key = path.read_bytes().strip()
    if len(key) < MIN_KEY_BYTES:
        raise errors.InvalidParameter(f"{path}: a token key needs at least {MIN_KEY_BYTES} bytes")
    return key


def generate_key() -> bytes:
    return secrets.token_bytes(32)


class TokenSigner:
    """Issues and verifies tokens for one service with one key."""

    def __init__(self, key: bytes, service: str) -> None:
        self.key = key
        self.service = service
        # The key id lets a verifier holding several keys pick one; it reveals nothing.
        self.kid = hashlib.sha256(b"kid:" + key).hexdigest()[:16]

    def _sign(self, signing_input: bytes) -> bytes:
        return hmac.new(self.key, signing_input, hashlib.sha256).digest()

    def issue(
        self, subject: str, access: list[dict[str, Any]], *, ttl: int = TOKEN_TTL_SECONDS
    ) -> tuple[str, int, int]:
        """(token, issued-at, expires-in seconds) for `subject` with the `access` entries."""
        now = int(time.time())
        header = {"alg": "HS256", "typ": "JWT", "kid": self.kid}
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": self.service,
            "iat": now,
            "nbf": now - 1,
            "exp": now + ttl,
            "jti": _b64(os.urandom(12)),
            "access": access,
        }
        signing_input = (
            _b64(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64(json.dumps(claims, separators=(",", ":")).encode())
        )
        token = signing_input + "." + _b64(self._sign(signing_input.encode()))
        return token, now, ttl

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token for this service; TokenInvalid otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenInvalid("not a JWT")
        signing_input = f"{parts[0]}.{parts[1]}".encode()
        if not hmac.compare_digest(self._sign(signing_input), _unb64(parts[2])):
            raise TokenInvalid("bad signature")
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
        except ValueError:
            raise TokenInvalid("bad JSON") from None
        if not isinstance(header, dict) or header.get("alg") != "HS256":
            raise TokenInvalid("unsupported algorithm")
        if not isinstance(claims, dict):
            raise TokenInvalid("bad claims")
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int | float) or exp < now - CLOCK_LEEWAY_SECONDS:
            raise TokenInvalid("token expired")
        if not isinstance(nbf, int | float) or nbf > now + CLOCK_LEEWAY_SECONDS:
            raise TokenInvalid("token not valid yet")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.service not in audiences:
            raise TokenInvalid(f"token is for {aud!r}, not {self.service!r}")
        return claims


def granted_actions(claims: dict[str, Any], kind: str, name: str) -> frozenset[str]:
    """The actions the token's `access` claim grants on `kind:name`."""
    out: set[str] = set()
    access = claims.get("access")
    if not isinstance(access, list):
        return frozenset()
    for entry in access:
        if (
            isinstance(entry, dict)
            and entry.get("type") == kind
            and entry.get("name") == name
            and isinstance(entry.get("actions"), list)
        ):
            out.update(a for a in entry["actions"] if isinstance(a, str))
    return frozenset(out)
