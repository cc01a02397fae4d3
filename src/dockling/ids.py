"""Identifiers: random object ids, content digests, layer chain ids, and id-prefix lookup."""

from __future__ import annotations

import bisect
import hashlib
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import NewType

from dockling import errors

Digest = NewType("Digest", str)
"""An OCI content digest, "sha256:<64 hex>"."""

DiffID = NewType("DiffID", str)
"""The digest of a layer's uncompressed tar stream."""

ChainID = NewType("ChainID", str)
"""The identity of a stack of layers: chain_id(d1..dn) = sha256(chain_id(d1..dn-1) + " " + dn)."""

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")


def generate_id() -> str:
    """Return a fresh random id of 64 lowercase hex characters (never all digits, like Docker)."""
    while True:
        value = secrets.token_hex(32)
        # Docker avoids ids that parse as a number because some tools treat them as one.
        if not value.isdigit():
            return value


def sha256_digest(data: bytes) -> Digest:
    """Return the "sha256:<hex>" digest of `data`."""
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


def is_digest(value: str) -> bool:
    """True when `value` is a well-formed "sha256:<64 hex>" digest."""
    return _DIGEST_RE.match(value) is not None


def is_full_hex_id(value: str) -> bool:
    """True when `value` is 64 lowercase hex characters."""
    return _HEX_RE.match(value) is not None


def parse_digest(value: str) -> Digest:
    """Validate a digest string, raising InvalidParameter when it is malformed."""
    if not is_digest(value):
        raise errors.InvalidParameter(f"invalid digest {value!r}: expected sha256:<64 hex digits>")
    return Digest(value)


def hex_of(digest: str) -> str:
    """The hex part of "sha256:<hex>" (or the value itself when it has no algorithm)."""
    return digest.split(":", 1)[1] if ":" in digest else digest


def short_id(value: str) -> str:
    """Docker's 12-character display form of an id or digest."""
    return hex_of(value)[:12]


def chain_id(diff_ids: Sequence[DiffID] | Sequence[str]) -> ChainID:
    """Return the chain id of the layer stack `diff_ids` (bottom first, not empty)."""
    if not diff_ids:
        raise errors.InvalidParameter("chain id of an empty layer stack")
    current = str(diff_ids[0])
    for diff_id in diff_ids[1:]:
        current = "sha256:" + hashlib.sha256(f"{current} {diff_id}".encode()).hexdigest()
    return ChainID(current)


def chain_ids(diff_ids: Sequence[DiffID] | Sequence[str]) -> list[ChainID]:
    """Return the chain id of every prefix of `diff_ids`: element i identifies layers 0..i."""
    result: list[ChainID] = []
    for diff_id in diff_ids:
        if not result:
            result.append(ChainID(str(diff_id)))
        else:
            text = f"{result[-1]} {diff_id}".encode()
            result.append(ChainID("sha256:" + hashlib.sha256(text).hexdigest()))
    return result


class PrefixIndex:
    """A thread-safe set of ids that resolves unique prefixes, like Docker's truncindex.

    Ids are stored as given (callers usually add bare 64-hex ids).  `get` raises the
    caller's NotFound error for an empty or unknown prefix and InvalidParameter for an
    ambiguous one.
    """

    def __init__(self, not_found: Callable[[str], Exception], ids: Iterable[str] = ()) -> None:
        self._not_found = not_found
        self._ids = sorted(set(ids))
        self._lock = threading.Lock()

    def add(self, id_: str) -> None:
        """Insert `id_`; adding an id twice is harmless."""
        with self._lock:
            pos = bisect.bisect_left(self._ids, id_)
            if pos == len(self._ids) or self._ids[pos] != id_:
                self._ids.insert(pos, id_)

    def remove(self, id_: str) -> None:
        """Forget `id_`; removing an unknown id is harmless."""
        with self._lock:
            pos = bisect.bisect_left(self._ids, id_)
            if pos < len(self._ids) and self._ids[pos] == id_:
                del self._ids[pos]

    def __contains__(self, id_: object) -> bool:
        if not isinstance(id_, str):
            return False
        with self._lock:
            pos = bisect.bisect_left(self._ids, id_)
            return pos < len(self._ids) and self._ids[pos] == id_

    def __len__(self) -> int:
        return len(self._ids)

    def get(self, prefix: str) -> str:
        """Return the one id starting with `prefix`."""
        if not prefix:
            raise self._not_found(prefix)
        with self._lock:
            pos = bisect.bisect_left(self._ids, prefix)
            if pos == len(self._ids) or not self._ids[pos].startswith(prefix):
                raise self._not_found(prefix)
            if pos + 1 < len(self._ids) and self._ids[pos + 1].startswith(prefix):
                raise errors.InvalidParameter(f"multiple IDs found with provided prefix: {prefix}")
            return self._ids[pos]
