"""`dockling build --progress`: the live view on a real terminal (a PTY), plain when piped."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.helpers.screen import final_screen

pytestmark = [pytest.mark.root, pytest.mark.runc]


def write_context(root: Path, image: str) -> None:
    (root / "a.txt").write_text("a\n")
    (root / "Dockerfile").write_text(
        f"FROM {image}\n"
        "ENV GREETING=hi\n"
        "COPY a.txt /a.txt\n"
        "RUN for i in 1 2 3 4 5 6 7 8 9 10; do echo output-$i; done\n"
        'CMD ["cat", "/a.txt"]\n'
    )


@pytest.mark.parametrize("progress", ["tty", "auto"])
def test_tty_progress_on_a_terminal(daemon: Any, tmp_path: Path, progress: str) -> None:
    write_context(tmp_path, daemon.image)
    name = f"prog{uuid.uuid4().hex[:10]}"
    child = pexpect.spawn(
        "dockling",
        ["build", f"--progress={progress}", "--no-cache", "-t", name, str(tmp_path)],
        env=daemon.env,
        timeout=120,
        encoding="utf-8",
        dimensions=(40, 100),
    )
    try:
        child.expect(pexpect.EOF)
        output = child.before
    finally:
        child.close(force=True)
    try:
        assert child.exitstatus == 0, output
        assert "\x1b[" in output  # drawn in place
        screen = final_screen(output)
        steps = [line for line in screen if line.startswith("[")]
        assert [line.split("]")[0] + "]" for line in steps] == [f"[{i}/5]" for i in range(1, 6)]
        assert steps[3].startswith("[4/5] RUN for i in")
        assert all(line.endswith("s") for line in steps), screen
        assert screen[-2].startswith("Successfully built ")
        assert screen[-1] == f"Successfully tagged {name}:latest"
        assert not any(line.strip().startswith("output-") for line in screen), screen
        assert "output-10" in output  # shown live under the running step
        assert all(len(line) < 100 for line in screen)
    finally:
        daemon.cli("rmi", "-f", name)


def test_auto_is_plain_when_piped(daemon: Any, tmp_path: Path) -> None:
    write_context(tmp_path, daemon.image)
    result = daemon.cli("build", "--progress=auto", str(tmp_path), timeout=180)
    assert result.returncode == 0, result.stderr
    assert "Step 4/5 : RUN for i in" in result.stdout and "output-10\n" in result.stdout
    assert "\x1b[" not in result.stdout
    image = result.stdout.strip().splitlines()[-1].split()[-1]
    daemon.cli("rmi", "-f", image)


def test_invalid_progress_value(daemon: Any, tmp_path: Path) -> None:
    write_context(tmp_path, daemon.image)
    result = daemon.cli("build", "--progress=fancy", str(tmp_path))
    assert result.returncode != 0
    assert "invalid progress mode" in result.stderr
