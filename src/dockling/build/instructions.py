"""Typed Dockerfile instructions: what the execution half dispatches on.

Values are as written in the Dockerfile (quotes kept where Docker keeps them, variables
not expanded); `dockling.build.substitute.expand_instruction` returns a copy with the
variables expanded for the instructions Docker expands.  Every instruction carries its
`location` and `original` text (history's `created_by` is built from it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dockling.build.nodes import Heredoc


@dataclass(frozen=True)
class Location:
    """Where an instruction is: file name and its first and last line (1-based)."""

    filename: str
    start_line: int
    end_line: int

    def __str__(self) -> str:
        return f"{self.filename}:{self.start_line}"


@dataclass(frozen=True, kw_only=True)
class Instruction:
    """Fields every instruction has."""

    location: Location
    original: str  # the logical source line, e.g. `RUN apt-get update`


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: str


@dataclass(frozen=True)
class CommandLine:
    """A RUN/CMD/ENTRYPOINT command: exec form (`prepend_shell` False) or shell form.

    In shell form `args` is one string, run as SHELL + [string].
    """

    args: tuple[str, ...]
    prepend_shell: bool
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True, kw_only=True)
class From(Instruction):
    base: str  # image reference, earlier stage name, or "scratch" (unexpanded)
    stage_name: str | None  # lower-cased `AS name`
    platform: str | None


@dataclass(frozen=True, kw_only=True)
class Maintainer(Instruction):
    name: str


@dataclass(frozen=True)
class RunMount:
    """One `RUN --mount=...`: type bind|cache|tmpfs|secret|ssh and its options."""

    type: str
    target: str | None
    source: str | None = None
    from_: str | None = None
    readonly: bool = False
    id: str | None = None
    sharing: str = "shared"
    required: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    env: str | None = None


@dataclass(frozen=True, kw_only=True)
class Run(Instruction):
    command: CommandLine
    mounts: tuple[RunMount, ...] = ()
    network: str | None = None  # "none" | "host" | "default"
    security: str | None = None  # "sandbox" | "insecure"


@dataclass(frozen=True, kw_only=True)
class Cmd(Instruction):
    command: CommandLine


@dataclass(frozen=True, kw_only=True)
class Entrypoint(Instruction):
    command: CommandLine


@dataclass(frozen=True, kw_only=True)
class Shell(Instruction):
    shell: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Env(Instruction):
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True, kw_only=True)
class Label(Instruction):
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True, kw_only=True)
class Expose(Instruction):
    ports: tuple[str, ...]


@dataclass(frozen=True)
class InlineSource:
    """A COPY/ADD source given as a heredoc: a file named `name` holding `data`."""

    name: str
    data: str  # tabs already stripped for `<<-`
    expand: bool


@dataclass(frozen=True, kw_only=True)
class Copy(Instruction):
    sources: tuple[str, ...]  # paths or globs in the context (or in `from_`)
    dest: str
    inline: tuple[InlineSource, ...] = ()
    from_: str | None = None
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    parents: bool = False
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Add(Instruction):
    sources: tuple[str, ...]  # paths, globs or URLs
    dest: str
    inline: tuple[InlineSource, ...] = ()
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    checksum: str | None = None
    keep_git_dir: bool = False
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Volume(Instruction):
    paths: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class User(Instruction):
    user: str


@dataclass(frozen=True, kw_only=True)
class Workdir(Instruction):
    path: str


@dataclass(frozen=True)
class ArgDecl:
    """One name of an ARG instruction; `default` None when no `=value` was given."""

    name: str
    default: str | None


@dataclass(frozen=True, kw_only=True)
class Arg(Instruction):
    args: tuple[ArgDecl, ...]


@dataclass(frozen=True, kw_only=True)
class OnBuild(Instruction):
    expression: str  # the trigger as stored in the image config (heredocs appended)
    trigger: Instruction | None  # None when it does not parse yet (Docker checks it later)


@dataclass(frozen=True)
class HealthConfig:
    """Docker's HealthConfig: test is ["NONE"], ["CMD", ...] or ["CMD-SHELL", cmd].

    Durations are in nanoseconds, 0 meaning "inherit the default".
    """

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True, kw_only=True)
class Healthcheck(Instruction):
    health: HealthConfig


@dataclass(frozen=True, kw_only=True)
class StopSignal(Instruction):
    signal: str


@dataclass(frozen=True)
class Stage:
    """One build stage: its FROM and the instructions after it."""

    index: int
    from_: From
    instructions: tuple[Instruction, ...] = field(default=())

    @property
    def name(self) -> str | None:
        return self.from_.stage_name


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile: directives' values, the ARGs before the first FROM, the stages."""

    filename: str
    escape: str
    syntax: str | None
    check: str | None
    meta_args: tuple[Arg, ...]
    stages: tuple[Stage, ...]
    warnings: tuple[str, ...] = ()
