"""The real docker CLI (28.x, /usr/local/bin/docker) against docklingd: Docker compatibility.

Every test drives `docker` exactly as a user would, with DOCKER_HOST pointing at the
session's docklingd, and compares what it prints and its exit code with what Docker does.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

pytestmark = [pytest.mark.docker_cli, pytest.mark.runc]

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
PROMPT = r"[#$] "


def docker(
    daemon: Any, *args: str, input: str | None = None, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCKER, *args],
        capture_output=True,
        text=True,
        env=daemon.env,
        input=input,
        timeout=timeout,
    )


def ok(daemon: Any, *args: str, input: str | None = None, timeout: float = 20) -> str:
    """Run docker, insist on exit 0 and return stdout."""
    out = docker(daemon, *args, input=input, timeout=timeout)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.returncode}\n{out.stderr}"
    return out.stdout


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def names(daemon: Any) -> Iterator[Callable[[str], str]]:
    """A maker of unique container names; each such container is force-removed at the end."""
    made: list[str] = []

    def make(prefix: str) -> str:
        name = unique(prefix)
        made.append(name)
        return name

    yield make
    for name in made:
        daemon.request("DELETE", f"/containers/{name}?force=1&v=1")


def wait_for(predicate: Callable[[], bool], timeout: float = 10, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def inspect(daemon: Any, ref: str) -> dict[str, Any]:
    data = json.loads(ok(daemon, "inspect", ref))
    assert isinstance(data, list) and len(data) == 1
    result: dict[str, Any] = data[0]
    return result


# ---- system -------------------------------------------------------------------------


def test_version_negotiates_api_1_45(daemon: Any) -> None:
    out = ok(daemon, "version")
    client, _, server = out.partition("Server:")
    assert "1.45 (downgraded from" in client
    assert "API version:      1.45 (minimum version 1.24)" in server
    assert "OS/Arch:          linux/amd64" in server
    assert "Engine:" in server

    fmt = ok(daemon, "version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}")
    assert fmt.strip() == "1.45 linux"


def test_info(daemon: Any) -> None:
    out = ok(daemon, "info")
    assert "Storage Driver: overlay2" in out
    assert "Cgroup Version: 1" in out
    assert "Default Runtime: runc" in out
    fmt = ok(daemon, "info", "--format", "{{.OSType}} {{.Driver}} {{.NCPU}}")
    assert fmt.split() == ["linux", "overlay2", str(os.cpu_count())]


# ---- docker run ---------------------------------------------------------------------


def test_run_rm_echo(daemon: Any) -> None:
    out = docker(daemon, "run", "--rm", daemon.image, "echo", "hi")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "hi\n"
    assert out.stderr == ""


def test_run_exit_code_passthrough(daemon: Any) -> None:
    out = docker(daemon, "run", "--rm", daemon.image, "sh", "-c", "exit 7")
    assert out.returncode == 7


def test_run_missing_command_is_127(daemon: Any, names: Callable[[str], str]) -> None:
    name = names("nocmd")
    out = docker(daemon, "run", "--name", name, daemon.image, "no-such-command")
    assert out.returncode == 127
    assert "executable file not found" in out.stderr
    # With --rm as without: the start's error, once (no second report from the wait).
    removed = docker(daemon, "run", "--rm", daemon.image, "no-such-command")
    assert removed.returncode == 127
    assert removed.stderr.count("executable file not found") == 1, removed.stderr


def test_run_rm_removes_the_container(daemon: Any) -> None:
    name = unique("rm")
    ok(daemon, "run", "--rm", "--name", name, daemon.image, "true")
    out = docker(daemon, "inspect", name)
    assert out.returncode == 1
    assert "No such object" in out.stderr


def test_run_stdin_pipe(daemon: Any) -> None:
    out = docker(daemon, "run", "--rm", "-i", daemon.image, "wc", "-l", input="a\nb\nc\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"


# ---- a detached container's life ----------------------------------------------------


def test_detached_lifecycle(daemon: Any, names: Callable[[str], str]) -> None:
    name = names("life")
    cid = ok(daemon, "run", "-d", "--name", name, daemon.image, "sleep", "60").strip()
    assert len(cid) == 64

    ps = ok(daemon, "ps").splitlines()
    assert ps[0].split() == [
        "CONTAINER",
        "ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    row = next(line for line in ps if line.startswith(cid[:12]))
    assert row.split()[1] == daemon.image  # IMAGE shows the reference as the user typed it
    assert '"sleep 60"' in row
    assert "Up " in row
    assert row.endswith(name)

    assert cid[:12] in ok(daemon, "ps", "-q").split()
    formatted = ok(daemon, "ps", "-a", "--format", "{{.Names}} {{.Status}}").splitlines()
    assert any(line.startswith(f"{name} Up ") for line in formatted)

    hostname = ok(daemon, "exec", name, "sh", "-c", "echo $HOSTNAME")
    assert hostname == f"{cid[:12]}\n"
    assert ok(daemon, "exec", "-i", name, "cat", input="piped in\n") == "piped in\n"
    failed = docker(daemon, "exec", name, "sh", "-c", "exit 5")
    assert failed.returncode == 5

    data = inspect(daemon, name)
    assert data["State"]["Running"] is True
    assert data["Config"]["Cmd"] == ["sleep", "60"]
    assert data["Name"] == f"/{name}"
    assert data["Id"] == cid
    pid = ok(daemon, "inspect", "-f", "{{.State.Pid}}", name).strip()
    assert int(pid) == data["State"]["Pid"] > 0

    busy = docker(daemon, "rm", name)
    assert busy.returncode == 1
    assert "stop the container before removing or force remove" in busy.stderr

    started = time.monotonic()
    assert ok(daemon, "stop", "-t", "1", name) == f"{name}\n"
    assert time.monotonic() - started < 5
    stopped = inspect(daemon, name)["State"]
    assert stopped["Running"] is False
    assert stopped["ExitCode"] == 137  # sleep as PID 1 ignores SIGTERM: killed after 1 s

    assert ok(daemon, "start", name) == f"{name}\n"
    first_pid = inspect(daemon, name)["State"]["Pid"]
    assert ok(daemon, "restart", "-t", "1", name) == f"{name}\n"
    after = inspect(daemon, name)["State"]
    assert after["Running"] is True
    assert after["Pid"] != first_pid

    assert ok(daemon, "rm", "-f", name) == f"{name}\n"
    assert docker(daemon, "inspect", name).returncode == 1


def test_logs_timestamps_tail_and_follow(daemon: Any, names: Callable[[str], str]) -> None:
    name = names("logs")
    ok(daemon, "run", "-d", "--name", name, daemon.image, "sh", "-c", "echo one; echo two >&2")
    assert ok(daemon, "wait", name).strip() == "0"

    out = docker(daemon, "logs", name)
    assert out.stdout == "one\n"
    assert out.stderr == "two\n"
    tailed = docker(daemon, "logs", "-t", "--tail", "1", name)
    assert tailed.stdout == ""
    stamp, _, text = tailed.stderr.strip().partition(" ")
    assert text == "two"
    # The file keeps Go's trimmed RFC3339Nano; `logs -t` shows all nine digits, as docker.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", stamp), stamp

    follow_name = names("follow")
    ok(
        daemon,
        "run",
        "-d",
        "--name",
        follow_name,
        daemon.image,
        "sh",
        "-c",
        "echo a; sleep 1; echo b",
    )
    started = time.monotonic()
    followed = docker(daemon, "logs", "-f", follow_name, timeout=10)
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout == "a\nb\n"
    assert time.monotonic() - started < 8


def test_attach_reads_output(daemon: Any, names: Callable[[str], str]) -> None:
    name = names("attach")
    ok(
        daemon,
        "run",
        "-d",
        "--name",
        name,
        daemon.image,
        "sh",
        "-c",
        "while true; do echo tick; sleep 0.2; done",
    )
    with subprocess.Popen(
        [DOCKER, "attach", name],
        env=daemon.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"tick\n"
        finally:
            proc.kill()
            proc.wait(timeout=5)
    # Killing the client detaches it; the container goes on.
    assert inspect(daemon, name)["State"]["Running"] is True


def test_run_it_through_a_pty_and_detach(daemon: Any, names: Callable[[str], str]) -> None:
    name = names("tty")
    child = pexpect.spawn(
        DOCKER, ["run", "-it", "--name", name, daemon.image, "sh"], env=daemon.env, timeout=10
    )
    try:
        child.expect(PROMPT)
        child.sendline("echo hi$((40+2))")
        child.expect("hi42")
        child.expect(PROMPT)
        child.send("\x10\x11")  # ctrl-p ctrl-q
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert inspect(daemon, name)["State"]["Running"] is True

    exec_child = pexpect.spawn(DOCKER, ["exec", "-it", name, "sh"], env=daemon.env, timeout=10)
    try:
        exec_child.expect(PROMPT)
        exec_child.sendline("tty; echo $((6*7))")
        exec_child.expect("/dev/pts/")
        exec_child.expect("42")
        exec_child.sendline("exit 3")
        exec_child.expect(pexpect.EOF)
    finally:
        exec_child.close(force=True)
    assert exec_child.exitstatus == 3
    assert inspect(daemon, name)["State"]["Running"] is True


def test_top_stats_rename_pause_wait(daemon: Any, names: Callable[[str], str]) -> None:
    name = names("misc")
    ok(daemon, "run", "-d", "--name", name, daemon.image, "sleep", "60")

    top = ok(daemon, "top", name).splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"]
    assert any(line.endswith("sleep 60") for line in top[1:])

    stats = ok(daemon, "stats", "--no-stream", name).splitlines()
    assert stats[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
    assert name in stats[1]
    assert stats[1].split()[-1] == "1"  # PIDS

    renamed = names("renamed")
    ok(daemon, "rename", name, renamed)
    assert inspect(daemon, renamed)["Name"] == f"/{renamed}"

    ok(daemon, "pause", renamed)
    state = inspect(daemon, renamed)["State"]
    assert state["Paused"] is True and state["Status"] == "paused"
    status = ok(daemon, "ps", "--filter", f"name={renamed}", "--format", "{{.Status}}")
    assert status.strip().endswith("(Paused)")
    ok(daemon, "unpause", renamed)
    assert inspect(daemon, renamed)["State"]["Status"] == "running"

    ok(daemon, "kill", renamed)
    assert ok(daemon, "wait", renamed).strip() == "137"


def test_container_prune(daemon: Any, names: Callable[[str], str]) -> None:
    stopped = names("prune")
    running = names("keep")
    ok(daemon, "run", "--name", stopped, daemon.image, "true")
    ok(daemon, "run", "-d", "--name", running, daemon.image, "sleep", "60")
    out = ok(daemon, "container", "prune", "-f")
    assert "Deleted Containers:" in out
    assert "Total reclaimed space:" in out
    assert docker(daemon, "inspect", stopped).returncode == 1
    assert inspect(daemon, running)["State"]["Running"] is True


# ---- images, volumes, events --------------------------------------------------------


def test_images_and_rmi_in_use(daemon: Any, names: Callable[[str], str]) -> None:
    images = ok(daemon, "images").splitlines()
    assert images[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(line.split()[:2] == ["busybox", "latest"] for line in images[1:])

    name = names("inuse")
    ok(daemon, "create", "--name", name, daemon.image, "true")
    out = docker(daemon, "rmi", daemon.image)
    assert out.returncode == 1
    assert "conflict: unable to remove repository reference" in out.stderr
    assert "is using its referenced image" in out.stderr
    assert ok(daemon, "images", "-q", daemon.image).strip()


def test_volume_commands(daemon: Any) -> None:
    vol = unique("vol")
    assert ok(daemon, "volume", "create", vol) == f"{vol}\n"
    try:
        listed = ok(daemon, "volume", "ls").splitlines()
        assert listed[0].split() == ["DRIVER", "VOLUME", "NAME"]
        assert f"local     {vol}" in listed
        data = json.loads(ok(daemon, "volume", "inspect", vol))
        assert data[0]["Name"] == vol
        assert data[0]["Driver"] == "local"
        assert data[0]["Mountpoint"].endswith(f"/volumes/{vol}/_data")
    finally:
        assert ok(daemon, "volume", "rm", vol) == f"{vol}\n"
    assert docker(daemon, "volume", "inspect", vol).returncode == 1


def test_events_since_until(daemon: Any) -> None:
    name = unique("events")
    since = time.time()
    ok(daemon, "run", "--rm", "--name", name, daemon.image, "true")
    until = time.time() + 0.2
    out = ok(
        daemon,
        "events",
        "--since",
        f"{since - 0.1:.3f}",
        "--until",
        f"{until:.3f}",
        "--filter",
        f"container={name}",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        timeout=10,
    )
    actions = [line.split()[1] for line in out.splitlines()]
    assert all(line.split()[0] == "container" for line in out.splitlines())
    assert all(line.split()[2] == name for line in out.splitlines())
    for action in ("create", "start", "die", "destroy"):
        assert action in actions
    order = [actions.index(a) for a in ("create", "start", "die", "destroy")]
    assert order == sorted(order)


# ---- run options --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "command", "expected"),
    [
        (["--memory", "64m"], "cat /sys/fs/cgroup/memory/memory.limit_in_bytes", "67108864"),
        (["--pids-limit", "20"], "cat /sys/fs/cgroup/pids/pids.max", "20"),
        (["--cpus", "0.5"], "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us", "50000"),
        (["--user", "nobody"], "id -u", "65534"),
        (["--cap-drop", "ALL"], "grep CapEff /proc/self/status", "CapEff:\t0000000000000000"),
        (["-e", "GREETING=hello there"], "echo $GREETING", "hello there"),
        (["-w", "/tmp/work"], "pwd", "/tmp/work"),
        (["--hostname", "box1"], "hostname", "box1"),
        (["--tmpfs", "/run"], "grep ' /run ' /proc/mounts | cut -d' ' -f3", "tmpfs"),
        (["--shm-size", "128m"], "df -k /dev/shm | awk 'NR==2 {print $2}'", "131072"),
        (["--ulimit", "nofile=1024:2048"], "echo $(ulimit -n) $(ulimit -Hn)", "1024 2048"),
        (["--device", "/dev/null:/dev/xnull:rw"], "echo x > /dev/xnull && echo ok", "ok"),
        (["--sysctl", "net.ipv4.ip_forward=0"], "cat /proc/sys/net/ipv4/ip_forward", "0"),
        (["--cpuset-cpus", "0"], "cat /sys/fs/cgroup/cpuset/cpuset.cpus", "0"),
        (["--cpuset-mems", "0"], "cat /sys/fs/cgroup/cpuset/cpuset.mems", "0"),
        (
            ["--cpu-period", "50000", "--cpu-quota", "25000"],
            "echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.cfs_quota_us)",
            "50000 25000",
        ),
        (["--oom-score-adj", "500"], "cat /proc/self/oom_score_adj", "500"),
        (
            ["--memory-reservation", "32m"],
            "cat /sys/fs/cgroup/memory/memory.soft_limit_in_bytes",
            "33554432",
        ),
        (["--pid", "host"], "readlink /proc/self/ns/pid", os.readlink("/proc/self/ns/pid")),
        (["--ipc", "host"], "readlink /proc/self/ns/ipc", os.readlink("/proc/self/ns/ipc")),
        (["--uts", "host"], "hostname", os.uname().nodename),
        (
            ["--cgroupns", "host"],
            "readlink /proc/self/ns/cgroup",
            os.readlink("/proc/self/ns/cgroup"),
        ),
    ],
    ids=[
        "memory", "pids", "cpus", "user", "cap-drop", "env", "workdir", "hostname", "tmpfs",
        "shm-size", "ulimit", "device", "sysctl", "cpuset", "cpuset-mems", "cfs", "oom-score-adj",
        "memory-reservation", "pid-host",
        "ipc-host", "uts-host", "cgroupns-host",
    ],
)  # fmt: skip
def test_run_option(daemon: Any, flags: list[str], command: str, expected: str) -> None:
    out = docker(daemon, "run", "--rm", *flags, daemon.image, "sh", "-c", command)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{expected}\n"


def test_update(daemon: Any) -> None:
    name = f"upd{os.getpid()}"
    assert docker(daemon, "run", "-d", "--name", name, daemon.image, "sleep", "300").returncode == 0
    try:
        out = docker(daemon, "update", "--memory", "80m", "--memory-swap", "160m", name)
        assert out.returncode == 0, out.stderr
        assert out.stdout == f"{name}\n"
        check = docker(daemon, "exec", name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
        assert check.stdout == f"{80 * 2**20}\n"
        assert docker(daemon, "inspect", "-f", "{{.HostConfig.MemorySwap}}", name).stdout == (
            f"{160 * 2**20}\n"
        )
    finally:
        docker(daemon, "rm", "-f", name)


def test_sizes_count_the_container_and_its_image(daemon: Any) -> None:
    name = f"size{os.getpid()}"
    script = "head -c 100000 /dev/zero > /f && sleep 300"
    assert (
        docker(daemon, "run", "-d", "--name", name, daemon.image, "sh", "-c", script).returncode
        == 0
    )
    try:
        time.sleep(0.5)
        out = docker(
            daemon, "container", "inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", name
        )
        rw, rootfs = map(int, out.stdout.split())
        image = docker(daemon, "image", "inspect", "-f", "{{.Size}}", daemon.image)
        assert rw >= 100_000 and rootfs == rw + int(image.stdout)
        listed = docker(daemon, "ps", "-s", "--filter", f"name={name}", "--format", "{{.Size}}")
        assert listed.stdout.startswith("100kB (virtual "), listed.stdout
    finally:
        docker(daemon, "rm", "-f", name)


def test_bare_env_name_unsets(daemon: Any) -> None:
    name = f"DL_UNSET_{os.getpid()}"  # not in this process's environment
    script = f"echo ${{{name}:-unset}}"
    out = docker(
        daemon, "run", "--rm", "-e", f"{name}=1", "-e", name, daemon.image, "sh", "-c", script
    )
    assert (out.returncode, out.stdout) == (0, "unset\n"), out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-w", "relative"], "the working directory 'relative' is invalid, it needs to be an"),
        (["--stop-signal", "BOGUS"], "Invalid signal: BOGUS"),
        (["--network", "nosuchnet"], "network nosuchnet not found"),
        (["--user", "nosuchuser"], "unable to find user nosuchuser"),
    ],
)
def test_create_time_refusals(daemon: Any, args: list[str], message: str) -> None:
    """Refused with Docker's words, exit 125, nothing pulled, nothing left (with --rm too:
    the wait for the removal is answered)."""
    before = docker(daemon, "ps", "-aq").stdout
    out = docker(daemon, "run", "--rm", *args, daemon.image, "true")
    assert out.returncode == 125, out.stderr
    assert message in out.stderr and "Unable to find image" not in out.stderr
    assert docker(daemon, "ps", "-aq").stdout == before


def test_kill_unknown_container(daemon: Any) -> None:
    out = docker(daemon, "kill", "nosuchcontainer")
    assert out.returncode == 1
    assert (
        "Cannot kill container: nosuchcontainer: No such container: nosuchcontainer" in out.stderr
    )
    name = f"killstopped{os.getpid()}"
    assert docker(daemon, "create", "--name", name, daemon.image, "true").returncode == 0
    try:
        stopped = docker(daemon, "kill", name)
        assert stopped.returncode == 1
        assert f"Cannot kill container: {name}: Container " in stopped.stderr
        assert stopped.stderr.rstrip().endswith("is not running")
    finally:
        docker(daemon, "rm", name)


def test_cp_through_volumes_binds_and_etc_files(daemon: Any, tmp_path: Path) -> None:
    """`docker cp` reads and writes what the container sees: its volumes and binds, and the
    daemon's /etc/hostname, not the rootfs under them."""
    bound = tmp_path / "bound"
    bound.mkdir()
    (bound / "b.txt").write_text("bound\n")
    name = f"cpm{os.getpid()}"
    volume = f"cpmvol{os.getpid()}"
    script = "echo in-volume > /data/f && ln -s /data/f /link && sleep 300"
    assert (
        docker(
            daemon, "run", "-d", "--name", name, "-v", f"{volume}:/data",
            "-v", f"{bound}:/bind:ro", daemon.image, "sh", "-c", script,
        ).returncode
        == 0
    )  # fmt: skip
    try:
        time.sleep(0.5)
        assert docker(daemon, "cp", f"{name}:/data/f", str(tmp_path / "f")).returncode == 0
        assert (tmp_path / "f").read_text() == "in-volume\n"
        (tmp_path / "g").write_text("new\n")
        assert docker(daemon, "cp", str(tmp_path / "g"), f"{name}:/data/g").returncode == 0
        assert docker(daemon, "exec", name, "cat", "/data/g").stdout == "new\n"
        assert docker(daemon, "cp", "-L", f"{name}:/link", str(tmp_path / "l")).returncode == 0
        assert (tmp_path / "l").read_text() == "in-volume\n"
        hostname = docker(daemon, "exec", name, "hostname").stdout
        assert docker(daemon, "cp", f"{name}:/etc/hostname", str(tmp_path / "h")).returncode == 0
        assert (tmp_path / "h").read_text() == hostname
        refused = docker(daemon, "cp", str(tmp_path / "g"), f"{name}:/bind/")
        assert refused.returncode == 1 and "mounted volume is marked read-only" in refused.stderr
        assert not (bound / "g").exists()
    finally:
        docker(daemon, "rm", "-f", name)
        docker(daemon, "volume", "rm", volume)


