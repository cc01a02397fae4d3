"""Build checks: BuildKit's Dockerfile lint rules, configured by `# check=`.

The rules look at the parsed syntax tree only (keywords as written, arguments, lines), so
they run before anything is built, in the daemon for a build and in the CLI for
`dockling build --check`.  Names and messages are BuildKit's, so that what a user reads
(and skips by name) is the same.  `# check=skip=A,B` (or `skip=all`) turns rules off,
`# check=error=true` makes any violation fail the build before it starts; the build
argument BUILDKIT_DOCKERFILE_CHECK, when given, is used instead of the directive.

Rules left out: UndefinedVar and SecretsUsedInArgOrEnv (they need BuildKit's whole
expansion state and word lists), InvalidDefaultArgInFrom, FromPlatformFlagConstDisallowed
and the experimental ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockling.build.nodes import Node, NodeTree
from dockling.build.suggest import closest
from dockling.errors import InvalidParameter

CHECK_ARG = "BUILDKIT_DOCKERFILE_CHECK"
RESERVED_STAGE_NAMES = ("scratch", "context")
PLATFORM_ARGS = frozenset(
    f"{side}{part}"
    for side in ("BUILD", "TARGET")
    for part in ("PLATFORM", "OS", "ARCH", "VARIANT")
)
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str
    line: int

    def __str__(self) -> str:
        return f"{self.rule}: {self.message} (line {self.line})"


@dataclass(frozen=True)
class CheckConfig:
    skip: frozenset[str] = frozenset()
    skip_all: bool = False
    error: bool = False


def parse_config(text: str | None) -> CheckConfig:
    """`skip=Rule1,Rule2;error=true` (the `# check=` directive's value)."""
    if not text:
        return CheckConfig()
    skip: set[str] = set()
    error = False
    for part in text.split(";"):
        key, sep, value = part.strip().partition("=")
        key = key.strip().lower()
        if not key:
            continue
        if not sep:
            raise InvalidParameter(f"invalid check directive: {part.strip()!r} (want key=value)")
        if key == "skip":
            skip.update(name.strip() for name in value.split(",") if name.strip())
        elif key == "error":
            if value.strip().lower() not in ("true", "false"):
                raise InvalidParameter(f"invalid check directive: error={value} (true or false)")
            error = value.strip().lower() == "true"
        elif key != "experimental":
            raise InvalidParameter(f"invalid check directive: unknown option {key!r}")
    return CheckConfig(frozenset(skip - {"all"}), "all" in skip, error)


def run_checks(tree: NodeTree, config: CheckConfig) -> list[Violation]:
    """The violations of the rules `config` leaves on, in line order."""
    found = [v for v in _all_rules(tree) if not config.skip_all and v.rule not in config.skip]
    return sorted(found, key=lambda v: v.line)


def summary(violations: list[Violation]) -> str:
    """BuildKit's end-of-build report (empty when there is nothing to say)."""
    if not violations:
        return ""
    count = len(violations)
    lines = [f" {count} warning{'s' * (count != 1)} found (use docker --debug to expand):"]
    lines += [f" - {v}" for v in violations]
    return "\n".join(lines) + "\n"


def error_message(violations: list[Violation]) -> str:
    rules = sorted({v.rule for v in violations})
    return f"lint violation found for rules: {', '.join(rules)}"


def _all_rules(tree: NodeTree) -> list[Violation]:
    found = [
        Violation("NoEmptyContinuation", "Empty continuation line", line)
        for line in tree.empty_continuations
    ]
    found += _casing(tree.nodes)
    meta_args: set[str] = set()
    stage: list[Node] = []
    for node in tree.nodes:
        if node.command == "from":
            found += _stage_rules(stage)
            stage = [node]
            found += _from_rules(node, meta_args)
        elif not stage:
            if node.command == "arg":
                meta_args.update(_arg_names(node))
        else:
            stage.append(node)
    found += _stage_rules(stage)
    return found


def _casing(nodes: tuple[Node, ...]) -> list[Violation]:
    """ConsistentInstructionCasing: keywords against the file's majority casing."""
    upper = sum(1 for n in nodes if n.keyword.isupper())
    lower = sum(1 for n in nodes if n.keyword.islower())
    majority, matches = ("lowercase", str.islower) if lower > upper else ("uppercase", str.isupper)
    return [
        Violation(
            "ConsistentInstructionCasing",
            f"Command '{n.keyword}' should match the case of the command majority ({majority})",
            n.start_line,
        )
        for n in nodes
        if not matches(n.keyword)
    ]


def _from_rules(node: Node, meta_args: set[str]) -> list[Violation]:
    found: list[Violation] = []
    line = node.start_line
    if len(node.args) == 3:
        as_word, name = node.args[1], node.args[2]
        if (node.keyword.isupper() and not as_word.isupper()) or (
            node.keyword.islower() and not as_word.islower()
        ):
            message = f"'{as_word}' and '{node.keyword}' keywords' casing do not match"
            found.append(Violation("FromAsCasing", message, line))
        if name != name.lower():
            message = f"Stage name '{name}' should be lowercase"
            found.append(Violation("StageNameCasing", message, line))
        if name.lower() in RESERVED_STAGE_NAMES:
            message = f'Stage name should not use the same name as reserved stage "{name.lower()}"'
            found.append(Violation("ReservedStageName", message, line))
    platform = _flag(node, "platform")
    if platform in ("$TARGETPLATFORM", "${TARGETPLATFORM}"):
        message = (
            f"Setting platform to predefined {platform} in FROM is redundant as this is the "
            "default behavior"
        )
        found.append(Violation("RedundantTargetPlatform", message, line))
    words = [*(node.args[:1]), *([platform] if platform else [])]
    for word in words:
        for match in _VARIABLE.finditer(word):
            name = match.group(1) or match.group(2)
            if name in meta_args or name in PLATFORM_ARGS:
                continue
            message = f"FROM argument '{name}' is not declared"
            suggestion = closest(name, sorted(meta_args | PLATFORM_ARGS))
            if suggestion:
                message += f" (did you mean {suggestion}?)"
            found.append(Violation("UndefinedArgInFrom", message, line))
    return found


def _stage_rules(stage: list[Node]) -> list[Violation]:
    found: list[Violation] = []
    custom_shell = False
    absolute_workdir = False
    last: dict[str, Node] = {}
    repeated: list[Node] = []
    for node in stage[1:]:
        command = node.command
        if command == "shell":
            custom_shell = True
        elif command in ("cmd", "entrypoint") and not node.json and not custom_shell:
            message = (
                f"JSON arguments recommended for {command.upper()} to prevent unintended "
                "behavior related to OS signals"
            )
            found.append(Violation("JSONArgsRecommended", message, node.start_line))
        elif command == "maintainer":
            message = "Maintainer instruction is deprecated in favor of using label"
            found.append(Violation("MaintainerDeprecated", message, node.start_line))
        elif command == "workdir" and node.args:
            path = node.args[0]
            if path.startswith(("/", "$")):
                absolute_workdir = True
            elif not absolute_workdir:
                message = (
                    f'Relative workdir "{path}" can have unexpected results if the base image '
                    "changes"
                )
                found.append(Violation("WorkdirRelativePath", message, node.start_line))
        elif command in ("env", "label") and _legacy_pairs(node):
            name = command.upper()
            message = (
                f'"{name} key=value" should be used instead of legacy "{name} key value" format'
            )
            found.append(Violation("LegacyKeyValueFormat", message, node.start_line))
        if command in ("cmd", "entrypoint", "healthcheck"):
            if command in last:
                repeated.append(last[command])
            last[command] = node
    for node in repeated:
        message = (
            f"Multiple {node.command.upper()} instructions should not be used in the same "
            "stage because only the last one will be used"
        )
        found.append(Violation("MultipleInstructionsDisallowed", message, node.start_line))
    return found


def _legacy_pairs(node: Node) -> bool:
    """ENV/LABEL args come as (key, value, separator) triples; "" is the legacy form."""
    return len(node.args) == 3 and node.args[2] == ""


def _arg_names(node: Node) -> list[str]:
    return [arg.split("=", 1)[0] for arg in node.args]


def _flag(node: Node, name: str) -> str | None:
    for flag in node.flags:
        key, _, value = flag.lstrip("-").partition("=")
        if key == name:
            return value
    return None
