"""HEALTHCHECK run by the engine: `--health-*` flags and image health checks, the status in
`ps` and `inspect`, health_status events, the probe timeout, and a daemon restart."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.daemon import (
    Daemon,
    start_daemon,
    stop_daemon,
)

pytestmark = pytest.mark.runc


def dl(daemon: Any, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["dockling", *args], capture_output=True, text=True, env=daemon.env, timeout=timeout
    )


@pytest.fixture
def cleanup(daemon: Any) -> Iterator[list[str]]:
    refs: list[str] = []
    yield refs
    for ref in refs:
        dl(daemon, "rm", "-f", ref)


def health(daemon: Any, ref: str) -> dict[str, Any] | None:
    status, body = daemon.request("GET", f"/containers/{ref}/json")
    assert status == 200, body
    result: dict[str, Any] | None = body["State"].get("Health")
    return result


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def run_d(daemon: Any, cleanup: list[str], *args: str) -> str:
    name = f"hc{uuid.uuid4().hex[:8]}"
    out = dl(daemon, "run", "-d", "--name", name, *args)
    assert out.returncode == 0, out.stderr
    cleanup.append(name)
    return name


def test_health_cmd_becomes_healthy_then_unhealthy(daemon: Any, cleanup: list[str]) -> None:
    # Healthy while /tmp/ok exists; removing it makes three probes fail in a row.
    name = run_d(
        daemon,
        cleanup,
        "--health-cmd",
        "test -e /tmp/ok && echo fine",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        daemon.image,
        "sh",
        "-c",
        "touch /tmp/ok; sleep 300",
    )
    first = health(daemon, name)
    assert first is not None and first["Status"] == "starting"
    ps = dl(daemon, "ps", "--filter", f"name={name}", "--format", "{{.Status}}")
    assert "(health: starting)" in ps.stdout or "(healthy)" in ps.stdout, ps.stdout
    wait_for(lambda: (health(daemon, name) or {}).get("Status") == "healthy")
    state = health(daemon, name)
    assert state is not None
    assert state["FailingStreak"] == 0
    entry = state["Log"][-1]
    assert entry["ExitCode"] == 0 and entry["Output"] == "fine\n"
    assert entry["Start"] <= entry["End"]
    ps = dl(daemon, "ps", "--filter", f"name={name}", "--format", "{{.Status}}")
    assert ps.stdout.strip().startswith("Up ") and ps.stdout.strip().endswith("(healthy)")
    listed = dl(daemon, "ps", "-q", "--no-trunc", "--filter", "health=healthy")
    _, body = daemon.request("GET", f"/containers/{name}/json")
    assert body["Id"] in listed.stdout
    config = body["Config"]["Healthcheck"]
    assert config["Test"] == ["CMD-SHELL", "test -e /tmp/ok && echo fine"]
    assert config["Interval"] == 200_000_000 and config["Retries"] == 2

    assert dl(daemon, "exec", name, "rm", "/tmp/ok").returncode == 0
    wait_for(lambda: (health(daemon, name) or {}).get("Status") == "unhealthy")
    state = health(daemon, name)
    assert state is not None
    assert state["FailingStreak"] >= 2
    assert 1 <= len(state["Log"]) <= 5
    assert state["Log"][-1]["ExitCode"] == 1
    ps = dl(daemon, "ps", "--filter", f"name={name}", "--format", "{{.Status}}")
    assert ps.stdout.strip().endswith("(unhealthy)")
    listed = dl(daemon, "ps", "-q", "--no-trunc", "--filter", "health=unhealthy")
    assert body["Id"] in listed.stdout
    assert body["Id"] not in dl(daemon, "ps", "-q", "--no-trunc", "--filter", "health=none").stdout

    # Probing stops with the container; the last state stays visible.
    assert dl(daemon, "stop", "-t", "1", name).returncode == 0
    stopped = health(daemon, name)
    assert stopped is not None
    count = len(stopped["Log"])
    time.sleep(0.6)
    after = health(daemon, name)
    assert after is not None and len(after["Log"]) == count


def test_image_healthcheck_events_timeout_and_no_healthcheck(
    daemon: Any, cleanup: list[str], tmp_path: Path
) -> None:
    image = f"hcimg{uuid.uuid4().hex[:8]}"
    (tmp_path / "Dockerfile").write_text(
        f"FROM {daemon.image}\n"
        "HEALTHCHECK --interval=200ms --timeout=300ms --retries=1 CMD sleep 5\n"
        'CMD ["sleep", "300"]\n'
    )
    built = dl(daemon, "build", "-q", "-t", image, str(tmp_path), timeout=120)
    assert built.returncode == 0, built.stderr
    cleanup.append(image)  # `rm -f` of an image ref fails harmlessly; removed below
    since = str(int(time.time()) - 1)
    name = run_d(daemon, cleanup, image)
    wait_for(lambda: (health(daemon, name) or {}).get("Status") == "unhealthy")
    state = health(daemon, name)
    assert state is not None
    assert state["Log"][-1]["ExitCode"] == -1
    assert state["Log"][-1]["Output"] == "Health check exceeded timeout (300ms)"
    # Timed-out probes are killed: they never pile up.  A new probe starts every 200 ms, so
    # at most the one in flight can be seen at any moment.
    for _ in range(5):
        top = dl(daemon, "exec", name, "ps")
        assert top.stdout.count("sleep 5") <= 1, top.stdout
        time.sleep(0.3)
    events = dl(
        daemon,
        "events",
        "--since",
        since,
        "--until",
        str(int(time.time()) + 1),
        "--filter",
        f"container={name}",
        "--format",
        "{{json .}}",
    )
    actions = [json.loads(line)["Action"] for line in events.stdout.splitlines() if line]
    assert "health_status: unhealthy" in actions, actions

    # --no-healthcheck disables the image's check; flags override single fields.
    plain = run_d(daemon, cleanup, "--no-healthcheck", image)
    assert health(daemon, plain) is None
    ps = dl(daemon, "ps", "--filter", f"name={plain}", "--format", "{{.Status}}")
    assert "health" not in ps.stdout
    _, body = daemon.request("GET", f"/containers/{plain}/json")
    assert body["Config"]["Healthcheck"]["Test"] == ["NONE"]
    listed = dl(daemon, "ps", "-q", "--no-trunc", "--filter", "health=none")
    assert body["Id"] in listed.stdout
    # A generous timeout: a loaded machine must not turn `true` into a timed-out probe.
    override = run_d(daemon, cleanup, "--health-cmd", "true", "--health-timeout", "20s", image)
    _, body = daemon.request("GET", f"/containers/{override}/json")
    assert body["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "true"]
    assert body["Config"]["Healthcheck"]["Interval"] == 200_000_000
    wait_for(lambda: (health(daemon, override) or {}).get("Status") == "healthy")
    for ref in (name, plain, override):
        dl(daemon, "rm", "-f", ref)
    assert dl(daemon, "rmi", image).returncode == 0


def test_bad_health_flags_are_refused(daemon: Any) -> None:
    out = dl(daemon, "create", "--no-healthcheck", "--health-cmd", "true", daemon.image)
    assert out.returncode != 0
    assert "conflicts with --health-* options" in out.stderr
    out = dl(daemon, "create", "--health-interval", "soon", daemon.image)
    assert out.returncode != 0
    assert "invalid duration" in out.stderr
    status, body = daemon.request(
        "POST",
        "/containers/create",
        {"Image": daemon.image, "Healthcheck": {"Test": ["BOGUS"]}},
    )
    assert status == 400, body


@pytest.mark.slow
def test_probing_resumes_after_daemon_restart(own_daemon: Daemon) -> None:
    d = own_daemon
    status, body = d.request(
        "POST",
        "/containers/create?name=hcrestart",
        {
            "Image": "busybox",
            "Cmd": ["sleep", "300"],
            "Healthcheck": {"Test": ["CMD", "cat", "/etc/hostname"], "Interval": 200_000_000},
        },
    )
    assert status == 201, body
    assert d.request("POST", "/containers/hcrestart/start")[0] == 204
    wait_for(lambda: (health(d, "hcrestart") or {}).get("Status") == "healthy")
    stop_daemon(d, kill=True)
    d.process = start_daemon(root=d.root).process
    restored = health(d, "hcrestart")
    assert restored is not None
    wait_for(lambda: len((health(d, "hcrestart") or {}).get("Log", [])) >= 1)
    assert (health(d, "hcrestart") or {})["Status"] == "healthy"