def test_exec_failures_on_the_stream_with_126(daemon: Any) -> None:
    name = f"exf{os.getpid()}"
    assert docker(daemon, "run", "-d", "--name", name, daemon.image, "sleep", "300").returncode == 0
    try:
        user = docker(daemon, "exec", "-u", "nosuchuser", name, "true")
        assert user.returncode == 126
        assert user.stdout == "unable to find user nosuchuser: no matching entries in passwd file\n"
        missing = docker(daemon, "exec", name, "no-such-command")
        assert missing.returncode == 126
        assert "executable file not found" in missing.stdout
        detached = docker(daemon, "exec", "-d", "-u", "nosuchuser", name, "true")
        assert detached.returncode == 1 and "unable to find user" in detached.stderr
    finally:
        docker(daemon, "rm", "-f", name)


def test_dockerd_words_for_bad_requests(daemon: Any) -> None:
    """Answers compared with dockerd 20.10's for the same commands."""
    name = f"words{os.getpid()}"
    assert docker(daemon, "run", "-d", "--name", name, daemon.image, "sleep", "300").returncode == 0
    try:
        assert docker(daemon, "logs", "--tail", "bogus", name).returncode == 0  # read as "all"
        top = docker(daemon, "top", name, "-o", "bogusfield")
        assert top.stderr.strip() == (
            "Error response from daemon: ps: error: unknown user-defined format specifier "
            '"bogusfield"'
        )
        cp = docker(daemon, "cp", f"{name}:/nonexistent", "/tmp/never")
        assert f"Could not find the file /nonexistent in container {name}" in cp.stderr
        assert docker(daemon, "pause", name).returncode == 0
        paused = docker(daemon, "exec", name, "true")
        assert f"Container {name} is paused, unpause the container before exec" in paused.stderr
        assert docker(daemon, "unpause", name).returncode == 0
    finally:
        docker(daemon, "rm", "-f", name)
    expected = {
        ("network", "create", "--subnet", "300.0.0.0/8", "badnet"): (
            "Invalid subnet 300.0.0.0/8 : invalid CIDR address: 300.0.0.0/8"
        ),
        ("container", "prune", "-f", "--filter", "until=bogus"): (
            'failed to parse value as time or duration: "bogus"'
        ),
        ("image", "prune", "-f", "--filter", "bogus=1"): "Invalid filter 'bogus'",
        ("save", "nosuchimage", "-o", "/tmp/never.tar"): "No such image: nosuchimage\n",
        ("search", "busybox"): "image search is not supported",
    }
    for args, message in expected.items():
        out = docker(daemon, *args)
        assert out.returncode == 1 and message in out.stderr + "\n", (args, out.stderr)


