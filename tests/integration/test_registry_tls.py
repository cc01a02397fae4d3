"""The registry over TLS with verification on, in each auth mode, and in verify-only token
mode against an outside token service.

A CA and a server certificate (IP SAN 127.0.0.1, DNS SAN for a name /etc/hosts maps to
127.0.0.1) are made with `openssl` per module.  skopeo verifies with `--cert-dir`; docklingd
verifies with the CA in `/etc/dockling/certs.d/HOST:PORT/ca.crt` (its fixed default; the
test writes and removes that directory).  docklingd treats loopback addresses as insecure
registries, as Docker does (unverified TLS), so its pulls go to the /etc/hosts name, which
it does verify: without the CA they fail, with it they succeed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import bcrypt
import pytest

from tests.helpers.daemon import Daemon
from tests.helpers.registry_server import (
    Registry,
    make_oci_layout,
    start_dockling_registry,
    stop_registry,
)

CERTS_D = Path("/etc/dockling/certs.d")  # dockling.distribution.settings.DEFAULT_CERTS_DIR
USERS = {"alice": "alice-pw", "reader": "reader-pw"}


def loopback_name() -> str:
    """A host name (not localhost) that /etc/hosts maps to 127.0.0.1."""
    for line in Path("/etc/hosts").read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields and fields[0] == "127.0.0.1":
            for name in fields[1:]:
                if name != "localhost" and "." not in name:
                    return name
    pytest.fail("no name other than localhost maps to 127.0.0.1 in /etc/hosts")


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate
    cert: Path  # server certificate, signed by the CA
    key: Path
    cert_dir: Path  # a directory holding only ca.crt (skopeo --cert-dir)
    host: str  # the /etc/hosts name in the certificate


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    host = loopback_name()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl(
        "req", "-x509", *ec, "-days", "1", "-subj", "/CN=dockling test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"),
    )  # fmt: skip
    openssl(
        "req", "-new", *ec, "-subj", f"/CN={host}",
        "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"),
    )  # fmt: skip
    (d / "ext.cnf").write_text(
        f"subjectAltName=IP:127.0.0.1,DNS:{host}\n"
        "basicConstraints=CA:FALSE\n"
        "extendedKeyUsage=serverAuth\n"
    )
    openssl(
        "x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.crt"),
        "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "1",
        "-extfile", str(d / "ext.cnf"), "-out", str(d / "server.crt"),
    )  # fmt: skip
    cert_dir = d / "certdir"
    cert_dir.mkdir()
    shutil.copy(d / "ca.crt", cert_dir / "ca.crt")
    return Pki(d / "ca.crt", d / "server.crt", d / "server.key", cert_dir, host)


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["skopeo", *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert result.returncode == 0, f"skopeo {' '.join(args)}:\n{result.stderr}"
    return result


def write_htpasswd(path: Path) -> Path:
    path.write_text(
        "".join(
            f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"
            for u, p in USERS.items()
        )
    )
    return path


def tls_registry(pki: Pki, *extra: str) -> Registry:
    return start_dockling_registry(tls=(pki.cert, pki.key), ca=pki.ca, extra_args=list(extra))


def round_trip(reg: Registry, pki: Pki, tmp: Path, name: str, creds: str = "") -> str:
    """skopeo copies busybox in and out with TLS verified by the CA; returns the digest."""
    src, out = tmp / f"src-{name.replace('/', '-')}", tmp / f"out-{name.replace('/', '-')}"
    digest = make_oci_layout(src, multi_arch=True)
    dest = f"docker://127.0.0.1:{reg.port}/{name}:1"
    dcreds = [f"--dest-creds={creds}"] if creds else []
    screds = [f"--src-creds={creds}"] if creds else []
    skopeo("copy", "--all", f"--dest-cert-dir={pki.cert_dir}", *dcreds, f"oci:{src}", dest)
    skopeo("copy", "--all", f"--src-cert-dir={pki.cert_dir}", *screds, dest, f"oci:{out}:x")
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    return digest


def test_skopeo_verifies_the_certificate(pki: Pki, tmp_path: Path) -> None:
    reg = tls_registry(pki)
    try:
        assert reg.request("GET", "/v2/").status == 200  # verified against the CA
        round_trip(reg, pki, tmp_path, "tls/busybox")
        # Verification is really on: without the CA, skopeo refuses the server.
        refused = skopeo(
            "inspect", "--raw", f"docker://127.0.0.1:{reg.port}/tls/busybox:1", check=False
        )
        assert refused.returncode != 0
        assert "certificate signed by unknown authority" in refused.stderr, refused.stderr
    finally:
        stop_registry(reg)


def test_basic_auth_over_tls(pki: Pki, tmp_path: Path) -> None:
    reg = tls_registry(pki, "--htpasswd", str(write_htpasswd(tmp_path / "htpasswd")))
    try:
        assert reg.request("GET", "/v2/").status == 401
        round_trip(reg, pki, tmp_path, "basic/busybox", "alice:alice-pw")
    finally:
        stop_registry(reg)


def test_token_mode_over_tls(pki: Pki, tmp_path: Path) -> None:
    access = tmp_path / "access"
    access.write_text("alice tok/ pull,push\nreader tok/ pull\n")
    htpasswd = write_htpasswd(tmp_path / "htpasswd")
    reg = tls_registry(pki, "--auth", "token", "--htpasswd", str(htpasswd), "--access", str(access))
    try:
        r = reg.request("GET", "/v2/")
        assert r.status == 401
        assert f'realm="https://127.0.0.1:{reg.port}/token"' in r.headers["www-authenticate"]
        round_trip(reg, pki, tmp_path, "tok/busybox", "alice:alice-pw")
        denied = skopeo(
            "copy", f"--dest-cert-dir={pki.cert_dir}", "--dest-creds=reader:reader-pw",
            f"oci:{tmp_path / 'src-tok-busybox'}", f"docker://127.0.0.1:{reg.port}/tok/other:1",
            check=False,
        )  # fmt: skip
        assert denied.returncode != 0 and "denied" in denied.stderr.lower(), denied.stderr
    finally:
        stop_registry(reg)


# An outside token service ---------------------------------------------------------------
def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_jwt(key: bytes, claims: dict[str, Any]) -> str:
    """A JWT signed the way any HS256 issuer does: written here, not with dockling's signer."""
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def pull_token(key: bytes, name: str, **overrides: Any) -> dict[str, str]:
    """An Authorization header with a token granting pull on `name` (claims overridable)."""
    now = int(time.time())
    claims = {
        "aud": "outside-svc",
        "nbf": now,
        "exp": now + 60,
        "access": [{"type": "repository", "name": name, "actions": ["pull"]}],
        **overrides,
    }
    return {"Authorization": f"Bearer {hs256_jwt(key, claims)}"}


