"""Stage selection for --target, stage dependencies, and ARG scoping."""

from __future__ import annotations

import pytest

from dockling.build import instructions as ins
from dockling.build.args import PROXY_ARGS, BuildArgs, Platform, parse_build_arg
from dockling.build.parser import parse_dockerfile
from dockling.build.stages import StagePlan, find_target, plan_stages, stage_index
from dockling.errors import InvalidParameter

MULTI = """\
ARG BASE=busybox
FROM $BASE AS deps
FROM busybox AS unrelated
FROM deps AS build
ARG SRC=deps
COPY --from=$SRC /a /a
FROM golang AS tools
FROM scratch AS final
COPY --from=build /a /a
RUN --mount=type=bind,from=tools,target=/t true
COPY --from=docker.io/library/alpine /etc/os-release /
"""


def names(plans: list[StagePlan]) -> list[str | None]:
    return [plan.stage.name for plan in plans]


def test_target_selects_only_needed_stages() -> None:
    dockerfile = parse_dockerfile(MULTI)
    args = BuildArgs({})
    assert names(plan_stages(dockerfile, args)) == ["deps", "build", "tools", "final"]
    assert names(plan_stages(dockerfile, args, "build")) == ["deps", "build"]
    assert names(plan_stages(dockerfile, args, "UNRELATED")) == ["unrelated"]
    with pytest.raises(InvalidParameter, match="failed to reach build target nope"):
        plan_stages(dockerfile, args, "nope")


def test_plan_dependencies_and_bases() -> None:
    plans = {p.stage.name: p for p in plan_stages(parse_dockerfile(MULTI), BuildArgs({}))}
    assert (plans["deps"].base, plans["deps"].base_stage) == ("busybox", None)
    assert (plans["build"].base_stage, plans["build"].needs) == (0, frozenset({0}))
    assert plans["final"].needs == frozenset({2, 3})  # build and tools; alpine is an image


def test_build_args_change_the_graph() -> None:
    dockerfile = parse_dockerfile(MULTI)
    plans = plan_stages(dockerfile, BuildArgs({"SRC": "unrelated"}), "build")
    assert names(plans) == ["deps", "unrelated", "build"]
    plans = plan_stages(dockerfile, BuildArgs({"BASE": "alpine"}), "deps")
    assert plans[0].base == "alpine"


def test_stage_index_rules() -> None:
    stages = parse_dockerfile("FROM a AS one\nFROM b\nFROM c\n").stages
    assert stage_index(stages, "ONE", 2) == 0
    assert stage_index(stages, "1", 2) == 1
    assert stage_index(stages, "one", 0) is None  # not earlier: an image name
    with pytest.raises(InvalidParameter, match="current or future"):
        stage_index(stages, "2", 2)
    assert find_target(parse_dockerfile("FROM a\nFROM b AS x\n"), None) == 1


def _arg(text: str) -> ins.Arg:
    instruction = parse_dockerfile(f"FROM a\n{text}\n").stages[0].instructions[0]
    assert isinstance(instruction, ins.Arg)
    return instruction


def _meta(text: str) -> ins.Arg:
    return parse_dockerfile(f"{text}\nFROM a\n").meta_args[0]


def test_meta_args_only_in_from_until_redeclared() -> None:
    args = BuildArgs({"V": "2"})
    args.declare_meta(_meta("ARG V=1"))
    args.declare_meta(_meta("ARG W=${V}-w"))
    assert args.from_env()["V"] == "2" and args.from_env()["W"] == "2-w"
    stage = args.stage()
    assert "V" not in stage.expansion_env({})
    stage.declare(_arg("ARG V"), {})
    assert stage.expansion_env({})["V"] == "2"


def test_stage_arg_default_build_arg_and_env_precedence() -> None:
    args = BuildArgs({"GIVEN": "cli", "UNDECLARED": "x", "HTTP_PROXY": "http://p"})
    stage = args.stage()
    stage.declare(_arg("ARG GIVEN=default NOTGIVEN=dflt BARE"), {})
    env = stage.expansion_env({"NOTGIVEN": "from-env"})
    assert env["GIVEN"] == "cli"
    assert env["NOTGIVEN"] == "from-env"  # ENV wins over ARG
    assert "BARE" not in env
    stage.declare(_arg("ARG DERIVED=${GIVEN}-2"), {})
    assert stage.values["DERIVED"] == "cli-2"
    assert args.unused() == ["UNDECLARED"]
    assert stage.run_env({})["HTTP_PROXY"] == "http://p"
    assert "HTTP_PROXY" not in stage.expansion_env({})
    assert all("PROXY" not in kv for kv in stage.cache_key_args())


def test_stages_do_not_share_args() -> None:
    args = BuildArgs({})
    first = args.stage()
    first.declare(_arg("ARG ONLY=1"), {})
    assert "ONLY" not in args.stage().expansion_env({})


def test_platform_args() -> None:
    args = BuildArgs(
        {},
        build_platform=Platform("linux", "amd64"),
        target_platform=Platform.parse("linux/arm64/v8"),
    )
    assert args.from_env()["TARGETPLATFORM"] == "linux/arm64/v8"
    assert args.from_env()["BUILDARCH"] == "amd64"
    stage = args.stage()
    assert "TARGETARCH" not in stage.expansion_env({})
    stage.declare(_arg("ARG TARGETARCH TARGETVARIANT"), {})
    assert stage.values["TARGETARCH"] == "arm64" and stage.values["TARGETVARIANT"] == "v8"


def test_parse_build_arg_and_proxy_names() -> None:
    assert parse_build_arg("A=1=2", {}) == ("A", "1=2")
    assert parse_build_arg("HOME", {"HOME": "/root"}) == ("HOME", "/root")
    assert parse_build_arg("MISSING", {}) == ("MISSING", None)
    assert BuildArgs({"MISSING": None}).unused() == []
    assert {"http_proxy", "NO_PROXY", "ftp_proxy", "HTTPS_PROXY"} <= PROXY_ARGS
