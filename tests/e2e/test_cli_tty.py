"""Interactive terminals: `run -it`, detaching with ctrl-p ctrl-q, and `exec -it`."""

from __future__ import annotations

import subprocess
from typing import Any

import pexpect
import pytest

pytestmark = pytest.mark.runc


def spawn(daemon: Any, *args: str) -> pexpect.spawn:
    return pexpect.spawn(
        "dockling",
        list(args),
        env=daemon.env,
        timeout=30,
        encoding="utf-8",
        dimensions=(30, 100),
    )


def rm_f(daemon: Any, ref: str) -> None:
    subprocess.run(["dockling", "rm", "-f", ref], env=daemon.env, capture_output=True)


def test_run_it_shell_and_exit_code(daemon: Any) -> None:
    child = spawn(daemon, "run", "-it", "--rm", daemon.image, "sh")
    try:
        child.expect("# ")
        child.sendline("stty size; echo tty-$((6*7))")
        child.expect("30 100")
        child.expect("tty-42")
        child.sendline("exit 7")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 7


def test_detach_with_ctrl_p_ctrl_q_then_exec_it(daemon: Any) -> None:
    name = "e2e-tty-detach"
    child = spawn(daemon, "run", "-it", "--name", name, daemon.image, "sh")
    try:
        child.expect("# ")
        child.send("\x10\x11")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        state = subprocess.run(
            ["dockling", "inspect", "-f", "{{.State.Running}}", name],
            env=daemon.env,
            capture_output=True,
            text=True,
        )
        assert state.stdout.strip() == "true"

        ex = spawn(daemon, "exec", "-it", name, "sh")
        ex.expect("# ")
        ex.sendline("echo in-exec-$((2+3)); exit 9")
        ex.expect("in-exec-5")
        ex.expect(pexpect.EOF)
        ex.close()
        assert ex.exitstatus == 9
    finally:
        child.close(force=True)
        rm_f(daemon, name)


def _detach(child: pexpect.spawn) -> tuple[int | None, str]:
    child.send("\x10\x11")
    child.expect(pexpect.EOF)
    tail = child.before or ""
    child.close()
    return child.exitstatus, tail


def test_detach_words_and_codes_as_docker(daemon: Any) -> None:
    """docker 28: run -it and start -ai detach quietly with 0; attach and exec -it say
    "read escape sequence" and exit 1. A second attach shows the prompt at once, because
    the terminal is resized one bigger and back, which makes the shell redraw."""
    name = "e2e-tty-words"
    try:
        child = spawn(daemon, "run", "-it", "--name", name, daemon.image, "sh")
        child.expect("# ")
        code, tail = _detach(child)
        assert code == 0 and "escape" not in tail

        child = spawn(daemon, "attach", name)
        child.expect("# ")  # redrawn without any input
        code, tail = _detach(child)
        assert code == 1 and "read escape sequence" in tail

        child = spawn(daemon, "exec", "-it", name, "sh")
        child.expect("# ")
        code, tail = _detach(child)
        assert code == 1 and "read escape sequence" in tail

        subprocess.run(["dockling", "kill", name], env=daemon.env, capture_output=True)
        child = spawn(daemon, "start", "-ai", name)
        child.expect("# ")
        code, tail = _detach(child)
        assert code == 0 and "escape" not in tail
        state = subprocess.run(
            ["dockling", "inspect", "-f", "{{.State.Running}}", name],
            env=daemon.env,
            capture_output=True,
            text=True,
        )
        assert state.stdout.strip() == "true"
    finally:
        rm_f(daemon, name)
