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
