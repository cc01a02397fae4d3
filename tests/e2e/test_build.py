"""`dockling build` and POST /build end to end on the offline busybox image: the results are
run and inspected; cache hits and misses, multi-stage targets, failures, ONBUILD,
.dockerignore and the real docker CLI's classic builder (fixture `daemon`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.root, pytest.mark.runc]


def tag() -> str:
    return f"bt{uuid.uuid4().hex[:10]}"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def build(daemon: Any, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = daemon.cli("build", *args, timeout=180)
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def inspect(daemon: Any, ref: str) -> Any:
    status, body = daemon.request("GET", f"/images/{ref}/json")
    assert status == 200, body
    return body


def run_out(daemon: Any, *args: str) -> str:
    result = daemon.cli("run", "--rm", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_build_run_and_inspect(daemon: Any, tmp_path: Path) -> None:
    name = tag()
    write(
        tmp_path,
        {
            "Dockerfile": (
                f"FROM {daemon.image}\n"
                "MAINTAINER someone\n"
                "ARG VERSION=1\n"
                "ENV GREETING=hi APP_VERSION=$VERSION\n"
                "WORKDIR /app\n"
                "COPY --chmod=0755 a.txt sub ./\n"
                "COPY --chown=nobody a.txt /owned/\n"
                'RUN echo "$GREETING $VERSION" > out && mkdir -p /var/x\n'
                'LABEL tier=test shape="${GREETING/h/H}-${APP_VERSION//2/two}"\n'
                "EXPOSE 80 53/udp\n"
                "VOLUME /data\n"
                "USER nobody\n"
                "STOPSIGNAL SIGINT\n"
                'HEALTHCHECK --interval=5s CMD ["true"]\n'
                'ENTRYPOINT ["/bin/sh", "-c"]\n'
                'CMD ["cat /app/out /app/a.txt /app/b"]\n'
            ),
            "a.txt": "from a\n",
            "sub/b": "from b\n",
        },
    )
    result = build(
        daemon, "-t", name, "--build-arg", "VERSION=2", "--label", "by=test", str(tmp_path)
    )
    assert "Step 1/17 : FROM" in result.stdout
    assert (
        " ---> Running in " in result.stdout and "Removing intermediate container" in result.stdout
    )
    assert f"Successfully tagged {name}:latest" in result.stdout
    assert run_out(daemon, name) == "hi 2\nfrom a\nfrom b\n"
    listing = run_out(daemon, "--entrypoint", "ls", name, "-ln", "/app", "/owned")
    assert "-rwxr-xr-x    1 0        0" in listing
    assert "65534" in listing.split("/owned:")[1]
    body = inspect(daemon, name)
    config = body["Config"]
    assert body["Author"] == "someone"
    assert "APP_VERSION=2" in config["Env"] and "GREETING=hi" in config["Env"]
    assert config["WorkingDir"] == "/app" and config["User"] == "nobody"
    assert config["Labels"] == {"tier": "test", "shape": "Hi-two", "by": "test"}
    assert set(config["ExposedPorts"]) == {"80/tcp", "53/udp"}
    assert config["Volumes"] == {"/data": {}}
    assert config["StopSignal"] == "SIGINT"
    assert config["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 5_000_000_000}
    assert config["Entrypoint"] == ["/bin/sh", "-c"]
    status, history = daemon.request("GET", f"/images/{name}/history")
    assert status == 200
    created_by = [row["CreatedBy"] for row in history]
    assert any(c.startswith("|1 VERSION=2 /bin/sh -c echo") for c in created_by)
    assert any("#(nop)  ENV GREETING=hi" in c for c in created_by)
    # no intermediate container is left
    status, containers = daemon.request("GET", "/containers/json?all=1")
    assert not [c for c in containers if c["Image"].startswith("sha256:") and "RUN" in str(c)]


def test_cache_hit_and_miss(daemon: Any, tmp_path: Path) -> None:
    name = tag()
    write(
        tmp_path,
        {
            "Dockerfile": (
                f"FROM {daemon.image}\n"
                "RUN echo one > /one\n"
                "COPY a.txt /a.txt\n"
                "RUN cat /a.txt > /copy\n"
                'CMD ["cat", "/copy"]\n'
            ),
            "a.txt": "first\n",
        },
    )
    first = build(daemon, "-t", name, str(tmp_path))
    first_id = inspect(daemon, name)["Id"]
    second = build(daemon, "-t", name, str(tmp_path))
    assert second.stdout.count("Using cache") == 4, second.stdout
    assert inspect(daemon, name)["Id"] == first_id
    assert "Running in" in first.stdout and "Running in" not in second.stdout
    (tmp_path / "a.txt").write_text("second\n")
    third = build(daemon, "-t", name, str(tmp_path))
    steps = third.stdout.split("Step ")[1:]
    assert "Using cache" in steps[1]
    assert all("Using cache" not in step for step in steps[2:]), third.stdout
    assert run_out(daemon, name) == "second\n"
    assert (
        inspect(daemon, name)["RootFS"]["Layers"][:2]
        == inspect(daemon, first_id)["RootFS"]["Layers"][:2]
    )
    nocache = build(daemon, "--no-cache", "-t", name, str(tmp_path))
    assert "Using cache" not in nocache.stdout


def test_multi_stage_target_and_copy_from(daemon: Any, tmp_path: Path) -> None:
    name = tag()
    write(
        tmp_path,
        {
            "Dockerfile": (
                f"FROM {daemon.image} AS build\n"
                "RUN mkdir /out && echo built > /out/artifact\n"
                f"FROM {daemon.image} AS unused\n"
                "RUN echo never-runs\n"
                "FROM scratch AS runtime\n"
                "COPY --from=build /out/artifact /artifact\n"
                f"COPY --from={daemon.image} /bin/busybox /bin/busybox\n"
                'CMD ["/bin/busybox", "cat", "/artifact"]\n'
                f"FROM {daemon.image} AS debug\n"
                "COPY --from=runtime /artifact /debug-artifact\n"
            ),
        },
    )
    result = build(daemon, "--target", "runtime", "-t", name, str(tmp_path))
    assert "never-runs" not in result.stdout
    assert "debug-artifact" not in result.stdout
    assert run_out(daemon, name) == "built\n"
    assert len(inspect(daemon, name)["RootFS"]["Layers"]) == 2


def test_failing_run(daemon: Any, tmp_path: Path) -> None:
    name = tag()
    write(
        tmp_path, {"Dockerfile": f"FROM {daemon.image}\nRUN echo before\nRUN echo oops && false\n"}
    )
    _, before = daemon.request("GET", "/containers/json?all=1")
    result = build(daemon, "-t", name, str(tmp_path), ok=False)
    assert result.returncode == 1
    assert "oops" in result.stdout
    assert (
        "The command '/bin/sh -c echo oops && false' returned a non-zero code: 1" in result.stderr
    )
    status, _ = daemon.request("GET", f"/images/{name}/json")
    assert status == 404
    _, after = daemon.request("GET", "/containers/json?all=1")
    assert {c["Id"] for c in after} <= {c["Id"] for c in before}
    again = build(daemon, "-t", name, str(tmp_path), ok=False)
    assert again.stdout.count("Using cache") == 1


def test_onbuild_across_two_builds(daemon: Any, tmp_path: Path) -> None:
    parent, child = tag(), tag()
    write(
        tmp_path / "p",
        {
            "Dockerfile": (
                f"FROM {daemon.image}\nONBUILD COPY hello /hello\nONBUILD RUN cat /hello > /seen\n"
            )
        },
    )
    build(daemon, "-t", parent, str(tmp_path / "p"))
    assert len(inspect(daemon, parent)["Config"]["OnBuild"]) == 2
    write(
        tmp_path / "c",
        {"Dockerfile": f'FROM {parent}\nCMD ["cat", "/seen"]\n', "hello": "triggered\n"},
    )
    result = build(daemon, "-t", child, str(tmp_path / "c"))
    assert "# Executing 2 build triggers" in result.stdout
    assert run_out(daemon, child) == "triggered\n"
    assert not inspect(daemon, child)["Config"].get("OnBuild")


def test_dockerignore(daemon: Any, tmp_path: Path) -> None:
    name = tag()
    write(
        tmp_path,
        {
            "Dockerfile": f"FROM {daemon.image}\nCOPY . /ctx/\n",
            ".dockerignore": "*.log\n**/tmp\n!keep.log\nDockerfile\n",
            "a.log": "x",
            "keep.log": "kept",
            "src/tmp/junk": "x",
            "src/main.c": "int main;",
        },
    )
    build(daemon, "-t", name, str(tmp_path))
    listing = run_out(daemon, name, "find", "/ctx").split()
    assert sorted(listing) == sorted(
        ["/ctx", "/ctx/.dockerignore", "/ctx/keep.log", "/ctx/src", "/ctx/src/main.c"]
    )


def test_stdin_dockerfile_and_quiet_iidfile(daemon: Any, tmp_path: Path) -> None:
    name = tag()
    iid = tmp_path / "iid"
    result = daemon.cli(
        "build", "-q", "--iidfile", str(iid), "-t", name, "-",
        input=f"FROM {daemon.image}\nRUN echo quiet-output\n".encode(),
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "quiet-output" not in result.stdout
    assert result.stdout.strip() == iid.read_text() == inspect(daemon, name)["Id"]


def test_reproducible_with_source_date_epoch(daemon: Any, tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "Dockerfile": f"FROM {daemon.image}\nCOPY a /a\nRUN echo x > /x\nENV A=1\n",
            "a": "same\n",
        },
    )
    os.utime(tmp_path / "a", (1_000_000, 1_000_000))
    first, second = tag(), tag()
    build(
        daemon,
        "--no-cache",
        "--build-arg",
        "SOURCE_DATE_EPOCH=1700000000",
        "-t",
        first,
        str(tmp_path),
    )
    build(
        daemon,
        "--no-cache",
        "--build-arg",
        "SOURCE_DATE_EPOCH=1700000000",
        "-t",
        second,
        str(tmp_path),
    )
    one, two = inspect(daemon, first), inspect(daemon, second)
    assert one["Id"] == two["Id"]
    assert one["Created"].startswith("2023-11-14T22:13:20")


@pytest.mark.docker_cli
def test_docker_cli_classic_builder(daemon: Any, tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker CLI not installed")
    name = tag()
    write(
        tmp_path,
        {"Dockerfile": f"FROM {daemon.image}\nCOPY f /f\nRUN cat /f\n", "f": "via docker\n"},
    )
    env = {**daemon.env, "DOCKER_BUILDKIT": "0"}
    result = subprocess.run(
        [docker, "build", "-t", name, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "via docker" in result.stdout
    assert f"Successfully tagged {name}:latest" in result.stdout
    assert run_out(daemon, name, "cat", "/f") == "via docker\n"
    failing = tmp_path / "bad"
    write(failing, {"Dockerfile": f"FROM {daemon.image}\nRUN exit 3\n"})
    result = subprocess.run(
        [docker, "build", str(failing)], env=env, capture_output=True, text=True, timeout=180
    )
    # docker exits with the code the daemon's errorDetail carries: the command's own
    assert result.returncode == 3
    assert "returned a non-zero code: 3" in result.stderr


def test_intermediate_images_are_hidden_and_removed_with_the_result(
    daemon: Any, tmp_path: Path
) -> None:
    name = tag()
    write(
        tmp_path,
        {
            "Dockerfile": (
                f"FROM {daemon.image}\nENV A=1\nRUN echo one > /one\nENV B=2\n"
                f"RUN echo {name} > /two\nCMD cat /two\n"
            ),
        },
    )
    build(daemon, "-t", name, str(tmp_path))
    final = inspect(daemon, name)
    base = inspect(daemon, daemon.image)["Id"]
    # Walk the step images from the result up to the base image.
    steps = []
    current = final["Parent"]
    while current and current != base:
        steps.append(current)
        current = inspect(daemon, current)["Parent"]
    assert current == base
    assert len(steps) == 4  # ENV A, RUN one, ENV B, RUN two (CMD is the result)
    _, listed = daemon.request("GET", "/images/json")
    _, everything = daemon.request("GET", "/images/json?all=1")
    assert not set(steps) & {i["Id"] for i in listed}
    assert set(steps) <= {i["Id"] for i in everything}
    # The step images go with the result, as Docker's classic builder's do.
    status, records = daemon.request("DELETE", f"/images/{name}")
    assert status == 200, records
    deleted = {r["Deleted"] for r in records if "Deleted" in r}
    assert set(steps) <= deleted
    _, after = daemon.request("GET", "/images/json?all=1")
    assert not set(steps) & {i["Id"] for i in after}
    # The base image stays.
    assert inspect(daemon, daemon.image)["Id"]


def test_build_checks_warn_or_fail(daemon: Any, tmp_path: Path) -> None:
    name = tag()
    write(tmp_path / "warn", {"Dockerfile": f"FROM {daemon.image}\nCMD echo hi\n"})
    warned = build(daemon, "-t", name, str(tmp_path / "warn"))
    assert " 1 warning found (use docker --debug to expand):" in warned.stdout
    assert " - JSONArgsRecommended: JSON arguments recommended for CMD" in warned.stdout
    assert f"Successfully tagged {name}:latest" in warned.stdout
    assert daemon.cli("rmi", name).returncode == 0

    strict = f"# check=error=true\nFROM {daemon.image}\nRUN echo ran > /x\nCMD echo hi\n"
    write(tmp_path / "strict", {"Dockerfile": strict})
    failed = build(daemon, "-t", name, str(tmp_path / "strict"), ok=False)
    assert failed.returncode == 1
    assert "lint violation found for rules: JSONArgsRecommended" in failed.stderr
    assert "JSONArgsRecommended: JSON arguments" in failed.stdout
    assert "Step 1/" not in failed.stdout  # nothing ran
    assert daemon.cli("image", "inspect", name).returncode == 1
    # The build argument replaces the directive.
    skipped = build(
        daemon,
        "--build-arg",
        "BUILDKIT_DOCKERFILE_CHECK=skip=JSONArgsRecommended",
        "-t",
        name,
        str(tmp_path / "strict"),
    )
    assert "warning" not in skipped.stdout and "consumed" not in skipped.stdout
    assert daemon.cli("rmi", name).returncode == 0


def test_classic_builder_words(daemon: Any, tmp_path: Path) -> None:
    """Answers compared with dockerd 20.10's classic builder for the same Dockerfiles."""
    write(tmp_path / "signal", {"Dockerfile": f"FROM {daemon.image}\nSTOPSIGNAL SIGBOGUS\n"})
    signal = build(daemon, str(tmp_path / "signal"), ok=False)
    assert signal.returncode == 1 and "Invalid signal: SIGBOGUS" in signal.stderr
    write(tmp_path / "expose", {"Dockerfile": f"FROM {daemon.image}\nEXPOSE abc\n"})
    expose = build(daemon, str(tmp_path / "expose"), ok=False)
    assert "Invalid containerPort: abc" in expose.stderr
    write(tmp_path / "url", {"Dockerfile": "FROM scratch\nADD http://127.0.0.1:1/x /x\n"})
    url = build(daemon, str(tmp_path / "url"), ok=False)
    assert 'ADD failed: Get "http://127.0.0.1:1/x": connection refused' in url.stderr
    # Scratch has no image: the classic builder shows an empty id for it.
    assert "Step 1/2 : FROM scratch\n ---> \nStep 2/2" in url.stdout
