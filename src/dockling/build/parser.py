"""Dockerfile text to typed instructions grouped by stage (`parse_dockerfile`).

Validation follows Docker: argument counts, flags per instruction, exec form where it
is required, ONBUILD triggers, stage names, FROM before anything but ARG.  Errors are
InvalidParameter with `Dockerfile:LINE: message`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from dockling.build import instructions as ins
from dockling.build.flags import parse_flags, parse_mount
from dockling.build.heredoc import chomp, parse_heredoc_word
from dockling.build.nodes import Node
from dockling.build.suggest import did_you_mean
from dockling.build.syntax import located, parse_nodes
from dockling.durations import parse_go_duration
from dockling.errors import InvalidParameter

INSTRUCTIONS = (
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
)

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")
_MIN_DURATION_NS = 1_000_000


def parse_dockerfile(text: str, filename: str = "Dockerfile") -> ins.Dockerfile:
    """Parse and validate a whole Dockerfile.

    Raises InvalidParameter (`filename:line: message`) for any error Docker reports
    at parse time.
    """
    tree = parse_nodes(text, filename)
    meta_args: list[ins.Arg] = []
    stages: list[ins.Stage] = []
    body: list[ins.Instruction] = []
    names: set[str] = set()
    for node in tree.nodes:
        try:
            instruction = parse_instruction(node, filename)
        except InvalidParameter as exc:
            raise located(filename, node.start_line, exc.message) from None
        if isinstance(instruction, ins.From):
            if stages:
                stages[-1] = ins.Stage(stages[-1].index, stages[-1].from_, tuple(body))
            if instruction.stage_name is not None:
                if instruction.stage_name in names:
                    raise located(
                        filename,
                        node.start_line,
                        f'duplicate stage name "{instruction.stage_name}"',
                    )
                names.add(instruction.stage_name)
            stages.append(ins.Stage(len(stages), instruction))
            body = []
        elif not stages:
            if not isinstance(instruction, ins.Arg):
                raise located(
                    filename,
                    node.start_line,
                    f"no build stage in current context: {node.keyword.upper()} before FROM "
                    "(only ARG and parser directives may come before the first FROM)",
                )
            meta_args.append(instruction)
        else:
            body.append(instruction)
    if stages:
        stages[-1] = ins.Stage(stages[-1].index, stages[-1].from_, tuple(body))
    else:
        raise located(filename, tree.nodes[-1].end_line, "no build stage in current context")
    return ins.Dockerfile(
        filename=filename,
        escape=tree.directives.escape,
        syntax=tree.directives.syntax,
        check=tree.directives.check,
        meta_args=tuple(meta_args),
        stages=tuple(stages),
        warnings=tree.warnings,
    )


def parse_instruction(node: Node, filename: str = "Dockerfile") -> ins.Instruction:
    """The typed instruction for one node; raises InvalidParameter (without location)."""
    parse = _PARSERS.get(node.command)
    if parse is None:
        raise InvalidParameter(
            f"unknown instruction: {node.keyword}"
            + did_you_mean(node.keyword, INSTRUCTIONS, upper=True)
        )
    return parse(
        node, Common(ins.Location(filename, node.start_line, node.end_line), node.original)
    )


@dataclass(frozen=True)
class Common:
    """The fields every instruction takes from its node."""

    location: ins.Location
    original: str


def _no_flags(node: Node) -> None:
    parse_flags(node.flags, {})


def _exactly_one(node: Node) -> str:
    _no_flags(node)
    if len(node.args) != 1:
        raise InvalidParameter(f"{node.keyword.upper()} requires exactly one argument")
    return node.args[0]


def _at_least_one(node: Node) -> tuple[str, ...]:
    if not node.args:
        raise InvalidParameter(f"{node.keyword.upper()} requires at least one argument")
    return node.args


def _from(node: Node, common: Common) -> ins.From:
    args = node.args
    stage_name: str | None = None
    if len(args) == 3 and args[1].lower() == "as":
        stage_name = args[2].lower()
        if not _STAGE_NAME.match(stage_name):
            raise InvalidParameter(
                f'invalid name for build stage: "{args[2]}", '
                "name can't start with a number or contain symbols"
            )
    elif len(args) != 1:
        raise InvalidParameter("FROM requires either one or three arguments")
    flags = parse_flags(node.flags, {"platform": "string"})
    platform = flags.get("platform")
    return ins.From(
        base=args[0],
        stage_name=stage_name,
        platform=platform if isinstance(platform, str) else None,
        location=common.location,
        original=common.original,
    )


def _command_line(node: Node) -> ins.CommandLine:
    args = node.args if node.json else ((" ".join(node.args),) if node.args else ())
    return ins.CommandLine(args=args, prepend_shell=not node.json, heredocs=node.heredocs)


def _run(node: Node, common: Common) -> ins.Run:
    flags = parse_flags(node.flags, {"mount": "strings", "network": "string", "security": "string"})
    mounts = flags.get("mount", [])
    network = flags.get("network")
    if network is not None and network not in ("none", "host", "default"):
        raise InvalidParameter(f"unsupported network mode: {network}")
    security = flags.get("security")
    if security is not None and security not in ("sandbox", "insecure"):
        raise InvalidParameter(f"unsupported security mode: {security}")
    return ins.Run(
        command=_command_line(node),
        mounts=tuple(parse_mount(m) for m in mounts if isinstance(m, str))
        if isinstance(mounts, list)
        else (),
        network=network if isinstance(network, str) else None,
        security=security if isinstance(security, str) else None,
        location=common.location,
        original=common.original,
    )


def _cmd(node: Node, common: Common) -> ins.Cmd:
    _no_flags(node)
    return ins.Cmd(command=_command_line(node), location=common.location, original=common.original)


def _entrypoint(node: Node, common: Common) -> ins.Entrypoint:
    _no_flags(node)
    return ins.Entrypoint(
        command=_command_line(node), location=common.location, original=common.original
    )


def _shell(node: Node, common: Common) -> ins.Shell:
    _no_flags(node)
    if not node.args:
        raise InvalidParameter("SHELL requires at least one argument")
    if not node.json:
        raise InvalidParameter("SHELL requires the arguments to be in JSON form")
    return ins.Shell(shell=node.args, location=common.location, original=common.original)


def _pairs(node: Node) -> tuple[ins.KeyValue, ...]:
    _no_flags(node)
    args = _at_least_one(node)
    if len(args) % 3:
        raise InvalidParameter(f"Bad input to {node.keyword.upper()}, too many arguments")
    pairs = []
    for i in range(0, len(args), 3):
        if not args[i]:
            raise InvalidParameter(f"{node.keyword.upper()} names can not be blank")
        pairs.append(ins.KeyValue(args[i], args[i + 1]))
    return tuple(pairs)


def _env(node: Node, common: Common) -> ins.Env:
    return ins.Env(pairs=_pairs(node), location=common.location, original=common.original)


def _label(node: Node, common: Common) -> ins.Label:
    return ins.Label(pairs=_pairs(node), location=common.location, original=common.original)


def _expose(node: Node, common: Common) -> ins.Expose:
    _no_flags(node)
    return ins.Expose(
        ports=tuple(sorted(_at_least_one(node))), location=common.location, original=common.original
    )


def _sources_and_dest(
    node: Node,
) -> tuple[tuple[str, ...], str, tuple[ins.InlineSource, ...]]:
    keyword = node.keyword.upper()
    if len(node.args) < 2:
        raise InvalidParameter(
            f"{keyword} requires at least two arguments, but only one was provided. "
            "Destination could not be determined."
        )
    *sources, dest = node.args
    if not node.json and parse_heredoc_word(dest) is not None:
        raise InvalidParameter(f"{keyword} cannot accept a heredoc as a destination")
    bodies = {doc.name: doc for doc in node.heredocs}
    paths: list[str] = []
    inline: list[ins.InlineSource] = []
    for source in sources:
        doc = parse_heredoc_word(source) if not node.json else None
        if doc is None:
            paths.append(source)
            continue
        body = bodies.get(doc.name)
        content = body.content if body is not None else ""
        if doc.chomp:
            content = chomp(content)
        inline.append(ins.InlineSource(name=doc.name, data=content, expand=doc.expand))
    return tuple(paths), dest, tuple(inline)


def _str_flag(flags: dict[str, str | bool | list[str]], name: str) -> str | None:
    value = flags.get(name)
    return value if isinstance(value, str) else None


def _list_flag(flags: dict[str, str | bool | list[str]], name: str) -> tuple[str, ...]:
    value = flags.get(name)
    return tuple(value) if isinstance(value, list) else ()


def _copy(node: Node, common: Common) -> ins.Copy:
    flags = parse_flags(
        node.flags,
        {
            "from": "string",
            "chown": "string",
            "chmod": "string",
            "link": "bool",
            "parents": "bool",
            "exclude": "strings",
        },
    )
    sources, dest, inline = _sources_and_dest(node)
    return ins.Copy(
        sources=sources,
        dest=dest,
        inline=inline,
        from_=_str_flag(flags, "from"),
        chown=_str_flag(flags, "chown"),
        chmod=_str_flag(flags, "chmod"),
        link=flags.get("link") is True,
        parents=flags.get("parents") is True,
        excludes=_list_flag(flags, "exclude"),
        location=common.location,
        original=common.original,
    )


def _add(node: Node, common: Common) -> ins.Add:
    flags = parse_flags(
        node.flags,
        {
            "chown": "string",
            "chmod": "string",
            "link": "bool",
            "checksum": "string",
            "keep-git-dir": "bool",
            "exclude": "strings",
        },
    )
    sources, dest, inline = _sources_and_dest(node)
    return ins.Add(
        sources=sources,
        dest=dest,
        inline=inline,
        chown=_str_flag(flags, "chown"),
        chmod=_str_flag(flags, "chmod"),
        link=flags.get("link") is True,
        checksum=_str_flag(flags, "checksum"),
        keep_git_dir=flags.get("keep-git-dir") is True,
        excludes=_list_flag(flags, "exclude"),
        location=common.location,
        original=common.original,
    )


def _volume(node: Node, common: Common) -> ins.Volume:
    _no_flags(node)
    paths = _at_least_one(node)
    for path in paths:
        if not path.strip():
            raise InvalidParameter("VOLUME specified can not be an empty string")
    return ins.Volume(paths=paths, location=common.location, original=common.original)


def _arg(node: Node, common: Common) -> ins.Arg:
    _no_flags(node)
    decls = []
    for word in _at_least_one(node):
        name, has_value, value = word.partition("=")
        if not name:
            raise InvalidParameter("ARG names can not be blank")
        decls.append(ins.ArgDecl(name, value if has_value else None))
    return ins.Arg(args=tuple(decls), location=common.location, original=common.original)


def _onbuild(node: Node, common: Common) -> ins.OnBuild:
    _no_flags(node)
    if node.child is None:
        raise InvalidParameter("ONBUILD requires at least one argument")
    keyword = node.child.keyword.upper()
    if keyword == "ONBUILD":
        raise InvalidParameter("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if keyword in ("MAINTAINER", "FROM"):
        raise InvalidParameter(f"{keyword} isn't allowed as an ONBUILD trigger")
    expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", node.original)
    for doc in node.child.heredocs:
        expression += "\n" + doc.content + doc.name
    try:
        trigger: ins.Instruction | None = parse_instruction(node.child, common.location.filename)
    except InvalidParameter:
        # Docker stores the trigger's text and parses it only when a child build runs it.
        trigger = None
    return ins.OnBuild(
        expression=expression,
        trigger=trigger,
        location=common.location,
        original=common.original,
    )


def _healthcheck(node: Node, common: Common) -> ins.Healthcheck:
    if not node.args:
        raise InvalidParameter("HEALTHCHECK requires at least one argument")
    kind = node.args[0].upper()
    rest = node.args[1:]
    if kind == "NONE":
        if rest:
            raise InvalidParameter("HEALTHCHECK NONE takes no arguments")
        return ins.Healthcheck(
            health=ins.HealthConfig(test=("NONE",)),
            location=common.location,
            original=common.original,
        )
    flags = parse_flags(
        node.flags,
        {
            "interval": "string",
            "timeout": "string",
            "start-period": "string",
            "start-interval": "string",
            "retries": "string",
        },
    )
    if kind != "CMD":
        raise InvalidParameter(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    command = rest if node.json else ((" ".join(rest),) if rest else ())
    if not command:
        raise InvalidParameter("Missing command after HEALTHCHECK CMD")
    test = ("CMD", *command) if node.json else ("CMD-SHELL", *command)
    retries = 0
    raw_retries = _str_flag(flags, "retries")
    if raw_retries is not None:
        try:
            retries = int(raw_retries)
        except ValueError:
            raise InvalidParameter(
                f'strconv.ParseInt: parsing "{raw_retries}": invalid syntax'
            ) from None
        if retries < 1:
            raise InvalidParameter(f"--retries must be at least 1 (not {retries})")
    return ins.Healthcheck(
        health=ins.HealthConfig(
            test=test,
            interval=_interval(flags, "interval"),
            timeout=_interval(flags, "timeout"),
            start_period=_interval(flags, "start-period"),
            start_interval=_interval(flags, "start-interval"),
            retries=retries,
        ),
        location=common.location,
        original=common.original,
    )


def _interval(flags: dict[str, str | bool | list[str]], name: str) -> int:
    value = _str_flag(flags, name)
    if not value:
        return 0
    nanos = parse_go_duration(value)
    if nanos != 0 and nanos < _MIN_DURATION_NS:
        raise InvalidParameter(f'Interval "{name}" cannot be less than 1ms')
    return nanos


_PARSERS: dict[str, Callable[[Node, Common], ins.Instruction]] = {
    "from": _from,
    "run": _run,
    "cmd": _cmd,
    "entrypoint": _entrypoint,
    "shell": _shell,
    "env": _env,
    "label": _label,
    "expose": _expose,
    "copy": _copy,
    "add": _add,
    "volume": _volume,
    "arg": _arg,
    "onbuild": _onbuild,
    "healthcheck": _healthcheck,
    "maintainer": lambda node, common: ins.Maintainer(
        name=_exactly_one(node), location=common.location, original=common.original
    ),
    "user": lambda node, common: ins.User(
        user=_exactly_one(node), location=common.location, original=common.original
    ),
    "workdir": lambda node, common: ins.Workdir(
        path=_exactly_one(node), location=common.location, original=common.original
    ),
    "stopsignal": lambda node, common: ins.StopSignal(
        signal=_exactly_one(node), location=common.location, original=common.original
    ),
}
