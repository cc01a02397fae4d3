"""`--print-ast` golden files: tests/unit/dockerfiles/*.Dockerfile -> *.ast, errors/*.error."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from dockling.build.ast import render
from dockling.build.line_parsers import go_quote
from dockling.build.parser import parse_dockerfile
from dockling.build.syntax import parse_nodes
from dockling.errors import InvalidParameter

CORPUS = Path(__file__).parent / "dockerfiles"
GOOD = sorted(CORPUS.glob("*.Dockerfile"))
BAD = sorted((CORPUS / "errors").glob("*.Dockerfile"))


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_corpus_ast(path: Path) -> None:
    text = path.read_text()
    parse_dockerfile(text)  # the file must also pass validation
    assert render(parse_nodes(text)) == path.with_suffix(".ast").read_text()


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_corpus_errors(path: Path) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_dockerfile(path.read_text())
    assert str(caught.value) == path.with_suffix(".error").read_text().rstrip("\n")


def test_go_quote_matches_strconv_quote() -> None:
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("\t\n\r\a\b\f\v") == '"\\t\\n\\r\\a\\b\\f\\v"'
    assert go_quote("\x00\x7f") == '"\\x00\\x7f"'
    assert go_quote("é ünï ☃") == '"é ünï ☃"'
    assert go_quote("\u00a0\u200b") == '"\\u00a0\\u200b"'
    assert go_quote(b"\xff".decode("utf-8", "surrogateescape")) == '"\\xff"'


def test_flags_render_as_go_quoted_list() -> None:
    tree = parse_nodes('FROM a\nCOPY --from=a --chown="x y" b c\n')
    assert render(tree).splitlines()[1] == '(copy ["--from=a" "--chown=x y"] "b" "c")'


def test_nested_onbuild_with_flags() -> None:
    tree = parse_nodes("FROM a\nONBUILD COPY --from=s --link x /y\n")
    assert render(tree).splitlines()[1] == '(onbuild (copy ["--from=s" "--link"] "x" "/y"))'


def _cli(*args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from dockling.cli.main import main; main()", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def test_cli_print_ast_context_dir_and_stdin(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text('FROM busybox\nCMD ["sh"]\n')
    result = _cli("build", "--print-ast", str(tmp_path))
    assert (result.returncode, result.stdout) == (0, '(from "busybox")\n(cmd "sh")\n')
    result = _cli("build", "--print-ast", "-", stdin="from x\nrun echo hi\n")
    assert (result.returncode, result.stdout) == (0, '(from "x")\n(run "echo hi")\n')
    result = _cli("build", "--print-ast", "-f", "-", str(tmp_path), stdin="FROM y\n")
    assert result.stdout == '(from "y")\n'


def test_cli_print_ast_reports_errors_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "ci.Dockerfile").write_text("FROM busybox\nWROKDIR /x\n")
    result = _cli("build", "--print-ast", "-f", str(tmp_path / "ci.Dockerfile"), str(tmp_path))
    assert result.returncode == 1
    assert (
        result.stderr == "ci.Dockerfile:2: unknown instruction: WROKDIR (did you mean WORKDIR?)\n"
    )


def test_cli_build_without_print_ast_is_not_there_yet(tmp_path: Path) -> None:
    result = _cli("build", str(tmp_path))
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1


def test_cli_build_module_imports_no_engine() -> None:
    code = (
        "import sys, dockling.cli.commands.build; "
        "print(sorted(m for m in sys.modules if m.startswith('dockling.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(out.stdout)
    assert all(m.startswith(("dockling.build", "dockling.cli", "dockling.errors")) for m in loaded)
    assert not any(m.startswith("dockling.client") for m in loaded)


def test_render_is_pure_function_of_text() -> None:
    text = io.StringIO("FROM a\nRUN b\n").getvalue()
    assert render(parse_nodes(text)) == render(parse_nodes(text))