def test_list_filters_and_latest(daemon: Any) -> None:
    for args in (["ps"], ["images"], ["volume", "ls"], ["network", "ls"], ["image", "prune", "-f"]):
        out = docker(daemon, *args, "--filter", "bogus=1")
        assert out.returncode == 1 and "Invalid filter 'bogus'" in out.stderr, args
    name = f"latest{os.getpid()}"
    assert docker(daemon, "create", "--name", name, daemon.image, "true").returncode == 0
    try:
        # -l / -n: the last created, in any state (this one never ran).
        assert docker(daemon, "ps", "-l", "--format", "{{.Names}}").stdout == f"{name}\n"
        assert docker(daemon, "ps", "-n", "1", "--format", "{{.Names}}").stdout == f"{name}\n"
    finally:
        docker(daemon, "rm", name)


def test_ps_and_df_of_a_stopped_container(daemon: Any) -> None:
    name = f"stopped{os.getpid()}"
    run = docker(
        daemon, "run", "-d", "--name", name, "-p", "127.0.0.1::80", daemon.image, "sleep", "300"
    )
    assert run.returncode == 0, run.stderr
    try:
        listing = "{{range .Containers}}{{.Names}}={{.Status}};{{end}}"
        up = docker(daemon, "system", "df", "-v", "--format", listing)
        assert f"{name}=Up " in up.stdout, up.stdout
        assert docker(daemon, "stop", "-t", "0", name).returncode == 0
        # dockerd clears the ports of an exited container.
        ports = docker(daemon, "ps", "-a", "--filter", f"name={name}", "--format", "{{.Ports}}")
        assert ports.stdout == "\n"
    finally:
        docker(daemon, "rm", "-f", name)


