"""Real registries on 127.0.0.1 for tests: Debian's docker-registry (CNCF Distribution),
optionally behind htpasswd Basic auth, a fault-injecting reverse proxy (drops a blob
mid-way, corrupts one, demands Bearer tokens from its own token endpoint), and images
built offline with tarfile and pushed with skopeo.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.helpers.daemon import CACHE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    root: Path
    port: int
    process: subprocess.Popen[bytes]
    users: dict[str, str] = field(default_factory=dict)

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_server(self.process, self.root)


def stop_server(process: subprocess.Popen[bytes], root: Path) -> None:
    """Stop a registry process we started (by its pid) and remove its storage."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    shutil.rmtree(root, ignore_errors=True)


def start_registry(*, users: dict[str, str] | None = None) -> Registry:
    """docker-registry on a free 127.0.0.1 port, storage in a temp dir; Basic auth if `users`."""
    if not shutil.which("docker-registry"):
        subprocess.run(["apt-get", "install", "-y", "docker-registry"], check=True)
    root = Path(tempfile.mkdtemp(prefix="dlreg"))
    port = free_port()
    config = [
        "version: 0.1",
        "log:",
        "  level: error",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {root / 'data'}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: 127.0.0.1:{port}",
    ]
    if users:
        lines = [
            subprocess.run(
                ["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True
            ).stdout.strip()
            for user, password in users.items()
        ]
        (root / "htpasswd").write_text("\n".join(lines) + "\n")
        config += ["auth:", "  htpasswd:", "    realm: test", f"    path: {root / 'htpasswd'}"]
    (root / "config.yml").write_text("\n".join(config) + "\n")
    log = open(root / "registry.log", "wb")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(
        ["docker-registry", "serve", str(root / "config.yml")], stdout=log, stderr=log
    )
    log.close()
    registry = Registry(root, port, process, dict(users or {}))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/v2/")
            conn.getresponse().read()
            conn.close()
            return registry
        except OSError:
            time.sleep(0.05)
    registry.stop()
    raise RuntimeError("docker-registry did not start")


# -- images built offline --------------------------------------------------------------


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1_700_000_000
    return info, data


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = 1_700_000_000
    return info, None


def _hardlink(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE
    info.linkname = target
    info.mtime = 1_700_000_000
    return info, None


def busybox_layer() -> bytes:
    return (CACHE / "busybox-rootfs.tar").read_bytes()


def app_layer(marker: str = "hello") -> bytes:
    """A second layer: a file, a hard link to it, a whiteout of /home, an opaque dir."""
    return _tar(
        [
            _dir("app"),
            _file("app/greeting", f"{marker}\n".encode()),
            _hardlink("app/greeting-link", "app/greeting"),
            _file(".wh.home", b""),
            _dir("var/log"),
            _file("var/log/.wh..wh..opq", b""),
            _file("var/log/fresh", b"new\n"),
        ]
    )


def random_layer(size: int, seed: int = 1) -> bytes:
    """A layer holding one file of `size` pseudo-random (incompressible) bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}-{counter}".encode()).digest()
        counter += 1
    return _tar([_file("blob.bin", bytes(out[:size]))])


@dataclass(frozen=True)
class BuiltImage:
    layout: Path
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]


def build_oci_layout(
    directory: Path,
    layers: list[bytes],
    *,
    cmd: list[str] | None = None,
    compress: bool = True,
    tag: str = "latest",
) -> BuiltImage:
    """Write an OCI image layout with `layers` (uncompressed tars, gzipped when `compress`)."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return "sha256:" + digest, len(data)

    descriptors = []
    diff_ids = []
    for layer in layers:
        diff_ids.append("sha256:" + hashlib.sha256(layer).hexdigest())
        blob = gzip.compress(layer, mtime=0) if compress else layer
        digest, size = put(blob)
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
        descriptors.append({"mediaType": media, "digest": digest, "size": size})
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": cmd or ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin:/usr/sbin:/sbin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "test"} for _ in layers],
    }
    config_digest, config_size = put(json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": descriptors,
    }
    raw = json.dumps(manifest).encode()
    manifest_digest, manifest_size = put(raw)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (directory / "index.json").write_text(json.dumps(index))
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return BuiltImage(
        directory, manifest_digest, config_digest, tuple(d["digest"] for d in descriptors)
    )


def skopeo_push(
    image: BuiltImage, target: str, *, creds: str | None = None, tag: str = "latest"
) -> None:
    """Copy an OCI layout to docker://`target` keeping the manifest as is."""
    args = ["skopeo", "copy", "--dest-tls-verify=false", "--preserve-digests"]
    if creds:
        args.append(f"--dest-creds={creds}")
    args += [f"oci:{image.layout}:{tag}", f"docker://{target}"]
    subprocess.run(args, check=True, capture_output=True, timeout=120)


def skopeo_inspect(target: str, *, creds: str | None = None) -> dict[str, Any]:
    args = ["skopeo", "inspect", "--tls-verify=false"]
    if creds:
        args.append(f"--creds={creds}")
    out = subprocess.run(
        [*args, f"docker://{target}"], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


# -- a fault-injecting reverse proxy with an optional Bearer token service ----------------


@dataclass
class ProxyLog:
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, Range


class FaultProxy:
    """Forwards to `upstream` (host:port).  Faults, set by the test:

    drop_blob: digest -> bytes to send before cutting the connection (once per digest).
    corrupt_blob: digests whose bytes are flipped (every time while listed).
    bearer: when set (user, password or None), /v2/ requests need a token from /token.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.log = ProxyLog()
        self.drop_blob: dict[str, int] = {}
        self.corrupt_blob: set[str] = set()
        self.bearer: tuple[str, str] | None = None
        self.bearer_anonymous = False
        self.tokens: set[str] = set()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                proxy.handle(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def _token(self, h: http.server.BaseHTTPRequestHandler) -> None:
        assert self.bearer is not None
        auth = h.headers.get("Authorization", "")
        ok = self.bearer_anonymous and not auth
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            ok = (user, password) == self.bearer
        if not ok:
            body = b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}'
            h.send_response(401)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        scopes = parse_qs(urlsplit(h.path).query).get("scope", [])
        token = base64.urlsafe_b64encode(os.urandom(12)).decode()
        self.tokens.add(token)
        body = json.dumps({"token": token, "scopes": scopes}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        path = h.path
        self.log.requests.append((h.command, path, h.headers.get("Range", "")))
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if self.bearer is not None:
            if path.startswith("/token"):
                self._token(h)
                return
            auth = h.headers.get("Authorization", "")
            if not (auth.startswith("Bearer ") and auth[7:] in self.tokens):
                realm = f"http://{self.netloc}/token"
                h.send_response(401)
                h.send_header(
                    "WWW-Authenticate",
                    f'Bearer realm="{realm}",service="test-registry",scope="repository:x:pull"',
                )
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("authorization",)}
        conn = http.client.HTTPConnection(*self.upstream.split(":"), timeout=60)  # type: ignore[arg-type]
        conn.request(h.command, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        digest = path.rsplit("/", 1)[-1] if "/blobs/sha256:" in path else ""
        h.send_response(resp.status)
        for name, value in resp.getheaders():
            if name.lower() not in ("transfer-encoding", "connection"):
                h.send_header(name, value)
        h.end_headers()
        if h.command == "HEAD":
            conn.close()
            return
        cut = self.drop_blob.pop(digest, None) if h.command == "GET" else None
        sent = 0
        while chunk := resp.read(65536):
            if digest in self.corrupt_blob and h.command == "GET":
                chunk = bytes(b ^ 0xFF for b in chunk)
            if cut is not None and sent + len(chunk) >= cut:
                h.wfile.write(chunk[: cut - sent])
                h.wfile.flush()
                h.close_connection = True
                conn.close()
                h.connection.shutdown(socket.SHUT_RDWR)
                return
            h.wfile.write(chunk)
            sent += len(chunk)
        conn.close()
