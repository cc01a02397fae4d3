"""Bearer tokens: JWTs signed with HS256, RS256 or ES256 (see `token_keys`).

A token carries Docker's token claims: `iss`, `sub` (the user, "" when anonymous), `aud`
(the registry's service name), `iat`/`nbf`/`exp`, `jti`, and `access`, a list of
`{"type": "repository", "name": NAME, "actions": [...]}` entries the registry enforces.
The registry and the token service share a secret, or the service signs with a private
key whose certificate the registry holds (`--token-key FILE`); in the combined mode, where
the registry is its own token service, a secret is generated at start unless one is given.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dockling import errors
from dockling.registry.token_keys import HmacKey, Key

ISSUER = "dockling-registry-token"
TOKEN_TTL_SECONDS = 300
CLOCK_LEEWAY_SECONDS = 60


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


def generate_key() -> bytes:
    return secrets.token_bytes(32)


class TokenSigner:
    """Issues tokens for one service with its signing key, and verifies them with any of
    its keys (the one the token's `kid` names, of the token's algorithm)."""

    def __init__(self, key: bytes | Sequence[Key], service: str) -> None:
        self.keys: list[Key] = [HmacKey(key)] if isinstance(key, bytes) else list(key)
        self.service = service
        self.signing_key = next((k for k in self.keys if k.can_sign), None)

    @property
    def can_issue(self) -> bool:
        return self.signing_key is not None

    def issue(
        self, subject: str, access: list[dict[str, Any]], *, ttl: int = TOKEN_TTL_SECONDS
    ) -> tuple[str, int, int]:
        """(token, issued-at, expires-in seconds) for `subject` with the `access` entries."""
        key = self.signing_key
        if key is None:
            raise errors.InvalidParameter(
                "the token key holds no secret or private key: this server can only verify"
            )
        now = int(time.time())
        header = {"alg": key.alg, "typ": "JWT", "kid": key.kid}
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
        token = signing_input + "." + _b64(key.sign(signing_input.encode()))
        return token, now, ttl

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token for this service; TokenInvalid otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenInvalid("not a JWT")
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
        except ValueError:
            raise TokenInvalid("bad JSON") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise TokenInvalid("bad header or claims")
        alg, kid = header.get("alg"), header.get("kid")
        # Only keys of the token's own algorithm: never a public key as an HMAC secret.
        candidates = [k for k in self.keys if k.alg == alg]
        if not candidates:
            raise TokenInvalid("unsupported algorithm")
        if kid is not None:
            candidates = [k for k in candidates if k.kid == kid] or candidates
        signing_input = f"{parts[0]}.{parts[1]}".encode()
        signature = _unb64(parts[2])
        if not any(k.verify(signing_input, signature) for k in candidates):
            raise TokenInvalid("bad signature")
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
