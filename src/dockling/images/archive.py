"""`docker save` and `docker load`: images as Docker's archive format and as an OCI layout.

A saved file holds, like Docker 25 and later, both views of the same blobs:
`blobs/sha256/<hex>` (configs, uncompressed layer tars, OCI manifests), `index.json` and
`oci-layout` (an OCI image layout) plus `manifest.json` and `repositories` (Docker's
archive, read by `docker load` and `skopeo ... docker-archive:`).  Layers are written
uncompressed, so each layer blob's digest is its DiffID.  `load` accepts either view
(manifest.json first), plain or gzip-compressed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from dockling import errors
from dockling.archive.compression import decompressed
from dockling.content.store import BlobInfo
from dockling.ids import ChainID, DiffID, chain_id, hex_of, sha256_digest
from dockling.images.store import Image, ImageService
from dockling.reference import Reference, parse_normalized, parse_tagged

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
FORMATS = ("docker", "oci")
_CHUNK = 1 << 20


def _blob_name(digest: str) -> str:
    return f"blobs/sha256/{hex_of(digest)}"


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class _Saved:
    image: Image
    tags: tuple[Reference, ...]  # the names the image is saved under (none when saved by id)


def _names_for(images: ImageService, names: Sequence[str]) -> list[_Saved]:
    """The images `names` pick, each with the tags to record (Docker's rules, simplified)."""
    chosen: dict[str, list[Reference]] = {}
    found: dict[str, Image] = {}
    for name in names:
        image = images.get(name)
        found[image.id] = image
        tags = chosen.setdefault(image.id, [])
        bare = name.removeprefix("sha256:")
        if hex_of(image.id).startswith(bare):
            continue  # saved by id: no name goes with it
        ref = parse_normalized(name)
        if ref.digest is None:
            tagged = ref.with_default_tag()
            if tagged not in tags:
                tags.append(tagged)
    return [_Saved(found[i], tuple(tags)) for i, tags in chosen.items()]


class _TarWriter:
    def __init__(self, out: BinaryIO) -> None:
        self.tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self.written: set[str] = set()

    def directory(self, name: str) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        self.tar.addfile(info)

    def data(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        self.tar.addfile(info, io.BytesIO(data))
        self.written.add(name)

    def file(self, name: str, stream: IO[bytes], size: int) -> None:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        self.tar.addfile(info, stream)
        self.written.add(name)

    def close(self) -> None:
        self.tar.close()


def save(
    images: ImageService,
    names: Sequence[str],
    out: BinaryIO,
    *,
    fmt: str = "docker",
    spool_dir: Path,
) -> None:
    """Write the images `names` pick to `out` as one tar (see the module docstring).

    `fmt="oci"` writes only the OCI layout.  Compressed layer blobs are decompressed
    through a temporary file in `spool_dir` (a tar member's size must come first).
    """
    if fmt not in FORMATS:
        raise errors.InvalidParameter(f"unknown save format {fmt!r}: use docker or oci")
    if not names:
        raise errors.InvalidParameter("no images to save: name at least one")
    saved = _names_for(images, names)
    writer = _TarWriter(out)
    docker_manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    index: list[dict[str, Any]] = []
    writer.directory("blobs")
    writer.directory("blobs/sha256")
    with images.lease() as held:
        for item in saved:
            image = item.image
            images.hold(held, image.id, *image.chain_ids)
            config_raw = images.content().read(image.id)
            diff_ids = [str(d) for d in image.config.get("rootfs", {}).get("diff_ids", [])]
            layers: list[dict[str, Any]] = []
            for diff_id, (blob, media_type) in zip(
                diff_ids, images.layer_blobs(image), strict=True
            ):
                name = _blob_name(diff_id)
                size = _write_layer(images, writer, name, blob, media_type, diff_id, spool_dir)
                layers.append({"mediaType": OCI_LAYER, "digest": diff_id, "size": size})
            if _blob_name(image.id) not in writer.written:
                writer.data(_blob_name(image.id), config_raw)
            manifest = _json_bytes(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {
                        "mediaType": OCI_CONFIG,
                        "digest": image.id,
                        "size": len(config_raw),
                    },
                    "layers": layers,
                }
            )
            manifest_digest = sha256_digest(manifest)
            if _blob_name(manifest_digest) not in writer.written:
                writer.data(_blob_name(manifest_digest), manifest)
            descriptor: dict[str, Any] = {
                "mediaType": OCI_MANIFEST,
                "digest": manifest_digest,
                "size": len(manifest),
            }
            for ref in item.tags or (None,):
                entry: dict[str, Any] = dict(descriptor)
                if ref is not None:
                    entry["annotations"] = {
                        NAME_ANNOTATION: str(ref),
                        REF_ANNOTATION: ref.tag or "latest",
                    }
                    repositories.setdefault(ref.familiar_name, {})[ref.tag or "latest"] = hex_of(
                        image.id
                    )
                index.append(entry)
            docker_manifest.append(
                {
                    "Config": _blob_name(image.id),
                    "RepoTags": [r.familiar() for r in item.tags] or None,
                    "Layers": [_blob_name(d) for d in diff_ids],
                }
            )
        writer.data(
            "index.json",
            _json_bytes({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}),
        )
        writer.data("oci-layout", _json_bytes({"imageLayoutVersion": "1.0.0"}))
        if fmt == "docker":
            writer.data("manifest.json", _json_bytes(docker_manifest))
            if repositories:
                writer.data("repositories", _json_bytes(repositories))
    writer.close()


def _write_layer(
    images: ImageService,
    writer: _TarWriter,
    name: str,
    blob: BlobInfo,
    media_type: str,
    diff_id: str,
    spool_dir: Path,
) -> int:
    """Add the uncompressed layer `diff_id` as `name` (once); return its size."""
    content = images.content()
    if blob.digest == diff_id:
        if name not in writer.written:
            with content.open(blob.digest) as f:
                writer.file(name, f, blob.size)
        return blob.size
    spool_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=spool_dir) as spool:
        with content.open(blob.digest) as f:
            raw, _ = decompressed(f)
            shutil.copyfileobj(raw, spool, _CHUNK)
        size = spool.tell()
        if name not in writer.written:
            spool.seek(0)
            writer.file(name, spool, size)
    return size


