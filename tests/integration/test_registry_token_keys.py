"""RS256/ES256 Bearer tokens: keys made by openssl, tokens checked by dockling and by CNCF
Distribution (Debian's docker-registry), which verifies them against the certificate."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockling import errors
from dockling.registry.token_keys import load_keys
from dockling.registry.tokens import ISSUER, TokenInvalid, TokenSigner
from tests.helpers.registry_server import (
    Registry,
    make_oci_layout,
    start_distribution_registry,
    start_dockling_registry,
    stop_registry,
)
from tests.integration.test_registry_token import write_auth_files


def openssl(*args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], check=True, capture_output=True, input=input).stdout


def make_key(directory: Path, kind: str) -> tuple[Path, Path]:
    """(private key, self-signed certificate) PEM files made by openssl."""
    key, cert = directory / f"{kind}.key", directory / f"{kind}.crt"
    if kind == "rsa":
        openssl("genrsa", "-out", str(key), "2048")
    else:
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
    openssl(
        "req", "-x509", "-new", "-key", str(key), "-out", str(cert),
        "-subj", "/CN=dockling token signer", "-days", "2",
    )  # fmt: skip
    return key, cert


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def header_of(token: str) -> dict[str, str]:
    part = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


@pytest.mark.parametrize(("kind", "alg"), [("rsa", "RS256"), ("ec", "ES256")])
def test_sign_with_the_key_verify_with_the_certificate(tmp_path: Path, kind: str, alg: str) -> None:
    key, cert = make_key(tmp_path, kind)
    signer = TokenSigner(load_keys(key), "svc")
    verifier = TokenSigner(load_keys(cert), "svc")
    assert signer.can_issue and not verifier.can_issue
    token, _, _ = signer.issue("alice", [{"type": "repository", "name": "a", "actions": ["pull"]}])
    header = header_of(token)
    assert header["alg"] == alg
    # The kid is libtrust's: SHA-256 of the DER public key (here as openssl writes it),
    # 240 bits in base32, in groups of four.
    der = openssl("x509", "-in", str(cert), "-pubkey", "-noout")
    der = openssl("pkey", "-pubin", "-outform", "DER", input=der)
    digest = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    assert header["kid"] == ":".join(digest[i : i + 4] for i in range(0, 48, 4))
    assert verifier.verify(token)["sub"] == "alice"
    head, claims, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    forged["sub"] = "admin"
    with pytest.raises(TokenInvalid, match="signature"):
        verifier.verify(f"{head}.{b64(json.dumps(forged).encode())}.{signature}")
    with pytest.raises(errors.InvalidParameter, match="only verify"):
        verifier.issue("x", [])
    # Algorithm confusion: an HS256 token keyed with the public certificate is refused.
    confused_head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = f"{confused_head}.{claims}".encode()
    mac = hmac.new(cert.read_bytes(), body, hashlib.sha256).digest()
    with pytest.raises(TokenInvalid, match="unsupported algorithm"):
        verifier.verify(f"{confused_head}.{claims}.{b64(mac)}")


def test_bad_key_files(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("tiny")
    with pytest.raises(errors.InvalidParameter, match="at least 16 bytes"):
        load_keys(short)
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    with pytest.raises(errors.InvalidParameter, match="unreadable PEM block"):
        load_keys(broken)


@pytest.fixture(scope="module")
def token_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, Path]]:
    """`dockling registry serve --auth token` issuing RS256 tokens with an openssl key."""
    directory = tmp_path_factory.mktemp("keys")
    key, cert = make_key(directory, "rsa")
    htpasswd, access = write_auth_files(directory)
    reg = start_dockling_registry(
        extra_args=[
            "--auth", "token", "--htpasswd", str(htpasswd), "--access", str(access),
            "--token-key", str(key),
        ]
    )  # fmt: skip
    try:
        yield reg, cert
    finally:
        stop_registry(reg)


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)


def push_and_inspect(target: str, source: Path) -> None:
    dest = f"docker://{target}/team/busybox:1"
    denied = skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds=reader:reader-pw", f"oci:{source}", dest
    )
    assert denied.returncode != 0, denied.stderr
    ok = skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds=alice:alice-pw", f"oci:{source}", dest
    )
    assert ok.returncode == 0, ok.stderr
    seen = skopeo("inspect", "--raw", "--tls-verify=false", "--creds=reader:reader-pw", dest)
    assert seen.returncode == 0, seen.stderr
    assert json.loads(seen.stdout)["schemaVersion"] == 2


def test_distribution_accepts_the_tokens(
    token_service: tuple[Registry, Path], tmp_path: Path
) -> None:
    service, cert = token_service
    distribution = start_distribution_registry(
        token={
            "realm": f"http://{service.addr}/token",
            "service": "dockling-registry",
            "issuer": ISSUER,
            "rootcertbundle": str(cert),
        }
    )
    try:
        assert distribution.request("GET", "/v2/", auth=False).status == 401
        make_oci_layout(tmp_path / "src")
        push_and_inspect(distribution.addr, tmp_path / "src")
    finally:
        stop_registry(distribution)


def test_dockling_registry_verifies_an_outside_services_tokens(
    token_service: tuple[Registry, Path], tmp_path: Path
) -> None:
    service, cert = token_service
    verifier = start_dockling_registry(
        extra_args=[
            "--auth", "token", "--token-realm", f"http://{service.addr}/token",
            "--token-key", str(cert),
        ]
    )  # fmt: skip
    try:
        make_oci_layout(tmp_path / "src")
        push_and_inspect(verifier.addr, tmp_path / "src")
    finally:
        stop_registry(verifier)
    # Issuing needs the private key: a certificate alone is refused at start, in one line.
    _, access = write_auth_files(tmp_path)
    refused = subprocess.run(
        [
            str(Path(service.process.args[0])), "registry", "serve", "--addr", "127.0.0.1:0",
            "--root", str(tmp_path / "data"), "--auth", "token", "--access", str(access),
            "--token-key", str(cert),
        ],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "issuing tokens (--access) needs a secret or a private key" in refused.stderr
