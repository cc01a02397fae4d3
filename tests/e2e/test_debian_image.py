"""A real distribution userland (Debian 12 minbase from debootstrap) under dockling's defaults."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.daemon import CACHE

pytestmark = [pytest.mark.runc, pytest.mark.slow]

IMAGE = "debian:bookworm"


@pytest.fixture(scope="module")
def debian(daemon: Any) -> Iterator[str]:
    tarball = CACHE / "debian-rootfs.tar"
    assert tarball.exists(), "run scripts/build-test-images --debian (scripts/test does)"
    started = time.monotonic()
    result = daemon.cli("import", "--change", 'CMD ["bash"]', str(tarball), IMAGE, timeout=300)
    assert result.returncode == 0, result.stderr
    print(f"imported {tarball.stat().st_size >> 20} MB in {time.monotonic() - started:.1f} s")
    yield IMAGE
    daemon.cli("rmi", IMAGE)


def test_debian_userland_runs_under_default_seccomp(daemon: Any, debian: str) -> None:
    script = (
        "cat /etc/debian_version; id -un; "
        "dpkg-query -W -f='${Package}\\n' bash coreutils; "
        "apt-get -s install --no-download bash >/dev/null && echo apt-ok; "
        "ls /proc/kcore 2>/dev/null; echo done"
    )
    result = daemon.cli("run", "--rm", debian, "bash", "-c", script, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("12.")
    assert lines[1] == "root"
    assert "bash" in lines and "coreutils" in lines
    assert "apt-ok" in lines
    assert lines[-1] == "done"


def test_user_names_resolve_from_the_image(daemon: Any, debian: str) -> None:
    result = daemon.cli("run", "--rm", "-u", "www-data", debian, "id")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "uid=33(www-data) gid=33(www-data) groups=33(www-data)"
    result = daemon.cli("run", "--rm", "-u", "nobody:www-data", debian, "id", "-gn")
    assert result.stdout.strip() == "www-data"
    result = daemon.cli("run", "--rm", "-u", "nosuchuser", debian, "id")
    assert result.returncode != 0
    assert "unable to find user nosuchuser" in result.stderr


def test_image_cmd_default(daemon: Any, debian: str) -> None:
    result = daemon.cli("run", "--rm", "-i", debian, input=b"echo $0 $BASH_VERSION\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("bash 5.")
