"""`dockling pull`, `push`, `login`, `logout`: registry commands with docker's progress
display (bars redrawn in place on a terminal, one line per status change otherwise) and
credentials in ~/.dockling/config.json, Docker's `auths` format, sent as X-Registry-Auth.
"""

from __future__ import annotations

import base64
import json
import os
import sys

from dockling.cli.context import CLIError, Context
from dockling.cli.flags import FlagSet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any, TextIO

DOCKER_HUB_KEY = "https://index.docker.io/v1/"


# -- credentials -------------------------------------------------------------------------


def config_path() -> str:
    """$DOCKLING_CONFIG/config.json, else ~/.dockling/config.json."""
    directory = os.environ.get("DOCKLING_CONFIG") or os.path.join(
        os.path.expanduser("~"), ".dockling"
    )
    return os.path.join(directory, "config.json")


def load_config() -> dict[str, Any]:
    try:
        with open(config_path()) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise CLIError(f"{config_path()}: invalid JSON: {exc}") from None
    return data if isinstance(data, dict) else {}


def save_config(data: dict[str, Any]) -> None:
    path = config_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent="\t")
        f.write("\n")
    os.replace(tmp, path)


def registry_of(name: str) -> str:
    """The registry key of an image name: its host[:port], or Docker Hub's key."""
    first, sep, _ = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return "https://index.docker.io/v1/" if first in ("docker.io", "index.docker.io") else first
    return DOCKER_HUB_KEY


def server_key(server: str) -> str:
    """Normalise a login SERVER argument the way docker keys config.json."""
    text = server.strip()
    if text in ("", "docker.io", "index.docker.io", "registry-1.docker.io", DOCKER_HUB_KEY):
        return DOCKER_HUB_KEY
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return text.rstrip("/")


def stored_credentials(key: str) -> tuple[str, str] | None:
    entry = (load_config().get("auths") or {}).get(key)
    if not isinstance(entry, dict) or not entry.get("auth"):
        return None
    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
    return user, password


def registry_auth_header(key: str) -> dict[str, str]:
    """X-Registry-Auth for `key` from the stored credentials (empty when none)."""
    creds = stored_credentials(key)
    if creds is None:
        return {}
    payload = {"username": creds[0], "password": creds[1], "serveraddress": key}
    encoded = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
    return {"X-Registry-Auth": encoded}


# -- progress ------------------------------------------------------------------------------


def _stream(
    ctx: Context, path: str, query: dict[str, Any], headers: dict[str, str]
) -> Iterator[Any]:
    from dockling.client.transport import iter_json

    transport = ctx.client.transport
    sock = transport.send("POST", path, query=query, extra_headers=headers)
    return iter_json(transport.receive(sock))


def _line_of(message: dict[str, Any], *, bars: bool) -> str:
    text = str(message.get("status", ""))
    if message.get("id"):
        text = f"{message['id']}: {text}"
    if bars and message.get("progress"):
        text = f"{text} {message['progress']}"
    return text


def display(messages: Iterable[Any], out: TextIO, *, tty: bool) -> dict[str, Any]:
    """Show docker's progress; raise CLIError on an in-stream error; return the aux object."""
    rows: dict[str, int] = {}  # id -> row index from the top of the block
    count = 0
    aux: dict[str, Any] = {}
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("error"):
            detail = message.get("errorDetail") or {}
            raise CLIError(str(detail.get("message") or message["error"]))
        if isinstance(message.get("aux"), dict):
            aux = message["aux"]
            continue
        ident = message.get("id")
        if not tty:
            if message.get("progressDetail", {}).get("current") is not None:
                continue  # bars only on terminals, as docker does
            out.write(_line_of(message, bars=False) + "\n")
            continue
        line = _line_of(message, bars=True)
        if ident and ident in rows:
            up = count - rows[ident]
            out.write(f"\x1b[{up}A\r\x1b[2K{line}\r\x1b[{up}B")
        else:
            if ident:
                rows[ident] = count
            out.write(line + "\n")
            count += 1
        out.flush()
    return aux


# -- commands ------------------------------------------------------------------------------


def _split(image: str) -> tuple[str, str]:
    """(name, tag-or-digest) of an image reference ("" when absent)."""
    if "@" in image:
        name, _, digest = image.partition("@")
        return name, digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1 :]
    return image, ""


