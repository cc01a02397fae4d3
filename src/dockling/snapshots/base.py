"""The snapshotter contract, after containerd's: keyed filesystem snapshots with parents.

A *committed* snapshot is immutable (an unpacked layer, named by its chain id).  An
*active* snapshot is writable (a container's rootfs or a layer being unpacked) and a
*view* is a read-only look at a committed one.  Active and view snapshots have a parent
that must be committed; a snapshot with children cannot be removed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from dockling.mount import Mount


class Kind(enum.Enum):
    ACTIVE = "active"
    VIEW = "view"
    COMMITTED = "committed"


@dataclass(frozen=True, slots=True)
class Info:
    key: str
    parent: str | None
    kind: Kind
    created: str  # RFC 3339


@dataclass(frozen=True, slots=True)
class Usage:
    size: int  # bytes held by this snapshot's own directory (not its parents)
    inodes: int


class Snapshotter(Protocol):
    """Stores layer snapshots and hands out the mounts that assemble them.

    `prepare` and `view` raise AlreadyExists for a used key and NotFound for an unknown
    parent; `commit` turns an active snapshot into a committed one named `name` (the
    active key disappears); `remove` raises Conflict while children exist; every method
    taking a key raises NotFound for an unknown one.  Mounts returned have an empty target.
    """

    def prepare(self, key: str, parent: str | None) -> list[Mount]: ...
    def view(self, key: str, parent: str | None) -> list[Mount]: ...
    def mounts(self, key: str) -> list[Mount]: ...
    def commit(self, name: str, key: str) -> None: ...
    def remove(self, key: str) -> None: ...
    def stat(self, key: str) -> Info: ...
    def list(self) -> list[Info]: ...
    def usage(self, key: str) -> Usage: ...
