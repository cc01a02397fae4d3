"""Shared fixtures: one real docklingd per test worker, and the leak check at its end."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.helpers.daemon import (
    Daemon,
    build_prerequisites,
    import_busybox,
    leaks,
    remove_all_containers,
    remove_all_networks,
    remove_daemon_network,
    start_daemon,
    stop_daemon,
)


@pytest.fixture(scope="session")
def daemon() -> Iterator[Daemon]:
    build_prerequisites()
    d = start_daemon()
    try:
        import_busybox(d)
        yield d
    finally:
        ids = remove_all_containers(d) if d.process.poll() is None else []
        if d.process.poll() is None:
            remove_all_networks(d)
        stop_daemon(d)
        leaked = leaks(d, ids)
        remove_daemon_network(d)
        log = d.log_path.read_text()[-4000:] if d.log_path.exists() else ""
        if not leaked:
            shutil.rmtree(d.root, ignore_errors=True)
        assert not leaked, f"leaked after the session: {leaked}\n{log}"