def test_network_and_volume_words(daemon: Any) -> None:
    """Answers compared with dockerd 20.10's for the same commands."""
    net = f"nw{os.getpid()}"
    assert docker(daemon, "network", "create", net).returncode == 0  # the daemon picks a /24
    subnet = docker(
        daemon, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", net
    ).stdout.strip()
    assert subnet.endswith(".0/24"), subnet
    try:
        outside = str(ipaddress.ip_network(subnet).network_address + 256 + 9)  # the next /24
        wrong = docker(
            daemon, "run", "--rm", "--network", net, "--ip", outside, daemon.image, "true"
        )
        assert f"Invalid address {outside}: It does not belong to any of this network's" in (
            wrong.stderr
        )
        address = subnet.replace(".0/24", ".50")
        shown = docker(
            daemon, "run", "--rm", "--network", net, "--ip", address, daemon.image,
            "ip", "-4", "-o", "addr", "show", "eth0",
        )  # fmt: skip
        assert f"inet {address}/24 brd {subnet.replace('.0/24', '.255')}" in shown.stdout
    finally:
        docker(daemon, "network", "rm", net)
    plugin = docker(daemon, "volume", "create", "--driver", "nosuch", "vd")
    assert 'create vd: error looking up volume plugin nosuch: plugin "nosuch" not found' in (
        plugin.stderr
    )


