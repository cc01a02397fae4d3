"""`docker commit`: the container's effective config plus its upper dir make a new image."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

from dockling.containers.model import Container, Status
from dockling.containers.service import ContainerService
from dockling.images.commit import CommitRequest, commit
from dockling.images.store import Image

# Keys of a Docker container config a commit body may override.
_OVERRIDABLE = (
    "Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes",
    "StopSignal", "OnBuild", "Healthcheck",
)  # fmt: skip


def runtime_config(
    container: Container, image: Image, override: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The image config "config" object describing how `container` runs.

    The image's config with the container's settings on top (its full environment,
    command, entrypoint, working dir, user, labels, volumes), then the non-empty keys
    of `override` (the body of POST /commit).
    """
    config: dict[str, Any] = json.loads(json.dumps(image.runtime_config))
    spec = container.spec
    config["Env"] = list(container.process.env)
    if spec.entrypoint is not None:
        config["Entrypoint"] = list(spec.entrypoint) or None
        if spec.cmd is None:
            config.pop("Cmd", None)
    if spec.cmd is not None:
        config["Cmd"] = list(spec.cmd)
    if spec.working_dir:
        config["WorkingDir"] = spec.working_dir
    if spec.user:
        config["User"] = spec.user
    if spec.labels:
        config["Labels"] = {**(config.get("Labels") or {}), **spec.labels}
    if spec.volumes:
        config["Volumes"] = {**(config.get("Volumes") or {}), **{v: {} for v in spec.volumes}}
    if spec.stop_signal:
        config["StopSignal"] = spec.stop_signal
    for key in _OVERRIDABLE:
        value = (override or {}).get(key)
        if value:
            config[key] = value
    return {k: v for k, v in config.items() if v is not None}


async def commit_container(
    service: ContainerService,
    ref: str,
    *,
    reference: str = "",
    comment: str = "",
    author: str = "",
    changes: Sequence[str] = (),
    pause: bool = True,
    override: Mapping[str, Any] | None = None,
) -> Image:
    """Commit the container `ref` as a new image (tagged `reference` when given).

    A running container is paused for the copy when `pause` (Docker's default) so the
    layer is a consistent snapshot, and unpaused after, whatever happens.
    """
    container = service.get(ref)
    image = service.images.get(container.image_id)
    snapshotter = service.launcher.snapshotter
    request = CommitRequest(
        upper=snapshotter.fs_path(container.id),
        lowers=snapshotter.parent_paths(container.id),
        parent=image,
        container_id=container.id,
        runtime_config=runtime_config(container, image, override),
        created_by=" ".join([container.process.path, *container.process.args]),
        reference=reference,
        comment=comment,
        author=author,
        changes=tuple(changes),
    )
    paused = False
    if pause and container.state.status is Status.RUNNING:
        await service.pause(container.id)
        paused = True
    try:
        new_image = await asyncio.to_thread(commit, service.images, request)
    finally:
        if paused:
            await service.unpause(container.id)
    service.events.publish(
        "container",
        "commit",
        container.id,
        {
            "comment": comment,
            "imageID": new_image.id,
            "imageRef": reference,
            "name": container.name,
        },
    )
    return new_image
