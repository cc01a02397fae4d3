"""Resolve a reference to one image manifest: manifest lists and OCI indexes narrowed by
platform, Docker schema2 and OCI manifests accepted, schema1 refused with a clear message.
"""

from __future__ import annotations

import json
import platform as host_platform
from dataclasses import dataclass
from typing import Any

from dockling import errors
from dockling.distribution.auth import repository_scope
from dockling.distribution.client import RegistryClient, registry_error
from dockling.ids import Digest, is_digest, sha256_digest
from dockling.reference import Reference

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST, *SCHEMA1))
LAYER_TYPES = frozenset(
    {
        DOCKER_LAYER_GZIP,
        DOCKER_LAYER_TAR,
        OCI_LAYER,
        OCI_LAYER + "+gzip",
        OCI_LAYER + "+zstd",
    }
)
MAX_MANIFEST = 4 << 20
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    urls: tuple[str, ...] = ()

    @classmethod
    def parse(cls, data: Any, what: str) -> Descriptor:
        if not isinstance(data, dict):
            raise errors.InvalidParameter(f"invalid manifest: {what} is not an object")
        digest = data.get("digest")
        size = data.get("size")
        if not isinstance(digest, str) or not is_digest(digest):
            raise errors.InvalidParameter(f"invalid manifest: {what} has a bad digest {digest!r}")
        if not isinstance(size, int) or size < 0:
            raise errors.InvalidParameter(f"invalid manifest: {what} has a bad size {size!r}")
        return cls(str(data.get("mediaType", "")), Digest(digest), size)


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


def host() -> Platform:
    """This machine's platform, as Docker names it."""
    machine = host_platform.machine()
    arch = _ARCH.get(machine, machine)
    return Platform("linux", arch, "v8" if arch == "arm64" else "")


def parse_platform(text: str) -> Platform:
    """Parse "os[/arch[/variant]]" ("linux/amd64", "linux/arm/v7"); empty means the host."""
    if not text:
        return host()
    parts = text.lower().split("/")
    if len(parts) > 3 or not all(parts):
        raise errors.InvalidParameter(f'"{text}": unknown operating system or architecture')
    if len(parts) == 1:
        return Platform(parts[0], host().architecture)
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


@dataclass(frozen=True, slots=True)
class Resolved:
    """The manifest chosen for a pull.

    `digest` is what RepoDigests records: the digest of the tag's target (the index when
    there is one, as Docker does); `manifest_digest` is the platform manifest's own.
    """

    digest: Digest
    manifest_digest: Digest
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


def _fetch_manifest(
    client: RegistryClient, ref: Reference, reference: str
) -> tuple[bytes, str, Digest]:
    scope = repository_scope(ref.path)
    resp = client.request(
        "GET", f"/v2/{ref.path}/manifests/{reference}", scope=scope, headers={"Accept": ACCEPT}
    )
    with resp:
        if resp.status != 200:
            raise _manifest_error(resp.status, registry_error(resp), ref)
        raw = resp.read_limited(MAX_MANIFEST)
        media_type = resp.header("Content-Type").split(";")[0].strip()
    digest = sha256_digest(raw)
    if is_digest(reference) and digest != reference:
        raise errors.DataCorrupted(
            f"manifest verification failed for digest {reference}: got {digest}"
        )
    return raw, media_type, digest


def _manifest_error(status: int, err: Any, ref: Reference) -> errors.DocklingError:
    name = ref.familiar_name
    detail = f"{err.code.lower().replace('_', ' ')}: {err.message}" if err.code else err.message
    if status == 404 and err.code == "MANIFEST_UNKNOWN":
        target = ref.digest or ref.tag or "latest"
        return errors.NotFound(f"manifest for {name}:{target} not found: {detail}")
    if status in (401, 403, 404):
        return errors.NotFound(
            f"pull access denied for {name}, repository does not exist or may require "
            f"'dockling login': {detail or 'denied: requested access to the resource is denied'}"
        )
    return errors.Unavailable(f"error from registry for {name}: {status} {detail}")


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise errors.InvalidParameter(f"invalid manifest: {exc}") from None
    if not isinstance(data, dict):
        raise errors.InvalidParameter("invalid manifest: not a JSON object")
    return data


def _kind(data: dict[str, Any], header_type: str) -> str:
    media_type = str(data.get("mediaType") or header_type)
    if data.get("schemaVersion") == 1 or media_type in SCHEMA1:
        raise errors.InvalidParameter(
            "image manifest schema 1 (application/vnd.docker.distribution.manifest.v1+json) "
            "is not supported: it was deprecated by Docker and removed from registries; "
            "push the image again with a current client to get a schema 2 or OCI manifest"
        )
    if media_type in INDEX_TYPES or (not media_type and "manifests" in data):
        return "index"
    if media_type in MANIFEST_TYPES or (not media_type and "config" in data):
        return "manifest"
    raise errors.InvalidParameter(f"unsupported manifest media type {media_type!r}")


def _matches(entry: dict[str, Any], want: Platform) -> bool:
    plat = entry.get("platform") or {}
    if plat.get("os") != want.os or plat.get("architecture") != want.architecture:
        return False
    if want.variant:
        variant = plat.get("variant", "")
        # arm64 images usually leave out the default variant v8.
        return bool(variant == want.variant or (not variant and want.variant == "v8"))
    return True


def resolve(client: RegistryClient, ref: Reference, platform: Platform) -> Resolved:
    """Fetch the manifest `ref` names (tag or digest) and narrow an index to `platform`."""
    reference = ref.digest or ref.tag or "latest"
    raw, header_type, top_digest = _fetch_manifest(client, ref, reference)
    data = _decode(raw)
    digest = top_digest
    kind = _kind(data, header_type)
    if kind == "index":
        entries = data.get("manifests") or []
        chosen = next((e for e in entries if isinstance(e, dict) and _matches(e, platform)), None)
        if chosen is None and platform.variant:
            plain = Platform(platform.os, platform.architecture)
            chosen = next(
                (e for e in entries if isinstance(e, dict) and _matches(e, plain)),
                None,
            )
        if chosen is None:
            raise errors.NotFound(
                f"no matching manifest for {platform} in the manifest list entries"
            )
        entry = Descriptor.parse(chosen, "manifest list entry")
        raw, header_type, digest = _fetch_manifest(client, ref, entry.digest)
        data = _decode(raw)
        if _kind(data, header_type) != "manifest":
            raise errors.InvalidParameter("invalid manifest list: an entry is itself a list")
    config = Descriptor.parse(data.get("config"), "config")
    layers_raw = data.get("layers")
    if not isinstance(layers_raw, list):
        raise errors.InvalidParameter("invalid manifest: no layers")
    layers = tuple(Descriptor.parse(item, f"layer {i}") for i, item in enumerate(layers_raw))
    for layer in layers:
        if layer.media_type == DOCKER_FOREIGN or (
            layer.media_type
            and layer.media_type not in LAYER_TYPES
            and "nondistributable" not in layer.media_type
        ):
            raise errors.InvalidParameter(
                f"unsupported layer media type {layer.media_type!r} ({layer.digest})"
            )
    return Resolved(
        digest=top_digest,
        manifest_digest=digest,
        media_type=str(data.get("mediaType") or header_type),
        config=config,
        layers=layers,
    )