def test_empty_entrypoint_resets_the_images(daemon: Any) -> None:
    out = docker(daemon, "run", "--rm", "--entrypoint", "", daemon.image, "echo", "ok")
    assert (out.returncode, out.stdout) == (0, "ok\n"), out.stderr


def test_add_host_gateway(daemon: Any) -> None:
    script = "grep hostbox /etc/hosts | cut -f1; ip route | awk '/default/ {print $3}'"
    out = docker(
        daemon,
        "run",
        "--rm",
        "--add-host",
        "hostbox:host-gateway",
        daemon.image,
        "sh",
        "-c",
        script,
    )
    assert out.returncode == 0, out.stderr
    named, gateway = out.stdout.split()
    assert named == gateway  # host-gateway is the bridge's gateway, as with Docker
    bad = docker(daemon, "run", "--rm", "--add-host", "x:999.1.1.1", daemon.image, "true")
    assert bad.returncode == 125 and "invalid IP address in add-host" in bad.stderr


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--cgroup-parent", "elsewhere"], "CgroupParent (--cgroup-parent)"),
        (["--device-cgroup-rule", "c 1:3 rwm"], "DeviceCgroupRules (--device-cgroup-rule)"),
        (["--memory-swappiness", "10"], "MemorySwappiness (--memory-swappiness)"),
        (["--link", "db:db"], "Links (--link (use a user-defined network"),
    ],
)
def test_unsupported_settings_are_refused_not_ignored(
    daemon: Any, flags: list[str], field: str
) -> None:
    out = docker(daemon, "run", "--rm", *flags, daemon.image, "true")
    assert out.returncode == 125
    assert f"{field}" in out.stderr and "is not supported by dockling" in out.stderr


