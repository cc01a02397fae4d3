"""The CLI's own context tar writer, read back with Python's tarfile (and GNU tar)."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

from dockling.cli.context_tar import ContextTar

LONG = "d" * 60 + "/" + "f" * 70  # a path over ustar's 100 bytes


def make_context(root: Path) -> list[str]:
    (root / "sub").mkdir()
    (root / "sub" / "a.txt").write_text("alpha\n")
    os.chmod(root / "sub" / "a.txt", 0o750)
    (root / "empty").write_bytes(b"")
    (root / "big").write_bytes(bytes(range(256)) * 40)  # not a multiple of 512
    (root / LONG).parent.mkdir()
    (root / LONG).write_text("long\n")
    (root / "naïve.txt").write_text("utf-8 name\n")
    os.symlink("sub/a.txt", root / "link")
    os.symlink("x" * 150, root / "long-link")
    os.link(root / "sub" / "a.txt", root / "hard")
    files = ["sub/a.txt", "empty", "big", LONG, "naïve.txt", "link", "long-link", "hard"]
    return ["sub", LONG.split("/")[0], *files]


def test_entries_read_back_as_written(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    root.mkdir()
    names = make_context(root)
    out = io.BytesIO()
    tar = ContextTar(out)
    for name in names:
        tar.add_path(str(root / name), name)
    tar.add_bytes(".dockling-build-secrets/token", b"s3cret")
    size = tar.close()
    data = out.getvalue()
    assert size == len(data) and size % 10240 == 0

    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = {m.name: m for m in archive.getmembers()}
        assert set(members) == {*names, ".dockling-build-secrets/token"}
        a = members["sub/a.txt"]
        assert a.isreg() and a.mode == 0o750 and (a.uid, a.gid, a.uname) == (0, 0, "")
        assert a.mtime == int(os.lstat(root / "sub/a.txt").st_mtime)
        assert members["sub"].isdir()
        for name in ("sub/a.txt", "empty", "big", LONG, "naïve.txt"):
            extracted = archive.extractfile(members[name])
            assert extracted is not None
            assert extracted.read() == (root / name).read_bytes(), name
        assert members["link"].issym() and members["link"].linkname == "sub/a.txt"
        assert members["long-link"].linkname == "x" * 150
        assert members["hard"].islnk() and members["hard"].linkname == "sub/a.txt"
        secret = archive.extractfile(members[".dockling-build-secrets/token"])
        assert secret is not None and secret.read() == b"s3cret"

    # GNU tar agrees (its own reader, PAX records included).
    listing = subprocess.run(
        ["tar", "-tvf", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()
    assert LONG in listing and "naïve.txt" in listing and "link to sub/a.txt" in listing


def test_sockets_and_fifos_are_left_out(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    out = io.BytesIO()
    tar = ContextTar(out)
    tar.add_path(str(tmp_path / "fifo"), "fifo")
    tar.close()
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as archive:
        assert archive.getmembers() == []
