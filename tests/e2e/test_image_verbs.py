"""history, save/load, commit, export, diff, cp, image prune, system df: dockling, the real
docker CLI and skopeo against a real docklingd (fixture `daemon`)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.runc

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"


def run(daemon: Any, tool: str, *args: str, input: bytes | None = None) -> str:
    """Run `tool` (dockling, docker) against the daemon; insist on exit 0; return stdout."""
    binary = {"docker": DOCKER}.get(tool, tool)
    out = subprocess.run(
        [binary, *args], capture_output=True, env=daemon.env, input=input, timeout=120
    )
    assert out.returncode == 0, f"{tool} {' '.join(args)}: {out.returncode}\n{out.stderr!r}"
    return out.stdout.decode()


def dl(daemon: Any, *args: str, input: bytes | None = None) -> str:
    return run(daemon, "dockling", *args, input=input)


def fails(daemon: Any, *args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        ["dockling", *args], capture_output=True, text=True, env=daemon.env, timeout=60
    )
    assert out.returncode != 0, out.stdout
    return out


@pytest.fixture
def names(daemon: Any) -> Iterator[Callable[[str], str]]:
    """Unique names; containers and images so named are removed at the end."""
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        made.append(name)
        return name

    yield make
    for name in made:
        daemon.request("DELETE", f"/containers/{name}?force=1&v=1")
    for name in made:
        daemon.request("DELETE", f"/images/{name}?force=1")


def image_id(daemon: Any, ref: str) -> str:
    status, body = daemon.request("GET", f"/images/{ref}/json")
    assert status == 200, body
    return str(body["Id"])


CHANGES = (
    "echo hi > /etc/marker && ln /etc/marker /etc/hard && rm /bin/ls && rm -rf /usr/sbin && "
    "touch /suid && chmod 4755 /suid && ln -s /etc/marker /link && "
    "mkdir -p /new/sub && echo deep > /new/sub/f && chown 5:6 /new/sub/f && "
    "rm -rf /usr && mkdir /usr && echo only > /usr/only"
)


# ---- commit, diff, history ------------------------------------------------------------


def test_commit_round_trip_runs_with_the_same_files(daemon: Any, names: Any) -> None:
    ctr, repo = names("c"), names("committed")
    dl(daemon, "run", "--name", ctr, daemon.image, "sh", "-c", CHANGES)
    out = dl(
        daemon, "commit", "-m", "a message", "-a", "me <me@x>", "-c", "ENV FOO=bar",
        "-c", 'CMD ["cat", "/etc/marker"]', ctr, f"{repo}:v1",
    )  # fmt: skip
    new_id = out.strip()
    assert new_id.startswith("sha256:") and new_id == image_id(daemon, f"{repo}:v1")
    check = (
        "cat /etc/marker; stat -c '%h %a %u:%g' /etc/hard /suid /new/sub/f; "
        "readlink /link; ls /bin/ls /usr/sbin 2>&1; ls /usr; echo FOO=$FOO"
    )
    got = dl(daemon, "run", "--rm", f"{repo}:v1", "sh", "-c", check)
    lines = got.splitlines()
    assert lines[0] == "hi"
    assert lines[1:4] == ["2 644 0:0", "1 4755 0:0", "1 644 5:6"]
    assert lines[4] == "/etc/marker"
    assert "ls: /bin/ls: No such file or directory" in got
    assert "ls: /usr/sbin: No such file or directory" in got
    # /usr was replaced wholesale (an opaque dir): nothing of busybox's /usr remains.
    assert lines[-2] == "only"
    assert lines[-1] == "FOO=bar"
    assert dl(daemon, "run", "--rm", f"{repo}:v1").strip() == "hi"
    _, info = daemon.request("GET", f"/images/{repo}:v1/json")
    _, base = daemon.request("GET", f"/images/{daemon.image}/json")
    assert info["RootFS"]["Layers"][:-1] == base["RootFS"]["Layers"]
    assert len(info["RootFS"]["Layers"]) == len(base["RootFS"]["Layers"]) + 1
    assert info["Author"] == "me <me@x>" and info["Comment"] == "a message"
    assert "FOO=bar" in info["Config"]["Env"]

    history = dl(daemon, "history", f"{repo}:v1").splitlines()
    assert history[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert history[1].startswith(new_id[7:19]) and history[1].endswith("a message")
    assert "sh -c echo hi > /etc/marker && ln /etc/marke…" in history[1]
    assert history[2].startswith("<missing>")
    assert len(history) == 3
    assert dl(daemon, "history", "-q", "--no-trunc", f"{repo}:v1").split() == [
        new_id,
        "<missing>",
    ]
    fmt = dl(daemon, "history", "--format", "{{.Comment}}|{{.Size}}", f"{repo}:v1")
    assert fmt.splitlines()[0].startswith("a message|")


def test_commit_of_a_running_container_pauses_it(daemon: Any, names: Any) -> None:
    ctr, repo = names("c"), names("live")
    dl(daemon, "run", "-d", "--name", ctr, daemon.image, "sh", "-c", "echo x > /x; sleep 60")
    dl(daemon, "commit", ctr, repo)
    _, state = daemon.request("GET", f"/containers/{ctr}/json")
    assert state["State"]["Status"] == "running"
    _status, events = daemon.request(
        "GET",
        f"/events?since=0&until={int(time.time()) + 1}"
        f"&filters=%7B%22container%22%3A%5B%22{ctr}%22%5D%7D",
    )
    text = events.decode() if isinstance(events, bytes) else json.dumps(events)
    assert '"pause"' in text and '"unpause"' in text and '"commit"' in text
    assert dl(daemon, "run", "--rm", repo, "cat", "/x").strip() == "x"
    # Nothing changed: an empty layer is recorded in the history only.
    quiet = names("quiet")
    dl(daemon, "run", "--name", quiet, daemon.image, "true")
    dl(daemon, "commit", quiet, quiet)
    _, info = daemon.request("GET", f"/images/{quiet}/json")
    _, base = daemon.request("GET", f"/images/{daemon.image}/json")
    assert info["RootFS"]["Layers"] == base["RootFS"]["Layers"]


def test_diff_lists_changes_like_docker(daemon: Any, names: Any) -> None:
    ctr = names("d")
    dl(
        daemon, "run", "--name", ctr, daemon.image, "sh", "-c",
        "echo m > /etc/marker && rm /bin/ls && mkdir /x && touch /x/y",
    )  # fmt: skip
    expected = ["C /bin", "D /bin/ls", "C /etc", "A /etc/marker", "A /x", "A /x/y"]
    assert dl(daemon, "diff", ctr).splitlines() == expected
    assert run(daemon, "docker", "diff", ctr).splitlines() == expected
    _, body = daemon.request("GET", f"/containers/{ctr}/changes")
    assert {"Path": "/bin/ls", "Kind": 2} in body and {"Path": "/x", "Kind": 1} in body


def test_docker_cli_commit_and_history(daemon: Any, names: Any) -> None:
    ctr, repo = names("dc"), names("dcommit")
    run(daemon, "docker", "run", "--name", ctr, daemon.image, "sh", "-c", "echo d > /d")
    out = run(daemon, "docker", "commit", "-m", "by docker", "-c", "ENV A=1", ctr, repo)
    assert out.strip() == image_id(daemon, repo)
    assert run(daemon, "docker", "run", "--rm", repo, "sh", "-c", "cat /d; echo $A").split() == [
        "d",
        "1",
    ]
    history = run(daemon, "docker", "history", repo).splitlines()
    assert history[0].split()[:2] == ["IMAGE", "CREATED"]
    assert "by docker" in history[1] and history[2].startswith("<missing>")
    fmt = run(daemon, "docker", "history", "--format", "{{.CreatedBy}}", "--no-trunc", repo)
    assert fmt.splitlines()[0] == "sh -c echo d > /d"


# ---- save / load --------------------------------------------------------------------


def test_save_load_round_trip_keeps_ids(daemon: Any, names: Any, tmp_path: Path) -> None:
    ctr, repo = names("s"), names("saved")
    dl(daemon, "run", "--name", ctr, daemon.image, "sh", "-c", "echo s > /s")
    dl(daemon, "commit", ctr, f"{repo}:1")
    wanted = image_id(daemon, f"{repo}:1")
    archive = tmp_path / "a.tar"
    dl(daemon, "save", "-o", str(archive), f"{repo}:1")
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert manifest[0]["RepoTags"] == [f"{repo}:1"]
        assert manifest[0]["Config"] == f"blobs/sha256/{wanted[7:]}"
        assert {"index.json", "oci-layout", "repositories"} <= set(tar.getnames())
    dl(daemon, "rm", ctr)
    dl(daemon, "rmi", f"{repo}:1")
    out = dl(daemon, "load", "-i", str(archive))
    assert out == f"Loaded image: {repo}:1\n"
    assert image_id(daemon, f"{repo}:1") == wanted
    assert dl(daemon, "run", "--rm", f"{repo}:1", "cat", "/s").strip() == "s"
    # Loading again changes nothing; the OCI layout alone loads too.
    assert dl(daemon, "load", input=archive.read_bytes()) == f"Loaded image: {repo}:1\n"
    oci = tmp_path / "o.tar"
    dl(daemon, "save", "--format", "oci", "-o", str(oci), f"{repo}:1")
    with tarfile.open(oci) as tar:
        assert "manifest.json" not in tar.getnames()
    dl(daemon, "rmi", f"{repo}:1")
    assert dl(daemon, "load", "-i", str(oci)) == f"Loaded image: {repo}:1\n"
    assert image_id(daemon, f"{repo}:1") == wanted


def test_load_refuses_a_layer_that_does_not_match(daemon: Any, names: Any, tmp_path: Path) -> None:
    ctr, repo = names("bad"), names("forged")
    dl(daemon, "run", "--name", ctr, daemon.image, "sh", "-c", "echo f > /f")
    dl(daemon, "commit", ctr, repo)
    archive = tmp_path / "a.tar"
    dl(daemon, "save", "-o", str(archive), repo)
    dl(daemon, "rm", ctr)
    dl(daemon, "rmi", repo)
    bad = tmp_path / "bad.tar"
    with tarfile.open(archive) as src, tarfile.open(bad, "w") as dst:
        manifest = json.load(src.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer = manifest[0]["Layers"][-1]
        for member in src.getmembers():
            data = src.extractfile(member) if member.isfile() else None
            if member.name == layer:
                raw = io.BytesIO()
                with tarfile.open(fileobj=raw, mode="w") as forged:
                    forged.addfile(tarfile.TarInfo("evil"))
                member.size = len(raw.getvalue())
                data = io.BytesIO(raw.getvalue())
            dst.addfile(member, data)
    before = dl(daemon, "images", "-q", "-a")
    out = fails(daemon, "load", "-i", str(bad))
    assert "DiffID" in out.stderr
    assert dl(daemon, "images", "-q", "-a") == before


def test_skopeo_reads_what_dockling_saves_and_the_reverse(
    daemon: Any, names: Any, tmp_path: Path
) -> None:
    repo = names("skopeo")
    dl(daemon, "tag", daemon.image, f"{repo}:src")
    saved = tmp_path / "saved.tar"
    dl(daemon, "save", "-o", str(saved), f"{repo}:src")
    _, info = daemon.request("GET", f"/images/{repo}:src/json")
    inspected = json.loads(
        subprocess.run(
            [SKOPEO, "inspect", f"docker-archive:{saved}"], capture_output=True, check=True
        ).stdout
    )
    assert inspected["Layers"] == info["RootFS"]["Layers"]
    config = subprocess.run(
        [SKOPEO, "inspect", "--raw", "--config", f"docker-archive:{saved}"],
        capture_output=True,
        check=True,
    ).stdout
    assert "sha256:" + __import__("hashlib").sha256(config).hexdigest() == info["Id"]
    # skopeo writes a docker-archive and an oci-archive under new names: both load.
    copied = tmp_path / "copied.tar"
    subprocess.run(
        [SKOPEO, "copy", f"docker-archive:{saved}", f"docker-archive:{copied}:{repo}:copied"],
        capture_output=True,
        check=True,
    )
    assert dl(daemon, "load", "-i", str(copied)) == f"Loaded image: {repo}:copied\n"
    assert image_id(daemon, f"{repo}:copied") == info["Id"]
    oci = tmp_path / "copied-oci.tar"
    subprocess.run(
        [SKOPEO, "copy", f"docker-archive:{saved}", f"oci-archive:{oci}:{repo}:oci"],
        capture_output=True,
        check=True,
    )
    assert dl(daemon, "load", "-i", str(oci)) == f"Loaded image: {repo}:oci\n"
    # Converting to OCI, skopeo rewrites the config (new image id); the layers stay.
    _, loaded = daemon.request("GET", f"/images/{repo}:oci/json")
    assert loaded["RootFS"]["Layers"] == info["RootFS"]["Layers"]
    assert dl(daemon, "run", "--rm", f"{repo}:oci", "echo", "ok") == "ok\n"
    for tag in ("src", "copied", "oci"):
        dl(daemon, "rmi", f"{repo}:{tag}")


def test_docker_cli_save_pipe_load(daemon: Any, names: Any) -> None:
    repo = names("dsave")
    run(daemon, "docker", "tag", daemon.image, f"{repo}:x")
    wanted = image_id(daemon, f"{repo}:x")
    data = subprocess.run(
        [DOCKER, "save", f"{repo}:x"], capture_output=True, env=daemon.env, check=True
    ).stdout
    run(daemon, "docker", "rmi", f"{repo}:x")
    out = run(daemon, "docker", "load", input=data)
    assert f"Loaded image: {repo}:x" in out
    assert image_id(daemon, f"{repo}:x") == wanted


# ---- export and cp ------------------------------------------------------------------


def test_export_running_and_stopped(daemon: Any, names: Any, tmp_path: Path) -> None:
    ctr = names("e")
    dl(daemon, "run", "--name", ctr, daemon.image, "sh", "-c", "echo e > /e && rm /bin/ls")
    out = tmp_path / "e.tar"
    dl(daemon, "export", "-o", str(out), ctr)
    with tarfile.open(out) as tar:
        members = set(tar.getnames())
        assert tar.extractfile("e").read() == b"e\n"  # type: ignore[union-attr]
    assert {"bin/sh", "etc/passwd", "e"} <= members
    assert "bin/ls" not in members and not any(".wh." in m for m in members)
    live = names("e")
    dl(daemon, "run", "-d", "--name", live, daemon.image, "sh", "-c", "echo r > /r; sleep 60")
    data = subprocess.run(
        ["dockling", "export", live], capture_output=True, env=daemon.env, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert "r" in tar.getnames()


def test_cp_both_ways(daemon: Any, names: Any, tmp_path: Path) -> None:
    ctr = names("cp")
    dl(
        daemon, "run", "--name", ctr, daemon.image, "sh", "-c",
        "mkdir -p /data/sub && echo a > /data/a && echo b > /data/sub/b && ln -s /data /dl",
    )  # fmt: skip
    # Container to host: a file, a directory, the directory's contents (dir/.).
    dl(daemon, "cp", f"{ctr}:/data/a", str(tmp_path / "a.txt"))
    assert (tmp_path / "a.txt").read_text() == "a\n"
    dl(daemon, "cp", f"{ctr}:/data", str(tmp_path))
    assert (tmp_path / "data" / "sub" / "b").read_text() == "b\n"
    (tmp_path / "contents").mkdir()
    dl(daemon, "cp", f"{ctr}:/data/.", str(tmp_path / "contents"))
    assert sorted(os.listdir(tmp_path / "contents")) == ["a", "sub"]
    dl(daemon, "cp", f"{ctr}:/data", str(tmp_path / "renamed"))
    assert (tmp_path / "renamed" / "a").exists()
    dl(daemon, "cp", "-L", f"{ctr}:/dl", str(tmp_path / "followed"))
    assert (tmp_path / "followed" / "sub" / "b").exists()
    # Host to container, into a stopped container.
    src = tmp_path / "up"
    (src / "deep").mkdir(parents=True)
    (src / "deep" / "f").write_text("up\n")
    dl(daemon, "cp", str(src), f"{ctr}:/data/")
    dl(daemon, "cp", str(tmp_path / "a.txt"), f"{ctr}:/newname")
    got = dl(daemon, "start", "-a", ctr)
    assert got == ""  # the command only writes files
    data = subprocess.run(
        ["dockling", "cp", f"{ctr}:/data/up/deep/f", "-"],
        capture_output=True,
        env=daemon.env,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.getmember("f")
        assert tar.extractfile(member).read() == b"up\n"  # type: ignore[union-attr]
        assert (member.uid, member.gid) == (0, 0)
    # The stat header, as docker cp reads it.
    status, _ = daemon.request("HEAD", f"/containers/{ctr}/archive?path=/newname")
    assert status == 200
    missing = fails(daemon, "cp", f"{ctr}:/nope", str(tmp_path / "x"))
    assert "Could not find the file /nope in container" in missing.stderr


def test_cp_into_a_running_container_and_with_docker(
    daemon: Any, names: Any, tmp_path: Path
) -> None:
    ctr = names("cpl")
    dl(daemon, "run", "-d", "--name", ctr, daemon.image, "sleep", "60")
    (tmp_path / "in.txt").write_text("in\n")
    dl(daemon, "cp", str(tmp_path / "in.txt"), f"{ctr}:/tmp/")
    assert dl(daemon, "exec", ctr, "cat", "/tmp/in.txt") == "in\n"
    run(daemon, "docker", "cp", str(tmp_path / "in.txt"), f"{ctr}:/tmp/by-docker")
    assert dl(daemon, "exec", ctr, "cat", "/tmp/by-docker") == "in\n"
    run(daemon, "docker", "cp", f"{ctr}:/etc/passwd", str(tmp_path / "passwd"))
    assert (tmp_path / "passwd").read_text().startswith("root:")
    run(daemon, "docker", "cp", f"{ctr}:/tmp/.", str(tmp_path / "tmpdir"))
    assert sorted(os.listdir(tmp_path / "tmpdir")) == ["by-docker", "in.txt"]


def test_cp_cannot_escape_the_rootfs(daemon: Any, names: Any, tmp_path: Path) -> None:
    ctr = names("esc")
    marker = f"escape-{uuid.uuid4().hex[:8]}"
    dl(
        daemon, "run", "--name", ctr, daemon.image, "sh", "-c",
        "test -d /box || { ln -s / /up && ln -s ../../../../../../tmp /rel && mkdir /box; }",
    )  # fmt: skip
    (tmp_path / marker).write_text("x\n")
    # Absolute and relative symlinks resolve inside the container's root.
    dl(daemon, "cp", str(tmp_path / marker), f"{ctr}:/up/tmp/")
    dl(daemon, "cp", str(tmp_path / marker), f"{ctr}:/rel/{marker}-2")
    assert not Path("/tmp", marker).exists() and not Path("/tmp", f"{marker}-2").exists()
    listing = dl(daemon, "start", "-a", ctr)
    del listing
    out = subprocess.run(
        ["dockling", "cp", f"{ctr}:/tmp/.", "-"], capture_output=True, env=daemon.env, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        assert {f"./{marker}", f"./{marker}-2"} <= set(tar.getnames())
    # A crafted archive: a symlink member, then a file through it.
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        link = tarfile.TarInfo("l")
        link.type = tarfile.SYMTYPE
        link.linkname = "/tmp"
        tar.addfile(link)
        evil = tarfile.TarInfo(f"l/{marker}-3")
        evil.size = 2
        tar.addfile(evil, io.BytesIO(b"x\n"))
    status, body = daemon.request("PUT", f"/containers/{ctr}/archive?path=/box", raw=raw.getvalue())
    assert status == 400, body
    assert not Path("/tmp", f"{marker}-3").exists()
    dotdot = io.BytesIO()
    with tarfile.open(fileobj=dotdot, mode="w") as tar:
        info = tarfile.TarInfo(f"../../../../../tmp/{marker}-4")
        tar.addfile(info)
    status, body = daemon.request(
        "PUT", f"/containers/{ctr}/archive?path=/box", raw=dotdot.getvalue()
    )
    assert status == 400, body
    assert not Path("/tmp", f"{marker}-4").exists()


# ---- images listing, prune, system df -----------------------------------------------


def test_images_filters_prune_and_system_df(daemon: Any, names: Any) -> None:
    first, second = names("first"), names("second")
    ctr = names("df")
    dl(daemon, "run", "--name", ctr, daemon.image, "sh", "-c", "echo 1 > /one")
    dl(daemon, "commit", "-c", "LABEL tier=one", ctr, first)
    dl(daemon, "run", "--name", second, first, "sh", "-c", "sleep 1.1; echo 2 > /two")
    dl(daemon, "commit", "-c", "LABEL tier=two", second, second)
    listed = dl(daemon, "images", "--filter", f"since={first}", "--format", "{{.Repository}}")
    assert listed.split() == [second]
    before = dl(daemon, "images", "--filter", f"before={second}", "--format", "{{.Repository}}")
    assert first in before.split() and second not in before.split()
    labelled = dl(daemon, "images", "-q", "--no-trunc", "--filter", "label=tier=two")
    assert labelled.split() == [image_id(daemon, second)]
    digests = dl(daemon, "images", "--digests", second).splitlines()[0].split()
    assert "DIGEST" in digests
    # A dangling image (its tag moved away) goes with `image prune -f`.
    dangling_user = names("dang")
    dl(daemon, "run", "--name", dangling_user, second, "true")
    dangling_id = image_id(daemon, second)
    dl(daemon, "tag", first, second)
    assert dangling_id[7:19] in dl(daemon, "images", "-q", "--filter", "dangling=true")
    # Only this test's containers: other tests' fixtures share the daemon.
    dl(daemon, "rm", "-f", ctr, second, dangling_user)
    out = dl(daemon, "image", "prune", "-f")
    assert f"deleted: {dangling_id}" in out and "Total reclaimed space:" in out
    # The label filter keeps images without the label.
    out = dl(daemon, "image", "prune", "-a", "-f", "--filter", "label=tier=nomatch")
    assert first not in out
    df = dl(daemon, "system", "df").splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert [line.split()[0] for line in df[1:]] == ["Images", "Containers", "Local", "Build"]
    status, body = daemon.request("GET", "/system/df")
    assert status == 200 and body["LayersSize"] > 1_000_000
    assert run(daemon, "docker", "system", "df").splitlines()[0].split()[0] == "TYPE"
