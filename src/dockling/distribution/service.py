"""The distribution service the API calls: pull, push and login with one set of settings
and the suspended downloads that make a later pull resume.  Synchronous (run it in a
worker thread); progress goes to the caller's sink.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

from dockling import errors
from dockling.distribution.auth import Credentials
from dockling.distribution.client import RegistryClient
from dockling.distribution.fetch import Downloads
from dockling.distribution.progress import ProgressSink, discard
from dockling.distribution.pull import PullResult, pull_image
from dockling.distribution.push import PushResult, push_image
from dockling.distribution.resolver import parse_platform
from dockling.distribution.settings import (
    DOCKER_HUB_AUTH_KEY,
    DOCKER_HUB_DOMAIN,
    RegistrySettings,
)
from dockling.images.store import ImageService
from dockling.reference import LEGACY_DEFAULT_DOMAIN, parse_normalized


def registry_domain(server: str) -> str:
    """The registry a login server address names ("" and Docker Hub's URLs are docker.io)."""
    text = server.strip()
    if not text or text in (DOCKER_HUB_AUTH_KEY, DOCKER_HUB_DOMAIN, LEGACY_DEFAULT_DOMAIN):
        return DOCKER_HUB_DOMAIN
    if "://" in text:
        text = urlsplit(text).netloc
    text = text.rstrip("/")
    if text in ("index.docker.io", "registry-1.docker.io"):
        return DOCKER_HUB_DOMAIN
    return text


class DistributionService:
    def __init__(self, images: ImageService, settings: RegistrySettings) -> None:
        self.images = images
        self.settings = settings
        self.downloads = Downloads(images.content())

    def pull(
        self,
        reference: str,
        *,
        platform: str = "",
        credentials: Credentials | None = None,
        sink: ProgressSink = discard,
        cancel: threading.Event | None = None,
    ) -> PullResult:
        """Pull `reference` ("busybox", "host:5000/a/b:tag", "x@sha256:...")."""
        ref = parse_normalized(reference)
        return pull_image(
            self.images,
            self.downloads,
            self.settings,
            ref,
            parse_platform(platform),
            credentials=credentials,
            sink=sink,
            cancel=cancel,
        )

    def push(
        self,
        reference: str,
        *,
        credentials: Credentials | None = None,
        sink: ProgressSink = discard,
    ) -> PushResult:
        """Push the image tagged `reference` to its registry."""
        return push_image(
            self.images,
            self.settings,
            parse_normalized(reference),
            credentials=credentials,
            sink=sink,
        )

    def login(self, server: str, credentials: Credentials) -> str:
        """Check `credentials` against the registry's /v2/; "Login Succeeded" or Unauthorized."""
        domain = registry_domain(server)
        client = RegistryClient(self.settings, domain, credentials, for_push=True)
        with client.request("GET", "/v2/", scope="") as resp:
            status = resp.status
        if status == 200:
            return "Login Succeeded"
        if status in (401, 403):
            raise errors.Unauthorized(
                f"login attempt to {client.endpoint.base_url}/v2/ failed with status: "
                f"{status} Unauthorized"
            )
        raise errors.Unavailable(
            f"login attempt to {client.endpoint.base_url}/v2/ failed with status: {status}"
        )
