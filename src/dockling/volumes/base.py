"""The volume driver contract, the `Volume` value and its Engine API JSON shape."""

from __future__ import annotations

import builtins
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

ANONYMOUS_LABEL = "com.docker.volume.anonymous"
"""Docker 23+ marks volumes created without a name with this label (value "")."""


@dataclass(frozen=True, slots=True)
class Volume:
    """One volume as a driver reports it.

    `mountpoint` is the host directory a container bind-mounts; `created_at` is RFC 3339
    (UTC, seconds); `options` are the driver options given at creation (`type`, `device`,
    `o` for the local driver).
    """

    name: str
    driver: str
    mountpoint: str
    created_at: str
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    scope: str = "local"

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels


class PruneReport(NamedTuple):
    """What `prune` removed: volume names and the bytes their data used.

    A tuple so that `removed, reclaimed = store.prune()` reads naturally.
    """

    removed: tuple[str, ...]
    space_reclaimed: int


class VolumeDriver(Protocol):
    """A named-volume backend.  Every method is blocking; the daemon runs them in a thread.

    Names are unique per driver.  A volume is *in use* while at least one container holds
    it (`acquire` without a matching `release`); the set of holders is durable, so it
    survives a daemon restart, and removing or pruning an in-use volume is refused.

    - `create(name, labels=, options=)`: `name=None` creates an anonymous volume with a
      fresh 64-hex name and the `com.docker.volume.anonymous` label.  Creating a name that
      exists returns the existing volume unchanged (Docker's behaviour).  Raises
      InvalidParameter for a bad name or an unknown/incomplete driver option.
    - `get(name)`: the volume, or VolumeNotFound.
    - `list()`: all volumes, sorted by name.
    - `remove(name, force=)`: deletes the volume and its data.  VolumeInUse (409) while
      it has holders; VolumeNotFound unless `force`.
    - `prune(all=, labels=, not_labels=)`: removes volumes with no holders that match
      every `labels` filter ("key" or "key=value") and none of `not_labels`; without
      `all` (Docker's filter name) only anonymous volumes are candidates (Docker 23+).
    - `acquire(name, container_id)`: records the holder, makes the data available (mounts
      a volume that has mount options, on its first holder) and returns the host path to
      bind into the container.  Idempotent per container.
    - `release(name, container_id)`: forgets the holder; the last release unmounts.
      Releasing a holder that is not recorded is a no-op.
    - `users(name)`: the container ids holding the volume, sorted.
    - `usage(name)`: bytes used by the volume's data (hard links counted once).
    - `reconcile(live_container_ids)`: at daemon start, drops holders that are not live
      containers and unmounts volumes left without holders; returns the changed names.
    """

    def create(
        self,
        name: str | None,
        *,
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
    ) -> Volume: ...

    def get(self, name: str) -> Volume: ...

    def list(self) -> list[Volume]: ...

    def remove(self, name: str, *, force: bool = False) -> None: ...

    def prune(
        self,
        *,
        all: bool = False,  # Docker's prune filter name; shadows the builtin here
        labels: Sequence[str] = (),
        not_labels: Sequence[str] = (),
    ) -> PruneReport: ...

    def acquire(self, name: str, container_id: str) -> str: ...

    def release(self, name: str, container_id: str) -> None: ...

    def users(self, name: str) -> builtins.list[str]: ...

    def usage(self, name: str) -> int: ...

    def reconcile(self, live_container_ids: Collection[str]) -> builtins.list[str]: ...


def to_api(
    v: Volume, *, size: int | None = None, ref_count: int | None = None
) -> dict[str, object]:
    """The Engine API JSON of a volume (`GET /volumes/{name}`, items of `GET /volumes`).

    Docker sends `null` for empty Labels and Options.  `UsageData` is present only when
    the caller measured it (`/system/df`); Docker uses -1 for "not measured".
    """
    body: dict[str, object] = {
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": dict(v.labels) or None,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": dict(v.options) or None,
        "Scope": v.scope,
    }
    if size is not None or ref_count is not None:
        body["UsageData"] = {
            "Size": -1 if size is None else size,
            "RefCount": -1 if ref_count is None else ref_count,
        }
    return body
