"""The Docker SDK for Python (docker 7.x) against docklingd: Docker compatibility."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.errors
import pytest
from docker.models.containers import Container

pytestmark = [
    pytest.mark.runc,
    # docker-py's hijacked attach keeps a second socket object on the same connection and
    # never closes it: a ResourceWarning of the SDK's own making, reported at some later GC.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(daemon: Any) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=daemon.host, timeout=20)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def track(daemon: Any) -> Iterator[Callable[[str], str]]:
    """Record a container id or name; each is force-removed at the end of the test."""
    refs: list[str] = []

    def add(ref: str) -> str:
        refs.append(ref)
        return ref

    yield add
    for ref in refs:
        daemon.request("DELETE", f"/containers/{ref}?force=1&v=1")


def test_ping_and_version(client: docker.DockerClient) -> None:
    assert client.ping() is True
    version = client.version()
    assert version["ApiVersion"] == "1.45"
    assert version["Os"] == "linux"
    engine = next(c for c in version["Components"] if c["Name"] == "Engine")
    assert engine["Details"]["ApiVersion"] == "1.45"
    assert engine["Details"]["MinAPIVersion"] == version["MinAPIVersion"]
    info = client.info()
    assert info["Driver"] == "overlay2"
    assert info["OSType"] == "linux"


def test_run_returns_output(client: docker.DockerClient, daemon: Any) -> None:
    assert client.containers.run(daemon.image, "echo hi", remove=True) == b"hi\n"


def test_run_nonzero_exit_raises_container_error(client: docker.DockerClient, daemon: Any) -> None:
    with pytest.raises(docker.errors.ContainerError) as caught:
        client.containers.run(daemon.image, ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
    assert caught.value.exit_status == 3
    assert caught.value.stderr == b"bad\n"


def test_get_unknown_container_is_not_found(client: docker.DockerClient) -> None:
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("no-such-container-" + uuid.uuid4().hex[:6])


def test_detached_container(
    client: docker.DockerClient, daemon: Any, track: Callable[[str], str]
) -> None:
    name = track(unique("sdk"))
    container = client.containers.run(
        daemon.image, ["sh", "-c", "echo started; sleep 60"], detach=True, name=name
    )
    assert isinstance(container, Container)
    assert container.name == name
    container.reload()
    assert container.status == "running"

    deadline = time.monotonic() + 5
    while container.logs() != b"started\n" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert container.logs() == b"started\n"

    result = container.exec_run(["sh", "-c", "echo from exec; exit 4"])
    assert result.exit_code == 4
    assert result.output == b"from exec\n"
    split = container.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
    assert split.output == (b"out\n", b"err\n")

    listed = client.containers.list(all=True, filters={"name": name})
    assert [c.id for c in listed] == [container.id]
    assert client.containers.list(filters={"name": "nothing-" + uuid.uuid4().hex}) == []

    container.stop(timeout=1)
    assert container.wait(timeout=10) == {"StatusCode": 137}
    container.reload()
    assert container.status == "exited"
    container.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(name)


def test_wait_returns_the_exit_code(
    client: docker.DockerClient, daemon: Any, track: Callable[[str], str]
) -> None:
    container = client.containers.run(daemon.image, ["sh", "-c", "exit 9"], detach=True)
    track(container.id)
    assert container.wait(timeout=10)["StatusCode"] == 9


def test_attach_stream(
    client: docker.DockerClient, daemon: Any, track: Callable[[str], str]
) -> None:
    container = client.containers.create(
        daemon.image, ["sh", "-c", "for i in 1 2 3; do echo line$i; done"]
    )
    track(container.id)
    stream = container.attach(stream=True, stdout=True, stderr=True, logs=True)
    container.start()
    try:
        received = b"".join(stream)
    finally:
        stream.close()
    assert received == b"line1\nline2\nline3\n"
    assert container.wait(timeout=10)["StatusCode"] == 0


def test_low_level_create_start_with_volume(
    client: docker.DockerClient, daemon: Any, track: Callable[[str], str]
) -> None:
    api = client.api
    volume = unique("sdkvol")
    client.volumes.create(volume)
    try:
        host_config = api.create_host_config(binds={volume: {"bind": "/data", "mode": "rw"}})
        for command in ("echo stored > /data/f", "cat /data/f"):
            created = api.create_container(
                daemon.image, ["sh", "-c", command], volumes=["/data"], host_config=host_config
            )
            cid = track(created["Id"])
            api.start(cid)
            assert api.wait(cid, timeout=10)["StatusCode"] == 0
            mounts = api.inspect_container(cid)["Mounts"]
            assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [
                ("volume", volume, "/data")
            ]
            logs = api.logs(cid)
            api.remove_container(cid)
        assert logs == b"stored\n"
    finally:
        client.volumes.get(volume).remove()


def test_images_list(client: docker.DockerClient, daemon: Any) -> None:
    images = client.images.list()
    tags = [tag for image in images for tag in image.tags]
    assert daemon.image in tags
    image = client.images.get(daemon.image)
    assert image.id.startswith("sha256:")
    assert daemon.image in image.tags


def test_volumes(client: docker.DockerClient) -> None:
    name = unique("v")
    volume = client.volumes.create(name, labels={"purpose": "test"})
    try:
        assert volume.name == name
        assert name in [v.name for v in client.volumes.list()]
        fetched = client.volumes.get(name)
        assert fetched.attrs["Driver"] == "local"
        assert fetched.attrs["Labels"] == {"purpose": "test"}
        assert [v.name for v in client.volumes.list(filters={"label": "purpose=test"})] == [name]
    finally:
        client.volumes.get(name).remove()
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get(name)


def test_events_decode_until(client: docker.DockerClient, daemon: Any) -> None:
    name = unique("ev")
    since = time.time() - 0.1
    client.containers.run(daemon.image, "true", name=name, remove=True)
    until = time.time() + 0.2
    events = list(
        client.events(
            decode=True, since=since, until=until, filters={"container": name, "type": "container"}
        )
    )
    actions = [e["Action"] for e in events]
    assert [a for a in actions if a in ("create", "start", "die", "destroy")] == [
        "create",
        "start",
        "die",
        "destroy",
    ]
    for event in events:
        assert event["Type"] == "container"
        assert event["Actor"]["Attributes"]["name"] == name
        assert isinstance(event["timeNano"], int)
