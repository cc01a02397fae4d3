"""Who may do what: anonymous access, or htpasswd Basic auth with bcrypt entries.

The htpasswd file is the one `htpasswd -B` writes (`user:$2y$...`).  bcrypt verification
costs tens of milliseconds by design, and clients send credentials with every request, so a
successful check is remembered by a hash of (user, password, stored hash); a changed file or
password never matches a remembered entry.  bcrypt comes from the optional `bcrypt` package
(`pip install dockling[registry]`); without it a server with --htpasswd refuses to start.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

from dockling import errors
from dockling.registry.errors import RegistryError

REALM = "dockling-registry"


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


class Authenticator:
    """Checks `Authorization` headers; `users` None means anonymous access for everyone."""

    def __init__(self, users: dict[str, str] | None) -> None:
        self.users = users
        self._verified: set[bytes] = set()
        if users is not None:
            try:
                import bcrypt  # noqa: F401 - fail at start, not at the first request
            except ImportError:
                raise errors.Unavailable(
                    "htpasswd auth needs the bcrypt package: pip install 'dockling[registry]'"
                ) from None

    def challenge(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Basic realm="{REALM}"'}

    def authenticate(self, authorization: str) -> str:
        """The user name for a request's Authorization header; UNAUTHORIZED when not allowed."""
        if self.users is None:
            return "-"
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise RegistryError(
                "UNAUTHORIZED", "basic credentials required", headers=self.challenge()
            )
        try:
            user, sep, password = (
                base64.b64decode(value.strip(), validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            raise RegistryError(
                "UNAUTHORIZED", "malformed credentials", headers=self.challenge()
            ) from None
        hashed = self.users.get(user)
        if not sep or hashed is None or not self._check(user, password, hashed):
            raise RegistryError(
                "UNAUTHORIZED", "invalid username or password", headers=self.challenge()
            )
        return user

    def _check(self, user: str, password: str, hashed: str) -> bool:
        key = hashlib.sha256(f"{user}\0{password}\0{hashed}".encode()).digest()
        if key in self._verified:
            return True
        import bcrypt

        # Apache writes $2y$; the bcrypt package reads $2b$, the same algorithm.
        stored = ("$2b$" + hashed[4:]) if hashed.startswith("$2y$") else hashed
        try:
            ok = bcrypt.checkpw(password.encode(), stored.encode())
        except ValueError:
            return False
        if ok:
            self._verified.add(key)
        return ok
