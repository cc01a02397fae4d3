"""Validation of the path parts of a request: repository names, tags, digests.

The grammars are the Distribution spec's.  Only sha256 digests are stored; a well-formed
digest of another algorithm is refused as DIGEST_INVALID with a detail saying so.
"""

from __future__ import annotations

import re

from dockling.registry.errors import RegistryError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_ANY_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_SHA256_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_NAME_LENGTH = 255


def check_name(name: str) -> str:
    """Return `name` when it is a valid repository name; NAME_INVALID otherwise."""
    if len(name) > MAX_NAME_LENGTH or not _NAME_RE.match(name):
        raise RegistryError("NAME_INVALID", f"invalid repository name {name!r}")
    return name


def is_tag(reference: str) -> bool:
    """True when `reference` is a tag (as opposed to a digest)."""
    return _TAG_RE.match(reference) is not None


def check_digest(value: str) -> str:
    """Return `value` when it is a sha256 digest this registry stores; DIGEST_INVALID otherwise."""
    if _SHA256_RE.match(value):
        return value
    if _ANY_DIGEST_RE.match(value):
        raise RegistryError("DIGEST_INVALID", f"unsupported digest algorithm in {value!r}")
    raise RegistryError("DIGEST_INVALID", f"invalid digest {value!r}")


def check_reference(reference: str) -> str:
    """Return `reference` when it is a tag or a sha256 digest.

    A digest-looking value that is malformed gets DIGEST_INVALID, anything else
    MANIFEST_INVALID (the spec has no TAG_INVALID outside schema1).
    """
    if is_tag(reference):
        return reference
    if ":" in reference:
        return check_digest(reference)
    raise RegistryError("MANIFEST_INVALID", f"invalid tag {reference!r}")