# -- load -----------------------------------------------------------------------------


class _Archive:
    """Random access to the members of a saved file (plain or compressed tar)."""

    def __init__(self, path: Path) -> None:
        try:
            self.tar = tarfile.open(path, mode="r:*")  # noqa: SIM115 - closed by close()
        except (tarfile.TarError, EOFError, OSError) as e:
            raise errors.InvalidParameter(f"invalid image archive: {e}") from None
        self.members = {_clean(m.name): m for m in self.tar.getmembers()}

    def close(self) -> None:
        self.tar.close()

    def has(self, name: str) -> bool:
        return _clean(name) in self.members

    def open(self, name: str) -> BinaryIO:
        member = self.members.get(_clean(name))
        if member is None:
            raise errors.InvalidParameter(f"invalid image archive: {name} is missing")
        stream = self.tar.extractfile(member)
        if stream is None:
            raise errors.InvalidParameter(f"invalid image archive: {name} is not a file")
        return cast(BinaryIO, stream)

    def read(self, name: str, *, limit: int = 64 << 20) -> bytes:
        with self.open(name) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise errors.InvalidParameter(f"invalid image archive: {name} is too large")
        return data

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as e:
            raise errors.InvalidParameter(f"invalid image archive: {name}: {e}") from None


def _clean(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def _verified(archive: _Archive, name: str, digest: str) -> bytes:
    data = archive.read(name)
    if sha256_digest(data) != digest:
        raise errors.DataCorrupted(f"invalid image archive: {name} does not match {digest}")
    return data


def load(
    images: ImageService, path: Path, *, progress: Callable[[str], None] | None = None
) -> list[str]:
    """Load every image of the saved file at `path`; return Docker's "Loaded image" lines.

    Layers are verified against the config's DiffIDs and unpacked once (a layer stack
    already present is not read again).  Each image becomes visible in one transaction.
    """
    archive = _Archive(path)
    try:
        if archive.has("manifest.json"):
            entries = _docker_entries(archive)
        elif archive.has("index.json"):
            entries = _oci_entries(archive)
        else:
            raise errors.InvalidParameter(
                "invalid image archive: neither manifest.json nor index.json found"
            )
        lines: list[str] = []
        for config_raw, layer_names, refs in entries:
            image = _load_one(images, archive, config_raw, layer_names, refs)
            done = [f"Loaded image: {r.familiar()}" for r in refs] or [
                f"Loaded image ID: {image.id}"
            ]
            for line in done:
                if progress is not None:
                    progress(line)
            lines.extend(done)
        return lines
    finally:
        archive.close()


_Entry = tuple[bytes, list[str], list[Reference]]


def _docker_entries(archive: _Archive) -> list[_Entry]:
    manifest = archive.json("manifest.json")
    if not isinstance(manifest, list):
        raise errors.InvalidParameter("invalid image archive: manifest.json is not a list")
    entries: list[_Entry] = []
    for item in manifest:
        config_name = str(item.get("Config", ""))
        stem = config_name.rsplit("/", 1)[-1].removesuffix(".json")
        config_raw = _verified(archive, config_name, "sha256:" + stem)
        refs = [parse_tagged(t) for t in item.get("RepoTags") or []]
        entries.append((config_raw, [str(x) for x in item.get("Layers") or []], refs))
    return entries


def _oci_entries(archive: _Archive) -> list[_Entry]:
    entries: list[_Entry] = []
    index = archive.json("index.json")
    grouped: dict[str, tuple[bytes, list[str], list[Reference]]] = {}
    for descriptor in index.get("manifests") or []:
        manifest_digest, manifest = _pick_manifest(archive, descriptor)
        config_digest = str(manifest["config"]["digest"])
        config_raw = _verified(archive, _blob_name(config_digest), config_digest)
        layers = [_blob_name(str(layer["digest"])) for layer in manifest.get("layers") or []]
        entry = grouped.setdefault(manifest_digest, (config_raw, layers, []))
        ref = _oci_name(descriptor.get("annotations") or {})
        if ref is not None and ref not in entry[2]:
            entry[2].append(ref)
    entries.extend(grouped.values())
    return entries


def _pick_manifest(archive: _Archive, descriptor: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Follow an index descriptor to one image manifest (linux/amd64 or the first)."""
    for _ in range(4):
        digest = str(descriptor.get("digest", ""))
        doc = json.loads(_verified(archive, _blob_name(digest), digest))
        media = doc.get("mediaType") or descriptor.get("mediaType")
        if media not in (OCI_INDEX, DOCKER_MANIFEST_LIST) and "manifests" not in doc:
            return digest, doc
        children = doc.get("manifests") or []
        if not children:
            raise errors.InvalidParameter(f"invalid image archive: empty index {digest}")
        arch = os.uname().machine
        wanted = {"x86_64": "amd64", "aarch64": "arm64"}.get(arch, arch)
        descriptor = next(
            (c for c in children if (c.get("platform") or {}).get("architecture") == wanted),
            children[0],
        )
    raise errors.InvalidParameter("invalid image archive: indexes nested too deeply")


def _oci_name(annotations: dict[str, str]) -> Reference | None:
    for key in (NAME_ANNOTATION, REF_ANNOTATION):
        text = annotations.get(key, "")
        # A bare tag ("latest") in ref.name names no repository: it cannot be loaded by name.
        if text and (":" in text or "/" in text or key == NAME_ANNOTATION):
            try:
                return parse_tagged(text)
            except errors.InvalidParameter:
                continue
    return None


def _load_one(
    images: ImageService,
    archive: _Archive,
    config_raw: bytes,
    layer_names: list[str],
    refs: list[Reference],
) -> Image:
    try:
        config = json.loads(config_raw)
        diff_ids = [DiffID(str(d)) for d in config["rootfs"]["diff_ids"]]
    except (ValueError, KeyError, TypeError) as e:
        raise errors.InvalidParameter(f"invalid image archive: bad image config: {e}") from None
    if len(diff_ids) != len(layer_names):
        raise errors.InvalidParameter(
            f"invalid image archive: {len(layer_names)} layers for {len(diff_ids)} DiffIDs"
        )
    with images.lease() as held:
        layers: list[tuple[ChainID, DiffID, BlobInfo | None, str]] = []
        parent: ChainID | None = None
        for i, (diff_id, name) in enumerate(zip(diff_ids, layer_names, strict=True)):
            chain = chain_id(diff_ids[: i + 1])
            if images.has_layer(chain):
                images.hold(held, chain)
                layers.append((chain, diff_id, None, ""))
                parent = chain
                continue
            with archive.open(name) as stream, images.content().writer() as writer:
                writer.copy_from(stream)
                # Held before the commit makes it visible, so no collection can take it.
                images.hold(held, writer.digest())
                blob = writer.commit()
            got, _size, media_type = images.unpack_blob(blob.digest, parent, held)
            if got != diff_id:
                raise errors.DataCorrupted(
                    f"invalid image archive: layer {name} has DiffID {got}, "
                    f"the config says {diff_id}"
                )
            layers.append((chain, diff_id, blob, media_type))
            parent = chain
        image, _ = images.register_pulled(config_raw, layers, refs)
    return image