class Issuer:
    """A tiny token service (HTTP, in a thread): alice may pull and push everything, anyone
    else only pull; every token is signed with `key` for audience `service`."""

    def __init__(self, key: bytes, service: str) -> None:
        self.key = key
        self.service = service
        self.requests: list[dict[str, list[str]]] = []
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                issuer.requests.append(query)
                user = ""
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    if USERS.get(user) != password:
                        self.send_response(401)
                        self.end_headers()
                        return
                access = []
                for text in query.get("scope", []):
                    for scope in text.split():
                        kind, name, actions = scope.split(":")
                        allowed = {"pull", "push"} if user == "alice" else {"pull"}
                        granted = [a for a in actions.split(",") if a in allowed]
                        access.append({"type": kind, "name": name, "actions": granted})
                now = int(time.time())
                claims = {
                    "iss": "test-issuer",
                    "sub": user,
                    "aud": issuer.service,
                    "iat": now,
                    "nbf": now,
                    "exp": now + 300,
                    "access": access,
                }
                body = json.dumps({"token": hs256_jwt(issuer.key, claims)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/auth"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def outside(pki: Pki, tmp_path: Path) -> Iterator[tuple[Registry, Issuer]]:
    """A TLS registry that only verifies tokens, and the outside issuer they come from."""
    key = b"shared-secret-for-the-registry-and-issuer"
    key_file = tmp_path / "token.key"
    key_file.write_bytes(key + b"\n")
    issuer = Issuer(key, "outside-svc")
    try:
        reg = tls_registry(
            pki, "--token-realm", issuer.realm, "--token-key", str(key_file),
            "--token-service", "outside-svc",
        )  # fmt: skip
        try:
            yield reg, issuer
        finally:
            stop_registry(reg)
    finally:
        issuer.close()


def test_verify_only_token_mode(outside: tuple[Registry, Issuer], pki: Pki, tmp_path: Path) -> None:
    reg, issuer = outside
    r = reg.request("GET", "/v2/outer/app/tags/list")
    assert r.status == 401
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith(f'Bearer realm="{issuer.realm}",service="outside-svc"')
    assert 'scope="repository:outer/app:pull"' in challenge
    # This registry issues no tokens itself.
    assert reg.request("GET", "/token?service=outside-svc").status == 404
    round_trip(reg, pki, tmp_path, "outer/busybox", "alice:alice-pw")
    assert any(q.get("service") == ["outside-svc"] for q in issuer.requests)
    # A reader's token from the issuer lacks push: DENIED.
    denied = skopeo(
        "copy", f"--dest-cert-dir={pki.cert_dir}", "--dest-creds=reader:reader-pw",
        f"oci:{tmp_path / 'src-outer-busybox'}", f"docker://127.0.0.1:{reg.port}/outer/x:1",
        check=False,
    )  # fmt: skip
    assert denied.returncode != 0 and "denied" in denied.stderr.lower(), denied.stderr
    # Tokens signed with another key, or for another audience, or expired, are refused.
    path = "/v2/outer/busybox/tags/list"
    ok = reg.request("GET", path, headers=pull_token(issuer.key, "outer/busybox"))
    assert ok.status == 200 and ok.json()["tags"] == ["1"]
    for bad in (
        pull_token(b"another-key-another-key-another", "outer/busybox"),
        pull_token(issuer.key, "outer/busybox", aud="elsewhere"),
        pull_token(issuer.key, "outer/busybox", exp=int(time.time()) - 600),
    ):
        r = reg.request("GET", path, headers=bad)
        assert r.status == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


# docklingd verifying the registry with certs.d ------------------------------------------
@pytest.fixture
def certs_d(pki: Pki) -> Iterator[Any]:
    """Installs the CA for HOST:PORT in docklingd's certs.d; removes what it made."""
    made: list[Path] = []

    def install(netloc: str) -> None:
        directory = CERTS_D / netloc
        directory.mkdir(parents=True)
        made.append(directory)
        shutil.copy(pki.ca, directory / "ca.crt")

    try:
        yield install
    finally:
        for directory in made:
            shutil.rmtree(directory, ignore_errors=True)
        for parent in (CERTS_D, CERTS_D.parent):
            try:
                parent.rmdir()  # only when empty: other tests or the host may use it
            except OSError:
                pass


def dockling(
    daemon: Daemon, home: Path, *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "dockling"), *args],
        env={**daemon.env, "DOCKLING_CONFIG": str(home)},
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.root
@pytest.mark.runc
def test_docklingd_verifies_with_certs_d(
    daemon: Daemon, outside: tuple[Registry, Issuer], pki: Pki, certs_d: Any, tmp_path: Path
) -> None:
    reg, issuer = outside
    netloc = f"{pki.host}:{reg.port}"
    digest = round_trip(reg, pki, tmp_path, "outer/busybox", "alice:alice-pw")
    home = tmp_path / "home"
    ref = f"{netloc}/outer/busybox:1"
    # The name is not a loopback address, so the daemon verifies; it has no CA yet.
    untrusted = dockling(daemon, home, "pull", ref)
    assert untrusted.returncode != 0
    assert "certificate" in untrusted.stderr.lower(), untrusted.stderr
    certs_d(netloc)
    login = dockling(
        daemon, home, "login", "-u", "alice", "--password-stdin", netloc, input="alice-pw"
    )
    assert login.returncode == 0, login.stderr
    try:
        pulled = dockling(daemon, home, "pull", ref)
        assert pulled.returncode == 0, pulled.stderr
        assert f"Digest: {digest}" in pulled.stdout
        # And back: the daemon pushes the image under another name, through the issuer.
        target = f"{netloc}/outer/again:2"
        assert dockling(daemon, home, "tag", ref, target).returncode == 0
        pushed = dockling(daemon, home, "push", target)
        assert pushed.returncode == 0, pushed.stderr
        tags = reg.request(
            "GET", "/v2/outer/again/tags/list", headers=pull_token(issuer.key, "outer/again")
        )
        assert tags.status == 200 and tags.json()["tags"] == ["2"]
    finally:
        dockling(daemon, home, "rmi", ref)
        dockling(daemon, home, "rmi", f"{netloc}/outer/again:2")
