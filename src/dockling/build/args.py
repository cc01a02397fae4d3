"""ARG scoping and `--build-arg`, as Docker does it.

* ARGs before the first FROM ("meta args") are usable only in FROM lines; a stage sees
  one only after re-declaring it (`ARG NAME` without a value takes the meta value).
* Inside a stage an ARG is visible from its declaration to the end of that stage; its
  value is the `--build-arg` if given, else its default.  ENV of the same name wins
  over an ARG when expanding.
* `--build-arg` sets only declared ARGs; the others are reported as unused, except the
  predefined proxy ARGs, which RUN sees without a declaration and which are never
  written into the image or its history.
* The platform ARGs (TARGETPLATFORM, BUILDARCH, ...) are set automatically: in the
  global scope for FROM, and in a stage once declared with `ARG NAME`.
"""

from __future__ import annotations

import platform as host_platform
from collections.abc import Mapping
from dataclasses import dataclass

from dockling.build import instructions as ins
from dockling.build.expand import ShellLex

PROXY_ARGS = frozenset(
    name
    for base in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
    for name in (base, base.lower())
)

_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class Platform:
    """An OCI platform: os/architecture[/variant]."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`linux/amd64`, `linux/arm64/v8`, `linux` (architecture of this host)."""
        parts = text.lower().split("/")
        if len(parts) == 1:
            return cls(parts[0], host().architecture)
        return cls(parts[0], parts[1], parts[2] if len(parts) > 2 else "")


def host() -> Platform:
    """The platform of this machine (builds run natively)."""
    machine = host_platform.machine().lower()
    return Platform("linux", _ARCHES.get(machine, machine))


def platform_args(build: Platform, target: Platform) -> dict[str, str]:
    """The automatic platform ARGs for a build on `build` producing `target`."""
    return {
        "BUILDPLATFORM": str(build),
        "BUILDOS": build.os,
        "BUILDARCH": build.architecture,
        "BUILDVARIANT": build.variant,
        "TARGETPLATFORM": str(target),
        "TARGETOS": target.os,
        "TARGETARCH": target.architecture,
        "TARGETVARIANT": target.variant,
    }


class BuildArgs:
    """The `--build-arg` values of one build and what the Dockerfile declared of them.

    `given` maps names to values; a None value (`--build-arg NAME` with NAME unset in
    the client's environment) counts as not given.
    """

    def __init__(
        self,
        given: Mapping[str, str | None],
        *,
        escape: str = "\\",
        build_platform: Platform | None = None,
        target_platform: Platform | None = None,
    ) -> None:
        self.given = {k: v for k, v in given.items() if v is not None}
        self.declared: set[str] = set()
        self.lex = ShellLex(escape)
        build = build_platform or host()
        self.platform = platform_args(build, target_platform or build)
        self.meta: dict[str, str] = {}
        self.meta_declared: dict[str, str | None] = {}

    def declare_meta(self, arg: ins.Arg) -> None:
        """Record one ARG instruction from before the first FROM."""
        for decl in arg.args:
            self.declared.add(decl.name)
            env = {**self.platform, **self.meta}
            default = None if decl.default is None else self.lex.process_word(decl.default, env)
            self.meta_declared[decl.name] = default
            value = self.given.get(decl.name, default)
            if value is not None:
                self.meta[decl.name] = value
            else:
                self.meta.pop(decl.name, None)

    def from_env(self) -> dict[str, str]:
        """What FROM lines expand with: the platform ARGs and the meta ARGs."""
        return {**self.platform, **self.meta}

    def stage(self) -> StageArgs:
        """A fresh scope for one stage."""
        return StageArgs(self)

    def unused(self) -> list[str]:
        """`--build-arg` names that no ARG declared (proxy ARGs excepted), sorted."""
        return sorted(
            name
            for name in self.given
            if name not in self.declared and name not in PROXY_ARGS and name not in self.platform
        )

    def proxy_env(self) -> dict[str, str]:
        """The proxy ARGs given: RUN sees them, the image and history do not."""
        return {k: v for k, v in self.given.items() if k in PROXY_ARGS}


class StageArgs:
    """The ARGs in scope in one stage, in declaration order."""

    def __init__(self, build: BuildArgs) -> None:
        self.build = build
        self.values: dict[str, str] = {}

    def declare(self, arg: ins.Arg, config_env: Mapping[str, str]) -> None:
        """Apply one ARG instruction; defaults expand with what is in scope so far."""
        for decl in arg.args:
            self.build.declared.add(decl.name)
            default: str | None
            if decl.default is not None:
                env = self.expansion_env(config_env)
                default = self.build.lex.process_word(decl.default, env)
            else:
                # `ARG NAME` takes the meta ARG's value, or the automatic platform value.
                default = self.build.meta.get(decl.name, self.build.platform.get(decl.name))
            value = self.build.given.get(decl.name, default)
            if value is None:
                self.values.pop(decl.name, None)
            else:
                self.values[decl.name] = value

    def expansion_env(self, config_env: Mapping[str, str]) -> dict[str, str]:
        """Variables for expanding an instruction: ARGs in scope, overridden by ENV."""
        return {**self.values, **config_env}

    def run_env(self, config_env: Mapping[str, str]) -> dict[str, str]:
        """The environment of a RUN: proxy ARGs, ARGs in scope, then ENV."""
        return {**self.build.proxy_env(), **self.values, **config_env}

    def cache_key_args(self) -> list[str]:
        """`NAME=value` of the ARGs in scope that RUN sees, for cache keys and history
        (proxy ARGs excluded, as Docker excludes them)."""
        return [f"{k}={v}" for k, v in sorted(self.values.items()) if k not in PROXY_ARGS]


def parse_build_arg(text: str, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """`--build-arg K=V` -> (K, V); `--build-arg K` -> (K, environ[K] or None)."""
    name, has_value, value = text.partition("=")
    if has_value:
        return name, value
    return name, environ.get(name)
