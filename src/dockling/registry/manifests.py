"""Manifest media types, parsing and validation for PUT, and GET's content negotiation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dockling.registry.errors import RegistryError
from dockling.registry.names import check_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
IMAGE_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
MANIFEST_TYPES = IMAGE_TYPES + INDEX_TYPES
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    """What the registry needs to know about a manifest it is asked to store."""

    media_type: str
    blobs: tuple[str, ...]  # config and layers that must be in the repository
    children: tuple[str, ...]  # manifests an index points at
    subject: str | None
    artifact_type: str | None
    annotations: dict[str, str] = field(default_factory=dict)

    def descriptor(self, digest: str, size: int) -> dict[str, Any]:
        """The descriptor the referrers API lists for this manifest."""
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": digest, "size": size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = self.annotations
        return out


def _invalid(detail: str) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", detail)


def _descriptor(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"{where}: a descriptor must be an object")
    if not isinstance(value.get("mediaType"), str):
        raise _invalid(f"{where}: mediaType must be a string")
    digest = value.get("digest")
    if not isinstance(digest, str):
        raise _invalid(f"{where}: digest must be a string")
    try:
        check_digest(digest)
    except RegistryError:
        raise _invalid(f"{where}: invalid digest {digest!r}") from None
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where}: size must be a non-negative integer")
    return value


def _media_type(doc: dict[str, Any], content_type: str) -> str:
    declared = doc.get("mediaType")
    content_type = content_type.split(";", 1)[0].strip()
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType must be a string")
    if content_type in SCHEMA1 or declared in SCHEMA1:
        raise _invalid("Docker schema1 manifests are not supported; push schema2 or OCI")
    if declared and content_type and declared != content_type:
        raise _invalid(f"mediaType {declared!r} does not match Content-Type {content_type!r}")
    media_type = declared or content_type
    if not media_type:
        # OCI allows omitting mediaType; the structure tells manifest from index.
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in MANIFEST_TYPES:
        raise _invalid(f"unsupported manifest media type {media_type!r}")
    return media_type


def parse_manifest(body: bytes, content_type: str) -> ParsedManifest:
    """Validate a manifest body as the spec asks; MANIFEST_INVALID when it is not one."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid(f"manifest is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _invalid("manifest must be a JSON object")
    if doc.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    media_type = _media_type(doc, content_type)
    subject = None
    if "subject" in doc:
        subject = _descriptor(doc["subject"], "subject")["digest"]
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid("artifactType must be a string")
    annotations = doc.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise _invalid("annotations must be an object")
    if media_type in INDEX_TYPES:
        manifests = doc.get("manifests")
        if not isinstance(manifests, list):
            raise _invalid("an index needs a manifests list")
        children = tuple(
            _descriptor(m, f"manifests[{i}]")["digest"] for i, m in enumerate(manifests)
        )
        return ParsedManifest(media_type, (), children, subject, artifact_type, annotations)
    config = _descriptor(doc.get("config"), "config")
    layers = doc.get("layers", [])
    if not isinstance(layers, list):
        raise _invalid("layers must be a list")
    if media_type == DOCKER_MANIFEST and not layers:
        raise _invalid("a Docker image manifest needs at least one layer")
    blobs = [config["digest"]]
    for i, layer in enumerate(layers):
        d = _descriptor(layer, f"layers[{i}]")
        # Foreign layers (with urls) live elsewhere; the registry need not hold them.
        if not d.get("urls"):
            blobs.append(d["digest"])
    if not artifact_type and subject is not None:
        # The referrers API reports config.mediaType when artifactType is absent.
        artifact_type = config["mediaType"]
    return ParsedManifest(media_type, tuple(blobs), (), subject, artifact_type, annotations)


def accepts(accept_header: str, media_type: str) -> bool:
    """True when an Accept header allows `media_type` (no header, or a wildcard, allows all)."""
    if not accept_header.strip():
        return True
    for part in accept_header.split(","):
        item = part.split(";", 1)[0].strip().lower()
        if item in ("*/*", "application/*", media_type):
            return True
    return False