def cmd_pull(ctx: Context, args: list[str], display_name: str) -> int:
    fs = FlagSet(
        display_name,
        "[OPTIONS] NAME[:TAG|@DIGEST]",
        "Download an image from a registry",
        min_args=1,
        exact_args=True,
    )
    fs.bool("all-tags", "a", "Download all tagged images in the repository")
    fs.value("platform", None, "Set platform if server is multi-platform capable")
    fs.bool("quiet", "q", "Suppress verbose output")
    values, (image,) = fs.parse(args)
    if values["all_tags"]:
        raise CLIError("--all-tags is not supported by dockling yet")
    name, tag = _split(image)
    if not tag:
        tag = "latest"
        if not values["quiet"]:
            sys.stdout.write("Using default tag: latest\n")
    query = {"fromImage": name, "tag": tag, "platform": values["platform"]}
    messages = _stream(ctx, "/images/create", query, registry_auth_header(registry_of(name)))
    if values["quiet"]:
        display(messages, open(os.devnull, "w"), tty=False)  # noqa: SIM115 - tiny, process-long
    else:
        display(messages, sys.stdout, tty=sys.stdout.isatty())
    sep = "@" if tag.startswith("sha256:") else ":"
    sys.stdout.write(_canonical(name) + sep + tag + "\n")
    return 0


def _canonical(name: str) -> str:
    if registry_of(name) != DOCKER_HUB_KEY:
        return name
    path = name.split("/", 1)[1] if name.startswith(("docker.io/", "index.docker.io/")) else name
    return f"docker.io/{path if '/' in path else 'library/' + path}"


def cmd_push(ctx: Context, args: list[str], display_name: str) -> int:
    fs = FlagSet(
        display_name,
        "[OPTIONS] NAME[:TAG]",
        "Upload an image to a registry",
        min_args=1,
        exact_args=True,
    )
    fs.bool("all-tags", "a", "Push all tags of an image to the repository")
    fs.bool("quiet", "q", "Suppress verbose output")
    values, (image,) = fs.parse(args)
    name, tag = _split(image)
    if not tag and not values["all_tags"]:
        tag = "latest"
        sys.stdout.write("Using default tag: latest\n")
    from dockling.client.transport import quote_ref

    query = {"tag": tag or None}
    messages = _stream(
        ctx, f"/images/{quote_ref(name)}/push", query, registry_auth_header(registry_of(name))
    )
    if values["quiet"]:
        display(messages, open(os.devnull, "w"), tty=False)  # noqa: SIM115 - tiny, process-long
        sys.stdout.write(image + "\n")
    else:
        display(messages, sys.stdout, tty=sys.stdout.isatty())
    return 0


def cmd_login(ctx: Context, args: list[str], display_name: str) -> int:
    fs = FlagSet(
        display_name,
        "[OPTIONS] [SERVER]",
        "Log in to a registry.\nIf no server is specified, the default is defined by the daemon.",
        max_args=1,
    )
    fs.value("username", "u", "Username")
    fs.value("password", "p", "Password")
    fs.bool("password-stdin", None, "Take the password from stdin")
    values, rest = fs.parse(args)
    key = server_key(rest[0] if rest else "")
    username = values["username"]
    password = values["password"]
    if values["password_stdin"]:
        if password:
            raise CLIError("--password and --password-stdin are mutually exclusive")
        if not username:
            raise CLIError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        sys.stderr.write(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n"
        )
    if not username:
        stored = stored_credentials(key)
        sys.stdout.write(f"Username{f' ({stored[0]})' if stored else ''}: ")
        sys.stdout.flush()
        username = sys.stdin.readline().strip() or (stored[0] if stored else "")
    if not password:
        import getpass

        password = getpass.getpass("Password: ")
    if not username or not password:
        raise CLIError("Error: Cannot perform an interactive login from a non TTY device")
    body = {"username": username, "password": password, "serveraddress": key}
    answer = ctx.client.transport.call("POST", "/auth", body=body) or {}
    data = load_config()
    auths = data.setdefault("auths", {})
    auths[key] = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    save_config(data)
    sys.stdout.write(f"{answer.get('Status') or 'Login Succeeded'}\n")
    return 0


def cmd_logout(ctx: Context, args: list[str], display_name: str) -> int:
    fs = FlagSet(
        display_name,
        "[SERVER]",
        "Log out from a registry.\n"
        "If no server is specified, the default is defined by the daemon.",
        max_args=1,
    )
    _values, rest = fs.parse(args)
    key = server_key(rest[0] if rest else "")
    data = load_config()
    auths = data.get("auths") or {}
    if key not in auths:
        sys.stdout.write(f"Not logged in to {key}\n")
        return 0
    sys.stdout.write(f"Removing login credentials for {key}\n")
    del auths[key]
    save_config(data)
    return 0
