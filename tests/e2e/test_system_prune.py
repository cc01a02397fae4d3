"""`system prune`: stopped containers, unused networks, dangling images, build cache and,
with --volumes, anonymous volumes go; what a running container uses stays. Each test has
a daemon of its own, since pruning would take what other tests hold."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from tests.helpers.daemon import VENV_BIN, running_daemon

pytestmark = pytest.mark.runc

SETUP = [
    "create --name stopped busybox true",
    "network create unused-net",
    "volume create named-vol",
    "run -d --name keeper -v /kept busybox sleep 300",
    "run --name exited -v /anon busybox true",
]


def _sh(daemon: Any, command: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, shell=True, env=daemon.env, capture_output=True, text=True, input=stdin,
        timeout=120,
    )  # fmt: skip


def _setup(daemon: Any) -> None:
    for command in SETUP:
        assert _sh(daemon, "docker " + command).returncode == 0, command


def _names(daemon: Any, what: str) -> set[str]:
    out = _sh(daemon, f"docker {what} --format '{{{{.Name}}}}'").stdout
    return set(out.split())


def test_prune_with_volumes_keeps_what_is_in_use() -> None:
    dockling = VENV_BIN / "dockling"
    with running_daemon() as d:
        _setup(d)
        inspect = json.loads(_sh(d, "docker inspect keeper exited").stdout)
        kept_volume = inspect[0]["Mounts"][0]["Name"]
        anon_volume = inspect[1]["Mounts"][0]["Name"]
        out = _sh(d, f"{dockling} system prune -f --volumes")
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("Deleted Containers:\n")
        assert "Deleted Networks:\nunused-net\n\n" in out.stdout
        assert f"Deleted Volumes:\n{anon_volume}\n\n" in out.stdout
        assert re.search(r"\nTotal reclaimed space: [0-9.]+k?B\n$", out.stdout)
        containers = _sh(d, "docker ps -a --format '{{.Names}}'").stdout.split()
        assert containers == ["keeper"]
        assert "unused-net" not in _names(d, "network ls")
        volumes = _names(d, "volume ls")
        assert kept_volume in volumes and "named-vol" in volumes
        assert anon_volume not in volumes
        assert _sh(d, "docker image inspect busybox").returncode == 0


def test_answering_no_removes_nothing() -> None:
    with running_daemon() as d:
        _setup(d)
        out = _sh(d, f"{VENV_BIN / 'dockling'} system prune -a", stdin="n\n")
        assert out.returncode == 0
        assert out.stdout.startswith(
            "WARNING! This will remove:\n"
            "  - all stopped containers\n"
            "  - all networks not used by at least one container\n"
            "  - all images without at least one container associated to them\n"
            "  - all build cache\n"
        )
        assert "Are you sure you want to continue? [y/N]" in out.stdout
        containers = set(_sh(d, "docker ps -a --format '{{.Names}}'").stdout.split())
        assert containers == {"keeper", "stopped", "exited"}
        assert "unused-net" in _names(d, "network ls")


def test_same_report_as_the_docker_cli() -> None:
    """Both CLIs prune the same setup; their reports match once ids are masked."""
    reports = []
    for cli in ("docker", str(VENV_BIN / "dockling")):
        with running_daemon() as d:
            _setup(d)
            _sh(d, "docker tag busybox extra:1")
            out = _sh(d, f"{cli} system prune -af --volumes")
            text = re.sub(r"\b[0-9a-f]{64}\b", "<ID>", out.stdout)
            reports.append((out.returncode, text, out.stderr.replace("dockling", "docker")))
    assert reports[1] == reports[0]


def test_until_filter_with_volumes_is_refused() -> None:
    with running_daemon() as d:
        _setup(d)
        out = _sh(d, f"{VENV_BIN / 'dockling'} system prune -f --volumes --filter until=1h")
        assert (out.returncode, out.stderr) == (
            1,
            'ERROR: The "until" filter is not supported with "--volumes"\n',
        )
        assert "stopped" in _sh(d, "docker ps -a --format '{{.Names}}'").stdout
