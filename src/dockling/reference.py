"""Docker image references: parse, normalise ("busybox" = docker.io/library/busybox:latest)
and shorten back to the familiar form for display.  Grammar and messages follow Docker's
distribution/reference package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockling import errors

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_REFERENCE_RE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_HEX64_RE = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True, slots=True)
class Reference:
    """A normalised reference: `domain`/`path`, an optional tag and an optional digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full repository name, e.g. "docker.io/library/busybox"."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository name as users type it, e.g. "busybox" or "localhost:5000/a"."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_PREFIX) and "/" not in path[len(OFFICIAL_PREFIX) :]:
            path = path[len(OFFICIAL_PREFIX) :]
        return path

    def _suffix(self) -> str:
        out = ""
        if self.tag is not None:
            out += ":" + self.tag
        if self.digest is not None:
            out += "@" + self.digest
        return out

    def __str__(self) -> str:
        return self.name + self._suffix()

    def familiar(self) -> str:
        """The short display form, e.g. "busybox:latest"."""
        return self.familiar_name + self._suffix()

    def with_default_tag(self) -> Reference:
        """This reference with tag "latest" when it has neither tag nor digest."""
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, DEFAULT_TAG, None)
        return self

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, None, digest)


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    first = name[:i]
    if i == -1 or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[i + 1 :]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse_normalized(text: str) -> Reference:
    """Parse a reference as users type it, filling in docker.io and library/ (no tag added).

    Raises InvalidParameter with Docker's messages, e.g. "invalid reference format" or
    "invalid reference format: repository name (library/Busybox) must be lowercase".
    """
    if _HEX64_RE.match(text):
        raise errors.InvalidParameter(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_domain(text)
    tag_sep = remainder.find(":")
    remote = remainder[:tag_sep] if tag_sep > -1 else remainder
    if remote.lower() != remote:
        raise errors.InvalidParameter(
            f"invalid reference format: repository name ({remote}) must be lowercase"
        )
    match = _REFERENCE_RE.match(f"{domain}/{remainder}")
    if match is None:
        raise errors.InvalidParameter("invalid reference format")
    name, tag, digest = match.group(1), match.group(2), match.group(3)
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise errors.InvalidParameter(
            f"invalid reference format: repository name must not be more than "
            f"{NAME_TOTAL_LENGTH_MAX} characters"
        )
    if digest is not None and not digest.startswith("sha256:"):
        raise errors.InvalidParameter(f"invalid reference format: unsupported digest {digest}")
    if digest is not None and len(digest) != len("sha256:") + 64:
        raise errors.InvalidParameter("invalid reference format")
    return Reference(domain, name[len(domain) + 1 :], tag, digest)


def parse_tagged(text: str) -> Reference:
    """`parse_normalized` plus the default tag "latest" when there is no tag or digest."""
    return parse_normalized(text).with_default_tag()


def validate_tag(tag: str) -> str:
    """Check a bare tag ("latest", "1.36.1")."""
    if not _TAG_RE.match(tag):
        raise errors.InvalidParameter(f"invalid tag format: {tag}")
    return tag


def familiar(text: str) -> str:
    """The familiar form of a normalised reference string (unparseable text is returned as is)."""
    try:
        return parse_normalized(text).familiar()
    except errors.InvalidParameter:
        return text
