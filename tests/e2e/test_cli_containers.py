"""The dockling CLI as a user types it, against a real docklingd (fixture `daemon`)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.runc


def dl(
    daemon: Any, *args: str, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["dockling", *args],
        capture_output=True,
        text=True,
        env=daemon.env,
        input=input,
        timeout=timeout,
    )


@pytest.fixture
def cleanup(daemon: Any) -> Iterator[list[str]]:
    """Containers named or created by a test, force-removed at its end."""
    refs: list[str] = []
    yield refs
    for ref in refs:
        dl(daemon, "rm", "-f", ref)


def run_detached(daemon: Any, cleanup: list[str], *args: str) -> str:
    out = dl(daemon, "run", "-d", *args)
    assert out.returncode == 0, out.stderr
    cid = out.stdout.strip()
    assert len(cid) == 64
    cleanup.append(cid)
    return cid


def test_run_d_ps_exec_logs_stop_rm(daemon: Any, cleanup: list[str]) -> None:
    cid = run_detached(
        daemon, cleanup, "--name", "e2e-web", daemon.image, "sh", "-c", "echo hello; sleep 300"
    )
    ps = dl(daemon, "ps")
    assert ps.returncode == 0, ps.stderr
    lines = ps.stdout.splitlines()
    assert lines[0].split() == [
        "CONTAINER",
        "ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    row = next(line for line in lines if line.startswith(cid[:12]))
    assert row.endswith("e2e-web")
    assert "Up " in row

    quiet = dl(daemon, "ps", "-q")
    assert cid[:12] in quiet.stdout.split()

    fmt = dl(daemon, "ps", "-a", "--format", "{{.Names}} {{.State}} {{.ID}}")
    assert f"e2e-web running {cid[:12]}" in fmt.stdout.splitlines()

    ex = dl(daemon, "exec", "e2e-web", "sh", "-c", "echo from-exec; exit 4")
    assert ex.stdout == "from-exec\n"
    assert ex.returncode == 4

    for _ in range(50):
        logs = dl(daemon, "logs", "e2e-web")
        if logs.stdout:
            break
        time.sleep(0.1)
    assert logs.stdout == "hello\n"

    inspect = dl(daemon, "inspect", "-f", "{{.State.Status}} {{.Name}}", "e2e-web")
    assert inspect.stdout.strip() == "running /e2e-web"

    stop = dl(daemon, "stop", "-t", "1", "e2e-web")
    assert (stop.returncode, stop.stdout) == (0, "e2e-web\n")
    exited = dl(daemon, "ps", "-a", "--filter", "name=e2e-web", "--format", "{{.State}}")
    assert exited.stdout.strip() == "exited"
    rm = dl(daemon, "rm", "e2e-web")
    assert (rm.returncode, rm.stdout) == (0, "e2e-web\n")


def test_rm_running_container_needs_force(daemon: Any, cleanup: list[str]) -> None:
    cid = run_detached(daemon, cleanup, daemon.image, "sleep", "300")
    rm = dl(daemon, "rm", cid[:12])
    assert rm.returncode == 1
    assert rm.stderr.startswith("Error response from daemon: ")
    assert "stop" in rm.stderr or "force" in rm.stderr
    forced = dl(daemon, "rm", "-f", cid[:12])
    assert (forced.returncode, forced.stdout) == (0, cid[:12] + "\n")


def test_unknown_container(daemon: Any) -> None:
    for verb in (["stop"], ["rm"], ["logs"], ["kill"]):
        out = dl(daemon, *verb, "nope")
        assert out.returncode == 1, verb
        prefix = "Cannot kill container: nope: " if verb == ["kill"] else ""  # Docker's words
        assert out.stderr.strip() == (
            f"Error response from daemon: {prefix}No such container: nope"
        ), verb


def test_run_exit_codes(daemon: Any) -> None:
    ok = dl(daemon, "run", "--rm", daemon.image, "echo", "hi")
    assert (ok.returncode, ok.stdout) == (0, "hi\n")
    three = dl(daemon, "run", "--rm", daemon.image, "sh", "-c", "exit 3")
    assert three.returncode == 3
    missing = dl(daemon, "run", "--rm", daemon.image, "no-such-command")
    assert missing.returncode == 127, missing.stderr
    assert missing.stderr.startswith("dockling: Error response from daemon: ")


def test_run_splits_stdout_and_stderr(daemon: Any) -> None:
    out = dl(daemon, "run", "--rm", daemon.image, "sh", "-c", "echo out; echo err >&2")
    assert (out.returncode, out.stdout, out.stderr) == (0, "out\n", "err\n")


def test_run_interactive_stdin(daemon: Any) -> None:
    out = dl(daemon, "run", "--rm", "-i", daemon.image, "cat", input="through stdin\n")
    assert (out.returncode, out.stdout) == (0, "through stdin\n")


def test_run_missing_image(daemon: Any) -> None:
    out = dl(daemon, "run", "--rm", "no-such-image-here:v9", "true")
    assert out.returncode == 125
    assert "Unable to find image 'no-such-image-here:v9' locally" in out.stderr


def test_run_rejects_bad_memory(daemon: Any) -> None:
    out = dl(daemon, "run", "--memory", "12zz", daemon.image)
    assert out.returncode == 125
    assert out.stderr.startswith('invalid argument "12zz" for "-m, --memory" flag')


def test_create_start_wait(daemon: Any, cleanup: list[str]) -> None:
    created = dl(daemon, "create", daemon.image, "sh", "-c", "exit 5")
    assert created.returncode == 0, created.stderr
    cid = created.stdout.strip()
    cleanup.append(cid)
    assert dl(daemon, "start", cid).stdout == cid + "\n"
    waited = dl(daemon, "wait", cid)
    assert waited.stdout == "5\n"
    state = dl(daemon, "container", "inspect", "-f", "{{.State.ExitCode}}", cid)
    assert state.stdout.strip() == "5"


def test_images_and_inspect(daemon: Any) -> None:
    images = dl(daemon, "images")
    assert images.returncode == 0, images.stderr
    assert images.stdout.splitlines()[0].split() == [
        "REPOSITORY",
        "TAG",
        "IMAGE",
        "ID",
        "CREATED",
        "SIZE",
    ]
    repo, tag = daemon.image.split(":")
    assert any(line.split()[:2] == [repo, tag] for line in images.stdout.splitlines()[1:])
    missing = dl(daemon, "inspect", "nope-nothing")
    assert missing.returncode == 1
    assert missing.stdout.strip() == "[]"
    assert missing.stderr.strip() == "Error: No such object: nope-nothing"


def test_volume_lifecycle(daemon: Any) -> None:
    name = "e2e-cli-vol"
    created = dl(daemon, "volume", "create", name)
    assert (created.returncode, created.stdout) == (0, name + "\n"), created.stderr
    try:
        listed = dl(daemon, "volume", "ls", "-q")
        assert name in listed.stdout.split()
        inspected = dl(daemon, "volume", "inspect", "-f", "{{.Name}} {{.Driver}}", name)
        assert inspected.stdout.strip() == f"{name} local"
    finally:
        removed = dl(daemon, "volume", "rm", name)
    assert (removed.returncode, removed.stdout) == (0, name + "\n")


def test_version(daemon: Any) -> None:
    out = dl(daemon, "version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Client:\n")
    assert "\nServer: " in out.stdout


def cgroup_value(daemon: Any, cid: str, path: str) -> str:
    out = dl(daemon, "exec", cid, "cat", f"/sys/fs/cgroup/{path}")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_update_limits_and_restart_policy(daemon: Any, cleanup: list[str]) -> None:
    cid = run_detached(
        daemon, cleanup, "-m", "64m", "--pids-limit", "50", daemon.image, "sleep", "300"
    )
    out = dl(
        daemon,
        "update",
        "-m",
        "128m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "-1",
        "--restart",
        "on-failure:3",
        cid[:12],
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{cid[:12]}\n"
    # Applied to the running container's cgroups at once ...
    assert cgroup_value(daemon, cid, "memory/memory.limit_in_bytes") == str(128 * 2**20)
    assert cgroup_value(daemon, cid, "cpu/cpu.cfs_quota_us") == "50000"
    assert cgroup_value(daemon, cid, "pids/pids.max") == "max"
    # ... recorded, and kept across a restart.
    status, body = daemon.request("GET", f"/containers/{cid}/json")
    assert status == 200
    host = body["HostConfig"]
    assert (host["Memory"], host["NanoCpus"]) == (128 * 2**20, 500_000_000)
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert dl(daemon, "restart", "-t", "0", cid).returncode == 0
    assert cgroup_value(daemon, cid, "memory/memory.limit_in_bytes") == str(128 * 2**20)
    # A stopped container takes the new values for its next start.
    assert dl(daemon, "stop", "-t", "0", cid).returncode == 0
    assert dl(daemon, "update", "-m", "96m", cid).returncode == 0
    assert dl(daemon, "start", cid).returncode == 0
    assert cgroup_value(daemon, cid, "memory/memory.limit_in_bytes") == str(96 * 2**20)


def test_update_bad_input(daemon: Any, cleanup: list[str]) -> None:
    cid = run_detached(
        daemon, cleanup, "--rm", "-m", "64m", "--memory-swap", "100m", daemon.image, "sleep", "300"
    )
    no_flags = dl(daemon, "update", cid)
    assert no_flags.returncode == 1
    assert "you must provide one or more flags" in no_flags.stderr
    too_small = dl(daemon, "update", "-m", "1k", cid)
    assert too_small.returncode == 1
    assert "Error response from daemon: Minimum memory limit allowed is 6MB" in too_small.stderr
    over_swap = dl(daemon, "update", "-m", "200m", cid)
    assert "update the memoryswap at the same time" in over_swap.stderr
    restart = dl(daemon, "update", "--restart", "always", cid)
    assert "AutoRemove is enabled" in restart.stderr
    blkio = dl(daemon, "update", "--blkio-weight", "100", cid)
    assert "BlkioWeight is not supported by dockling" in blkio.stderr
    missing = dl(daemon, "update", "-m", "64m", "nosuchcontainer", cid)
    assert missing.returncode == 1
    assert "No such container: nosuchcontainer" in missing.stderr
    assert missing.stdout == f"{cid}\n"  # the others are still updated
    # Nothing was changed by the refused updates.
    assert cgroup_value(daemon, cid, "memory/memory.limit_in_bytes") == str(64 * 2**20)


def test_shareable_ipc_and_joined_namespaces(daemon: Any, cleanup: list[str]) -> None:
    donor = run_detached(
        daemon, cleanup, "--ipc", "shareable", "--shm-size", "16m", daemon.image,
        "sh", "-c", "echo shared > /dev/shm/f && sleep 300",
    )  # fmt: skip
    time.sleep(0.3)
    joined = dl(
        daemon, "run", "--rm", "--ipc", f"container:{donor[:12]}", "--pid", f"container:{donor}",
        daemon.image, "sh", "-c", "cat /dev/shm/f; ps -o args | grep -q '^sleep 300' && echo seen",
    )  # fmt: skip
    assert joined.returncode == 0, joined.stderr
    assert joined.stdout == "shared\nseen\n"
    private = run_detached(daemon, cleanup, daemon.image, "sleep", "300")
    refused = dl(daemon, "run", "--rm", "--ipc", f"container:{private}", daemon.image, "true")
    assert refused.returncode == 125
    assert "non-shareable IPC (hint: use IpcMode:shareable" in refused.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--sysctl", "kernel.hostname=x"], 'sysctl "kernel.hostname" is not in a separate'),
        (["--network", "host", "--sysctl", "net.core.somaxconn=1"], "not in a separate"),
        (["--device", "/dev/nosuchdevice"], "error gathering device information"),
        (["--device", "/dev/null:/dev/x:rwz"], "invalid device mode: rwz"),
        (["--ulimit", "nofile"], "invalid ulimit argument: nofile"),
        (["--ulimit", "bogus=1"], "invalid ulimit type: bogus"),
        (["--ulimit", "nofile=10:5"], "soft limit must be less than or equal to hard limit"),
        (["--userns", "remap"], "user namespace mode 'remap' is not supported"),
        (["--uts", "host", "--hostname", "x"], "Conflicting options: hostname and the UTS mode"),
        (["--ipc", "weird"], "invalid IPC mode: weird"),
        (["--pid", "container:nosuchcontainer"], "No such container: nosuchcontainer"),
    ],
)
def test_namespace_and_limit_flags_refused(daemon: Any, flags: list[str], message: str) -> None:
    before = dl(daemon, "ps", "-aq").stdout
    out = dl(daemon, "run", "--rm", *flags, daemon.image, "true")
    assert out.returncode == 125, out.stdout + out.stderr
    assert message in out.stderr
    assert dl(daemon, "ps", "-aq").stdout == before  # nothing half-made


def test_group_add_and_volumes_from(daemon: Any, cleanup: list[str], tmp_path: Any) -> None:
    groups = dl(
        daemon, "run", "--rm", "--group-add", "wheel", "--group-add", "1234", "-u", "nobody",
        daemon.image, "id", "-G",
    )  # fmt: skip
    assert groups.returncode == 0, groups.stderr
    assert groups.stdout.split() == ["65534", "10", "1234"]
    unknown = dl(daemon, "run", "--rm", "--group-add", "nosuchgroup", daemon.image, "true")
    assert unknown.returncode == 125
    assert "Unable to find group nosuchgroup: no matching entries in group file" in unknown.stderr

    volume = f"vf{time.time_ns()}"
    source = run_detached(
        daemon, cleanup, "-v", f"{volume}:/data", "-v", f"{tmp_path}:/hosttmp:ro", daemon.image,
        "sh", "-c", "echo from-source > /data/f && sleep 300",
    )  # fmt: skip
    time.sleep(0.3)
    shared = dl(
        daemon, "run", "--rm", "--volumes-from", source[:12], daemon.image,
        "sh", "-c", "cat /data/f; touch /hosttmp/x || echo read-only",
    )  # fmt: skip
    assert shared.stdout == "from-source\nread-only\n", shared.stderr
    read_only = dl(
        daemon, "run", "--rm", "--volumes-from", f"{source}:ro", daemon.image,
        "sh", "-c", "touch /data/g || echo read-only",
    )  # fmt: skip
    assert read_only.stdout == "read-only\n"
    for bad, message in (
        ("nosuchcontainer", "No such container"),
        (f"{source}:xx", "invalid mode"),
    ):
        out = dl(daemon, "run", "--rm", "--volumes-from", bad, daemon.image, "true")
        assert out.returncode == 125 and message in out.stderr
    dl(daemon, "rm", "-f", source)
    assert dl(daemon, "volume", "rm", volume).returncode == 0


def test_new_volume_takes_the_images_files(daemon: Any, cleanup: list[str]) -> None:
    """As Docker: an empty volume mounted where the image has files starts with a copy of
    them (owners, modes, links kept); `nocopy` and a volume with contents are left alone."""
    base = run_detached(
        daemon, cleanup, daemon.image, "sh", "-c",
        "mkdir -p /data/sub && echo one > /data/sub/f && ln /data/sub/f /data/hard"
        " && ln -s sub/f /data/link && chown -R nobody /data && chmod 0750 /data"
        " && sleep 300",
    )  # fmt: skip
    time.sleep(0.3)
    image = f"populate{time.time_ns()}"
    assert dl(daemon, "commit", base, image).returncode == 0
    volume = f"pv{time.time_ns()}"
    try:
        check = (
            "stat -c '%U %a' /data /data/sub/f; readlink /data/link;"
            " [ $(stat -c %i /data/hard) = $(stat -c %i /data/sub/f) ] && echo hardlinked"
        )
        first = dl(daemon, "run", "--rm", "-v", f"{volume}:/data", image, "sh", "-c", check)
        assert first.stdout == "nobody 750\nnobody 644\nsub/f\nhardlinked\n", first.stderr
        changed = dl(daemon, "run", "--rm", "-v", f"{volume}:/data", image, "sh", "-c",
                     "echo two > /data/sub/f")  # fmt: skip
        assert changed.returncode == 0
        # The volume has contents now: the image's files are not copied over them again.
        again = dl(daemon, "run", "--rm", "-v", f"{volume}:/data", image, "cat", "/data/sub/f")
        assert again.stdout == "two\n"
        bare = dl(daemon, "run", "--rm", "-v", f"{volume}x:/data:nocopy", image, "ls", "/data")
        assert bare.returncode == 0 and bare.stdout == ""
    finally:
        dl(daemon, "volume", "rm", volume, f"{volume}x")
        dl(daemon, "rmi", image)
