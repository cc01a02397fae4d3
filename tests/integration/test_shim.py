"""dockling-shim against real runc: logs, attach frames, stdin, exit codes, exec, tty, errors.

Every container runs from a busybox bundle in a per-test temp dir with its own
runc root; each test's finaliser force-deletes the container, ends the shim it
started (by pid), and removes its cgroups and temp dirs.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dockling.errors import RuntimeStartError
from dockling.runtime import shim
from tests.helpers.daemon import CACHE

pytestmark = [pytest.mark.root, pytest.mark.runc]

REPO = Path(__file__).resolve().parents[2]
ROOTFS_TAR = CACHE / "busybox-rootfs.tar"
RUNC = shutil.which("runc") or "/usr/sbin/runc"
CGROUP_PARENT = "dockling-test"
TIMEOUT = 20.0


@pytest.fixture(scope="session")
def shim_binary() -> str:
    subprocess.run(["make", "-s", "-C", str(REPO / "shim")], check=True)
    return str(REPO / "shim" / "dockling-shim")


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One busybox root shared read-only by every test container."""
    assert ROOTFS_TAR.exists(), "run scripts/build-test-images first"
    path = tmp_path_factory.mktemp("busybox") / "rootfs"
    path.mkdir()
    subprocess.run(["tar", "-xf", str(ROOTFS_TAR), "-C", str(path)], check=True)
    yield path
    shutil.rmtree(path.parent, ignore_errors=True)
    # runc removes each container's cgroup; the shared parent is ours to remove.
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        parent = hierarchy / CGROUP_PARENT
        if parent.is_dir():
            try:
                parent.rmdir()
            except OSError:
                pass


@pytest.fixture(scope="session")
def spec_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    where = tmp_path_factory.mktemp("spec")
    subprocess.run([RUNC, "spec"], cwd=where, check=True)
    spec: dict[str, Any] = json.loads((where / "config.json").read_text())
    shutil.rmtree(where)
    return spec


@dataclass
class Box:
    """One test container: bundle, state dir, runc root, and what to clean up."""

    shim_binary: str
    rootfs: Path
    spec_template: dict[str, Any]
    base: Path
    id: str = field(default_factory=lambda: f"dlt-{uuid.uuid4().hex[:12]}")
    execs: list[Path] = field(default_factory=list)

    @property
    def bundle(self) -> Path:
        return self.base / "bundle"

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def runtime_root(self) -> Path:
        return self.base / "runc"

    def configure(self, args: list[str], *, tty: bool = False) -> None:
        spec = json.loads(json.dumps(self.spec_template))
        spec["process"]["args"] = args
        spec["process"]["terminal"] = tty
        spec["root"] = {"path": str(self.rootfs), "readonly": True}
        spec["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/{self.id}"
        self.bundle.mkdir(parents=True, exist_ok=True)
        (self.bundle / "config.json").write_text(json.dumps(spec))
        self.state.mkdir(parents=True, exist_ok=True)

    def options(self, **kw: Any) -> shim.ShimOptions:
        return shim.ShimOptions(
            shim_binary=self.shim_binary,
            runtime_binary=RUNC,
            runtime_root=str(self.runtime_root),
            container_id=self.id,
            bundle=str(self.bundle),
            state_dir=str(self.state),
            **kw,
        )

    def exec_options(self, args: list[str], *, tty: bool = False, **kw: Any) -> shim.ShimOptions:
        n = len(self.execs)
        state = self.base / f"exec{n}"
        state.mkdir()
        self.execs.append(state)
        process = dict(self.spec_template["process"], args=args, terminal=tty)
        (state / "process.json").write_text(json.dumps(process))
        return shim.ShimOptions(
            shim_binary=self.shim_binary,
            runtime_binary=RUNC,
            runtime_root=str(self.runtime_root),
            container_id=self.id,
            bundle=str(self.bundle),
            state_dir=str(state),
            tty=tty,
            exec_process=str(state / "process.json"),
            **kw,
        )

    def runc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [RUNC, "--root", str(self.runtime_root), *args],
            capture_output=True,
            text=True,
            check=check,
        )

    def start(self) -> None:
        self.runc("start", self.id)

    def shim_pid(self, state: Path | None = None) -> int:
        return int(((state or self.state) / "shim.pid").read_text())

    def cleanup(self) -> None:
        self.runc("delete", "--force", self.id, check=False)
        for state in [self.state, *self.execs]:
            try:
                pid = int((state / "shim.pid").read_text())
            except (OSError, ValueError):
                continue
            if shim.shim_alive(str(state)):
                os.kill(pid, signal.SIGKILL)
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            leftover = hierarchy / CGROUP_PARENT / self.id
            if leftover.is_dir():
                try:
                    leftover.rmdir()
                except OSError:
                    pass
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def box(
    shim_binary: str, rootfs: Path, spec_template: dict[str, Any], tmp_path: Path
) -> Iterator[Box]:
    b = Box(shim_binary, rootfs, spec_template, tmp_path)
    try:
        yield b
    finally:
        b.cleanup()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


