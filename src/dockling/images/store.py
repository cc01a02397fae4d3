"""The image service: import, look up, list, tag, remove and inspect images.

Layout under DATA_ROOT: content/ (blobs: layer tarballs as imported, image configs),
snapshots/overlay/ (each layer unpacked once, keyed by chain id) and metadata.db.

Every visible change is one SQLite transaction made after the blobs and snapshots it
names are durable, so an interrupted operation leaves only unreferenced blobs and
snapshots: garbage that `collect_garbage` (run at start) deletes.  In-flight work holds
leases on the digests and chain ids it created, which the collector never touches.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import platform
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from dockling import errors
from dockling.archive.extract import extract_layer
from dockling.content.store import BlobInfo, ContentStore
from dockling.ids import (
    ChainID,
    DiffID,
    PrefixIndex,
    chain_id,
    chain_ids,
    generate_id,
    hex_of,
    is_digest,
    is_full_hex_id,
    sha256_digest,
    short_id,
)
from dockling.images import metadata
from dockling.images.changes import apply_changes
from dockling.images.views import Image, inspect, summary
from dockling.reference import Reference, familiar, parse_normalized, parse_tagged
from dockling.snapshots.base import Kind
from dockling.snapshots.overlay import OverlaySnapshotter

__all__ = ["UNCOMPRESSED_LAYER", "Image", "ImageService", "summary"]

_MEDIA_TYPES = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
# The media type of the layer tars this engine writes itself (builds, commits).
UNCOMPRESSED_LAYER = _MEDIA_TYPES["none"]
_EXTRACT_PREFIX = "extract-"
_HEX = frozenset("0123456789abcdef")
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ImageService:
    """Images stored under `data_root`.  Synchronous and thread-safe (one lock)."""

    def __init__(self, data_root: Path) -> None:
        self.data_root = data_root
        data_root.mkdir(parents=True, exist_ok=True)
        self._content = ContentStore(data_root / "content")
        self._snapshots = OverlaySnapshotter(data_root / "snapshots" / "overlay")
        self._db = metadata.connect(data_root / "metadata.db")
        self._lock = threading.RLock()
        self._leases: Counter[str] = Counter()
        self._index = PrefixIndex(
            errors.ImageNotFound, (hex_of(r[0]) for r in self._db.execute("SELECT id FROM images"))
        )
        # Nothing is in flight yet: whatever an earlier run left half done goes now.
        # Partial downloads stay so that the next pull resumes them (see distribution.fetch).
        self._content.clean_ingest(keep_prefixes=("pull-",))
        self._snapshots.cleanup()
        self.collect_garbage(at_start=True)

    def close(self) -> None:
        self._db.close()
        self._snapshots.close()

    def snapshotter(self) -> OverlaySnapshotter:
        return self._snapshots

    def content(self) -> ContentStore:
        return self._content

    # -- leases ------------------------------------------------------------------------

    def _lease(self, leased: list[str], *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._leases[key] += 1
                leased.append(key)

    def _release(self, leased: Iterable[str]) -> None:
        with self._lock:
            for key in leased:
                self._leases[key] -= 1
                if self._leases[key] <= 0:
                    del self._leases[key]

    # -- import ------------------------------------------------------------------------

    def import_tarball(
        self,
        stream: BinaryIO,
        *,
        reference: str | None,
        changes: Sequence[str] = (),
        message: str = "",
        source: str = "-",
    ) -> Image:
        """Create a one-layer image from a root filesystem tarball, like `docker import`.

        The tarball (plain, gzip or zstd) is stored as the layer blob and unpacked once;
        `changes` are Dockerfile instructions (CMD, ENV, ...) for the image config.
        """
        ref = self._parse_new_tag(reference) if reference else None
        runtime_config = apply_changes(changes)
        comment = message or f"Imported from {source}"
        leased: list[str] = []
        writer = self._content.writer()
        try:
            writer.copy_from(stream)
            self._lease(leased, writer.digest())
            blob = writer.commit()
            diff_id, layer_size, media_type = self._unpack(blob, None, leased)
            created = _now()
            config: dict[str, Any] = {
                "architecture": _ARCH.get(platform.machine(), platform.machine()),
                "comment": comment,
                "config": runtime_config,
                "created": created,
                "history": [{"created": created, "comment": comment}],
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }
            raw = json.dumps(config, separators=(",", ":")).encode()
            image_id = sha256_digest(raw)
            self._lease(leased, image_id)
            self._content.write_blob(raw, expected_digest=image_id)
            top = chain_id([diff_id])
            with self._lock, metadata.transaction(self._db) as db:
                db.execute(
                    "INSERT OR IGNORE INTO image_layers (chain_id, diff_id, parent, size) "
                    "VALUES (?, ?, NULL, ?)",
                    (top, diff_id, layer_size),
                )
                db.execute(
                    "INSERT OR REPLACE INTO image_layer_blobs (blob, diff_id, media_type, size) "
                    "VALUES (?, ?, ?, ?)",
                    (blob.digest, diff_id, media_type, blob.size),
                )
                db.execute(
                    "INSERT OR IGNORE INTO images "
                    "(id, config, created, size, top_layer, chain_ids, last_tag_time) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (image_id, raw.decode(), created, layer_size, top, json.dumps([top]), None),
                )
                if ref is not None:
                    self._set_ref(db, ref, image_id)
                self._index.add(hex_of(image_id))
            return self.get(image_id)
        except BaseException:
            writer.abort()
            self._release(leased)
            leased = []
            self.collect_garbage()
            raise
        finally:
            self._release(leased)

    def _unpack(
        self, blob: BlobInfo, parent: ChainID | None, leased: list[str]
    ) -> tuple[DiffID, int, str]:
        """Make sure the layer in `blob` is unpacked on `parent`; lease its chain id.

        Returns the layer's diff id, unpacked size and media type.  A layer unpacked
        before (same blob on the same parent) is reused without reading the blob.
        """
        with self._lock:
            row = self._db.execute(
                "SELECT b.diff_id, b.media_type, l.size FROM image_layer_blobs b "
                "JOIN image_layers l ON l.diff_id = b.diff_id AND l.parent IS ? "
                "WHERE b.blob = ?",
                (parent, blob.digest),
            ).fetchone()
            if row is not None:
                known = chain_id([parent, row[0]]) if parent else ChainID(row[0])
                if self._snapshots.exists(known):
                    self._lease(leased, known)
                    return DiffID(row[0]), int(row[2]), str(row[1])
        key = f"{_EXTRACT_PREFIX}{generate_id()}"
        self._snapshots.prepare(key, parent)
        try:
            with self._content.open(blob.digest) as f:
                result = extract_layer(
                    f,
                    self._snapshots.fs_path(key),
                    lowers=self._snapshots.parent_paths(key),
                )
            chain = chain_id([parent, result.diff_id]) if parent else ChainID(result.diff_id)
            with self._lock:
                self._lease(leased, chain)
                if not self._snapshots.exists(chain):
                    self._snapshots.commit(chain, key)
            # Committed snapshots record their usage: no second walk of the tree.
            size = self._snapshots.usage(chain).size
        finally:
            if self._snapshots.exists(key):
                self._snapshots.remove(key)
        return result.diff_id, size, _MEDIA_TYPES[result.compression]

    # -- pulled images (used by dockling.distribution) ----------------------------------

    @contextlib.contextmanager
    def lease(self) -> Iterator[builtins.list[str]]:
        """A lease for the block: keys added with `hold` survive garbage collection until exit."""
        held: builtins.list[str] = []
        try:
            yield held
        finally:
            self._release(held)

    def hold(self, held: builtins.list[str], *keys: str) -> None:
        """Protect blob digests or chain ids under the lease `held`."""
        self._lease(held, *keys)

    def has_layer(self, chain: str) -> bool:
        """True when the layer stack `chain` is unpacked (so its blob need not be fetched)."""
        return self._snapshots.exists(chain)

    def unpack_blob(
        self, digest: str, parent: ChainID | None, held: builtins.list[str]
    ) -> tuple[DiffID, int, str]:
        """Unpack the stored layer blob `digest` on `parent` (once); hold its chain id.

        Returns the diff id, unpacked size and media type.
        """
        return self._unpack(self._content.info(digest), parent, held)

    def commit_layer(
        self, key: str, parent: ChainID | None, diff_id: DiffID, held: builtins.list[str]
    ) -> tuple[ChainID, int]:
        """Keep the active snapshot `key` (on `parent`) as the layer `diff_id`; hold its chain id.

        The caller promises that `key`'s own directory holds exactly what extracting the
        layer tar `diff_id` on `parent` would give (whiteouts and opaque directories in
        overlay form), and stores that tar itself: nothing is extracted or read here.
        When the layer exists already, `key` is left untouched for the caller to remove.
        Returns the chain id and the layer's unpacked size.
        """
        if self._snapshots.stat(key).parent != parent:
            raise errors.InvalidParameter(f"snapshot {key}: not a child of {parent}")
        chain = chain_id([parent, diff_id]) if parent else ChainID(diff_id)
        with self._lock:
            self._lease(held, chain)
            if not self._snapshots.exists(chain):
                self._snapshots.commit(chain, key)
        # Committed snapshots record their usage: no second walk of the tree.
        return chain, self._snapshots.usage(chain).size

    def register_pulled(
        self,
        config_raw: bytes,
        layers: Sequence[tuple[ChainID, DiffID, BlobInfo | None, str]],
        references: Sequence[Reference],
        *,
        parent: str | None = None,
    ) -> tuple[Image, bool]:
        """Record an image whose config blob and layers are already stored and unpacked.

        `layers` are (chain id, diff id, layer blob or None when the layer was present,
        media type), bottom first.  `references` (a tag, a digest reference) are pointed at
        it in the same transaction.  `parent` is the image it was built or committed from
        (Docker's Parent): untagged parents are intermediate images, hidden from `images`.
        Returns the image and whether anything changed.
        """
        image_id = sha256_digest(config_raw)
        config = json.loads(config_raw)
        if not self._content.exists(image_id):
            self._content.write_blob(config_raw, expected_digest=image_id)
        sizes = {chain: self._layer_size(chain) for chain, _, _, _ in layers}
        with self._lock, metadata.transaction(self._db) as db:
            changed = (
                db.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone() is None
            )
            below: ChainID | None = None
            for chain, diff_id, blob, media_type in layers:
                db.execute(
                    "INSERT OR IGNORE INTO image_layers (chain_id, diff_id, parent, size) "
                    "VALUES (?, ?, ?, ?)",
                    (chain, diff_id, below, sizes[chain]),
                )
                if blob is not None:
                    db.execute(
                        "INSERT OR REPLACE INTO image_layer_blobs "
                        "(blob, diff_id, media_type, size) VALUES (?, ?, ?, ?)",
                        (blob.digest, diff_id, media_type, blob.size),
                    )
                below = chain
            chains = [chain for chain, _, _, _ in layers]
            db.execute(
                "INSERT OR IGNORE INTO images "
                "(id, config, created, size, top_layer, chain_ids, last_tag_time) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    image_id,
                    config_raw.decode(),
                    str(config.get("created") or _now()),
                    sum(sizes.values()),
                    chains[-1] if chains else None,
                    json.dumps(chains),
                    None,
                ),
            )
            if parent is not None and parent != image_id:
                db.execute(
                    "INSERT OR IGNORE INTO image_parents (image_id, parent) VALUES (?, ?)",
                    (image_id, parent),
                )
            for ref in references:
                key = f"{ref.name}@{ref.digest}" if ref.digest else str(ref.with_default_tag())
                row = db.execute("SELECT image_id FROM image_refs WHERE ref = ?", (key,)).fetchone()
                if row is None or row[0] != image_id:
                    changed = True
                    self._set_ref(db, ref, image_id)
            self._index.add(hex_of(image_id))
        return self.get(image_id), changed

    def add_repo_digest(self, image_id: str, ref: Reference) -> None:
        """Record `ref` (name@digest, e.g. after a push) as a RepoDigest of `image_id`."""
        with self._lock, metadata.transaction(self._db) as db:
            self._set_ref(db, ref, image_id)

    def _layer_size(self, chain: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT size FROM image_layers WHERE chain_id = ?", (chain,)
            ).fetchone()
        return int(row[0]) if row is not None else self._snapshots.usage(chain).size

    def layer_sizes(self, image: Image) -> builtins.list[int]:
        """The unpacked size of each of `image`'s layers, bottom first."""
        return [self._layer_size(chain) for chain in image.chain_ids]

    def layer_blobs(self, image: Image) -> builtins.list[tuple[BlobInfo, str]]:
        """The stored blob and media type of each of `image`'s layers, bottom first."""
        result: builtins.list[tuple[BlobInfo, str]] = []
        for diff_id in image.config.get("rootfs", {}).get("diff_ids", []):
            with self._lock:
                rows = self._db.execute(
                    "SELECT blob, media_type, size FROM image_layer_blobs WHERE diff_id = ?",
                    (diff_id,),
                ).fetchall()
            row = next((r for r in rows if self._content.exists(r[0])), None)
            if row is None:
                raise errors.NotFound(f"layer {diff_id} of image {image.id}: no stored blob")
            result.append((BlobInfo(row[0], int(row[2])), str(row[1])))
        return result

    # -- lookup ------------------------------------------------------------------------

    def _resolve(self, ref_or_id: str) -> str:
        """The image id `ref_or_id` names (Docker's order: digest, reference, id prefix)."""
        text = ref_or_id
        with self._lock:
            if is_digest(text) or is_full_hex_id(text):
                image_id = text if is_digest(text) else "sha256:" + text
                if hex_of(image_id) in self._index:
                    return image_id
                raise errors.ImageNotFound(text)
            ref = parse_normalized(text)
            key = f"{ref.name}@{ref.digest}" if ref.digest else str(ref.with_default_tag())
            row = self._db.execute(
                "SELECT image_id FROM image_refs WHERE ref = ?", (key,)
            ).fetchone()
            if row is not None:
                return str(row[0])
            prefix = text.removeprefix("sha256:")
            if prefix and set(prefix) <= _HEX:
                try:
                    return "sha256:" + self._index.get(prefix)
                except errors.ImageNotFound:
                    pass
            raise errors.ImageNotFound(ref.familiar() if ref.digest else familiar(key))

    def _load(self, image_ids: Sequence[str] | None = None) -> list[Image]:
        with self._lock:
            if image_ids is None:
                rows = self._db.execute(
                    "SELECT id, config, created, size, top_layer, chain_ids, last_tag_time "
                    "FROM images ORDER BY created DESC"
                ).fetchall()
                ref_rows = self._db.execute(
                    "SELECT ref, image_id FROM image_refs ORDER BY rowid"
                ).fetchall()
            else:
                marks = ",".join("?" * len(image_ids))
                rows = self._db.execute(
                    "SELECT id, config, created, size, top_layer, chain_ids, last_tag_time "
                    f"FROM images WHERE id IN ({marks})",
                    tuple(image_ids),
                ).fetchall()
                ref_rows = self._db.execute(
                    f"SELECT ref, image_id FROM image_refs WHERE image_id IN ({marks}) "
                    "ORDER BY rowid",
                    tuple(image_ids),
                ).fetchall()
        tags: dict[str, list[str]] = {}
        digests: dict[str, list[str]] = {}
        for ref_text, image_id in ref_rows:
            target = digests if "@" in ref_text else tags
            target.setdefault(image_id, []).append(familiar(ref_text))
        return [
            Image(
                id=r[0],
                repo_tags=tuple(tags.get(r[0], ())),
                repo_digests=tuple(digests.get(r[0], ())),
                created=r[2],
                size=r[3],
                config=json.loads(r[1]),
                top_layer=r[4],
                chain_ids=tuple(json.loads(r[5])),
                last_tag_time=r[6] or "",
            )
            for r in rows
        ]

    def get(self, ref_or_id: str) -> Image:
        """The image named by a reference, a full id or an id prefix; ImageNotFound if none."""
        with self._lock:
            image_id = self._resolve(ref_or_id)
            found = self._load([image_id])
        if not found:
            raise errors.ImageNotFound(ref_or_id)
        return found[0]

    def list(self) -> list[Image]:
        """Every image, newest first."""
        return self._load()

    # -- tags --------------------------------------------------------------------------

    @staticmethod
    def _parse_new_tag(target: str) -> Reference:
        ref = parse_tagged(target)
        if ref.digest is not None:
            raise errors.InvalidParameter("refusing to create a tag with a digest reference")
        if ref.path == "library/sha256" or ref.path == "sha256":
            raise errors.InvalidParameter(
                "refusing to create an ambiguous tag using digest algorithm as name"
            )
        return ref

    def _set_ref(self, db: Any, ref: Reference, image_id: str) -> None:
        db.execute(
            "INSERT OR REPLACE INTO image_refs (ref, image_id) VALUES (?, ?)", (str(ref), image_id)
        )
        db.execute("UPDATE images SET last_tag_time = ? WHERE id = ?", (_now(), image_id))

    def tag(self, source: str, target: str) -> None:
        """Point the tag `target` at the image `source` names (moving it if it exists)."""
        ref = self._parse_new_tag(target)
        with self._lock:
            image_id = self._resolve(source)
            with metadata.transaction(self._db) as db:
                self._set_ref(db, ref, image_id)

    # -- removal -----------------------------------------------------------------------

    def _refs_of(self, image_id: str) -> builtins.list[Reference]:
        rows = self._db.execute(
            "SELECT ref FROM image_refs WHERE image_id = ? ORDER BY rowid", (image_id,)
        ).fetchall()
        return [parse_normalized(r[0]) for r in rows]

    def remove(
        self,
        ref_or_id: str,
        *,
        force: bool = False,
        in_use_by: Callable[[str], str | None],
        is_running: Callable[[str], bool] | None = None,
    ) -> builtins.list[dict[str, str]]:
        """Untag and/or delete an image with Docker's rules and messages.

        `in_use_by(image_id)` names a container using the image (or None);
        `is_running(container_id)` tells whether it runs (assumed so when not given):
        a running user is a conflict even with `force`, a stopped one only without.
        Returns Docker's records: [{"Untagged": ...}, ..., {"Deleted": ...}, ...].
        """
        with self._lock:
            image_id = self._resolve(ref_or_id)
            short = short_id(image_id)
            refs = self._refs_of(image_id)
            records: builtins.list[dict[str, str]] = []
            user = in_use_by(image_id)
            running = user is not None and (is_running is None or is_running(user))
            by_id = image_id.startswith(ref_or_id) or hex_of(image_id).startswith(ref_or_id)
            with metadata.transaction(self._db) as db:
                if not by_id:
                    if not force and _single_reference(refs) and user is not None:
                        raise errors.ImageInUse(
                            f'conflict: unable to remove repository reference "{ref_or_id}" '
                            f"(must force) - container {short_id(user)} is using its "
                            f"referenced image {short}"
                        )
                    ref = parse_normalized(ref_or_id)
                    key = f"{ref.name}@{ref.digest}" if ref.digest else str(ref.with_default_tag())
                    db.execute("DELETE FROM image_refs WHERE ref = ?", (key,))
                    records.append({"Untagged": familiar(key)})
                    refs = [r for r in refs if str(r) != key]
                    if ref.digest is None and not any(
                        r.name == ref.name and r.digest is None for r in refs
                    ):
                        # The last tag of a repository takes its digest references along.
                        for r in [r for r in refs if r.name == ref.name]:
                            db.execute("DELETE FROM image_refs WHERE ref = ?", (str(r),))
                            records.append({"Untagged": r.familiar()})
                        refs = [r for r in refs if r.name != ref.name]
                    if refs:
                        return records
                    if user is not None and (running or not force):
                        # Docker keeps an image in use once its last name is gone.
                        return records
                else:
                    if len(refs) > 1 and not force and not _single_reference(refs):
                        raise errors.Conflict(
                            f"conflict: unable to delete {short} (must be forced) - image is "
                            "referenced in multiple repositories"
                        )
                if user is not None and running:
                    raise errors.ImageInUse(
                        f"conflict: unable to delete {short} (cannot be forced) - image is "
                        f"being used by running container {short_id(user)}"
                    )
                if self._children(db, image_id):
                    raise errors.Conflict(
                        f"conflict: unable to delete {short} (cannot be forced) - image has "
                        "dependent child images"
                    )
                if user is not None and not force:
                    raise errors.ImageInUse(
                        f"conflict: unable to delete {short} (must be forced) - image is "
                        f"being used by stopped container {short_id(user)}"
                    )
                for r in refs:
                    db.execute("DELETE FROM image_refs WHERE ref = ?", (str(r),))
                    records.append({"Untagged": r.familiar()})
                deleted = [image_id, *self._prunable_ancestors(db, image_id, in_use_by)]
                for gone in deleted:
                    db.execute("DELETE FROM images WHERE id = ?", (gone,))
                    db.execute("DELETE FROM image_parents WHERE image_id = ?", (gone,))
            for gone in deleted:
                self._index.remove(hex_of(gone))
                records.append({"Deleted": gone})
            records.extend({"Deleted": c} for c in self.collect_garbage())
            return records

    @staticmethod
    def _children(db: Any, image_id: str) -> builtins.list[str]:
        rows = db.execute("SELECT image_id FROM image_parents WHERE parent = ?", (image_id,))
        return [r[0] for r in rows]

    def _prunable_ancestors(
        self, db: Any, image_id: str, in_use_by: Callable[[str], str | None]
    ) -> builtins.list[str]:
        """The untagged intermediate images above `image_id` that go with it, as Docker's
        classic builder's step images do: each has no name, no other child and no user."""
        found: builtins.list[str] = []
        current = image_id
        while True:
            row = db.execute(
                "SELECT parent FROM image_parents WHERE image_id = ?", (current,)
            ).fetchone()
            if row is None:
                return found
            parent = str(row[0])
            named = db.execute("SELECT 1 FROM image_refs WHERE image_id = ?", (parent,)).fetchone()
            others = [c for c in self._children(db, parent) if c != current]
            if named is not None or others or in_use_by(parent) is not None:
                return found
            if db.execute("SELECT 1 FROM images WHERE id = ?", (parent,)).fetchone() is None:
                return found
            found.append(parent)
            current = parent

    def parents(self) -> dict[str, str]:
        """image id -> the image it was built or committed from."""
        with self._lock:
            rows = self._db.execute("SELECT image_id, parent FROM image_parents").fetchall()
        return {str(child): str(parent) for child, parent in rows}

    # -- garbage -----------------------------------------------------------------------

    def collect_garbage(self, *, at_start: bool = False) -> builtins.list[str]:
        """Delete layers, snapshots and blobs no image references and no lease protects.

        Returns the chain ids of the layers removed.  With `at_start`, snapshots of
        interrupted unpacks go too (only safe before any operation runs).  Committed
        snapshots still used as a parent (a container's rootfs) are kept until a later
        collection finds them free.
        """
        removed: builtins.list[str] = []
        with self._lock:
            rows = self._db.execute("SELECT id, chain_ids FROM images").fetchall()
            live_chains: set[str] = set(self._leases)
            live_blobs: set[str] = set(self._leases)
            for image_id, chains in rows:
                live_chains.update(json.loads(chains))
                live_blobs.add(image_id)
            with metadata.transaction(self._db) as db:
                layer_rows = db.execute("SELECT chain_id, diff_id FROM image_layers").fetchall()
                dead = [c for c, _ in layer_rows if c not in live_chains]
                db.executemany("DELETE FROM image_layers WHERE chain_id = ?", [(c,) for c in dead])
                live_diffs = {d for c, d in layer_rows if c in live_chains}
                blob_rows = db.execute("SELECT blob, diff_id FROM image_layer_blobs").fetchall()
                db.executemany(
                    "DELETE FROM image_layer_blobs WHERE blob = ?",
                    [(b,) for b, d in blob_rows if d not in live_diffs and b not in live_blobs],
                )
                live_blobs.update(b for b, d in blob_rows if d in live_diffs)
            for digest in list(self._content.list()):
                if digest not in live_blobs:
                    self._content.delete(digest)
            # Remove unreferenced committed snapshots, children before parents.
            while True:
                infos = self._snapshots.list()
                parents = {i.parent for i in infos if i.parent is not None}
                victims = [
                    i.key
                    for i in infos
                    if i.key not in parents
                    and (
                        (i.kind is Kind.COMMITTED and i.key not in live_chains)
                        or (at_start and i.key.startswith(_EXTRACT_PREFIX))
                    )
                ]
                if not victims:
                    break
                for key in victims:
                    self._snapshots.remove(key)
                    if not key.startswith(_EXTRACT_PREFIX):
                        removed.append(key)
        return removed

    # -- inspect -----------------------------------------------------------------------

    def inspect(self, ref_or_id: str) -> dict[str, Any]:
        """Docker's GET /images/{name}/json body."""
        image = self.get(ref_or_id)
        data: dict[str, str] = {}
        if image.top_layer is not None and self._snapshots.exists(image.top_layer):
            top = self._snapshots.fs_path(image.top_layer)
            lowers = self._snapshots.parent_paths(image.top_layer)
            if lowers:
                data["LowerDir"] = ":".join(str(p) for p in lowers)
            data["MergedDir"] = str(top.parent / "merged")
            data["UpperDir"] = str(top)
            data["WorkDir"] = str(top.parent / "work")
        result = inspect(image, data)
        result["Parent"] = self.parents().get(image.id, "")
        return result

    def layer_chain(self, image: Image) -> builtins.list[str]:
        """Chain ids of `image`'s layers, bottom first."""
        diff_ids = image.config.get("rootfs", {}).get("diff_ids", [])
        return [str(c) for c in chain_ids(diff_ids)]


def _single_reference(refs: Sequence[Reference]) -> bool:
    """Docker's isSingleReference: at most one tag, and every reference in one repository."""
    if len(refs) <= 1:
        return len(refs) == 1
    single: Reference | None = None
    canonical: set[str] = set()
    for r in refs:
        if r.digest is not None:
            canonical.add(r.name)
        elif single is None:
            single = r
        else:
            return False
    if single is None:
        single = refs[0]
    return len(canonical) == 1 and single.name in canonical
