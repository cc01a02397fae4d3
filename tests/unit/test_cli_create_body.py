"""docker run/create command lines and the create body the docker CLI sends for them."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from dockling.cli.commands.create_options import (
    CreateOptionError,
    add_container_flags,
    build_create,
    parse_mount,
)
from dockling.cli.flags import FlagSet, UsageError


def body_for(cmdline: str, *, run: bool = True) -> dict[str, Any]:
    fs = FlagSet("run", "[OPTIONS] IMAGE [COMMAND] [ARG...]", interspersed=False, min_args=1)
    add_container_flags(fs, run=run)
    values, args = fs.parse(shlex.split(cmdline))
    return build_create(values, args, run=run)


def subset(body: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if isinstance(value, dict) and key in ("HostConfig",):
            subset(body[key], value)
        else:
            assert body.get(key) == value, (key, body.get(key), value)


CASES: list[tuple[str, dict[str, Any]]] = [
    (
        "busybox",
        {
            "Image": "busybox",
            "Cmd": None,
            "AttachStdout": True,
            "AttachStderr": True,
            "AttachStdin": False,
            "OpenStdin": False,
            "Tty": False,
            "Entrypoint": None,
            "HostConfig": {
                "NetworkMode": "default",
                "AutoRemove": False,
                "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            },
        },
    ),
    (
        "-d busybox sleep 60",
        {"Cmd": ["sleep", "60"], "AttachStdout": False, "AttachStderr": False},
    ),
    (
        "-it --rm busybox sh",
        {
            "Tty": True,
            "OpenStdin": True,
            "StdinOnce": True,
            "AttachStdin": True,
            "HostConfig": {"AutoRemove": True},
        },
    ),
    ("busybox sh -c 'exit 3'", {"Cmd": ["sh", "-c", "exit 3"]}),
    (
        "--name web -e A=1 -e B= -w /tmp -u 1000:1000 -h box busybox",
        {"Env": ["A=1", "B="], "WorkingDir": "/tmp", "User": "1000:1000", "Hostname": "box"},
    ),
    ("--entrypoint /bin/echo busybox hi", {"Entrypoint": ["/bin/echo"], "Cmd": ["hi"]}),
    ('--entrypoint "" busybox', {"Entrypoint": [""]}),
    ("-l a=b -l c --label d=e=f busybox", {"Labels": {"a": "b", "c": "", "d": "e=f"}}),
    (
        "-v /host:/ctr:ro -v named:/data -v /anon busybox",
        {"Volumes": {"/anon": {}}, "HostConfig": {"Binds": ["/host:/ctr:ro", "named:/data"]}},
    ),
    (
        "--tmpfs /run --tmpfs /tmp:size=64m,mode=1777 busybox",
        {"HostConfig": {"Tmpfs": {"/run": "", "/tmp": "size=64m,mode=1777"}}},
    ),
    (
        "-m 64m --memory-swap 128m --cpus 1.5 -c 512 --pids-limit 100 busybox",
        {
            "HostConfig": {
                "Memory": 64 << 20,
                "MemorySwap": 128 << 20,
                "NanoCpus": 1_500_000_000,
                "CpuShares": 512,
                "PidsLimit": 100,
            }
        },
    ),
    (
        "--privileged --cap-add NET_ADMIN --cap-drop ALL --security-opt no-new-privileges "
        "--read-only --init busybox",
        {
            "HostConfig": {
                "Privileged": True,
                "CapAdd": ["NET_ADMIN"],
                "CapDrop": ["ALL"],
                "SecurityOpt": ["no-new-privileges"],
                "ReadonlyRootfs": True,
                "Init": True,
            }
        },
    ),
    (
        "--restart always busybox",
        {"HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}}},
    ),
    (
        "--restart on-failure:3 busybox",
        {"HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}}},
    ),
    ("--stop-signal SIGUSR1 --stop-timeout 5 busybox", {"StopSignal": "SIGUSR1", "StopTimeout": 5}),
    (
        "--runtime runc --network none busybox",
        {"HostConfig": {"Runtime": "runc", "NetworkMode": "none"}},
    ),
    ("--net host busybox", {"HostConfig": {"NetworkMode": "host"}}),
    (
        "--log-driver json-file --log-opt max-size=1m busybox",
        {"HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}}}},
    ),
    (
        "--add-host db:10.0.0.2 --add-host cache=10.0.0.3 --dns 1.1.1.1 busybox",
        {"HostConfig": {"ExtraHosts": ["db:10.0.0.2", "cache:10.0.0.3"], "Dns": ["1.1.1.1"]}},
    ),
    (
        "-p 8080:80 -p 127.0.0.1:5353:53/udp -p 9000 busybox",
        {
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "9000/tcp": {}},
            "HostConfig": {
                "PortBindings": {
                    "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                    "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
                    "9000/tcp": [{"HostIp": "", "HostPort": ""}],
                }
            },
        },
    ),
    (
        "--mount type=bind,src=/h,dst=/c,readonly --mount type=tmpfs,target=/t,tmpfs-size=1m "
        "--mount source=vol,target=/v busybox",
        {
            "HostConfig": {
                "Mounts": [
                    {"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": True},
                    {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20}},
                    {"Type": "volume", "Source": "vol", "Target": "/v"},
                ]
            }
        },
    ),
]


@pytest.mark.parametrize(("cmdline", "expected"), CASES, ids=[c for c, _ in CASES])
def test_create_body(cmdline: str, expected: dict[str, Any]) -> None:
    subset(body_for(cmdline), expected)


def test_create_attaches_output_like_docker_create() -> None:
    body = body_for("busybox", run=False)
    assert body["AttachStdout"] and body["AttachStderr"] and not body["AttachStdin"]


def test_env_file_and_label_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\n\nA=1\nFROM_HOST\nUNSET_ONE\n")
    label_file = tmp_path / "labels"
    label_file.write_text("x=y\n")
    monkeypatch.setenv("FROM_HOST", "h")
    monkeypatch.delenv("UNSET_ONE", raising=False)
    body = body_for(f"--env-file {env_file} --label-file {label_file} -e B=2 busybox")
    assert body["Env"] == ["A=1", "FROM_HOST=h", "B=2"]
    assert body["Labels"] == {"x": "y"}


@pytest.mark.parametrize(
    ("cmdline", "message"),
    [
        ("--restart bogus busybox", "invalid restart policy: unknown policy 'bogus'"),
        (
            "--restart on-failure:x busybox",
            "invalid restart policy format: maximum retry count must be an integer",
        ),
        ("--restart always:3 busybox", "maximum retry count can only be used with 'on-failure'"),
        ("--rm --restart always busybox", "cannot specify both --restart and --rm"),
        ("-p abc busybox", "invalid containerPort: abc"),
    ],
)
def test_client_side_rejections(cmdline: str, message: str) -> None:
    with pytest.raises(CreateOptionError, match=message.replace("(", r"\(")):
        body_for(cmdline)


@pytest.mark.parametrize(
    ("cmdline", "first_line"),
    [
        (
            "--memory 12zz busybox",
            """invalid argument "12zz" for "-m, --memory" flag: invalid suffix: 'zz'""",
        ),
        (
            "--cpus abc busybox",
            'invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number',
        ),
        (
            "--pids-limit x busybox",
            """invalid argument "x" for "--pids-limit" flag: """
            """strconv.ParseInt: parsing "x": invalid syntax""",
        ),
    ],
)
def test_flag_value_errors(cmdline: str, first_line: str) -> None:
    with pytest.raises(UsageError) as info:
        body_for(cmdline)
    assert info.value.text.splitlines()[0] == first_line
    assert info.value.code == 125


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("target", "invalid field 'target' must be a key=value pair"),
        ("type=bind,src=/x", "target is required"),
        ("type=bind,bogus=1,target=/x", "unexpected key 'bogus' in 'bogus=1'"),
    ],
)
def test_mount_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_mount(spec)
