"""The dockling CLI against the docker CLI, both talking to the same docklingd: the same
command line must give the same exit code and the same output (names aside)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.daemon import VENV_BIN

pytestmark = pytest.mark.runc

COMMANDS = [
    "ps -q",
    "ps -a --format '{{.Names}} {{.Image}} {{.Command}}'",
    "images -q",
    "images --format '{{.Repository}}:{{.Tag}} {{.Size}}'",
    "network ls -q",
    "network ls --format '{{.Name}} {{.Driver}} {{.Scope}}'",
    "volume ls -q",
    "history -H=false busybox",
    "history --format '{{.CreatedBy}}' busybox",
    "port parity1",
    "inspect -f '{{.Name}} {{.State.Status}}' parity1",
    "version --format '{{.Server.APIVersion}}'",
    "stop nosuch",
    "rm nosuch",
    "rmi nosuch",
    "inspect nosuch",
    "logs nosuch",
    "exec nosuch true",
    "kill nosuch",
    "pause nosuch",
    "volume rm nosuch",
    "run --rm busybox sh -c 'exit 3'",
    "run --rm busybox no-such-command",
    "run -m 1k busybox true",
    "run --cpus -1 busybox true",
    "run -p 99999:80 busybox true",
    "create",
    "run",
    "exec",
    "rm",
    "stop",
    "network create",
    "volume rm",
    "cp",
    "cp a b",
    "ps --no-such-flag",
    "ps x",
    "system df",
    "system df -v",
    "system df --format json",
    "system df -v --format json",
    "system df --format 'table {{.Type}}\t{{.Size}}'",
    "system df --format '{{.Nope}}'",
    "system df -v --format '{{.Type}}'",
    "system df x",
    "system prune x",
    "images --format json",
    "ps -a --format json",
    "ps --format 'ab {{ .A.B }}'",
    "ps --format 'table {{.ID}} {{.Zed}}'",
    "images --format '{{json .Z}}'",
    "network ls --format 'x\\n  {{- if .Q}}y{{end}}'",
    "volume ls --format '{{.Nope}}'",
    "network ls --format json",
    "network ls --format 'table {{.ID}}\t{{.IPv4}}\t{{.CreatedAt}}\t{{.Label \"a\"}}'",
    "info --format '{{json .Plugins}}'",
    "stats --no-stream parity1 nosuch",
    "stats --no-stream --format 'table {{.Zed}}' parity1",
    "history --format json busybox",
    "history --format '{{.Tags}}' busybox",
    "ps --format 'table {{.Platform}}|{{.Label \"a\"}}|{{.ID}}'",
    "volume ls --format 'table {{.Label}}'",
    "inspect -f '{{range $p, $conf := .NetworkSettings.Ports}} {{$p}} -> "
    "{{(index $conf 0).HostPort}} {{end}}' parity1",
    "inspect -f '{{$n := .Name}}{{range $i, $e := .Config.Cmd}}{{$n}}{{$i}}={{$e}} {{end}}' "
    "parity1",
    "inspect -f '{{.Nope}}' parity1",
    "inspect -f '{{.Config.Labels.nope}}' parity1",
    "inspect -f '{{foo}}' parity1",
    "inspect -f 'a\n{{.Name' parity1",
    "image inspect nosuch",
    "inspect --type image nosuch",
    "logs --since 2h30m parity1",
    "logs --since bogus parity1",
    "logs --until 2026-01-01T00:00:00Z parity1",
    "port parity1 81",
    "port parity1 bogus/x",
    "rm -f nosuch",
    "rename nosuch x",
    "create --name parity1 busybox",
    "create -m 1k busybox",
    "tag busybox 'bad tag'",
    "tag busybox UPPER:1",
    "ps --format '{{.ID'",
    "ps --format '{{if .ID}}'",
    "images --format '{{foo}}'",
    "network ls --format '{{end}}'",
    "tag Bad x:1",
    "tag busybox x@sha256:" + "a" * 64,
]


def normalize(text: str) -> str:
    text = re.sub(r"\b[0-9a-f]{64}\b", "<ID>", text)
    text = re.sub(r"\b[0-9a-f]{12}\b", "<ID12>", text)
    # The two CLIs run a moment apart: ages may differ, and with them column widths.
    text = re.sub(r"(About a minute|Less than a second|\d+ \w+) ago", "N ago", text)
    text = re.sub(r"Up (About a minute|Less than a second|\d+ \w+)", "Up N", text)
    text = re.sub(r"[ ]{2,}", "  ", text)
    return text.replace("dockling", "docker").strip()


@pytest.fixture(scope="module")
def container(daemon: Any) -> Iterator[None]:
    subprocess.run(
        ["docker", "run", "-d", "--name", "parity1", "-p", "127.0.0.1::80", daemon.image,
         "sleep", "300"],
        env=daemon.env, capture_output=True, check=True,
    )  # fmt: skip
    yield
    subprocess.run(["docker", "rm", "-f", "parity1"], env=daemon.env, capture_output=True)


@pytest.mark.parametrize("command", COMMANDS)
def test_same_answer_as_the_docker_cli(daemon: Any, container: None, command: str) -> None:
    answers = []
    for cli in ("docker", str(VENV_BIN / "dockling")):
        out = subprocess.run(
            f"{cli} {command}",
            shell=True,
            env=daemon.env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        answers.append((out.returncode, normalize(out.stdout), normalize(out.stderr)))
    assert answers[1] == answers[0]
