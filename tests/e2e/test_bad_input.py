"""Bad input: one clear line, Docker's status and exit codes, and nothing half-created."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest

pytestmark = [pytest.mark.runc]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def snapshot_state(daemon: Any) -> tuple[set[str], set[str], set[str]]:
    """Container ids, container data dirs and bundle dirs: what a failed request may not add."""
    _, containers = daemon.request("GET", "/containers/json?all=1")
    ids = {c["Id"] for c in containers}
    data_dirs = set(os.listdir(daemon.data_root / "containers"))
    bundles_root = daemon.exec_root / "containers"
    bundles = set(os.listdir(bundles_root)) if bundles_root.exists() else set()
    return ids, data_dirs, bundles


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"HostConfig": {"Memory": "12zz"}}, "memory"),
        ({"HostConfig": {"Memory": 1024}}, "Minimum memory limit"),
        ({"HostConfig": {"RestartPolicy": {"Name": "bogus"}}}, "restart policy"),
        ({"HostConfig": {"NanoCpus": -1000000000}}, "cpus"),
        ({"HostConfig": {"CapAdd": ["CAP_FOO"]}}, "CAP_FOO"),
        ({"HostConfig": {"Binds": ["relative:dir:xx"]}}, "invalid"),
        ({"HostConfig": {"SecurityOpt": ["bogus=1"]}}, "security-opt"),
        ({"HostConfig": {"AutoRemove": True, "RestartPolicy": {"Name": "always"}}}, "--restart"),
    ],
)
def test_create_with_bad_parameters_is_400_and_creates_nothing(
    daemon: Any, body: dict[str, Any], needle: str
) -> None:
    before = snapshot_state(daemon)
    request = {"Image": "busybox", "Cmd": ["true"], **body}
    status, answer = daemon.request("POST", f"/containers/create?name={unique('bad')}", request)
    assert status == 400, answer
    message = answer["message"]
    assert "\n" not in message
    assert needle.lower() in message.lower(), message
    assert snapshot_state(daemon) == before


def test_unknown_image_is_404_and_creates_nothing(daemon: Any) -> None:
    before = snapshot_state(daemon)
    status, answer = daemon.request("POST", "/containers/create", {"Image": "nope:1.0"})
    assert status == 404
    assert answer["message"] == "No such image: nope:1.0"
    assert snapshot_state(daemon) == before


def test_unknown_container_everywhere(daemon: Any) -> None:
    # `inspect` looks for any kind of object, so Docker words it differently.
    result = daemon.cli("inspect", "nope")
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: No such object: nope"
    for args in (["logs", "nope"], ["stop", "nope"], ["rm", "nope"], ["exec", "nope", "true"]):
        result = daemon.cli(*args)
        assert result.returncode == 1, args
        assert result.stderr.strip().splitlines()[-1].endswith("No such container: nope"), (
            args,
            result.stderr,
        )


def test_cli_flag_errors_exit_125(daemon: Any) -> None:
    for flags, needle in (
        (["--memory", "12zz"], "--memory"),
        (["--cpus", "-1"], "--cpus"),
        (["--restart", "bogus"], "restart policy"),
    ):
        result = daemon.cli("run", *flags, "busybox", "true")
        assert result.returncode == 125, (flags, result.stderr)
        assert needle in result.stderr, (flags, result.stderr)


def test_missing_command_is_127_with_docker_message(daemon: Any) -> None:
    name = unique("nocmd")
    result = daemon.cli("run", "--name", name, "busybox", "foo")
    assert result.returncode == 127
    assert 'exec: "foo": executable file not found in $PATH' in result.stderr
    # Like Docker, the container stays, created, with the error recorded; no mount is left.
    data = json.loads(daemon.cli("inspect", name).stdout)[0]
    assert data["State"]["Status"] == "created"
    assert data["State"]["ExitCode"] == 127
    assert "executable file not found" in data["State"]["Error"]
    rootfs = daemon.exec_root / "containers" / data["Id"] / "rootfs"
    assert not os.path.ismount(rootfs)
    assert daemon.cli("rm", name).returncode == 0


def test_not_executable_is_126(daemon: Any) -> None:
    result = daemon.cli("run", "--rm", "busybox", "/etc/passwd")
    assert result.returncode == 126, result.stderr
    assert "permission denied" in result.stderr


def test_remove_running_without_force_is_409_with_hint(daemon: Any) -> None:
    name = unique("running")
    assert daemon.cli("run", "-d", "--name", name, "busybox", "sleep", "60").returncode == 0
    try:
        status, answer = daemon.request("DELETE", f"/containers/{name}")
        assert status == 409
        assert "stop the container before removing or force remove" in answer["message"]
        status, data = daemon.request("GET", f"/containers/{name}/json")
        assert data["State"]["Running"] is True
    finally:
        daemon.cli("rm", "-f", name)


def test_duplicate_name_is_409(daemon: Any) -> None:
    name = unique("dup")
    assert daemon.cli("create", "--name", name, "busybox", "true").returncode == 0
    try:
        before = snapshot_state(daemon)
        result = daemon.cli("create", "--name", name, "busybox", "true")
        assert result.returncode == 1  # docker 28: create reports a daemon refusal with 1
        assert "is already in use by container" in result.stderr
        assert snapshot_state(daemon) == before
    finally:
        daemon.cli("rm", name)


def test_ambiguous_and_unique_prefixes(daemon: Any) -> None:
    name = unique("prefix")
    cid = daemon.cli("create", "--name", name, "busybox", "true").stdout.strip()
    try:
        assert daemon.cli("inspect", "-f", "{{.Name}}", cid[:5]).stdout.strip() == f"/{name}"
    finally:
        daemon.cli("rm", cid[:12])


def test_containers_from_one_image_are_isolated(daemon: Any) -> None:
    a, b = unique("iso-a"), unique("iso-b")
    assert daemon.cli("run", "-d", "--name", a, "busybox", "sleep", "60").returncode == 0
    assert daemon.cli("run", "-d", "--name", b, "busybox", "sleep", "60").returncode == 0
    try:
        assert daemon.cli("exec", a, "sh", "-c", "echo secret > /etc/marker").returncode == 0
        assert daemon.cli("exec", a, "cat", "/etc/marker").stdout == "secret\n"
        assert daemon.cli("exec", b, "test", "-e", "/etc/marker").returncode == 1
    finally:
        daemon.cli("rm", "-f", a, b)
    # The image is untouched: a new container does not see the write either.
    result = daemon.cli("run", "--rm", "busybox", "test", "-e", "/etc/marker")
    assert result.returncode == 1


def test_log_rotation_with_log_opts(daemon: Any) -> None:
    name = unique("rotate")
    result = daemon.cli(
        "run",
        "--name",
        name,
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done",
    )
    assert result.returncode == 0
    try:
        _, data = daemon.request("GET", f"/containers/{name}/json")
        log_path = data["LogPath"]
        assert os.path.exists(log_path) and os.path.exists(log_path + ".1")
        assert not os.path.exists(log_path + ".2")
        assert os.path.getsize(log_path) <= 4096
        logs = daemon.cli("logs", name).stdout.splitlines()
        assert logs[-1] == "line-399"
        with open(log_path + ".1") as rotated:
            first = json.loads(rotated.readline())
        assert set(first) == {"log", "stream", "time"}
    finally:
        daemon.cli("rm", name)


def test_stats_reads_cgroups(daemon: Any) -> None:
    name = unique("stats")
    assert (
        daemon.cli(
            "run", "-d", "--name", name, "-m", "64m", "--pids-limit", "50", "busybox", "sleep", "60"
        ).returncode
        == 0
    )
    try:
        status, stats = daemon.request("GET", f"/containers/{name}/stats?stream=0")
        assert status == 200
        assert stats["memory_stats"]["usage"] > 0
        assert stats["memory_stats"]["limit"] == 64 * 1024 * 1024
        assert stats["pids_stats"]["current"] >= 1
        assert stats["pids_stats"]["limit"] == 50
        assert stats["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    finally:
        daemon.cli("rm", "-f", name)


def test_volume_in_use_is_409_and_data_survives_the_container(daemon: Any) -> None:
    volume, name = unique("vol"), unique("user")
    result = daemon.cli(
        "run", "--name", name, "-v", f"{volume}:/data", "busybox", "sh", "-c", "echo kept > /data/f"
    )
    assert result.returncode == 0, result.stderr
    status, answer = daemon.request("DELETE", f"/volumes/{volume}")
    assert status == 409
    assert answer["message"].startswith(f"remove {volume}: volume is in use")
    assert daemon.cli("rm", name).returncode == 0
    result = daemon.cli("run", "--rm", "-v", f"{volume}:/data", "busybox", "cat", "/data/f")
    assert result.stdout == "kept\n"
    assert daemon.cli("volume", "rm", volume).returncode == 0
    status, _ = daemon.request("GET", f"/volumes/{volume}")
    assert status == 404


def test_anonymous_volume_removed_with_rm_v(daemon: Any) -> None:
    name = unique("anon")
    assert daemon.cli("create", "--name", name, "-v", "/scratch", "busybox", "true").returncode == 0
    _, data = daemon.request("GET", f"/containers/{name}/json")
    [mount] = [m for m in data["Mounts"] if m["Destination"] == "/scratch"]
    assert mount["Type"] == "volume"
    assert daemon.cli("rm", "-v", name).returncode == 0
    status, _ = daemon.request("GET", f"/volumes/{mount['Name']}")
    assert status == 404
