"""Registry settings (from daemon.json) and the endpoints they give for one registry host."""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dockling import errors

DOCKER_HUB_DOMAIN = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
DEFAULT_CERTS_DIR = Path("/etc/dockling/certs.d")


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """What daemon.json says about registries (Docker's keys in brackets).

    mirrors [registry-mirrors]: URLs tried in order before Docker Hub itself.
    insecure_registries [insecure-registries]: "host[:port]" or CIDRs; plain HTTP and
        unverified TLS allowed.  127.0.0.0/8 and localhost are always insecure, as in Docker.
    certs_dir: per-registry CA certs, <certs_dir>/<host[:port]>/ca.crt.
    max_concurrent_downloads / max_concurrent_uploads / max_download_attempts: as Docker.
    http_proxy, https_proxy, no_proxy [proxies]: empty means "take it from the environment".
    push_chunk_size: blobs larger than this are uploaded in PATCH chunks of this size.
    """

    mirrors: tuple[str, ...] = ()
    insecure_registries: tuple[str, ...] = ()
    certs_dir: Path = DEFAULT_CERTS_DIR
    max_concurrent_downloads: int = 3
    max_concurrent_uploads: int = 5
    max_download_attempts: int = 5
    http_proxy: str = ""
    https_proxy: str = ""
    no_proxy: str = ""
    push_chunk_size: int = 64 << 20
    extra_mirrors: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def proxies(self) -> tuple[str, str, str]:
        """(http, https, no_proxy) in use: daemon.json first, then the environment."""

        def env(name: str) -> str:
            return os.environ.get(name, os.environ.get(name.lower(), ""))

        return (
            self.http_proxy or env("HTTP_PROXY"),
            self.https_proxy or env("HTTPS_PROXY"),
            self.no_proxy or env("NO_PROXY"),
        )


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One place to talk to: scheme, host:port, whether TLS is verified, mirror or not."""

    scheme: str  # "https" or "http"
    netloc: str  # "host[:port]"
    verify_tls: bool = True
    mirror: bool = False
    path_prefix: str = ""

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path_prefix}"

    @property
    def host(self) -> str:
        host, _ = split_netloc(self.netloc, self.scheme)
        return host

    @property
    def port(self) -> int:
        _, port = split_netloc(self.netloc, self.scheme)
        return port


def split_netloc(netloc: str, scheme: str = "https") -> tuple[str, int]:
    """("host", port) of "host[:port]" (IPv6 in brackets), with the scheme's default port."""
    default = 443 if scheme == "https" else 80
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default
    host, sep, port = netloc.rpartition(":")
    if not sep:
        return netloc, default
    try:
        return host, int(port)
    except ValueError:
        raise errors.InvalidParameter(f"invalid registry address {netloc!r}") from None


def is_insecure(settings: RegistrySettings, netloc: str) -> bool:
    """True when `netloc` may be reached over plain HTTP or unverified TLS."""
    host, _ = split_netloc(netloc)
    if host == "localhost" or netloc in settings.insecure_registries:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.is_loopback:
        return True
    for entry in settings.insecure_registries:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def registry_host(domain: str) -> str:
    """The API host of a reference's domain: docker.io is served by registry-1.docker.io."""
    return DOCKER_HUB_API_HOST if domain == DOCKER_HUB_DOMAIN else domain


def auth_key(domain: str) -> str:
    """The key credentials are stored under (Docker's config.json `auths` keys)."""
    return DOCKER_HUB_AUTH_KEY if domain == DOCKER_HUB_DOMAIN else domain


def endpoints(settings: RegistrySettings, domain: str, *, for_push: bool = False) -> list[Endpoint]:
    """Where to send requests for `domain`, in order.

    Mirrors come first for pulls (Docker Hub's from `mirrors`, any other registry's from
    `extra_mirrors`).  An insecure registry is tried over HTTPS without verification,
    then over plain HTTP, as Docker does.
    """
    found: list[Endpoint] = []
    if not for_push:
        mirror_urls = settings.mirrors if domain == DOCKER_HUB_DOMAIN else ()
        for url in (*mirror_urls, *settings.extra_mirrors.get(domain, ())):
            parts = urlsplit(url if "://" in url else f"https://{url}")
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise errors.InvalidParameter(f"invalid registry mirror {url!r}")
            found.append(
                Endpoint(
                    parts.scheme,
                    parts.netloc,
                    verify_tls=not is_insecure(settings, parts.netloc),
                    mirror=True,
                    path_prefix=parts.path.rstrip("/"),
                )
            )
    host = registry_host(domain)
    if is_insecure(settings, host):
        found.append(Endpoint("https", host, verify_tls=False))
        found.append(Endpoint("http", host, verify_tls=False))
    else:
        found.append(Endpoint("https", host))
    return found


def tls_context(settings: RegistrySettings, endpoint: Endpoint) -> ssl.SSLContext:
    """The TLS context for `endpoint`: system CAs plus certs.d/<host:port>/*.crt."""
    context = ssl.create_default_context()
    if not endpoint.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    directory = settings.certs_dir / endpoint.netloc
    if directory.is_dir():
        for cert in sorted(directory.glob("*.crt")):
            context.load_verify_locations(cafile=str(cert))
        client_cert = directory / "client.cert"
        client_key = directory / "client.key"
        if client_cert.exists() and client_key.exists():
            context.load_cert_chain(str(client_cert), str(client_key))
    return context


def proxy_for(settings: RegistrySettings, endpoint: Endpoint) -> str | None:
    """The proxy URL to use for `endpoint`, honouring NO_PROXY; None for a direct connection."""
    http_proxy, https_proxy, no_proxy = settings.proxies()
    proxy = https_proxy if endpoint.scheme == "https" else http_proxy
    if not proxy:
        return None
    host = endpoint.host
    for entry in (e.strip() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return None
        bare = entry.lstrip(".")
        if host == bare or host.endswith("." + bare) or endpoint.netloc == entry:
            return None
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                return None
        except ValueError:
            pass
    return proxy
