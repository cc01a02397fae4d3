"""The typed parse: instructions, forms, flags, heredocs, directives, locations."""

from __future__ import annotations

import pytest

from dockling.build import instructions as ins
from dockling.build.flags import parse_mount
from dockling.build.heredoc import parse_heredoc_word
from dockling.build.parser import parse_dockerfile
from dockling.build.syntax import parse_nodes
from dockling.durations import parse_go_duration
from dockling.errors import InvalidParameter


def only(text: str) -> ins.Instruction:
    (instruction,) = parse_dockerfile("FROM base\n" + text).stages[0].instructions
    return instruction


def test_from_forms() -> None:
    dockerfile = parse_dockerfile("from --platform=linux/arm64 Img:1 As Build\nFROM scratch\n")
    first, second = dockerfile.stages
    assert (first.from_.base, first.name, first.from_.platform) == ("Img:1", "build", "linux/arm64")
    assert (second.index, second.name, second.from_.base) == (1, None, "scratch")


def test_shell_and_exec_forms() -> None:
    run = only("RUN echo  $HOME")
    assert isinstance(run, ins.Run)
    assert run.command == ins.CommandLine(("echo  $HOME",), prepend_shell=True)
    cmd = only('CMD ["echo", "$HOME"]')
    assert isinstance(cmd, ins.Cmd) and cmd.command == ins.CommandLine(("echo", "$HOME"), False)
    entry = only("ENTRYPOINT []")
    assert isinstance(entry, ins.Entrypoint) and entry.command.args == ()
    fallback = only("CMD [not json]")
    assert isinstance(fallback, ins.Cmd) and fallback.command.prepend_shell


def test_env_label_pairs() -> None:
    env = only('ENV A=1 B="two words" C=')
    assert isinstance(env, ins.Env)
    assert env.pairs == (
        ins.KeyValue("A", "1"),
        ins.KeyValue("B", '"two words"'),
        ins.KeyValue("C", ""),
    )
    label = only("LABEL legacy value with spaces")
    assert isinstance(label, ins.Label) and label.pairs == (
        ins.KeyValue("legacy", "value with spaces"),
    )


def test_arg_declarations() -> None:
    arg = only('ARG A B=2 C="x y" D=')
    assert isinstance(arg, ins.Arg)
    assert arg.args == (
        ins.ArgDecl("A", None),
        ins.ArgDecl("B", "2"),
        ins.ArgDecl("C", '"x y"'),
        ins.ArgDecl("D", ""),
    )


def test_copy_and_add_flags() -> None:
    copy = only(
        "COPY --from=build --chown=1:2 --chmod=755 --link --exclude=*.md --exclude=x a b /d/"
    )
    assert isinstance(copy, ins.Copy)
    assert (copy.from_, copy.chown, copy.chmod, copy.link) == ("build", "1:2", "755", True)
    assert (copy.sources, copy.dest, copy.excludes) == (("a", "b"), "/d/", ("*.md", "x"))
    add = only("ADD --checksum=sha256:00 --keep-git-dir https://x/y.git /src")
    assert isinstance(add, ins.Add)
    assert (add.checksum, add.keep_git_dir, add.link) == ("sha256:00", True, False)
    with pytest.raises(InvalidParameter, match="unknown flag: from"):
        only("ADD --from=x a b")


def test_run_flags_and_mounts() -> None:
    run = only(
        "RUN --network=none --mount=type=cache,target=/c,sharing=locked "
        "--mount=type=secret,id=tok --mount=type=tmpfs,dst=/t,size=64m --mount=target=/b,rw true"
    )
    assert isinstance(run, ins.Run)
    assert run.network == "none"
    cache, secret, tmpfs, bind = run.mounts
    assert (cache.type, cache.target, cache.id, cache.sharing, cache.readonly) == (
        "cache",
        "/c",
        "/c",
        "locked",
        False,
    )
    assert (secret.type, secret.id, secret.target, secret.readonly) == ("secret", "tok", None, True)
    assert (tmpfs.target, tmpfs.size) == ("/t", 64 * 1024 * 1024)
    assert (bind.type, bind.readonly) == ("bind", False)


def test_mount_options() -> None:
    mount = parse_mount('type=bind,from=stage,source=/out,target=/mnt,"ro=false"')
    assert (mount.from_, mount.source, mount.readonly) == ("stage", "/out", False)
    cache = parse_mount("type=cache,target=/x,id=shared-go,mode=0700,uid=1000,gid=1000")
    assert (cache.id, cache.mode, cache.uid, cache.gid) == ("shared-go", 0o700, 1000, 1000)
    with pytest.raises(InvalidParameter, match="requires a target"):
        parse_mount("type=cache")


def test_healthcheck() -> None:
    health = only("HEALTHCHECK --interval=1m30s --timeout=500ms --retries=2 CMD curl -f x")
    assert isinstance(health, ins.Healthcheck)
    assert health.health == ins.HealthConfig(
        test=("CMD-SHELL", "curl -f x"),
        interval=90 * 10**9,
        timeout=500 * 10**6,
        retries=2,
    )
    exec_form = only('HEALTHCHECK CMD ["/bin/check", "-q"]')
    assert isinstance(exec_form, ins.Healthcheck)
    assert exec_form.health.test == ("CMD", "/bin/check", "-q")
    none = only("healthcheck none")
    assert isinstance(none, ins.Healthcheck) and none.health.test == ("NONE",)


