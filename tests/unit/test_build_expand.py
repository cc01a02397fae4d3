"""Variable substitution as Docker's lexer does it, and per-instruction expansion."""

from __future__ import annotations

import re

import pytest

from dockling.build import instructions as ins
from dockling.build.expand import ShellLex
from dockling.build.parser import parse_dockerfile
from dockling.build.substitute import expand_heredoc, expand_instruction
from dockling.errors import InvalidParameter

ENV = {"A": "x y", "EMPTY": "", "PATH": "/bin", "N": "file.tar.gz"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$A", "x y"),
        ("${A}", "x y"),
        ("pre${PATH}post", "pre/binpost"),
        ("$UNSET", ""),
        ("${UNSET:-default}", "default"),
        ("${EMPTY:-default}", "default"),
        ("${EMPTY-default}", ""),
        ("${UNSET-default}", "default"),
        ("${A:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${UNSET:-$PATH/sub}", "/bin/sub"),
        ("${UNSET:-'quoted $A'}", "quoted $A"),
        ("'$A'", "$A"),
        ('"$A"', "x y"),
        ('"a\\"b"', 'a"b'),
        ('"\\$A"', "$A"),
        ('"\\n"', "\\n"),
        ("\\$A", "$A"),
        ("a\\ b", "a b"),
        ("$", "$"),
        ("a$", "a$"),
        ("$-", ""),
        ("${N#*.}", "tar.gz"),
        ("${N##*.}", "gz"),
        ("${N%.*}", "file.tar"),
        ("${N%%.*}", "file"),
        ("${N#\\*}", "file.tar.gz"),  # an escaped * is a literal star
        ("${N/tar/zip}", "file.zip.gz"),
        ("${N//./_}", "file_tar_gz"),
        ("${N/*./X}", "Xgz"),  # the longest match, as BuildKit
        ("${N/?/F}", "File.tar.gz"),
        ("${N/nothing/x}", "file.tar.gz"),
        ("${N/.gz/}", "file.tar"),
        ("${N//\\//-}", "file.tar.gz"),  # an escaped / is part of the pattern
        ("${UNSET/a/b}", ""),
        ("it's", None),
    ],
)
def test_process_word(word: str, expected: str | None) -> None:
    lex = ShellLex()
    if expected is None:
        with pytest.raises(InvalidParameter, match="single-quote"):
            lex.process_word(word, ENV)
    else:
        assert lex.process_word(word, ENV) == expected


def test_backtick_escape() -> None:
    lex = ShellLex("`")
    assert lex.process_word("`$A", ENV) == "$A"
    assert lex.process_word("C:\\dir", ENV) == "C:\\dir"
    assert lex.process_word('"a`"b"', ENV) == 'a"b'


def test_process_words_splits_unquoted_whitespace() -> None:
    lex = ShellLex()
    assert lex.process_words("80 $A '1 2' \"3 4\"", ENV) == ["80", "x", "y", "1 2", "3 4"]
    assert lex.process_words("a\\ b c", ENV) == ["a b", "c"]


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${A", "missing '}'"),
        ("${}", "bad substitution"),
        ("${:-x}", "bad substitution"),
        ("${UNSET:?must be set}", "UNSET: must be set"),
        ("${UNSET?}", "UNSET: is not allowed to be unset"),
        ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
        ('"open', "double-quote"),
        ("${A!x}", "unsupported modifier (!)"),
        ("${N/a", "missing '/' in ${}"),
        ("${N/a/b", "missing '}'"),
        ("${N/\\./-}", "invalid escape"),
    ],
)
def test_errors(word: str, message: str) -> None:
    with pytest.raises(InvalidParameter, match=re.escape(message)):
        ShellLex().process_word(word, ENV)


def test_skip_unset_keeps_text() -> None:
    lex = ShellLex(skip_unset=True)
    assert lex.process_word("$NOPE ${NOPE} ${NOPE:-x} $A", ENV) == "$NOPE ${NOPE} ${NOPE:-x} x y"
    assert lex.process_word("${NOPE/a/b} ${NOPE//a/b} ${NOPE##*.}", ENV) == (
        "${NOPE/a/b} ${NOPE//a/b} ${NOPE##*.}"
    )


def test_matches_report_used_variables() -> None:
    value, used = ShellLex().process_word_with_matches("$A-${UNSET}-$PATH", ENV)
    assert value == "x y--/bin"
    assert used == {"A", "PATH"}


def _stage_instructions(text: str) -> tuple[ins.Instruction, ...]:
    return parse_dockerfile(text).stages[0].instructions


def test_expand_instructions_docker_expands() -> None:
    env = {"V": "1.0", "D": "/srv", "U": "app", "P": "80 443"}
    text = (
        "FROM img:$V\n"
        "ENV K=$V Q='$V' legacy=$D\n"
        "LABEL version=$V\n"
        "COPY --chown=$U:$U src-$V $D/\n"
        "ADD --chmod=644 a-$V.tar $D\n"
        "EXPOSE $P 53/udp\n"
        "VOLUME $D/data\n"
        "USER $U\n"
        "WORKDIR $D\n"
        "STOPSIGNAL SIG${U:+TERM}\n"
        "ARG X=$V\n"
        "RUN echo $V\n"
        "CMD echo $V\n"
        "RUN --mount=type=cache,target=$D/cache true\n"
    )
    dockerfile = parse_dockerfile(text)
    from_ = expand_instruction(dockerfile.stages[0].from_, env)
    assert isinstance(from_, ins.From) and from_.base == "img:1.0"
    out = [expand_instruction(i, env) for i in dockerfile.stages[0].instructions]
    env_instr, label, copy, add, expose, volume, user, workdir, stop, arg, run, cmd, mount = out
    assert isinstance(env_instr, ins.Env)
    assert [(p.key, p.value) for p in env_instr.pairs] == [
        ("K", "1.0"),
        ("Q", "$V"),
        ("legacy", "/srv"),
    ]
    assert isinstance(label, ins.Label) and label.pairs[0].value == "1.0"
    assert isinstance(copy, ins.Copy)
    assert (copy.chown, copy.sources, copy.dest) == ("app:app", ("src-1.0",), "/srv/")
    assert isinstance(add, ins.Add) and add.sources == ("a-1.0.tar",)
    assert isinstance(expose, ins.Expose) and expose.ports == ("80", "443", "53/udp")
    assert isinstance(volume, ins.Volume) and volume.paths == ("/srv/data",)
    assert isinstance(user, ins.User) and user.user == "app"
    assert isinstance(workdir, ins.Workdir) and workdir.path == "/srv"
    assert isinstance(stop, ins.StopSignal) and stop.signal == "SIGTERM"
    assert isinstance(arg, ins.Arg) and arg.args[0].default == "1.0"
    # RUN and CMD are left to the shell
    assert isinstance(run, ins.Run) and run.command.args == ("echo $V",)
    assert isinstance(cmd, ins.Cmd) and cmd.command.args == ("echo $V",)
    assert isinstance(mount, ins.Run) and mount.mounts[0].target == "/srv/cache"


def test_legacy_env_value_keeps_spaces() -> None:
    (env,) = _stage_instructions("FROM a\nENV MSG hello   big world\n")
    out = expand_instruction(env, {})
    assert isinstance(out, ins.Env) and out.pairs[0].value == "hello   big world"


def test_heredoc_body_expansion_keeps_quotes() -> None:
    assert expand_heredoc("say \"$A\" 'now'\n", ENV) == "say \"x y\" 'now'\n"
