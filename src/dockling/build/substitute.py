"""Variable expansion per instruction, in the instructions and fields Docker expands.

ADD, COPY (sources, destination, --from, --chown, --chmod), ENV and LABEL (keys and
values), ARG defaults, EXPOSE (split into words), FROM (image and --platform), RUN
--mount options, STOPSIGNAL, USER, VOLUME and WORKDIR.  RUN, CMD, ENTRYPOINT, SHELL,
HEALTHCHECK and ONBUILD are left to the shell or to the child build, as in Docker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from dockling.build import instructions as ins
from dockling.build.expand import ShellLex

Env = Mapping[str, str]


def expand_instruction(
    instruction: ins.Instruction, env: Env, escape: str = "\\"
) -> ins.Instruction:
    """A copy of `instruction` with `env` substituted where Docker substitutes.

    Raises InvalidParameter for a malformed substitution (unbalanced quotes, `${`).
    """
    lex = ShellLex(escape)

    def word(text: str) -> str:
        return lex.process_word(text, env)

    def optional(text: str | None) -> str | None:
        return None if text is None else word(text)

    match instruction:
        case ins.From():
            return replace(
                instruction, base=word(instruction.base), platform=optional(instruction.platform)
            )
        case ins.Env() | ins.Label():
            pairs = tuple(ins.KeyValue(word(p.key), word(p.value)) for p in instruction.pairs)
            return replace(instruction, pairs=pairs)
        case ins.Arg():
            decls = tuple(ins.ArgDecl(word(a.name), optional(a.default)) for a in instruction.args)
            return replace(instruction, args=decls)
        case ins.Copy():
            return replace(
                instruction,
                sources=tuple(word(s) for s in instruction.sources),
                dest=word(instruction.dest),
                from_=optional(instruction.from_),
                chown=optional(instruction.chown),
                chmod=optional(instruction.chmod),
            )
        case ins.Add():
            return replace(
                instruction,
                sources=tuple(word(s) for s in instruction.sources),
                dest=word(instruction.dest),
                chown=optional(instruction.chown),
                chmod=optional(instruction.chmod),
                checksum=optional(instruction.checksum),
            )
        case ins.Expose():
            ports = tuple(p for port in instruction.ports for p in lex.process_words(port, env))
            return replace(instruction, ports=ports)
        case ins.Volume():
            return replace(instruction, paths=tuple(word(p) for p in instruction.paths))
        case ins.User():
            return replace(instruction, user=word(instruction.user))
        case ins.Workdir():
            return replace(instruction, path=word(instruction.path))
        case ins.StopSignal():
            return replace(instruction, signal=word(instruction.signal))
        case ins.Run():
            mounts = tuple(
                replace(
                    m,
                    target=optional(m.target),
                    source=optional(m.source),
                    from_=optional(m.from_),
                    id=optional(m.id),
                )
                for m in instruction.mounts
            )
            return replace(instruction, mounts=mounts)
    return instruction


def expand_heredoc(data: str, env: Env, escape: str = "\\") -> str:
    """The body of an expanding heredoc (COPY <<EOF) with `$VAR` substituted.

    Quotes in the body are text, not syntax: only `$` expressions and escapes act.
    """
    lex = ShellLex(escape, raw_quotes=True, raw_escapes=True)
    return lex.process_word(data, env)
