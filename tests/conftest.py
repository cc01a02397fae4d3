"""Shared fixtures: a real docklingd per test worker (`daemon`), daemons of a test's own
(`own_daemon`, `bare_daemon` without the busybox image), each with the leak check at its end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.daemon import Daemon, running_daemon


@pytest.fixture(scope="session")
def daemon() -> Iterator[Daemon]:
    with running_daemon() as d:
        yield d


@pytest.fixture
def own_daemon() -> Iterator[Daemon]:
    """A daemon the test may kill and restart."""
    with running_daemon() as d:
        yield d


@pytest.fixture
def bare_daemon() -> Iterator[Daemon]:
    """Like `own_daemon`, with an empty image store."""
    with running_daemon(with_busybox=False) as d:
        yield d
