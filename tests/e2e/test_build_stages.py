"""Multi-stage scheduling (independent stages build at the same time, output still stage by
stage), FROM images pulled from a registry with the CLI's stored credentials (`--pull`
re-pulls), and `--platform`."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.daemon import VENV_BIN, Daemon
from tests.helpers.registry import (
    Registry,
    app_layer,
    build_oci_layout,
    busybox_layer,
    skopeo_push,
    start_registry,
)

pytestmark = [pytest.mark.root, pytest.mark.runc]


def tag() -> str:
    return f"st{uuid.uuid4().hex[:10]}"


def build(
    daemon: Daemon, context: Path, *args: str, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(daemon.env)
    if home is not None:
        env["DOCKLING_CONFIG"] = str(home)
    return subprocess.run(
        [str(VENV_BIN / "dockling"), "build", *args, str(context)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def run_out(daemon: Daemon, *args: str) -> str:
    result = daemon.cli("run", "--rm", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_independent_stages_overlap_and_print_in_order(daemon: Daemon, tmp_path: Path) -> None:
    stamp = "cat /proc/uptime | cut -d' ' -f1"
    (tmp_path / "Dockerfile").write_text(
        f"FROM {daemon.image} AS a\n"
        f"RUN {stamp} > /start && echo stage-a-ran && sleep 1.5 && {stamp} > /end\n"
        f"FROM {daemon.image} AS unused\n"
        "RUN false\n"
        f"FROM {daemon.image} AS b\n"
        f"RUN {stamp} > /start && echo stage-b-ran && sleep 1.5 && {stamp} > /end\n"
        f"FROM {daemon.image}\n"
        "COPY --from=a /start /a.start\n"
        "COPY --from=a /end /a.end\n"
        "COPY --from=b /start /b.start\n"
        "COPY --from=b /end /b.end\n"
        'CMD ["cat", "/a.start", "/a.end", "/b.start", "/b.end"]\n'
    )
    name = tag()
    result = build(daemon, tmp_path, "--no-cache", "-t", name)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    a_start, a_end, b_start, b_end = map(float, run_out(daemon, name).split())
    assert a_start < b_end and b_start < a_end, "stages a and b did not overlap"
    # The unneeded stage is not built; steps are numbered and printed stage by stage.
    assert "RUN false" not in out
    steps = [line for line in out.splitlines() if line.startswith("Step ")]
    assert [s.split()[1] for s in steps] == [f"{i}/10" for i in range(1, 11)]
    assert out.index("stage-a-ran") < out.index("Step 3/10") < out.index("stage-b-ran")
    assert out.index("stage-b-ran") < out.index("Step 5/10")
    assert daemon.cli("rmi", name).returncode == 0


def test_identical_steps_of_two_stages_run_once(daemon: Daemon, tmp_path: Path) -> None:
    """As BuildKit: the same step on the same image is one step, even with --no-cache; a
    copied file changed later is copied up, its source stage keeps its own."""
    stage = "WORKDIR /out\nRUN echo ran-$RANDOM && echo original > f\n"
    (tmp_path / "Dockerfile").write_text(
        f"FROM {daemon.image} AS left\n{stage}"
        f"FROM {daemon.image} AS right\n{stage}"
        f"FROM {daemon.image} AS final\n"
        "COPY --from=left /out/f /left\n"
        "COPY --from=right /out/f /right\n"
        "RUN echo changed > /left\n"
        f"FROM {daemon.image}\n"
        "COPY --from=final /left /right /\n"
        "COPY --from=left /out/f /left-source\n"
        'CMD ["cat", "/left", "/right", "/left-source"]\n'
    )
    name = tag()
    result = build(daemon, tmp_path, "--no-cache", "-t", name)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert len(re.findall(r"^ran-\d+$", out, re.MULTILINE)) == 1, out
    right = out[out.index("AS right") : out.index("AS final")]
    assert right.count(" ---> Using cache") == 2 and "Running in" not in right
    assert run_out(daemon, name) == "changed\noriginal\noriginal\n"
    assert daemon.cli("rmi", name).returncode == 0


def test_failing_stage_stops_the_build(daemon: Daemon, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"FROM {daemon.image} AS slow\n"
        "RUN sleep 5\n"
        f"FROM {daemon.image} AS broken\n"
        "RUN echo about to fail && exit 3\n"
        f"FROM {daemon.image}\n"
        "COPY --from=slow /etc/hostname /a\n"
        "COPY --from=broken /etc/hostname /b\n"
    )
    result = build(daemon, tmp_path, "--no-cache", "-t", tag())
    assert result.returncode == 1
    assert "about to fail" in result.stdout
    assert "returned a non-zero code: 3" in result.stderr
    status, containers = daemon.request("GET", "/containers/json?all=1")
    assert status == 200
    assert not [c for c in containers if c["Image"].startswith("sha256:")]


def test_platform_other_than_host_is_refused(daemon: Daemon, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {daemon.image}\n")
    refused = build(daemon, tmp_path, "--platform", "linux/s390x")
    assert refused.returncode == 1
    assert "platform linux/s390x is not supported" in refused.stderr
    accepted = build(daemon, tmp_path, "--platform", "linux/amd64", "-q")
    assert accepted.returncode == 0, accepted.stderr


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    reg = start_registry(users={"dave": "s3cret"})
    yield reg
    reg.stop()


def test_from_is_pulled_with_stored_credentials(
    daemon: Daemon, registry: Registry, tmp_path: Path
) -> None:
    home = tmp_path / "cfg"
    login = subprocess.run(
        [str(VENV_BIN / "dockling"), "login", "-u", "dave", "--password-stdin", registry.netloc],
        env={**daemon.env, "DOCKLING_CONFIG": str(home)},
        input="s3cret\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert login.returncode == 0, login.stderr
    base = f"{registry.netloc}/build/base{uuid.uuid4().hex[:6]}:1"

    def publish(text: str) -> None:
        image = build_oci_layout(
            tmp_path / f"oci-{text}", [busybox_layer(), app_layer(text)], cmd=["sh"]
        )
        skopeo_push(image, base, creds="dave:s3cret")

    publish("first")
    (tmp_path / "ctx").mkdir()
    context = tmp_path / "ctx"
    (context / "Dockerfile").write_text(f'FROM {base}\nCMD ["cat", "/app/greeting"]\n')
    name = tag()
    try:
        anonymous = build(daemon, context, "-t", name)
        assert anonymous.returncode == 1
        assert "unauthorized" in anonymous.stderr.lower() or "denied" in anonymous.stderr.lower()
        pulled = build(daemon, context, "-t", name, home=home)
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr
        assert "Pulling from build/base" in pulled.stdout
        assert run_out(daemon, name) == "first\n"
        publish("second")
        local = build(daemon, context, "-t", name, home=home)
        assert local.returncode == 0 and "Pulling" not in local.stdout
        assert run_out(daemon, name) == "first\n"
        again = build(daemon, context, "--pull", "-t", name, home=home)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "Pulling from build/base" in again.stdout
        assert run_out(daemon, name) == "second\n"
    finally:
        daemon.cli("rmi", "-f", name, base)
