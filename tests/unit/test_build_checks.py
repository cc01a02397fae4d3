"""Build checks (BuildKit's lint rules) on parsed Dockerfiles, and `dockling build --check`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dockling.build import checks
from dockling.build.syntax import parse_nodes
from dockling.errors import InvalidParameter

CLEAN = 'FROM busybox AS build\nWORKDIR /app\nENV A=1\nCMD ["sh"]\n'


def found(text: str, config: str | None = None) -> list[str]:
    return [str(v) for v in checks.run_checks(parse_nodes(text), checks.parse_config(config))]


def test_a_clean_file_has_no_findings() -> None:
    assert found(CLEAN) == []
    assert found('ARG BASE=busybox\nFROM ${BASE}\nSHELL ["/bin/bash", "-c"]\nCMD run\n') == []
    assert found("from busybox as build\nworkdir /x\nworkdir y\n") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "FROM busybox as build\n",
            "FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)",
        ),
        (
            "FROM busybox AS Build\n",
            "StageNameCasing: Stage name 'Build' should be lowercase (line 1)",
        ),
        (
            "FROM busybox AS context\n",
            "ReservedStageName: Stage name should not use the same name as reserved stage "
            '"context" (line 1)',
        ),
        (
            "FROM busybox\nrun true\nRUN true\n",
            "ConsistentInstructionCasing: Command 'run' should match the case of the command "
            "majority (uppercase) (line 2)",
        ),
        (
            "FROM busybox\nENTRYPOINT exec app\n",
            "JSONArgsRecommended: JSON arguments recommended for ENTRYPOINT to prevent "
            "unintended behavior related to OS signals (line 2)",
        ),
        (
            "FROM busybox\nMAINTAINER me\n",
            "MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label "
            "(line 2)",
        ),
        (
            "ARG VERSION=1\nFROM busybox:$VERSON\n",
            "UndefinedArgInFrom: FROM argument 'VERSON' is not declared "
            "(did you mean VERSION?) (line 2)",
        ),
        (
            "FROM busybox\nWORKDIR app\n",
            'WorkdirRelativePath: Relative workdir "app" can have unexpected results if the base '
            "image changes (line 2)",
        ),
        (
            "FROM busybox\nHEALTHCHECK NONE\nHEALTHCHECK CMD true\n",
            "MultipleInstructionsDisallowed: Multiple HEALTHCHECK instructions should not be used "
            "in the same stage because only the last one will be used (line 2)",
        ),
        (
            "FROM busybox\nLABEL team platform\n",
            'LegacyKeyValueFormat: "LABEL key=value" should be used instead of legacy '
            '"LABEL key value" format (line 2)',
        ),
        (
            "FROM --platform=${TARGETPLATFORM} busybox\n",
            "RedundantTargetPlatform: Setting platform to predefined ${TARGETPLATFORM} in FROM is "
            "redundant as this is the default behavior (line 1)",
        ),
        (
            "FROM busybox\nRUN echo a \\\n\n  b\n",
            "NoEmptyContinuation: Empty continuation line (line 2)",
        ),
    ],
)
def test_each_rule(text: str, expected: str) -> None:
    assert found(text) == [expected]


def test_skip_and_error_options() -> None:
    text = "FROM busybox as Build\nCMD run\n"
    assert len(found(text)) == 3
    assert [v.split(":")[0] for v in found(text, "skip=FromAsCasing, StageNameCasing")] == [
        "JSONArgsRecommended"
    ]
    assert found(text, "skip=all") == []
    config = checks.parse_config("skip=JSONArgsRecommended;error=true")
    assert config.error and config.skip == frozenset({"JSONArgsRecommended"})
    violations = checks.run_checks(parse_nodes(text), config)
    assert checks.error_message(violations) == (
        "lint violation found for rules: FromAsCasing, StageNameCasing"
    )
    assert checks.summary(violations).startswith(
        " 2 warnings found (use docker --debug to expand):\n - FromAsCasing:"
    )
    for bad in ("error=maybe", "skip", "colour=blue"):
        with pytest.raises(InvalidParameter, match="invalid check directive"):
            checks.parse_config(bad)


def test_cli_check_needs_no_daemon(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("# check=skip=MaintainerDeprecated\n" + CLEAN[:-11])
    env = dict(os.environ, DOCKLING_HOST="unix:///nonexistent.sock")
    cli = [str(Path(sys.executable).parent / "dockling"), "build", "--check", str(tmp_path)]
    clean = subprocess.run(cli, env=env, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout == "Check complete, no warnings found.\n"
    (tmp_path / "Dockerfile").write_text("FROM busybox\nMAINTAINER me\nCMD run\n")
    dirty = subprocess.run(cli, env=env, capture_output=True, text=True)
    assert dirty.returncode == 1
    assert dirty.stdout.endswith("Check complete, 2 warnings have been found!\n")
    skipped = subprocess.run(
        [*cli, "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert skipped.returncode == 0 and "no warnings" in skipped.stdout
