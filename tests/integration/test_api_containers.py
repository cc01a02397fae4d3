"""/containers, /exec and /volumes of the Engine API, byte for byte, against a real docklingd."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import struct
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.runc

V = "/v1.45"


@pytest.fixture
def create(daemon: Any) -> Iterator[Callable[..., str]]:
    """Create a container from a body (Image defaults to busybox); removed at the end."""
    made: list[str] = []

    def make(**body: Any) -> str:
        body.setdefault("Image", daemon.image)
        status, data = daemon.request("POST", f"{V}/containers/create", body)
        assert status == 201, data
        assert set(data) == {"Id", "Warnings"}
        made.append(data["Id"])
        return str(data["Id"])

    yield make
    for cid in made:
        daemon.request("DELETE", f"{V}/containers/{cid}?force=1")


def hijack(daemon: Any, path: str, body: bytes = b"") -> tuple[socket.socket, bytes]:
    """Send a hijacking POST as the docker CLI does; return the socket and the response head."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(daemon.socket_path)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(1)
        assert chunk, f"connection closed in the head: {received!r}"
        received += chunk
    return sock, received


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def demux(data: bytes) -> list[tuple[int, bytes]]:
    frames = []
    while data:
        stream, size = struct.unpack(">BxxxI", data[:8])
        frames.append((stream, data[8 : 8 + size]))
        data = data[8 + size :]
    return frames


def test_create_errors(daemon: Any) -> None:
    status, body = daemon.request("POST", f"{V}/containers/create", {"Image": "no-such-image"})
    assert status == 404
    assert body["message"].startswith("No such image: no-such-image")
    status, body = daemon.request("POST", f"{V}/containers/create", {})
    assert status == 400
    status, body = daemon.request("POST", f"{V}/containers/create?name=a", {"Image": daemon.image})
    assert status == 400
    assert "Invalid container name" in body["message"]


def test_name_conflict_is_409(daemon: Any, create: Callable[..., str]) -> None:
    name = f"conflict-{uuid.uuid4().hex[:8]}"
    status, first = daemon.request(
        "POST", f"{V}/containers/create?name={name}", {"Image": daemon.image, "Cmd": ["true"]}
    )
    assert status == 201, first
    try:
        status, body = daemon.request(
            "POST", f"{V}/containers/create?name={name}", {"Image": daemon.image, "Cmd": ["true"]}
        )
        assert status == 409
        assert f'The container name "/{name}" is already in use' in body["message"]
    finally:
        daemon.request("DELETE", f"{V}/containers/{first['Id']}?force=1")


def test_start_stop_status_codes(daemon: Any, create: Callable[..., str]) -> None:
    cid = create(Cmd=["sleep", "60"])
    assert daemon.request("POST", f"{V}/containers/{cid}/stop")[0] == 304
    status, body = daemon.request("POST", f"{V}/containers/{cid}/kill")
    assert status == 409
    assert "is not running" in body["message"]
    assert daemon.request("POST", f"{V}/containers/{cid}/start")[0] == 204
    assert daemon.request("POST", f"{V}/containers/{cid}/start")[0] == 304
    status, body = daemon.request("DELETE", f"{V}/containers/{cid}")
    assert status == 409
    assert "stop the container before removing or force remove" in body["message"]
    assert daemon.request("POST", f"{V}/containers/{cid}/stop?t=0")[0] == 204
    assert daemon.request("POST", f"{V}/containers/{cid}/stop?t=0")[0] == 304
    status, body = daemon.request("POST", f"{V}/containers/{cid}/wait")
    assert (status, body) == (200, {"StatusCode": 137})
    assert daemon.request("POST", f"{V}/containers/nope-{cid[:6]}/wait")[0] == 404