def test_run_read_only(daemon: Any) -> None:
    out = docker(daemon, "run", "--rm", "--read-only", daemon.image, "touch", "/x")
    assert out.returncode == 1
    assert "Read-only file system" in out.stderr


def test_run_entrypoint(daemon: Any) -> None:
    out = ok(daemon, "run", "--rm", "--entrypoint", "echo", daemon.image, "from", "entry")
    assert out == "from entry\n"


def test_run_bind_mount(daemon: Any) -> None:
    host_dir = tempfile.mkdtemp(prefix="dl-bind-")
    try:
        with open(os.path.join(host_dir, "in.txt"), "w") as f:
            f.write("from host\n")
        out = ok(
            daemon,
            "run",
            "--rm",
            "-v",
            f"{host_dir}:/data",
            daemon.image,
            "sh",
            "-c",
            "cat /data/in.txt; echo back > /data/out.txt",
        )
        assert out == "from host\n"
        with open(os.path.join(host_dir, "out.txt")) as f:
            assert f.read() == "back\n"
    finally:
        shutil.rmtree(host_dir)


def test_named_volume_persists_across_containers(daemon: Any) -> None:
    vol = unique("data")
    try:
        ok(
            daemon,
            "run",
            "--rm",
            "-v",
            f"{vol}:/data",
            daemon.image,
            "sh",
            "-c",
            "echo kept > /data/f",
        )
        out = ok(daemon, "run", "--rm", "-v", f"{vol}:/data", daemon.image, "cat", "/data/f")
        assert out == "kept\n"
    finally:
        ok(daemon, "volume", "rm", vol)


