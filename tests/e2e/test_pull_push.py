"""`dockling pull`, `push`, `login`, `logout` against a real docker-registry on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.daemon import Daemon
from tests.helpers.registry import (
    Registry,
    app_layer,
    build_oci_layout,
    busybox_layer,
    skopeo_inspect,
    skopeo_push,
    start_registry,
)

pytestmark = [pytest.mark.root, pytest.mark.runc]


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    reg = start_registry(users={"carol": "pa55"})
    yield reg
    reg.stop()


def cli(
    daemon: Daemon, home: Path, *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**daemon.env, "DOCKLING_CONFIG": str(home)}
    return subprocess.run(
        [str(Path(daemon.env["PATH"].split(":")[0]) / "dockling"), *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_login_push_pull_run_logout(daemon: Daemon, registry: Registry, tmp_path: Path) -> None:
    home = tmp_path / "cfg"
    wrong = cli(
        daemon, home, "login", "-u", "carol", "--password-stdin", registry.netloc, input="x\n"
    )
    assert wrong.returncode == 1 and "unauthorized" in wrong.stderr
    ok = cli(
        daemon, home, "login", "-u", "carol", "--password-stdin", registry.netloc, input="pa55\n"
    )
    assert ok.returncode == 0, ok.stderr
    assert "Login Succeeded" in ok.stdout
    auths = json.loads((home / "config.json").read_text())["auths"]
    assert registry.netloc in auths

    target = f"{registry.netloc}/e2e/busybox:1"
    assert cli(daemon, home, "tag", "busybox", target).returncode == 0
    pushed = cli(daemon, home, "push", target)
    assert pushed.returncode == 0, pushed.stderr
    digest = pushed.stdout.strip().splitlines()[-1].split("digest: ")[1].split()[0]
    assert skopeo_inspect(target, creds="carol:pa55")["Digest"] == digest

    built = build_oci_layout(
        tmp_path / "oci", [busybox_layer(), app_layer("from skopeo")], cmd=["cat", "/app/greeting"]
    )
    skopeo_push(built, f"{registry.netloc}/e2e/app:v2", creds="carol:pa55")
    pulled = cli(daemon, home, "pull", f"{registry.netloc}/e2e/app:v2")
    assert pulled.returncode == 0, pulled.stderr
    assert f"Digest: {built.manifest_digest}" in pulled.stdout
    assert "Pull complete" in pulled.stdout
    assert pulled.stdout.strip().endswith(f"{registry.netloc}/e2e/app:v2")
    run = cli(daemon, home, "run", "--rm", f"{registry.netloc}/e2e/app:v2")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "from skopeo\n"

    out = cli(daemon, home, "logout", registry.netloc)
    assert out.stdout.strip() == f"Removing login credentials for {registry.netloc}"
    denied = cli(daemon, home, "pull", f"{registry.netloc}/e2e/app:v2")
    assert denied.returncode == 1
    assert "no basic auth credentials" in denied.stderr


def test_pull_unknown_tag(daemon: Daemon, registry: Registry, tmp_path: Path) -> None:
    home = tmp_path / "cfg"
    cli(daemon, home, "login", "-u", "carol", "--password-stdin", registry.netloc, input="pa55\n")
    out = cli(daemon, home, "pull", f"{registry.netloc}/e2e/none:nope")
    assert out.returncode == 1
    assert "manifest unknown" in out.stderr