def test_list_and_inspect_shapes(daemon: Any, create: Callable[..., str]) -> None:
    cid = create(Cmd=["sleep", "60"], Labels={"suite": "api"})
    assert daemon.request("POST", f"{V}/containers/{cid}/start")[0] == 204
    status, listed = daemon.request(
        "GET", f"{V}/containers/json?filters=" + quote(json.dumps({"id": [cid]}))
    )
    assert status == 200
    [entry] = listed
    for key in (
        "Id",
        "Names",
        "Image",
        "ImageID",
        "Command",
        "Created",
        "Ports",
        "Labels",
        "State",
        "Status",
        "HostConfig",
        "NetworkSettings",
        "Mounts",
    ):
        assert key in entry, key
    assert entry["State"] == "running"
    assert entry["Command"] == "sleep 60"
    assert entry["Labels"] == {"suite": "api"}
    assert isinstance(entry["Created"], int)

    status, data = daemon.request("GET", f"{V}/containers/{cid}/json")
    assert status == 200
    assert data["Id"] == cid
    assert data["State"]["Status"] == "running"
    assert data["State"]["Pid"] > 0
    assert data["Config"]["Cmd"] == ["sleep", "60"]
    assert data["Config"]["Image"] == daemon.image
    assert data["Image"].startswith("sha256:")
    assert data["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}


def test_logs_are_multiplexed_frames(daemon: Any, create: Callable[..., str]) -> None:
    cid = create(Cmd=["sh", "-c", "echo out; echo err >&2"])
    assert daemon.request("POST", f"{V}/containers/{cid}/start")[0] == 204
    assert daemon.request("POST", f"{V}/containers/{cid}/wait")[1] == {"StatusCode": 0}
    status, body = daemon.request("GET", f"{V}/containers/{cid}/logs?stdout=1&stderr=1")
    assert status == 200
    assert sorted(demux(body)) == [(1, b"out\n"), (2, b"err\n")]
    status, body = daemon.request("GET", f"{V}/containers/{cid}/logs?stderr=1")
    assert demux(body) == [(2, b"err\n")]
    status, body = daemon.request("GET", f"{V}/containers/{cid}/logs")
    assert status == 400


def test_tty_logs_are_raw(daemon: Any, create: Callable[..., str]) -> None:
    cid = create(Cmd=["echo", "raw"], Tty=True)
    assert daemon.request("POST", f"{V}/containers/{cid}/start")[0] == 204
    assert daemon.request("POST", f"{V}/containers/{cid}/wait")[1] == {"StatusCode": 0}
    status, body = daemon.request("GET", f"{V}/containers/{cid}/logs?stdout=1")
    assert (status, body) == (200, b"raw\r\n")


def attach_then_start(daemon: Any, cid: str) -> tuple[bytes, bytes]:
    sock, head = hijack(daemon, f"{V}/containers/{cid}/attach?stream=1&stdout=1&stderr=1")
    with sock:
        assert daemon.request("POST", f"{V}/containers/{cid}/start")[0] == 204
        return head, read_all(sock)


def test_attach_upgrades_and_multiplexes(daemon: Any, create: Callable[..., str]) -> None:
    cid = create(Cmd=["sh", "-c", "echo one; echo two >&2"])
    head, body = attach_then_start(daemon, cid)
    assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    assert b"Upgrade: tcp\r\n" in head
    assert b"Content-Type: application/vnd.docker.multiplexed-stream\r\n" in head
    assert sorted(demux(body)) == [(1, b"one\n"), (2, b"two\n")]


def test_attach_before_start_never_loses_output(daemon: Any, create: Callable[..., str]) -> None:
    ids = [create(Cmd=["echo", "hi"]) for _ in range(24)]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        bodies = list(pool.map(lambda cid: attach_then_start(daemon, cid)[1], ids))
    lost = [
        cid[:12] for cid, body in zip(ids, bodies, strict=True) if demux(body) != [(1, b"hi\n")]
    ]
    assert lost == []


def test_exec_create_start_inspect(daemon: Any, create: Callable[..., str]) -> None:
    cid = create(Cmd=["sleep", "60"])
    status, body = daemon.request("POST", f"{V}/containers/{cid}/exec", {"Cmd": ["true"]})
    assert status == 409  # not running yet
    assert daemon.request("POST", f"{V}/containers/{cid}/start")[0] == 204
    status, body = daemon.request(
        "POST",
        f"{V}/containers/{cid}/exec",
        {"Cmd": ["sh", "-c", "echo x; exit 2"], "AttachStdout": True, "AttachStderr": True},
    )
    assert status == 201
    exec_id = body["Id"]
    sock, head = hijack(
        daemon, f"{V}/exec/{exec_id}/start", json.dumps({"Detach": False, "Tty": False}).encode()
    )
    with sock:
        assert head.startswith(b"HTTP/1.1 101 ")
        assert demux(read_all(sock)) == [(1, b"x\n")]
    status, info = daemon.request("GET", f"{V}/exec/{exec_id}/json")
    assert status == 200
    assert info["Running"] is False
    assert info["ExitCode"] == 2
    assert info["ContainerID"] == cid
    assert info["ProcessConfig"]["entrypoint"] == "sh"
    assert daemon.request("GET", f"{V}/exec/no-such-exec/json")[0] == 404


def test_volume_status_codes(daemon: Any, create: Callable[..., str]) -> None:
    name = f"apivol-{uuid.uuid4().hex[:8]}"
    status, body = daemon.request("POST", f"{V}/volumes/create", {"Name": name})
    assert status == 201
    assert body["Name"] == name and body["Driver"] == "local" and body["Scope"] == "local"
    # Creating an existing volume answers it again, as Docker does.
    assert daemon.request("POST", f"{V}/volumes/create", {"Name": name})[0] == 201
    cid = create(Cmd=["true"], HostConfig={"Binds": [f"{name}:/data"]})
    status, body = daemon.request("DELETE", f"{V}/volumes/{name}")
    assert status == 409
    assert daemon.request("DELETE", f"{V}/containers/{cid}")[0] == 204
    assert daemon.request("DELETE", f"{V}/volumes/{name}")[0] == 204
    status, body = daemon.request("DELETE", f"{V}/volumes/{name}")
    assert status == 404
    assert daemon.request("GET", f"{V}/volumes/{name}")[0] == 404
