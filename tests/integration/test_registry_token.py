"""The registry's token auth (Docker Hub's Bearer flow): raw HTTP, skopeo, and dockling
pull/push through a real docklingd; plus access rules with Basic auth, the bcrypt cache and
stale upload purging."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import bcrypt
import pytest

from dockling.registry.access import AccessRules
from dockling.registry.auth import PasswordChecker
from dockling.registry.tokens import Scope, TokenInvalid, TokenSigner
from tests.helpers.daemon import Daemon
from tests.helpers.registry_server import (
    Registry,
    make_oci_layout,
    start_dockling_registry,
    stop_registry,
)

USERS = {"alice": "alice-pw", "reader": "reader-pw", "admin": "admin-pw"}
RULES = """\
# USER     PREFIX   ACTIONS
alice      team/    pull,push
reader     team     pull
admin      *        *
anonymous  public/  pull
"""


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{USERS[user]}".encode()).decode()


def write_auth_files(directory: Path) -> tuple[Path, Path]:
    htpasswd = directory / "htpasswd"
    htpasswd.write_text(
        "".join(
            f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"
            for u, p in USERS.items()
        )
    )
    access = directory / "access"
    access.write_text(RULES)
    return htpasswd, access


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """`dockling registry serve --auth token --htpasswd F --access F` (its own /token)."""
    htpasswd, access = write_auth_files(tmp_path_factory.mktemp("auth"))
    reg = start_dockling_registry(
        extra_args=["--auth", "token", "--htpasswd", str(htpasswd), "--access", str(access)]
    )
    try:
        yield reg
    finally:
        stop_registry(reg)


def challenge_params(header: str) -> dict[str, str]:
    scheme, _, rest = header.partition(" ")
    assert scheme == "Bearer"
    out = {}
    for part in rest.split('",'):
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip('"')
    return out


def token(reg: Registry, scopes: list[str], user: str | None = None) -> str:
    query = "service=dockling-registry" + "".join(f"&scope={quote(s)}" for s in scopes)
    headers = {"Authorization": basic(user)} if user else {}
    r = reg.request("GET", f"/token?{query}", headers=headers)
    assert r.status == 200, r.body
    return str(r.json()["token"])


def claims(jwt: str) -> Any:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def bearer(jwt: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt}"}


def test_challenges_name_realm_service_and_scope(registry: Registry) -> None:
    r = registry.request("GET", "/v2/")
    assert r.status == 401 and r.error_codes == ["UNAUTHORIZED"]
    params = challenge_params(r.headers["www-authenticate"])
    assert params["realm"] == f"http://{registry.addr}/token"
    assert params["service"] == "dockling-registry"
    assert "scope" not in params
    r = registry.request("GET", "/v2/team/app/manifests/latest")
    assert challenge_params(r.headers["www-authenticate"])["scope"] == "repository:team/app:pull"
    r = registry.request("POST", "/v2/team/app/blobs/uploads/")
    params = challenge_params(r.headers["www-authenticate"])
    assert params["scope"] == "repository:team/app:pull,push"
    r = registry.request("DELETE", f"/v2/team/app/manifests/sha256:{'0' * 64}")
    assert challenge_params(r.headers["www-authenticate"])["scope"] == "repository:team/app:delete"


def test_token_endpoint_grants_what_the_rules_allow(registry: Registry) -> None:
    scope = "repository:team/app:pull,push"
    assert claims(token(registry, [scope], "alice"))["access"] == [
        {"type": "repository", "name": "team/app", "actions": ["pull", "push"]}
    ]
    reader = claims(token(registry, [scope], "reader"))
    assert reader["sub"] == "reader" and reader["aud"] == "dockling-registry"
    assert reader["access"][0]["actions"] == ["pull"]
    assert (
        claims(token(registry, ["repository:other/x:pull"], "alice"))["access"][0]["actions"] == []
    )
    anonymous = claims(token(registry, ["repository:public/x:pull,push"]))
    assert anonymous["sub"] == "" and anonymous["access"][0]["actions"] == ["pull"]
    wrong = registry.request(
        "GET",
        "/token?service=dockling-registry",
        headers={"Authorization": "Basic " + base64.b64encode(b"alice:nope").decode()},
    )
    assert wrong.status == 401 and wrong.error_codes == ["UNAUTHORIZED"]
    assert registry.request("GET", "/token?service=other").status == 400


def test_registry_enforces_the_token(registry: Registry) -> None:
    name = "team/enforced"
    writer = bearer(token(registry, [f"repository:{name}:pull,push"], "alice"))
    r = registry.request("POST", f"/v2/{name}/blobs/uploads/", headers=writer)
    assert r.status == 202, r.body
    registry.request("DELETE", r.headers["location"], headers=writer)
    # A pull-only user pushing: the token is valid but lacks push, so 403 DENIED.
    reader = bearer(token(registry, [f"repository:{name}:pull,push"], "reader"))
    r = registry.request("POST", f"/v2/{name}/blobs/uploads/", headers=reader)
    assert r.status == 403 and r.error_codes == ["DENIED"]
    r = registry.request("GET", f"/v2/{name}/tags/list", headers=reader)
    assert r.status == 404 and r.error_codes == ["NAME_UNKNOWN"]
    # A token for one repository is no use for another.
    r = registry.request("GET", "/v2/team/elsewhere/tags/list", headers=reader)
    assert r.status == 403
    # Deleting needs the delete action, which alice lacks.
    r = registry.request("DELETE", f"/v2/{name}/manifests/latest", headers=writer)
    assert r.status == 403 and r.error_codes == ["DENIED"]
    # Catalog: admin's `*` rule grants it, alice has none.
    admin = bearer(token(registry, ["registry:catalog:*"], "admin"))
    assert registry.request("GET", "/v2/_catalog", headers=admin).status == 200
    alice = bearer(token(registry, ["registry:catalog:*"], "alice"))
    assert registry.request("GET", "/v2/_catalog", headers=alice).status == 403


def test_bad_tokens_are_challenged_again(registry: Registry) -> None:
    jwt = token(registry, ["repository:team/x:pull"], "alice")
    head, _payload, sig = jwt.split(".")
    forged = claims(jwt)
    forged["access"][0]["actions"] = ["pull", "push"]
    body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    for bad in (f"{head}.{body}.{sig}", "not-a-jwt", jwt[:-4] + "AAAA"):
        r = registry.request("GET", "/v2/team/x/tags/list", headers=bearer(bad))
        assert r.status == 401 and r.error_codes == ["UNAUTHORIZED"]
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
    r = registry.request("GET", "/v2/team/x/tags/list", headers={"Authorization": basic("alice")})
    assert r.status == 401


def test_signer_rejects_expired_and_foreign_tokens() -> None:
    signer = TokenSigner(b"k" * 32, "svc")
    expired, _, _ = signer.issue("u", [], ttl=-120)
    with pytest.raises(TokenInvalid, match="expired"):
        signer.verify(expired)
    foreign, _, _ = TokenSigner(b"k" * 32, "other").issue("u", [])
    with pytest.raises(TokenInvalid, match="not 'svc'"):
        signer.verify(foreign)
    with pytest.raises(TokenInvalid, match="signature"):
        TokenSigner(b"x" * 32, "svc").verify(signer.issue("u", [])[0])
    assert Scope.parse("repository:a/b:pull,push") == Scope("repository", "a/b", ("pull", "push"))


def test_access_rules_formats() -> None:
    text = AccessRules.parse(RULES)
    as_json = AccessRules.parse(
        json.dumps(
            {
                "rules": [
                    {"user": "alice", "prefix": "team/", "actions": ["pull", "push"]},
                    {"user": "reader", "prefix": "team", "actions": "pull"},
                    {"user": "admin", "prefix": "*", "actions": ["*"]},
                    {"user": "anonymous", "prefix": "public/", "actions": ["pull"]},
                ]
            }
        )
    )
    for rules in (text, as_json):
        assert rules.actions("alice", "team/a/b") == {"pull", "push"}
        assert rules.actions("alice", "teamx/a") == frozenset()
        assert rules.actions("reader", "team") == {"pull"}
        assert rules.actions(None, "public/x") == {"pull"}
        assert rules.actions("alice", "public/x") == {"pull"}  # anonymous covers everyone
        assert rules.actions("admin", "any/thing") == {"pull", "push", "delete"}
        assert rules.may_list_catalog("admin") and not rules.may_list_catalog("alice")


def test_bcrypt_runs_once_off_the_loop() -> None:
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=8)).decode()
    checker = PasswordChecker({"u": hashed})

    async def run() -> list[bool]:
        # While five checks of new credentials wait on one bcrypt run, the loop stays free.
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        results = await asyncio.gather(*(checker.check("u", "pw") for _ in range(5)))
        task.cancel()
        assert ticks > 1
        results.append(await checker.check("u", "pw"))
        results.append(await checker.check("u", "wrong"))
        return results

    assert asyncio.run(run()) == [True] * 6 + [False]
    assert checker.bcrypt_calls == 2  # the shared first check, and the wrong password


def test_skopeo_with_token_auth(registry: Registry, tmp_path: Path) -> None:
    src = tmp_path / "src"
    digest = make_oci_layout(src)
    dest = f"docker://{registry.addr}/team/busybox:1"

    def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["skopeo", *args], capture_output=True, text=True, timeout=120, check=False
        )

    denied = skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds=reader:reader-pw", f"oci:{src}", dest
    )
    assert denied.returncode != 0 and "denied" in denied.stderr.lower(), denied.stderr
    ok = skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds=alice:alice-pw", f"oci:{src}", dest
    )
    assert ok.returncode == 0, ok.stderr
    inspected = skopeo("inspect", "--raw", "--tls-verify=false", "--creds=reader:reader-pw", dest)
    assert inspected.returncode == 0, inspected.stderr
    out = tmp_path / "out"
    back = skopeo(
        "copy", "--src-tls-verify=false", "--src-creds=reader:reader-pw", dest, f"oci:{out}:x"
    )
    assert back.returncode == 0, back.stderr
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    anonymous = skopeo("inspect", "--raw", "--tls-verify=false", dest)
    assert anonymous.returncode != 0


@pytest.mark.root
@pytest.mark.runc
def test_dockling_push_pull_through_docklingd(
    daemon: Daemon, registry: Registry, tmp_path: Path
) -> None:
    def cli(home: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**daemon.env, "DOCKLING_CONFIG": str(home)}
        return subprocess.run(
            [str(Path(daemon.env["PATH"].split(":")[0]) / "dockling"), *args],
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )

    alice, reader = tmp_path / "alice", tmp_path / "reader"
    for home, user in ((alice, "alice"), (reader, "reader")):
        login = cli(home, "login", "-u", user, "--password-stdin", registry.addr, input=USERS[user])
        assert login.returncode == 0, login.stderr
    wrong = cli(
        tmp_path / "w", "login", "-u", "alice", "--password-stdin", registry.addr, input="x"
    )
    assert wrong.returncode == 1
    target = f"{registry.addr}/team/pushed:1"
    assert cli(alice, "tag", "busybox", target).returncode == 0
    try:
        denied = cli(reader, "push", target)
        assert denied.returncode == 1 and "denied" in denied.stderr.lower(), denied.stderr
        pushed = cli(alice, "push", target)
        assert pushed.returncode == 0, pushed.stderr
        digest = pushed.stdout.strip().splitlines()[-1].split("digest: ")[1].split()[0]
        assert cli(alice, "rmi", target).returncode == 0
        pulled = cli(reader, "pull", target)
        assert pulled.returncode == 0, pulled.stderr
        assert f"Digest: {digest}" in pulled.stdout
        anonymous = cli(tmp_path / "anon", "pull", f"{registry.addr}/team/pushed:1")
        assert anonymous.returncode == 1
    finally:
        cli(alice, "rmi", target)


def test_basic_auth_with_access_rules(tmp_path: Path) -> None:
    htpasswd, access = write_auth_files(tmp_path)
    reg = start_dockling_registry(extra_args=["--htpasswd", str(htpasswd), "--access", str(access)])
    try:
        r = reg.request(
            "POST", "/v2/team/a/blobs/uploads/", headers={"Authorization": basic("reader")}
        )
        assert r.status == 403 and r.error_codes == ["DENIED"]
        r = reg.request(
            "POST", "/v2/team/a/blobs/uploads/", headers={"Authorization": basic("alice")}
        )
        assert r.status == 202
        r = reg.request("GET", "/v2/team/a/tags/list")
        assert r.status == 401 and r.headers["www-authenticate"].startswith("Basic ")
    finally:
        stop_registry(reg)


def test_stale_upload_sessions_are_purged() -> None:
    reg = start_dockling_registry(extra_args=["--upload-max-age", "1"])
    try:
        stale = reg.request("POST", "/v2/purge/me/blobs/uploads/")
        assert stale.status == 202
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = reg.request("GET", stale.headers["location"])
            if r.status == 404:
                break
            time.sleep(0.25)
        assert r.status == 404 and r.error_codes == ["BLOB_UPLOAD_UNKNOWN"]
        ingest = reg.root / "data" / "content" / "ingest"
        assert not any(ingest.iterdir())
    finally:
        stop_registry(reg)
