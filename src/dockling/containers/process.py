"""The process a container runs: image defaults merged with the request, as Docker does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from dockling import errors
from dockling.containers import health as health_checks
from dockling.containers.model import Process
from dockling.containers.spec import ContainerSpec, ImageDefaults


def with_exposed_ports(spec: ContainerSpec, config: Mapping[str, Any]) -> ContainerSpec:
    """Docker's ExposedPorts: the image's, the request's and every published port."""
    inner = config.get("config") or {}
    keys = set(spec.exposed_ports)
    for key in inner.get("ExposedPorts") or {}:
        keys.add(key if "/" in key else f"{key}/tcp")
    for entry in spec.port_bindings:
        keys.add(entry.rsplit(":", 2)[2])
    return replace(spec, exposed_ports=tuple(sorted(keys)))


def image_defaults(config: Mapping[str, Any]) -> ImageDefaults:
    inner = config.get("config") or {}
    cmd = inner.get("Cmd")
    entrypoint = inner.get("Entrypoint")
    return ImageDefaults(
        env=tuple(inner.get("Env") or ()),
        cmd=tuple(cmd) if cmd else None,
        entrypoint=tuple(entrypoint) if entrypoint else None,
        working_dir=inner.get("WorkingDir") or "",
        user=inner.get("User") or "",
        volumes=tuple(sorted((inner.get("Volumes") or {}).keys())),
        stop_signal=inner.get("StopSignal") or "",
        labels=dict(inner.get("Labels") or {}),
        healthcheck=health_checks.healthcheck_from_docker(inner.get("Healthcheck")),
    )


def merge_env(base: tuple[str, ...], override: tuple[str, ...]) -> list[str]:
    """`base` with `override` applied in order: `KEY=value` sets, a bare `KEY` unsets (as
    containerd does for Docker: `-e KEY` with KEY not set where the CLI runs)."""
    merged: dict[str, str] = {}
    for entry in base:
        merged[entry.split("=", 1)[0]] = entry
    for entry in override:
        key, sep, _ = entry.partition("=")
        if sep:
            merged[key] = entry
        else:
            merged.pop(key, None)
    return list(merged.values())


def merge_process(spec: ContainerSpec, image: ImageDefaults) -> Process:
    """Docker's rules: a new entrypoint drops the image's Cmd; Cmd replaces the image's."""
    if spec.entrypoint is not None:
        # `--entrypoint ""` arrives as [""]: no entrypoint at all (the image's is dropped).
        entrypoint = [] if list(spec.entrypoint) == [""] else list(spec.entrypoint)
        cmd = list(spec.cmd or ())
    else:
        entrypoint = list(image.entrypoint or ())
        cmd = list(spec.cmd if spec.cmd is not None else (image.cmd or ()))
    args = entrypoint + cmd
    if not args or not args[0]:
        raise errors.InvalidParameter("No command specified")
    return Process(
        path=args[0],
        args=args[1:],
        env=merge_env(image.env, spec.env),
        cwd=spec.working_dir or image.working_dir or "/",
        user=spec.user or image.user,
    )
