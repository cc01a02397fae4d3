"""FROM images: found in the store, or pulled through the daemon's distribution service
(always with `--pull`), with the registry credentials the client sent for the build;
and the one platform this builder can build for (the host's).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from dockling import errors
from dockling.build.args import Platform, host
from dockling.distribution.auth import Credentials
from dockling.distribution.progress import Progress, to_message
from dockling.distribution.service import DistributionService, registry_domain
from dockling.images.store import Image, ImageService
from dockling.reference import parse_normalized

Send = Callable[[dict[str, Any]], Awaitable[None]]


def check_platform(text: str | None) -> None:
    """Accept an empty `--platform` or the host's; the builder runs steps natively, so any
    other is refused (InvalidParameter) rather than built wrongly."""
    if not text:
        return
    wanted = Platform.parse(text)
    native = host()
    if wanted.os != native.os or wanted.architecture != native.architecture:
        raise errors.InvalidParameter(
            f"platform {text} is not supported: this builder runs steps natively and can "
            f"only build for {native}"
        )


def credentials_for(reference: str, auth: Mapping[str, Credentials]) -> Credentials | None:
    """The credentials of `auth` (keyed as docker's config.json: "host:port" or Docker Hub's
    URL) for the registry of `reference`."""
    domain = parse_normalized(reference).domain
    for key, credentials in auth.items():
        if registry_domain(key) == domain:
            return credentials
    return None


async def base_image(
    images: ImageService,
    distribution: DistributionService | None,
    reference: str,
    *,
    always_pull: bool,
    platform: str,
    auth: Mapping[str, Credentials],
    send: Send,
) -> Image:
    """The image FROM `reference` names: the stored one unless `always_pull` or missing, in
    which case it is pulled (progress sent as Docker's JSON status messages)."""
    if not always_pull:
        try:
            return await asyncio.to_thread(images.get, reference)
        except errors.NotFound:
            if distribution is None:
                raise
    if distribution is None:
        raise errors.NotImplementedFeature("this builder cannot pull images")
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Progress | None] = asyncio.Queue()
    cancel = threading.Event()
    credentials = credentials_for(reference, auth)

    def sink(event: Progress) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, event)

    def pull() -> None:
        try:
            distribution.pull(
                reference, platform=platform, credentials=credentials, sink=sink, cancel=cancel
            )
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    task = asyncio.create_task(asyncio.to_thread(pull))
    try:
        while (event := await queue.get()) is not None:
            await send(to_message(event))
        await task
    finally:
        if not task.done():
            cancel.set()
            await asyncio.gather(task, return_exceptions=True)
    return await asyncio.to_thread(images.get, reference)
