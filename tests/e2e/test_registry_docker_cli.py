"""The real docker CLI, pointed at docklingd, pushes to `dockling registry serve` and pulls
back: anonymously, and through `docker login` against the registry's token service.

docklingd does the registry work (the CLI only sends the Engine API calls and, for login,
the credentials); 127.0.0.1 is an insecure registry to the daemon, as to Docker, so plain
HTTP is used.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from tests.helpers.daemon import Daemon
from tests.helpers.registry_server import Registry, start_dockling_registry, stop_registry

pytestmark = [pytest.mark.docker_cli, pytest.mark.runc, pytest.mark.root]

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
USERS = {"pusher": "push-pw", "puller": "pull-pw"}
RULES = "pusher  ci/  pull,push\npuller  ci/  pull\n"


def docker(
    daemon: Daemon, config: Path, *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`docker ARGS` against docklingd with its own config dir (credentials live there)."""
    env = {**daemon.env, "DOCKER_CONFIG": str(config)}
    return subprocess.run(
        [DOCKER, *args], env=env, input=input, capture_output=True, text=True, timeout=120
    )


def ok(daemon: Daemon, config: Path, *args: str, input: str | None = None) -> str:
    out = docker(daemon, config, *args, input=input)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.returncode}\n{out.stderr}"
    return out.stdout


def pushed_digest(output: str) -> str:
    """The digest from push's last line, `TAG: digest: sha256:... size: N`."""
    return output.strip().splitlines()[-1].split("digest: ")[1].split()[0]


@pytest.fixture
def open_registry() -> Iterator[Registry]:
    reg = start_dockling_registry()
    try:
        yield reg
    finally:
        stop_registry(reg)


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[Registry]:
    """`--auth token` with its own /token endpoint, htpasswd users and access rules."""
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(
        "".join(
            f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"
            for u, p in USERS.items()
        )
    )
    access = tmp_path / "access"
    access.write_text(RULES)
    reg = start_dockling_registry(
        extra_args=["--auth", "token", "--htpasswd", str(htpasswd), "--access", str(access)]
    )
    try:
        yield reg
    finally:
        stop_registry(reg)


def test_docker_push_rmi_pull(daemon: Daemon, open_registry: Registry, tmp_path: Path) -> None:
    target = f"{open_registry.addr}/x/busybox:1"
    ok(daemon, tmp_path, "tag", daemon.image, target)
    try:
        digest = pushed_digest(ok(daemon, tmp_path, "push", target))
        # What docker pushed is in the registry, under the tag, with the digest it printed.
        r = open_registry.request(
            "HEAD",
            "/v2/x/busybox/manifests/1",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        assert r.status == 200 and r.headers["docker-content-digest"] == digest
        tags = open_registry.request("GET", "/v2/x/busybox/tags/list").json()
        assert tags == {"name": "x/busybox", "tags": ["1"]}
        ok(daemon, tmp_path, "rmi", target)
        assert docker(daemon, tmp_path, "image", "inspect", target).returncode == 1
        pulled = ok(daemon, tmp_path, "pull", target)
        assert f"Digest: {digest}" in pulled
        inspected = json.loads(ok(daemon, tmp_path, "image", "inspect", target))
        assert f"{open_registry.addr}/x/busybox@{digest}" in inspected[0]["RepoDigests"]
        out = ok(daemon, tmp_path, "run", "--rm", target, "echo", "pulled-and-ran")
        assert out.strip() == "pulled-and-ran"
    finally:
        docker(daemon, tmp_path, "rmi", target)


def test_docker_login_token_auth(daemon: Daemon, token_registry: Registry, tmp_path: Path) -> None:
    addr = token_registry.addr
    pusher, puller = tmp_path / "pusher", tmp_path / "puller"
    wrong = docker(
        daemon, tmp_path / "w", "login", "-u", "pusher", "--password-stdin", addr, input="nope"
    )
    assert wrong.returncode != 0 and "unauthorized" in wrong.stderr.lower(), wrong.stderr
    for config, user in ((pusher, "pusher"), (puller, "puller")):
        out = ok(daemon, config, "login", "-u", user, "--password-stdin", addr, input=USERS[user])
        assert "Login Succeeded" in out
        saved = json.loads((config / "config.json").read_text())["auths"][addr]["auth"]
        assert base64.b64decode(saved).decode() == f"{user}:{USERS[user]}"
    target = f"{addr}/ci/busybox-{uuid.uuid4().hex[:6]}:1"
    ok(daemon, pusher, "tag", daemon.image, target)
    try:
        # Not logged in: the token service grants nothing, so the push is refused.
        anonymous = docker(daemon, tmp_path / "anon", "push", target)
        assert anonymous.returncode != 0
        # A pull-only user gets a token without push: the registry answers DENIED.
        denied = docker(daemon, puller, "push", target)
        assert denied.returncode != 0 and "denied" in denied.stderr.lower(), denied.stderr
        digest = pushed_digest(ok(daemon, pusher, "push", target))
        ok(daemon, pusher, "rmi", target)
        assert docker(daemon, tmp_path / "anon", "pull", target).returncode != 0
        pulled = ok(daemon, puller, "pull", target)
        assert f"Digest: {digest}" in pulled
        ok(daemon, puller, "logout", addr)
        assert addr not in json.loads((puller / "config.json").read_text()).get("auths", {})
    finally:
        docker(daemon, pusher, "rmi", target)
