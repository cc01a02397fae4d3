"""The sans-I/O auth flow, registry settings and progress rendering (no network)."""

from __future__ import annotations

import base64

import pytest

from dockling import errors
from dockling.distribution.auth import AuthFlow, Credentials, parse_challenges
from dockling.distribution.progress import Progress, human_size, progress_text, to_message
from dockling.distribution.resolver import _kind, parse_platform
from dockling.distribution.settings import RegistrySettings, endpoints, is_insecure, proxy_for

BEARER = (
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
    'scope="repository:library/busybox:pull"'
)


def test_parse_challenges() -> None:
    (ch,) = parse_challenges(BEARER)
    assert ch.scheme == "bearer"
    assert ch.params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/busybox:pull",
    }
    assert parse_challenges('Basic realm="x"')[0].params == {"realm": "x"}


def test_bearer_anonymous_then_refused() -> None:
    flow = AuthFlow()
    scope = "repository:library/busybox:pull"
    assert flow.authorization(scope) is None
    req = flow.challenge(BEARER, scope)
    assert req is not None and "Authorization" not in req.headers
    assert req.url == (
        "https://auth.docker.io/token?service=registry.docker.io"
        "&scope=repository%3Alibrary%2Fbusybox%3Apull"
    )
    flow.accept_token(req, 200, b'{"token": "abc"}')
    assert flow.authorization(scope) == "Bearer abc"
    with pytest.raises(errors.Unauthorized):
        flow.challenge(BEARER, scope)


def test_bearer_with_credentials_and_bad_answer() -> None:
    flow = AuthFlow(Credentials("u", "p"))
    req = flow.challenge(BEARER, "repository:a:pull,push")
    assert req is not None
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    assert "account=u" in req.url
    with pytest.raises(errors.Unauthorized, match="incorrect username or password"):
        flow.accept_token(req, 401, b"")
    with pytest.raises(errors.Unauthorized):
        flow.accept_token(req, 200, b"{}")
    flow.accept_token(req, 200, b'{"access_token": "t"}')
    assert flow.authorization("repository:a:pull,push") == "Bearer t"


def test_basic() -> None:
    with pytest.raises(errors.Unauthorized, match="no basic auth credentials"):
        AuthFlow().challenge('Basic realm="r"', "")
    flow = AuthFlow(Credentials("u", "p"))
    assert flow.challenge('Basic realm="r"', "") is None
    assert flow.authorization("anything") == "Basic dTpw"
    with pytest.raises(errors.Unauthorized, match="incorrect"):
        flow.challenge('Basic realm="r"', "")


def test_endpoints_and_insecure() -> None:
    hub = endpoints(RegistrySettings(mirrors=("http://127.0.0.1:5000",)), "docker.io")
    assert [e.base_url for e in hub] == ["http://127.0.0.1:5000", "https://registry-1.docker.io"]
    assert hub[0].mirror and not hub[0].verify_tls and hub[1].verify_tls
    assert [e.base_url for e in endpoints(RegistrySettings(), "localhost:5000")] == [
        "https://localhost:5000",
        "http://localhost:5000",
    ]
    assert is_insecure(RegistrySettings(insecure_registries=("10.0.0.0/8",)), "10.1.2.3:5000")
    assert not is_insecure(RegistrySettings(), "example.com")
    assert endpoints(RegistrySettings(), "docker.io", for_push=False)[-1].netloc == (
        "registry-1.docker.io"
    )


def test_proxy_for_honours_no_proxy() -> None:
    s = RegistrySettings(https_proxy="http://proxy:3128", no_proxy="internal.example,127.0.0.0/8")
    (hub,) = endpoints(s, "docker.io")
    assert proxy_for(s, hub) == "http://proxy:3128"
    (internal,) = endpoints(s, "reg.internal.example")
    assert proxy_for(s, internal) is None


def test_progress_rendering() -> None:
    assert human_size(2293760) == "2.294MB"
    assert progress_text(0, 100).startswith("[>")
    assert progress_text(100, 100).startswith("[" + "=" * 50 + ">]")
    msg = to_message(Progress("Downloading", "0123456789ab", 5, 10))
    assert msg["progressDetail"] == {"current": 5, "total": 10}
    assert msg["id"] == "0123456789ab"
    assert to_message(Progress("Pulling fs layer", "x")) == {
        "status": "Pulling fs layer",
        "progressDetail": {},
        "id": "x",
    }


def test_schema1_refused_and_platforms() -> None:
    with pytest.raises(errors.InvalidParameter, match="schema 1"):
        _kind({"schemaVersion": 1}, "")
    assert str(parse_platform("linux/arm/v7")) == "linux/arm/v7"
    with pytest.raises(errors.InvalidParameter):
        parse_platform("linux//")
