"""The Engine API shapes of an image: GET /images/json entries and GET /images/{name}/json."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class Image:
    """One stored image.  `config` is the OCI image config exactly as stored (and hashed)."""

    id: str  # "sha256:<hex>", the digest of the config JSON
    repo_tags: tuple[str, ...]  # familiar form, "busybox:latest"
    repo_digests: tuple[str, ...]  # familiar form, "busybox@sha256:..."
    created: str  # RFC 3339
    size: int
    config: dict[str, Any]
    top_layer: str | None  # chain id of the topmost layer: a container snapshot's parent
    chain_ids: tuple[str, ...] = ()  # bottom layer first
    last_tag_time: str = ""

    @property
    def runtime_config(self) -> dict[str, Any]:
        """The "config" object (Env, Cmd, Entrypoint, ...); empty when the image has none."""
        value = self.config.get("config")
        return value if isinstance(value, dict) else {}


def unix_seconds(rfc3339: str) -> int:
    """Seconds since the epoch of an RFC 3339 timestamp (nanosecond fractions allowed)."""
    text = rfc3339.strip()
    if not text:
        return 0
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    main, _, rest = text.partition(".")
    if rest:
        # Python parses at most microseconds: drop the fraction, keep the offset.
        tz_at = max(rest.find("+"), rest.find("-"))
        text = main + (rest[tz_at:] if tz_at >= 0 else "")
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        return 0


def summary(image: Image) -> dict[str, Any]:
    """The GET /images/json entry for `image`."""
    labels = image.runtime_config.get("Labels")
    return {
        "Id": image.id,
        "ParentId": "",
        "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests),
        "Created": unix_seconds(image.created),
        "Size": image.size,
        "SharedSize": -1,
        "VirtualSize": image.size,
        "Labels": dict(labels) if isinstance(labels, dict) else {},
        "Containers": -1,
    }


def docker_config(runtime: dict[str, Any]) -> dict[str, Any]:
    """The image's runtime config in Docker's container.Config shape (null for unset)."""
    config: dict[str, Any] = {
        "Hostname": "",
        "Domainname": "",
        "User": runtime.get("User", ""),
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": runtime.get("Env"),
        "Cmd": runtime.get("Cmd"),
        "Image": "",
        "Volumes": runtime.get("Volumes"),
        "WorkingDir": runtime.get("WorkingDir", ""),
        "Entrypoint": runtime.get("Entrypoint"),
        "OnBuild": runtime.get("OnBuild"),
        "Labels": runtime.get("Labels"),
    }
    if runtime.get("ExposedPorts"):
        config["ExposedPorts"] = runtime["ExposedPorts"]
    if runtime.get("StopSignal"):
        config["StopSignal"] = runtime["StopSignal"]
    if runtime.get("Healthcheck"):
        config["Healthcheck"] = runtime["Healthcheck"]
    return config


def inspect(image: Image, graph_driver: dict[str, str]) -> dict[str, Any]:
    """The GET /images/{name}/json body for `image`; `graph_driver` is its Data map."""
    config = image.config
    rootfs = config.get("rootfs") or {}
    body: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests),
        "Parent": "",
        "Comment": config.get("comment", ""),
        "Created": image.created,
        "Container": config.get("container", ""),
        "ContainerConfig": docker_config(config.get("container_config") or {}),
        "DockerVersion": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Config": docker_config(image.runtime_config),
        "Architecture": config.get("architecture", ""),
        "Os": config.get("os", ""),
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": {"Name": "overlay2", "Data": graph_driver},
        "RootFS": {
            "Type": rootfs.get("type", "layers"),
            "Layers": list(rootfs.get("diff_ids", [])),
        },
        "Metadata": {"LastTagTime": image.last_tag_time or ZERO_TIME},
    }
    if config.get("variant"):
        body["Variant"] = config["variant"]
    return body