def test_restart_on_failure_counts(daemon: Any, names: Callable[[str], str]) -> None:
    name = names("restart")
    ok(
        daemon,
        "run",
        "-d",
        "--name",
        name,
        "--restart",
        "on-failure:2",
        daemon.image,
        "sh",
        "-c",
        "exit 3",
    )

    def done() -> bool:
        data = inspect(daemon, name)
        return data["RestartCount"] == 2 and data["State"]["Status"] == "exited"

    wait_for(done, timeout=15, interval=0.2)
    data = inspect(daemon, name)
    assert data["State"]["ExitCode"] == 3
    assert data["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}


def test_process_defaults_as_dockerd(daemon: Any) -> None:
    """What dockerd 20.10 gives a container process, compared side by side: the primary
    group among the supplementary ones (CVE-2023-25173), unprivileged low ports and ping
    in a network namespace of its own (not with the host's), and exec failures worded
    with containerd's gRPC code."""
    image = daemon.image
    assert docker(daemon, "run", "--rm", "-u", "1000:1000", image, "id").stdout.strip() == (
        "uid=1000 gid=1000 groups=1000"
    )
    nobody = docker(daemon, "run", "--rm", "-u", "nobody", image, "id").stdout.strip()
    assert nobody == "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"
    read = "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/ping_group_range"
    own = docker(daemon, "run", "--rm", image, "sh", "-c", read).stdout.split("\n")
    assert own[0] == "0" and own[1].split() == ["0", "2147483647"]
    # A non-root user binds port 80 (nc fails at once on EACCES, else listens until killed).
    bind = docker(
        daemon, "run", "--rm", "-u", "1000", image, "sh", "-c",
        "nc -l -p 80 & sleep 0.5; kill $! && echo listening",
    )  # fmt: skip
    assert bind.stdout.strip() == "listening", bind.stderr
    host_value = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text().strip()
    on_host = docker(daemon, "run", "--rm", "--network", "host", image, "sh", "-c", read)
    assert on_host.stdout.split("\n")[0] == host_value
    name = f"defaults-{uuid.uuid4().hex[:8]}"
    assert docker(daemon, "run", "-d", "--name", name, image, "sleep", "60").returncode == 0
    try:
        failed = docker(daemon, "exec", name, "nosuchcmd")
        assert failed.returncode == 126
        assert failed.stdout.strip() == (
            "OCI runtime exec failed: exec failed: unable to start container process: "
            'exec: "nosuchcmd": executable file not found in $PATH: unknown'
        )
    finally:
        docker(daemon, "rm", "-f", name)


def test_restarting_container_and_bad_signal_refused_as_dockerd(daemon: Any) -> None:
    name = f"restarting-{uuid.uuid4().hex[:8]}"
    ok(daemon, "run", "-d", "--name", name, "--restart", "always", daemon.image, "sh", "-c",
       "sleep 0.2; exit 3")  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while docker(daemon, "inspect", "-f", "{{.State.Restarting}}", name).stdout.strip() != (
            "true"
        ):
            assert time.monotonic() < deadline, "never seen restarting"
            time.sleep(0.05)
        refused = docker(daemon, "rm", name)
        assert refused.returncode == 1
        assert "container is restarting: stop the container before removing or force remove" in (
            refused.stderr
        )
        assert docker(daemon, "inspect", name).returncode == 0
        ok(daemon, "update", "--restart", "no", name)
        bad = docker(daemon, "kill", "-s", "999", name)
        assert bad.returncode == 1
        assert f"Cannot kill container: {name}: The linux daemon does not support signal 999" in (
            bad.stderr
        )
    finally:
        docker(daemon, "rm", "-f", name)
