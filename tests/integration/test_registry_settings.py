"""Registry settings from daemon.json against real peers on 127.0.0.1: an http:// mirror
serving Docker Hub names, insecure-registries, a per-registry CA in certs.d with a TLS
docker-registry, and HTTP(S) proxies (a forward/CONNECT proxy of the test's own) with
NO_PROXY.  Nothing may leave 127.0.0.1: every test that could fall back to Docker Hub
routes all proxied traffic into a guard proxy that refuses non-local targets and logs them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from dockling import errors
from dockling.daemon.config import registry_settings
from dockling.distribution.service import DistributionService
from dockling.distribution.settings import RegistrySettings
from dockling.images.store import ImageService
from tests.helpers.daemon import Daemon, start_daemon, stop_daemon
from tests.helpers.proxies import ForwardProxy, ThrottleProxy
from tests.helpers.registry import (
    BuiltImage,
    Registry,
    app_layer,
    build_oci_layout,
    busybox_layer,
    free_port,
    skopeo_push,
    start_registry,
    stop_server,
)

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    reg = start_registry()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def image(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    built = build_oci_layout(
        tmp_path_factory.mktemp("oci"), [busybox_layer(), app_layer("mirrored")]
    )
    # As a Docker Hub mirror holds official images: under library/.
    skopeo_push(built, f"{registry.netloc}/library/mirrored:latest")
    skopeo_push(built, f"{registry.netloc}/team/app:latest")
    return built


@pytest.fixture
def guard() -> Iterator[ForwardProxy]:
    """Where every non-local request would go: it refuses them and records them."""
    proxy = ForwardProxy()
    yield proxy
    proxy.close()


def service_for(tmp_path: Path, settings: RegistrySettings) -> DistributionService:
    return DistributionService(ImageService(tmp_path / "data"), settings)


def guarded(daemon_json: dict[str, Any], guard: ForwardProxy) -> RegistrySettings:
    """Settings from `daemon_json`, with all proxied traffic sent to `guard` except 127.0.0.1."""
    proxies = {
        "http-proxy": f"http://{guard.netloc}",
        "https-proxy": f"http://{guard.netloc}",
        "no-proxy": "127.0.0.1",
    }
    return registry_settings({**daemon_json, "proxies": proxies})


# -- registry-mirrors --------------------------------------------------------------------


def test_http_mirror_serves_docker_hub_names(
    registry: Registry, image: BuiltImage, guard: ForwardProxy, tmp_path: Path
) -> None:
    mirror = ThrottleProxy(registry.netloc)  # a logging front of the local registry
    try:
        settings = guarded({"registry-mirrors": [f"http://{mirror.netloc}/"]}, guard)
        assert settings.mirrors == (f"http://{mirror.netloc}",)
        service = service_for(tmp_path, settings)
        with closing(service.images):
            for name in ("mirrored", "library/mirrored:latest", "docker.io/library/mirrored"):
                result = service.pull(name)
                assert result.image.id == image.config_digest
                assert result.digest == image.manifest_digest
            assert service.images.get("mirrored:latest").id == image.config_digest
            assert service.images.get("docker.io/library/mirrored").id == image.config_digest
            paths = [p for _, p, _ in mirror.requests]
            assert "/v2/library/mirrored/manifests/latest" in paths
            assert any(p.endswith(image.layer_digests[1]) for p in paths)
            assert guard.seen == []  # registry-1.docker.io was never tried
    finally:
        mirror.close()


def test_mirror_is_not_used_for_other_registries(
    registry: Registry, image: BuiltImage, guard: ForwardProxy, tmp_path: Path
) -> None:
    mirror = ThrottleProxy(registry.netloc)
    try:
        settings = guarded({"registry-mirrors": [f"http://{mirror.netloc}"]}, guard)
        service = service_for(tmp_path, settings)
        with closing(service.images):
            service.pull(f"{registry.netloc}/team/app")
        assert mirror.requests == []
        assert guard.seen == []
    finally:
        mirror.close()


# -- a TLS registry: certs.d and insecure-registries ---------------------------------------


def loopback_name() -> str:
    """A host name (not "localhost", not an IP) that resolves to 127.0.0.1 here, so that
    dockling treats it as a secure registry while the traffic stays local."""
    for name in (socket.gethostname(), "vm", "runsc"):
        try:
            if name != "localhost" and socket.gethostbyname(name) == "127.0.0.1":
                return name
        except OSError:
            continue
    raise RuntimeError("no host name resolving to 127.0.0.1 (needed for the TLS tests)")


@dataclass
class TLSRegistry:
    root: Path
    port: int
    process: subprocess.Popen[bytes]
    name: str
    ca: Path

    @property
    def netloc(self) -> str:
        return f"{self.name}:{self.port}"

    def stop(self) -> None:
        stop_server(self.process, self.root)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def start_tls_registry() -> TLSRegistry:
    """docker-registry serving HTTPS with a certificate from a fresh self-signed CA."""
    name = loopback_name()
    root = Path(tempfile.mkdtemp(prefix="dltls"))
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
        "-keyout", "ca.key", "-out", "ca.crt", cwd=root,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
        "-keyout", "server.key", "-out", "server.csr", cwd=root,
    )  # fmt: skip
    (root / "san.ext").write_text(f"subjectAltName=DNS:{name},IP:127.0.0.1\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=root,
    )  # fmt: skip
    port = free_port()
    (root / "config.yml").write_text(
        "\n".join(
            [
                "version: 0.1",
                "log:",
                "  level: error",
                "storage:",
                "  filesystem:",
                f"    rootdirectory: {root / 'data'}",
                "http:",
                f"  addr: 127.0.0.1:{port}",
                "  tls:",
                f"    certificate: {root / 'server.crt'}",
                f"    key: {root / 'server.key'}",
            ]
        )
        + "\n"
    )
    with open(root / "registry.log", "wb") as log:
        process = subprocess.Popen(
            ["docker-registry", "serve", str(root / "config.yml")], stdout=log, stderr=log
        )
    reg = TLSRegistry(root, port, process, name, root / "ca.crt")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return reg
        except OSError:
            time.sleep(0.05)
    reg.stop()
    raise RuntimeError("TLS docker-registry did not start")


@pytest.fixture(scope="module")
def tls_registry(image: BuiltImage) -> Iterator[TLSRegistry]:
    reg = start_tls_registry()
    try:
        # skopeo reads every *.key in a cert dir as a client key: give it only the CA.
        (reg.root / "skopeo").mkdir()
        shutil.copy(reg.ca, reg.root / "skopeo" / "ca.crt")
        subprocess.run(
            [
                "skopeo", "copy", "--dest-cert-dir", str(reg.root / "skopeo"), "--preserve-digests",
                f"oci:{image.layout}:latest", f"docker://127.0.0.1:{reg.port}/tls/app:latest",
            ],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        yield reg
    finally:
        reg.stop()


def test_tls_registry_needs_its_ca(
    tls_registry: TLSRegistry, image: BuiltImage, tmp_path: Path
) -> None:
    certs = tmp_path / "certs.d"
    settings = replace(registry_settings({}), certs_dir=certs)
    service = service_for(tmp_path, settings)
    with closing(service.images):
        with pytest.raises(errors.Unavailable, match="certificate verify failed"):
            service.pull(f"{tls_registry.netloc}/tls/app")
        (certs / tls_registry.netloc).mkdir(parents=True)
        shutil.copy(tls_registry.ca, certs / tls_registry.netloc / "ca.crt")
        result = service.pull(f"{tls_registry.netloc}/tls/app")
        assert result.image.id == image.config_digest


def test_insecure_registries_skip_verification(
    tls_registry: TLSRegistry, image: BuiltImage, tmp_path: Path
) -> None:
    settings = replace(
        registry_settings({"insecure-registries": [tls_registry.netloc]}),
        certs_dir=tmp_path / "none",
    )
    service = service_for(tmp_path, settings)
    with closing(service.images):
        assert service.pull(f"{tls_registry.netloc}/tls/app").image.id == image.config_digest


def test_insecure_registries_allow_plain_http(
    registry: Registry, image: BuiltImage, tmp_path: Path
) -> None:
    plain = f"{loopback_name()}:{registry.port}"  # an HTTP-only registry under a secure name
    service = service_for(tmp_path, registry_settings({}))
    with closing(service.images), pytest.raises(errors.Unavailable, match=f"https://{plain}"):
        service.pull(f"{plain}/team/app")
    service = service_for(tmp_path, registry_settings({"insecure-registries": [plain]}))
    with closing(service.images):
        assert service.pull(f"{plain}/team/app").image.id == image.config_digest
    cidr = service_for(tmp_path, registry_settings({"insecure-registries": ["127.0.0.0/8"]}))
    with closing(cidr.images):
        assert cidr.pull(f"{registry.netloc}/team/app").image.id == image.config_digest


# -- proxies -------------------------------------------------------------------------------


def test_https_proxy_tunnels_with_connect(
    tls_registry: TLSRegistry, image: BuiltImage, tmp_path: Path
) -> None:
    proxy = ForwardProxy()
    try:
        settings = replace(
            registry_settings(
                {
                    "insecure-registries": [tls_registry.netloc],
                    "proxies": {"https-proxy": f"http://{proxy.netloc}"},
                }
            ),
            certs_dir=tmp_path / "none",
        )
        # The proxy only connects to 127.0.0.1: reach the registry by address.
        target = f"127.0.0.1:{tls_registry.port}/tls/app"
        service = service_for(tmp_path, settings)
        with closing(service.images):
            assert service.pull(target).image.id == image.config_digest
        assert ("CONNECT", f"127.0.0.1:{tls_registry.port}") in proxy.seen
    finally:
        proxy.close()


def test_no_proxy_excludes(
    registry: Registry, image: BuiltImage, guard: ForwardProxy, tmp_path: Path
) -> None:
    settings = registry_settings(
        {"proxies": {"http-proxy": f"http://{guard.netloc}", "no-proxy": "example.com,127.0.0.1"}}
    )
    service = service_for(tmp_path, settings)
    with closing(service.images):
        service.pull(f"{registry.netloc}/team/app")
    assert guard.seen == []


@pytest.fixture
def proxied_daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Daemon, ForwardProxy]]:
    """A docklingd started with HTTP_PROXY in its environment (as a systemd drop-in does)."""
    proxy = ForwardProxy()
    with monkeypatch.context() as env:
        env.setenv("HTTP_PROXY", f"http://{proxy.netloc}")
        env.setenv("NO_PROXY", "example.com")
        env.delenv("HTTPS_PROXY", raising=False)
        env.delenv("http_proxy", raising=False)
        env.delenv("no_proxy", raising=False)
        d = start_daemon()
    try:
        yield d, proxy
    finally:
        stop_daemon(d)
        proxy.close()
        from tests.helpers.daemon import leaks

        leaked = leaks(d, [])
        shutil.rmtree(d.root, ignore_errors=True)
        assert not leaked, leaked


@pytest.mark.slow
def test_daemon_honours_http_proxy_from_its_environment(
    proxied_daemon: tuple[Daemon, ForwardProxy], registry: Registry, image: BuiltImage
) -> None:
    d, proxy = proxied_daemon
    status, info = d.request("GET", "/info")
    assert status == 200
    assert info["HttpProxy"] == f"http://{proxy.netloc}"
    assert info["NoProxy"] == "example.com"
    shown = d.cli("info").stdout
    assert f" HTTP Proxy: http://{proxy.netloc}\n No Proxy: example.com\n" in shown, shown
    assert " HTTPS Proxy:" not in shown
    assert " Insecure Registries:\n  127.0.0.0/8\n" in shown
    status, body = d.request(
        "POST", f"/images/create?fromImage={registry.netloc}/team/app&tag=latest", timeout=120
    )
    assert status == 200 and b"Downloaded newer image" in body, body
    urls = [u for m, u in proxy.seen if m == "GET"]
    assert f"http://{registry.netloc}/v2/team/app/manifests/latest" in urls
    assert any(u.endswith(image.layer_digests[1]) for u in urls)
