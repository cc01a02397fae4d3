"""The Go text/template subset used by --format."""

from __future__ import annotations

from typing import Any

import pytest

from dockling.cli.template import TemplateError, render

DATA: dict[str, Any] = {
    "Id": "abc",
    "State": {"Status": "running", "Running": True, "Pid": 42},
    "Config": {"Env": ["A=1", "B=2"], "Labels": {"k": "v"}, "Cmd": None},
    "Mounts": [{"Source": "/a"}, {"Source": "/b"}],
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{.Id}}", "abc"),
        ("{{.State.Status}}", "running"),
        ("{{.State.Running}}", "true"),
        ("{{.State.Pid}}", "42"),
        ("{{.Config.Env}}", "[A=1 B=2]"),
        ("{{.Config.Labels}}", "map[k:v]"),
        ("{{.Config.Cmd}}", "<no value>"),
        ("{{.Missing}}", "<no value>"),
        ("{{json .Config.Labels}}", '{"k":"v"}'),
        ("{{.Config.Labels | json}}", '{"k":"v"}'),
        ('{{index .Config.Labels "k"}}', "v"),
        ('{{join .Config.Env ","}}', "A=1,B=2"),
        ("{{range .Mounts}}{{.Source}};{{end}}", "/a;/b;"),
        ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
        ("{{if .Nope}}a{{else if .State.Pid}}b{{else}}c{{end}}", "b"),
        ("{{with .State}}{{.Status}}{{end}}", "running"),
        ("{{upper .State.Status}}", "RUNNING"),
        ("{{len .Mounts}}", "2"),
        ('{{printf "%s-%d" .Id .State.Pid}}', "abc-42"),
        ("a {{- .Id -}} b", "aabcb"),
        ('{{eq .State.Status "running"}}', "true"),
        (
            "{{json .}}",
            '{"Id":"abc","State":{"Status":"running","Running":true,"Pid":42},'
            '"Config":{"Env":["A=1","B=2"],"Labels":{"k":"v"},"Cmd":null},'
            '"Mounts":[{"Source":"/a"},{"Source":"/b"}]}',
        ),
    ],
)
def test_render(source: str, expected: str) -> None:
    assert render(source, DATA) == expected


class Row:
    def template_field(self, name: str) -> Any:
        if name == "Label":
            return lambda key: {"k": "v"}.get(key, "")
        if name == "Names":
            return "web"
        raise TemplateError(f"can't evaluate field {name}")


def test_method_with_argument() -> None:
    assert render('{{.Names}}:{{.Label "k"}}', Row()) == "web:v"


@pytest.mark.parametrize("source", ["{{.Id", "{{if .Id}}x", "{{end}}", "{{nosuchfunc .Id}}"])
def test_errors(source: str) -> None:
    with pytest.raises(TemplateError):
        render(source, DATA)


def test_unknown_field_on_context_object() -> None:
    with pytest.raises(TemplateError):
        render("{{.Bogus}}", Row())


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}{{end}}", "k=v"),
        ("{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}", "0:A=1 1:B=2 "),
        ("{{range $e := .Mounts}}{{$e.Source}}{{end}}", "/a/b"),
        ("{{$x := .Id}}{{$x}}-{{$.State.Pid}}", "abc-42"),
        ("{{$n := 0}}{{range .Config.Env}}{{$n = .}}{{end}}{{$n}}", "B=2"),
        ("{{with $s := .State}}{{$s.Status}}{{end}}", "running"),
        ("{{range .Mounts}}{{$.Id}}{{end}}", "abcabc"),
        ("{{(index .Mounts 1).Source}}", "/b"),
        ('{{join .Config.Env ","}}', "A=1,B=2"),
    ],
)
def test_variables_and_chains(source: str, expected: str) -> None:
    assert render(source, DATA) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{$nope}}", 'undefined variable "$nope"'),
        ("{{foo}}", ':1: function "foo" not defined'),
        ("a\n{{.Id", ":2: unclosed action"),
        ("{{if .Id}}", ":1: unexpected EOF"),
        ("ab {{ .A.B }}", ':1:8: executing "" at <.A.B>: can\'t evaluate field A in type'),
    ],
)
def test_errors_name_the_place(source: str, message: str) -> None:
    class Opaque:
        def template_field(self, name: str) -> Any:
            raise TemplateError(f"can't evaluate field {name} in type X")

    with pytest.raises(TemplateError) as caught:
        render(source, Opaque() if ".A" in source else DATA)
    assert message in str(caught.value)


def test_strict_lookup_is_docker_inspect_missingkey() -> None:
    from dockling.cli.template import Template

    strict = Template("{{.Nope}}", strict=True)
    with pytest.raises(TemplateError, match='map has no entry for key "Nope"'):
        strict.render(DATA)
    # A missing label is a map entry, not a struct field: <no value>, as docker.
    assert Template("{{.Config.Labels.nope}}", strict=True).render(DATA) == "<no value>"
