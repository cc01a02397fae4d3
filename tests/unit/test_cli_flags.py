"""The pflag-like parser: values, grouping, stop-at-positional, docker's error texts."""

from __future__ import annotations

import pytest

from dockling.cli.flags import FlagSet, HelpRequested, UsageError


def make(interspersed: bool = True) -> FlagSet:
    fs = FlagSet("run", "[OPTIONS] IMAGE", interspersed=interspersed, min_args=1)
    fs.bool("detach", "d")
    fs.bool("interactive", "i")
    fs.bool("tty", "t")
    fs.value("name", None)
    fs.list("env", "e")
    fs.bool("sig-proxy", None, default=True)
    return fs


def test_grouped_short_booleans_and_values() -> None:
    values, args = make().parse(["-dit", "--name=x", "-eA=1", "-e", "B=2", "img"])
    assert values["detach"] and values["interactive"] and values["tty"]
    assert values["name"] == "x"
    assert values["env"] == ["A=1", "B=2"]
    assert args == ["img"]


def test_stops_at_first_positional_when_not_interspersed() -> None:
    values, args = make(interspersed=False).parse(["img", "sh", "-c", "exit 3", "-d"])
    assert args == ["img", "sh", "-c", "exit 3", "-d"]
    assert values["detach"] is False


def test_bool_with_explicit_value() -> None:
    values, _ = make().parse(["--sig-proxy=false", "img"])
    assert values["sig_proxy"] is False
    values, _ = make().parse(["img"])
    assert values["sig_proxy"] is True


def test_double_dash_ends_flags() -> None:
    _, args = make().parse(["--", "-d"])
    assert args == ["-d"]


@pytest.mark.parametrize(
    ("argv", "first_line", "code"),
    [
        (["--foo", "x"], "unknown flag: --foo", 125),
        (["-z", "x"], "unknown shorthand flag: 'z' in -z", 125),
        (["-e"], "flag needs an argument: 'e' in -e", 125),
        (["--name"], "flag needs an argument: --name", 125),
        ([], "dockling: 'dockling run' requires at least 1 argument", 1),
    ],
)
def test_errors_use_docker_wording(argv: list[str], first_line: str, code: int) -> None:
    with pytest.raises(UsageError) as info:
        make().parse(argv)
    assert info.value.text.splitlines()[0] == first_line
    assert info.value.code == code
    assert "Usage:  dockling run [OPTIONS] IMAGE" in info.value.text


def test_converter_error_names_the_flag() -> None:
    from dockling.cli.units import ram_in_bytes

    fs = FlagSet("run", "IMAGE")
    fs.value("memory", "m", convert=ram_in_bytes)
    with pytest.raises(UsageError) as info:
        fs.parse(["-m", "12zz"])
    assert info.value.text.startswith(
        """invalid argument "12zz" for "-m, --memory" flag: invalid suffix: 'zz'"""
    )


def test_help_is_requested() -> None:
    with pytest.raises(HelpRequested) as info:
        make().parse(["--help"])
    assert "--name string" in info.value.text
