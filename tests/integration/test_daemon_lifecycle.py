"""docklingd itself: the socket, one daemon per data root, and containers that outlive it."""

from __future__ import annotations

import grp
import os
import stat
import subprocess
import time

import pytest

from tests.helpers.daemon import (
    VENV_BIN,
    Daemon,
    start_daemon,
    stop_daemon,
)

pytestmark = [pytest.mark.runc, pytest.mark.slow]


def restart(d: Daemon, *, kill: bool) -> Daemon:
    stop_daemon(d, kill=kill)
    return start_daemon(root=d.root)


def inspect(d: Daemon, name: str) -> dict:
    status, data = d.request("GET", f"/containers/{name}/json")
    assert status == 200, data
    return data


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_socket_is_group_accessible(own_daemon: Daemon) -> None:
    st = os.stat(own_daemon.socket_path)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_uid == 0
    assert grp.getgrgid(st.st_gid).gr_name == "dockling"
    assert (own_daemon.exec_root / "docklingd.pid").read_text().strip() == str(
        own_daemon.process.pid
    )


def test_second_daemon_on_same_data_root_is_refused(own_daemon: Daemon) -> None:
    result = subprocess.run(
        [
            str(VENV_BIN / "docklingd"),
            "--data-root",
            str(own_daemon.data_root),
            "--exec-root",
            str(own_daemon.root / "other-exec"),
            "-H",
            f"unix://{own_daemon.root}/other.sock",
            "--config-file",
            str(own_daemon.root / "daemon.json"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "already using data root" in lines[0]
    assert str(own_daemon.process.pid) in lines[0]
    # The running daemon is untouched.
    assert own_daemon.request("GET", "/_ping")[0] == 200


def test_running_container_survives_daemon_kill(own_daemon: Daemon) -> None:
    d = own_daemon
    result = d.cli(
        "run",
        "-d",
        "--name",
        "survivor",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
    )
    assert result.returncode == 0, result.stderr
    pid_before = inspect(d, "survivor")["State"]["Pid"]
    d = restart(d, kill=True)
    own_daemon.process = d.process
    state = inspect(d, "survivor")["State"]
    assert state["Running"] is True
    assert state["Pid"] == pid_before
    os.kill(pid_before, 0)  # the very same process still runs
    ps = d.cli("ps", "--format", "{{.Names}}")
    assert "survivor" in ps.stdout.split()
    # Logging went on while the daemon was away and goes on now.
    first = d.cli("logs", "survivor").stdout.count("tick")
    wait_for(lambda: d.cli("logs", "survivor").stdout.count("tick") > first + 2)
    # Attach works against the adopted container.
    with subprocess.Popen(
        [str(VENV_BIN / "dockling"), "attach", "--no-stdin", "survivor"],
        env=d.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith(b"tick")
        finally:
            proc.kill()
    assert d.cli("rm", "-f", "survivor").returncode == 0


def test_exit_while_daemon_down_is_recorded(own_daemon: Daemon) -> None:
    d = own_daemon
    result = d.cli("run", "-d", "--name", "short", "busybox", "sh", "-c", "sleep 1; exit 3")
    assert result.returncode == 0, result.stderr
    stop_daemon(d, kill=True)
    time.sleep(2)
    d = start_daemon(root=d.root)
    own_daemon.process = d.process
    state = inspect(d, "short")["State"]
    assert state["Status"] == "exited"
    assert state["ExitCode"] == 3
    assert state["FinishedAt"].startswith("20")
    assert d.cli("wait", "short").stdout.strip() == "3"


def test_restart_always_applies_after_daemon_restart(own_daemon: Daemon) -> None:
    d = own_daemon
    result = d.cli(
        "run", "-d", "--name", "always", "--restart", "always", "busybox", "sleep", "300"
    )
    assert result.returncode == 0, result.stderr
    pid = inspect(d, "always")["State"]["Pid"]
    # The container dies while the daemon is down: the new daemon starts it again.
    stop_daemon(d, kill=True)
    os.kill(pid, 9)
    time.sleep(0.5)
    d = start_daemon(root=d.root)
    own_daemon.process = d.process
    wait_for(lambda: inspect(d, "always")["State"]["Running"])
    assert inspect(d, "always")["State"]["Pid"] != pid


def test_restart_on_failure_counts(own_daemon: Daemon) -> None:
    d = own_daemon
    result = d.cli(
        "run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1"
    )
    assert result.returncode == 0, result.stderr
    wait_for(
        lambda: (
            inspect(d, "flaky")["RestartCount"] == 2
            and inspect(d, "flaky")["State"]["Status"] == "exited"
        ),
        timeout=15,
    )
    time.sleep(1)
    data = inspect(d, "flaky")
    assert data["RestartCount"] == 2
    assert data["State"]["ExitCode"] == 1


def test_stop_keeps_unless_stopped_container_down_after_restart(own_daemon: Daemon) -> None:
    d = own_daemon
    assert (
        d.cli(
            "run", "-d", "--name", "us", "--restart", "unless-stopped", "busybox", "sleep", "300"
        ).returncode
        == 0
    )
    assert d.cli("stop", "-t", "1", "us").returncode == 0
    d = restart(d, kill=False)
    own_daemon.process = d.process
    time.sleep(0.5)
    assert inspect(d, "us")["State"]["Status"] == "exited"