async def read_frames(reader: asyncio.StreamReader) -> dict[int, bytes]:
    """All frames until the shim closes the connection, joined per stream."""
    out: dict[int, bytes] = {1: b"", 2: b""}
    while True:
        try:
            header = await reader.readexactly(8)
        except asyncio.IncompleteReadError as e:
            assert e.partial == b"", "connection closed inside a frame header"
            return out
        stream, length = header[0], struct.unpack(">I", header[4:])[0]
        assert header[1:4] == b"\0\0\0"
        out[stream] += await reader.readexactly(length)


async def read_until(reader: asyncio.StreamReader, needle: bytes, seen: bytearray) -> None:
    while needle not in seen:
        header = await reader.readexactly(8)
        seen += await reader.readexactly(struct.unpack(">I", header[4:])[0])


def log_records(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_output_reaches_log_and_attached_client(box: Box) -> None:
    box.configure(["sh", "-c", "echo hello; echo oops >&2; printf 'no newline'"])
    log = box.base / "c.log"

    async def scenario() -> tuple[int, dict[int, bytes], shim.ExitStatus]:
        pid = await shim.launch(box.options(log_path=str(log)))
        reader, writer = await shim.attach(
            str(box.state), stdin=False, stdout=True, stderr=True, close_stdin=False
        )
        await asyncio.to_thread(box.start)
        frames = await read_frames(reader)
        writer.close()
        return pid, frames, await shim.wait_exit(str(box.state))

    pid, frames, status = run(scenario())
    assert pid > 0
    assert frames == {1: b"hello\nno newline", 2: b"oops\n"}
    assert status.code == 0
    assert status.finished_at.endswith("Z") and len(status.finished_at) == 30
    records = log_records(log)
    assert [(r["log"], r["stream"]) for r in records if r["stream"] == "stdout"] == [
        ("hello\n", "stdout"),
        ("no newline", "stdout"),
    ]
    assert [r["log"] for r in records if r["stream"] == "stderr"] == ["oops\n"]
    # Go's RFC3339Nano, as Docker's json-file writes it: trailing zeros of the fraction
    # dropped (a whole second has no fraction).
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z")
    assert all(stamp.fullmatch(r["time"]) for r in records), [r["time"] for r in records]
    assert list(records[0]) == ["log", "stream", "time"]
    # the shim cleaned up its sockets and recorded the exit
    assert not (box.state / "attach.sock").exists()
    assert shim.read_exit(str(box.state)) == status


def test_log_escapes_json_like_docker(box: Box) -> None:
    script = r"""printf 'q"b\\s\tt\001\033x\n'; printf '\303\251 \377\n'"""
    box.configure(["sh", "-c", script])
    log = box.base / "c.log"

    async def scenario() -> None:
        await shim.launch(box.options(log_path=str(log)))
        await asyncio.to_thread(box.start)
        await shim.wait_exit(str(box.state))

    run(scenario())
    raw = log.read_text().splitlines()
    assert raw[0].startswith(r'{"log":"q\"b\\s\tt\u0001\u001bx\n"')
    assert [r["log"] for r in log_records(log)] == ['q"b\\s\tt\x01\x1bx\n', "é \ufffd\n"]


def test_stdin_is_piped_and_closed(box: Box) -> None:
    box.configure(["cat"])

    async def scenario() -> tuple[bytes, dict[int, bytes], shim.ExitStatus]:
        await shim.launch(box.options(stdin=True))
        reader, writer = await shim.attach(
            str(box.state), stdin=True, stdout=True, stderr=True, close_stdin=True
        )
        await asyncio.to_thread(box.start)
        writer.write(b"ping\n")
        await writer.drain()
        seen = bytearray()
        await read_until(reader, b"ping\n", seen)
        writer.write(b"pong\n")
        writer.write_eof()  # cat sees EOF and exits
        rest = await read_frames(reader)
        writer.close()
        return bytes(seen), rest, await shim.wait_exit(str(box.state))

    seen, rest, status = run(scenario())
    assert seen + rest[1] == b"ping\npong\n"
    assert status.code == 0


def test_large_stdin_round_trip(box: Box) -> None:
    """Half a megabyte through `cat`: stdin backpressure loses nothing, and the output
    fits the shim's per-client queue (1 MiB), so even a slow reader gets all of it."""
    box.configure(["cat"])
    payload = bytes(range(256)) * 2048

    async def scenario() -> bytes:
        await shim.launch(box.options(stdin=True))
        reader, writer = await shim.attach(
            str(box.state), stdin=True, stdout=True, stderr=False, close_stdin=True
        )
        await asyncio.to_thread(box.start)

        async def feed() -> None:
            writer.write(payload)
            await writer.drain()
            writer.write_eof()

        frames, _ = await asyncio.gather(read_frames(reader), feed())
        writer.close()
        return frames[1]

    got = run(scenario())
    assert len(got) == len(payload)
    assert got == payload


def test_exit_code_and_wait_after_exit(box: Box) -> None:
    box.configure(["sh", "-c", "exit 3"])

    async def scenario() -> tuple[shim.ExitStatus, shim.ExitStatus]:
        await shim.launch(box.options())
        waiter = asyncio.create_task(shim.wait_exit(str(box.state)))
        await asyncio.sleep(0.05)  # let the waiter connect before the exit
        await asyncio.to_thread(box.start)
        first = await waiter
        for _ in range(100):  # the shim leaves right after answering
            if not shim.shim_alive(str(box.state)):
                break
            await asyncio.sleep(0.02)
        return first, await shim.wait_exit(str(box.state))

    first, later = run(scenario())
    assert first.code == 3
    assert later == first
    assert not shim.shim_alive(str(box.state))
    assert (box.state / "exit").read_text() == f"3 {first.finished_at}\n"


def test_killed_container_exits_137(box: Box) -> None:
    box.configure(["sleep", "100"])

    async def scenario() -> shim.ExitStatus:
        await shim.launch(box.options())
        await asyncio.to_thread(box.start)
        await asyncio.to_thread(box.runc, "kill", box.id, "KILL")
        return await shim.wait_exit(str(box.state))

    assert run(scenario()).code == 137


def test_shim_outlives_its_launcher(box: Box) -> None:
    """The launcher (standing in for the daemon) is killed with SIGKILL; the shim lives on."""
    box.configure(["sh", "-c", "sleep 0.3; echo survived"])
    log = box.base / "c.log"
    opts = box.options(log_path=str(log))
    launcher = textwrap.dedent(
        f"""
        import asyncio, os, signal
        from dockling.runtime import shim
        opts = shim.ShimOptions(**{ {k: getattr(opts, k) for k in opts.__slots__}!r})
        print(asyncio.run(shim.launch(opts)), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", launcher], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert int(proc.stdout) > 0
    assert shim.shim_alive(str(box.state))
    status = Path(f"/proc/{box.shim_pid()}/status").read_text()
    assert f"PPid:\t{os.getpid()}\n" not in status

    box.start()
    assert run(shim.wait_exit(str(box.state))).code == 0
    assert [r["log"] for r in log_records(log)] == ["survived\n"]


def test_exec_mode(box: Box) -> None:
    box.configure(["sleep", "100"])

    async def scenario() -> tuple[int, int, dict[int, bytes], shim.ExitStatus]:
        await shim.launch(box.options())
        await asyncio.to_thread(box.start)
        opts = box.exec_options(["sh", "-c", "echo from-exec; echo e >&2; exit 5"])
        shim_pid = await shim.launch(opts)
        reader, writer = await shim.attach(
            opts.state_dir, stdin=False, stdout=True, stderr=True, close_stdin=False
        )
        pid = await shim.start_exec(opts.state_dir)
        frames = await read_frames(reader)
        writer.close()
        return shim_pid, pid, frames, await shim.wait_exit(opts.state_dir)

    shim_pid, pid, frames, status = run(scenario())
    assert shim_pid != pid > 0
    assert frames == {1: b"from-exec\n", 2: b"e\n"}
    assert status.code == 5


def test_exec_with_tty(box: Box) -> None:
    box.configure(["sleep", "100"])

    async def scenario() -> tuple[dict[int, bytes], shim.ExitStatus]:
        await shim.launch(box.options())
        await asyncio.to_thread(box.start)
        opts = box.exec_options(["sh", "-c", "tty; stty size; exit 2"], tty=True)
        await shim.launch(opts)
        reader, writer = await shim.attach(
            opts.state_dir, stdin=False, stdout=True, stderr=True, close_stdin=False
        )
        await shim.resize(opts.state_dir, 24, 80)  # before start: no tty yet, a no-op
        await shim.start_exec(opts.state_dir)
        frames = await read_frames(reader)
        writer.close()
        return frames, await shim.wait_exit(opts.state_dir)

    frames, status = run(scenario())
    assert frames[1].startswith(b"/dev/pts/")
    assert frames[2] == b""
    assert status.code == 2


def test_exec_errors(box: Box) -> None:
    box.configure(["sleep", "100"])

    async def scenario() -> tuple[RuntimeStartError, RuntimeStartError, shim.ExitStatus]:
        await shim.launch(box.options())
        await asyncio.to_thread(box.start)
        with pytest.raises(RuntimeStartError) as not_exec:
            await shim.start_exec(str(box.state))
        opts = box.exec_options(["foo"])
        await shim.launch(opts)
        with pytest.raises(RuntimeStartError) as missing:
            await shim.start_exec(opts.state_dir)
        return not_exec.value, missing.value, await shim.wait_exit(opts.state_dir)

    not_exec, missing, status = run(scenario())
    assert not_exec.message == "not an exec"
    assert missing.kind == "not-found"
    assert 'exec: "foo": executable file not found in $PATH' in missing.message
    assert status.code == 127


def test_tty_output_and_resize(box: Box) -> None:
    box.configure(["sh", "-c", "stty size; read line; stty size"], tty=True)

    async def scenario() -> bytes:
        await shim.launch(box.options(tty=True, stdin=True))
        reader, writer = await shim.attach(
            str(box.state), stdin=True, stdout=True, stderr=True, close_stdin=True
        )
        await shim.resize(str(box.state), 40, 120)
        await asyncio.to_thread(box.start)
        seen = bytearray()
        await read_until(reader, b"40 120", seen)
        await shim.resize(str(box.state), 50, 132)
        writer.write(b"go\n")
        await writer.drain()
        rest = await read_frames(reader)
        assert rest[2] == b""  # a tty has one stream
        writer.close()
        assert (await shim.wait_exit(str(box.state))).code == 0
        return bytes(seen) + rest[1]

    out = run(scenario())
    assert b"40 120\r\n" in out
    assert out.endswith(b"50 132\r\n")


def test_missing_executable_is_reported_and_cleaned_up(box: Box) -> None:
    box.configure(["foo"])
    with pytest.raises(RuntimeStartError) as info:
        run(shim.launch(box.options(log_path=str(box.base / "c.log"))))
    err = info.value
    assert err.kind == "not-found"
    assert 'exec: "foo": executable file not found in $PATH' in err.message
    assert '\\"' not in err.message and "level=error" not in err.message
    # no runc state, no shim, no container process
    assert box.runc("state", box.id, check=False).returncode != 0
    assert not (box.state / "shim.pid").exists()
    assert not (box.state / "attach.sock").exists()

    # The shim reports the error and then exits: give it a moment to be gone.
    def stray() -> list[bytes]:
        found = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    cmdline = (proc / "cmdline").read_bytes()
                except OSError:
                    continue
                if str(box.state).encode() in cmdline:
                    found.append(cmdline)
        return found

    deadline = time.monotonic() + 5
    while stray() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not stray()


def test_log_rotation(box: Box) -> None:
    script = "i=0; while [ $i -lt 300 ]; do echo line-$i-0123456789abcdef; i=$((i+1)); done"
    box.configure(["sh", "-c", script])
    log = box.base / "c.log"

    async def scenario() -> None:
        await shim.launch(box.options(log_path=str(log), log_max_size=3000, log_max_files=3))
        await asyncio.to_thread(box.start)
        await shim.wait_exit(str(box.state))

    run(scenario())
    files = [Path(f"{log}.2"), Path(f"{log}.1"), log]
    assert all(f.exists() for f in files)
    assert not Path(f"{log}.3").exists()
    lines = [r["log"] for f in files for r in log_records(f)]
    numbers = [int(line.split("-")[1]) for line in lines]
    assert numbers == list(range(numbers[0], 300))  # contiguous, oldest file first
    # Docker's json-file never lets a file grow past max-size: the entry that would
    # cross it starts the next file (1020-byte files for max-size=1k in dockerd 20.10).
    assert all(2800 < f.stat().st_size <= 3000 for f in files[:2])


def test_log_single_file_restarts_in_place(box: Box) -> None:
    script = "i=0; while [ $i -lt 100 ]; do echo line-$i; i=$((i+1)); done"
    box.configure(["sh", "-c", script])
    log = box.base / "c.log"

    async def scenario() -> None:
        await shim.launch(box.options(log_path=str(log), log_max_size=1000, log_max_files=1))
        await asyncio.to_thread(box.start)
        await shim.wait_exit(str(box.state))

    run(scenario())
    assert not Path(f"{log}.1").exists()
    assert 0 < log.stat().st_size < 1000
    assert log_records(log)[-1]["log"] == "line-99\n"


def test_shim_memory_footprint(box: Box) -> None:
    box.configure(["sleep", "100"])

    async def scenario() -> None:
        await shim.launch(box.options(log_path=str(box.base / "c.log")))
        await asyncio.to_thread(box.start)
        # exercise the loop a little before measuring
        _reader, writer = await shim.attach(
            str(box.state), stdin=False, stdout=True, stderr=True, close_stdin=False
        )
        writer.close()
        await asyncio.sleep(0.1)

    run(scenario())
    status = Path(f"/proc/{box.shim_pid()}/status").read_text()
    rss = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    print(f"\ndockling-shim {rss}")
    box.runc("kill", box.id, "KILL")
    assert run(shim.wait_exit(str(box.state))).code == 137


def test_slow_client_does_not_block(box: Box) -> None:
    """A client that never reads must not stall the container or the log."""
    script = (
        "i=0; while [ $i -lt 20000 ]; do echo line-$i-0123456789abcdef0123456789; i=$((i+1)); done"
    )
    box.configure(["sh", "-c", script])
    log = box.base / "c.log"

    async def scenario() -> shim.ExitStatus:
        await shim.launch(box.options(log_path=str(log)))
        _reader, writer = await shim.attach(
            str(box.state), stdin=False, stdout=True, stderr=True, close_stdin=False
        )
        start = time.monotonic()
        await asyncio.to_thread(box.start)
        status = await shim.wait_exit(str(box.state))
        assert time.monotonic() - start < 10
        writer.close()
        return status

    assert run(scenario()).code == 0
    assert log_records(log)[-1]["log"].startswith("line-19999-")
