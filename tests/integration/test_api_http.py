"""The Engine API's HTTP surface against a real docklingd: versions, errors, headers."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from tests.helpers.daemon import UnixHTTPConnection


def raw(daemon: Any, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = UnixHTTPConnection(daemon.socket_path, timeout=10)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_ping_get_and_head(daemon: Any) -> None:
    status, headers, body = raw(daemon, "GET", "/_ping")
    assert (status, body) == (200, b"OK")
    assert headers["api-version"] == "1.45"
    assert headers["ostype"] == "linux"
    status, headers, body = raw(daemon, "HEAD", "/_ping")
    assert (status, body) == (200, b"")
    assert headers["api-version"] == "1.45"


def test_version_engine_details(daemon: Any) -> None:
    status, data = daemon.request("GET", "/v1.45/version")
    assert status == 200
    assert data["ApiVersion"] == "1.45"
    assert data["MinAPIVersion"] == "1.24"
    assert data["Os"] == "linux"
    engine = next(c for c in data["Components"] if c["Name"] == "Engine")
    details = engine["Details"]
    # The docker CLI prints these from the component, not from the top level.
    for key in ("ApiVersion", "MinAPIVersion", "Os", "Arch", "GoVersion", "KernelVersion"):
        assert details[key] == data[key], key
    assert details["Experimental"] == "false"


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (
            "1.12",
            "client version 1.12 is too old. Minimum supported API version is 1.24, "
            "please upgrade your client to a newer version",
        ),
        ("1.99", "client version 1.99 is too new. Maximum supported API version is 1.45"),
    ],
)
def test_api_version_out_of_range_is_400(daemon: Any, version: str, message: str) -> None:
    status, body = daemon.request("GET", f"/v{version}/version")
    assert status == 400
    assert body == {"message": message}


@pytest.mark.parametrize("version", ["1.24", "1.41", "1.45"])
def test_supported_api_versions(daemon: Any, version: str) -> None:
    status, _ = daemon.request("GET", f"/v{version}/info")
    assert status == 200


def test_unknown_route_is_404_json(daemon: Any) -> None:
    status, body = daemon.request("GET", "/v1.45/no/such/route")
    assert status == 404
    assert body == {"message": "page not found"}


def test_bad_json_body_is_400(daemon: Any) -> None:
    status, body = daemon.request("POST", "/v1.45/containers/create", raw=b"{not json")
    assert status == 400
    assert body["message"].startswith("invalid JSON body")


def test_bad_filters_is_400(daemon: Any) -> None:
    status, body = daemon.request("GET", "/v1.45/containers/json?filters=bad")
    assert status == 400
    assert "invalid filter" in body["message"]


def test_keep_alive_serves_several_requests(daemon: Any) -> None:
    conn = UnixHTTPConnection(daemon.socket_path, timeout=10)
    try:
        for path in ("/_ping", "/v1.45/version", "/v1.45/containers/json", "/_ping"):
            conn.request("GET", path)
            resp = conn.getresponse()
            assert resp.status == 200
            resp.read()
    finally:
        conn.close()


def test_malformed_request_line_closes_the_connection(daemon: Any) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(daemon.socket_path)
        sock.sendall(b"NONSENSE\r\n\r\n")
        assert sock.recv(1024) == b""
    # The daemon is still there.
    assert daemon.request("GET", "/_ping")[0] == 200


def test_json_error_shape_is_a_message(daemon: Any) -> None:
    status, body = daemon.request("GET", "/v1.45/containers/no-such-thing/json")
    assert status == 404
    assert body == {"message": "No such container: no-such-thing"}
    status, body = daemon.request("GET", "/v1.45/images/no-such-image/json")
    assert status == 404
    assert json.dumps(body).startswith('{"message": "No such image: no-such-image')
