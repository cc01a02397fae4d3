"""The stage graph of a multi-stage Dockerfile and the stages a `--target` needs.

A stage depends on the stage its FROM names, and on the stages its `COPY --from` and
`RUN --mount=from=` name (by name or by index).  Names that are not earlier stages are
images.  Only the target (default: the last stage) and what it needs transitively are
built; independent stages may build concurrently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dockling.build import instructions as ins
from dockling.build.args import BuildArgs
from dockling.build.substitute import expand_instruction
from dockling.errors import InvalidParameter


@dataclass(frozen=True)
class StagePlan:
    """One stage to build: the expanded base and the earlier stages it needs."""

    stage: ins.Stage
    base: str  # expanded FROM image/stage name ("scratch" for none)
    base_stage: int | None  # index of the stage FROM names, if it names one
    needs: frozenset[int]  # indexes of every stage this one reads from


def stage_index(stages: tuple[ins.Stage, ...], ref: str, current: int) -> int | None:
    """The index of the stage `ref` (name or number) names from stage `current`, or None
    when `ref` is an image reference.

    Raises InvalidParameter for a number that is not an earlier stage.
    """
    if ref.isdigit():
        index = int(ref)
        if index >= current:
            raise InvalidParameter(
                f"invalid from flag value {ref}: refers to current or future build stage"
            )
        return index
    lowered = ref.lower()
    for stage in stages[:current]:
        if stage.name == lowered:
            return stage.index
    return None


def find_target(dockerfile: ins.Dockerfile, target: str | None) -> int:
    """The index of the `--target` stage (the last stage when None)."""
    if target is None or target == "":
        return len(dockerfile.stages) - 1
    for stage in dockerfile.stages:
        if stage.name == target.lower():
            return stage.index
    raise InvalidParameter(f"failed to reach build target {target} in Dockerfile")


def plan_stages(
    dockerfile: ins.Dockerfile, build_args: BuildArgs, target: str | None = None
) -> list[StagePlan]:
    """The stages the target needs, in Dockerfile order, with their dependencies.

    `build_args` supplies the --build-arg values and platform; it is not changed.
    """
    scratch = BuildArgs(build_args.given, escape=dockerfile.escape)
    scratch.platform = dict(build_args.platform)
    for arg in dockerfile.meta_args:
        scratch.declare_meta(arg)
    plans = [_plan(dockerfile, stage, scratch) for stage in dockerfile.stages]
    wanted: set[int] = set()
    pending = [find_target(dockerfile, target)]
    while pending:
        index = pending.pop()
        if index not in wanted:
            wanted.add(index)
            pending.extend(plans[index].needs)
    return [plan for plan in plans if plan.stage.index in wanted]


def _plan(dockerfile: ins.Dockerfile, stage: ins.Stage, build_args: BuildArgs) -> StagePlan:
    escape = dockerfile.escape
    from_ = expand_instruction(stage.from_, build_args.from_env(), escape)
    assert isinstance(from_, ins.From)
    base_stage = stage_index(dockerfile.stages, from_.base, stage.index)
    needs = {base_stage} if base_stage is not None else set()
    scope = build_args.stage()
    env: dict[str, str] = {}
    for instruction in stage.instructions:
        refs = _references(instruction, scope.expansion_env(env), escape)
        for ref in refs:
            index = stage_index(dockerfile.stages, ref, stage.index)
            if index is not None:
                needs.add(index)
        if isinstance(instruction, ins.Arg):
            scope.declare(instruction, env)
        elif isinstance(instruction, ins.Env):
            expanded = expand_instruction(instruction, scope.expansion_env(env), escape)
            assert isinstance(expanded, ins.Env)
            env.update((p.key, p.value) for p in expanded.pairs)
    return StagePlan(stage, from_.base, base_stage, frozenset(needs))


def _references(instruction: ins.Instruction, env: Mapping[str, str], escape: str) -> list[str]:
    """The stage-or-image names an instruction reads from."""
    if isinstance(instruction, ins.Copy) and instruction.from_:
        copy = expand_instruction(instruction, env, escape)
        assert isinstance(copy, ins.Copy)
        return [copy.from_] if copy.from_ else []
    if isinstance(instruction, ins.Run):
        run = expand_instruction(instruction, env, escape)
        assert isinstance(run, ins.Run)
        return [m.from_ for m in run.mounts if m.from_]
    return []