def test_go_durations() -> None:
    assert parse_go_duration("1h2m3.5s") == 3723 * 10**9 + 5 * 10**8
    assert parse_go_duration("0") == 0
    assert parse_go_duration("1.5ms") == 1_500_000
    for bad in ("", "1x", "s", "5"):
        with pytest.raises(InvalidParameter):
            parse_go_duration(bad)


def test_onbuild_keeps_expression_and_trigger() -> None:
    onbuild = only("ONBUILD   run --network=none echo hi")
    assert isinstance(onbuild, ins.OnBuild)
    assert onbuild.expression == "run --network=none echo hi"
    assert isinstance(onbuild.trigger, ins.Run) and onbuild.trigger.network == "none"
    later = only("ONBUILD FRM x")  # Docker checks a trigger only when a child build runs it
    assert isinstance(later, ins.OnBuild) and later.trigger is None


def test_onbuild_heredoc_expression() -> None:
    onbuild = parse_dockerfile("FROM a\nONBUILD RUN <<EOF\necho x\nEOF\n").stages[0].instructions[0]
    assert isinstance(onbuild, ins.OnBuild)
    assert onbuild.expression == "RUN <<EOF\necho x\nEOF"


def test_other_instructions() -> None:
    assert only("MAINTAINER A B <a@b>") == ins.Maintainer(
        name="A B <a@b>", location=ins.Location("Dockerfile", 2, 2), original="MAINTAINER A B <a@b>"
    )
    shell = only('SHELL ["powershell", "-command"]')
    assert isinstance(shell, ins.Shell) and shell.shell == ("powershell", "-command")
    expose = only("EXPOSE 8080 80/udp 1000-1010")
    assert isinstance(expose, ins.Expose) and expose.ports == ("1000-1010", "80/udp", "8080")
    volume = only('VOLUME ["/a", "/b c"]')
    assert isinstance(volume, ins.Volume) and volume.paths == ("/a", "/b c")
    user = only("USER 1000:1000")
    assert isinstance(user, ins.User) and user.user == "1000:1000"
    workdir = only("WORKDIR relative/dir")
    assert isinstance(workdir, ins.Workdir) and workdir.path == "relative/dir"
    signal = only("STOPSIGNAL 9")
    assert isinstance(signal, ins.StopSignal) and signal.signal == "9"


def test_heredoc_details() -> None:
    text = "FROM a\nRUN 3<<-'X' cat <&3\n\t\tliteral $HOME\n\tX\nCOPY <<-EOF /f\n\tbody\n\tEOF\n"
    run, copy = parse_dockerfile(text).stages[0].instructions
    assert isinstance(run, ins.Run)
    (doc,) = run.command.heredocs
    assert (doc.name, doc.fd, doc.chomp, doc.expand) == ("X", 3, True, False)
    assert doc.content == "\t\tliteral $HOME\n"
    assert run.location.end_line == 4
    assert isinstance(copy, ins.Copy)
    assert copy.inline == (ins.InlineSource("EOF", "body\n", True),)
    assert copy.location == ins.Location("Dockerfile", 5, 7)


def test_heredoc_words() -> None:
    word = parse_heredoc_word('<<"E O"')
    assert word is not None and (word.name, word.expand) == ("E O", False)
    partial = parse_heredoc_word("<<E'O'F")
    assert partial is not None and (partial.name, partial.expand) == ("EOF", False)
    assert parse_heredoc_word("<<") is None
    assert parse_heredoc_word("cat<<EOF") is None


def test_directives_and_warnings() -> None:
    dockerfile = parse_dockerfile(
        "# syntax=docker/dockerfile:1\n# CHECK=error=true\nFROM a\nRUN a \\\n\n  b\n"
    )
    assert (dockerfile.syntax, dockerfile.check, dockerfile.escape) == (
        "docker/dockerfile:1",
        "error=true",
        "\\",
    )
    assert dockerfile.warnings == ("Dockerfile:6: Empty continuation line found in: RUN a   b",)


def test_directive_after_instruction_is_a_comment() -> None:
    dockerfile = parse_dockerfile("FROM a\n# escape=`\nRUN a \\\n b\n")
    assert dockerfile.escape == "\\"


def test_bom_crlf_and_comments() -> None:
    tree = parse_nodes("\ufeffFROM a\r\n  # indented comment\r\nRUN x\r\n")
    assert [n.original for n in tree.nodes] == ["FROM a", "RUN x"]
    assert tree.nodes[1].comments == ("indented comment",)


def test_meta_args_and_locations() -> None:
    dockerfile = parse_dockerfile("ARG A=1\n\nARG B\nFROM x\nRUN y \\\n  z\n", "ci/Dockerfile")
    assert [a.args[0].name for a in dockerfile.meta_args] == ["A", "B"]
    run = dockerfile.stages[0].instructions[0]
    assert run.location == ins.Location("ci/Dockerfile", 5, 6)
    assert str(run.location) == "ci/Dockerfile:5"
    assert run.original == "RUN y   z"


def test_error_names_file_and_line() -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_dockerfile("FROM a\nCOPY x\n", "build/Dockerfile.dev")
    assert str(caught.value).startswith("build/Dockerfile.dev:2: COPY requires at least two")
