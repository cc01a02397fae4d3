"""`dockling build`: tar the context (honouring .dockerignore), stream it to POST /build and
render the daemon's JSON messages like docker's classic builder; `--print-ast` parses
without a daemon.
"""

from __future__ import annotations

import base64
import json
import os
import sys

from dockling.build.dockerignore import (
    PatternMatcher,
    keep_build_files,
    read_patterns,
    walk_context,
)
from dockling.cli.commands.build_progress import choose_mode, render
from dockling.cli.commands.distribution import load_config, stored_credentials
from dockling.cli.context import CLIError, Context
from dockling.cli.context_tar import ContextTar
from dockling.cli.flags import FlagSet
from dockling.errors import DocklingError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CLI start a few ms: annotations only
    from typing import IO, Any, BinaryIO


def _read_dockerfile(context: str | None, file: str | None) -> tuple[str, str]:
    """(text, name for messages) of the Dockerfile `-f` and the context designate."""
    if file == "-" or (file is None and context == "-"):
        return sys.stdin.buffer.read().decode("utf-8", "surrogateescape"), "Dockerfile"
    path = os.path.join(context or ".", "Dockerfile") if file is None else file
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise CLIError(
            f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
            f"lstat {os.path.abspath(path)}: no such file or directory"
        ) from None
    except OSError as exc:
        raise CLIError(f"unable to read Dockerfile {path}: {exc.strerror}") from None
    return data.decode("utf-8", "surrogateescape"), os.path.basename(path)


def _print_ast(context: str | None, file: str | None) -> int:
    # Imported here: a build sends the Dockerfile as is, so it need not pay for the parser.
    from dockling.build.ast import render
    from dockling.build.parser import parse_dockerfile
    from dockling.build.syntax import parse_nodes

    text, name = _read_dockerfile(context, file)
    try:
        # The typed parse validates (unknown instructions, flags, argument counts).
        parsed = parse_dockerfile(text, name)
        tree = parse_nodes(text, name)
    except DocklingError as exc:
        raise CLIError(exc.message) from None
    for warning in parsed.warnings:
        sys.stderr.write(f"[WARNING]: {warning}\n")
    sys.stdout.write(render(tree))
    return 0


def _check(context: str | None, file: str | None, build_args: dict[str, str | None]) -> int:
    """`--check`: run the build checks on the Dockerfile, build nothing; exit 1 when any
    rule is violated (as `docker build --check`)."""
    from dockling.build import checks
    from dockling.build.parser import parse_dockerfile
    from dockling.build.syntax import parse_nodes

    text, name = _read_dockerfile(context, file)
    try:
        parsed = parse_dockerfile(text, name)
        config = checks.parse_config(build_args.get(checks.CHECK_ARG) or parsed.check)
        violations = checks.run_checks(parse_nodes(text, name), config)
    except DocklingError as exc:
        raise CLIError(exc.message) from None
    sys.stdout.write(checks.summary(violations))
    count = len(violations)
    if not count:
        sys.stdout.write("Check complete, no warnings found.\n")
        return 0
    have = "warning has" if count == 1 else "warnings have"
    sys.stdout.write(f"Check complete, {count} {have} been found!\n")
    return 1


# Secrets travel in the context tar under this reserved dir; docklingd takes it out of the
# context before anything reads it (`build/run_mounts.py`), so it is never copied or hashed.
SECRETS_DIR = ".dockling-build-secrets"


def parse_secret(spec: str, environ: dict[str, str]) -> tuple[str, bytes]:
    """`--secret id=mysecret,src=/path` (or `env=VAR`); docker's defaults: a lone id
    reads the environment variable of that name."""
    fields: dict[str, str] = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            raise CLIError(f"invalid secret {spec!r}: expected key=value fields")
        fields[key.strip().lower()] = value
    secret_id = fields.pop("id", "")
    source = fields.pop("src", "") or fields.pop("source", "")
    env = fields.pop("env", "")
    fields.pop("type", None)
    if fields or not secret_id or "/" in secret_id or secret_id in (".", ".."):
        raise CLIError(f"invalid secret {spec!r}")
    if source:
        try:
            with open(source, "rb") as handle:
                return secret_id, handle.read()
        except OSError as exc:
            raise CLIError(f"failed to read secret {secret_id}: {exc.strerror}") from None
    name = env or secret_id
    if name not in environ:
        raise CLIError(f"secret {secret_id}: no src and no environment variable {name}")
    return secret_id, environ[name].encode()


