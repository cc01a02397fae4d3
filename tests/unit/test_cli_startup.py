"""The CLI stays standard-library only and starts fast."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DOCKLING = Path(sys.executable).parent / "dockling"


def fresh_python(code: str) -> str:
    """What `code` prints when run by a new isolated interpreter that sees only src/."""
    out = subprocess.run(
        [sys.executable, "-I", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(Path(__file__).parents[2] / "src")},
    )
    return out.stdout.strip()


def test_cli_imports_only_the_standard_library() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import dockling.cli.main, dockling.cli.commands.ps, dockling.cli.commands.run\n"
        "import dockling.cli.commands.exec, dockling.cli.commands.images\n"
        "import dockling.cli.commands.volumes, dockling.cli.commands.system\n"
        "import dockling.cli.commands.stats, dockling.cli.commands.logs\n"
        "import dockling.cli.commands.inspect, dockling.cli.template\n"
        "std = sys.stdlib_module_names\n"
        "new = set(sys.modules) - before\n"
        "bad = sorted({m.split('.')[0] for m in new} - std - {'dockling'})\n"
        "print(bad)\n"
    )
    assert fresh_python(code) == "[]"


def test_ps_path_avoids_heavy_modules() -> None:
    code = (
        "import sys\n"
        "import dockling.cli.main, dockling.cli.commands.ps\n"
        "print(sorted(m for m in ('http.client', 'email', 'ssl', 'dataclasses', 'typing',"
        " 'argparse', 'asyncio') if m in sys.modules))\n"
    )
    assert fresh_python(code) == "[]"


def test_console_script_help_and_version() -> None:
    env = dict(os.environ, DOCKLING_HOST="unix:///nonexistent/dockling.sock")
    assert subprocess.run([DOCKLING, "--help"], capture_output=True, env=env).returncode == 0
    out = subprocess.run([DOCKLING, "--version"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.startswith("dockling version ")


def test_unreachable_daemon_message_and_codes() -> None:
    env = dict(os.environ, DOCKLING_HOST="unix:///nonexistent/dockling.sock")
    ps = subprocess.run([DOCKLING, "ps"], capture_output=True, text=True, env=env)
    assert ps.returncode == 1
    assert ps.stderr.strip() == (
        "Cannot connect to the dockling daemon at unix:///nonexistent/dockling.sock. "
        "Is docklingd running?"
    )
    run = subprocess.run(
        [DOCKLING, "run", "busybox", "true"], capture_output=True, text=True, env=env
    )
    assert run.returncode == 125
    assert "Cannot connect to the dockling daemon" in run.stderr


def test_usage_errors() -> None:
    env = dict(os.environ, DOCKLING_HOST="unix:///nonexistent/dockling.sock")
    bad = subprocess.run(
        [DOCKLING, "run", "--memory", "12zz", "busybox"], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 125
    assert bad.stderr.startswith('invalid argument "12zz" for "-m, --memory" flag:')
    assert "Run 'dockling run --help' for more information" in bad.stderr
    missing = subprocess.run([DOCKLING, "rm"], capture_output=True, text=True, env=env)
    assert missing.returncode == 1
    assert "'dockling rm' requires at least 1 argument" in missing.stderr
    unknown = subprocess.run([DOCKLING, "bogus"], capture_output=True, text=True, env=env)
    assert unknown.returncode == 1 and "unknown command: dockling bogus" in unknown.stderr
