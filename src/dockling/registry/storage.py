"""The registry's filesystem layout under --root.

    content/blobs/sha256/<hex>                       every blob and manifest (a ContentStore)
    content/ingest/<uuid>/data                       an upload in progress
    uploads/<uuid>.json                              which repository an upload belongs to
    repositories/<name>/_layers/<hex>                the blob is part of the repository
    repositories/<name>/_manifests/revisions/<hex>   a manifest of the repository (its media type)
    repositories/<name>/_manifests/tags/<tag>        the digest the tag points at
    repositories/<name>/_referrers/<subject-hex>/<hex>  a referrer's descriptor (JSON)

Every file that makes something visible is written to a temporary name, fsynced and renamed,
so a crash leaves either the old state or the new one.  Writes happen in an order that
never lets a visible name point at something absent: blob, then revision, then tag.
Repository names cannot contain a component starting with "_", so the marker directories
never collide with a nested repository.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dockling.content.store import ContentStore
from dockling.ids import generate_id


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a reader sees the old or the new bytes, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{generate_id()[:16]}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


class RegistryStorage:
    """Repositories, tags, manifests and blob links over one content store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.content = ContentStore(root / "content")
        self.repositories = root / "repositories"
        self.uploads = root / "uploads"
        self.repositories.mkdir(parents=True, exist_ok=True)
        self.uploads.mkdir(parents=True, exist_ok=True)

    # repositories ------------------------------------------------------------------------
    def repo_dir(self, name: str) -> Path:
        return self.repositories / name

    def repo_exists(self, name: str) -> bool:
        d = self.repo_dir(name)
        return (d / "_layers").is_dir() or (d / "_manifests").is_dir()

    def list_repositories(self) -> list[str]:
        """Every repository name, sorted."""
        found: list[str] = []

        def walk(path: Path, prefix: str) -> None:
            try:
                entries = sorted(os.scandir(path), key=lambda e: e.name)
            except FileNotFoundError:
                return
            names = {e.name for e in entries}
            if prefix and ("_layers" in names or "_manifests" in names):
                found.append(prefix)
            for e in entries:
                if e.is_dir() and not e.name.startswith(("_", ".")):
                    walk(Path(e.path), f"{prefix}/{e.name}" if prefix else e.name)

        walk(self.repositories, "")
        return sorted(found)

    # blobs ---------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.content.path(digest)

    def blob_size(self, digest: str) -> int | None:
        """Size of a stored blob, None when absent."""
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def layer_link(self, name: str, digest: str) -> Path:
        return self.repo_dir(name) / "_layers" / _hex(digest)

    def is_linked(self, name: str, digest: str) -> bool:
        """True when the blob belongs to the repository and is stored."""
        return (
            self.layer_link(name, digest).exists() or self.revision_path(name, digest).exists()
        ) and self.blob_path(digest).is_file()

    def link_blob(self, name: str, digest: str) -> None:
        """Make the stored blob `digest` part of repository `name`."""
        link = self.layer_link(name, digest)
        if link.exists():
            return
        write_atomic(link, b"")

    def unlink_blob(self, name: str, digest: str) -> bool:
        """Remove the blob from the repository; False when it was not there."""
        try:
            self.layer_link(name, digest).unlink()
            return True
        except FileNotFoundError:
            return False

    def linked_blobs(self, name: str) -> list[str]:
        try:
            return ["sha256:" + e.name for e in os.scandir(self.repo_dir(name) / "_layers")]
        except FileNotFoundError:
            return []

    # manifests ------------------------------------------------------------------------------
    def revision_path(self, name: str, digest: str) -> Path:
        return self.repo_dir(name) / "_manifests" / "revisions" / _hex(digest)

    def manifest_media_type(self, name: str, digest: str) -> str | None:
        """The media type a manifest was stored with, None when the repository lacks it."""
        try:
            media_type = self.revision_path(name, digest).read_text()
        except FileNotFoundError:
            return None
        return media_type if self.blob_path(digest).is_file() else None

    def put_revision(self, name: str, digest: str, media_type: str) -> None:
        write_atomic(self.revision_path(name, digest), media_type.encode())

    def delete_revision(self, name: str, digest: str) -> bool:
        try:
            self.revision_path(name, digest).unlink()
            return True
        except FileNotFoundError:
            return False

    def revisions(self, name: str) -> list[str]:
        try:
            entries = os.scandir(self.repo_dir(name) / "_manifests" / "revisions")
            return ["sha256:" + e.name for e in entries if not e.name.startswith(".")]
        except FileNotFoundError:
            return []

    # tags -----------------------------------------------------------------------------------
    def tag_path(self, name: str, tag: str) -> Path:
        return self.repo_dir(name) / "_manifests" / "tags" / tag

    def resolve_tag(self, name: str, tag: str) -> str | None:
        try:
            return self.tag_path(name, tag).read_text().strip()
        except FileNotFoundError:
            return None

    def set_tag(self, name: str, tag: str, digest: str) -> None:
        write_atomic(self.tag_path(name, tag), digest.encode())

    def delete_tag(self, name: str, tag: str) -> bool:
        try:
            self.tag_path(name, tag).unlink()
            return True
        except FileNotFoundError:
            return False

    def tags(self, name: str) -> dict[str, str]:
        """tag -> digest for every tag of the repository."""
        out: dict[str, str] = {}
        try:
            entries = list(os.scandir(self.repo_dir(name) / "_manifests" / "tags"))
        except FileNotFoundError:
            return out
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                out[e.name] = Path(e.path).read_text().strip()
            except FileNotFoundError:
                continue
        return out

    # referrers ------------------------------------------------------------------------------
    def referrer_path(self, name: str, subject: str, digest: str) -> Path:
        return self.repo_dir(name) / "_referrers" / _hex(subject) / _hex(digest)

    def add_referrer(self, name: str, subject: str, descriptor: dict[str, Any]) -> None:
        path = self.referrer_path(name, subject, descriptor["digest"])
        write_atomic(path, json.dumps(descriptor).encode())

    def remove_referrer(self, name: str, digest: str) -> None:
        """Remove `digest` from every subject's referrers in the repository."""
        base = self.repo_dir(name) / "_referrers"
        try:
            subjects = list(os.scandir(base))
        except FileNotFoundError:
            return
        for s in subjects:
            try:
                (Path(s.path) / _hex(digest)).unlink()
            except FileNotFoundError:
                continue

    def referrers(self, name: str, subject: str) -> list[dict[str, Any]]:
        """Descriptors of the manifests whose subject is `subject`, still present."""
        base = self.repo_dir(name) / "_referrers" / _hex(subject)
        out: list[dict[str, Any]] = []
        try:
            entries = sorted(os.scandir(base), key=lambda e: e.name)
        except FileNotFoundError:
            return out
        for e in entries:
            if e.name.startswith("."):
                continue
            if self.manifest_media_type(name, "sha256:" + e.name) is None:
                continue
            try:
                out.append(json.loads(Path(e.path).read_text()))
            except (FileNotFoundError, ValueError):
                continue
        return out

    # uploads --------------------------------------------------------------------------------
    def upload_meta_path(self, uuid: str) -> Path:
        return self.uploads / f"{uuid}.json"

    def iter_upload_ids(self) -> Iterator[str]:
        for e in os.scandir(self.uploads):
            if e.name.endswith(".json"):
                yield e.name[: -len(".json")]