def _tar_context(
    root: str, file: str | None, out: IO[bytes], secrets: dict[str, bytes] | None = None
) -> str:
    """Write the context dir `root` as a tar to `out`; return the Dockerfile's name in it."""
    dockerfile = "Dockerfile"
    extra: bytes | None = None
    if file is not None:
        absolute = os.path.abspath(file)
        relative = os.path.relpath(absolute, os.path.abspath(root))
        if relative.startswith(".."):
            # A Dockerfile outside the context travels under a name of its own, as docker's.
            with open(absolute, "rb") as handle:
                extra = handle.read()
            dockerfile = f".dockerfile.{os.urandom(10).hex()}"
        else:
            dockerfile = relative.replace(os.sep, "/")
    patterns: list[str] = []
    ignore = os.path.join(root, ".dockerignore")
    if os.path.isfile(ignore):
        with open(ignore, encoding="utf-8", errors="surrogateescape") as handle:
            patterns = read_patterns(handle.read())
    matcher = PatternMatcher(keep_build_files(patterns, dockerfile))
    tar = ContextTar(out)
    for path in walk_context(root, matcher):
        tar.add_path(os.path.join(root, path), path)
    if extra is not None:
        tar.add_bytes(dockerfile, extra)
    for secret_id, data in (secrets or {}).items():
        tar.add_bytes(f"{SECRETS_DIR}/{secret_id}", data)
    tar.close()
    return dockerfile


def _stdin_context(out: IO[bytes], secrets: dict[str, bytes] | None = None) -> None:
    """`build -`: stdin is a tar context, or a Dockerfile sent alone."""
    data = sys.stdin.buffer.read()
    if data[257:262] == b"ustar" or data[:2] == b"\x1f\x8b" or data[:3] == b"BZh":
        if secrets:
            raise CLIError("dockling build: --secret needs a directory context or a Dockerfile")
        out.write(data)
        return
    tar = ContextTar(out)
    tar.add_bytes("Dockerfile", data)
    for secret_id, secret in (secrets or {}).items():
        tar.add_bytes(f"{SECRETS_DIR}/{secret_id}", secret)
    tar.close()


def _spool_file() -> BinaryIO:
    """An anonymous file for the context tar: O_TMPFILE, or tempfile where it is missing
    (tempfile is imported only then: it costs a CLI start a few ms)."""
    directory = os.environ.get("TMPDIR") or "/tmp"
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except OSError:
        import tempfile

        return tempfile.TemporaryFile()
    return open(fd, "w+b")


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{n}B"
        n = n / 1000  # type: ignore[assignment]
    return f"{n}B"


def _key_values(items: list[str] | None, environ: dict[str, str]) -> dict[str, str | None]:
    result: dict[str, str | None] = {}
    for item in items or []:
        key, has_value, value = item.partition("=")
        result[key] = value if has_value else environ.get(key)
    return result


def registry_config_header() -> dict[str, str]:
    """X-Registry-Config: every stored credential, so the daemon can pull FROM images
    (docker's classic builder sends all of them: the CLI cannot know which are needed)."""
    auths: dict[str, Any] = {}
    for key in load_config().get("auths") or {}:
        creds = stored_credentials(key)
        if creds is not None:
            auths[key] = {"username": creds[0], "password": creds[1], "serveraddress": key}
    if not auths:
        return {}
    return {"X-Registry-Config": base64.urlsafe_b64encode(json.dumps(auths).encode()).decode()}


