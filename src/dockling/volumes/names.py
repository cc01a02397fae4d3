"""Volume names: Docker's rule for local volume names and anonymous names."""

from __future__ import annotations

import re
import secrets

from dockling import errors

_VALID_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")


def validate_volume_name(name: str) -> None:
    """Raise InvalidParameter, in Docker's words, unless `name` is a valid local volume name."""
    if not _VALID_NAME.fullmatch(name):
        raise errors.InvalidParameter(
            f'create {name}: "{name}" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. '
            "If you intended to pass a host directory, use absolute path"
        )


def anonymous_volume_name() -> str:
    """A fresh 64-hex name, like Docker gives anonymous volumes."""
    return secrets.token_hex(32)
