"""Metadata instructions: how each changes the image config, and its history text.

Pure functions over the `config` object of an image config (Env, Cmd, Entrypoint, ...),
as Docker's classic builder applies them.  Instructions that change files (RUN, COPY,
ADD, WORKDIR's directory) are the builder's; their config part is here too.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from dockling.build import instructions as ins
from dockling.containers.signals import parse_signal
from dockling.errors import InvalidParameter

DEFAULT_SHELL = ["/bin/sh", "-c"]


def env_dict(config: dict[str, Any]) -> dict[str, str]:
    """The config's Env as an ordered mapping."""
    result: dict[str, str] = {}
    for item in config.get("Env") or []:
        key, _, value = str(item).partition("=")
        result[key] = value
    return result


def set_env(config: dict[str, Any], pairs: list[tuple[str, str]]) -> None:
    env = env_dict(config)
    for key, value in pairs:
        env[key] = value
    config["Env"] = [f"{k}={v}" for k, v in env.items()]


def shell_of(config: dict[str, Any]) -> list[str]:
    return list(config.get("Shell") or DEFAULT_SHELL)


def command_argv(command: ins.CommandLine, config: dict[str, Any]) -> list[str]:
    """A CMD/ENTRYPOINT/RUN's argv: exec form as is, shell form through the SHELL."""
    if command.prepend_shell:
        return [*shell_of(config), " ".join(command.args)]
    return list(command.args)


def _ports(specs: tuple[str, ...]) -> list[str]:
    result: list[str] = []
    for spec in specs:
        port, _, proto = spec.partition("/")
        proto = (proto or "tcp").lower()
        low, _, high = port.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise InvalidParameter(f"Invalid containerPort: {port}")
        result.extend(f"{number}/{proto}" for number in range(int(low), int(high or low) + 1))
    return result


def _health(health: ins.HealthConfig) -> dict[str, Any]:
    timings = {
        "Interval": health.interval,
        "Timeout": health.timeout,
        "StartPeriod": health.start_period,
        "StartInterval": health.start_interval,
        "Retries": health.retries,
    }
    return {"Test": list(health.test), **{k: v for k, v in timings.items() if v}}


def workdir_path(path: str, config: dict[str, Any]) -> str:
    """WORKDIR's absolute path: relative ones are relative to the previous WORKDIR."""
    if not path.startswith("/"):
        path = posixpath.join(config.get("WorkingDir") or "/", path)
    return posixpath.normpath(path)


def apply(instruction: ins.Instruction, config: dict[str, Any]) -> dict[str, Any]:
    """The config after the metadata instruction `instruction` (already expanded).

    Returns the `author` change for MAINTAINER under the key "__author__"."""
    config = json.loads(json.dumps(config))
    match instruction:
        case ins.Env():
            set_env(config, [(p.key, p.value) for p in instruction.pairs])
        case ins.Label():
            labels = dict(config.get("Labels") or {})
            labels.update((p.key, p.value) for p in instruction.pairs)
            config["Labels"] = labels
        case ins.Cmd():
            config["Cmd"] = command_argv(instruction.command, config)
        case ins.Entrypoint():
            config["Entrypoint"] = command_argv(instruction.command, config)
            # Docker: an ENTRYPOINT resets a CMD inherited from the base image.
            config["Cmd"] = None
        case ins.Expose():
            exposed = dict(config.get("ExposedPorts") or {})
            exposed.update((p, {}) for p in _ports(instruction.ports))
            config["ExposedPorts"] = exposed
        case ins.Volume():
            volumes = dict(config.get("Volumes") or {})
            for path in instruction.paths:
                if not path.strip():
                    raise InvalidParameter("VOLUME specified can not be an empty string")
                volumes[path] = {}
            config["Volumes"] = volumes
        case ins.User():
            config["User"] = instruction.user
        case ins.Workdir():
            config["WorkingDir"] = workdir_path(instruction.path, config)
        case ins.StopSignal():
            parse_signal(instruction.signal, default=0)  # "Invalid signal: X", as Docker
            config["StopSignal"] = instruction.signal
        case ins.Shell():
            config["Shell"] = list(instruction.shell)
        case ins.Healthcheck():
            config["Healthcheck"] = _health(instruction.health)
        case ins.OnBuild():
            config["OnBuild"] = [*(config.get("OnBuild") or []), instruction.expression]
        case ins.Maintainer() | ins.Arg():
            pass
        case _:
            raise InvalidParameter(f"not a metadata instruction: {type(instruction).__name__}")
    return {k: v for k, v in config.items() if v is not None}


def history_text(instruction: ins.Instruction) -> str:
    """`created_by` of a metadata step, as the classic builder writes it."""
    text = instruction.original.strip()
    keyword, _, rest = text.partition(" ")
    return f"/bin/sh -c #(nop)  {keyword.upper()} {rest.strip()}".rstrip()