def cmd_build(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display, "[OPTIONS] PATH | URL | -", "Build an image from a Dockerfile", max_args=1
    )
    fs.list("tag", "t", 'Name and optionally a tag in the "name:tag" format')
    fs.value("file", "f", 'Name of the Dockerfile (default: "PATH/Dockerfile")')
    fs.list("build-arg", None, "Set build-time variables")
    fs.value("target", None, "Set the target build stage to build")
    fs.bool("no-cache", None, "Do not use cache when building the image")
    fs.bool("pull", None, "Always attempt to pull a newer version of the image")
    fs.list("label", None, "Set metadata for an image")
    fs.bool("quiet", "q", "Suppress the build output and print image ID on success")
    fs.value("iidfile", None, "Write the image ID to the file")
    fs.value("platform", None, "Set platform if server is multi-platform capable")
    fs.value("network", None, "Set the networking mode for the RUN instructions during build")
    fs.value("progress", None, "Set type of progress output (auto, plain, tty)")
    fs.list("secret", None, 'Secret to expose to RUN --mount=type=secret ("id=x,src=FILE")')
    fs.bool("print-ast", None, "Print the parsed Dockerfile and exit (no daemon needed)")
    fs.bool("check", None, "Run the build checks on the Dockerfile and exit (no build)")
    values, rest = fs.parse(args)
    context = rest[0] if rest else None
    if values["print_ast"] or values["check"]:
        if context is None and values["file"] is None:
            raise fs.args_error(f'"dockling {display}" requires exactly 1 argument.')
        if values["check"]:
            return _check(context, values["file"], _key_values(values["build_arg"], {}))
        return _print_ast(context, values["file"])
    if context is None:
        raise fs.args_error(f'"dockling {display}" requires exactly 1 argument.')
    mode = choose_mode(values["progress"], sys.stdout.isatty())
    remote = context if context.startswith(("http://", "https://")) else None
    if remote is None and "://" in context:
        raise CLIError(f"unable to prepare context: unsupported URL context {context!r}")
    environ = dict(os.environ)
    build_args = _key_values(values["build_arg"], environ)
    if "SOURCE_DATE_EPOCH" in environ and "SOURCE_DATE_EPOCH" not in build_args:
        build_args["SOURCE_DATE_EPOCH"] = environ["SOURCE_DATE_EPOCH"]
    labels = {k: v or "" for k, v in _key_values(values["label"], {}).items()}
    quiet = values["quiet"]
    secrets = dict(parse_secret(spec, environ) for spec in values["secret"])
    with _spool_file() as body:
        if remote is not None:
            # The daemon downloads the context (POST /build?remote=URL, no body).
            if secrets:
                raise CLIError("dockling build: --secret needs a directory context")
            dockerfile = values["file"] or "Dockerfile"
        elif context == "-":
            _stdin_context(body, secrets)
            dockerfile = values["file"] or "Dockerfile"
        else:
            if not os.path.isdir(context):
                raise CLIError(f"unable to prepare context: path {context!r} not found")
            if values["file"] is None and not os.path.exists(os.path.join(context, "Dockerfile")):
                _read_dockerfile(context, None)  # docker's message for a missing Dockerfile
            dockerfile = _tar_context(context, values["file"], body, secrets)
        size = body.tell()
        body.seek(0)
        if not quiet and remote is None:
            sys.stdout.write(f"Sending build context to Docker daemon  {_size(size)}\n")
        query: dict[str, Any] = {
            "t": values["tag"] or None,
            "dockerfile": dockerfile,
            "buildargs": json.dumps(build_args) if build_args else None,
            "target": values["target"],
            "nocache": True if values["no_cache"] else None,
            "pull": True if values["pull"] else None,
            "labels": json.dumps(labels) if labels else None,
            "q": True if quiet else None,
            "platform": values["platform"],
            "networkmode": values["network"],
            "remote": remote,
        }
        from dockling.client.transport import iter_json

        transport = ctx.client.transport
        sock = transport.send(
            "POST",
            "/build",
            query=query,
            data=None if remote is not None else body,
            extra_headers=registry_config_header(),
        )
        image_id = render(iter_json(transport.receive(sock)), sys.stdout, mode=mode, quiet=quiet)
    if values["iidfile"]:
        with open(values["iidfile"], "w") as handle:
            handle.write(image_id)
    if quiet:
        sys.stdout.write(image_id + "\n")
    return 0


def cmd_builder_prune(ctx: Context, args: list[str], display: str) -> int:
    """`dockling builder prune [-f] [--all]`: forget the build cache (POST /build/prune)."""
    from dockling.cli.commands.lifecycle import confirm_prune, write_reclaimed

    fs = FlagSet(display, "[OPTIONS]", "Remove build cache", max_args=0)
    fs.bool("all", "a", "Remove all unused build cache, not just dangling ones")
    fs.bool("force", "f", "Do not prompt for confirmation")
    values, _ = fs.parse(args)
    if not confirm_prune(
        "WARNING! This will remove all dangling build cache.", force=values["force"]
    ):
        return 0
    write_reclaimed(prune_build_cache(ctx, all=bool(values["all"])))
    return 0


def prune_build_cache(ctx: Context, *, all: bool) -> dict[str, Any]:
    """POST /build/prune: the dangling cache, or with `all` every unused entry."""
    query: dict[str, Any] = {"all": True if all else None}
    return ctx.client.transport.call("POST", "/build/prune", query=query) or {}
