"""The local volume driver: one directory per volume under DATA_ROOT/volumes.

Layout: `<root>/<name>/_data` holds the data (what containers bind-mount) and
`<root>/<name>/volume.json` the metadata (creation time, labels, driver options and the
containers holding the volume).  The metadata is replaced atomically (write, fsync,
rename), so a crash leaves the old or the new record, never half of one; a directory
without a record is an interrupted create and is ignored (and reused by the next create).
Removal renames the directory to a hidden `.trash-*` name first, so a crash mid-delete
never shows a half-deleted volume; leftovers are swept when the store opens.
"""

from __future__ import annotations

import builtins
import json
import os
import secrets
import shutil
import stat
import threading
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockling import errors
from dockling.mount import is_mountpoint
from dockling.volumes import local_mount
from dockling.volumes.base import ANONYMOUS_LABEL, PruneReport, Volume, to_api
from dockling.volumes.names import anonymous_volume_name, validate_volume_name

__all__ = ["DRIVER_NAME", "LocalVolumeStore", "to_api"]

DRIVER_NAME = "local"
_RECORD = "volume.json"
_DATA = "_data"
_TRASH_PREFIX = ".trash-"


class LocalVolumeStore:
    """The `VolumeDriver` for driver "local" (see `dockling.volumes.base.VolumeDriver`).

    Thread-safe within one process; one daemon owns a root at a time.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.RLock()
        self.root.mkdir(mode=0o701, parents=True, exist_ok=True)
        self._sweep_trash()

    # -- queries -----------------------------------------------------------------------

    def get(self, name: str) -> Volume:
        """The volume called `name`, or VolumeNotFound."""
        return _to_volume(self._read(name), self._data_dir(name))

    def list(self) -> list[Volume]:
        """Every volume, sorted by name."""
        with self._lock:
            found: list[Volume] = []
            for entry in sorted(os.listdir(self.root)):
                if entry.startswith("."):
                    continue
                try:
                    found.append(self.get(entry))
                except errors.VolumeNotFound:
                    continue  # an interrupted create: no record yet
            return found

    def users(self, name: str) -> builtins.list[str]:
        """The container ids holding `name`, sorted."""
        return sorted(self._read(name).get("Users", []))

    def usage(self, name: str) -> int:
        """Bytes used by the files under the volume's data directory, hard links once."""
        self._read(name)
        return _disk_usage(self._data_dir(name))

    # -- changes -----------------------------------------------------------------------

    def create(
        self,
        name: str | None,
        *,
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
    ) -> Volume:
        """Create a volume, or return the existing one of that name unchanged."""
        labels = dict(labels or {})
        options = dict(options or {})
        if name is None:
            name = anonymous_volume_name()
            labels.setdefault(ANONYMOUS_LABEL, "")
        validate_volume_name(name)
        local_mount.validate_options(options)
        with self._lock:
            try:
                return self.get(name)
            except errors.VolumeNotFound:
                pass
            data = self._data_dir(name)
            data.mkdir(mode=0o755, parents=True, exist_ok=True)
            record = {
                "Name": name,
                "CreatedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Labels": labels,
                "Options": options,
                "Users": [],
            }
            self._write(name, record)
            return _to_volume(record, data)

    def remove(self, name: str, *, force: bool = False) -> None:
        """Delete the volume and its data; VolumeInUse while held, VolumeNotFound unless force."""
        with self._lock:
            try:
                record = self._read(name)
            except errors.VolumeNotFound:
                if force:
                    return
                raise
            holders = sorted(record.get("Users", []))
            if holders:
                raise errors.VolumeInUse(
                    f"remove {name}: volume is in use - [{', '.join(holders)}]"
                )
            self._delete(name)

    def prune(
        self,
        *,
        all: bool = False,  # Docker's prune filter name; shadows the builtin here
        labels: Sequence[str] = (),
        not_labels: Sequence[str] = (),
    ) -> PruneReport:
        """Remove unused volumes matching the filters; see `VolumeDriver.prune`."""
        removed: list[str] = []
        reclaimed = 0
        with self._lock:
            for volume in self.list():
                if not all and not volume.anonymous:
                    continue
                if not builtins.all(_label_matches(volume.labels, f) for f in labels):
                    continue
                if any(_label_matches(volume.labels, f) for f in not_labels):
                    continue
                if self.users(volume.name):
                    continue
                size = self.usage(volume.name)
                self._delete(volume.name)
                removed.append(volume.name)
                reclaimed += size
        return PruneReport(removed=tuple(removed), space_reclaimed=reclaimed)

    def acquire(self, name: str, container_id: str) -> str:
        """Record `container_id` as a holder, mount the volume if it has mount options and
        is not mounted yet, and return the host path to bind into the container."""
        with self._lock:
            record = self._read(name)
            data = self._data_dir(name)
            mounted_now = False
            if record["Options"] and not is_mountpoint(str(data)):
                local_mount.mount_volume(record["Options"], str(data))
                mounted_now = True
            holders: list[str] = record.setdefault("Users", [])
            if container_id not in holders:
                holders.append(container_id)
                try:
                    self._write(name, record)
                except BaseException:
                    if mounted_now:
                        local_mount.unmount_volume(str(data))
                    raise
            return str(data)

    def release(self, name: str, container_id: str) -> None:
        """Forget `container_id` as a holder; the last holder's release unmounts."""
        with self._lock:
            record = self._read(name)
            holders: list[str] = record.setdefault("Users", [])
            if container_id in holders:
                holders.remove(container_id)
                self._write(name, record)
            data = str(self._data_dir(name))
            if not holders and record["Options"] and is_mountpoint(data):
                local_mount.unmount_volume(data)

    def reconcile(self, live_container_ids: Collection[str]) -> builtins.list[str]:
        """At daemon start: forget holders that are not live containers any more (removed
        while the daemon was down) and unmount volumes left without holders.  Returns the
        names of the volumes that changed."""
        changed: list[str] = []
        with self._lock:
            for volume in self.list():
                record = self._read(volume.name)
                holders = record.get("Users", [])
                live = [c for c in holders if c in live_container_ids]
                if live != holders:
                    record["Users"] = live
                    self._write(volume.name, record)
                    changed.append(volume.name)
                data = volume.mountpoint
                if not live and volume.options and is_mountpoint(data):
                    local_mount.unmount_volume(data)
                    if volume.name not in changed:
                        changed.append(volume.name)
        return changed

    # -- storage -----------------------------------------------------------------------

    def _data_dir(self, name: str) -> Path:
        return self.root / name / _DATA

    def _read(self, name: str) -> dict[str, Any]:
        # A name that is not valid cannot exist, and must never be joined to a path.
        try:
            validate_volume_name(name)
        except errors.InvalidParameter:
            raise errors.VolumeNotFound(name) from None
        try:
            with open(self.root / name / _RECORD, encoding="utf-8") as f:
                record: dict[str, Any] = json.load(f)
        except FileNotFoundError:
            raise errors.VolumeNotFound(name) from None
        except (OSError, ValueError) as exc:
            raise errors.DataCorrupted(f"volume {name}: unreadable metadata: {exc}") from exc
        return record

    def _write(self, name: str, record: Mapping[str, Any]) -> None:
        directory = self.root / name
        tmp = directory / f"{_RECORD}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(record, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, directory / _RECORD)
            _fsync_dir(directory)
        except OSError as exc:
            raise errors.SystemError(f"volume {name}: cannot write metadata: {exc}") from exc

    def _delete(self, name: str) -> None:
        directory = self.root / name
        data = str(directory / _DATA)
        if is_mountpoint(data):
            local_mount.unmount_volume(data)
            if is_mountpoint(data):
                # Never recurse into a mounted filesystem: it may be a bind of host data.
                raise errors.SystemError(f"remove {name}: volume data is still mounted")
        trash = self.root / f"{_TRASH_PREFIX}{name}-{secrets.token_hex(4)}"
        try:
            os.rename(directory, trash)
            _fsync_dir(self.root)
            shutil.rmtree(trash)
        except OSError as exc:
            raise errors.SystemError(f"remove {name}: {exc}") from exc

    def _sweep_trash(self) -> None:
        for entry in os.listdir(self.root):
            if entry.startswith(_TRASH_PREFIX):
                path = self.root / entry
                if not is_mountpoint(str(path / _DATA)):
                    shutil.rmtree(path, ignore_errors=True)


def _to_volume(record: Mapping[str, Any], data: Path) -> Volume:
    return Volume(
        name=record["Name"],
        driver=DRIVER_NAME,
        mountpoint=str(data),
        created_at=record["CreatedAt"],
        labels=dict(record.get("Labels") or {}),
        options=dict(record.get("Options") or {}),
    )


def _label_matches(labels: Mapping[str, str], wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    if key not in labels:
        return False
    return not sep or labels[key] == value


def _disk_usage(top: Path) -> int:
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(top):
        for entry in (*dirnames, *filenames):
            try:
                st = os.lstat(os.path.join(dirpath, entry))
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
