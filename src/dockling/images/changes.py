"""Dockerfile-style `--change` instructions applied to an image's runtime config.

Used by `docker import --change` and `docker commit --change`; the config is the OCI
image config's "config" object (Env, Cmd, Entrypoint, WorkingDir, User, Volumes,
ExposedPorts, Labels, StopSignal, OnBuild), with unset keys absent.
"""

from __future__ import annotations

import json
import posixpath
import shlex
import signal
from collections.abc import Sequence
from typing import Any

from dockling import errors

VALID = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER",
         "VOLUME", "WORKDIR")  # fmt: skip


def apply_changes(changes: Sequence[str], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return a copy of `base` with each change line applied in order.

    Raises InvalidParameter naming the bad instruction, like Docker
    ("run is not a valid change command").
    """
    config: dict[str, Any] = json.loads(json.dumps(base or {}))
    cmd_set = False
    for change in changes:
        for line in change.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            word, _, rest = line.partition(" ")
            instruction = word.upper()
            args = rest.strip()
            if instruction not in VALID:
                raise errors.InvalidParameter(f"{word.lower()} is not a valid change command")
            if instruction == "CMD":
                config["Cmd"] = _command(args)
                cmd_set = True
            elif instruction == "ENTRYPOINT":
                config["Entrypoint"] = _command(args)
                # As in a Dockerfile: a new entrypoint drops an inherited CMD.
                if not cmd_set:
                    config.pop("Cmd", None)
            elif instruction == "ENV":
                env: list[str] = list(config.get("Env") or [])
                for key, value in _pairs("ENV", args):
                    env = [e for e in env if e.partition("=")[0] != key]
                    env.append(f"{key}={value}")
                config["Env"] = env
            elif instruction == "LABEL":
                labels = dict(config.get("Labels") or {})
                labels.update(_pairs("LABEL", args))
                config["Labels"] = labels
            elif instruction == "EXPOSE":
                ports = dict(config.get("ExposedPorts") or {})
                for spec in args.split():
                    for port in _ports(spec):
                        ports[port] = {}
                config["ExposedPorts"] = ports
            elif instruction == "VOLUME":
                volumes = dict(config.get("Volumes") or {})
                for path in _list_or_words(args):
                    if not path:
                        raise errors.InvalidParameter("VOLUME specified can not be an empty string")
                    volumes[path] = {}
                config["Volumes"] = volumes
            elif instruction == "USER":
                _require(instruction, args)
                config["User"] = args
            elif instruction == "WORKDIR":
                _require(instruction, args)
                current = config.get("WorkingDir") or "/"
                config["WorkingDir"] = posixpath.normpath(posixpath.join(current, args))
            elif instruction == "STOPSIGNAL":
                _require(instruction, args)
                config["StopSignal"] = _signal(args)
            elif instruction == "ONBUILD":
                _require(instruction, args)
                config["OnBuild"] = [*(config.get("OnBuild") or []), args]
    return config


def _require(instruction: str, args: str) -> None:
    if not args:
        raise errors.InvalidParameter(f"{instruction} requires at least one argument")


def _json_list(args: str) -> list[str] | None:
    if not args.startswith("["):
        return None
    try:
        value = json.loads(args)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _command(args: str) -> list[str]:
    """Exec form (a JSON array) as is; shell form runs through /bin/sh -c."""
    exec_form = _json_list(args)
    if exec_form is not None:
        return exec_form
    return ["/bin/sh", "-c", args]


def _list_or_words(args: str) -> list[str]:
    as_list = _json_list(args)
    return as_list if as_list is not None else args.split()


def _pairs(instruction: str, args: str) -> list[tuple[str, str]]:
    _require(instruction, args)
    try:
        words = shlex.split(args, posix=True)
    except ValueError as e:
        raise errors.InvalidParameter(f"{instruction}: {e}") from None
    if "=" not in words[0]:
        # Legacy form: `ENV KEY some value`.
        key, _, value = args.partition(" ")
        if not value.strip() and instruction == "ENV":
            raise errors.InvalidParameter(f"{instruction} must have two arguments")
        return [(key, value.strip())]
    pairs: list[tuple[str, str]] = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise errors.InvalidParameter(
                f"Syntax error - can't find = in {word!r}. Must be of the form: name=value"
            )
        if not key:
            raise errors.InvalidParameter(f"{instruction} names can not be blank")
        pairs.append((key, value))
    return pairs


def _ports(spec: str) -> list[str]:
    port, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise errors.InvalidParameter(f"invalid proto: {proto}")
    low, _, high = port.partition("-")
    try:
        start = int(low)
        end = int(high) if high else start
    except ValueError:
        raise errors.InvalidParameter(f"Invalid containerPort: {port}") from None
    if not (0 < start <= end <= 65535):
        raise errors.InvalidParameter(f"Invalid containerPort: {port}")
    return [f"{p}/{proto}" for p in range(start, end + 1)]


def _signal(value: str) -> str:
    if value.isdigit():
        if int(value) <= 0:
            raise errors.InvalidParameter(f"Invalid signal: {value}")
        return value
    name = value.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    if not hasattr(signal.Signals, name) and not name.startswith("SIGRTM"):
        raise errors.InvalidParameter(f"Invalid signal: {value}")
    return value
